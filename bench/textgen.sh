#!/usr/bin/env bash
# Side-by-side benchmark of char-level GPT training and generation: 'mediaml textgen train' vs
# the same model and recipe in PyTorch (bench/textgen_torch.py), Tiny Shakespeare, 2 cores.
#
#   bash bench/textgen.sh [BUILD_DIR] [--steps N] [--gen-tokens N] [--val-windows N] [--quick]
#
#   BUILD_DIR        a CMake build of mediaml holding the mediaml CLI (default: build)
#   --steps N        optimizer steps in both (default 2000)
#   --gen-tokens N   tokens generated for the generation speed (default 500)
#   --val-windows N  validate on at most N windows, evenly spread, in both (default: all 871)
#   --quick          a smoke run: --steps 100, --val-windows 128, --gen-tokens 300
#   MEDIAML_CONFIGS="mediaml mediaml1 bf16"     which mediaml configurations to run
#   TORCH_CONFIGS="default blas1 omp1 t2blas1 passive bf16 bf16t2"  which PyTorch configurations to run
#   REPEATS=1        runs per configuration (interleaved); the table shows medians
#   MEDIAML_DATA     directory holding tinyshakespeare/input.txt (default ../shared/data)
#   BENCH_CPUS       CPU list for taskset (default 0,1 when the machine has more than 2 CPUs)
#   BENCH_IDLE_WAIT=20  seconds to wait, before each run, for the machine to go quiet
#
# Same in both (see bench/textgen_torch.py for the details): char tokenizer; first 90% of the
# characters train, last 10% validate; GPT with 4 layers, 4 heads, width 128, context 128, no
# dropout (826,433 parameters); batch 32 random windows; AdamW lr 1e-3, betas (0.9, 0.999),
# eps 1e-7, weight decay 0.01; global clip norm 1; warm-up min(100, steps/10) then cosine to
# 0.1 lr; glorot-uniform kernels, uniform(-0.05, 0.05) token table; validation loss on the same
# non-overlapping windows at the end. Generation: from a newline, temperature 1, with the KV
# cache (restarting from the last 64 tokens when 128 are full) and without (re-running the model
# on the last 128 tokens for each token).
#
# Configurations (each a fresh process):
#   mediaml           MEDIAML_THREADS=2 (one OpenMP pool; OpenBLAS single-threaded inside)
#   mediaml1          MEDIAML_THREADS=1
#   bf16              MEDIAML_THREADS=2 and --matmul-precision medium (bfloat16 matmul operands,
#                     float32 sums, on AMX or AVX512-BF16; float32 on CPUs without: the JSON says which)
#   pytorch default   nothing set
#   pytorch blas1     OPENBLAS_NUM_THREADS=1
#   pytorch omp1      OMP_NUM_THREADS=1 and torch.set_num_threads(1)
#   pytorch t2blas1   OPENBLAS_NUM_THREADS=1 and torch.set_num_threads(2)
#   pytorch passive   OMP_WAIT_POLICY=PASSIVE (the issue's other suggested setting)
#   pytorch bf16      torch.autocast("cpu", bfloat16) around forward and loss, torch's threads
#   pytorch bf16t2    the same with torch.set_num_threads(2) and OMP_WAIT_POLICY=PASSIVE
# The table gives the speed ratio of each precision against PyTorch's best in it, and of the
# bf16 configurations against PyTorch's best of all.
# Peak RSS is /usr/bin/time's maximum resident set size of the training process (PyTorch: the
# training + generation process; mediaml's generation runs are separate, smaller processes).
#
# Writes bench/out/textgen.md (the table, made by bench/textgen_table.py),
# bench/out/textgen_runs.jsonl (one JSON line per run) and bench/out/textgen_<config>_<run>.log.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then BUILD="$1"; shift; fi
STEPS=2000
GEN=500
VALW=0
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) STEPS="$2"; shift 2 ;;
    --steps=*) STEPS="${1#*=}"; shift ;;
    --gen-tokens) GEN="$2"; shift 2 ;;
    --gen-tokens=*) GEN="${1#*=}"; shift ;;
    --val-windows) VALW="$2"; shift 2 ;;
    --val-windows=*) VALW="${1#*=}"; shift ;;
    --quick) STEPS=100; VALW=128; GEN=300; shift ;;
    -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
    *) echo "textgen.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done
REPEATS="${REPEATS:-1}"
TORCH_CONFIGS="${TORCH_CONFIGS:-default blas1 omp1 t2blas1 passive bf16 bf16t2}"
MEDIAML_CONFIGS="${MEDIAML_CONFIGS:-mediaml mediaml1 bf16}"
DATA="${MEDIAML_DATA:-../shared/data}/tinyshakespeare/input.txt"
BIN="$BUILD/mediaml"

