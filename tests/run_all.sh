#!/bin/sh
# Runs every Check test program and every shell test, then prints one closing
# line: "tests: N passed, N failed, N skipped".
# Check programs print "NN%: Checks: C, Failures: F, Errors: E"; a test that
# skips prints "SKIP: why". Shell tests (tests/**/test_*.sh) print one line per
# case: "ok NAME", "FAIL NAME: why" or "SKIP: NAME: why".
BUILD=${1:-build}
DAM="$BUILD/dam"; export DAM
passed=0; failed=0; skipped=0
log=$(mktemp)
for t in $(find "$BUILD/tests" -type f -name 'test_*' -perm -u+x | sort); do
  name=${t#"$BUILD"/}; t0=$(date +%s)
  if ! "$t" >"$log" 2>&1; then status=bad; else status=good; fi
  line=$(grep -E '^[0-9]+%: Checks:' "$log" | tail -1)
  c=$(echo "$line" | sed -n 's/.*Checks: \([0-9]*\).*/\1/p'); c=${c:-0}
  f=$(echo "$line" | sed -n 's/.*Failures: \([0-9]*\).*/\1/p'); f=${f:-0}
  e=$(echo "$line" | sed -n 's/.*Errors: \([0-9]*\).*/\1/p'); e=${e:-0}
  s=$(grep -c '^SKIP' "$log")
  bad=$((f + e))
  if [ "$status" = bad ] && [ "$bad" = 0 ]; then bad=1; fi   # crashed before the summary
  passed=$((passed + c - f - e - s)); failed=$((failed + bad)); skipped=$((skipped + s))
  printf '%-40s %s (%ss)\n' "$name" "$line" $(($(date +%s) - t0))
  if [ "$bad" != 0 ]; then grep -vE '^[0-9]+%: Checks' "$log" | head -40; fi
  grep '^SKIP' "$log" | sed 's/^/    /'
done
for t in $(find tests -name 'test_*.sh' | sort); do
  t0=$(date +%s); sh "$t" >"$log" 2>&1; rc=$?
  p=$(grep -c '^ok ' "$log"); f=$(grep -c '^FAIL' "$log"); s=$(grep -c '^SKIP' "$log")
  if [ $rc -ne 0 ] && [ "$f" = 0 ]; then f=1; echo "FAIL $t exited $rc" >>"$log"; fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  printf '%-40s ok %d, failed %d, skipped %d (%ss)\n' "$t" "$p" "$f" "$s" $(($(date +%s) - t0))
  grep -E '^(FAIL|SKIP)' "$log" | sed 's/^/    /'
  if [ "$f" != 0 ]; then tail -20 "$log"; fi
done
rm -f "$log"
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
