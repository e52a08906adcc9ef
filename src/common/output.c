/* output.c — writing what the user asked for: a file named by a flag (--out,
 * -o, --jsonl, --csv, --svg) and standard output, both checked.
 *
 * A named output is replaced atomically (a temporary file beside it, then
 * rename) only where that is what the user means: a regular file, or a path
 * that does not exist yet. Renaming over anything else would destroy it: a
 * FIFO or a character device (/dev/null, a terminal) is written through
 * instead, as `cmd > path` would; "-" is standard output; a symbolic link is
 * followed and its target replaced, so the link stays a link; a folder, a
 * block device or a socket is refused.
 *
 * Standard output can fail too (a full disk, a closed descriptor): the first
 * error is remembered, so a long command stops early and the program exits 1
 * with "write error on standard output: <reason>" instead of losing its
 * output silently. */
#include "dam/common.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- standard output ---- */

static int stdout_errno;           /* the first error seen on stdout; 0 = none */

static int note_stdout_error(int e) {
    if (!stdout_errno) stdout_errno = e ? e : EIO;
    return dam_fail("write error on standard output: %s", strerror(stdout_errno));
}

int out_flush(void) {
    if (stdout_errno) return note_stdout_error(stdout_errno);
    errno = 0;
    if (fflush(stdout) != 0 || ferror(stdout)) return note_stdout_error(errno);
    return 0;
}

int out_write(const void *data, size_t len) {
    if (stdout_errno) return note_stdout_error(stdout_errno);
    errno = 0;
    if (len && fwrite(data, 1, len, stdout) != len) return note_stdout_error(errno);
    return out_flush();
}

int out_failed(void) {
    if (!stdout_errno && ferror(stdout)) out_flush();
    return stdout_errno != 0;
}

int out_close(void) {
    int rc = out_flush();
    errno = 0;
    if (fclose(stdout) != 0 && rc == 0) rc = note_stdout_error(errno);
    return rc;
}

/* ---- named outputs ---- */

int output_is_stdout(const char *path) { return path && !strcmp(path, "-"); }

/* Follows symbolic links (a dangling one too: its target is what gets
 * created) into out. -1 on a loop or an unreadable link. */
static int follow_links(const char *path, char *out, size_t size) {
    char cur[PATH_MAX], link[PATH_MAX];
    if ((size_t)snprintf(cur, sizeof cur, "%s", path) >= sizeof cur) return dam_fail("path too long: %s", path);
    for (int hops = 0; hops < 40; hops++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) {
            if ((size_t)snprintf(out, size, "%s", cur) >= size) return dam_fail("path too long: %s", cur);
            return 0;
        }
        ssize_t n = readlink(cur, link, sizeof link - 1);
        if (n < 0) return dam_fail("cannot write %s: cannot read the link %s: %s", path, cur, strerror(errno));
        link[n] = 0;
        if (link[0] == '/') {
            snprintf(cur, sizeof cur, "%s", link);
        } else {                              /* relative to the link's own folder */
            char dir[PATH_MAX];
            snprintf(dir, sizeof dir, "%s", cur);
            char *slash = strrchr(dir, '/');
            if (slash) { slash[1] = 0; } else dir[0] = 0;
            if ((size_t)snprintf(cur, sizeof cur, "%s%s", dir, link) >= sizeof cur)
                return dam_fail("path too long: %s%s", dir, link);
        }
    }
    return dam_fail("cannot write %s: too many levels of symbolic links", path);
}

enum out_kind { OUT_STDOUT, OUT_REPLACE, OUT_THROUGH };

/* What writing to path means; real gets the path to operate on. */
static int classify(const char *path, char *real, size_t size, enum out_kind *kind) {
    if (output_is_stdout(path)) { *kind = OUT_STDOUT; return 0; }
    if (!*path || path[strlen(path) - 1] == '/')
        return dam_fail("cannot write %s: it is a folder, not a file name", path);
    struct stat st;
    /* what the path leads to, links followed by the kernel: /dev/stdout
     * or /proc/self/fd/1 of a pipe lead to a FIFO that only opening the
     * path itself reaches (their link text, "pipe:[N]", is no path) */
    if (stat(path, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))) {
        if ((size_t)snprintf(real, size, "%s", path) >= size) return dam_fail("path too long: %s", path);
        *kind = OUT_THROUGH;
        return 0;
    }
    if (follow_links(path, real, size) != 0) return -1;
    if (stat(real, &st) != 0) {
        if (errno != ENOENT) return dam_fail("cannot write %s: %s", path, strerror(errno));
        *kind = OUT_REPLACE;
        return 0;
    }
    if (S_ISREG(st.st_mode)) *kind = OUT_REPLACE;
    else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) *kind = OUT_THROUGH;
    else if (S_ISDIR(st.st_mode)) return dam_fail("cannot write %s: it is a folder, not a file name", path);
    else return dam_fail("cannot write %s: it is a %s, not a file (dam writes files, FIFOs and character devices)",
                         path, S_ISBLK(st.st_mode) ? "block device" : "socket");
    return 0;
}

/* The folder a file would be created in: a temporary file must fit there. */
static int check_folder(const char *path, const char *real) {
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", real);
    const char *dir = dirname(copy);
    char probe[PATH_MAX + 32];
    snprintf(probe, sizeof probe, "%s/.dam-probe-XXXXXX", dir);
    int fd = mkstemp(probe);
    if (fd < 0) {
        int e = errno;
        return dam_fail("cannot write %s: folder %s is missing or not writable (%s)", path, dir, strerror(e));
    }
    close(fd);
    unlink(probe);
    return 0;
}

int output_check(const char *path) {
    char real[PATH_MAX];
    enum out_kind kind;
    if (classify(path, real, sizeof real, &kind) != 0) return -1;
    if (kind == OUT_REPLACE) return check_folder(path, real);
    if (kind == OUT_THROUGH && access(real, W_OK) != 0)
        return dam_fail("cannot write %s: %s", path, strerror(errno));
    return 0;
}

static int write_through(const char *path, const char *real, const void *data, size_t len) {
    int fd = open(real, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return dam_fail("cannot write %s: %s", path, strerror(errno));
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return dam_fail("cannot write %s: %s", path, strerror(e));
        }
        p += w;
        len -= (size_t)w;
    }
    if (close(fd) != 0) return dam_fail("cannot write %s: %s", path, strerror(errno));
    return 0;
}

int output_write(const char *path, const void *data, size_t len) {
    char real[PATH_MAX];
    enum out_kind kind;
    if (classify(path, real, sizeof real, &kind) != 0) return -1;
    if (kind == OUT_STDOUT) return out_write(data, len);
    if (kind == OUT_THROUGH) return write_through(path, real, data, len);
    return write_file_atomic(real, data, len);
}
