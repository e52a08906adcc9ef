/* safetensors.c — reading (mmap, zero copy, strict validation) and writing
 * the safetensors format.
 *
 * Layout of a file:
 *   [8 bytes]  N, the header length, little-endian u64
 *   [N bytes]  UTF-8 JSON object: name -> {"dtype", "shape", "data_offsets"},
 *              plus an optional "__metadata__" string -> string map
 *   [rest]     the data buffer; data_offsets [begin, end) are relative to it
 *
 * The reader trusts nothing: every length, offset and product is checked
 * before it is used, so a hostile file yields an error, never a wild read. */
#include "dam/safetensors.h"
#include "dam/common.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The Python/Rust library refuses headers above 100 MB; so do we. */
#define ST_MAX_HEADER 100000000ull
/* 2^53: below it a double (cJSON's number type) holds every integer exactly;
 * text like 9007199254740993 already arrives rounded to it, so it is refused. */
#define ST_MAX_EXACT_INT 9007199254740992.0

/* ------------------------------------------------------------------ dtypes */

static const struct { const char *name; size_t size; } dtype_table[DT_COUNT] = {
    [DT_F32] = {"F32", 4},   [DT_F16] = {"F16", 2},   [DT_BF16] = {"BF16", 2},
    [DT_F64] = {"F64", 8},   [DT_I64] = {"I64", 8},   [DT_I32] = {"I32", 4},
    [DT_I16] = {"I16", 2},   [DT_I8] = {"I8", 1},     [DT_U8] = {"U8", 1},
    [DT_U16] = {"U16", 2},   [DT_U32] = {"U32", 4},   [DT_U64] = {"U64", 8},
    [DT_BOOL] = {"BOOL", 1}, [DT_F8_E4M3] = {"F8_E4M3", 1}, [DT_F8_E5M2] = {"F8_E5M2", 1},
};

const char *dtype_name(enum dtype t) {
    return (unsigned)t < DT_COUNT ? dtype_table[t].name : "?";
}

size_t dtype_size(enum dtype t) {
    return (unsigned)t < DT_COUNT ? dtype_table[t].size : 0;
}

int dtype_from_name(const char *name, enum dtype *out) {
    if (!name) return -1;
    for (int t = 0; t < DT_COUNT; t++) {
        if (strcmp(name, dtype_table[t].name) == 0) {
            if (out) *out = (enum dtype)t;
            return 0;
        }
    }
    return -1;
}

/* ------------------------------------------------------------ small checks */

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF. We also refuse NUL, which JSON text never needs and which would
 * cut C strings short. Returns the offset of the first bad byte, or -1. */
static long utf8_first_error(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c == 0) return (long)i;
        if (c < 0x80) { i++; continue; }
        size_t len;
        unsigned cp, min;
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
        else return (long)i;
        if (n - i < len) return (long)i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return (long)i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return (long)i;
        i += len;
    }
    return -1;
}

/* A JSON number that is a whole number in [0, 2^53]. */
static int json_uint(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return -1;
    double v = item->valuedouble;
    if (!isfinite(v) || v < 0 || v >= ST_MAX_EXACT_INT || v != floor(v)) return -1;
    *out = (uint64_t)v;
    return 0;
}

static int mul_overflows(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_mul_overflow(a, b, out);
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Finds a repeated key among an object's members (cJSON keeps duplicates as
 * separate items). Returns the repeated key or NULL; -1 on allocation failure
 * is reported through *oom. */
static const char *find_duplicate_key(const cJSON *obj, int *oom) {
    int n = cJSON_GetArraySize(obj);
    *oom = 0;
    if (n < 2) return NULL;
    const char **keys = malloc((size_t)n * sizeof *keys);
    if (!keys) { *oom = 1; return NULL; }
    int k = 0;
    for (const cJSON *it = obj->child; it; it = it->next) keys[k++] = it->string ? it->string : "";
    qsort(keys, (size_t)k, sizeof *keys, cmp_str_ptr);
    const char *dup = NULL;
    for (int i = 1; i < k && !dup; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) dup = keys[i];
    free(keys);
    return dup;
}

/* ----------------------------------------------------------------- freeing */

static void free_st_contents(struct st_file *f) {
    if (f->tensors)
        for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    free(f->by_name);
    if (f->meta_keys)
        for (int i = 0; i < f->n_meta; i++) free(f->meta_keys[i]);
    if (f->meta_values)
        for (int i = 0; i < f->n_meta; i++) free(f->meta_values[i]);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->path);
}

void st_close(struct st_file *f) {
    if (!f) return;
    if (f->map && f->size) munmap(f->map, f->size);
    if (f->fd >= 0) close(f->fd);
    free_st_contents(f);
    free(f);
}

/* ----------------------------------------------------------------- parsing */

/* Reads "__metadata__": an object whose values are all strings. */
static int parse_metadata(struct st_file *f, const cJSON *meta) {
    const char *name = f->path;
    if (!cJSON_IsObject(meta))
        return dam_fail("%s: __metadata__ must be a JSON object of strings", name);
    int oom;
    const char *dup = find_duplicate_key(meta, &oom);
    if (oom) return dam_fail("out of memory reading %s", name);
    if (dup) return dam_fail("%s: __metadata__ has the key \"%s\" twice", name, dup);
    int n = cJSON_GetArraySize(meta);
    f->meta_keys = xcalloc((size_t)n, sizeof(char *), "safetensors metadata");
    f->meta_values = xcalloc((size_t)n, sizeof(char *), "safetensors metadata");
    if (!f->meta_keys || !f->meta_values) return -1;
    for (const cJSON *it = meta->child; it; it = it->next) {
        if (!cJSON_IsString(it))
            return dam_fail("%s: __metadata__ value of \"%s\" must be a string", name, it->string);
        f->meta_keys[f->n_meta] = strdup(it->string);
        f->meta_values[f->n_meta] = strdup(it->valuestring);
        f->n_meta++;
        if (!f->meta_keys[f->n_meta - 1] || !f->meta_values[f->n_meta - 1])
            return dam_fail("out of memory reading %s", name);
    }
    return 0;
}

/* Reads one tensor entry; offsets are checked against data_len here, and
 * contiguity later, once every tensor is known. */
static int parse_tensor(struct st_file *f, const cJSON *entry, size_t data_len,
                        struct st_tensor *t, uint64_t *begin_out, uint64_t *end_out) {
    const char *file = f->path, *tn = entry->string;
    if (!cJSON_IsObject(entry))
        return dam_fail("%s: tensor \"%s\": entry must be a JSON object", file, tn);
    int oom;
    const char *dup = find_duplicate_key(entry, &oom);
    if (oom) return dam_fail("out of memory reading %s", file);
    if (dup) return dam_fail("%s: tensor \"%s\": key \"%s\" appears twice", file, tn, dup);

    /* dtype: one of the known names */
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    if (!dt) return dam_fail("%s: tensor \"%s\": missing \"dtype\"", file, tn);
    if (!cJSON_IsString(dt)) return dam_fail("%s: tensor \"%s\": \"dtype\" must be a string", file, tn);
    if (dtype_from_name(dt->valuestring, &t->dtype) != 0)
        return dam_fail("%s: tensor \"%s\": unknown dtype \"%s\"", file, tn, dt->valuestring);

    /* shape: up to ST_MAX_DIMS non-negative integers; numel checked for overflow */
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    if (!shape) return dam_fail("%s: tensor \"%s\": missing \"shape\"", file, tn);
    if (!cJSON_IsArray(shape)) return dam_fail("%s: tensor \"%s\": \"shape\" must be an array", file, tn);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > ST_MAX_DIMS)
        return dam_fail("%s: tensor \"%s\": %d dimensions, more than the %d supported",
                        file, tn, ndim, ST_MAX_DIMS);
    uint64_t numel = 1;
    int d = 0;
    for (const cJSON *it = shape->child; it; it = it->next, d++) {
        uint64_t dim;
        if (json_uint(it, &dim) != 0)
            return dam_fail("%s: tensor \"%s\": shape[%d] is not a non-negative integer", file, tn, d);
        if (mul_overflows(numel, dim, &numel) || numel > (uint64_t)INT64_MAX)
            return dam_fail("%s: tensor \"%s\": element count overflows (shape too large)", file, tn);
        t->shape[d] = (int64_t)dim;
    }
    t->ndim = ndim;
    t->numel = (int64_t)numel;
    uint64_t nbytes;
    if (mul_overflows(numel, dtype_size(t->dtype), &nbytes) || nbytes > SIZE_MAX)
        return dam_fail("%s: tensor \"%s\": byte size overflows (shape too large)", file, tn);
    t->nbytes = (size_t)nbytes;

    /* data_offsets: [begin, end], begin <= end <= data_len, end - begin = nbytes */
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!offs) return dam_fail("%s: tensor \"%s\": missing \"data_offsets\"", file, tn);
    uint64_t begin, end;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        json_uint(offs->child, &begin) != 0 || json_uint(offs->child->next, &end) != 0)
        return dam_fail("%s: tensor \"%s\": \"data_offsets\" must be [begin, end], two non-negative integers",
                        file, tn);
    if (begin > end)
        return dam_fail("%s: tensor \"%s\": data_offsets begin %llu is after end %llu", file, tn,
                        (unsigned long long)begin, (unsigned long long)end);
    if (end > data_len)
        return dam_fail("%s: tensor \"%s\": data_offsets end %llu is past the data buffer (%zu bytes)",
                        file, tn, (unsigned long long)end, data_len);
    if (end - begin != nbytes)
        return dam_fail("%s: tensor \"%s\": data_offsets span %llu bytes but shape x %s needs %llu",
                        file, tn, (unsigned long long)(end - begin), dtype_name(t->dtype),
                        (unsigned long long)nbytes);
    *begin_out = begin;
    *end_out = end;
    return 0;
}

/* A tensor with its offsets, for the contiguity sort. */
struct span { uint64_t begin, end; struct st_tensor t; };

static int cmp_span(const void *a, const void *b) {
    const struct span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_tensor_ptr_name(const void *a, const void *b) {
    const struct st_tensor *x = *(const struct st_tensor *const *)a;
    const struct st_tensor *y = *(const struct st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

/* Tensors sorted by begin must tile [0, data_len) exactly: no gap, no
 * overlap, nothing left over. */
static int check_contiguous(const char *file, const struct span *s, int n, size_t data_len) {
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (s[i].begin < at)
            return dam_fail("%s: tensor \"%s\": data_offsets [%llu, %llu] overlap the previous tensor "
                            "(which ends at %llu)", file, s[i].t.name, (unsigned long long)s[i].begin,
                            (unsigned long long)s[i].end, (unsigned long long)at);
        if (s[i].begin > at)
            return dam_fail("%s: tensor \"%s\": data_offsets begin at %llu, leaving a gap after byte %llu "
                            "(tensors must be contiguous)", file, s[i].t.name,
                            (unsigned long long)s[i].begin, (unsigned long long)at);
        at = s[i].end;
    }
    if (at != data_len)
        return dam_fail("%s: tensors cover %llu bytes but the data buffer has %zu (trailing bytes)",
                        file, (unsigned long long)at, data_len);
    return 0;
}

/* Validates the header JSON and fills f->tensors and metadata. data points at
 * the data buffer (data_len bytes). */
static int parse_header(struct st_file *f, const char *hdr, size_t hdr_len,
                        const unsigned char *data, size_t data_len) {
    const char *file = f->path;
    long bad = utf8_first_error((const unsigned char *)hdr, hdr_len);
    if (bad >= 0)
        return dam_fail("%s: header is not valid UTF-8 (byte %ld of the header)", file, bad);
    /* Like the reference reader: the header starts with '{' right away. */
    if (hdr[0] != '{')
        return dam_fail("%s: header does not start with '{' (not a safetensors file?)", file);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, hdr_len, &end, 0);
    if (!root) {
        long at = end ? (long)(end - hdr) : -1;
        const char *e = cJSON_GetErrorPtr();
        if (e && e >= hdr && e <= hdr + hdr_len) at = (long)(e - hdr);
        return dam_fail("%s: header is not valid JSON (near byte %ld of the header)", file, at);
    }
    int rc = -1;
    struct span *spans = NULL;
    /* After the JSON value only whitespace (the writer's padding) may follow. */
    for (const char *p = end; p < hdr + hdr_len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            dam_fail("%s: header has bytes after the JSON object (byte %ld)", file, (long)(p - hdr));
            goto out;
        }
    }
    if (!cJSON_IsObject(root)) {
        dam_fail("%s: header must be a JSON object", file);
        goto out;
    }
    int oom;
    const char *dup = find_duplicate_key(root, &oom);
    if (oom) { dam_fail("out of memory reading %s", file); goto out; }
    if (dup) {
        dam_fail("%s: tensor \"%s\" appears twice in the header", file, dup);
        goto out;
    }

    int n = 0;
    for (const cJSON *it = root->child; it; it = it->next)
        if (strcmp(it->string, "__metadata__") != 0) n++;
    spans = xcalloc((size_t)n, sizeof *spans, "safetensors header");
    if (!spans) goto out;
    int k = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        if (strcmp(it->string, "__metadata__") == 0) {
            if (parse_metadata(f, it) != 0) goto out_spans;
            continue;
        }
        struct span *s = &spans[k];
        if (parse_tensor(f, it, data_len, &s->t, &s->begin, &s->end) != 0) goto out_spans;
        s->t.name = strdup(it->string);
        if (!s->t.name) { dam_fail("out of memory reading %s", file); goto out_spans; }
        s->t.data = data + s->begin;
        k++;
    }
    qsort(spans, (size_t)n, sizeof *spans, cmp_span);
    if (check_contiguous(file, spans, n, data_len) != 0) goto out_spans;

    f->tensors = xcalloc((size_t)n, sizeof *f->tensors, "safetensors tensors");
    f->by_name = xcalloc((size_t)n, sizeof *f->by_name, "safetensors tensors");
    if (!f->tensors || !f->by_name) goto out_spans;
    for (int i = 0; i < n; i++) {
        f->tensors[i] = spans[i].t;
        spans[i].t.name = NULL;           /* ownership moved */
        f->by_name[i] = &f->tensors[i];
    }
    f->n_tensors = n;
    qsort(f->by_name, (size_t)n, sizeof *f->by_name, cmp_tensor_ptr_name);
    rc = 0;
