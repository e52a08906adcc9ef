/* matmul.c — out = x · wᵀ with the weights in their stored dtype.
 *
 * Work is cut into units of nr output rows (the micro-kernel's width).
 * Threads take units; a unit's weight rows are read from memory once and
 * applied to every input row, mr inputs at a time, by the ISA's gemm tile.
 *
 * Cache blocking for prefill (n > mr): the columns are cut into blocks of
 * kc so that the input block x[:, c0:c0+kc] (n * kc floats) stays in the
 * core's L2 cache while every unit of the thread streams past it; a unit's
 * rows (nr * kc weights) stay in L1 across its n / mr tiles. Results of
 * later column blocks are added to the earlier ones.
 *
 * Decode (n <= mr) is one pass over each weight matrix: units in order,
 * every column at once; the weights stream from memory and the rate is
 * set by memory bandwidth, so all that matters is that every thread keeps
 * enough loads in flight (one input: wider units, nr_gemv rows, whose tile
 * prefetches the next unit).
 *
 * An ISA with a BF16 dot-product tile (avx512bf16) gets the input converted
 * once per call into the split form that tile reads (isa.h). */
#include "isa.h"
#include "dam/kernels.h"
#include <omp.h>
#include <stdlib.h>

#define KC_MAX 1024                   /* longest column stretch a tile sees */
#define X_BLOCK_BYTES (512 * 1024)    /* input block kept in L2 during prefill */
/* Products smaller than this (multiply-adds) run on the calling thread:
 * waking the team costs more than it saves (and much more when other
 * processes hold the cores). */
#define PARALLEL_MIN_WORK (1 << 17)

/* Columns per block: the input block fits X_BLOCK_BYTES, blocks of equal
 * size, a multiple of 16 floats (one cache line / one vector). */
static int column_block(int cols, int n, int mr) {
    int target = KC_MAX;
    if (n > mr) {
        target = X_BLOCK_BYTES / (int)(sizeof(float) * (size_t)n);
        if (target < 256) target = 256;
        if (target > KC_MAX) target = KC_MAX;
    }
    int blocks = (cols + target - 1) / target;
    int kc = (cols + blocks - 1) / blocks;
    kc = (kc + 15) / 16 * 16;
    return kc < cols ? kc : cols;
}

/* The input, once per product: as float32 rows, and for BF16 weights in the
 * prepared form of the ISA's BF16 tile when it has one (xp, row stride ldxp). */
struct input {
    const float *x;
    const uint32_t *xp;
    size_t ldxp;
};

/* One unit (rows r0 .. r0+ur-1 of w) x inputs [0, n) x columns [c0, c0+kc). */
static void unit_tile(const struct isa *isa, float *out, const struct input *in, const struct tensor *w,
                      int r0, int ur, int n, int c0, int kc) {
    const int rows = w->rows, cols = w->cols;
    const int nr = rows - r0 < ur ? rows - r0 : ur;
    const void *wp = (const char *)w->data + ((size_t)r0 * cols + c0) * dtype_size(w->dtype);
    for (int i0 = 0; i0 < n; i0 += isa->mr) {
        int m = n - i0 < isa->mr ? n - i0 : isa->mr;
        float *o = out + (size_t)i0 * rows + r0;
        if (in->xp && w->dtype == DT_BF16)
            isa->gemm_tile_bf16x(m, nr, kc, in->xp + (size_t)i0 * in->ldxp + c0 / 2, in->ldxp, wp, cols,
                                 o, rows, c0 > 0);
        else
            isa->gemm_tile(w->dtype, m, nr, kc, in->x + (size_t)i0 * cols + c0, cols, wp, cols, o, rows, c0 > 0);
    }
}

void matmul_batch(int count, float *const out[], const float *x, const struct tensor *const w[], int n) {
    const struct isa *isa = isa_current();
    const int cols = w[0]->cols;                /* shared input: same cols for all */
    int first[8 + 1];                           /* first unit of each product */
    if (count > 8) {                            /* never in practice: split the batch */
        matmul_batch(8, out, x, w, n);
        matmul_batch(count - 8, out + 8, x, w + 8, n);
        return;
    }
    /* rows per unit: the tile's width (wider for one input: decode) */
    const int ur = n == 1 ? isa->nr_gemv : isa->nr_max;
    first[0] = 0;
    for (int j = 0; j < count; j++) first[j + 1] = first[j] + (w[j]->rows + ur - 1) / ur;
    const int units = first[count];
    double work = 0;
    for (int j = 0; j < count; j++) work += (double)n * cols * w[j]->rows;
    const int kc = column_block(cols, n, isa->mr);
    const int n_kblocks = (cols + kc - 1) / kc;
    /* Prefill: dynamic chunks, so a thread slowed by another process does
     * not hold the others back. Decode: static, one contiguous range per
     * thread, so each thread is a single stream whose prefetches (of the next
     * tile) are never wasted on units another thread takes: measured 13 %
     * faster over SmolLM2's 120 small products per token (42 vs 37 GB/s). */
    int chunk = units / (omp_get_max_threads() * 8);
    if (chunk < 1) chunk = 1;
    struct input in = { .x = x };
    uint32_t *xp = NULL;
    int any_bf16 = 0;
    for (int j = 0; j < count; j++) any_bf16 |= w[j]->dtype == DT_BF16;
    if (any_bf16 && isa->x_prepare) {
        in.ldxp = isa->x_prepared_stride(cols);
        xp = malloc((size_t)n * in.ldxp * sizeof(uint32_t));
        if (xp) isa->x_prepare(x, n, cols, xp);
        in.xp = xp;                              /* NULL (no memory): the float32 tile runs */
    }

    #pragma omp parallel if (work >= PARALLEL_MIN_WORK)
    {
        if (n <= isa->mr) {
            #pragma omp for schedule(static)
            for (int u = 0; u < units; u++) {
                int j = 0;
                while (u >= first[j + 1]) j++;
                int r0 = (u - first[j]) * ur;
                for (int c0 = 0; c0 < cols; c0 += kc)
                    unit_tile(isa, out[j], &in, w[j], r0, ur, n, c0, cols - c0 < kc ? cols - c0 : kc);
            }
        } else {
            for (int b = 0; b < n_kblocks; b++) {   /* the barrier of omp for orders the blocks */
                const int c0 = b * kc, kcb = cols - c0 < kc ? cols - c0 : kc;
                #pragma omp for schedule(dynamic, chunk)
                for (int u = 0; u < units; u++) {
                    int j = 0;
                    while (u >= first[j + 1]) j++;
                    unit_tile(isa, out[j], &in, w[j], (u - first[j]) * ur, ur, n, c0, kcb);
                }
            }
        }
    }
    free(xp);
}

void matmul(float *out, const float *x, const struct tensor *w, int n) {
    matmul_batch(1, &out, x, &w, n);
}
