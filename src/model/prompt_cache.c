/* prompt_cache.c — saving a session after its prompt and restoring it for a
 * prompt that starts the same way (where, why and the file format:
 * include/dam/prompt_cache.h).
 *
 * A file is mapped whole and checked before the session uses anything of
 * it: its header against the session's (so a cache of another model, module
 * or setting is refused, never continued), its length against the header's
 * (truncated) and its SHA-256 (corrupted; computed on a second thread while
 * the state loads). The module's state is loaded into a second state of the
 * session's module, which replaces the first only when the load succeeded
 * and the digest matched: a refused or partial file leaves the session as it
 * was. A save writes the state twice, counting then copying into one buffer
 * of the exact size, which output_write puts in place atomically. */
#include "dam/prompt_cache.h"
#include "dam/common.h"
#include "dam/kernels.h"
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "dam-prompt-cache\n"
#define DIGEST 32
#define HEADER_MAX 16384              /* the header is text of at most this */

/* What pins a cache to a session: every field must match. */
struct header {
    int version;
    char model[65];
    char module[64];
    char options[4096];
    char kv[16];
    char kernels[32];
    int context, chunk, positions;
    size_t payload;
};

int prompt_cache_point(const struct session *s, int n) {
    return n > 1 ? (n - 1) / s->chunk * s->chunk : 0;
}

/* The header a cache of session s (holding `positions`) has. */
static int session_header(const struct session *s, const struct attn_options *opts, int positions,
                          struct header *h) {
    memset(h, 0, sizeof *h);
    h->version = PROMPT_CACHE_VERSION;
    if (model_content_key(s->model, h->model)) return -1;
    snprintf(h->module, sizeof h->module, "%s", s->attn->name);
    if (attn_options_describe(s->attn, opts, h->options, sizeof h->options)) return -1;
    if (strchr(h->options, '\n')) return dam_fail("prompt cache: an option holds a line break");
    snprintf(h->kv, sizeof h->kv, "%s", kv_type_name(s->kv_type));
    snprintf(h->kernels, sizeof h->kernels, "%s", kernels_isa());
    h->context = s->n_ctx;
    h->chunk = s->chunk;
    h->positions = positions;
    return 0;
}

/* ---- reading ---- */

/* One "key value" line of the header at *p (before end): the value, NUL
 * terminated in place; NULL when the line is not `key`. */
static char *field(char **p, char *end, const char *key) {
    char *line = *p, *nl = memchr(line, '\n', (size_t)(end - line));
    if (!nl) return NULL;
    *nl = 0;
    *p = nl + 1;
    size_t k = strlen(key);
    return !strncmp(line, key, k) && line[k] == ' ' ? line + k + 1 : NULL;
}

static int number(const char *v, long long max, long long *out) {
    char *e;
    errno = 0;
    long long x = v ? strtoll(v, &e, 10) : -1;
    if (!v || e == v || *e || errno || x < 0 || x > max) return -1;
    *out = x;
    return 0;
}

/* Parses the header of file (len bytes) into h; *body gets the offset of
 * the payload. Checks the magic, the version, then the length. */