[ -x "$BIN" ] || {
  echo "textgen.sh: $BIN not found; build first:" >&2
  echo "  cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release && cmake --build $BUILD" >&2
  exit 1
}
[ -f "$DATA" ] || { echo "textgen.sh: $DATA not found (set MEDIAML_DATA)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "textgen.sh: /usr/bin/time not found (apt-get install time)" >&2; exit 1; }
need_torch textgen.sh

VAL_ARGS=()
[ "$VALW" -gt 0 ] && VAL_ARGS=(--val-windows "$VALW")
RUNS="$OUT/textgen_runs.jsonl"
: >"$RUNS"
T_START="$(date +%s)"
UPTIME_START="$(uptime)"
echo "start: $UPTIME_START"
echo "steps=$STEPS val_windows=${VALW/#0/all} gen_tokens=$GEN repeats=$REPEATS mediaml: $MEDIAML_CONFIGS torch: $TORCH_CONFIGS${PIN:+ (pinned: ${PIN[*]})}"

# record NAME REP LOG LOAD T0 T1 J0 J1 EXTRA_JSON: merges the run's JSON (last '{' line of LOG),
# /usr/bin/time's "peak_rss_kb N" line and the contention measure into one line of $RUNS.
record() {
  "$PY" - "$@" >>"$RUNS" <<'EOF'
import json, re, sys
name, rep, log, load, t0, t1, j0, j1, hz, extra = sys.argv[1:11]
text = open(log, encoding="utf-8", errors="replace").read()
d = json.loads([l for l in text.splitlines() if l.startswith("{")][-1])
d.update(json.loads(extra))
m = re.findall(r"^peak_rss_kb (\d+) cpu ([0-9.]+) ([0-9.]+)", text, re.M)
cpu = 0.0
if m:
    d["peak_rss_mib"] = round(int(m[-1][0]) / 1024.0, 1)
    cpu = float(m[-1][1]) + float(m[-1][2])
    d["process_cpu_seconds"] = round(cpu, 1)
w = float(t1) - float(t0)
busy = (int(j1) - int(j0)) / float(hz)
d.update(name=name, rep=int(rep), load1=float(load), wall_seconds=round(w, 1), other_cpu=round(max(0.0, (busy - cpu) / w), 2))
print(json.dumps(d))
EOF
}

mediaml_run() { # CONFIG REP
  local c="$1" r="$2" th prec=highest
  case "$c" in
    mediaml) th=2 ;;
    mediaml1) th=1 ;;
    bf16) th=2; prec=medium ;;
    *) echo "textgen.sh: unknown configuration $c" >&2; return 1 ;;
  esac
  local log="$OUT/textgen_${c}_$r.log" model="$OUT/textgen_${c}_$r.mm" load t0 t1 j0 j1 g1 g2
  wait_quiet
  load="$(cut -d' ' -f1 /proc/loadavg)"
  rm -f "$model"
  t0="$(date +%s.%N)"; j0="$(busy_jiffies)"
  if ! "${BASE_ENV[@]}" "${PIN[@]}" env MEDIAML_THREADS=$th /usr/bin/time -f "peak_rss_kb %M cpu %U %S" \
       "$BIN" textgen train --data "$DATA" --out "$model" --steps "$STEPS" --eval-every "$STEPS" \
       "${VAL_ARGS[@]}" --seed 0 --matmul-precision "$prec" --json >"$log" 2>&1; then
    echo "  $c run $r FAILED (see $log):" >&2; tail -n 5 "$log" >&2; return 0
  fi
  j1="$(busy_jiffies)"; t1="$(date +%s.%N)"
  # generation speed, with and without the KV cache (separate processes)
  for mode in cache nocache; do
    local extra=()
    [ "$mode" = nocache ] && extra=(--no-cache)
    "${BASE_ENV[@]}" "${PIN[@]}" env MEDIAML_THREADS=$th "$BIN" textgen generate --model "$model" \
      --max-tokens "$GEN" --seed 1 --verbose --no-echo --matmul-precision "$prec" "${extra[@]}" >"$OUT/textgen_${c}_gen_${mode}_$r.txt" \
      2>"$OUT/textgen_${c}_gen_${mode}_$r.log" || echo "  generation ($mode) FAILED" >&2
  done
  g1="$(sed -n 's/.*tokens in [0-9.]* s, \([0-9.]*\) tok\/s.*/\1/p' "$OUT/textgen_${c}_gen_cache_$r.log" | tail -n 1)"
  g2="$(sed -n 's/.*tokens in [0-9.]* s, \([0-9.]*\) tok\/s.*/\1/p' "$OUT/textgen_${c}_gen_nocache_$r.log" | tail -n 1)"
  # the CLI's JSON: step, loss, val_loss, val_accuracy, train_seconds, eval_seconds, tokens_per_second
  "$PY" - "$log" "$c" <<'EOF' >"$log.json"
