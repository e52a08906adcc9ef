/* hub.c — which files a model needs, and getting each into the cache.
 *
 * A fetch pins the revision first: the HEAD of config.json at "main" answers
 * with the commit main points at (X-Repo-Commit), refs/main records it, and
 * every other file is then asked for at that commit, so one snapshot never
 * mixes two pushes. A file already in snapshots/<commit>/ costs no request,
 * and neither does one recorded absent in .no_exist/<commit>/, so fetching a
 * complete model again is a single HEAD (none when the revision is a commit).
 *
 * Offline (HF_HUB_OFFLINE=1), or when the hub cannot be reached, the same
 * list of files is checked against the cache instead, and what is missing
 * is named. */
#include "hub_internal.h"
#include "dam/common.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Files every model needs (required) or may have (optional: a 404 only
 * means absent). Weights come after, from the index when there is one. */
static const char *const REQUIRED_FILES[] = { "config.json" };
static const char *const OPTIONAL_FILES[] = {
    "generation_config.json", "tokenizer.json", "tokenizer_config.json",
};
#define INDEX_FILE "model.safetensors.index.json"
#define SINGLE_WEIGHTS "model.safetensors"
#define MAX_SHARDS 100000

/* ---- repo ids on the command line ---- */

int hub_is_repo_id(const char *s) {
    struct stat st;
    return s && strchr(s, '/') && hub_valid_repo_id(s) && stat(s, &st) != 0;
}

static int env_truthy(const char *name) {
    const char *v = getenv(name);
    return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
                 !strcasecmp(v, "on"));
}

static int has_glob(const char *s) { return strpbrk(s, "*?[") != NULL; }

/* ---- the state of one fetch ---- */

struct fetch {
    struct hub_repo repo;
    struct hub_http http;
    const char *revision;          /* as asked: "main", a tag or a commit */
    char commit[HUB_COMMIT_LEN + 1];   /* "" until the hub (or the cache) says */
    int quiet;
    int unreachable;               /* a request failed without an HTTP answer */
    cJSON *listing;                /* the API's file list, fetched for globs */
    char missing[1024];            /* offline: what the cache lacks */
};

/* "org/name/resolve/<revision>/<file>" on the endpoint. */
static void resolve_url(const struct fetch *f, const char *file, char *out, size_t size) {
    snprintf(out, size, "%s/%s/resolve/", f->http.endpoint, f->repo.id);
    hub_url_encode(f->commit[0] ? f->commit : f->revision, 0, out, size);
    size_t n = strlen(out);
    snprintf(out + n, size - n, "/");
    hub_url_encode(file, 1, out, size);
}

/* An HTTP error from the hub as one line. Returns 1 when it only means
 * "this file does not exist", 0 after recording the error. */
static int hub_error(struct fetch *f, const char *file, const struct hub_response *r) {
    const char *code = r->error_code, *id = f->repo.id, *ep = f->http.endpoint;
    if (!strcmp(code, "EntryNotFound") || (r->status == 404 && !code[0])) return 1;
    if (!strcmp(code, "RepoNotFound"))
        dam_fail("repository %s not found on %s%s", id, ep,
                 f->http.auth_header ? "" : " (if it is private, set HF_TOKEN)");
    else if (!strcmp(code, "RevisionNotFound"))
        dam_fail("revision '%s' not found in %s", f->revision, id);
    else if (!strcmp(code, "GatedRepo") && f->http.auth_header)
        dam_fail("%s is gated and your token has no access: accept its conditions at %s/%s", id, ep, id);
    else if (!strcmp(code, "GatedRepo"))
        dam_fail("%s is gated: accept its conditions at %s/%s, then set HF_TOKEN=hf_... "
                 "(or save the token in $HF_HOME/token, as `huggingface-cli login` does)", id, ep, id);
    else if (r->status == 401)
        dam_fail("%s needs a token (HTTP 401 for %s): set HF_TOKEN", id, file);
    else
        dam_fail("HTTP %ld%s%s%s%s for %s of %s", r->status, code[0] ? " " : "", code,
                 r->error_message[0] ? ": " : "", r->error_message, file, id);
    return 0;
}

