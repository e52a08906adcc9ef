/* test_content_key.c — model_content_key: the same bytes in another folder
 * give the same key; one weight byte changed in the middle of a tensor (same
 * names, same sizes, the same config) gives another. */
#include "../harness.h"
#include "dam/common.h"
#include "dam/model.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STORIES "third_party/models/stories260k"

/* Copies config.json and model.safetensors of stories260k into a fresh
 * folder; with flip >= 0, the byte at offset flip of the weights is changed. */
static const char *copy_model(long flip) {
    const char *dir = tmp_dir();
    static const char *const files[] = { "config.json", "model.safetensors" };
    for (int i = 0; i < 2; i++) {
        char src[512], dst[512];
        snprintf(src, sizeof src, STORIES "/%s", files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        size_t len;
        char *data = read_file(src, &len);
        ck_assert_ptr_nonnull(data);
        if (i == 1 && flip >= 0) {
            ck_assert_int_lt(flip, (long)len);
            data[flip] ^= 0x01;
        }
        ck_assert_int_eq(write_file_atomic(dst, data, len), 0);
        free(data);
    }
    return dir;
}

static void key_of(const char *dir, char hex[65]) {
    struct model *m = model_load(dir);
    ck_assert_msg(m != NULL, "%s", dam_last_error());
    ck_assert_int_eq(model_content_key(m, hex), 0);
    model_free(m);
}

/* The key of a copy made by copy_model, which is removed after. */
static void key_of_copy(const char *dir, char hex[65]) {
    key_of(dir, hex);
    static const char *const files[] = { "config.json", "model.safetensors" };
    for (int i = 0; i < 2; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* The middle byte of model.layers.0.mlp.down_proj.weight, as an offset in
 * the file: 8 + header + the tensor's middle data offset. */
static long middle_of_a_tensor(void) {
    struct st_file *f = st_open(STORIES "/model.safetensors");
    ck_assert_ptr_nonnull(f);
    const struct st_tensor *t = st_find(f, "model.layers.0.mlp.down_proj.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_gt(t->nbytes, 3 * 4096);     /* past the edges the key hashes whole */
    long at = (long)((const char *)t->data - (const char *)f->map) + (long)t->nbytes / 2;
    st_close(f);
    return at;
}

START_TEST(same_content_same_key) {
    char a[65], b[65];
    key_of_copy(copy_model(-1), a);
    key_of_copy(copy_model(-1), b);
    ck_assert_int_eq((int)strlen(a), 64);
    ck_assert_str_eq(a, b);
}
END_TEST

START_TEST(one_weight_byte_changes_the_key) {
    char a[65], b[65];
    key_of_copy(copy_model(-1), a);
    key_of_copy(copy_model(middle_of_a_tensor()), b);
    ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(other_models_other_keys) {
    char a[65], b[65];
    key_of(STORIES, a);
    key_of("third_party/models/tiny-llama3", b);
    ck_assert_str_ne(a, b);
}
END_TEST

Suite *test_suite(void) {
    Suite *s = suite_create("content_key");
    TCase *tc = tcase_create("key");
    tcase_add_test(tc, same_content_same_key);
    tcase_add_test(tc, one_weight_byte_changes_the_key);
    tcase_add_test(tc, other_models_other_keys);
    suite_add_tcase(s, tc);
    return s;
}
