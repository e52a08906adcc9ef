# test_dam_needle.sh — the point of dam's query-aware selection, on the real
# long-context testbed: a pass key 750 tokens back is out of reach of a plain
# window, and dam finds it at the same cost. The profile is calibrated small
# (2 short sequences, one 1,024-token reach sequence) to keep the test fast.
. tests/cli/lib.sh
T="-m third_party/models/testbed -t 2"
export XDG_CACHE_HOME="$TMP/cache"

"$DAM" calibrate $T -f prompts/calibration_retrieval.txt --max-seqs 2 --reach prompts/calibration_long.txt \
  --reach-len 1024 --reach-seqs 1 --reach-min-row 256 -q -o "$TMP/p.json" 2>"$TMP/cal.err" \
  && json_get "$TMP/p.json" "len(j['reach']['heads']) == 48" | grep -q True \
  && ok needle_profile_has_reach || fail needle_profile_has_reach "$(tail -2 "$TMP/cal.err")"

# budget 96 keys per row per head against a window of 96 recent + 16 sinks.
# Under the sanitizers only dam runs: full and window answer the same as in the
# plain pass, and their six 1k-token generations would double this test's time.
A=full,dam,window; [ -n "$DAM_SANITIZED" ] && A=dam
"$DAM" niah $T --task passkey --lengths 1k --depths 0.25,0.75 --samples 1 --attn $A \
  --dam-profile "$TMP/p.json" --dam-budget 96 --window-size 96 --window-sinks 16 --jsonl "$TMP/n.jsonl" -q \
  >"$TMP/n.out" 2>&1 || fail needle_grid_runs "$(tail -3 "$TMP/n.out")"
res() { python3 -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(' '.join('%s:%s:%d:%.2f' % (r['attn'], r['depth'], r['correct'], r['sparsity']) for r in rows))" "$TMP/n.jsonl"; }
r=$(res 2>&1)
py() { python3 -c "
import json, sys
rows = {(r['attn'], r['depth']): r for r in map(json.loads, open(sys.argv[1]))}
print($1)" "$TMP/n.jsonl"; }
if [ "$A" != dam ]; then
  [ "$(py "all(rows[('full', d)]['correct'] for d in (0.25, 0.75))")" = True ] \
    && ok needle_full_answers || fail needle_full_answers "$r"
  # the needle is beyond a window of this cost (else this test proves nothing)
  [ "$(py "not rows[('window', 0.25)]['correct']")" = True ] \
    && ok needle_out_of_window_reach || fail needle_out_of_window_reach "$r"
fi
[ "$(py "all(rows[('dam', d)]['correct'] and rows[('dam', d)]['sparsity'] > 0.7 for d in (0.25, 0.75))")" = True ] \
  && ok needle_dam_answers_sparse || fail needle_dam_answers_sparse "$r"
