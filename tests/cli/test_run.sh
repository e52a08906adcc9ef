# test_run.sh — dam run, flag by flag, on the embedded stories260k model.
. tests/cli/lib.sh
S="-m $STORIES"

# --- help and version
"$DAM" run --help >"$TMP/help" 2>&1 && grep -q -- '--repeat-last-n' "$TMP/help" && grep -q -- '--truncate' "$TMP/help" \
  && grep -q -- '--attn' "$TMP/help" && ok run_help || fail run_help "help lacks flags"
"$DAM" --version | grep -q '^dam [0-9]' && ok version || fail version "no version"

# --- greedy ids reproduce the golden story (llama2.c and transformers agree on it)
want=$(python3 -c "import json; print(' '.join(map(str, json.load(open('$STORIES/expected_greedy.json'))['tokens'][1:])))")
got=$("$DAM" run $S --attn full --ids 1 -n 200 --temp 0 --print-ids --ignore-eos 2>/dev/null)
[ "$got" = "$want" ] && ok greedy_ids_golden || fail greedy_ids_golden "ids differ"

# --- empty prompt = BOS; the golden text
"$DAM" run $S --attn full -p "" -n 200 --temp 0 --ignore-eos >"$TMP/story" 2>"$TMP/stderr"
head -c 60 "$TMP/story" | grep -q '^Once upon a time, there was a little girl named Lily\.' && ok empty_prompt_story \
  || fail empty_prompt_story "got: $(head -c 80 "$TMP/story")"
grep -q 'prompt eval time' "$TMP/stderr" && grep -q 'eval time' "$TMP/stderr" && grep -q 'load time' "$TMP/stderr" \
  && grep -q 'attention *= ' "$TMP/stderr" && ok timings_on_stderr || fail timings_on_stderr "$(cat "$TMP/stderr")"
grep -q 'prompt eval' "$TMP/story" && fail stdout_is_text_only "timings on stdout" || ok stdout_is_text_only
grep -q 'prompt:' "$TMP/stderr" && fail no_progress_without_tty "progress shown" || ok no_progress_without_tty

# --- text prompt, -f FILE and -f - give the same greedy answer
printf 'Once upon a time' >"$TMP/p.txt"
a=$("$DAM" run $S -p "Once upon a time" -n 30 --temp 0 2>/dev/null)
b=$("$DAM" run $S -f "$TMP/p.txt" -n 30 --temp 0 2>/dev/null)
c=$("$DAM" run $S -f - -n 30 --temp 0 <"$TMP/p.txt" 2>/dev/null)
[ -n "$a" ] && [ "$a" = "$b" ] && [ "$b" = "$c" ] && ok prompt_file_stdin || fail prompt_file_stdin "differ: [$a] [$b] [$c]"

# --- -n bounds the count; --json is one object with the figures
"$DAM" run $S -p "Once" -n 7 --temp 0 --ignore-eos --json >"$TMP/j" 2>/dev/null
[ "$(json_get "$TMP/j" "j['generated_tokens']")" = 7 ] && [ "$(json_get "$TMP/j" "len(j['ids'])")" = 7 ] \
  && ok n_predict || fail n_predict "$(cat "$TMP/j")"
json_get "$TMP/j" "j['attn'], j['attn_stats']['sparsity'], j['attn_stats']['kv_bytes'], j['timings']['prompt_ms'], j['timings']['eval_tokens_per_second'], j['text'], j['prompt_tokens']" >/dev/null \
  && ok json_fields || fail json_fields "$(cat "$TMP/j")"

