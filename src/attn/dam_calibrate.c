/* dam_calibrate.c — filling a capture by running the model, and the
 * automatic profile: calibrated once per model on the texts shipped in
 * prompts/calibration.txt (stories) and prompts/calibration_retrieval.txt
 * (short retrieval prompts, so that retrieval heads show how far back they
 * look: on stories alone they look local), AUTO_MAX_SEQUENCES of each, and
 * cached under
 * $XDG_CACHE_HOME/dam/profiles (else ~/.cache/dam/profiles) as <key>.json,
 * where key hashes the geometry, the model's content (model_content_key:
 * config.json, safetensors headers, sampled weight bytes), the DAM
 * parameters and the calibration texts. */
#include "dam/dam.h"
#include "dam/common.h"
#include "dam/model.h"
#include "dam/session.h"
#include "dam/tokenizer.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const struct attn_module attn_dam;

#define AUTO_MAX_SEQUENCES 64      /* calibration sequences of each text of the automatic profile */
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
    snprintf(co.dam_capture, sizeof co.dam_capture, "calibrate");
    co.dam_profile[0] = 0;
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

/* dam_calibrate_texts with a second cap: at most per_text sequences from each
 * text (0 = no cap), so that a long first text cannot crowd out the next one. */
static struct dam_profile *calibrate_texts_capped(const struct model *m, const struct tokenizer *tok,
                                                  const char *const *texts, int n_texts,
                                                  const struct attn_options *o, const char *what,
                                                  int max_seqs, int per_text, int verbose) {
    int **seqs = NULL, *lens = NULL, count = 0, cap = 0, rc = 0;
    int pcl = o->dam_pcl;
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
    return calibrate_texts_capped(m, tok, texts, n_texts, o, what, max_seqs, 0, verbose);
}

/* ---- the automatic profile ---- */

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ULL; }
    return h;
}
static uint64_t fnv_str(uint64_t h, const char *s) { return fnv(h, s, strlen(s) + 1); }
static uint64_t fnv_int(uint64_t h, long long v) { return fnv(h, &v, sizeof v); }

static uint64_t hash_params(uint64_t h, const struct dam_params *p) {
    h = fnv_int(h, p->pcl);
    h = fnv_int(h, (long long)(p->lambda * 1e6f));
    h = fnv_int(h, (long long)(p->tau * 1e6f));
    h = fnv_int(h, (long long)(p->mu * 1e6f));
    h = fnv_int(h, p->min_support);
    h = fnv_int(h, (long long)(p->min_coverage * 1e6f));
    h = fnv_int(h, p->fallback);
    h = fnv_int(h, p->fallback_window);
    h = fnv_int(h, p->fallback_sinks);
    return h;
}

/* mkdir -p */
static int make_dirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* $XDG_CACHE_HOME (created when missing, as the XDG spec says) or an
 * existing $HOME: dam does not create a home folder that is not there. */
static int cache_dir(char *out, size_t size) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (xdg && *xdg) snprintf(out, size, "%s/dam/profiles", xdg);
    else if (home && *home && is_dir(home)) snprintf(out, size, "%s/.cache/dam/profiles", home);
    else if (home && *home) return dam_fail("$HOME (%s) is not a folder", home);
    else return dam_fail("neither $XDG_CACHE_HOME nor $HOME is set");
    return 0;
}

/* Library code does not print, but a cache that silently never works costs
 * a calibration at every start: this one line says why. */
static void warn_no_cache(const char *why) {
    fprintf(stderr, "dam: warning: the automatic DAM profile is not cached (%s): it is calibrated "
            "again at every start\n", why);
}

