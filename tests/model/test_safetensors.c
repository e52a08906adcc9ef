/* test_safetensors.c — the safetensors reader's rules, one crafted file per
 * rule, writer round trips, and the real model files. */
#include "../harness.h"
#include "dam/common.h"
#include "dam/safetensors.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */

/* A file image: 8-byte little-endian length of hdr, hdr, then data_len
 * bytes of data (0, 1, 2, ...). *size gets the total. */
static unsigned char *image(const char *hdr, size_t hdr_len, size_t data_len, size_t *size) {
    *size = 8 + hdr_len + data_len;
    unsigned char *b = malloc(*size + 1);
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hdr_len >> (8 * i));
    memcpy(b + 8, hdr, hdr_len);
    for (size_t i = 0; i < data_len; i++) b[8 + hdr_len + i] = (unsigned char)i;
    return b;
}

/* Parses hdr + data_len bytes; expects failure with an error that names the
 * buffer and contains each of the given fragments. */
static void expect_reject_n(const char *hdr, size_t hdr_len, size_t data_len,
                            const char *frag1, const char *frag2) {
    size_t size;
    unsigned char *b = image(hdr, hdr_len, data_len, &size);
    struct st_file *f = st_parse("crafted.safetensors", b, size);
    const char *err = dam_last_error();
    if (f) st_close(f);
    free(b);
    ck_assert_msg(f == NULL, "accepted a bad header: %.*s", (int)hdr_len, hdr);
    ck_assert_msg(strstr(err, "crafted.safetensors") != NULL, "error lacks the file name: %s", err);
    ck_assert_msg(strstr(err, frag1) != NULL, "error \"%s\" lacks \"%s\"", err, frag1);
    if (frag2) ck_assert_msg(strstr(err, frag2) != NULL, "error \"%s\" lacks \"%s\"", err, frag2);
}

static void expect_reject(const char *hdr, size_t data_len, const char *frag1, const char *frag2) {
    expect_reject_n(hdr, strlen(hdr), data_len, frag1, frag2);
}

static struct st_file *parse_ok(const char *hdr, size_t data_len, unsigned char **keep) {
    size_t size;
    unsigned char *b = image(hdr, strlen(hdr), data_len, &size);
    struct st_file *f = st_parse("good.safetensors", b, size);
    ck_assert_msg(f != NULL, "rejected a good header (%s): %s", hdr, dam_last_error());
    *keep = b;
    return f;
}

/* ------------------------------------------------------------ dtype table */

START_TEST(dtype_names_round_trip) {
    for (int t = 0; t < DT_COUNT; t++) {
        enum dtype back;
        ck_assert_int_eq(dtype_from_name(dtype_name((enum dtype)t), &back), 0);
        ck_assert_int_eq(back, t);
        ck_assert_uint_gt(dtype_size((enum dtype)t), 0);
    }
    ck_assert_uint_eq(dtype_size(DT_F32), 4);
    ck_assert_uint_eq(dtype_size(DT_BF16), 2);
    ck_assert_uint_eq(dtype_size(DT_F8_E4M3), 1);
    ck_assert_uint_eq(dtype_size(DT_I64), 8);
    ck_assert_str_eq(dtype_name(DT_F8_E5M2), "F8_E5M2");
    enum dtype d;
    ck_assert_int_eq(dtype_from_name("f32", &d), -1);      /* case matters */
    ck_assert_int_eq(dtype_from_name("F4", &d), -1);
    ck_assert_int_eq(dtype_from_name(NULL, &d), -1);
}
END_TEST

/* ------------------------------------------------- length prefix and header */

START_TEST(rejects_short_files) {
    unsigned char b[7] = {2, 0, 0, 0, 0, 0, 0};
    ck_assert_ptr_null(st_parse("short.safetensors", b, 0));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "empty"));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "short.safetensors"));
    ck_assert_ptr_null(st_parse("short.safetensors", b, 7));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "shorter than the 8-byte"));
}
END_TEST

START_TEST(rejects_header_over_100mb) {
    unsigned char b[16] = {0};
    uint64_t n = 100000001;
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(n >> (8 * i));
    ck_assert_ptr_null(st_parse("big.safetensors", b, sizeof b));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "100000000"));
    /* the all-ones length must not wrap around in 8 + n */
    memset(b, 0xff, 8);
    ck_assert_ptr_null(st_parse("big.safetensors", b, sizeof b));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "limit"));
}
END_TEST

