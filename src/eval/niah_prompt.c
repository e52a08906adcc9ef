/* niah_prompt.c — building needle-in-a-haystack prompts of an exact token
 * length.
 *
 * A prompt is fixed text (instructions, the question, the answer prefix),
 * one or more needles, and a haystack of units between them: sentences of
 * prose (passkey, niah, multikey) or generated record lines (lines). Its
 * length is set by choosing which units go in:
 *   1. the fixed text and the needles alone are encoded once: the rest of the
 *      requested length is the haystack's token budget;
 *   2. units are taken in order while they fit, then small moves (add a later
 *      unit, drop one, swap one for another) bring the estimated total to the
 *      budget — each unit's token count is known from encoding it alone;
 *   3. the whole prompt is encoded; if tokens merged or split at the seams so
 *      that it misses the 2% band, the budget is corrected by the miss and
 *      step 2 runs again.
 * Needles go in at the unit boundary whose token offset is nearest to their
 * depth. All randomness (keys, values, the first sentence, distractor
 * depths, record lines) comes from the sample seed. */
#include "dam/niah.h"
#include "dam/common.h"
#include "dam/tokenizer.h"
#include "niah_internal.h"
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- growable string ---- */

void sbuf_append(struct sbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) { b->failed = 1; return; }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void sbuf_puts(struct sbuf *b, const char *s) { sbuf_append(b, s, strlen(s)); }

void sbuf_printf(struct sbuf *b, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) { b->failed = 1; return; }
    if ((size_t)n < sizeof small) { sbuf_append(b, small, (size_t)n); return; }
    char *big = malloc((size_t)n + 1);
    if (!big) { b->failed = 1; return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sbuf_append(b, big, (size_t)n);
    free(big);
}

void sbuf_xml(struct sbuf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': sbuf_puts(b, "&amp;"); break;
        case '<': sbuf_puts(b, "&lt;"); break;
        case '>': sbuf_puts(b, "&gt;"); break;
        case '"': sbuf_puts(b, "&quot;"); break;
        default:
            /* control characters are not allowed in XML 1.0 */
            if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t') sbuf_puts(b, " ");
            else sbuf_append(b, s, 1);
        }
    }
}

char *sbuf_take(struct sbuf *b) {
    if (b->failed) { sbuf_free(b); dam_fail("out of memory building text"); return NULL; }
    if (!b->data) sbuf_append(b, "", 0);
    if (b->failed) { dam_fail("out of memory building text"); return NULL; }
    char *s = b->data;
    b->data = NULL; b->len = b->cap = 0;
    return s;
}

void sbuf_free(struct sbuf *b) {
    free(b->data);
    b->data = NULL; b->len = b->cap = 0; b->failed = 0;
}

/* ---- tasks ---- */

static const char *const task_names[NIAH_N_TASKS] = { "passkey", "niah", "multikey", "lines" };

const char *niah_task_name(enum niah_task t) {
    return t >= 0 && t < NIAH_N_TASKS ? task_names[t] : "?";
}

int niah_task_parse(const char *name, enum niah_task *out) {
    for (int t = 0; t < NIAH_N_TASKS; t++)
        if (!strcmp(name, task_names[t])) { *out = (enum niah_task)t; return 0; }
    return dam_fail("unknown task '%s' (expected passkey, niah, multikey or lines)", name);
}

/* Enough for the key plus a little: the answer prefix is already in the
 * prompt, and generation also stops at the end of the first line. */
int niah_default_answer_tokens(enum niah_task t) {
    switch (t) {
    case NIAH_PASSKEY: return 12;
    case NIAH_NIAH: case NIAH_MULTIKEY: return 16;
    default: return 32;        /* lines: "The <REGISTER_CONTENT> in line x-y is 123." */
    }
}

/* ---- the random generator (splitmix64: tiny, and good for seeding) ---- */

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *s, uint64_t n) { return n ? rng_next(s) % n : 0; }
static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) / 9007199254740992.0; }

uint64_t niah_sample_seed(uint64_t seed, enum niah_task task, int length, float depth, int sample) {
    uint64_t s = seed;
    uint64_t parts[4] = { (uint64_t)task, (uint64_t)length,
                          (uint64_t)llround((double)depth * 1e6), (uint64_t)sample };
    uint64_t h = rng_next(&s);
    for (int i = 0; i < 4; i++) { s = h ^ parts[i]; h = rng_next(&s); }
    return h;
}

/* ---- keys: "<adjective>-<noun>", as RULER and LongEval make them ---- */

static const char *const adjectives[] = {
    "amber", "ancient", "angry", "bitter", "bold", "brave", "breezy", "bright", "brisk", "broad",
    "calm", "careful", "cheerful", "chilly", "clever", "cloudy", "clumsy", "cosy", "crimson", "crisp",
    "curious", "dapper", "daring", "dusty", "eager", "early", "elegant", "empty", "fancy", "fearless",
    "fierce", "flat", "fluffy", "foggy", "fragile", "frosty", "funny", "gentle", "giant", "glassy",
    "gleaming", "golden", "graceful", "grumpy", "hasty", "hidden", "hollow", "humble", "hungry", "icy",
    "idle", "jolly", "keen", "kind", "lanky", "lazy", "little", "lively", "lonely", "loud",
    "lucky", "marble", "mellow", "merry", "mighty", "misty", "modest", "muddy", "narrow", "nimble",
    "noble", "noisy", "odd", "orange", "patient", "plain", "polite", "proud", "purple", "quick",
    "quiet", "rapid", "rare", "restless", "rocky", "rosy", "rough", "rusty", "sandy", "scarlet",
    "shaggy", "shiny", "silent", "silver", "simple", "sleepy", "slow", "smooth", "snowy", "soft",
    "solid", "sour", "sparkling", "spicy", "steady", "stormy", "strange", "sturdy", "sunny", "swift",
    "tall", "tame", "tender", "thirsty", "tidy", "tiny", "velvet", "vivid", "wandering", "warm",
    "wary", "wild", "windy", "wise", "witty", "wooden", "woolly", "young", "zealous", "zesty",
};
static const char *const nouns[] = {
    "anchor", "apple", "arrow", "badger", "barrel", "basket", "beacon", "beetle", "bell", "blanket",
    "bottle", "bramble", "bridge", "bucket", "button", "cabin", "camel", "candle", "canyon", "castle",
    "cedar", "chimney", "cloud", "clover", "comet", "compass", "cottage", "crane", "crystal", "dolphin",
    "donkey", "dragon", "drum", "eagle", "ember", "falcon", "feather", "fern", "ferry", "fiddle",
    "forest", "fountain", "fox", "garden", "glacier", "goose", "harbor", "hammer", "hazel", "helmet",
    "heron", "hill", "island", "ivy", "jacket", "kettle", "kite", "ladder", "lantern", "lemon",
    "lighthouse", "lily", "lizard", "magnet", "maple", "meadow", "mirror", "moth", "mountain", "needle",
    "nest", "oak", "otter", "owl", "paddle", "panther", "parrot", "pebble", "pepper", "piano",
    "pigeon", "pillow", "pine", "planet", "pocket", "pond", "puzzle", "quill", "rabbit", "raven",
    "ribbon", "river", "robin", "rocket", "saddle", "salmon", "shell", "shovel", "sparrow", "spider",
    "spoon", "squirrel", "star", "stone", "teapot", "thistle", "thunder", "tiger", "tower", "trumpet",
    "tulip", "turtle", "umbrella", "valley", "violin", "wagon", "walnut", "whale", "willow", "window",
};
#define N_ADJ (int)(sizeof adjectives / sizeof adjectives[0])
#define N_NOUN (int)(sizeof nouns / sizeof nouns[0])

/* ---- haystack ---- */

static int sentence_end_at(const char *t, size_t i, size_t len) {
    if (t[i] != '.' && t[i] != '!' && t[i] != '?') return 0;
    size_t j = i + 1;
    while (j < len && strchr("\"')]", t[j])) j++;          /* closing quotes, brackets */
    return j == len || isspace((unsigned char)t[j]) ? (int)(j - i) : 0;
}

/* A run longer than this without a sentence end is cut at a space. */
#define MAX_SENTENCE_BYTES 600

/* Copies text with every run of whitespace made one space, trimmed. */
static size_t collapse_spaces(const char *text, size_t len, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (isspace((unsigned char)text[i])) {
            if (o > 0 && out[o - 1] != ' ') out[o++] = ' ';
        } else {
            out[o++] = text[i];
        }
    }
    while (o > 0 && out[o - 1] == ' ') o--;
    out[o] = 0;
    return o;
}

/* Where the sentence starting at start ends: the index just past it (a space
 * or the end of the text). A piece longer than MAX_SENTENCE_BYTES without an
 * end is cut at its last space. */
static size_t sentence_end(const char *t, size_t start, size_t len) {
    size_t last_space = 0;
    for (size_t j = start; j < len; j++) {
        if (t[j] == ' ') last_space = j;
        int e = sentence_end_at(t, j, len);
        if (e) return j + (size_t)e;
        if (j - start >= MAX_SENTENCE_BYTES && last_space > start) return last_space;
    }
    return len;
}

struct niah_haystack *niah_haystack_parse(const char *text, size_t len, const char *what) {
    struct niah_haystack *h = xcalloc(1, sizeof *h, "haystack");
    if (!h) return NULL;
    int cap = 64;
    h->text = xmalloc(len + 1, "haystack text");
    h->sentences = xmalloc((size_t)cap * sizeof *h->sentences, "haystack sentences");
    if (!h->text || !h->sentences) { niah_haystack_free(h); return NULL; }
    size_t n = collapse_spaces(text, len, h->text);
    int words = 0;
    for (size_t i = 0; i < n && !words; i++) words = isalnum((unsigned char)h->text[i]);
    if (!words) {
        niah_haystack_free(h);
        dam_fail("the haystack %s has no text", what);
        return NULL;
    }
    for (size_t start = 0; start < n; ) {
        size_t end = sentence_end(h->text, start, n);
        h->text[end] = 0;                     /* the space after it becomes the NUL */
        if (h->n_sentences == cap) {
            const char **grown = realloc(h->sentences, (size_t)(cap *= 2) * sizeof *grown);
            if (!grown) { niah_haystack_free(h); dam_fail("out of memory reading %s", what); return NULL; }
            h->sentences = grown;
        }
        h->sentences[h->n_sentences++] = h->text + start;
        start = end + 1;
    }
    return h;
}

struct niah_haystack *niah_haystack_load(const char *path) {
    size_t len;
    char *text = read_file(path, &len);
    if (!text) return NULL;
    if (text_check(path, text, len) != 0) { free(text); return NULL; }   /* names the file */
    struct niah_haystack *h = niah_haystack_parse(text, len, path);
    free(text);
    return h;
}

void niah_haystack_free(struct niah_haystack *h) {
    if (!h) return;
    free(h->text);
    free(h->sentences);
    free(h);
}

int niah_default_haystack_path(char *buf, size_t size) {
    return data_find("prompts/haystack.txt", 0, buf, size);
}

/* ---- encoders ---- */

static int encode_with_tokenizer(void *ctx, const char *text, size_t len, int **ids, int *n) {
    struct niah_tokenizer_encoder *e = ctx;
    return e->chat ? tokenizer_encode_chat(e->tok, text, len, 1, ids, n)
                   : tokenizer_encode(e->tok, text, len, 1, ids, n);
}

void niah_tokenizer_encoder_init(struct niah_tokenizer_encoder *e, const struct tokenizer *tok, int chat) {
    e->enc.encode = encode_with_tokenizer;
    e->enc.ctx = e;
    e->tok = tok;
    e->chat = chat;
}

/* ---- the builder ---- */

struct niah_builder {
    enum niah_task task;
    const struct niah_haystack *h;
    const struct niah_encoder *enc;
    char *chat_template;       /* NULL = plain */
    int n_special;             /* tokens the encoder adds to any text (BOS) */
    int *sentence_tokens;      /* (h->n_sentences) token counts, -1 = not yet counted */
};

static int count_tokens(const struct niah_encoder *enc, const char *text, size_t len, int *n) {
    int *ids = NULL;
    int rc = enc->encode(enc->ctx, text, len, &ids, n);
    free(ids);
    return rc;
}

struct niah_builder *niah_builder_new(enum niah_task task, const struct niah_haystack *h,
                                      const struct niah_encoder *enc, const char *chat_template) {
    if (task != NIAH_LINES && !h) { dam_fail("the %s task needs a haystack", niah_task_name(task)); return NULL; }
    struct niah_builder *b = xcalloc(1, sizeof *b, "niah builder");
    if (!b) return NULL;
    b->task = task;
    b->h = h;
    b->enc = enc;
    if (chat_template && !(b->chat_template = strdup(chat_template))) goto oom;
    if (h) {
        if (!(b->sentence_tokens = xmalloc((size_t)h->n_sentences * sizeof(int), "sentence counts"))) goto fail;
        for (int i = 0; i < h->n_sentences; i++) b->sentence_tokens[i] = -1;
    }
    if (count_tokens(enc, "", 0, &b->n_special) != 0) goto fail;
    return b;
oom:
    dam_fail("out of memory");
fail:
    niah_builder_free(b);
    return NULL;
}

void niah_builder_free(struct niah_builder *b) {
    if (!b) return;
    free(b->chat_template);
    free(b->sentence_tokens);
    free(b);
}

/* ---- one build: the pool of haystack units and the needles ---- */

struct unit {
    const char *text;          /* a haystack sentence, or owned (a record line) */
    int owned;
    int tokens;                /* encoded alone, without the encoder's specials */
    int chosen;                /* in the current selection */
};

struct needle {
    char *text;
    double depth;              /* 0..1: where among the haystack it goes */
    int boundary;              /* chosen units before it */
};

struct build {
    struct niah_builder *b;
    uint64_t rng;
    int first_sentence;        /* prose: the pool starts here and wraps around */
    struct unit *units;        /* (n_units) the pool, grown on demand */
    int n_units, cap_units;
    unsigned char *used_keys;  /* (N_ADJ * N_NOUN) lines: keys already in the record */
    int n_used_keys;
    struct needle needles[NIAH_MULTIKEY_NEEDLES];
    int n_needles;             /* needles[0] is the asked one */
    char *question;            /* after the haystack */
    char *answer_prefix;       /* "" for lines */
    int sep_tokens;            /* tokens a separator between units adds (estimate) */
};

static int unit_tokens(struct build *st, const char *text, int *out) {
    int n;
    if (count_tokens(st->b->enc, text, strlen(text), &n) != 0) return -1;
    *out = n - st->b->n_special;
    return 0;
}

static void random_key(struct build *st, char *buf, size_t size, int *index) {
    int a = (int)rng_below(&st->rng, N_ADJ), n = (int)rng_below(&st->rng, N_NOUN);
    snprintf(buf, size, "%s-%s", adjectives[a], nouns[n]);
    *index = a * N_NOUN + n;
}

/* A record line with a key not used before in this prompt. */
static char *new_line(struct build *st) {
    if (st->n_used_keys >= N_ADJ * N_NOUN) {
        dam_fail("the lines record needs more than %d distinct line keys", N_ADJ * N_NOUN);
        return NULL;
    }
    char key[64];
    int index;
    do random_key(st, key, sizeof key, &index); while (st->used_keys[index]);
    st->used_keys[index] = 1;
    st->n_used_keys++;
    char *line = malloc(128);
    if (!line) { dam_fail("out of memory"); return NULL; }
    snprintf(line, 128, "line %s: REGISTER_CONTENT is <%d>", key, 1 + (int)rng_below(&st->rng, 50000));
    return line;
}

/* Makes sure the pool has unit i, with its token count. */
static int pool_ensure(struct build *st, int i) {
    while (st->n_units <= i) {
        if (st->n_units == st->cap_units) {
            int cap = st->cap_units ? st->cap_units * 2 : 256;
            struct unit *grown = realloc(st->units, (size_t)cap * sizeof *grown);
            if (!grown) return dam_fail("out of memory");
            st->units = grown;
            st->cap_units = cap;
        }
        struct unit *u = &st->units[st->n_units];
        memset(u, 0, sizeof *u);
        if (st->b->task == NIAH_LINES) {
            char *line = new_line(st);
            if (!line) return -1;
            u->text = line;
            u->owned = 1;
            if (unit_tokens(st, line, &u->tokens) != 0) return -1;
        } else {
            const struct niah_haystack *h = st->b->h;
            int s = (st->first_sentence + st->n_units) % h->n_sentences;
            u->text = h->sentences[s];
            int *cached = &st->b->sentence_tokens[s];
            if (*cached < 0 && unit_tokens(st, u->text, cached) != 0) return -1;
            u->tokens = *cached;
        }
        st->n_units++;
    }
    return 0;
}

static void build_free(struct build *st) {
    for (int i = 0; i < st->n_units; i++)
        if (st->units[i].owned) free((char *)st->units[i].text);
    free(st->units);
    free(st->used_keys);
    for (int i = 0; i < st->n_needles; i++) free(st->needles[i].text);
    free(st->question);
    free(st->answer_prefix);
}

/* ---- the task texts (LONG_CONTEXT_TASKS.md) ---- */

static const char passkey_intro[] =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
    "I will quiz you about the important information there.";
static const char niah_intro[] =
    "Some special magic numbers are hidden within the following text. Make sure to memorize it. "
    "I will quiz you about the numbers afterwards.";
static const char lines_intro[] =
    "Below is a record of lines I want you to remember. Each line begins with 'line <line index>' "
    "and contains a '<REGISTER_CONTENT>' at the end of the line as a numerical value. For each line "
    "index, memorize its corresponding <REGISTER_CONTENT>. At the end of the record, I will ask you "
    "to retrieve the corresponding <REGISTER_CONTENT> of a certain line index. Now the record start:";

static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) { s = NULL; dam_fail("out of memory"); }
    va_end(ap);
    return s;
}

/* Draws the keys and answers, writes the needles and the question. */
static int make_needles(struct build *st, struct niah_prompt *out, double depth) {
    char key[64], value[16];
    int index;
    enum niah_task task = st->b->task;
    if (task == NIAH_PASSKEY) {
        snprintf(value, sizeof value, "%d", 10000 + (int)rng_below(&st->rng, 90000));
        st->needles[0].text = format("The pass key is %s. Remember it. %s is the pass key.", value, value);
        st->question = format("What is the pass key?");
        st->answer_prefix = format("The pass key is");
        key[0] = 0;
        st->n_needles = 1;
    } else if (task == NIAH_LINES) {
        random_key(st, key, sizeof key, &index);
        st->used_keys[index] = 1;
        st->n_used_keys = 1;
        snprintf(value, sizeof value, "%d", 1 + (int)rng_below(&st->rng, 50000));
        st->needles[0].text = format("line %s: REGISTER_CONTENT is <%s>", key, value);
        st->question = format("Now the record is over. Tell me what is the <REGISTER_CONTENT> in line %s? "
                              "I need the number.", key);
        st->answer_prefix = format("%s", "");
        st->n_needles = 1;
    } else {
        st->n_needles = task == NIAH_MULTIKEY ? NIAH_MULTIKEY_NEEDLES : 1;
        int keys[NIAH_MULTIKEY_NEEDLES];
        for (int i = 0; i < st->n_needles; i++) {
            char k[64], v[16];
            int again;
            do {            /* distinct keys */
                random_key(st, k, sizeof k, &keys[i]);
                again = 0;
                for (int j = 0; j < i; j++) again |= keys[j] == keys[i];
            } while (again);
            snprintf(v, sizeof v, "%d", 1000000 + (int)rng_below(&st->rng, 9000000));
            st->needles[i].text = format("One of the special magic numbers for %s is: %s.", k, v);
            if (!st->needles[i].text) return -1;
            if (i == 0) { snprintf(key, sizeof key, "%s", k); snprintf(value, sizeof value, "%s", v); }
        }
        st->question = format("What is the special magic number for %s mentioned in the provided text?", key);
        st->answer_prefix = format("The special magic number for %s mentioned in the provided text is", key);
    }
    st->needles[0].depth = depth;
    for (int i = 1; i < st->n_needles; i++) st->needles[i].depth = rng_unit(&st->rng);
    for (int i = 0; i < st->n_needles; i++) if (!st->needles[i].text) return -1;
    if (!st->question || !st->answer_prefix) return -1;
    out->key = strdup(key);
    out->expected = strdup(value);
    if (!out->key || !out->expected) return dam_fail("out of memory");
    return 0;
}

