/* fuzz_safetensors.c — libFuzzer entry point for the safetensors reader.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude $(pkg-config --cflags libcjson) \
 *     tests/fuzz/fuzz_safetensors.c src/model/safetensors.c src/common/common.c \
 *     $(pkg-config --libs libcjson) -lm -o /tmp/fuzz_st
 *   /tmp/fuzz_st -max_total_time=60 CORPUS_DIR   (seed it with real .safetensors files)
 *
 * Every input must be either refused with a message or accepted with every
 * tensor's bytes inside the buffer; anything else is a bug. */
#include "dam/common.h"
#include "dam/safetensors.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct st_file *f = st_parse("fuzz", data, size);
    if (!f) {
        if (dam_last_error()[0] == 0) abort();    /* a refusal must say why */
        return 0;
    }
    const uint8_t *lo = data + f->data_start, *hi = data + size;
    size_t covered = 0;
    for (int i = 0; i < f->n_tensors; i++) {
        const struct st_tensor *t = &f->tensors[i];
        const uint8_t *p = t->data;
        if (p < lo || p > hi || t->nbytes > (size_t)(hi - p)) abort();
        if (t->nbytes != (size_t)t->numel * dtype_size(t->dtype)) abort();
        if (st_find(f, t->name) != t) abort();
        volatile uint8_t sum = 0;                 /* touch the bytes: ASan checks the bounds */
        for (size_t k = 0; k < t->nbytes; k++) sum ^= p[k];
        covered += t->nbytes;
    }
    if (covered != (size_t)(hi - lo)) abort();
    st_close(f);
    return 0;
}
