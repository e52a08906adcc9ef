/* synth.c — `dam synth`: a model folder of random weights with a given
 * geometry, for speed benchmarks (speed does not depend on weight values).
 *
 * Writes into DIR: config.json (the given file, copied byte for byte),
 * model.safetensors (every tensor a Llama checkpoint has, through the
 * project's own safetensors writer) and, unless --tokenizer none, a
 * byte-level BPE tokenizer.json with exactly vocab_size entries.
 *
 * Weights: normal with standard deviation --std (0.02, like an initialised
 * model), norm weights 1. Each tensor is cut into blocks of BLOCK values and
 * every block has its own random stream seeded from (seed, tensor name,
 * block index): the output is the same for a seed whatever the thread count. */
#include "cli.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include "dam/model.h"
#include "dam/safetensors.h"
#include "dam/threads.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define BLOCK 65536

static void help(FILE *out) {
    fprintf(out,
        "usage: dam synth --config CONFIG.json -o DIR [--dtype bf16|f16|f32] [--seed N]\n"
        "                 [--std X] [--tokenizer byte|none]\n"
        "Writes a model folder of random weights with the geometry of CONFIG.json.\n"
        "  --config FILE          a Hugging Face config.json (LlamaForCausalLM)\n"
        "  -o, --out DIR          output folder (created; files in it are replaced)\n"
        "  --dtype T              weight dtype: bf16 (default), f16 or f32\n"
        "  --seed N               random seed (default 1); same seed, same files\n"
        "  --std X                standard deviation of the weights (default 0.02)\n"
        "  --tokenizer KIND       byte: a byte-level BPE tokenizer.json of vocab_size\n"
        "                         entries (default when vocab_size allows); none: no tokenizer\n");
}

/* ---- random numbers: splitmix64 -> uniform -> normal (Box-Muller) ---- */

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in (0, 1]: never 0, so log() below is finite */
static double uniform01(uint64_t *state) {
    return ((splitmix64(state) >> 11) + 1) * 0x1.0p-53;
}

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;          /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

struct fill {
    void *data;
    enum dtype dt;
    size_t n;
    float std;
    uint64_t base;
};

static void fill_blocks(void *arg, int begin, int end, int thread) {
    const struct fill *f = arg;
    (void)thread;
    for (long b = begin; b < end; b++) {
        uint64_t state = f->base + (uint64_t)b * 0x9e3779b97f4a7c15ull;
        splitmix64(&state);
        size_t i0 = (size_t)b * BLOCK, i1 = i0 + BLOCK < f->n ? i0 + BLOCK : f->n;
        for (size_t i = i0; i < i1; i += 2) {
            double r = sqrt(-2.0 * log(uniform01(&state))), a = 2 * M_PI * uniform01(&state);
            float v[2] = { (float)(f->std * r * cos(a)), (float)(f->std * r * sin(a)) };
            for (size_t j = 0; j < 2 && i + j < i1; j++) {
                if (f->dt == DT_F32) ((float *)f->data)[i + j] = v[j];
                else if (f->dt == DT_BF16) ((uint16_t *)f->data)[i + j] = f32_to_bf16(v[j]);
                else ((uint16_t *)f->data)[i + j] = f32_to_f16(v[j]);
            }
        }
    }
}

/* Fills n values of a tensor with N(0, std²) in dtype dt (2 or 4 bytes each). */
static void fill_normal(void *data, enum dtype dt, size_t n, float std, uint64_t seed, const char *name) {
    struct fill f = { .data = data, .dt = dt, .n = n, .std = std,
                      .base = seed * 0x2545f4914f6cdd1dull ^ hash_name(name) };
    parallel_for((int)((n + BLOCK - 1) / BLOCK), 4, fill_blocks, &f);
}

static void fill_ones(void *data, enum dtype dt, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (dt == DT_F32) ((float *)data)[i] = 1.0f;
        else if (dt == DT_BF16) ((uint16_t *)data)[i] = f32_to_bf16(1.0f);
        else ((uint16_t *)data)[i] = f32_to_f16(1.0f);
    }
}

/* ---- weights ---- */

struct synth_opts {
    enum dtype dtype;
    uint64_t seed;
    float std;
};

