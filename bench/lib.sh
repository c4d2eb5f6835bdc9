# Shared by the side-by-side benchmarks (bench/*.sh): sourced, not run.
# Sets ROOT (the source tree; the working directory becomes it), PY (Debian's python3, which
# has python3-torch), OUT (bench/out), NCPU, HZ, PIN (taskset to two CPUs where the machine has
# more, or BENCH_CPUS), BASE_ENV (a clean thread environment: each configuration sets its own),
# IDLE_WAIT, and defines:
#   need_torch NAME [MODULES]   exits with an install hint unless $PY imports torch (and MODULES)
#   need_file NAME FILE HINT    exits unless FILE exists
#   busy_jiffies                busy CPU jiffies of all CPUs (/proc/stat), to measure how much
#                               CPU other processes took while a run was going
#   wait_quiet                  waits up to BENCH_IDLE_WAIT seconds (default 20) for the machine
#                               to be quiet (under 15% of the CPUs busy over one second); the run
#                               goes ahead regardless after that
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY=/usr/bin/python3
OUT="$ROOT/bench/out"
mkdir -p "$OUT"

NCPU="$(nproc)"
HZ="$(getconf CLK_TCK)"
PIN=()
BENCH_PIN_CPUS="${BENCH_CPUS:-}"
if [ -z "$BENCH_PIN_CPUS" ] && [ "$NCPU" -gt 2 ]; then BENCH_PIN_CPUS=0,1; fi
if [ -n "$BENCH_PIN_CPUS" ] && command -v taskset >/dev/null; then PIN=(taskset -c "$BENCH_PIN_CPUS"); fi
BASE_ENV=(env -u OMP_NUM_THREADS -u OPENBLAS_NUM_THREADS -u MKL_NUM_THREADS -u GOTO_NUM_THREADS
          -u MEDIAML_THREADS -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT)
IDLE_WAIT="${BENCH_IDLE_WAIT:-20}"

need_torch() { # NAME [MODULES...]
  local name="$1"; shift
  local mods="torch${*:+, $*}" pkgs="python3-torch"
  for m in "$@"; do pkgs="$pkgs python3-$m"; done
  "$PY" -c "import $mods" 2>/dev/null || {
    echo "$name: $PY cannot import $mods (apt-get install $pkgs)" >&2; exit 1; }
}

need_file() { # NAME FILE HINT
  [ -e "$2" ] || { echo "$1: $2 not found${3:+; $3}" >&2; exit 1; }
}

busy_jiffies() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }

wait_quiet() {
  local waited=0 b0 b1
  while [ "$waited" -lt "$IDLE_WAIT" ]; do
    b0="$(busy_jiffies)"; sleep 1; b1="$(busy_jiffies)"; waited=$((waited + 1))
    [ $(( (b1 - b0) * 100 )) -lt $(( 15 * HZ * NCPU )) ] && return 0
  done
  return 0
}
