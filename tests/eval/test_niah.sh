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

# --- grids across machines: --shard I/N parts merged are the whole run
if "$DAM" niah --help | grep -q 'available: .*window'; then M=full,window; else M=full; fi
G="--task niah --lengths 300,450 --depths 0,1 --samples 2 --attn $M"
"$DAM" niah $S $G --jsonl "$TMP/whole.jsonl" --csv "$TMP/whole.csv" --svg "$TMP/whole.svg" >"$TMP/whole.txt" 2>"$TMP/err" \
  || fail shard_whole_run "$(cat "$TMP/err")"
for i in 1 2 3; do
  "$DAM" niah $S $G --shard $i/3 --jsonl "$TMP/part$i.jsonl" >/dev/null 2>"$TMP/err" || fail "shard_$i" "$(cat "$TMP/err")"
done
P="$TMP/part1.jsonl $TMP/part2.jsonl $TMP/part3.jsonl"
# each part holds its own cells only, labelled; together as many lines as the whole run
python3 - "$TMP/whole.jsonl" $P <<'PY' && ok shards_disjoint || fail shards_disjoint "parts overlap or miss cells"
import json, sys
whole = [json.loads(l) for l in open(sys.argv[1])]
cell = lambda r: (r["attn"], r["length"], r["depth"], r["sample"])
seen = []
for i, path in enumerate(sys.argv[2:], 1):
    rows = [json.loads(l) for l in open(path)]
    assert rows and all(r["shard"] == "%d/3" % i for r in rows), path
    seen += [cell(r) for r in rows]
assert sorted(seen) == sorted(map(cell, whole)) and len(set(seen)) == len(seen)
assert all("shard" not in r and r["grid"]["lengths"] == [300, 450] for r in whole)
PY
"$DAM" niah --merge $P --jsonl "$TMP/merged.jsonl" --csv "$TMP/merged.csv" --svg "$TMP/merged.svg" \
  >"$TMP/merged.txt" 2>"$TMP/err"; rc=$?
[ $rc -eq 0 ] && ok merge_exit_0 || fail merge_exit_0 "exit $rc: $(cat "$TMP/err")"
# byte for byte, once the two timing fields (which no two runs share) are gone
untimed() { sed -E 's/"prefill_ms":[0-9.e+-]+,"decode_ms":[0-9.e+-]+,//' "$1" | sort; }
untimed "$TMP/whole.jsonl" >"$TMP/a"; untimed "$TMP/merged.jsonl" >"$TMP/b"
[ -s "$TMP/a" ] && [ "$(grep -c prefill_ms "$TMP/merged.jsonl")" -eq 16 ] && cmp -s "$TMP/a" "$TMP/b" \
  && ok merged_jsonl_is_whole_run || fail merged_jsonl_is_whole_run "$(diff "$TMP/a" "$TMP/b" | head -5)"
