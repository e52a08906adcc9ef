/* dam_profile.c — DAM profiles as JSON (cJSON), and configs/dam.json.
 *
 * A profile records the model geometry it was made for, the parameters, what
 * it was captured from, and per (layer, head): the matched diagonal offsets,
 * the matched columns, the coverage figures, the fallback policy, and the
 * true mask inside PCL (bits, base64) so that `dam masks` can draw it later.
 * Reading checks everything: a profile is input from a file, and a wrong one
 * must be a clear error, never a crash or a silently different mask. */
#include "dam/dam.h"
#include "dam/common.h"
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROFILE_FORMAT "dam-profile"
#define PROFILE_VERSION 2
#define MAX_PATTERN (1 << 24)   /* largest offset or column a profile may hold */

/* ---- base64 of the true-mask bits (cell dam_tri(i, j) is bit k % 8 of byte k / 8) ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *bits_to_base64(const uint8_t *cells, size_t n_cells) {
    size_t n_bytes = (n_cells + 7) / 8;
    uint8_t *bytes = xcalloc(n_bytes ? n_bytes : 1, 1, "mask bits");
    char *out = bytes ? xmalloc(4 * ((n_bytes + 2) / 3) + 1, "mask text") : NULL;
    if (!out) { free(bytes); return NULL; }
    for (size_t k = 0; k < n_cells; k++)
        if (cells[k]) bytes[k / 8] |= (uint8_t)(1u << (k % 8));
    size_t o = 0;
    for (size_t i = 0; i < n_bytes; i += 3) {
        uint32_t w = (uint32_t)bytes[i] << 16;
        if (i + 1 < n_bytes) w |= (uint32_t)bytes[i + 1] << 8;
        if (i + 2 < n_bytes) w |= bytes[i + 2];
        out[o++] = b64[(w >> 18) & 63];
        out[o++] = b64[(w >> 12) & 63];
        out[o++] = i + 1 < n_bytes ? b64[(w >> 6) & 63] : '=';
        out[o++] = i + 2 < n_bytes ? b64[w & 63] : '=';
    }
    out[o] = 0;
    free(bytes);
    return out;
}

static int b64_value(char c) {
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

/* Decodes into n_cells 0/1 bytes; -1 when the text is not base64 of the
 * expected length. */
static int base64_to_bits(const char *text, uint8_t *cells, size_t n_cells) {
    size_t n_bytes = (n_cells + 7) / 8, len = strlen(text);
    if (len != 4 * ((n_bytes + 2) / 3)) return -1;
    uint8_t *bytes = xcalloc(n_bytes + 3, 1, "mask bits");
    if (!bytes) return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        for (int t = 0; t < 4; t++) {
            v[t] = text[i + t] == '=' ? 0 : b64_value(text[i + t]);
            if (v[t] < 0) { free(bytes); return -1; }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        bytes[o++] = (uint8_t)(w >> 16);
        bytes[o++] = (uint8_t)(w >> 8);
        bytes[o++] = (uint8_t)w;
    }
    for (size_t k = 0; k < n_cells; k++) cells[k] = (bytes[k / 8] >> (k % 8)) & 1;
    free(bytes);
    return 0;
}

/* ---- writing ---- */

