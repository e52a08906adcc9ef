/* test_prompt_cache.c — a session saved and restored by the prompt cache
 * continues bit for bit as the uncached one: for every module (full, window,
 * dam with a profile calibrated here, dam with --dam-evict, dma and the dense
 * dma of a Doge model), the logits after the restore point are compared
 * with memcmp, for a whole hit and for a shorter shared prefix (or, where a
 * module cannot go back, a miss with the reason). Also: a cache refused for
 * other options, and a state whose bytes are cut short. Prompts are random
 * ids on the tiny shipped models. */
#include "../harness.h"
#include "dam/common.h"
#include "dam/dam.h"
#include "dam/model.h"
#include "dam/prompt_cache.h"
#include "dam/session.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STORIES "third_party/models/stories260k"
#define DOGE "third_party/models/tiny-doge"

static void random_ids(int *ids, int n, int vocab, unsigned seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        ids[i] = 3 + (int)((seed >> 8) % (unsigned)(vocab - 3));
    }
}

static struct session *fresh(const struct model *m, const char *attn, const struct attn_options *o) {
    struct session *s = session_new(m, attn_find(attn), o, 0);
    ck_assert_msg(s != NULL, "%s: %s", attn, dam_last_error());
    return s;
}

#define DECODE 4                     /* tokens decoded one by one after the prompt */

/* Logits of ids[from, n) after ids[0, from) are in s, then of DECODE
 * tokens decoded one at a time (where --dam-evict drops keys):
 * (n - from + DECODE, vocab). */
static float *logits_after(struct session *s, const int *ids, int from, int n) {
    const int vocab = s->model->cfg.vocab_size;
    float *out = malloc((size_t)(n - from + DECODE) * vocab * sizeof(float));
    ck_assert_int_eq(s->pos, from);
    ck_assert_msg(session_eval(s, ids + from, n - from, out, LOGITS_ALL) == 0, "%s", dam_last_error());
    for (int t = 0; t < DECODE; t++)
        ck_assert_int_eq(session_eval(s, &ids[t], 1, out + (size_t)(n - from + t) * vocab, LOGITS_LAST), 0);
    return out;
}

/* The same, uncached: the prompt in one go (chunked from 0), the rows from
 * `from` on kept. */
static float *uncached(const struct model *m, const char *attn, const struct attn_options *o, const int *ids,
                       int from, int n) {
    const int vocab = m->cfg.vocab_size;
    struct session *s = fresh(m, attn, o);
    float *all = logits_after(s, ids, 0, n);
    float *tail = malloc((size_t)(n - from + DECODE) * vocab * sizeof(float));
    memcpy(tail, all + (size_t)from * vocab, (size_t)(n - from + DECODE) * vocab * sizeof(float));
    free(all);
    session_free(s);
    return tail;
}

/* Saves the session of prompt a (n_a ids) at its save point, restores it
 * for prompt b (n_b ids; b may share only a prefix), and checks b's logits
 * from the restore point on against an uncached run. Returns the positions
 * restored (0: a miss, note in *r). */
static int round_trip(const struct model *m, const char *attn, const struct attn_options *o, const int *a, int n_a,
                      const int *b, int n_b, struct prompt_cache_result *r) {
    const char *path = tmp_file_with("", 0);
    unlink(path);                                   /* a new file: the save creates it */
    struct session *s = fresh(m, attn, o);
    const int at = prompt_cache_point(s, n_a);
    ck_assert_int_gt(at, 0);
    ck_assert_int_eq(session_eval(s, a, at, NULL, LOGITS_NONE), 0);
    struct prompt_cache_result w;
    ck_assert_msg(prompt_cache_save(s, o, path, a, &w) == 0, "%s: %s", attn, dam_last_error());
    ck_assert_int_eq(w.positions, at);
    session_free(s);

    s = fresh(m, attn, o);
    ck_assert_msg(prompt_cache_load(s, o, path, b, n_b, r) == 0, "%s: %s", attn, dam_last_error());
    const int from = r->restored;
    float *got = logits_after(s, b, from, n_b), *want = uncached(m, attn, o, b, from, n_b);
    const size_t bytes = (size_t)(n_b - from + DECODE) * m->cfg.vocab_size * sizeof(float);
    ck_assert_msg(memcmp(got, want, bytes) == 0, "%s: logits after a restore at %d differ", attn, from);
    free(got);
    free(want);
    session_free(s);
    unlink(path);
    return from;
}

