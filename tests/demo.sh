#!/bin/sh
# The main job of `make run`: the embedded long-context testbed model answers
# a pass-key question hidden in ~2,600 tokens of prose with each attention
# module, side by side (answer on stdout; timings, sparsity, KV-cache bytes
# and what the selection kept on stderr); then a small needle-in-a-haystack
# grid. The first dam run calibrates DAM once for this model (about half a
# minute on two cores) and caches the profile.
DAM=${1:-build/dam}
set -e
run() {
  echo
  echo "=== dam run -f prompts/passkey_demo.txt -n 8 --temp 0 $*"
  "$DAM" run -f prompts/passkey_demo.txt -n 8 --temp 0 "$@" 2>&1
}
echo "The pass key hidden in prompts/passkey_demo.txt is 68219."
run --attn full
run --attn dam
echo "(dam, the default: every head keeps the window its calibration gave it, and picks"
echo " the far blocks of keys its queries point at, so the question reaches the needle.)"
run --attn window --window-size 512 --window-sinks 16
echo "(a plain window of similar cost sees only the last 512 tokens: the needle is not in them.)"
echo
echo "=== dam niah --task passkey --lengths 1k,2k --depths 0.25,0.75 --attn full,dam,window"
"$DAM" niah --task passkey --lengths 1k,2k --depths 0.25,0.75 --samples 1 --attn full,dam,window -q