out_spans:
    for (int i = 0; i < n; i++) free(spans[i].t.name);
    free(spans);
out:
    cJSON_Delete(root);
    return rc;
}

/* Checks the 8-byte length prefix and the header, filling f. */
static int parse_into(struct st_file *f, const unsigned char *buf, size_t size) {
    const char *file = f->path;
    if (size == 0) return dam_fail("%s: file is empty (not a safetensors file)", file);
    if (size < 8)
        return dam_fail("%s: file is %zu bytes, shorter than the 8-byte header length", file, size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | buf[i];   /* little-endian */
    if (n > ST_MAX_HEADER)
        return dam_fail("%s: header length %llu is larger than the 100000000-byte limit "
                        "(not a safetensors file?)", file, (unsigned long long)n);
    if (n > size - 8)
        return dam_fail("%s: header length %llu runs past the end of the file (%zu bytes)",
                        file, (unsigned long long)n, size);
    if (n < 2)
        return dam_fail("%s: header length %llu is too short for a JSON object", file,
                        (unsigned long long)n);
    f->data_start = 8 + (size_t)n;
    return parse_header(f, (const char *)buf + 8, (size_t)n, buf + f->data_start, size - f->data_start);
}

static struct st_file *new_st_file(const char *name) {
    struct st_file *f = xcalloc(1, sizeof *f, "safetensors file");
    if (!f) return NULL;
    f->fd = -1;
    f->path = strdup(name ? name : "(buffer)");
    if (!f->path) { free(f); dam_fail("out of memory"); return NULL; }
    return f;
}

struct st_file *st_parse(const char *name, const void *buf, size_t size) {
    struct st_file *f = new_st_file(name);
    if (!f) return NULL;
    if (!buf && size) { dam_fail("%s: no buffer", f->path); st_close(f); return NULL; }
    f->size = size;
    if (parse_into(f, buf, size) != 0) { st_close(f); return NULL; }
    return f;
}

struct st_file *st_open(const char *path) {
    struct st_file *f = new_st_file(path);
    if (!f) return NULL;
    struct stat st;
    if (stat(path, &st) != 0) {
        dam_fail("cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        dam_fail("%s is a directory, not a safetensors file", path);
        goto fail;
    }
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        dam_fail("cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        dam_fail("%s is not a regular file", path);
        goto fail;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        dam_fail("%s is too large to map", path);
        goto fail;
    }
    size_t size = (size_t)st.st_size;
    if (size < 8) {   /* includes the empty file, which mmap would refuse */
        unsigned char small[8];
        ssize_t got = pread(f->fd, small, size, 0);
        if (got != (ssize_t)size) { dam_fail("cannot read %s: %s", path, strerror(errno)); goto fail; }
        parse_into(f, small, size);   /* fails with the size message */
        goto fail;
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, f->fd, 0);
    if (map == MAP_FAILED) {
        dam_fail("cannot map %s: %s", path, strerror(errno));
        goto fail;
    }
    f->map = map;
    f->size = size;
    if (parse_into(f, map, size) != 0) goto fail;
    return f;
fail:
    st_close(f);
    return NULL;
}

const struct st_tensor *st_find(const struct st_file *f, const char *name) {
    if (!f || !name) return NULL;
    int lo = 0, hi = f->n_tensors - 1;
    while (lo <= hi) {   /* binary search over the name-sorted index */
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->by_name[mid]->name);
        if (c == 0) return f->by_name[mid];
        if (c < 0) hi = mid - 1; else lo = mid + 1;
    }
    return NULL;
}

/* ------------------------------------------------------------------ writer */

struct st_writer_tensor {
    char *name;
    enum dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t nbytes;
    void *data;              /* (nbytes) private copy */
};

struct st_writer {
    int n, cap;
    struct st_writer_tensor *tensors;   /* (n) in insertion order */
    int n_meta, meta_cap;
    char **meta_keys, **meta_values;    /* (n_meta) */
};

struct st_writer *st_writer_new(void) {
    return xcalloc(1, sizeof(struct st_writer), "safetensors writer");
}

void st_writer_free(struct st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) { free(w->tensors[i].name); free(w->tensors[i].data); }
    free(w->tensors);
    for (int i = 0; i < w->n_meta; i++) { free(w->meta_keys[i]); free(w->meta_values[i]); }
    free(w->meta_keys);
    free(w->meta_values);
    free(w);
}

