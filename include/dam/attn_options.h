/* attn_options.h — what each attention module can be told.
 *
 * Every module's options are its own struct here, and the module describes
 * them in a table (struct attn_opt, in the module's .c file): key, type,
 * range, default and help. Flags (--MODULE-KEY), the options of `dam compare`
 * (MODULE:KEY=VALUE), configs/dam.json ({"MODULE": {"KEY": VALUE}}), the
 * help text and the options niah records with its grid all come from the
 * tables (src/attn/options.c), so a new option is one field and one table
 * row. */
#ifndef DAM_ATTN_OPTIONS_H
#define DAM_ATTN_OPTIONS_H

#include <stddef.h>
#include "dam/quant.h"

struct dam_profile;

/* window (window.c) */
struct window_options {
    int sinks;             /* first positions always kept */
    int size;              /* most recent positions kept, own position included */
};

/* dam (dam.c; the method in dam.h) */
struct dam_options {
    /* where the patterns come from, and how they are captured */
    char capture[16];      /* "auto" | "profile" | "prompt" ("calibrate", "reach": internal) */
    char profile[1024];    /* path of a profile JSON, "" = none */
    int pcl;               /* pattern capture length */
    float lambda;          /* Box-Cox lambda */
    float tau;             /* binarisation threshold on the amplified scale */
    float mu;              /* pattern match threshold gamma >= mu */
    int min_support;       /* minimum cells of a pattern inside PCL (0 = PCL/4) */
    float min_coverage;    /* heads covering less of their true mask fall back */
    char fallback[16];     /* "full" | "window" | "none" */
    int fallback_window;   /* window of the "window" fallback */
    /* what the heads run */
    int budget;            /* keys per row per head, split across heads by the profile's reach */
    int min_select;        /* positions every head selects at least (with a budget) */
    int sinks;             /* positions every head keeps (rounded up to blocks of 16) */
    int recent;            /* without reach figures: smallest recent window of a head */
    int select;            /* without reach figures: positions a selecting head chooses */
    char select_heads[16]; /* without reach figures: "all" | "weak" | "none" */
    int columns;           /* 1: keep the profile's column patterns */
    int evict;             /* > 0: at the end of each prompt every KV head keeps this many
                              positions beyond its sinks and windows (the blocks the prompt's
                              last rows attend to most) and drops the rest (SnapKV-style) */
    int reach_min_row;     /* reach capture: rows counted from this position (internal) */
    struct dam_profile *prepared; /* owned: the automatic profile attn_prepare obtained
                                     (attn_options_release frees it); NULL = none */
};

/* dma (dma.c) */
struct dma_options {
    int window;            /* keys kept per query; 0 = the model's keep_window_size */
};

/* Options of every module, filled from flags and configs/dam.json. */
struct attn_options {
    struct window_options window;
    struct dam_options dam;
    struct dma_options dma;
    enum kv_type kv_type;  /* KV cache elements of every module that supports it (--kv-type,
                              attn_module.kv_types): full, dam and window; dma stores float32 */
};

/* One option of a module, a row of its table. */
enum attn_opt_type { ATTN_OPT_INT, ATTN_OPT_FLOAT, ATTN_OPT_STRING };
struct attn_opt {
    const char *key;       /* "min-support": --dam-min-support, dam:min-support=, "min_support" */
    enum attn_opt_type type;
    size_t offset;         /* of the value in struct attn_options */
    size_t size;           /* strings: room, NUL included */
    double min, max;       /* numbers: the range accepted */
    const char *choices;   /* strings: "a|b|c", or NULL for any text */
    const char *alias;     /* an older short key dam compare also takes, or NULL */
    const char *def;       /* the built-in default, as text ("" for an empty string) */
    const char *help;      /* one line for --help; NULL: internal, not a flag */
};

#endif