static cJSON *int_array(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

/* Rounds figures to 4 decimals so profiles diff well. */
static double round4(double x) { return (double)(long long)(x * 10000 + (x >= 0 ? 0.5 : -0.5)) / 10000; }

/* The reach grid: per head, the mean attention mass kept and the mean
 * squared output error of every plan (window W, selected blocks K), W
 * major, and the head's error gain. */
static int add_reach(cJSON *root, const struct dam_reach *r) {
    cJSON *o = cJSON_AddObjectToObject(root, "reach");
    if (!o) return dam_fail("out of memory writing a profile");
    cJSON_AddNumberToObject(o, "min_row", r->min_row);
    cJSON_AddItemToObject(o, "windows", int_array(dam_reach_windows, DAM_REACH_W));
    cJSON_AddItemToObject(o, "blocks", int_array(dam_reach_blocks, DAM_REACH_K));
    cJSON *heads = cJSON_AddArrayToObject(o, "heads");
    for (int l = 0; l < r->n_layers; l++)
        for (int h = 0; h < r->n_heads; h++) {
            const size_t c = ((size_t)l * r->n_heads + h) * DAM_REACH_W * DAM_REACH_K;
            const double rows = r->rows[l] > 0 ? r->rows[l] : 1;
            cJSON *e = cJSON_CreateObject(), *kept = cJSON_CreateArray(), *err = cJSON_CreateArray();
            cJSON_AddNumberToObject(e, "layer", l);
            cJSON_AddNumberToObject(e, "head", h);
            cJSON_AddNumberToObject(e, "gain", r->gain[(size_t)l * r->n_heads + h]);
            for (int i = 0; i < DAM_REACH_W * DAM_REACH_K; i++) {
                cJSON_AddItemToArray(kept, cJSON_CreateNumber(round4(r->kept[c + i] / rows)));
                cJSON_AddItemToArray(err, cJSON_CreateNumber(r->err[c + i] / rows));
            }
            cJSON_AddItemToObject(e, "kept", kept);
            cJSON_AddItemToObject(e, "err", err);
            cJSON_AddItemToArray(heads, e);
        }
    return 0;
}

char *dam_profile_to_json(const struct dam_profile *p) {
    cJSON *root = cJSON_CreateObject();
    if (!root) { dam_fail("out of memory writing a profile"); return NULL; }
    cJSON_AddStringToObject(root, "format", PROFILE_FORMAT);
    cJSON_AddNumberToObject(root, "version", PROFILE_VERSION);
    cJSON *g = cJSON_AddObjectToObject(root, "geometry");
    cJSON_AddNumberToObject(g, "n_layers", p->n_layers);
    cJSON_AddNumberToObject(g, "n_heads", p->n_heads);
    cJSON_AddNumberToObject(g, "n_kv_heads", p->n_kv_heads);
    cJSON_AddNumberToObject(g, "head_dim", p->head_dim);
    const struct dam_params *q = &p->params;
    cJSON *pa = cJSON_AddObjectToObject(root, "params");
    cJSON_AddNumberToObject(pa, "pcl", q->pcl);
    cJSON_AddNumberToObject(pa, "lambda", round4(q->lambda));
    cJSON_AddNumberToObject(pa, "tau", round4(q->tau));
    cJSON_AddNumberToObject(pa, "mu", round4(q->mu));
    cJSON_AddNumberToObject(pa, "min_support", q->min_support);
    cJSON_AddNumberToObject(pa, "min_coverage", round4(q->min_coverage));
    cJSON_AddStringToObject(pa, "fallback", dam_fallback_name(q->fallback));
    cJSON_AddNumberToObject(pa, "fallback_window", q->fallback_window);
    cJSON_AddNumberToObject(pa, "fallback_sinks", q->fallback_sinks);
    cJSON *cal = cJSON_AddObjectToObject(root, "calibration");
    cJSON_AddStringToObject(cal, "source", p->source);
    cJSON_AddNumberToObject(cal, "sequences", p->n_sequences);
    cJSON_AddNumberToObject(cal, "tokens", (double)p->n_tokens);
    cJSON_AddNumberToObject(cal, "rows", p->n_rows);
    /* a summary for people reading the file */
    int n = p->n_layers * p->n_heads;
    double cov = 0, dens = 0;
    for (int i = 0; i < n; i++) { cov += p->heads[i].coverage; dens += p->heads[i].true_density; }
    cJSON *sum = cJSON_AddObjectToObject(root, "summary");
    cJSON_AddNumberToObject(sum, "fallback_heads", dam_profile_fallback_heads(p));
    cJSON_AddNumberToObject(sum, "mean_coverage", round4(cov / n));
    cJSON_AddNumberToObject(sum, "mean_true_density", round4(dens / n));
    cJSON_AddStringToObject(root, "true_mask_encoding",
                            "base64 of bits: cell (i, j), j <= i < pcl, is bit k % 8 of byte k / 8, "
                            "k = i * (i + 1) / 2 + j");
    cJSON *heads = cJSON_AddArrayToObject(root, "heads");
    size_t tri = dam_tri_size(q->pcl);
    for (int l = 0; l < p->n_layers; l++)
        for (int h = 0; h < p->n_heads; h++) {
            const struct dam_head *d = &p->heads[l * p->n_heads + h];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "layer", l);
            cJSON_AddNumberToObject(o, "head", h);
            cJSON_AddStringToObject(o, "fallback", dam_fallback_name(d->fallback));
            cJSON_AddNumberToObject(o, "coverage", round4(d->coverage));
            cJSON_AddNumberToObject(o, "true_density", round4(d->true_density));
            cJSON_AddNumberToObject(o, "ext_density", round4(d->ext_density));
            cJSON_AddItemToObject(o, "offsets", int_array(d->offsets, d->n_offsets));
            cJSON_AddItemToObject(o, "columns", int_array(d->columns, d->n_columns));
            if (d->true_mask) {
                char *bits = bits_to_base64(d->true_mask, tri);
                if (!bits) { cJSON_Delete(root); return NULL; }
                cJSON_AddStringToObject(o, "true_mask", bits);
                free(bits);
            }
            cJSON_AddItemToArray(heads, o);
        }
    if (p->reach && add_reach(root, p->reach)) { cJSON_Delete(root); return NULL; }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) dam_fail("out of memory writing a profile");
    return text;
}

