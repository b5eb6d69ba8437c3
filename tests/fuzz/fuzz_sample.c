/*
 * fuzz_sample.c - libFuzzer target for the sampler chain.
 *
 * Input: 12 parameter bytes (temperature, top_k, top_p, min_p, typical_p,
 * penalty window, repetition/frequency/presence penalties, vocab size, seed,
 * history length), then raw float32 logits (NaN and infinities included),
 * repeated to fill the vocab. Invariants (abort on violation):
 *  - the result is a token in range, or PL_ERR_RANGE exactly when no logit
 *    is a real number above -inf;
 *  - greedy with penalties off returns the first maximal logit;
 *  - the surviving candidates are distinct ids in range.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample/sample_int.h"

#define FUZZ_NAME "fuzz_sample"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 16) return 0;
    pl_sampler_params p = pl_sampler_default_params();
    p.temperature = (float)data[0] / 100.0f - 0.2f;
    p.top_k = data[1] % 64;
    p.top_p = (float)data[2] / 200.0f;
    p.min_p = (float)data[3] / 300.0f;
    p.typical_p = data[4] < 128 ? 1.0f : (float)(data[4] - 128) / 120.0f;
    p.penalty_last_n = data[5] % 32;
    p.repeat_penalty = 1.0f + (float)data[6] / 100.0f;
    p.frequency_penalty = (float)data[7] / 100.0f - 1.0f;
    p.presence_penalty = (float)(data[8] & 0x7f) / 50.0f;
    int32_t nv = 1 + data[9] * 4;
    p.seed = data[10];
    size_t hist = data[11] % 40;
    const uint8_t *raw = data + 12;
    size_t nraw = (size - 12) / 4;
    if (nraw == 0) return 0;
    float *l = malloc((size_t)nv * sizeof *l);
    int32_t *ids = malloc((size_t)nv * sizeof *ids);
    float *vals = malloc((size_t)nv * sizeof *vals);
    CHECK(l && ids && vals);
    bool any = false;
    int32_t first_max = -1;
    for (int32_t i = 0; i < nv; i++) {
        memcpy(&l[i], raw + 4 * ((size_t)i % nraw), 4);
        if (l[i] > -INFINITY) {
            any = true;
            if (first_max < 0 || l[i] > l[first_max]) first_max = i;
        }
    }
    pl_ctx *ctx;
    CHECK(pl_ctx_init(&ctx, NULL) == PL_OK);
    pl_sampler *s;
    CHECK(pl_sampler_init(ctx, &p, nv, &s) == PL_OK);
    for (size_t i = 0; i < hist; i++) CHECK(pl_sampler_accept(s, (int32_t)(raw[i % (nraw * 4)] % nv)) == PL_OK);
    int32_t t = pl_sampler_sample(s, l);
    if (any) CHECK(t >= 0 && t < nv);
    else CHECK(t == PL_ERR_RANGE);
    bool penalties = p.penalty_last_n > 0 && hist > 0;
    if (p.temperature <= 0 && !penalties && any) CHECK(t == first_max);
    size_t n = pl_sampler_debug_candidates(s, l, ids, vals, (size_t)nv);
    CHECK(n <= (size_t)nv);
    for (size_t i = 0; i < n; i++) {
        CHECK(ids[i] >= 0 && ids[i] < nv);
        if (i) CHECK(ids[i] > ids[i - 1]);
        CHECK(!isnan(vals[i]));
    }
    pl_sampler_free(s);
    pl_ctx_free(ctx);
    free(l);
    free(ids);
    free(vals);
    return 0;
}