import json, sys
text = open(sys.argv[1]).read()
d = json.loads([l for l in text.splitlines() if l.startswith("{")][-1])
print(json.dumps({"impl": "mediaml", "config": sys.argv[2], "steps": d["step"], "train_tok_s": d["tokens_per_second"],
                  "train_seconds": d["train_seconds"], "train_loss_mean": d["loss"], "val_loss": d["val_loss"],
                  "val_accuracy": d["val_accuracy"], "eval_seconds": d["eval_seconds"],
                  "matmul_dtype": d.get("matmul_dtype", "float32")}))
EOF
  grep peak_rss_kb "$log" >>"$log.json" || true
  record "$c" "$r" "$log.json" "$load" "$t0" "$t1" "$j0" "$j1" "$HZ" \
    "{\"gen_tokens\": $GEN, \"gen_tok_s_cache\": ${g1:-null}, \"gen_tok_s_nocache\": ${g2:-null}}"
  show
}

torch_run() { # CONFIG REP
  local c="$1" r="$2" log="$OUT/textgen_$1_$2.log" load t0 t1 j0 j1 cmd
  case "$c" in
    default) cmd=() ;;
    blas1)   cmd=(OPENBLAS_NUM_THREADS=1) ;;
    omp1)    cmd=(OMP_NUM_THREADS=1) ;;
    t2blas1) cmd=(OPENBLAS_NUM_THREADS=1) ;;
    passive) cmd=(OMP_WAIT_POLICY=PASSIVE) ;;
    bf16)    cmd=() ;;
    bf16t2)  cmd=(OMP_WAIT_POLICY=PASSIVE) ;;
    *) echo "textgen.sh: unknown configuration $c" >&2; return 1 ;;
  esac
  local targs=(--config "$c")
  [ "$c" = omp1 ] && targs+=(--threads 1)
  [ "$c" = t2blas1 ] && targs+=(--threads 2)
  [ "$c" = bf16t2 ] && targs+=(--threads 2)
  case "$c" in bf16*) targs+=(--autocast bf16) ;; esac
  wait_quiet
  load="$(cut -d' ' -f1 /proc/loadavg)"
  t0="$(date +%s.%N)"; j0="$(busy_jiffies)"
  if ! "${BASE_ENV[@]}" "${PIN[@]}" env "${cmd[@]}" /usr/bin/time -f "peak_rss_kb %M cpu %U %S" \
       "$PY" bench/textgen_torch.py --data "$DATA" --steps "$STEPS" --gen-tokens "$GEN" "${VAL_ARGS[@]}" \
       "${targs[@]}" >"$log" 2>&1; then
    echo "  pytorch $c run $r FAILED (see $log):" >&2; tail -n 5 "$log" >&2; return 0
  fi
  j1="$(busy_jiffies)"; t1="$(date +%s.%N)"
  record "$c" "$r" "$log" "$load" "$t0" "$t1" "$j0" "$j1" "$HZ" "{}"
  show
}

show() {
  tail -n 1 "$RUNS" | "$PY" -c 'import json,sys; d=json.loads(sys.stdin.read()); print("  run %d %-8s %7.0f tok/s  val_loss %.4f  rss %6.1f MiB  gen %s / %s tok/s (cache / none)  (load1 %.2f, other procs %.2f CPUs)" % (d["rep"], d["name"], d["train_tok_s"], d["val_loss"], d.get("peak_rss_mib", float("nan")), d.get("gen_tok_s_cache"), d.get("gen_tok_s_nocache"), d["load1"], d["other_cpu"]))'
}

for r in $(seq 1 "$REPEATS"); do
  for c in $MEDIAML_CONFIGS; do mediaml_run "$c" "$r"; done
  for c in $TORCH_CONFIGS; do torch_run "$c" "$r"; done
done
UPTIME_END="$(uptime)"
echo "end:   $UPTIME_END ($(( $(date +%s) - T_START )) s)"
echo
"$PY" bench/textgen_table.py "$RUNS" "$OUT/textgen.md" --steps "$STEPS" --gen-tokens "$GEN" --val-windows "$VALW" \
  --repeats "$REPEATS" --uptime-start "$UPTIME_START" --uptime-end "$UPTIME_END" --pin "${PIN[*]:-}" \
  --seconds "$(( $(date +%s) - T_START ))"