int dam_profile_save(const struct dam_profile *p, const char *path) {
    char *text = dam_profile_to_json(p);
    if (!text) return -1;
    size_t len = strlen(text);
    text[len] = '\n';                         /* cJSON_Print leaves room: replace NUL */
    int rc = output_write(path, text, len + 1);   /* a file atomically; "-", a FIFO, a device through */
    free(text);
    return rc;
}

/* ---- reading ---- */

static int get_int(const cJSON *obj, const char *key, long min, long max, int *out,
                   const char *what, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v))
        return dam_fail("profile %s: %s%s needs a number '%s'", what, where, *where ? " " : "", key);
    double d = v->valuedouble;   /* range first: casting an out-of-range double is UB */
    if (!(d >= min && d <= max) || d != (double)(long)d)
        return dam_fail("profile %s: %s%s'%s' = %g is not an integer in %ld..%ld",
                        what, where, *where ? " " : "", key, d, min, max);
    *out = (int)d;
    return 0;
}

static int get_float(const cJSON *obj, const char *key, double min, double max, float *out,
                     const char *what) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v)) return dam_fail("profile %s: params need a number '%s'", what, key);
    if (!(v->valuedouble >= min && v->valuedouble <= max))
        return dam_fail("profile %s: '%s' = %g is out of range (%g to %g)", what, key, v->valuedouble, min, max);
    *out = (float)v->valuedouble;
    return 0;
}

static int get_int_array(const cJSON *obj, const char *key, int **out, int *n,
                         const char *what, int l, int h) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsArray(a)) return dam_fail("profile %s: head (%d, %d) needs an array '%s'", what, l, h, key);
    int count = cJSON_GetArraySize(a), i = 0;
    int *v = xmalloc(((size_t)count + 1) * sizeof *v, "profile patterns");
    if (!v) return -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0 && e->valuedouble <= MAX_PATTERN) ||
            e->valuedouble != (double)(int)e->valuedouble) {
            free(v);
            return dam_fail("profile %s: head (%d, %d): '%s' holds a value that is not an integer in 0..%d",
                            what, l, h, key, MAX_PATTERN);
        }
        v[i++] = (int)e->valuedouble;
    }
    *out = v;
    *n = count;
    return 0;
}

