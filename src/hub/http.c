/* http.c — talking to the hub with libcurl.
 *
 * Two kinds of request:
 *   HEAD {endpoint}/{repo}/resolve/{revision}/{file}   metadata: commit, etag, size
 *   GET  the same URL                                   the bytes, usually via a CDN
 *
 * Redirects are followed by hand rather than by libcurl so that the rule
 * "the token goes to the hub and nowhere else" is visible in one place
 * (send_token_to): a hop to another scheme, host or port gets no
 * Authorization header. HEAD follows only relative redirects (a renamed
 * repo); an absolute one (an LFS file on the CDN) is where the metadata is
 * read, from its X-Linked-* headers, as huggingface_hub does.
 *
 * Failures that may pass — timeouts, dropped connections, 5xx, 408, 429 —
 * are retried with exponential backoff (Retry-After honoured, capped). A GET
 * resumes with Range from what is already on disk; a server that answers a
 * range request with 200 sends the whole file again, so we restart at zero. */
#include "hub_internal.h"
#include "dam/common.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>

volatile sig_atomic_t hub_stop_requested;

#define MAX_HOPS 10
#define MAX_SMALL_BODY (64 << 20)

/* ---- settings from the environment ---- */

/* A number from the environment, or def when unset or not a number. */
static double env_number(const char *name, double def, double min, double max) {
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end;
    double x = strtod(v, &end);
    if (*end || !isfinite(x)) return def;
    return x < min ? min : x > max ? max : x;
}

/* Strips surrounding whitespace in place. */
static char *trim(char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

/* The token: $HF_TOKEN, else the file $HF_TOKEN_PATH or $HF_HOME/token (what
 * `huggingface-cli login` writes). Sets *header to "Authorization: Bearer
 * TOKEN" (heap) or NULL. The token itself never reaches a message. */
static int load_token(char **header) {
    *header = NULL;
    char *buf = NULL, path[PATH_MAX];
    const char *token = getenv("HF_TOKEN"), *from = "HF_TOKEN";
    if (!token || !*token) { token = getenv("HUGGING_FACE_HUB_TOKEN"); from = "HUGGING_FACE_HUB_TOKEN"; }
    if (!token || !*token) {
        const char *p = getenv("HF_TOKEN_PATH");
        if (p && *p) snprintf(path, sizeof path, "%s", p);
        else {
            char home[PATH_MAX];
            if (hub_home_dir(home, sizeof home) != 0) return 0;   /* no home: no token */
            hub_pathf(path, sizeof path, "%s/token", home);
        }
        if (!is_file(path)) return 0;
        buf = read_file(path, NULL);
        if (!buf) return -1;
        token = trim(buf);
        from = path;
    }
    char copy[4096];
    size_t n = strlen(token);
    int ok = n > 0 && n < sizeof copy;
    snprintf(copy, sizeof copy, "%s", token);
    char *t = trim(copy);
    for (const char *c = t; ok && *c; c++) ok = *c > 0x20 && *c < 0x7f;   /* no header injection */
    if (buf) { explicit_bzero(buf, strlen(buf)); free(buf); }
    if (!*t) { explicit_bzero(copy, sizeof copy); return 0; }
    if (!ok) {
        explicit_bzero(copy, sizeof copy);
        return dam_fail("the Hugging Face token from %s is not a valid token (odd characters or too long)", from);
    }
    size_t size = strlen(t) + 32;
    *header = xmalloc(size, "the token header");
    if (*header) snprintf(*header, size, "Authorization: Bearer %s", t);
    explicit_bzero(copy, sizeof copy);
    return *header ? 0 : -1;
}

int hub_http_init(struct hub_http *h) {
    memset(h, 0, sizeof *h);
    const char *ep = getenv("HF_ENDPOINT");
    if (!ep || !*ep) ep = "https://huggingface.co";
    if (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8))
        return dam_fail("HF_ENDPOINT must start with http:// or https:// (got '%s')", ep);
    if (snprintf(h->endpoint, sizeof h->endpoint, "%s", ep) >= (int)sizeof h->endpoint)
        return dam_fail("HF_ENDPOINT is too long");
    size_t n = strlen(h->endpoint);
    while (n > 0 && h->endpoint[n - 1] == '/') h->endpoint[--n] = 0;
    h->etag_timeout_s = (long)ceil(env_number("HF_HUB_ETAG_TIMEOUT", 10, 1, 3600));
    h->download_timeout_s = (long)ceil(env_number("HF_HUB_DOWNLOAD_TIMEOUT", 10, 1, 3600));
    h->retry_base_ms = (long)env_number("DAM_HUB_RETRY_BASE_MS", 1000, 0, 600000);
    h->retry_max_ms = (long)env_number("DAM_HUB_RETRY_MAX_MS", 30000, 0, 3600000);
    h->max_retries = 5;
    if (load_token(&h->auth_header) != 0) return -1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        hub_http_free(h);
        return dam_fail("cannot initialise libcurl");
    }
    h->curl = curl_easy_init();
    if (!h->curl) { hub_http_free(h); return dam_fail("cannot initialise libcurl"); }
    return 0;
}

