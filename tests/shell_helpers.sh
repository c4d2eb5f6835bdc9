# Shared helpers for the CLI end-to-end tests (tests/cli_*.sh): sourced, not run.
# Sets SRC (the source tree), DATA_ROOT ($MEDIAML_DATA, else ../shared/data beside it) and TMP
# (removed on exit), and defines:
#   run CMD...                          stdout -> $TMP/out, stderr -> $TMP/err, status -> $rc
#   expect_ok NAME CMD...               passes when CMD exits 0
#   expect_fail NAME STATUS RE CMD...   passes when CMD exits STATUS and stderr matches RE
#   check NAME CONDITION...             passes when CONDITION (a command) succeeds
#   has RE [FILE] / count RE [FILE]     grep -E on the last stdout (or FILE)
#   at_least NAME VALUE MIN             passes when VALUE >= MIN (decimals)
#   json_field KEY [FILE]               the last number after "KEY": in the last stdout (or FILE)
#   finish                              prints the totals; exit status 0 only if nothing failed
SRC=${MEDIAML_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
DATA_ROOT=${MEDIAML_DATA:-$SRC/../shared/data}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0

pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() {
    failed=$((failed + 1))
    echo "FAIL $1"
    for f in "$TMP/out" "$TMP/err"; do [ -s "$f" ] && sed 's/^/     | /' "$f" | head -15; done
}
run() { "$@" >"$TMP/out" 2>"$TMP/err"; rc=$?; }
expect_ok() {
    local name=$1; shift
    run "$@"
    if [ "$rc" -eq 0 ]; then pass "$name"; else fail "$name (exit $rc)"; fi
}
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
at_least() { check "$1 ($2 >= $3)" awk -v v="$2" -v m="$3" 'BEGIN { exit !(v + 0 >= m + 0) }'; }
json_field() { grep -o "\"$1\":[-0-9.e]*" "${2:-$TMP/out}" | tail -1 | cut -d: -f2; }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
