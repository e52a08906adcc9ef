/* test_forward.c — the forward pass against Hugging Face transformers'
 * golden logits and greedy generations. */
#include "../harness.h"
#include "dam/common.h"
#include "dam/generate.h"
#include "dam/model.h"
#include "dam/safetensors.h"
#include "dam/session.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ||a - b|| / ||b|| */
static double rel_norm(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return sqrt(num / den);
}

static struct session *open_session(struct model **m, const char *dir, int n_ctx) {
    *m = model_load(dir);
    ck_assert_msg(*m != NULL, "load %s: %s", dir, dam_last_error());
    struct attn_options o;
    attn_options_default(&o);
    struct session *s = session_new(*m, attn_find("full"), &o, n_ctx);
    ck_assert_msg(s != NULL, "%s", dam_last_error());
    return s;
}

static int *greedy(struct session *s, const int *prompt, int n_prompt, int steps, int ignore_eos, int *n_out) {
    struct gen_params p = { .n_predict = steps, .ignore_eos = ignore_eos };
    sampler_params_default(&p.sampling);
    p.sampling.temperature = 0;
    struct gen_result r;
    ck_assert_msg(generate(s, prompt, n_prompt, &p, &r) == 0, "%s", dam_last_error());
    *n_out = r.n_generated;
    return r.tokens;
}

/* A golden.safetensors model: logits within 1e-4 and the greedy generation. */
static void check_golden(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    struct st_file *g = st_open(path);
    ck_assert_msg(g != NULL, "%s", dam_last_error());
    const struct st_tensor *ids = st_find(g, "input_ids"), *logits = st_find(g, "logits"),
                           *gen = st_find(g, "generated");
    ck_assert(ids && logits && gen);
    int n = (int)ids->numel;
    struct model *m;
    struct session *s = open_session(&m, dir, 0);
    const int vocab = m->cfg.vocab_size;
    ck_assert_int_eq(logits->numel, (int64_t)n * vocab);
    float *out = malloc((size_t)n * vocab * sizeof(float));
    ck_assert_int_eq(session_eval(s, ids->data, n, out, LOGITS_ALL), 0);
    double err = rel_norm(out, logits->data, (size_t)n * vocab);
    printf("%s: logits relative error %.3g\n", dir, err);
    ck_assert_msg(err < 1e-4, "%s: relative norm %g", dir, err);
    free(out);

    /* greedy from input_ids[:16], 32 new tokens, EOS suppressed */
    session_rewind(s, 0);
    int n_gen;
    int *toks = greedy(s, ids->data, 16, 32, 1, &n_gen);
    const int32_t *want = gen->data;
    ck_assert_int_eq(n_gen, (int)gen->numel - 16);
    for (int i = 0; i < n_gen; i++) ck_assert_int_eq(toks[i], want[16 + i]);
    free(toks);
    session_free(s);
    model_free(m);
    st_close(g);
}

/* The long-context testbed (trained on the GPU machine, bf16): logits of
 * the last 32 of 512 positions within 1e-4, and the argmax at every one. */
START_TEST(golden_testbed) {
    const char *dir = "third_party/models/testbed";
    struct st_file *g = st_open("third_party/models/testbed/golden.safetensors");
    ck_assert_msg(g != NULL, "%s", dam_last_error());
    const struct st_tensor *ids = st_find(g, "input_ids"), *last = st_find(g, "logits_last32"),
                           *arg = st_find(g, "argmax");
    ck_assert(ids && last && arg);
    const int n = (int)ids->numel;
    struct model *m;
    struct session *s = open_session(&m, dir, 0);
    const int vocab = m->cfg.vocab_size;
    float *out = malloc((size_t)n * vocab * sizeof(float));
    ck_assert_int_eq(session_eval(s, ids->data, n, out, LOGITS_ALL), 0);
    double err = rel_norm(out + (size_t)(n - 32) * vocab, last->data, (size_t)32 * vocab);
    printf("%s: logits (last 32 of %d) relative error %.3g\n", dir, n, err);
    ck_assert_msg(err < 1e-4, "relative norm %g", err);
    const int32_t *want = arg->data;
    int agree = 0;
    for (int t = 0; t < n; t++) {
        const float *row = out + (size_t)t * vocab;
        int best = 0;
        for (int v = 1; v < vocab; v++) if (row[v] > row[best]) best = v;
        agree += best == want[t];
    }
    ck_assert_int_eq(agree, n);
    free(out);
    session_free(s);
    model_free(m);
    st_close(g);
}
END_TEST

START_TEST(golden_tiny_llama3) { check_golden("third_party/models/tiny-llama3"); }
END_TEST

START_TEST(golden_tiny_smollm2) {
    if (!refs_dir()) SKIP_TEST("tiny-smollm2: no ../shared/models (set DAM_REFS)");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tiny-smollm2", refs_dir());
    check_golden(dir);
}
END_TEST

