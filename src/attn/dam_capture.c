/* dam_capture.c — the math of DAM's stages 1-3: accumulate attention
 * probabilities, amplify them with Box-Cox, binarise with tau (the true
 * mask), match diagonal and column patterns (gamma >= mu), and decide which
 * heads fall back. No I/O here: dam_profile.c reads and writes profiles,
 * dam.c runs the masks. */
#include "dam/dam.h"
#include "dam/common.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameters ---- */

static const char *const fallback_names[] = { "none", "full", "window" };

const char *dam_fallback_name(enum dam_fallback f) {
    return (unsigned)f < 3 ? fallback_names[f] : "?";
}

int dam_fallback_parse(const char *name) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, fallback_names[i])) return i;
    return -1;
}

int dam_params_from_options(const struct attn_options *o, struct dam_params *p) {
    memset(p, 0, sizeof *p);
    if (o->dam.pcl < 2) return dam_fail("dam: pattern capture length %d is too small (at least 2)", o->dam.pcl);
    if (!(o->dam.lambda >= 0 && o->dam.lambda <= 2))
        return dam_fail("dam: Box-Cox lambda %g is out of range (0 to 2)", o->dam.lambda);
    if (!(o->dam.tau >= 0)) return dam_fail("dam: threshold tau %g must be >= 0", o->dam.tau);
    if (!(o->dam.mu >= 0 && o->dam.mu <= 1)) return dam_fail("dam: match threshold mu %g is out of range (0 to 1)", o->dam.mu);
    if (!(o->dam.min_coverage >= 0 && o->dam.min_coverage <= 1))
        return dam_fail("dam: minimum coverage %g is out of range (0 to 1)", o->dam.min_coverage);
    int fb = dam_fallback_parse(o->dam.fallback);
    if (fb < 0) return dam_fail("dam: unknown fallback policy '%s' (expected full, window or none)", o->dam.fallback);
    p->pcl = o->dam.pcl;
    p->lambda = o->dam.lambda;
    p->tau = o->dam.tau;
    p->mu = o->dam.mu;
    p->min_support = o->dam.min_support > 0 ? o->dam.min_support : o->dam.pcl / 4;
    if (p->min_support < 1) p->min_support = 1;
    p->min_coverage = o->dam.min_coverage;
    p->fallback = (enum dam_fallback)fb;
    p->fallback_window = o->dam.fallback_window > 0 ? o->dam.fallback_window : 1;
    p->fallback_sinks = o->dam.sinks > 0 ? o->dam.sinks : 0;
    return 0;
}

/* ---- stage 1: accumulate ---- */

float dam_boxcox(float x, float lambda) {
    double v = x > 1e-10f ? x : 1e-10;
    if (lambda == 0) return (float)log(v);
    return (float)((pow(v, lambda) - 1.0) / lambda);
}

struct dam_capture *dam_capture_new(int n_layers, int n_heads, int pcl) {
    struct dam_capture *c = xcalloc(1, sizeof *c, "dam capture");
    if (!c) return NULL;
    c->n_layers = n_layers; c->n_heads = n_heads; c->pcl = pcl;
    c->sum = xcalloc((size_t)n_layers * n_heads * dam_tri_size(pcl), sizeof(float),
                     "dam capture (lower --dam-pcl)");
    c->rows = xcalloc((size_t)n_layers * pcl, sizeof(uint32_t), "dam capture rows");
    if (!c->sum || !c->rows) { dam_capture_free(c); return NULL; }
    return c;
}

void dam_capture_free(struct dam_capture *c) {
    if (!c) return;
    free(c->sum);
    free(c->rows);
    free(c);
}

void dam_capture_count_row(struct dam_capture *c, int layer, int i) {
    c->rows[(size_t)layer * c->pcl + i]++;
    if (layer == 0) {
        c->n_tokens++;
        if (i == 0) c->n_sequences++;
    }
}

/* A rewind to position `from` inside PCL: the rows from there on are
 * recomputed by the next tokens, so this sequence's share of them goes. */