static int parse_header(const char *file, size_t len, const char *path, struct header *h, size_t *body) {
    memset(h, 0, sizeof *h);
    if (len < strlen(MAGIC) || memcmp(file, MAGIC, strlen(MAGIC)))
        return dam_fail("%s is not a dam prompt cache", path);
    char buf[HEADER_MAX], *end = NULL;           /* a copy: lines are cut in place */
    const size_t scan = len < HEADER_MAX ? len : HEADER_MAX;
    memcpy(buf, file, scan);
    for (size_t i = 0; i + 1 < scan; i++)
        if (buf[i] == '\n' && buf[i + 1] == '\n') { end = buf + i + 1; break; }
    if (!end) return dam_fail("prompt cache %s is truncated or corrupted (no end of header)", path);
    *body = (size_t)(end - buf) + 1;
    char *p = buf + strlen(MAGIC), *v;
    long long x;
    if (number(field(&p, end, "version"), INT32_MAX, &x))
        return dam_fail("prompt cache %s is corrupted (no format version)", path);
    h->version = (int)x;
    if (h->version != PROMPT_CACHE_VERSION)
        return dam_fail("prompt cache %s has format version %d; this dam reads version %d (delete it or use "
                        "another file)", path, h->version, PROMPT_CACHE_VERSION);
    struct { const char *key; char *dst; size_t size; } text[] = {
        { "model", h->model, sizeof h->model }, { "module", h->module, sizeof h->module },
        { "options", h->options, sizeof h->options }, { "kv", h->kv, sizeof h->kv },
        { "kernels", h->kernels, sizeof h->kernels },
    };
    for (size_t i = 0; i < sizeof text / sizeof *text; i++) {
        if (!(v = field(&p, end, text[i].key)) || strlen(v) >= text[i].size)
            return dam_fail("prompt cache %s is corrupted (header field '%s')", path, text[i].key);
        memcpy(text[i].dst, v, strlen(v) + 1);
    }
    struct { const char *key; int *dst; } ints[] = {
        { "context", &h->context }, { "chunk", &h->chunk }, { "positions", &h->positions },
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        if (number(field(&p, end, ints[i].key), INT32_MAX, &x))
            return dam_fail("prompt cache %s is corrupted (header field '%s')", path, ints[i].key);
        *ints[i].dst = (int)x;
    }
    if (number(field(&p, end, "payload"), INT64_MAX / 2, &x) || p != end)
        return dam_fail("prompt cache %s is corrupted (header field 'payload')", path);
    h->payload = (size_t)x;
    const size_t want = *body + h->payload + DIGEST;
    if (len < want) return dam_fail("prompt cache %s is truncated: %zu bytes, its header says %zu", path, len, want);
    if (len > want) return dam_fail("prompt cache %s is corrupted: %zu bytes, its header says %zu", path, len, want);
    if ((size_t)h->positions * sizeof(int32_t) > h->payload)
        return dam_fail("prompt cache %s is corrupted (%d positions in a payload of %zu bytes)", path,
                        h->positions, h->payload);
    return 0;
}

/* The first "key=value" of a that b does not have, into out. */
static void first_difference(const char *a, const char *b, char *out, size_t size) {
    snprintf(out, size, "%s", a);
    for (const char *p = a; *p; ) {
        size_t n = strcspn(p, ",");
        int found = 0;
        for (const char *q = b; *q && !found; ) {
            size_t m = strcspn(q, ",");
            found = m == n && !memcmp(p, q, n);
            q += m + (q[m] == ',');
        }
        if (!found) { snprintf(out, size, "%.*s", (int)n, p); return; }
        p += n + (p[n] == ',');
    }
}

/* The file's header against the session's: the first field that differs. */
static int check_header(const struct header *h, const struct header *want, const char *path) {
    if (strcmp(h->model, want->model))
        return dam_fail("prompt cache %s was made for another model (content key %.16s, this one's %.16s)",
                        path, h->model, want->model);
    if (strcmp(h->module, want->module))
        return dam_fail("prompt cache %s was made with --attn %s; this run uses %s", path, h->module, want->module);
    if (strcmp(h->options, want->options)) {
        char was[256], is[256];
        first_difference(h->options, want->options, was, sizeof was);
        first_difference(want->options, h->options, is, sizeof is);
        return dam_fail("prompt cache %s was made with %s option %s; this run has %s", path, h->module, was, is);
    }
    if (strcmp(h->kv, want->kv))
        return dam_fail("prompt cache %s holds %s keys and values; this run keeps %s", path, h->kv, want->kv);
    if (strcmp(h->kernels, want->kernels))
        return dam_fail("prompt cache %s was computed by the %s kernels; this run uses %s (DAM_ISA)", path,
                        h->kernels, want->kernels);
    if (h->context != want->context)
        return dam_fail("prompt cache %s was made with a context of %d; this run has %d (-c)", path, h->context,
                        want->context);
    if (h->chunk != want->chunk)
        return dam_fail("prompt cache %s was prefilled in chunks of %d; this build uses %d", path, h->chunk, want->chunk);
    if (h->positions < 0 || h->positions > want->context || h->positions % want->chunk)
        return dam_fail("prompt cache %s is corrupted (%d positions)", path, h->positions);
    return 0;
}

int prompt_cache_check(const char *path, int read_only) {
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno != ENOENT || read_only)
            return dam_fail("cannot read prompt cache %s: %s", path, strerror(errno));
        return output_check(path);
    }
    if (!S_ISREG(st.st_mode)) return dam_fail("prompt cache %s is not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f) return dam_fail("cannot read prompt cache %s: %s", path, strerror(errno));
    char head[sizeof MAGIC];
    size_t got = fread(head, 1, strlen(MAGIC), f);
    fclose(f);
    if (got != strlen(MAGIC) || memcmp(head, MAGIC, strlen(MAGIC)))
        return dam_fail("%s exists and is not a dam prompt cache: not replaced (name another file)", path);
    return read_only ? 0 : output_check(path);
}

