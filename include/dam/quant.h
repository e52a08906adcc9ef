/* quant.h — weights quantized at load, and the int8 form of activations.
 *
 * `--quant q8_0|q4_0` converts the model's matrices once, after mapping the
 * safetensors (nothing is written anywhere), into blocks of 32 columns with
 * one scale per (row, block), as llama.cpp's formats of the same names:
 *   q8_0  w = d * q, q in -127..127, stored as the byte q + 128    8.5 bits a weight
 *   q4_0  w = d * (q - 8), q in 0..15, two per byte                 4.5 bits a weight
 * d is a float16. q4_0's scale is chosen per block to minimise the squared
 * error over a few candidates (llama.cpp takes max |w| / 8).
 * The activations a quantized matrix multiplies are quantized per row into
 * the same blocks of 32 (int8, d = max |x| / 127), so a block's dot product
 * is a sum of 32 products of bytes in int32, exact, scaled once by d_w d_x:
 *   sum_c w_c x_c = d_w d_x (sum_c u_c q_c - z sum_c q_c)
 * where u is the stored unsigned byte (q + 128 or the nibble) and z its zero
 * point (128, 8): unsigned weight bytes times signed activation bytes is
 * the operand form of the int8 dot-product instructions (AVX512-VNNI
 * vpdpbusd, AVX2 vpmaddubsw), and z sum q is known per activation block.
 *
 * Layout of a quantized (rows, cols) matrix: rows in groups of QGROUP = 16,
 * columns in blocks of QBLOCK = 32 (both padded with zeros). Per (group,
 * block), one tile of 16 rows x 32 columns, tiles stored group by group:
 *   quants  q8_0: 8 slices of 64 bytes; slice k holds, for row r = 0..15,
 *                 the 4 bytes of columns 4k .. 4k+3 at bytes 4r .. 4r+3;
 *           q4_0: 4 slices of 64 bytes; slice k, byte 4r + i: low nibble =
 *                 column 8k + i, high nibble = column 8k + 4 + i (i < 4);
 *   scales  16 float16, one per row, in a separate array in the same
 *           (group, block) order.
 * So one 64-byte load gives 4 columns of 16 rows, one broadcast 32-bit
 * activation word multiplies all of them, and the 16 int32 lanes of the
 * result are the 16 rows' sums: no horizontal reduction, and a group's
 * output is 16 consecutive floats. A thread that takes consecutive groups
 * reads one contiguous stream of quants and one of scales. */
#ifndef DAM_QUANT_H
#define DAM_QUANT_H

#include <stddef.h>
#include <stdint.h>

enum quant_type { QUANT_NONE, QUANT_Q8_0, QUANT_Q4_0, QUANT_COUNT };

#define QGROUP 16
#define QBLOCK 32

/* "none", "q8_0", "q4_0" */
const char *quant_name(enum quant_type q);
/* 0 and *out set, or -1 when unknown (no message). */
int quant_from_name(const char *name, enum quant_type *out);
/* "none, q8_0, q4_0", for messages */
const char *quant_names(void);

/* Bytes of quants in one (group, block) tile, and the zero point of the
 * stored unsigned values. */
static inline int quant_tile_bytes(enum quant_type q) { return q == QUANT_Q8_0 ? 512 : 256; }
static inline int quant_zero(enum quant_type q) { return q == QUANT_Q8_0 ? 128 : 8; }

/* Geometry of a quantized matrix. */
struct qshape {
    int groups, blocks;        /* row groups, column blocks */
    size_t quant_bytes;        /* groups * blocks * tile bytes */
    size_t scale_bytes;        /* groups * blocks * 16 * 2 */
};
struct qshape quant_shape(enum quant_type q, int rows, int cols);

/* Quantizes rows [r0, r1) (whole groups: r0 a multiple of 16) of a (rows,
 * cols) matrix of float32 rows into quants / scales laid out as above for
 * the whole matrix. Rows past `rows` are written as zeros. */
void quant_rows(enum quant_type q, const float *src, size_t ld_src, int rows, int cols, int r0, int r1,
                uint8_t *quants, uint16_t *scales);
/* Row `row` of a quantized matrix back to float32 (cols values). */
void dequant_row(enum quant_type q, const uint8_t *quants, const uint16_t *scales, int rows, int cols,
                 int row, float *dst);

/* ---- activations ----
 * n rows of cols floats as int8 blocks: row i's bytes at q + i * ldq (ldq =
 * blocks * 32, padded with zeros), its block scales d[i * blocks + b] and
 * block sums s[i * blocks + b] = sum of the 32 int8 values. */
struct qinput {
    int8_t *q;
    float *d;
    int32_t *s;
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