void hub_http_free(struct hub_http *h) {
    if (h->auth_header) { explicit_bzero(h->auth_header, strlen(h->auth_header)); free(h->auth_header); }
    if (h->curl) curl_easy_cleanup(h->curl);
    memset(h, 0, sizeof *h);
}

void hub_url_encode(const char *s, int keep_slash, char *out, size_t size) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(out);
    for (; *s && n + 4 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || (c == '/' && keep_slash)) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%'; out[n++] = hex[c >> 4]; out[n++] = hex[c & 15];
        }
    }
    out[n] = 0;
}

/* ---- the token's destination ---- */

/* Scheme, host and port of url, lowercased: "https://huggingface.co:443". */
static int url_origin(const char *url, char *out, size_t size) {
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = -1;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        snprintf(out, size, "%s://%s:%s", scheme, host, port);
        for (char *c = out; *c; c++) if (*c >= 'A' && *c <= 'Z') *c += 'a' - 'A';
        rc = 0;
    }
    curl_free(scheme); curl_free(host); curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

/* The token goes only where HF_ENDPOINT points: same scheme, host and port.
 * After a redirect to a CDN (another host), no Authorization header. */
static int send_token_to(const struct hub_http *h, const char *url) {
    char a[1200], b[1200];
    if (!h->auth_header) return 0;
    if (url_origin(url, a, sizeof a) != 0 || url_origin(h->endpoint, b, sizeof b) != 0) return 0;
    return !strcmp(a, b);
}

/* ---- one request ---- */

/* Where a response body goes. */
enum sink_kind { SINK_NONE, SINK_FILE, SINK_MEMORY };

struct sink {
    enum sink_kind kind;
    CURL *curl;
    int fd;                        /* SINK_FILE: the .incomplete file */
    int64_t offset;                /* bytes on disk (SINK_FILE) */
    int64_t size;                  /* bytes expected in all (SINK_FILE) */
    EVP_MD_CTX *sha;               /* SHA-256 of the bytes on disk, or NULL */
    struct hub_progress *progress;
    char *mem;                     /* SINK_MEMORY: (mem_len) bytes */
    size_t mem_len, mem_cap;
    struct hub_response *r;
    int started;                   /* the 2xx body began in this request */
    int64_t gained;                /* bytes written in this request */
    int restart;                   /* 206 at the wrong offset: start over */
    double stall_limit_ms;         /* GET: give up after this long without data */
    double last_data_ms;           /* clock when data last arrived */
    curl_off_t last_dn;            /* bytes received as last seen by on_progress */
    int stalled;                   /* on_progress stopped a silent transfer */
    char fail[256];                /* our own reason to stop (not a network error) */
};

static void copy_value(char *dst, size_t size, const char *v, size_t n) {
    if (n >= size) n = size - 1;
    memcpy(dst, v, n);
    dst[n] = 0;
}

/* Called by libcurl once per header line; a status line starts a new
 * response (a redirect hop or a retry), so it clears what came before. */