/* The file mapped whole, read-only, its pages read in one go (MAP_POPULATE:
 * a read into a fresh buffer would fault every 4 KiB page of it, which on a
 * virtual machine costs more than the copy). NULL + dam_fail. */
static char *map_file(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { dam_fail("cannot read prompt cache %s: %s", path, strerror(errno)); return NULL; }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        dam_fail("prompt cache %s is not a regular file", path);
        return NULL;
    }
    *len = (size_t)st.st_size;
    void *p = *len ? mmap(NULL, *len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (p == MAP_FAILED) {
        dam_fail(*len ? "cannot read prompt cache %s: %s" : "%s is not a dam prompt cache (empty)", path, strerror(errno));
        return NULL;
    }
    return p;
}

/* Positions to restore: the last chunk boundary inside the shared prefix
 * of the cached tokens (P of them, int32 at t) and the prompt, below n. */
static int restore_point(const unsigned char *t, int P, const int *prompt, int n, int chunk, int *shared) {
    int k = 0;
    for (; k < P && k < n; k++) {
        int32_t id;
        memcpy(&id, t + (size_t)k * sizeof id, sizeof id);
        if (id != prompt[k]) break;
    }
    *shared = k;
    int upto = k < n - 1 ? k : n - 1;
    return upto > 0 ? upto / chunk * chunk : 0;
}

/* Loads the module state of a file (at p, len bytes) into a new state of s's
 * module, restored to pos: *out, or NULL with note set (the module cannot go
 * back to pos). -1 + dam_fail on an error. */
static int load_state(struct session *s, const struct attn_options *opts, const char *p, size_t len, int pos,
                      void **out, char *note, size_t note_size) {
    struct attn_setup setup;
    session_attn_setup(s, opts, &setup);
    *out = NULL;
    void *fresh = s->attn->create(&setup);
    if (!fresh) return -1;
    struct attn_stream in = { .in = (const unsigned char *)p, .len = len };
    int rc = s->attn->load(fresh, &in, pos);
    if (rc == 0 && in.at != len)
        rc = dam_fail("the attention state has %zu bytes, its module read %zu", len, in.at);
    if (rc != 0) {
        s->attn->destroy(fresh);
        if (rc > 0) snprintf(note, note_size, "%s", dam_last_error());
        return rc > 0 ? 0 : -1;
    }
    *out = fresh;
    return 0;
}

/* The file's SHA-256, on a thread of its own: it takes as long as loading
 * the state (1.5 GB/s), which runs meanwhile on the calling thread. */
struct digest {
    const char *data;
    size_t len;
    int ok;                        /* computed and equal to the one stored after data */
    pthread_t thread;
    int threaded;
};

static void *digest_run(void *arg) {
    struct digest *d = arg;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    d->ok = EVP_Digest(d->data, d->len, md, &md_len, EVP_sha256(), NULL) == 1 && md_len == DIGEST &&
            !memcmp(md, d->data + d->len, DIGEST);
    return NULL;
}

static void digest_start(struct digest *d) {
    d->threaded = pthread_create(&d->thread, NULL, digest_run, d) == 0;
    if (!d->threaded) digest_run(d);
}

static void digest_wait(struct digest *d) {
    if (d->threaded) pthread_join(d->thread, NULL);
    d->threaded = 0;
}

