# lib.sh — helpers for the shell tests (sourced). $DAM is the binary.
DAM=${DAM:-build/dam}
STORIES=third_party/models/stories260k
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
# check NAME COMMAND... : passes when the command succeeds
check() { name=$1; shift; if "$@" >/dev/null 2>&1; then ok "$name"; else fail "$name" "$*"; fi; }
# expect_error NAME CODE PATTERN -- ARGS... : dam ARGS exits with CODE, prints one
# line on stderr matching PATTERN, and nothing on stdout
expect_error() {
  name=$1; code=$2; pat=$3; shift 4
  "$DAM" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null; rc=$?
  if [ $rc -ne "$code" ]; then fail "$name" "exit $rc, wanted $code ($(head -c 300 "$TMP/err"))"; return; fi
  if [ "$(wc -l <"$TMP/err")" -ne 1 ]; then fail "$name" "stderr is not one line: $(head -c 300 "$TMP/err")"; return; fi
  if ! grep -q -- "$pat" "$TMP/err"; then fail "$name" "stderr lacks '$pat': $(cat "$TMP/err")"; return; fi
  if [ -s "$TMP/out" ]; then fail "$name" "stdout not empty"; return; fi
  ok "$name"
}
# json_get FILE EXPR : python expression over j (the parsed JSON)
json_get() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }
