/* test_niah.c — dam niah's pure parts: grid values, haystack, prompt
 * construction (length, depth, determinism), scoring, output writers.
 *
 * Prompts are built with toy encoders (no tokenizer files needed) and with
 * the embedded stories260k tokenizer. */
#include "../harness.h"
#include "dam/attn.h"
#include "dam/common.h"
#include "dam/niah.h"
#include "dam/tokenizer.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STORIES "third_party/models/stories260k"
#define HAYSTACK "prompts/haystack.txt"

/* ---- toy encoders ---- */

/* One token per word and per punctuation mark, after a BOS: unit counts add
 * up exactly at the seams. */
static int encode_words(void *ctx, const char *text, size_t len, int **ids, int *n) {
    (void)ctx;
    int cap = 16, count = 0;
    int *out = malloc(cap * sizeof *out);
    out[count++] = 1;
    for (size_t i = 0; i < len; ) {
        unsigned char c = (unsigned char)text[i];
        if (isspace(c)) { i++; continue; }
        unsigned h = 7;
        if (isalnum(c)) while (i < len && isalnum((unsigned char)text[i])) h = h * 31 + (unsigned char)text[i++];
        else h = h * 31 + (unsigned char)text[i++];
        if (count == cap) out = realloc(out, (cap *= 2) * sizeof *out);
        out[count++] = (int)(h % 30000) + 2;
    }
    *ids = out;
    *n = count;
    return 0;
}

/* Fixed chunks of 3 bytes over the whole text: the count of a text is not
 * the sum of its parts' counts, so the builder's correction is exercised. */
static int encode_chunks(void *ctx, const char *text, size_t len, int **ids, int *n) {
    (void)ctx;
    int count = 1 + (int)((len + 2) / 3);
    int *out = malloc((size_t)count * sizeof *out);
    out[0] = 1;
    for (int i = 1; i < count; i++) out[i] = (unsigned char)text[(size_t)(i - 1) * 3] + 2;
    *ids = out;
    *n = count;
    return 0;
}

static const struct niah_encoder words = { encode_words, NULL };
static const struct niah_encoder chunks = { encode_chunks, NULL };

static int count_with(const struct niah_encoder *e, const char *text, size_t len) {
    int *ids, n;
    ck_assert_int_eq(e->encode(e->ctx, text, len, &ids, &n), 0);
    free(ids);
    return n;
}

static struct niah_haystack *default_haystack(void) {
    struct niah_haystack *h = niah_haystack_load(HAYSTACK);
    ck_assert_msg(h != NULL, "%s", dam_last_error());
    return h;
}

/* ---- grid values ---- */

START_TEST(test_tasks) {
    enum niah_task t;
    const char *names[] = { "passkey", "niah", "multikey", "lines" };
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(niah_task_parse(names[i], &t), 0);
        ck_assert_int_eq(t, i);
        ck_assert_str_eq(niah_task_name(t), names[i]);
        ck_assert_int_gt(niah_default_answer_tokens(t), 5);
    }
    ck_assert_int_eq(niah_task_parse("haystack", &t), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "unknown task 'haystack'"));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "passkey, niah, multikey or lines"));
}
END_TEST

START_TEST(test_parse_lengths) {
    int *v, n;
    ck_assert_int_eq(niah_parse_lengths("1k,2k,4096,1.5k,300", &v, &n), 0);
    ck_assert_int_eq(n, 5);
    int want[] = { 1024, 2048, 4096, 1536, 300 };
    for (int i = 0; i < 5; i++) ck_assert_int_eq(v[i], want[i]);
    free(v);
    ck_assert_int_eq(niah_parse_lengths("8K", &v, &n), 0);
    ck_assert_int_eq(v[0], 8192);
    free(v);
    const char *bad[] = { "", "0", "abc", "1k,1k", "1,,2", "2.5", "-1", "1k,", "99999999999" };
    for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        ck_assert_msg(niah_parse_lengths(bad[i], &v, &n) == -1, "accepted '%s'", bad[i]);
        ck_assert_ptr_nonnull(strstr(dam_last_error(), "--lengths"));
    }
    char buf[16];
    niah_format_length(1024, buf, sizeof buf); ck_assert_str_eq(buf, "1k");
    niah_format_length(1536, buf, sizeof buf); ck_assert_str_eq(buf, "1.5k");
    niah_format_length(300, buf, sizeof buf); ck_assert_str_eq(buf, "300");
    niah_format_length(131072, buf, sizeof buf); ck_assert_str_eq(buf, "128k");
}
END_TEST

START_TEST(test_parse_depths) {
    float *v;
    int n;
    ck_assert_int_eq(niah_parse_depths("0,0.25,0.5,0.75,1", &v, &n), 0);
    ck_assert_int_eq(n, 5);
    ck_assert_float_eq(v[1], 0.25f);
    ck_assert_float_eq(v[4], 1.0f);
    free(v);
    const char *bad[] = { "", "1.5", "-0.1", "x", "0.5,0.5", "nan" };
    for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        ck_assert_msg(niah_parse_depths(bad[i], &v, &n) == -1, "accepted '%s'", bad[i]);
        ck_assert_ptr_nonnull(strstr(dam_last_error(), "--depths"));
    }
}
END_TEST

/* ---- haystack ---- */