/* ---- one file ---- */

/* What a HEAD said about a file, checked before any of it becomes a path. */
struct file_meta {
    char commit[HUB_COMMIT_LEN + 1];
    char etag[HUB_ETAG_MAX + 1];
    int64_t size;
};

static int read_meta(const struct fetch *f, const char *file, const struct hub_response *r,
                     struct file_meta *m) {
    if (!hub_is_commit(r->commit))
        return dam_fail("the hub sent no valid X-Repo-Commit for %s of %s (is HF_ENDPOINT a Hugging Face hub?)",
                        file, f->repo.id);
    memcpy(m->commit, r->commit, sizeof m->commit);
    const char *etag = r->linked_etag[0] ? r->linked_etag : r->etag;
    if (hub_normalize_etag(etag, m->etag, sizeof m->etag) != 0)
        return dam_fail("the hub sent no usable ETag for %s of %s", file, f->repo.id);
    m->size = r->linked_size >= 0 ? r->linked_size : r->content_length;
    if (m->size < 0) return dam_fail("the hub sent no size for %s of %s", file, f->repo.id);
    return 0;
}

/* Downloads the blob (unless another fetch already did) and links it into
 * the snapshot. The lock keeps two processes off the same .incomplete. */
static int download_blob(struct fetch *f, const char *file, const char *url, const struct file_meta *m) {
    char blob[PATH_MAX], partial[PATH_MAX + 16], blobs_dir[PATH_MAX + 16];
    struct stat st;
    hub_blob_path(&f->repo, m->etag, blob, sizeof blob);
    snprintf(partial, sizeof partial, "%s.incomplete", blob);
    snprintf(blobs_dir, sizeof blobs_dir, "%s/blobs", f->repo.dir);
    if (hub_mkdirs(blobs_dir) != 0) return -1;
    int lock = hub_lock_blob(&f->repo, m->etag);
    if (lock < 0) return -1;
    int rc = -1;
    if (stat(blob, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == m->size) {
        rc = hub_link_snapshot(&f->repo, m->commit, file, m->etag);   /* shared with another commit */
        goto done;
    }
    /* LFS files are named by their SHA-256: check it. Other etags are git
     * hashes of the content; the size is what we can check there. */
    char sha[65] = "";
    int lfs = hub_is_sha256(m->etag);
    struct hub_progress p = { .name = file, .quiet = f->quiet };
    struct hub_response r;
    if (hub_http_download(&f->http, url, partial, m->size, lfs ? sha : NULL, &p, &r) != 0) goto done;
    if (stat(partial, &st) != 0 || st.st_size != m->size) {
        progress_end(&p, 0);
        dam_fail("%s: expected %lld bytes, got %lld", file, (long long)m->size, (long long)st.st_size);
        unlink(partial);
        goto done;
    }
    if (lfs && strcmp(sha, m->etag) != 0) {
        progress_end(&p, 0);
        unlink(partial);   /* bad bytes: resuming them would not help */
        dam_fail("%s is corrupt: its SHA-256 is %s but the hub announced %s (download deleted; run again to retry)",
                 file, sha, m->etag);
        goto done;
    }
    if (rename(partial, blob) != 0) {
        progress_end(&p, 0);
        dam_fail("cannot move %s: %s", partial, strerror(errno));
        goto done;
    }
    progress_end(&p, 1);
    rc = hub_link_snapshot(&f->repo, m->commit, file, m->etag);
done:
    hub_unlock(lock);
    return rc;
}

/* Makes file present in the snapshot. *present: 1 when it is there after,
 * 0 when the hub says it does not exist (an error only when required). */
static int fetch_file(struct fetch *f, const char *file, int required, int *present) {
    *present = 0;
    if (!hub_valid_filename(file))
        return dam_fail("refusing file name '%s' of %s (it could leave the cache folder)", file, f->repo.id);
    if (f->commit[0] && hub_snapshot_has(&f->repo, f->commit, file)) { *present = 1; return 0; }
    if (f->commit[0] && hub_no_exist_has(&f->repo, f->commit, file)) {
        if (!required) return 0;
        return dam_fail("%s has no %s at commit %s", f->repo.id, file, f->commit);
    }
    char url[4096];
    struct hub_response r;
    resolve_url(f, file, url, sizeof url);
    if (hub_http_head(&f->http, url, &r) != 0) {
        if (hub_stop_requested) return -1;
        f->unreachable = 1;
        return dam_fail("cannot reach %s (%s)", f->http.endpoint, r.detail);
    }
    int found = r.status == 200 || (r.status >= 300 && r.status < 400);   /* 3xx: an LFS file on the CDN */
    if (!found) {
        if (!hub_error(f, file, &r)) return -1;
        if (hub_is_commit(r.commit) && hub_mark_no_exist(&f->repo, r.commit, file) != 0) return -1;
        if (!required) return 0;
        return dam_fail("%s has no %s at revision %s%s", f->repo.id, file, f->revision,
                        !strcmp(file, SINGLE_WEIGHTS) ? " (dam reads safetensors weights only)" : "");
    }
    struct file_meta m;
    if (read_meta(f, file, &r, &m) != 0) return -1;
    if (!f->commit[0]) {   /* the first answer pins the revision */
        memcpy(f->commit, m.commit, sizeof f->commit);
        if (strcmp(f->revision, f->commit) && hub_write_ref(&f->repo, f->revision, f->commit) != 0) return -1;
        if (hub_snapshot_has(&f->repo, f->commit, file)) { *present = 1; return 0; }
        resolve_url(f, file, url, sizeof url);   /* download at the commit too */
    } else if (strcmp(m.commit, f->commit)) {
        return dam_fail("the hub answered %s of %s with commit %s instead of %s", file, f->repo.id,
                        m.commit, f->commit);
    }
    if (download_blob(f, file, url, &m) != 0) return -1;
    *present = 1;
    return 0;
}

/* ---- which files ---- */

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The shard names of an index file, sorted, each once. */
static int read_shards(const char *index_path, char ***names, int *count) {
    *names = NULL;
    *count = 0;
    char *text = read_file(index_path, NULL);
    if (!text) return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return dam_fail("%s has no weight_map", index_path);
    }
    int n = cJSON_GetArraySize(map), k = 0;
    char **list = n > 0 && n <= MAX_SHARDS ? xcalloc((size_t)n, sizeof *list, "shard names") : NULL;
    if (!list) { cJSON_Delete(root); return n > 0 && n <= MAX_SHARDS ? -1 : dam_fail("%s lists %d tensors", index_path, n); }
    const cJSON *item;
    cJSON_ArrayForEach(item, map) {
        if (!cJSON_IsString(item)) continue;
        list[k] = strdup(item->valuestring);
        if (!list[k]) break;
        k++;
    }
    cJSON_Delete(root);
    qsort(list, (size_t)k, sizeof *list, compare_strings);
    int unique = 0;
    for (int i = 0; i < k; i++) {
        if (unique > 0 && !strcmp(list[unique - 1], list[i])) { free(list[i]); continue; }
        list[unique++] = list[i];
    }
    *names = list;
    *count = unique;
    return 0;
}

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* The weights: every shard of the index when there is one, else the single
 * file. Needs the index in the snapshot already when there is one. */
