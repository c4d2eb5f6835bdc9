#!/usr/bin/env bash
# End-to-end tests of `mediaml textgen import-gpt2` on tests/fixtures/gpt2_tiny (a random 2-layer
# GPT-2 in Hugging Face's layout): the text and --json reports, the imported file working with
# `textgen generate` (identical text with and without the KV cache) and `summary`, and errors
# (usage: exit 2; bad checkpoints: exit 1 with the tensor named; nothing written on failure).
# Usage: bash tests/cli_textgen_import.sh /path/to/mediaml
# Needs only bash, coreutils, grep and sed.
set -u
BIN=${1:?usage: cli_textgen_import.sh /path/to/mediaml}
. "$(dirname "$0")/shell_helpers.sh"
FX=$SRC/tests/fixtures/gpt2_tiny
export MEDIAML_THREADS=${MEDIAML_THREADS:-1}

# ---- import
expect_ok "help" "$BIN" textgen import-gpt2 --help
check "help names the flags" grep -q -- "--tokenizer-dir" "$TMP/out"
expect_ok "import (text report)" "$BIN" textgen import-gpt2 --checkpoint "$FX" --out "$TMP/tiny.mm"
check "report: sizes" grep -q "2 layers, 2 heads, width 32, MLP 128 (gelu_tanh), 64 positions, vocabulary 300" "$TMP/out"
check "report: tokenizer" grep -q "300 tokens, stored in the model" "$TMP/out"
check "model file written" test -s "$TMP/tiny.mm"
expect_ok "import --json --context 32 --tokenizer-dir" "$BIN" textgen import-gpt2 --checkpoint "$FX/model.safetensors" \
    --tokenizer-dir "$FX" --out "$TMP/ctx.mm" --context 32 --json
check "json: one object with context 32 and textgen true" \
    grep -Eq '^\{"out":.*"context":32,"head":"softmax","params":46720,"tokenizer_vocab":300,"textgen":true' "$TMP/out"
expect_ok "import --logits" "$BIN" textgen import-gpt2 --checkpoint "$FX" --out "$TMP/logits.mm" --logits --json
check "json: logits head, not a textgen model" grep -q '"head":"logits".*"textgen":false' "$TMP/out"
expect_ok "summary of the imported model" "$BIN" summary "$TMP/tiny.mm"
check "summary lists the attention and the tied head" grep -q "h1_attn" "$TMP/out"

# ---- generation from the imported model
expect_ok "generate (KV cache)" "$BIN" textgen generate --model "$TMP/tiny.mm" --prompt "First Citizen:" --max-tokens 40 --seed 3
cp "$TMP/out" "$TMP/gen_cache"
expect_ok "generate (no cache)" "$BIN" textgen generate --model "$TMP/tiny.mm" --prompt "First Citizen:" --max-tokens 40 --seed 3 --no-cache
check "same text with and without the cache" cmp -s "$TMP/out" "$TMP/gen_cache"
check "the prompt is echoed" grep -q "^First Citizen:" "$TMP/gen_cache"
expect_ok "generate past the context (32)" "$BIN" textgen generate --model "$TMP/ctx.mm" --prompt "First" --max-tokens 80 --seed 1

# ---- errors
expect_fail "no --checkpoint" 2 "--checkpoint DIR is required" "$BIN" textgen import-gpt2 --out "$TMP/x.mm"
expect_fail "no --out" 2 "--out FILE is required" "$BIN" textgen import-gpt2 --checkpoint "$FX"
expect_fail "bad --context" 2 "--context must be at least 1" "$BIN" textgen import-gpt2 --checkpoint "$FX" --out "$TMP/x.mm" --context 0
expect_fail "unknown flag" 2 "unknown option|unknown flag|unrecognized" "$BIN" textgen import-gpt2 --checkpoint "$FX" --out "$TMP/x.mm" --bogus
expect_fail "context above n_positions" 1 "context 65 outside 1..n_positions \(64\)" \
    "$BIN" textgen import-gpt2 --checkpoint "$FX" --out "$TMP/x.mm" --context 65
expect_fail "missing checkpoint" 1 "no such file or directory" "$BIN" textgen import-gpt2 --checkpoint "$TMP/nope" --out "$TMP/x.mm"
mkdir -p "$TMP/bad"
cp "$FX/model.safetensors" "$FX/vocab.json" "$FX/merges.txt" "$TMP/bad/"
sed 's/"n_embd": 32/"n_embd": 64/' "$FX/config.json" >"$TMP/bad/config.json"
expect_fail "config/tensor mismatch names the tensor" 1 "n_embd is 64 but tensor 'wte.weight'" \
    "$BIN" textgen import-gpt2 --checkpoint "$TMP/bad" --out "$TMP/x.mm"
cp "$FX/config.json" "$TMP/bad/config.json"
head -c 50000 "$FX/model.safetensors" >"$TMP/bad/model.safetensors"
expect_fail "truncated checkpoint" 1 "model.safetensors" "$BIN" textgen import-gpt2 --checkpoint "$TMP/bad" --out "$TMP/x.mm"
check "nothing written after failures" test ! -e "$TMP/x.mm"

finish
