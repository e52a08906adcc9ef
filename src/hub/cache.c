/* cache.c — huggingface_hub's cache layout: names, paths, blobs, snapshots,
 * refs and locks.
 *
 * Every name that becomes a path here (repo id, revision, file name, commit,
 * etag) is checked first: the server and the user are both untrusted, and a
 * name like "../../.bashrc" must never leave the repo's folder. */
#include "hub_internal.h"
#include "dam/common.h"
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- names ---- */

static int is_word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int is_hex_lower(const char *s, size_t n) {
    if (strlen(s) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

int hub_is_commit(const char *s) { return s && is_hex_lower(s, HUB_COMMIT_LEN); }
int hub_is_sha256(const char *s) { return s && is_hex_lower(s, 64); }

/* One part of a repo id: [A-Za-z0-9_.-]+ that starts and ends with a letter,
 * digit or '_' (huggingface_hub's \b[\w\-.]+\b, ASCII only). */
static int valid_id_part(const char *s, size_t n) {
    if (n == 0 || !is_word_char(s[0]) || !is_word_char(s[n - 1])) return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_word_char(s[i]) && s[i] != '-' && s[i] != '.') return 0;
    return 1;
}

int hub_valid_repo_id(const char *s) {
    if (!s) return 0;
    size_t n = strlen(s);
    if (n == 0 || n > HUB_ID_MAX || strstr(s, "--") || strstr(s, "..")) return 0;
    if (n >= 4 && !strcmp(s + n - 4, ".git")) return 0;
    const char *slash = strchr(s, '/');
    if (!slash) return valid_id_part(s, n);
    if (strchr(slash + 1, '/')) return 0;
    return valid_id_part(s, (size_t)(slash - s)) && valid_id_part(slash + 1, strlen(slash + 1));
}

/* A relative path of components made of [A-Za-z0-9._+-], none "." or "..". */
static int valid_relative_path(const char *s, size_t max_len) {
    if (!s) return 0;
    size_t n = strlen(s);
    if (n == 0 || n > max_len || s[0] == '/' || s[n - 1] == '/') return 0;
    const char *part = s;
    for (const char *p = s;; p++) {
        if (*p == '/' || *p == 0) {
            size_t len = (size_t)(p - part);
            if (len == 0 || len > 255) return 0;
            if ((len == 1 && part[0] == '.') || (len == 2 && part[0] == '.' && part[1] == '.')) return 0;
            if (*p == 0) return 1;
            part = p + 1;
        } else if (!is_word_char(*p) && *p != '.' && *p != '-' && *p != '+') {
            return 0;
        }
    }
}

int hub_valid_filename(const char *s) { return valid_relative_path(s, 1024); }

int hub_valid_revision(const char *s) {
    return valid_relative_path(s, 255) && s[0] != '-' && s[0] != '.';
}

int hub_normalize_etag(const char *raw, char *out, size_t size) {
    while (*raw == ' ') raw++;
    if (raw[0] == 'W' && raw[1] == '/') raw += 2;
    size_t n = strlen(raw);
    while (n > 0 && (raw[n - 1] == ' ' || raw[n - 1] == '\r' || raw[n - 1] == '\n')) n--;
    if (n >= 2 && raw[0] == '"' && raw[n - 1] == '"') { raw++; n -= 2; }
    if (n == 0 || n > HUB_ETAG_MAX || n >= size) return -1;
    for (size_t i = 0; i < n; i++)
        if (!is_word_char(raw[i]) && raw[i] != '-') return -1;
    memcpy(out, raw, n);
    out[n] = 0;
    return 0;
}

/* ---- folders ---- */

void hub_pathf(char *out, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, size, fmt, ap);
    va_end(ap);
}

int hub_mkdirs(const char *path) {
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return dam_fail("path too long: %s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char saved = *p;
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return dam_fail("cannot create %s: %s", buf, strerror(errno));
            if (!is_dir(buf)) return dam_fail("cannot create %s: not a folder", buf);
            *p = saved;
            if (saved == 0) return 0;
        }
    }
}

/* "~/x" -> "$HOME/x"; other paths unchanged. */
static void expand_home(const char *path, char *out, size_t size) {
    const char *home = getenv("HOME");
    if (path[0] == '~' && (path[1] == '/' || path[1] == 0) && home)
        snprintf(out, size, "%s%s", home, path + 1);
    else
        snprintf(out, size, "%s", path);
}

