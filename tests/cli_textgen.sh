#!/usr/bin/env bash
# End-to-end tests of `mediaml textgen` (train, generate, eval): flags and usage errors, tiny
# training runs (seconds), --json, --resume, deterministic and valid-UTF-8 generation with and
# without the KV cache, BPE / GPT-2 / LSTM variants, and bad inputs (missing files, invalid
# UTF-8, unknown characters, corrupt tokenizer metadata).
# Usage: bash tests/cli_textgen.sh /path/to/mediaml
# Data: $MEDIAML_DATA, else $MEDIAML_SOURCE_DIR/../shared/data (tinyshakespeare, gpt2-tokenizer).
# Needs only bash, coreutils, grep and sed.
set -u
BIN=${1:?usage: cli_textgen.sh /path/to/mediaml}
. "$(dirname "$0")/shell_helpers.sh"
DATA=$DATA_ROOT
SHAKES=$DATA/tinyshakespeare/input.txt
export MEDIAML_THREADS=${MEDIAML_THREADS:-1}
# valid UTF-8: no line fails to match '.*' in a UTF-8 locale
utf8_ok() { ! LC_ALL=C.UTF-8 grep -aqxv '.*' "$1"; }

# --- help and usage errors (no data needed)
for c in "textgen --help" "textgen train --help" "textgen generate --help" "textgen eval --help"; do
    run "$BIN" $c
    check "mediaml $c" bash -c '[ "$1" -eq 0 ] && grep -q "^Usage: mediaml" "$2"' _ "$rc" "$TMP/out"
done
run "$BIN" --help
check "top-level help lists textgen" has "textgen generate"
expect_fail "textgen without subcommand" 2 "missing subcommand" "$BIN" textgen
expect_fail "textgen unknown subcommand" 2 "unknown subcommand 'fly'" "$BIN" textgen fly
expect_fail "train needs --data" 2 "--data FILE is required" "$BIN" textgen train --out "$TMP/m.mm"
expect_fail "train needs --out" 2 "--out FILE is required" "$BIN" textgen train --data x.txt
expect_fail "train unknown tokenizer" 2 "unknown tokenizer 'words'" "$BIN" textgen train --data x --out y --tokenizer words
expect_fail "train width/heads" 2 "not divisible" "$BIN" textgen train --data x --out y --width 30 --heads 4
expect_fail "train --steps 0" 2 "--steps must be at least 1" "$BIN" textgen train --data x --out y --steps 0
expect_fail "train --steps and --epochs" 2 "not both" "$BIN" textgen train --data x --out y --steps 5 --epochs 1
expect_fail "train --vocab-size for char" 2 "bpe only" "$BIN" textgen train --data x --out y --vocab-size 300
expect_fail "train unknown arch" 2 "unknown --arch 'rnn'" "$BIN" textgen train --data x --out y --arch rnn
expect_fail "train bad --dropout" 2 "--dropout must be in" "$BIN" textgen train --data x --out y --dropout 1
expect_fail "train unknown option" 2 "unknown option '--colour'" "$BIN" textgen train --data x --out y --colour
expect_fail "generate needs --model" 2 "--model FILE is required" "$BIN" textgen generate --prompt hi
expect_fail "generate --max-tokens 0" 2 "--max-tokens must be at least 1, got 0" "$BIN" textgen generate --model m --max-tokens 0
expect_fail "generate --max-tokens -5" 2 "--max-tokens must be at least 1, got -5" "$BIN" textgen generate --model m --max-tokens -5
expect_fail "generate --max-tokens abc" 2 "expects an integer" "$BIN" textgen generate --model m --max-tokens abc
expect_fail "generate --top-p 0" 2 "--top-p must be in" "$BIN" textgen generate --model m --top-p 0
expect_fail "generate --temperature -1" 2 "--temperature must not be negative" "$BIN" textgen generate --model m --temperature -1
expect_fail "generate --top-k -1" 2 "--top-k must not be negative" "$BIN" textgen generate --model m --top-k -1
expect_fail "generate missing model file" 1 "^mediaml: .*no-such.mm" "$BIN" textgen generate --model "$TMP/no-such.mm"
expect_fail "train missing data file" 1 "^mediaml: .*no-such.txt: cannot open: No such file" "$BIN" textgen train --data "$TMP/no-such.txt" --out "$TMP/m.mm"
printf 'abc\377def\n' >"$TMP/bad.txt"
expect_fail "train on invalid UTF-8" 1 "not UTF-8 text.*byte offset 3" "$BIN" textgen train --data "$TMP/bad.txt" --out "$TMP/m.mm"
: >"$TMP/empty.txt"
expect_fail "train on an empty file" 1 "empty" "$BIN" textgen train --data "$TMP/empty.txt" --out "$TMP/m.mm"
printf 'short text\n' >"$TMP/short.txt"
expect_fail "train on too little text" 1 "fewer than context \+ 1" "$BIN" textgen train --data "$TMP/short.txt" --out "$TMP/m.mm" --context 32
expect_fail "generate on a text file" 1 "^mediaml: " "$BIN" textgen generate --model "$TMP/short.txt"

