/* dam_calibrate.c — running the model to calibrate DAM: full attention
 * over calibration sequences, filling the PCL capture (the patterns) and the
 * reach capture (how far each head reaches). The automatic profile built
 * from these is in dam_auto.c. */
#include "dam/dam.h"
#include "dam/common.h"
#include "dam/model.h"
#include "dam/kernels.h"
#include "dam/session.h"
#include "dam/tokenizer.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const struct attn_module attn_dam;

#define MIN_SEQUENCE 8             /* shorter pieces of a document are not used */

/* ---- running the model ---- */

struct dam_profile *dam_calibrate_tokens(const struct model *m, const int *const *seqs,
                                         const int *lens, int n_seqs,
                                         const struct attn_options *o, const char *what,
                                         int verbose) {
    struct dam_params p;
    if (dam_params_from_options(o, &p)) return NULL;
    if (n_seqs <= 0) { dam_fail("no calibration sequences (the texts are empty or too short)"); return NULL; }
    int n_ctx = 0;
    for (int i = 0; i < n_seqs; i++) if (lens[i] > n_ctx) n_ctx = lens[i];
    if (n_ctx > m->cfg.max_seq_len) n_ctx = m->cfg.max_seq_len;
    struct attn_options co = *o;
    snprintf(co.dam.capture, sizeof co.dam.capture, "calibrate");
    co.dam.profile[0] = 0;
    co.kv_type = KV_F32;            /* the model measured as it is: the profile fits any --kv-type */
    struct session *s = session_new(m, &attn_dam, &co, n_ctx);
    if (!s) return NULL;
    double t0 = now_ms(), shown = t0;
    for (int i = 0; i < n_seqs; i++) {
        int len = lens[i] < n_ctx ? lens[i] : n_ctx;
        session_rewind(s, 0);
        if (session_eval(s, seqs[i], len, NULL, LOGITS_NONE)) { session_free(s); return NULL; }
        if (verbose && (now_ms() - shown > 500 || i + 1 == n_seqs)) {
            shown = now_ms();
            fprintf(stderr, "\rdam: calibrating: sequence %d/%d (%.1f s)", i + 1, n_seqs, (shown - t0) / 1e3);
            if (i + 1 == n_seqs) fprintf(stderr, "\n");
        }
    }
    struct dam_state *st = dam_state_of(&attn_dam, s->attn_state);
    struct dam_profile *prof = dam_profile_from_capture(dam_state_capture(st), &p,
                                                        m->cfg.n_kv_heads, m->cfg.head_dim);
    session_free(s);
    if (prof) snprintf(prof->source, sizeof prof->source, "%s", what ? what : "");
    return prof;
}

/* A head's error reaches the residual stream through its columns of o_proj:
 * weigh it by their mean squared entry (times dim: the gain of a random
 * direction). */
static int reach_gains(const struct model *m, struct dam_reach *r) {
    const int hd = m->cfg.head_dim, dim = m->cfg.dim;
    float *row = xmalloc((size_t)m->cfg.n_heads * hd * sizeof *row, "o_proj row");
    if (!row) return -1;
    for (int l = 0; l < r->n_layers; l++) {
        double *g = r->gain + (size_t)l * r->n_heads;
        for (int h = 0; h < r->n_heads; h++) g[h] = 0;
        for (int i = 0; i < dim; i++) {
            tensor_row_f32(&m->layers[l].wo, i, row);
            for (int h = 0; h < r->n_heads; h++)
                for (int d = 0; d < hd; d++) g[h] += (double)row[h * hd + d] * row[h * hd + d];
        }
        for (int h = 0; h < r->n_heads; h++) g[h] /= hd;
    }
    free(row);
    return 0;
}

