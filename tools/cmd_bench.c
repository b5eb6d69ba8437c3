/*
 * cmd_bench.c - `parley bench`: llama-bench-style throughput of a model file.
 *
 * For every combination of -m / -p / -n / -t values it loads the model once,
 * warms up (one short prompt, two decode steps), then runs -r repetitions of
 *   pp: one decode of P random tokens into an empty sequence (prompt processing);
 *   tg: N single-token decodes into an empty sequence (generation);
 * and reports tok/s as mean ± sample standard deviation over the repetitions.
 * TTFT is the mean pp time (the time to the first logits for a P-token prompt).
 * Random token ids: speed does not depend on the ids, and no tokenizer is needed.
 * --membw measures read bandwidth (threads summing a buffer far larger than the
 * caches) so the table can show tg as a percentage of the DRAM roofline
 * (file bytes x tg tok/s / bandwidth).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "parley/model.h"
#include "parley/tensor.h"

static const char usage_text[] =
    "usage: parley bench -m MODEL.gguf [-m ...] [options]\n"
    "\n"
    "Measure prompt processing (pp) and generation (tg) speed, llama-bench style:\n"
    "pp = one batch of P tokens, tg = N single-token steps, both from an empty\n"
    "context, each repeated R times (mean +- stddev).\n"
    "\n"
    "options (comma-separated lists or repeated options make a table):\n"
    "  -m, --model F      GGUF model file or store name (repeatable)\n"
    "  -p N[,N...]        prompt lengths (default 512; 0 skips pp)\n"
    "  -n N[,N...]        generated tokens (default 128; 0 skips tg)\n"
    "  -t N[,N...]        threads (default: physical cores)\n"
    "  -r N               repetitions (default 3)\n"
    "  --membw            measure DRAM read bandwidth and report tg roofline %\n"
    "  --json             one JSON object per result line\n"
    "  --md               markdown table (default)\n"
    "  -h, --help         this text\n";

#define MAX_LIST 16

typedef struct bench_list {
    int64_t v[MAX_LIST];
    int     n;
} bench_list;

/* "1,2,3" appended to l; false on a bad value or too many. */
static bool parse_list(const char *s, int64_t lo, int64_t hi, bench_list *l) {
    char buf[256];
    if (strlen(s) >= sizeof buf) return false;
    strcpy(buf, s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (l->n >= MAX_LIST || !pl_cli_parse_i64(tok, lo, hi, &l->v[l->n])) return false;
        l->n++;
    }
    return true;
}

static void mean_sd(const double *x, int n, double *mean, double *sd) {
    double s = 0.0, ss = 0.0;
    for (int i = 0; i < n; i++) s += x[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) ss += (x[i] - *mean) * (x[i] - *mean);
    *sd = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
}

/* ---- DRAM read bandwidth ---- */

typedef struct membw_job {
    const uint64_t *buf;
    int64_t         n; /* u64 words */
    uint64_t        sink[16 * 8];
} membw_job;

static void membw_range(void *ud, int64_t begin, int64_t end, int ith) {
    membw_job *j = ud;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (int64_t i = begin * 8; i < end * 8; i += 8) {
        a0 += j->buf[i] ^ j->buf[i + 4];
        a1 += j->buf[i + 1] ^ j->buf[i + 5];
        a2 += j->buf[i + 2] ^ j->buf[i + 6];
        a3 += j->buf[i + 3] ^ j->buf[i + 7];
    }
    j->sink[(ith & 15) * 8] += a0 + a1 + a2 + a3;
}

/* Best of 5 passes over 1 GiB with the pool's threads: bytes/s, or 0 on failure. */
static double measure_membw(pl_cli *cli, int n_threads) {
    const int64_t bytes = 1ll << 30;
    uint64_t *buf = malloc((size_t)bytes);
    pl_pool *pool = NULL;
    double best = 0.0;
    if (!buf || pl_pool_init(cli->ctx, n_threads, &pool) != PL_OK) goto done;
    for (int64_t i = 0; i < bytes / 8; i++) buf[i] = (uint64_t)i * 0x9E3779B97F4A7C15ull;
    membw_job j = { .buf = buf, .n = bytes / 8 };
    for (int rep = 0; rep < 5; rep++) {
        uint64_t t0 = pl_time_ns();
        pl_pool_for(pool, j.n / 8, 4096, membw_range, &j);
        double s = (double)(pl_time_ns() - t0) / 1e9;
        if (s > 0 && (double)bytes / s > best) best = (double)bytes / s;
    }
done:
    pl_pool_free(pool);
    free(buf);
    return best;
}

