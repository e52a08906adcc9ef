#!/bin/sh
# bench_tokenizer.sh — tokenizer speed on 1 MB of English prose.
#   sh tests/bench_tokenizer.sh [path/to/dam]
# Takes the first 1,000,000 bytes of the haystack novels (../shared/haystack,
# or $DAM_HAYSTACK) and prints, for each tokenizer we ship, the best of 3
# encodes (after a warm-up): bytes, tokens, seconds, MB/s, and decode MB/s.
# The target is at least 5 MB/s with the SmolLM2 tokenizer.
DAM=${1:-${DAM:-build/dam}}
HAY=${DAM_HAYSTACK:-../shared/haystack}
if [ ! -x "$DAM" ]; then echo "bench_tokenizer: $DAM not built" >&2; exit 1; fi
if ! ls "$HAY"/*.txt >/dev/null 2>&1; then echo "bench_tokenizer: no haystack texts in $HAY" >&2; exit 1; fi
text=$(mktemp)
trap 'rm -f "$text"' EXIT
cat "$HAY"/*.txt | head -c 1000000 >"$text"
for tok in third_party/tokenizers/smollm2/tokenizer.json third_party/tokenizers/llama3style \
           third_party/models/stories260k; do
  printf '%-45s ' "$tok"
  "$DAM" tokenize -m "$tok" -f "$text" --bench || exit 1
done