static size_t on_header(char *buf, size_t size, size_t count, void *user) {
    struct hub_response *r = user;
    size_t len = size * count;
    if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
        r->error_code[0] = r->error_message[0] = r->commit[0] = 0;
        r->etag[0] = r->linked_etag[0] = r->location[0] = 0;
        r->content_length = r->linked_size = r->range_start = -1;
        r->retry_after_s = -1;
        return len;
    }
    const char *colon = memchr(buf, ':', len);
    if (!colon) return len;
    size_t name_len = (size_t)(colon - buf);
    const char *v = colon + 1, *end = buf + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ')) end--;
    size_t n = (size_t)(end - v);
    char value[2048];
    copy_value(value, sizeof value, v, n);
#define IS(name) (name_len == sizeof(name) - 1 && !strncasecmp(buf, name, name_len))
    if (IS("X-Repo-Commit")) copy_value(r->commit, sizeof r->commit, v, n);
    else if (IS("ETag")) copy_value(r->etag, sizeof r->etag, v, n);
    else if (IS("X-Linked-Etag")) copy_value(r->linked_etag, sizeof r->linked_etag, v, n);
    else if (IS("X-Error-Code")) copy_value(r->error_code, sizeof r->error_code, v, n);
    else if (IS("X-Error-Message")) copy_value(r->error_message, sizeof r->error_message, v, n);
    else if (IS("Location")) copy_value(r->location, sizeof r->location, v, n);
    else if (IS("Content-Length")) r->content_length = strtoll(value, NULL, 10);
    else if (IS("X-Linked-Size")) r->linked_size = strtoll(value, NULL, 10);
    else if (IS("Content-Range")) {
        if (!strncasecmp(value, "bytes ", 6)) r->range_start = strtoll(value + 6, NULL, 10);
    } else if (IS("Retry-After")) {
        char *e;
        double s = strtod(value, &e);
        if (e != value && *e == 0 && !isnan(s)) r->retry_after_s = s < 0 ? 0 : s;   /* "nan": never ends the wait */
        else {
            time_t when = curl_getdate(value, NULL);   /* an HTTP date */
            if (when > 0) r->retry_after_s = difftime(when, time(NULL)) > 0 ? difftime(when, time(NULL)) : 0;
        }
    }
#undef IS
    return len;
}

/* First body bytes of a 200/206: decides where they go. */
static int start_body(struct sink *s, long status) {
    s->started = 1;
    if (s->kind == SINK_MEMORY) s->mem_len = 0;   /* a retry: the document comes again */
    if (s->kind != SINK_FILE) return 0;
    if (status == 206) {
        if (s->r->range_start != s->offset) { s->restart = 1; return -1; }
        return 0;
    }
    if (s->offset > 0) {   /* 200 to a range request: the whole file comes again */
        if (ftruncate(s->fd, 0) != 0 || lseek(s->fd, 0, SEEK_SET) != 0) {
            snprintf(s->fail, sizeof s->fail, "cannot truncate the partial download: %s", strerror(errno));
            return -1;
        }
        s->offset = 0;
        if (s->sha) EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL);
        if (s->progress) progress_update(s->progress, 0);
    }
    return 0;
}

static size_t on_body(char *buf, size_t size, size_t count, void *user) {
    struct sink *s = user;
    size_t len = size * count;
    long status = 0;
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200 && status != 206) return len;   /* a redirect's or an error's body */
    if (!s->started && start_body(s, status) != 0) return 0;
    if (s->kind == SINK_MEMORY) {
        if (s->mem_len + len + 1 > MAX_SMALL_BODY) { snprintf(s->fail, sizeof s->fail, "answer too large"); return 0; }
        if (s->mem_len + len + 1 > s->mem_cap) {
            size_t cap = (s->mem_len + len + 1) * 2;
            char *grown = realloc(s->mem, cap);
            if (!grown) { snprintf(s->fail, sizeof s->fail, "out of memory"); return 0; }
            s->mem = grown;
            s->mem_cap = cap;
        }
        memcpy(s->mem + s->mem_len, buf, len);
        s->mem_len += len;
        s->mem[s->mem_len] = 0;
        return len;
    }
    if (s->kind != SINK_FILE) return len;
    if (s->offset + (int64_t)len > s->size) {
        snprintf(s->fail, sizeof s->fail, "the server sent more than the announced %lld bytes",
                 (long long)s->size);
        if (ftruncate(s->fd, 0) != 0) { /* nothing more to do: the error is reported */ }
        return 0;
    }
    for (size_t done = 0; done < len;) {
        ssize_t w = write(s->fd, buf + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            snprintf(s->fail, sizeof s->fail, "cannot write the download: %s", strerror(errno));
            return 0;
        }
        done += (size_t)w;
    }
    if (s->sha) EVP_DigestUpdate(s->sha, buf, len);
    s->offset += (int64_t)len;
    s->gained += (int64_t)len;
    if (s->progress) progress_update(s->progress, s->offset);
    return len;
}

