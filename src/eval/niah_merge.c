/* niah_merge.c — the parts of a grid (dam niah --shard I/N runs, or whole
 * runs) read back from their JSON lines and put together: the results of
 * the whole grid, in run order, for the table, CSV and heatmap, and the JSON
 * lines as one run would have written them.
 *
 * Nothing is trusted: the first line names the grid (its task, seed and
 * "grid" object) and every other line must name the same one; each line's
 * cell must be one of that grid's, belong to the shard the line says it
 * came from, and come once; at the end every cell must have come. Each
 * refusal is one line naming the file and line. */
#include "dam/niah.h"
#include "dam/common.h"
#include "niah_internal.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CELLS (1LL << 24)     /* a grid larger than this is not a grid we wrote */
#define MAX_MODULES 64

/* Where a line came from, for messages. */
struct where { const char *path; int line; };

struct merge {
    struct niah_merged *m;
    cJSON *ref;                   /* the first line: its task, seed and grid name the grid */
    struct where ref_at;
    long long n_cells;
    struct niah_result *results;  /* (n_cells) by cell number; output == NULL: not seen yet */
    char **lines;                 /* (n_cells) each cell's JSON line, "shard" removed */
    struct where *at;             /* (n_cells) */
    int shard_count;              /* the count every line named (1: whole runs), -1 if they differ */
    char *shard_seen;             /* (shard_count) lines seen per shard, when one count */
};

/* ---- reading fields ---- */

static int number(const cJSON *j, const char *key, double lo, double hi, int integer, double *out,
                  struct where at) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(v)) return dam_fail("%s line %d: no number '%s' (not a line of dam niah)", at.path, at.line, key);
    double x = v->valuedouble;
    if (!(x >= lo && x <= hi) || (integer && x != floor(x)))
        return dam_fail("%s line %d: bad '%s': %g", at.path, at.line, key, x);
    *out = x;
    return 0;
}

static int integer(const cJSON *j, const char *key, int lo, int hi, int *out, struct where at) {
    double x;
    if (number(j, key, lo, hi, 1, &x, at)) return -1;
    *out = (int)x;            /* in range: checked before the cast */
    return 0;
}

static const char *string(const cJSON *j, const char *key, struct where at) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsString(v)) { dam_fail("%s line %d: no string '%s' (not a line of dam niah)", at.path, at.line, key); return NULL; }
    return v->valuestring;
}

/* ---- the grid, from the first line ---- */

static int grid_lists(struct merge *mg, const cJSON *grid, struct where at) {
    struct niah_merged *m = mg->m;
    struct niah_run *run = &m->run;
    const cJSON *lengths = cJSON_GetObjectItemCaseSensitive(grid, "lengths"),
                *depths = cJSON_GetObjectItemCaseSensitive(grid, "depths"),
                *attn = cJSON_GetObjectItemCaseSensitive(grid, "attn");
    int nl = cJSON_GetArraySize(lengths), nd = cJSON_GetArraySize(depths), na = cJSON_GetArraySize(attn);
    if (!cJSON_IsArray(lengths) || !cJSON_IsArray(depths) || !cJSON_IsArray(attn) || !nl || !nd || !na
        || na > MAX_MODULES)
        return dam_fail("%s line %d: its grid lacks lengths, depths or attn", at.path, at.line);
    if (integer(grid, "samples", 1, 1 << 30, &run->samples, at)) return -1;
    m->lengths = xcalloc((size_t)nl, sizeof *m->lengths, "lengths");
    m->depths = xcalloc((size_t)nd, sizeof *m->depths, "depths");
    m->attn_names = xcalloc((size_t)na, sizeof *m->attn_names, "modules");
    if (!m->lengths || !m->depths || !m->attn_names) return -1;
    run->n_lengths = nl; run->n_depths = nd; run->n_attn = na;
    run->lengths = m->lengths; run->depths = m->depths; run->attn = (const char **)m->attn_names;
    for (int i = 0; i < nl; i++) {
        const cJSON *v = cJSON_GetArrayItem(lengths, i);
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 1 && v->valuedouble <= 1 << 30) || v->valuedouble != floor(v->valuedouble))
            return dam_fail("%s line %d: bad length in its grid", at.path, at.line);
        m->lengths[i] = (int)v->valuedouble;
    }
    for (int i = 0; i < nd; i++) {
        const cJSON *v = cJSON_GetArrayItem(depths, i);
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1))
            return dam_fail("%s line %d: bad depth in its grid", at.path, at.line);
        m->depths[i] = (float)v->valuedouble;
    }
    for (int i = 0; i < na; i++) {
        const cJSON *v = cJSON_GetArrayItem(attn, i);
        if (!cJSON_IsString(v) || !(m->attn_names[i] = strdup(v->valuestring)))
            return dam_fail("%s line %d: bad module name in its grid", at.path, at.line);
    }
    /* a list with a value twice would leave cells that no line can fill */
    for (int i = 0; i < nl; i++) for (int k = 0; k < i; k++)
        if (m->lengths[i] == m->lengths[k]) return dam_fail("%s line %d: length %d twice in its grid", at.path, at.line, m->lengths[i]);
    for (int i = 0; i < nd; i++) for (int k = 0; k < i; k++)
        if (m->depths[i] == m->depths[k]) return dam_fail("%s line %d: depth %g twice in its grid", at.path, at.line, (double)m->depths[i]);
    for (int i = 0; i < na; i++) for (int k = 0; k < i; k++)
        if (!strcmp(m->attn_names[i], m->attn_names[k])) return dam_fail("%s line %d: module %s twice in its grid", at.path, at.line, m->attn_names[i]);
    return 0;
}