/* ---- assembling the text of a selection ---- */

/* Estimated tokens a unit adds to the prompt: its own and a separator's. */
static long unit_cost(const struct build *st, int i) {
    long c = st->units[i].tokens + st->sep_tokens;
    return c > 0 ? c : 1;
}

/* Cost of the chosen units before each boundary: places each needle at the
 * boundary nearest its depth. Returns the haystack's estimated tokens. */
static long place_needles(struct build *st) {
    long total = 0;
    for (int i = 0; i < st->n_units; i++)
        if (st->units[i].chosen) total += unit_cost(st, i);
    for (int j = 0; j < st->n_needles; j++) {
        double want = st->needles[j].depth * (double)total;
        long before = 0;
        int k = 0, best_k = 0;
        double best = fabs(want);
        for (int i = 0; i < st->n_units; i++) {
            if (!st->units[i].chosen) continue;
            before += unit_cost(st, i);
            k++;
            if (fabs((double)before - want) < best) { best = fabs((double)before - want); best_k = k; }
        }
        st->needles[j].boundary = best_k;
    }
    return total;
}

static void put_needles_at(struct build *st, struct sbuf *t, int k, const char *sep, int *first,
                           struct niah_prompt *out) {
    for (int j = 0; j < st->n_needles; j++) {
        if (st->needles[j].boundary != k) continue;
        if (!*first) sbuf_puts(t, sep);
        *first = 0;
        if (j == 0) out->needle_begin = t->len;
        sbuf_puts(t, st->needles[j].text);
        if (j == 0) out->needle_end = t->len;
        if (st->b->task == NIAH_LINES) sbuf_puts(t, "\n");
    }
}

/* The user's part: instructions, haystack with needles, question; offsets of
 * the haystack and the asked needle are recorded relative to it. */
static char *assemble_user(struct build *st, struct niah_prompt *out) {
    struct sbuf t = { 0 };
    int lines = st->b->task == NIAH_LINES;
    const char *sep = lines ? "" : " ";     /* lines end in "\n" themselves */
    sbuf_puts(&t, lines ? lines_intro : st->b->task == NIAH_PASSKEY ? passkey_intro : niah_intro);
    sbuf_puts(&t, lines ? "\n\n" : "\n");
    out->haystack_begin = t.len;
    int first = 1, k = 0;
    put_needles_at(st, &t, 0, sep, &first, out);
    for (int i = 0; i < st->n_units; i++) {
        if (!st->units[i].chosen) continue;
        if (!first) sbuf_puts(&t, sep);
        first = 0;
        sbuf_puts(&t, st->units[i].text);
        if (lines) sbuf_puts(&t, "\n");
        put_needles_at(st, &t, ++k, sep, &first, out);
    }
    out->haystack_end = t.len;
    sbuf_puts(&t, "\n");
    sbuf_puts(&t, st->question);
    return sbuf_take(&t);
}

/* The whole prompt: plain ("...question answer-prefix") or through the chat
 * template (the answer prefix after the assistant header). */
static char *assemble(struct build *st, struct niah_prompt *out) {
    char *user = assemble_user(st, out);
    if (!user) return NULL;
    const char *tmpl = st->b->chat_template;
    struct sbuf t = { 0 };
    size_t shift = 0;
    if (tmpl) {
        char *chat = chat_format(tmpl, NULL, user);
        if (!chat) { free(user); return NULL; }
        const char *at = strstr(chat, user);
        shift = at ? (size_t)(at - chat) : 0;
        sbuf_puts(&t, chat);
        free(chat);
        sbuf_puts(&t, st->answer_prefix);
    } else {
        sbuf_puts(&t, user);
        if (*st->answer_prefix) { sbuf_puts(&t, " "); sbuf_puts(&t, st->answer_prefix); }
    }
    free(user);
    out->haystack_begin += shift; out->haystack_end += shift;
    out->needle_begin += shift; out->needle_end += shift;
    return sbuf_take(&t);
}