struct dam_reach *dam_calibrate_reach(const struct model *m, const int *const *seqs, const int *lens,
                                      int n_seqs, const struct attn_options *o, int min_row, int verbose) {
    if (n_seqs <= 0) { dam_fail("no reach sequences"); return NULL; }
    int n_ctx = 0;
    for (int i = 0; i < n_seqs; i++) if (lens[i] > n_ctx) n_ctx = lens[i];
    if (n_ctx > m->cfg.max_seq_len) n_ctx = m->cfg.max_seq_len;
    if (n_ctx <= min_row) {
        dam_fail("reach sequences of %d tokens are too short (they must pass position %d)", n_ctx, min_row);
        return NULL;
    }
    struct attn_options co = *o;
    snprintf(co.dam.capture, sizeof co.dam.capture, "reach");
    co.dam.profile[0] = 0;
    co.kv_type = KV_F32;
    co.dam.reach_min_row = min_row;
    struct session *s = session_new(m, &attn_dam, &co, n_ctx);
    if (!s) return NULL;
    double t0 = now_ms();
    for (int i = 0; i < n_seqs; i++) {
        int len = lens[i] < n_ctx ? lens[i] : n_ctx;
        session_rewind(s, 0);
        if (session_eval(s, seqs[i], len, NULL, LOGITS_NONE)) { session_free(s); return NULL; }
        if (verbose)
            fprintf(stderr, "\rdam: measuring reach: sequence %d/%d (%.1f s)%s", i + 1, n_seqs,
                    (now_ms() - t0) / 1e3, i + 1 == n_seqs ? "\n" : "");
    }
    struct dam_state *st = dam_state_of(&attn_dam, s->attn_state);
    struct dam_reach *r = dam_state_reach(st), *copy = dam_reach_new(r->n_layers, r->n_heads, min_row);
    if (copy) {
        const size_t cells = (size_t)r->n_layers * r->n_heads * DAM_REACH_W * DAM_REACH_K;
        memcpy(copy->kept, r->kept, cells * sizeof *r->kept);
        memcpy(copy->err, r->err, cells * sizeof *r->err);
        memcpy(copy->rows, r->rows, (size_t)r->n_layers * sizeof *r->rows);
        if (reach_gains(m, copy)) { dam_reach_free(copy); copy = NULL; }
    }
    session_free(s);
    return copy;
}

static int add_sequences(const int *tok, int n, int pcl, int bos, int ***seqs, int **lens,
                         int *count, int *cap, int max_seqs);

struct dam_reach *dam_calibrate_reach_text(const struct model *m, const struct tokenizer *tok,
                                           const char *text, int seq_len, int max_seqs,
                                           const struct attn_options *o, int min_row, int verbose) {
    int **seqs = NULL, *lens = NULL, count = 0, cap = 0, rc = 0;
    for (const char *doc = text; *doc && rc == 0 && (max_seqs <= 0 || count < max_seqs);) {
        /* a document runs to the next line holding only a form feed */
        const char *end = strstr(doc, "\n\f\n");
        const size_t len = end ? (size_t)(end - doc) : strlen(doc);
        int *ids = NULL, n = 0;
        if ((rc = tokenizer_encode(tok, doc, len, 1, &ids, &n))) break;
        /* sequences of seq_len tokens (a shorter last piece when it passes min_row) */
        rc = add_sequences(ids, n, seq_len, n > 0 ? ids[0] : -1, &seqs, &lens, &count, &cap, max_seqs);
        free(ids);
        doc = end ? end + 3 : doc + len;
    }
    int used = 0;
    for (int i = 0; i < count; i++)                   /* pieces too short to reach min_row are no use */
        if (lens[i] > min_row + KV_BLOCK) { seqs[used] = seqs[i]; lens[used++] = lens[i]; }
        else free(seqs[i]);
    struct dam_reach *r = NULL;
    if (rc == 0 && used == 0)
        dam_fail("the reach text has no document longer than %d tokens", min_row + KV_BLOCK);
    else if (rc == 0)
        r = dam_calibrate_reach(m, (const int *const *)seqs, lens, used, o, min_row, verbose);
    for (int i = 0; i < used; i++) free(seqs[i]);
    free(seqs);
    free(lens);
    return r;
}

