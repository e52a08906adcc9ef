#!/bin/sh
# test_fetch.sh — `dam fetch` against a fake hub (tests/hub/fake_hub.py) on
# 127.0.0.1, with HF_ENDPOINT / HF_HOME / HF_HUB_CACHE in a temporary folder.
# Prints one line per case: "ok NAME", "FAIL NAME: why" or "SKIP: NAME: why".
# Run from the repo root: DAM=build/dam sh tests/hub/test_fetch.sh
DAM=${DAM:-build/dam}
MODEL=third_party/models/stories260k
HUB="python3 tests/hub/fake_hub.py"
TOKEN=hf_fake_test_token

if ! command -v python3 >/dev/null 2>&1; then echo "SKIP: hub fetch: python3 is not installed"; exit 0; fi
if [ ! -x "$DAM" ]; then echo "FAIL hub fetch: $DAM is not built"; exit 1; fi

T=$(mktemp -d /tmp/damhubXXXXXX)
SERVER=""
cleanup() {
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- the fake hub: a free port, its own idle timeout as a safety net ----
$HUB serve --model-dir "$MODEL" --port-file "$T/port" --log "$T/log" --faults "$T/faults.json" \
    --token "$TOKEN" --idle 60 &
SERVER=$!
i=0
while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -s "$T/port" ]; then echo "FAIL hub fetch: the fake hub did not start"; exit 1; fi
PORT=$(cat "$T/port")
: >"$T/log"

# Only the fake hub: no proxy, no token, no offline mode from the caller.
unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_TOKEN_PATH HF_HUB_OFFLINE HUGGINGFACE_HUB_CACHE \
      http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
export HF_ENDPOINT="http://127.0.0.1:$PORT" HF_HOME="$T/home"
export DAM_HUB_RETRY_BASE_MS=10 DAM_HUB_RETRY_MAX_MS=3000   # short backoff (Retry-After still honoured)

# ---- helpers ----
N=0
fresh() { N=$((N + 1)); CACHE="$T/cache$N"; export HF_HUB_CACHE="$CACHE"; }
SEQ=0
faults() {   # the fake hub rereads this file on every request; a new seq re-arms the faults
    SEQ=$((SEQ + 1))
    printf '{"seq": %d, "faults": %s}\n' "$SEQ" "$1" >"$T/faults.tmp" && mv "$T/faults.tmp" "$T/faults.json"
}
mark() { MARK=$(wc -l <"$T/log"); }
since() { tail -n +$((MARK + 1)) "$T/log"; }          # the requests after mark
fetch() { "$DAM" fetch "$@" >"$T/out" 2>"$T/err"; }
blob_sha1() {   # the hub's etag of a small file: git's blob hash, sha1("blob SIZE\0" + bytes)
    { printf 'blob %d\000' "$(wc -c <"$1")"; cat "$1"; } | sha1sum | cut -d' ' -f1
}
sha256() { sha256sum "$1" | cut -d' ' -f1; }
WHY=""
check() { [ -n "$WHY" ] || WHY="$1"; }                 # keeps the first reason
report() { if [ -z "$WHY" ]; then echo "ok $1"; else echo "FAIL $1: $WHY"; fi; WHY=""; }
err_line() { tail -1 "$T/err"; }
LFS_ETAG=$(sha256 "$MODEL/model.safetensors")