if [ ! -f "$SHAKES" ]; then
    echo "skip: $SHAKES not found (set MEDIAML_DATA)"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
fi

# --- a tiny char model (seconds)
M=$TMP/tiny.mm
BASE=(--data "$SHAKES" --limit 20000 --context 16 --batch-size 8 --lr 0.01)
TINY=("${BASE[@]}" --layers 1 --heads 2 --width 16)
expect_ok "train a tiny char GPT" "$BIN" textgen train "${TINY[@]}" --steps 30 --eval-every 10 --out "$M"
check "one line per evaluation" test "$(count '^step (10|20|30)/30 - loss: [0-9.]+ - val_loss: [0-9.]+')" -eq 3
check "header on stderr" has "Model: gpt, 1 layers, 2 heads, width 16, context 16" "$TMP/err"
check "saved note" has "Saved .*tiny.mm \(step 30, val_loss" "$TMP/err"
check "model file written" test -s "$M"
val=$(sed -n 's/^step 30\/30 .* val_loss: \([0-9.]*\) .*/\1/p' "$TMP/out")
expect_ok "eval on the same split" "$BIN" textgen eval --model "$M" --data "$SHAKES"
check "eval matches training's val_loss ($val)" has "^val_loss: $val nats/token"
expect_ok "train --json" "$BIN" textgen train "${TINY[@]}" --steps 20 --eval-every 10 --json --out "$TMP/j.mm"
check "JSON lines" test "$(count '^\{"step":[12]0,"steps":20,"loss":[0-9.e-]+,"val_loss":[0-9.e-]+,.*"tokens_per_second":')" -eq 2
check "JSON: float32 matmuls by default" test "$(count '"matmul_dtype":"float32"\}$')" -eq 2
expect_fail "unknown --matmul-precision" 2 "unknown matmul precision 'fast' \(expected highest or medium\)" \
    "$BIN" textgen train "${TINY[@]}" --steps 5 --out "$TMP/p.mm" --matmul-precision fast
MEDIAML_MATMUL_PRECISION=fast expect_fail "unknown MEDIAML_MATMUL_PRECISION" 2 \
    "MEDIAML_MATMUL_PRECISION: unknown matmul precision 'fast'" "$BIN" textgen train "${TINY[@]}" --steps 5 --out "$TMP/p.mm"
# bfloat16 matmuls where the CPU has AMX or AVX512-BF16 (width 32: the matmuls are whole tiles), else a note
expect_ok "train --matmul-precision medium" "$BIN" textgen train "${BASE[@]}" --layers 1 --heads 2 --width 32 \
    --steps 20 --eval-every 20 --json --out "$TMP/p.mm" --matmul-precision medium
