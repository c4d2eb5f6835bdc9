#!/usr/bin/env bash
# Side-by-side benchmark of a biased matrix factorization: mediaml vs PyTorch, same model, same
# data, same settings (tests/test_functional.c's model: P, Q [*, K] with L2 1e-4 per lookup,
# bu, bi, Dot + Add + Dense(1); uniform(-0.05, 0.05) tables; MSE; Adam 1e-3, eps 1e-7;
# batch 256; shuffled), 2 cores.
#
#   bash bench/recommend.sh [BUILD_DIR] [--epochs E] [--factors K] [--quick]
#
#   BUILD_DIR    a CMake build of mediaml holding libmediaml.a (default: build)
#   --epochs E   epochs over ml-100k u1.base (80000 ratings; default 10)
#   --factors K  embedding size (default 64)
#   --quick      a smoke run: 2 epochs, REPEATS=1, scale sizes 1e5 1e6, PyTorch at 1e5 only
#   REPEATS=3    runs per configuration on ml-100k, interleaved; the table shows medians
#   SCALE_SIZES="1e5 1e6 1e7"   synthetic interactions (one epoch) for the mediaml scale table
#   TORCH_SCALE_SIZES="1e5 1e6" the sizes PyTorch runs too (empty: none; 1e7 with sparse1
#                               alone takes ~2 min; dense Adam at 1e7 would take over an hour)
#   TORCH_SCALE_CONFIGS="best sparse1"  PyTorch configurations at those sizes ("best": the
#                               dense-Adam configuration fastest on ml-100k)
#   SCALE_REPEATS=1             runs per scale point (interleaved; medians)
#   TORCH_CONFIGS="default omp1 blas1 sparse1"  which PyTorch configurations to run
#   MEDIAML_CONFIGS="mediaml mediaml1"           which mediaml configurations to run
#   MEDIAML_DATA directory holding movielens-100k/ (default ../shared/data)
#   BENCH_CPUS   CPU list for taskset (default 0,1 when the machine has more than 2 CPUs)
#   BENCH_IDLE_WAIT=10  seconds to wait, before each run, for the machine to go quiet
#   RECOMMEND_PERF=1    also profile the mediaml half with perf (bench/out/recommend_perf.txt)
#
# Configurations (each a fresh process):
#   mediaml           MEDIAML_THREADS=2 (one OpenMP pool; OpenBLAS single-threaded inside)
#   mediaml1          MEDIAML_THREADS=1
#   pytorch default   nothing set: torch's default intra-op threads, OpenBLAS's default threads
#   pytorch omp1      OMP_NUM_THREADS=1 and torch.set_num_threads(1)
#   pytorch blas1     OPENBLAS_NUM_THREADS=1, torch's default intra-op threads
#   pytorch sparse1   nn.Embedding(sparse=True) + torch.optim.SparseAdam (lazy Adam over the
#                     looked-up rows, as mediaml's sparse row updates), OMP_NUM_THREADS=1 and
#                     torch.set_num_threads(1)
# The scale table runs the first mediaml configuration and TORCH_SCALE_CONFIGS.
#
# Writes bench/out/recommend.md (the tables, made by bench/recommend_table.py),
# bench/out/recommend_runs.jsonl (one JSON line per run), bench/out/recommend_<config>_<size>_<run>.log
# and bench/out/recommend_mf_bench (the compiled C program).
set -euo pipefail

BENCH_IDLE_WAIT="${BENCH_IDLE_WAIT:-10}"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then BUILD="$1"; shift; fi
EPOCHS=10
FACTORS=64
QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) EPOCHS="$2"; shift 2 ;;
    --epochs=*) EPOCHS="${1#*=}"; shift ;;
    --factors) FACTORS="$2"; shift 2 ;;
    --factors=*) FACTORS="${1#*=}"; shift ;;
    --quick) QUICK=1; shift ;;
    -h|--help) sed -n '2,42p' "$0"; exit 0 ;;
    *) echo "recommend.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done
if [ "$QUICK" = 1 ]; then
  EPOCHS=2
  REPEATS="${REPEATS:-1}"
  SCALE_SIZES="${SCALE_SIZES:-1e5 1e6}"
  TORCH_SCALE_SIZES="${TORCH_SCALE_SIZES-1e5}"
fi
REPEATS="${REPEATS:-3}"
SCALE_SIZES="${SCALE_SIZES-1e5 1e6 1e7}"
TORCH_SCALE_SIZES="${TORCH_SCALE_SIZES-1e5 1e6}"
TORCH_SCALE_CONFIGS="${TORCH_SCALE_CONFIGS-best sparse1}"
SCALE_REPEATS="${SCALE_REPEATS:-1}"
TORCH_CONFIGS="${TORCH_CONFIGS:-default omp1 blas1 sparse1}"
MEDIAML_CONFIGS="${MEDIAML_CONFIGS:-mediaml mediaml1}"
DATA="${MEDIAML_DATA:-../shared/data}/movielens-100k"

