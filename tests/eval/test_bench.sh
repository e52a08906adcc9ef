# test_bench.sh — dam synth writes a tiny model that loads and runs; dam bench
# measures it in every output format and the outputs parse. Never asserts on
# timings (the machine is shared).
DAM=${DAM:-build/dam}
CONFIG=tests/data/tiny-bench.config.json
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }

# --- synth: the files, the copy of the config, determinism, the tokenizer
if "$DAM" synth --config "$CONFIG" -o "$TMP/m" --seed 7 >"$TMP/out" 2>"$TMP/err"; then
  ok synth_runs
else
  fail synth_runs "$(cat "$TMP/err")"
fi
[ -f "$TMP/m/model.safetensors" ] && [ -f "$TMP/m/tokenizer.json" ] && cmp -s "$CONFIG" "$TMP/m/config.json" \
  && ok synth_files || fail synth_files "$(ls "$TMP/m")"
"$DAM" synth --config "$CONFIG" -o "$TMP/m2" --seed 7 >/dev/null 2>&1
"$DAM" synth --config "$CONFIG" -o "$TMP/m3" --seed 8 >/dev/null 2>&1
cmp -s "$TMP/m/model.safetensors" "$TMP/m2/model.safetensors" && ok synth_same_seed_same_bytes \
  || fail synth_same_seed_same_bytes "files differ"
cmp -s "$TMP/m/model.safetensors" "$TMP/m3/model.safetensors" && fail synth_other_seed "same bytes" \
  || ok synth_other_seed
python3 - "$TMP/m/tokenizer.json" "$TMP/m/model.safetensors" <<'EOF' >"$TMP/py" 2>&1 && ok synth_contents || fail synth_contents "$(cat "$TMP/py")"
import json, struct, sys
tok = json.load(open(sys.argv[1]))
vocab = tok["model"]["vocab"]
assert len(vocab) == 300 and sorted(vocab.values()) == list(range(300)), "vocab ids 0..299"
assert {t["id"] for t in tok["added_tokens"]} == {1, 2}, "bos and eos are special tokens"
for m in tok["model"]["merges"]:
    a, b = m.split(" ")
    assert a in vocab and b in vocab and a + b in vocab, m
