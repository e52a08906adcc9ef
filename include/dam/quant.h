/* quant.h — number formats: weights quantized at load, activations as
 * int8 blocks, KV cache elements.
 *
 * `--quant` converts the model's matrices once, after mapping the
 * safetensors (nothing is written anywhere), into blocks of 32 columns:
 *   q8_0  w = d q, q in -127..127, stored as the byte q + 128; one float16
 *         d per (row, block)                                  8.5 bits a weight
 *   q4_0  w = d (q - 8), q in 0..15, two per byte; one float16 d per
 *         (row, block), chosen to minimise the squared error  4.5 bits
 *   q4_k  w = d q - m, q in 0..15, d and m per (row, 16 columns) as bytes
 *         times float16 maxima per (row, 256 columns)         5.1 bits
 * (llama.cpp's formats of the same names are the models; what the model
 * gets in each format, e.g. 8 bits for the embedding: src/model/quantize.c.)
 * The activations a quantized matrix multiplies are quantized per row into
 * the same blocks of 32 (int8, d_x = max |x| / 127), so a block's dot
 * product is a sum of 32 products of bytes in int32, exact, scaled once:
 *   q8_0, q4_0  sum_c w_c x_c = d d_x (sum_c u_c q_c - z s)
 *   q4_k        sum over halves h: d_x (d_h sum_c u_c q_c - m_h s_h)
 * where u is the stored unsigned byte or nibble, z its zero point (128, 8),
 * s = sum_c q_c over the block (s_h over its half): unsigned weight bytes
 * times signed activation bytes is the operand form of the int8 dot-product
 * instructions (AVX512-VNNI vpdpbusd, AVX2 vpmaddubsw).
 *
 * Layout of a quantized (rows, cols) matrix: rows in groups of QGROUP = 16,
 * columns in blocks of QBLOCK = 32 (both padded with zeros). Per (group,
 * block), one tile of 16 rows x 32 columns, tiles stored group by group:
 *   quants  q8_0: 8 slices of 64 bytes; slice k holds, for row r = 0..15,
 *                 the 4 bytes of columns 4k .. 4k+3 at bytes 4r .. 4r+3;
 *           q4_0, q4_k: 4 slices of 64 bytes; slice k, byte 4r + i: low
 *                 nibble = column 8k + i, high nibble = column 8k + 4 + i
 *                 (i < 4): slices 0-1 are columns 0-15, slices 2-3 16-31;
 *   scales  (a second array, same tile order) q8_0, q4_0: 16 float16 d,
 *           one per row; q4_k: 64 bytes: d bytes of the first half (16
 *           rows), of the second half, then m bytes of each half;
 *   supers  (q4_k only, a third array) per (group, 8 blocks): 16 float16
 *           D then 16 float16 M; d = D * byte, m = M * byte.
 * So one 64-byte load gives 4 columns of 16 rows, one broadcast 32-bit
 * activation word multiplies all of them, and the 16 int32 lanes of the
 * result are the 16 rows' sums: no horizontal reduction, and a group's
 * output is 16 consecutive floats. A thread that takes consecutive groups
 * reads one contiguous stream of quants and one of scales. */
#ifndef DAM_QUANT_H
#define DAM_QUANT_H

#include <stddef.h>
#include <stdint.h>

enum quant_type { QUANT_NONE, QUANT_Q8_0, QUANT_Q4_0, QUANT_Q4_K, QUANT_COUNT };

#define QGROUP 16
#define QBLOCK 32
#define QSUPER 8        /* q4_k: blocks per (D, M) pair */

/* "none", "q8_0", "q4_0", "q4_k" */
const char *quant_name(enum quant_type q);
/* 0 and *out set, or -1 when unknown (no message). */
int quant_from_name(const char *name, enum quant_type *out);
/* "none, q8_0, q4_0, q4_k", for messages */
const char *quant_names(void);

/* Bytes of quants and of scales in one (group, block) tile, and the zero
 * point of the stored unsigned values (q4_k: none, its mins say it). */
static inline int quant_tile_bytes(enum quant_type q) { return q == QUANT_Q8_0 ? 512 : 256; }
static inline int quant_scale_bytes(enum quant_type q) { return q == QUANT_Q4_K ? 64 : 32; }
static inline int quant_zero(enum quant_type q) { return q == QUANT_Q8_0 ? 128 : q == QUANT_Q4_0 ? 8 : 0; }

/* Geometry of a quantized matrix. */
struct qshape {
    int groups, blocks, supers;   /* row groups, column blocks, super-blocks (q4_k) */
    size_t quant_bytes, scale_bytes, super_bytes;
};
struct qshape quant_shape(enum quant_type q, int rows, int cols);

/* Quantizes row group g: rows (n <= 16 float32 rows of cols values, ld
 * apart; rows past n are zeros) into its tiles of quants, scales and
 * supers, the three arrays of the whole matrix laid out as above. */
void quant_group(enum quant_type q, const float *rows, size_t ld, int n, int cols, int g,
                 uint8_t *quants, uint8_t *scales, uint16_t *supers);
/* Row `row` of a quantized matrix back to float32 (cols values). */
void dequant_row(enum quant_type q, const uint8_t *quants, const uint8_t *scales, const uint16_t *supers,
                 int rows, int cols, int row, float *dst);

/* ---- activations ----
 * n rows of cols floats as int8 blocks: row i's bytes at q + i * ldq (ldq =
 * blocks * 32, padded with zeros), its block scales d[i * blocks + b],
 * block sums s[i * blocks + b] and half-block sums h[i * 2 * blocks + 2b + j]
 * (j = 0, 1: columns 0-15, 16-31) of the int8 values.
 * With r non-NULL (q8_0 weights), a second byte per value: x = d (q + r /
 * QRES) to within d / (2 QRES), with its block sums in rs. One int8 per
 * activation is what limits q8_0: on the testbed's held-out prose it alone
 * costs a KL of 2.5e-4 against float32 activations (top-1 0.990), 2.5x the
 * error of the 8-bit weights; the second byte takes it to nothing for one
 * more vpdpbusd per weight load (the weights are read once either way). */
#define QRES 254
struct qinput {
    int8_t *q, *r;
    float *d;
    int32_t *s, *h, *rs;
    int n, blocks;
    size_t ldq;
};

/* ---- KV cache elements (--kv-type) ----
 * What an attention module stores keys and values as. 16-bit elements are
 * converted to float32 in registers by the attention kernels (exactly for
 * BF16 and F16 -> F32); storing rounds to nearest even. */
enum kv_type { KV_F32, KV_F16, KV_BF16, KV_COUNT };

/* "f32", "f16", "bf16" */
const char *kv_type_name(enum kv_type t);
/* 0 and *out set, or -1 when unknown (no message). */
int kv_type_from_name(const char *name, enum kv_type *out);
static inline size_t kv_type_size(enum kv_type t) { return t == KV_F32 ? 4 : 2; }

#endif
