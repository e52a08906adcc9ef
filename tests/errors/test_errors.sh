# test_errors.sh — the bad-input matrix of the README's "errors" section
# (/work/notes/README_errors.md): for each row, the exit code, a one-line
# "dam: ..." message on stderr, nothing on stdout, and no partial output file.
# Rows already covered elsewhere are tested there (the table says where); the
# CLI-level cases here check what those unit tests cannot: exit code and one line.
# Run from the repo root: DAM=build/dam sh tests/errors/test_errors.sh
. tests/cli/lib.sh
S="-m $STORIES"
X=/nonexistent/dir

if ! command -v python3 >/dev/null 2>&1; then echo "SKIP: errors: python3 is not installed"; exit 0; fi
python3 tests/errors/bad_models.py "$STORIES" "$TMP/bad" || { fail bad_models "cannot write the bad model folders"; exit 1; }
B="$TMP/bad"

# no_leftovers NAME PATH : PATH and any PATH.tmp* (write_file_atomic's
# temporary) are absent
no_leftovers() {
  left=$(ls -d "$2" "$2".tmp* 2>/dev/null)
  if [ -n "$left" ]; then fail "$1" "left behind: $left"; else ok "$1"; fi
}

# --- model folders, each wrong in one way (unit tests: tests/model/test_weights.c,
#     test_safetensors.c, test_config.c, tests/tokenizer/test_tokenizer_parts.c)
expect_error missing_model_folder 1 "model folder /no/such/model not found" -- run -m /no/such/model -p hi
expect_error missing_shard 1 "model-00002-of-00002.safetensors: No such file" -- run -m "$B/missing_shard" -p hi -n 1
expect_error truncated_shard 1 "model.safetensors: .*past the data buffer" -- run -m "$B/truncated" -p hi -n 1
expect_error header_past_eof 1 "header length 1045092 runs past the end of the file" -- run -m "$B/header_past_eof" -p hi -n 1
expect_error overlapping_tensors 1 "overlap the previous tensor" -- run -m "$B/overlap" -p hi -n 1
expect_error wrong_dtype 1 "model.norm.weight has dtype I32" -- run -m "$B/wrong_dtype" -p hi -n 1
expect_error shape_mismatch 1 "k_proj.weight has shape \[64, 32\], config says \[32, 64\]" -- run -m "$B/shape_mismatch" -p hi -n 1
expect_error config_more_layers 1 "tensor model.layers.5.input_layernorm.weight is missing" -- run -m "$B/config_more_layers" -p hi -n 1
expect_error unknown_architecture 1 "unsupported architecture MistralForCausalLM" -- run -m "$B/unknown_arch" -p hi -n 1
expect_error unknown_rope_type 1 'rope type "yarn" is not supported' -- run -m "$B/unknown_rope" -p hi -n 1
expect_error tokenizer_unknown_model 1 "tokenizer.json: unsupported model Unigram" -- run -m "$B/tokenizer_unigram" -p hi -n 1
expect_error tokenizer_unknown_model_tokenize 1 "unsupported model Unigram" -- tokenize -m "$B/tokenizer_unigram" -p hi
# the same loaders behind the other commands
expect_error logits_truncated 1 "past the data buffer" -- logits -m "$B/truncated" --ids 1,2
expect_error calibrate_wrong_dtype 1 "has dtype I32" -- calibrate -m "$B/wrong_dtype" -f prompts/calibration.txt -o "$TMP/p.json"
no_leftovers calibrate_wrong_dtype_no_file "$TMP/p.json"

# --- prompts
printf 'ok \355\240\200 surrogate' >"$TMP/surrogate.txt"
expect_error invalid_utf8_file 1 "invalid UTF-8 in the input text at byte 3" -- run $S -f "$TMP/surrogate.txt" -n 1
expect_error invalid_utf8_arg 1 "invalid UTF-8 in the input text at byte 4" -- run $S -p "$(printf 'abc \377')" -n 1
expect_error invalid_utf8_tokenize 1 "invalid UTF-8" -- tokenize $S -f "$TMP/surrogate.txt"
expect_error prompt_longer_than_context 1 "the prompt has 30 tokens but the context holds 16" -- run $S --ids "$(seq -s, 1 30)" -c 16 -n 1
expect_error logits_longer_than_context 1 "30 tokens do not fit in a context of 16" -- logits $S --ids "$(seq -s, 1 30)" -c 16

# --- -n 0 is valid: the prompt is evaluated (timings printed), nothing is generated
"$DAM" run $S -p "Once upon" -n 0 >"$TMP/out" 2>"$TMP/err"; rc=$?
if [ $rc = 0 ] && [ ! -s "$TMP/out" ] && grep -q 'prompt eval time' "$TMP/err" && grep -q 'eval time .* 0 runs' "$TMP/err"; then
  ok n_zero_prefill_only