static int parse_params(const cJSON *pa, struct dam_params *q, const char *what) {
    if (!cJSON_IsObject(pa)) return dam_fail("profile %s: missing object 'params'", what);
    if (get_int(pa, "pcl", 2, 1 << 16, &q->pcl, what, "params") ||
        get_float(pa, "lambda", 0, 2, &q->lambda, what) ||
        get_float(pa, "tau", 0, 1e6, &q->tau, what) ||
        get_float(pa, "mu", 0, 1, &q->mu, what) ||
        get_int(pa, "min_support", 0, 1 << 16, &q->min_support, what, "params") ||
        get_float(pa, "min_coverage", 0, 1, &q->min_coverage, what) ||
        get_int(pa, "fallback_window", 1, MAX_PATTERN, &q->fallback_window, what, "params") ||
        get_int(pa, "fallback_sinks", 0, MAX_PATTERN, &q->fallback_sinks, what, "params"))
        return -1;
    const cJSON *fb = cJSON_GetObjectItemCaseSensitive(pa, "fallback");
    int f = cJSON_IsString(fb) ? dam_fallback_parse(fb->valuestring) : -1;
    if (f < 0) return dam_fail("profile %s: params 'fallback' must be \"none\", \"full\" or \"window\"", what);
    q->fallback = (enum dam_fallback)f;
    return 0;
}

static int parse_head(const cJSON *o, struct dam_profile *p, uint8_t *seen, const char *what) {
    int l, h;
    if (get_int(o, "layer", 0, p->n_layers - 1, &l, what, "a head's") ||
        get_int(o, "head", 0, p->n_heads - 1, &h, what, "a head's"))
        return -1;
    if (seen[l * p->n_heads + h]++) return dam_fail("profile %s: head (%d, %d) appears twice", what, l, h);
    struct dam_head *d = &p->heads[l * p->n_heads + h];
    const cJSON *fb = cJSON_GetObjectItemCaseSensitive(o, "fallback");
    int f = cJSON_IsString(fb) ? dam_fallback_parse(fb->valuestring) : -1;
    if (f < 0) return dam_fail("profile %s: head (%d, %d): 'fallback' must be \"none\", \"full\" or \"window\"", what, l, h);
    d->fallback = (enum dam_fallback)f;
    const char *figs[] = { "coverage", "true_density", "ext_density" };
    float *dst[] = { &d->coverage, &d->true_density, &d->ext_density };
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, figs[i]);
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1))
            return dam_fail("profile %s: head (%d, %d) needs '%s' in 0..1", what, l, h, figs[i]);
        *dst[i] = (float)v->valuedouble;
    }
    int *off = NULL, *col = NULL, n_off = 0, n_col = 0;
    if (get_int_array(o, "offsets", &off, &n_off, what, l, h)) return -1;
    if (get_int_array(o, "columns", &col, &n_col, what, l, h)) { free(off); return -1; }
    int rc = dam_head_set(d, off, n_off, col, n_col);
    free(off); free(col);
    if (rc) return -1;
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(o, "true_mask");
    if (tm) {
        size_t tri = dam_tri_size(p->params.pcl);
        if (!cJSON_IsString(tm)) return dam_fail("profile %s: head (%d, %d): 'true_mask' must be a string", what, l, h);
        d->true_mask = xmalloc(tri, "true mask");
        if (!d->true_mask) return -1;
        if (base64_to_bits(tm->valuestring, d->true_mask, tri))
            return dam_fail("profile %s: head (%d, %d): 'true_mask' is not base64 of %zu bits (PCL %d)",
                            what, l, h, tri, p->params.pcl);
    }
    return 0;
}