static int set_reference(struct merge *mg, cJSON *j, struct where at) {
    struct niah_run *run = &mg->m->run;
    const char *task = string(j, "task", at);
    double seed;
    if (!task || number(j, "seed", 0, 9007199254740991.0, 1, &seed, at)) return -1;
    if (niah_task_parse(task, &run->task)) return dam_fail("%s line %d: %s", at.path, at.line, dam_last_error());
    const cJSON *grid = cJSON_GetObjectItemCaseSensitive(j, "grid");
    if (!cJSON_IsObject(grid))
        return dam_fail("%s line %d has no \"grid\": written by a dam niah older than --shard; run it again",
                        at.path, at.line);
    if (grid_lists(mg, grid, at)) return -1;
    /* factor by factor: a stranger's lists must not overflow the product */
    const int factors[4] = { run->n_attn, run->n_lengths, run->n_depths, run->samples };
    long long cells = 1;
    for (int i = 0; i < 4; i++)
        if ((cells *= factors[i]) > MAX_CELLS)
            return dam_fail("%s line %d: its grid has more than %lld cells", at.path, at.line, MAX_CELLS);
    mg->n_cells = cells;
    mg->results = xcalloc((size_t)mg->n_cells, sizeof *mg->results, "results");
    mg->lines = xcalloc((size_t)mg->n_cells, sizeof *mg->lines, "result lines");
    mg->at = xcalloc((size_t)mg->n_cells, sizeof *mg->at, "result lines");
    const char *model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "model"));
    if (model && !(mg->m->model = strdup(model))) return dam_fail("out of memory");
    run->model = mg->m->model;
    if (!mg->results || !mg->lines || !mg->at) return -1;
    if (!(mg->ref = cJSON_Duplicate(j, 1))) return dam_fail("out of memory");
    mg->ref_at = at;
    return 0;
}

/* ---- the same grid ---- */

/* A value for a message: its JSON, cut short. */
static void shown(const cJSON *v, char *buf, size_t size) {
    char *text = v ? cJSON_PrintUnformatted(v) : NULL;
    snprintf(buf, size, "%s", text ? text : "(none)");
    if (text && strlen(text) >= size && size > 4) memcpy(buf + size - 4, "...", 4);
    free(text);
}

static int differs(const cJSON *a, const cJSON *b) { return !a || !b || !cJSON_Compare(a, b, 1); }

static int refuse_mix(const struct merge *mg, const char *what, const cJSON *mine, const cJSON *theirs,
                      const cJSON *j, struct where at) {
    char a[200], b[200];
    shown(mine, a, sizeof a);
    shown(theirs, b, sizeof b);
    if (!strcmp(what, "model_key")) {
        const char *m1 = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "model")),
                   *m2 = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(mg->ref, "model"));
        return dam_fail("%s line %d and %s line %d are from different grids: another model (%s, key %s, vs %s, "
                        "key %s)", at.path, at.line, mg->ref_at.path, mg->ref_at.line, m1 ? m1 : "?", a,
                        m2 ? m2 : "?", b);
    }
    return dam_fail("%s line %d and %s line %d are from different grids: %s %s vs %s", at.path, at.line,
                    mg->ref_at.path, mg->ref_at.line, what, a, b);
}

static int same_grid(const struct merge *mg, const cJSON *j, struct where at) {
    static const char *const top[] = { "task", "seed" };
    for (int i = 0; i < 2; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, top[i]), *b = cJSON_GetObjectItemCaseSensitive(mg->ref, top[i]);
        if (differs(a, b)) return refuse_mix(mg, top[i], a, b, j, at);
    }
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(j, "grid"), *ref = cJSON_GetObjectItemCaseSensitive(mg->ref, "grid");
    if (!cJSON_IsObject(g))
        return dam_fail("%s line %d has no \"grid\": written by a dam niah older than --shard; run it again",
                        at.path, at.line);
    /* each key of either, so that the message names what differs */
    const cJSON *v;
    cJSON_ArrayForEach(v, ref)
        if (differs(cJSON_GetObjectItemCaseSensitive(g, v->string), v))
            return refuse_mix(mg, v->string, cJSON_GetObjectItemCaseSensitive(g, v->string), v, j, at);
    cJSON_ArrayForEach(v, g)
        if (!cJSON_GetObjectItemCaseSensitive(ref, v->string)) return refuse_mix(mg, v->string, v, NULL, j, at);
    return 0;
}

