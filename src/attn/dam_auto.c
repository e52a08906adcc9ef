/* dam_auto.c — the automatic profile: calibrated once per model on the
 * texts shipped in prompts/ and cached.
 *
 *   - prompts/calibration.txt (stories) and prompts/calibration_retrieval.txt
 *     (short retrieval prompts, so that retrieval heads show how far back
 *     they look inside PCL), AUTO_MAX_SEQUENCES of each: DAM's patterns;
 *   - prompts/calibration_long.txt (long retrieval documents): the reach of
 *     every head, from which a budget is split across heads.
 * The profile is cached under $XDG_CACHE_HOME/dam/profiles (else
 * ~/.cache/dam/profiles) as <key>.json, key hashing the geometry, the
 * model's content (model_content_key: config.json, safetensors headers,
 * sampled weight bytes), the DAM parameters and the calibration texts. The caller hands in the model and tokenizer it holds:
 * nothing is loaded twice. */
#include "dam/dam.h"
#include "dam/common.h"
#include "dam/model.h"
#include "dam/tokenizer.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUTO_MAX_SEQUENCES 64      /* calibration sequences of each text of the automatic profile */
#define REACH_LEN 4096             /* tokens of a reach sequence */
#define REACH_MAX_SEQUENCES 4
#define REACH_MIN_ROW 512          /* rows measured from this position on */


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

struct dam_profile *dam_auto_profile(const struct model *m, const struct tokenizer *tok,
                                     const struct attn_options *o, char *path_out, size_t size) {
    struct dam_params p;
    if (dam_params_from_options(o, &p)) return NULL;
    /* the calibration texts */
    char text_path[4096], retrieval_path[4096], long_path[4096];
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
    size_t text_len, retrieval_len = 0, long_len = 0;
    char *text = read_file(text_path, &text_len), *retrieval = NULL, *longtext = NULL;
    if (!text) return NULL;
    char text_name[4200];                 /* errors name the file the text came from */
    snprintf(text_name, sizeof text_name, "%s%s", env && *env ? "$DAM_CALIBRATION " : "", text_path);
    if (text_check(text_name, text, text_len) != 0) { free(text); return NULL; }
    /* the retrieval prompts beside it (optional; not with $DAM_CALIBRATION) */
    if (!(env && *env) &&
        dam_find_data_file("prompts/calibration_retrieval.txt", retrieval_path, sizeof retrieval_path) == 0 &&
        !(retrieval = read_file(retrieval_path, &retrieval_len))) {
        free(text);
        return NULL;
    }
    if (dam_find_data_file("prompts/calibration_long.txt", long_path, sizeof long_path) == 0 &&
        !(longtext = read_file(long_path, &long_len))) {
        free(text); free(retrieval);
        return NULL;
    }
    /* the cache key */
    uint64_t h = fnv_str(14695981039346656037ULL, "dam-auto-profile-v2");
    h = fnv_int(h, m->cfg.n_layers); h = fnv_int(h, m->cfg.n_heads);
    h = fnv_int(h, m->cfg.n_kv_heads); h = fnv_int(h, m->cfg.head_dim);
    h = hash_params(h, &p);
    h = fnv(h, text, text_len);
    if (retrieval) h = fnv(h, retrieval, retrieval_len);
    if (longtext) h = fnv(h, longtext, long_len);
    h = fnv_int(h, AUTO_MAX_SEQUENCES);
    h = fnv_int(h, REACH_LEN); h = fnv_int(h, REACH_MAX_SEQUENCES); h = fnv_int(h, REACH_MIN_ROW);
    struct dam_profile *prof = NULL;
    struct tokenizer *own_tok = NULL;
    char dir[4096], path[4200] = "";
    int cacheable = 0;
    /* the model's content, not its file names: a fine-tune of the same
     * shape must not get its base model's masks */
    char content[65];
    if (model_content_key(m, content) != 0) goto done;
    h = fnv_str(h, content);
    cacheable = cache_dir(dir, sizeof dir) == 0;
    if (!cacheable) warn_no_cache(dam_last_error());
    if (cacheable) {
        snprintf(path, sizeof path, "%s/%016llx.json", dir, (unsigned long long)h);
        if (path_out) snprintf(path_out, size, "%s", path);
        if (is_file(path)) {
            prof = dam_profile_load(path);
            if (prof && dam_profile_check_geometry(prof, m->cfg.n_layers, m->cfg.n_heads,
                                                   m->cfg.n_kv_heads, m->cfg.head_dim, path) == 0)
                goto done;
            dam_profile_free(prof);          /* unreadable: calibrate again and replace it */
            prof = NULL;
        }
    }
    /* calibrate, with the caller's tokenizer (or the model's tokenizer.json) */
    if (!tok) {
        char tok_path[4200];
        snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", m->dir);
        if (!is_file(tok_path)) {
            dam_fail("attention 'dam': the automatic profile needs the model's tokenizer.json to read %s; "
                     "give --dam-profile FILE (dam calibrate --ids-file) or --dam-capture prompt", text_path);
            goto done;
        }
        if (!(tok = own_tok = tokenizer_load(m->dir))) goto done;
    }
    const int verbose = isatty(STDERR_FILENO);
    if (verbose)
        fprintf(stderr, "dam: calibrating the dam masks of this model on %s%s%s (once; cached in %s)\n",
                text_path, retrieval ? " and the retrieval prompts beside it" : "",
                longtext ? " and the long documents" : "", cacheable ? dir : "nowhere: no $HOME");
    char what[12400];
    snprintf(what, sizeof what, "auto: %s%s%s%s%s", text_path, retrieval ? " + " : "",
             retrieval ? retrieval_path : "", longtext ? " + reach: " : "", longtext ? long_path : "");
    const char *texts[2] = { text, retrieval };
    prof = dam_calibrate_texts_capped(m, tok, texts, retrieval ? 2 : 1, o, what, 0, AUTO_MAX_SEQUENCES, verbose);
    if (!prof) dam_fail("the automatic DAM profile from %s: %s", text_name, dam_last_error());
    if (prof && longtext && m->cfg.max_seq_len > REACH_MIN_ROW + 2 * KV_BLOCK) {
        const int len = m->cfg.max_seq_len < REACH_LEN ? m->cfg.max_seq_len : REACH_LEN;
        prof->reach = dam_calibrate_reach_text(m, tok, longtext, len, REACH_MAX_SEQUENCES, o, REACH_MIN_ROW, verbose);
        if (!prof->reach) { dam_profile_free(prof); prof = NULL; }
    }
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
done:
    tokenizer_free(own_tok);
    free(text);
    free(retrieval);
    free(longtext);
    return prof;
}
