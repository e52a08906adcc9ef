/* common.h — error reporting and small utilities shared by every layer.
 *
 * Convention: a function that can fail returns int (0 = ok, -1 = error) or a
 * pointer (NULL = error) and records a one-line, human-readable reason with
 * dam_fail(). The CLI prints that reason as "dam: <reason>" and exits non-zero.
 * The message lives in thread-local storage, like errno, so library code never
 * prints and never exits. */
#ifndef DAM_COMMON_H
#define DAM_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define DAM_VERSION "0.1.0"

/* Records a printf-style message as the current error; returns -1. */
int dam_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The message recorded by the last dam_fail() on this thread ("" if none). */
const char *dam_last_error(void);

/* Reads a whole file into a NUL-terminated heap buffer; *len gets the byte
 * count (without the NUL). NULL with dam_fail() on error. Any readable
 * stream will do (a FIFO, /dev/stdin, <(cmd)): its size need not be known. */
char *read_file(const char *path, size_t *len);
/* read_file, with "-" meaning standard input (the -f flags take both). */
char *read_input(const char *path, size_t *len);

/* Writes data to path atomically: a temporary file beside it, fsync, rename.
 * A failure never leaves a half-written file at path. */
int write_file_atomic(const char *path, const void *data, size_t len);

/* Outputs the user named (src/common/output.c). "-" is standard output; a
 * regular file or a missing path is replaced atomically (write_file_atomic);
 * a FIFO or a character device is written through; a symbolic link is
 * followed (its target is replaced, the link stays); anything else is
 * refused. output_check says, before any work, whether output_write can
 * succeed (the folder takes a new file, the device is writable). */
int output_is_stdout(const char *path);
int output_check(const char *path);
int output_write(const char *path, const void *data, size_t len);

/* Standard output, checked. The first write error is remembered:
 * out_write/out_flush return -1 with dam_fail("write error on standard
 * output: <reason>") from then on, out_failed() says whether it happened,
 * and out_close() (at exit) flushes and closes stdout, -1 on any error. */
int out_write(const void *data, size_t len);
int out_flush(void);
int out_failed(void);
int out_close(void);

/* Monotonic wall clock in milliseconds. */
double now_ms(void);

/* Allocation that records "out of memory (N bytes for WHAT)" on failure. */
void *xmalloc(size_t bytes, const char *what);
void *xcalloc(size_t count, size_t size, const char *what);

/* Directory of the running executable (for the embedded model under
 * third_party/); writes into buf, returns 0/-1. */
int exe_dir(char *buf, size_t size);

/* Finds a file (want_dir 0) or folder (1) shipped with dam by its name in
 * the source tree ("prompts/calibration.txt", "third_party/models/testbed"):
 * beside the build tree, in an installed tree (PREFIX/share/dam, also as
 * compiled in), beside the program, in the working directory. The path
 * found is canonical (no "build/.."). -1 + dam_fail listing every place
 * looked at. */
int data_find(const char *rel, int want_dir, char *out, size_t size);
/* The PREFIX/share/dam this binary was built for. */
const char *data_dir_compiled(void);

/* True when path names an existing directory / regular file. */
int is_dir(const char *path);
int is_file(const char *path);

#endif