raw = open(sys.argv[2], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
assert hdr["model.embed_tokens.weight"]["shape"] == [300, 64]
assert hdr["model.layers.1.mlp.down_proj.weight"]["shape"] == [64, 96]
assert all(v["dtype"] == "BF16" for k, v in hdr.items() if k != "__metadata__")
assert "lm_head.weight" not in hdr, "tied embeddings"
# weights: std near 0.02, norms exactly 1
import array
def tensor(name):
    s, e = hdr[name]["data_offsets"]
    h = array.array("H", raw[8 + n + s:8 + n + e])
    return [struct.unpack("<f", struct.pack("<I", x << 16))[0] for x in h]
w = tensor("model.layers.0.self_attn.q_proj.weight")
std = (sum(x * x for x in w) / len(w)) ** 0.5
assert 0.018 < std < 0.022, std
assert set(tensor("model.layers.0.input_layernorm.weight")) == {1.0}
EOF
"$DAM" synth --config "$CONFIG" -o "$TMP/f16" --dtype f16 --tokenizer none >/dev/null 2>&1 \
  && [ ! -f "$TMP/f16/tokenizer.json" ] && ok synth_f16_no_tokenizer || fail synth_f16_no_tokenizer "failed"
"$DAM" logits -m "$TMP/m" --ids 1,5,9 --top 3 >"$TMP/logits" 2>"$TMP/err" && [ "$(wc -l <"$TMP/logits")" = 3 ] \
  && ok synth_model_runs || fail synth_model_runs "$(cat "$TMP/err")"
"$DAM" synth --config "$CONFIG" >/dev/null 2>"$TMP/err"; rc=$?
[ $rc = 2 ] && grep -q -- '-o' "$TMP/err" && ok synth_needs_out || fail synth_needs_out "exit $rc: $(cat "$TMP/err")"
"$DAM" synth --config "$CONFIG" -o "$TMP/x" --dtype q4 >/dev/null 2>"$TMP/err"; rc=$?
[ $rc = 2 ] && grep -q 'dtype' "$TMP/err" && ok synth_bad_dtype || fail synth_bad_dtype "exit $rc: $(cat "$TMP/err")"

# --- bench: tiny sizes, every format; two modules when window is built
ATTN=full
"$DAM" bench --help | grep -q 'available:.*window' && ATTN=full,window
B="-m $TMP/m -p 8 -n 4 -d 0,16 -r 2 --attn $ATTN"
ROWS=$(( $(echo "$ATTN" | tr ',' '\n' | wc -l) * 4 ))      # modules x depths x (pp, tg)

"$DAM" bench $B -o md >"$TMP/md" 2>"$TMP/err" && ok bench_md_runs || fail bench_md_runs "$(cat "$TMP/err")"
grep -q '^machine: .* GB/s, peak FMA .* GFLOP/s' "$TMP/md" && ok bench_md_machine || fail bench_md_machine "$(head -3 "$TMP/md")"
n=$(grep -c '^| m |' "$TMP/md")
[ "$n" = "$ROWS" ] && ok bench_md_rows || fail bench_md_rows "$n rows, wanted $ROWS: $(cat "$TMP/md")"
grep -q '| pp8 @ d16 |' "$TMP/md" && grep -q '| tg4 |' "$TMP/md" && grep -q ' ± ' "$TMP/md" \
  && ok bench_md_tests || fail bench_md_tests "$(cat "$TMP/md")"

"$DAM" bench $B -o csv >"$TMP/csv" 2>"$TMP/err" && ok bench_csv_runs || fail bench_csv_runs "$(cat "$TMP/err")"
python3 - "$TMP/csv" "$ROWS" <<'EOF' >"$TMP/py" 2>&1 && ok bench_csv_parses || fail bench_csv_parses "$(cat "$TMP/py")"
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
head, body = rows[0], rows[1:]
assert len(body) == int(sys.argv[2]), len(body)
assert all(len(r) == len(head) for r in body), "column count"
d = [dict(zip(head, r)) for r in body]
assert {r["test"] for r in d} >= {"pp8", "tg4", "pp8 @ d16", "tg4 @ d16"}
for r in d:
    float(r["ts_mean"]); float(r["ts_std"]); float(r["achieved"]); int(r["kv_bytes"])
    assert 0 <= float(r["sparsity"]) <= 1
    assert r["achieved_unit"] == ("GFLOP/s" if r["test"].startswith("pp") else "GB/s")
EOF

"$DAM" bench $B -o json >"$TMP/json" 2>"$TMP/err" && ok bench_json_runs || fail bench_json_runs "$(cat "$TMP/err")"
python3 -m json.tool "$TMP/json" >/dev/null 2>&1 && ok bench_json_parses || fail bench_json_parses "$(head -c 300 "$TMP/json")"
python3 - "$TMP/json" "$ROWS" <<'EOF' >"$TMP/py" 2>&1 && ok bench_json_fields || fail bench_json_fields "$(cat "$TMP/py")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["machine"]["read_gbs"] > 0 and j["machine"]["fma_gflops"] > 0
r = j["results"]
assert len(r) == int(sys.argv[2]), len(r)
for x in r:
    for k in ("model", "attn", "threads", "test", "depth", "ts_mean", "ts_std", "sparsity", "kv_bytes", "achieved", "peak_fraction"):
        assert k in x, k
    assert x["kv_bytes"] > 0
deep = [x for x in r if x["depth"] == 16 and x["attn"] == "full"]
assert all(x["kv_bytes"] >= 16 * 2 * 2 * 2 * 16 * 4 for x in deep), "KV of 16+ positions"
EOF

# --- bad flags: usage errors, one line
"$DAM" bench -m "$TMP/m" --attn full,nosuch >/dev/null 2>"$TMP/err"; rc=$?
[ $rc = 2 ] && grep -q "unknown attention module 'nosuch'" "$TMP/err" && ok bench_bad_attn || fail bench_bad_attn "exit $rc: $(cat "$TMP/err")"
"$DAM" bench -m "$TMP/m" -o xml >/dev/null 2>"$TMP/err"; rc=$?
[ $rc = 2 ] && ok bench_bad_format || fail bench_bad_format "exit $rc"
"$DAM" bench -m "$TMP/m" -d 1,x >/dev/null 2>"$TMP/err"; rc=$?
[ $rc = 2 ] && grep -q -- '-d' "$TMP/err" && ok bench_bad_depth || fail bench_bad_depth "exit $rc: $(cat "$TMP/err")"

# --- a synth that fails (file size limit) leaves no config.json: no half model
d="$TMP/fullsynth"
( ulimit -f 8; "$DAM" synth --config tests/data/tiny-bench.config.json -o "$d" >/dev/null 2>&1 ); rc=$?
[ $rc -ne 0 ] && [ ! -e "$d/config.json" ] && ok synth_failure_no_config || fail synth_failure_no_config "rc $rc; $(ls "$d" 2>&1)"