cut -d, -f1-8 "$TMP/whole.csv" >"$TMP/a"; cut -d, -f1-8 "$TMP/merged.csv" >"$TMP/b"
[ "$(wc -l <"$TMP/a")" -eq 9 ] && cmp -s "$TMP/a" "$TMP/b" && ok merged_csv_is_whole_run || fail merged_csv_is_whole_run "$(diff "$TMP/a" "$TMP/b" | head -5)"
cmp -s "$TMP/whole.svg" "$TMP/merged.svg" && ok merged_svg_is_whole_run || fail merged_svg_is_whole_run "SVGs differ"
awk '{print $1, $2, $3, $4, $5, $6}' "$TMP/whole.txt" >"$TMP/a"; awk '{print $1, $2, $3, $4, $5, $6}' "$TMP/merged.txt" >"$TMP/b"
grep -q '^full  *all  *0*[0-9]/8' "$TMP/b" && cmp -s "$TMP/a" "$TMP/b" && ok merged_table_is_whole_run || fail merged_table_is_whole_run "$(diff "$TMP/a" "$TMP/b" | head -5)"
# the same model under another path is the same model; a whole run merges alone
mkdir "$TMP/same" && for f in "$STORIES"/*; do ln -s "$PWD/$f" "$TMP/same/"; done
"$DAM" niah -m "$TMP/same" -t 1 -q $G --shard 3/3 --jsonl "$TMP/same3.jsonl" >/dev/null 2>&1
"$DAM" niah --merge "$TMP/part1.jsonl" "$TMP/part2.jsonl" "$TMP/same3.jsonl" >/dev/null 2>"$TMP/err" \
  && ok merge_model_other_path || fail merge_model_other_path "$(cat "$TMP/err")"
"$DAM" niah --merge "$TMP/whole.jsonl" --jsonl - 2>/dev/null | untimed /dev/stdin >"$TMP/b"
untimed "$TMP/whole.jsonl" >"$TMP/a"; cmp -s "$TMP/a" "$TMP/b" && ok merge_whole_run_to_stdout || fail merge_whole_run_to_stdout "differs"

# --- merge refusals: one line, exit 1 (2 for usage), no output file
expect_error merge_duplicate 1 "part1.jsonl line 1: a second result for module full, length 300, depth 0, sample 0 (the first: .*part1.jsonl line 1)" \
  -- niah --merge $P "$TMP/part1.jsonl" --csv "$TMP/no.csv"
[ -e "$TMP/no.csv" ] && fail merge_no_file_on_error "csv written" || ok merge_no_file_on_error
expect_error merge_whole_and_part 1 "a second result" -- niah --merge "$TMP/whole.jsonl" "$TMP/part2.jsonl"
expect_error merge_missing_shard 1 "missing results: no line of shard 2/3 (5 of 16 cells have none)" \
  -- niah --merge "$TMP/part1.jsonl" "$TMP/part3.jsonl"
head -n 3 "$TMP/part3.jsonl" >"$TMP/short3.jsonl"
expect_error merge_missing_cells 1 "missing results: 2 of 16 cells have none, the first: module .*, from shard 3/3 (an unfinished part?)" \
  -- niah --merge "$TMP/part1.jsonl" "$TMP/part2.jsonl" "$TMP/short3.jsonl"
# mixed settings: a part run with one setting changed (one cell of it: --shard 16/16, to be quick)
mixed() {   # NAME PATTERN FLAGS...: that part merged with parts 1 and 2
  name=$1; pat=$2; shift 2
  "$DAM" niah -t 1 -q --shard 16/16 --jsonl "$TMP/x3.jsonl" "$@" >/dev/null 2>"$TMP/err" || { fail "$name" "run: $(cat "$TMP/err")"; return; }
  expect_error "$name" 1 "x3.jsonl line 1 and .*part1.jsonl line 1 are from different grids: $pat" \
    -- niah --merge "$TMP/part1.jsonl" "$TMP/part2.jsonl" "$TMP/x3.jsonl"
}
mixed merge_mixed_seed 'seed 2 vs 1' -m "$STORIES" $G --seed 2
mixed merge_mixed_task 'task "passkey" vs "niah"' -m "$STORIES" $G --task passkey
mixed merge_mixed_lengths 'lengths \[300,400\] vs \[300,450\]' -m "$STORIES" $G --lengths 300,400
mixed merge_mixed_depths 'depths \[0,0.5\] vs \[0,1\]' -m "$STORIES" $G --depths 0,0.5
mixed merge_mixed_samples 'samples 3 vs 2' -m "$STORIES" $G --samples 3
mixed merge_mixed_n_predict 'n_predict 8 vs 16' -m "$STORIES" $G -n 8
if [ "$M" = full,window ]; then
  mixed merge_mixed_modules 'attn \["window","full"\] vs \["full","window"\]' -m "$STORIES" $G --attn window,full
  mixed merge_mixed_options 'options "window:sinks=4,size=32" vs "window:sinks=4,size=64"' -m "$STORIES" $G --window-size 32
fi
mkdir "$TMP/other" && for f in "$STORIES"/*; do ln -s "$PWD/$f" "$TMP/other/"; done
rm "$TMP/other/config.json" && { cat "$STORIES/config.json"; echo; } >"$TMP/other/config.json"
mixed merge_mixed_model 'another model' -m "$TMP/other" $G
# lines that do not say which cell and shard they are
sed 's/"shard":"1\/3"/"shard":"2\/3"/' "$TMP/part1.jsonl" >"$TMP/relabelled.jsonl"
expect_error merge_wrong_shard 1 "relabelled.jsonl line 1: its cell is not one of shard 2/3's" \
  -- niah --merge "$TMP/relabelled.jsonl" "$TMP/part2.jsonl" "$TMP/part3.jsonl"
sed 's/,"grid":{[^}]*}//' "$TMP/part1.jsonl" >"$TMP/old.jsonl"
expect_error merge_no_grid 1 "old.jsonl line 1 has no \"grid\": written by a dam niah older than --shard" \
  -- niah --merge "$TMP/old.jsonl" "$TMP/part2.jsonl" "$TMP/part3.jsonl"
{ cat "$TMP/part2.jsonl"; head -c 100 "$TMP/part3.jsonl"; } >"$TMP/cut.jsonl"
expect_error merge_cut_line 1 "cut.jsonl line 6: not a JSON object" -- niah --merge "$TMP/part1.jsonl" "$TMP/cut.jsonl"
: >"$TMP/empty.jsonl"
expect_error merge_empty_part 1 "empty.jsonl holds no results" -- niah --merge "$TMP/empty.jsonl" $P
expect_error merge_missing_file 1 "cannot open .*nope.jsonl" -- niah --merge "$TMP/nope.jsonl"
expect_error merge_no_parts 2 "--merge needs the JSON line files of the parts" -- niah --merge --csv "$TMP/no.csv"
expect_error merge_run_flag 2 "--lengths cannot be used with --merge" -- niah --merge $P --lengths 300
expect_error merge_over_a_part 2 "the output file .*part2.jsonl is also a part to merge" -- niah --merge $P --jsonl "$TMP/part2.jsonl"
# --- bad shards: exit 2 before the model loads
for sh in 0/3 4/3 3 1/0 a/b -1/2 2/3x; do
  expect_error "shard_bad_$sh" 2 "bad value for --shard: '$sh' (expected I/N with 1 <= I <= N" -- niah $S --shard "$sh"
done
expect_error shard_more_than_cells 2 "--shard 1/3: the grid has 2 cells, fewer than 3 shards" -- niah $S --lengths 256,300 --depths 0.5 --shard 1/3