# --- sampling: same seed same text, other seed other text
x=$("$DAM" run $S -p "Once" -n 40 --temp 1 --seed 7 2>/dev/null)
y=$("$DAM" run $S -p "Once" -n 40 --temp 1 --seed 7 2>/dev/null)
z=$("$DAM" run $S -p "Once" -n 40 --temp 1 --seed 8 2>/dev/null)
[ "$x" = "$y" ] && ok seed_repeatable || fail seed_repeatable "differ"
[ "$x" != "$z" ] && ok seed_changes || fail seed_changes "same text for seeds 7 and 8"
g=$("$DAM" run $S -p "Once" -n 40 --temp 0 2>/dev/null)
k=$("$DAM" run $S -p "Once" -n 40 --temp 1.5 --top-k 1 --seed 3 2>/dev/null)
[ "$g" = "$k" ] && ok top_k || fail top_k "top-k 1 differs from greedy"
p=$("$DAM" run $S -p "Once" -n 40 --temp 1.5 --top-k 0 --top-p 0.0001 --seed 3 2>/dev/null)
[ "$g" = "$p" ] && ok top_p || fail top_p "top-p tiny differs from greedy"
mp=$("$DAM" run $S -p "Once" -n 40 --temp 1.5 --top-k 0 --top-p 1 --min-p 1 --seed 3 2>/dev/null)
[ "$g" = "$mp" ] && ok min_p || fail min_p "min-p 1 differs from greedy"
r=$("$DAM" run $S -p "Once" -n 40 --temp 0 --repeat-penalty 1.8 --repeat-last-n 64 2>/dev/null)
r0=$("$DAM" run $S -p "Once" -n 40 --temp 0 --repeat-penalty 1.8 --repeat-last-n 0 2>/dev/null)
[ "$r" != "$g" ] && [ "$r0" = "$g" ] && ok repeat_penalty || fail repeat_penalty "penalty had no effect or last-n 0 did"

# --- --stop ends the text before the stop string
"$DAM" run $S --attn full -p "" -n 200 --temp 0 --stop "Lily" --json >"$TMP/j" 2>/dev/null
[ "$(json_get "$TMP/j" "j['text']")" = "Once upon a time, there was a little girl named " ] \
  && [ "$(json_get "$TMP/j" "j['stop_reason']")" = stop ] && ok stop_string || fail stop_string "$(json_get "$TMP/j" "repr(j['text'])")"
out=$("$DAM" run $S --attn full -p "" -n 200 --temp 0 --stop "Lily" 2>/dev/null)
[ "$out" = "Once upon a time, there was a little girl named " ] && ok stop_string_stream || fail stop_string_stream "[$out]"

# --- EOS ids of generation_config.json stop generation, --ignore-eos does not.
# (stories260k never says EOS greedily, so a copy declares token 261, its third token, an EOS too.)
mkdir "$TMP/eos"; cp $STORIES/config.json $STORIES/tokenizer.json "$TMP/eos/"
ln -s "$PWD/$STORIES/model.safetensors" "$TMP/eos/model.safetensors"
echo '{"eos_token_id": [2, 261]}' >"$TMP/eos/generation_config.json"
"$DAM" run -m "$TMP/eos" --attn full --ids 1 -n 50 --temp 0 --json >"$TMP/j" 2>/dev/null
[ "$(json_get "$TMP/j" "j['stop_reason']")" = eos ] && [ "$(json_get "$TMP/j" "j['ids']")" = "[403, 407]" ] \
  && ok stops_at_eos || fail stops_at_eos "$(cat "$TMP/j")"
"$DAM" run -m "$TMP/eos" --ids 1 -n 50 --temp 0 --ignore-eos --json >"$TMP/j" 2>/dev/null
[ "$(json_get "$TMP/j" "j['generated_tokens']")" = 50 ] && ok ignore_eos || fail ignore_eos "$(cat "$TMP/j")"

# --- context: too long is an error with both numbers; --truncate cuts
expect_error prompt_too_long 1 "the prompt has 30 tokens but the context holds 16" -- run $S --ids "$(seq -s, 1 30)" -c 16 -n 1
"$DAM" run $S --ids "$(seq -s, 1 30)" -c 16 -n 4 --truncate left --temp 0 --json >"$TMP/j" 2>"$TMP/e"
[ "$(json_get "$TMP/j" "j['prompt_tokens']")" = 12 ] && grep -q 'cut to 12' "$TMP/e" && ok truncate_left || fail truncate_left "$(cat "$TMP/e")"
"$DAM" run $S --ids "$(seq -s, 1 30)" -c 16 -n 4 --truncate middle --temp 0 --json >"$TMP/j" 2>/dev/null
[ "$(json_get "$TMP/j" "j['prompt_tokens']")" = 12 ] && ok truncate_middle || fail truncate_middle "$(cat "$TMP/j")"
"$DAM" run $S --ids 1 -n -1 -c 20 --temp 0 --ignore-eos --json >"$TMP/j" 2>/dev/null
[ "$(json_get "$TMP/j" "j['generated_tokens']")" = 20 ] && [ "$(json_get "$TMP/j" "j['stop_reason']")" = context ] \
  && ok until_context_full || fail until_context_full "$(cat "$TMP/j")"