# ---- layout: the cache byte for byte ----
fresh
REPO="$CACHE/models--dam-test--stories260k"
if fetch dam-test/stories260k; then
    SNAP=$(cat "$T/out")
    C=$(basename "$SNAP")
    [ "$(wc -l <"$T/out")" = 1 ] || check "stdout is not one line"
    [ "$SNAP" = "$REPO/snapshots/$C" ] || check "printed $SNAP"
    echo "$C" | grep -qE '^[0-9a-f]{40}$' || check "commit '$C'"
    printf %s "$C" | cmp -s - "$REPO/refs/main" || check "refs/main does not hold exactly the commit"
    for f in config.json generation_config.json tokenizer.json; do
        e=$(blob_sha1 "$MODEL/$f")
        [ "$(readlink "$SNAP/$f")" = "../../blobs/$e" ] || check "$f links to $(readlink "$SNAP/$f"), not ../../blobs/$e"
        cmp -s "$REPO/blobs/$e" "$MODEL/$f" || check "blob of $f differs"
    done
    [ "$(readlink "$SNAP/model.safetensors")" = "../../blobs/$LFS_ETAG" ] || check "model.safetensors link"
    cmp -s "$REPO/blobs/$LFS_ETAG" "$MODEL/model.safetensors" || check "weights blob differs"
    [ "$(ls "$SNAP" | tr '\n' ' ')" = "config.json generation_config.json model.safetensors tokenizer.json " ] ||
        check "snapshot holds: $(ls "$SNAP" | tr '\n' ' ')"
    [ "$(ls "$REPO/blobs" | wc -l)" = 4 ] || check "blobs: $(ls "$REPO/blobs" | tr '\n' ' ')"
    for f in tokenizer_config.json model.safetensors.index.json; do
        [ -f "$REPO/.no_exist/$C/$f" ] && [ ! -s "$REPO/.no_exist/$C/$f" ] || check "no .no_exist/$C/$f"
    done
    [ -f "$CACHE/.locks/models--dam-test--stories260k/$LFS_ETAG.lock" ] || check "no lock file"
else
    check "$(err_line)"
fi
report "fetch: cache layout (blobs, relative snapshot links, refs/main, .no_exist)"
LAYOUT_CACHE=$CACHE

# ---- a second fetch of a complete model: one HEAD, no GET ----
mark
if fetch dam-test/stories260k; then
    [ "$(cat "$T/out")" = "$SNAP" ] || check "printed $(cat "$T/out")"
    [ "$(since | grep -c '^GET')" = 0 ] || check "made GET requests: $(since | grep '^GET' | head -1)"
    [ "$(since | grep -c '^HEAD')" = 1 ] || check "$(since | grep -c '^HEAD') HEAD requests, expected 1"
else check "$(err_line)"; fi
report "fetch: a complete model costs one HEAD and no GET"

mark
if fetch dam-test/stories260k --revision "$C"; then
    [ "$(cat "$T/out")" = "$SNAP" ] || check "printed $(cat "$T/out")"
    [ -z "$(since)" ] || check "made requests: $(since | head -1)"
else check "$(err_line)"; fi
report "fetch: --revision COMMIT of a cached model makes no request"

if fetch dam-test/stories260k --revision v1.0; then
    printf %s "$C" | cmp -s - "$REPO/refs/v1.0" || check "refs/v1.0 does not hold the commit"
else check "$(err_line)"; fi
report "fetch: --revision TAG writes refs/TAG"

# ---- offline ----
mark
if HF_HUB_OFFLINE=1 fetch dam-test/stories260k; then
    [ "$(cat "$T/out")" = "$SNAP" ] || check "printed $(cat "$T/out")"
else check "$(err_line)"; fi
cp -a "$CACHE" "$T/offline"
rm "$T/offline/models--dam-test--stories260k/snapshots/$C/model.safetensors"
if HF_HUB_CACHE="$T/offline" HF_HUB_OFFLINE=1 fetch dam-test/stories260k; then check "succeeded without the weights"
else
    err_line | grep -q 'HF_HUB_OFFLINE.*model\.safetensors' || check "message: $(err_line)"
    [ "$(wc -l <"$T/err")" = 1 ] || check "more than one line on stderr"
fi
if HF_HUB_OFFLINE=1 fetch dam-test/sharded; then check "succeeded for an uncached repo"
else err_line | grep -q 'not in the cache' || check "message: $(err_line)"; fi
[ -z "$(since)" ] || check "offline made requests: $(since | head -1)"
report "fetch: HF_HUB_OFFLINE=1 uses the cache only and names what is missing"

# ---- no network: a complete cached copy is used ----
if HF_ENDPOINT=http://127.0.0.1:1 fetch dam-test/stories260k; then
    [ "$(cat "$T/out")" = "$SNAP" ] || check "printed $(cat "$T/out")"
    grep -q 'using the cached snapshot' "$T/err" || check "no note on stderr"
else check "$(err_line)"; fi
if HF_ENDPOINT=http://127.0.0.1:1 fetch dam-test/sharded; then check "succeeded for an uncached repo"
else err_line | grep -q 'cannot reach' || check "message: $(err_line)"; fi
report "fetch: unreachable hub falls back to a complete cached snapshot"