/* The "reach" object (optional): figures per head, checked for range. */
static int parse_reach(const cJSON *o, struct dam_profile *p, const char *what) {
    int min_row;
    if (!cJSON_IsObject(o)) return dam_fail("profile %s: 'reach' must be an object", what);
    if (get_int(o, "min_row", 0, 1 << 24, &min_row, what, "reach")) return -1;
    const char *grids[2] = { "windows", "blocks" };
    const int *want[2] = { dam_reach_windows, dam_reach_blocks }, len[2] = { DAM_REACH_W, DAM_REACH_K };
    for (int g = 0; g < 2; g++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, grids[g]);
        int i = 0, ok = cJSON_IsArray(a) && cJSON_GetArraySize(a) == len[g];
        const cJSON *e;
        if (ok) cJSON_ArrayForEach(e, a) ok &= cJSON_IsNumber(e) && e->valuedouble == want[g][i++];
        if (!ok) return dam_fail("profile %s: reach '%s' is not the grid this dam measures (recalibrate)", what, grids[g]);
    }
    const cJSON *heads = cJSON_GetObjectItemCaseSensitive(o, "heads");
    if (!cJSON_IsArray(heads) || cJSON_GetArraySize(heads) != p->n_layers * p->n_heads)
        return dam_fail("profile %s: reach needs %d heads", what, p->n_layers * p->n_heads);
    struct dam_reach *r = dam_reach_new(p->n_layers, p->n_heads, min_row);
    if (!r) return -1;
    for (int l = 0; l < p->n_layers; l++) r->rows[l] = 1;   /* the file holds means */
    uint8_t *seen = xcalloc((size_t)p->n_layers * p->n_heads, 1, "profile heads");
    if (!seen) { dam_reach_free(r); return -1; }
    const cJSON *e;
    int rc = 0;
    cJSON_ArrayForEach(e, heads) {
        int l, h;
        if ((rc = get_int(e, "layer", 0, p->n_layers - 1, &l, what, "a reach head's")) ||
            (rc = get_int(e, "head", 0, p->n_heads - 1, &h, what, "a reach head's")))
            break;
        if (seen[l * p->n_heads + h]++) { rc = dam_fail("profile %s: reach head (%d, %d) appears twice", what, l, h); break; }
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(e, "gain");
        if (!cJSON_IsNumber(g) || !(g->valuedouble >= 0 && g->valuedouble < 1e30)) {
            rc = dam_fail("profile %s: reach head (%d, %d) needs a 'gain' >= 0", what, l, h);
            break;
        }
        r->gain[(size_t)l * p->n_heads + h] = g->valuedouble;
        const char *keys[2] = { "kept", "err" };
        double *dst[2] = { r->kept, r->err };
        for (int k = 0; k < 2 && !rc; k++) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, keys[k]), *x;
            if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != DAM_REACH_W * DAM_REACH_K) {
                rc = dam_fail("profile %s: reach head (%d, %d) needs %d numbers in '%s'", what, l, h,
                              DAM_REACH_W * DAM_REACH_K, keys[k]);
                break;
            }
            double *d = dst[k] + ((size_t)l * p->n_heads + h) * DAM_REACH_W * DAM_REACH_K;
            cJSON_ArrayForEach(x, a) {
                if (!cJSON_IsNumber(x) || !(x->valuedouble >= 0 && x->valuedouble < 1e30)) {
                    rc = dam_fail("profile %s: reach head (%d, %d): '%s' holds a value that is not a number >= 0",
                                  what, l, h, keys[k]);
                    break;
                }
                *d++ = x->valuedouble;
            }
        }
        if (rc) break;
    }
    free(seen);
    if (rc) { dam_reach_free(r); return -1; }
    p->reach = r;
    return 0;
}

