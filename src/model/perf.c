/*
 * perf.c - pl_context's profiling counters (filled by forward.c's laps and
 * pl_context_decode; see parley/model.h for what each counts and costs).
 */
#include <string.h>

#include "model_int.h"

static const char *const phase_names[PL_PERF_PHASE_COUNT] = {
    [PL_PERF_PHASE_MATMUL] = "matmul",
    [PL_PERF_PHASE_ATTENTION] = "attention",
    [PL_PERF_PHASE_OTHER] = "other",
};

const char *pl_perf_phase_name(pl_perf_phase ph) {
    return (unsigned)ph < PL_PERF_PHASE_COUNT ? phase_names[ph] : "unknown";
}

void pl_context_perf(const pl_context *c, pl_decode_perf *out) {
    if (!out) return;
    if (!c) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = c->perf;
}

void pl_context_perf_reset(pl_context *c) {
    if (c) memset(&c->perf, 0, sizeof c->perf);
}
