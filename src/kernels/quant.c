/* quant.c — weights into the tiled layouts of quant.h, and back.
 *
 * One group of 16 rows at a time, block by block: the block is transposed
 * to (column, row) so that every inner loop runs over the 16 rows with a
 * fixed trip count, which the compiler turns into vector code (a row per
 * lane). This runs once per weight at load, on every thread
 * (src/model/quantize.c). */
#include "dam/quant.h"
#include "dam/kernels.h"
#include <math.h>
#include <string.h>

#define R QGROUP

static const char *const names[QUANT_COUNT] = { "none", "q8_0", "q4_0", "q4_k" };

const char *quant_name(enum quant_type q) { return q < QUANT_COUNT ? names[q] : "?"; }

int quant_from_name(const char *name, enum quant_type *out) {
    for (int q = 0; q < QUANT_COUNT; q++)
        if (!strcmp(name, names[q])) { *out = (enum quant_type)q; return 0; }
    return -1;
}

const char *quant_names(void) { return "none, q8_0, q4_0, q4_k"; }

struct qshape quant_shape(enum quant_type q, int rows, int cols) {
    struct qshape s;
    s.groups = (rows + QGROUP - 1) / QGROUP;
    s.blocks = (cols + QBLOCK - 1) / QBLOCK;
    s.supers = (s.blocks + QSUPER - 1) / QSUPER;
    s.quant_bytes = (size_t)s.groups * s.blocks * quant_tile_bytes(q);
    s.scale_bytes = (size_t)s.groups * s.blocks * quant_scale_bytes(q);
    s.super_bytes = q == QUANT_Q4_K ? (size_t)s.groups * s.supers * QGROUP * 2 * sizeof(uint16_t) : 0;
    return s;
}

/* The 16 rows of a tile as one vector (GCC vector extensions: plain C
 * that becomes AVX-512, AVX2 or SSE code, whatever the target). */
typedef float vf __attribute__((vector_size(4 * R)));
typedef int32_t vi __attribute__((vector_size(4 * R)));

static inline vf vset(float x) { return (vf){0} + x; }
static inline vf vabs(vf x) { return (vf)((vi)x & 0x7fffffff); }
static inline vf vmax(vf a, vf b) { vi m = a > b; return (vf)((m & (vi)a) | (~m & (vi)b)); }
static inline vf vmin(vf a, vf b) { vi m = a < b; return (vf)((m & (vi)a) | (~m & (vi)b)); }
static inline vf vsel(vi m, vf a, vf b) { return (vf)((m & (vi)a) | (~m & (vi)b)); }
static inline vf vclamp(vf x, float lo, float hi) { return vmin(vmax(x, vset(lo)), vset(hi)); }
/* Round to nearest even for |x| < 2^22: adding and removing 1.5 * 2^23
 * leaves the integer the rounding mode picks (nearest even). Compilers keep
 * both operations: without -ffast-math, (x + c) - c is not x. */
static inline vf vround(vf x) {
    const vf big = vset(12582912.0f);
    return (x + big) - big;
}
/* 1 / x where x != 0, else 0 */
static inline vf vinv(vf x) { return vsel(x != 0, vset(1.0f) / vsel(x != 0, x, vset(1.0f)), vset(0)); }
/* x rounded to the nearest float16 (normal range; used to choose scales,
 * the stored ones are converted exactly). */
static inline vf vf16(vf x) {
    vi u = (vi)x;
    u = (u + 0xfff + ((u >> 13) & 1)) & ~0x1fff;
    return (vf)u;
}
static inline vf vload(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }

/* The exact float16 of each row's d: stored, and its value back. */
static vf store_f16(vf d, uint16_t *out) {
    float back[R];
    for (int r = 0; r < R; r++) { out[r] = f32_to_f16(d[r]); back[r] = f16_to_f32(out[r]); }
    return vload(back);
}

/* ---- q8_0: d per (row, block), chosen among max |x| / (127 - k) ---- */