static int fetch_weights(struct fetch *f) {
    int present;
    if (fetch_file(f, INDEX_FILE, 0, &present) != 0) return -1;
    if (!present) return fetch_file(f, SINGLE_WEIGHTS, 1, &present);
    char index[PATH_MAX];
    char **shards;
    int n;
    hub_snapshot_path(&f->repo, f->commit, INDEX_FILE, index, sizeof index);
    if (read_shards(index, &shards, &n) != 0) return -1;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) rc = fetch_file(f, shards[i], 1, &present);
    free_names(shards, n);
    return rc;
}

/* The repo's file list from {endpoint}/api/models/{repo}/revision/{commit}. */
static int fetch_listing(struct fetch *f) {
    if (f->listing) return 0;
    char url[4096], *body;
    struct hub_response r;
    snprintf(url, sizeof url, "%s/api/models/%s/revision/", f->http.endpoint, f->repo.id);
    hub_url_encode(f->commit, 0, url, sizeof url);
    if (hub_http_get_small(&f->http, url, &body, NULL, &r) != 0) {
        if (r.status >= 400 && hub_error(f, "the file list", &r))
            dam_fail("cannot list the files of %s: HTTP %ld", f->repo.id, r.status);
        if (r.curl_code != CURLE_OK && !hub_stop_requested) f->unreachable = 1;
        return -1;
    }
    f->listing = cJSON_Parse(body);
    free(body);
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(f->listing, "siblings"))) {
        cJSON_Delete(f->listing);
        f->listing = NULL;
        return dam_fail("the file list of %s from %s has no siblings", f->repo.id, f->http.endpoint);
    }
    return 0;
}

