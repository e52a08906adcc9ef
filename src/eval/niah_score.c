/* niah_score.c — scoring an answer, and the grid's values (lengths, depths).
 *
 * The scoring rules are the benchmarks' own (LONG_CONTEXT_TASKS.md):
 *   passkey (LongLoRA / Landmark): the first integer in the output is the key;
 *   niah, multikey (RULER): the number appears in the output, ignoring case;
 *   lines (LongEval, the DAM paper): the last integer in the output is the value.
 * Integers compare by value, so "071432" answers 71432. */
#include "dam/niah.h"
#include "dam/common.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- scoring ---- */

/* Digits of the first (last = 0) or last (last = 1) run of digits in s:
 * *begin and *len, without leading zeros ("0" stays). 0 when there is none. */
static int find_integer(const char *s, int last, const char **begin, size_t *len) {
    int found = 0;
    for (const char *p = s; *p; ) {
        if (!isdigit((unsigned char)*p)) { p++; continue; }
        const char *q = p;
        while (isdigit((unsigned char)*q)) q++;
        *begin = p; *len = (size_t)(q - p);
        found = 1;
        if (!last) break;
        p = q;
    }
    if (!found) return 0;
    while (*len > 1 && **begin == '0') { (*begin)++; (*len)--; }
    return 1;
}

static int same_integer(const char *expected, const char *digits, size_t len) {
    while (expected[0] == '0' && expected[1]) expected++;
    return strlen(expected) == len && !memcmp(expected, digits, len);
}

int niah_score(enum niah_task task, const char *expected, const char *output) {
    if (!expected || !*expected || !output) return 0;
    const char *digits;
    size_t len;
    switch (task) {
    case NIAH_PASSKEY:
        return find_integer(output, 0, &digits, &len) && same_integer(expected, digits, len);
    case NIAH_LINES:
        return find_integer(output, 1, &digits, &len) && same_integer(expected, digits, len);
    case NIAH_NIAH:
    case NIAH_MULTIKEY:
        return strcasestr(output, expected) != NULL;
    default:
        return 0;
    }
}

/* ---- grid values ---- */

/* Splits a comma list; calls item() on each piece (NUL-terminated copy). */
static int for_each_item(const char *list, const char *flag, int (*item)(const char *s, void *ctx), void *ctx) {
    if (!*list) return dam_fail("bad value for %s: empty list", flag);
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char piece[64];
        if (n == 0 || n >= sizeof piece)
            return dam_fail("bad value for %s: '%s' (an empty or over-long item)", flag, list);
        memcpy(piece, p, n);
        piece[n] = 0;
        if (item(piece, ctx) != 0) return -1;
        if (!comma) return 0;
        p = comma + 1;
    }
}

struct number_list {
    const char *flag, *list;
    double *values;
    int n, cap;
};

static int push_value(struct number_list *l, double v) {
    for (int i = 0; i < l->n; i++)
        if (l->values[i] == v) return dam_fail("bad value for %s: '%s' (%g appears twice)", l->flag, l->list, v);
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 8;
        double *grown = realloc(l->values, (size_t)cap * sizeof *grown);
        if (!grown) return dam_fail("out of memory");
        l->values = grown;
        l->cap = cap;
    }
    l->values[l->n++] = v;
    return 0;
}

#define MAX_LENGTH (1 << 24)

static int length_item(const char *s, void *ctx) {
    struct number_list *l = ctx;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end != s && (*end == 'k' || *end == 'K')) { v *= 1024; end++; }
    if (end == s || *end || errno || !isfinite(v) || v < 1 || v > MAX_LENGTH || fabs(v - round(v)) > 1e-6)
        return dam_fail("bad value for %s: '%s' (expected token counts from 1 to %d, like 1k,2k,4096)",
                        l->flag, s, MAX_LENGTH);
    return push_value(l, round(v));
}

static int depth_item(const char *s, void *ctx) {
    struct number_list *l = ctx;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(v >= 0 && v <= 1))
        return dam_fail("bad value for %s: '%s' (expected fractions from 0 to 1, like 0,0.5,1)", l->flag, s);
    return push_value(l, v);
}

int niah_parse_lengths(const char *list, int **out, int *n) {
    struct number_list l = { .flag = "--lengths", .list = list };
    if (for_each_item(list, l.flag, length_item, &l) != 0) { free(l.values); return -1; }
    int *v = xmalloc((size_t)l.n * sizeof *v, "lengths");
    if (!v) { free(l.values); return -1; }
    for (int i = 0; i < l.n; i++) v[i] = (int)l.values[i];
    free(l.values);
    *out = v;
    *n = l.n;
    return 0;
}

int niah_parse_depths(const char *list, float **out, int *n) {
    struct number_list l = { .flag = "--depths", .list = list };
    if (for_each_item(list, l.flag, depth_item, &l) != 0) { free(l.values); return -1; }
    float *v = xmalloc((size_t)l.n * sizeof *v, "depths");
    if (!v) { free(l.values); return -1; }
    for (int i = 0; i < l.n; i++) v[i] = (float)l.values[i];
    free(l.values);
    *out = v;
    *n = l.n;
    return 0;
}

void niah_format_length(int length, char *buf, size_t size) {
    if (length >= 1024 && length % 1024 == 0) snprintf(buf, size, "%dk", length / 1024);
    else if (length >= 1024 && length % 512 == 0) snprintf(buf, size, "%.1fk", length / 1024.0);
    else snprintf(buf, size, "%d", length);
}