struct dam_profile *dam_auto_profile(const struct attn_setup *setup, char *path_out, size_t size) {
    const struct attn_options *o = setup->opts;
    struct dam_params p;
    if (dam_params_from_options(o, &p)) return NULL;
    /* the calibration text */
    char text_path[4096];
    const char *env = getenv("DAM_CALIBRATION");
    int found;
    if (env && *env) {
        snprintf(text_path, sizeof text_path, "%s", env);
        found = is_file(env);
    } else {
        found = dam_find_data_file("prompts/calibration.txt", text_path, sizeof text_path) == 0;
    }
    if (!found) {
        char where[1100];
        snprintf(where, sizeof where, "%s", env && *env ? "$DAM_CALIBRATION names no file" : dam_last_error());
        dam_fail("attention 'dam' has no capture source: no --dam-profile was given and the calibration "
                 "text for the automatic profile was not found (%s); give --dam-profile FILE (made by "
                 "dam calibrate) or --dam-capture prompt", where);
        return NULL;
    }
    if (!setup->model_dir || !*setup->model_dir) {
        dam_fail("attention 'dam': the automatic profile needs the model's folder; give --dam-profile FILE");
        return NULL;
    }
    size_t text_len, retrieval_len = 0;
    char *text = read_file(text_path, &text_len);
    if (!text) return NULL;
    char text_name[4200];                 /* errors name the file the text came from */
    snprintf(text_name, sizeof text_name, "%s%s", env && *env ? "$DAM_CALIBRATION " : "", text_path);
    if (text_check(text_name, text, text_len) != 0) { free(text); return NULL; }
    /* the retrieval prompts beside it (optional; not with $DAM_CALIBRATION) */
    char retrieval_path[4096];
    char *retrieval = NULL;
    if (!(env && *env) &&
        dam_find_data_file("prompts/calibration_retrieval.txt", retrieval_path, sizeof retrieval_path) == 0) {
        retrieval = read_file(retrieval_path, &retrieval_len);
        if (!retrieval) { free(text); return NULL; }
    }
    /* the cache key */
    uint64_t h = fnv_str(14695981039346656037ULL, "dam-auto-profile-v1");
    h = fnv_int(h, setup->n_layers); h = fnv_int(h, setup->n_heads);
    h = fnv_int(h, setup->n_kv_heads); h = fnv_int(h, setup->head_dim);
    h = hash_params(h, &p);
    h = fnv(h, text, text_len);
    if (retrieval) h = fnv(h, retrieval, retrieval_len);
    h = fnv_int(h, AUTO_MAX_SEQUENCES);
    /* the model's content, not its file names: a fine-tune of the same
     * shape must not get its base model's masks (mapped, cheap) */
    struct model *m = model_load(setup->model_dir);
    char content[65];
    if (!m || model_content_key(m, content) != 0) { model_free(m); free(text); free(retrieval); return NULL; }
    h = fnv_str(h, content);
    char dir[4096], path[4200] = "";
    int cacheable = cache_dir(dir, sizeof dir) == 0;
    if (!cacheable) warn_no_cache(dam_last_error());
    if (cacheable) {
        snprintf(path, sizeof path, "%s/%016llx.json", dir, (unsigned long long)h);
        if (path_out) snprintf(path_out, size, "%s", path);
        if (is_file(path)) {
            struct dam_profile *prof = dam_profile_load(path);
            if (prof && dam_profile_check_geometry(prof, setup->n_layers, setup->n_heads,
                                                   setup->n_kv_heads, setup->head_dim, path) == 0) {
                free(text);
                free(retrieval);
                model_free(m);
                return prof;
            }
            dam_profile_free(prof);          /* unreadable: calibrate again and replace it */
        }
    }
    /* calibrate: load the model and its tokenizer a second time (mapped, cheap) */
    char tok_path[4200];
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", setup->model_dir);
    if (!is_file(tok_path)) {
        free(text);
        free(retrieval);
        model_free(m);
        dam_fail("attention 'dam': the automatic profile needs the model's tokenizer.json to read %s; "
                 "give --dam-profile FILE (dam calibrate --ids-file) or --dam-capture prompt", text_path);
        return NULL;
    }
    struct tokenizer *tok = tokenizer_load(setup->model_dir);
    struct dam_profile *prof = NULL;
    if (m && tok) {
        int verbose = isatty(STDERR_FILENO);
        if (verbose)
            fprintf(stderr, "dam: calibrating the dam masks of this model on %s%s (once; cached in %s)\n",
                    text_path, retrieval ? " and the retrieval prompts beside it" : "",
                    cacheable ? dir : "nowhere: no $HOME");
        char what[8500];
        if (retrieval) snprintf(what, sizeof what, "auto: %s + %s", text_path, retrieval_path);
        else snprintf(what, sizeof what, "auto: %s", text_path);
        const char *texts[2] = { text, retrieval };
        prof = calibrate_texts_capped(m, tok, texts, retrieval ? 2 : 1, o, what, 0,
                                      AUTO_MAX_SEQUENCES, verbose);
        if (!prof) dam_fail("the automatic DAM profile from %s: %s", text_name, dam_last_error());
    }
    tokenizer_free(tok);
    model_free(m);
    free(text);
    free(retrieval);
    if (prof && cacheable) {
        /* a cache that cannot be written only costs the next run a calibration */
        char saved_error[1024], why[4400];
        snprintf(saved_error, sizeof saved_error, "%s", dam_last_error());
        if (make_dirs(dir) != 0) {
            snprintf(why, sizeof why, "cannot create %s: %s", dir, strerror(errno));
            warn_no_cache(why);
        } else if (dam_profile_save(prof, path) != 0) {
            warn_no_cache(dam_last_error());
        }
        dam_fail("%s", saved_error);
    }
    return prof;
}
