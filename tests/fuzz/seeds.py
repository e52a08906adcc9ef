#!/usr/bin/env python3
"""seeds.py — seed corpora for the fuzz targets, made from the real files under
third_party/ (and ../shared/configs when it is there).

    python3 tests/fuzz/seeds.py OUT_DIR

writes OUT_DIR/<target>/<name> for every target. Real files too large to
mutate quickly are shrunk but keep their structure: safetensors files keep
every tensor name, dtype, rank and the metadata with each dimension cut to at
most 2; tokenizers keep their normalizer, pre-tokenizer, post-processor,
decoder and added tokens with the vocabulary cut to its first ids and the
merges that stay inside it. Hand-written seeds live in tests/fuzz/corpus/.
"""
import glob
import json
import os
import struct
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DTYPE_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
              "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8}


def write(out, target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def shrink_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    meta = header.pop("__metadata__", None)
    out_header, chunks, at = {}, [], 0
    if meta is not None:
        out_header["__metadata__"] = meta
    for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        shape = [min(s, 2) for s in t["shape"]]
        count = 1
        for s in shape:
            count *= s
        nbytes = count * DTYPE_SIZE[t["dtype"]]
        start = t["data_offsets"][0]
        chunks.append(body[start:start + nbytes].ljust(nbytes, b"\0"))
        out_header[name] = {"dtype": t["dtype"], "shape": shape, "data_offsets": [at, at + nbytes]}
        at += nbytes
    h = json.dumps(out_header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(chunks)


def shrink_tokenizer(path, keep):
    j = json.load(open(path, encoding="utf-8"))
    m = j["model"]
    vocab = {k: v for k, v in m["vocab"].items() if v < keep}
    merges = []
    for e in m.get("merges", []):
        a, b = e.split(" ", 1) if isinstance(e, str) else e
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(e)
    m["vocab"], m["merges"] = vocab, merges
    return json.dumps(j, ensure_ascii=False, separators=(",", ":"))


def main():
    out = sys.argv[1]
    os.chdir(ROOT)
    models = sorted(glob.glob("third_party/models/*"))

    # safetensors: every real file, shrunk; plus a truncated header
    for path in sorted(glob.glob("third_party/models/*/*.safetensors")):
        name = path.split("/")[2] + "-" + os.path.basename(path)
        small = shrink_safetensors(path)
        write(out, "fuzz_safetensors", name, small)
        write(out, "fuzz_safetensors", "truncated-" + name, small[:len(small) // 2])

    # config.json: the real ones, and generation configs
    for path in sorted(glob.glob("third_party/models/*/config.json") + glob.glob("../shared/configs/*.json")):
        write(out, "fuzz_config", path.replace("/", "_").lstrip("._"), open(path, "rb").read())

    # tokenizer.json: each real one shrunk (stories260k is small: whole), with a text after a NUL
    texts = []
    for path in sorted(glob.glob("third_party/tokenizers/golden/*.json")):
        for case in json.load(open(path, encoding="utf-8")).get("cases", []):
            if isinstance(case, dict) and isinstance(case.get("text"), str):
                texts.append(case["text"])
    sample = texts[len(texts) // 2] if texts else "Hello world"
    for path, keep in (("third_party/models/stories260k/tokenizer.json", 10 ** 9),
                       ("third_party/tokenizers/llama3style/tokenizer.json", 400),
                       ("third_party/tokenizers/smollm2/tokenizer.json", 400)):
        if os.path.exists(path):
            name = path.split("/")[2]
            tok = shrink_tokenizer(path, keep)
            write(out, "fuzz_tokenizer", name, tok)
            write(out, "fuzz_tokenizer", name + "-text", tok.encode() + b"\0" + sample.encode())

    # prompts: the golden strings (CJK, emoji, CRLF, code, ...) for each tokenizer, plain and chat
    for i, text in enumerate(texts):
        for sel in range(6):
            write(out, "fuzz_encode", "golden-%03d-%d" % (i, sel), bytes([sel]) + text.encode())
    write(out, "fuzz_encode", "invalid-utf8", b"\x01ok \xff\xfe bad \xed\xa0\x80")


if __name__ == "__main__":
    main()