static int writer_string_ok(const char *what, const char *s) {
    if (!s) return dam_fail("safetensors writer: %s is NULL", what);
    if (utf8_first_error((const unsigned char *)s, strlen(s)) >= 0)
        return dam_fail("safetensors writer: %s \"%s\" is not valid UTF-8", what, s);
    return 0;
}

int st_writer_add(struct st_writer *w, const char *name, enum dtype dtype,
                  int ndim, const int64_t *shape, const void *data) {
    if (!w) return dam_fail("safetensors writer: NULL writer");
    if (writer_string_ok("tensor name", name) != 0) return -1;
    if (strcmp(name, "__metadata__") == 0)
        return dam_fail("safetensors writer: \"__metadata__\" cannot be a tensor name");
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return dam_fail("safetensors writer: tensor \"%s\" added twice", name);
    if ((unsigned)dtype >= DT_COUNT)
        return dam_fail("safetensors writer: tensor \"%s\": invalid dtype %d", name, (int)dtype);
    if (ndim < 0 || ndim > ST_MAX_DIMS || (ndim > 0 && !shape))
        return dam_fail("safetensors writer: tensor \"%s\": %d dimensions (0..%d supported)",
                        name, ndim, ST_MAX_DIMS);
    uint64_t numel = 1, nbytes;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return dam_fail("safetensors writer: tensor \"%s\": negative shape[%d]", name, d);
        if (mul_overflows(numel, (uint64_t)shape[d], &numel))
            return dam_fail("safetensors writer: tensor \"%s\": shape too large", name);
    }
    if (mul_overflows(numel, dtype_size(dtype), &nbytes) || nbytes > SIZE_MAX / 2)
        return dam_fail("safetensors writer: tensor \"%s\": shape too large", name);
    if (nbytes && !data) return dam_fail("safetensors writer: tensor \"%s\": NULL data", name);
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 16;
        void *p = realloc(w->tensors, (size_t)cap * sizeof *w->tensors);
        if (!p) return dam_fail("out of memory in the safetensors writer");
        w->tensors = p;
        w->cap = cap;
    }
    struct st_writer_tensor *t = &w->tensors[w->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->data = xmalloc((size_t)nbytes, "a tensor copy in the safetensors writer");
    if (!t->name || !t->data) { free(t->name); free(t->data); return -1; }
    if (nbytes) memcpy(t->data, data, (size_t)nbytes);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    t->nbytes = (size_t)nbytes;
    w->n++;
    return 0;
}