/* ---- choosing units for a token budget ---- */

#define MOVE_WINDOW 48   /* units looked at for each add / drop / swap */
#define MAX_MOVES 32

/* Marks units chosen so that their estimated tokens are as close to budget
 * as the moves allow. */
static int select_units(struct build *st, long budget) {
    for (int i = 0; i < st->n_units; i++) st->units[i].chosen = 0;
    long sum = 0;
    int next = 0;
    for (;; next++) {
        if (pool_ensure(st, next) != 0) return -1;
        long cost = unit_cost(st, next);
        if (sum + cost > budget) break;
        st->units[next].chosen = 1;
        sum += cost;
    }
    for (int move = 0; move < MAX_MOVES && sum != budget; move++) {
        long gap = budget - sum, best = labs(gap);
        int add = -1, drop = -1;
        if (pool_ensure(st, next + MOVE_WINDOW) != 0) return -1;
        /* the last chosen units, newest first */
        int tail[MOVE_WINDOW], n_tail = 0;
        for (int i = st->n_units - 1; i >= 0 && n_tail < MOVE_WINDOW; i--)
            if (st->units[i].chosen) tail[n_tail++] = i;
        for (int x = next; x < next + MOVE_WINDOW; x++) {
            if (st->units[x].chosen) continue;
            long cx = unit_cost(st, x);
            if (labs(gap - cx) < best) { best = labs(gap - cx); add = x; drop = -1; }
            for (int y = 0; y < n_tail; y++) {
                long d = cx - unit_cost(st, tail[y]);
                if (labs(gap - d) < best) { best = labs(gap - d); add = x; drop = tail[y]; }
            }
        }
        for (int y = 0; y < n_tail; y++) {
            long d = -(long)unit_cost(st, tail[y]);
            if (labs(gap - d) < best) { best = labs(gap - d); add = -1; drop = tail[y]; }
        }
        if (add < 0 && drop < 0) break;
        if (add >= 0) { st->units[add].chosen = 1; sum += unit_cost(st, add); }
        if (drop >= 0) { st->units[drop].chosen = 0; sum -= unit_cost(st, drop); }
    }
    return 0;
}

/* Tokens a separator adds between two units, measured on the pool's first
 * two: encode(a SEP b) against encode(a) and encode(b). */
static int measure_separator(struct build *st) {
    if (pool_ensure(st, 1) != 0) return -1;
    struct sbuf t = { 0 };
    int lines = st->b->task == NIAH_LINES;
    sbuf_puts(&t, st->units[0].text);
    sbuf_puts(&t, lines ? "\n" : " ");
    sbuf_puts(&t, st->units[1].text);
    if (lines) sbuf_puts(&t, "\n");
    char *text = sbuf_take(&t);
    if (!text) return -1;
    int n;
    int rc = count_tokens(st->b->enc, text, strlen(text), &n);
    free(text);
    if (rc != 0) return -1;
    int both = n - st->b->n_special;
    int sep = both - st->units[0].tokens - st->units[1].tokens;
    st->sep_tokens = lines ? (sep + 1) / 2 : sep;
    if (st->sep_tokens < 0) st->sep_tokens = 0;
    return 0;
}

/* ---- the prompt ---- */

void niah_prompt_free(struct niah_prompt *p) {
    if (!p) return;
    free(p->text);
    free(p->ids);
    free(p->key);
    free(p->expected);
    memset(p, 0, sizeof *p);
}

