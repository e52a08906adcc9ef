#!/usr/bin/env python3
"""make_calibration_long.py — writes prompts/calibration_long.txt.

DAM's reach capture (src/attn/dam_reach.c) runs full attention over long
sequences and measures, per head, how much a recent window and a query-aware
block selection of each size keep of what the head attends to. These documents
give it long retrieval prompts to measure on: several thousand tokens of the
project's own prose (make_haystack.py's grammar, run with another seed, so not
the text of prompts/haystack.txt that `dam niah` hides its needles in), with
needles in the formats of shared/docs/LONG_CONTEXT_TASKS.md (passkey, niah,
lines) at random depths, each question followed by its answer, so the rows of
the answer show which heads reach back for the needle.

Documents are separated by a line holding one form feed (a page break).

    python3 prompts/make_calibration_long.py > prompts/calibration_long.txt
"""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_haystack as prose  # noqa: E402
import make_calibration_retrieval as short  # noqa: E402

SEED = 20261205
PROSE_CHARS = 14000      # about 3,200 tokens of a BPE tokenizer
R = random.Random(SEED)


def passkey_doc():
    pk = R.randint(10000, 99999)
    text = short.insert(short.haystack(PROSE_CHARS), f"The pass key is {pk}. Remember it. {pk} is the pass key.",
                        R.random())
    return ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
            "it. I will quiz you about the important information there. " + text +
            f" What is the pass key? The pass key is {pk}.")


def niah_doc():
    needles = []
    sentences = short.haystack(PROSE_CHARS)
    for _ in range(3):
        k, v = short.key(), R.randint(1000000, 9999999)
        needles.append((k, v))
        sentences.insert(R.randrange(len(sentences) + 1), f"One of the special magic numbers for {k} is: {v}.")
    k, v = needles[R.randrange(3)]
    return ("Some special magic numbers are hidden within the following text. Make sure to memorize "
            "it. I will quiz you about the numbers afterwards. " + " ".join(sentences) +
            f" What is the special magic number for {k} mentioned in the provided text? "
            f"The special magic number for {k} mentioned in the provided text is {v}.")


def lines_doc():
    n = 160
    keys = []
    while len(keys) < n:
        k = short.key() + "-" + str(R.randint(0, 99))
        if k not in keys:
            keys.append(k)
    vals = [R.randint(10000, 99999) for _ in keys]
    record = "\n".join(f"line {k}: REGISTER_CONTENT is <{v}>" for k, v in zip(keys, vals))
    i = R.randrange(n)
    return ("Below is a record of lines I want you to remember. Each line begins with 'line <line "
            "index>' and contains a '<REGISTER_CONTENT>' at the end of the line as a numerical "
            "value. For each line index, memorize its corresponding <REGISTER_CONTENT>. At the end "
            "of the record, I will ask you to retrieve the corresponding <REGISTER_CONTENT> of a "
            "certain line index. Now the record start:\n\n" + record +
            f"\n\nNow the record is over. Tell me what is the <REGISTER_CONTENT> in line {keys[i]}? "
            f"I need the number. The <REGISTER_CONTENT> in line {keys[i]} is <{vals[i]}>.")


def main():
    prose.R.seed(SEED)
    short.R.seed(SEED + 1)
    docs = [passkey_doc(), niah_doc(), lines_doc()]
    sys.stdout.write("\n\f\n".join(docs) + "\n")


if __name__ == "__main__":
    main()
