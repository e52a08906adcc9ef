/* fuzz_tokenizer.c — libFuzzer entry point for the tokenizer.json loader and
 * the encoder and decoders of whatever it accepts.
 *
 * Input: TOKENIZER_JSON [ NUL TEXT ]. The JSON is loaded from a memfd (no
 * disk I/O per input) through its /proc/self/fd path; the text after the
 * last NUL (or a few fixed samples when there is none) is encoded and the
 * ids decoded. Built and run by `make fuzz` (seeds: third_party tokenizers
 * and tests/fuzz/corpus/fuzz_tokenizer/); tests/fuzz/test_fuzz_corpus.c
 * replays the corpus in the normal suite.
 *
 * Rules checked, beyond "no crash, no leak, no UB":
 *   - a refusal says why (dam_last_error non-empty);
 *   - every id encode returns is inside the vocabulary;
 *   - decoding never fails, and the streaming detokenizer's pieces add up
 *     to exactly the one-shot decode (tokenizer.h promises this). */
#include "dam/common.h"
#include "dam/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_TEXT 4096

/* The streamed text of ids equals the one-shot decode; abort() otherwise. */
static void check_decoders(const struct tokenizer *t, const int *ids, int n) {
    size_t want_len = 0;
    char *want = tokenizer_decode_n(t, ids, n, 0, &want_len);
    if (!want) abort();
    struct detokenizer *d = detokenizer_new(t);
    if (!d) abort();
    char *got = malloc(want_len + 1);
    size_t got_len = 0;
    int same = got != NULL;
    for (int i = 0; i <= n && same; i++) {
        size_t len = 0;
        const char *piece = i < n ? detokenizer_push_n(d, ids[i], &len) : detokenizer_flush_n(d, &len);
        if (!piece || got_len + len > want_len) { same = 0; break; }
        memcpy(got + got_len, piece, len);
        got_len += len;
    }
    if (!same || got_len != want_len || memcmp(got, want, want_len) != 0) abort();
    detokenizer_free(d);
    free(got);
    free(want);
    char *skipped = tokenizer_decode(t, ids, n, 1);   /* skip_special */
    if (!skipped) abort();
    free(skipped);
}

static void encode_and_check(const struct tokenizer *t, const char *text, size_t len) {
    int vocab = tokenizer_vocab_size(t);
    for (int add_special = 0; add_special <= 1; add_special++) {
        int *ids = NULL, n = 0;
        if (tokenizer_encode(t, text, len, add_special, &ids, &n) != 0) {
            if (dam_last_error()[0] == 0 || ids != NULL || n != 0) abort();
            continue;
        }
        if (n < 0 || (n > 0 && !ids)) abort();
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= vocab || !tokenizer_piece(t, ids[i])) abort();
        check_decoders(t, ids, n);
        free(ids);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("tokenizer.json", 0);
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    const uint8_t *nul = memrchr(data, 0, size);
    size_t json_len = nul ? (size_t)(nul - data) : size;
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, json_len, 0) != (ssize_t)json_len) abort();

    dam_fail("%s", "");
    struct tokenizer *t = tokenizer_load(path);
    if (!t) {
        if (dam_last_error()[0] == 0) abort();    /* a refusal must say why */
        return 0;
    }
    if (nul) {
        size_t len = size - json_len - 1;
        encode_and_check(t, (const char *)nul + 1, len > MAX_TEXT ? MAX_TEXT : len);
    } else {
        static const char *const samples[] = {
            "", "Hello world", "  two  spaces\n\nnew lines\r\n", "123456 digits, 'contractions' it's",
            "\xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x91\x8B\xF0\x9F\x8F\xBD caf\xC3\xA9",
            "<s> </s> <unk> <|endoftext|> <|begin_of_text|>", "\xff invalid",
        };
        for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
            encode_and_check(t, samples[i], strlen(samples[i]));
    }
    tokenizer_free(t);
    return 0;
}
