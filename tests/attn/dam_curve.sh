#!/bin/sh
# dam_curve.sh — DAM against a plain window on prose the model never saw, at several costs:
# top-1 agreement with full attention, mean KL and sparsity of `dam compare` for dam budgets
# 256..1024 and window sizes 256..1024 (16 sinks), on four slices of the held-out corpus
# (../shared/train/corpus/heldout.txt.xz: two of about 3k tokens, two of about 7k), testbed model,
# default flags otherwise. Prints one markdown table; the README's table came from it.
#   sh tests/attn/dam_curve.sh [path/to/dam]       (about 15 minutes on 2 cores)
DAM=${1:-build/dam}
HELD=${HELDOUT:-../shared/train/corpus/heldout.txt.xz}
[ -f "$HELD" ] || { echo "dam_curve.sh: $HELD not found (set HELDOUT)" >&2; exit 1; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
xz -dc "$HELD" > "$T/held.txt"
# slices start at a line boundary past the offset: (name, offset, bytes)
python3 - "$T" <<'PY'
import sys
t = open(sys.argv[1] + "/held.txt").read()
for name, start, n in (("3k_a", 50000, 11000), ("3k_b", 1200000, 11500), ("7k_a", 400000, 24000), ("7k_b", 1800000, 25000)):
    s = t.index("\n", start) + 1
    open(f"{sys.argv[1]}/{name}.txt", "w").write(t[s:s + n])
PY
A=full
for w in 256 384 512 768 1024; do A="$A,window:size=$w:sinks=16"; done
for b in 256 384 512 768 1024; do A="$A,dam:budget=$b"; done
for s in 3k_a 3k_b 7k_a 7k_b; do
  "$DAM" compare -m third_party/models/testbed -f "$T/$s.txt" -n 0 --attn "$A" --json > "$T/$s.json" || exit 1
done
python3 - "$T" <<'PY'
import json, sys
rows = {}
for s in ("3k_a", "3k_b", "7k_a", "7k_b"):
    j = json.load(open(f"{sys.argv[1]}/{s}.json"))
    for m in j["modules"][1:]:
        rows.setdefault(m["label"], {})[s] = (m["sparsity"], m["top1_agreement"], m["mean_kl"])
print("| attention | " + " | ".join(f"{s}: sparsity / top-1 / KL" for s in ("3k_a", "3k_b", "7k_a", "7k_b")) + " |")
print("|---|" + "---|" * 4)
for label, r in rows.items():
    print(f"| {label} | " + " | ".join("%.3f / %.3f / %.4f" % r[s] for s in ("3k_a", "3k_b", "7k_a", "7k_b")) + " |")
PY