START_TEST(rejects_header_past_end) {
    size_t size;
    unsigned char *b = image("{}", 2, 0, &size);
    b[0] = 3;   /* claims 3 header bytes, the file holds 2 */
    ck_assert_ptr_null(st_parse("x.safetensors", b, size));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "past the end of the file"));
    b[0] = 0;   /* zero-length header */
    ck_assert_ptr_null(st_parse("x.safetensors", b, size));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "too short"));
    free(b);
}
END_TEST

START_TEST(rejects_bad_utf8) {
    /* a stray continuation byte, an overlong '/', a surrogate, a cut-off
     * sequence, a code point above U+10FFFF, and a NUL */
    static const char *const bad[] = {
        "{\"a\x80\":{}}", "{\"\xc0\xaf\":{}}", "{\"\xed\xa0\x80\":{}}",
        "{\"\xe2\x82\":{}}", "{\"\xf4\x90\x80\x80\":{}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_reject(bad[i], 0, "not valid UTF-8", NULL);
    expect_reject_n("{\"a\0\":{}}", 8, 0, "not valid UTF-8", NULL);
    /* valid multi-byte names are fine in a header (checked for parse only) */
    unsigned char *keep;
    struct st_file *f = parse_ok("{\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\":"
                                 "{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, &keep);
    ck_assert_ptr_nonnull(st_find(f, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
    st_close(f);
    free(keep);
}
END_TEST

START_TEST(rejects_non_json_and_non_object) {
    expect_reject("{\"a\":", 0, "not valid JSON", NULL);
    expect_reject("{not json}", 0, "not valid JSON", NULL);
    expect_reject("[1,2]", 0, "does not start with '{'", NULL);
    expect_reject("\"str\"", 0, "does not start with '{'", NULL);
    expect_reject(" {}", 0, "does not start with '{'", NULL);
    expect_reject("{\"a\":1}", 0, "tensor \"a\"", "must be a JSON object");
    expect_reject("{} {}", 0, "after the JSON object", NULL);
    expect_reject("{}x", 0, "after the JSON object", NULL);
}
END_TEST

START_TEST(rejects_duplicate_tensor_names) {
    expect_reject("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                  "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                  2, "\"w\" appears twice", NULL);
    expect_reject("{\"w\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
                  1, "\"w\"", "\"dtype\" appears twice");
}
END_TEST

/* ---------------------------------------------------------------- metadata */

START_TEST(rejects_bad_metadata) {
    expect_reject("{\"__metadata__\":[\"a\"]}", 0, "__metadata__ must be a JSON object", NULL);
    expect_reject("{\"__metadata__\":\"pt\"}", 0, "__metadata__ must be a JSON object", NULL);
    expect_reject("{\"__metadata__\":{\"format\":1}}", 0, "\"format\" must be a string", NULL);
    expect_reject("{\"__metadata__\":{\"format\":null}}", 0, "\"format\" must be a string", NULL);
    expect_reject("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "\"k\" twice", NULL);
    expect_reject("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "appears twice", NULL);
}
END_TEST

START_TEST(reads_metadata) {
    unsigned char *keep;
    struct st_file *f = parse_ok("{\"__metadata__\":{\"format\":\"pt\",\"note\":\"x\\\"y\"}}", 0, &keep);
    ck_assert_int_eq(f->n_meta, 2);
    ck_assert_int_eq(f->n_tensors, 0);
    ck_assert_str_eq(f->meta_keys[0], "format");
    ck_assert_str_eq(f->meta_values[0], "pt");
    ck_assert_str_eq(f->meta_values[1], "x\"y");
    st_close(f);
    free(keep);
}
END_TEST

/* ----------------------------------------------------------- tensor entries */

#define T(name, body) "{\"" name "\":" body "}"

START_TEST(rejects_bad_entries) {
    expect_reject(T("w", "[1]"), 0, "tensor \"w\"", "must be a JSON object");
    expect_reject(T("w", "{\"shape\":[1],\"data_offsets\":[0,1]}"), 1, "tensor \"w\"", "missing \"dtype\"");
    expect_reject(T("w", "{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}"), 4, "tensor \"w\"",
                  "\"dtype\" must be a string");
    expect_reject(T("w", "{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}"), 16, "tensor \"w\"",
                  "unknown dtype \"F128\"");
    expect_reject(T("w", "{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}"), 4, "tensor \"w\"",
                  "unknown dtype");
    expect_reject(T("w", "{\"dtype\":\"U8\",\"data_offsets\":[0,1]}"), 1, "tensor \"w\"", "missing \"shape\"");
    expect_reject(T("w", "{\"dtype\":\"U8\",\"shape\":1,\"data_offsets\":[0,1]}"), 1, "tensor \"w\"",
                  "\"shape\" must be an array");
    expect_reject(T("w", "{\"dtype\":\"U8\",\"shape\":[1]}"), 1, "tensor \"w\"", "missing \"data_offsets\"");
}
END_TEST

START_TEST(rejects_bad_shapes) {
    expect_reject(T("w", "{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,0]}"), 0, "tensor \"w\"",
                  "shape[0] is not a non-negative integer");
    expect_reject(T("w", "{\"dtype\":\"U8\",\"shape\":[2,1.5],\"data_offsets\":[0,3]}"), 3, "tensor \"w\"",
                  "shape[1] is not a non-negative integer");
    expect_reject(T("w", "{\"dtype\":\"U8\",\"shape\":[\"2\"],\"data_offsets\":[0,2]}"), 2, "tensor \"w\"",
                  "shape[0]");
    expect_reject(T("w", "{\"dtype\":\"U8\",\"shape\":[1e300],\"data_offsets\":[0,2]}"), 2, "tensor \"w\"",
                  "shape[0]");
    /* 2^53 + 1 arrives from the JSON parser rounded to 2^53: refused, not misread */
    expect_reject(T("w", "{\"dtype\":\"U8\",\"shape\":[9007199254740993,0],\"data_offsets\":[0,0]}"), 0,
                  "tensor \"w\"", "shape[0]");
    expect_reject(T("w", "{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}"), 1,
                  "tensor \"w\"", "9 dimensions, more than the 8");
    /* 2^30 * 2^30 * 8 = 2^63 elements does not fit in int64 */
    expect_reject(T("w", "{\"dtype\":\"U8\",\"shape\":[1073741824,1073741824,8],\"data_offsets\":[0,1]}"), 1,
                  "tensor \"w\"", "element count overflows");
    /* 2^31 * 2^31 = 2^62 elements, times 4 bytes = 2^64: the byte count overflows */
    expect_reject(T("w", "{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,4]}"), 4,
                  "tensor \"w\"", "byte size overflows");
    /* ...but a zero dimension makes huge products harmless */
    unsigned char *keep;
    struct st_file *f = parse_ok(T("w", "{\"dtype\":\"F32\",\"shape\":[2147483648,0,2147483648],"
                                   "\"data_offsets\":[0,0]}"), 0, &keep);
    ck_assert_int_eq(f->tensors[0].numel, 0);
    st_close(f);
    free(keep);
}
END_TEST

START_TEST(rejects_bad_offsets) {
    expect_reject(T("w", "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}"), 1, "tensor \"w\"",
                  "must be [begin, end]");
    expect_reject(T("w", "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}"), 1, "tensor \"w\"",
                  "must be [begin, end]");
    expect_reject(T("w", "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":{\"a\":0,\"b\":1}}"), 1,
                  "tensor \"w\"", "must be [begin, end]");
    expect_reject(T("w", "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[-1,0]}"), 1, "tensor \"w\"",
                  "must be [begin, end]");
    expect_reject(T("w", "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0.5,1.5]}"), 2, "tensor \"w\"",
                  "must be [begin, end]");
    expect_reject(T("w", "{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,1]}"), 2, "tensor \"w\"",
                  "begin 2 is after end 1");
    expect_reject(T("w", "{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}"), 3, "tensor \"w\"",
                  "end 4 is past the data buffer (3 bytes)");
    expect_reject(T("w", "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,18446744073709551615]}"), 1,
                  "tensor \"w\"", "must be [begin, end]");
    expect_reject(T("w", "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}"), 4, "tensor \"w\"",
                  "span 4 bytes but shape x F32 needs 8");
    expect_reject(T("w", "{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,6]}"), 6, "tensor \"w\"",
                  "needs 12");
}
END_TEST

/* Two U8 tensors a and b with the given offsets over data_len bytes. */
static void two(char *buf, size_t n, int a0, int a1, int b0, int b1) {
    snprintf(buf, n, "{\"a\":{\"dtype\":\"U8\",\"shape\":[%d],\"data_offsets\":[%d,%d]},"
             "\"b\":{\"dtype\":\"U8\",\"shape\":[%d],\"data_offsets\":[%d,%d]}}",
             a1 - a0, a0, a1, b1 - b0, b0, b1);
}

START_TEST(rejects_gaps_overlaps_and_trailing_bytes) {
    char h[512];
    two(h, sizeof h, 0, 2, 3, 5);       /* a gap at byte 2 */
    expect_reject(h, 5, "tensor \"b\"", "gap");
    two(h, sizeof h, 1, 3, 3, 5);       /* the first tensor does not start at 0 */
    expect_reject(h, 5, "tensor \"a\"", "gap");
    two(h, sizeof h, 0, 3, 2, 5);       /* overlap */
    expect_reject(h, 5, "tensor \"b\"", "overlap");
    two(h, sizeof h, 0, 3, 0, 3);       /* the same bytes twice */
    expect_reject(h, 3, "overlap", NULL);
    two(h, sizeof h, 0, 2, 2, 4);       /* two bytes nobody owns at the end */
    expect_reject(h, 6, "cover 4 bytes but the data buffer has 6", NULL);
    expect_reject("{}", 1, "cover 0 bytes but the data buffer has 1", NULL);
    /* a zero-size tensor inside another one's bytes */
    expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                  "\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[2,2]}}", 4, "tensor \"z\"", "overlap");
}
END_TEST

START_TEST(accepts_out_of_order_and_zero_size) {
    /* listed b first but stored a first; zero-size tensors at the boundaries */
    unsigned char *keep;
    struct st_file *f = parse_ok(
        "{\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[2,5]},"
        "\"z0\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[0,0]},"
        "\"a\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[0,2]},"
        "\"z1\":{\"dtype\":\"BF16\",\"shape\":[0],\"data_offsets\":[5,5]},"
        "\"s\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[5,6]},"
        "\"unknown_keys_ignored\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[6,6],\"x\":1}}  ", 6, &keep);
    ck_assert_int_eq(f->n_tensors, 6);
    ck_assert_str_eq(f->tensors[0].name, "z0");    /* sorted by offset, zero-size first */
    ck_assert_str_eq(f->tensors[1].name, "a");
    ck_assert_str_eq(f->tensors[2].name, "b");
    const struct st_tensor *b = st_find(f, "b");
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(b->numel, 3);
    ck_assert_uint_eq(b->nbytes, 3);
    ck_assert_ptr_eq(b->data, keep + f->data_start + 2);   /* zero copy */
    ck_assert_int_eq(((const unsigned char *)b->data)[0], 2);
    const struct st_tensor *s = st_find(f, "s");
    ck_assert_int_eq(s->ndim, 0);
    ck_assert_int_eq(s->numel, 1);
    ck_assert_int_eq(st_find(f, "z0")->numel, 0);
    ck_assert_int_eq(st_find(f, "z0")->ndim, 2);
    ck_assert_ptr_null(st_find(f, "c"));
    ck_assert_ptr_null(st_find(f, "__metadata__"));
    ck_assert_ptr_null(st_find(f, ""));
    st_close(f);
    free(keep);
}
END_TEST

/* ---------------------------------------------------------- st_open paths */

START_TEST(open_reports_path_problems) {
    ck_assert_ptr_null(st_open("/nonexistent/dir/model.safetensors"));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "/nonexistent/dir/model.safetensors"));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "No such file"));

    const char *dir = tmp_dir();
    ck_assert_ptr_null(st_open(dir));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "is a directory"));

    const char *empty = tmp_file_with("", 0);
    ck_assert_ptr_null(st_open(empty));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "empty"));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), empty));
    unlink(empty);

    const char *shortf = tmp_file_with("\x02\0\0\0", 4);
    ck_assert_ptr_null(st_open(shortf));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "shorter than the 8-byte"));
    unlink(shortf);

    size_t size;
    const char *hdr = "{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}";
    unsigned char *b = image(hdr, strlen(hdr), 3, &size);
    const char *bad = tmp_file_with(b, size);
    ck_assert_ptr_null(st_open(bad));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), bad));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "cover 2 bytes"));
    unlink(bad);
    free(b);
    rmdir(dir);
}
END_TEST

