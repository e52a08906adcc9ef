/* content_key.c — a key for what a model folder holds, for caches of things
 * derived from the weights (the automatic DAM profile; a prompt cache, a
 * quantized copy).
 *
 * Names and sizes are not enough: a fine-tune has the same config.json, the
 * same tensor names and the same file sizes as its base model. Hashing every
 * byte is: SHA-256 runs at 1-2 GB/s, so a 7B model would pay seconds at
 * every start. The key is SHA-256 over
 *   config.json,
 *   every shard's safetensors header (names, dtypes, shapes, offsets),
 *   and, per tensor, its first, middle and last 4 KiB plus 64 bytes at up to
 *   256 evenly spaced points in between.
 * Training changes essentially every weight, so two different checkpoints
 * differ in every sample; an edit of a few bytes between the samples is not
 * seen (a cache is not an integrity check: the hub verifies downloads).
 * Cost: about 3 x 4 KiB + 16 KiB per tensor, a few milliseconds for a 1 GB
 * model whose pages are cached. */
#include "dam/model.h"
#include "dam/common.h"
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EDGE 4096            /* bytes hashed at the start, middle and end of a tensor */
#define PROBES 256           /* evenly spaced samples in between */
#define PROBE 64             /* bytes per sample */

static int hash_span(EVP_MD_CTX *c, const unsigned char *p, size_t n) {
    return EVP_DigestUpdate(c, p, n) == 1 ? 0 : -1;
}

/* The samples of one tensor's bytes. */
static int hash_tensor(EVP_MD_CTX *c, const struct st_tensor *t) {
    const unsigned char *p = t->data;
    const size_t n = t->nbytes;
    if (n <= 3 * EDGE) return hash_span(c, p, n);
    if (hash_span(c, p, EDGE) || hash_span(c, p + n / 2 - EDGE / 2, EDGE) || hash_span(c, p + n - EDGE, EDGE))
        return -1;
    const size_t step = (n - PROBE) / (PROBES + 1);
    for (int i = 1; i <= PROBES; i++)
        if (hash_span(c, p + step * (size_t)i, PROBE)) return -1;
    return 0;
}

static int by_path(const void *a, const void *b) {
    return strcmp((*(struct st_file *const *)a)->path, (*(struct st_file *const *)b)->path);
}

/* Headers and tensor samples of every shard, shards in name order (the
 * order they were opened in depends on the index). */
static int hash_shards(EVP_MD_CTX *c, const struct model *m) {
    struct st_file **files = xmalloc((size_t)m->n_files * sizeof *files, "content key");
    if (!files) return -1;
    memcpy(files, m->files, (size_t)m->n_files * sizeof *files);
    qsort(files, (size_t)m->n_files, sizeof *files, by_path);
    int rc = 0;
    for (int i = 0; i < m->n_files && rc == 0; i++) {
        const struct st_file *f = files[i];
        const char *base = strrchr(f->path, '/');
        base = base ? base + 1 : f->path;
        rc = hash_span(c, (const unsigned char *)base, strlen(base) + 1);
        if (rc == 0) rc = hash_span(c, f->map, f->data_start);        /* 8-byte length + JSON header */
        for (int k = 0; k < f->n_tensors && rc == 0; k++) rc = hash_tensor(c, &f->tensors[k]);
    }
    free(files);
    return rc;
}

int model_content_key(const struct model *m, char hex[65]) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", m->dir);
    size_t len;
    char *cfg = read_file(path, &len);
    if (!cfg) return -1;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char digest[32];
    unsigned int dlen = 0;
    int rc = !c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ? -1 : 0;
    if (rc == 0) rc = hash_span(c, (const unsigned char *)"dam-model-content-v1", 21);
    if (rc == 0) rc = hash_span(c, (const unsigned char *)cfg, len);
    if (rc == 0) rc = hash_shards(c, m);
    if (rc == 0 && (EVP_DigestFinal_ex(c, digest, &dlen) != 1 || dlen != sizeof digest)) rc = -1;
    EVP_MD_CTX_free(c);
    free(cfg);
    if (rc != 0) return dam_fail("cannot hash the model in %s (SHA-256)", m->dir);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    return 0;
}
