#!/bin/sh
# The main job of `make run`: the embedded model (stories260k, 512-token
# context) tells a story from an empty prompt with each attention module,
# side by side, with the timings and the attention figures on stderr.
DAM=${1:-build/dam}
set -e
for attn in full dam; do
  echo "=== dam run --attn $attn -p '' -n 200 --temp 0"
  "$DAM" run -p "" -n 200 --temp 0 --attn "$attn"
  echo
done