/* Encodes the current selection into out (text, ids, offsets, depth). */
static int encode_selection(struct build *st, struct niah_prompt *out) {
    long total = place_needles(st);
    free(out->text); free(out->ids);
    out->ids = NULL;
    if (!(out->text = assemble(st, out))) return -1;
    if (st->b->enc->encode(st->b->enc->ctx, out->text, strlen(out->text), &out->ids, &out->n_ids) != 0) return -1;
    long before = 0;
    for (int i = 0, k = 0; i < st->n_units && k < st->needles[0].boundary; i++)
        if (st->units[i].chosen) { before += unit_cost(st, i); k++; }
    out->needle_depth = total > 0 ? (double)before / (double)total : st->needles[0].depth;
    return 0;
}

#define MAX_FITS 12

int niah_build(struct niah_builder *b, int length, float depth, uint64_t seed, int max_tokens,
               struct niah_prompt *out) {
    memset(out, 0, sizeof *out);
    if (length < 1) return dam_fail("prompt length %d: must be at least 1", length);
    if (!(depth >= 0 && depth <= 1)) return dam_fail("depth %g: must be between 0 and 1", (double)depth);
    out->task = b->task;
    out->length = length;
    out->depth = depth;
    out->seed = seed;
    /* The band: within 2% of length, never past max_tokens. */
    int slack = (int)floor(0.02 * length);
    long lo = length - slack, hi = length + slack;
    if (max_tokens > 0 && hi > max_tokens) hi = max_tokens;
    long target = length < hi ? length : hi;
    if (hi < lo)
        return dam_fail("length %d does not fit: the prompt may take at most %d tokens here", length, max_tokens);

    struct build st = { .b = b, .rng = seed };
    int rc = -1;
    if (b->task == NIAH_LINES) {
        if (!(st.used_keys = xcalloc((size_t)N_ADJ * N_NOUN, 1, "line keys"))) goto done;
    } else {
        st.first_sentence = (int)rng_below(&st.rng, (uint64_t)b->h->n_sentences);
    }
    if (make_needles(&st, out, depth) != 0) goto done;
    if (measure_separator(&st) != 0) goto done;

    /* The fixed text and the needles alone. */
    for (int i = 0; i < st.n_units; i++) st.units[i].chosen = 0;
    if (encode_selection(&st, out) != 0) goto done;
    int fixed = out->n_ids;
    long budget = target - fixed;
    if (budget <= 0 || (b->task == NIAH_LINES && budget < st.units[0].tokens + st.sep_tokens)) {
        dam_fail("length %d is too short for the %s prompt: its fixed text and needle take %d tokens",
                 length, niah_task_name(b->task), fixed);
        goto done;
    }
    long tried[MAX_FITS];
    int best_n = -1;
    for (int fit = 0; fit < MAX_FITS; fit++) {
        tried[fit] = budget;
        if (select_units(&st, budget) != 0 || encode_selection(&st, out) != 0) goto done;
        long n = out->n_ids;
        if (best_n < 0 || labs(n - target) < labs(best_n - target)) best_n = (int)n;
        if (n >= lo && n <= hi) { rc = 0; goto done; }
        budget += target - n;                 /* seams cost more or less than estimated */
        if (budget < 0) budget = 0;
        int again = 0;
        for (int i = 0; i <= fit; i++) again |= tried[i] == budget;
        if (again) budget += target > n ? 1 : -1;   /* step past a cycle */
    }
    /* Usually the units are too coarse for the band: say so. */
    long mean = 0;
    int n_mean = st.n_units < 64 ? st.n_units : 64;
    for (int i = 0; i < n_mean; i++) mean += unit_cost(&st, i);
    mean = n_mean ? mean / n_mean : 0;
    if (mean > 2 * slack)
        dam_fail("cannot fit the %s prompt to %d tokens within 2%% (closest: %d tokens): its %s take about %ld "
                 "tokens each, too coarse for a band of +-%d; try another length", niah_task_name(b->task),
                 length, best_n, b->task == NIAH_LINES ? "record lines" : "sentences", mean, slack);
    else
        dam_fail("cannot fit the %s prompt to %d tokens within 2%% (closest: %d tokens)",
                 niah_task_name(b->task), length, best_n);
done:
    build_free(&st);
    if (rc != 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", dam_last_error());
        niah_prompt_free(out);
        dam_fail("%s", msg);
    }
    return rc;
}