#define Q8_STEPS 8

static void tile_q8(float xt[QBLOCK][R], uint8_t *tile, uint16_t *scales) {
    vf amax = vset(0), best = vset(INFINITY), best_d = vset(0);
    for (int c = 0; c < QBLOCK; c++) amax = vmax(amax, vabs(vload(xt[c])));
    for (int k = 0; k < Q8_STEPS; k++) {
        const vf d = vf16(amax / (127.0f - k)), id = vinv(d);
        vf err = vset(0);
        for (int c = 0; c < QBLOCK; c++) {
            const vf x = vload(xt[c]), e = x - d * vclamp(vround(x * id), -127, 127);
            err += e * e;
        }
        const vi better = err < best;
        best = vsel(better, err, best);
        best_d = vsel(better, d, best_d);
    }
    const vf id = vinv(store_f16(best_d, scales));
    for (int c = 0; c < QBLOCK; c++) {
        const vf q = vclamp(vround(vload(xt[c]) * id), -127, 127) + 128;
        for (int r = 0; r < R; r++) tile[(c / 4) * 64 + r * 4 + c % 4] = (uint8_t)(int)q[r];
    }
}

/* ---- q4_0: w = d (q - 8); d chosen among a few steps ----
 * llama.cpp sets d = m / -8 with m the value of largest magnitude, which
 * maps m to the end of the range exactly; a slightly smaller step often
 * fits the other 31 values better. Tried: d = m / -s for s in 8, 7.75 ...
 * 6.5 and m / 7 (m at the +7 end); the least squared error wins. */

static void pack_nibbles(const vf q[QBLOCK], uint8_t *tile) {
    for (int k = 0; k < 4; k++)
        for (int r = 0; r < R; r++)
            for (int i = 0; i < 4; i++)
                tile[k * 64 + r * 4 + i] = (uint8_t)((int)q[8 * k + i][r] | (int)q[8 * k + 4 + i][r] << 4);
}

static void tile_q4_0(float xt[QBLOCK][R], uint8_t *tile, uint16_t *scales) {
    static const float steps[] = { -8.0f, -7.75f, -7.5f, -7.25f, -7.0f, -6.75f, -6.5f, 7.0f };
    vf m = vset(0), am = vset(0), best = vset(INFINITY), best_d = vset(0);
    for (int c = 0; c < QBLOCK; c++) {
        const vf x = vload(xt[c]), a = vabs(x);
        const vi bigger = a > am;
        am = vsel(bigger, a, am);
        m = vsel(bigger, x, m);
    }
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        const vf d = vf16(m / steps[s]), id = vinv(d);
        vf err = vset(0);
        for (int c = 0; c < QBLOCK; c++) {
            const vf x = vload(xt[c]), e = x - d * vclamp(vround(x * id), -8, 7);
            err += e * e;
        }
        const vi better = err < best;
        best = vsel(better, err, best);
        best_d = vsel(better, d, best_d);
    }
    const vf id = vinv(store_f16(best_d, scales));
    vf q[QBLOCK];
    for (int c = 0; c < QBLOCK; c++) q[c] = vclamp(vround(vload(xt[c]) * id), -8, 7) + 8;
    pack_nibbles(q, tile);
}

/* ---- q4_k: w = d q - m per (row, 16 columns), q in 0..15 ----
 * d, m >= 0 are stored as bytes times per-(row, super-block) float16
 * maxima D / 255, M / 255. Each sub-block's (d, m) comes from a small
 * search: the range [min(x, 0), max x] cut into s steps for s around 15,
 * the values rounded, then the least-squares d and m for those q; the
 * least squared error wins. */

#define KSTEPS 9