/* --include: a name is fetched (and must exist); a glob is matched against
 * the repo's file list, as huggingface_hub's allow_patterns ('*' crosses '/'). */
static int fetch_include(struct fetch *f, const char *pattern) {
    int present;
    if (!has_glob(pattern)) return fetch_file(f, pattern, 1, &present);
    if (fetch_listing(f) != 0) return -1;
    int matched = 0;
    const cJSON *sibling;
    cJSON_ArrayForEach(sibling, cJSON_GetObjectItemCaseSensitive(f->listing, "siblings")) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(sibling, "rfilename");
        if (!cJSON_IsString(name) || fnmatch(pattern, name->valuestring, 0) != 0) continue;
        matched++;
        if (fetch_file(f, name->valuestring, 1, &present) != 0) return -1;
    }
    if (!matched) progress_note(f->quiet, "no file of %s matches '%s'", f->repo.id, pattern);
    return 0;
}

static int fetch_online(struct fetch *f, const struct hub_fetch_options *o) {
    int present;
    if (hub_is_commit(f->revision)) memcpy(f->commit, f->revision, sizeof f->commit);
    for (size_t i = 0; i < sizeof REQUIRED_FILES / sizeof *REQUIRED_FILES; i++)
        if (fetch_file(f, REQUIRED_FILES[i], 1, &present) != 0) return -1;
    for (size_t i = 0; i < sizeof OPTIONAL_FILES / sizeof *OPTIONAL_FILES; i++)
        if (fetch_file(f, OPTIONAL_FILES[i], 0, &present) != 0) return -1;
    if (fetch_weights(f) != 0) return -1;
    for (int i = 0; i < o->n_include; i++)
        if (fetch_include(f, o->include[i]) != 0) return -1;
    return 0;
}

/* ---- offline: the cache alone ---- */

static void note_missing(struct fetch *f, const char *file) {
    size_t n = strlen(f->missing);
    snprintf(f->missing + n, sizeof f->missing - n, "%s%s", n ? ", " : "", file);
}

static void check_cached(struct fetch *f, const char *file) {
    if (!hub_valid_filename(file) || !hub_snapshot_has(&f->repo, f->commit, file)) note_missing(f, file);
}

/* Finds the snapshot of the revision in the cache and checks that it holds
 * every needed file. why: what to say first when it does not. */
static int resolve_offline(struct fetch *f, const struct hub_fetch_options *o, const char *why) {
    f->missing[0] = 0;
    if (hub_is_commit(f->revision)) memcpy(f->commit, f->revision, sizeof f->commit);
    else if (hub_read_ref(&f->repo, f->revision, f->commit) != 0)
        return dam_fail("%s, and %s (revision %s) is not in the cache %s", why, f->repo.id,
                        f->revision, f->repo.cache);
    for (size_t i = 0; i < sizeof REQUIRED_FILES / sizeof *REQUIRED_FILES; i++)
        check_cached(f, REQUIRED_FILES[i]);
    if (hub_snapshot_has(&f->repo, f->commit, INDEX_FILE)) {
        char index[PATH_MAX], **shards;
        int n;
        hub_snapshot_path(&f->repo, f->commit, INDEX_FILE, index, sizeof index);
        if (read_shards(index, &shards, &n) != 0) return -1;
        for (int i = 0; i < n; i++) check_cached(f, shards[i]);
        free_names(shards, n);
    } else {
        check_cached(f, SINGLE_WEIGHTS);
    }
    for (int i = 0; i < o->n_include; i++)
        if (!has_glob(o->include[i])) check_cached(f, o->include[i]);
    if (f->missing[0])
        return dam_fail("%s, and the cache lacks %s of %s (commit %.12s, in %s)", why, f->missing,
                        f->repo.id, f->commit, f->repo.dir);
    return 0;
}