/* ---- one model ---- */

typedef struct bench_result {
    double pp_mean, pp_sd, tg_mean, tg_sd, ttft_ms;
    /* share of the forward time by engine phase (pl_context_perf), percent */
    double pp_pct[PL_PERF_PHASE_COUNT], tg_pct[PL_PERF_PHASE_COUNT];
} bench_result;

/* The phase counters since the last reset as percentages of their sum. */
static void phase_pct(const pl_context *lc, double *pct) {
    pl_decode_perf p;
    pl_context_perf(lc, &p);
    uint64_t sum = 0;
    for (int i = 0; i < PL_PERF_PHASE_COUNT; i++) sum += p.phase_ns[i];
    for (int i = 0; i < PL_PERF_PHASE_COUNT; i++) pct[i] = sum ? 100.0 * (double)p.phase_ns[i] / (double)sum : 0.0;
}

static uint32_t lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* Decode n tokens as one batch (pp) or one at a time (tg) into an empty sequence. */
static pl_status run_once(pl_context *lc, int32_t *ids, int32_t n, bool batch, int32_t n_vocab, uint32_t *seed,
                          double *seconds) {
    for (int32_t i = 0; i < n; i++) ids[i] = (int32_t)(lcg(seed) % (uint32_t)n_vocab);
    pl_context_kv_clear(lc);
    uint64_t t0 = pl_time_ns();
    pl_status st = PL_OK;
    if (batch) {
        pl_batch b = { .n_tokens = n, .tokens = ids };
        st = pl_context_decode(lc, &b);
    } else {
        for (int32_t i = 0; i < n && st == PL_OK; i++) {
            pl_batch b = { .n_tokens = 1, .tokens = ids + i };
            st = pl_context_decode(lc, &b);
        }
    }
    *seconds = (double)(pl_time_ns() - t0) / 1e9;
    return st;
}

static int bench_one(pl_cli *cli, pl_context *lc, int32_t n_vocab, int64_t pp, int64_t tg, int reps,
                     bench_result *r) {
    int32_t n_max = (int32_t)(pp > tg ? pp : tg);
    if (n_max < 4) n_max = 4;
    int32_t *ids = malloc((size_t)n_max * sizeof *ids);
    double *t = malloc((size_t)reps * sizeof *t);
    uint32_t seed = 12345;
    double s;
    int rc = 1;
    if (!ids || !t) {
        pl_cli_fail(cli, "out of memory");
        goto done;
    }
    /* warm-up: page in the weights, spin up the workers */
    if (run_once(lc, ids, pp > 0 ? (int32_t)(pp < 32 ? pp : 32) : 4, true, n_vocab, &seed, &s) != PL_OK ||
        run_once(lc, ids, 2, false, n_vocab, &seed, &s) != PL_OK) {
        pl_cli_fail(cli, "warm-up decode: %s", pl_context_last_error(lc));
        goto done;
    }
    *r = (bench_result){ 0 };
    if (pp > 0) {
        pl_context_perf_reset(lc);
        for (int i = 0; i < reps; i++) {
            if (run_once(lc, ids, (int32_t)pp, true, n_vocab, &seed, &s) != PL_OK) {
                pl_cli_fail(cli, "pp decode: %s", pl_context_last_error(lc));
                goto done;
            }
            r->ttft_ms += s * 1e3 / reps;
            t[i] = (double)pp / s;
        }
        mean_sd(t, reps, &r->pp_mean, &r->pp_sd);
        phase_pct(lc, r->pp_pct);
    }
    if (tg > 0) {
        pl_context_perf_reset(lc);
        for (int i = 0; i < reps; i++) {
            if (run_once(lc, ids, (int32_t)tg, false, n_vocab, &seed, &s) != PL_OK) {
                pl_cli_fail(cli, "tg decode: %s", pl_context_last_error(lc));
                goto done;
            }
            t[i] = (double)tg / s;
        }
        mean_sd(t, reps, &r->tg_mean, &r->tg_sd);
        phase_pct(lc, r->tg_pct);
    }
    rc = 0;
done:
    free(ids);
    free(t);
    return rc;
}

