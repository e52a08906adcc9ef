/* niah_internal.h — what the niah_*.c files share: a growable string, the
 * grid's JSON. */
#ifndef DAM_NIAH_INTERNAL_H
#define DAM_NIAH_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>

/* A heap string that grows; on out of memory it sets failed and stops
 * growing, so a sequence of appends needs one check at the end. */
struct sbuf {
    char *data;        /* NUL-terminated when len > 0 or after sbuf_take */
    size_t len, cap;
    int failed;
};

void sbuf_append(struct sbuf *b, const char *s, size_t n);
void sbuf_puts(struct sbuf *b, const char *s);
void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* XML text: & < > " escaped. */
void sbuf_xml(struct sbuf *b, const char *s);
/* The string (heap, caller frees), or NULL + dam_fail when an append failed. */
char *sbuf_take(struct sbuf *b);
void sbuf_free(struct sbuf *b);

/* The "grid" object of a run's JSON lines (niah_grid.c): model_key,
 * lengths, depths, samples, attn, options, n_predict, ctx, chat, haystack.
 * NULL + dam_fail. */
struct cJSON;
struct niah_run;
struct cJSON *niah_grid_json(const struct niah_run *run);

/* A depth as the JSON lines write it: 0.1f -> 0.1 (six decimals). */
double niah_json_depth(float depth);

#endif