struct dam_profile *dam_profile_parse(const char *json, size_t len, const char *what) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= json && at <= json + len ? (long)(at - json) : -1;
        dam_fail("profile %s: not valid JSON (near byte %ld)", what, off);
        return NULL;
    }
    struct dam_profile *p = NULL;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsObject(root) || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, PROFILE_FORMAT)) {
        dam_fail("profile %s: not a dam profile (no \"format\": \"%s\")", what, PROFILE_FORMAT);
        goto fail;
    }
    int version;
    if (get_int(root, "version", 0, INT_MAX, &version, what, "")) goto fail;
    if (version != PROFILE_VERSION) {
        dam_fail("profile %s: version %d, this dam reads version %d (recalibrate)", what, version, PROFILE_VERSION);
        goto fail;
    }
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(root, "geometry");
    int nl, nh, nkv, hd;
    if (!cJSON_IsObject(g)) { dam_fail("profile %s: missing object 'geometry'", what); goto fail; }
    if (get_int(g, "n_layers", 1, 4096, &nl, what, "geometry") ||
        get_int(g, "n_heads", 1, 4096, &nh, what, "geometry") ||
        get_int(g, "n_kv_heads", 1, 4096, &nkv, what, "geometry") ||
        get_int(g, "head_dim", 1, 65536, &hd, what, "geometry"))
        goto fail;
    /* the heads array is checked against the geometry before anything the
     * geometry sizes is allocated: a tiny file cannot ask for a huge table */
    const cJSON *heads = cJSON_GetObjectItemCaseSensitive(root, "heads");
    if (!cJSON_IsArray(heads)) { dam_fail("profile %s: missing array 'heads'", what); goto fail; }
    if (cJSON_GetArraySize(heads) != nl * nh) {
        dam_fail("profile %s: %d heads listed, the geometry has %d layers x %d heads = %d",
                 what, cJSON_GetArraySize(heads), nl, nh, nl * nh);
        goto fail;
    }
    struct dam_params q;
    if (parse_params(cJSON_GetObjectItemCaseSensitive(root, "params"), &q, what)) goto fail;
    p = dam_profile_new(nl, nh, nkv, hd, &q);
    if (!p) goto fail;
    const cJSON *cal = cJSON_GetObjectItemCaseSensitive(root, "calibration");
    if (cJSON_IsObject(cal)) {
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(cal, "source");
        if (cJSON_IsString(src)) snprintf(p->source, sizeof p->source, "%s", src->valuestring);
        const cJSON *v;
        if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(cal, "sequences"))) p->n_sequences = v->valueint;
        if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(cal, "tokens")) &&
            v->valuedouble >= 0 && v->valuedouble < 9e18)
            p->n_tokens = (long)v->valuedouble;
        if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(cal, "rows"))) p->n_rows = v->valueint;
    }
    uint8_t *seen = xcalloc((size_t)nl * nh, 1, "profile heads");
    if (!seen) goto fail;
    const cJSON *o;
    cJSON_ArrayForEach(o, heads) {
        if (!cJSON_IsObject(o)) { free(seen); dam_fail("profile %s: 'heads' holds a non-object", what); goto fail; }
        if (parse_head(o, p, seen, what)) { free(seen); goto fail; }
    }
    free(seen);
    const cJSON *reach = cJSON_GetObjectItemCaseSensitive(root, "reach");
    if (reach && parse_reach(reach, p, what)) goto fail;
    cJSON_Delete(root);
    return p;
fail:
    dam_profile_free(p);
    cJSON_Delete(root);
    return NULL;
}

struct dam_profile *dam_profile_load(const char *path) {
    size_t len;
    char *text = read_file(path, &len);
    if (!text) return NULL;
    struct dam_profile *p = dam_profile_parse(text, len, path);
    free(text);
    return p;
}

int dam_profile_check_geometry(const struct dam_profile *p, int n_layers, int n_heads,
                               int n_kv_heads, int head_dim, const char *what) {
    if (p->n_layers == n_layers && p->n_heads == n_heads && p->n_kv_heads == n_kv_heads &&
        p->head_dim == head_dim)
        return 0;
    return dam_fail("profile %s was made for a model with %d layers, %d heads, %d KV heads, head_dim %d; "
                    "this model has %d layers, %d heads, %d KV heads, head_dim %d (run dam calibrate for it)",
                    what, p->n_layers, p->n_heads, p->n_kv_heads, p->head_dim,
                    n_layers, n_heads, n_kv_heads, head_dim);
}

int dam_find_data_file(const char *rel, char *out, size_t size) {
    return data_find(rel, 0, out, size);   /* src/common/datadir.c: build tree, PREFIX/share/dam, ... */
}
