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
#ifndef Q8_STEPS
#define Q8_STEPS 8
#endif

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

static inline float f16_round(float x) { return f16_to_f32(f32_to_f16(x)); }

/* Places value u (< 16) of (row r, column c) of a nibble tile. */
static inline void put_nibble(uint8_t *tile, int r, int c, int u) {
    const int k = c / 8, i = c % 8;
    uint8_t *b = tile + k * 64 + r * 4 + (i & 3);
    *b = i < 4 ? (uint8_t)((*b & 0xf0) | u) : (uint8_t)((*b & 0x0f) | u << 4);
}

static inline int get_nibble(const uint8_t *tile, int r, int c) {
    const int k = c / 8, i = c % 8;
    const uint8_t b = tile[k * 64 + r * 4 + (i & 3)];
    return i < 4 ? b & 15 : b >> 4;
}

/* ---- q8_0: d = max |x| / 127 per (row, block) ---- */

static void tile_q8(float xt[QBLOCK][R], uint8_t *tile, uint16_t *scales) {
    float amax[R] = {0}, best[R], best_d[R];
    for (int c = 0; c < QBLOCK; c++)
        for (int r = 0; r < R; r++) {
            const float a = fabsf(xt[c][r]);
            amax[r] = a > amax[r] ? a : amax[r];
        }
    for (int r = 0; r < R; r++) { best[r] = INFINITY; best_d[r] = 0; }
    for (int k = 0; k < Q8_STEPS; k++) {
        float d[R], id[R], err[R] = {0};
        for (int r = 0; r < R; r++) {
            d[r] = f16_round(amax[r] / (127.0f - k));
            id[r] = d[r] > 0 ? 1.0f / d[r] : 0;
        }
        for (int c = 0; c < QBLOCK; c++)
            for (int r = 0; r < R; r++) {
                float v = nearbyintf(xt[c][r] * id[r]);
                v = v < -127 ? -127 : v > 127 ? 127 : v;
                const float e = xt[c][r] - d[r] * v;
                err[r] += e * e;
            }
        for (int r = 0; r < R; r++)
            if (err[r] < best[r]) { best[r] = err[r]; best_d[r] = d[r]; }
    }
    float id[R];
    for (int r = 0; r < R; r++) {
        id[r] = best_d[r] > 0 ? 1.0f / best_d[r] : 0;
        scales[r] = f32_to_f16(best_d[r]);
    }
    for (int c = 0; c < QBLOCK; c++)
        for (int r = 0; r < R; r++) {
            float v = nearbyintf(xt[c][r] * id[r]);
            v = v < -127 ? -127 : v > 127 ? 127 : v;
            tile[(c / 4) * 64 + r * 4 + c % 4] = (uint8_t)(128 + (int)v);
        }
}

/* ---- q4_0: w = d (q - 8); d chosen among a few steps ----
 * llama.cpp sets d = m / -8 with m the value of largest magnitude, which
 * maps m to the end of the range exactly; a slightly smaller step often
 * fits the other 31 values better. Tried: d = m / -s for s in 8, 7.75 ...
 * 6.5 and m / 7 (m at the +7 end); the least squared error wins. */

static void tile_q4_0(float xt[QBLOCK][R], uint8_t *tile, uint16_t *scales) {
    static const float steps[] = { -8.0f, -7.75f, -7.5f, -7.25f, -7.0f, -6.75f, -6.5f, 7.0f };
    float m[R] = {0}, am[R] = {0}, best[R], best_d[R];
    for (int c = 0; c < QBLOCK; c++)
        for (int r = 0; r < R; r++) {
            const float a = fabsf(xt[c][r]);
            if (a > am[r]) { am[r] = a; m[r] = xt[c][r]; }
        }
    for (int r = 0; r < R; r++) { best[r] = INFINITY; best_d[r] = 0; }
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        float d[R], id[R], err[R] = {0};
        for (int r = 0; r < R; r++) {
            d[r] = f16_round(m[r] / steps[s]);
            id[r] = d[r] != 0 ? 1.0f / d[r] : 0;
        }
        for (int c = 0; c < QBLOCK; c++)
            for (int r = 0; r < R; r++) {
                float v = nearbyintf(xt[c][r] * id[r]);
                v = v < -8 ? -8 : v > 7 ? 7 : v;
                const float e = xt[c][r] - d[r] * v;
                err[r] += e * e;
            }
        for (int r = 0; r < R; r++)
            if (err[r] < best[r]) { best[r] = err[r]; best_d[r] = d[r]; }
    }
    float id[R];
    for (int r = 0; r < R; r++) {
        id[r] = best_d[r] != 0 ? 1.0f / best_d[r] : 0;
        scales[r] = f32_to_f16(best_d[r]);
    }
    memset(tile, 0, 256);
    for (int c = 0; c < QBLOCK; c++)
        for (int r = 0; r < R; r++) {
            float v = nearbyintf(xt[c][r] * id[r]);
            v = v < -8 ? -8 : v > 7 ? 7 : v;
            put_nibble(tile, r, c, (int)v + 8);
        }
}

