# Helpers for the CLI shell tests (sourced; not a test itself, hence not named cli_*.sh).
# The caller sets TMP (a scratch directory). Counts in $passed / $failed; finish with
# `lib_cli_done`.
passed=0
failed=0

pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() {
    failed=$((failed + 1))
    echo "FAIL $1"
    for f in "$TMP/out" "$TMP/err"; do [ -s "$f" ] && sed 's/^/     | /' "$f" | head -15; done
}
# run CMD...: stdout -> $TMP/out, stderr -> $TMP/err, exit status -> $rc
run() { "$@" >"$TMP/out" 2>"$TMP/err"; rc=$?; }
expect_ok() {
    local name=$1; shift
    run "$@"
    if [ "$rc" -eq 0 ]; then pass "$name"; else fail "$name (exit $rc)"; fi
}
# expect_fail NAME STATUS STDERR_REGEX CMD...: exits with STATUS and explains on stderr
expect_fail() {
    local name=$1 status=$2 re=$3; shift 3
    run "$@"
    if [ "$rc" -eq "$status" ] && grep -Eq -- "$re" "$TMP/err"; then pass "$name"
    else fail "$name (exit $rc, wanted $status and stderr matching '$re')"; fi
}
check() {
    local name=$1; shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
has() { grep -Eq -- "$1" "${2:-$TMP/out}"; }
count() { grep -Ec -- "$1" "${2:-$TMP/out}"; }
# at_least NAME VALUE MIN: VALUE >= MIN (decimals)
at_least() { check "$1 ($2 >= $3)" awk -v v="$2" -v m="$3" 'BEGIN { exit !(v + 0 >= m + 0) }'; }
# json_field KEY [FILE]: the last number after "KEY": in FILE (the result line comes last)
json_field() { grep -o "\"$1\":[-0-9.e]*" "${2:-$TMP/out}" | tail -1 | cut -d: -f2; }
lib_cli_done() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
