/* sparse.c — the kernels of the sparse attention modules (dam, window):
 * exact attention over a list of key blocks, and the block scores that
 * choose those blocks.
 *
 * Both run on the calling thread: the modules cut their work into tasks
 * (a head and a tile of query rows) and spread those over threads, as
 * attention.c does for the dense case. */
#include "isa.h"
#include "dam/kernels.h"
#include <math.h>
#include <string.h>

#define LOG2E 1.4426950408889634

void attention_blocks(float *out, size_t out_stride, const float *q, size_t q_stride, int rows,
                      const int *last, int head_dim, const struct kv_block *blocks, int nb, enum kv_type kt) {
    const struct isa *isa = isa_current();
    if (!isa->attn_hd_ok(head_dim)) isa = &isa_portable;
    const float qscale = (float)(LOG2E / sqrt((double)head_dim));
    /* rows go ISA_ATTN_MAX_ROWS at a time; the kernels want q scaled and
     * contiguous, and keep (m, l, o) per row */
    float qs[ISA_ATTN_MAX_ROWS * 256], o[ISA_ATTN_MAX_ROWS * 256];
    float m[ISA_ATTN_MAX_ROWS], l[ISA_ATTN_MAX_ROWS];
    const int per = head_dim <= 256 ? ISA_ATTN_MAX_ROWS : 1;
    float *qb = head_dim <= 256 ? qs : NULL, *ob = head_dim <= 256 ? o : NULL;
    float big_q[1024], big_o[1024];                   /* head_dim <= 1024 (checked at create) */
    if (!qb) { qb = big_q; ob = big_o; }
    for (int r0 = 0; r0 < rows; r0 += per) {
        const int n = rows - r0 < per ? rows - r0 : per;
        for (int r = 0; r < n; r++) {
            const float *src = q + (size_t)(r0 + r) * q_stride;
            for (int d = 0; d < head_dim; d++) qb[(size_t)r * head_dim + d] = src[d] * qscale;
            m[r] = -INFINITY;
            l[r] = 0;
        }
        memset(ob, 0, (size_t)n * head_dim * sizeof(float));
        isa->attn_blocks(kt, n, head_dim, qb, last + r0, blocks, nb, m, l, ob);
        for (int r = 0; r < n; r++) {
            float *dst = out + (size_t)(r0 + r) * out_stride;
            const float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;
            for (int d = 0; d < head_dim; d++) dst[d] = ob[(size_t)r * head_dim + d] * inv;
        }
    }
}

/* The groups' lanes are independent sums over the dimensions: the compiler
 * vectorises the 16 lanes with whatever vector width the build targets. */
void block_bounds(float *out, const float *qpm, int head_dim, const float *sums, int b0, int b1) {
    const int len = 2 * head_dim;
    for (int g = b0 / BOUND_GROUP; g * BOUND_GROUP < b1; g++) {
        const float *t = sums + (size_t)g * len * BOUND_GROUP;
        float acc[BOUND_GROUP] = { 0 };
        for (int d = 0; d < len; d++) {
            const float x = qpm[d];
            #pragma omp simd
            for (int j = 0; j < BOUND_GROUP; j++) acc[j] += x * t[(size_t)d * BOUND_GROUP + j];
        }
        for (int j = 0; j < BOUND_GROUP; j++) {
            const int b = g * BOUND_GROUP + j;
            if (b >= b0 && b < b1) out[b - b0] = acc[j];
        }
    }
}
