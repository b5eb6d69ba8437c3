/*
 * mix.c - whole-file quant mixes (general.file_type) and the per-tensor type rules of
 * the standard K-quant mixes (shared formats.md, "Standard K-quant mixes"), used by
 * `parley quantize` and `parley fixture` so both write files laid out like the
 * community's.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parley/tensor.h"

static const pl_quant_mix mixes[] = {
    { "f32",    0,  PL_TYPE_F32,  PL_TYPE_F32,  PL_TYPE_F32,  PL_TYPE_F32 },
    { "f16",    1,  PL_TYPE_F16,  PL_TYPE_F16,  PL_TYPE_F16,  PL_TYPE_F16 },
    { "bf16",   32, PL_TYPE_BF16, PL_TYPE_BF16, PL_TYPE_BF16, PL_TYPE_BF16 },
    { "q8_0",   7,  PL_TYPE_Q8_0, PL_TYPE_Q8_0, PL_TYPE_Q8_0, PL_TYPE_Q8_0 },
    { "q4_0",   2,  PL_TYPE_Q4_0, PL_TYPE_Q6_K, PL_TYPE_Q4_0, PL_TYPE_Q4_0 },
    { "q4_1",   3,  PL_TYPE_Q4_1, PL_TYPE_Q6_K, PL_TYPE_Q4_1, PL_TYPE_Q4_1 },
    { "q5_0",   8,  PL_TYPE_Q5_0, PL_TYPE_Q6_K, PL_TYPE_Q5_0, PL_TYPE_Q5_0 },
    { "q5_1",   9,  PL_TYPE_Q5_1, PL_TYPE_Q6_K, PL_TYPE_Q5_1, PL_TYPE_Q5_1 },
    { "q6_k",   18, PL_TYPE_Q6_K, PL_TYPE_Q6_K, PL_TYPE_Q6_K, PL_TYPE_Q6_K },
    { "q4_k_m", 15, PL_TYPE_Q4_K, PL_TYPE_Q6_K, PL_TYPE_Q6_K, PL_TYPE_Q5_K },
    { "q5_k_m", 17, PL_TYPE_Q5_K, PL_TYPE_Q6_K, PL_TYPE_Q6_K, PL_TYPE_Q6_K },
};
#define N_MIXES (sizeof mixes / sizeof mixes[0])

size_t pl_quant_mix_count(void) { return N_MIXES; }

const pl_quant_mix *pl_quant_mix_at(size_t i) { return i < N_MIXES ? &mixes[i] : NULL; }

const pl_quant_mix *pl_quant_mix_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < N_MIXES; i++)
        if (strcasecmp(mixes[i].name, name) == 0) return &mixes[i];
    return NULL;
}

bool pl_quant_use_more_bits(int32_t i, int32_t n) {
    return i < n / 8 || i >= 7 * n / 8 || (i >= n / 8 && (i - n / 8) % 3 == 2);
}

pl_type pl_quant_fallback(pl_type t, int64_t row, bool is_output) {
    const pl_type_info *ti = pl_type_get(t);
    if (!ti || ti->block_size == 0 || row % ti->block_size == 0) return t;
    if (is_output) return PL_TYPE_Q8_0;
    switch (t) {
    case PL_TYPE_Q4_K: return PL_TYPE_Q5_0;
    case PL_TYPE_Q5_K: return PL_TYPE_Q5_1;
    default: return PL_TYPE_Q8_0;
    }
}

/* "blk.N.<suffix>": N, or -1 */
static int32_t layer_of(const char *name, const char **suffix) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    char *end;
    long v = strtol(name + 4, &end, 10);
    if (end == name + 4 || *end != '.' || v < 0 || v > 1000000) return -1;
    *suffix = end + 1;
    return (int32_t)v;
}

pl_type pl_quant_mix_type(const pl_quant_mix *m, const char *name, int n_dims, int64_t ne0, int32_t n_layer,
                          bool tied) {
    if (!m || !name || n_dims < 2) return PL_TYPE_F32; /* norms, biases, rope factors */
    bool is_output = strcmp(name, "output.weight") == 0 || (tied && strcmp(name, "token_embd.weight") == 0);
    if (is_output) return pl_quant_fallback(m->output, ne0, true);
    const char *suffix = NULL;
    int32_t layer = layer_of(name, &suffix);
    pl_type t = m->base;
    if (layer >= 0) {
        bool more = pl_quant_use_more_bits(layer, n_layer);
        if (strcmp(suffix, "attn_qkv.weight") == 0) t = m->qkv;
        else if (more && (strcmp(suffix, "attn_v.weight") == 0 || strcmp(suffix, "ffn_down.weight") == 0))
            t = m->more_bits;
    }
    return pl_quant_fallback(t, ne0, false);
}
