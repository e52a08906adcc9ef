#!/bin/sh
# run.sh — runs every libFuzzer binary of FUZZ_DIR for SECONDS each, JOBS at
# a time (make fuzz calls it: `make fuzz FUZZ_SECONDS=600 FUZZ_JOBS=2`).
#
#   sh tests/fuzz/run.sh FUZZ_DIR SECONDS [JOBS [TARGET ...]]
#
# (make fuzz FUZZ_TARGETS="fuzz_profile fuzz_config" runs only those.)
# Each target's working corpus is FUZZ_DIR/corpus/TARGET (kept between runs,
# so a longer run goes on from what an earlier one found), seeded from
# tests/fuzz/seeds.py (the real files under third_party/) and the hand-written
# seeds in tests/fuzz/corpus/TARGET. A crash, leak, timeout or out-of-memory
# input is saved as FUZZ_DIR/crashes/TARGET-*; copy it to
# tests/fuzz/corpus/TARGET/ once fixed, and tests/fuzz/test_fuzz_corpus.c
# replays it in every `make test`.
# Prints one line per target (runs, executions, new corpus entries) and exits
# 1 when any target found a problem. Runs under nice -n 10.
FUZZ_DIR=${1:?usage: run.sh FUZZ_DIR SECONDS [JOBS]}
SECONDS_EACH=${2:-60}
JOBS=${3:-1}
if [ $# -ge 3 ]; then shift 3; else set --; fi
SEEDS="$FUZZ_DIR/seeds"
mkdir -p "$FUZZ_DIR/corpus" "$FUZZ_DIR/crashes" "$FUZZ_DIR/logs"
rm -rf "$SEEDS"
python3 tests/fuzz/seeds.py "$SEEDS" || { echo "FAIL fuzz: cannot make the seed corpora"; exit 1; }

# Per target: the dictionary and the largest input worth trying.
options() {
    case "$1" in
        fuzz_http_headers) echo "-dict=tests/fuzz/http.dict -max_len=4096" ;;
        fuzz_encode)       echo "-max_len=4096" ;;
        fuzz_tokenizer)    echo "-dict=tests/fuzz/json.dict -max_len=65536" ;;
        *)                 echo "-dict=tests/fuzz/json.dict -max_len=32768" ;;
    esac
}

run_one() {
    name=$1
    bin="$FUZZ_DIR/$name"
    corpus="$FUZZ_DIR/corpus/$name"
    mkdir -p "$corpus" "$SEEDS/$name"
    hand="tests/fuzz/corpus/$name"
    [ -d "$hand" ] || hand=""
    # shellcheck disable=SC2046,SC2086
    nice -n 10 "$bin" -max_total_time="$SECONDS_EACH" -timeout=25 -rss_limit_mb=2560 \
        -print_final_stats=1 -artifact_prefix="$FUZZ_DIR/crashes/$name-" $(options "$name") \
        "$corpus" "$SEEDS/$name" $hand >"$FUZZ_DIR/logs/$name.log" 2>&1
    echo $? >"$FUZZ_DIR/logs/$name.rc"
}

targets=${*:-$(cd "$FUZZ_DIR" && ls fuzz_* 2>/dev/null | grep -v '\.')}
[ -n "$targets" ] || { echo "FAIL fuzz: no fuzz_* binaries in $FUZZ_DIR"; exit 1; }
running=0
for name in $targets; do
    run_one "$name" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then wait; running=0; fi
done
wait

failed=0
for name in $targets; do
    log="$FUZZ_DIR/logs/$name.log"
    rc=$(cat "$FUZZ_DIR/logs/$name.rc" 2>/dev/null || echo 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    new=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
    if [ "$rc" = 0 ]; then
        printf 'ok %-20s %s s, %s executions, %s new inputs, corpus %s files\n' "$name" "${secs:-?}" \
            "${execs:-?}" "${new:-?}" "$(ls "$FUZZ_DIR/corpus/$name" | wc -l)"
    else
        failed=1
        echo "FAIL $name: exit $rc; see $log"
        grep -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/    /'
    fi
done
exit $failed