/* Prompt a (300 ids) and b: its first 200, then 60 others. */
static void prompts(int vocab, int *a, int *b) {
    random_ids(a, 300, vocab, 1);
    memcpy(b, a, 200 * sizeof *a);
    random_ids(b + 200, 60, vocab, 2);
}

START_TEST(test_full_and_window) {
    struct model *m = model_load(STORIES);
    ck_assert_msg(m != NULL, "%s", dam_last_error());
    struct attn_options o;
    attn_options_default(&o);
    o.window.size = 32;
    int a[300], b[260];
    prompts(m->cfg.vocab_size, a, b);
    struct prompt_cache_result r;
    ck_assert_int_eq(round_trip(m, "full", &o, a, 300, a, 300, &r), 256);
    ck_assert_int_eq(round_trip(m, "full", &o, a, 300, b, 260, &r), 128);    /* shared 200: back to 128 */
    ck_assert_int_eq(round_trip(m, "window", &o, a, 300, a, 300, &r), 256);
    /* the window's stores dropped the blocks before 128: a miss that says why */
    ck_assert_int_eq(round_trip(m, "window", &o, a, 300, b, 260, &r), 0);
    ck_assert_msg(strstr(r.note, "restores only in full"), "%s", r.note);
    /* other prompts: a miss */
    int c[300];
    random_ids(c, 300, m->cfg.vocab_size, 3);
    ck_assert_int_eq(round_trip(m, "full", &o, a, 300, c, 300, &r), 0);
    ck_assert_msg(strstr(r.note, "shares 0"), "%s", r.note);
    model_free(m);
}
END_TEST

/* dam on a profile calibrated here (PCL 32, a few sequences), with a small
 * window and selection so that tiles select blocks; then with --dam-evict. */
START_TEST(test_dam) {
    struct model *m = model_load(STORIES);
    ck_assert_msg(m != NULL, "%s", dam_last_error());
    struct attn_options o;
    attn_options_default(&o);
    o.dam.pcl = 32;
    int seq[4][64];
    const int *seqs[4];
    int lens[4];
    for (int i = 0; i < 4; i++) {
        random_ids(seq[i], 64, m->cfg.vocab_size, 10 + (unsigned)i);
        seqs[i] = seq[i];
        lens[i] = 64;
    }
    o.dam.prepared = dam_calibrate_tokens(m, seqs, lens, 4, &o, "test", 0);
    ck_assert_msg(o.dam.prepared != NULL, "%s", dam_last_error());
    o.dam.budget = 0;
    o.dam.recent = 16;
    o.dam.select = 32;
    int a[300], b[260];
    prompts(m->cfg.vocab_size, a, b);
    struct prompt_cache_result r;
    ck_assert_int_eq(round_trip(m, "dam", &o, a, 300, a, 300, &r), 256);
    ck_assert_int_eq(round_trip(m, "dam", &o, a, 300, b, 260, &r), 128);
    o.dam.evict = 32;
    ck_assert_int_eq(round_trip(m, "dam", &o, a, 300, a, 300, &r), 256);
    ck_assert_int_eq(round_trip(m, "dam", &o, a, 300, b, 260, &r), 0);
    ck_assert_msg(strstr(r.note, "--dam-evict"), "%s", r.note);
    /* 16-bit KV pages (--kv-type f16): saved and restored as stored */
    o.kv_type = KV_F16;
    ck_assert_int_eq(round_trip(m, "dam", &o, a, 300, a, 300, &r), 256);
    o.dam.evict = 0;
    ck_assert_int_eq(round_trip(m, "dam", &o, a, 300, b, 260, &r), 128);
    attn_options_release(&o);
    model_free(m);
}
END_TEST

