#!/usr/bin/env bash
# End-to-end tests of `mediaml vision` and `mediaml summary` on MNIST (small --limit runs).
# Usage: bash tests/cli_vision.sh /path/to/mediaml
# Data: $MEDIAML_DATA/mnist, else $MEDIAML_SOURCE_DIR/../shared/data/mnist. Needs only
# bash, coreutils, gzip, grep, sed and awk (PNG test images are written with gzip + awk).
set -u
BIN=${1:?usage: cli_vision.sh /path/to/mediaml}
. "$(dirname "$0")/shell_helpers.sh"
DATA=$DATA_ROOT/mnist
export MEDIAML_THREADS=${MEDIAML_THREADS:-2}

# --- PNG writer: 8-bit grayscale, zlib stream from gzip's deflate, CRCs from gzip's trailer.
be32() {
    local v=$1
    printf "\\$(printf %03o $(((v >> 24) & 255)))\\$(printf %03o $(((v >> 16) & 255)))"
    printf "\\$(printf %03o $(((v >> 8) & 255)))\\$(printf %03o $((v & 255)))"
}
le_bytes_to_int() { od -An -v -tu1 | awk '{for (i = 1; i <= NF; i++) { v += $i * m; m *= 256 }} BEGIN {m = 1} END {printf "%.0f", v}'; }
crc32() { gzip -nc <"$1" | tail -c 8 | head -c 4 | le_bytes_to_int; }
adler32() { od -An -v -tu1 "$1" | awk 'BEGIN {a = 1; b = 0} {for (i = 1; i <= NF; i++) {a = (a + $i) % 65521; b = (b + a) % 65521}} END {printf "%.0f", b * 65536 + a}'; }
png_chunk() { # TYPE DATAFILE
    local body=$TMP/chunk.$1
    { printf '%s' "$1"; cat "$2"; } >"$body"
    be32 "$(wc -c <"$2")"
    cat "$body"
    be32 "$(crc32 "$body")"
}
# write_png OUT.png WIDTH HEIGHT PIXELS (WIDTH*HEIGHT bytes, row-major)
write_png() {
    local out=$1 w=$2 h=$3 pix=$4 r
    : >"$TMP/raw"
    for ((r = 0; r < h; r++)); do
        printf '\000' >>"$TMP/raw"
        tail -c +$((r * w + 1)) "$pix" | head -c "$w" >>"$TMP/raw"
    done
    { printf '\170\001'; gzip -nc <"$TMP/raw" | tail -c +11 | head -c -8; be32 "$(adler32 "$TMP/raw")"; } >"$TMP/idat"
    { be32 "$w"; be32 "$h"; printf '\010\000\000\000\000'; } >"$TMP/ihdr"
    : >"$TMP/iend"
    { printf '\211PNG\r\n\032\n'; png_chunk IHDR "$TMP/ihdr"; png_chunk IDAT "$TMP/idat"; png_chunk IEND "$TMP/iend"; } >"$out"
}
unpack() { if [ -f "$1.gz" ]; then gzip -dc "$1.gz"; else cat "$1"; fi; }

# --- help, version and usage errors (no data needed)
for c in "--help" "vision --help" "vision train --help" "vision eval --help" "vision predict --help" "summary --help"; do
    run "$BIN" $c
    check "mediaml $c" bash -c '[ "$1" -eq 0 ] && grep -q "^Usage: mediaml" "$2"' _ "$rc" "$TMP/out"