/* ---- the whole fetch ---- */

static void on_stop_signal(int sig) {
    (void)sig;
    hub_stop_requested = 1;
}

/* Ctrl-C (or kill) during a download stops it cleanly: the .incomplete file
 * keeps what arrived, the snapshot never sees a partial file. A signal the
 * caller chose to ignore stays ignored. */
static void catch_stop_signals(struct sigaction old[2]) {
    static const int sigs[2] = { SIGINT, SIGTERM };
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    hub_stop_requested = 0;
    for (int i = 0; i < 2; i++) {
        sigaction(sigs[i], NULL, &old[i]);
        if (old[i].sa_handler != SIG_IGN) sigaction(sigs[i], &sa, NULL);
    }
}

static void restore_stop_signals(const struct sigaction old[2]) {
    sigaction(SIGINT, &old[0], NULL);
    sigaction(SIGTERM, &old[1], NULL);
}

int hub_fetch(const char *repo_id, const struct hub_fetch_options *opts, char *out_dir, size_t size) {
    static const struct hub_fetch_options defaults;
    const struct hub_fetch_options *o = opts ? opts : &defaults;
    struct fetch *f = xcalloc(1, sizeof *f, "fetch state");
    if (!f) return -1;
    int rc = -1;
    f->revision = o->revision && *o->revision ? o->revision : "main";
    f->quiet = o->quiet;
    if (hub_repo_init(&f->repo, repo_id) != 0) goto done;
    if (!hub_valid_revision(f->revision)) {
        dam_fail("invalid revision '%s' (expected a branch, tag or commit)", f->revision);
        goto done;
    }
    for (int i = 0; i < o->n_include; i++)
        if (!has_glob(o->include[i]) && !hub_valid_filename(o->include[i])) {
            dam_fail("refusing --include '%s' (a file name inside the repo: letters, digits, '.', '-', '_', '+', '/')",
                     o->include[i]);
            goto done;
        }
    if (env_truthy("HF_HUB_OFFLINE")) {
        if (resolve_offline(f, o, "HF_HUB_OFFLINE is set (unset it to download)") != 0) goto done;
    } else {
        if (hub_http_init(&f->http) != 0) goto done;
        struct sigaction old[2];
        catch_stop_signals(old);
        rc = fetch_online(f, o);
        restore_stop_signals(old);
        if (rc != 0 && f->unreachable) {
            /* No network: a complete cached copy will do, as huggingface_hub does. */
            char why[1024];
            snprintf(why, sizeof why, "%s", dam_last_error());
            f->commit[0] = 0;
            rc = resolve_offline(f, o, why);
            if (rc == 0) progress_note(f->quiet, "%s; using the cached snapshot", why);
        }
        if (rc != 0) goto done;
        rc = -1;
    }
    char dir[PATH_MAX];
    hub_snapshot_path(&f->repo, f->commit, NULL, dir, sizeof dir);
    if (strlen(dir) >= size) { dam_fail("snapshot path too long: %s", dir); goto done; }
    snprintf(out_dir, size, "%s", dir);
    rc = 0;
done:
    cJSON_Delete(f->listing);
    hub_http_free(&f->http);
    free(f);
    return rc;
}

int hub_interrupted(void) { return hub_stop_requested != 0; }

int hub_resolve_model(const char *repo_id, const char *revision, char *out_dir, size_t size) {
    struct hub_fetch_options o = { .revision = revision };
    return hub_fetch(repo_id, &o, out_dir, size);
}