void dam_capture_forget(struct dam_capture *c, int from) {
    if (from >= c->pcl) return;
    if (from < 0) from = 0;
    size_t tri = dam_tri_size(c->pcl);
    for (int l = 0; l < c->n_layers; l++) {
        for (int h = 0; h < c->n_heads; h++) {
            float *s = c->sum + ((size_t)l * c->n_heads + h) * tri;
            memset(s + dam_tri(from, 0), 0, (tri - dam_tri(from, 0)) * sizeof(float));
        }
        memset(c->rows + (size_t)l * c->pcl + from, 0, (size_t)(c->pcl - from) * sizeof(uint32_t));
    }
    if (from == 0) { c->n_sequences = 0; c->n_tokens = 0; }
    else c->n_tokens = from;
}

/* Rows [0, n) that some sequence reached (sequences all start at 0, so the
 * counts never increase along i). */
static int known_rows(const struct dam_capture *c, int layer) {
    const uint32_t *rows = c->rows + (size_t)layer * c->pcl;
    int n = 0;
    while (n < c->pcl && rows[n] > 0) n++;
    return n;
}

/* ---- stage 2: amplify and binarise ---- */

void dam_true_masks(const struct dam_capture *c, int layer, const struct dam_params *p,
                    uint8_t *masks) {
    const size_t tri = dam_tri_size(c->pcl);
    const uint32_t *rows = c->rows + (size_t)layer * c->pcl;
    const int n_rows = known_rows(c, layer);
    memset(masks, 0, (size_t)c->n_heads * tri);
    if (n_rows == 0) return;
    /* The layer's minimum of B decides the shift (B of a zero mean is about
     * -1/lambda, so in practice the shift makes B about 2*sqrt(A) at 0.5). */
    double bmin = INFINITY;
    for (int h = 0; h < c->n_heads; h++) {
        const float *s = c->sum + ((size_t)layer * c->n_heads + h) * tri;
        for (int i = 0; i < n_rows; i++) {
            double inv = 1.0 / ((double)rows[i] + 1e-10);
            for (int j = 0; j <= i; j++) {
                double b = dam_boxcox((float)(s[dam_tri(i, j)] * inv), p->lambda);
                if (b < bmin) bmin = b;
            }
        }
    }
    double shift = bmin < 0 ? -bmin : 0;
    for (int h = 0; h < c->n_heads; h++) {
        const float *s = c->sum + ((size_t)layer * c->n_heads + h) * tri;
        uint8_t *m = masks + (size_t)h * tri;
        for (int i = 0; i < n_rows; i++) {
            double inv = 1.0 / ((double)rows[i] + 1e-10);
            for (int j = 0; j <= i; j++) {
                double b = dam_boxcox((float)(s[dam_tri(i, j)] * inv), p->lambda) + shift;
                m[dam_tri(i, j)] = b >= p->tau;
            }
        }
    }
}

/* ---- stage 3: match patterns ---- */

float dam_gamma_diagonal(const uint8_t *mask, int pcl, int n_rows, int r, int *support) {
    (void)pcl;
    int cells = n_rows - r, hits = 0;
    if (cells <= 0) { *support = 0; return 0; }
    for (int i = r; i < n_rows; i++) hits += mask[dam_tri(i, i - r)];
    *support = cells;
    return (float)hits / (float)cells;
}

