/*
 * verbose.h - what `--verbose` prints for the model commands (chat, generate):
 * the load progress bar, load time in parts, per-request profile, process and
 * GPU figures. Everything goes to stderr. tools/ only.
 */
#ifndef PL_TOOLS_VERBOSE_H
#define PL_TOOLS_VERBOSE_H

#include <stdbool.h>
#include <stdint.h>

#include "parley/model.h"

/* Load progress: a bar redrawn in place on a terminal (only while a phase that
 * takes time runs: touch, warm-up); plain lines ("loading: touch 50% ...") when
 * stderr is not a terminal and verbose is set; nothing otherwise. */
typedef struct pl_cli_progress {
    const char *cmd;
    bool        tty, verbose, drawn;
    int         last_pct;
    int         last_phase;
    uint64_t    t_phase_ns;
} pl_cli_progress;

void pl_cli_progress_init(pl_cli_progress *p, const char *cmd, bool verbose);
/* A pl_load_progress_fn: ud is a pl_cli_progress. */
bool pl_cli_load_progress(void *ud, pl_load_phase ph, uint64_t done, uint64_t total);
/* Clear a bar left on the terminal (after a failed load). */
void pl_cli_progress_end(pl_cli_progress *p);

/* "CMD: load 812 ms: map 3 ms | touch 700 ms (mlock) | warm-up 109 ms | 0 major faults" */
void pl_cli_print_load(const char *cmd, const pl_model_load_stats *ls);

/* One request's figures. Times in ms; tokenize_ms < 0: not measured. */
typedef struct pl_cli_request {
    double  tokenize_ms;  /* < 0: unknown */
    const char *tokenize_label; /* "tokenize" or e.g. "template+tokenize" */
    int32_t prompt_tokens;
    double  prefill_ms;   /* the prompt's decode */
    double  ttft_ms;
    int32_t gen_tokens;   /* sampled tokens; decode steps are gen_tokens - 1 */
    double  gen_ms;       /* first sampled token to the last */
    double  sample_ms;    /* < 0: unknown */
    const char *sample_label; /* "sampling" or e.g. "sampling+text" */
    pl_decode_perf perf;  /* the context's counters over this request */
} pl_cli_request;

/* a - b, counter by counter */
pl_decode_perf pl_cli_perf_diff(const pl_decode_perf *a, const pl_decode_perf *b);
void pl_cli_print_request(const char *cmd, const pl_cli_request *r);
/* RSS and peak, CPU time, threads, KV bytes; then one line per NVIDIA GPU (none
 * when NVML is absent; verbose says so). */
void pl_cli_print_process(const char *cmd, uint64_t kv_bytes);

#endif
