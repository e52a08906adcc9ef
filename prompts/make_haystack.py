#!/usr/bin/env python3
"""make_haystack.py — writes prompts/haystack.txt, the default prose of `dam niah`.

The text is the project's own: sentences built from a small grammar and word
lists written here, run once with a fixed seed (the output is committed; run
it again only to change the haystack). The prose is deliberately plain and
irrelevant: a retrieval test hides a needle in it. It has no digits (so no
number in the haystack can be mistaken for the needle), every sentence ends
in '.', and sentence lengths vary from two words to thirty so that prompts can
be fitted to a token count finely. Paragraphs are separated by blank lines.

    python3 prompts/make_haystack.py > prompts/haystack.txt
"""
import random
import sys

R = random.Random(20240607)

PEOPLE = [
    "the miller", "the old sailor", "my aunt", "the village baker", "a tired clerk",
    "the ferryman", "the schoolteacher", "a young shepherd", "the innkeeper", "the blacksmith",
    "her brother", "the weaver", "a travelling tinker", "the priest", "the doctor's wife",
    "the gardener", "our neighbour", "the postman", "a stranger in a grey coat", "the potter",
    "the lamplighter", "the carpenter", "the fisherman's daughter", "the mayor", "a quiet boy",
    "the clockmaker", "the shopkeeper", "an elderly widow", "the cook", "the stable hand",
]
PLURALS = [
    "the children", "the fishermen", "the farmers", "the travellers", "the women at the well",
    "the old men", "the soldiers", "the students", "the merchants", "the musicians",
    "the gulls", "the sheep", "the crows", "the geese", "the cattle",
]
THINGS = [
    "the river", "the wind", "the harbour", "the old bridge", "the orchard", "the square",
    "the chapel", "the mill", "the market", "the road to the coast", "the lighthouse",
    "the valley", "the forest", "the garden wall", "the church tower", "the meadow",
    "the station", "the library", "the hill above the town", "the kitchen", "the attic",
    "the pond", "the lane behind the bakery", "the north field", "the quay",
]
PLACES = [
    "by the river", "in the market", "on the old bridge", "behind the chapel", "near the mill",
    "at the edge of the forest", "in the orchard", "along the coast road", "under the elms",
    "beside the harbour wall", "in the kitchen", "at the crossroads", "on the hill",
    "in the square", "outside the inn", "by the garden gate", "in the reading room",
    "on the quay", "among the reeds", "beneath the lighthouse", "in the long meadow",
]
TIMES = [
    "in the morning", "at dusk", "before dawn", "after supper", "in late autumn",
    "on market day", "during the long winter", "in the first week of spring", "at noon",
    "when the tide turned", "after the rain", "on Sundays", "every evening", "that summer",
    "in the dry season", "late at night", "before the harvest", "after the fair",
]
VERBS_T = [  # transitive, past tense
    "carried", "mended", "painted", "watched", "cleaned", "opened", "visited", "crossed",
    "repaired", "sold", "bought", "counted", "folded", "polished", "found", "lost",
    "remembered", "described", "photographed", "measured", "guarded", "admired", "sketched",
]
VERBS_I = [  # intransitive, past tense
    "walked slowly", "waited", "laughed", "sang quietly", "slept", "hurried home",
    "sat for a while", "listened", "worked late", "stood still", "wandered off",
    "returned early", "grew restless", "kept silent", "looked away", "rested",
]
OBJECTS = [
    "a basket of apples", "the broken gate", "a letter from the city", "the blue boat",
    "an old map", "a lantern", "the fishing nets", "a loaf of bread", "the church bells",
    "a wooden chair", "the heavy door", "a bundle of firewood", "a small brown dog",
    "the garden tools", "a jar of honey", "the kitchen clock", "a pair of boots",
    "a roll of cloth", "the last of the hay", "a box of letters", "the iron kettle",
    "a bunch of wild flowers", "the painted sign", "a sack of flour", "a silver spoon",
]
ADJS = [
    "quiet", "cold", "bright", "grey", "warm", "narrow", "empty", "crowded", "green",
    "muddy", "pale", "golden", "damp", "still", "windy", "dark", "gentle", "busy", "calm",
]
NATURE = [
    "the sky", "the sea", "the fields", "the streets", "the hills", "the air", "the water",
    "the garden", "the town", "the woods", "the shore", "the roofs", "the lanes",
]
FEELINGS = [
    "glad", "tired", "curious", "uneasy", "content", "surprised", "proud", "worried",
    "hopeful", "homesick", "patient", "thoughtful",
]
SHORT = [
    "Rain fell.", "Nobody answered.", "The bells rang.", "It was late.", "Time passed.",
    "The fire burned low.", "Dogs barked.", "The door creaked.", "Snow came early.",
    "Nothing moved.", "The tide went out.", "Birds sang.", "It grew dark.", "The wind dropped.",
    "Someone knocked.", "The kettle boiled.", "Smoke rose.", "The road was long.",
    "Autumn came.", "The clock struck.", "She smiled.", "He nodded.", "They waited.",
    "The lamps were lit.", "Leaves fell.", "The sea was calm.", "All was quiet.",
]
REASONS = [
    "the road was flooded", "the weather had turned", "the market was closing",
    "nobody else would do it", "the light was fading", "the boat needed repairs",
    "the harvest was late", "a storm was coming", "the bridge was closed",
    "there was nothing else to do", "the house was cold", "the letters had not arrived",
]
SAYINGS = [
    "the weather would change by evening", "the old road was shorter", "the river had risen",
    "the bread tasted better in winter", "the lighthouse keeper never slept",
    "the mill had stood there for a long time", "the fair would be smaller this year",
    "the orchard needed more rain", "the best fish came in before dawn",
    "nobody remembered who built the bridge", "the church bells could be heard across the valley",
]


