/* niah_grid.c — what makes two runs parts of one grid, and how a grid is
 * cut into shards.
 *
 * A grid is run in parts (dam niah --shard I/N, on as many machines as there
 * are parts) and put together again (dam niah --merge). For that to give the
 * table of one run, every part must ask the same questions with the same
 * settings, and each cell must be run exactly once:
 *   - identity: each JSON line carries a "grid" object with every setting
 *     that decides an answer beyond the line's own fields. The model is
 *     named by a key of its files, not by its path, which differs between
 *     machines; the haystack by a key of its sentences.
 *   - split: cells are numbered in run order and shard I takes every N-th
 *     one, starting at I - 1. Interleaving spreads each length (the cost of
 *     a cell grows with it) evenly over the shards, and a sample's prompt
 *     depends on its seed only, so a shard asks what the whole run asks. */
#include "dam/niah.h"
#include "dam/attn.h"
#include "dam/common.h"
#include "niah_internal.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- keys: FNV-1a, 64 bits (identity, not security) ---- */

#define FNV_OFFSET 14695981039346656037ULL

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ULL; }
    return h;
}

static void key_hex(uint64_t h, char out[17]) { snprintf(out, 17, "%016llx", (unsigned long long)h); }

static int is_weights(const struct dirent *e) {
    size_t n = strlen(e->d_name);
    return n > 12 && !strcmp(e->d_name + n - 12, ".safetensors");
}

/* Hashes a whole file; a missing file hashes as absent when optional. */
static int hash_file(uint64_t *h, const char *dir, const char *name, int optional) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (optional && !is_file(path)) return 0;
    size_t len;
    char *text = read_file(path, &len);
    if (!text) return -1;
    *h = fnv(fnv(*h, name, strlen(name) + 1), text, len);
    free(text);
    return 0;
}

int niah_model_key(const char *dir, char out[17]) {
    uint64_t h = FNV_OFFSET;
    if (hash_file(&h, dir, "config.json", 0) || hash_file(&h, dir, "tokenizer.json", 1)) return -1;
    struct dirent **names;
    int n = scandir(dir, &names, is_weights, alphasort);
    if (n < 0) return dam_fail("cannot list %s: %s", dir, strerror(errno));
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        struct stat st;
        long long size = stat(path, &st) == 0 ? (long long)st.st_size : -1;
        h = fnv(h, names[i]->d_name, strlen(names[i]->d_name) + 1);
        h = fnv(h, &size, sizeof size);
        free(names[i]);
    }
    free(names);
    key_hex(h, out);
    return 0;
}

void niah_haystack_key(const struct niah_haystack *hay, char out[17]) {
    uint64_t h = FNV_OFFSET;
    for (int i = 0; i < hay->n_sentences; i++) h = fnv(h, hay->sentences[i], strlen(hay->sentences[i]) + 1);
    key_hex(h, out);
}

/* ---- the modules' options ---- */

/* Each module's options as its table lists them (attn_options_describe), so
 * parts run with any option set differently never merge. */
int niah_options_string(const char *const *attn, int n_attn, const struct attn_options *o,
                        char *buf, size_t size) {
    struct sbuf b = { 0 };
    for (int k = 0; k < n_attn; k++) {
        const struct attn_module *m = attn_find(attn[k]);
        if (!m || !m->options) continue;
        char desc[4096];
        if (attn_options_describe(m, o, desc, sizeof desc)) { sbuf_free(&b); return -1; }
        sbuf_printf(&b, "%s%s:%s", b.len ? ";" : "", attn[k], desc);
    }
    if (b.failed) { sbuf_free(&b); return dam_fail("out of memory"); }
    if (b.len >= size) { sbuf_free(&b); return dam_fail("the modules' options take more than %zu bytes", size - 1); }
    snprintf(buf, size, "%s", b.len ? b.data : "");
    sbuf_free(&b);
    return 0;
}

/* ---- the "grid" object ---- */

struct cJSON *niah_grid_json(const struct niah_run *run) {
    const struct niah_grid *g = run->grid;
    cJSON *j = cJSON_CreateObject(), *lengths = cJSON_CreateArray(), *depths = cJSON_CreateArray(),
          *attn = cJSON_CreateArray();
    if (!j || !lengths || !depths || !attn) goto oom;
    cJSON_AddStringToObject(j, "model_key", g->model_key);
    cJSON_AddItemToObject(j, "lengths", lengths);
    cJSON_AddItemToObject(j, "depths", depths);
    for (int i = 0; i < run->n_lengths; i++) cJSON_AddItemToArray(lengths, cJSON_CreateNumber(run->lengths[i]));
    for (int i = 0; i < run->n_depths; i++)
        cJSON_AddItemToArray(depths, cJSON_CreateNumber(niah_json_depth(run->depths[i])));
    cJSON_AddNumberToObject(j, "samples", run->samples);
    cJSON_AddItemToObject(j, "attn", attn);
    for (int i = 0; i < run->n_attn; i++) cJSON_AddItemToArray(attn, cJSON_CreateString(run->attn[i]));
    cJSON_AddStringToObject(j, "options", g->options);
    cJSON_AddNumberToObject(j, "n_predict", g->n_predict);
    cJSON_AddNumberToObject(j, "ctx", g->ctx);
    cJSON_AddStringToObject(j, "chat", g->chat);
    cJSON_AddStringToObject(j, "haystack", g->haystack_key);
    /* cJSON drops an item it could not allocate: count what arrived */
    if (cJSON_GetArraySize(lengths) == run->n_lengths && cJSON_GetArraySize(depths) == run->n_depths
        && cJSON_GetArraySize(attn) == run->n_attn && cJSON_GetArraySize(j) == 10)
        return j;
oom:
    if (j) cJSON_Delete(j);
    else { cJSON_Delete(lengths); cJSON_Delete(depths); cJSON_Delete(attn); }
    dam_fail("out of memory");
    return NULL;
}

/* ---- shards ---- */

/* Plain decimal digits (no sign, space or 0x), at most a little past the limit. */
static int shard_number(const char **p, long *out) {
    long v = 0;
    if (**p < '0' || **p > '9') return -1;
    for (; **p >= '0' && **p <= '9'; (*p)++)
        if ((v = v * 10 + (**p - '0')) > NIAH_MAX_SHARDS) return -1;
    *out = v;
    return 0;
}

int niah_parse_shard(const char *text, int *index, int *count) {
    const char *p = text;
    long i, n;
    if (shard_number(&p, &i) || *p++ != '/' || shard_number(&p, &n) || *p || i < 1 || i > n)
        return dam_fail("bad value for --shard: '%s' (expected I/N with 1 <= I <= N <= %d, like 2/4: "
                        "shards count from 1)", text, NIAH_MAX_SHARDS);
    *index = (int)i;
    *count = (int)n;
    return 0;
}

long long niah_grid_cells(const struct niah_run *run) {
    return (long long)run->n_attn * run->n_lengths * run->n_depths * run->samples;
}

long long niah_cell_number(const struct niah_run *run, int attn, int length_index, int depth_index, int sample) {
    return (((long long)length_index * run->n_depths + depth_index) * run->samples + sample) * run->n_attn + attn;
}

int niah_shard_owns(int index, int count, long long n) {
    return count == 0 || n % count == index - 1;
}
