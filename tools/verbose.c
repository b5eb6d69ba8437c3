/*
 * verbose.c - the `--verbose` report of the model commands (see verbose.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "parley/profile.h"
#include "verbose.h"

#define BAR_WIDTH 30

void pl_cli_progress_init(pl_cli_progress *p, const char *cmd, bool verbose) {
    *p = (pl_cli_progress){ .cmd = cmd, .tty = isatty(STDERR_FILENO) != 0, .verbose = verbose, .last_pct = -1,
                            .last_phase = -1 };
}

void pl_cli_progress_end(pl_cli_progress *p) {
    if (p->drawn) fputs("\r\033[K", stderr);
    p->drawn = false;
}

static double mib(uint64_t b) { return (double)b / 1048576.0; }

bool pl_cli_load_progress(void *ud, pl_load_phase ph, uint64_t done, uint64_t total) {
    pl_cli_progress *p = ud;
    uint64_t now = pl_time_ns();
    if ((int)ph != p->last_phase) {
        p->last_phase = (int)ph;
        p->last_pct = -1;
        p->t_phase_ns = now;
    }
    if (ph == PL_LOAD_PHASE_MAP) return true; /* instant: nothing worth a bar */
    int pct = total ? (int)(done * 100 / total) : 100;
    if (p->tty) {
        if (pct == p->last_pct) return true;
        p->last_pct = pct;
        int fill = pct * BAR_WIDTH / 100;
        char bar[BAR_WIDTH + 1];
        for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
        bar[BAR_WIDTH] = 0;
        double s = (double)(now - p->t_phase_ns) / 1e9;
        if (ph == PL_LOAD_PHASE_TOUCH)
            fprintf(stderr, "\r\033[Kloading: %-7s [%s] %3d%% %.0f/%.0f MiB %.0f MiB/s", pl_load_phase_name(ph), bar,
                    pct, mib(done), mib(total), s > 0 ? mib(done) / s : 0.0);
        else
            fprintf(stderr, "\r\033[Kloading: %-7s [%s] %3d%%", pl_load_phase_name(ph), bar, pct);
        p->drawn = true;
        if (done == total && ph == PL_LOAD_PHASE_WARMUP) pl_cli_progress_end(p);
        fflush(stderr);
    } else if (p->verbose) {
        /* plain lines: the start, every quarter, the end */
        int q = pct / 25;
        if (p->last_pct >= 0 && q == p->last_pct / 25) return true;
        p->last_pct = pct;
        if (ph == PL_LOAD_PHASE_TOUCH)
            fprintf(stderr, "parley %s: loading: %s %d%% (%.0f of %.0f MiB)\n", p->cmd, pl_load_phase_name(ph), pct,
                    mib(done), mib(total));
        else
            fprintf(stderr, "parley %s: loading: %s %s\n", p->cmd, pl_load_phase_name(ph), done == total ? "done" : "...");
    }
    return true;
}

void pl_cli_print_load(const char *cmd, const pl_model_load_stats *ls) {
    fprintf(stderr, "parley %s: load %.0f ms: map %.1f ms", cmd, ls->total_ms, ls->ms[PL_LOAD_PHASE_MAP]);
    if (ls->touched)
        fprintf(stderr, " | touch %.1f ms (%s, %.0f MiB/s)", ls->ms[PL_LOAD_PHASE_TOUCH], ls->locked ? "mlock" : "read",
                ls->ms[PL_LOAD_PHASE_TOUCH] > 0 ? mib(ls->resident_bytes) / (ls->ms[PL_LOAD_PHASE_TOUCH] / 1e3) : 0.0);
    else
        fprintf(stderr, " | touch - (pages fault in on first use)");
    if (ls->ms[PL_LOAD_PHASE_WARMUP] > 0) fprintf(stderr, " | warm-up %.1f ms", ls->ms[PL_LOAD_PHASE_WARMUP]);
    else fprintf(stderr, " | warm-up -");
    fprintf(stderr, " | %" PRIu64 " major faults", ls->major_faults);
    if (ls->mem_available)
        fprintf(stderr, " | needs %.0f MiB of %.0f MiB available", mib(ls->resident_bytes), mib(ls->mem_available));
    fputc('\n', stderr);
}