int prompt_cache_load(struct session *s, const struct attn_options *opts, const char *path,
                      const int *prompt, int n, struct prompt_cache_result *r) {
    memset(r, 0, sizeof *r);
    const double t0 = now_ms();
    struct stat st;
    if (s->pos != 0) return dam_fail("prompt cache: the session is not fresh (%d positions)", s->pos);
    if (!s->attn->load) return dam_fail("attention module %s cannot restore a saved state", s->attn->name);
    if (stat(path, &st) != 0 && errno == ENOENT) {
        snprintf(r->note, sizeof r->note, "%s does not exist yet", path);
        return 0;
    }
    size_t len = 0, body = 0;
    char *buf = map_file(path, &len);
    if (!buf) return -1;
    r->bytes = len;
    struct header h, want;
    if (parse_header(buf, len, path, &h, &body)) { munmap(buf, len); return -1; }
    struct digest d = { .data = buf, .len = len - DIGEST };
    digest_start(&d);
    /* an error found meanwhile is reported once the digest is known: a
     * corrupted file says so rather than what its damage looks like */
    void *fresh = NULL;
    char error[512] = "";
    int rc = session_header(s, opts, 0, &want) || check_header(&h, &want, path) ? -1 : 0;
    int pos = 0, shared = 0;
    if (!rc) {
        const size_t skip = (size_t)h.positions * sizeof(int32_t);
        pos = restore_point((const unsigned char *)buf + body, h.positions, prompt, n, s->chunk, &shared);
        if (pos > 0)
            rc = load_state(s, opts, buf + body + skip, h.payload - skip, pos, &fresh, r->note, sizeof r->note);
        if (rc) snprintf(error, sizeof error, "prompt cache %s is corrupted: %s", path, dam_last_error());
    } else {
        snprintf(error, sizeof error, "%s", dam_last_error());
    }
    digest_wait(&d);
    if (!d.ok) rc = dam_fail("prompt cache %s is corrupted (its SHA-256 does not match its contents)", path);
    else if (rc) dam_fail("%s", error);
    if (rc && fresh) s->attn->destroy(fresh);
    if (!rc) {
        r->positions = h.positions;
        if (pos == 0)
            snprintf(r->note, sizeof r->note, "the prompt shares %d of its first tokens with the %d cached", shared,
                     h.positions);
        if (fresh) {                     /* the session's state is replaced only now */
            s->attn->destroy(s->attn_state);
            s->attn_state = fresh;
            s->pos = pos;
            r->restored = pos;
        }
    }
    munmap(buf, len);
    r->ms = now_ms() - t0;
    return rc;
}

/* ---- writing ---- */

/* The payload (tokens, then the module's state) into k: counted only when
 * k->out is NULL. A state is written twice, first to learn its size, then
 * into a buffer of exactly that size (a buffer grown by doubling copies and
 * faults in fresh pages as it goes: 1.6 s for 81 MiB, measured). */
static int write_payload(const struct session *s, const int *tokens, struct attn_stream *k) {
    for (int i = 0; i < s->pos; i++) {
        const int32_t id = tokens[i];
        if (attn_put(k, &id, sizeof id)) return -1;
    }
    return s->attn->save(s->attn_state, k);
}

int prompt_cache_save(const struct session *s, const struct attn_options *opts, const char *path,
                      const int *tokens, struct prompt_cache_result *r) {
    memset(r, 0, sizeof *r);
    const double t0 = now_ms();
    if (!s->attn->save) return dam_fail("attention module %s cannot save its state", s->attn->name);
    struct header h;
    struct attn_stream count = { 0 };
    if (session_header(s, opts, s->pos, &h) || write_payload(s, tokens, &count)) return -1;
    char head[HEADER_MAX];
    const int hl = snprintf(head, sizeof head, MAGIC "version %d\nmodel %s\nmodule %s\noptions %s\nkv %s\n"
                            "kernels %s\ncontext %d\nchunk %d\npositions %d\npayload %zu\n\n", h.version,
                            h.model, h.module, h.options, h.kv, h.kernels, h.context, h.chunk, h.positions,
                            count.len);
    if (hl < 0 || hl >= (int)sizeof head) return dam_fail("prompt cache: the header takes more than %d bytes", HEADER_MAX);
    const size_t len = (size_t)hl + count.len + DIGEST;
    char *buf = xmalloc(len, "the prompt cache");
    if (!buf) return -1;
    attn_state_hugepages(buf, len);
    memcpy(buf, head, (size_t)hl);
    struct attn_stream k = { .out = (unsigned char *)buf + hl, .cap = count.len };
    int rc = write_payload(s, tokens, &k);
    if (!rc && k.len != count.len) rc = dam_fail("prompt cache: the attention state changed size while written");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!rc && (EVP_Digest(buf, len - DIGEST, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != DIGEST))
        rc = dam_fail("prompt cache: cannot compute the SHA-256");
    if (!rc) {
        memcpy(buf + len - DIGEST, md, DIGEST);
        rc = output_write(path, buf, len);
    }
    free(buf);
    r->positions = s->pos;
    r->bytes = len;
    r->ms = now_ms() - t0;
    return rc;
}