START_TEST(test_haystack_sentences) {
    const char *text = "  One two.  Three!\n\nFour?  \"Five.\" (Six.) Mr. Seven\t eight";
    struct niah_haystack *h = niah_haystack_parse(text, strlen(text), "test");
    ck_assert_ptr_nonnull(h);
    const char *want[] = { "One two.", "Three!", "Four?", "\"Five.\"", "(Six.)", "Mr.", "Seven eight" };
    ck_assert_int_eq(h->n_sentences, 7);
    for (int i = 0; i < 7; i++) ck_assert_str_eq(h->sentences[i], want[i]);
    niah_haystack_free(h);

    ck_assert_ptr_null(niah_haystack_parse(" \n\t ", 4, "blank.txt"));
    ck_assert_str_eq(dam_last_error(), "the haystack blank.txt has no text");
    ck_assert_ptr_null(niah_haystack_load("/no/such/haystack.txt"));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "/no/such/haystack.txt"));

    /* a long run without a sentence end is cut at spaces */
    char *run = malloc(5001);
    for (int i = 0; i < 5000; i++) run[i] = i % 10 == 9 ? ' ' : 'a';
    run[5000] = 0;
    h = niah_haystack_parse(run, 5000, "run");
    ck_assert_int_gt(h->n_sentences, 5);
    for (int i = 0; i < h->n_sentences; i++) ck_assert_int_le(strlen(h->sentences[i]), 610);
    niah_haystack_free(h);
    free(run);
}
END_TEST

START_TEST(test_default_haystack) {
    /* the project's prose: sentences that end in '.', no digits, big enough */
    struct niah_haystack *h = default_haystack();
    ck_assert_int_gt(h->n_sentences, 2000);
    int short_ones = 0;
    for (int i = 0; i < h->n_sentences; i++) {
        const char *s = h->sentences[i];
        size_t n = strlen(s);
        ck_assert_msg(s[n - 1] == '.', "sentence %d does not end in '.': %s", i, s);
        for (size_t k = 0; k < n; k++) ck_assert_msg(!isdigit((unsigned char)s[k]), "digit in %s", s);
        short_ones += n < 20;
    }
    ck_assert_int_gt(short_ones, 50);     /* short sentences let lengths be met finely */
    niah_haystack_free(h);
}
END_TEST

/* ---- prompts ---- */

/* A copy of text[0..len) without multikey needles ("One of the special magic
 * numbers for k is: v."). */
static char *without_needles(const char *text, size_t len) {
    static const char mark[] = "One of the special magic numbers for ";
    char *out = malloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; ) {
        if (len - i >= sizeof mark - 1 && !strncmp(text + i, mark, sizeof mark - 1)) {
            const char *end = strstr(text + i, ". ");
            i = end && (size_t)(end - text) < len ? (size_t)(end - text) + 2 : len;
            continue;
        }
        out[o++] = text[i++];
    }
    out[o] = 0;
    return out;
}

/* Checks one prompt: length band, needle in place, at a sentence boundary,
 * near the depth (in the encoder's tokens). */
static void check_prompt(const struct niah_encoder *e, const struct niah_prompt *p, int length, float depth,
                         int max_tokens) {
    int slack = (int)(0.02 * length);
    int hi = max_tokens > 0 && max_tokens < length + slack ? max_tokens : length + slack;
    ck_assert_msg(p->n_ids >= length - slack && p->n_ids <= hi, "%s length %d: %d tokens",
                  niah_task_name(p->task), length, p->n_ids);
    ck_assert_int_eq(count_with(e, p->text, strlen(p->text)), p->n_ids);
    ck_assert_uint_le(p->haystack_begin, p->needle_begin);
    ck_assert_uint_lt(p->needle_begin, p->needle_end);
    ck_assert_uint_le(p->needle_end, p->haystack_end);
    ck_assert_uint_le(p->haystack_end, strlen(p->text));
    const char *needle = p->text + p->needle_begin;
    if (p->task == NIAH_LINES) {
        ck_assert(!strncmp(needle, "line ", 5));
        ck_assert(p->needle_begin == p->haystack_begin || p->text[p->needle_begin - 1] == '\n');
    } else {
        ck_assert(p->needle_begin == p->haystack_begin || !strncmp(needle - 2, ". ", 2)
                  || !strncmp(needle - 2, "! ", 2) || !strncmp(needle - 2, "? ", 2));
    }
    char expect_in_needle[64];
    snprintf(expect_in_needle, sizeof expect_in_needle, p->task == NIAH_LINES ? "<%s>" : "%s", p->expected);
    ck_assert_msg(strstr(needle, expect_in_needle) && strstr(needle, expect_in_needle) < p->text + p->needle_end,
                  "the needle lacks %s", p->expected);
    if (p->task != NIAH_PASSKEY) {
        ck_assert(strstr(needle, p->key) < p->text + p->needle_end);
        ck_assert_ptr_nonnull(strstr(p->text + p->haystack_end, p->key));   /* asked in the question */
    }
    /* depth: haystack tokens before the needle over all haystack tokens
     * (multikey's other needles are not haystack) */
    int bos = count_with(e, "", 0);
    char *head = without_needles(p->text + p->haystack_begin, p->needle_begin - p->haystack_begin);
    char *tail = without_needles(p->text + p->needle_end, p->haystack_end - p->needle_end);
    int before = count_with(e, head, strlen(head)) - bos, after = count_with(e, tail, strlen(tail)) - bos;
    free(head);
    free(tail);
    double got = before + after > 0 ? (double)before / (before + after) : depth;
    /* one unit of slack: the needle goes between units (sentences are < 60 tokens) */
    double tolerance = 60.0 / (before + after + 1) + 0.01;
    ck_assert_msg(fabs(got - depth) <= tolerance, "%s length %d depth %g: needle at %.3f (tolerance %.3f)",
                  niah_task_name(p->task), length, (double)depth, got, tolerance);
    ck_assert(fabs(p->needle_depth - depth) <= tolerance + 0.1);
}