/* ---- q4_k: w = d q - m per (row, 16 columns), q in 0..15 ----
 * d, m >= 0 are stored as bytes times per-(row, super-block) float16
 * maxima D / 255, M / 255. Each sub-block's (d, m) comes from a small
 * search: the range [min(x, 0), max x] cut into s steps for s around 15,
 * the values rounded, then the least-squares d and m for those q; the
 * least squared error wins. */

#define KSTEPS 9

static void fit_sub(float xt[QBLOCK][R], int c0, float *d_out, float *m_out) {
    float mn[R], mx[R], best[R];
    for (int r = 0; r < R; r++) { mn[r] = 0; mx[r] = xt[c0][r]; best[r] = INFINITY; d_out[r] = m_out[r] = 0; }
    for (int c = c0; c < c0 + 16; c++)
        for (int r = 0; r < R; r++) {
            mn[r] = xt[c][r] < mn[r] ? xt[c][r] : mn[r];
            mx[r] = xt[c][r] > mx[r] ? xt[c][r] : mx[r];
        }
    for (int k = 0; k < KSTEPS; k++) {
        const float steps = 15.0f + 0.2f * (k - KSTEPS / 2);
        float id[R], sq[R] = {0}, sqq[R] = {0}, sx[R] = {0}, sxq[R] = {0}, sxx[R] = {0};
        for (int r = 0; r < R; r++) id[r] = mx[r] > mn[r] ? steps / (mx[r] - mn[r]) : 0;
        for (int c = c0; c < c0 + 16; c++)
            for (int r = 0; r < R; r++) {
                float q = nearbyintf((xt[c][r] - mn[r]) * id[r]);
                q = q < 0 ? 0 : q > 15 ? 15 : q;
                sq[r] += q; sqq[r] += q * q; sx[r] += xt[c][r]; sxq[r] += xt[c][r] * q;
                sxx[r] += xt[c][r] * xt[c][r];
            }
        for (int r = 0; r < R; r++) {
            /* least squares of x ~ a q + b over 16 points; w = d q - m: d = a, m = -b */
            const float n = 16, var = n * sqq[r] - sq[r] * sq[r];
            float a = var > 0 ? (n * sxq[r] - sq[r] * sx[r]) / var : 0, b = (sx[r] - a * sq[r]) / n;
            if (a < 0) a = 0;
            if (b > 0) { b = 0; a = sqq[r] > 0 ? sxq[r] / sqq[r] : 0; if (a < 0) a = 0; }
            /* squared error of a q + b, from the sums */
            const float err = sxx[r] - 2 * a * sxq[r] - 2 * b * sx[r] + a * a * sqq[r] + 2 * a * b * sq[r] + n * b * b;
            if (err < best[r]) { best[r] = err; d_out[r] = a; m_out[r] = -b; }
        }
    }
}

static void group_q4_k(float xt_all[][QBLOCK][R], int blocks, int b0, uint8_t *tiles, uint8_t *scales,
                       uint16_t *super) {
    const int nb = blocks - b0 < QSUPER ? blocks - b0 : QSUPER;
    float d[2 * QSUPER][R], m[2 * QSUPER][R], dmax[R] = {0}, mmax[R] = {0};
    for (int j = 0; j < 2 * nb; j++) {
        fit_sub(xt_all[j / 2], (j % 2) * 16, d[j], m[j]);
        for (int r = 0; r < R; r++) {
            dmax[r] = d[j][r] > dmax[r] ? d[j][r] : dmax[r];
            mmax[r] = m[j][r] > mmax[r] ? m[j][r] : mmax[r];
        }
    }
    float D[R], M[R];
    for (int r = 0; r < R; r++) {
        D[r] = f16_round(dmax[r] / 255.0f);
        M[r] = f16_round(mmax[r] / 255.0f);
        super[r] = f32_to_f16(D[r]);
        super[R + r] = f32_to_f16(M[r]);
    }
    for (int j = 0; j < 2 * nb; j++) {
        uint8_t *sc = scales + (size_t)(j / 2) * 64, *tile = tiles + (size_t)(j / 2) * 256;
        float dq[R], mq[R], id[R];
        for (int r = 0; r < R; r++) {
            const int sd = D[r] > 0 ? (int)nearbyintf(d[j][r] / D[r]) : 0, sm = M[r] > 0 ? (int)nearbyintf(m[j][r] / M[r]) : 0;
            sc[(j % 2) * 16 + r] = (uint8_t)(sd > 255 ? 255 : sd);
            sc[32 + (j % 2) * 16 + r] = (uint8_t)(sm > 255 ? 255 : sm);
            dq[r] = D[r] * sc[(j % 2) * 16 + r];
            mq[r] = M[r] * sc[32 + (j % 2) * 16 + r];
            id[r] = dq[r] > 0 ? 1.0f / dq[r] : 0;
        }
        if (j % 2 == 0) memset(tile, 0, 256);
        for (int c = (j % 2) * 16; c < (j % 2) * 16 + 16; c++)
            for (int r = 0; r < R; r++) {
                float q = nearbyintf((xt_all[j / 2][c][r] + mq[r]) * id[r]);
                q = q < 0 ? 0 : q > 15 ? 15 : q;
                put_nibble(tile, r, c, (int)q);
            }
    }
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