# --- attention modules and threads; dam is the default
"$DAM" run $S -p "Once" -n 5 --temp 0 --json >"$TMP/j" 2>/dev/null
[ "$(json_get "$TMP/j" "j['attn']")" = dam ] && ok attn_default_dam || fail attn_default_dam "$(cat "$TMP/j")"
"$DAM" run $S -p "Once" -n 5 --temp 0 --attn full -t 1 --json >"$TMP/j" 2>/dev/null
[ "$(json_get "$TMP/j" "j['attn']")" = full ] && ok attn_full || fail attn_full "$(cat "$TMP/j")"
expect_error unknown_attn 2 "unknown attention module 'nope' (available: full" -- run $S -p x --attn nope

# --- the default model: DAM_MODEL, else the embedded one
DAM_MODEL=$STORIES "$DAM" run --ids 1 -n 3 --temp 0 --print-ids >/dev/null 2>&1 && ok default_model_env || fail default_model_env "DAM_MODEL ignored"
"$DAM" run --ids 1 -n 3 --temp 0 --print-ids >/dev/null 2>&1 && ok default_model_embedded || fail default_model_embedded "no embedded model"

# --- chat: stories260k has no template; a forced one works
expect_error chat_no_template 1 "chat" -- run $S -p hi --chat -n 2
"$DAM" run $S -p hi --chat --chat-template chatml --system "be brief" -n 2 --temp 0 >/dev/null 2>&1 && ok chat_forced || fail chat_forced "forced template failed"

# --- bad input: one line, non-zero exit, nothing on stdout
expect_error missing_model 1 "model folder /no/such/model not found" -- run -m /no/such/model -p hi
expect_error unknown_flag 2 "unknown flag '--frobnicate'" -- run $S --frobnicate
expect_error bad_n 2 "bad value for -n: 'abc'" -- run $S -p hi -n abc
expect_error bad_temp 2 "bad value for --temp" -- run $S -p hi --temp -1
expect_error bad_top_p 2 "bad value for --top-p" -- run $S -p hi --top-p 2
expect_error missing_value 2 "needs a value" -- run $S -p
expect_error unreadable_file 1 "cannot open /no/such/file" -- run $S -f /no/such/file
expect_error two_inputs 2 "only one of" -- run $S -p a --ids 1
expect_error bad_ids 2 "bad value for --ids" -- run $S --ids 1,x
expect_error id_out_of_range 1 "out of range" -- run $S --ids 1,99999 -n 1
expect_error bad_truncate 2 "bad value for --truncate" -- run $S -p hi --truncate right
printf '\377\376 bad' >"$TMP/bad.txt"
expect_error invalid_utf8 1 "UTF-8" -- run $S -f "$TMP/bad.txt" -n 1
expect_error unknown_command 2 "unknown command 'frob'" -- frob

# --- Ctrl-C: the text so far is flushed, timings printed, exit 130
"$DAM" run -m third_party/models/tiny-llama3 --ids 0 -n -1 -c 100000 --ignore-eos --temp 0 --print-ids >"$TMP/o" 2>"$TMP/e" &
pid=$!
# SIGINT only once tokens flow: a background job starts with SIGINT ignored, and a
# signal sent before dam installs its handler (a slow start: sanitizers, a loaded
# machine) would be lost and the run would go on to the end of the context.
i=0; while [ ! -s "$TMP/o" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.5; kill -INT $pid; wait $pid; rc=$?
[ $rc -eq 130 ] && grep -q 'eval time' "$TMP/e" && grep -q 'interrupt' "$TMP/e" && [ -s "$TMP/o" ] && ok ctrl_c \
  || fail ctrl_c "rc $rc; $(tail -3 "$TMP/e")"

# --- a continuation decodes as one: prompt text + generated text = the whole story
cont=$("$DAM" run $S --attn full -p "Once upon a time" -n 12 --temp 0 2>/dev/null)
full=$("$DAM" run $S --attn full -p "" -n 16 --temp 0 2>/dev/null)
case "$full" in "Once upon a time$cont"*) ok continuation_spacing ;; *) fail continuation_spacing "[$cont] vs [$full]" ;; esac
