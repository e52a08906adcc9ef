# test_niah.sh — dam niah end to end on the embedded stories260k model (512
# context, so lengths stay under 512; its answers are wrong, which is fine:
# wrong answers are results, not errors).
. tests/cli/lib.sh
S="-m $STORIES -t 1 -q"

# --- help
"$DAM" niah --help >"$TMP/help" 2>&1 && grep -q -- '--lengths' "$TMP/help" && grep -q -- '--depths' "$TMP/help" \
  && grep -q -- '--jsonl' "$TMP/help" && grep -q -- '--svg' "$TMP/help" && grep -q -- '--haystack' "$TMP/help" \
  && ok niah_help || fail niah_help "help lacks flags"

# --- a grid: JSON lines, CSV, SVG; the summary on stdout; exit 0 though every answer is wrong
"$DAM" niah $S --task passkey --lengths 256,384 --depths 0,0.5,1 --samples 1 \
  --jsonl "$TMP/g.jsonl" --csv "$TMP/g.csv" --svg "$TMP/g.svg" >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc -eq 0 ] && ok grid_exit_0 || fail grid_exit_0 "exit $rc: $(cat "$TMP/err")"
grep -q 'accuracy' "$TMP/out" && grep -q '^full .* 256 .*0.50' "$TMP/out" && grep -q '^full  *all ' "$TMP/out" \
  && ok summary_table || fail summary_table "$(cat "$TMP/out")"
python3 - "$TMP/g.jsonl" <<'EOF' && ok jsonl_parses || fail jsonl_parses "bad JSON lines"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 6, len(rows)
keys = "task length depth seed attn expected output correct prompt_tokens prefill_ms decode_ms".split()
for r in rows:
    assert all(k in r for k in keys), r
    assert r["task"] == "passkey" and r["attn"] == "full" and isinstance(r["correct"], bool)
    assert len(r["expected"]) == 5 and r["expected"].isdigit()
assert sorted({(r["length"], r["depth"]) for r in rows}) == [(256, 0), (256, 0.5), (256, 1), (384, 0), (384, 0.5), (384, 1)]
EOF
python3 - "$TMP/g.jsonl" <<'EOF' && ok prompt_within_2_percent || fail prompt_within_2_percent "a prompt is off"
import json, sys
for r in map(json.loads, open(sys.argv[1])):
    assert abs(r["prompt_tokens"] - r["length"]) <= 0.02 * r["length"], r
EOF
python3 - "$TMP/g.csv" <<'EOF' && ok csv_grid || fail csv_grid "$(cat "$TMP/g.csv")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 6
assert {(r["attn"], int(r["length"]), float(r["depth"])) for r in rows} == \
    {("full", l, d) for l in (256, 384) for d in (0, 0.5, 1)}
for r in rows:
    assert int(r["samples"]) == 1 and 0 <= float(r["accuracy"]) <= 1 and float(r["prompt_tokens"]) > 0
EOF
python3 - "$TMP/g.svg" <<'EOF' && ok svg_well_formed || fail svg_well_formed "bad SVG"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
assert root.tag == ns + "svg"
cells = [r for r in root.iter(ns + "rect") if r.get("class") == "cell"]
assert len(cells) == 6, len(cells)
assert {(c.get("data-length"), c.get("data-depth")) for c in cells} == \
    {(l, d) for l in ("256", "384") for d in ("0", "0.5", "1")}
assert any(g.get("class") == "legend" for g in root.iter(ns + "g"))
EOF

# --- several modules: one panel each, the same prompts for each (same seed)
if "$DAM" niah --help | grep -q 'available: .*window'; then
  "$DAM" niah $S --task niah --lengths 300,450 --depths 0,1 --samples 2 --attn full,window \
    --jsonl "$TMP/m.jsonl" --svg "$TMP/m.svg" >/dev/null 2>"$TMP/err" || fail modules_run "$(cat "$TMP/err")"
  python3 - "$TMP/m.jsonl" "$TMP/m.svg" <<'EOF' && ok same_prompts_across_modules || fail same_prompts_across_modules "prompts differ"
import json, sys, xml.etree.ElementTree as ET
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2 * 2 * 2 * 2
by = {}
for r in rows:
    by.setdefault((r["length"], r["depth"], r["sample"]), {})[r["attn"]] = (r["expected"], r["prompt_tokens"])
assert all(len(v) == 2 and v["full"] == v["window"] for v in by.values()), by
assert len({v["full"][0] for v in by.values()}) == len(by)      # every sample its own needle
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[2]).getroot()
assert len([r for r in root.iter(ns + "rect") if r.get("class") == "cell"]) == 2 * 2 * 2
assert {g.get("data-attn") for g in root.iter(ns + "g") if g.get("class") == "panel"} == {"full", "window"}
EOF
  # run one module at a time: still the same prompts
  "$DAM" niah $S --task niah --lengths 300,450 --depths 0,1 --samples 2 --attn window --jsonl "$TMP/w.jsonl" >/dev/null 2>&1
  python3 -c "
import json, sys
a = {(r['length'], r['depth'], r['sample']): (r['expected'], r['prompt_tokens']) for r in map(json.loads, open('$TMP/m.jsonl')) if r['attn'] == 'window'}
b = {(r['length'], r['depth'], r['sample']): (r['expected'], r['prompt_tokens']) for r in map(json.loads, open('$TMP/w.jsonl'))}
sys.exit(a != b)" && ok same_prompts_separate_runs || fail same_prompts_separate_runs "differ"
else
  echo "SKIP: same_prompts_across_modules: no window module built"
