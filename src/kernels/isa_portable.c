/* isa_portable.c — the micro-kernels in plain C: the reference the SIMD
 * variants are tested against, and what runs on any CPU (make PORTABLE=1,
 * DAM_ISA=portable). Written so a compiler can vectorise the inner loops
 * (independent partial sums, unit-stride arrays), without intrinsics. */
#include "isa.h"
#include "dam/kernels.h"
#include <math.h>
#include <string.h>

/* ---- vectors: 8 partial sums, so the adds do not form one long chain ---- */

static float dot_portable(const float *a, const float *b, int n) {
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

static void axpy_portable(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

static void scale_portable(float *y, float a, int n) {
    for (int i = 0; i < n; i++) y[i] *= a;
}

static float exp_sum_portable(float *x, int n, float shift) {
    float sum = 0;
    for (int i = 0; i < n; i++) { x[i] = expf(x[i] - shift); sum += x[i]; }
    return sum;
}

static void swiglu_portable(float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* ---- matrix tile: convert one weight row chunk, then dot it with m inputs ---- */

#define PORTABLE_KC 1024    /* the drivers never pass a larger kc (KC_MAX) */

static void row_to_f32(enum dtype dt, const void *w, int n, float *dst) {
    if (dt == DT_F32) { memcpy(dst, w, (size_t)n * sizeof(float)); return; }
    const uint16_t *h = w;
    if (dt == DT_BF16) for (int i = 0; i < n; i++) dst[i] = bf16_to_f32(h[i]);
    else for (int i = 0; i < n; i++) dst[i] = f16_to_f32(h[i]);
}

static void gemm_tile_portable(enum dtype dt, int m, int nr, int kc, const float *x, size_t ldx,
                               const void *w, size_t ldw, float *out, size_t ldo, int accumulate) {
    float row[PORTABLE_KC];
    const size_t esize = dtype_size(dt);
    for (int r = 0; r < nr; r++) {
        row_to_f32(dt, (const char *)w + (size_t)r * ldw * esize, kc, row);
        for (int i = 0; i < m; i++) {
            float d = dot_portable(x + (size_t)i * ldx, row, kc);
            float *o = out + (size_t)i * ldo + r;
            *o = accumulate ? *o + d : d;
        }
    }
}

/* ---- quantized weights: the plain sums of quant.h ---- */

static void x_quantize_portable(const float *x, int n, int cols, const struct qinput *out) {
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * cols;
        int8_t *q = out->q + (size_t)i * out->ldq;
        for (int b = 0; b < out->blocks; b++) {
            const int c0 = b * QBLOCK, nc = cols - c0 < QBLOCK ? cols - c0 : QBLOCK;
            float amax = 0;
            for (int c = 0; c < nc; c++) amax = fmaxf(amax, fabsf(xi[c0 + c]));
            const float id = amax > 0 ? 127.0f / amax : 0;
            int32_t half[2] = {0, 0}, rsum = 0;
            for (int c = 0; c < QBLOCK; c++) {
                const float t = c < nc ? xi[c0 + c] * id : 0, v = nearbyintf(t);
                q[c0 + c] = (int8_t)v;
                half[c / 16] += (int)v;
                if (out->r) {
                    const int rv = (int)nearbyintf((t - v) * (float)QRES);
                    out->r[(size_t)i * out->ldq + c0 + c] = (int8_t)rv;
                    rsum += rv;
                }
            }
            const size_t k = (size_t)i * out->blocks + b;
            if (out->r) out->rs[k] = rsum;
            out->d[k] = amax / 127.0f;
            out->s[k] = half[0] + half[1];
            out->h[2 * k] = half[0];
            out->h[2 * k + 1] = half[1];
        }
    }
}

/* The integer sums of one (row, block) over columns [c0, c1): stored bytes
 * or nibbles times activation bytes. */
static int32_t block_dot(enum quant_type qt, const uint8_t *tile, int r, const int8_t *xq, int c0, int c1) {
    int32_t s = 0;
    for (int c = c0; c < c1; c++) {
        int u;
        if (qt == QUANT_Q8_0) u = tile[(c / 4) * 64 + r * 4 + c % 4];
        else {
            const uint8_t v = tile[(c / 8) * 64 + r * 4 + (c % 8) % 4];
            u = c % 8 < 4 ? v & 15 : v >> 4;
        }
        s += u * xq[c];
    }
    return s;
}

static void qgemm_tile_portable(enum quant_type qt, int m, int ng, const struct qinput *x, int i0, const uint8_t *wq,
                                const uint8_t *ws, const uint16_t *wsup, float *out, size_t ldo) {
    const int blocks = x->blocks, supers = (blocks + QSUPER - 1) / QSUPER;
    const int tb = quant_tile_bytes(qt), sb = quant_scale_bytes(qt), z = quant_zero(qt);
    for (int i = 0; i < m; i++) {
        const size_t row = (size_t)(i0 + i);
        const int8_t *xq = x->q + row * x->ldq;
        for (int g = 0; g < ng; g++) {
            float acc[QGROUP] = {0};
            for (int b = 0; b < blocks; b++) {
                const size_t tile = (size_t)g * blocks + b;
                const uint8_t *t = wq + tile * tb, *sc = ws + tile * sb;
                const float dx = x->d[row * blocks + b];
                const int8_t *xb = xq + b * QBLOCK;
                for (int r = 0; r < QGROUP; r++) {
                    if (qt != QUANT_Q4_K) {
                        float s = (float)(block_dot(qt, t, r, xb, 0, QBLOCK) - z * x->s[row * blocks + b]);
                        if (qt == QUANT_Q8_0 && x->r) {
                            const int32_t s2 = block_dot(qt, t, r, x->r + row * x->ldq + b * QBLOCK, 0, QBLOCK) -
                                               z * x->rs[row * blocks + b];
                            s += (float)s2 * (1.0f / QRES);
                        }
                        acc[r] += s * (f16_to_f32(((const uint16_t *)sc)[r]) * dx);
                        continue;
                    }
                    const uint16_t *sup = wsup + ((size_t)g * supers + b / QSUPER) * 2 * QGROUP;
                    const float D = f16_to_f32(sup[r]), M = f16_to_f32(sup[QGROUP + r]);
                    for (int h = 0; h < 2; h++) {
                        const int32_t s = block_dot(qt, t, r, xb, 16 * h, 16 * h + 16);
                        acc[r] += (float)s * (D * sc[16 * h + r] * dx);
                        acc[r] -= M * sc[32 + 16 * h + r] * (dx * (float)x->h[2 * (row * blocks + b) + h]);
                    }
                }
            }
            memcpy(out + (size_t)i * ldo + g * QGROUP, acc, sizeof acc);
        }
    }
}

/* ---- attention: one row at a time, keys in blocks of KV_BLOCK ---- */

static int attn_hd_ok_portable(int hd) { (void)hd; return 1; }

static void attn_rows_portable(enum kv_type kt, int rows, int hd, const float *q, const int *last, const void *kb,
                               const void *v, int k0, int k1, float *m, float *l, float *o) {
    for (int r = 0; r < rows; r++) {
        const float *qr = q + (size_t)r * hd;
        float *orow = o + (size_t)r * hd;
        int end = last[r] + 1 < k1 ? last[r] + 1 : k1;     /* keys [k0, end) are visible */
        for (int j0 = k0; j0 < end; j0 += KV_BLOCK) {
            const size_t blk = (size_t)(j0 / KV_BLOCK) * hd * KV_BLOCK;
            int nb = end - j0 < KV_BLOCK ? end - j0 : KV_BLOCK;
            float s[KV_BLOCK] = {0};
            for (int d = 0; d < hd; d++)                    /* s[j] = q . k_j, unit stride in j */
                for (int j = 0; j < KV_BLOCK; j++) s[j] += qr[d] * kv_get(kt, kb, blk + (size_t)d * KV_BLOCK + j);
            float bmax = -INFINITY;
            for (int j = 0; j < nb; j++) if (s[j] > bmax) bmax = s[j];
            if (bmax > m[r]) {                              /* new maximum: rescale what we have */
                float alpha = exp2f(m[r] - bmax);           /* 0 when m was -inf */
                l[r] *= alpha;
                for (int d = 0; d < hd; d++) orow[d] *= alpha;
                m[r] = bmax;
            }
            for (int j = 0; j < nb; j++) {
                float p = exp2f(s[j] - m[r]);
                l[r] += p;
                const size_t vj = (size_t)(j0 + j) * hd;
                for (int d = 0; d < hd; d++) orow[d] += p * kv_get(kt, v, vj + d);
            }
        }
    }
}

/* The same over a list of blocks: lane j of block b is key position pos + j. */
static void attn_blocks_portable(enum kv_type kt, int rows, int hd, const float *q, const int *last,
                                 const struct kv_block *blk, int nb, float *m, float *l, float *o) {
    for (int r = 0; r < rows; r++) {
        const float *qr = q + (size_t)r * hd;
        float *orow = o + (size_t)r * hd;
        for (int b = 0; b < nb; b++) {
            int n = last[r] - blk[b].pos + 1;               /* visible lanes [0, n) */
            if (n <= 0) continue;
            if (n > KV_BLOCK) n = KV_BLOCK;
            float s[KV_BLOCK] = {0};
            for (int d = 0; d < hd; d++)
                for (int j = 0; j < KV_BLOCK; j++) s[j] += qr[d] * kv_get(kt, blk[b].k, (size_t)d * KV_BLOCK + j);
            float bmax = -INFINITY;
            for (int j = 0; j < n; j++) if (s[j] > bmax) bmax = s[j];
            if (bmax > m[r]) {
                float alpha = exp2f(m[r] - bmax);
                l[r] *= alpha;
                for (int d = 0; d < hd; d++) orow[d] *= alpha;
                m[r] = bmax;
            }
            for (int j = 0; j < n; j++) {
                float p = exp2f(s[j] - m[r]);
                l[r] += p;
                const size_t vj = (size_t)j * hd;
                for (int d = 0; d < hd; d++) orow[d] += p * kv_get(kt, blk[b].v, vj + d);
            }
        }
    }
}

/* ---- probe: 8 independent chains; scalar, so this is the scalar peak ---- */

static double fma_probe_portable(long iters) {
    float a[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    const float b = 0.999999f, c = 1e-7f;
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 8; j++) a[j] = fmaf(a[j], b, c);
    volatile float sink = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
    (void)sink;
    return 2.0 * 8 * (double)iters;
}

static uint64_t read_probe_portable(const void *p, size_t bytes) {
    const uint64_t *w = p;
    uint64_t a[4] = {0};
    for (size_t i = 0; i < bytes / 8; i += 4)
        for (int j = 0; j < 4; j++) a[j] ^= w[i + j];
    return a[0] ^ a[1] ^ a[2] ^ a[3];
}

static int cpu_has_portable(void) { return 1; }

const struct isa isa_portable = {
    .name = "portable",
    .cpu_has = cpu_has_portable,
    .mr = 4, .nr_max = 4, .nr_gemv = 4,
    .gemm_tile = gemm_tile_portable,
    .qmr = 4, .qng = 1, .qng_gemv = 1,
    .x_quantize = x_quantize_portable,
    .qgemm_tile = qgemm_tile_portable,
    .dot = dot_portable,
    .axpy = axpy_portable,
    .scale = scale_portable,
    .exp_sum = exp_sum_portable,
    .swiglu = swiglu_portable,
    .attn_hd_ok = attn_hd_ok_portable,
    .attn_rows = attn_rows_portable,
    .attn_blocks = attn_blocks_portable,
    .fma_probe = fma_probe_portable,
    .read_probe = read_probe_portable,
};
