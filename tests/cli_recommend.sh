#!/usr/bin/env bash
# End-to-end tests of `mediaml recommend` on MovieLens-100k (small settings): train, eval, top
# and similar for mf, neumf and pop, and bad inputs.
# Usage: bash tests/cli_recommend.sh /path/to/mediaml
# Data: $MEDIAML_DATA/movielens-100k, else $MEDIAML_SOURCE_DIR/../shared/data/movielens-100k.
set -u
BIN=${1:?usage: cli_recommend.sh /path/to/mediaml}
. "$(dirname "$0")/shell_helpers.sh"
DATA=$DATA_ROOT/movielens-100k
export MEDIAML_THREADS=${MEDIAML_THREADS:-2}

R="$BIN recommend"

# --- help and usage errors (no data needed)
for c in "recommend --help" "recommend train --help" "recommend eval --help" "recommend top --help" "recommend similar --help"; do
    run "$BIN" $c
    check "mediaml $c" bash -c '[ "$1" -eq 0 ] && grep -q "^Usage: mediaml" "$2"' _ "$rc" "$TMP/out"
done
run "$BIN" --help
check "mediaml --help lists recommend" has "recommend train"
expect_fail "recommend without subcommand" 2 "missing subcommand" $R
expect_fail "recommend unknown subcommand" 2 "unknown subcommand 'bogus'" $R bogus
expect_fail "train --model xyz" 2 "unknown model 'xyz'" $R train --model xyz --out "$TMP/x.st"
expect_fail "train without --model" 2 "--model is required" $R train --out "$TMP/x.st"
expect_fail "train without --out" 2 "--out FILE is required" $R train --model mf
expect_fail "train --split u9" 2 "unknown split 'u9'" $R train --model mf --split u9 --out "$TMP/x.st"
expect_fail "train --epochs 0" 2 "--epochs must be at least 1" $R train --model mf --epochs 0 --out "$TMP/x.st"
expect_fail "train --lr abc" 2 "--lr expects a number" $R train --model mf --lr abc --out "$TMP/x.st"
expect_fail "train --mlp 15,8" 2 "--mlp expects" $R train --model neumf --mlp 15,8 --out "$TMP/x.st"
expect_fail "top without --user" 2 "--user U is required" $R top --model "$TMP/x.st"
expect_fail "similar without --model" 2 "--model FILE is required" $R similar --item 1
expect_fail "top --k 0" 2 "--k must be in" $R top --model "$TMP/x.st" --user 1 --k 0
expect_fail "missing data directory" 1 "data directory /nonexistent/ml not found" \
    $R train --model mf --data /nonexistent/ml --out "$TMP/x.st"
expect_fail "eval of a missing model file" 1 "$TMP/none.st" $R eval --model "$TMP/none.st"
printf 'not a model' >"$TMP/junk.st"
expect_fail "eval of a junk file" 1 "junk.st" $R eval --model "$TMP/junk.st"

if [ ! -r "$DATA/u.data" ]; then
    echo "skip: $DATA/u.data not found (set MEDIAML_DATA)"
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
fi

# --- malformed ratings: the message names file:line
mkdir -p "$TMP/bad"
head -n 4 "$DATA/u.data" >"$TMP/bad/u.data"
printf '7\t8\tfive\t881250949\n' >>"$TMP/bad/u.data"
tail -n +5 "$DATA/u.data" | head -n 1000 >>"$TMP/bad/u.data"
expect_fail "malformed u.data line" 1 "bad/u\.data:5:" $R train --model pop --data "$TMP/bad" --out "$TMP/x.st"
mkdir -p "$TMP/nosplit"
head -n 2000 "$DATA/u.data" >"$TMP/nosplit/u.data"
expect_fail "missing split files" 1 "u1\.base" $R train --model mf --data "$TMP/nosplit" --split u1 --out "$TMP/x.st"

# --- mf: train, eval, top, similar
expect_ok "train mf (u1, 2 epochs)" $R train --model mf --data "$DATA" --epochs 2 --factors 8 --out "$TMP/mf.st"
check "train mf prints epochs" bash -c '[ "$(grep -c "^Epoch [12]/2 .*test RMSE" "$1")" -eq 2 ]' _ "$TMP/out"
check "train mf prints RMSE and the baseline" has "^RMSE +[0-9.]+ +-$"
check "train mf reports the settings" has "factors 8" "$TMP/err"
check "model file written" test -s "$TMP/mf.st"
expect_ok "eval mf" $R eval --model "$TMP/mf.st"
check "eval mf: RMSE < 1.2" awk '/^RMSE/ { ok = $2 < 1.2 } END { exit !ok }' "$TMP/out"
check "eval mf: HR@10 beside popularity" has "^HR@10 \(99 sampled negatives\) +[0-9.]+ +[0-9.]+$"
check "eval mf: full-ranking recall" has "^Recall@10 \(full ranking\)"
expect_ok "eval mf --json" $R eval --model "$TMP/mf.st" --json
check "eval --json fields" has '^\{"model":"mf".*"rmse":[0-9.]+,"mae":.*"ncf":\{"hr@10":.*"popularity_ncf":'
expect_ok "eval mf on split u2" $R eval --model "$TMP/mf.st" --split u2
check "eval on another split notes it" has "trained on split u1" "$TMP/err"
expect_ok "train mf --json" $R train --model mf --data "$DATA" --epochs 1 --factors 4 --json --out "$TMP/mf1.st"
check "train --json: JSON lines only" bash -c '[ "$(grep -vc "^{" "$1")" -eq 0 ] && grep -q "\"test_rmse\"" "$1"' _ "$TMP/out"

