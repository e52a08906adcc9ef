/* safetensors.h — reading and writing the safetensors format.
 *
 * Format: 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * header (an object: tensor name -> {dtype, shape, data_offsets}, plus an
 * optional "__metadata__" string->string map), then the data buffer. Offsets
 * are relative to the start of the data buffer. Files are memory-mapped; a
 * tensor's data pointer points straight into the mapping (zero copy). */
#ifndef DAM_SAFETENSORS_H
#define DAM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

enum dtype {
    DT_F32, DT_F16, DT_BF16, DT_F64,
    DT_I64, DT_I32, DT_I16, DT_I8, DT_U8, DT_U16, DT_U32, DT_U64,
    DT_BOOL, DT_F8_E4M3, DT_F8_E5M2,
    DT_COUNT
};

const char *dtype_name(enum dtype t);     /* "F32", "BF16", ... */
size_t dtype_size(enum dtype t);          /* bytes per element */
int dtype_from_name(const char *name, enum dtype *out); /* 0 ok, -1 unknown */

#define ST_MAX_DIMS 8

struct st_tensor {
    char *name;
    enum dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const void *data;       /* points into the file mapping */
    size_t nbytes;
};

struct st_file {
    char *path;
    int fd;
    void *map;              /* whole file, read-only mapping */
    size_t size;            /* file size in bytes */
    size_t data_start;      /* 8 + header length */
    int n_tensors;
    struct st_tensor *tensors;   /* (n_tensors) sorted by data offset */
    int n_meta;
    char **meta_keys, **meta_values;  /* (n_meta) __metadata__ entries */
    struct st_tensor **by_name;  /* (n_tensors) the same tensors sorted by name, for st_find */
};

/* Opens, maps and validates a file. Every rule of the format is enforced;
 * an error names the file, the tensor (if any) and the rule broken. */
struct st_file *st_open(const char *path);
void st_close(struct st_file *f);
/* Same validation over an in-memory buffer (no mapping; data points into buf).
 * Used by st_open and by the fuzz target. name is used in messages. */
struct st_file *st_parse(const char *name, const void *buf, size_t size);
const struct st_tensor *st_find(const struct st_file *f, const char *name);

/* Writer: collects tensors, then writes the file with output_write (a file
 * atomically, temp + rename; "-" to stdout; a FIFO or device through).
 * Data is copied at st_writer_add time. */
struct st_writer;
struct st_writer *st_writer_new(void);
int st_writer_add(struct st_writer *w, const char *name, enum dtype dtype,
                  int ndim, const int64_t *shape, const void *data);
int st_writer_add_meta(struct st_writer *w, const char *key, const char *value);
int st_writer_save(struct st_writer *w, const char *path);
void st_writer_free(struct st_writer *w);

#endif
