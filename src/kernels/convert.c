/* convert.c — dtype conversions: F16/BF16 <-> F32, scalar and row-wise.
 * The three stored weight dtypes (and quantized matrices, quant.c) sit side
 * by side in tensor_row_f32, the KV cache's element types in kv_row_f32. */
#include "dam/kernels.h"
#include <string.h>
#if defined(__F16C__) || defined(__AVX2__)
#include <immintrin.h>
#endif

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {             /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) { mant <<= 1; exp--; }
            mant &= 0x3ff;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 31) {  /* inf / nan */
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    union { uint32_t u; float f; } v = { .u = bits };
    return v.f;
}

uint16_t f32_to_bf16(float f) {
    union { float f; uint32_t u; } v = { .f = f };
    if ((v.u & 0x7fffffff) > 0x7f800000) return (uint16_t)((v.u >> 16) | 0x40); /* quiet nan */
    uint32_t rounding = 0x7fff + ((v.u >> 16) & 1);
    return (uint16_t)((v.u + rounding) >> 16);
}

uint16_t f32_to_f16(float f) {
    union { float f; uint32_t u; } v = { .f = f };
    uint32_t sign = (v.u >> 16) & 0x8000;
    uint32_t absu = v.u & 0x7fffffff;
    if (absu > 0x7f800000) return (uint16_t)(sign | 0x7e00);         /* nan */
    if (absu >= 0x477ff000) return (uint16_t)(sign | 0x7c00);         /* overflow -> inf */
    if (absu < 0x38800000) {                                          /* subnormal or zero */
        if (absu < 0x33000000) return (uint16_t)sign;
        uint32_t exp = absu >> 23, mant = (absu & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - exp;        /* 14..24 */
        uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t r = absu + 0xfff + ((absu >> 13) & 1) - ((127 - 15) << 23);
    return (uint16_t)(sign | (r >> 13));
}

static void row_f16(const uint16_t *src, float *dst, int n) {
    int i = 0;
#if defined(__F16C__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
#endif
    for (; i < n; i++) dst[i] = f16_to_f32(src[i]);
}

static void row_bf16(const uint16_t *src, float *dst, int n) {
    int i = 0;
#if defined(__AVX2__)
    for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
#endif
    for (; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

void kv_row_f32(enum kv_type kt, const void *p, int n, float *dst) {
    if (kt == KV_F32) memcpy(dst, p, (size_t)n * sizeof(float));
    else if (kt == KV_F16) row_f16(p, dst, n);
    else row_bf16(p, dst, n);
}

void tensor_row_f32(const struct tensor *w, int row, float *dst) {
    if (w->quant != QUANT_NONE) {
        dequant_row(w->quant, w->data, w->scales, w->supers, w->rows, w->cols, row, dst);
        return;
    }
    size_t off = (size_t)row * (size_t)w->cols;
    switch (w->dtype) {
    case DT_F32: memcpy(dst, (const float *)w->data + off, (size_t)w->cols * sizeof(float)); break;
    case DT_F16: row_f16((const uint16_t *)w->data + off, dst, w->cols); break;
    case DT_BF16: row_bf16((const uint16_t *)w->data + off, dst, w->cols); break;
    default: memset(dst, 0, (size_t)w->cols * sizeof(float)); break;  /* loader admits only the three */
    }
}

size_t tensor_bytes(const struct tensor *t) {
    if (t->quant == QUANT_NONE) return (size_t)t->rows * t->cols * dtype_size(t->dtype);
    const struct qshape sh = quant_shape(t->quant, t->rows, t->cols);
    return sh.quant_bytes + sh.scale_bytes + sh.super_bytes;
}