else fail n_zero_prefill_only "rc $rc, stdout [$(head -c 100 "$TMP/out")], $(head -c 300 "$TMP/err")"; fi
"$DAM" run $S -p "Once upon" -n 0 --json >"$TMP/j" 2>/dev/null
[ "$(json_get "$TMP/j" "j['generated_tokens'], j['prompt_tokens'] > 0")" = "0 True" ] && ok n_zero_json || fail n_zero_json "$(head -c 300 "$TMP/j")"
expect_error n_below_minus_one 2 "bad value for -n: -2 (expected -1 to" -- run $S -p hi -n -2

# --- flags: unknown flags and bad values, for every command
for cmd in run logits tokenize calibrate compare masks niah synth fetch; do
  "$DAM" $cmd --frobnicate >"$TMP/out" 2>"$TMP/err" </dev/null; rc=$?
  if [ $rc = 2 ] && [ "$(wc -l <"$TMP/err")" = 1 ] && grep -q -- "--frobnicate" "$TMP/err" && [ ! -s "$TMP/out" ]; then
    ok "unknown_flag_$cmd"
  else fail "unknown_flag_$cmd" "rc $rc: $(head -c 300 "$TMP/err")"; fi
done
expect_error bad_value_int 2 "bad value for -n: 'ten' (expected an integer)" -- run $S -p hi -n ten
expect_error bad_value_range 2 "bad value for --top-p: 1.5 (expected 0 to 1)" -- run $S -p hi --top-p 1.5
expect_error bad_value_ctx 2 "bad value for -c: 0 (expected 1 to" -- run $S -p hi -c 0
expect_error bad_value_threads 2 "bad value for -t: 'many'" -- run $S -p hi -t many
expect_error bad_value_ids 2 "bad value for --ids" -- logits $S --ids 1,,x
expect_error bad_value_top 2 "bad value for --top: -1" -- logits $S --ids 1 --top -1
expect_error bad_value_fallback 2 "bad value for --dam-fallback: 'sometimes'" -- run $S -p hi --dam-fallback sometimes
expect_error bad_value_equals 2 "bad value for --temp.*'hot' (expected a number)" -- run $S -p hi --temp=hot
expect_error missing_value 2 "--seed needs a value" -- run $S -p hi --seed
expect_error bad_value_dtype 2 "dtype" -- synth --config "$STORIES/config.json" -o "$TMP/synth" --dtype f8
expect_error bad_value_task 2 "task" -- niah $S --task riddles
expect_error bad_value_lengths 2 "lengths" -- niah $S --lengths 1k,zz

# --- unwritable output paths: every flag that writes a file
expect_error out_logits 1 "cannot write $X/x.safetensors: folder $X is missing" -- logits $S --ids 1,2,3 --top 0 --out "$X/x.safetensors"
expect_error out_logits_is_dir 1 "cannot write $TMP: " -- logits $S --ids 1,2,3 --top 0 --out "$TMP"
expect_error out_calibrate 1 "cannot write $X/p.json" -- calibrate $S -f prompts/calibration.txt --dam-pcl 16 --max-seqs 1 -q -o "$X/p.json"
expect_error out_niah_jsonl 1 "cannot write $X/a.jsonl" -- niah $S --lengths 200 --depths 0.5 -q --jsonl "$X/a.jsonl"
expect_error out_niah_csv 1 "cannot write $X/a.csv" -- niah $S --lengths 200 --depths 0.5 -q --csv "$X/a.csv"
expect_error out_niah_svg 1 "cannot write $X/a.svg" -- niah $S --lengths 200 --depths 0.5 -q --svg "$X/a.svg"
expect_error out_synth 1 "cannot create $X/model" -- synth --config "$STORIES/config.json" -o "$X/model"
expect_error out_synth_under_file 1 "cannot create $STORIES/config.json/m" -- synth --config "$STORIES/config.json" -o "$STORIES/config.json/m"
# a file that cannot grow (the disk is full): the error, and no half-written file
(
  trap '' XFSZ                 # write() then fails with EFBIG instead of killing dam
  ulimit -f 64                 # 32-64 KiB (the shell's block size); the file needs 200 KiB
  expect_error out_logits_disk_full 1 "cannot write $TMP/full.safetensors: File too large" -- \
    logits $S --ids "$(seq -s, 1 100)" --top 0 --out "$TMP/full.safetensors"
)
no_leftovers out_logits_disk_full_no_file "$TMP/full.safetensors"
# the output path is checked before any work: no table on stdout, one line on stderr
"$DAM" logits $S --ids 1,2,3 --out "$X/x.safetensors" >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc = 1 ] && [ "$(wc -l <"$TMP/err")" = 1 ] && [ ! -s "$TMP/out" ] && grep -q "cannot write $X/x.safetensors" "$TMP/err" \
  && ok out_logits_checked_first || fail out_logits_checked_first "rc $rc: $(cat "$TMP/err")"

