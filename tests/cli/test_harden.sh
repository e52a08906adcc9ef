# test_harden.sh — issue 15, "hardening, round two": what a hostile new user
# found, one block per item (the names start with the item's number).
# Run from the repo root: DAM=build/dam sh tests/cli/test_harden.sh
. tests/cli/lib.sh
S="-m $STORIES"
GOLDEN="$STORIES/expected_greedy.json"
export XDG_CACHE_HOME="$TMP/cache"        # the automatic profiles of this file only
unset DAM_MODEL DAM_CALIBRATION DAM_ISA
# One thread: the machine is shared, and two threads that wait on each other
# at every barrier make the small calibrations below take seconds. Runs that
# do not test dam use full attention (no automatic profile to calibrate).
export OMP_NUM_THREADS=1
case "$DAM" in /*) DAM_ABS=$DAM ;; *) DAM_ABS=$PWD/$DAM ;; esac

# has_line NAME FILE PATTERN : FILE has a line matching PATTERN
has_line() { if grep -q -- "$3" "$2"; then ok "$1"; else fail "$1" "no '$3' in: $(head -c 400 "$2")"; fi; }

# A FIFO reader that gives up after a while: a test that fails must not hang.
read_fifo() { timeout 20 cat "$1" >"$2" & }

# ---- 1. outputs: rename only over a file; FIFOs, devices and "-" written through; links followed
mkfifo "$TMP/fifo"
read_fifo "$TMP/fifo" "$TMP/fifo.out"; reader=$!
"$DAM" logits $S --ids 1,2,3 --top 0 --out "$TMP/fifo" >/dev/null 2>"$TMP/err"; rc=$?
wait $reader
if [ $rc = 0 ] && [ -p "$TMP/fifo" ] && [ "$(head -c 1 "$TMP/fifo.out" | od -An -tu1 | tr -d ' ')" != "" ] \
   && [ "$(wc -c <"$TMP/fifo.out")" -gt 1000 ]; then ok 1_out_fifo_written_through
else fail 1_out_fifo_written_through "rc $rc, fifo kept: $([ -p "$TMP/fifo" ] && echo yes || echo no), $(wc -c <"$TMP/fifo.out") bytes read: $(cat "$TMP/err")"; fi

if mknod "$TMP/null" c 1 3 2>/dev/null; then
  "$DAM" logits $S --ids 1,2,3 --top 0 --out "$TMP/null" >/dev/null 2>"$TMP/err"; rc=$?
  [ $rc = 0 ] && [ -c "$TMP/null" ] && ok 1_out_char_device_kept || fail 1_out_char_device_kept "rc $rc, $(ls -l "$TMP/null")"
  "$DAM" niah $S --lengths 200 --depths 0.5 -q --csv "$TMP/null" >/dev/null 2>"$TMP/err"; rc=$?
  [ $rc = 0 ] && [ -c "$TMP/null" ] && ok 1_niah_char_device_kept || fail 1_niah_char_device_kept "rc $rc, $(ls -l "$TMP/null")"
else
  echo "SKIP: 1_out_char_device_kept: mknod is not permitted here"
fi

mkdir "$TMP/real"
ln -s real/target.safetensors "$TMP/dangling"                     # its target does not exist yet
"$DAM" logits $S --ids 1,2,3 --top 0 --out "$TMP/dangling" >/dev/null 2>"$TMP/err"; rc=$?
[ $rc = 0 ] && [ -L "$TMP/dangling" ] && [ -f "$TMP/real/target.safetensors" ] && [ -s "$TMP/real/target.safetensors" ] \
  && ok 1_out_symlink_followed || fail 1_out_symlink_followed "rc $rc: $(ls -l "$TMP/dangling" "$TMP/real"): $(cat "$TMP/err")"
cp "$TMP/real/target.safetensors" "$TMP/first"
"$DAM" logits $S --ids 4,5,6,7 --top 0 --out "$TMP/dangling" >/dev/null 2>&1
[ -L "$TMP/dangling" ] && ! cmp -s "$TMP/first" "$TMP/real/target.safetensors" \
  && ok 1_out_symlink_target_replaced || fail 1_out_symlink_target_replaced "$(ls -l "$TMP/dangling")"

"$DAM" logits $S --ids 1,2,3 --top 2 --out - >"$TMP/st" 2>"$TMP/err"; rc=$?
python3 - "$TMP/st" <<'EOF' >"$TMP/py" 2>&1 && [ $rc = 0 ] && grep -q '^0 1:' "$TMP/err" \
  && ok 1_out_dash_is_stdout || fail 1_out_dash_is_stdout "rc $rc: $(cat "$TMP/py" "$TMP/err")"
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
assert h["logits"]["shape"] == [3, 512], h
EOF
"$DAM" logits $S --ids 1,2,3 --top 0 --out /dev/stdout 2>"$TMP/err" | cat >"$TMP/st2"
cmp -s "$TMP/st" "$TMP/st2" && ok 1_out_dev_stdout_pipe || fail 1_out_dev_stdout_pipe "$(wc -c <"$TMP/st2") bytes: $(cat "$TMP/err")"
# (from $TMP: a dam that took "-" for a file name would leave it there, not in the tree)
(cd "$TMP" && "$DAM_ABS" calibrate -m "$OLDPWD/$STORIES" -f "$OLDPWD/prompts/calibration.txt" --dam-pcl 16 --max-seqs 2 -o - \
  >"$TMP/prof.json" 2>"$TMP/err"); rc=$?
[ $rc = 0 ] && json_get "$TMP/prof.json" "j['format']" >/dev/null 2>&1 && ok 1_calibrate_dash_is_stdout \
  || fail 1_calibrate_dash_is_stdout "rc $rc: $(head -c 200 "$TMP/prof.json") $(cat "$TMP/err")"
"$DAM" niah $S --lengths 200 --depths 0.5 -q --csv - >"$TMP/csv" 2>"$TMP/err"; rc=$?
[ $rc = 0 ] && head -1 "$TMP/csv" | grep -q '^task,attn,length' && grep -q 'niah passkey' "$TMP/err" \
  && ok 1_niah_csv_dash || fail 1_niah_csv_dash "rc $rc: $(cat "$TMP/csv" "$TMP/err")"
expect_error 1_niah_two_dashes 2 "only one of --jsonl, --csv and --svg" -- niah $S --jsonl - --svg -
expect_error 1_synth_dash 2 "dam synth writes a folder: -o - (stdout) cannot hold one" -- synth --config "$STORIES/config.json" -o -

# ---- 2. write errors on standard output: exit 1, one reason
if [ -c /dev/full ]; then
  full() {   # full NAME ARGS... : dam ARGS >/dev/full
    name=$1; shift
    "$DAM" "$@" >/dev/full 2>"$TMP/err" </dev/null; rc=$?
    if [ $rc = 1 ] && [ "$(tail -1 "$TMP/err")" = "dam: write error on standard output: No space left on device" ]; then ok "$name"
    else fail "$name" "rc $rc: $(tail -3 "$TMP/err")"; fi
  }
  full 2_run_full run $S --attn full -p Once -n 8 --temp 0
  full 2_run_json_full run $S --attn full -p Once -n 8 --temp 0 --json
  full 2_tokenize_full tokenize $S -p "Once upon a time"
  full 2_logits_full logits $S --ids 1,2,3
  full 2_niah_jsonl_full niah $S --lengths 200 --depths 0.5 -q --jsonl -
  full 2_help_full run --help
  "$DAM" bench $S -p 8 -n 0 -r 1 >/dev/full 2>"$TMP/err"; rc=$?
  [ $rc = 1 ] && [ "$(tail -1 "$TMP/err")" = "dam: write error on standard output: No space left on device" ] \
    && ok 2_bench_full || fail 2_bench_full "rc $rc: $(tail -3 "$TMP/err")"
else
  echo "SKIP: 2_run_full: no /dev/full"
fi
"$DAM" run $S --attn full -p Once -n 4 >&- 2>"$TMP/err"; rc=$?
[ $rc = 1 ] && grep -q '^dam: write error on standard output: Bad file descriptor$' "$TMP/err" \
  && ok 2_closed_stdout || fail 2_closed_stdout "rc $rc: $(cat "$TMP/err")"

# ---- 3. the profile cache is keyed on the weights, not their names and sizes
mkdir "$TMP/a" "$TMP/b"
cp "$STORIES/config.json" "$STORIES/model.safetensors" "$STORIES/tokenizer.json" "$TMP/a/"
cp "$STORIES/config.json" "$STORIES/model.safetensors" "$STORIES/tokenizer.json" "$TMP/b/"
python3 - "$TMP/b/model.safetensors" <<'EOF'
import json, struct, sys
f = open(sys.argv[1], "r+b"); raw = f.read()
n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n])
s, e = h["model.layers.0.mlp.down_proj.weight"]["data_offsets"]
at = 8 + n + (s + e) // 2          # one byte in the middle of a tensor
f.seek(at); f.write(bytes([raw[at] ^ 1])); f.close()
EOF
cmp -s "$TMP/a/model.safetensors" "$TMP/b/model.safetensors" && fail 3_weights_differ "the copy was not changed"
export XDG_CACHE_HOME="$TMP/cache3"
"$DAM" run -m "$TMP/a" --attn dam --dam-pcl 8 -p Once -n 1 >/dev/null 2>"$TMP/err" || fail 3_profile_a "$(cat "$TMP/err")"
"$DAM" run -m "$TMP/b" --attn dam --dam-pcl 8 -p Once -n 1 >/dev/null 2>"$TMP/err" || fail 3_profile_b "$(cat "$TMP/err")"
n=$(ls "$TMP/cache3/dam/profiles" 2>/dev/null | grep -c '\.json$')
[ "$n" = 2 ] && ok 3_profile_cache_keyed_on_content || fail 3_profile_cache_keyed_on_content "$n cached profiles for two different models"
"$DAM" run -m "$TMP/a" --attn dam --dam-pcl 8 -p Once -n 1 >/dev/null 2>&1
n=$(ls "$TMP/cache3/dam/profiles" | grep -c '\.json$')
[ "$n" = 2 ] && ok 3_profile_cache_hit || fail 3_profile_cache_hit "$n cached profiles after running model a again"
export XDG_CACHE_HOME="$TMP/cache"

# ---- 4. the prompt's bytes never come out as generated text
out=$("$DAM" run $S --attn full -p "Lily went to the 你" -n 4 --temp 0 2>/dev/null)
ids=$("$DAM" run $S --attn full -p "Lily went to the 你" -n 4 --temp 0 --print-ids 2>/dev/null | tr ' ' ',')
want=$("$DAM" tokenize $S --decode "$ids" 2>/dev/null)
[ -n "$out" ] && [ "$out" = "$want" ] && ok 4_no_prompt_bytes_cjk || fail 4_no_prompt_bytes_cjk "printed [$out], the ids decode to [$want]"
printf 'Lily went to the park\001' >"$TMP/ctl.txt"
"$DAM" run $S --attn full -f "$TMP/ctl.txt" -n 4 --temp 0 >"$TMP/out" 2>/dev/null
ids=$("$DAM" run $S --attn full -f "$TMP/ctl.txt" -n 4 --temp 0 --print-ids 2>/dev/null | tr ' ' ',')
"$DAM" tokenize $S --decode "$ids" >"$TMP/want" 2>/dev/null
cmp -s "$TMP/out" "$TMP/want" && ok 4_no_prompt_bytes_control || fail 4_no_prompt_bytes_control "$(od -c "$TMP/out" | head -2)"

# ---- 5. the context, the same rule everywhere
expect_error 5_logits_past_model_context 1 "600 tokens do not fit in a context of 512" -- logits $S --ids "$(seq -s, 1 600)" --top 1
expect_error 5_compare_doc_too_long 1 "has 201 tokens but the context holds 64" -- compare $S --ids-json "$GOLDEN" -c 64 --attn full,window -n 0
"$DAM" compare $S --ids-json "$GOLDEN" -c 64 --attn full,window -n 0 --truncate right --json >"$TMP/c.json" 2>"$TMP/err"
[ "$(json_get "$TMP/c.json" "j['tokens'], j['document_tokens']")" = "64 201" ] && grep -q 'cut to 64 (--truncate right)' "$TMP/err" \
  && ok 5_compare_truncate_said || fail 5_compare_truncate_said "$(head -c 200 "$TMP/c.json") $(cat "$TMP/err")"
"$DAM" run $S --attn full -c 1024 -p Once -n 1 >/dev/null 2>"$TMP/err"
has_line 5_run_ctx_above_model_warns "$TMP/err" "warning: -c: 1024 positions, more than the model's max_position_embeddings (512)"
"$DAM" niah $S -c 1024 --lengths 200 --depths 0.5 -q >/dev/null 2>"$TMP/err"
has_line 5_niah_ctx_above_model_warns "$TMP/err" "warning: -c: 1024 positions"
expect_error 5_pcl_past_model_context 1 "--dam-pcl 1000 is larger than the model's context (max_position_embeddings 512)" -- \
  run $S --attn dam --dam-pcl 1000 -p Once -n 1
head -c 12000 prompts/calibration.txt >"$TMP/long.txt"
"$DAM" run $S --attn full -f "$TMP/long.txt" --truncate left -n 600 --temp 0 --json >"$TMP/j" 2>"$TMP/err"
[ "$(json_get "$TMP/j" "j['prompt_tokens']")" = 256 ] && grep -q 'warning: -n 600 does not fit' "$TMP/err" \
  && ok 5_truncate_keeps_half_the_context || fail 5_truncate_keeps_half_the_context "$(json_get "$TMP/j" "j['prompt_tokens']"): $(cat "$TMP/err")"

# ---- 6. a model without tokenizer.json prints ids, and says so
mkdir "$TMP/notok"
cp "$STORIES/config.json" "$STORIES/model.safetensors" "$TMP/notok/"
"$DAM" run -m "$TMP/notok" --attn full --ids 1 -n 4 --temp 0 >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc = 0 ] && [ "$(wc -w <"$TMP/out")" = 4 ] && grep -q 'no tokenizer.json: printing the generated token ids' "$TMP/err" \
  && ok 6_no_tokenizer_prints_ids || fail 6_no_tokenizer_prints_ids "rc $rc, stdout [$(cat "$TMP/out")]: $(cat "$TMP/err")"

# ---- 7. ids outside the vocabulary
expect_error 7_decode_out_of_range 1 "token id 99999999 is out of range (vocabulary of 512)" -- tokenize $S --decode 99999999

# ---- 8. -f takes any readable stream
printf 'Once upon a time' >"$TMP/p.txt"
want=$("$DAM" tokenize $S -p 'Once upon a time' 2>/dev/null)
got=$(cat "$TMP/p.txt" | "$DAM" tokenize $S -f - 2>"$TMP/err")
[ -n "$want" ] && [ "$got" = "$want" ] && ok 8_tokenize_stdin || fail 8_tokenize_stdin "[$got] vs [$want]: $(cat "$TMP/err")"
got=$(cat "$TMP/p.txt" | "$DAM" tokenize $S -f /dev/stdin 2>"$TMP/err")     # a pipe: its size is unknown
[ "$got" = "$want" ] && ok 8_tokenize_dev_stdin_pipe || fail 8_tokenize_dev_stdin_pipe "[$got]: $(cat "$TMP/err")"
mkfifo "$TMP/pfifo"
(printf 'Once upon a time' >"$TMP/pfifo") & writer=$!
a=$("$DAM" run $S --attn full -f "$TMP/pfifo" -n 8 --temp 0 2>"$TMP/err")
wait $writer
b=$("$DAM" run $S --attn full -p 'Once upon a time' -n 8 --temp 0 2>/dev/null)
[ -n "$a" ] && [ "$a" = "$b" ] && ok 8_run_fifo || fail 8_run_fifo "[$a] vs [$b]: $(cat "$TMP/err")"
cat prompts/calibration.txt | "$DAM" calibrate $S -f - --dam-pcl 16 --max-seqs 1 -q -o "$TMP/p16.json" >/dev/null 2>"$TMP/err" \
  && ok 8_calibrate_stdin || fail 8_calibrate_stdin "$(cat "$TMP/err")"

# ---- 9. -t is capped at the CPUs online
cpus=$(env -u OMP_NUM_THREADS nproc)      # the CPUs this process may run on
"$DAM" run $S --attn full -t 1024 -p Once -n 1 --json >"$TMP/j" 2>"$TMP/err"
[ "$(json_get "$TMP/j" "j['threads']")" = "$cpus" ] && grep -q "warning: -t 1024 is more than the $cpus CPUs online" "$TMP/err" \
  && ok 9_threads_capped || fail 9_threads_capped "$(json_get "$TMP/j" "j.get('threads')"): $(cat "$TMP/err")"
"$DAM" run $S --attn full -t $((cpus + 1)) --oversubscribe -p Once -n 1 --json >"$TMP/j" 2>"$TMP/err"
[ "$(json_get "$TMP/j" "j['threads']")" = $((cpus + 1)) ] && ! grep -q 'warning' "$TMP/err" \
  && ok 9_oversubscribe || fail 9_oversubscribe "$(json_get "$TMP/j" "j.get('threads')"): $(cat "$TMP/err")"

# ---- 10. no roofline figure above 100%; tg against a buffer of its own size
"$DAM" bench $S -c 1024 -p 8 -n 8 -r 1 -o json >"$TMP/b.json" 2>"$TMP/err"
has_line 5_bench_ctx_above_model_warns "$TMP/err" "warning: -c: 1024 positions, more than the model's max_position_embeddings (512)"
python3 - "$TMP/b.json" <<'EOF' >"$TMP/py" 2>&1 && ok 10_roofline_at_most_100 || fail 10_roofline_at_most_100 "$(cat "$TMP/py" "$TMP/err")"
import json, sys
r = json.load(open(sys.argv[1]))["results"]
assert r and all(x["peak_fraction"] <= 1 for x in r), [x["peak_fraction"] for x in r]
tg = [x for x in r if x["test"].startswith("tg")]
assert tg and all(x["peak_buffer_bytes"] >= x["bytes_per_token"] for x in tg), tg
EOF

# ---- 11. masks --all: downsampled large heads, the size said
"$DAM" masks $S --dam-profile "$TMP/p16.json" --all --len 512 -o "$TMP/all.svg" >/dev/null 2>"$TMP/err"; rc=$?
size=$(wc -c <"$TMP/all.svg" 2>/dev/null || echo 0)
[ $rc = 0 ] && [ "$size" -lt 3000000 ] && grep -q "wrote $TMP/all.svg, .* KiB (512 positions drawn as 128 x 128 cells of 4 x 4)" "$TMP/err" \
  && python3 -c "import sys, xml.dom.minidom as m; m.parse(sys.argv[1])" "$TMP/all.svg" \
  && ok 11_masks_all_downsampled || fail 11_masks_all_downsampled "rc $rc, $size bytes: $(cat "$TMP/err")"

# ---- 13. errors name the file or value at fault
printf '\377\376garbage' >"$TMP/garbage.bin"
: >"$TMP/empty.txt"
DAM_CALIBRATION="$TMP/garbage.bin" "$DAM" run $S --attn dam -p hi -n 1 >/dev/null 2>"$TMP/err"
has_line 13_calibration_file_named "$TMP/err" "DAM_CALIBRATION $TMP/garbage.bin: invalid UTF-8 at byte 0"
expect_error 13_haystack_named 1 "$TMP/garbage.bin: invalid UTF-8 at byte 0" -- niah $S --lengths 200 --depths 0.5 -q --haystack "$TMP/garbage.bin"
DAM_CALIBRATION="$TMP/empty.txt" "$DAM" run $S --attn dam -p hi -n 1 >/dev/null 2>"$TMP/err"
grep -q "automatic DAM profile from \$DAM_CALIBRATION $TMP/empty.txt: no calibration sequences" "$TMP/err" && ! grep -q 'dam calibrate' "$TMP/err" \
  && ok 13_empty_calibration_named || fail 13_empty_calibration_named "$(cat "$TMP/err")"
expect_error 13_compare_option_value 2 "bad value for tau in --attn 'dam:tau=abc': 'abc' (expected a number from 0 to 100)" -- compare $S --ids 1,2,3 --attn full,dam:tau=abc

# ---- 14. the minor ones
expect_error 14a_out_proc_checked_first 1 "cannot write /proc/version" -- logits $S --ids 1,2,3 --out /proc/version
"$DAM" run $S --attn full -p "" -n 200 --temp 0 --stop Lily --print-ids >"$TMP/ids" 2>/dev/null
text=$("$DAM" tokenize $S --decode "$(tr ' ' ',' <"$TMP/ids")" 2>/dev/null)
[ -n "$text" ] && [ "${text%Lily*}" = "$text" ] && ok 14b_print_ids_stop || fail 14b_print_ids_stop "the ids decode to [$text]"
"$DAM" run $S --attn full -p "" -n 200 --temp 0 --stop Lily --json >"$TMP/j" 2>/dev/null
t=$(json_get "$TMP/j" "j['text']"); ids=$(json_get "$TMP/j" "','.join(map(str, j['ids']))")
d=$("$DAM" tokenize $S --decode "$ids" 2>/dev/null)   # the text may end inside the stop string's first token
[ -n "$d" ] && [ "${t#"$d"}" != "$t" ] && [ "${d%Lily*}" = "$d" ] && ok 14b_json_ids_stop || fail 14b_json_ids_stop "ids $ids decode to [$d], text [$t]"
expect_error 14c_capture_profile_needs_file 2 "--dam-capture profile needs --dam-profile" -- run $S --dam-capture profile -p hi
"$DAM" help run >"$TMP/out" 2>&1; has_line 14d_help_run "$TMP/out" "usage: dam run"
DAM_ISA=bogus "$DAM" run $S --attn full -p hi -n 1 >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc = 2 ] && [ "$(wc -l <"$TMP/err")" = 1 ] && grep -q "DAM_ISA: unknown kernel variant 'bogus'" "$TMP/err" \
  && ok 14e_isa_env_checked || fail 14e_isa_env_checked "rc $rc: $(cat "$TMP/err")"
expect_error 14f_leading_space 2 "bad value for -n: ' 5'" -- run $S --attn full -p hi -n " 5"
expect_error 14f_trailing_comma 2 "bad value for --ids: '1,2,'" -- run $S --attn full --ids 1,2,
"$DAM" run $S --attn full -p hi -n 1 --seed 18446744073709551615 --json >"$TMP/j" 2>"$TMP/err"
grep -q '"seed":[[:space:]]*18446744073709551615,' "$TMP/j" && ok 14f_seed_u64 || fail 14f_seed_u64 "$(cat "$TMP/err") $(grep seed "$TMP/j")"
"$DAM" fetch --help >"$TMP/out" 2>&1; has_line 14g_fetch_help_hf_home "$TMP/out" 'HF_HOME .*XDG_CACHE_HOME/huggingface'
"$DAM" run $S --attn full -n 1 >/dev/null 2>"$TMP/err"; has_line 14h_no_prompt_said "$TMP/err" "warning: no prompt"
"$DAM" run $S --attn full -p a -p b -n 1 >/dev/null 2>"$TMP/err"; has_line 14i_repeated_flag "$TMP/err" "warning: -p is given more than once: the last value ('b')"
"$DAM" run $S --attn full --dam-tau 0.2 -p a -n 1 >/dev/null 2>"$TMP/err"; has_line 14i_inapplicable_flag "$TMP/err" "warning: --dam-tau has no effect"
"$DAM" run $S --attn full -p Once -n 2 >/dev/null 2>"$TMP/err"
[ -n "$(head -1 "$TMP/err")" ] && ok 14j_no_blank_first_line || fail 14j_no_blank_first_line "$(head -3 "$TMP/err")"
"$DAM" run -p Once -n 1 --attn full --json >"$TMP/j" 2>/dev/null
m=$(json_get "$TMP/j" "j['model']")
case "$m" in */../*|"") fail 14k_model_path_canonical "$m";; *) ok 14k_model_path_canonical;; esac
printf 'x' >"$TMP/xdgfile"
XDG_CACHE_HOME="$TMP/xdgfile" "$DAM" run $S --attn dam --dam-pcl 8 -p Once -n 1 >/dev/null 2>"$TMP/err"
has_line 14l_cache_not_writable_said "$TMP/err" "warning: the automatic DAM profile is not cached"
(unset XDG_CACHE_HOME; HOME="$TMP/nohome" "$DAM" run $S --attn dam --dam-pcl 8 -p Once -n 1 >/dev/null 2>"$TMP/err")
[ ! -e "$TMP/nohome" ] && grep -q 'not cached' "$TMP/err" && ok 14m_no_home_created || fail 14m_no_home_created "$(ls -d "$TMP/nohome" 2>&1): $(cat "$TMP/err")"
if [ -n "$DAM_SANITIZED" ]; then
  ASAN_OPTIONS="$ASAN_OPTIONS:allocator_may_return_null=1:max_allocation_size_mb=256" \
    "$DAM" synth --config tests/data/bench/llama-3.2-1b.config.json -o "$TMP/big" >/dev/null 2>"$TMP/err"; rc=$?
else
  (ulimit -v 300000; "$DAM" synth --config tests/data/bench/llama-3.2-1b.config.json -o "$TMP/big" >/dev/null 2>"$TMP/err"); rc=$?
fi
[ $rc = 1 ] && [ ! -e "$TMP/big" ] && grep -q 'out of memory' "$TMP/err" \
  && ok 14n_synth_oom_no_folder || fail 14n_synth_oom_no_folder "rc $rc: $(ls "$TMP/big" 2>&1) $(tail -1 "$TMP/err")"
expect_error 14o_top_zero_alone 2 "--top 0 without --out prints nothing" -- logits $S --ids 1,2,3 --top 0