# ---- resume after a dropped connection ----
fresh
faults '[{"path": "/cdn/", "method": "GET", "kind": "drop", "bytes": 300000}]'
mark
if fetch dam-test/stories260k; then
    cdn=$(since | grep '^GET /cdn/')
    [ "$(echo "$cdn" | wc -l)" = 2 ] || check "expected 2 CDN GETs, got: $cdn"
    echo "$cdn" | head -1 | grep -q 'range=-' || check "first GET had a Range"
    echo "$cdn" | sed -n 2p | grep -q 'range=bytes=300000- status=206' || check "second GET: $(echo "$cdn" | sed -n 2p)"
    [ "$(sha256 "$CACHE/models--dam-test--stories260k/blobs/$LFS_ETAG")" = "$LFS_ETAG" ] || check "blob corrupt"
    grep -q 'resumed at' "$T/err" || check "no 'resumed at' in the progress line"
else check "$(err_line)"; fi
report "fetch: resumes with Range after a dropped connection"

fresh
faults '[{"path": "/cdn/", "method": "GET", "kind": "drop", "bytes": 300000},
                 {"path": "/cdn/", "method": "GET", "kind": "ignore_range"}]'
mark
if fetch dam-test/stories260k; then
    since | grep '^GET /cdn/' | sed -n 2p | grep -q 'range=bytes=300000- status=200' ||
        check "second GET: $(since | grep '^GET /cdn/' | sed -n 2p)"
    [ "$(sha256 "$CACHE/models--dam-test--stories260k/blobs/$LFS_ETAG")" = "$LFS_ETAG" ] || check "blob corrupt"
else check "$(err_line)"; fi
report "fetch: restarts from zero when a range request gets 200"

# ---- retries: 500, 429 with Retry-After, 503 ----
fresh
faults '[{"path": "/config.json", "method": "HEAD", "kind": "status", "code": 500},
                 {"path": "/cdn/", "method": "GET", "kind": "status", "code": 429, "retry_after": 1},
                 {"path": "/cdn/", "method": "GET", "kind": "status", "code": 503}]'
mark
if fetch dam-test/stories260k; then
    heads=$(since | grep '^HEAD /dam-test/stories260k/resolve/main/config.json' | sed 's/.*status=\([0-9]*\).*/\1/' | tr '\n' ' ')
    [ "$heads" = "500 200 " ] || check "config.json HEAD statuses: $heads"
    cdn=$(since | grep '^GET /cdn/' | sed 's/.*status=\([0-9]*\).*/\1/' | tr '\n' ' ')
    [ "$cdn" = "429 503 200 " ] || check "CDN statuses: $cdn"
    # Retry-After: 1 was honoured (the backoff alone would wait 10-20 ms).
    gap=$(since | grep '^GET /cdn/' | sed 's/.*t=//' | awk 'NR == 1 { a = $1 } NR == 2 { printf "%d", ($1 - a) * 1000 }')
    [ "${gap:-0}" -ge 900 ] || check "retried ${gap} ms after a 429 with Retry-After: 1"
else check "$(err_line)"; fi
report "fetch: retries 500, 429 (Retry-After) and 503"

# ---- a file whose bytes do not match its SHA-256 ----
fresh
faults '[{"path": "/cdn/", "method": "GET", "kind": "corrupt", "times": -1}]'
if fetch dam-test/stories260k; then check "accepted a corrupt file"
else
    err_line | grep -q '^dam: model.safetensors is corrupt: its SHA-256' || check "message: $(err_line)"
    [ -z "$(find "$CACHE" -path '*/snapshots/*' -name model.safetensors)" ] || check "model.safetensors is in snapshots/"
    left=$(find "$CACHE" -name "$LFS_ETAG*" ! -path '*/.locks/*')
    [ -z "$left" ] || check "left $left"
fi
faults '[]'
report "fetch: a corrupt LFS file is rejected and nothing enters snapshots/"

# ---- tokens: sent to the hub, never to the CDN host, never printed ----
fresh
if fetch dam-test/gated; then check "a gated repo without a token succeeded"
else err_line | grep -q 'gated.*HF_TOKEN' || check "message: $(err_line)"; fi
mark
if HF_TOKEN=$TOKEN fetch dam-test/gated; then
    [ -n "$(since | grep 'host=localhost')" ] || check "no request reached the CDN host"
    [ -z "$(since | grep 'host=localhost' | grep 'auth=yes')" ] || check "the token went to the CDN host"
    [ -z "$(since | grep 'host=127.0.0.1' | grep 'auth=no')" ] || check "a hub request had no token"
    ! grep -q "$TOKEN" "$T/out" "$T/err" || check "the token was printed"