/* libcurl calls this often, even while nothing arrives (about once a
 * second): Ctrl-C stops the transfer here, and so does a GET that received
 * nothing for download_timeout_s — a read timeout, which libcurl's
 * low-speed check (an average over several seconds) only approximates. */
static int on_progress(void *user, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
    struct sink *s = user;
    (void)dt; (void)ut; (void)un;
    if (hub_stop_requested) return 1;
    if (s->stall_limit_ms <= 0) return 0;
    double now = now_ms();
    if (dn != s->last_dn) { s->last_dn = dn; s->last_data_ms = now; }
    if (now - s->last_data_ms > s->stall_limit_ms) { s->stalled = 1; return 1; }
    if (s->progress && s->started) progress_update(s->progress, s->offset);   /* rate and ETA age */
    return 0;
}

/* One request to one URL, no retries, no redirects followed. next gets the
 * absolute URL of a redirect ("" if none). */
static void perform(struct hub_http *h, const char *url, int head, struct sink *s,
                    struct hub_response *r, char *next, size_t next_size) {
    CURL *c = h->curl;
    struct curl_slist *headers = NULL;
    char range[64];
    memset(r, 0, sizeof *r);
    r->content_length = r->linked_size = r->range_start = -1;
    r->retry_after_s = -1;
    s->r = r;
    s->curl = c;
    s->started = 0;
    s->stalled = 0;
    s->stall_limit_ms = 0;
    next[0] = h->errbuf[0] = 0;
    curl_easy_reset(c);   /* keeps the connection cache: keep-alive still works */
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "dam/" DAM_VERSION);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (send_token_to(h, url)) headers = curl_slist_append(headers, h->auth_header);
    if (head) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, h->etag_timeout_s);
        /* The size we want is the file's, not a compressed body's. */
        headers = curl_slist_append(headers, "Accept-Encoding: identity");
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        s->stall_limit_ms = (double)h->download_timeout_s * 1e3;
        s->last_data_ms = now_ms();
        s->last_dn = 0;
        if (s->kind == SINK_FILE && s->offset > 0) {
            snprintf(range, sizeof range, "Range: bytes=%lld-", (long long)s->offset);
            headers = curl_slist_append(headers, range);
            if (s->progress) s->progress->resumed_at = s->offset;
        }
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    r->curl_code = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (s->stalled && r->curl_code == CURLE_ABORTED_BY_CALLBACK) {
        r->curl_code = CURLE_OPERATION_TIMEDOUT;   /* retried like any timeout */
        snprintf(h->errbuf, sizeof h->errbuf, "no data for %ld s", h->download_timeout_s);
    }
    char *redirect = NULL;
    if (r->curl_code == CURLE_OK && r->status >= 300 && r->status < 400 &&
        curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &redirect) == CURLE_OK && redirect)
        snprintf(next, next_size, "%s", redirect);
    if (r->curl_code != CURLE_OK)
        snprintf(r->detail, sizeof r->detail, "%s", h->errbuf[0] ? h->errbuf : curl_easy_strerror(r->curl_code));
    else
        snprintf(r->detail, sizeof r->detail, "HTTP %ld%s%s", r->status,
                 r->error_code[0] ? " " : "", r->error_code);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
}

/* ---- retries ---- */

/* Failures worth another try: the network or the server may recover. */
static int transient(const struct hub_response *r) {
    switch (r->curl_code) {
    case CURLE_OK:
        return r->status == 408 || r->status == 429 || (r->status >= 500 && r->status <= 599);
    case CURLE_COULDNT_CONNECT: case CURLE_OPERATION_TIMEDOUT: case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR: case CURLE_SEND_ERROR: case CURLE_GOT_NOTHING:
    case CURLE_HTTP2: case CURLE_HTTP2_STREAM: case CURLE_SSL_CONNECT_ERROR:
        return 1;
    default:
        return 0;   /* DNS failure, bad certificate, our own abort, ... */
    }
}