def cap(s):
    return s[0].upper() + s[1:]


def pick(xs):
    return R.choice(xs)


def nature():
    """A nature noun phrase with its verb "to be" (agreement by number)."""
    n = pick(NATURE)
    return n, ("were" if n.endswith("s") else "was")


def subject():
    return pick(PEOPLE) if R.random() < 0.7 else pick(PLURALS)


def sentence():
    t = R.randrange(16)
    if t == 0:
        return pick(SHORT)
    if t == 1:
        return f"{cap(subject())} {pick(VERBS_I)}."
    if t == 2:
        return f"{cap(subject())} {pick(VERBS_T)} {pick(OBJECTS)} {pick(PLACES)}."
    if t == 3:
        return f"{cap(pick(TIMES))}, {subject()} {pick(VERBS_T)} {pick(OBJECTS)}."
    if t == 4:
        n, be = nature()
        return f"{cap(n)} {be} {pick(ADJS)} and {pick(ADJS)} {pick(TIMES)}."
    if t == 5:
        return (f"{cap(subject())} {pick(VERBS_I)} {pick(PLACES)} because {pick(REASONS)}, "
                f"and {subject()} {pick(VERBS_T)} {pick(OBJECTS)} instead.")
    if t == 6:
        return f"{cap(pick(PEOPLE))} said that {pick(SAYINGS)}."
    if t == 7:
        return f"{cap(pick(THINGS))} looked {pick(ADJS)} {pick(TIMES)}."
    if t == 8:
        return (f"While {subject()} {pick(VERBS_I)}, {subject()} {pick(VERBS_T)} "
                f"{pick(OBJECTS)} and felt {pick(FEELINGS)}.")
    if t == 9:
        return f"{cap(pick(PEOPLE))} was {pick(FEELINGS)}."
    if t == 10:
        return (f"Although {pick(REASONS)}, {subject()} {pick(VERBS_T)} {pick(OBJECTS)} "
                f"{pick(PLACES)} {pick(TIMES)}.")
    if t == 11:
        return f"There was {pick(OBJECTS)} {pick(PLACES)}."
    if t == 12:
        return (f"{cap(pick(TIMES))}, {pick(NATURE)} turned {pick(ADJS)}, and {subject()} "
                f"{pick(VERBS_I)} {pick(PLACES)}.")
    if t == 13:
        return f"Nobody knew why {subject()} {pick(VERBS_T)} {pick(OBJECTS)}."
    if t == 14:
        return f"{cap(pick(THINGS))} was {pick(ADJS)}."
    n, be = nature()
    return (f"{cap(subject())} remembered how {pick(THINGS)} had looked {pick(TIMES)}, "
            f"when {n} {be} {pick(ADJS)} and {subject()} {pick(VERBS_I)}.")


def paragraph():
    return " ".join(sentence() for _ in range(R.randint(3, 9)))


def main():
    target = int(sys.argv[1]) if len(sys.argv) > 1 else 262144
    out, size = [], 0
    while size < target:
        p = paragraph()
        out.append(p)
        size += len(p) + 2
    sys.stdout.write("\n\n".join(out) + "\n")


if __name__ == "__main__":
    main()
