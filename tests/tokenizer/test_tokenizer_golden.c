/* test_tokenizer_golden.c — encode / decode against Hugging Face tokenizers
 * 0.23.2 on the golden cases of third_party/tokenizers/golden: ids,
 * ids_with_special, the decoded text, and streaming decode == full decode. */
#include "../harness.h"
#include "dam/common.h"
#include "dam/tokenizer.h"
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

struct golden {
    const char *golden;     /* file under third_party/tokenizers/golden */
    const char *tokenizer;  /* tokenizer.json or its folder */
};

static const struct golden goldens[] = {
    { "third_party/tokenizers/golden/tok_smollm2.json", "third_party/tokenizers/smollm2/tokenizer.json" },
    { "third_party/tokenizers/golden/tok_llama3style.json", "third_party/tokenizers/llama3style" },
    { "third_party/tokenizers/golden/tok_stories260k.json", "third_party/models/stories260k" },
};

static int *json_ids(const cJSON *arr, int *n) {
    *n = cJSON_GetArraySize(arr);
    int *ids = malloc(((size_t)*n + 1) * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next) ids[i++] = (int)e->valuedouble;
    return ids;
}

static void print_ids(const char *what, const int *ids, int n) {
    printf("  %s:", what);
    for (int i = 0; i < n; i++) printf(" %d", ids[i]);
    printf("\n");
}

/* 1 when ids (n) equal want (n_want); prints both otherwise. */
static int same_ids(const char *what, const char *text, const int *ids, int n, const int *want, int n_want) {
    if (n == n_want && (n == 0 || !memcmp(ids, want, (size_t)n * sizeof *ids))) return 1;
    printf("MISMATCH %s for \"%s\"\n", what, text);
    print_ids("got ", ids, n);
    print_ids("want", want, n_want);
    return 0;
}

/* Streaming: push one id at a time; the pieces are whole UTF-8 and add up
 * to the full decode. */
static int stream_matches(const struct tokenizer *t, const int *ids, int n, const char *full) {
    struct detokenizer *d = detokenizer_new(t);
    ck_assert_ptr_nonnull(d);
    size_t cap = strlen(full) + 64, len = 0;
    char *acc = malloc(cap);
    ck_assert_ptr_nonnull(acc);
    int ok = 1;
    for (int i = 0; i <= n; i++) {
        const char *piece = i < n ? detokenizer_push(d, ids[i]) : detokenizer_flush(d);
        ck_assert_ptr_nonnull(piece);
        size_t pl = strlen(piece), bad;
        (void)bad;
        if (len + pl + 1 > cap) { ok = 0; break; }
        memcpy(acc + len, piece, pl);
        len += pl;
    }
    acc[len] = 0;
    if (ok && strcmp(acc, full) != 0) ok = 0;
    if (!ok) printf("STREAM MISMATCH: \"%s\" vs \"%s\"\n", acc, full);
    free(acc);
    detokenizer_free(d);
    return ok;
}

static void check_golden(const struct golden *g) {
    size_t len;
    char *text = read_file(g->golden, &len);
    ck_assert_msg(text != NULL, "%s", dam_last_error());
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    ck_assert_ptr_nonnull(root);
    struct tokenizer *t = tokenizer_load(g->tokenizer);
    ck_assert_msg(t != NULL, "%s", dam_last_error());
    int failures = 0, n_cases = 0;
    const cJSON *cases = cJSON_GetObjectItem(root, "cases");
    for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next, n_cases++) {
        const char *input = cJSON_GetObjectItem(c, "text")->valuestring;
        const char *decoded = cJSON_GetObjectItem(c, "decoded")->valuestring;
        int n_want, n_want_sp, *ids, n, *ids_sp, n_sp;
        int *want = json_ids(cJSON_GetObjectItem(c, "ids"), &n_want);
        int *want_sp = json_ids(cJSON_GetObjectItem(c, "ids_with_special"), &n_want_sp);
        ck_assert_msg(tokenizer_encode(t, input, strlen(input), 0, &ids, &n) == 0, "%s", dam_last_error());
        ck_assert_msg(tokenizer_encode(t, input, strlen(input), 1, &ids_sp, &n_sp) == 0, "%s", dam_last_error());
        failures += !same_ids("ids", input, ids, n, want, n_want);
        failures += !same_ids("ids_with_special", input, ids_sp, n_sp, want_sp, n_want_sp);
        char *back = tokenizer_decode(t, want, n_want, 0);
        ck_assert_ptr_nonnull(back);
        if (strcmp(back, decoded) != 0) {
            printf("MISMATCH decode: \"%s\" vs \"%s\"\n", back, decoded);
            failures++;
        }
        failures += !stream_matches(t, want, n_want, back);
        free(back);
        /* decoding with the special tokens kept, and skipped */
        back = tokenizer_decode(t, want_sp, n_want_sp, 1);
        ck_assert_ptr_nonnull(back);
        if (strcmp(back, decoded) != 0) {
            printf("MISMATCH decode(skip_special): \"%s\" vs \"%s\"\n", back, decoded);
            failures++;
        }
        free(back);
        back = tokenizer_decode(t, want_sp, n_want_sp, 0);
        ck_assert_ptr_nonnull(back);
        failures += !stream_matches(t, want_sp, n_want_sp, back);
        free(back);
        free(ids); free(ids_sp); free(want); free(want_sp);
    }
    ck_assert_int_eq(n_cases, 36);
    ck_assert_msg(failures == 0, "%s: %d mismatches", g->golden, failures);
    tokenizer_free(t);
    cJSON_Delete(root);
}

START_TEST(golden_smollm2) { check_golden(&goldens[0]); }
END_TEST

START_TEST(golden_llama3style) { check_golden(&goldens[1]); }
END_TEST

START_TEST(golden_stories260k) { check_golden(&goldens[2]); }
END_TEST

/* The same tokenizer from the shared folder when present (the copy under
 * third_party must be the same file). */
START_TEST(golden_smollm2_shared_copy) {
    const char *refs = refs_dir();
    if (!refs) SKIP_TEST("no reference models (set DAM_REFS)");
    char path[4096];
    snprintf(path, sizeof path, "%s/tiny-smollm2", refs);
    if (!is_dir(path)) SKIP_TEST("%s absent", path);
    struct golden g = { goldens[0].golden, path };
    check_golden(&g);
}
END_TEST

Suite *test_suite(void) {
    Suite *s = suite_create("tokenizer_golden");
    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, golden_smollm2);
    tcase_add_test(tc, golden_llama3style);
    tcase_add_test(tc, golden_stories260k);
    tcase_add_test(tc, golden_smollm2_shared_copy);
    suite_add_tcase(s, tc);
    return s;
}
