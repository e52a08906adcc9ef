# test_prompt_cache.sh — dam run --prompt-cache (hits, a shared prefix, misses,
# every refusal) and -i (questions from a pipe), on the tiny shipped models.
. tests/cli/lib.sh
S="-m $STORIES -t 1"
export XDG_CACHE_HOME="$TMP/xdg"           # nothing of the user's cache is read or written
DOGE=third_party/models/tiny-doge
C="$TMP/c.cache"
head -c 900 tests/attn/heldout_stories.txt >"$TMP/doc.txt"            # 422 tokens: saved at 384
{ head -c 600 "$TMP/doc.txt"; echo " Then the dog ran home."; } >"$TMP/doc2.txt"  # shares ~280: restored at 256
tail -c 900 tests/attn/heldout_stories.txt >"$TMP/other.txt"
# run ARGS... : greedy ids of 12 new tokens; stderr in $TMP/err
run() { "$DAM" run -n 12 --temp 0 --print-ids "$@" 2>"$TMP/err"; }

# --- every module: the answer with the cache (written, then read) is the uncached one
"$DAM" calibrate $S -f prompts/calibration.txt --max-seqs 8 --dam-pcl 32 -q -o "$TMP/p.json" 2>/dev/null
for mod in "full" "window --window-size 32" "dam --dam-profile $TMP/p.json --dam-recent 16 --dam-select 32"; do
  name=${mod%% *}; rm -f "$C"
  want=$(run $S --attn $mod -f "$TMP/doc.txt")
  first=$(run $S --attn $mod -f "$TMP/doc.txt" --prompt-cache "$C"); saved=$(grep -c 'saved 384 tokens' "$TMP/err")
  hit=$(run $S --attn $mod -f "$TMP/doc.txt" --prompt-cache "$C"); restored=$(grep -c 'restored 384 tokens' "$TMP/err")
  [ -n "$want" ] && [ "$want" = "$first" ] && [ "$want" = "$hit" ] && [ "$saved$restored" = 11 ] \
    && ok "same_answer_$name" || fail "same_answer_$name" "[$want] [$first] [$hit] saved $saved restored $restored"
done
ids=$(python3 -c "import random; random.seed(1); print(','.join(str(random.randrange(3, 1000)) for _ in range(300)))")
rm -f "$C"
want=$(run -m $DOGE --ids "$ids"); first=$(run -m $DOGE --ids "$ids" --prompt-cache "$C")
hit=$(run -m $DOGE --ids "$ids" --prompt-cache "$C")
[ -n "$want" ] && [ "$want" = "$first" ] && [ "$want" = "$hit" ] && grep -q 'restored 256 tokens' "$TMP/err" \
  && ok same_answer_dma || fail same_answer_dma "[$want] [$first] [$hit] $(cat "$TMP/err")"

# --- a shared prefix (the same start, another end): restored at the last chunk boundary inside it
rm -f "$C"; run $S --attn full -f "$TMP/doc.txt" --prompt-cache "$C" >/dev/null
want=$(run $S --attn full -f "$TMP/doc2.txt")
got=$(run $S --attn full -f "$TMP/doc2.txt" --prompt-cache "$C" --prompt-cache-ro)
[ "$want" = "$got" ] && grep -q 'restored 256 tokens' "$TMP/err" && ok partial_hit || fail partial_hit "$(cat "$TMP/err")"

# --- a miss: processed in full, the file rewritten; --prompt-cache-ro never writes
cp "$C" "$TMP/before"
run $S --attn full -f "$TMP/other.txt" --prompt-cache "$C" --prompt-cache-ro >/dev/null
grep -q 'not used (the prompt shares 1 of its first tokens' "$TMP/err" && cmp -s "$C" "$TMP/before" \
  && ok miss_read_only || fail miss_read_only "$(cat "$TMP/err")"
"$DAM" run $S --attn full -f "$TMP/other.txt" -n 4 --prompt-cache "$C" --json >"$TMP/j" 2>/dev/null
[ "$(json_get "$TMP/j" "(j['prompt_cache']['restored'], j['prompt_cache']['saved'], j['cached_tokens'])")" = "(0, 384, 0)" ] \
  && ! cmp -s "$C" "$TMP/before" && ok miss_rewrites || fail miss_rewrites "$(cat "$TMP/j")"

# --- refused: one line naming the file and what differs, nothing on stdout
rm -f "$C"; run $S --attn window --window-size 32 -f "$TMP/doc.txt" --prompt-cache "$C" >/dev/null
expect_error refused_module 1 "prompt cache $C was made with --attn window; this run uses full" -- \
  run $S --attn full -f "$TMP/doc.txt" --prompt-cache "$C"
expect_error refused_options 1 "made with window option size=32; this run has size=64" -- \
  run $S --attn window --window-size 64 -f "$TMP/doc.txt" --prompt-cache "$C"
expect_error refused_context 1 "made with a context of 512; this run has 448" -- \
  run $S --attn window --window-size 32 -c 448 -f "$TMP/doc.txt" --prompt-cache "$C"
expect_error refused_model 1 "prompt cache $C was made for another model" -- \
  run -m third_party/models/tiny-llama3 --attn window --window-size 32 --ids 1,2,3 --prompt-cache "$C"
