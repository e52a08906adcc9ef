#!/usr/bin/env python3
"""dam_sweep.py — the measurement behind configs/dam.json's defaults and the
README's DAM tables (not a unit test: it takes a few minutes).

For every PCL, tau, mu and fallback policy it calibrates a profile with
`dam calibrate` on the calibration text, then runs `dam compare` teacher-forced
over the document with all of them against full, plus the window baseline at
a range of sizes. Each DAM row is set against the window curve at the same
sparsity (top-1 agreement and KL interpolated between the two nearest window
sizes): "beats window" means higher agreement AND lower KL at equal sparsity.

Besides the golden story (the document the issue names), the same rows are
measured on held-out stories (tests/attn/heldout_stories.txt: sampled from the
model with seeds the calibration text does not use) and averaged, so the
defaults are not fitted to one document.

usage: python3 tests/attn/dam_sweep.py [--dam build/dam] [--model DIR]
         [--calib prompts/calibration.txt] [--doc-json expected_greedy.json]
         [--heldout FILE] [--jobs N] [--quick] [--out sweep.json]
Prints markdown tables; --out saves every row as JSON.
"""
import argparse
import concurrent.futures
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


def compare_doc(args, doc, variants, n_gen):
    flag = "--ids-json" if doc.endswith(".json") else "-f"
    out = run([args.dam, "compare", "-t", "1", "-m", args.model, flag, doc, "--json",
               "-n", str(n_gen), "--attn", ",".join(["full"] + variants)])
    return json.loads(out)["modules"][1:]


KEYS = ["sparsity", "top1_agreement", "mean_kl", "perplexity", "kv_sparsity", "greedy_common_prefix"]