done
run "$BIN" vision train --help
check "train --help lists every flag" bash -c 'for f in --data --epochs --batch-size --out --validation-split --arch --lr --optimizer --momentum --seed --threads --limit --resume --early-stopping --json; do grep -q -- "$f" "$1" || exit 1; done' _ "$TMP/out"
run "$BIN" --version
check "--version" has "^mediaml [0-9]+\.[0-9]+"
expect_fail "unknown command" 2 "unknown command 'frobnicate'" "$BIN" frobnicate
expect_fail "unknown vision subcommand" 2 "unknown subcommand" "$BIN" vision frobnicate
expect_fail "unknown flag" 2 "unknown option '--bogus'" "$BIN" vision train --out "$TMP/x.st" --bogus
expect_fail "--epochs abc" 2 "--epochs expects an integer, got 'abc'" "$BIN" vision train --out "$TMP/x.st" --epochs abc
expect_fail "--lr 1e-3x" 2 "--lr expects a number" "$BIN" vision train --out "$TMP/x.st" --lr 1e-3x
expect_fail "--epochs 0" 2 "--epochs must be at least 1" "$BIN" vision train --out "$TMP/x.st" --epochs 0
expect_fail "missing --out" 2 "--out FILE is required" "$BIN" vision train --epochs 1
expect_fail "unknown optimizer" 2 "unknown optimizer" "$BIN" vision train --out "$TMP/x.st" --optimizer lion
expect_fail "missing flag value" 2 "--model needs a value" "$BIN" vision eval --model
expect_fail "no command" 2 "Usage" "$BIN"

if [ ! -d "$DATA" ]; then
    echo "skip: no MNIST at $DATA (set MEDIAML_DATA): data tests not run"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
fi

# --- bad inputs that need a library call
expect_fail "missing data dir" 1 "^mediaml: .*nope" "$BIN" vision train --data "$TMP/nope" --out "$TMP/x.st" --limit 100
expect_fail "missing model file" 1 "^mediaml: .*missing.st" "$BIN" vision eval --model "$TMP/missing.st" --data "$DATA" --limit 10
head -c 4096 /dev/urandom >"$TMP/garbage.st"
expect_fail "garbage model file (eval)" 1 "^mediaml: " "$BIN" vision eval --model "$TMP/garbage.st" --data "$DATA" --limit 10
expect_fail "garbage model file (summary)" 1 "^mediaml: " "$BIN" summary "$TMP/garbage.st"
cat >"$TMP/rgb.json" <<'EOF'
{"class_name":"Sequential","config":{"name":"rgb","layers":[
 {"class_name":"Flatten","config":{"input_shape":[32,32,3]}},
 {"class_name":"Dense","config":{"units":10,"activation":"softmax"}}]}}
EOF
expect_fail "--arch with the wrong input shape" 1 "takes input of shape 32x32x3 but the images are 28x28x1" \
    "$BIN" vision train --data "$DATA" --arch "$TMP/rgb.json" --out "$TMP/x.st" --limit 100
sed 's/32,32,3/28,28,1/; s/"units":10/"units":5/' "$TMP/rgb.json" >"$TMP/five.json"
expect_fail "--arch with too few outputs" 1 "has 5 output units but the data has 10 classes" \
    "$BIN" vision train --data "$DATA" --arch "$TMP/five.json" --out "$TMP/x.st" --limit 100

# --- train (default architecture), summary, eval
M=$TMP/model.safetensors
expect_ok "train --limit 2000 --epochs 1" "$BIN" vision train --data "$DATA" --limit 2000 --epochs 1 --batch-size 16 --out "$M"
check "train prints one line per epoch" [ "$(count '^Epoch 1/1 ')" -eq 1 ]
check "train prints the test result" has "^test_loss: [0-9.]+ - test_accuracy: [0-9.]+$"
check "model file exists" [ -s "$M" ]
run "$BIN" summary "$M"
check "summary shows 54,410 params" has "Total params: 54,410"
check "summary shows preprocessing and labels" bash -c 'grep -q "rescale 1/255" "$1" && grep -q "^Labels (10): 0, 1" "$1"' _ "$TMP/out"
expect_ok "eval --limit 500 --json" "$BIN" vision eval --model "$M" --data "$DATA" --limit 500 --json
acc=$(sed -n 's/.*"accuracy":\([0-9.eE+-]*\).*/\1/p' "$TMP/out")
check "eval accuracy > 0.8 (got ${acc:-none})" awk -v a="${acc:-0}" 'BEGIN {exit !(a > 0.8)}'
check "eval --json has 500 examples and a 10x10 confusion matrix" has '"examples":500,.*"confusion":\[(\[[0-9,]+\],){9}\[[0-9,]+\]\]'
run "$BIN" vision eval --model "$M" --data "$DATA" --limit 200 --top 3
check "eval text: accuracy, top-3, confusion matrix" bash -c 'grep -q "^accuracy: " "$1" && grep -q "^top-3 accuracy: " "$1" && grep -q "^Confusion matrix" "$1" && [ "$(grep -Ec "^[0-9] +[0-9]" "$1")" -eq 10 ]' _ "$TMP/out"