/* Appends the sequences of one document's tokens: windows of pcl tokens, a
 * continuation beginning with bos again when the document began with it. */
static int add_sequences(const int *tok, int n, int pcl, int bos, int ***seqs, int **lens,
                         int *count, int *cap, int max_seqs) {
    int has_bos = bos >= 0 && n > 0 && tok[0] == bos;
    for (int start = 0; start < n;) {
        if (max_seqs > 0 && *count >= max_seqs) return 0;
        int prefix = has_bos && start > 0;               /* BOS for a continuation */
        int take = pcl - prefix < n - start ? pcl - prefix : n - start;
        if (take + prefix < MIN_SEQUENCE && start > 0) break;
        if (*count == *cap) {
            int nc = *cap ? *cap * 2 : 32;
            int **s2 = realloc(*seqs, (size_t)nc * sizeof **seqs);
            if (!s2) return dam_fail("out of memory for calibration sequences");
            *seqs = s2;
            int *l2 = realloc(*lens, (size_t)nc * sizeof **lens);
            if (!l2) return dam_fail("out of memory for calibration sequences");
            *lens = l2;
            *cap = nc;
        }
        int *seq = xmalloc(((size_t)take + 1) * sizeof *seq, "calibration sequence");
        if (!seq) return -1;
        if (prefix) seq[0] = bos;
        memcpy(seq + prefix, tok + start, (size_t)take * sizeof *seq);
        (*seqs)[*count] = seq;
        (*lens)[*count] = take + prefix;
        (*count)++;
        start += take;
    }
    return 0;
}

/* True when the line starting at p (up to the next '\n') is blank. */
static int blank_line(const char *p) {
    while (*p && *p != '\n') { if (!isspace((unsigned char)*p)) return 0; p++; }
    return 1;
}

struct dam_profile *dam_calibrate_texts_capped(const struct model *m, const struct tokenizer *tok,
                                                  const char *const *texts, int n_texts,
                                                  const struct attn_options *o, const char *what,
                                                  int max_seqs, int per_text, int verbose) {
    int **seqs = NULL, *lens = NULL, count = 0, cap = 0, rc = 0;
    int pcl = o->dam.pcl;
    for (int t = 0; t < n_texts && rc == 0; t++) {
        const char *p = texts[t];
        int limit = max_seqs;                       /* the count this text may reach */
        if (per_text > 0 && (limit <= 0 || count + per_text < limit)) limit = count + per_text;
        while (*p && rc == 0 && (limit <= 0 || count < limit)) {
            /* a document: lines up to the next blank line */
            while (*p && blank_line(p)) { const char *nl = strchr(p, '\n'); p = nl ? nl + 1 : p + strlen(p); }
            const char *doc = p;
            while (*p && !blank_line(p)) { const char *nl = strchr(p, '\n'); p = nl ? nl + 1 : p + strlen(p); }
            size_t len = (size_t)(p - doc);
            while (len > 0 && isspace((unsigned char)doc[len - 1])) len--;
            if (len == 0) continue;
            int *ids = NULL, n = 0;
            if (tokenizer_encode(tok, doc, len, 1, &ids, &n)) { rc = -1; break; }
            rc = add_sequences(ids, n, pcl, m->cfg.bos_id, &seqs, &lens, &count, &cap, limit);
            free(ids);
        }
    }
    struct dam_profile *prof = NULL;
    if (rc == 0) prof = dam_calibrate_tokens(m, (const int *const *)seqs, lens, count, o, what, verbose);
    for (int i = 0; i < count; i++) free(seqs[i]);
    free(seqs);
    free(lens);
    return prof;
}

struct dam_profile *dam_calibrate_texts(const struct model *m, const struct tokenizer *tok,
                                        const char *const *texts, int n_texts,
                                        const struct attn_options *o, const char *what,
                                        int max_seqs, int verbose) {
    return dam_calibrate_texts_capped(m, tok, texts, n_texts, o, what, max_seqs, 0, verbose);
}
