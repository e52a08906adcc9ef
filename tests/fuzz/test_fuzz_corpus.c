/* test_fuzz_corpus.c — replays every file of tests/fuzz/corpus/TARGET/ through the
 * fuzz targets' entry points, built with gcc into the normal suite (and the
 * sanitizer suite, make test-asan), so every input that once crashed a
 * target stays a regression test without clang.
 *
 * Each fuzz_*.c is included with its LLVMFuzzerTestOneInput renamed; the
 * targets' own checks abort() on a broken rule, which Check reports as an
 * error of the test named after the target (the file being replayed is
 * printed on stderr first). Runs from the repo root (fuzz_encode reads the
 * tokenizers under third_party/). */
#include "../harness.h"

#define LLVMFuzzerTestOneInput fuzz_safetensors_one
#include "fuzz_safetensors.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_config_one
#include "fuzz_config.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_tokenizer_one
#include "fuzz_tokenizer.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_encode_one
#include "fuzz_encode.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_profile_one
#include "fuzz_profile.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_http_headers_one
#include "fuzz_http_headers.c"
#undef LLVMFuzzerTestOneInput

#include <dirent.h>

typedef int (*fuzz_fn)(const uint8_t *data, size_t size);

/* Runs every file of tests/fuzz/corpus/<target>/ (sorted) through fn;
 * returns how many ran. */
static int replay(const char *target, fuzz_fn fn) {
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", target);
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort), ran = 0;
    ck_assert_msg(n >= 0, "cannot list %s (run from the repo root)", dir);
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        free(names[i]);
        if (!is_file(path)) continue;
        size_t len;
        char *data = read_file(path, &len);
        ck_assert_msg(data != NULL, "%s", dam_last_error());
        fprintf(stderr, "replaying %s\n", path);   /* shown only when the test fails */
        /* an exact-size copy: ASan sees a read past the input */
        uint8_t *exact = malloc(len ? len : 1);
        ck_assert_ptr_nonnull(exact);
        memcpy(exact, data, len);
        free(data);
        fn(exact, len);
        free(exact);
        ran++;
    }
    free(names);
    return ran;
}

#define REPLAY_TEST(target)                                          \
    START_TEST(target) {                                             \
        ck_assert_int_gt(replay(#target, target##_one), 0);          \
    }                                                                \
    END_TEST

REPLAY_TEST(fuzz_tokenizer)
REPLAY_TEST(fuzz_encode)
REPLAY_TEST(fuzz_profile)
REPLAY_TEST(fuzz_http_headers)

/* These two targets predate the corpus folder: replay their seeds' kind of
 * input, the real files, when there is no folder of their own. */
static int replay_files(fuzz_fn fn, const char *const *paths, int n) {
    for (int i = 0; i < n; i++) {
        size_t len;
        char *data = read_file(paths[i], &len);
        ck_assert_msg(data != NULL, "%s", dam_last_error());
        fn((const uint8_t *)data, len);
        free(data);
    }
    return n;
}

START_TEST(fuzz_safetensors) {
    static const char *const files[] = { "third_party/models/stories260k/model.safetensors",
                                         "third_party/models/tiny-llama3/golden.safetensors" };
    if (is_dir("tests/fuzz/corpus/fuzz_safetensors")) replay("fuzz_safetensors", fuzz_safetensors_one);
    replay_files(fuzz_safetensors_one, files, 2);
}
END_TEST

START_TEST(fuzz_config) {
    static const char *const files[] = { "third_party/models/stories260k/config.json",
                                         "third_party/models/tiny-llama3/config.json" };
    if (is_dir("tests/fuzz/corpus/fuzz_config")) replay("fuzz_config", fuzz_config_one);
    replay_files(fuzz_config_one, files, 2);
}
END_TEST

Suite *test_suite(void) {
    Suite *s = suite_create("fuzz_corpus");
    TCase *tc = tcase_create("replay");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fuzz_safetensors);
    tcase_add_test(tc, fuzz_config);
    tcase_add_test(tc, fuzz_tokenizer);
    tcase_add_test(tc, fuzz_encode);
    tcase_add_test(tc, fuzz_profile);
    tcase_add_test(tc, fuzz_http_headers);
    suite_add_tcase(s, tc);
    return s;
}