# --- a DAM profile made for another model (stories260k) given to tiny-llama3
if "$DAM" calibrate $S -f prompts/calibration.txt --dam-pcl 16 --max-seqs 2 -q -t 1 -o "$TMP/prof.json" >/dev/null 2>"$TMP/err"; then
  expect_error profile_other_model 1 "profile $TMP/prof.json was made for a model with 5 layers, 8 heads, 4 KV heads, head_dim 8; this model has 3 layers" -- \
    run -m third_party/models/tiny-llama3 --attn dam --dam-profile "$TMP/prof.json" --ids 1,2 -n 1
  printf '{"format": "dam-profile", "version": 2, "geometry": 7}' >"$TMP/badprof.json"
  expect_error profile_malformed 1 "missing object 'geometry'" -- run $S --attn dam --dam-profile "$TMP/badprof.json" -p hi -n 1
  expect_error out_masks 1 "cannot write $X/m.svg" -- masks $S --dam-profile "$TMP/prof.json" --layer 0 --head 0 -o "$X/m.svg"
  expect_error profile_missing 1 "cannot open $TMP/none.json" -- run $S --attn dam --dam-profile "$TMP/none.json" -p hi -n 1
else
  fail profile_other_model "dam calibrate failed: $(head -c 300 "$TMP/err")"
fi

# --- the KV cache of a huge -c: a clear error with the bytes needed. calloc
# commits lazily, so an address-space limit is what makes it fail here. Under
# AddressSanitizer (which reserves terabytes of address space) a size limit on
# single allocations does the same.
if [ -n "$DAM_SANITIZED" ]; then
  # (ASan notes each refused allocation on stderr: that line is not dam's)
  ASAN_OPTIONS="$ASAN_OPTIONS:allocator_may_return_null=1:max_allocation_size_mb=4096" \
    "$DAM" run $S --attn full -p hi -n 1 -c 16777216 -t 1 >"$TMP/out" 2>"$TMP/err"; rc=$?
  # (and -c above max_position_embeddings is warned about: not the error line)
  grep -v -e 'WARNING: AddressSanitizer failed to allocate' -e '^dam: warning: -c: ' "$TMP/err" >"$TMP/err2"
  if [ $rc = 1 ] && [ "$(wc -l <"$TMP/err2")" = 1 ] && [ ! -s "$TMP/out" ] &&
     grep -q "cannot allocate the KV cache: 21474836480 bytes needed for 16777216 positions (lower -c)" "$TMP/err2"; then
    ok kv_cache_too_large
  else fail kv_cache_too_large "rc $rc: $(head -c 300 "$TMP/err")"; fi
else
  (
    ulimit -v 4000000
    "$DAM" run $S --attn full -p hi -n 1 -c 16777216 -t 1 >"$TMP/out" 2>"$TMP/err" </dev/null; rc=$?
    # the warning about -c above max_position_embeddings comes first; then the one error line
    grep -v '^dam: warning: -c: 16777216 positions' "$TMP/err" >"$TMP/err2"
    if [ $rc = 1 ] && [ "$(wc -l <"$TMP/err2")" = 1 ] && [ ! -s "$TMP/out" ] &&
       grep -q "cannot allocate the KV cache: 21474836480 bytes needed for 16777216 positions (lower -c)" "$TMP/err2"; then
      ok kv_cache_too_large
    else fail kv_cache_too_large "rc $rc: $(head -c 300 "$TMP/err")"; fi
  )
fi

