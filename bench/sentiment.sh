#!/usr/bin/env bash
# Sentiment benchmark, one run, 2 threads, medians:
#   1. fastText-style training on all of rt-polarity (default recipe, --all): seconds
#   2. fastText-style inference: `sentiment predict --file` over the rt-polarity texts repeated
#      10 times (106620 lines: tokenize, hash n-grams, predict, JSON lines to /dev/null; model
#      load included): sentences per second of wall time and per CPU second (user + sys)
# On a shared machine wall time includes waiting for a core: each figure is printed with the
# CPU seconds the process used and the load average, to tell the two apart.
#   3. Kim CNN training, mediaml vs PyTorch side by side (bench/sentiment_cnn_torch.py: same
#      network, optimizer, batch, input length): median seconds per epoch and the ratio.
#
#   bash bench/sentiment.sh [BUILD_DIR]     (default build)
#   REPEATS=3 runs of 1 and 2; EPOCHS=3 CNN epochs per framework; THREADS=2
#   MEDIAML_DATA: directory holding sentiment-en/ (default ../shared/data)
# mediaml runs with MEDIAML_THREADS=$THREADS and OPENBLAS_NUM_THREADS=1 (its own OpenMP pool);
# PyTorch with torch.set_num_threads($THREADS) and OPENBLAS_NUM_THREADS=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD=${1:-build}
BIN="$BUILD/mediaml"
DATA=${MEDIAML_DATA:-../shared/data}/sentiment-en
REPEATS=${REPEATS:-3}
EPOCHS=${EPOCHS:-3}
THREADS=${THREADS:-2}
MAXLEN=${MAXLEN:-56}
export OPENBLAS_NUM_THREADS=1 MEDIAML_THREADS=$THREADS
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

cat "$DATA/rt-polarity.utf8.pos" "$DATA/rt-polarity.utf8.neg" >"$OUT/texts.txt"
N=$(wc -l <"$OUT/texts.txt")
for i in 1 2 3 4 5 6 7 8 9 10; do cat "$OUT/texts.txt"; done >"$OUT/texts10.txt"
N10=$((N * 10))
# timed CMD...: runs CMD, sets $wall and $cpu (user + sys) in seconds
timed() {
    /usr/bin/time -f '%e %U %S' -o "$OUT/time" "$@"
    read -r wall u s <"$OUT/time"
    cpu=$(echo "$u + $s" | bc -l)
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"

train_w=() train_c=() pred_w=() pred_c=()
for r in $(seq "$REPEATS"); do
    timed "$BIN" sentiment train --model fasttext --all --data "$DATA" --out "$OUT/ft.mm" >/dev/null 2>&1
    train_w+=("$wall") train_c+=("$cpu")
    timed "$BIN" sentiment predict --model "$OUT/ft.mm" --file "$OUT/texts10.txt" --json >/dev/null
    pred_w+=("$wall") pred_c+=("$cpu")
done
m() { printf '%s\n' "$@" | median; }
tw=$(m "${train_w[@]}") tc=$(m "${train_c[@]}") pw=$(m "${pred_w[@]}") pc=$(m "${pred_c[@]}")
printf 'fasttext training (rt-polarity, %d texts, 5 epochs, whole process), median of %d: %.2f s wall, %.2f CPU s\n' \
    "$N" "$REPEATS" "$tw" "$tc"
printf 'fasttext inference (predict --file, %d texts, whole process), median of %d: %.2f s wall = %.0f sentences/s; %.2f CPU s = %.0f sentences per CPU second\n' \
    "$N10" "$REPEATS" "$pw" "$(echo "$N10 / $pw" | bc -l)" "$pc" "$(echo "$N10 / $pc" | bc -l)"

timed "$BIN" sentiment train --model cnn --all --data "$DATA" --max-len "$MAXLEN" --epochs "$EPOCHS" --json \
    --out "$OUT/cnn.mm" 2>/dev/null >"$OUT/cnn_mm.jsonl"
mm_cpu=$cpu
mm_epoch=$(grep -o '"seconds":[0-9.e]*' "$OUT/cnn_mm.jsonl" | cut -d: -f2 | median)
timed /usr/bin/python3 bench/sentiment_cnn_torch.py "$DATA" --epochs "$EPOCHS" --max-len "$MAXLEN" --threads "$THREADS" \
    >"$OUT/cnn_torch.jsonl"
pt_cpu=$cpu
pt_epoch=$(grep -o '"median_epoch_seconds": [0-9.e]*' "$OUT/cnn_torch.jsonl" | cut -d' ' -f2)
printf 'Kim CNN training, median seconds per epoch over %d epochs (%d texts, length %d, %d threads):\n' \
    "$EPOCHS" "$N" "$MAXLEN" "$THREADS"
printf '  mediaml %.2f s   pytorch %.2f s   mediaml is %.2fx faster\n' "$mm_epoch" "$pt_epoch" \
    "$(echo "$pt_epoch / $mm_epoch" | bc -l)"
printf '  whole process CPU seconds (user + sys, including start-up and data preparation): mediaml %.1f, pytorch %.1f\n' \
    "$mm_cpu" "$pt_cpu"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
