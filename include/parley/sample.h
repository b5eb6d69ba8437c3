/*
 * parley/sample.h - token samplers: a fixed chain of table-driven steps over
 * one row of logits, ending in a greedy pick or a seeded random draw.
 *
 * The chain, in order (each step is skipped when its parameter disables it):
 *
 *   penalties    repetition / frequency / presence over the last N accepted
 *                tokens (repetition: a positive logit is divided by the
 *                penalty, a negative one multiplied; frequency: minus
 *                count * f; presence: minus p once if the token occurred)
 *   logit_bias   add a per-token bias; -INFINITY bans a token
 *   top_k        keep the k highest logits
 *   typical_p    locally typical sampling: keep the tokens whose surprisal is
 *                closest to the entropy until their mass reaches typical_p
 *   top_p        keep the smallest set of highest tokens whose mass >= top_p
 *   min_p        keep tokens with p >= min_p * p_max
 *   temperature  divide the remaining logits by T
 *   draw         softmax of what is left and one draw from the sampler's own
 *                PRNG (xoshiro256** seeded by splitmix64), or greedy (argmax)
 *
 * Probabilities used by typical_p / top_p / min_p are the softmax at T = 1 of
 * the candidates still in the chain; temperature only shapes the final draw.
 * temperature <= 0 means greedy: the argmax after penalties and bias (the
 * filters cannot change it), with no softmax at all. Ties go to the lowest id.
 *
 * The order is llama.cpp's (typical_p before top_p); it matters only when
 * typical_p is combined with top_p or min_p.
 *
 * Cost: no allocation per token. Buffers for n_vocab candidates are made by
 * pl_sampler_init(). Each token costs one copy of the logits, O(N log N)
 * penalty patches over the window, and then: greedy, a vectorized max scan;
 * top_k, a heap selection straight from the logits (O(n_vocab) compares plus
 * O(k log k)); min_p first, a threshold scan; top_p / typical_p, a softmax
 * and a quickselect on probability mass (expected O(n), no sort). The
 * candidate set is never sorted. Measured on 151,936 logits (one EPYC core,
 * gcc -O2): greedy ~55 us, the defaults (top_k 40) ~70 us, speed preset
 * ~65 us, top_p alone ~3.5 ms (a softmax over the whole vocabulary).
 *
 * Reproducibility: for a fixed seed and the same logits the same token comes
 * out on every platform whose libm gives the same expf/logf (the PRNG itself
 * is integer-only and portable).
 *
 * Ownership: the sampler is owned by the caller (pl_sampler_free). Params are
 * copied at init and by pl_sampler_set_params (logit_bias included), so the
 * caller's arrays may go away.
 * Thread-safety: a sampler is single-thread state (one per session);
 * distinct samplers may run in parallel. pl_sampler_default_params,
 * pl_sampler_speed_params, pl_sampler_params_check (on distinct ctxs) and
 * pl_rng_* on distinct states are thread-safe.
 */
#ifndef PARLEY_SAMPLE_H
#define PARLEY_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the PRNG: xoshiro256**, seeded through splitmix64 ----
 * Small, fast, statistically strong and bit-identical everywhere. */
typedef struct pl_rng {
    uint64_t s[4];
} pl_rng;

void pl_rng_seed(pl_rng *r, uint64_t seed);
uint64_t pl_rng_next(pl_rng *r);
/* Uniform double in [0, 1) with 53 random bits. */
double pl_rng_uniform(pl_rng *r);

/* ---- the chain's steps, in order (the table rows in src/sample/) ---- */
typedef enum pl_sampler_step {
    PL_SAMPLER_STEP_PENALTIES = 0,
    PL_SAMPLER_STEP_LOGIT_BIAS,
    PL_SAMPLER_STEP_TOP_K,
    PL_SAMPLER_STEP_TYPICAL_P,
    PL_SAMPLER_STEP_TOP_P,
    PL_SAMPLER_STEP_MIN_P,
    PL_SAMPLER_STEP_TEMPERATURE,
    PL_SAMPLER_STEP_COUNT
} pl_sampler_step;

/* Step name ("top_k", ...); "unknown" outside the enum. */
const char *pl_sampler_step_name(pl_sampler_step step);

typedef struct pl_logit_bias {
    int32_t token;
    float   bias; /* finite, or -INFINITY to ban the token */
} pl_logit_bias;

