/* model.h — what a model is: its configuration, its weights, and the state of
 * one inference session (activations, attention module, position).
 *
 * Weights stay in the dtype they were stored in (F32, F16 or BF16), mapped
 * straight from the safetensors files; kernels convert to float32 in
 * registers. Activations are float32. */
#ifndef DAM_MODEL_H
#define DAM_MODEL_H

#include <stdint.h>
#include "dam/quant.h"
#include "dam/safetensors.h"

#define MAX_EOS_IDS 8

enum rope_kind { ROPE_DEFAULT, ROPE_LINEAR, ROPE_LLAMA3 };

/* The architectures dam runs. Doge (DogeForCausalLM, dense MLP) is Llama plus
 * learned residual scales, optional per-head q/k RMSNorm and the Dynamic
 * Mask Attention weights (docs: ../shared/docs/DMA.md, src/attn/dma.c). */
enum model_arch { ARCH_LLAMA, ARCH_DOGE };

struct model_config {
    int dim;               /* hidden_size */
    int hidden_dim;        /* intermediate_size */
    int n_layers;          /* num_hidden_layers */
    int n_heads;           /* num_attention_heads */
    int n_kv_heads;        /* num_key_value_heads (default n_heads) */
    int head_dim;          /* head_dim (default dim / n_heads) */
    int vocab_size;
    int max_seq_len;       /* max_position_embeddings */
    float norm_eps;        /* rms_norm_eps */
    float rope_theta;
    enum rope_kind rope_kind;
    float rope_factor;             /* linear and llama3 */
    float rope_low_freq_factor;    /* llama3 */
    float rope_high_freq_factor;   /* llama3 */
    int rope_original_max_pos;     /* llama3 */
    int tie_embeddings;
    int bos_id;                    /* -1 when absent */
    int n_eos;
    int eos_ids[MAX_EOS_IDS];      /* config.json plus generation_config.json */
    enum model_arch arch;
    int keep_window_size;          /* doge: keys each query keeps (DMA top-w), default 2048 */
};

/* Reads <dir>/config.json (and generation_config.json for extra EOS ids).
 * Unsupported architectures, rope types or options are errors. */
int config_load(const char *dir, struct model_config *cfg);
/* Parses a config.json text (no file access); used by config_load and tests. */
int config_parse(const char *json, size_t len, const char *what, struct model_config *cfg);
int config_is_eos(const struct model_config *cfg, int token);

/* A 2-D weight matrix (rows, cols), row-major, in its stored dtype, or
 * quantized at load (include/dam/quant.h): then data holds the quants,
 * scales and supers the other two arrays of the tiled layout described there.
 * Linear layers are stored as (out_features, in_features). */
struct tensor {
    enum dtype dtype;          /* as stored in the checkpoint */
    int rows, cols;
    const void *data;
    enum quant_type quant;     /* QUANT_NONE: data is (rows, cols) in dtype */
    const uint8_t *scales;     /* quantized: block scales */
    const uint16_t *supers;    /* q4_k: the float16 maxima of the scales */
};

/* Bytes a kernel reads to use the whole matrix (quants and scales when
 * quantized). */
size_t tensor_bytes(const struct tensor *t);

struct layer_weights {
    struct tensor attn_norm;   /* (1, dim) */
    struct tensor wq;          /* (n_heads * head_dim, dim) */
    struct tensor wk;          /* (n_kv_heads * head_dim, dim) */
    struct tensor wv;          /* (n_kv_heads * head_dim, dim) */
    struct tensor wo;          /* (dim, n_heads * head_dim) */
    struct tensor mlp_norm;    /* (1, dim) */
    struct tensor w_gate;      /* (hidden_dim, dim) */
    struct tensor w_up;        /* (hidden_dim, dim) */
    struct tensor w_down;      /* (dim, hidden_dim) */
    /* Doge only; NULL (data NULL) for Llama. The vectors are float32 copies. */
    const float *q_norm;       /* (head_dim) RMSNorm of every q head before RoPE; NULL when absent */
    const float *k_norm;       /* (head_dim) the same for k */
    const float *input_residual;          /* (dim) x = input_residual ⊙ x + attention */
    const float *post_attention_residual; /* (dim) x = post_attention_residual ⊙ x + mlp */
    struct tensor dt_proj;     /* (dma_heads, n_kv_heads * head_dim): dt from the values */
    const float *dma_A;        /* (dma_heads) δ = exp(A · softplus(dt)) */
};

struct model {
    char *dir;
    struct model_config cfg;
    int n_files;
    struct st_file **files;    /* (n_files) mapped shards */
    struct tensor embed;       /* (vocab_size, dim) */
    struct layer_weights *layers;  /* (n_layers) */
    struct tensor final_norm;  /* (1, dim) */
    struct tensor lm_head;     /* (vocab_size, dim); the embedding when tied */
    float *norm_f32;           /* (n_layers * 2 + 1, dim) norm weights as float32 */
    float *doge_f32;           /* Doge per-layer vectors as float32 (what layer_weights points into) */
    int dma_heads;             /* Doge: heads with their own δ and mask: n_kv_heads, or n_heads
                                  (an older generation); 0 = no DMA weights */
    size_t weight_bytes;       /* bytes of all weights as used (quantized: quants and scales) */
    enum quant_type quant;     /* what --quant asked for (QUANT_NONE: weights as stored) */
    void *quant_mem;           /* the quantized matrices (one mapping of quant_bytes) */
    size_t quant_bytes;
    double quant_ms;           /* time quantizing took at load */
    int64_t n_params;
};

/* Loads config.json and model.safetensors or model.safetensors.index.json
 * from dir. Shapes are checked against the config. */
struct model *model_load(const char *dir);
void model_free(struct model *m);
/* Quantizes every matrix of a loaded model (the projections, the MLP, the
 * embedding and lm_head) into q; the mapped checkpoint is only read.
 * Which matrices get which format: quantize.c. 0, or -1 + dam_fail (out
 * of memory: the model is then unchanged). */
int model_quantize(struct model *m, enum quant_type q);

/* A key for the content of a loaded model, for caches of what is derived
 * from its weights: 64 hex digits of SHA-256 over config.json, every
 * safetensors header and samples of every tensor's bytes (first, middle and
 * last 4 KiB, 256 points in between), so two checkpoints with the same names
 * and sizes get different keys. Milliseconds, even for large models
 * (src/model/content_key.c). -1 + dam_fail on error. */
int model_content_key(const struct model *m, char hex[65]);

/* Where to find a model given -m (may be NULL): the argument itself, else
 * $DAM_MODEL, else the model embedded under third_party/. A repo id
 * ("org/name") is resolved through the hub cache when the hub client is
 * built in. Writes a directory path into out. */
int model_resolve_dir(const char *arg, char *out, size_t size);

#endif