def compare(args, variants, n_gen, pool):
    """Rows on the golden document, with held-out means under "heldout"."""
    # split the variants over the workers; every call also runs full (the reference)
    per = max(1, min(16, len(variants) // args.jobs + 1))
    parts = [variants[i:i + per] for i in range(0, len(variants), per)]
    docs = [args.doc_json] + args.heldout_docs
    futs = {(d, i): pool.submit(compare_doc, args, doc, part, n_gen if d == 0 else 0)
            for d, doc in enumerate(docs) for i, part in enumerate(parts)}
    per_doc = [[r for i in range(len(parts)) for r in futs[(d, i)].result()] for d in range(len(docs))]
    rows = per_doc[0]
    for k, r in enumerate(rows):
        r["heldout"] = {key: sum(doc[k][key] for doc in per_doc[1:]) / max(1, len(per_doc) - 1)
                        for key in KEYS}
    return rows


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
    ap.add_argument("--heldout", default="tests/attn/heldout_stories.txt")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="damsweep")
    args.heldout_docs = []
    if args.heldout and os.path.exists(args.heldout):
        for i, story in enumerate(s for s in open(args.heldout).read().split("\n\n") if s.strip()):
            path = os.path.join(tmp, "heldout_%d.txt" % i)
            open(path, "w").write(story.strip() + "\n")
            args.heldout_docs.append(path)
    pool = concurrent.futures.ThreadPoolExecutor(args.jobs)
    windows = [4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128]
    win_rows = compare(args, ["window:sinks=4:size=%d" % w for w in windows], args.n, pool)
    for w, r in zip(windows, win_rows):
        r["setting"] = "window sinks 4 + size %d" % w

    if args.quick:
        grid = dict(pcl=[128], tau=[0.1, 0.2, 0.3], mu=[0.7, 0.8], fb=["none", "window:16", "full"])
    else:
        grid = dict(pcl=[64, 128, 256], tau=[0.05, 0.1, 0.15, 0.2, 0.3], mu=[0.6, 0.7, 0.8, 0.9],
                    fb=["none", "window:16", "window:32", "full"])
    dam_rows = []
    jobs = []
    for pcl, fb, tau, mu in itertools.product(grid["pcl"], grid["fb"], grid["tau"], grid["mu"]):
        path = os.path.join(tmp, "p_%d_%s_%g_%g.json" % (pcl, fb.replace(":", ""), tau, mu))
        policy, _, fw = fb.partition(":")
        cmd = [args.dam, "calibrate", "-q", "-t", "1", "-m", args.model, "-f", args.calib, "-o", path,
               "--dam-pcl", str(pcl), "--dam-tau", str(tau), "--dam-mu", str(mu),
               "--dam-fallback", policy, "--dam-min-coverage", "0.5"]
        if fw:
            cmd += ["--dam-fallback-window", fw]
        jobs.append((pool.submit(run, cmd), "dam:profile=" + path,
                     dict(pcl=pcl, tau=tau, mu=mu, fallback=fb)))
    for f, _, _ in jobs:
        f.result()
    rows = compare(args, [v for _, v, _ in jobs], args.n, pool)
    for (_, _, s), r in zip(jobs, rows):
        r.update(s)
        r["setting"] = "PCL %d, tau %g, mu %g, fallback %s" % (s["pcl"], s["tau"], s["mu"], s["fallback"])
        r["window_top1"] = interp(win_rows, r["sparsity"], "top1_agreement")
        r["window_kl"] = interp(win_rows, r["sparsity"], "mean_kl")
        r["beats_window"] = r["top1_agreement"] > r["window_top1"] and r["mean_kl"] < r["window_kl"]
        h = r["heldout"]
        wh = [w["heldout"] for w in win_rows]
        h["window_top1"] = interp(wh, h["sparsity"], "top1_agreement")
        h["window_kl"] = interp(wh, h["sparsity"], "mean_kl")
        h["beats_window"] = h["top1_agreement"] > h["window_top1"] and h["mean_kl"] < h["window_kl"]
        dam_rows.append(r)

    # other capture sources, at the same parameters as each calibrated row of PCL 128
    extra = []
    for r in dam_rows:
        if r["pcl"] == 128 and r["fallback"] in ("none", "window:16"):
            policy, _, fw = r["fallback"].partition(":")
            base = "dam:pcl=128:tau=%g:mu=%g:fallback=%s:coverage=0.5%s" % (
                r["tau"], r["mu"], policy, ":fwindow=" + fw if fw else "")
            extra.append((base + ":capture=prompt", dict(r, setting=r["setting"] + ", capture prompt")))
    if extra:
        rows = compare(args, [v for v, _ in extra], args.n, pool)
        for (_, s), r in zip(extra, rows):
            for k in ("pcl", "tau", "mu", "fallback", "setting"):
                r[k] = s[k]
            r["window_top1"] = interp(win_rows, r["sparsity"], "top1_agreement")
            r["window_kl"] = interp(win_rows, r["sparsity"], "mean_kl")
            r["beats_window"] = r["top1_agreement"] > r["window_top1"] and r["mean_kl"] < r["window_kl"]
            h = r["heldout"]
            wh = [w["heldout"] for w in win_rows]
            h["window_top1"] = interp(wh, h["sparsity"], "top1_agreement")
            h["window_kl"] = interp(wh, h["sparsity"], "mean_kl")
            h["beats_window"] = h["top1_agreement"] > h["window_top1"] and h["mean_kl"] < h["window_kl"]
        prompt_rows = rows
    else:
        prompt_rows = []

    def table(rows, extra):
        head = ("| setting | sparsity | top-1 | KL | ppl | KV saved | fallback heads | greedy prefix |"
                " held-out: sparsity / top-1 / KL |")
        if extra:
            head += " window top-1 / KL at same sparsity | beats window (golden, held-out) |"
        print(head)
        print("|" + "---|" * (head.count("|") - 1))
        for r in rows:
            h = r["heldout"]
            line = "| %s | %.3f | %.3f | %.4f | %.3f | %.3f | %d | %d | %.3f / %.3f / %.4f |" % (
                r["setting"], r["sparsity"], r["top1_agreement"], r["mean_kl"], r["perplexity"],
                r["kv_sparsity"], r["fallback_heads"], r["greedy_common_prefix"],
                h["sparsity"], h["top1_agreement"], h["mean_kl"])
            if extra:
                line += " %.3f / %.4f | %s, %s |" % (r["window_top1"], r["window_kl"],
                                                    "yes" if r["beats_window"] else "no",
                                                    "yes" if h["beats_window"] else "no")
            print(line)
        print()

    print("window baseline (teacher-forced, against full; golden story, and the mean of %d held-out stories):\n"
          % len(args.heldout_docs))
    table(win_rows, False)
    print("dam (calibrated on %s):\n" % args.calib)
    table(dam_rows, True)
    if prompt_rows:
        print("dam, --dam-capture prompt (no calibration: the document's first PCL tokens):\n")
        table(prompt_rows, True)
    good = [r for r in dam_rows if r["sparsity"] >= 0.5 and r["top1_agreement"] >= 0.93]
    print("calibrated settings with sparsity >= 0.5 and top-1 >= 0.93 on the golden story: %d of %d" % (
        len(good), len(dam_rows)))
    print("beating window: golden %d of %d, held-out %d of %d" % (
        sum(r["beats_window"] for r in dam_rows), len(dam_rows),
        sum(r["heldout"]["beats_window"] for r in dam_rows), len(dam_rows)))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(window=win_rows, dam=dam_rows, prompt=prompt_rows), f, indent=1)


if __name__ == "__main__":
    main()