/* Longest penalty window accepted (tokens). */
#define PL_SAMPLER_MAX_LAST_N 65536
/* Seed value meaning "pick one from the clock" (not reproducible). */
#define PL_SAMPLER_SEED_RANDOM UINT64_MAX

typedef struct pl_sampler_params {
    float    temperature;       /* <= 0: greedy. Default 0.8 */
    int32_t  top_k;             /* <= 0 or >= n_vocab: off. Default 40 */
    float    top_p;             /* >= 1: off. Default 0.95 */
    float    min_p;             /* <= 0: off. Default 0.05 */
    float    typical_p;         /* >= 1: off. Default 1 (off) */
    int32_t  penalty_last_n;    /* window of accepted tokens; 0: penalties off. Default 64 */
    float    repeat_penalty;    /* 1: off. Default 1 (off), > 0 */
    float    frequency_penalty; /* 0: off. Default 0 */
    float    presence_penalty;  /* 0: off. Default 0 */
    const pl_logit_bias *logit_bias; /* copied at init; may be NULL */
    size_t   n_logit_bias;
    uint64_t seed;              /* PL_SAMPLER_SEED_RANDOM: from the clock */
    /* Not used by the sampler: the generation loop's token limit, carried here
     * so a preset is one struct. 0: no limit but the context. */
    int32_t  max_tokens;
} pl_sampler_params;

/* The defaults above. */
pl_sampler_params pl_sampler_default_params(void);
/* Speed mode: the shortest path to a plausible next token and a short answer.
 * top_k 20 at temperature 0.7 (heap selection of 20, a softmax over 20), no
 * penalties, no typical/top-p, min_p 0.05, max_tokens 256. Set temperature 0
 * on the result for pure greedy. */
pl_sampler_params pl_sampler_speed_params(void);

typedef struct pl_sampler pl_sampler;

/* Make a sampler for rows of n_vocab logits. Errors (PL_ERR_INVALID_ARG,
 * PL_ERR_RANGE for out-of-range params or bias tokens, PL_ERR_NOMEM) leave
 * the reason in pl_ctx_last_error(ctx). params NULL: defaults. */
pl_status pl_sampler_init(pl_ctx *ctx, const pl_sampler_params *params, int32_t n_vocab,
                          pl_sampler **out);
void pl_sampler_free(pl_sampler *s);

/* The checks pl_sampler_init makes on params for n_vocab tokens, without
 * making a sampler (a server validates a request's params on its own thread,
 * then hands them to a sampler kept for the slot). Reason in
 * pl_ctx_last_error(ctx). */
pl_status pl_sampler_params_check(pl_ctx *ctx, const pl_sampler_params *params, int32_t n_vocab);

/* Give s new params and reset it, as pl_sampler_free + pl_sampler_init on
 * the same ctx and n_vocab would (the same tokens from the same logits), but
 * keeping its n_vocab-sized arrays: n_vocab x 20 bytes (2.9 MiB at a 152k
 * vocabulary) made once per sampler instead of once per request. Allocates
 * only when the penalty window or the bias list is longer than any before.
 * Errors as pl_sampler_init's, reason in the sampler's ctx; on error s is
 * unchanged. Same thread rules as pl_sampler_sample. */
pl_status pl_sampler_set_params(pl_sampler *s, const pl_sampler_params *params);

/* Sample one token from logits[n_vocab] (read only; NaN counts as -inf).
 * Returns the token id (>= 0), or a negative pl_status: PL_ERR_INVALID_ARG
 * for NULL arguments, PL_ERR_RANGE when every logit is -inf or NaN after
 * bias and penalties. Does not add the token to the penalty history: call
 * pl_sampler_accept() with the token the caller keeps. */
int32_t pl_sampler_sample(pl_sampler *s, const float *logits);

/* Add a token to the penalty history (a ring of penalty_last_n tokens).
 * Prompt tokens may be accepted too. PL_ERR_RANGE for ids outside the vocab. */
pl_status pl_sampler_accept(pl_sampler *s, int32_t token);

/* Forget the history and restart the PRNG from the seed. */
void pl_sampler_reset(pl_sampler *s);

/* The params in effect (seed resolved when it was PL_SAMPLER_SEED_RANDOM). */
const pl_sampler_params *pl_sampler_params_get(const pl_sampler *s);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_SAMPLE_H */