static void fit_sub(float xt[QBLOCK][R], int c0, vf *d_out, vf *m_out) {
    vf mn = vset(0), mx = vload(xt[c0]), best = vset(INFINITY);
    *d_out = *m_out = vset(0);
    for (int c = c0; c < c0 + 16; c++) {
        mn = vmin(mn, vload(xt[c]));
        mx = vmax(mx, vload(xt[c]));
    }
    const vf range = mx - mn;
    for (int k = 0; k < KSTEPS; k++) {
        const vf id = vinv(range) * (15.0f + 0.2f * (k - KSTEPS / 2));
        vf sq = vset(0), sqq = vset(0), sx = vset(0), sxq = vset(0), sxx = vset(0);
        for (int c = c0; c < c0 + 16; c++) {
            const vf x = vload(xt[c]), q = vclamp(vround((x - mn) * id), 0, 15);
            sq += q; sqq += q * q; sx += x; sxq += x * q; sxx += x * x;
        }
        /* least squares of x ~ a q + b over 16 points; w = d q - m: d = a, m = -b */
        const vf n = vset(16), var = n * sqq - sq * sq;
        vf a = vmax(vsel(var > 0, (n * sxq - sq * sx) / vsel(var > 0, var, vset(1)), vset(0)), vset(0));
        vf b = (sx - a * sq) / n;
        const vi pos = b > 0;                 /* an offset above 0: fit through 0 instead */
        a = vsel(pos, vmax(sxq * vinv(sqq), vset(0)), a);
        b = vsel(pos, vset(0), b);
        const vf err = sxx - 2 * a * sxq - 2 * b * sx + a * a * sqq + 2 * a * b * sq + n * b * b;
        const vi better = err < best;
        best = vsel(better, err, best);
        *d_out = vsel(better, a, *d_out);
        *m_out = vsel(better, -b, *m_out);
    }
}

static void group_q4_k(float xt_all[][QBLOCK][R], int blocks, int b0, uint8_t *tiles, uint8_t *scales,
                       uint16_t *super) {
    const int nb = blocks - b0 < QSUPER ? blocks - b0 : QSUPER;
    vf d[2 * QSUPER], m[2 * QSUPER], dmax = vset(0), mmax = vset(0);
    for (int j = 0; j < 2 * nb; j++) {
        fit_sub(xt_all[j / 2], (j % 2) * 16, &d[j], &m[j]);
        dmax = vmax(dmax, d[j]);
        mmax = vmax(mmax, m[j]);
    }
    const vf D = store_f16(dmax / 255.0f, super), M = store_f16(mmax / 255.0f, super + R);
    const vf iD = vinv(D), iM = vinv(M);
    for (int b = 0; b < nb; b++) {
        uint8_t *sc = scales + (size_t)b * 64;
        vf q[QBLOCK];
        for (int h = 0; h < 2; h++) {
            const vf sd = vclamp(vround(d[2 * b + h] * iD), 0, 255), sm = vclamp(vround(m[2 * b + h] * iM), 0, 255);
            for (int r = 0; r < R; r++) { sc[16 * h + r] = (uint8_t)(int)sd[r]; sc[32 + 16 * h + r] = (uint8_t)(int)sm[r]; }
            const vf dq = D * sd, mq = M * sm, id = vinv(dq);
            for (int c = 16 * h; c < 16 * h + 16; c++) q[c] = vclamp(vround((vload(xt_all[b][c]) + mq) * id), 0, 15);
        }
        pack_nibbles(q, tiles + (size_t)b * 256);
    }
}

static inline int get_nibble(const uint8_t *tile, int r, int c) {
    const uint8_t b = tile[(c / 8) * 64 + r * 4 + (c % 8) % 4];
    return c % 8 < 4 ? b & 15 : b >> 4;
}

/* ---- a group of 16 rows ---- */

/* Block b of rows[0..n) (row-major, ld floats apart) transposed into xt,
 * zero past n rows and past cols. */
static void transpose_block(const float *rows, size_t ld, int n, int cols, int b, float xt[QBLOCK][R]) {
    memset(xt, 0, sizeof(float) * QBLOCK * R);
    const int c0 = b * QBLOCK, nc = cols - c0 < QBLOCK ? cols - c0 : QBLOCK;
    for (int r = 0; r < n; r++)
        for (int c = 0; c < nc; c++) xt[c][r] = rows[(size_t)r * ld + c0 + c];
}