if has "no bfloat16 unit (AMX or AVX512-BF16); matmuls stay float32" "$TMP/err"; then
    check "medium without a bfloat16 unit: float32" has '"matmul_dtype":"float32"'
else
    check "medium with a bfloat16 unit: bfloat16" has '"matmul_dtype":"bfloat16"'
fi
check "medium trains (finite val_loss)" has '"val_loss":[0-9]'

# resume: a stopped run continues where it stopped
expect_ok "resume to 50 steps" "$BIN" textgen train "${TINY[@]}" --steps 50 --eval-every 10 --out "$M" --resume --width 64
check "resume note" has "Resuming .*tiny.mm at step 30 of 50" "$TMP/err"
check "ignored flag noted" has "note: --width is ignored when resuming" "$TMP/err"
check "resumed steps" test "$(count '^step (40|50)/50 ')" -eq 2
expect_ok "resume when done" "$BIN" textgen train "${TINY[@]}" --steps 50 --out "$M" --resume
check "nothing to train" has "already been trained for 50 steps" "$TMP/err"

# generation: deterministic per seed, valid UTF-8, streamed
expect_ok "generate" "$BIN" textgen generate --model "$M" --prompt "ROMEO:" --max-tokens 60 --seed 5
cp "$TMP/out" "$TMP/g1"
check "output starts with the prompt" bash -c 'head -c 6 "$1" | grep -q "^ROMEO:"' _ "$TMP/g1"
check "prompt + 60 characters" test "$(wc -m <"$TMP/g1")" -ge 66
check "valid UTF-8" utf8_ok "$TMP/g1"
expect_ok "generate again, same seed" "$BIN" textgen generate --model "$M" --prompt "ROMEO:" --max-tokens 60 --seed 5
check "same seed, same text" cmp -s "$TMP/g1" "$TMP/out"
expect_ok "generate, other seed" "$BIN" textgen generate --model "$M" --prompt "ROMEO:" --max-tokens 60 --seed 6
check "other seed, other text" bash -c '! cmp -s "$1" "$2"' _ "$TMP/g1" "$TMP/out"
expect_ok "generate --no-echo" "$BIN" textgen generate --model "$M" --prompt "ROMEO:" --max-tokens 60 --seed 5 --no-echo
check "--no-echo drops the prompt" bash -c 'cmp -s <(tail -c +7 "$1") "$2"' _ "$TMP/g1" "$TMP/out"
# greedy: cached and uncached agree while the window is not full (16 - 6 = 10 tokens)
run "$BIN" textgen generate --model "$M" --prompt "ROMEO:" --max-tokens 30 --temperature 0 --verbose
cp "$TMP/out" "$TMP/c1"
check "verbose speed (cache)" has "generated 30 tokens in .* tok/s \(cache\)" "$TMP/err"
run "$BIN" textgen generate --model "$M" --prompt "ROMEO:" --max-tokens 30 --temperature 0 --verbose --no-cache
check "verbose speed (no cache)" has "generated 30 tokens in .* tok/s \(no cache\)" "$TMP/err"
check "cache and no cache agree within the context" cmp -s <(head -c 16 "$TMP/c1") <(head -c 16 "$TMP/out")
expect_ok "sampling flags" "$BIN" textgen generate --model "$M" --prompt "To be" --max-tokens 20 --temperature 0.7 --top-k 5 --top-p 0.9
long=$(printf 'the %.0s' $(seq 1 20))
expect_ok "prompt longer than the context" "$BIN" textgen generate --model "$M" --prompt "$long" --max-tokens 5
check "long prompt note" has "note: the prompt has 80 tokens; the model sees only its last 16" "$TMP/err"
expect_ok "empty prompt starts from a newline" "$BIN" textgen generate --model "$M" --max-tokens 10
printf 'First Citizen:\nBefore' >"$TMP/prompt.txt"
expect_ok "--prompt-file" "$BIN" textgen generate --model "$M" --prompt-file "$TMP/prompt.txt" --max-tokens 10
check "--prompt-file echoes it" has "^Before"

