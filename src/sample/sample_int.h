/* sample_int.h - sampler internals shared with the tests. */
#ifndef PL_SAMPLE_INT_H
#define PL_SAMPLE_INT_H

#include "parley/sample.h"

/* Run the chain on logits without the draw (temperature <= 0 is not special
 * here: the filters and temperature run as for sampling) and copy the
 * surviving candidates, ordered by id, into ids/vals (their logits after every
 * step, temperature included), at most cap of them. Returns how many survived
 * (0 when none did). Changes the candidate order: not for the hot path. */
size_t pl_sampler_debug_candidates(pl_sampler *s, const float *logits, int32_t *ids, float *vals,
                                   size_t cap);

#endif
