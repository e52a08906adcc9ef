/* fuzz_encode.c — libFuzzer entry point for encoding arbitrary text (a
 * prompt from a stranger) with the real tokenizers under third_party/.
 *
 * Input: one selector byte (which tokenizer, whether to wrap the text in a
 * chat template), then the text. Run from the repo root (make fuzz does).
 *
 * Rules checked, beyond "no crash, no leak, no UB":
 *   - invalid UTF-8 is refused with a message naming the byte offset, valid
 *     UTF-8 is always encoded;
 *   - every id is inside the vocabulary;
 *   - for the byte-level tokenizers (no normalizer), decoding the ids gives
 *     back exactly the text when the vocabulary has every byte of it, and the streaming detokenizer agrees with the
 *     one-shot decode for every tokenizer. */
#include "dam/common.h"
#include "dam/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *path;
    int lossless;          /* decode(encode(text)) == text */
} tokenizers[] = {
    { "third_party/models/stories260k", 0 },   /* SentencePiece-style: Prepend + Strip */
    { "third_party/tokenizers/llama3style", 1 },
    { "third_party/tokenizers/smollm2", 1 },
};
#define N_TOKENIZERS (int)(sizeof tokenizers / sizeof tokenizers[0])

/* Strict UTF-8, written here independently of the tokenizer's own check. */
static int valid_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                   : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        if (!len || i + len > n) return 0;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* GPT-2's printable character for byte b (ByteLevel), as UTF-8. */
static void byte_char(int b, char out[3]) {
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

/* A byte-level BPE without unk_token drops the bytes its vocabulary lacks
 * (SmolLM2 has no token for some control bytes), as the tokenizers library
 * does: the round trip is exact only when every byte of the text has one. */
static int every_byte_in_vocab(const struct tokenizer *t, const uint8_t *s, size_t n) {
    static signed char known[3][256];   /* per tokenizer: 0 unknown yet, 1 yes, -1 no */
    static const struct tokenizer *of[3];
    int slot = 0;
    while (slot < 3 && of[slot] && of[slot] != t) slot++;
    if (slot == 3) return 0;
    of[slot] = t;
    for (size_t i = 0; i < n; i++) {
        if (!known[slot][s[i]]) {
            char piece[3];
            byte_char(s[i], piece);
            known[slot][s[i]] = tokenizer_token_id(t, piece) >= 0 ? 1 : -1;
        }
        if (known[slot][s[i]] < 0) return 0;
    }
    return 1;
}

static void check_stream(const struct tokenizer *t, const int *ids, int n, const char *want, size_t want_len) {
    struct detokenizer *d = detokenizer_new(t);
    if (!d) abort();
    size_t at = 0;
    for (int i = 0; i <= n; i++) {
        size_t len = 0;
        const char *piece = i < n ? detokenizer_push_n(d, ids[i], &len) : detokenizer_flush_n(d, &len);
        if (!piece || at + len > want_len || memcmp(want + at, piece, len) != 0) abort();
        at += len;
    }
    if (at != want_len) abort();
    detokenizer_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct tokenizer *loaded[N_TOKENIZERS];
    if (size < 1) return 0;
    int which = data[0] % N_TOKENIZERS, chat = (data[0] / N_TOKENIZERS) % 2;
    if (!loaded[which] && !(loaded[which] = tokenizer_load(tokenizers[which].path))) {
        fprintf(stderr, "fuzz_encode: %s (run from the repo root)\n", dam_last_error());
        abort();
    }
    const struct tokenizer *t = loaded[which];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int valid = valid_utf8(data + 1, len);
    int *ids = NULL, n = 0;
    dam_fail("%s", "");
    if (chat) {
        /* A user turn in a chat template: the text is C string here. */
        char *user = strndup(text, len), *formatted = NULL;
        if (!user) abort();
        formatted = chat_format(which == 0 ? "llama2" : which == 1 ? "llama3" : "chatml", "be brief", user);
        if (!formatted) abort();
        int ok = tokenizer_encode_chat(t, formatted, strlen(formatted), 1, &ids, &n) == 0;
        if (ok != valid_utf8((const uint8_t *)formatted, strlen(formatted))) abort();
        free(formatted);
        free(user);
        if (!ok) { if (!strstr(dam_last_error(), "UTF-8")) abort(); return 0; }
    } else {
        int rc = tokenizer_encode(t, text, len, 0, &ids, &n);
        if ((rc == 0) != valid) abort();
        if (rc != 0) {
            if (!strstr(dam_last_error(), "invalid UTF-8") || ids || n) abort();
            return 0;
        }
    }
    int vocab = tokenizer_vocab_size(t);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab) abort();
    size_t out_len = 0;
    char *out = tokenizer_decode_n(t, ids, n, 0, &out_len);
    if (!out) abort();
    if (!chat && tokenizers[which].lossless && every_byte_in_vocab(t, data + 1, len) &&
        (out_len != len || memcmp(out, text, len) != 0))
        abort();
    check_stream(t, ids, n, out, out_len);
    free(out);
    free(ids);
    return 0;
}
