/* state_io.c — what the attention modules' save and load share: bytes in and
 * out of a struct attn_stream with their errors. A state read is a file
 * whose SHA-256 is being checked meanwhile (prompt_cache.c), so a short
 * read here means a damaged or crafted file: every count read is
 * range-checked before it sizes anything. */
#include "dam/attn.h"
#include "dam/common.h"
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23           /* Linux 5.14 */
#endif

int attn_put(struct attn_stream *f, const void *p, size_t bytes) {
    if (f->out) {
        if (bytes > f->cap - f->len) return dam_fail("the attention state grew while it was saved");
        if (bytes) memcpy(f->out + f->len, p, bytes);
    }
    f->len += bytes;
    return 0;
}

/* The whole pages inside [p, p + bytes), when the range is large enough to
 * matter (1 MiB); 0 otherwise. */
static int whole_pages(void *p, size_t bytes, uintptr_t *a, uintptr_t *b) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    if (bytes < ((size_t)1 << 20) || !page) return 0;
    *a = ((uintptr_t)p + page - 1) & ~(page - 1);
    *b = ((uintptr_t)p + bytes) & ~(page - 1);
    return *b > *a;
}

/* A state is mostly fresh memory, and the first touch of every 4 KiB page
 * is a fault: on a virtual machine (this one) about 25 us each, so copying
 * 81 MiB into fresh pages took 550 ms where the copy itself takes 10 ms.
 * Huge pages (2 MiB, where the kernel has them) and mapping the pages of a
 * destination in one call before it is filled take that to 20 ms (every
 * attn_get of 1 MiB or more does the latter). Kernels without either just
 * fault as usual. */
void attn_state_hugepages(void *p, size_t bytes) {
    uintptr_t a, b;
    if (whole_pages(p, bytes, &a, &b)) madvise((void *)a, b - a, MADV_HUGEPAGE);
}

void attn_state_populate(void *p, size_t bytes) {
    uintptr_t a, b;
    if (whole_pages(p, bytes, &a, &b)) madvise((void *)a, b - a, MADV_POPULATE_WRITE);
}

int attn_get(struct attn_stream *f, void *p, size_t bytes, const char *what) {
    if (bytes > f->len - f->at) return dam_fail("the attention state ends inside %s", what);
    attn_state_populate(p, bytes);
    if (bytes) memcpy(p, f->in + f->at, bytes);
    f->at += bytes;
    return 0;
}

int attn_put_int(struct attn_stream *f, int v) {
    const int32_t x = v;
    return attn_put(f, &x, sizeof x);
}

int attn_get_int(struct attn_stream *f, int *v, int min, int max, const char *what) {
    int32_t x;
    if (attn_get(f, &x, sizeof x, what)) return -1;
    if (x < min || x > max) return dam_fail("the attention state has %s %d (expected %d to %d)", what, (int)x, min, max);
    *v = x;
    return 0;
}