START_TEST(golden_tiny_llama2_sharded) {
    if (!refs_dir()) SKIP_TEST("tiny-llama2-sharded: no ../shared/models (set DAM_REFS)");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tiny-llama2-sharded", refs_dir());
    check_golden(dir);
}
END_TEST

static cJSON *stories_expected(void) {
    size_t len;
    char *text = read_file("third_party/models/stories260k/expected_greedy.json", &len);
    ck_assert(text);
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    ck_assert(j);
    return j;
}

/* stories260k: real weights; greedy 200 steps from BOS, token for token. */
START_TEST(stories260k_greedy) {
    cJSON *j = stories_expected();
    cJSON *tokens = cJSON_GetObjectItem(j, "tokens");
    struct model *m;
    struct session *s = open_session(&m, "third_party/models/stories260k", 0);
    int bos = 1, n_gen;
    int *toks = greedy(s, &bos, 1, 200, 1, &n_gen);
    ck_assert_int_eq(n_gen, cJSON_GetArraySize(tokens) - 1);
    for (int i = 0; i < n_gen; i++)
        ck_assert_int_eq(toks[i], cJSON_GetArrayItem(tokens, i + 1)->valueint);
    free(toks);
    session_free(s);
    model_free(m);
    cJSON_Delete(j);
}
END_TEST

START_TEST(stories260k_first_logits) {
    cJSON *j = stories_expected();
    cJSON *tokens = cJSON_GetObjectItem(j, "tokens"), *rows = cJSON_GetObjectItem(j, "logits_first_8_positions");
    struct model *m;
    struct session *s = open_session(&m, "third_party/models/stories260k", 0);
    int ids[8];
    for (int i = 0; i < 8; i++) ids[i] = cJSON_GetArrayItem(tokens, i)->valueint;
    const int vocab = m->cfg.vocab_size;
    float *out = malloc(8 * vocab * sizeof(float)), *want = malloc(8 * vocab * sizeof(float));
    for (int p = 0; p < 8; p++)
        for (int v = 0; v < vocab; v++)
            want[p * vocab + v] = (float)cJSON_GetArrayItem(cJSON_GetArrayItem(rows, p), v)->valuedouble;
    ck_assert_int_eq(session_eval(s, ids, 8, out, LOGITS_ALL), 0);
    ck_assert_double_lt(rel_norm(out, want, 8 * vocab), 1e-4);
    free(out); free(want);
    session_free(s);
    model_free(m);
    cJSON_Delete(j);
}
END_TEST

/* Chunked prefill, one-token decoding and a single big call agree. */
START_TEST(chunking_is_invisible) {
    struct model *m;
    struct session *s = open_session(&m, "third_party/models/stories260k", 0);
    const int n = 300, vocab = m->cfg.vocab_size;
    int *ids = malloc(n * sizeof(int));
    for (int i = 0; i < n; i++) ids[i] = (i * 37 + 11) % vocab;
    float *all = malloc((size_t)n * vocab * sizeof(float)), *last = malloc(vocab * sizeof(float));
    ck_assert_int_eq(session_eval(s, ids, n, all, LOGITS_ALL), 0);
    session_rewind(s, 0);
    ck_assert_int_eq(session_eval(s, ids, n - 1, NULL, LOGITS_NONE), 0);
    ck_assert_int_eq(session_eval(s, ids + n - 1, 1, last, LOGITS_LAST), 0);
    ck_assert_double_lt(rel_norm(last, all + (size_t)(n - 1) * vocab, vocab), 1e-5);
    free(ids); free(all); free(last);
    session_free(s);
    model_free(m);
}
END_TEST

START_TEST(bad_tokens_and_full_context) {
    struct model *m;
    struct session *s = open_session(&m, "third_party/models/stories260k", 4);
    int bad = 512, ok[5] = { 1, 2, 3, 4, 5 };
    ck_assert_int_eq(session_eval(s, &bad, 1, NULL, LOGITS_NONE), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "out of range"));
    ck_assert_int_eq(session_eval(s, ok, 5, NULL, LOGITS_NONE), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "context full"));
    session_free(s);
    model_free(m);
}
END_TEST

Suite *test_suite(void) {
    Suite *s = suite_create("forward");
    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, golden_testbed);
    tcase_add_test(tc, golden_tiny_llama3);
    tcase_add_test(tc, golden_tiny_smollm2);
    tcase_add_test(tc, golden_tiny_llama2_sharded);
    tcase_add_test(tc, stories260k_greedy);
    tcase_add_test(tc, stories260k_first_logits);
    tcase_add_test(tc, chunking_is_invisible);
    tcase_add_test(tc, bad_tokens_and_full_context);
    suite_add_tcase(s, tc);
    return s;
}
