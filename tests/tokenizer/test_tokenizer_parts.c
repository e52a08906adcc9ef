/* test_tokenizer_parts.c — every normalizer, pre-tokenizer, model option,
 * added-token flag, post-processor and decoder path, on small tokenizer.json
 * files built here, against Hugging Face tokenizers.
 *
 * Each case's expected ids and text were produced by Hugging Face
 * `tokenizers` 0.23.2 (its Node binding, Tokenizer.fromString + encode /
 * decode) from exactly the JSON that build_json() writes; the tables below
 * are that output. Cases where the library itself panics (Strip on a token
 * made only of the stripped char) are left out.
 *
 * Two base vocabularies:
 *   BASE_SP  <unk> <s> </s>, <0x00>..<0xFF>, ▁, ASCII 0x20..0x7E, then merges
 *   BASE_BL  <|endoftext|> <|im_start|> <|im_end|>, GPT-2's 256 byte chars, merges */
#include "../harness.h"
#include "dam/common.h"
#include "dam/tokenizer.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { BASE_SP, BASE_BL };

#define MODEL_PLAIN "\"unk_token\":null,\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":false,"
#define MODEL_UNK_FUSE "\"unk_token\":\"<unk>\",\"fuse_unk\":true,\"byte_fallback\":false,\"ignore_merges\":false,"
#define MODEL_UNK_NOFUSE "\"unk_token\":\"<unk>\",\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":false,"
#define MODEL_FALLBACK "\"unk_token\":\"<unk>\",\"fuse_unk\":true,\"byte_fallback\":true,\"ignore_merges\":false,"

static const char *const sp_merges[][2] = {
    {"\xE2\x96\x81", "t"}, {"h", "e"}, {"\xE2\x96\x81t", "he"}, {"l", "l"}, {"ll", "o"}, {"1", "2"},
    {"12", "3"}, {"\xE2\x96\x81", "a"}, {"a", "b"}, {"\xE2\x96\x81", "\xE2\x96\x81"}, {"e", "r"},
    {"\xE2\x96\x81", "h"}, {"\xE2\x96\x81h", "e"},
};
static const char *const bl_merges[][2] = {
    {"\xC4\xA0", "t"}, {"h", "e"}, {"\xC4\xA0t", "he"}, {"l", "l"}, {"ll", "o"}, {"1", "2"}, {"12", "3"},
    {"\xC4\xA0", "\xC4\xA0"}, {"\xC4\xA0", "a"}, {"e", "r"}, {"'", "s"}, {"\xC4\xA0", "w"},
};

struct text { char *data; size_t len, cap; };

static void put(struct text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->data = realloc(t->data, t->cap);
        ck_assert_ptr_nonnull(t->data);
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = 0;
}
static void puts_(struct text *t, const char *s) { put(t, s, strlen(s)); }

/* A JSON string literal. */
static void put_json_string(struct text *t, const char *s) {
    puts_(t, "\"");
    for (; *s; s++) {
        char esc[8];
        if (*s == '"' || *s == '\\') { esc[0] = '\\'; esc[1] = *s; put(t, esc, 2); }
        else if ((unsigned char)*s < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", *s); puts_(t, esc); }
        else put(t, s, 1);
    }
    puts_(t, "\"");
}

/* GPT-2's character for byte b, as UTF-8. */
static void byte_char(int b, char *out) {
    int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    int cp = b;
    if (!printable) {
        int n = 0;
        for (int x = 0; x < b; x++)
            n += !((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255));
        cp = 256 + n;
    }
    if (cp < 0x80) { out[0] = (char)cp; out[1] = 0; }
    else { out[0] = (char)(0xC0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3F)); out[2] = 0; }
}

/* The tokenizer.json of a case: sections (added_tokens .. decoder) and
 * model options spliced around the base vocabulary and merges. */
static char *build_json(int base, const char *model, const char *sections) {
    struct text t = {0};
    char tok[16];
    const char *const (*merges)[2] = base == BASE_SP ? sp_merges : bl_merges;
    int n_merges = base == BASE_SP ? (int)(sizeof sp_merges / sizeof sp_merges[0])
                                   : (int)(sizeof bl_merges / sizeof bl_merges[0]);
    int id = 0;
    puts_(&t, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,");
    puts_(&t, sections);
    puts_(&t, ",\"model\":{\"type\":\"BPE\",\"dropout\":null,\"continuing_subword_prefix\":null,"
              "\"end_of_word_suffix\":null,");
    puts_(&t, model);
    puts_(&t, "\"vocab\":{");
#define ENTRY(s) do { if (id) puts_(&t, ","); put_json_string(&t, s); \
                      snprintf(tok, sizeof tok, ":%d", id++); puts_(&t, tok); } while (0)
    if (base == BASE_SP) {
        ENTRY("<unk>"); ENTRY("<s>"); ENTRY("</s>");
        for (int b = 0; b < 256; b++) { snprintf(tok, sizeof tok, "<0x%02X>", b); char s[8]; strcpy(s, tok); ENTRY(s); }
        ENTRY("\xE2\x96\x81");
        for (int c = 0x20; c < 0x7F; c++) { char s[2] = { (char)c, 0 }; ENTRY(s); }
    } else {
        ENTRY("<|endoftext|>"); ENTRY("<|im_start|>"); ENTRY("<|im_end|>");
        for (int b = 0; b < 256; b++) { char s[4]; byte_char(b, s); ENTRY(s); }
    }
    for (int i = 0; i < n_merges; i++) {
        char s[32];
        snprintf(s, sizeof s, "%s%s", merges[i][0], merges[i][1]);
        ENTRY(s);
    }
#undef ENTRY
    puts_(&t, "},\"merges\":[");
    for (int i = 0; i < n_merges; i++) {
        char s[32];
        snprintf(s, sizeof s, "%s %s", merges[i][0], merges[i][1]);
        if (i) puts_(&t, ",");
        put_json_string(&t, s);
    }
    puts_(&t, "]}}");
    return t.data;
}

static struct tokenizer *load_json(const char *json) {
    const char *path = tmp_file_with(json, strlen(json));
    struct tokenizer *t = tokenizer_load(path);
    unlink(path);
    return t;
}

struct enc_case {
    const char *text;
    size_t text_len;
    int n_ids;
    int ids[16];
    int n_special;
    int ids_special[16];
    const char *decoded;
    size_t decoded_len;
};

struct dec_case {
    int n;                 /* -1 ends the list */
    int ids[16];
    const char *text;      /* skip_special = 0 */
    size_t text_len;
    const char *skip;      /* skip_special = 1 */
    size_t skip_len;
};

struct part_config {
    const char *name;
    int base;
    const char *model;
    const char *const *sections;
    const struct enc_case *enc;
    const struct dec_case *dec;
};

/* ---- expected results (Hugging Face tokenizers 0.23.2) ---- */

