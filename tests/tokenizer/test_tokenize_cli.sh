#!/bin/sh
# test_tokenize_cli.sh — `dam tokenize`: ids, pieces, special tokens, files,
# chat templates, --decode, --bench, and its errors. Run from the repo root
# with $DAM set to the binary (tests/run_all.sh does that).
DAM=${DAM:-build/dam}
SMOL=third_party/tokenizers/smollm2/tokenizer.json
L3=third_party/tokenizers/llama3style
ST=third_party/models/stories260k
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expect NAME WANT CMD...: stdout of CMD (exit 0) must equal WANT
expect() {
  name=$1; want=$2; shift 2
  got=$("$@" 2>"$tmp/err"); rc=$?
  if [ $rc -ne 0 ]; then echo "FAIL $name: exit $rc: $(head -c 300 "$tmp/err")"
  elif [ "$got" != "$want" ]; then echo "FAIL $name: got '$got', want '$want'"
  else echo "ok $name"; fi
}

# fails NAME CODE MESSAGE CMD...: CMD must exit CODE with "dam: ...MESSAGE..." on stderr
fails() {
  name=$1; code=$2; msg=$3; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
  if [ $rc -ne "$code" ]; then echo "FAIL $name: exit $rc, want $code"
  elif ! grep -q "^dam: .*$msg" "$tmp/err"; then echo "FAIL $name: stderr '$(head -c 300 "$tmp/err")' lacks '$msg'"
  else echo "ok $name"; fi
}

if [ ! -x "$DAM" ]; then echo "SKIP: tokenize_cli: $DAM not built"; exit 0; fi

expect ids_smollm2 "[19556, 905]" "$DAM" tokenize -m "$SMOL" -p "Hello world"
expect ids_folder "[1635, 78, 338, 332, 274, 644]" "$DAM" tokenize -m "$L3" -p "Hello world"
expect special_adds_bos "[0, 1635, 78, 338, 332, 274, 644]" "$DAM" tokenize -m "$L3" -p "Hello world" --special
expect empty_prompt "[]" "$DAM" tokenize -m "$ST" -p ""
expect empty_prompt_special "[1]" "$DAM" tokenize -m "$ST" -p "" --special
expect pieces '["<s>", "▁He", "ll", "o", "▁w", "or", "ld"]' "$DAM" tokenize -m "$ST" -p "Hello world" --special --pieces
expect pieces_escaped '["\"", "Ċ"]' "$DAM" tokenize -m "$SMOL" -p '"
' --pieces
expect special_token_in_text "[1, 4093, 198]" "$DAM" tokenize -m "$SMOL" -p "<|im_start|>user
"
printf 'Hello world' >"$tmp/in.txt"
expect file_input "[19556, 905]" "$DAM" tokenize -m "$SMOL" -f "$tmp/in.txt"
expect decode "Hello world" "$DAM" tokenize -m "$SMOL" --decode 19556,905
expect decode_skip_special "user" "$DAM" tokenize -m "$SMOL" --decode 1,4093,2 --skip-special
expect decode_sentencepiece "<s> Hello world" "$DAM" tokenize -m "$ST" --decode 1,346,306,414,263,304,341
expect decode_sentencepiece_skip "Hello world" "$DAM" tokenize -m "$ST" --decode 1,346,306,414,263,304,341 --skip-special

# chat: llama3 text starts with its own BOS; --special must not add a second
got=$("$DAM" tokenize -m "$L3" -p "Hi" --chat --chat-template llama3 --special 2>"$tmp/err")
case "$got" in
  "[0, 0,"*) echo "FAIL chat_llama3_one_bos: BOS doubled: $got";;
  "[0, "[1-9]*) echo "ok chat_llama3_one_bos";;
  *) echo "FAIL chat_llama3_one_bos: '$got' $(head -c 200 "$tmp/err")";;
esac
expect chat_chatml_pieces '["<|im_start|>", "user", "Ċ", "Hi", "<|im_end|>", "Ċ", "<|im_start|>", "ass", "istant", "Ċ"]' \
  "$DAM" tokenize -m "$SMOL" -p "Hi" --chat --chat-template chatml --pieces
mkdir -p "$tmp/model"
cp "$SMOL" "$tmp/model/tokenizer.json"
cat >"$tmp/model/tokenizer_config.json" <<'EOF'
{"chat_template": "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are SmolLM<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"}
EOF
sys_ids=$("$DAM" tokenize -m "$tmp/model" -p "You are SmolLM" 2>/dev/null | tr -d '[]')
got=$("$DAM" tokenize -m "$tmp/model" -p "Hi" --chat 2>"$tmp/err")
case "$got" in
  "[1, 9690, 198, $sys_ids, 2, 198, 1, 4093, 198, "*) echo "ok chat_detected_with_default_system";;
  *) echo "FAIL chat_detected_with_default_system: '$got' $(head -c 200 "$tmp/err")";;
esac
got=$("$DAM" tokenize -m "$tmp/model" -p "Hi" --chat --system "Be brief." --pieces 2>"$tmp/err")
case "$got" in
  '["<|im_start|>", "system", "Ċ", "Be", "Ġbrief", "."'*) echo "ok chat_system_flag";;
  *) echo "FAIL chat_system_flag: '$got'";;
esac

# bench prints bytes, tokens and MB/s
head -c 20000 /dev/zero | tr '\0' 'a' >"$tmp/long.txt"
out=$("$DAM" tokenize -m "$SMOL" -f "$tmp/long.txt" --bench 2>&1)
case "$out" in
  "bytes 20000 tokens "*"encode_MB/s "*"roundtrip exact") echo "ok bench_output";;
  *) echo "FAIL bench_output: '$out'";;
esac

# errors
printf 'ok \377 bad' >"$tmp/bad.txt"
fails invalid_utf8 1 "invalid UTF-8 in the input text at byte 3" "$DAM" tokenize -m "$SMOL" -f "$tmp/bad.txt"
fails chat_without_template 1 "no chat template.*--chat-template" "$DAM" tokenize -m "$L3" -p "Hi" --chat
fails unknown_chat_template 1 "unknown chat template 'zephyr'" "$DAM" tokenize -m "$L3" -p "Hi" --chat --chat-template zephyr
fails no_text 2 "exactly one of -p TEXT or -f FILE" "$DAM" tokenize -m "$SMOL"
fails unknown_flag 2 "unknown flag '--frobnicate'" "$DAM" tokenize -m "$SMOL" -p x --frobnicate
fails missing_model 1 "not found" "$DAM" tokenize -m "$tmp/nowhere" -p x
fails missing_file 1 "cannot open" "$DAM" tokenize -m "$SMOL" -f "$tmp/nowhere.txt"
fails bad_ids 2 "expected comma-separated token ids" "$DAM" tokenize -m "$SMOL" --decode 1,x
exit 0