float dam_gamma_column(const uint8_t *mask, int pcl, int n_rows, int c, int *support) {
    (void)pcl;
    int cells = n_rows - c, hits = 0;
    if (cells <= 0) { *support = 0; return 0; }
    for (int i = c; i < n_rows; i++) hits += mask[dam_tri(i, c)];
    *support = cells;
    return (float)hits / (float)cells;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Sorted, without duplicates; returns the new count. */
static int sort_unique(int *v, int n) {
    if (n <= 1) return n;
    qsort(v, (size_t)n, sizeof *v, cmp_int);
    int m = 1;
    for (int i = 1; i < n; i++)
        if (v[i] != v[m - 1]) v[m++] = v[i];
    return m;
}

int dam_head_set(struct dam_head *h, const int *offsets, int n_offsets,
                 const int *columns, int n_columns) {
    int *o = xmalloc(((size_t)n_offsets + 1) * sizeof *o, "dam offsets");
    int *c = xmalloc(((size_t)n_columns + 1) * sizeof *c, "dam columns");
    if (!o || !c) { free(o); free(c); return -1; }
    o[0] = 0;                                   /* a row always keeps itself */
    for (int i = 0; i < n_offsets; i++) {
        if (offsets[i] < 0) { free(o); free(c); return dam_fail("dam: negative diagonal offset %d", offsets[i]); }
        o[i + 1] = offsets[i];
    }
    for (int i = 0; i < n_columns; i++) {
        if (columns[i] < 0) { free(o); free(c); return dam_fail("dam: negative column %d", columns[i]); }
        c[i] = columns[i];
    }
    free(h->offsets);
    free(h->columns);
    h->offsets = o;
    h->n_offsets = sort_unique(o, n_offsets + 1);
    h->columns = c;
    h->n_columns = sort_unique(c, n_columns);
    return 0;
}

/* Matches one head's true mask (rows [0, n_rows) known) and fills h. */
static int match_head(struct dam_head *h, const uint8_t *mask, int pcl, int n_rows,
                      const struct dam_params *p) {
    int *offsets = xmalloc(((size_t)pcl + 1) * sizeof *offsets, "dam offsets");
    int *columns = xmalloc(((size_t)pcl + 1) * sizeof *columns, "dam columns");
    uint8_t *is_off = xcalloc((size_t)pcl + 1, 1, "dam offsets");
    uint8_t *is_col = xcalloc((size_t)pcl + 1, 1, "dam columns");
    if (!offsets || !columns || !is_off || !is_col) {
        free(offsets); free(columns); free(is_off); free(is_col);
        return -1;
    }
    int n_off = 0, n_col = 0, support;
    for (int r = 0; r < n_rows; r++) {
        float g = dam_gamma_diagonal(mask, pcl, n_rows, r, &support);
        if (r == 0 || (support >= p->min_support && g >= p->mu)) { offsets[n_off++] = r; is_off[r] = 1; }
    }
    for (int c = 0; c < n_rows; c++) {
        float g = dam_gamma_column(mask, pcl, n_rows, c, &support);
        if (support >= p->min_support && g >= p->mu) { columns[n_col++] = c; is_col[c] = 1; }
    }
    if (n_rows == 0) { offsets[0] = 0; n_off = 1; }
    /* coverage and densities inside the captured rows */
    long true_cells = 0, ext_cells = 0, both = 0, cells = (long)dam_tri_size(n_rows);
    for (int i = 0; i < n_rows; i++)
        for (int j = 0; j <= i; j++) {
            int t = mask[dam_tri(i, j)], e = is_off[i - j] || is_col[j];
            true_cells += t; ext_cells += e; both += t && e;
        }
    int rc = dam_head_set(h, offsets, n_off, columns, n_col);
    free(offsets); free(columns); free(is_off); free(is_col);
    if (rc) return -1;
    h->coverage = true_cells ? (float)both / (float)true_cells : 1.0f;
    h->true_density = cells ? (float)true_cells / (float)cells : 0;
    h->ext_density = cells ? (float)ext_cells / (float)cells : 0;
    h->fallback = (h->coverage < p->min_coverage) ? p->fallback : DAM_FALLBACK_NONE;
    return 0;
}

/* ---- profiles ---- */

struct dam_profile *dam_profile_new(int n_layers, int n_heads, int n_kv_heads, int head_dim,
                                    const struct dam_params *p) {
    if (n_layers <= 0 || n_heads <= 0 || n_kv_heads <= 0 || head_dim <= 0 || n_heads % n_kv_heads) {
        dam_fail("dam: bad geometry (%d layers, %d heads, %d KV heads, head_dim %d)",
                 n_layers, n_heads, n_kv_heads, head_dim);
        return NULL;
    }
    struct dam_profile *prof = xcalloc(1, sizeof *prof, "dam profile");
    if (!prof) return NULL;
    prof->n_layers = n_layers; prof->n_heads = n_heads;
    prof->n_kv_heads = n_kv_heads; prof->head_dim = head_dim;
    prof->params = *p;
    prof->heads = xcalloc((size_t)n_layers * n_heads, sizeof *prof->heads, "dam profile heads");
    if (!prof->heads) { free(prof); return NULL; }
    return prof;
}

void dam_profile_free(struct dam_profile *p) {
    if (!p) return;
    for (int i = 0; p->heads && i < p->n_layers * p->n_heads; i++) {
        free(p->heads[i].offsets);
        free(p->heads[i].columns);
        free(p->heads[i].true_mask);
    }
    free(p->heads);
    dam_reach_free(p->reach);
    free(p);
}

static void *dup_bytes(const void *src, size_t n) {
    if (!src) return NULL;
    void *d = xmalloc(n ? n : 1, "profile copy");
    if (d) memcpy(d, src, n);
    return d;
}

struct dam_profile *dam_profile_clone(const struct dam_profile *p) {
    struct dam_profile *c = dam_profile_new(p->n_layers, p->n_heads, p->n_kv_heads, p->head_dim, &p->params);
    if (!c) return NULL;
    c->n_rows = p->n_rows;
    c->n_sequences = p->n_sequences;
    c->n_tokens = p->n_tokens;
    memcpy(c->source, p->source, sizeof c->source);
    const size_t tri = dam_tri_size(p->params.pcl);
    for (int i = 0; i < p->n_layers * p->n_heads; i++) {
        const struct dam_head *h = &p->heads[i];
        struct dam_head *d = &c->heads[i];
        *d = *h;
        d->offsets = dup_bytes(h->offsets, (size_t)h->n_offsets * sizeof *h->offsets);
        d->columns = dup_bytes(h->columns, (size_t)h->n_columns * sizeof *h->columns);
        d->true_mask = dup_bytes(h->true_mask, tri);
        if ((h->offsets && !d->offsets) || (h->columns && !d->columns) || (h->true_mask && !d->true_mask)) {
            dam_profile_free(c);
            return NULL;
        }
    }
    if (p->reach) {
        const struct dam_reach *r = p->reach;
        const size_t cells = (size_t)r->n_layers * r->n_heads * DAM_REACH_W * DAM_REACH_K;
        if (!(c->reach = dam_reach_new(r->n_layers, r->n_heads, r->min_row))) { dam_profile_free(c); return NULL; }
        memcpy(c->reach->kept, r->kept, cells * sizeof *r->kept);
        memcpy(c->reach->err, r->err, cells * sizeof *r->err);
        memcpy(c->reach->rows, r->rows, (size_t)r->n_layers * sizeof *r->rows);
        memcpy(c->reach->gain, r->gain, (size_t)r->n_layers * r->n_heads * sizeof *r->gain);
    }
    return c;
}

int dam_profile_capture_layer(struct dam_profile *prof, const struct dam_capture *c, int layer) {
    const struct dam_params *p = &prof->params;
    const size_t tri = dam_tri_size(c->pcl);
    if (c->pcl != p->pcl || c->n_heads != prof->n_heads || layer < 0 || layer >= prof->n_layers)
        return dam_fail("dam: capture and profile disagree (PCL %d vs %d)", c->pcl, p->pcl);
    uint8_t *masks = xmalloc((size_t)c->n_heads * tri, "dam true masks");
    if (!masks) return -1;
    dam_true_masks(c, layer, p, masks);
    int n_rows = known_rows(c, layer);
    if (n_rows > prof->n_rows) prof->n_rows = n_rows;
    for (int h = 0; h < c->n_heads; h++) {
        struct dam_head *head = &prof->heads[(size_t)layer * prof->n_heads + h];
        const uint8_t *m = masks + (size_t)h * tri;
        if (match_head(head, m, c->pcl, n_rows, p)) { free(masks); return -1; }
        free(head->true_mask);
        head->true_mask = xmalloc(tri, "dam true mask");
        if (!head->true_mask) { free(masks); return -1; }
        memcpy(head->true_mask, m, tri);
    }
    free(masks);
    prof->n_sequences = c->n_sequences;
    prof->n_tokens = c->n_tokens;
    return 0;
}

struct dam_profile *dam_profile_from_capture(const struct dam_capture *c, const struct dam_params *p,
                                             int n_kv_heads, int head_dim) {
    struct dam_profile *prof = dam_profile_new(c->n_layers, c->n_heads, n_kv_heads, head_dim, p);
    if (!prof) return NULL;
    for (int l = 0; l < c->n_layers; l++)
        if (dam_profile_capture_layer(prof, c, l)) { dam_profile_free(prof); return NULL; }
    return prof;
}

int dam_profile_fallback_heads(const struct dam_profile *p) {
    int n = 0;
    for (int i = 0; i < p->n_layers * p->n_heads; i++) n += p->heads[i].fallback != DAM_FALLBACK_NONE;
    return n;
}