static void grid_with(const struct niah_encoder *e, enum niah_task task, const int *lengths, int n_lengths) {
    struct niah_haystack *h = default_haystack();
    struct niah_builder *b = niah_builder_new(task, h, e, NULL);
    ck_assert_msg(b != NULL, "%s", dam_last_error());
    const float depths[] = { 0, 0.25f, 0.5f, 0.75f, 1 };
    for (int l = 0; l < n_lengths; l++)
        for (int d = 0; d < 5; d++)
            for (int s = 0; s < 2; s++) {
                struct niah_prompt p;
                uint64_t seed = niah_sample_seed(7, task, lengths[l], depths[d], s);
                ck_assert_msg(niah_build(b, lengths[l], depths[d], seed, 0, &p) == 0, "%s %d: %s",
                              niah_task_name(task), lengths[l], dam_last_error());
                check_prompt(e, &p, lengths[l], depths[d], 0);
                niah_prompt_free(&p);
            }
    niah_builder_free(b);
    niah_haystack_free(h);
}

START_TEST(test_build_words) {
    int lengths[] = { 256, 1000, 4096 };
    for (int t = 0; t < NIAH_N_TASKS; t++) grid_with(&words, (enum niah_task)t, lengths, 3);
}
END_TEST

START_TEST(test_build_chunks) {
    int lengths[] = { 300, 2048, 8192 };
    for (int t = 0; t < NIAH_N_TASKS; t++) grid_with(&chunks, (enum niah_task)t, lengths, 3);
}
END_TEST

START_TEST(test_build_same_seed_same_prompt) {
    struct niah_haystack *h = default_haystack();
    for (int t = 0; t < NIAH_N_TASKS; t++) {
        /* two builders, as two attention modules' runs would have */
        struct niah_builder *b1 = niah_builder_new((enum niah_task)t, h, &words, NULL);
        struct niah_builder *b2 = niah_builder_new((enum niah_task)t, h, &words, NULL);
        struct niah_prompt p1, p2, p3;
        uint64_t seed = niah_sample_seed(42, (enum niah_task)t, 1024, 0.5f, 0);
        ck_assert_int_eq(niah_build(b1, 1024, 0.5f, seed, 0, &p1), 0);
        ck_assert_int_eq(niah_build(b2, 1024, 0.5f, seed, 0, &p2), 0);
        ck_assert_str_eq(p1.text, p2.text);
        ck_assert_int_eq(p1.n_ids, p2.n_ids);
        ck_assert(!memcmp(p1.ids, p2.ids, (size_t)p1.n_ids * sizeof(int)));
        ck_assert_str_eq(p1.expected, p2.expected);
        /* another sample: another prompt */
        uint64_t other = niah_sample_seed(42, (enum niah_task)t, 1024, 0.5f, 1);
        ck_assert_int_eq(niah_build(b1, 1024, 0.5f, other, 0, &p3), 0);
        ck_assert_str_ne(p1.text, p3.text);
        niah_prompt_free(&p1); niah_prompt_free(&p2); niah_prompt_free(&p3);
        niah_builder_free(b1); niah_builder_free(b2);
    }
    niah_haystack_free(h);
    /* sample seeds: a function of (seed, task, length, depth, sample) only */
    uint64_t s = niah_sample_seed(1, NIAH_NIAH, 1024, 0.25f, 0);
    ck_assert(s == niah_sample_seed(1, NIAH_NIAH, 1024, 0.25f, 0));
    ck_assert(s != niah_sample_seed(2, NIAH_NIAH, 1024, 0.25f, 0));
    ck_assert(s != niah_sample_seed(1, NIAH_PASSKEY, 1024, 0.25f, 0));
    ck_assert(s != niah_sample_seed(1, NIAH_NIAH, 2048, 0.25f, 0));
    ck_assert(s != niah_sample_seed(1, NIAH_NIAH, 1024, 0.5f, 0));
    ck_assert(s != niah_sample_seed(1, NIAH_NIAH, 1024, 0.25f, 1));
}
END_TEST