/* Sleeps before retry number `retry` (1, 2, ...): Retry-After when the
 * server gave one, else base * 2^(retry-1); never more than retry_max_ms.
 * -1 when interrupted. */
static int wait_before_retry(const struct hub_http *h, int retry, const struct hub_response *r) {
    double ms = r->retry_after_s >= 0 ? r->retry_after_s * 1e3
                                      : (double)h->retry_base_ms * (double)(1L << (retry - 1 < 20 ? retry - 1 : 20));
    if (ms > h->retry_max_ms) ms = (double)h->retry_max_ms;
    double until = now_ms() + ms;
    while (!hub_stop_requested) {
        double left = until - now_ms();
        if (left <= 0) return 0;
        if (left > 50) left = 50;   /* short naps: Ctrl-C is noticed at once */
        struct timespec ts = { 0, (long)(left * 1e6) };
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int is_redirect(long status) {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* "/x/y" or "x" (no scheme, no host): a redirect on the same server. */
static int location_is_relative(const char *loc) {
    return loc[0] && !strstr(loc, "://") && strncmp(loc, "//", 2) != 0;
}

int hub_http_head(struct hub_http *h, const char *url, struct hub_response *r) {
    struct sink s = { .kind = SINK_NONE };
    char cur[4096], next[4096];
    for (int retry = 0;; retry++) {
        snprintf(cur, sizeof cur, "%s", url);
        for (int hops = 0;; hops++) {
            perform(h, cur, 1, &s, r, next, sizeof next);
            if (!(is_redirect(r->status) && location_is_relative(r->location) && next[0] && hops < MAX_HOPS))
                break;
            snprintf(cur, sizeof cur, "%s", next);
        }
        if (hub_stop_requested) return dam_fail("interrupted");
        if (!transient(r) || retry >= h->max_retries) break;
        /* Metadata is quick to ask for, and a cached copy may do without it:
         * a hub that refuses connections, or keeps timing out, is not waited
         * for as long as a download in progress would be. */
        if (r->curl_code == CURLE_COULDNT_CONNECT || (r->curl_code != CURLE_OK && retry >= 2)) break;
        if (wait_before_retry(h, retry + 1, r) != 0) return dam_fail("interrupted");
    }
    return r->curl_code == CURLE_OK ? 0 : -1;
}

/* GET url (following redirects) into s, with retries. For files, resumes
 * from s->offset after each failure. */
static int get_with_retries(struct hub_http *h, const char *url, const char *what, struct sink *s,
                            struct hub_response *r) {
    char cur[4096], next[4096];
    int retry = 0;
    for (;;) {
        s->gained = 0;
        s->restart = 0;
        snprintf(cur, sizeof cur, "%s", url);
        for (int hops = 0;; hops++) {
            perform(h, cur, 0, s, r, next, sizeof next);
            if (!(is_redirect(r->status) && next[0] && hops < MAX_HOPS)) break;
            snprintf(cur, sizeof cur, "%s", next);
        }
        if (hub_stop_requested)
            return dam_fail("interrupted while downloading %s (run the same command again to resume)", what);
        if (s->fail[0]) return dam_fail("%s: %s", what, s->fail);
        int complete = r->curl_code == CURLE_OK && (r->status == 200 || r->status == 206) &&
                       (s->kind != SINK_FILE || s->offset == s->size);
        if (complete) return 0;
        if (s->kind == SINK_FILE && r->status == 416 && s->offset == s->size) return 0;
        int again = transient(r) || s->restart || r->status == 416 ||
                    (r->curl_code == CURLE_OK && (r->status == 200 || r->status == 206));   /* short body */
        if (s->restart || r->status == 416) {   /* our partial file is of no use: start over */
            if (ftruncate(s->fd, 0) != 0 || lseek(s->fd, 0, SEEK_SET) != 0)
                return dam_fail("%s: cannot truncate the partial download: %s", what, strerror(errno));
            s->offset = 0;
            if (s->sha) EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL);
            if (s->progress) progress_update(s->progress, 0);
            if (r->curl_code == CURLE_WRITE_ERROR) { r->curl_code = CURLE_OK; snprintf(r->detail, sizeof r->detail, "resumed at the wrong offset"); }
        }
        if (!again) {
            if (r->curl_code != CURLE_OK) return dam_fail("cannot download %s: %s", what, r->detail);
            return dam_fail("cannot download %s: HTTP %ld%s%s%s%s", what, r->status,
                            r->error_code[0] ? " " : "", r->error_code,
                            r->error_message[0] ? ": " : "", r->error_message);
        }
        if (s->gained > 0) retry = 0;   /* progress was made: a fresh budget of retries */
        if (++retry > h->max_retries)
            return dam_fail("cannot download %s: giving up after %d tries (%s)", what, retry, r->detail);
        if (wait_before_retry(h, retry, r) != 0)
            return dam_fail("interrupted while downloading %s (run the same command again to resume)", what);
    }
}

/* Hashes the first n bytes of fd (a resumed download) into sha. */
static int hash_prefix(int fd, int64_t n, EVP_MD_CTX *sha) {
    enum { CHUNK = 1 << 20 };
    char *buf = xmalloc(CHUNK, "hashing buffer");
    if (!buf) return -1;
    for (int64_t at = 0; at < n;) {
        size_t want = n - at < CHUNK ? (size_t)(n - at) : CHUNK;
        ssize_t got = pread(fd, buf, want, at);
        if (got <= 0) { free(buf); return dam_fail("cannot read the partial download: %s", strerror(errno)); }
        EVP_DigestUpdate(sha, buf, (size_t)got);
        at += got;
    }
    free(buf);
    return 0;
}

int hub_http_download(struct hub_http *h, const char *url, const char *path, int64_t size,
                      char sha256_hex[65], struct hub_progress *p, struct hub_response *r) {
    struct sink s = { .kind = SINK_FILE, .size = size, .progress = p };
    struct stat st;
    int rc = -1;
    s.fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s.fd < 0) return dam_fail("cannot create %s: %s", path, strerror(errno));
    if (fstat(s.fd, &st) != 0) { dam_fail("cannot read %s: %s", path, strerror(errno)); goto done; }
    s.offset = st.st_size;
    if (s.offset > size) {   /* longer than the file: not ours to resume */
        if (ftruncate(s.fd, 0) != 0) { dam_fail("cannot truncate %s: %s", path, strerror(errno)); goto done; }
        s.offset = 0;
    }
    if (lseek(s.fd, s.offset, SEEK_SET) < 0) { dam_fail("cannot seek in %s: %s", path, strerror(errno)); goto done; }
    if (sha256_hex) {
        s.sha = EVP_MD_CTX_new();
        if (!s.sha || !EVP_DigestInit_ex(s.sha, EVP_sha256(), NULL)) { dam_fail("cannot start SHA-256"); goto done; }
        if (hash_prefix(s.fd, s.offset, s.sha) != 0) goto done;
    }
    progress_begin(p, p->name, size, s.offset, p->quiet);
    if (s.offset < size && get_with_retries(h, url, p->name, &s, r) != 0) {
        progress_end(p, 0);
        goto done;
    }
    if (fsync(s.fd) != 0) { progress_end(p, 0); dam_fail("cannot write %s: %s", path, strerror(errno)); goto done; }
    if (s.sha) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;
        EVP_DigestFinal_ex(s.sha, md, &md_len);
        for (unsigned i = 0; i < md_len && i < 32; i++) snprintf(sha256_hex + 2 * i, 3, "%02x", md[i]);
    }
    rc = 0;   /* the caller verifies, then ends the progress line */
done:
    if (s.sha) EVP_MD_CTX_free(s.sha);
    close(s.fd);
    return rc;
}

int hub_http_get_small(struct hub_http *h, const char *url, char **body, size_t *len,
                       struct hub_response *r) {
    struct sink s = { .kind = SINK_MEMORY };
    *body = NULL;
    if (get_with_retries(h, url, "the file list", &s, r) != 0) { free(s.mem); return -1; }
    if (!s.mem) s.mem = calloc(1, 1);
    *body = s.mem;
    if (len) *len = s.mem_len;
    return s.mem ? 0 : dam_fail("out of memory");
}
