/* options.c — the modules' options by name (attn_options.h): flags,
 * `dam compare` keys, configs/dam.json, help text and descriptions, all
 * read from each module's table so that none of them lists options by hand. */
#include "dam/attn.h"
#include "dam/common.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys compare with '_' and '-' as the same character (config files use
 * min_support, flags --dam-min-support). */
static int same_key(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        const char x = *a == '_' ? '-' : *a, y = *b == '_' ? '-' : *b;
        if (x != y) return 0;
    }
    return *a == *b;
}

const struct attn_opt *attn_opt_find(const struct attn_module *m, const char *key) {
    for (const struct attn_opt *p = m ? m->options : NULL; p && p->key; p++)
        if (same_key(p->key, key) || (p->alias && same_key(p->alias, key))) return p;
    return NULL;
}

const struct attn_opt *attn_opt_for_flag(const char *flag, const struct attn_module **mod) {
    if (strncmp(flag, "--", 2)) return NULL;
    for (int i = 0; attn_module_at(i); i++) {
        const struct attn_module *m = attn_module_at(i);
        const size_t n = strlen(m->name);
        if (strncmp(flag + 2, m->name, n) || flag[2 + n] != '-') continue;
        const struct attn_opt *p = attn_opt_find(m, flag + 3 + n);
        if (p && p->help && same_key(p->key, flag + 3 + n)) {    /* flags: full keys, no internals */
            if (mod) *mod = m;
            return p;
        }
    }
    return NULL;
}

static int in_choices(const char *choices, const char *v) {
    const size_t n = strlen(v);
    for (const char *c = choices; *c;) {
        const char *bar = strchr(c, '|');
        const size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && !strncmp(c, v, n)) return 1;
        c += len + (bar != NULL);
    }
    return 0;
}

/* "a, b or c" from "a|b|c" */
static void choices_text(const char *choices, char *out, size_t size) {
    size_t o = 0;
    int count = 1;
    for (const char *c = choices; *c; c++) count += *c == '|';
    for (int k = 0; *choices && o + 8 < size; k++) {
        const char *bar = strchr(choices, '|');
        const size_t len = bar ? (size_t)(bar - choices) : strlen(choices);
        o += (size_t)snprintf(out + o, size - o, "%s%.*s", k == 0 ? "" : k == count - 1 ? " or " : ", ",
                              (int)len, choices);
        choices += len + (bar != NULL);
    }
}

int attn_opt_set(struct attn_options *o, const struct attn_opt *opt, const char *value, const char *what) {
    void *dst = (char *)o + opt->offset;
    if (opt->type == ATTN_OPT_STRING) {
        if (strlen(value) >= opt->size) return dam_fail("bad value for %s: longer than %zu bytes", what, opt->size - 1);
        if (opt->choices && !in_choices(opt->choices, value)) {
            char c[256];
            choices_text(opt->choices, c, sizeof c);
            return dam_fail("bad value for %s: '%s' (expected %s)", what, value, c);
        }
        snprintf(dst, opt->size, "%s", value);
        return 0;
    }
    char *end;
    errno = 0;
    const double x = strtod(value, &end);
    const int ok = *value && !isspace((unsigned char)*value) && *end == 0 && errno == 0 && isfinite(x);
    if (opt->type == ATTN_OPT_INT) {
        if (!ok || x != floor(x) || x < opt->min || x > opt->max)
            return dam_fail("bad value for %s: '%s' (expected an integer from %.0f to %.0f)", what, value,
                            opt->min, opt->max);
        *(int *)dst = (int)x;
        return 0;
    }
    if (!ok || x < opt->min || x > opt->max)
        return dam_fail("bad value for %s: '%s' (expected a number from %g to %g)", what, value, opt->min, opt->max);
    *(float *)dst = (float)x;
    return 0;
}

/* ---- configs/dam.json ---- */