need_file recommend.sh "$BUILD/libmediaml.a" "build first: cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release && cmake --build $BUILD"
for f in u.data u1.base u1.test; do
  [ -f "$DATA/$f" ] || { echo "recommend.sh: $DATA/$f not found (set MEDIAML_DATA)" >&2; exit 1; }
done
need_torch recommend.sh numpy

BIN="$OUT/recommend_mf_bench"
echo "building $BIN against $BUILD/libmediaml.a"
cc -O2 -std=c11 -Wall -Wextra bench/recommend_mf_bench.c -I include -I apps -L "$BUILD" -lmediaml \
  -fopenmp -lopenblas -lcjson -lpcre2-8 -lz -lpng -lm -o "$BIN"

COMMON=(--factors "$FACTORS" --data "$DATA")

run_config() { # name -> command line
  case "$1" in
    mediaml)  echo "MEDIAML_THREADS=2 $BIN" ;;
    mediaml1) echo "MEDIAML_THREADS=1 $BIN" ;;
    default)  echo "$PY bench/recommend_mf_torch.py --config default" ;;
    omp1)     echo "OMP_NUM_THREADS=1 $PY bench/recommend_mf_torch.py --threads 1 --config omp1" ;;
    blas1)    echo "OPENBLAS_NUM_THREADS=1 $PY bench/recommend_mf_torch.py --config blas1" ;;
    sparse1)  echo "OMP_NUM_THREADS=1 $PY bench/recommend_mf_torch.py --threads 1 --optim sparse --config sparse1" ;;
    *) echo "recommend.sh: unknown configuration $1" >&2; return 1 ;;
  esac
}

read -r -a MM_CONFIGS <<<"$MEDIAML_CONFIGS"
CONFIGS=("${MM_CONFIGS[@]}" $TORCH_CONFIGS)
for c in "${CONFIGS[@]}"; do run_config "$c" >/dev/null; done
RUNS="$OUT/recommend_runs.jsonl"
: >"$RUNS"
T_START="$(date +%s)"
UPTIME_START="$(uptime)"
echo "start: $UPTIME_START"
echo "ml-100k u1: epochs=$EPOCHS factors=$FACTORS repeats=$REPEATS configs: ${CONFIGS[*]}${PIN:+ (pinned: ${PIN[*]})}"

# one_run PART NAME REP TAG ARGS... : runs configuration NAME with extra ARGS, appends a JSON line.
one_run() {
  local part="$1" c="$2" r="$3" tag="$4"; shift 4
  local cmd line load log t0 t1 j0 j1
  read -r -a cmd <<<"$(run_config "$c")"
  wait_quiet
  load="$(cut -d' ' -f1 /proc/loadavg)"
  log="$OUT/recommend_${c}_${tag}_${r}.log"
  t0="$(date +%s.%N)"; j0="$(busy_jiffies)"
  if "${BASE_ENV[@]}" "${PIN[@]}" env "${cmd[@]}" "${COMMON[@]}" "$@" >"$log" 2>&1; then
    j1="$(busy_jiffies)"; t1="$(date +%s.%N)"
    line="$(grep '^{' "$log" | tail -n 1)"
    # other_cpu: CPU-seconds used by everything but this run, per second of the run (0..NCPU)
    "$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); w=float(sys.argv[7])-float(sys.argv[6]); busy=(int(sys.argv[9])-int(sys.argv[8]))/float(sys.argv[10]); d.update(part=sys.argv[11], name=sys.argv[2], rep=int(sys.argv[3]), load1=float(sys.argv[4]), wall_seconds=round(w,3), other_cpu=round(max(0.0,(busy-d.get("cpu_seconds",0.0))/w),2)); d["size"]=sys.argv[5]; print(json.dumps(d))' \
      "$line" "$c" "$r" "$load" "$tag" "$t0" "$t1" "$j0" "$j1" "$HZ" "$part" >>"$RUNS"
    tail -n 1 "$RUNS" | "$PY" -c 'import json,sys; d=json.loads(sys.stdin.read()); r=d.get("test_rmse"); print("  %-6s run %d %-8s %9.0f int/s  (train CPU %6.2f s)  rss %6.1f MiB  rmse %s  (load1 %.2f, other procs %.2f CPUs)" % (d["size"], d["rep"], d["name"], d["train_int_s"], d["train_cpu_seconds"], d["peak_rss_mib"], "-" if r is None else "%.4f" % r, d["load1"], d["other_cpu"]))'
  else
    echo "  $tag run $r $c FAILED (see $log):" >&2
    tail -n 5 "$log" >&2
    echo "{\"part\":\"$part\",\"size\":\"$tag\",\"name\":\"$c\",\"rep\":$r,\"failed\":true}" >>"$RUNS"
  fi
}

