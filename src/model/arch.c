/*
 * arch.c - the architecture table and RoPE frequency setup.
 *
 * An architecture is a row of options over one forward pass (forward.c). Adding a
 * llama-like family is a row here plus, if it has new tensors, their checks in
 * loader.c.
 */
#include <math.h>
#include <string.h>

#include "model_int.h"

static const pl_arch_info arch_table[PL_ARCH_COUNT] = {
    /* Llama 2/3.x, SmolLM2, TinyLlama, Mistral: converters permute Q/K for adjacent-pair RoPE */
    [PL_ARCH_LLAMA] = { .name = "llama" },
    [PL_ARCH_QWEN2] = { .name = "qwen2", .has_qkv_bias = true, .rope_neox = true },
    [PL_ARCH_QWEN3] = { .name = "qwen3", .has_qk_norm = true, .rope_neox = true },
    [PL_ARCH_PHI3]  = { .name = "phi3", .fused_qkv = true, .fused_gate_up = true, .rope_neox = true },
};

const pl_arch_info *pl_arch_get(pl_arch a) {
    return (unsigned)a < PL_ARCH_COUNT ? &arch_table[a] : NULL;
}

const pl_arch_info *pl_arch_find(const char *s, size_t len) {
    for (int a = 0; a < PL_ARCH_COUNT; a++)
        if (strlen(arch_table[a].name) == len && memcmp(arch_table[a].name, s, len) == 0) return &arch_table[a];
    return NULL;
}

/* YaRN: the pair index at which the rotation count over the original context equals
 * `beta` turns (n_rot * ln(orig / (beta 2 pi)) / (2 ln base)). */
static double yarn_corr_dim(int n_rot, int orig_ctx, double beta, double base) {
    return (double)n_rot * log((double)orig_ctx / (beta * 2.0 * M_PI)) / (2.0 * log(base));
}

void pl_rope_init(const pl_model *m, int32_t n_ctx, pl_rope *r) {
    const pl_model_info *mi = &m->info;
    int n_rot = mi->n_rot;
    r->n_rot = n_rot;
    r->neox = m->arch->rope_neox;
    r->mscale = m->rope_attn_factor;
    const float *factors = m->rope_factors;
    if (m->rope_factors_long && m->rope_orig_ctx > 0 && n_ctx > m->rope_orig_ctx) factors = m->rope_factors_long;
    double fs = m->rope_freq_scale;
    double lo = 0, hi = 0;
    if (m->rope_yarn) {
        int orig = m->rope_orig_ctx > 0 ? m->rope_orig_ctx : mi->n_ctx_train;
        lo = floor(yarn_corr_dim(n_rot, orig, m->yarn_beta_fast, mi->rope_base));
        hi = ceil(yarn_corr_dim(n_rot, orig, m->yarn_beta_slow, mi->rope_base));
        if (lo < 0) lo = 0;
        if (hi > n_rot - 1) hi = n_rot - 1;
        /* attention temperature sqrt(1/t) = 1 + 0.1 ln(s), applied to both q and k */
        r->mscale *= (float)(1.0 + 0.1 * log(1.0 / fs));
    }
    for (int i = 0; i < n_rot / 2; i++) {
        /* theta_i = pos * base^(-2i/n_rot), divided by the file's frequency factor */
        double f = pow((double)mi->rope_base, -2.0 * i / (double)n_rot);
        if (factors) f /= (double)factors[i];
        if (m->rope_yarn) {
            /* high-frequency pairs (below lo) keep their frequency, low ones (above hi)
             * are interpolated by the scale, linear ramp between */
            double y = ((double)i - lo) / fmax(0.001, hi - lo);
            double mix = 1.0 - fmin(1.0, fmax(0.0, y));
            f = f * fs * (1.0 - mix) + f * mix;
        } else {
            f *= fs; /* linear scaling (fs = 1 without scaling) */
        }
        r->freq[i] = f;
    }
}