# bad prompts and model files
expect_fail "unknown character in the prompt" 1 "character '€' \(U\+20AC, byte offset 4\).*not in the model's vocabulary" \
    "$BIN" textgen generate --model "$M" --prompt "cost€"
expect_fail "invalid UTF-8 prompt" 1 "prompt is not valid UTF-8.*byte offset 2" "$BIN" textgen generate --model "$M" --prompt $'ab\xffc'
sed 's/\\"type\\":\\"char\\"/\\"type\\":\\"chaR\\"/' "$M" >"$TMP/corrupt.mm"
check "corrupted copy differs" bash -c '! cmp -s "$1" "$2"' _ "$M" "$TMP/corrupt.mm"
expect_fail "corrupt tokenizer metadata" 1 "bad tokenizer metadata" "$BIN" textgen generate --model "$TMP/corrupt.mm"
head -c 3000 "$M" >"$TMP/truncated.mm"
expect_fail "truncated model file" 1 "^mediaml: " "$BIN" textgen generate --model "$TMP/truncated.mm"

# --- variants: trained BPE, LSTM, GPT-2's tokenizer, sinusoidal positions, --epochs
expect_ok "train a BPE model" "$BIN" textgen train "${TINY[@]}" --tokenizer bpe --vocab-size 300 --steps 10 --eval-every 10 --out "$TMP/bpe.mm"
check "BPE vocabulary" has "bpe tokenizer, vocabulary 300" "$TMP/err"
expect_ok "BPE generates from a prompt with unseen characters" "$BIN" textgen generate --model "$TMP/bpe.mm" --prompt "中文 café" --max-tokens 40 --seed 1
check "BPE output is valid UTF-8" utf8_ok "$TMP/out"
expect_ok "train an LSTM" "$BIN" textgen train "${BASE[@]}" --arch lstm --layers 1 --width 16 --steps 10 --eval-every 10 --out "$TMP/lstm.mm"
check "LSTM header" has "Model: lstm, 1 layers of 16 units" "$TMP/err"
expect_fail "LSTM has no heads" 2 "apply to --arch gpt only" "$BIN" textgen train "${TINY[@]}" --arch lstm --out "$TMP/x.mm"
expect_ok "LSTM generates" "$BIN" textgen generate --model "$TMP/lstm.mm" --prompt "ROMEO:" --max-tokens 20
check "LSTM: no KV cache note" has "note: no KV cache for this model" "$TMP/err"
expect_ok "sinusoidal positions, --epochs" "$BIN" textgen train "${TINY[@]}" --position sinusoidal --epochs 0.05 --eval-every 100 --out "$TMP/sin.mm"
check "--epochs 0.05 of 18,000 tokens at 8 x 16 per step = 8 steps" has "^step 8/8 "
if [ -f "$DATA/gpt2-tokenizer/encoder.json" ]; then
    expect_ok "train with GPT-2's tokenizer" "$BIN" textgen train "${TINY[@]}" --tokenizer gpt2 --tokenizer-dir "$DATA/gpt2-tokenizer" \
        --steps 2 --eval-every 2 --val-windows 4 --out "$TMP/gpt2.mm"
    check "GPT-2 vocabulary" has "gpt2 tokenizer, vocabulary 50257" "$TMP/err"
    expect_ok "GPT-2-tokenizer model generates" "$BIN" textgen generate --model "$TMP/gpt2.mm" --prompt "Hello" --max-tokens 8
    check "GPT-2 output is valid UTF-8" utf8_ok "$TMP/out"
    expect_ok "GPT-2 empty prompt starts from <|endoftext|>" "$BIN" textgen generate --model "$TMP/gpt2.mm" --max-tokens 3
else
    echo "skip: GPT-2 tokenizer files not found"
fi

finish