START_TEST(test_dma) {
    struct model *m = model_load(DOGE);
    ck_assert_msg(m != NULL, "%s", dam_last_error());
    struct attn_options o;
    attn_options_default(&o);
    int a[300], b[260];
    prompts(m->cfg.vocab_size, a, b);
    struct prompt_cache_result r;
    for (int dense = 0; dense < 2; dense++) {           /* dma, then "full": the dense dma */
        const char *attn = dense ? "full" : "dma";
        ck_assert_int_eq(round_trip(m, attn, &o, a, 300, a, 300, &r), 256);
        ck_assert_int_eq(round_trip(m, attn, &o, a, 300, b, 260, &r), 128);
    }
    model_free(m);
}
END_TEST

/* Another option refuses the file; a state cut short is an error, and the
 * session is left as it was. */
START_TEST(test_refusals) {
    struct model *m = model_load(STORIES);
    ck_assert_msg(m != NULL, "%s", dam_last_error());
    struct attn_options o;
    attn_options_default(&o);
    int a[300];
    random_ids(a, 300, m->cfg.vocab_size, 1);
    const char *path = tmp_file_with("", 0);
    struct session *s = fresh(m, "window", &o);
    ck_assert_int_eq(session_eval(s, a, 256, NULL, LOGITS_NONE), 0);
    struct prompt_cache_result r;
    ck_assert_int_eq(prompt_cache_save(s, &o, path, a, &r), 0);
    session_free(s);

    struct attn_options other = o;
    other.window.size = o.window.size + 1;
    s = fresh(m, "window", &other);
    ck_assert_int_eq(prompt_cache_load(s, &other, path, a, 300, &r), -1);
    ck_assert_msg(strstr(dam_last_error(), "option size="), "%s", dam_last_error());
    ck_assert_int_eq(s->pos, 0);
    session_free(s);
    /* another KV element type: the header says which */
    other = o;
    other.kv_type = KV_BF16;
    s = fresh(m, "window", &other);
    ck_assert_int_eq(prompt_cache_load(s, &other, path, a, 300, &r), -1);
    ck_assert_msg(strstr(dam_last_error(), "holds f32 keys and values; this run keeps bf16"), "%s", dam_last_error());
    ck_assert_int_eq(s->pos, 0);
    session_free(s);

    /* the module's own stream, cut short, for each module: an error, never a crash */
    const char *mods[] = { "full", "window" };
    for (int i = 0; i < 2; i++) {
        s = fresh(m, mods[i], &o);
        ck_assert_int_eq(session_eval(s, a, 128, NULL, LOGITS_NONE), 0);
        struct attn_stream count = { 0 };
        ck_assert_int_eq(s->attn->save(s->attn_state, &count), 0);
        unsigned char *buf = malloc(count.len);
        struct attn_stream out = { .out = buf, .cap = count.len };
        ck_assert_int_eq(s->attn->save(s->attn_state, &out), 0);
        ck_assert_uint_eq(out.len, count.len);
        struct attn_setup setup;
        session_attn_setup(s, &o, &setup);
        for (size_t cut = 0; cut < count.len; cut += count.len / 7 + 1) {
            void *st = s->attn->create(&setup);
            struct attn_stream in = { .in = buf, .len = cut };
            ck_assert_int_eq(s->attn->load(st, &in, 128), -1);
            ck_assert_msg(strstr(dam_last_error(), "ends inside"), "%s", dam_last_error());
            s->attn->destroy(st);
        }
        free(buf);
        session_free(s);
    }
    unlink(path);
    model_free(m);
}
END_TEST

Suite *test_suite(void) {
    Suite *s = suite_create("prompt_cache");
    TCase *t = tcase_create("core");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_full_and_window);
    tcase_add_test(t, test_dam);
    tcase_add_test(t, test_dma);
    tcase_add_test(t, test_refusals);
    suite_add_tcase(s, t);
    return s;
}
