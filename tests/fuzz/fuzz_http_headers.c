/* fuzz_http_headers.c — libFuzzer entry point for what the hub client does
 * with the HTTP headers a server sends: libcurl hands each header line to
 * on_header() (src/hub/http.c), and hub.c turns the response into cache
 * paths (read_meta: commit, etag, size) and error messages (hub_error).
 *
 * Both files are included here, so their static functions are reachable;
 * the library's own copies are then not linked in (every symbol they
 * define is defined here first).
 *
 * Input: the header block of one or more responses (a redirect chain),
 * lines ending in "\n"; each line is passed to on_header in a heap buffer of
 * exactly its length, as libcurl does (not NUL-terminated), so ASan sees any
 * read past it.
 *
 * Rules checked, beyond "no crash, no leak, no UB":
 *   - every string field of the response stays NUL-terminated in its buffer;
 *   - when read_meta accepts the response, the blob path built from the etag
 *     stays inside the repo's blobs/ folder and names only [A-Za-z0-9_-]. */
#include "../../src/hub/http.c"
#include "../../src/hub/hub.c"

#include <stdint.h>

#define TERMINATED(field) (memchr((field), 0, sizeof(field)) != NULL)

static void check_response(const struct hub_response *r) {
    if (!TERMINATED(r->error_code) || !TERMINATED(r->error_message) || !TERMINATED(r->commit) ||
        !TERMINATED(r->etag) || !TERMINATED(r->linked_etag) || !TERMINATED(r->location))
        abort();
    if (!(r->retry_after_s == -1 || r->retry_after_s >= 0)) abort();   /* never negative, never NaN */
}

static void check_meta(struct fetch *f, const struct hub_response *r) {
    struct file_meta m;
    dam_fail("%s", "");
    if (read_meta(f, "config.json", r, &m) != 0) {
        if (dam_last_error()[0] == 0) abort();
        return;
    }
    if (!hub_is_commit(m.commit) || m.size < 0 || !m.etag[0]) abort();
    for (const char *c = m.etag; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '-'))
            abort();
    char blob[PATH_MAX], prefix[PATH_MAX + 16];
    hub_blob_path(&f->repo, m.etag, blob, sizeof blob);
    snprintf(prefix, sizeof prefix, "%s/blobs/", f->repo.dir);
    if (strncmp(blob, prefix, strlen(prefix)) != 0 || strchr(blob + strlen(prefix), '/')) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct fetch *f;
    if (!f) {
        f = calloc(1, sizeof *f);
        setenv("HF_HUB_CACHE", "/nonexistent-dam-fuzz-cache", 1);   /* paths only: nothing is created */
        if (!f || hub_repo_init(&f->repo, "dam-test/fuzz") != 0) abort();
        f->revision = "main";
        snprintf(f->http.endpoint, sizeof f->http.endpoint, "https://huggingface.co");
    }
    struct hub_response r;
    memset(&r, 0, sizeof r);
    r.content_length = r.linked_size = r.range_start = -1;
    r.retry_after_s = -1;
    r.status = 200;
    for (size_t at = 0; at < size;) {
        const uint8_t *nl = memchr(data + at, '\n', size - at);
        size_t len = nl ? (size_t)(nl - (data + at)) + 1 : size - at;
        char *line = malloc(len ? len : 1);
        if (!line) abort();
        memcpy(line, data + at, len);
        if (len > 9 && !memcmp(line, "HTTP/1.1 ", 9)) {   /* the status libcurl would report */
            r.status = 0;
            for (size_t k = 9; k < 12 && k < len && line[k] >= '0' && line[k] <= '9'; k++)
                r.status = r.status * 10 + (line[k] - '0');
        }
        if (on_header(line, 1, len, &r) != len) abort();
        free(line);
        at += len;
        check_response(&r);
    }
    check_meta(f, &r);
    /* what the redirect and error paths read from the response */
    (void)location_is_relative(r.location);
    (void)transient(&r);
    char origin[1200];
    if (r.location[0]) (void)url_origin(r.location, origin, sizeof origin);
    dam_fail("%s", "");
    if (!hub_error(f, "config.json", &r) && dam_last_error()[0] == 0) abort();
    return 0;
}