START_TEST(test_build_formats) {
    struct niah_haystack *h = default_haystack();
    struct niah_prompt p;
    /* passkey: the doc's wording, the key said twice, the answer prefix last */
    struct niah_builder *b = niah_builder_new(NIAH_PASSKEY, h, &words, NULL);
    ck_assert_int_eq(niah_build(b, 512, 0.5f, 3, 0, &p), 0);
    const char *intro0 = "There is an important info hidden inside a lot of irrelevant text.";
    ck_assert(!strncmp(p.text, intro0, strlen(intro0)));
    ck_assert_int_eq(strlen(p.expected), 5);
    char needle[128];
    snprintf(needle, sizeof needle, "The pass key is %s. Remember it. %s is the pass key.", p.expected, p.expected);
    ck_assert_ptr_nonnull(strstr(p.text, needle));
    const char *end = "\nWhat is the pass key? The pass key is";
    ck_assert_str_eq(p.text + strlen(p.text) - strlen(end), end);
    niah_prompt_free(&p);
    niah_builder_free(b);

    /* niah: one needle with a 7-digit number */
    b = niah_builder_new(NIAH_NIAH, h, &words, NULL);
    ck_assert_int_eq(niah_build(b, 512, 0.25f, 3, 0, &p), 0);
    const char *intro = "Some special magic numbers are hidden within the following text.";
    ck_assert(!strncmp(p.text, intro, strlen(intro)));
    ck_assert_int_eq(strlen(p.expected), 7);
    snprintf(needle, sizeof needle, "One of the special magic numbers for %s is: %s.", p.key, p.expected);
    ck_assert_ptr_nonnull(strstr(p.text, needle));
    char question[256];
    snprintf(question, sizeof question, "\nWhat is the special magic number for %s mentioned in the provided text? "
             "The special magic number for %s mentioned in the provided text is", p.key, p.key);
    ck_assert_str_eq(p.text + strlen(p.text) - strlen(question), question);
    int n_needles = 0;
    for (const char *s = p.text; (s = strstr(s, "One of the special magic numbers")); s++) n_needles++;
    ck_assert_int_eq(n_needles, 1);
    niah_prompt_free(&p);
    niah_builder_free(b);

    /* multikey: four needles with different keys, one asked */
    b = niah_builder_new(NIAH_MULTIKEY, h, &words, NULL);
    ck_assert_int_eq(niah_build(b, 1024, 0.75f, 3, 0, &p), 0);
    char keys[NIAH_MULTIKEY_NEEDLES][64];
    n_needles = 0;
    for (const char *s = p.text; (s = strstr(s, "One of the special magic numbers for ")); s++) {
        ck_assert_int_lt(n_needles, NIAH_MULTIKEY_NEEDLES);
        sscanf(s + strlen("One of the special magic numbers for "), "%63s", keys[n_needles]);
        for (int i = 0; i < n_needles; i++) ck_assert_str_ne(keys[i], keys[n_needles]);
        n_needles++;
    }
    ck_assert_int_eq(n_needles, NIAH_MULTIKEY_NEEDLES);
    snprintf(needle, sizeof needle, "One of the special magic numbers for %s is: %s.", p.key, p.expected);
    ck_assert_ptr_nonnull(strstr(p.text, needle));
    niah_prompt_free(&p);
    niah_builder_free(b);

    /* lines: LongEval's record; distinct line keys; depth 0 = first line, 1 = last */
    b = niah_builder_new(NIAH_LINES, NULL, &words, NULL);
    for (int d = 0; d <= 1; d++) {
        ck_assert_int_eq(niah_build(b, 1024, (float)d, 5, 0, &p), 0);
        const char *intro2 = "Below is a record of lines I want you to remember.";
        ck_assert(!strncmp(p.text, intro2, strlen(intro2)));
        ck_assert_ptr_nonnull(strstr(p.text, "Now the record start:\n\nline "));
        snprintf(needle, sizeof needle, "line %s: REGISTER_CONTENT is <%s>\n", p.key, p.expected);
        ck_assert(!strncmp(p.text + p.needle_begin, needle, strlen(needle)));
        snprintf(question, sizeof question, "\n\nNow the record is over. Tell me what is the <REGISTER_CONTENT> "
                 "in line %s? I need the number.", p.key);
        ck_assert_str_eq(p.text + strlen(p.text) - strlen(question), question);
        if (d == 0) ck_assert_uint_eq(p.needle_begin, p.haystack_begin);
        else ck_assert_uint_eq(p.needle_end + 1, p.haystack_end);
        /* every key once */
        int n_lines = 0;
        char seen[200][64];
        for (const char *s = p.text; (s = strstr(s, "\nline ")); s++) {
            ck_assert_int_lt(n_lines, 200);
            sscanf(s + 6, "%63[^:]", seen[n_lines]);
            for (int i = 0; i < n_lines; i++) ck_assert_str_ne(seen[i], seen[n_lines]);
            n_lines++;
        }
        ck_assert_int_gt(n_lines, 20);
        niah_prompt_free(&p);
    }
    niah_builder_free(b);
    niah_haystack_free(h);
}
END_TEST

START_TEST(test_build_limits) {
    struct niah_haystack *h = default_haystack();
    struct niah_builder *b = niah_builder_new(NIAH_PASSKEY, h, &words, NULL);
    struct niah_prompt p;
    /* the context bound wins over the 2% band */
    ck_assert_int_eq(niah_build(b, 1000, 0.5f, 9, 990, &p), 0);
    ck_assert_int_le(p.n_ids, 990);
    ck_assert_int_ge(p.n_ids, 980);
    niah_prompt_free(&p);
    ck_assert_int_eq(niah_build(b, 1000, 0.5f, 9, 900, &p), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "length 1000 does not fit"));
    /* shorter than the fixed text */
    ck_assert_int_eq(niah_build(b, 20, 0.5f, 9, 0, &p), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "length 20 is too short for the passkey prompt"));
    ck_assert_int_eq(niah_build(b, 100, 1.5f, 9, 0, &p), -1);
    niah_builder_free(b);
    /* a one-sentence haystack is repeated */
    struct niah_haystack *tiny = niah_haystack_parse("The cat sat.", 12, "tiny");
    b = niah_builder_new(NIAH_NIAH, tiny, &words, NULL);
    ck_assert_int_eq(niah_build(b, 2000, 0.5f, 1, 0, &p), 0);
    check_prompt(&words, &p, 2000, 0.5f, 0);
    int cats = 0;
    for (const char *s = p.text; (s = strstr(s, "The cat sat.")); s++) cats++;
    ck_assert_int_gt(cats, 300);
    niah_prompt_free(&p);
    niah_builder_free(b);
    niah_haystack_free(tiny);
    /* units too coarse for the band: a clear error */
    char sentence[400] = "";
    for (int i = 0; i < 50; i++) strcat(sentence, "word ");
    strcat(sentence, "end.");
    struct niah_haystack *coarse = niah_haystack_parse(sentence, strlen(sentence), "coarse");
    b = niah_builder_new(NIAH_PASSKEY, coarse, &words, NULL);
    int fixed = 0;
    ck_assert_int_eq(niah_build(b, 10, 0.5f, 1, 0, &p), -1);
    ck_assert_int_eq(sscanf(strstr(dam_last_error(), "take "), "take %d", &fixed), 1);
    ck_assert_int_eq(niah_build(b, fixed + 3 * 52 + 26, 0.5f, 1, 0, &p), -1);
    ck_assert_msg(strstr(dam_last_error(), "cannot fit the passkey prompt") && strstr(dam_last_error(), "too coarse"),
                  "%s", dam_last_error());
    ck_assert_int_eq(niah_build(b, fixed + 3 * 52, 0.5f, 1, 0, &p), 0);    /* a multiple fits */
    niah_prompt_free(&p);
    niah_builder_free(b);
    niah_haystack_free(coarse);
    ck_assert_ptr_null(niah_builder_new(NIAH_PASSKEY, NULL, &words, NULL));
    niah_haystack_free(h);
}
END_TEST

