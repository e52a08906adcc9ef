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
#include "dam/common.h"
#include "dam/kernels.h"
#include "dam/threads.h"
#include <stdlib.h>
#include <string.h>

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

/* What the tasks of one product share. */
struct batch {
    const struct isa *isa;
    int count, n, ur, c0, kc;
    int all_columns;        /* decode: every column block of a unit in turn */
    const int *first;
    float *const *out;
    const struct tensor *const *w;
    const struct input *in;
};

/* Units [begin, end): every column at once (decode) or one column block (prefill). */
static void batch_units(void *arg, int begin, int end, int thread) {
    const struct batch *b = arg;
    (void)thread;
    const int cols = b->w[0]->cols;
    int j = 0;
    for (int u = begin; u < end; u++) {
        while (u >= b->first[j + 1]) j++;
        const int r0 = (u - b->first[j]) * b->ur;
        if (b->all_columns)
            for (int c0 = 0; c0 < cols; c0 += b->kc)
                unit_tile(b->isa, b->out[j], b->in, b->w[j], r0, b->ur, b->n, c0, cols - c0 < b->kc ? cols - c0 : b->kc);
        else
            unit_tile(b->isa, b->out[j], b->in, b->w[j], r0, b->ur, b->n, b->c0, b->kc);
    }
}

/* ---- quantized weights (quant.h): the input quantized once per call ---- */

struct qbatch {
    const struct isa *isa;
    int n, ug, m_tile;
    const int *first;
    float *const *out;
    const struct tensor *const *w;
    const struct qinput *x;
};

/* Units [begin, end) of ug row groups, every input, every column. */
static void qbatch_units(void *arg, int begin, int end, int thread) {
    const struct qbatch *b = arg;
    (void)thread;
    float tmp[ISA_MAX_QMR * ISA_MAX_QNG * QGROUP];
    int j = 0;
    for (int u = begin; u < end; u++) {
        while (u >= b->first[j + 1]) j++;
        const struct tensor *w = b->w[j];
        const struct qshape sh = quant_shape(w->quant, w->rows, w->cols);
        const int g0 = (u - b->first[j]) * b->ug, ng = sh.groups - g0 < b->ug ? sh.groups - g0 : b->ug;
        const uint8_t *wq = (const uint8_t *)w->data + (size_t)g0 * sh.blocks * quant_tile_bytes(w->quant);
        const uint8_t *ws = w->scales + (size_t)g0 * sh.blocks * quant_scale_bytes(w->quant);
        const uint16_t *wsup = w->supers ? w->supers + (size_t)g0 * sh.supers * 2 * QGROUP : NULL;
        const int r0 = g0 * QGROUP, nr = w->rows - r0 < ng * QGROUP ? w->rows - r0 : ng * QGROUP;
        for (int i0 = 0; i0 < b->n; i0 += b->m_tile) {
            const int m = b->n - i0 < b->m_tile ? b->n - i0 : b->m_tile;
            float *o = b->out[j] + (size_t)i0 * w->rows + r0;
            if (nr == ng * QGROUP) {
                b->isa->qgemm_tile(w->quant, m, ng, b->x, i0, wq, ws, wsup, o, (size_t)w->rows);
            } else {                    /* the last group is cut short: its padding rows are not ours to write */
                b->isa->qgemm_tile(w->quant, m, ng, b->x, i0, wq, ws, wsup, tmp, (size_t)ng * QGROUP);
                for (int i = 0; i < m; i++) memcpy(o + (size_t)i * w->rows, tmp + (size_t)i * ng * QGROUP, (size_t)nr * sizeof(float));
            }
        }
    }
}

