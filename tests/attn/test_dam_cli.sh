# test_dam_cli.sh — dam calibrate / compare / masks and the dam module's three
# capture sources (profile, automatic, prompt) on the real stories260k model.
. tests/cli/lib.sh
S="-m $STORIES -t 1"      # one thread: these runs are tiny, and CI machines are shared
GOLDEN=$STORIES/expected_greedy.json
CAL=prompts/calibration.txt
export XDG_CACHE_HOME="$TMP/cache"

# --- calibrate: a profile with geometry, parameters and every head
"$DAM" calibrate $S -f $CAL --max-seqs 24 --dam-pcl 64 --dam-tau 0.15 -o "$TMP/p.json" >"$TMP/cal.out" 2>&1 \
  && ok calibrate_runs || fail calibrate_runs "$(tail -3 "$TMP/cal.out")"
json_get "$TMP/p.json" "(j['format'], j['geometry']['n_layers'], j['geometry']['n_heads'], j['geometry']['n_kv_heads'],
  j['geometry']['head_dim'], j['params']['pcl'], j['params']['tau'], len(j['heads']), j['calibration']['sequences'])" \
  >"$TMP/g" 2>&1 && [ "$(cat "$TMP/g")" = "('dam-profile', 5, 8, 4, 8, 64, 0.15, 40, 24)" ] \
  && ok profile_fields || fail profile_fields "$(cat "$TMP/g")"
json_get "$TMP/p.json" "all(h['offsets'][0] == 0 and 0 <= h['coverage'] <= 1 and h['fallback'] in ('none','full','window')
  and isinstance(h['columns'], list) and len(h['true_mask']) > 0 for h in j['heads'])" | grep -q True \
  && ok profile_heads || fail profile_heads "bad head entries"
printf '1,5,9,13\n1,20,30,40,50,60,70,80,90\n' >"$TMP/ids.txt"
"$DAM" calibrate $S --ids-file "$TMP/ids.txt" -q -o "$TMP/pid.json" && \
  [ "$(json_get "$TMP/pid.json" "j['calibration']['sequences']")" = 2 ] && ok calibrate_ids_file || fail calibrate_ids_file "no profile"

# --- compare: one JSON object, fractions 0..1, full is the reference
# (recent=16, select=0: the profile's own windows, no selection; on a 201-token story the
# default recent window of 256 would cover every row)
"$DAM" compare $S --ids-json $GOLDEN --attn "full,dam:profile=$TMP/p.json:recent=16:select=0,window:size=32" -n 16 --json \
  >"$TMP/c.json" 2>"$TMP/c.err" && ok compare_runs || fail compare_runs "$(cat "$TMP/c.err")"
json_get "$TMP/c.json" "[(m['attn'], m['sparsity'], m['top1_agreement']) for m in j['modules']]" >"$TMP/m" 2>&1
json_get "$TMP/c.json" "j['modules'][0]['top1_agreement'] == 1 and j['modules'][0]['sparsity'] == 0
  and all(0 <= m['sparsity'] <= 1 and 0 <= m['top1_agreement'] <= 1 for m in j['modules'])
  and j['modules'][1]['attn'] == 'dam' and j['modules'][1]['sparsity'] > 0.2
  and j['modules'][1]['kv_bytes'] < j['modules'][1]['kv_bytes_full']
  and j['modules'][0]['greedy_common_prefix'] == 16 and j['tokens'] == 201" | grep -q True \
  && ok compare_json || fail compare_json "$(cat "$TMP/m")"
"$DAM" compare $S --ids-json $GOLDEN --attn full,window -n 0 >"$TMP/t" 2>&1 && grep -q 'top1' "$TMP/t" \
  && ok compare_table || fail compare_table "$(cat "$TMP/t")"

# a mask that keeps every pair (tau 0, support 1: every diagonal and column
# of PCL 128 matches; the story has 201 tokens) is full attention
"$DAM" compare $S --ids-json $GOLDEN --attn full,dam:tau=0:support=1:capture=prompt -n 24 --json >"$TMP/e.json" 2>&1
json_get "$TMP/e.json" "j['modules'][1]['sparsity'] < 1e-9 and j['modules'][1]['top1_agreement'] == 1
  and j['modules'][1]['mean_kl'] < 1e-6 and j['modules'][1]['greedy_common_prefix'] == 24" | grep -q True && ok every_pair_is_full || fail every_pair_is_full "$(head -c 600 "$TMP/e.json")"

# --- the three capture sources
"$DAM" compare $S --ids-json $GOLDEN --attn full,dam:capture=prompt:pcl=64:recent=16:select=0 -n 0 --json >"$TMP/pr.json" 2>&1
json_get "$TMP/pr.json" "j['modules'][1]['sparsity'] > 0.05" | grep -q True && ok capture_prompt || fail capture_prompt "$(head -c 300 "$TMP/pr.json")"
"$DAM" run $S --attn dam --dam-profile "$TMP/p.json" --dam-recent 16 --dam-select 0 -p "" -n 150 --temp 0 --json >"$TMP/r.json" 2>"$TMP/r.err"
json_get "$TMP/r.json" "j['attn'] == 'dam' and 0 < j['attn_stats']['sparsity'] < 1" | grep -q True \
  && ok run_with_profile || fail run_with_profile "$(cat "$TMP/r.err")"
