/* state_io.c — what the attention modules' save and load share: bytes in and
 * out of the prompt cache's stream with their errors. The stream is a whole
 * file already checked against its SHA-256 (prompt_cache.c), so a short read
 * here means a state written by another build, or a crafted file: every
 * count read is range-checked before it sizes anything. */
#include "dam/attn.h"
#include "dam/common.h"
#include <stdint.h>

int attn_put(FILE *f, const void *p, size_t bytes) {
    if (bytes && fwrite(p, 1, bytes, f) != bytes) return dam_fail("cannot write the attention state");
    return 0;
}

int attn_get(FILE *f, void *p, size_t bytes, const char *what) {
    if (bytes && fread(p, 1, bytes, f) != bytes) return dam_fail("the attention state ends inside %s", what);
    return 0;
}

int attn_put_int(FILE *f, int v) {
    const int32_t x = v;
    return attn_put(f, &x, sizeof x);
}

int attn_get_int(FILE *f, int *v, int min, int max, const char *what) {
    int32_t x;
    if (attn_get(f, &x, sizeof x, what)) return -1;
    if (x < min || x > max) return dam_fail("the attention state has %s %d (expected %d to %d)", what, (int)x, min, max);
    *v = x;
    return 0;
}