/* Adds one tensor (rows, cols), or a vector (cols) when rows == 0. */
static int add_tensor(struct st_writer *w, const struct synth_opts *o, const char *name,
                      int rows, int cols, int ones) {
    size_t n = (size_t)(rows ? rows : 1) * cols;
    void *data = xmalloc(n * dtype_size(o->dtype), name);
    if (!data) return -1;
    if (ones) fill_ones(data, o->dtype, n);
    else fill_normal(data, o->dtype, n, o->std, o->seed, name);
    int64_t shape[2] = { rows, cols };
    int rc = rows ? st_writer_add(w, name, o->dtype, 2, shape, data)
                  : st_writer_add(w, name, o->dtype, 1, shape + 1, data);
    free(data);
    return rc;
}

static int write_weights(const struct model_config *c, const struct synth_opts *o, const char *path) {
    struct st_writer *w = st_writer_new();
    if (!w) return -1;
    const int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    char name[128];
    int rc = add_tensor(w, o, "model.embed_tokens.weight", c->vocab_size, c->dim, 0);
    for (int l = 0; l < c->n_layers && rc == 0; l++) {
        const struct { const char *suffix; int rows, cols, ones; } layer[] = {
            { "input_layernorm.weight", 0, c->dim, 1 },
            { "self_attn.q_proj.weight", q_dim, c->dim, 0 },
            { "self_attn.k_proj.weight", kv_dim, c->dim, 0 },
            { "self_attn.v_proj.weight", kv_dim, c->dim, 0 },
            { "self_attn.o_proj.weight", c->dim, q_dim, 0 },
            { "post_attention_layernorm.weight", 0, c->dim, 1 },
            { "mlp.gate_proj.weight", c->hidden_dim, c->dim, 0 },
            { "mlp.up_proj.weight", c->hidden_dim, c->dim, 0 },
            { "mlp.down_proj.weight", c->dim, c->hidden_dim, 0 },
        };
        for (size_t i = 0; i < sizeof layer / sizeof layer[0] && rc == 0; i++) {
            snprintf(name, sizeof name, "model.layers.%d.%s", l, layer[i].suffix);
            rc = add_tensor(w, o, name, layer[i].rows, layer[i].cols, layer[i].ones);
        }
    }
    if (rc == 0) rc = add_tensor(w, o, "model.norm.weight", 0, c->dim, 1);
    if (rc == 0 && !c->tie_embeddings) rc = add_tensor(w, o, "lm_head.weight", c->vocab_size, c->dim, 0);
    if (rc == 0) rc = st_writer_add_meta(w, "format", "pt");
    if (rc == 0) rc = st_writer_add_meta(w, "dam_synth", "random weights for speed benchmarks");
    if (rc == 0) rc = st_writer_save(w, path);
    st_writer_free(w);
    return rc;
}

/* ---- a byte-level BPE tokenizer of exactly vocab_size entries ----
 * The 256 bytes are tokens (written with GPT-2's byte-to-character map, so
 * every token is printable), the config's special ids are added tokens, and
 * the remaining ids are filled by merges of already existing tokens: first
 * every pair of byte characters, then longer strings. */

/* GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves, the
 * others to 256, 257, ... in byte order. */
static void byte_chars(int map[256]) {
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
        map[b] = printable ? b : 256 + extra++;
    }
}

static int utf8_put(char *p, int cp) {
    if (cp < 0x80) { p[0] = (char)cp; return 1; }
    p[0] = (char)(0xc0 | (cp >> 6));             /* every code point here is < 0x800 */
    p[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
}

static int is_special(const struct model_config *c, int id) {
    if (id == c->bos_id) return 1;
    for (int i = 0; i < c->n_eos; i++) if (c->eos_ids[i] == id) return 1;
    return 0;
}

static cJSON *added_token(int id, const char *content) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "id", id);
    cJSON_AddStringToObject(t, "content", content);
    cJSON_AddBoolToObject(t, "single_word", 0);
    cJSON_AddBoolToObject(t, "lstrip", 0);
    cJSON_AddBoolToObject(t, "rstrip", 0);
    cJSON_AddBoolToObject(t, "normalized", 0);
    cJSON_AddBoolToObject(t, "special", 1);
    return t;
}

static int n_specials(const struct model_config *c) {
    int n = 0;
    for (int id = 0; id < c->vocab_size; id++) n += is_special(c, id);
    return n;
}

