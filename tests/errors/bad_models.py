#!/usr/bin/env python3
"""bad_models.py — model folders that are wrong in exactly one way, for
tests/errors/test_errors.sh. Each is a copy of stories260k (config.json,
tokenizer.json, weights) with one defect:

    python3 tests/errors/bad_models.py SRC_MODEL OUT_DIR

writes OUT_DIR/<case>/ for every case below.
"""
import json
import os
import shutil
import struct
import sys


def read_st(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def st_bytes(header, data, pad=True):
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def tensors_by_offset(header):
    return sorted(((k, v) for k, v in header.items() if k != "__metadata__"),
                  key=lambda kv: kv[1]["data_offsets"][0])


def folder(out, name, src, weights=None, config=None, tokenizer=None):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    cfg = json.load(open(os.path.join(src, "config.json")))
    if config:
        config(cfg)
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=1)
    tok = json.load(open(os.path.join(src, "tokenizer.json"), encoding="utf-8"))
    if tokenizer:
        tokenizer(tok)
    json.dump(tok, open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8"), ensure_ascii=False)
    if weights is not None:
        open(os.path.join(d, "model.safetensors"), "wb").write(weights)
    return d


def main():
    src, out = sys.argv[1], sys.argv[2]
    raw = open(os.path.join(src, "model.safetensors"), "rb").read()
    header, data = read_st(os.path.join(src, "model.safetensors"))
    order = tensors_by_offset(header)

    # truncated single file: the last 1000 bytes are gone
    folder(out, "truncated", src, raw[:-1000])

    # header length past the end of the file
    folder(out, "header_past_eof", src, struct.pack("<Q", len(raw) + 100) + raw[8:])

    # two tensors overlap: the second one's span moved 4 bytes back into the first
    h = json.loads(json.dumps(header))
    b = order[1][0]
    h[b]["data_offsets"] = [h[b]["data_offsets"][0] - 4, h[b]["data_offsets"][1] - 4]
    folder(out, "overlap", src, st_bytes(h, data))

    # a norm weight stored as I32 (same byte size as F32)
    h = json.loads(json.dumps(header))
    h["model.norm.weight"]["dtype"] = "I32"
    folder(out, "wrong_dtype", src, st_bytes(h, data))

    # k_proj of layer 0 shaped [64, 32] instead of [32, 64]: same bytes, wrong shape
    h = json.loads(json.dumps(header))
    h["model.layers.0.self_attn.k_proj.weight"]["shape"] = [64, 32]
    folder(out, "shape_mismatch", src, st_bytes(h, data))

    # the config says 6 layers, the weights have 5
    folder(out, "config_more_layers", src, raw, config=lambda c: c.update(num_hidden_layers=6))

    # sharded: an index naming two shards, the second missing
    d = folder(out, "missing_shard", src)
    first, second = order[:len(order) // 2], order[len(order) // 2:]
    base = first[0][1]["data_offsets"][0]
    h1 = {"__metadata__": header.get("__metadata__", {"format": "pt"})}
    end = 0
    for k, v in first:
        s, e = v["data_offsets"]
        h1[k] = {"dtype": v["dtype"], "shape": v["shape"], "data_offsets": [s - base, e - base]}
        end = e
    open(os.path.join(d, "model-00001-of-00002.safetensors"), "wb").write(st_bytes(h1, data[base:end]))
    index = {"metadata": {}, "weight_map": {k: "model-00001-of-00002.safetensors" for k, _ in first}}
    index["weight_map"].update({k: "model-00002-of-00002.safetensors" for k, _ in second})
    json.dump(index, open(os.path.join(d, "model.safetensors.index.json"), "w"), indent=1)

    # config: another architecture; a rope type dam does not know
    folder(out, "unknown_arch", src, raw,
           config=lambda c: c.update(architectures=["MistralForCausalLM"], model_type="mistral"))
    folder(out, "unknown_rope", src, raw,
           config=lambda c: c.update(rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                                   "original_max_position_embeddings": 512}))

    # tokenizer.json with a model type dam does not implement
    def unigram(t):
        t["model"] = {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", -1.0]]}
    folder(out, "tokenizer_unigram", src, raw, tokenizer=unigram)


if __name__ == "__main__":
    main()
