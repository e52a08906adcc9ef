/* dam_save.c — the sparse engine's state in a prompt cache (attn.h's save
 * and load of the dam and window modules). */
#include "dam/common.h"
#include "dam_state.h"
#include <string.h>

/* What a prompt built, for a later session to start from.
 *
 * Saved: the plans (compared on load, not restored: they come from the
 * profile or the options at create, and a cache made under other plans is
 * refused), per layer its positions and the last rows kept for the eviction
 * vote, the figures, then every KV store (dam_kv.c). A session that captures
 * its masks from the prompt is not saved (its plans are built mid-prompt).
 *
 * A shorter prefix (pos < the positions saved) is restored by truncating,
 * which needs every block before pos: stores of windowed heads have dropped
 * theirs, so such a state only restores in full; with --dam-evict the vote's
 * rows are those of the saved position, so it too only restores in full.
 * The figures then still count the rows cut off. */

static int save_plans(const struct dam_state *st, struct attn_stream *f) {
    const struct attn_setup *s = &st->setup;
    for (int l = 0; l < s->n_layers; l++) {
        if (attn_put_int(f, st->planned[l])) return -1;
        for (int h = 0; h < s->n_heads; h++) {
            const struct head_plan *p = &st->plans[(size_t)l * s->n_heads + h];
            const int fields[5] = { p->dense, p->sink_blocks, p->window, p->select, p->n_cols };
            if (attn_put(f, fields, sizeof fields) || attn_put(f, p->cols, (size_t)p->n_cols * sizeof *p->cols))
                return -1;
        }
    }
    return 0;
}

static int plans_differ(void) {
    return dam_fail("dam: the cache was made with other masks (another profile, or the automatic one "
                    "calibrated again)");
}

static int check_plans(const struct dam_state *st, struct attn_stream *f) {
    const struct attn_setup *s = &st->setup;
    for (int l = 0; l < s->n_layers; l++) {
        int planned;
        if (attn_get_int(f, &planned, 0, 1, "dam: plan flag")) return -1;
        if (planned != st->planned[l]) return plans_differ();
        for (int h = 0; h < s->n_heads; h++) {
            const struct head_plan *p = &st->plans[(size_t)l * s->n_heads + h];
            int fields[5];
            if (attn_get(f, fields, sizeof fields, "dam: plans")) return -1;
            if (fields[0] != p->dense || fields[1] != p->sink_blocks || fields[2] != p->window ||
                fields[3] != p->select || fields[4] != p->n_cols)
                return plans_differ();
            for (int c = 0; c < p->n_cols; c++) {
                int col;
                if (attn_get(f, &col, sizeof col, "dam: plan columns")) return -1;
                if (col != p->cols[c]) return plans_differ();
            }
        }
    }
    return 0;
}

int dam_state_save(void *state, struct attn_stream *f) {
    struct dam_state *st = state;
    const struct attn_setup *s = &st->setup;
    const size_t row = (size_t)s->n_heads * s->head_dim, per = (size_t)TILE * row;
    if (st->cap || st->reach)
        return dam_fail("dam: a session that captures its masks (--dam-capture prompt) cannot be saved");
    if (st->broken) return dam_fail("dam: internal error: saving a state a rewind broke");
    if (save_plans(st, f)) return -1;
    for (int l = 0; l < s->n_layers; l++)
        if (attn_put_int(f, st->n_pos[l]) || attn_put_int(f, st->last_rows[l]) || attn_put_int(f, st->last_pos[l]) ||
            attn_put(f, st->last_q ? st->last_q + l * per : NULL, (size_t)st->last_rows[l] * row * sizeof(float)))
            return -1;
    const double figures[4] = { st->kept_pairs, st->causal_pairs, st->selected_keys, st->candidate_keys };
    if (attn_put(f, figures, sizeof figures)) return -1;
    for (int i = 0; i < s->n_layers * s->n_kv_heads; i++)
        if (kv_store_save(&st->kv[i], f)) return -1;
    return 0;
}

int dam_state_load(void *state, struct attn_stream *f, int pos) {
    struct dam_state *st = state;
    const struct attn_setup *s = &st->setup;
    const size_t row = (size_t)s->n_heads * s->head_dim, per = (size_t)TILE * row;
    if (st->cap || st->reach)
        return dam_fail("dam: a session that captures its masks (--dam-capture prompt) cannot be restored");
    if (check_plans(st, f)) return -1;
    int saved = -1;
    for (int l = 0; l < s->n_layers; l++) {
        if (attn_get_int(f, &st->n_pos[l], 0, s->max_seq_len, "dam: positions") ||
            attn_get_int(f, &st->last_rows[l], 0, TILE, "dam: eviction rows") ||
            attn_get_int(f, &st->last_pos[l], 0, s->max_seq_len - st->last_rows[l], "dam: eviction position"))
            return -1;
        if (saved >= 0 && st->n_pos[l] != saved) return dam_fail("dam: the cached layers hold different positions");
        saved = st->n_pos[l];
        if (st->last_rows[l] == 0) continue;
        if (!st->last_q && !(st->last_q = xmalloc((size_t)s->n_layers * per * sizeof(float), "eviction rows")))
            return -1;
        if (attn_get(f, st->last_q + l * per, (size_t)st->last_rows[l] * row * sizeof(float), "dam: eviction rows"))
            return -1;
    }
    double figures[4];
    if (attn_get(f, figures, sizeof figures, "dam: figures")) return -1;
    st->kept_pairs = figures[0]; st->causal_pairs = figures[1];
    st->selected_keys = figures[2]; st->candidate_keys = figures[3];
    for (int i = 0; i < s->n_layers * s->n_kv_heads; i++) {
        if (kv_store_load(&st->kv[i], f)) return -1;
        if (st->kv[i].n_pos != saved) return dam_fail("dam: a cached KV store holds %d positions, its layer %d",
                                                      st->kv[i].n_pos, saved);
    }
    if (pos > saved) return dam_fail("dam: the cached state holds %d positions, not %d", saved, pos);
    if (pos == saved) return 0;
    if (st->run.evict > 0) {
        dam_fail("with --dam-evict a saved state restores only in full (%d positions), not the "
                        "%d shared with this prompt", saved, pos);
        return 1;
    }
    dam_state_truncate(st, pos);
    if (st->broken) {
        dam_fail("the saved state restores only in full (%d positions), not the %d shared with "
                 "this prompt: windowed heads dropped older keys", saved, pos);
        return 1;
    }
    return 0;
}