static int qmatmul_batch(int count, float *const out[], const float *x, const struct tensor *const w[], int n) {
    const struct isa *isa = isa_current();
    const int cols = w[0]->cols;
    const int ug = n == 1 ? isa->qng_gemv : isa->qng;
    int first[8 + 1];
    first[0] = 0;
    double work = 0;
    for (int j = 0; j < count; j++) {
        first[j + 1] = first[j] + (quant_shape(w[j]->quant, w[j]->rows, cols).groups + ug - 1) / ug;
        work += (double)n * cols * w[j]->rows;
    }
    struct qinput qx = { .n = n, .blocks = (cols + QBLOCK - 1) / QBLOCK };
    qx.ldq = (size_t)qx.blocks * QBLOCK;
    qx.q = malloc((size_t)n * qx.ldq);
    qx.d = malloc((size_t)n * qx.blocks * sizeof(float));
    qx.s = malloc((size_t)n * qx.blocks * sizeof(int32_t));
    qx.h = malloc((size_t)n * qx.blocks * 2 * sizeof(int32_t));
    int any_q8 = 0;
    for (int j = 0; j < count; j++) any_q8 |= w[j]->quant == QUANT_Q8_0;
    if (any_q8) {                               /* q8_0 reads the activations' second byte (quant.h) */
        qx.r = malloc((size_t)n * qx.ldq);
        qx.rs = malloc((size_t)n * qx.blocks * sizeof(int32_t));
    }
    if (!qx.q || !qx.d || !qx.s || !qx.h || (any_q8 && (!qx.r || !qx.rs))) {
        free(qx.q); free(qx.d); free(qx.s); free(qx.h); free(qx.r); free(qx.rs);
        return dam_fail("out of memory quantizing %d input rows of %d columns", n, cols);
    }
    isa->x_quantize(x, n, cols, &qx);
    struct qbatch b = { .isa = isa, .n = n, .ug = ug, .m_tile = isa->qmr, .first = first, .out = out, .w = w, .x = &qx };
    const int units = first[count];
    int grain = units / (threads_count() * 8);
    if (grain < 1) grain = 1;
    if (work < PARALLEL_MIN_WORK) qbatch_units(&b, 0, units, 0);
    else parallel_for(units, grain, qbatch_units, &b);
    free(qx.q); free(qx.d); free(qx.s); free(qx.h); free(qx.r); free(qx.rs);
    return 0;
}

int matmul_batch(int count, float *const out[], const float *x, const struct tensor *const w[], int n) {
    const struct isa *isa = isa_current();
    const int cols = w[0]->cols;                /* shared input: same cols for all */
    int first[8 + 1];                           /* first unit of each product */
    if (count > 8) {                            /* never in practice: split the batch */
        return matmul_batch(8, out, x, w, n) || matmul_batch(count - 8, out + 8, x, w + 8, n) ? -1 : 0;
    }
    for (int j = 1; j < count; j++)
        if ((w[j]->quant != QUANT_NONE) != (w[0]->quant != QUANT_NONE)) {   /* mixed: one call each */
            for (int k = 0; k < count; k++)
                if (matmul_batch(1, out + k, x, w + k, n) != 0) return -1;
            return 0;
        }
    if (w[0]->quant != QUANT_NONE) return qmatmul_batch(count, out, x, w, n);
    /* rows per unit: the tile's width (wider for one input: decode) */
    const int ur = n == 1 ? isa->nr_gemv : isa->nr_max;
    first[0] = 0;
    for (int j = 0; j < count; j++) first[j + 1] = first[j] + (w[j]->rows + ur - 1) / ur;
    const int units = first[count];
    double work = 0;
    for (int j = 0; j < count; j++) work += (double)n * cols * w[j]->rows;
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
    struct batch b = { .isa = isa, .count = count, .n = n, .ur = ur, .first = first, .out = out, .w = w, .in = &in };
    /* Chunks: about 8 per thread, so a thread slowed down (or parked) by
     * another process leaves little for the others to wait on; each thread
     * starts on its own contiguous range, so on idle cores a thread is one
     * stream whose prefetches (of the next tile) are never wasted on units
     * another thread takes: measured 13 % faster over SmolLM2's 120 small
     * products per token than interleaved chunks (42 vs 37 GB/s). */
    int grain = units / (threads_count() * 8);
    if (grain < 1) grain = 1;
    const int serial = work < PARALLEL_MIN_WORK;
    const int kc = column_block(cols, n, isa->mr);
    if (n <= isa->mr) {                         /* decode: one pass, every column */
        b.kc = kc;
        b.all_columns = 1;
        if (serial) batch_units(&b, 0, units, 0);
        else parallel_for(units, grain, batch_units, &b);
    } else {                                    /* prefill: column blocks in order */
        for (int c0 = 0; c0 < cols; c0 += kc) {
            b.c0 = c0;
            b.kc = cols - c0 < kc ? cols - c0 : kc;
            if (serial) batch_units(&b, 0, units, 0);
            else parallel_for(units, grain, batch_units, &b);
        }
    }
    free(xp);
    return 0;
}

int matmul(float *out, const float *x, const struct tensor *w, int n) {
    return matmul_batch(1, &out, x, &w, n);
}