python3 - "$C" "$TMP" <<'EOF'
import sys
data = open(sys.argv[1], 'rb').read()
open(sys.argv[2] + '/v2.cache', 'wb').write(data.replace(b'\nversion 1\n', b'\nversion 2\n', 1))
flip = bytearray(data); flip[-100] ^= 1
open(sys.argv[2] + '/flip.cache', 'wb').write(flip)
open(sys.argv[2] + '/cut.cache', 'wb').write(data[:-1000])
EOF
W="$S --attn window --window-size 32 -f $TMP/doc.txt"
expect_error refused_version 1 "has format version 2; this dam reads version 1" -- run $W --prompt-cache "$TMP/v2.cache"
expect_error corrupted 1 "prompt cache $TMP/flip.cache is corrupted" -- run $W --prompt-cache "$TMP/flip.cache"
expect_error truncated 1 "prompt cache $TMP/cut.cache is truncated" -- run $W --prompt-cache "$TMP/cut.cache"
cp "$TMP/doc.txt" "$TMP/mine.txt"
expect_error not_a_cache 1 "$TMP/mine.txt exists and is not a dam prompt cache: not replaced" -- \
  run $S -f "$TMP/doc.txt" --prompt-cache "$TMP/mine.txt"
cmp -s "$TMP/doc.txt" "$TMP/mine.txt" && ok not_a_cache_untouched || fail not_a_cache_untouched "file changed"
expect_error read_only_missing 1 "cannot read prompt cache $TMP/none" -- run $S -p hi --prompt-cache "$TMP/none" --prompt-cache-ro
expect_error read_only_alone 2 "--prompt-cache-ro needs --prompt-cache" -- run $S -p hi --prompt-cache-ro
expect_error capture_prompt 1 "--dam-capture prompt" -- run $S --attn dam --dam-capture prompt -p hi --prompt-cache "$C"

# --- -i: questions from a pipe, one answer each, exit 0 at EOF
printf 'Once upon a time' >"$TMP/short.txt"
printf 'The dog\n\nThe cat was\nvery big\n' | "$DAM" run $S --attn full -f "$TMP/short.txt" -i -n 6 --temp 0 --json \
  >"$TMP/j" 2>"$TMP/e"; rc=$?
python3 - "$TMP/j" >"$TMP/turns" <<'EOF'
import json, sys
text, d, objs = open(sys.argv[1]).read(), json.JSONDecoder(), []
i = 0
while i < len(text):
    if text[i].isspace(): i += 1; continue
    o, i = d.raw_decode(text, i); objs.append(o)
print(len(objs), [o['generated_tokens'] for o in objs], objs[1]['cached_tokens'] > objs[0]['prompt_tokens'])
EOF
[ $rc = 0 ] && [ "$(cat "$TMP/turns")" = "2 [6, 6] True" ] && ok interactive_two_answers \
  || fail interactive_two_answers "rc $rc: $(cat "$TMP/turns") $(tail -2 "$TMP/e")"
# the first answer is the one-shot answer to the document and the question, on a line of its own
a=$(printf 'The dog\n' | "$DAM" run $S --attn full -f "$TMP/short.txt" -i -n 8 --temp 0 2>/dev/null)
b=$("$DAM" run $S --attn full -p "$(printf 'Once upon a time\nThe dog')" -n 8 --temp 0 2>/dev/null)
[ -n "$a" ] && [ "$a" = "$b" ] && ok interactive_first_turn || fail interactive_first_turn "[$a] vs [$b]"
n=$(printf 'Hi\n\nAnd then?\n' | "$DAM" run $S --attn full -f "$TMP/short.txt" -i --chat --chat-template chatml -n 4 \
  --temp 0 2>&1 >/dev/null | grep -c 'prompt eval time')
[ "$n" = 2 ] && ok interactive_chat || fail interactive_chat "$n answers"
out=$("$DAM" run $S -f "$TMP/short.txt" -i </dev/null 2>/dev/null); rc=$?
[ $rc = 0 ] && [ -z "$out" ] && ok interactive_no_question || fail interactive_no_question "rc $rc [$out]"
expect_error interactive_stdin_document 2 "-i reads the questions from standard input" -- run $S -f - -i

# --- -i and Ctrl-C: it stops the current answer only; the next question is answered; EOF ends (exit 0).
# Answers without end (-n -1, a context of 100000) that only Ctrl-C stops; questions through a FIFO.
mkfifo "$TMP/q"
"$DAM" run $S --attn full -p x -i -n -1 -c 100000 --ignore-eos --temp 0 --print-ids \
  <"$TMP/q" >"$TMP/o" 2>"$TMP/e" &
pid=$!
exec 3>"$TMP/q"
# answer_stopped N: once the answer's tokens flow, one Ctrl-C; then until N answers say "interrupt"
answer_stopped() {
  i=0; while [ ! -s "$TMP/o" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
  kill -INT $pid
  i=0; while [ "$(grep -c 'stop *= interrupt' "$TMP/e")" -lt "$1" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
}
printf 'a\n\n' >&3; answer_stopped 1
: >"$TMP/o"; printf 'b\n\n' >&3; answer_stopped 2
exec 3>&-; wait $pid; rc=$?
[ $rc = 0 ] && [ "$(grep -c 'stop *= interrupt' "$TMP/e")" = 2 ] && ok interactive_ctrl_c \
  || fail interactive_ctrl_c "rc $rc; $(tail -3 "$TMP/e")"