static const char *const split_removed_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"Removed\",\"invert\":false},\"post_processor\":null,\"decoder\":null";
static const struct enc_case split_removed_enc[] = {
    { "a b  c", 6, 3, { 325, 326, 327 }, 3, { 325, 326, 327 }, "a b c", 5 },
    { " hello world ", 13, 7, { 356, 359, 347, 339, 342, 336, 328 }, 7, { 356, 359, 347, 339, 342, 336, 328 }, "he llo w o r l d", 16 },
    { "x,y. z!! w", 10, 8, { 348, 272, 349, 274, 350, 261, 261, 347 }, 8, { 348, 272, 349, 274, 350, 261, 261, 347 }, "x , y . z ! ! w", 15 },
    { "a-b--c-", 7, 7, { 325, 273, 326, 273, 273, 327, 273 }, 7, { 325, 273, 326, 273, 273, 327, 273 }, "a - b - - c -", 13 },
    { "ab12345x6", 9, 6, { 363, 361, 280, 281, 348, 282 }, 6, { 363, 361, 280, 281, 348, 282 }, "ab 123 4 5 x 6", 14 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 0, { 0 }, 0, { 0 }, "", 0 },
    { "the hello", 9, 4, { 344, 356, 356, 359 }, 4, { 344, 356, 356, 359 }, "t he he llo", 11 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case split_removed_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const split_isolated_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"behavior\":\"Isolated\",\"invert\":false},\"post_processor\":null,\"decoder\":null";
static const struct enc_case split_isolated_enc[] = {
    { "a b  c", 6, 6, { 325, 260, 326, 260, 260, 327 }, 6, { 325, 260, 326, 260, 260, 327 }, "a   b     c", 11 },
    { " hello world ", 13, 10, { 260, 356, 359, 260, 347, 339, 342, 336, 328, 260 }, 10, { 260, 356, 359, 260, 347, 339, 342, 336, 328, 260 }, "  he llo   w o r l d  ", 22 },
    { "x,y. z!! w", 10, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, "x , y .   z ! !   w", 19 },
    { "a-b--c-", 7, 7, { 325, 273, 326, 273, 273, 327, 273 }, 7, { 325, 273, 326, 273, 273, 327, 273 }, "a - b - - c -", 13 },
    { "ab12345x6", 9, 6, { 363, 361, 280, 281, 348, 282 }, 6, { 363, 361, 280, 281, 348, 282 }, "ab 123 4 5 x 6", 14 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 2, { 260, 260 }, 2, { 260, 260 }, "   ", 3 },
    { "the hello", 9, 5, { 344, 356, 260, 356, 359 }, 5, { 344, 356, 260, 356, 359 }, "t he   he llo", 13 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case split_isolated_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const split_merged_previous_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[,.!]\"},\"behavior\":\"MergedWithPrevious\",\"invert\":false},\"post_processor\":null,\"decoder\":null";
static const struct enc_case split_merged_previous_enc[] = {
    { "a b  c", 6, 6, { 325, 260, 326, 260, 260, 327 }, 6, { 325, 260, 326, 260, 260, 327 }, "a   b     c", 11 },
    { " hello world ", 13, 10, { 260, 356, 359, 260, 347, 339, 342, 336, 328, 260 }, 10, { 260, 356, 359, 260, 347, 339, 342, 336, 328, 260 }, "  he llo   w o r l d  ", 22 },
    { "x,y. z!! w", 10, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, "x , y .   z ! !   w", 19 },
    { "a-b--c-", 7, 7, { 325, 273, 326, 273, 273, 327, 273 }, 7, { 325, 273, 326, 273, 273, 327, 273 }, "a - b - - c -", 13 },
    { "ab12345x6", 9, 6, { 363, 361, 280, 281, 348, 282 }, 6, { 363, 361, 280, 281, 348, 282 }, "ab 123 4 5 x 6", 14 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 2, { 260, 260 }, 2, { 260, 260 }, "   ", 3 },
    { "the hello", 9, 5, { 344, 356, 260, 356, 359 }, 5, { 344, 356, 260, 356, 359 }, "t he   he llo", 13 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case split_merged_previous_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const split_merged_next_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"behavior\":\"MergedWithNext\",\"invert\":false},\"post_processor\":null,\"decoder\":null";
static const struct enc_case split_merged_next_enc[] = {
    { "a b  c", 6, 6, { 325, 260, 326, 260, 260, 327 }, 6, { 325, 260, 326, 260, 260, 327 }, "a   b     c", 11 },
    { " hello world ", 13, 10, { 260, 356, 359, 260, 347, 339, 342, 336, 328, 260 }, 10, { 260, 356, 359, 260, 347, 339, 342, 336, 328, 260 }, "  he llo   w o r l d  ", 22 },
    { "x,y. z!! w", 10, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, "x , y .   z ! !   w", 19 },
    { "a-b--c-", 7, 7, { 325, 273, 326, 273, 273, 327, 273 }, 7, { 325, 273, 326, 273, 273, 327, 273 }, "a - b - - c -", 13 },
    { "ab12345x6", 9, 6, { 363, 361, 280, 281, 348, 282 }, 6, { 363, 361, 280, 281, 348, 282 }, "ab 123 4 5 x 6", 14 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 2, { 260, 260 }, 2, { 260, 260 }, "   ", 3 },
    { "the hello", 9, 5, { 344, 356, 260, 356, 359 }, 5, { 344, 356, 260, 356, 359 }, "t he   he llo", 13 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case split_merged_next_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const split_contiguous_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\d\"},\"behavior\":\"Contiguous\",\"invert\":false},\"post_processor\":null,\"decoder\":null";
static const struct enc_case split_contiguous_enc[] = {
    { "a b  c", 6, 6, { 325, 260, 326, 260, 260, 327 }, 6, { 325, 260, 326, 260, 260, 327 }, "a   b     c", 11 },
    { " hello world ", 13, 10, { 260, 356, 359, 260, 347, 339, 342, 336, 328, 260 }, 10, { 260, 356, 359, 260, 347, 339, 342, 336, 328, 260 }, "  he llo   w o r l d  ", 22 },
    { "x,y. z!! w", 10, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, "x , y .   z ! !   w", 19 },
    { "a-b--c-", 7, 7, { 325, 273, 326, 273, 273, 327, 273 }, 7, { 325, 273, 326, 273, 273, 327, 273 }, "a - b - - c -", 13 },
    { "ab12345x6", 9, 6, { 363, 361, 280, 281, 348, 282 }, 6, { 363, 361, 280, 281, 348, 282 }, "ab 123 4 5 x 6", 14 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 2, { 260, 260 }, 2, { 260, 260 }, "   ", 3 },
    { "the hello", 9, 5, { 344, 356, 260, 356, 359 }, 5, { 344, 356, 260, 356, 359 }, "t he   he llo", 13 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case split_contiguous_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const split_invert_removed_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[a-z]+\"},\"behavior\":\"Removed\",\"invert\":true},\"post_processor\":null,\"decoder\":null";
static const struct enc_case split_invert_removed_enc[] = {
    { "a b  c", 6, 3, { 325, 326, 327 }, 3, { 325, 326, 327 }, "a b c", 5 },
    { " hello world ", 13, 7, { 356, 359, 347, 339, 342, 336, 328 }, 7, { 356, 359, 347, 339, 342, 336, 328 }, "he llo w o r l d", 16 },
    { "x,y. z!! w", 10, 4, { 348, 349, 350, 347 }, 4, { 348, 349, 350, 347 }, "x y z w", 7 },
    { "a-b--c-", 7, 3, { 325, 326, 327 }, 3, { 325, 326, 327 }, "a b c", 5 },
    { "ab12345x6", 9, 2, { 363, 348 }, 2, { 363, 348 }, "ab x", 4 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 0, { 0 }, 0, { 0 }, "", 0 },
    { "the hello", 9, 4, { 344, 356, 356, 359 }, 4, { 344, 356, 356, 359 }, "t he he llo", 11 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case split_invert_removed_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const split_invert_isolated_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s\"},\"behavior\":\"Isolated\",\"invert\":true},\"post_processor\":null,\"decoder\":null";
static const struct enc_case split_invert_isolated_enc[] = {
    { "a b  c", 6, 6, { 325, 260, 326, 260, 260, 327 }, 6, { 325, 260, 326, 260, 260, 327 }, "a   b     c", 11 },
    { " hello world ", 13, 10, { 260, 356, 359, 260, 347, 339, 342, 336, 328, 260 }, 10, { 260, 356, 359, 260, 347, 339, 342, 336, 328, 260 }, "  he llo   w o r l d  ", 22 },
    { "x,y. z!! w", 10, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, "x , y .   z ! !   w", 19 },
    { "a-b--c-", 7, 7, { 325, 273, 326, 273, 273, 327, 273 }, 7, { 325, 273, 326, 273, 273, 327, 273 }, "a - b - - c -", 13 },
    { "ab12345x6", 9, 6, { 363, 361, 280, 281, 348, 282 }, 6, { 363, 361, 280, 281, 348, 282 }, "ab 123 4 5 x 6", 14 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 2, { 260, 260 }, 2, { 260, 260 }, "   ", 3 },
    { "the hello", 9, 5, { 344, 356, 260, 356, 359 }, 5, { 344, 356, 260, 356, 359 }, "t he   he llo", 13 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case split_invert_isolated_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const split_empty_matches_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"x*\"},\"behavior\":\"Isolated\",\"invert\":false},\"post_processor\":null,\"decoder\":null";
static const struct enc_case split_empty_matches_enc[] = {
    { "abxxc", 5, 5, { 325, 326, 348, 348, 327 }, 5, { 325, 326, 348, 348, 327 }, "a b x x c", 9 },
    { "xx", 2, 2, { 348, 348 }, 2, { 348, 348 }, "x x", 3 },
    { "a x", 3, 3, { 325, 260, 348 }, 3, { 325, 260, 348 }, "a   x", 5 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case split_empty_matches_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const digits_individual_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Digits\",\"individual_digits\":true},\"post_processor\":null,\"decoder\":null";
static const struct enc_case digits_individual_enc[] = {
    { "a b  c", 6, 6, { 325, 260, 326, 260, 260, 327 }, 6, { 325, 260, 326, 260, 260, 327 }, "a   b     c", 11 },
    { " hello world ", 13, 10, { 260, 356, 359, 260, 347, 339, 342, 336, 328, 260 }, 10, { 260, 356, 359, 260, 347, 339, 342, 336, 328, 260 }, "  he llo   w o r l d  ", 22 },
    { "x,y. z!! w", 10, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, "x , y .   z ! !   w", 19 },
    { "a-b--c-", 7, 7, { 325, 273, 326, 273, 273, 327, 273 }, 7, { 325, 273, 326, 273, 273, 327, 273 }, "a - b - - c -", 13 },
    { "ab12345x6", 9, 8, { 363, 277, 278, 279, 280, 281, 348, 282 }, 8, { 363, 277, 278, 279, 280, 281, 348, 282 }, "ab 1 2 3 4 5 x 6", 16 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 2, { 260, 260 }, 2, { 260, 260 }, "   ", 3 },
    { "the hello", 9, 5, { 344, 356, 260, 356, 359 }, 5, { 344, 356, 260, 356, 359 }, "t he   he llo", 13 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case digits_individual_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const digits_contiguous_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Digits\",\"individual_digits\":false},\"post_processor\":null,\"decoder\":null";
static const struct enc_case digits_contiguous_enc[] = {
    { "a b  c", 6, 6, { 325, 260, 326, 260, 260, 327 }, 6, { 325, 260, 326, 260, 260, 327 }, "a   b     c", 11 },
    { " hello world ", 13, 10, { 260, 356, 359, 260, 347, 339, 342, 336, 328, 260 }, 10, { 260, 356, 359, 260, 347, 339, 342, 336, 328, 260 }, "  he llo   w o r l d  ", 22 },
    { "x,y. z!! w", 10, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, "x , y .   z ! !   w", 19 },
    { "a-b--c-", 7, 7, { 325, 273, 326, 273, 273, 327, 273 }, 7, { 325, 273, 326, 273, 273, 327, 273 }, "a - b - - c -", 13 },
    { "ab12345x6", 9, 6, { 363, 361, 280, 281, 348, 282 }, 6, { 363, 361, 280, 281, 348, 282 }, "ab 123 4 5 x 6", 14 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 2, { 260, 260 }, 2, { 260, 260 }, "   ", 3 },
    { "the hello", 9, 5, { 344, 356, 260, 356, 359 }, 5, { 344, 356, 260, 356, 359 }, "t he   he llo", 13 },
    { "12\331\243\302\262x", 7, 2, { 360, 348 }, 2, { 360, 348 }, "12 x", 4 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case digits_contiguous_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const whitespace_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Whitespace\"},\"post_processor\":null,\"decoder\":null";
static const struct enc_case whitespace_enc[] = {
    { "a b  c", 6, 3, { 325, 326, 327 }, 3, { 325, 326, 327 }, "a b c", 5 },
    { " hello world ", 13, 7, { 356, 359, 347, 339, 342, 336, 328 }, 7, { 356, 359, 347, 339, 342, 336, 328 }, "he llo w o r l d", 16 },
    { "x,y. z!! w", 10, 8, { 348, 272, 349, 274, 350, 261, 261, 347 }, 8, { 348, 272, 349, 274, 350, 261, 261, 347 }, "x , y . z ! ! w", 15 },
    { "a-b--c-", 7, 7, { 325, 273, 326, 273, 273, 327, 273 }, 7, { 325, 273, 326, 273, 273, 327, 273 }, "a - b - - c -", 13 },
    { "ab12345x6", 9, 6, { 363, 361, 280, 281, 348, 282 }, 6, { 363, 361, 280, 281, 348, 282 }, "ab 123 4 5 x 6", 14 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 0, { 0 }, 0, { 0 }, "", 0 },
    { "the hello", 9, 4, { 344, 356, 356, 359 }, 4, { 344, 356, 356, 359 }, "t he he llo", 11 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case whitespace_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const whitespace_split_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"WhitespaceSplit\"},\"post_processor\":null,\"decoder\":null";
static const struct enc_case whitespace_split_enc[] = {
    { "a b  c", 6, 3, { 325, 326, 327 }, 3, { 325, 326, 327 }, "a b c", 5 },
    { " hello world ", 13, 7, { 356, 359, 347, 339, 342, 336, 328 }, 7, { 356, 359, 347, 339, 342, 336, 328 }, "he llo w o r l d", 16 },
    { "x,y. z!! w", 10, 8, { 348, 272, 349, 274, 350, 261, 261, 347 }, 8, { 348, 272, 349, 274, 350, 261, 261, 347 }, "x , y . z ! ! w", 15 },
    { "a-b--c-", 7, 7, { 325, 273, 326, 273, 273, 327, 273 }, 7, { 325, 273, 326, 273, 273, 327, 273 }, "a - b - - c -", 13 },
    { "ab12345x6", 9, 6, { 363, 361, 280, 281, 348, 282 }, 6, { 363, 361, 280, 281, 348, 282 }, "ab 123 4 5 x 6", 14 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 0, { 0 }, 0, { 0 }, "", 0 },
    { "the hello", 9, 4, { 344, 356, 356, 359 }, 4, { 344, 356, 356, 359 }, "t he he llo", 11 },
    { "a\302\240b\343\200\200c\302\205d", 11, 4, { 325, 326, 327, 328 }, 4, { 325, 326, 327, 328 }, "a b c d", 7 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case whitespace_split_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const punctuation_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Punctuation\",\"behavior\":\"Isolated\"},\"post_processor\":null,\"decoder\":null";
static const struct enc_case punctuation_enc[] = {
    { "a b  c", 6, 6, { 325, 260, 326, 260, 260, 327 }, 6, { 325, 260, 326, 260, 260, 327 }, "a   b     c", 11 },
    { " hello world ", 13, 10, { 260, 356, 359, 260, 347, 339, 342, 336, 328, 260 }, 10, { 260, 356, 359, 260, 347, 339, 342, 336, 328, 260 }, "  he llo   w o r l d  ", 22 },
    { "x,y. z!! w", 10, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, "x , y .   z ! !   w", 19 },
    { "a-b--c-", 7, 7, { 325, 273, 326, 273, 273, 327, 273 }, 7, { 325, 273, 326, 273, 273, 327, 273 }, "a - b - - c -", 13 },
    { "ab12345x6", 9, 6, { 363, 361, 280, 281, 348, 282 }, 6, { 363, 361, 280, 281, 348, 282 }, "ab 123 4 5 x 6", 14 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 2, { 260, 260 }, 2, { 260, 260 }, "   ", 3 },
    { "the hello", 9, 5, { 344, 356, 260, 356, 359 }, 5, { 344, 356, 260, 356, 359 }, "t he   he llo", 13 },
    { "a$b+c<d", 7, 7, { 325, 264, 326, 271, 327, 288, 328 }, 7, { 325, 264, 326, 271, 327, 288, 328 }, "a $ b + c < d", 13 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case punctuation_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const char_delimiter_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"CharDelimiterSplit\",\"delimiter\":\"-\"},\"post_processor\":null,\"decoder\":null";
static const struct enc_case char_delimiter_enc[] = {
    { "a b  c", 6, 6, { 325, 260, 326, 260, 260, 327 }, 6, { 325, 260, 326, 260, 260, 327 }, "a   b     c", 11 },
    { " hello world ", 13, 10, { 260, 356, 359, 260, 347, 339, 342, 336, 328, 260 }, 10, { 260, 356, 359, 260, 347, 339, 342, 336, 328, 260 }, "  he llo   w o r l d  ", 22 },
    { "x,y. z!! w", 10, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, "x , y .   z ! !   w", 19 },
    { "a-b--c-", 7, 3, { 325, 326, 327 }, 3, { 325, 326, 327 }, "a b c", 5 },
    { "ab12345x6", 9, 6, { 363, 361, 280, 281, 348, 282 }, 6, { 363, 361, 280, 281, 348, 282 }, "ab 123 4 5 x 6", 14 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 2, { 260, 260 }, 2, { 260, 260 }, "   ", 3 },
    { "the hello", 9, 5, { 344, 356, 260, 356, 359 }, 5, { 344, 356, 260, 356, 359 }, "t he   he llo", 13 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case char_delimiter_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const bert_pre_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},\"post_processor\":null,\"decoder\":null";
static const struct enc_case bert_pre_enc[] = {
    { "a b  c", 6, 3, { 325, 326, 327 }, 3, { 325, 326, 327 }, "a b c", 5 },
    { " hello world ", 13, 7, { 356, 359, 347, 339, 342, 336, 328 }, 7, { 356, 359, 347, 339, 342, 336, 328 }, "he llo w o r l d", 16 },
    { "x,y. z!! w", 10, 8, { 348, 272, 349, 274, 350, 261, 261, 347 }, 8, { 348, 272, 349, 274, 350, 261, 261, 347 }, "x , y . z ! ! w", 15 },
    { "a-b--c-", 7, 7, { 325, 273, 326, 273, 273, 327, 273 }, 7, { 325, 273, 326, 273, 273, 327, 273 }, "a - b - - c -", 13 },
    { "ab12345x6", 9, 6, { 363, 361, 280, 281, 348, 282 }, 6, { 363, 361, 280, 281, 348, 282 }, "ab 123 4 5 x 6", 14 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 0, { 0 }, 0, { 0 }, "", 0 },
    { "the hello", 9, 4, { 344, 356, 356, 359 }, 4, { 344, 356, 356, 359 }, "t he he llo", 11 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case bert_pre_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const sequence_pre_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"WhitespaceSplit\"},{\"type\":\"Digits\",\"individual_digits\":true}]},\"post_processor\":null,\"decoder\":null";
static const struct enc_case sequence_pre_enc[] = {
    { "a b  c", 6, 3, { 325, 326, 327 }, 3, { 325, 326, 327 }, "a b c", 5 },
    { " hello world ", 13, 7, { 356, 359, 347, 339, 342, 336, 328 }, 7, { 356, 359, 347, 339, 342, 336, 328 }, "he llo w o r l d", 16 },
    { "x,y. z!! w", 10, 8, { 348, 272, 349, 274, 350, 261, 261, 347 }, 8, { 348, 272, 349, 274, 350, 261, 261, 347 }, "x , y . z ! ! w", 15 },
    { "a-b--c-", 7, 7, { 325, 273, 326, 273, 273, 327, 273 }, 7, { 325, 273, 326, 273, 273, 327, 273 }, "a - b - - c -", 13 },
    { "ab12345x6", 9, 8, { 363, 277, 278, 279, 280, 281, 348, 282 }, 8, { 363, 277, 278, 279, 280, 281, 348, 282 }, "ab 1 2 3 4 5 x 6", 16 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 0, { 0 }, 0, { 0 }, "", 0 },
    { "the hello", 9, 4, { 344, 356, 356, 359 }, 4, { 344, 356, 356, 359 }, "t he he llo", 11 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case sequence_pre_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const metaspace_always_sections = "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":1,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":2,\"content\":\"</s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\342\226\201\",\"prepend_scheme\":\"always\",\"split\":true},\"post_processor\":null,\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"\342\226\201\",\"prepend_scheme\":\"always\",\"split\":true}";
static const struct enc_case metaspace_always_enc[] = {
    { "a b  c", 6, 6, { 362, 259, 326, 259, 259, 327 }, 6, { 362, 259, 326, 259, 259, 327 }, "a b  c", 6 },
    { " hello world ", 13, 10, { 259, 356, 359, 259, 347, 339, 342, 336, 328, 259 }, 10, { 259, 356, 359, 259, 347, 339, 342, 336, 328, 259 }, "hello world ", 12 },
    { "x,y. z!! w", 10, 11, { 259, 348, 272, 349, 274, 259, 350, 261, 261, 259, 347 }, 11, { 259, 348, 272, 349, 274, 259, 350, 261, 261, 259, 347 }, "x,y. z!! w", 10 },
    { "a-b--c-", 7, 7, { 362, 273, 326, 273, 273, 327, 273 }, 7, { 362, 273, 326, 273, 273, 327, 273 }, "a-b--c-", 7 },
    { "ab12345x6", 9, 7, { 362, 326, 361, 280, 281, 348, 282 }, 7, { 362, 326, 361, 280, 281, 348, 282 }, "ab12345x6", 9 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 2, { 259, 259 }, 2, { 259, 259 }, " ", 1 },
    { "the hello", 9, 4, { 357, 259, 356, 359 }, 4, { 357, 259, 356, 359 }, "the hello", 9 },
    { "<s>the hello", 12, 5, { 1, 357, 259, 356, 359 }, 5, { 1, 357, 259, 356, 359 }, "<s> the hello", 13 },
    { "the <s> hello", 13, 6, { 357, 259, 1, 259, 356, 359 }, 6, { 357, 259, 1, 259, 356, 359 }, "the <s> hello", 13 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case metaspace_always_dec[] = {
    { 4, { 259, 363, 259, 365 }, "ab er", 5, "ab er", 5 },
    { 2, { 363, 259 }, "ab ", 3, "ab ", 3 },
    { 3, { 259, 259, 263 }, " #", 2, " #", 2 },
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const metaspace_first_sections = "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":1,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":2,\"content\":\"</s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\342\226\201\",\"prepend_scheme\":\"first\",\"split\":false},\"post_processor\":null,\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"\342\226\201\",\"prepend_scheme\":\"first\",\"split\":false}";
static const struct enc_case metaspace_first_enc[] = {
    { "a b  c", 6, 5, { 362, 259, 326, 364, 327 }, 5, { 362, 259, 326, 364, 327 }, "a b  c", 6 },
    { " hello world ", 13, 10, { 259, 356, 359, 259, 347, 339, 342, 336, 328, 259 }, 10, { 259, 356, 359, 259, 347, 339, 342, 336, 328, 259 }, "hello world ", 12 },
    { "x,y. z!! w", 10, 11, { 259, 348, 272, 349, 274, 259, 350, 261, 261, 259, 347 }, 11, { 259, 348, 272, 349, 274, 259, 350, 261, 261, 259, 347 }, "x,y. z!! w", 10 },
    { "a-b--c-", 7, 7, { 362, 273, 326, 273, 273, 327, 273 }, 7, { 362, 273, 326, 273, 273, 327, 273 }, "a-b--c-", 7 },
    { "ab12345x6", 9, 7, { 362, 326, 361, 280, 281, 348, 282 }, 7, { 362, 326, 361, 280, 281, 348, 282 }, "ab12345x6", 9 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 1, { 364 }, 1, { 364 }, "", 0 },
    { "the hello", 9, 4, { 357, 259, 356, 359 }, 4, { 357, 259, 356, 359 }, "the hello", 9 },
    { "<s>the hello", 12, 6, { 1, 344, 356, 259, 356, 359 }, 6, { 1, 344, 356, 259, 356, 359 }, "<s>the hello", 12 },
    { "the <s> hello", 13, 6, { 357, 259, 1, 259, 356, 359 }, 6, { 357, 259, 1, 259, 356, 359 }, "the <s> hello", 13 },
    { "<s> the", 7, 2, { 1, 357 }, 2, { 1, 357 }, "<s> the", 7 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case metaspace_first_dec[] = {
    { 4, { 259, 363, 259, 365 }, "ab er", 5, "ab er", 5 },
    { 1, { 363 }, "ab", 2, "ab", 2 },
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const metaspace_never_sections = "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":1,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":2,\"content\":\"</s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\342\226\201\",\"prepend_scheme\":\"never\",\"split\":true},\"post_processor\":null,\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"\342\226\201\",\"prepend_scheme\":\"never\",\"split\":true}";
static const struct enc_case metaspace_never_enc[] = {
    { "a b  c", 6, 6, { 325, 259, 326, 259, 259, 327 }, 6, { 325, 259, 326, 259, 259, 327 }, "a b  c", 6 },
    { " hello world ", 13, 10, { 259, 356, 359, 259, 347, 339, 342, 336, 328, 259 }, 10, { 259, 356, 359, 259, 347, 339, 342, 336, 328, 259 }, " hello world ", 13 },
    { "x,y. z!! w", 10, 10, { 348, 272, 349, 274, 259, 350, 261, 261, 259, 347 }, 10, { 348, 272, 349, 274, 259, 350, 261, 261, 259, 347 }, "x,y. z!! w", 10 },
    { "a-b--c-", 7, 7, { 325, 273, 326, 273, 273, 327, 273 }, 7, { 325, 273, 326, 273, 273, 327, 273 }, "a-b--c-", 7 },
    { "ab12345x6", 9, 6, { 363, 361, 280, 281, 348, 282 }, 6, { 363, 361, 280, 281, 348, 282 }, "ab12345x6", 9 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 2, { 259, 259 }, 2, { 259, 259 }, "  ", 2 },
    { "the hello", 9, 5, { 344, 356, 259, 356, 359 }, 5, { 344, 356, 259, 356, 359 }, "the hello", 9 },
    { "<s>the hello", 12, 6, { 1, 344, 356, 259, 356, 359 }, 6, { 1, 344, 356, 259, 356, 359 }, "<s>the hello", 12 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case metaspace_never_dec[] = {
    { 4, { 259, 363, 259, 365 }, " ab er", 6, " ab er", 6 },
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const metaspace_legacy_add_prefix_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\342\226\201\",\"add_prefix_space\":true},\"post_processor\":null,\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"\342\226\201\",\"add_prefix_space\":true}";
static const struct enc_case metaspace_legacy_add_prefix_enc[] = {
    { "a b  c", 6, 6, { 362, 259, 326, 259, 259, 327 }, 6, { 362, 259, 326, 259, 259, 327 }, "a b  c", 6 },
    { " hello world ", 13, 10, { 259, 356, 359, 259, 347, 339, 342, 336, 328, 259 }, 10, { 259, 356, 359, 259, 347, 339, 342, 336, 328, 259 }, "hello world ", 12 },
    { "x,y. z!! w", 10, 11, { 259, 348, 272, 349, 274, 259, 350, 261, 261, 259, 347 }, 11, { 259, 348, 272, 349, 274, 259, 350, 261, 261, 259, 347 }, "x,y. z!! w", 10 },
    { "a-b--c-", 7, 7, { 362, 273, 326, 273, 273, 327, 273 }, 7, { 362, 273, 326, 273, 273, 327, 273 }, "a-b--c-", 7 },
    { "ab12345x6", 9, 7, { 362, 326, 361, 280, 281, 348, 282 }, 7, { 362, 326, 361, 280, 281, 348, 282 }, "ab12345x6", 9 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 2, { 259, 259 }, 2, { 259, 259 }, " ", 1 },
    { "the hello", 9, 4, { 357, 259, 356, 359 }, 4, { 357, 259, 356, 359 }, "the hello", 9 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case metaspace_legacy_add_prefix_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const normalizer_replace_regex_sections = "\"added_tokens\":[],\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" +\"},\"content\":\"\342\226\201\"},{\"type\":\"Prepend\",\"prepend\":\"\342\226\201\"}]},\"pre_tokenizer\":null,\"post_processor\":null,\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\342\226\201\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}";
static const struct enc_case normalizer_replace_regex_enc[] = {
    { "a b  c", 6, 5, { 362, 259, 326, 259, 327 }, 5, { 362, 259, 326, 259, 327 }, "a b c", 5 },
    { " hello world ", 13, 10, { 364, 356, 359, 259, 347, 339, 342, 336, 328, 259 }, 10, { 364, 356, 359, 259, 347, 339, 342, 336, 328, 259 }, " hello world ", 13 },
    { "x,y. z!! w", 10, 11, { 259, 348, 272, 349, 274, 259, 350, 261, 261, 259, 347 }, 11, { 259, 348, 272, 349, 274, 259, 350, 261, 261, 259, 347 }, "x,y. z!! w", 10 },
    { "a-b--c-", 7, 7, { 362, 273, 326, 273, 273, 327, 273 }, 7, { 362, 273, 326, 273, 273, 327, 273 }, "a-b--c-", 7 },
    { "ab12345x6", 9, 7, { 362, 326, 361, 280, 281, 348, 282 }, 7, { 362, 326, 361, 280, 281, 348, 282 }, "ab12345x6", 9 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 1, { 364 }, 1, { 364 }, " ", 1 },
    { "the hello", 9, 4, { 357, 259, 356, 359 }, 4, { 357, 259, 356, 359 }, "the hello", 9 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case normalizer_replace_regex_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const normalizer_strip_sections = "\"added_tokens\":[],\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Strip\",\"strip_left\":true,\"strip_right\":true},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\342\226\201\"}]},\"pre_tokenizer\":null,\"post_processor\":null,\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\342\226\201\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}";
static const struct enc_case normalizer_strip_enc[] = {
    { "a b  c", 6, 5, { 325, 259, 326, 364, 327 }, 5, { 325, 259, 326, 364, 327 }, "a b  c", 6 },
    { " hello world ", 13, 8, { 356, 359, 259, 347, 339, 342, 336, 328 }, 8, { 356, 359, 259, 347, 339, 342, 336, 328 }, "hello world", 11 },
    { "x,y. z!! w", 10, 10, { 348, 272, 349, 274, 259, 350, 261, 261, 259, 347 }, 10, { 348, 272, 349, 274, 259, 350, 261, 261, 259, 347 }, "x,y. z!! w", 10 },
    { "a-b--c-", 7, 7, { 325, 273, 326, 273, 273, 327, 273 }, 7, { 325, 273, 326, 273, 273, 327, 273 }, "a-b--c-", 7 },
    { "ab12345x6", 9, 6, { 363, 361, 280, 281, 348, 282 }, 6, { 363, 361, 280, 281, 348, 282 }, "ab12345x6", 9 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 0, { 0 }, 0, { 0 }, "", 0 },
    { "the hello", 9, 5, { 344, 356, 259, 356, 359 }, 5, { 344, 356, 259, 356, 359 }, "the hello", 9 },
    { "\343\200\200 a \302\205", 8, 1, { 325 }, 1, { 325 }, "a", 1 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case normalizer_strip_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const normalizer_strip_left_sections = "\"added_tokens\":[],\"normalizer\":{\"type\":\"Strip\",\"strip_left\":true,\"strip_right\":false},\"pre_tokenizer\":null,\"post_processor\":null,\"decoder\":null";
static const struct enc_case normalizer_strip_left_enc[] = {
    { "a b  c", 6, 6, { 325, 260, 326, 260, 260, 327 }, 6, { 325, 260, 326, 260, 260, 327 }, "a   b     c", 11 },
    { " hello world ", 13, 9, { 356, 359, 260, 347, 339, 342, 336, 328, 260 }, 9, { 356, 359, 260, 347, 339, 342, 336, 328, 260 }, "he llo   w o r l d  ", 20 },
    { "x,y. z!! w", 10, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, 10, { 348, 272, 349, 274, 260, 350, 261, 261, 260, 347 }, "x , y .   z ! !   w", 19 },
    { "a-b--c-", 7, 7, { 325, 273, 326, 273, 273, 327, 273 }, 7, { 325, 273, 326, 273, 273, 327, 273 }, "a - b - - c -", 13 },
    { "ab12345x6", 9, 6, { 363, 361, 280, 281, 348, 282 }, 6, { 363, 361, 280, 281, 348, 282 }, "ab 123 4 5 x 6", 14 },
    { "", 0, 0, { 0 }, 0, { 0 }, "", 0 },
    { "  ", 2, 0, { 0 }, 0, { 0 }, "", 0 },
    { "the hello", 9, 5, { 344, 356, 260, 356, 359 }, 5, { 344, 356, 260, 356, 359 }, "t he   he llo", 13 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case normalizer_strip_left_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const sp_byte_fallback_sections = "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":1,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":2,\"content\":\"</s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\342\226\201\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\342\226\201\"}]},\"pre_tokenizer\":null,\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"</s>\",\"type_id\":0}}],\"pair\":[{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]},\"</s>\":{\"id\":\"</s>\",\"ids\":[2],\"tokens\":[\"</s>\"]}}},\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\342\226\201\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}";
static const struct enc_case sp_byte_fallback_enc[] = {
    { "a b  c", 6, 5, { 362, 259, 326, 364, 327 }, 7, { 1, 362, 259, 326, 364, 327, 2 }, "a b  c", 6 },
    { " hello world ", 13, 10, { 364, 356, 359, 259, 347, 339, 342, 336, 328, 259 }, 12, { 1, 364, 356, 359, 259, 347, 339, 342, 336, 328, 259, 2 }, " hello world ", 13 },
    { "x,y. z!! w", 10, 11, { 259, 348, 272, 349, 274, 259, 350, 261, 261, 259, 347 }, 13, { 1, 259, 348, 272, 349, 274, 259, 350, 261, 261, 259, 347, 2 }, "x,y. z!! w", 10 },
    { "a-b--c-", 7, 7, { 362, 273, 326, 273, 273, 327, 273 }, 9, { 1, 362, 273, 326, 273, 273, 327, 273, 2 }, "a-b--c-", 7 },
    { "ab12345x6", 9, 7, { 362, 326, 361, 280, 281, 348, 282 }, 9, { 1, 362, 326, 361, 280, 281, 348, 282, 2 }, "ab12345x6", 9 },
    { "", 0, 0, { 0 }, 2, { 1, 2 }, "", 0 },
    { "  ", 2, 2, { 364, 259 }, 4, { 1, 364, 259, 2 }, "  ", 2 },
    { "the hello", 9, 4, { 357, 259, 356, 359 }, 6, { 1, 357, 259, 356, 359, 2 }, "the hello", 9 },
    { "\303\251\344\270\255 x", 7, 8, { 259, 198, 172, 231, 187, 176, 259, 348 }, 10, { 1, 259, 198, 172, 231, 187, 176, 259, 348, 2 }, "\303\251\344\270\255 x", 7 },
    { "\177\360\237\230\200", 5, 6, { 259, 130, 243, 162, 155, 131 }, 8, { 1, 259, 130, 243, 162, 155, 131, 2 }, "\177\360\237\230\200", 5 },
    { "<s>he</s>", 9, 4, { 1, 259, 356, 2 }, 6, { 1, 1, 259, 356, 2, 2 }, "<s> he</s>", 10 },
    { "<unk>", 5, 1, { 0 }, 3, { 1, 0, 2 }, "<unk>", 5 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case sp_byte_fallback_dec[] = {
    { 4, { 231, 187, 176, 363 }, "\344\270\255ab", 5, "\344\270\255ab", 5 },
    { 3, { 231, 187, 363 }, "\357\277\275\357\277\275ab", 8, "\357\277\275\357\277\275ab", 8 },
    { 2, { 231, 187 }, "\357\277\275\357\277\275", 6, "\357\277\275\357\277\275", 6 },
    { 3, { 68, 131, 69 }, "\357\277\275\357\277\275\357\277\275", 9, "\357\277\275\357\277\275\357\277\275", 9 },
    { 4, { 259, 259, 363, 259 }, " ab ", 4, " ab ", 4 },
    { 1, { 259 }, "", 0, "", 0 },
    { 3, { 1, 363, 2 }, "<s>ab</s>", 9, "ab", 2 },
    { 1, { 258 }, "\357\277\275", 3, "\357\277\275", 3 },
    { 2, { 259, 68 }, "A", 1, "A", 1 },
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const sp_unk_fused_sections = "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":1,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":2,\"content\":\"</s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\342\226\201\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\342\226\201\"}]},\"pre_tokenizer\":null,\"post_processor\":null,\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\342\226\201\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}";
static const struct enc_case sp_unk_fused_enc[] = {
    { "\303\251\303\251 a", 6, 3, { 259, 0, 362 }, 3, { 259, 0, 362 }, "<unk> a", 7 },
    { "a\303\251b\344\270\255\344\270\255c", 11, 5, { 362, 0, 326, 0, 327 }, 5, { 362, 0, 326, 0, 327 }, "a<unk>b<unk>c", 13 },
    { "\303\251", 2, 2, { 259, 0 }, 2, { 259, 0 }, "<unk>", 5 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case sp_unk_fused_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const sp_unk_not_fused_sections = "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":1,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":2,\"content\":\"</s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\342\226\201\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\342\226\201\"}]},\"pre_tokenizer\":null,\"post_processor\":null,\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\342\226\201\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}";
static const struct enc_case sp_unk_not_fused_enc[] = {
    { "\303\251\303\251 a", 6, 4, { 259, 0, 0, 362 }, 4, { 259, 0, 0, 362 }, "<unk><unk> a", 12 },
    { "a\303\251b\344\270\255\344\270\255c", 11, 6, { 362, 0, 326, 0, 0, 327 }, 6, { 362, 0, 326, 0, 0, 327 }, "a<unk>b<unk><unk>c", 18 },
    { "\303\251", 2, 2, { 259, 0 }, 2, { 259, 0 }, "<unk>", 5 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case sp_unk_not_fused_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const no_unk_drops_sections = "\"added_tokens\":[],\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\342\226\201\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\342\226\201\"}]},\"pre_tokenizer\":null,\"post_processor\":null,\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\342\226\201\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}";
static const struct enc_case no_unk_drops_enc[] = {
    { "\303\251\303\251 a", 6, 2, { 259, 362 }, 2, { 259, 362 }, " a", 2 },
    { "a\303\251b", 4, 2, { 362, 326 }, 2, { 362, 326 }, "ab", 2 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case no_unk_drops_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const decoder_strip_both_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":null,\"post_processor\":null,\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\342\226\201\"},\"content\":\" \"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":2,\"stop\":2}]}";
static const struct enc_case decoder_strip_both_enc[] = {
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case decoder_strip_both_dec[] = {
    { 7, { 259, 259, 259, 263, 259, 259, 259 }, " # ", 3, " # ", 3 },
    { 3, { 263, 259, 263 }, "# #", 3, "# #", 3 },
    { 3, { 364, 325, 364 }, "a", 1, "a", 1 },
    { 3, { 364, 364, 325 }, "  a", 3, "  a", 3 },
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const decoder_strip_per_token_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":null,\"post_processor\":null,\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Strip\",\"content\":\"\342\226\201\",\"start\":1,\"stop\":1},{\"type\":\"Replace\",\"pattern\":{\"String\":\"\342\226\201\"},\"content\":\"_\"}]}";
static const struct enc_case decoder_strip_per_token_enc[] = {
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case decoder_strip_per_token_dec[] = {
    { 5, { 355, 364, 362, 325, 367 }, "taahe", 5, "taahe", 5 },
    { 2, { 371, 355 }, "t", 1, "t", 1 },
    { 2, { 325, 366 }, "ah", 2, "ah", 2 },
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const decoder_replace_multichar_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":null,\"post_processor\":null,\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Fuse\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\"ab\"},\"content\":\"<AB>\"}]}";
static const struct enc_case decoder_replace_multichar_enc[] = {
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case decoder_replace_multichar_dec[] = {
    { 2, { 325, 326 }, "<AB>", 4, "<AB>", 4 },
    { 1, { 325 }, "a", 1, "a", 1 },
    { 4, { 369, 325, 326, 325 }, "<AB>a", 5, "<AB>a", 5 },
    { 3, { 325, 325, 326 }, "a<AB>", 5, "a<AB>", 5 },
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const no_decoder_sections = "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":1,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":2,\"content\":\"</s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],\"normalizer\":null,\"pre_tokenizer\":null,\"post_processor\":null,\"decoder\":null";
static const struct enc_case no_decoder_enc[] = {
    { "ab c", 4, 3, { 363, 260, 327 }, 3, { 363, 260, 327 }, "ab   c", 6 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case no_decoder_dec[] = {
    { 4, { 1, 325, 263, 2 }, "<s> a # </s>", 12, "a #", 3 },
    { 0, { 0 }, "", 0, "", 0 },
    { 1, { 99999 }, "", 0, "", 0 },
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const added_strip_flags_sections = "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":1,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":2,\"content\":\"</s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":400,\"content\":\"<mask>\",\"single_word\":false,\"lstrip\":true,\"rstrip\":true,\"normalized\":false,\"special\":true},{\"id\":401,\"content\":\"[X]\",\"single_word\":true,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":false},{\"id\":402,\"content\":\"yz\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":true,\"special\":false},{\"id\":403,\"content\":\"xq\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":true,\"special\":false},{\"id\":404,\"content\":\"<l>\",\"single_word\":false,\"lstrip\":true,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":405,\"content\":\"<r>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":true,\"normalized\":false,\"special\":true}],\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\"x\"},\"content\":\"y\"},\"pre_tokenizer\":null,\"post_processor\":null,\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\342\226\201\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}";
static const struct enc_case added_strip_flags_enc[] = {
    { "a <mask> b", 10, 3, { 325, 368, 326 }, 3, { 325, 368, 326 }, "a<mask>b", 8 },
    { "a<mask>b", 8, 3, { 325, 368, 326 }, 3, { 325, 368, 326 }, "a<mask>b", 8 },
    { "  <mask>  ", 10, 1, { 368 }, 1, { 368 }, "<mask>", 6 },
    { "[X] a[X] [X]b ([X])", 19, 15, { 369, 260, 325, 319, 316, 321, 260, 319, 316, 321, 326, 260, 268, 369, 269 }, 15, { 369, 260, 325, 319, 316, 321, 260, 319, 316, 321, 326, 260, 268, 369, 269 }, "[X] a[X] [X]b ([X])", 19 },
    { "xz xq yq", 8, 5, { 370, 260, 371, 260, 371 }, 5, { 370, 260, 371, 260, 371 }, "yz yq yq", 8 },
    { "a <l> b <r> c", 13, 7, { 325, 372, 260, 326, 260, 373, 327 }, 7, { 325, 372, 260, 326, 260, 373, 327 }, "a<l> b <r>c", 11 },
    { "<l><r>", 6, 2, { 372, 373 }, 2, { 372, 373 }, "<l><r>", 6 },
    { "<mask><mask>", 12, 2, { 368, 368 }, 2, { 368, 368 }, "<mask><mask>", 12 },
    { "a  <l>", 6, 2, { 325, 372 }, 2, { 325, 372 }, "a<l>", 4 },
    { "e\314\201[X] x", 8, 6, { 329, 319, 316, 321, 260, 349 }, 6, { 329, 319, 316, 321, 260, 349 }, "e[X] y", 6 },
    { "\302\262[X]", 5, 1, { 369 }, 1, { 369 }, "[X]", 3 },
    { "_[X]", 4, 4, { 323, 319, 316, 321 }, 4, { 323, 319, 316, 321 }, "_[X]", 4 },
    { "\331\243[X]", 5, 3, { 319, 316, 321 }, 3, { 319, 316, 321 }, "[X]", 3 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case added_strip_flags_dec[] = {
    { 4, { 400, 401, 402, 325 }, "a", 1, "a", 1 },
    { 4, { 368, 1, 371, 325 }, "<mask><s>yqa", 12, "yqa", 3 },
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const post_roberta_sections = "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":1,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":2,\"content\":\"</s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],\"normalizer\":null,\"pre_tokenizer\":null,\"post_processor\":{\"type\":\"RobertaProcessing\",\"sep\":[\"</s>\",2],\"cls\":[\"<s>\",1],\"trim_offsets\":true,\"add_prefix_space\":true},\"decoder\":null";
static const struct enc_case post_roberta_enc[] = {
    { "ab", 2, 1, { 363 }, 3, { 1, 363, 2 }, "ab", 2 },
    { "", 0, 0, { 0 }, 2, { 1, 2 }, "", 0 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case post_roberta_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const post_bert_sections = "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":1,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":2,\"content\":\"</s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],\"normalizer\":null,\"pre_tokenizer\":null,\"post_processor\":{\"type\":\"BertProcessing\",\"sep\":[\"</s>\",2],\"cls\":[\"<s>\",1]},\"decoder\":null";
static const struct enc_case post_bert_enc[] = {
    { "ab", 2, 1, { 363 }, 3, { 1, 363, 2 }, "ab", 2 },
    { "", 0, 0, { 0 }, 2, { 1, 2 }, "", 0 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case post_bert_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const post_sequence_sections = "\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":1,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":2,\"content\":\"</s>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],\"normalizer\":null,\"pre_tokenizer\":null,\"post_processor\":{\"type\":\"Sequence\",\"processors\":[{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":false,\"use_regex\":true},{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"</s>\",\"type_id\":0}}],\"pair\":[{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]},\"</s>\":{\"id\":\"</s>\",\"ids\":[2],\"tokens\":[\"</s>\"]}}}]},\"decoder\":null";
static const struct enc_case post_sequence_enc[] = {
    { "ab", 2, 1, { 363 }, 3, { 1, 363, 2 }, "ab", 2 },
    { "<s>ab", 5, 2, { 1, 363 }, 4, { 1, 1, 363, 2 }, "<s> ab", 6 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case post_sequence_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const byte_level_prefix_sections = "\"added_tokens\":[{\"id\":0,\"content\":\"<|endoftext|>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true},\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true}";
static const struct enc_case byte_level_prefix_enc[] = {
    { "the hello", 9, 4, { 261, 35, 260, 263 }, 4, { 261, 35, 260, 263 }, " the hello", 10 },
    { " the", 4, 1, { 261 }, 1, { 261 }, " the", 4 },
    { "he's 123  x\012\012", 13, 10, { 35, 260, 269, 35, 265, 35, 35, 123, 13, 13 }, 10, { 35, 260, 269, 35, 265, 35, 35, 123, 13, 13 }, " he's 123  x\012\012", 14 },
    { "<|endoftext|>the", 16, 2, { 0, 261 }, 2, { 0, 261 }, "<|endoftext|> the", 17 },
    { "\303\251\344\270\255\302\205\000", 8, 9, { 35, 198, 172, 231, 187, 176, 197, 136, 3 }, 9, { 35, 198, 172, 231, 187, 176, 197, 136, 3 }, " \303\251\344\270\255\302\205\000", 9 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case byte_level_prefix_dec[] = {
    { 3, { 231, 187, 263 }, "\357\277\275llo", 6, "\357\277\275llo", 6 },
    { 1, { 231 }, "\357\277\275", 3, "\357\277\275", 3 },
    { 2, { 258, 68 }, "\357\277\275A", 4, "\357\277\275A", 4 },
    { 2, { 0, 231 }, "<|endoftext|>\357\277\275", 16, "\357\277\275", 3 },
    { 3, { 198, 0, 172 }, "\357\277\275<|endoftext|>\357\277\275", 19, "\303\251", 2 },
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const byte_level_no_regex_sections = "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":false},\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true}";
static const struct enc_case byte_level_no_regex_enc[] = {
    { "the hello", 9, 5, { 119, 260, 35, 260, 263 }, 5, { 119, 260, 35, 260, 263 }, "the hello", 9 },
    { " the", 4, 1, { 261 }, 1, { 261 }, " the", 4 },
    { "he's 123  x\012\012", 13, 8, { 260, 269, 35, 265, 266, 123, 13, 13 }, 8, { 260, 269, 35, 265, 266, 123, 13, 13 }, "he's 123  x\012\012", 13 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case byte_level_no_regex_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const char *const byte_level_normalizer_sections = "\"added_tokens\":[],\"normalizer\":{\"type\":\"ByteLevel\"},\"pre_tokenizer\":null,\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true}";
static const struct enc_case byte_level_normalizer_enc[] = {
    { "the hello", 9, 5, { 119, 260, 35, 260, 263 }, 5, { 119, 260, 35, 260, 263 }, "the hello", 9 },
    { "\303\251", 2, 2, { 198, 172 }, 2, { 198, 172 }, "\303\251", 2 },
    { NULL, 0, 0, {0}, 0, {0}, NULL, 0 }
};
static const struct dec_case byte_level_normalizer_dec[] = {
    { -1, {0}, NULL, 0, NULL, 0 }
};
static const struct part_config part_configs[] = {
    { "split_removed", BASE_SP, MODEL_PLAIN, &split_removed_sections, split_removed_enc, split_removed_dec },
    { "split_isolated", BASE_SP, MODEL_PLAIN, &split_isolated_sections, split_isolated_enc, split_isolated_dec },
    { "split_merged_previous", BASE_SP, MODEL_PLAIN, &split_merged_previous_sections, split_merged_previous_enc, split_merged_previous_dec },
    { "split_merged_next", BASE_SP, MODEL_PLAIN, &split_merged_next_sections, split_merged_next_enc, split_merged_next_dec },
    { "split_contiguous", BASE_SP, MODEL_PLAIN, &split_contiguous_sections, split_contiguous_enc, split_contiguous_dec },
    { "split_invert_removed", BASE_SP, MODEL_PLAIN, &split_invert_removed_sections, split_invert_removed_enc, split_invert_removed_dec },
    { "split_invert_isolated", BASE_SP, MODEL_PLAIN, &split_invert_isolated_sections, split_invert_isolated_enc, split_invert_isolated_dec },
    { "split_empty_matches", BASE_SP, MODEL_PLAIN, &split_empty_matches_sections, split_empty_matches_enc, split_empty_matches_dec },
    { "digits_individual", BASE_SP, MODEL_PLAIN, &digits_individual_sections, digits_individual_enc, digits_individual_dec },
    { "digits_contiguous", BASE_SP, MODEL_PLAIN, &digits_contiguous_sections, digits_contiguous_enc, digits_contiguous_dec },
    { "whitespace", BASE_SP, MODEL_PLAIN, &whitespace_sections, whitespace_enc, whitespace_dec },
    { "whitespace_split", BASE_SP, MODEL_PLAIN, &whitespace_split_sections, whitespace_split_enc, whitespace_split_dec },
    { "punctuation", BASE_SP, MODEL_PLAIN, &punctuation_sections, punctuation_enc, punctuation_dec },
    { "char_delimiter", BASE_SP, MODEL_PLAIN, &char_delimiter_sections, char_delimiter_enc, char_delimiter_dec },
    { "bert_pre", BASE_SP, MODEL_PLAIN, &bert_pre_sections, bert_pre_enc, bert_pre_dec },
    { "sequence_pre", BASE_SP, MODEL_PLAIN, &sequence_pre_sections, sequence_pre_enc, sequence_pre_dec },
    { "metaspace_always", BASE_SP, MODEL_PLAIN, &metaspace_always_sections, metaspace_always_enc, metaspace_always_dec },
    { "metaspace_first", BASE_SP, MODEL_PLAIN, &metaspace_first_sections, metaspace_first_enc, metaspace_first_dec },
    { "metaspace_never", BASE_SP, MODEL_PLAIN, &metaspace_never_sections, metaspace_never_enc, metaspace_never_dec },
    { "metaspace_legacy_add_prefix", BASE_SP, MODEL_PLAIN, &metaspace_legacy_add_prefix_sections, metaspace_legacy_add_prefix_enc, metaspace_legacy_add_prefix_dec },
    { "normalizer_replace_regex", BASE_SP, MODEL_PLAIN, &normalizer_replace_regex_sections, normalizer_replace_regex_enc, normalizer_replace_regex_dec },
    { "normalizer_strip", BASE_SP, MODEL_PLAIN, &normalizer_strip_sections, normalizer_strip_enc, normalizer_strip_dec },
    { "normalizer_strip_left", BASE_SP, MODEL_PLAIN, &normalizer_strip_left_sections, normalizer_strip_left_enc, normalizer_strip_left_dec },
    { "sp_byte_fallback", BASE_SP, MODEL_FALLBACK, &sp_byte_fallback_sections, sp_byte_fallback_enc, sp_byte_fallback_dec },
    { "sp_unk_fused", BASE_SP, MODEL_UNK_FUSE, &sp_unk_fused_sections, sp_unk_fused_enc, sp_unk_fused_dec },
    { "sp_unk_not_fused", BASE_SP, MODEL_UNK_NOFUSE, &sp_unk_not_fused_sections, sp_unk_not_fused_enc, sp_unk_not_fused_dec },
    { "no_unk_drops", BASE_SP, MODEL_PLAIN, &no_unk_drops_sections, no_unk_drops_enc, no_unk_drops_dec },
    { "decoder_strip_both", BASE_SP, MODEL_PLAIN, &decoder_strip_both_sections, decoder_strip_both_enc, decoder_strip_both_dec },
    { "decoder_strip_per_token", BASE_SP, MODEL_PLAIN, &decoder_strip_per_token_sections, decoder_strip_per_token_enc, decoder_strip_per_token_dec },
    { "decoder_replace_multichar", BASE_SP, MODEL_PLAIN, &decoder_replace_multichar_sections, decoder_replace_multichar_enc, decoder_replace_multichar_dec },
    { "no_decoder", BASE_SP, MODEL_PLAIN, &no_decoder_sections, no_decoder_enc, no_decoder_dec },
    { "added_strip_flags", BASE_SP, MODEL_PLAIN, &added_strip_flags_sections, added_strip_flags_enc, added_strip_flags_dec },
    { "post_roberta", BASE_SP, MODEL_PLAIN, &post_roberta_sections, post_roberta_enc, post_roberta_dec },
    { "post_bert", BASE_SP, MODEL_PLAIN, &post_bert_sections, post_bert_enc, post_bert_dec },
    { "post_sequence", BASE_SP, MODEL_PLAIN, &post_sequence_sections, post_sequence_enc, post_sequence_dec },
    { "byte_level_prefix", BASE_BL, MODEL_PLAIN, &byte_level_prefix_sections, byte_level_prefix_enc, byte_level_prefix_dec },
    { "byte_level_no_regex", BASE_BL, MODEL_PLAIN, &byte_level_no_regex_sections, byte_level_no_regex_enc, byte_level_no_regex_dec },
    { "byte_level_normalizer", BASE_BL, MODEL_PLAIN, &byte_level_normalizer_sections, byte_level_normalizer_enc, byte_level_normalizer_dec },
};

/* ---- checks ---- */

/* Strict UTF-8 check: streaming must never hand out half a character. */
static int valid_utf8(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        int len = p[i] < 0x80 ? 1 : p[i] >= 0xC2 && p[i] <= 0xDF ? 2 : p[i] >= 0xE0 && p[i] <= 0xEF ? 3
                : p[i] >= 0xF0 && p[i] <= 0xF4 ? 4 : 0;
        if (!len || i + (size_t)len > n) return 0;
        for (int k = 1; k < len; k++)
            if ((p[i + k] & 0xC0) != 0x80) return 0;
        i += (size_t)len;
    }
    return 1;
}

static void show(const char *what, const char *s, size_t n) {
    printf("  %s: \"", what);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\') printf("\\x%02x", c);
        else putchar(c);
    }
    printf("\" (%zu bytes)\n", n);
}

/* Full decode and one-id-at-a-time decode both give want. */
static int decodes_to(const struct tokenizer *t, const int *ids, int n, int skip, const char *want, size_t want_len) {
    size_t len;
    char *full = tokenizer_decode_n(t, ids, n, skip, &len);
    ck_assert_msg(full != NULL, "%s", dam_last_error());
    int ok = len == want_len && !memcmp(full, want, len);
    if (!ok) { show("decoded", full, len); show("wanted ", want, want_len); }
    free(full);

    struct detokenizer *d = detokenizer_new_opts(t, skip);
    ck_assert_ptr_nonnull(d);
    char acc[1024];
    size_t acc_len = 0;
    for (int i = 0; i <= n; i++) {
        size_t pl;
        const char *piece = i < n ? detokenizer_push_n(d, ids[i], &pl) : detokenizer_flush_n(d, &pl);
        ck_assert_ptr_nonnull(piece);
        ck_assert_msg(valid_utf8(piece, pl), "streamed piece is not whole UTF-8");
        ck_assert_uint_lt(acc_len + pl, sizeof acc);
        memcpy(acc + acc_len, piece, pl);
        acc_len += pl;
    }
    detokenizer_free(d);
    if (acc_len != want_len || memcmp(acc, want, acc_len)) {
        show("streamed", acc, acc_len);
        show("wanted  ", want, want_len);
        ok = 0;
    }
    return ok;
}

static int ids_equal(const char *what, const char *text, const int *got, int n, const int *want, int n_want) {
    if (n == n_want && (n == 0 || !memcmp(got, want, (size_t)n * sizeof *got))) return 1;
    printf("%s of \"%s\":\n  got ", what, text);
    for (int i = 0; i < n; i++) printf(" %d", got[i]);
    printf("\n  want");
    for (int i = 0; i < n_want; i++) printf(" %d", want[i]);
    printf("\n");
    return 0;
}

START_TEST(part_matches_reference) {
    const struct part_config *c = &part_configs[_i];
    char *json = build_json(c->base, c->model, *c->sections);
    struct tokenizer *t = load_json(json);
    free(json);
    ck_assert_msg(t != NULL, "%s: %s", c->name, dam_last_error());
    int failures = 0;
    for (const struct enc_case *e = c->enc; e->text; e++) {
        int *ids, n, *ids_sp, n_sp;
        ck_assert_msg(tokenizer_encode(t, e->text, e->text_len, 0, &ids, &n) == 0, "%s", dam_last_error());
        ck_assert_msg(tokenizer_encode(t, e->text, e->text_len, 1, &ids_sp, &n_sp) == 0, "%s", dam_last_error());
        failures += !ids_equal("ids", e->text, ids, n, e->ids, e->n_ids);
        failures += !ids_equal("ids_with_special", e->text, ids_sp, n_sp, e->ids_special, e->n_special);
        failures += !decodes_to(t, e->ids, e->n_ids, 0, e->decoded, e->decoded_len);
        free(ids);
        free(ids_sp);
    }
    for (const struct dec_case *dc = c->dec; dc->n >= 0; dc++) {
        failures += !decodes_to(t, dc->ids, dc->n, 0, dc->text, dc->text_len);
        failures += !decodes_to(t, dc->ids, dc->n, 1, dc->skip, dc->skip_len);
    }
    tokenizer_free(t);
    ck_assert_msg(failures == 0, "%s: %d mismatches", c->name, failures);
}
END_TEST

/* ---- refusals: a clear error naming what is not supported ---- */

#define SECTIONS(norm, pre, post, dec) \
    "\"added_tokens\":[],\"normalizer\":" norm ",\"pre_tokenizer\":" pre ",\"post_processor\":" post ",\"decoder\":" dec

static void expect_refused(const char *json, const char *message) {
    struct tokenizer *t = load_json(json);
    ck_assert_msg(t == NULL, "loaded, wanted \"%s\"", message);
    ck_assert_msg(strstr(dam_last_error(), message) != NULL, "error \"%s\" lacks \"%s\"", dam_last_error(), message);
}

static void expect_sections_refused(const char *sections, const char *message) {
    char *json = build_json(BASE_SP, MODEL_PLAIN, sections);
    expect_refused(json, message);
    free(json);
}

START_TEST(unsupported_parts_are_named) {
    expect_sections_refused(SECTIONS("{\"type\":\"NFC\"}", "null", "null", "null"), "unsupported normalizer NFC");
    expect_sections_refused(SECTIONS("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Lowercase\"}]}", "null", "null", "null"),
                            "unsupported normalizer Lowercase");
    expect_sections_refused(SECTIONS("null", "{\"type\":\"UnicodeScripts\"}", "null", "null"), "unsupported pre_tokenizer UnicodeScripts");
    expect_sections_refused(SECTIONS("null", "{\"type\":\"Split\",\"pattern\":{\"String\":\"x\"},\"behavior\":\"Sideways\",\"invert\":false}", "null", "null"),
                            "unsupported split behavior Sideways");
    expect_sections_refused(SECTIONS("null", "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},\"behavior\":\"Isolated\",\"invert\":false}", "null", "null"),
                            "bad regex");
    expect_sections_refused(SECTIONS("null", "null", "{\"type\":\"Custom\"}", "null"), "unsupported post_processor Custom");
    expect_sections_refused(SECTIONS("null", "null", "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":"
                                     "{\"id\":\"<x>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
                                     "\"special_tokens\":{\"<x>\":{\"id\":\"<x>\",\"ids\":[5000],\"tokens\":[\"<x>\"]}}}", "null"),
                            "post_processor token id 5000 is not in the vocabulary");
    expect_sections_refused(SECTIONS("null", "null", "{\"type\":\"RobertaProcessing\",\"sep\":[\"</s>\",-1],\"cls\":[\"<s>\",1]}", "null"),
                            "RobertaProcessing needs cls and sep");
    expect_sections_refused(SECTIONS("null", "null", "null", "{\"type\":\"WordPiece\",\"prefix\":\"##\"}"), "unsupported decoder WordPiece");
    expect_sections_refused(SECTIONS("null", "null", "null", "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"a\"},\"content\":\"b\"}"),
                            "unsupported decoder Replace with a Regex pattern");
    expect_sections_refused(SECTIONS("null", "null", "null", "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Fuse\"},{\"type\":\"ByteFallback\"}]}"),
                            "unsupported decoder order: ByteFallback after ByteLevel or Fuse");
    expect_refused("{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",0.0]]}}", "unsupported model Unigram");
    expect_refused("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}", "merge 0: 'ab' is not in the vocab");
    expect_refused("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[[\"a\"]]}}", "merge 0 is neither");
    expect_refused("{\"model\":", "not valid JSON");
}
END_TEST

START_TEST(load_errors) {
    ck_assert_ptr_null(tokenizer_load("/nonexistent/tokenizer.json"));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "cannot open"));
    ck_assert_ptr_null(tokenizer_load(tmp_dir()));
    ck_assert_ptr_nonnull(strstr(dam_last_error(), "no tokenizer.json"));
    ck_assert_ptr_null(tokenizer_load(""));
}
END_TEST

/* ---- input text ---- */

START_TEST(invalid_utf8_is_an_error) {
    struct tokenizer *t = tokenizer_load("third_party/tokenizers/llama3style");
    ck_assert_msg(t != NULL, "%s", dam_last_error());
    static const struct { const char *s; size_t n; size_t at; } bad[] = {
        { "\xff", 1, 0 }, { "abc\xc3", 4, 3 }, { "ok \xed\xa0\x80", 6, 3 } /* surrogate */,
        { "\xc0\xaf", 2, 0 } /* overlong */, { "x\xf4\x90\x80\x80", 5, 1 } /* > U+10FFFF */, { "\x80x", 2, 0 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int *ids = (int *)1, n = -1;
        char want[64];
        ck_assert_int_eq(tokenizer_encode(t, bad[i].s, bad[i].n, 1, &ids, &n), -1);
        ck_assert_ptr_null(ids);
        ck_assert_int_eq(n, 0);
        snprintf(want, sizeof want, "invalid UTF-8 in the input text at byte %zu", bad[i].at);
        ck_assert_msg(strstr(dam_last_error(), want) != NULL, "\"%s\" lacks \"%s\"", dam_last_error(), want);
    }
    tokenizer_free(t);
}
END_TEST

START_TEST(empty_text_gives_only_special_tokens) {
    struct tokenizer *t = tokenizer_load("third_party/models/stories260k");
    ck_assert_msg(t != NULL, "%s", dam_last_error());
    int *ids, n;
    ck_assert_int_eq(tokenizer_encode(t, "", 0, 0, &ids, &n), 0);
    ck_assert_int_eq(n, 0);
    free(ids);
    ck_assert_int_eq(tokenizer_encode(t, NULL, 0, 1, &ids, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(ids[0], 1);
    free(ids);
    char *text = tokenizer_decode(t, NULL, 0, 0);
    ck_assert_str_eq(text, "");
    free(text);
    tokenizer_free(t);
}
END_TEST

/* Text with NUL bytes is encoded whole (lengths, not C strings). */
START_TEST(nul_bytes_round_trip) {
    struct tokenizer *t = tokenizer_load("third_party/tokenizers/llama3style");
    ck_assert_ptr_nonnull(t);
    int *ids, n;
    ck_assert_int_eq(tokenizer_encode(t, "a\0b", 3, 0, &ids, &n), 0);
    size_t len;
    char *back = tokenizer_decode_n(t, ids, n, 0, &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_int_eq(memcmp(back, "a\0b", 3), 0);
    free(back);
    free(ids);
    tokenizer_free(t);
}
END_TEST

/* ---- streaming at UTF-8 boundaries ---- */

static int byte_token(const struct tokenizer *t, int b) {
    char s[4];
    byte_char(b, s);
    int id = tokenizer_token_id(t, s);
    ck_assert_int_ge(id, 0);
    return id;
}

START_TEST(stream_holds_incomplete_characters) {
    struct tokenizer *t = tokenizer_load("third_party/tokenizers/llama3style");
    ck_assert_ptr_nonnull(t);
    struct detokenizer *d = detokenizer_new(t);
    static const unsigned char smile[] = { 0xF0, 0x9F, 0x98, 0x80 };
    for (int i = 0; i < 3; i++) ck_assert_str_eq(detokenizer_push(d, byte_token(t, smile[i])), "");
    ck_assert_str_eq(detokenizer_push(d, byte_token(t, smile[3])), "\xF0\x9F\x98\x80");
    /* a sequence that cannot complete is replaced as soon as that is known */
    ck_assert_str_eq(detokenizer_push(d, byte_token(t, 0xE4)), "");
    ck_assert_str_eq(detokenizer_push(d, byte_token(t, 'a')), "\xEF\xBF\xBD" "a");
    ck_assert_str_eq(detokenizer_push(d, byte_token(t, 0xFF)), "\xEF\xBF\xBD");
    /* an incomplete tail at the end becomes U+FFFD */
    ck_assert_str_eq(detokenizer_push(d, byte_token(t, 0xF0)), "");
    ck_assert_str_eq(detokenizer_push(d, byte_token(t, 0x9F)), "");
    ck_assert_str_eq(detokenizer_flush(d), "\xEF\xBF\xBD");
    ck_assert_str_eq(detokenizer_flush(d), "");
    detokenizer_free(d);
    tokenizer_free(t);
}
END_TEST

/* SentencePiece style: byte-fallback runs wait for their end; the first
 * token's leading space is stripped, again after a flush. */
START_TEST(stream_sentencepiece_rules) {
    struct tokenizer *t = tokenizer_load("third_party/models/stories260k");
    ck_assert_ptr_nonnull(t);
    int *ids, n;
    const char *text = "Lily \xF0\x9F\x98\x80 ok";
    ck_assert_int_eq(tokenizer_encode(t, text, strlen(text), 0, &ids, &n), 0);
    struct detokenizer *d = detokenizer_new(t);
    char acc[256] = "";
    for (int round = 0; round < 2; round++) {
        acc[0] = 0;
        for (int i = 0; i < n; i++) {
            const char *piece = detokenizer_push(d, ids[i]);
            const char *p = tokenizer_piece(t, ids[i]);
            if (!strncmp(p, "<0x", 3)) ck_assert_str_eq(piece, "");   /* held while the run lasts */
            strcat(acc, piece);
        }
        strcat(acc, detokenizer_flush(d));
        ck_assert_str_eq(acc, text);
    }
    detokenizer_free(d);
    free(ids);
    tokenizer_free(t);
}
END_TEST

/* ---- lookups ---- */

START_TEST(vocabulary_lookups) {
    struct tokenizer *t = tokenizer_load("third_party/tokenizers/smollm2/tokenizer.json");
    ck_assert_msg(t != NULL, "%s", dam_last_error());
    ck_assert_int_eq(tokenizer_vocab_size(t), 49152);
    ck_assert_str_eq(tokenizer_piece(t, 0), "<|endoftext|>");
    ck_assert_str_eq(tokenizer_piece(t, 19556), "Hello");
    ck_assert_str_eq(tokenizer_piece(t, 905), "\xC4\xA0world");
    ck_assert_ptr_null(tokenizer_piece(t, -1));
    ck_assert_ptr_null(tokenizer_piece(t, 49152));
    ck_assert_int_eq(tokenizer_token_id(t, "<|im_start|>"), 1);
    ck_assert_int_eq(tokenizer_token_id(t, "\xC4\xA0world"), 905);
    ck_assert_int_eq(tokenizer_token_id(t, "no such piece here"), -1);
    ck_assert_int_eq(tokenizer_is_special(t, 1), 1);
    ck_assert_int_eq(tokenizer_is_special(t, 905), 0);
    ck_assert_int_eq(tokenizer_is_special(t, -5), 0);
    /* special tokens in the text are recognised, never split */
    int *ids, n;
    const char *text = "<|im_start|>user\nhi<|im_end|>";
    ck_assert_int_eq(tokenizer_encode(t, text, strlen(text), 0, &ids, &n), 0);
    ck_assert_int_eq(ids[0], 1);
    ck_assert_int_eq(ids[n - 1], 2);
    char *back = tokenizer_decode(t, ids, n, 0);
    ck_assert_str_eq(back, text);
    free(back);
    back = tokenizer_decode(t, ids, n, 1);
    ck_assert_str_eq(back, "user\nhi");
    free(back);
    free(ids);
    /* unknown ids are skipped when decoding, as the library does */
    int odd[] = { 19556, -3, 999999, 905 };
    back = tokenizer_decode(t, odd, 4, 0);
    ck_assert_str_eq(back, "Hello world");
    free(back);
    tokenizer_free(t);
}
END_TEST

Suite *test_suite(void) {
    Suite *s = suite_create("tokenizer_parts");
    TCase *tc = tcase_create("parts");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, part_matches_reference, 0, (int)(sizeof part_configs / sizeof part_configs[0]));
    tcase_add_test(tc, unsupported_parts_are_named);
    tcase_add_test(tc, load_errors);
    tcase_add_test(tc, invalid_utf8_is_an_error);
    tcase_add_test(tc, empty_text_gives_only_special_tokens);
    tcase_add_test(tc, nul_bytes_round_trip);
    tcase_add_test(tc, stream_holds_incomplete_characters);
    tcase_add_test(tc, stream_sentencepiece_rules);
    tcase_add_test(tc, vocabulary_lookups);
    suite_add_tcase(s, tc);
    return s;
}
