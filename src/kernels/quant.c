/* quant.c — weights into the blocked layouts of quant.h, and back.
 *
 * One (row, block of 32) at a time: the scale, the quantized values, then
 * the bytes placed where the tile layout wants them. This runs once per
 * weight at load, on every thread (src/model/quantize.c), so the loops are
 * kept simple enough for the compiler to vectorise. */
#include "dam/quant.h"
#include "dam/kernels.h"
#include <math.h>
#include <string.h>

static const char *const names[QUANT_COUNT] = { "none", "q8_0", "q4_0" };

const char *quant_name(enum quant_type q) { return q < QUANT_COUNT ? names[q] : "?"; }

int quant_from_name(const char *name, enum quant_type *out) {
    for (int q = 0; q < QUANT_COUNT; q++)
        if (!strcmp(name, names[q])) { *out = (enum quant_type)q; return 0; }
    return -1;
}

const char *quant_names(void) { return "none, q8_0, q4_0"; }

struct qshape quant_shape(enum quant_type q, int rows, int cols) {
    struct qshape s;
    s.groups = (rows + QGROUP - 1) / QGROUP;
    s.blocks = (cols + QBLOCK - 1) / QBLOCK;
    s.quant_bytes = (size_t)s.groups * s.blocks * quant_tile_bytes(q);
    s.scale_bytes = (size_t)s.groups * s.blocks * QGROUP * sizeof(uint16_t);
    return s;
}

/* ---- one block of 32 values ---- */

/* q8_0: d = max |x| / 127, q = round(x / d); stored q + 128. */
static float block_q8(const float *x, uint8_t *u) {
    float amax = 0;
    for (int i = 0; i < QBLOCK; i++) amax = fmaxf(amax, fabsf(x[i]));
    const float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0;
    for (int i = 0; i < QBLOCK; i++) u[i] = (uint8_t)(128 + (int)nearbyintf(x[i] * id));
    return d;
}

/* Squared error of x against d * (q - 8) for the q that rounding x / d gives. */
static float q4_error(const float *x, float d, uint8_t *q) {
    const float id = d != 0 ? 1.0f / d : 0;
    float err = 0;
    for (int i = 0; i < QBLOCK; i++) {
        float v = nearbyintf(x[i] * id);
        v = v < -8 ? -8 : v > 7 ? 7 : v;
        q[i] = (uint8_t)(v + 8);
        const float e = x[i] - d * v;
        err += e * e;
    }
    return err;
}

/* q4_0: q in 0..15 (w = d (q - 8)). llama.cpp sets d = m / -8 with m the
 * value of largest magnitude, which maps m to the end of the range (-8)
 * exactly; a slightly smaller step often fits the other 31 values better.
 * Tried: d = m / -s for s in 8, 7.75, 7.5 ... 6.5 and m / 7 (m at +7 end);
 * the one with the least squared error is kept. */
static float block_q4(const float *x, uint8_t *q) {
    float m = 0;
    for (int i = 0; i < QBLOCK; i++) if (fabsf(x[i]) > fabsf(m)) m = x[i];
    if (m == 0) { memset(q, 8, QBLOCK); return 0; }
    static const float steps[] = { -8.0f, -7.75f, -7.5f, -7.25f, -7.0f, -6.75f, -6.5f, 7.0f };
    uint8_t tmp[QBLOCK];
    float best_d = m / steps[0], best = q4_error(x, best_d, q);
    for (size_t k = 1; k < sizeof steps / sizeof steps[0]; k++) {
        const float d = m / steps[k], err = q4_error(x, d, tmp);
        if (err < best) { best = err; best_d = d; memcpy(q, tmp, QBLOCK); }
    }
    return best_d;
}

/* ---- tiles ---- */

void quant_rows(enum quant_type q, const float *src, size_t ld_src, int rows, int cols, int r0, int r1,
                uint8_t *quants, uint16_t *scales) {
    const struct qshape sh = quant_shape(q, rows, cols);
    const int tb = quant_tile_bytes(q);
    float x[QBLOCK];
    uint8_t u[QBLOCK];
    for (int r = r0; r < r1; r++) {
        const int g = r / QGROUP, rr = r % QGROUP;
        for (int b = 0; b < sh.blocks; b++) {
            const int c0 = b * QBLOCK, nc = cols - c0 < QBLOCK ? cols - c0 : QBLOCK;
            memset(x, 0, sizeof x);
            if (r < rows) memcpy(x, src + (size_t)(r - r0) * ld_src + c0, (size_t)nc * sizeof(float));
            const float d = q == QUANT_Q8_0 ? block_q8(x, u) : block_q4(x, u);
            uint8_t *tile = quants + ((size_t)g * sh.blocks + b) * tb;
            scales[((size_t)g * sh.blocks + b) * QGROUP + rr] = f32_to_f16(d);
            if (q == QUANT_Q8_0) {
                for (int k = 0; k < 8; k++) memcpy(tile + k * 64 + rr * 4, u + 4 * k, 4);
            } else {
                for (int k = 0; k < 4; k++)
                    for (int i = 0; i < 4; i++)
                        tile[k * 64 + rr * 4 + i] = (uint8_t)(u[8 * k + i] | u[8 * k + 4 + i] << 4);
            }
        }
    }
}

void dequant_row(enum quant_type q, const uint8_t *quants, const uint16_t *scales, int rows, int cols,
                 int row, float *dst) {
    const struct qshape sh = quant_shape(q, rows, cols);
    const int tb = quant_tile_bytes(q), g = row / QGROUP, rr = row % QGROUP;
    float x[QBLOCK];
    for (int b = 0; b < sh.blocks; b++) {
        const uint8_t *tile = quants + ((size_t)g * sh.blocks + b) * tb;
        const float d = f16_to_f32(scales[((size_t)g * sh.blocks + b) * QGROUP + rr]);
        if (q == QUANT_Q8_0) {
            for (int k = 0; k < 8; k++)
                for (int i = 0; i < 4; i++) x[4 * k + i] = d * (float)(tile[k * 64 + rr * 4 + i] - 128);
        } else {
            for (int k = 0; k < 4; k++)
                for (int i = 0; i < 4; i++) {
                    const uint8_t v = tile[k * 64 + rr * 4 + i];
                    x[8 * k + i] = d * (float)((v & 15) - 8);
                    x[8 * k + 4 + i] = d * (float)((v >> 4) - 8);
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