static double peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0.0;
    return (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
}

int cmd_bench(pl_cli *cli, int argc, char **argv) {
    const char *models[MAX_LIST];
    int n_models = 0;
    bench_list pps = { 0 }, tgs = { 0 }, ths = { 0 };
    int64_t reps = 3;
    bool json = false, membw = false;
    const char *v;
    if (pl_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-m") == 0 || pl_cli_is_opt(a, "--model")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (n_models >= MAX_LIST) return pl_cli_usage_error(cli, "too many -m");
            models[n_models++] = v;
        } else if (strcmp(a, "-p") == 0 || pl_cli_is_opt(a, "--n-prompt")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!parse_list(v, 0, 1 << 16, &pps)) return pl_cli_usage_error(cli, "bad -p '%s'", v);
        } else if (strcmp(a, "-n") == 0 || pl_cli_is_opt(a, "--n-gen")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!parse_list(v, 0, 1 << 16, &tgs)) return pl_cli_usage_error(cli, "bad -n '%s'", v);
        } else if (strcmp(a, "-t") == 0 || pl_cli_is_opt(a, "--threads")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!parse_list(v, 1, 1024, &ths)) return pl_cli_usage_error(cli, "bad -t '%s'", v);
        } else if (strcmp(a, "-r") == 0 || pl_cli_is_opt(a, "--repetitions")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, 1, 1000, &reps)) return pl_cli_usage_error(cli, "bad -r '%s'", v);
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--md") == 0) {
            json = false;
        } else if (strcmp(a, "--membw") == 0) {
            membw = true;
        } else {
            return pl_cli_usage_error(cli, "unexpected argument '%s'", a);
        }
    }
    if (n_models == 0 && !membw) return pl_cli_usage_error(cli, "missing -m MODEL.gguf");
    if (pps.n == 0) pps.v[pps.n++] = 512;
    if (tgs.n == 0) tgs.v[tgs.n++] = 128;
    if (ths.n == 0) ths.v[ths.n++] = pl_cpu_detect()->n_physical;

    const char *level = pl_cpu_level_name(pl_cpu_best_level());
    double bw = 0.0;
    if (membw) {
        bw = measure_membw(cli, (int)ths.v[0]);
        if (json) printf("{\"membw_gbs\": %.2f, \"threads\": %" PRId64 "}\n", bw / 1e9, ths.v[0]);
        else printf("read bandwidth: %.2f GB/s (%" PRId64 " threads)\n\n", bw / 1e9, ths.v[0]);
        fflush(stdout);
    }
    if (!json && n_models > 0) {
        printf("| model | type | MiB | threads | cpu | test | tok/s | TTFT ms | load ms | RSS MiB | matmul/attn/other %% |%s\n"
               "|---|---|--:|--:|---|---|--:|--:|--:|--:|--:|%s\n",
               membw ? " roofline |" : "", membw ? "--:|" : "");
    }
    int rc = 0;
    for (int mi_ = 0; mi_ < n_models && rc == 0; mi_++) {
        char *path = pl_cli_model_path(cli, models[mi_]);
        if (!path) return 1;
        for (int ti = 0; ti < ths.n && rc == 0; ti++) {
            pl_model *model = NULL;
            pl_context *lc = NULL;
            uint64_t t0 = pl_time_ns();
            pl_model_params mp = pl_model_default_params();
            mp.prefault = true;
            if (pl_model_load(cli->ctx, path, &mp, &model) != PL_OK) {
                rc = pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
                break;
            }
            double load_ms = (double)(pl_time_ns() - t0) / 1e6;
            const pl_model_info *mi = pl_model_get_info(model);
            int64_t p_max = 0, n_max = 0;
            for (int i = 0; i < pps.n; i++) p_max = pps.v[i] > p_max ? pps.v[i] : p_max;
            for (int i = 0; i < tgs.n; i++) n_max = tgs.v[i] > n_max ? tgs.v[i] : n_max;
            pl_context_params cp = pl_context_default_params();
            cp.n_ctx = (int32_t)((p_max > n_max ? p_max : n_max) + 8);
            cp.n_batch = (int32_t)(p_max > 32 ? p_max : 32);
            cp.n_threads = (int)ths.v[ti];
            if (pl_context_init(model, &cp, &lc) != PL_OK) {
                rc = pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
                pl_model_free(model);
                break;
            }
            const char *ftype = pl_ftype_name(mi->file_type);
            double mib = (double)mi->file_bytes / 1048576.0;
            const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
            for (int pi = 0; pi < pps.n && rc == 0; pi++) {
                for (int ni = 0; ni < tgs.n && rc == 0; ni++) {
                    /* a pp value is measured once per (pp) and a tg once per (tg): the
                     * table lists pp rows for the first tg only and vice versa */
                    int64_t pp = ni == 0 ? pps.v[pi] : 0, tg = pi == 0 ? tgs.v[ni] : 0;
                    if (pp == 0 && tg == 0) continue;
                    bench_result r;
                    if (bench_one(cli, lc, mi->n_vocab, pp, tg, (int)reps, &r) != 0) {
                        rc = 1;
                        break;
                    }
                    double rss = peak_rss_mib();
                    double roof = bw > 0 ? 100.0 * (double)mi->file_bytes * r.tg_mean / bw : 0.0;
                    if (json) {
                        printf("{\"model\": \"%s\", \"arch\": \"%s\", \"type\": \"%s\", \"file_bytes\": %" PRIu64
                               ", \"threads\": %" PRId64 ", \"cpu\": \"%s\", \"reps\": %" PRId64
                               ", \"n_prompt\": %" PRId64 ", \"n_gen\": %" PRId64
                               ", \"pp_tps\": %.3f, \"pp_sd\": %.3f, \"tg_tps\": %.3f, \"tg_sd\": %.3f"
                               ", \"ttft_ms\": %.2f, \"load_ms\": %.1f, \"peak_rss_mib\": %.1f",
                               base, mi->arch, ftype ? ftype : "?", mi->file_bytes, ths.v[ti], level, reps, pp,
                               tg, r.pp_mean, r.pp_sd, r.tg_mean, r.tg_sd, r.ttft_ms, load_ms, rss);
                        if (bw > 0) printf(", \"roofline_pct\": %.1f", roof);
                        const double *pc = pp > 0 ? r.pp_pct : r.tg_pct;
                        printf(", \"phase_pct\": {\"matmul\": %.1f, \"attention\": %.1f, \"other\": %.1f}", pc[0],
                               pc[1], pc[2]);
                        printf("}\n");
                    } else {
                        if (pp > 0)
                            printf("| %s | %s | %.1f | %" PRId64 " | %s | pp%" PRId64 " | %.2f ± %.2f | %.1f | %.0f | %.0f | %.0f/%.0f/%.0f |%s\n",
                                   base, ftype ? ftype : "?", mib, ths.v[ti], level, pp, r.pp_mean, r.pp_sd,
                                   r.ttft_ms, load_ms, rss, r.pp_pct[0], r.pp_pct[1], r.pp_pct[2], membw ? " |" : "");
                        if (tg > 0) {
                            printf("| %s | %s | %.1f | %" PRId64 " | %s | tg%" PRId64 " | %.2f ± %.2f | | %.0f | %.0f | %.0f/%.0f/%.0f |",
                                   base, ftype ? ftype : "?", mib, ths.v[ti], level, tg, r.tg_mean, r.tg_sd,
                                   load_ms, rss, r.tg_pct[0], r.tg_pct[1], r.tg_pct[2]);
                            if (membw) printf(" %.1f%% |", roof);
                            printf("\n");
                        }
                    }
                    fflush(stdout);
                }
            }
            pl_context_free(lc);
            pl_model_free(model);
        }
        pl_free(cli->ctx, path);
    }
    return rc;
}