void quant_group(enum quant_type q, const float *rows, size_t ld, int n, int cols, int g,
                 uint8_t *quants, uint8_t *scales, uint16_t *supers) {
    const struct qshape sh = quant_shape(q, g * QGROUP + n, cols);
    const int tb = quant_tile_bytes(q), sb = quant_scale_bytes(q);
    uint8_t *gq = quants + (size_t)g * sh.blocks * tb, *gs = scales + (size_t)g * sh.blocks * sb;
    if (q != QUANT_Q4_K) {
        float xt[QBLOCK][R];
        for (int b = 0; b < sh.blocks; b++) {
            transpose_block(rows, ld, n, cols, b, xt);
            if (q == QUANT_Q8_0) tile_q8(xt, gq + (size_t)b * tb, (uint16_t *)(gs + (size_t)b * sb));
            else tile_q4_0(xt, gq + (size_t)b * tb, (uint16_t *)(gs + (size_t)b * sb));
        }
        return;
    }
    float xt[QSUPER][QBLOCK][R];
    for (int s = 0; s < sh.supers; s++) {
        const int b0 = s * QSUPER;
        for (int b = b0; b < sh.blocks && b < b0 + QSUPER; b++) transpose_block(rows, ld, n, cols, b, xt[b - b0]);
        group_q4_k(xt, sh.blocks, b0, gq + (size_t)b0 * tb, gs + (size_t)b0 * sb,
                   supers + ((size_t)g * sh.supers + s) * 2 * QGROUP);
    }
}

void dequant_row(enum quant_type q, const uint8_t *quants, const uint8_t *scales, const uint16_t *supers,
                 int rows, int cols, int row, float *dst) {
    const struct qshape sh = quant_shape(q, rows, cols);
    const int tb = quant_tile_bytes(q), sb = quant_scale_bytes(q), g = row / QGROUP, r = row % QGROUP;
    float x[QBLOCK];
    for (int b = 0; b < sh.blocks; b++) {
        const uint8_t *tile = quants + ((size_t)g * sh.blocks + b) * tb;
        const uint8_t *sc = scales + ((size_t)g * sh.blocks + b) * sb;
        if (q == QUANT_Q8_0) {
            const float d = f16_to_f32(((const uint16_t *)sc)[r]);
            for (int c = 0; c < QBLOCK; c++) x[c] = d * (float)(tile[(c / 4) * 64 + r * 4 + c % 4] - 128);
        } else if (q == QUANT_Q4_0) {
            const float d = f16_to_f32(((const uint16_t *)sc)[r]);
            for (int c = 0; c < QBLOCK; c++) x[c] = d * (float)(get_nibble(tile, r, c) - 8);
        } else {
            const uint16_t *sup = supers + ((size_t)g * sh.supers + b / QSUPER) * 2 * QGROUP;
            const float D = f16_to_f32(sup[r]), M = f16_to_f32(sup[QGROUP + r]);
            for (int c = 0; c < QBLOCK; c++) {
                const int h = c / 16;
                x[c] = D * sc[h * 16 + r] * (float)get_nibble(tile, r, c) - M * sc[32 + h * 16 + r];
            }
        }
        const int c0 = b * QBLOCK, nc = cols - c0 < QBLOCK ? cols - c0 : QBLOCK;
        memcpy(dst + c0, x, (size_t)nc * sizeof(float));
    }
}

static const char *const kv_names[KV_COUNT] = { "f32", "f16", "bf16" };

const char *kv_type_name(enum kv_type t) { return t < KV_COUNT ? kv_names[t] : "?"; }

int kv_type_from_name(const char *name, enum kv_type *out) {
    for (int t = 0; t < KV_COUNT; t++)
        if (!strcmp(name, kv_names[t])) { *out = (enum kv_type)t; return 0; }
    return -1;
}
