/* common.c — errors, files, clocks, allocation. */
#include "dam/common.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <libgen.h>

static _Thread_local char last_error[1024];

int dam_fail(const char *fmt, ...) {
    char buf[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);   /* fmt may mention last_error */
    va_end(ap);
    memcpy(last_error, buf, sizeof buf);
    return -1;
}

const char *dam_last_error(void) { return last_error; }

/* A stream of unknown size (a FIFO, a terminal, stdin): read until EOF,
 * doubling the buffer. */
static char *read_stream(FILE *f, const char *name, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *grown = cap <= SIZE_MAX / 2 - 1 ? realloc(buf, cap * 2 + 1) : NULL;
        if (!grown) { free(buf); buf = NULL; break; }
        buf = grown;
        cap *= 2;
    }
    if (!buf) { dam_fail("out of memory reading %s", name); return NULL; }
    if (ferror(f)) { free(buf); dam_fail("cannot read %s: %s", name, strerror(errno)); return NULL; }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { dam_fail("cannot open %s: %s", path, strerror(errno)); return NULL; }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || S_ISDIR(st.st_mode)) {
        fclose(f);
        dam_fail("cannot read %s: it is a folder", path);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {                 /* a pipe or a device: size unknown */
        char *buf = read_stream(f, path, len);
        fclose(f);
        return buf;
    }
    size_t size = (size_t)st.st_size;
    char *buf = malloc(size + 1);
    if (!buf) { fclose(f); dam_fail("out of memory reading %s (%zu bytes)", path, size); return NULL; }
    size_t got = fread(buf, 1, size, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != size) { free(buf); dam_fail("cannot read %s", path); return NULL; }
    buf[size] = 0;
    if (len) *len = size;
    return buf;
}

char *read_input(const char *path, size_t *len) {
    if (strcmp(path, "-")) return read_file(path, len);
    return read_stream(stdin, "standard input", len);
}

int write_file_atomic(const char *path, const void *data, size_t len) {
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp) return dam_fail("out of memory");
    snprintf(tmp, n, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return dam_fail("cannot write %s: %s", path, strerror(e));
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd); unlink(tmp); free(tmp);
            return dam_fail("cannot write %s: %s", path, strerror(e));
        }
        p += w; left -= (size_t)w;
    }
    fchmod(fd, 0644);
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp); free(tmp);
        return dam_fail("cannot write %s: %s", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp); free(tmp);
        return dam_fail("cannot write %s: %s", path, strerror(e));
    }
    free(tmp);
    return 0;
}

double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void *xmalloc(size_t bytes, const char *what) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) dam_fail("out of memory: %zu bytes needed for %s", bytes, what);
    return p;
}

void *xcalloc(size_t count, size_t size, const char *what) {
    if (size && count > SIZE_MAX / size) {
        dam_fail("out of memory: %s needs more than %zu bytes", what, (size_t)SIZE_MAX);
        return NULL;
    }
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) dam_fail("out of memory: %zu bytes needed for %s", count * size, what);
    return p;
}

int exe_dir(char *buf, size_t size) {
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n < 0) return dam_fail("cannot find the executable's folder: %s", strerror(errno));
    path[n] = 0;
    snprintf(buf, size, "%s", dirname(path));
    return 0;
}

int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