pl_decode_perf pl_cli_perf_diff(const pl_decode_perf *a, const pl_decode_perf *b) {
    pl_decode_perf d;
    for (int i = 0; i < PL_PERF_PHASE_COUNT; i++) d.phase_ns[i] = a->phase_ns[i] - b->phase_ns[i];
    d.decode_ns = a->decode_ns - b->decode_ns;
    d.n_decode = a->n_decode - b->n_decode;
    d.n_tokens = a->n_tokens - b->n_tokens;
    return d;
}

static double pct_of(double part, double whole) { return whole > 0 ? 100.0 * part / whole : 0.0; }

void pl_cli_print_request(const char *cmd, const pl_cli_request *r) {
    fprintf(stderr, "parley %s: request:", cmd);
    if (r->tokenize_ms >= 0) fprintf(stderr, " %s %.2f ms |", r->tokenize_label, r->tokenize_ms);
    fprintf(stderr, " prefill %d tokens %.1f ms (%.1f tok/s) | ttft %.1f ms | decode %d tokens %.1f ms (%.2f tok/s)\n",
            r->prompt_tokens, r->prefill_ms, r->prefill_ms > 0 ? r->prompt_tokens / (r->prefill_ms / 1e3) : 0.0,
            r->ttft_ms, r->gen_tokens, r->gen_ms,
            r->gen_ms > 0 && r->gen_tokens > 1 ? (r->gen_tokens - 1) / (r->gen_ms / 1e3) : 0.0);
    const pl_decode_perf *d = &r->perf;
    double ph[PL_PERF_PHASE_COUNT], in_steps = 0;
    for (int i = 0; i < PL_PERF_PHASE_COUNT; i++) in_steps += ph[i] = (double)d->phase_ns[i] / 1e6;
    double decode = (double)d->decode_ns / 1e6, smp = r->sample_ms > 0 ? r->sample_ms : 0;
    double whole = decode + smp;
    fprintf(stderr, "parley %s: phases:", cmd);
    for (int i = 0; i < PL_PERF_PHASE_COUNT; i++)
        fprintf(stderr, "%s %s %.1f ms (%.0f%%)", i ? " |" : "", pl_perf_phase_name((pl_perf_phase)i), ph[i],
                pct_of(ph[i], whole));
    if (r->sample_ms >= 0) fprintf(stderr, " | %s %.1f ms (%.0f%%)", r->sample_label, smp, pct_of(smp, whole));
    fprintf(stderr, " | %" PRIu64 " decode calls, %" PRIu64 " tokens, %.1f ms in them (%.1f ms bookkeeping)\n",
            d->n_decode, d->n_tokens, decode, decode > in_steps ? decode - in_steps : 0.0);
}

void pl_cli_print_process(const char *cmd, uint64_t kv_bytes) {
    pl_proc_stats ps;
    if (pl_proc_stats_read(&ps) == PL_OK)
        fprintf(stderr,
                "parley %s: process: RSS %.1f MiB (peak %.1f MiB) | CPU %.2f s user + %.2f s sys | %d threads | "
                "KV cache %.1f MiB | page faults %" PRIu64 " major, %" PRIu64 " minor\n",
                cmd, mib(ps.rss_bytes), mib(ps.peak_rss_bytes), ps.cpu_user_s, ps.cpu_sys_s, ps.threads, mib(kv_bytes),
                ps.major_faults, ps.minor_faults);
    pl_ctx *ctx = NULL;
    pl_gpu *g = NULL;
    if (pl_ctx_init(&ctx, NULL) != PL_OK) return;
    pl_status st = pl_gpu_open(ctx, getenv("PARLEY_NVML_LIB"), &g);
    if (st != PL_OK) {
        fprintf(stderr, "parley %s: gpu: none (%s)\n", cmd, pl_ctx_last_error(ctx));
    } else {
        for (int i = 0; i < pl_gpu_count(g); i++) {
            pl_gpu_info gi;
            if (pl_gpu_read(g, i, &gi) != PL_OK) continue;
            fprintf(stderr, "parley %s: gpu %d: %s | util %d%% (memory %d%%) | memory %.0f of %.0f MiB | %d C\n", cmd, i,
                    gi.name, gi.util_gpu_pct, gi.util_mem_pct, mib(gi.mem_used), mib(gi.mem_total), gi.temp_c);
        }
        if (pl_gpu_count(g) == 0) fprintf(stderr, "parley %s: gpu: NVML reports no devices\n", cmd);
    }
    pl_gpu_free(g);
    pl_ctx_free(ctx);
}