/* ------------------------------------------------------------- round trips */

START_TEST(writer_round_trip) {
    float f32[6] = {1.5f, -2.0f, 0.0f, 3.25f, 1e-30f, -7.0f};
    uint16_t f16[4] = {0x3c00, 0xc000, 0x7bff, 0x0001};       /* 1, -2, 65504, tiny */
    uint16_t bf16[3] = {0x3f80, 0xbf80, 0x7f80};              /* 1, -1, inf */
    int32_t i32[5] = {1, -1, 2147483647, -2147483647 - 1, 0};
    int64_t s_f32[2] = {2, 3}, s_f16[1] = {4}, s_bf16[3] = {1, 3, 1}, s_i32[1] = {5}, s_zero[2] = {0, 7};

    struct st_writer *w = st_writer_new();
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(st_writer_add(w, "weights.f32", DT_F32, 2, s_f32, f32), 0);
    ck_assert_int_eq(st_writer_add(w, "half", DT_F16, 1, s_f16, f16), 0);
    ck_assert_int_eq(st_writer_add(w, "empty", DT_F32, 2, s_zero, NULL), 0);
    ck_assert_int_eq(st_writer_add(w, "brain", DT_BF16, 3, s_bf16, bf16), 0);
    ck_assert_int_eq(st_writer_add(w, "ids \"quoted\"\\", DT_I32, 1, s_i32, i32), 0);
    ck_assert_int_eq(st_writer_add(w, "scalar", DT_I32, 0, NULL, &i32[2]), 0);
    ck_assert_int_eq(st_writer_add_meta(w, "format", "pt"), 0);
    ck_assert_int_eq(st_writer_add_meta(w, "note", "tab\there \xc3\xa9"), 0);
    /* the writer refuses what the reader would refuse */
    ck_assert_int_eq(st_writer_add(w, "half", DT_F16, 1, s_f16, f16), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "added twice"));
    ck_assert_int_eq(st_writer_add(w, "__metadata__", DT_F16, 1, s_f16, f16), -1);
    int64_t neg[1] = {-1};
    ck_assert_int_eq(st_writer_add(w, "neg", DT_F16, 1, neg, f16), -1);
    ck_assert_int_eq(st_writer_add(w, "deep", DT_F16, 9, s_f32, f16), -1);
    ck_assert_int_eq(st_writer_add(w, "bad\xff", DT_F16, 1, s_f16, f16), -1);
    ck_assert_int_eq(st_writer_add_meta(w, "format", "again"), -1);

    const char *dir = tmp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/out.safetensors", dir);
    ck_assert_int_eq(st_writer_save(w, path), 0);
    st_writer_free(w);

    struct st_file *f = st_open(path);
    ck_assert_msg(f != NULL, "%s", dam_last_error());
    ck_assert_int_eq(f->data_start % 8, 0);        /* header padded like the Python library */
    ck_assert_int_eq(f->n_tensors, 6);
    ck_assert_int_eq(f->n_meta, 2);
    ck_assert_str_eq(f->meta_keys[1], "note");
    ck_assert_str_eq(f->meta_values[1], "tab\there \xc3\xa9");
    /* insertion order is storage order: weights 0..24, half 24..32,
     * empty 32..32, brain 32..38 (a zero-size tensor sorts first at its offset) */
    ck_assert_str_eq(f->tensors[0].name, "weights.f32");
    ck_assert_str_eq(f->tensors[1].name, "half");
    ck_assert_str_eq(f->tensors[2].name, "empty");
    ck_assert_str_eq(f->tensors[3].name, "brain");
    ck_assert_str_eq(f->tensors[5].name, "scalar");

    const struct st_tensor *t = st_find(f, "weights.f32");
    ck_assert_int_eq(t->dtype, DT_F32);
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->shape[0], 2);
    ck_assert_int_eq(t->shape[1], 3);
    ck_assert_int_eq(memcmp(t->data, f32, sizeof f32), 0);
    ck_assert_ptr_eq(t->data, (const char *)f->map + f->data_start);   /* zero copy from the mapping */
    t = st_find(f, "half");
    ck_assert_int_eq(t->dtype, DT_F16);
    ck_assert_int_eq(memcmp(t->data, f16, sizeof f16), 0);
    t = st_find(f, "brain");
    ck_assert_int_eq(t->dtype, DT_BF16);
    ck_assert_int_eq(t->ndim, 3);
    ck_assert_int_eq(memcmp(t->data, bf16, sizeof bf16), 0);
    t = st_find(f, "ids \"quoted\"\\");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, DT_I32);
    ck_assert_int_eq(memcmp(t->data, i32, sizeof i32), 0);
    t = st_find(f, "empty");
    ck_assert_int_eq(t->numel, 0);
    ck_assert_int_eq(t->shape[1], 7);
    t = st_find(f, "scalar");
    ck_assert_int_eq(t->ndim, 0);
    int32_t scalar;
    memcpy(&scalar, t->data, 4);    /* offset 58: insertion order keeps no alignment */
    ck_assert_int_eq(scalar, 2147483647);

    /* The header text keeps insertion order and plain integers. */
    const char *hdr = (const char *)f->map + 8;
    const char *p_w = strstr(hdr, "\"weights.f32\""), *p_h = strstr(hdr, "\"half\"");
    ck_assert_ptr_nonnull(p_w);
    ck_assert_ptr_nonnull(p_h);
    ck_assert(p_w < p_h);
    ck_assert_ptr_nonnull(strstr(hdr, "\"data_offsets\":[0,24]"));
    ck_assert_ptr_nonnull(strstr(hdr, "\"scalar\":{\"dtype\":\"I32\",\"shape\":[]"));
    st_close(f);

    /* No temporary file is left beside the result. */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "test $(ls %s | wc -l) -eq 1", dir);
    ck_assert_int_eq(system(cmd), 0);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(writer_empty_and_failure) {
    struct st_writer *w = st_writer_new();
    const char *dir = tmp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/empty.safetensors", dir);
    ck_assert_int_eq(st_writer_save(w, path), 0);
    struct st_file *f = st_open(path);
    ck_assert_msg(f != NULL, "%s", dam_last_error());
    ck_assert_int_eq(f->n_tensors, 0);
    ck_assert_int_eq(f->size, 16);          /* "{}" padded to 8 bytes */
    st_close(f);
    unlink(path);
    snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", dir);
    ck_assert_int_eq(st_writer_save(w, path), -1);
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "cannot write"));
    st_writer_free(w);
    rmdir(dir);
}
END_TEST