/* The real thing: stories260k's tokenizer (SentencePiece-style BPE). */
START_TEST(test_build_stories_tokenizer) {
    struct tokenizer *tok = tokenizer_load(STORIES);
    ck_assert_msg(tok != NULL, "%s", dam_last_error());
    struct niah_tokenizer_encoder e;
    niah_tokenizer_encoder_init(&e, tok, 0);
    struct niah_haystack *h = default_haystack();
    /* stories260k's 512 tokens are mostly single letters: the fixed text
     * alone takes ~160 (passkey) to ~370 tokens (multikey, lines) */
    const int lengths[] = { 256, 400, 450, 490 };
    const float depths[] = { 0, 0.5f, 1 };
    for (int t = 0; t < NIAH_N_TASKS; t++) {
        struct niah_builder *b = niah_builder_new((enum niah_task)t, h, &e.enc, NULL);
        ck_assert_msg(b != NULL, "%s", dam_last_error());
        for (int l = 0; l < 4; l++) {
            if ((t == NIAH_MULTIKEY && lengths[l] < 400) || (t == NIAH_LINES && lengths[l] < 450)) continue;
            for (int d = 0; d < 3; d++) {
                struct niah_prompt p;
                uint64_t seed = niah_sample_seed(1, (enum niah_task)t, lengths[l], depths[d], 0);
                ck_assert_msg(niah_build(b, lengths[l], depths[d], seed, 512 - 16, &p) == 0, "%s %d: %s",
                              niah_task_name((enum niah_task)t), lengths[l], dam_last_error());
                check_prompt(&e.enc, &p, lengths[l], depths[d], 512 - 16);
                ck_assert_int_eq(p.ids[0], 1);     /* BOS */
                niah_prompt_free(&p);
            }
        }
        niah_builder_free(b);
    }
    niah_haystack_free(h);
    tokenizer_free(tok);
}
END_TEST

/* A byte-level BPE (SmolLM2's real tokenizer), at lengths where the 2% band
 * is wide but sentences are many. */
START_TEST(test_build_smollm2_tokenizer) {
    if (!refs_dir()) SKIP_TEST("no reference models (DAM_REFS or ../shared/models)");
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/tiny-smollm2", refs_dir());
    struct tokenizer *tok = tokenizer_load(dir);
    ck_assert_msg(tok != NULL, "%s", dam_last_error());
    struct niah_tokenizer_encoder e;
    niah_tokenizer_encoder_init(&e, tok, 0);
    struct niah_haystack *h = default_haystack();
    const float depths[] = { 0, 0.5f, 1 };
    for (int t = 0; t < NIAH_N_TASKS; t++) {
        struct niah_builder *b = niah_builder_new((enum niah_task)t, h, &e.enc, NULL);
        for (int length = 1024; length <= 4096; length *= 4)
            for (int d = 0; d < 3; d++) {
                struct niah_prompt p;
                ck_assert_msg(niah_build(b, length, depths[d], (uint64_t)d, 0, &p) == 0, "%s", dam_last_error());
                check_prompt(&e.enc, &p, length, depths[d], 0);
                niah_prompt_free(&p);
            }
        niah_builder_free(b);
    }
    niah_haystack_free(h);
    tokenizer_free(tok);
}
END_TEST

/* ---- scoring ---- */

START_TEST(test_score_passkey) {
    ck_assert_int_eq(niah_score(NIAH_PASSKEY, "71432", "71432"), 1);
    ck_assert_int_eq(niah_score(NIAH_PASSKEY, "71432", " 71432."), 1);
    ck_assert_int_eq(niah_score(NIAH_PASSKEY, "71432", "The pass key is 71432, and 5 is not."), 1);
    ck_assert_int_eq(niah_score(NIAH_PASSKEY, "71432", "071432"), 1);      /* by value */
    ck_assert_int_eq(niah_score(NIAH_PASSKEY, "71432", "5 then 71432"), 0);  /* the first integer only */
    ck_assert_int_eq(niah_score(NIAH_PASSKEY, "71432", "714320"), 0);
    ck_assert_int_eq(niah_score(NIAH_PASSKEY, "71432", "7143"), 0);
    ck_assert_int_eq(niah_score(NIAH_PASSKEY, "71432", "71,432"), 0);
    ck_assert_int_eq(niah_score(NIAH_PASSKEY, "71432", "no number"), 0);
    ck_assert_int_eq(niah_score(NIAH_PASSKEY, "71432", ""), 0);
    ck_assert_int_eq(niah_score(NIAH_PASSKEY, "71432", NULL), 0);
}
END_TEST

START_TEST(test_score_niah) {
    for (int t = NIAH_NIAH; t <= NIAH_MULTIKEY; t++) {
        enum niah_task task = (enum niah_task)t;
        ck_assert_int_eq(niah_score(task, "1234567", "1234567"), 1);
        ck_assert_int_eq(niah_score(task, "1234567", "The special magic number for x-y is 1234567."), 1);
        ck_assert_int_eq(niah_score(task, "1234567", "9 and 1234567"), 1);    /* anywhere */
        ck_assert_int_eq(niah_score(task, "1234567", "91234567"), 1);         /* RULER: a substring */
        ck_assert_int_eq(niah_score(task, "1234567", "123 4567"), 0);
        ck_assert_int_eq(niah_score(task, "1234567", "123456"), 0);
        ck_assert_int_eq(niah_score(task, "1234567", ""), 0);
    }
    ck_assert_int_eq(niah_score(NIAH_NIAH, "AbC", "xx abc yy"), 1);          /* case-insensitive */
}
END_TEST