fi

# --- the seed: the same seed the same needles, another seed others
"$DAM" niah $S --lengths 256 --depths 0.5 --samples 3 --seed 5 --jsonl "$TMP/s1" >/dev/null 2>&1
"$DAM" niah $S --lengths 256 --depths 0.5 --samples 3 --seed 5 --jsonl "$TMP/s2" >/dev/null 2>&1
"$DAM" niah $S --lengths 256 --depths 0.5 --samples 3 --seed 6 --jsonl "$TMP/s3" >/dev/null 2>&1
expected_keys() { python3 -c "import json,sys; print(' '.join(json.loads(l)['expected'] for l in open(sys.argv[1])))" "$1"; }
k1=$(expected_keys "$TMP/s1"); k2=$(expected_keys "$TMP/s2"); k3=$(expected_keys "$TMP/s3")
[ -n "$k1" ] && [ "$k1" = "$k2" ] && ok seed_repeatable || fail seed_repeatable "[$k1] [$k2]"
[ "$k1" != "$k3" ] && ok seed_changes || fail seed_changes "same keys for seeds 5 and 6"

# --- every task runs; JSON lines to stdout with '-', the table then on stderr
for case in "niah 300" "multikey 400" "lines 450"; do
  set -- $case
  "$DAM" niah $S --task "$1" --lengths "$2" --depths 0.5 --jsonl - >"$TMP/t.out" 2>"$TMP/t.err"; rc=$?
  [ $rc -eq 0 ] && python3 -c "
import json, sys
rows = [json.loads(l) for l in open('$TMP/t.out')]
assert len(rows) == 1 and rows[0]['task'] == '$1' and abs(rows[0]['prompt_tokens'] - $2) <= 0.02 * $2, rows
" && grep -q accuracy "$TMP/t.err" && ok "task_$1" || fail "task_$1" "rc $rc: $(cat "$TMP/t.err")"
done

# --- -n bounds the answer; plain integer lengths; a short haystack file is repeated
printf 'The dog ran home.' >"$TMP/hay.txt"
"$DAM" niah $S --lengths 400 --depths 0.5 -n 3 --haystack "$TMP/hay.txt" --jsonl "$TMP/h.jsonl" >/dev/null 2>"$TMP/err" \
  && python3 -c "
import json
r = json.loads(open('$TMP/h.jsonl').readline())
assert r['output_tokens'] <= 3 and abs(r['prompt_tokens'] - 400) <= 8, r
" && ok haystack_repeated_n_predict || fail haystack_repeated_n_predict "$(cat "$TMP/err")"

# --- defaults: the embedded model and prompts/haystack.txt beside the program
"$DAM" niah -t 1 -q --lengths 256 --depths 0.5 >"$TMP/out" 2>"$TMP/err" && grep -q 'testbed' "$TMP/out" \
  && ok default_model_and_haystack || fail default_model_and_haystack "$(cat "$TMP/err")"

# --- chat: a forced template wraps the prompt
"$DAM" niah $S --chat --chat-template chatml --lengths 400 --depths 0.5 >/dev/null 2>"$TMP/err" \
  && ok chat_template || fail chat_template "$(cat "$TMP/err")"

# --- errors: one line, non-zero exit, nothing on stdout, no output file left behind
expect_error length_over_context 1 "length 1024 is larger than the context of 512 tokens" -- niah $S --lengths 1k --csv "$TMP/no.csv"
[ -e "$TMP/no.csv" ] && fail no_file_on_error "csv written" || ok no_file_on_error
expect_error length_over_c 1 "length 400 is larger than the context of 300 tokens" -- niah $S -c 300 --lengths 400
expect_error no_room_for_answer 1 "no room for the 12-token answer in the context of 512" -- niah $S --lengths 511
expect_error too_short 1 "length 100 is too short for the passkey prompt" -- niah $S --lengths 100
expect_error unknown_attn 2 "unknown attention module 'nope' (available: full" -- niah $S --attn full,nope
expect_error bad_task 2 "unknown task 'x'" -- niah $S --task x
expect_error bad_lengths 2 "bad value for --lengths: 'big'" -- niah $S --lengths 256,big
expect_error bad_depths 2 "bad value for --depths: '1.5'" -- niah $S --depths 0,1.5
expect_error missing_haystack 1 "cannot open /no/such/hay.txt" -- niah $S --lengths 256 --haystack /no/such/hay.txt
expect_error unwritable_output 1 "folder /no/such is missing" -- niah $S --lengths 256 --svg /no/such/x.svg
expect_error unknown_flag 2 "unknown flag '--frob'" -- niah $S --frob
mkdir "$TMP/notok" && for f in config.json generation_config.json model.safetensors; do ln -s "$PWD/$STORIES/$f" "$TMP/notok/$f"; done
expect_error no_tokenizer 1 "has no tokenizer.json" -- niah -m "$TMP/notok" -t 1 --lengths 256
echo keep >"$TMP/keep.csv"
"$DAM" niah $S --lengths 100 --csv "$TMP/keep.csv" >/dev/null 2>&1
[ "$(cat "$TMP/keep.csv")" = keep ] && ok failed_run_keeps_old_file || fail failed_run_keeps_old_file "overwritten"
