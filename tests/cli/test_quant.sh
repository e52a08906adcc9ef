# test_quant.sh — --quant and --kv-type through the commands: formats named in the
# outputs, results that do not depend on the thread count, the model folder left
# untouched, one-line usage errors. stories260k (rows of 64 and 172 columns: the
# padded edge of every block) and the testbed (real prose).
. tests/cli/lib.sh
S="-m $STORIES --attn full"
TB=third_party/models/testbed

# --- every format runs; the run's JSON and the load line say which one
for q in q8_0 q4_0 q4_k; do
  "$DAM" run $S --quant $q --kv-type f16 -p "Once" -n 8 --temp 0 --json >"$TMP/j" 2>/dev/null
  [ "$(json_get "$TMP/j" "j['weights'], j['kv_type'], j['generated_tokens']")" = "$q f16 8" ] \
    && ok "run_json_$q" || fail "run_json_$q" "$(head -c 300 "$TMP/j")"
done
"$DAM" run $S --quant q4_k -p "Once" -n 4 2>"$TMP/err" >/dev/null
grep -q 'load time .*(weights q4_k, .* MiB, quantized in [0-9]* ms)' "$TMP/err" && ok load_line_names_format \
  || fail load_line_names_format "$(grep 'load time' "$TMP/err")"
"$DAM" run $S -p "Once" -n 4 2>"$TMP/err" >/dev/null
grep -q 'load time .*(weights as stored' "$TMP/err" && ok load_line_as_stored || fail load_line_as_stored "$(grep 'load time' "$TMP/err")"

# --- q8_0 keeps the golden story for its first tokens (transformers' greedy ids)
want=$(python3 -c "import json; print(' '.join(map(str, json.load(open('$STORIES/expected_greedy.json'))['tokens'][1:31])))")
got=$("$DAM" run $S --quant q8_0 --ids 1 -n 30 --temp 0 --print-ids --ignore-eos 2>/dev/null)
[ "$got" = "$want" ] && ok q8_0_golden_prefix || fail q8_0_golden_prefix "ids differ: $got"

# --- the same ids with 1 and 2 threads, and with every kernel variant
for q in q8_0 q4_k; do
  a=$("$DAM" run $S --quant $q --ids 1 -n 40 --temp 0 --print-ids --ignore-eos -t 1 2>/dev/null)
  b=$("$DAM" run $S --quant $q --ids 1 -n 40 --temp 0 --print-ids --ignore-eos -t 2 2>/dev/null)
  c=$(DAM_ISA=portable "$DAM" run $S --quant $q --ids 1 -n 40 --temp 0 --print-ids --ignore-eos 2>/dev/null)
  [ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" = "$c" ] && ok "threads_and_isa_agree_$q" || fail "threads_and_isa_agree_$q" "[$a] [$b] [$c]"
done

# --- nothing is written into the model folder
before=$(ls -la --time-style=full-iso "$STORIES" | md5sum)
"$DAM" logits -m "$STORIES" --ids 1,5,9 --quant q4_0 >/dev/null 2>&1
after=$(ls -la --time-style=full-iso "$STORIES" | md5sum)
[ "$before" = "$after" ] && ok model_folder_untouched || fail model_folder_untouched "the folder changed"

# --- dam compare: a format per entry; the reference and the entry on the same document
"$DAM" compare -m $TB --ids 1,330,30,26992,198,198,4590,359,10154,282,451,3140,30,198 \
  --attn full,full:quant=q8_0,full:kv=bf16 -n 0 --json >"$TMP/c" 2>"$TMP/err"
json_get "$TMP/c" "[(m['label'], m['top1_agreement']) for m in j['modules']]" >"$TMP/labels" 2>&1 \
  && grep -q "full:quant=q8_0" "$TMP/labels" && grep -q "full:kv=bf16" "$TMP/labels" \
  && ok compare_entry_formats || fail compare_entry_formats "$(cat "$TMP/labels" "$TMP/err")"

# --- 16-bit KV in window and dam: half the KV bytes, answers as close as f32's, no "no effect" warning
"$DAM" compare -m $TB -f prompts/calibration.txt --truncate right -c 600 -n 0 --json \
  --attn full,dam,dam:kv=f16,window:size=64,window:size=64:kv=bf16 >"$TMP/c" 2>"$TMP/err"
kv=$(json_get "$TMP/c" "' '.join('%s:%d:%.2f' % (m['label'], m['kv_bytes'], m['top1_agreement']) for m in j['modules'])" 2>&1)
python3 - "$kv" <<'PY' && ok kv16_dam_window || fail kv16_dam_window "$kv $(head -c 300 "$TMP/err")"
import sys
m = {l: (int(b), float(t)) for l, b, t in (x.rsplit(":", 2) for x in sys.argv[1].split())}
assert m["dam:kv=f16"][0] * 2 == m["dam"][0] and m["window:size=64:kv=bf16"][0] * 2 == m["window:size=64"][0]
assert abs(m["dam:kv=f16"][1] - m["dam"][1]) <= 0.02 and m["dam:kv=f16"][1] >= 0.8
PY
"$DAM" run -m $TB --attn window --kv-type f16 -p "Once upon a time" -n 4 --temp 0 --json >"$TMP/j" 2>"$TMP/err"
[ "$(json_get "$TMP/j" "j['kv_type']")" = f16 ] && ! grep -q "no effect" "$TMP/err" \
  && ok kv16_window_run || fail kv16_window_run "$(cat "$TMP/err")"

# --- usage errors
expect_error bad_quant 2 "bad value for --quant: 'q3_0' (expected none, q8_0, q4_0, q4_k)" -- run $S --quant q3_0 -p x
expect_error bad_kv_type 2 "bad value for --kv-type: 'f8'" -- run $S --kv-type f8 -p x
expect_error bad_compare_quant 2 "bad value for quant in --attn 'full:quant=q2'" -- compare -m $STORIES --ids 1,2,3 --attn full,full:quant=q2
expect_error bad_compare_kv 2 "bad value for kv in --attn 'dam:kv=f8'" -- compare -m $STORIES --ids 1,2,3 --attn full,dam:kv=f8
expect_error bench_bad_quant 2 "bad value for --quant" -- bench -m $STORIES --quant int4