int st_writer_add_meta(struct st_writer *w, const char *key, const char *value) {
    if (!w) return dam_fail("safetensors writer: NULL writer");
    if (writer_string_ok("metadata key", key) != 0 || writer_string_ok("metadata value", value) != 0)
        return -1;
    for (int i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta_keys[i], key) == 0)
            return dam_fail("safetensors writer: metadata key \"%s\" added twice", key);
    if (w->n_meta == w->meta_cap) {
        int cap = w->meta_cap ? w->meta_cap * 2 : 8;
        char **k = realloc(w->meta_keys, (size_t)cap * sizeof *k);
        if (!k) return dam_fail("out of memory in the safetensors writer");
        w->meta_keys = k;
        char **v = realloc(w->meta_values, (size_t)cap * sizeof *v);
        if (!v) return dam_fail("out of memory in the safetensors writer");
        w->meta_values = v;
        w->meta_cap = cap;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) { free(k); free(v); return dam_fail("out of memory in the safetensors writer"); }
    w->meta_keys[w->n_meta] = k;
    w->meta_values[w->n_meta] = v;
    w->n_meta++;
    return 0;
}

/* A growable byte string for building the header. */
struct sbuf { char *p; size_t len, cap; int oom; };

static void sb_put(struct sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_puts(struct sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(struct sbuf *b, const char *fmt, unsigned long long v) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, fmt, v);
    sb_put(b, tmp, (size_t)n);
}

/* A JSON string literal: quotes, backslashes and control bytes escaped;
 * other UTF-8 passes through unchanged. */
static void sb_json_string(struct sbuf *b, const char *s) {
    sb_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"') sb_puts(b, "\\\"");
        else if (*p == '\\') sb_puts(b, "\\\\");
        else if (*p < 0x20) sb_printf(b, "\\u%04llx", *p);
        else sb_put(b, (const char *)p, 1);
    }
    sb_puts(b, "\"");
}

/* The header JSON, in insertion order, numbers written as plain integers
 * (never in exponent form, which strict readers refuse). */
static void build_header(const struct st_writer *w, struct sbuf *b) {
    sb_puts(b, "{");
    int first = 1;
    if (w->n_meta > 0) {
        sb_puts(b, "\"__metadata__\":{");
        for (int i = 0; i < w->n_meta; i++) {
            if (i) sb_puts(b, ",");
            sb_json_string(b, w->meta_keys[i]);
            sb_puts(b, ":");
            sb_json_string(b, w->meta_values[i]);
        }
        sb_puts(b, "}");
        first = 0;
    }
    size_t offset = 0;
    for (int i = 0; i < w->n; i++) {
        const struct st_writer_tensor *t = &w->tensors[i];
        if (!first) sb_puts(b, ",");
        first = 0;
        sb_json_string(b, t->name);
        sb_puts(b, ":{\"dtype\":\"");
        sb_puts(b, dtype_name(t->dtype));
        sb_puts(b, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) sb_printf(b, d ? ",%llu" : "%llu", (unsigned long long)t->shape[d]);
        sb_printf(b, "],\"data_offsets\":[%llu", offset);
        offset += t->nbytes;
        sb_printf(b, ",%llu]}", offset);
    }
    sb_puts(b, "}");
    /* Pad with spaces so the data buffer starts 8-byte aligned, as the
     * reference library does. */
    while (!b->oom && b->len % 8 != 0) sb_puts(b, " ");
}

int st_writer_save(struct st_writer *w, const char *path) {
    if (!w) return dam_fail("safetensors writer: NULL writer");
    if (!path) return dam_fail("safetensors writer: NULL path");
    struct sbuf hdr = {0};
    build_header(w, &hdr);
    if (hdr.oom) { free(hdr.p); return dam_fail("out of memory writing %s", path); }
    size_t data_len = 0;
    for (int i = 0; i < w->n; i++) {
        if (w->tensors[i].nbytes > SIZE_MAX - data_len - hdr.len - 8) {
            free(hdr.p);
            return dam_fail("%s: tensors too large to write", path);
        }
        data_len += w->tensors[i].nbytes;
    }
    size_t total = 8 + hdr.len + data_len;
    unsigned char *out = xmalloc(total, "the safetensors file image");
    if (!out) { free(hdr.p); return -1; }
    uint64_t n = hdr.len;
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)(n >> (8 * i));   /* little-endian */
    memcpy(out + 8, hdr.p, hdr.len);
    size_t at = 8 + hdr.len;
    for (int i = 0; i < w->n; i++) {
        if (w->tensors[i].nbytes) memcpy(out + at, w->tensors[i].data, w->tensors[i].nbytes);
        at += w->tensors[i].nbytes;
    }
    free(hdr.p);
    int rc = output_write(path, out, total);   /* a file, "-", a FIFO or a device */
    free(out);
    return rc;
}
