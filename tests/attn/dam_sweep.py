#!/usr/bin/env python3
"""dam_sweep.py — the measurement behind configs/dam.json's defaults and the
README's DAM tables (not a unit test: it takes a few minutes).

For every PCL, tau, mu and fallback policy it calibrates a profile with
`dam calibrate` on the calibration text, then runs `dam compare` teacher-forced
over the document with all of them against full, plus the window baseline at
a range of sizes. Each DAM row is set against the window curve at the same
sparsity (top-1 agreement and KL interpolated between the two nearest window
sizes): "beats window" means higher agreement AND lower KL at equal sparsity.

usage: python3 tests/attn/dam_sweep.py [--dam build/dam] [--model DIR]
         [--calib prompts/calibration.txt] [--doc-json expected_greedy.json]
         [--quick] [--out sweep.json]
Prints markdown tables; --out saves every row as JSON.
"""
import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), r.stderr))
    return r.stdout


def compare(args, variants, n_gen):
    out = run([args.dam, "compare", "-m", args.model, "--ids-json", args.doc_json, "--json",
               "-n", str(n_gen), "--attn", ",".join(["full"] + variants)])
    return json.loads(out)["modules"][1:]


def interp(curve, s, key):
    """Value of key on the window curve (sorted by sparsity) at sparsity s."""
    pts = sorted(curve, key=lambda r: r["sparsity"])
    if s <= pts[0]["sparsity"]:
        return pts[0][key]
    for a, b in zip(pts, pts[1:]):
        if a["sparsity"] <= s <= b["sparsity"]:
            t = (s - a["sparsity"]) / max(b["sparsity"] - a["sparsity"], 1e-12)
            return a[key] + t * (b[key] - a[key])
    return pts[-1][key]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dam", default="build/dam")
    ap.add_argument("--model", default="third_party/models/stories260k")
    ap.add_argument("--calib", default="prompts/calibration.txt")
    ap.add_argument("--doc-json", default="third_party/models/stories260k/expected_greedy.json")
    ap.add_argument("--quick", action="store_true", help="a small grid")
    ap.add_argument("--out")
    ap.add_argument("-n", type=int, default=64, help="greedy continuation length")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="damsweep")
    windows = [4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128]
    win_rows = compare(args, ["window:sinks=4:size=%d" % w for w in windows], args.n)
    for w, r in zip(windows, win_rows):
        r["setting"] = "window sinks 4 + size %d" % w

    if args.quick:
        grid = dict(pcl=[128], tau=[0.1, 0.2, 0.3], mu=[0.7, 0.8], fb=["none", "window:16", "full"])
    else:
        grid = dict(pcl=[64, 128, 256], tau=[0.05, 0.1, 0.15, 0.2, 0.3], mu=[0.6, 0.7, 0.8, 0.9],
                    fb=["none", "window:16", "window:32", "full"])
    dam_rows = []
    for pcl, fb in itertools.product(grid["pcl"], grid["fb"]):
        variants, settings = [], []
        for tau, mu in itertools.product(grid["tau"], grid["mu"]):
            path = os.path.join(tmp, "p_%d_%s_%g_%g.json" % (pcl, fb.replace(":", ""), tau, mu))
            policy, _, fw = fb.partition(":")
            cmd = [args.dam, "calibrate", "-q", "-m", args.model, "-f", args.calib, "-o", path,
                   "--dam-pcl", str(pcl), "--dam-tau", str(tau), "--dam-mu", str(mu),
                   "--dam-fallback", policy, "--dam-min-coverage", "0.5"]
            if fw:
                cmd += ["--dam-fallback-window", fw]
            run(cmd)
            variants.append("dam:profile=" + path)
            settings.append(dict(pcl=pcl, tau=tau, mu=mu, fallback=fb))
        for s, r in zip(settings, compare(args, variants, args.n)):
            r.update(s)
            r["setting"] = "PCL %d, tau %g, mu %g, fallback %s" % (pcl, s["tau"], s["mu"], fb)
            r["window_top1"] = interp(win_rows, r["sparsity"], "top1_agreement")
            r["window_kl"] = interp(win_rows, r["sparsity"], "mean_kl")
            r["beats_window"] = r["top1_agreement"] > r["window_top1"] and r["mean_kl"] < r["window_kl"]
            dam_rows.append(r)

    def table(rows, extra):
        head = "| setting | sparsity | top-1 | KL | ppl | KV saved | fallback heads | greedy prefix |"
        if extra:
            head += " window top-1 / KL at same sparsity | beats window |"
        print(head)
        print("|" + "---|" * (head.count("|") - 1))
        for r in rows:
            line = "| %s | %.3f | %.3f | %.4f | %.3f | %.3f | %d | %d |" % (
                r["setting"], r["sparsity"], r["top1_agreement"], r["mean_kl"], r["perplexity"],
                r["kv_sparsity"], r["fallback_heads"], r["greedy_common_prefix"])
            if extra:
                line += " %.3f / %.4f | %s |" % (r["window_top1"], r["window_kl"], "yes" if r["beats_window"] else "no")
            print(line)
        print()

    print("window baseline (teacher-forced over the document, against full):\n")
    table(win_rows, False)
    print("dam (calibrated on %s):\n" % args.calib)
    table(dam_rows, True)
    good = [r for r in dam_rows if r["sparsity"] >= 0.5 and r["top1_agreement"] >= 0.93]
    print("settings with sparsity >= 0.5 and top-1 >= 0.93: %d of %d; beating window: %d of %d" % (
        len(good), len(dam_rows), sum(r["beats_window"] for r in dam_rows), len(dam_rows)))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(window=win_rows, dam=dam_rows), f, indent=1)


if __name__ == "__main__":
    main()