for r in $(seq 1 "$REPEATS"); do
  for c in "${CONFIGS[@]}"; do
    one_run ml100k "$c" "$r" ml100k --epochs "$EPOCHS"
  done
done

# Scale: one epoch over N synthetic interactions. "best" in TORCH_SCALE_CONFIGS is the dense
# (torch.optim.Adam) configuration with the highest median ml-100k training speed.
BEST_TORCH="$("$PY" -c '
import json, statistics, sys
by = {}
for l in open(sys.argv[1]):
    d = json.loads(l)
    if (d.get("part") == "ml100k" and not d.get("failed") and d.get("impl") == "pytorch"
            and d.get("optim") == "adam"):
        by.setdefault(d["name"], []).append(d["train_int_s"])
print(max(by, key=lambda n: statistics.median(by[n])) if by else "")' "$RUNS")"
SCALE_TORCH=()
for c in $TORCH_SCALE_CONFIGS; do
  [ "$c" = best ] && c="$BEST_TORCH"
  [ -n "$c" ] || continue
  run_config "$c" >/dev/null
  [[ " ${SCALE_TORCH[*]:-} " == *" $c "* ]] || SCALE_TORCH+=("$c")
done
read -r -a SIZES <<<"$SCALE_SIZES"
read -r -a TSIZES <<<"$TORCH_SCALE_SIZES"
if [ "${#SIZES[@]}" -gt 0 ]; then
  echo "scale: sizes ${SIZES[*]} (mediaml: ${MM_CONFIGS[0]}; PyTorch ${SCALE_TORCH[*]:-none} at ${TSIZES[*]:-none}), repeats=$SCALE_REPEATS"
fi
for r in $(seq 1 "$SCALE_REPEATS"); do
  for n in "${SIZES[@]}"; do
    one_run scale "${MM_CONFIGS[0]}" "$r" "$n" --synthetic "$n"
    if [[ " ${TSIZES[*]:-} " == *" $n "* ]]; then
      for c in "${SCALE_TORCH[@]}"; do one_run scale "$c" "$r" "$n" --synthetic "$n"; done
    fi
  done
done
UPTIME_END="$(uptime)"
echo "end:   $UPTIME_END ($(( $(date +%s) - T_START )) s)"

# Optional profile of the mediaml half (single thread, 3 epochs of ml-100k) with perf.
if [ "${RECOMMEND_PERF:-0}" = 1 ]; then
  if command -v perf >/dev/null; then
    PERF_DATA="$OUT/recommend_perf.data"
    echo "perf: profiling MEDIAML_THREADS=1 $BIN --epochs 3 -> $OUT/recommend_perf.txt"
    if "${BASE_ENV[@]}" "${PIN[@]}" env MEDIAML_THREADS=1 perf record -q -F 999 --call-graph dwarf,8192 \
         -o "$PERF_DATA" "$BIN" "${COMMON[@]}" --epochs 3 >"$OUT/recommend_perf.log" 2>&1; then
      { echo "# perf: MEDIAML_THREADS=1 recommend_mf_bench --epochs 3 (ml-100k u1)"
        grep '^{' "$OUT/recommend_perf.log" || true
        echo; echo "## self time"
        perf report -i "$PERF_DATA" --no-children --stdio -g none --percent-limit 0.8 2>/dev/null | grep '%'
        echo; echo "## with children"
        perf report -i "$PERF_DATA" --children --stdio -g none --percent-limit 2 2>/dev/null | grep '%'
      } >"$OUT/recommend_perf.txt"
      rm -f "$PERF_DATA"
    else
      echo "perf record failed (see $OUT/recommend_perf.log)" >&2
    fi
  else
    echo "perf: not installed, no profile" >&2
  fi
fi

echo
"$PY" bench/recommend_table.py "$RUNS" "$OUT/recommend.md" --epochs "$EPOCHS" --factors "$FACTORS" \
  --repeats "$REPEATS" --scale-repeats "$SCALE_REPEATS" --uptime-start "$UPTIME_START" \
  --uptime-end "$UPTIME_END" --pin "${PIN[*]:-}" --seconds "$(( $(date +%s) - T_START ))"