# --- the hub: a full disk during a download, and a server that never answers
unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_TOKEN_PATH HF_HUB_OFFLINE http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost HF_HOME="$TMP/hf" DAM_HUB_RETRY_BASE_MS=10 DAM_HUB_RETRY_MAX_MS=200
SERVERS=""
trap 'for p in $SERVERS; do kill $p 2>/dev/null; done; rm -rf "$TMP"' EXIT
wait_port() { i=0; while [ ! -s "$1" ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done; cat "$1" 2>/dev/null; }

python3 tests/hub/fake_hub.py serve --model-dir "$STORIES" --port-file "$TMP/hub.port" --log "$TMP/hub.log" \
  --faults "$TMP/faults.json" --idle 60 2>"$TMP/hub.err" &   # (its tracebacks of dropped connections)
SERVERS="$SERVERS $!"
PORT=$(wait_port "$TMP/hub.port")
if [ -z "$PORT" ]; then
  fail hub_disk_full "the fake hub did not start"
else
  export HF_ENDPOINT="http://127.0.0.1:$PORT" HF_HUB_CACHE="$TMP/cache1"
  REPO="$TMP/cache1/models--dam-test--stories260k"
  (
    trap '' XFSZ
    ulimit -f 800              # the small files fit; the 1 MiB weights do not
    expect_error hub_disk_full 1 "model.safetensors: cannot write the download: File too large" -- fetch -q dam-test/stories260k
  )
  snap=$(find "$REPO/snapshots" -name model.safetensors 2>/dev/null)
  part=$(find "$REPO/blobs" -name '*.incomplete' 2>/dev/null)
  if [ -z "$snap" ] && [ -n "$part" ]; then ok hub_disk_full_no_snapshot
  else fail hub_disk_full_no_snapshot "snapshot: [$snap], partial: [$part]"; fi
  # with room again, the same command resumes and completes
  if "$DAM" fetch -q dam-test/stories260k >"$TMP/out" 2>"$TMP/err" && [ -f "$(cat "$TMP/out")/model.safetensors" ] \
     && grep -q 'range=bytes=[1-9][0-9]*-' "$TMP/hub.log" && [ -z "$(find "$REPO/blobs" -name '*.incomplete')" ]; then
    ok hub_disk_full_then_resume
  else fail hub_disk_full_then_resume "$(tail -1 "$TMP/err")"; fi

  # a CDN that sends headers and then nothing: HF_HUB_DOWNLOAD_TIMEOUT, retries, a clear error
  printf '{"seq": 1, "faults": [{"path": "/cdn/", "method": "GET", "kind": "stall", "bytes": 0, "seconds": 30, "times": -1}]}' >"$TMP/faults.json"
  export HF_HUB_CACHE="$TMP/cache2"
  HF_HUB_DOWNLOAD_TIMEOUT=1 timeout 120 "$DAM" fetch -q dam-test/stories260k >"$TMP/out" 2>"$TMP/err"; rc=$?
  if [ $rc = 1 ] && [ "$(wc -l <"$TMP/err")" = 1 ] && grep -q 'cannot download model.safetensors: giving up after 6 tries (no data for 1 s)' "$TMP/err"; then
    ok hub_download_stalls
  else fail hub_download_stalls "rc $rc: $(head -c 300 "$TMP/err")"; fi
  # a hub that keeps answering 503 with "Retry-After: nan" (once a wait that never ended)
  printf '{"seq": 2, "faults": [{"path": "/config.json", "method": "HEAD", "kind": "status", "code": 503, "retry_after": "nan", "times": -1}]}' >"$TMP/faults.json"
  export HF_HUB_CACHE="$TMP/cache4"
  timeout 60 "$DAM" fetch -q dam-test/stories260k >"$TMP/out" 2>"$TMP/err"; rc=$?
  if [ $rc = 1 ] && [ "$(wc -l <"$TMP/err")" = 1 ] && grep -q 'HTTP 503 for config.json' "$TMP/err"; then ok hub_retry_after_nan
  else fail hub_retry_after_nan "rc $rc (124 = hung): $(head -c 300 "$TMP/err")"; fi
  printf '{"seq": 3, "faults": []}' >"$TMP/faults.json"
fi

# a server that accepts connections and never answers: HF_HUB_ETAG_TIMEOUT bounds the HEAD
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16); s.settimeout(0.5)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1])); __import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
held, end = [], time.time() + 90
while time.time() < end:
    try: held.append(s.accept()[0])
    except socket.timeout: pass
' "$TMP/mute.port" &
SERVERS="$SERVERS $!"
MUTE=$(wait_port "$TMP/mute.port")
if [ -z "$MUTE" ]; then fail hub_never_answers "the silent server did not start"
else
  export HF_ENDPOINT="http://127.0.0.1:$MUTE" HF_HUB_CACHE="$TMP/cache3"
  HF_HUB_ETAG_TIMEOUT=1 timeout 60 "$DAM" fetch -q dam-test/stories260k >"$TMP/out" 2>"$TMP/err"; rc=$?
  if [ $rc = 1 ] && [ "$(wc -l <"$TMP/err")" = 1 ] && grep -q "cannot reach http://127.0.0.1:$MUTE (.*[Tt]imed\? out" "$TMP/err" \
     && [ ! -s "$TMP/out" ]; then
    ok hub_never_answers
  else fail hub_never_answers "rc $rc (124 = hung): $(head -c 300 "$TMP/err")"; fi
  HF_HUB_ETAG_TIMEOUT=1 timeout 60 "$DAM" run -m dam-test/stories260k -p hi -n 1 >"$TMP/out" 2>"$TMP/err"; rc=$?
  [ $rc = 1 ] && grep -q "cannot reach" "$TMP/err" && [ ! -s "$TMP/out" ] && ok hub_never_answers_run \
    || fail hub_never_answers_run "rc $rc: $(head -c 300 "$TMP/err")"
fi
