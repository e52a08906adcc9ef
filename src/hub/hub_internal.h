/* hub_internal.h — what the hub client's files share (not a public API).
 *   cache.c     names, paths and the cache layout (blobs, snapshots, refs)
 *   http.c      libcurl: metadata (HEAD), resumable downloads (GET), retries
 *   progress.c  progress bars / lines on stderr
 *   hub.c       which files a model needs, online and offline */
#ifndef DAM_HUB_INTERNAL_H
#define DAM_HUB_INTERNAL_H

#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <curl/curl.h>
#include "dam/hub.h"

#define HUB_COMMIT_LEN 40          /* a git commit id: 40 lowercase hex digits */
#define HUB_ETAG_MAX 128
#define HUB_ID_MAX 96              /* huggingface_hub's limit for repo ids */

/* ---- cache.c ---- */

/* One repo's folder in the cache. */
struct hub_repo {
    char id[HUB_ID_MAX + 1];       /* "org/name" */
    char cache[PATH_MAX];          /* the hub cache root */
    char dir[PATH_MAX];            /* cache/models--org--name */
};

/* Checks the id and fills the paths (creates nothing). 0 or -1. */
int hub_repo_init(struct hub_repo *r, const char *repo_id);

/* Names that become paths: each refuses what could leave its folder
 * ("..", absolute paths, empty components) and odd characters. 1 = valid. */
int hub_valid_filename(const char *s);   /* "a/b.safetensors" */
int hub_valid_revision(const char *s);   /* "main", "v1.0", "refs/pr/1", a commit */
int hub_is_commit(const char *s);        /* 40 lowercase hex digits */
int hub_is_sha256(const char *s);        /* 64 lowercase hex digits: an LFS etag */

/* Etag as the cache names blobs: W/ prefix and quotes stripped. -1 when the
 * result is empty or holds characters outside [A-Za-z0-9_-]. */
int hub_normalize_etag(const char *raw, char *out, size_t size);

/* Paths inside the repo folder. */
void hub_blob_path(const struct hub_repo *r, const char *etag, char *out, size_t size);
void hub_snapshot_path(const struct hub_repo *r, const char *commit, const char *file,
                       char *out, size_t size);

/* refs/<revision>: reads the commit (0, or -1 when absent or invalid; no
 * error recorded) / writes it atomically (0 or -1). */
int hub_read_ref(const struct hub_repo *r, const char *revision, char commit[HUB_COMMIT_LEN + 1]);
int hub_write_ref(const struct hub_repo *r, const char *revision, const char *commit);

/* True when snapshots/<commit>/<file> leads to a regular file. */
int hub_snapshot_has(const struct hub_repo *r, const char *commit, const char *file);
/* .no_exist/<commit>/<file>: known absent at that commit. */
int hub_no_exist_has(const struct hub_repo *r, const char *commit, const char *file);
int hub_mark_no_exist(const struct hub_repo *r, const char *commit, const char *file);

/* Points snapshots/<commit>/<file> at blobs/<etag> with a relative symlink,
 * replacing any previous link atomically. */
int hub_link_snapshot(const struct hub_repo *r, const char *commit, const char *file,
                      const char *etag);

/* Exclusive lock on .locks/models--ORG--NAME/<etag>.lock (the file Python's
 * huggingface_hub locks too). Returns the fd to pass to hub_unlock, or -1. */
int hub_lock_blob(const struct hub_repo *r, const char *etag);
void hub_unlock(int fd);

/* $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
int hub_home_dir(char *out, size_t size);

/* snprintf for paths. hub_repo_init keeps the repo folder under
 * HUB_DIR_MAX, and names are bounded, so paths built from them fit PATH_MAX. */