/* ---- one line's cell ---- */

static int find_cell(const struct merge *mg, const cJSON *j, struct where at, struct niah_result *r) {
    const struct niah_run *run = &mg->m->run;
    const char *attn = string(j, "attn", at);
    int length;
    double depth;
    if (!attn || integer(j, "length", 1, 1 << 30, &length, at) || number(j, "depth", 0, 1, 0, &depth, at)
        || integer(j, "sample", 0, run->samples - 1, &r->sample, at))
        return -1;
    r->attn = r->length_index = r->depth_index = -1;
    for (int i = 0; i < run->n_attn; i++) if (!strcmp(run->attn[i], attn)) r->attn = i;
    for (int i = 0; i < run->n_lengths; i++) if (run->lengths[i] == length) r->length_index = i;
    for (int i = 0; i < run->n_depths; i++) if (fabs(niah_json_depth(run->depths[i]) - depth) < 5e-7) r->depth_index = i;
    if (r->attn < 0 || r->length_index < 0 || r->depth_index < 0)
        return dam_fail("%s line %d: module %s, length %d, depth %g is not a cell of its grid", at.path,
                        at.line, attn, length, depth);
    return 0;
}

/* The line's "shard" (absent: a whole run, 1/1) must hold its cell. */
static int check_shard(struct merge *mg, const cJSON *j, long long cell, struct where at) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "shard");
    int index = 1, count = 1;
    if (s && (!cJSON_IsString(s) || niah_parse_shard(s->valuestring, &index, &count)))
        return dam_fail("%s line %d: bad \"shard\" (expected \"I/N\")", at.path, at.line);
    if (!niah_shard_owns(index, count, cell))
        return dam_fail("%s line %d: its cell is not one of shard %d/%d's", at.path, at.line, index, count);
    if (mg->shard_count == 0) {
        mg->shard_count = count;
        if (!(mg->shard_seen = xcalloc((size_t)count, 1, "shards"))) return -1;
    }
    if (mg->shard_count != count) mg->shard_count = -1;   /* allowed: each cell once is what counts */
    else mg->shard_seen[index - 1] = 1;
    return 0;
}

/* The result's fields, and the line as the whole run writes it. */
static int take_line(struct merge *mg, cJSON *j, struct where at) {
    struct niah_result r = { 0 };
    if (find_cell(mg, j, at, &r)) return -1;
    long long cell = niah_cell_number(&mg->m->run, r.attn, r.length_index, r.depth_index, r.sample);
    if (check_shard(mg, j, cell, at)) return -1;
    if (mg->lines[cell])
        return dam_fail("%s line %d: a second result for module %s, length %d, depth %g, sample %d (the first: "
                        "%s line %d)", at.path, at.line, mg->m->run.attn[r.attn], mg->m->run.lengths[r.length_index],
                        niah_json_depth(mg->m->run.depths[r.depth_index]), r.sample, mg->at[cell].path, mg->at[cell].line);
    const char *expected = string(j, "expected", at), *output = string(j, "output", at);
    const cJSON *correct = cJSON_GetObjectItemCaseSensitive(j, "correct");
    double seed;
    if (!expected || !output || number(j, "seed", 0, 9007199254740991.0, 1, &seed, at)
        || integer(j, "prompt_tokens", 0, 1 << 30, &r.prompt_tokens, at)
        || integer(j, "output_tokens", 0, 1 << 30, &r.output_tokens, at)
        || number(j, "needle_depth", 0, 1, 0, &r.needle_depth, at)
        || number(j, "sparsity", 0, 1, 0, &r.sparsity, at)
        || number(j, "kv_bytes", 0, 1e18, 0, &r.kv_bytes, at)
        || number(j, "prefill_ms", 0, 1e15, 0, &r.prefill_ms, at)
        || number(j, "decode_ms", 0, 1e15, 0, &r.decode_ms, at))
        return -1;
    if (!cJSON_IsBool(correct)) return dam_fail("%s line %d: no true or false 'correct'", at.path, at.line);
    r.correct = cJSON_IsTrue(correct);
    r.seed = (uint64_t)seed;
    cJSON_DeleteItemFromObjectCaseSensitive(j, "shard");
    r.expected = strdup(expected);
    r.output = strdup(output);
    mg->lines[cell] = cJSON_PrintUnformatted(j);
    mg->results[cell] = r;
    mg->at[cell] = at;
    if (!r.expected || !r.output || !mg->lines[cell]) return dam_fail("out of memory");
    return 0;
}