START_TEST(test_score_lines) {
    ck_assert_int_eq(niah_score(NIAH_LINES, "38211", "<38211>"), 1);
    ck_assert_int_eq(niah_score(NIAH_LINES, "38211", "The <REGISTER_CONTENT> in line 5 is 38211."), 1);
    ck_assert_int_eq(niah_score(NIAH_LINES, "38211", "line 7: 38211"), 1);    /* the last integer */
    ck_assert_int_eq(niah_score(NIAH_LINES, "38211", "38211 then 7"), 0);
    ck_assert_int_eq(niah_score(NIAH_LINES, "38211", "382110"), 0);
    ck_assert_int_eq(niah_score(NIAH_LINES, "38211", "none"), 0);
    ck_assert_int_eq(niah_score(NIAH_LINES, "5", "005"), 1);
}
END_TEST

/* ---- output files ---- */

static const char *attn2[] = { "full", "dam" };
static const int lengths2[] = { 1024, 2048 };
static const float depths3[] = { 0, 0.5f, 1 };

/* 2 modules x 2 lengths x 3 depths x 2 samples; correct when sample 0, or
 * for "dam" never at length 2048. */
static void fill_run(struct niah_run *run) {
    *run = (struct niah_run){
        .task = NIAH_PASSKEY, .model = "models/x & <y>", .n_attn = 2, .attn = attn2, .n_lengths = 2,
        .lengths = lengths2, .n_depths = 3, .depths = depths3, .samples = 2,
    };
    for (int l = 0; l < 2; l++)
        for (int d = 0; d < 3; d++)
            for (int s = 0; s < 2; s++)
                for (int a = 0; a < 2; a++) {
                    struct niah_result r = {
                        .attn = a, .length_index = l, .depth_index = d, .sample = s, .seed = 1,
                        .expected = "71432", .output = s == 0 ? "71432 \"quoted\"\n" : "12",
                        .prompt_tokens = lengths2[l] + s, .needle_depth = depths3[d],
                        .prefill_ms = 10.0 * (l + 1), .decode_ms = 2.5,
                    };
                    r.correct = s == 0 && !(a == 1 && l == 1);
                    ck_assert_int_eq(niah_run_add(run, &r), 0);
                }
}

START_TEST(test_cells) {
    struct niah_run run;
    fill_run(&run);
    struct niah_cell cells[12];
    niah_cells(&run, cells);
    /* (attn, length, depth) */
    ck_assert_int_eq(cells[0].n, 2);
    ck_assert_int_eq(cells[0].correct, 1);
    ck_assert_double_eq_tol(cells[0].prompt_tokens, 1024.5, 1e-9);
    ck_assert_double_eq_tol(cells[0].prefill_ms, 10, 1e-9);
    ck_assert_int_eq(cells[(1 * 2 + 1) * 3 + 2].correct, 0);
    niah_run_free_results(&run);
}
END_TEST

START_TEST(test_jsonl) {
    struct niah_run run;
    fill_run(&run);
    char *text = niah_jsonl(&run);
    ck_assert_ptr_nonnull(text);
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        cJSON *j = cJSON_Parse(line);
        ck_assert_msg(j != NULL, "not JSON: %s", line);
        const char *keys[] = { "task", "length", "depth", "seed", "attn", "expected", "output", "correct",
                               "prompt_tokens", "prefill_ms", "decode_ms" };
        for (int k = 0; k < 11; k++) ck_assert_msg(cJSON_GetObjectItem(j, keys[k]) != NULL, "no %s", keys[k]);
        ck_assert_str_eq(cJSON_GetObjectItem(j, "task")->valuestring, "passkey");
        ck_assert(cJSON_IsBool(cJSON_GetObjectItem(j, "correct")));
        ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(j, "length")));
        if (lines == 0) {
            ck_assert_str_eq(cJSON_GetObjectItem(j, "output")->valuestring, "71432 \"quoted\"\n");
            ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "correct")));
            ck_assert_str_eq(cJSON_GetObjectItem(j, "attn")->valuestring, "full");
        }
        cJSON_Delete(j);
    }
    ck_assert_int_eq(lines, 24);
    free(text);
    niah_run_free_results(&run);
}
END_TEST

START_TEST(test_csv) {
    struct niah_run run;
    fill_run(&run);
    char *text = niah_csv(&run);
    ck_assert_ptr_nonnull(text);
    int rows = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), rows++) {
        int commas = 0;
        for (char *c = line; *c; c++) commas += *c == ',';
        ck_assert_int_eq(commas, 9);
        if (rows == 0) ck_assert_str_eq(line, "task,attn,length,depth,samples,correct,accuracy,prompt_tokens,prefill_ms,decode_ms");
    }
    ck_assert_int_eq(rows, 1 + 2 * 2 * 3);
    free(text);
    text = niah_csv(&run);
    ck_assert_ptr_nonnull(strstr(text, "\npasskey,full,1024,0,2,1,0.5000,1024.5,10.000,2.500\n"));
    ck_assert_ptr_nonnull(strstr(text, "\npasskey,dam,2048,1,2,0,0.0000,2048.5,20.000,2.500\n"));
    free(text);
    niah_run_free_results(&run);
}
END_TEST