static cJSON *build_tokenizer(const struct model_config *c) {
    const int vocab = c->vocab_size;
    int map[256];
    byte_chars(map);
    cJSON *root = cJSON_CreateObject(), *added = cJSON_CreateArray(), *vocab_obj = cJSON_CreateObject(),
          *merges = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddNullToObject(root, "truncation");
    cJSON_AddNullToObject(root, "padding");
    cJSON_AddItemToObject(root, "added_tokens", added);
    cJSON_AddNullToObject(root, "normalizer");
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "ByteLevel");
    cJSON_AddBoolToObject(pre, "add_prefix_space", 0);
    cJSON_AddBoolToObject(pre, "trim_offsets", 1);
    cJSON_AddBoolToObject(pre, "use_regex", 1);
    cJSON_AddNullToObject(root, "post_processor");
    cJSON *dec = cJSON_AddObjectToObject(root, "decoder");
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    cJSON_AddBoolToObject(dec, "add_prefix_space", 1);
    cJSON_AddBoolToObject(dec, "trim_offsets", 1);
    cJSON_AddBoolToObject(dec, "use_regex", 1);
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    cJSON_AddNullToObject(model, "continuing_subword_prefix");
    cJSON_AddNullToObject(model, "end_of_word_suffix");
    cJSON_AddBoolToObject(model, "fuse_unk", 0);
    cJSON_AddBoolToObject(model, "byte_fallback", 0);
    cJSON_AddBoolToObject(model, "ignore_merges", 0);
    cJSON_AddItemToObject(model, "vocab", vocab_obj);
    cJSON_AddItemToObject(model, "merges", merges);

    /* tokens in id order: (text, made of left + right) */
    char (*text)[16] = calloc((size_t)vocab, sizeof *text);
    if (!text) { cJSON_Delete(root); return NULL; }
    int next_id = 0, n_base = 0, base[256];
    for (int id = 0; id < vocab; id++) {
        if (is_special(c, id)) {
            const char *name = id == c->bos_id ? "<|bos|>" : "<|eos|>";
            char buf[32];
            if (id != c->bos_id && c->n_eos > 1) snprintf(buf, sizeof buf, "<|eos_%d|>", id);
            else snprintf(buf, sizeof buf, "%s", name);
            cJSON_AddItemToArray(added, added_token(id, buf));
            cJSON_AddNumberToObject(vocab_obj, buf, id);
        }
    }
    /* the 256 bytes at the first free ids */
    for (int b = 0; b < 256; b++) {
        while (is_special(c, next_id)) next_id++;
        int len = utf8_put(text[next_id], map[b]);
        text[next_id][len] = 0;
        cJSON_AddNumberToObject(vocab_obj, text[next_id], next_id);
        base[n_base++] = next_id++;
    }
    /* merges: order[left] + byte b, b = 0..255, then the next left; order
     * lists the tokens in creation order (the bytes first), so all two-byte
     * tokens come before any three-byte one */
    int left = 0;                          /* index into order: the left part of the next merge */
    int *order = malloc((size_t)vocab * sizeof *order), n_order = 0;
    if (!order) { free(text); cJSON_Delete(root); return NULL; }
    for (int i = 0; i < n_base; i++) order[n_order++] = base[i];
    for (int b = 0; next_id < vocab; ) {
        while (next_id < vocab && is_special(c, next_id)) next_id++;
        if (next_id >= vocab) break;
        const char *l = text[order[left]], *r = text[base[b]];
        const size_t ll = strlen(l), rl = strlen(r);
        if (ll + rl >= sizeof text[0]) break;       /* never reached for real vocabularies */
        memcpy(text[next_id], l, ll);
        memcpy(text[next_id] + ll, r, rl + 1);
        char merge[40];
        memcpy(merge, l, ll);
        merge[ll] = ' ';
        memcpy(merge + ll + 1, r, rl + 1);
        cJSON_AddItemToArray(merges, cJSON_CreateString(merge));
        cJSON_AddNumberToObject(vocab_obj, text[next_id], next_id);
        order[n_order++] = next_id++;
        if (++b == 256) { b = 0; left++; }
    }
    free(order);
    free(text);
    return root;
}

static int write_tokenizer(const struct model_config *c, const char *path) {
    cJSON *root = build_tokenizer(c);
    if (!root) return dam_fail("out of memory building the tokenizer");
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) return dam_fail("out of memory building the tokenizer");
    int rc = write_file_atomic(path, json, strlen(json));
    free(json);
    return rc;
}

/* ---- the command ---- */