else check "$(err_line)"; fi
fresh
mkdir -p "$HF_HOME" && printf '%s\n' "$TOKEN" >"$HF_HOME/token"
fetch dam-test/gated || check "with \$HF_HOME/token: $(err_line)"
rm -f "$HF_HOME/token"
report "fetch: token to the hub only (HF_TOKEN, \$HF_HOME/token), gated repos explained"

# ---- names that could leave the cache ----
fresh
mark
for args in "../../etc" "dam-test/../x" "/etc/passwd" "dam-test/a/b" "dam-test/a;b" "dam-test/a*b" \
            "dam-test/stories260k --include ../../x" "dam-test/stories260k --include /etc/passwd" \
            "dam-test/stories260k --include a;b" "dam-test/stories260k --revision ../../x" \
            "dam-test/stories260k --revision /abs"; do
    # shellcheck disable=SC2086
    if fetch $args; then check "accepted: $args"
    else err_line | grep -qE 'invalid|refusing' || check "$args: $(err_line)"; fi
done
[ -z "$(since)" ] || check "bad names made requests: $(since | head -1)"
if fetch dam-test/evil; then check "accepted a shard named ../../../../evil.safetensors"
else err_line | grep -q "refusing file name '../../../../evil.safetensors'" || check "evil: $(err_line)"; fi
if fetch dam-test/evil-list --include '*.md'; then check "accepted ../escape.md from the file list"
else err_line | grep -q "refusing file name '../escape.md'" || check "evil-list: $(err_line)"; fi
[ -z "$(find "$T" -name 'evil.safetensors' -o -name 'escape.md')" ] || check "a file escaped"
report "fetch: repo ids, revisions and file names that could escape are refused"

# ---- renamed repo (relative redirect), sharded weights, --include ----
fresh
mark
if fetch old-name/stories260k; then
    since | grep -q '^HEAD /old-name/stories260k/resolve/main/config.json .*status=307' || check "no 307 seen"
    [ -d "$CACHE/models--old-name--stories260k/snapshots" ] || check "no models--old-name--stories260k"
else check "$(err_line)"; fi
report "fetch: follows a relative redirect (renamed repo)"

if fetch dam-test/sharded; then
    S=$(cat "$T/out")
    for f in config.json tokenizer.json model.safetensors.index.json \
             model-00001-of-00002.safetensors model-00002-of-00002.safetensors; do
        [ -f "$S/$f" ] || check "missing $f"
    done
    cat "$S/model-00001-of-00002.safetensors" "$S/model-00002-of-00002.safetensors" |
        cmp -s - "$MODEL/model.safetensors" || check "shards do not add up to the weights"
else check "$(err_line)"; fi
report "fetch: sharded weights from model.safetensors.index.json"

if fetch dam-test/stories260k --include '*.md' special_tokens_map.json; then
    S=$(cat "$T/out")
    cmp -s "$S/special_tokens_map.json" "$MODEL/special_tokens_map.json" || check "special_tokens_map.json"
    [ -f "$S/README.md" ] || check "no README.md"
    printf 'notes in a sub-folder\n' | cmp -s - "$S/docs/notes.md" || check "docs/notes.md"
    readlink "$S/docs/notes.md" | grep -q '^\.\./\.\./\.\./blobs/[0-9a-f]\{40\}$' || check "docs/notes.md links to $(readlink "$S/docs/notes.md")"
else check "$(err_line)"; fi
if fetch dam-test/stories260k --include nothing-here.txt; then check "a missing --include file succeeded"
else err_line | grep -q 'has no nothing-here.txt' || check "message: $(err_line)"; fi
report "fetch: --include names and globs (nested paths link with ../../../blobs)"

# ---- a stalled download: low-speed timeout, then resume ----
fresh
faults '[{"path": "/cdn/", "method": "GET", "kind": "stall", "bytes": 200000, "seconds": 4}]'
mark
if HF_HUB_DOWNLOAD_TIMEOUT=1 fetch dam-test/stories260k; then
    since | grep '^GET /cdn/' | sed -n 2p | grep -q 'range=bytes=200000-' || check "no resume: $(since | grep '^GET /cdn/' | tr '\n' '|')"
