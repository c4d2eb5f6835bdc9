#!/usr/bin/env bash
# Side-by-side benchmark of the Keras MNIST CNN: mediaml vs PyTorch, same data, same settings
# (Conv2D 32 3x3 relu -> MaxPool 2x2 -> Flatten -> Dense 10 softmax; Adam 1e-3, eps 1e-7;
# sparse categorical cross-entropy; batch 32; inputs / 255; glorot-uniform init), 2 cores.
#
#   bash bench/run.sh [BUILD_DIR] [--images N] [--epochs E]
#
#   BUILD_DIR    a CMake build of mediaml holding libmediaml.a (default: build)
#   --images N   training images per run (default 60000 = one epoch; e.g. 10000 for a quick run)
#   --epochs E   epochs over those images (default 1)
#   REPEATS=3    runs per configuration, interleaved; the table shows medians
#   MEDIAML_DATA directory holding mnist/ (default ../shared/data)
#   TORCH_CONFIGS="default blas1 omp1 t2blas1"  which PyTorch configurations to run
#   BENCH_CPUS   CPU list for taskset (default 0,1 when the machine has more than 2 CPUs)
#   BENCH_IDLE_WAIT=20  seconds to wait, before each run, for the machine to go quiet
#
# Configurations (each a fresh process):
#   mediaml           MEDIAML_THREADS=2 (one OpenMP pool; OpenBLAS single-threaded inside)
#   pytorch default   nothing set: torch's default intra-op threads, OpenBLAS's default threads
#   pytorch blas1     OPENBLAS_NUM_THREADS=1, torch's default intra-op threads
#   pytorch omp1      OMP_NUM_THREADS=1 and torch.set_num_threads(1)
#   pytorch t2blas1   OPENBLAS_NUM_THREADS=1 and torch.set_num_threads(2) (extra: torch on both
#                     cores without a second BLAS pool)
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE and the like are left as the environment has them.
#
# Writes bench/out/mnist_cnn.md (the table, made by bench/mnist_cnn_table.py),
# bench/out/mnist_cnn_runs.jsonl (one JSON line per run), bench/out/mnist_cnn_<config>_<run>.log
# and bench/out/mnist_cnn_bench (the compiled C program).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=build
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then BUILD="$1"; shift; fi
IMAGES=60000
EPOCHS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --images) IMAGES="$2"; shift 2 ;;
    --images=*) IMAGES="${1#*=}"; shift ;;
    --epochs) EPOCHS="$2"; shift 2 ;;
    --epochs=*) EPOCHS="${1#*=}"; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done
REPEATS="${REPEATS:-3}"
TORCH_CONFIGS="${TORCH_CONFIGS:-default blas1 omp1 t2blas1}"
DATA="${MEDIAML_DATA:-../shared/data}/mnist"

need_file run.sh "$BUILD/libmediaml.a" "build first: cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release && cmake --build $BUILD"
[ -f "$DATA/train-images-idx3-ubyte.gz" ] || [ -f "$DATA/train-images-idx3-ubyte" ] || {
  echo "run.sh: MNIST not found in $DATA (set MEDIAML_DATA)" >&2; exit 1; }
need_torch run.sh numpy

BIN="$OUT/mnist_cnn_bench"
echo "building $BIN against $BUILD/libmediaml.a"
cc -O2 -std=c11 -Wall -Wextra bench/mnist_cnn_bench.c -I include -L "$BUILD" -lmediaml \
  -fopenmp -lopenblas -lcjson -lz -lpng -lm -o "$BIN"

COMMON=(--images "$IMAGES" --epochs "$EPOCHS" --data "$DATA" --predict-repeats 3)

run_config() { # name -> command line
  case "$1" in
    mediaml) echo "MEDIAML_THREADS=2 $BIN" ;;
    default) echo "$PY bench/mnist_cnn_torch.py --config default" ;;
    blas1)   echo "OPENBLAS_NUM_THREADS=1 $PY bench/mnist_cnn_torch.py --config blas1" ;;
    omp1)    echo "OMP_NUM_THREADS=1 $PY bench/mnist_cnn_torch.py --threads 1 --config omp1" ;;
    t2blas1) echo "OPENBLAS_NUM_THREADS=1 $PY bench/mnist_cnn_torch.py --threads 2 --config t2blas1" ;;
    *) echo "run.sh: unknown configuration $1" >&2; return 1 ;;
  esac
}

CONFIGS=(mediaml $TORCH_CONFIGS)
for c in "${CONFIGS[@]}"; do run_config "$c" >/dev/null; done
RUNS="$OUT/mnist_cnn_runs.jsonl"
: >"$RUNS"
UPTIME_START="$(uptime)"
echo "start: $UPTIME_START"
echo "images=$IMAGES epochs=$EPOCHS repeats=$REPEATS configs: ${CONFIGS[*]}${PIN:+ (pinned: ${PIN[*]})}"

for r in $(seq 1 "$REPEATS"); do
  for c in "${CONFIGS[@]}"; do
    read -r -a cmd <<<"$(run_config "$c")"
    wait_quiet
    load="$(cut -d' ' -f1 /proc/loadavg)"
    log="$OUT/mnist_cnn_${c}_${r}.log"
    t0="$(date +%s.%N)"; j0="$(busy_jiffies)"
    if "${BASE_ENV[@]}" "${PIN[@]}" env "${cmd[@]}" "${COMMON[@]}" >"$log" 2>&1; then
      j1="$(busy_jiffies)"; t1="$(date +%s.%N)"
      line="$(grep '^{' "$log" | tail -n 1)"
      # other_cpu: CPU-seconds used by everything but this run, per second of the run (0..NCPU)
      "$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); w=float(sys.argv[6])-float(sys.argv[5]); busy=(int(sys.argv[8])-int(sys.argv[7]))/float(sys.argv[9]); d.update(name=sys.argv[2], rep=int(sys.argv[3]), load1=float(sys.argv[4]), wall_seconds=round(w,3), other_cpu=round(max(0.0,(busy-d.get("cpu_seconds",0.0))/w),2)); print(json.dumps(d))' \
        "$line" "$c" "$r" "$load" "$t0" "$t1" "$j0" "$j1" "$HZ" >>"$RUNS"
      tail -n 1 "$RUNS" | "$PY" -c 'import json,sys; d=json.loads(sys.stdin.read()); print("  run %d %-8s train %8.1f img/s  infer %9.1f img/s  rss %6.1f MiB  acc %.4f  (load1 %.2f, other procs %.2f CPUs)" % (d["rep"], d["name"], d["train_img_s"], d["infer_img_s"], d["peak_rss_mib"], d["test_accuracy"], d["load1"], d["other_cpu"]))'
    else
      echo "  run $r $c FAILED (see $log):" >&2
      tail -n 5 "$log" >&2
      echo "{\"name\":\"$c\",\"rep\":$r,\"failed\":true}" >>"$RUNS"
    fi
  done
done
UPTIME_END="$(uptime)"
echo "end:   $UPTIME_END"

echo
"$PY" bench/mnist_cnn_table.py "$RUNS" "$OUT/mnist_cnn.md" --images "$IMAGES" --epochs "$EPOCHS" \
  --repeats "$REPEATS" --uptime-start "$UPTIME_START" --uptime-end "$UPTIME_END" --pin "${PIN[*]:-}"
