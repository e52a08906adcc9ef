# bench.sh — `make bench`: the standard speed table of dam bench on random
# weights with real geometries (speed does not depend on weight values).
#   sh tests/bench.sh [path/to/dam]
# The SmolLM2-135M geometry always; BENCH_MODELS="smollm2 llama1b" adds
# Llama-3.2-1B (2.5 GB of weights, synthesised once). Models are written by
# `dam synth` next to the binary (BUILD/bench-models/) and reused.
# BENCH_ARGS adds flags (e.g. BENCH_ARGS="-t 1 -o csv").
DAM=${1:-build/dam}
MODELS=${BENCH_MODELS:-smollm2}
DIR=$(dirname "$DAM")/bench-models
mkdir -p "$DIR" || exit 1

# full against dam; the modules this build lacks are left out (with a note)
want=full,dam
have=$("$DAM" bench --help | sed -n 's/.*available: \([^)]*\)).*/\1/p' | tr -d ' ')
attn=""
for a in $(echo "$want" | tr ',' ' '); do
  case ",$have," in
    *",$a,"*) attn="$attn${attn:+,}$a" ;;
    *) echo "bench: module $a is not built; measuring $want without it" >&2 ;;
  esac
done

status=0
for m in $MODELS; do
  case $m in
    smollm2) config=tests/data/bench/smollm2-135m-instruct.config.json; name=smollm2-135m ;;
    llama1b) config=tests/data/bench/llama-3.2-1b.config.json; name=llama-3.2-1b ;;
    *) echo "bench: unknown model '$m' (smollm2, llama1b)" >&2; exit 2 ;;
  esac
  out="$DIR/$name"
  if [ ! -f "$out/model.safetensors" ] || ! cmp -s "$config" "$out/config.json"; then
    echo "bench: writing $out (random bf16 weights)" >&2
    "$DAM" synth --config "$config" --dtype bf16 -o "$out" || exit 1
  fi
  # shellcheck disable=SC2086
  "$DAM" bench -m "$out" -p 512 -n 128 -d 0,4096,8192 --attn "$attn" -r 3 $BENCH_ARGS || status=1
  echo
done
exit $status