else check "$(err_line)"; fi
report "fetch: a stalled connection times out and resumes"

# ---- Ctrl-C: a resumable partial file, no broken snapshot ----
fresh
faults '[{"path": "/cdn/", "method": "GET", "kind": "stall", "bytes": 400000, "seconds": 20}]'
PARTIAL="$CACHE/models--dam-test--stories260k/blobs/$LFS_ETAG.incomplete"
# A background job of a script ignores SIGINT; restore the default so it acts like Ctrl-C.
env --default-signal=INT "$DAM" fetch dam-test/stories260k >"$T/out" 2>"$T/err" &
JOB=$!
i=0
while [ "$(stat -c %s "$PARTIAL" 2>/dev/null || echo 0)" != 400000 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -INT $JOB 2>/dev/null
wait $JOB; rc=$?
[ $rc = 130 ] || check "exit code $rc after Ctrl-C (130 expected, as every command gives)"
err_line | grep -q 'interrupted' || check "message: $(err_line)"
[ "$(stat -c %s "$PARTIAL" 2>/dev/null)" = 400000 ] || check "partial file has $(stat -c %s "$PARTIAL" 2>/dev/null) bytes, expected 400000"
[ ! -e "$(dirname "$(dirname "$PARTIAL")")/snapshots/$C/model.safetensors" ] || check "model.safetensors is in snapshots/"
mark
if fetch dam-test/stories260k; then
    since | grep '^GET /cdn/' | head -1 | grep -q 'range=bytes=400000-' || check "did not resume: $(since | grep '^GET /cdn/' | head -1)"
    [ ! -e "$PARTIAL" ] || check "the .incomplete file stayed"
else check "$(err_line)"; fi
report "fetch: Ctrl-C exits 130 and leaves a resumable .incomplete, never a broken snapshot"

# ---- dam run -m ORG/NAME: resolved through the cache, fetched when missing ----
fresh
if ! "$DAM" run -m "$MODEL" --ids 1 -n 8 --temp 0 --print-ids -t 1 >"$T/want" 2>"$T/err"; then
    echo "SKIP: fetch: dam run -m REPO_ID: dam run fails on the local model ($(err_line))"
else
    mark
    if "$DAM" run -m dam-test/stories260k --ids 1 -n 8 --temp 0 --print-ids -t 1 >"$T/out" 2>"$T/err"; then
        cmp -s "$T/out" "$T/want" || check "output differs from the local folder's"
        [ -n "$(since | grep '^GET /cdn/')" ] || check "the weights were not fetched"
        [ -f "$CACHE/models--dam-test--stories260k/snapshots/$C/model.safetensors" ] || check "no snapshot"
    else check "$(err_line)"; fi
    mark
    HF_HUB_OFFLINE=1 "$DAM" run -m dam-test/stories260k --ids 1 -n 8 --temp 0 --print-ids -t 1 >"$T/out" 2>"$T/err" ||
        check "offline: $(err_line)"
    [ -z "$(since)" ] || check "offline run made requests"
    report "fetch: dam run -m REPO_ID fetches into the cache, then runs offline"
fi

# ---- errors and flags ----
fresh
fetch dam-test/nothing; rc=$?
[ $rc = 1 ] && err_line | grep -q 'repository dam-test/nothing not found' || check "unknown repo: rc $rc, $(err_line)"
fetch dam-test/stories260k --revision nope; rc=$?
[ $rc = 1 ] && err_line | grep -q "revision 'nope' not found" || check "unknown revision: rc $rc, $(err_line)"
"$DAM" fetch --help >"$T/out" 2>&1 || check "--help failed"
for flag in --revision --include --quiet HF_ENDPOINT HF_TOKEN HF_HOME HF_HUB_CACHE HF_HUB_OFFLINE DAM_HUB_RETRY_BASE_MS; do
    grep -q -- "$flag" "$T/out" || check "--help does not mention $flag"
done
# the default it states is the one it uses (hub_home_dir: $XDG_CACHE_HOME first)
grep -q 'HF_HOME .*default \$XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface' "$T/out" || check "--help: wrong HF_HOME default"
fetch --bogus; rc=$?
[ $rc = 2 ] || check "unknown flag: rc $rc"
fetch; rc=$?
[ $rc = 2 ] || check "no repo id: rc $rc"
report "fetch: errors are one line with a non-zero exit; --help lists every flag"