START_TEST(test_svg) {
    struct niah_run run;
    fill_run(&run);
    char *svg = niah_svg(&run);
    ck_assert_ptr_nonnull(svg);
    ck_assert(!strncmp(svg, "<?xml", 5));
    int cells = 0;
    for (const char *s = svg; (s = strstr(s, "<rect class=\"cell\"")); s++) cells++;
    ck_assert_int_eq(cells, 2 * 2 * 3);
    ck_assert_ptr_nonnull(strstr(svg, "models/x &amp; &lt;y&gt;"));   /* escaped */
    ck_assert_ptr_null(strstr(svg, "x & <y>"));
    ck_assert_ptr_nonnull(strstr(svg, "class=\"legend\""));
    ck_assert_ptr_nonnull(strstr(svg, "data-attn=\"dam\""));
    ck_assert_ptr_nonnull(strstr(svg, "fill=\"#fee08b\""));              /* 50%: the middle colour */
    ck_assert_ptr_nonnull(strstr(svg, "fill=\"#d73027\""));              /* 0%: red */
    ck_assert_ptr_nonnull(strstr(svg, "</svg>\n"));
    free(svg);
    /* an unfinished grid (interrupted): empty cells are grey, still one per point */
    run.n_results = 5;
    svg = niah_svg(&run);
    cells = 0;
    for (const char *s = svg; (s = strstr(s, "<rect class=\"cell\"")); s++) cells++;
    ck_assert_int_eq(cells, 12);
    ck_assert_ptr_nonnull(strstr(svg, "#dddddd"));
    free(svg);
    run.n_results = 24;
    niah_run_free_results(&run);
}
END_TEST

START_TEST(test_summary) {
    struct niah_run run;
    fill_run(&run);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    niah_print_summary(f, &run);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "attn"));
    ck_assert_ptr_nonnull(strstr(buf, "accuracy"));
    /* full: 6 of 12 correct; dam: 3 of 12 */
    ck_assert_ptr_nonnull(strstr(buf, "6/12"));
    ck_assert_ptr_nonnull(strstr(buf, "3/12"));
    int rows = 0;
    for (char *p = buf; (p = strchr(p, '\n')); p++) rows++;
    ck_assert_int_eq(rows, 2 + 2 * (2 * 3 + 1));
    free(buf);
    niah_run_free_results(&run);
}
END_TEST

/* ---- grids across machines: shards and merging ---- */

START_TEST(test_parse_shard) {
    int i = 0, n = 0;
    ck_assert_int_eq(niah_parse_shard("2/4", &i, &n), 0);
    ck_assert_int_eq(i, 2);
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(niah_parse_shard("1/1", &i, &n), 0);
    ck_assert_int_eq(niah_parse_shard("1000000/1000000", &i, &n), 0);
    const char *bad[] = { "0/4", "5/4", "4", "/4", "2/", "1/0", "-1/4", "+1/4", " 1/4", "1/4 ", "1/4/2", "a/b",
                          "1.0/4", "1/1000001", "99999999999999999999/1", "" };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        ck_assert_msg(niah_parse_shard(bad[k], &i, &n) == -1, "accepted '%s'", bad[k]);
        ck_assert_ptr_nonnull(strstr(dam_last_error(), "bad value for --shard"));
    }
}
END_TEST

/* Cells are numbered 0.. in run order (lengths outermost, modules
 * innermost) and every shard count splits them into disjoint parts. */
START_TEST(test_shard_partition) {
    struct niah_run run;
    fill_run(&run);                 /* results added in run order */
    ck_assert_int_eq(niah_grid_cells(&run), 24);
    for (int i = 0; i < run.n_results; i++) {
        const struct niah_result *r = &run.results[i];
        ck_assert_int_eq(niah_cell_number(&run, r->attn, r->length_index, r->depth_index, r->sample), i);
    }
    for (int count = 1; count <= 30; count++)
        for (long long c = 0; c < 24; c++) {
            int owners = 0;
            for (int index = 1; index <= count; index++) owners += niah_shard_owns(index, count, c);
            ck_assert_int_eq(owners, 1);
            ck_assert(niah_shard_owns(0, 0, c));        /* no shard: the whole grid */
        }
    niah_run_free_results(&run);
}
END_TEST

START_TEST(test_options_string) {
    struct attn_options o;
    attn_options_default(&o);
    o.window.size = 32;
    char buf[2048];
    const char *full[] = { "full" }, *two[] = { "full", "window" }, *three[] = { "window", "dam", "dma" };
    ck_assert_int_eq(niah_options_string(full, 1, &o, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(niah_options_string(two, 2, &o, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "window:sinks=4,size=32");
    ck_assert_int_eq(niah_options_string(three, 3, &o, buf, sizeof buf), 0);
    ck_assert(!strncmp(buf, "window:sinks=4,size=32;dam:budget=512,", 38));
    ck_assert_ptr_nonnull(strstr(buf, ",pcl=256,"));
    ck_assert_ptr_nonnull(strstr(buf, ";dma:window=0"));
    ck_assert_int_eq(niah_options_string(three, 3, &o, buf, 10), -1);
}
END_TEST

static struct niah_grid test_grid(void) {
    struct niah_grid g = { .model_key = "0123456789abcdef", .haystack_key = "fedcba9876543210", .n_predict = 12,
                           .ctx = 2100, .options = "dam:pcl=256" };
    return g;
}

/* The JSON lines of one shard of run (all of it when count is 0). */
static char *part_jsonl(struct niah_run *run, int index, int count) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    run->shard_index = index;
    run->shard_count = count;
    for (int i = 0; i < run->n_results; i++) {
        const struct niah_result *r = &run->results[i];
        if (!niah_shard_owns(index, count, niah_cell_number(run, r->attn, r->length_index, r->depth_index, r->sample)))
            continue;
        char *line = niah_result_json(run, r);
        ck_assert_ptr_nonnull(line);
        fprintf(f, "%s\n", line);
        free(line);
    }
    fclose(f);
    run->shard_index = run->shard_count = 0;
    return buf;
}

START_TEST(test_jsonl_grid) {
    struct niah_run run;
    fill_run(&run);
    struct niah_grid g = test_grid();
    run.grid = &g;
    char *text = part_jsonl(&run, 2, 5);
    cJSON *j = cJSON_Parse(text);          /* the first line */
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "length")->valueint, 1024);
    ck_assert_int_eq(cJSON_GetObjectItem(j, "attn")->valuestring[0], 'd');     /* cell 1: dam */
    ck_assert_str_eq(cJSON_GetObjectItem(j, "shard")->valuestring, "2/5");
    cJSON *grid = cJSON_GetObjectItem(j, "grid");
    char *printed = cJSON_PrintUnformatted(grid);
    ck_assert_str_eq(printed, "{\"model_key\":\"0123456789abcdef\",\"lengths\":[1024,2048],\"depths\":[0,0.5,1],"
                              "\"samples\":2,\"attn\":[\"full\",\"dam\"],\"options\":\"dam:pcl=256\",\"n_predict\":12,"
                              "\"ctx\":2100,\"chat\":\"\",\"haystack\":\"fedcba9876543210\"}");
    free(printed);
    cJSON_Delete(j);
    free(text);
    /* the whole run: no "shard" */
    text = niah_jsonl(&run);
    ck_assert_ptr_null(strstr(text, "\"shard\""));
    ck_assert_ptr_nonnull(strstr(text, "\"grid\":{"));
    free(text);
    niah_run_free_results(&run);
}
END_TEST