expect_ok "top mf" $R top --model "$TMP/mf.st" --user 196 --k 5
check "top: 5 items" bash -c '[ "$(grep -Ec "^ +[0-9]+\. .*\[item [0-9]+\]  predicted rating" "$1")" -eq 5 ]' _ "$TMP/out"
check "top: titles" has "\(19[0-9][0-9]\) \[item"
check "top: reasons" has "because you rated"
expect_ok "top mf --json" $R top --model "$TMP/mf.st" --user 196 --k 10 --json
# no recommended item is one the user rated
grep -o '"rank":[0-9]*,"item":[0-9]*' "$TMP/out" | sed 's/.*"item"://' >"$TMP/recs"
awk -F'\t' '$1 == 196 { print $2 }' "$DATA/u.data" >"$TMP/rated"
check "top --json: 10 items" bash -c '[ "$(wc -l <"$1")" -eq 10 ]' _ "$TMP/recs"
check "top excludes rated items" bash -c '! grep -qxFf "$1" "$2"' _ "$TMP/rated" "$TMP/recs"
expect_ok "top for an unknown user" $R top --model "$TMP/mf.st" --user 999999 --k 3
check "unknown user: popularity, marked" bash -c 'grep -q "not in the model" "$1" && grep -q "Star Wars (1977) \[item 50\]  popularity 583" "$1"' _ "$TMP/out"
expect_ok "top unknown user --json" $R top --model "$TMP/mf.st" --user 999999 --k 3 --json
check "unknown user --json marked" has '"known":false,"source":"popularity"'

expect_ok "similar mf" $R similar --model "$TMP/mf.st" --item 50 --k 5
check "similar: 5 items" bash -c '[ "$(grep -Ec "^ +[0-9]+\. .*\[item [0-9]+\]  -?[0-9.]+$" "$1")" -eq 5 ]' _ "$TMP/out"
check "similar: the item itself is not listed" bash -c '! grep -q "\[item 50\]  " "$1"' _ "$TMP/out"
expect_ok "similar --json" $R similar --model "$TMP/mf.st" --item 50 --k 3 --json
check "similar --json" has '^\{"item":50,"title":"Star Wars \(1977\)","model":"mf","similar":\[\{"rank":1'
expect_fail "similar: unknown item" 1 "unknown item 99999" $R similar --model "$TMP/mf.st" --item 99999
expect_ok "summary of a recommend model" "$BIN" summary "$TMP/mf.st"

# --- neumf and pop
expect_ok "train neumf (1 epoch)" $R train --model neumf --data "$DATA" --epochs 1 --factors 8 --mlp 16,8 --out "$TMP/nm.st"
check "neumf: HR@10 per epoch" has "^Epoch 1/1 - [0-9]+ examples .*HR@10: [0-9.]+ - NDCG@10"
check "neumf: default tables normal(0.01), dense" has "embeddings random_normal\(0\.01\) with dense updates" "$TMP/err"
check "neumf: NCF HR beside popularity" has "^HR@10 \(99 sampled negatives\) +[0-9.]+ +0\.4030$"
expect_ok "top neumf" $R top --model "$TMP/nm.st" --user 1 --k 3
check "top neumf: 3 items with scores" bash -c '[ "$(grep -Ec "^ +[0-9]+\. .*  score 0\.[0-9]+$" "$1")" -eq 3 ]' _ "$TMP/out"
expect_ok "train neumf, sparse uniform(0.05) tables" $R train --model neumf --data "$DATA" --epochs 1 --factors 8 \
    --mlp 16,8 --sparse-embeddings --init uniform --init-scale 0.05 --out "$TMP/nms.st"
check "neumf: the start line names the tables' setup" has "embeddings uniform\(0\.05\) with sparse updates" "$TMP/err"
check "neumf: sparse run evaluated" has "^HR@10 \(99 sampled negatives\) +[0-9.]+ +0\.4030$"
expect_fail "--dense-embeddings with --sparse-embeddings" 2 "exclude each other" \
    $R train --model neumf --dense-embeddings --sparse-embeddings --out "$TMP/x.st"
expect_fail "--init-scale 0" 2 "--init-scale must be positive" $R train --model neumf --init-scale 0 --out "$TMP/x.st"
expect_fail "--init glorot" 1 "unknown embeddings_initializer 'glorot'" \
    $R train --model neumf --data "$DATA" --init glorot --epochs 1 --out "$TMP/x.st"
expect_ok "train pop" $R train --model pop --data "$DATA" --out "$TMP/pop.st"
check "pop equals the baseline" awk '/^HR@10/ { ok = $(NF - 1) == $NF } END { exit !ok }' "$TMP/out"
expect_fail "similar with a pop model" 1 "no item embeddings" $R similar --model "$TMP/pop.st" --item 50
expect_ok "top pop" $R top --model "$TMP/pop.st" --user 196 --k 3

finish