int cmd_synth(int argc, char **argv) {
    const char *config_path = NULL, *out_dir = NULL, *tokenizer = NULL, *v;
    int created = 0;                  /* this run made out_dir */
    struct synth_opts o = { .dtype = DT_BF16, .seed = 1, .std = 0.02f };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { help(stdout); return EXIT_OK; }
        if (arg_is(a, "--config")) {
            if (!(config_path = arg_value(argc, argv, &i))) return EXIT_USAGE;
        } else if (arg_is(a, "-o") || arg_is(a, "--out")) {
            if (!(out_dir = arg_value(argc, argv, &i))) return EXIT_USAGE;
        } else if (arg_is(a, "--dtype")) {
            if (!(v = arg_value(argc, argv, &i))) return EXIT_USAGE;
            if (!strcasecmp(v, "bf16")) o.dtype = DT_BF16;
            else if (!strcasecmp(v, "f16")) o.dtype = DT_F16;
            else if (!strcasecmp(v, "f32")) o.dtype = DT_F32;
            else { cli_error("bad value for --dtype: '%s' (expected bf16, f16 or f32)", v); return EXIT_USAGE; }
        } else if (arg_is(a, "--seed")) {
            long seed;
            if (!(v = arg_value(argc, argv, &i)) || arg_long("--seed", v, 0, LONG_MAX, &seed)) return EXIT_USAGE;
            o.seed = (uint64_t)seed;
        } else if (arg_is(a, "--std")) {
            if (!(v = arg_value(argc, argv, &i)) || arg_float("--std", v, 0, 10, &o.std)) return EXIT_USAGE;
        } else if (arg_is(a, "--tokenizer")) {
            if (!(tokenizer = arg_value(argc, argv, &i))) return EXIT_USAGE;
            if (strcmp(tokenizer, "byte") && strcmp(tokenizer, "none")) {
                cli_error("bad value for --tokenizer: '%s' (expected byte or none)", tokenizer);
                return EXIT_USAGE;
            }
        } else {
            cli_error("unknown flag '%s' for dam synth (see dam synth --help)", a);
            return EXIT_USAGE;
        }
    }
    if (!config_path || !out_dir) { cli_error("dam synth needs --config FILE and -o DIR"); return EXIT_USAGE; }
    if (output_is_stdout(out_dir)) { cli_error("dam synth writes a folder: -o - (stdout) cannot hold one"); return EXIT_USAGE; }

    size_t len;
    char *json = read_file(config_path, &len);
    struct model_config cfg;
    if (!json || config_parse(json, len, config_path, &cfg) != 0) goto fail;
    int room = cfg.vocab_size >= 256 + n_specials(&cfg);
    if (tokenizer && !strcmp(tokenizer, "byte") && !room) {
        dam_fail("vocab_size %d is too small for a byte-level tokenizer (256 bytes + special "
                 "tokens); use --tokenizer none", cfg.vocab_size);
        goto fail;
    }
    int want_tokenizer = tokenizer ? !strcmp(tokenizer, "byte") : room;
    created = mkdir(out_dir, 0755) == 0;
    if (!created && errno != EEXIST) {
        dam_fail("cannot create %s: %s", out_dir, strerror(errno));
        goto fail;
    }
    /* config.json goes last: a folder is a model only once everything it
     * names was written, so a failed run never leaves a weightless "model" */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
    if (write_weights(&cfg, &o, path) != 0) goto fail;
    snprintf(path, sizeof path, "%s/tokenizer.json", out_dir);
    if (want_tokenizer) {
        if (write_tokenizer(&cfg, path) != 0) goto fail;
    } else if (is_file(path) && remove(path) != 0) {
        dam_fail("cannot remove the old %s: %s", path, strerror(errno));
        goto fail;
    }
    snprintf(path, sizeof path, "%s/config.json", out_dir);
    if (write_file_atomic(path, json, len) != 0) goto fail;
    free(json);
    return EXIT_OK;
fail:
    cli_error("%s", dam_last_error());
    free(json);
    /* a folder this run created goes again (out of memory, a full disk):
     * no empty or half-written model folder is left behind */
    if (created) {
        static const char *const written[] = { "model.safetensors", "tokenizer.json", "config.json" };
        for (int i = 0; i < 3; i++) {
            char p[PATH_MAX];
            snprintf(p, sizeof p, "%s/%s", out_dir, written[i]);
            unlink(p);
        }
        rmdir(out_dir);
    }
    return EXIT_ERROR;
}