/* ---- files ---- */

static int blank(const char *s) {
    for (; *s; s++) if (*s != ' ' && *s != '\t' && *s != '\r') return 0;
    return 1;
}

static int read_part(struct merge *mg, const char *path) {
    size_t len;
    char *text = read_file(path, &len);
    if (!text) return -1;
    if (strlen(text) != len) { free(text); return dam_fail("%s is not a text file of JSON lines", path); }
    int rc = 0, n = 0, line_no = 0;
    for (char *line = text, *next; rc == 0 && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        line_no++;
        if (blank(line)) continue;
        struct where at = { path, line_no };
        cJSON *j = cJSON_ParseWithOpts(line, NULL, 1);
        if (!cJSON_IsObject(j)) rc = dam_fail("%s line %d: not a JSON object (a cut line?)", path, line_no);
        else if (!mg->ref) rc = set_reference(mg, j, at);
        else rc = same_grid(mg, j, at);
        if (rc == 0) rc = take_line(mg, j, at);
        cJSON_Delete(j);
        n++;
    }
    free(text);
    if (rc == 0 && n == 0) return dam_fail("%s holds no results", path);
    return rc;
}

/* Every cell must have come; the message names a shard that sent nothing
 * or else the first cell missing. */
static int check_complete(const struct merge *mg) {
    const struct niah_run *run = &mg->m->run;
    long long missing = 0, first = -1;
    for (long long c = 0; c < mg->n_cells; c++)
        if (!mg->lines[c]) { missing++; if (first < 0) first = c; }
    if (!missing) return 0;
    int count = mg->shard_count, absent = 0, first_absent = 0;
    for (int i = 0; count > 1 && i < count; i++)
        if (!mg->shard_seen[i] && !absent++) first_absent = i + 1;
    if (absent)
        return dam_fail("missing results: no line of shard %d/%d%s (%lld of %lld cells have none)", first_absent,
                        count, absent > 1 ? " and others" : "", missing, mg->n_cells);
    long long c = first;
    int attn = (int)(c % run->n_attn), s = (int)(c / run->n_attn % run->samples),
        d = (int)(c / run->n_attn / run->samples % run->n_depths), l = (int)(c / run->n_attn / run->samples / run->n_depths);
    char whose[64] = "";
    if (count > 1) snprintf(whose, sizeof whose, ", from shard %lld/%d", c % count + 1, count);
    return dam_fail("missing results: %lld of %lld cells have none, the first: module %s, length %d, depth %g, "
                    "sample %d%s (an unfinished part?)", missing, mg->n_cells, run->attn[attn], run->lengths[l],
                    niah_json_depth(run->depths[d]), s, whose);
}

/* The results and JSON lines in run order. */
static int gather(struct merge *mg) {
    struct sbuf b = { 0 };
    for (long long c = 0; c < mg->n_cells; c++) {
        if (niah_run_add(&mg->m->run, &mg->results[c])) { sbuf_free(&b); return -1; }
        sbuf_puts(&b, mg->lines[c]);
        sbuf_puts(&b, "\n");
    }
    return (mg->m->jsonl = sbuf_take(&b)) ? 0 : -1;
}

static void free_merge(struct merge *mg) {
    for (long long c = 0; c < mg->n_cells; c++) {
        free(mg->results ? mg->results[c].expected : NULL);
        free(mg->results ? mg->results[c].output : NULL);
        free(mg->lines ? mg->lines[c] : NULL);
    }
    free(mg->results);
    free(mg->lines);
    free(mg->at);
    free(mg->shard_seen);
    cJSON_Delete(mg->ref);
}

struct niah_merged *niah_merge(const char *const *paths, int n_paths) {
    struct merge mg = { .m = xcalloc(1, sizeof *mg.m, "merge") };
    if (!mg.m) return NULL;
    int rc = n_paths > 0 ? 0 : dam_fail("nothing to merge: give the JSON line files of the parts");
    for (int i = 0; rc == 0 && i < n_paths; i++) rc = read_part(&mg, paths[i]);
    if (rc == 0) rc = check_complete(&mg);
    if (rc == 0) rc = gather(&mg);
    free_merge(&mg);
    if (rc != 0) { niah_merged_free(mg.m); return NULL; }
    return mg.m;
}

void niah_merged_free(struct niah_merged *m) {
    if (!m) return;
    niah_run_free_results(&m->run);
    free(m->jsonl);
    free(m->model);
    for (int i = 0; m->attn_names && i < m->run.n_attn; i++) free(m->attn_names[i]);
    free(m->attn_names);
    free(m->lengths);
    free(m->depths);
    free(m);
}