# automatic: calibrated once on prompts/calibration.txt, cached, reused
"$DAM" run $S --attn dam --dam-pcl 64 -p "" -n 8 --temp 0 --json >"$TMP/a1.json" 2>"$TMP/a.err"
n=$(ls "$XDG_CACHE_HOME"/dam/profiles/*.json 2>/dev/null | wc -l)
[ "$n" = 1 ] && json_get "$TMP/a1.json" "j['attn'] == 'dam' and j['attn_stats']['sparsity'] >= 0" | grep -q True \
  && ok capture_auto_cached || fail capture_auto_cached "$n cached profiles; $(cat "$TMP/a.err")"
f=$(ls "$XDG_CACHE_HOME"/dam/profiles/*.json 2>/dev/null | head -1)
before=$(stat -c %i.%Y "$f" 2>/dev/null)          # a rewrite (atomic rename) changes the inode
"$DAM" run $S --attn dam --dam-pcl 64 -p "" -n 8 --temp 0 --json >"$TMP/a2.json" 2>/dev/null
[ -n "$before" ] && [ "$(stat -c %i.%Y "$f" 2>/dev/null)" = "$before" ] \
  && [ "$(json_get "$TMP/a1.json" "j['ids']")" = "$(json_get "$TMP/a2.json" "j['ids']")" ] \
  && ok capture_auto_reused || fail capture_auto_reused "cache rewritten or output differs"
"$DAM" run $S --attn dam --dam-pcl 48 -p "" -n 2 --json >/dev/null 2>&1
[ "$(ls "$XDG_CACHE_HOME"/dam/profiles/*.json | wc -l)" = 2 ] && ok auto_cache_per_params || fail auto_cache_per_params "one file for two PCLs"

# --- errors: one clear line, never a silent fallback to full
DAM_CALIBRATION=/nonexistent/cal.txt expect_error no_capture_source 1 'no capture source' -- run $S --attn dam -p "" -n 2
printf '{"format": "dam-profile", "version": 1, "geometry": ' >"$TMP/bad.json"
expect_error corrupt_profile 1 'not valid JSON' -- run $S --attn dam --dam-profile "$TMP/bad.json" -p "" -n 2
expect_error missing_profile 1 'nope.json' -- run $S --attn dam --dam-profile "$TMP/nope.json" -p "" -n 2
if [ -d third_party/models/tiny-llama3 ]; then
  expect_error mismatched_profile 1 'was made for a model with 5 layers' -- run -m third_party/models/tiny-llama3 -t 1 \
    --attn dam --dam-profile "$TMP/p.json" --ids 1,2,3 -n 2
else
  echo "SKIP: mismatched_profile: third_party/models/tiny-llama3 absent"
fi
expect_error compare_bad_option 2 "unknown option 'bogus'" -- compare $S --ids 1,2,3 --attn full,dam:bogus=1

# --- masks: SVG of one head and of all heads, from a profile and from a text
"$DAM" masks $S --dam-profile "$TMP/p.json" --layer 0 --head 1 -o "$TMP/m.svg" 2>"$TMP/ms.err" \
  && head -c 200 "$TMP/m.svg" | grep -q '<svg' && grep -q 'L0 H1' "$TMP/m.svg" && grep -q '#1f4e9c' "$TMP/m.svg" \
  && ok masks_one_head || fail masks_one_head "$(cat "$TMP/ms.err")"
"$DAM" masks $S --dam-profile "$TMP/p.json" --all -o "$TMP/all.svg" 2>/dev/null && grep -q 'L4 H7' "$TMP/all.svg" \
  && python3 -c "import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])" "$TMP/all.svg" \
  && ok masks_all_valid_xml || fail masks_all_valid_xml "bad SVG"
head -c 3000 $CAL >"$TMP/small.txt"
"$DAM" masks $S -f "$TMP/small.txt" --dam-pcl 32 --layer 1 --head 0 -o "$TMP/f.svg" 2>/dev/null && grep -q '<svg' "$TMP/f.svg" \
  && ok masks_from_text || fail masks_from_text "no SVG"
expect_error masks_no_head 2 'layer' -- masks $S --dam-profile "$TMP/p.json" -o "$TMP/x.svg"

# --- bench mode (attention alone on random q/k/v of the model's geometry)
"$DAM" compare --bench $S --seq 256 --json >"$TMP/b.json" 2>&1 \
  && json_get "$TMP/b.json" "len(j['rows']) > 3 and j['rows'][0]['attn'] == 'full' and j['rows'][-1]['sparsity'] > 0.3" | grep -q True \
  && ok compare_bench || fail compare_bench "$(head -c 300 "$TMP/b.json")"