static const char *env_nonempty(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
int hub_home_dir(char *out, size_t size) {
    const char *v;
    char buf[PATH_MAX];
    if ((v = env_nonempty("HF_HOME"))) snprintf(buf, sizeof buf, "%s", v);
    else if ((v = env_nonempty("XDG_CACHE_HOME"))) snprintf(buf, sizeof buf, "%s/huggingface", v);
    else if (env_nonempty("HOME")) snprintf(buf, sizeof buf, "~/.cache/huggingface");
    else return dam_fail("cannot find the Hugging Face cache: set HF_HOME or HF_HUB_CACHE");
    expand_home(buf, out, size);
    return 0;
}

int hub_cache_dir(char *out, size_t size) {
    const char *v;
    if ((v = env_nonempty("HF_HUB_CACHE")) || (v = env_nonempty("HUGGINGFACE_HUB_CACHE"))) {
        expand_home(v, out, size);
        return 0;
    }
    char home[PATH_MAX];
    if (hub_home_dir(home, sizeof home) != 0) return -1;
    if (snprintf(out, size, "%s/hub", home) >= (int)size) return dam_fail("cache path too long");
    return 0;
}

int hub_repo_init(struct hub_repo *r, const char *repo_id) {
    if (!hub_valid_repo_id(repo_id))
        return dam_fail("invalid repo id '%s' (expected ORG/NAME: letters, digits, '-', '_', '.')",
                        repo_id);
    snprintf(r->id, sizeof r->id, "%s", repo_id);
    if (hub_cache_dir(r->cache, sizeof r->cache) != 0) return -1;
    /* models--ORG--NAME: '/' becomes "--", which valid ids never contain. */
    char folder[2 * HUB_ID_MAX + 16] = "models--";
    size_t n = strlen(folder);
    for (const char *p = repo_id; *p && n + 3 < sizeof folder; p++) {
        if (*p == '/') { folder[n++] = '-'; folder[n++] = '-'; }
        else folder[n++] = *p;
    }
    folder[n] = 0;
    if (strlen(r->cache) + strlen(folder) + 1 >= HUB_DIR_MAX)
        return dam_fail("cache path too long: %s", r->cache);
    hub_pathf(r->dir, sizeof r->dir, "%s/%s", r->cache, folder);
    return 0;
}

/* ---- paths ---- */

void hub_blob_path(const struct hub_repo *r, const char *etag, char *out, size_t size) {
    hub_pathf(out, size, "%s/blobs/%s", r->dir, etag);
}

void hub_snapshot_path(const struct hub_repo *r, const char *commit, const char *file,
                       char *out, size_t size) {
    if (file) hub_pathf(out, size, "%s/snapshots/%s/%s", r->dir, commit, file);
    else hub_pathf(out, size, "%s/snapshots/%s", r->dir, commit);
}

/* Creates the folder that will hold path. */
static int mkdirs_parent(const char *path) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = 0;
    return hub_mkdirs(dir);
}

/* ---- refs and markers ---- */

int hub_read_ref(const struct hub_repo *r, const char *revision, char commit[HUB_COMMIT_LEN + 1]) {
    char path[PATH_MAX], buf[HUB_COMMIT_LEN + 8];
    hub_pathf(path, sizeof path, "%s/refs/%s", r->dir, revision);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) buf[--n] = 0;
    if (!hub_is_commit(buf)) return -1;
    memcpy(commit, buf, HUB_COMMIT_LEN + 1);
    return 0;
}

int hub_write_ref(const struct hub_repo *r, const char *revision, const char *commit) {
    char path[PATH_MAX], old[HUB_COMMIT_LEN + 1];
    if (hub_read_ref(r, revision, old) == 0 && !strcmp(old, commit)) return 0;
    hub_pathf(path, sizeof path, "%s/refs/%s", r->dir, revision);
    if (mkdirs_parent(path) != 0) return -1;
    return write_file_atomic(path, commit, strlen(commit));   /* no newline, as huggingface_hub */
}

int hub_snapshot_has(const struct hub_repo *r, const char *commit, const char *file) {
    char path[PATH_MAX];
    hub_snapshot_path(r, commit, file, path, sizeof path);
    return is_file(path);   /* stat follows the link: a dangling one is absent */
}

int hub_no_exist_has(const struct hub_repo *r, const char *commit, const char *file) {
    char path[PATH_MAX];
    hub_pathf(path, sizeof path, "%s/.no_exist/%s/%s", r->dir, commit, file);
    return is_file(path);
}

int hub_mark_no_exist(const struct hub_repo *r, const char *commit, const char *file) {
    char path[PATH_MAX];
    hub_pathf(path, sizeof path, "%s/.no_exist/%s/%s", r->dir, commit, file);
    if (mkdirs_parent(path) != 0) return -1;
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    if (fd < 0) return dam_fail("cannot create %s: %s", path, strerror(errno));
    close(fd);
    return 0;
}

/* ---- snapshot links ---- */

int hub_link_snapshot(const struct hub_repo *r, const char *commit, const char *file,
                      const char *etag) {
    char link[PATH_MAX], tmp[PATH_MAX + 32], target[PATH_MAX];
    hub_snapshot_path(r, commit, file, link, sizeof link);
    if (mkdirs_parent(link) != 0) return -1;
    /* From snapshots/<commit>/<dirs...>/ up to the repo folder: one "../"
     * for snapshots/, one for <commit>/, one per folder inside the file name. */
    size_t n = 0;
    int ups = 2;
    for (const char *p = file; *p; p++) ups += *p == '/';
    for (int i = 0; i < ups; i++) n += (size_t)snprintf(target + n, sizeof target - n, "../");
    snprintf(target + n, sizeof target - n, "blobs/%s", etag);
    /* Build the link under a temporary name, then rename over: a reader sees
     * either no file or the complete one. */
    hub_pathf(tmp, sizeof tmp, "%s.%ld.tmp", link, (long)getpid());
    unlink(tmp);
    if (symlink(target, tmp) != 0)
        return dam_fail("cannot create the link %s: %s", tmp, strerror(errno));
    if (rename(tmp, link) != 0) {
        int e = errno;
        unlink(tmp);
        return dam_fail("cannot create %s: %s", link, strerror(e));
    }
    return 0;
}

/* ---- locks ---- */

int hub_lock_blob(const struct hub_repo *r, const char *etag) {
    char path[PATH_MAX];
    const char *folder = strrchr(r->dir, '/') + 1;
    hub_pathf(path, sizeof path, "%s/.locks/%s/%s.lock", r->cache, folder, etag);
    if (mkdirs_parent(path) != 0) return -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return dam_fail("cannot open the lock %s: %s", path, strerror(errno));
    while (flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR && !hub_stop_requested) continue;
        int e = errno;
        close(fd);
        if (e == EINTR) return dam_fail("interrupted while waiting for the lock %s", path);
        return dam_fail("cannot lock %s: %s", path, strerror(e));
    }
    return fd;
}

void hub_unlock(int fd) {
    if (fd >= 0) { flock(fd, LOCK_UN); close(fd); }
}
