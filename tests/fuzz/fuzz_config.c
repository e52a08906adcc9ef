/* fuzz_config.c — libFuzzer entry point for the config.json parser.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude $(pkg-config --cflags libcjson) \
 *     tests/fuzz/fuzz_config.c src/model/config.c src/common/common.c \
 *     $(pkg-config --libs libcjson) -lm -o /tmp/fuzz_cfg
 *   /tmp/fuzz_cfg -max_total_time=60 CORPUS_DIR   (seed it with real config.json files)
 *
 * An accepted config must satisfy the invariants the forward pass relies on. */
#include "dam/common.h"
#include "dam/model.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct model_config c;
    if (config_parse((const char *)data, size, "fuzz/config.json", &c) != 0) {
        if (dam_last_error()[0] == 0) abort();
        return 0;
    }
    if (c.dim < 1 || c.hidden_dim < 1 || c.n_layers < 1 || c.n_heads < 1 || c.n_kv_heads < 1) abort();
    if (c.n_heads % c.n_kv_heads != 0 || c.head_dim < 2 || c.head_dim % 2 != 0) abort();
    if (c.vocab_size < 1 || c.max_seq_len < 1 || !(c.norm_eps > 0) || !(c.rope_theta > 0)) abort();
    if (c.bos_id < -1 || c.bos_id >= c.vocab_size) abort();
    if (c.n_eos < 0 || c.n_eos > MAX_EOS_IDS) abort();
    for (int i = 0; i < c.n_eos; i++)
        if (c.eos_ids[i] < 0 || c.eos_ids[i] >= c.vocab_size) abort();
    if (c.rope_kind == ROPE_LLAMA3 && !(c.rope_high_freq_factor > c.rope_low_freq_factor)) abort();
    return 0;
}