void hub_pathf(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define HUB_DIR_MAX 2048

/* mkdir -p. 0 or -1. */
int hub_mkdirs(const char *path);

/* ---- progress.c ---- */

struct hub_progress {
    const char *name;              /* file name shown */
    int64_t total;                 /* bytes announced */
    int64_t done;                  /* bytes on disk */
    int64_t start_done;            /* bytes on disk when this run began */
    int64_t resumed_at;            /* offset of the last Range request, 0 if none */
    double start_ms, drawn_ms;     /* clock at start / at the last redraw */
    int tty;                       /* stderr is a terminal: redraw a bar */
    int quiet;                     /* print nothing */
    int drawn;                     /* a bar is on screen (needs a newline) */
};

void progress_begin(struct hub_progress *p, const char *name, int64_t total, int64_t done, int quiet);
void progress_update(struct hub_progress *p, int64_t done);
/* ok: a final line "NAME: SIZE in T s (RATE)"; else just ends the bar. */
void progress_end(struct hub_progress *p, int ok);
/* A one-line note on stderr ("dam: ..."), unless quiet; ends a bar first. */
void progress_note(int quiet, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "1.5 MiB" */
void format_bytes(double bytes, char *out, size_t size);

/* ---- http.c ---- */

/* Set by SIGINT / SIGTERM while a fetch runs: transfers stop, partial
 * downloads stay resumable. */
extern volatile sig_atomic_t hub_stop_requested;

struct hub_http {
    CURL *curl;
    char endpoint[1024];           /* HF_ENDPOINT without a trailing '/' */
    char *auth_header;             /* "Authorization: Bearer ..." or NULL; never printed */
    long etag_timeout_s;           /* whole HEAD request */
    long download_timeout_s;       /* a GET with no data for this long is dropped */
    long retry_base_ms;            /* first backoff; doubles each retry */
    long retry_max_ms;             /* cap on any wait, Retry-After included */
    int max_retries;
    char errbuf[CURL_ERROR_SIZE];
};

/* What one HTTP response said (the last hop followed). */
struct hub_response {
    long status;                   /* 0: no response (see curl_code) */
    CURLcode curl_code;
    char error_code[64];           /* X-Error-Code: RepoNotFound, EntryNotFound, ... */
    char error_message[256];       /* X-Error-Message */
    char commit[64];               /* X-Repo-Commit */
    char etag[256];                /* ETag */
    char linked_etag[256];         /* X-Linked-Etag (LFS files) */
    int64_t content_length;        /* Content-Length, -1 when absent */
    int64_t linked_size;           /* X-Linked-Size, -1 when absent */
    int64_t range_start;           /* Content-Range start, -1 when absent */
    double retry_after_s;          /* Retry-After, -1 when absent */
    char location[2048];           /* Location */
    char detail[CURL_ERROR_SIZE + 64];   /* why the transfer failed, for messages */
};

/* Reads HF_ENDPOINT, the token and the timeouts. 0 or -1. */
int hub_http_init(struct hub_http *h);
void hub_http_free(struct hub_http *h);

/* HEAD url without following redirects to another host, with retries.
 * Returns 0 with r filled whatever the status (the caller reads it), or -1
 * when no usable response came (network failure after retries; r->detail). */
int hub_http_head(struct hub_http *h, const char *url, struct hub_response *r);

/* Downloads url into path (resuming what it holds) until it has `size`
 * bytes; follows redirects, sending the token only to the endpoint's host.
 * sha256_hex, when not NULL, receives the SHA-256 of the whole file.
 * p: name and quiet set by the caller, who calls progress_end after
 * verifying. Returns 0, or -1 after dam_fail (r holds the last response). */
int hub_http_download(struct hub_http *h, const char *url, const char *path, int64_t size,
                      char sha256_hex[65], struct hub_progress *p, struct hub_response *r);

/* GET of a small document (the API's file list) into a heap buffer. */
int hub_http_get_small(struct hub_http *h, const char *url, char **body, size_t *len,
                       struct hub_response *r);

/* Appends s to out percent-encoded; '/' kept when keep_slash. */
void hub_url_encode(const char *s, int keep_slash, char *out, size_t size);

#endif
