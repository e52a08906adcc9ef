#!/usr/bin/env python3
"""make_calibration_retrieval.py — writes prompts/calibration_retrieval.txt.

Calibration on plain stories never makes a model look far back for one fact, so
its retrieval heads look local and DAM gives them a short window (the testbed
model then answers a passkey prompt wrongly). These documents are short
retrieval prompts in the formats of shared/docs/LONG_CONTEXT_TASKS.md
(passkey, niah, lines), each followed by its answer, so that inside one
pattern-capture window (PCL, 256 tokens) the answer tokens attend back to the
needle. Each document stays under about 230 tokens of a BPE tokenizer (so a
PCL of 256 sees all of it); it has no blank line inside (documents are
separated by blank lines), so the lines format uses one newline after "Now the
record start:".

The prose is the project's own: make_haystack.py's grammar run with another
seed, so it is not the text of prompts/haystack.txt that `dam niah` hides its
needles in. Keys and numbers are drawn here with a fixed seed.

    python3 prompts/make_calibration_retrieval.py > prompts/calibration_retrieval.txt
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_haystack as prose  # noqa: E402

SEED = 20261123
N_DOCS = 96          # 32 of each task
PROSE_CHARS = 700    # haystack characters per document (about 150 tokens)

WORDS = [
    "amber", "basket", "cedar", "dune", "ember", "falcon", "garnet", "harbor", "island",
    "juniper", "kettle", "lantern", "meadow", "nutmeg", "orchid", "pebble", "quartz",
    "raven", "saffron", "thistle", "umber", "velvet", "willow", "yarrow", "zephyr",
    "copper", "marble", "silver", "violet", "walnut", "acorn", "bramble",
]

R = random.Random(SEED)


def haystack(n_chars):
    """Sentences of the haystack grammar, about n_chars long."""
    out, size = [], 0
    while size < n_chars:
        s = prose.sentence()
        out.append(s)
        size += len(s) + 1
    return out


def insert(sentences, needle, depth):
    k = round(depth * len(sentences))
    return " ".join(sentences[:k] + [needle] + sentences[k:])


def key():
    a, b = R.sample(WORDS, 2)
    return f"{a}-{b}"


def passkey_doc():
    pk = R.randint(10000, 99999)
    text = insert(haystack(PROSE_CHARS), f"The pass key is {pk}. Remember it. {pk} is the pass key.",
                  R.random())
    return ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
            "it. I will quiz you about the important information there. " + text +
            f" What is the pass key? The pass key is {pk}.")


def niah_doc():
    k, v = key(), R.randint(1000000, 9999999)
    text = insert(haystack(PROSE_CHARS - 60), f"One of the special magic numbers for {k} is: {v}.",
                  R.random())
    return ("Some special magic numbers are hidden within the following text. Make sure to memorize "
            "it. I will quiz you about the numbers afterwards. " + text +
            f" What is the special magic number for {k} mentioned in the provided text? "
            f"The special magic number for {k} mentioned in the provided text is {v}.")


def lines_doc():
    n = R.randint(6, 9)
    keys = []
    while len(keys) < n:
        k = key()
        if k not in keys:
            keys.append(k)
    vals = [R.randint(10000, 99999) for _ in keys]
    record = "\n".join(f"line {k}: REGISTER_CONTENT is <{v}>" for k, v in zip(keys, vals))
    i = R.randrange(n)
    return ("Below is a record of lines I want you to remember. Each line begins with 'line <line "
            "index>' and contains a '<REGISTER_CONTENT>' at the end of the line as a numerical "
            "value. For each line index, memorize its corresponding <REGISTER_CONTENT>. At the end "
            "of the record, I will ask you to retrieve the corresponding <REGISTER_CONTENT> of a "
            "certain line index. Now the record start:\n" + record +
            f"\nNow the record is over. Tell me what is the <REGISTER_CONTENT> in line {keys[i]}? "
            f"I need the number. The <REGISTER_CONTENT> in line {keys[i]} is <{vals[i]}>.")


def main():
    prose.R.seed(SEED)
    makers = [passkey_doc, niah_doc, lines_doc]
    docs = [makers[d % 3]() for d in range(N_DOCS)]
    sys.stdout.write("\n\n".join(docs) + "\n")


if __name__ == "__main__":
    main()