static int load_module(const cJSON *obj, const struct attn_module *m, struct attn_options *o, const char *path) {
    const cJSON *v;
    cJSON_ArrayForEach(v, obj) {
        if (v->string[0] == '_') continue;
        const struct attn_opt *p = attn_opt_find(m, v->string);
        if (!p) return dam_fail("%s: module '%s' has no option '%s'", path, m->name, v->string);
        char text[64], what[256];
        const char *value = text;
        if (cJSON_IsString(v)) value = v->valuestring;
        else if (cJSON_IsNumber(v)) snprintf(text, sizeof text, "%.17g", v->valuedouble);
        else if (cJSON_IsBool(v)) snprintf(text, sizeof text, "%d", cJSON_IsTrue(v));
        else return dam_fail("%s: '%s.%s' must be a number or a string", path, m->name, v->string);
        if ((p->type == ATTN_OPT_STRING) != cJSON_IsString(v))
            return dam_fail("%s: '%s.%s' must be %s", path, m->name, v->string,
                            p->type == ATTN_OPT_STRING ? "a string" : "a number");
        snprintf(what, sizeof what, "'%s.%s' in %s", m->name, v->string, path);
        if (attn_opt_set(o, p, value, what)) return -1;
    }
    return 0;
}

int attn_options_load(const char *path, struct attn_options *o) {
    size_t len;
    char *text = read_file(path, &len);
    if (!text) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(root)) { cJSON_Delete(root); return dam_fail("%s: not a JSON object", path); }
    struct attn_options t = *o;
    int rc = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, root) {
        if (v->string[0] == '_') continue;
        const struct attn_module *m = attn_find(v->string);
        if (!m || !m->options) { rc = dam_fail("%s: no attention module '%s' with options", path, v->string); break; }
        if (!cJSON_IsObject(v)) { rc = dam_fail("%s: '%s' must be an object", path, v->string); break; }
        if ((rc = load_module(v, m, &t, path))) break;
    }
    cJSON_Delete(root);
    if (rc) return -1;
    *o = t;
    return 0;
}

/* ---- describing ---- */

static int format_value(const struct attn_options *o, const struct attn_opt *p, char *out, size_t size) {
    const void *src = (const char *)o + p->offset;
    if (p->type == ATTN_OPT_STRING) return snprintf(out, size, "%s", (const char *)src);
    if (p->type == ATTN_OPT_INT) return snprintf(out, size, "%d", *(const int *)src);
    return snprintf(out, size, "%g", (double)*(const float *)src);
}

int attn_options_describe(const struct attn_module *m, const struct attn_options *o, char *out, size_t size) {
    size_t n = 0;
    if (size) out[0] = 0;
    for (const struct attn_opt *p = m->options; p && p->key; p++) {
        char v[1100];
        format_value(o, p, v, sizeof v);
        int w = snprintf(out + n, n < size ? size - n : 0, "%s%s=%s", n ? "," : "", p->key, v);
        if (w < 0 || n + (size_t)w >= size) return dam_fail("the options of %s take more than %zu bytes", m->name, size - 1);
        n += (size_t)w;
    }
    return 0;
}

/* Words of text after a first line of `used` columns, wrapped at 94 columns,
 * continuation lines indented by `indent`. */
static void wrap(FILE *out, const char *text, int used, int indent) {
    int col = used;
    for (const char *w = text; *w;) {
        while (*w == ' ') w++;
        const char *end = strchr(w, ' ');
        const int len = end ? (int)(end - w) : (int)strlen(w);
        if (len == 0) break;
        if (col > indent && col + 1 + len > 94) { fprintf(out, "\n%*s", indent, ""); col = indent; }
        else if (col > indent || used > indent) { fputc(' ', out); col++; }
        fprintf(out, "%.*s", len, w);
        col += len;
        w += len;
    }
    fputc('\n', out);
}

void attn_options_help(FILE *out, const struct attn_options *o) {
    for (int i = 0; attn_module_at(i); i++) {
        const struct attn_module *m = attn_module_at(i);
        for (const struct attn_opt *p = m->options; p && p->key; p++) {
            if (!p->help) continue;
            char flag[64], v[1100], text[1400];
            snprintf(flag, sizeof flag, "--%s-%s %s", m->name, p->key,
                     p->choices ? "S" : p->type == ATTN_OPT_STRING ? "TEXT" : p->type == ATTN_OPT_INT ? "N" : "X");
            format_value(o, p, v, sizeof v);
            int n = snprintf(text, sizeof text, "%s: %s", m->name, p->help);
            if (p->choices) n += snprintf(text + n, sizeof text - (size_t)n, " (%s)", p->choices);
            if (v[0]) snprintf(text + n, sizeof text - (size_t)n, " (default %s)", v);
            fprintf(out, "  %-26s", flag);
            wrap(out, text, 28 > 2 + (int)strlen(flag) ? 28 : 2 + (int)strlen(flag), 29);
        }
    }
}