/* Shards written, merged: the whole run's JSON lines byte for byte (timings
 * included: here they are the same numbers), and its CSV and SVG. */
START_TEST(test_merge_round_trip) {
    struct niah_run run;
    fill_run(&run);
    struct niah_grid g = test_grid();
    run.grid = &g;
    char *whole = niah_jsonl(&run), *csv = niah_csv(&run), *svg = niah_svg(&run);
    for (int count = 1; count <= 7; count += 3) {
        const char *paths[7];
        for (int i = 0; i < count; i++) {
            char *part = part_jsonl(&run, count - i, count);       /* any order */
            paths[i] = tmp_file_with(part, strlen(part));
            free(part);
        }
        struct niah_merged *m = niah_merge(paths, count);
        ck_assert_msg(m != NULL, "%s", dam_last_error());
        ck_assert_str_eq(m->jsonl, whole);
        char *mcsv = niah_csv(&m->run), *msvg = niah_svg(&m->run);
        ck_assert_str_eq(mcsv, csv);
        ck_assert_str_eq(msvg, svg);
        ck_assert_int_eq(m->run.shard_count, 0);
        free(mcsv);
        free(msvg);
        niah_merged_free(m);
    }
    /* the whole run merges alone */
    const char *one[] = { tmp_file_with(whole, strlen(whole)) };
    struct niah_merged *m = niah_merge(one, 1);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m->jsonl, whole);
    niah_merged_free(m);
    free(whole);
    free(csv);
    free(svg);
    niah_run_free_results(&run);
}
END_TEST

/* A part with one setting changed is refused, naming it. */
START_TEST(test_merge_refuses_mixed) {
    struct niah_run run;
    fill_run(&run);
    struct niah_grid g = test_grid(), other;
    for (int change = 0; change < 5; change++) {
        other = g;
        const char *name[] = { "n_predict 16 vs 12", "ctx 4096 vs 2100", "chat \"chatml\" vs \"\"",
                               "haystack \"0000000000000000\" vs", "another model" };
        if (change == 0) other.n_predict = 16;
        if (change == 1) other.ctx = 4096;
        if (change == 2) snprintf(other.chat, sizeof other.chat, "chatml");
        if (change == 3) snprintf(other.haystack_key, sizeof other.haystack_key, "0000000000000000");
        if (change == 4) snprintf(other.model_key, sizeof other.model_key, "0000000000000000");
        run.grid = &g;
        char *a = part_jsonl(&run, 1, 2);
        run.grid = &other;
        char *b = part_jsonl(&run, 2, 2);
        const char *paths[] = { tmp_file_with(a, strlen(a)), tmp_file_with(b, strlen(b)) };
        ck_assert_ptr_null(niah_merge(paths, 2));
        ck_assert_msg(strstr(dam_last_error(), "line 1 and") && strstr(dam_last_error(), "are from different grids")
                      && strstr(dam_last_error(), name[change]), "%s", dam_last_error());
        free(a);
        free(b);
    }
    niah_run_free_results(&run);
}
END_TEST

Suite *test_suite(void) {
    Suite *s = suite_create("niah");
    TCase *tc = tcase_create("niah");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_tasks);
    tcase_add_test(tc, test_parse_lengths);
    tcase_add_test(tc, test_parse_depths);
    tcase_add_test(tc, test_haystack_sentences);
    tcase_add_test(tc, test_default_haystack);
    tcase_add_test(tc, test_build_words);
    tcase_add_test(tc, test_build_chunks);
    tcase_add_test(tc, test_build_same_seed_same_prompt);
    tcase_add_test(tc, test_build_formats);
    tcase_add_test(tc, test_build_limits);
    tcase_add_test(tc, test_build_stories_tokenizer);
    tcase_add_test(tc, test_build_smollm2_tokenizer);
    tcase_add_test(tc, test_score_passkey);
    tcase_add_test(tc, test_score_niah);
    tcase_add_test(tc, test_score_lines);
    tcase_add_test(tc, test_cells);
    tcase_add_test(tc, test_jsonl);
    tcase_add_test(tc, test_csv);
    tcase_add_test(tc, test_svg);
    tcase_add_test(tc, test_summary);
    tcase_add_test(tc, test_parse_shard);
    tcase_add_test(tc, test_shard_partition);
    tcase_add_test(tc, test_options_string);
    tcase_add_test(tc, test_jsonl_grid);
    tcase_add_test(tc, test_merge_round_trip);
    tcase_add_test(tc, test_merge_refuses_mixed);
    suite_add_tcase(s, tc);
    return s;
}