/* Every single-byte truncation of a good file is refused, never crashes. */
START_TEST(truncations_are_refused) {
    struct st_writer *w = st_writer_new();
    float v[4] = {1, 2, 3, 4};
    int64_t s[1] = {4};
    st_writer_add(w, "a", DT_F32, 1, s, v);
    st_writer_add(w, "b", DT_F32, 1, s, v);
    const char *dir = tmp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    ck_assert_int_eq(st_writer_save(w, path), 0);
    st_writer_free(w);
    size_t len;
    char *buf = read_file(path, &len);
    ck_assert_ptr_nonnull(buf);
    struct st_file *f = st_parse("t", buf, len);
    ck_assert_ptr_nonnull(f);
    st_close(f);
    for (size_t n = 0; n < len; n++) {
        f = st_parse("t", buf, n);
        ck_assert_msg(f == NULL, "accepted a file truncated to %zu bytes", n);
    }
    free(buf);
    unlink(path);
    rmdir(dir);
}
END_TEST

/* ------------------------------------------------------------- real files */

START_TEST(reads_tiny_llama3) {
    struct st_file *f = st_open("third_party/models/tiny-llama3/model.safetensors");
    ck_assert_msg(f != NULL, "%s", dam_last_error());
    ck_assert_int_eq(f->n_tensors, 29);   /* embed + 3 layers x 9 + final norm (tied) */
    const struct st_tensor *t = st_find(f, "model.embed_tokens.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, DT_BF16);
    ck_assert_int_eq(t->ndim, 2);
    ck_assert_int_eq(t->shape[0], 3000);
    ck_assert_int_eq(t->shape[1], 256);
    t = st_find(f, "model.layers.2.self_attn.k_proj.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->shape[0], 64);    /* 1 KV head x head_dim 64 */
    ck_assert_int_eq(t->shape[1], 256);
    t = st_find(f, "model.layers.0.mlp.down_proj.weight");
    ck_assert_int_eq(t->shape[0], 256);
    ck_assert_int_eq(t->shape[1], 640);
    t = st_find(f, "model.norm.weight");
    ck_assert_int_eq(t->ndim, 1);
    ck_assert_ptr_null(st_find(f, "lm_head.weight"));
    ck_assert_ptr_null(st_find(f, "model.layers.3.mlp.up_proj.weight"));
    /* every tensor's bytes lie inside the mapping */
    for (int i = 0; i < f->n_tensors; i++) {
        const char *d = f->tensors[i].data, *m = f->map;
        ck_assert(d >= m + f->data_start && d + f->tensors[i].nbytes <= m + f->size);
    }
    st_close(f);
}
END_TEST

START_TEST(reads_golden_and_stories) {
    struct st_file *f = st_open("third_party/models/tiny-llama3/golden.safetensors");
    ck_assert_msg(f != NULL, "%s", dam_last_error());
    const struct st_tensor *ids = st_find(f, "input_ids"), *logits = st_find(f, "logits"),
                           *gen = st_find(f, "generated");
    ck_assert_ptr_nonnull(ids);
    ck_assert_ptr_nonnull(logits);
    ck_assert_ptr_nonnull(gen);
    ck_assert_int_eq(ids->dtype, DT_I32);
    ck_assert_int_eq(((const int32_t *)ids->data)[0], 1);   /* the first token is 1 */
    ck_assert_int_eq(logits->dtype, DT_F32);
    ck_assert_int_eq(logits->ndim, 2);
    ck_assert_int_eq(logits->shape[0], ids->shape[0]);
    ck_assert_int_eq(logits->shape[1], 3000);
    ck_assert_int_eq(gen->shape[0], 48);
    ck_assert_int_eq(memcmp(gen->data, ids->data, 16 * 4), 0);   /* generated starts with input_ids[:16] */
    st_close(f);

    f = st_open("third_party/models/stories260k/model.safetensors");
    ck_assert_msg(f != NULL, "%s", dam_last_error());
    const struct st_tensor *t = st_find(f, "model.layers.4.self_attn.v_proj.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, DT_F32);
    ck_assert_int_eq(t->shape[0], 32);    /* 4 KV heads x head_dim 8 */
    ck_assert_int_eq(t->shape[1], 64);
    st_close(f);
}
END_TEST

START_TEST(reads_reference_shards) {
    const char *refs = refs_dir();
    if (!refs) SKIP_TEST("reference models absent ($DAM_REFS or ../shared/models)");
    char path[4096];
    snprintf(path, sizeof path, "%s/tiny-llama2-sharded/model-00002-of-00003.safetensors", refs);
    if (!is_file(path)) SKIP_TEST("%s absent", path);
    struct st_file *f = st_open(path);
    ck_assert_msg(f != NULL, "%s", dam_last_error());
    const struct st_tensor *t = st_find(f, "model.embed_tokens.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, DT_F16);
    ck_assert_int_eq(t->shape[0], 32000);
    ck_assert_int_eq(t->shape[1], 128);
    st_close(f);
}
END_TEST

Suite *test_suite(void) {
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, dtype_names_round_trip);
    tcase_add_test(tc, rejects_short_files);
    tcase_add_test(tc, rejects_header_over_100mb);
    tcase_add_test(tc, rejects_header_past_end);
    tcase_add_test(tc, rejects_bad_utf8);
    tcase_add_test(tc, rejects_non_json_and_non_object);
    tcase_add_test(tc, rejects_duplicate_tensor_names);
    tcase_add_test(tc, rejects_bad_metadata);
    tcase_add_test(tc, reads_metadata);
    tcase_add_test(tc, rejects_bad_entries);
    tcase_add_test(tc, rejects_bad_shapes);
    tcase_add_test(tc, rejects_bad_offsets);
    tcase_add_test(tc, rejects_gaps_overlaps_and_trailing_bytes);
    tcase_add_test(tc, accepts_out_of_order_and_zero_size);
    tcase_add_test(tc, open_reports_path_problems);
    suite_add_tcase(s, tc);
    TCase *rt = tcase_create("round trips");
    tcase_add_test(rt, writer_round_trip);
    tcase_add_test(rt, writer_empty_and_failure);
    tcase_add_test(rt, truncations_are_refused);
    suite_add_tcase(s, rt);
    TCase *real = tcase_create("real files");
    tcase_add_test(real, reads_tiny_llama3);
    tcase_add_test(real, reads_golden_and_stories);
    tcase_add_test(real, reads_reference_shards);
    suite_add_tcase(s, real);
    return s;
}