# --- predict: test image 0 of MNIST as a PNG, a wrong-size PNG, a file that is not a PNG
unpack "$DATA/t10k-images-idx3-ubyte" | tail -c +17 | head -c 784 >"$TMP/pix"
truth=$(unpack "$DATA/t10k-labels-idx1-ubyte" | tail -c +9 | head -c 1 | od -An -tu1 | tr -d ' ')
write_png "$TMP/digit.png" 28 28 "$TMP/pix"
head -c 1024 /dev/zero >"$TMP/pix32"
write_png "$TMP/big.png" 32 32 "$TMP/pix32"
expect_ok "predict digit.png" "$BIN" vision predict --model "$M" "$TMP/digit.png"
check "predict lists 3 classes" has "^$TMP/digit.png:( [0-9] \((0|1)\.[0-9]{4}\),){2} [0-9] \((0|1)\.[0-9]{4}\)$"
check "predict has the true class ($truth) in its top 3" has "[:,] $truth \("
expect_ok "predict --json --top 1" "$BIN" vision predict --model "$M" --top 1 --json "$TMP/digit.png" "$TMP/digit.png"
check "predict --json prints one line per image" [ "$(count '^\{"image":".*digit.png","predictions":\[\{"class":[0-9],"label":"[0-9]","probability":[0-9.e-]+\}\]\}$')" -eq 2 ]
expect_fail "predict on a wrong-size PNG" 1 "big.png is 32x32 but the model expects 28x28" "$BIN" vision predict --model "$M" "$TMP/big.png"
echo "not an image" >"$TMP/fake.png"
expect_fail "predict on a non-PNG file" 1 "^mediaml: .*fake.png" "$BIN" vision predict --model "$M" "$TMP/fake.png"
expect_fail "predict without images" 2 "no images" "$BIN" vision predict --model "$M"

# --- resume: 1 epoch, then --resume --epochs 2 runs epoch 2 only (JSON lines)
R=$TMP/resume.safetensors
expect_ok "train 1 epoch for resume" "$BIN" vision train --data "$DATA" --limit 300 --epochs 1 --out "$R"
expect_ok "train --resume --epochs 2 --json" "$BIN" vision train --data "$DATA" --limit 300 --epochs 2 --out "$R" --resume --json
check "resume runs epoch 2 only" bash -c '[ "$(grep -c "^{\"epoch\":2,\"epochs\":2,\"loss\":" "$1")" -eq 1 ] && ! grep -q "\"epoch\":1," "$1"' _ "$TMP/out"
check "resume prints the test result as JSON" has '^\{"test_loss":[0-9.e-]+,"test_accuracy":[0-9.e-]+\}$'
run "$BIN" summary "$R"
check "resumed model has 2 epochs" has "^Trained: 2 epochs"
expect_ok "--resume when already done" "$BIN" vision train --data "$DATA" --limit 300 --epochs 2 --out "$R" --resume
check "nothing trained when already done" bash -c '! grep -q "^Epoch" "$1" && grep -q "nothing to train" "$2"' _ "$TMP/out" "$TMP/err"

# --- validation split, early stopping, another optimizer, an architecture file
sed 's/32,32,3/28,28,1/' "$TMP/rgb.json" >"$TMP/mlp.json"
expect_ok "train --arch --validation-split --optimizer sgd --early-stopping" "$BIN" vision train --data "$DATA" --limit 300 \
    --epochs 2 --arch "$TMP/mlp.json" --validation-split 0.2 --optimizer sgd --lr 0.05 --momentum 0.9 --early-stopping 1 \
    --seed 7 --threads 1 --out "$TMP/mlp.st"
check "validation metrics in the epoch line" has "^Epoch 1/2 .* val_loss: [0-9.]+ - val_accuracy: [0-9.]+ "

finish
