/*
 * metrics.c - counters and histograms for GET /metrics, written in the
 * Prometheus text exposition format (version 0.0.4). The caller holds the
 * server lock while it updates or formats them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/server_int.h"

/* Time to first token: 10 ms .. 30 s. */
static const double ttft_bounds[] = { 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
/* Inter-token latency: 1 ms .. 2.5 s. */
static const double itl_bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5 };

static const int status_codes[PL_SRV_STATUS_CODES] = { 200, 204, 400, 401, 403, 404, 405, 408, 413, 500, 503, 504 };

void pl_srv_metrics_init(pl_srv_metrics *m) {
    memset(m, 0, sizeof *m);
    m->ttft.bounds = ttft_bounds;
    m->ttft.n = (int)(sizeof ttft_bounds / sizeof ttft_bounds[0]);
    m->itl.bounds = itl_bounds;
    m->itl.n = (int)(sizeof itl_bounds / sizeof itl_bounds[0]);
}

void pl_srv_hist_add(pl_srv_hist *h, double seconds) {
    int i = 0;
    while (i < h->n && seconds > h->bounds[i]) i++;
    h->counts[i]++;
    h->sum += seconds;
    h->count++;
}

void pl_srv_metrics_count_status(pl_srv_metrics *m, int status) {
    for (int i = 0; i < PL_SRV_STATUS_CODES; i++)
        if (status_codes[i] == status) {
            m->by_status[i]++;
            return;
        }
    m->by_status[PL_SRV_STATUS_CODES]++;
}

/* An open_memstream-like growable string on the C heap. */
typedef struct mtext {
    char  *data;
    size_t len, cap;
    bool   oom;
} mtext;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void mt_printf(mtext *t, const char *fmt, ...) {
    if (t->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->data ? t->data + t->len : NULL, t->data ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = true;
            return;
        }
        if (t->data && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap < t->len + (size_t)n + 1) cap *= 2;
        char *d = realloc(t->data, cap);
        if (!d) {
            t->oom = true;
            return;
        }
        t->data = d;
        t->cap = cap;
    }
}

static void hist_text(mtext *t, const char *name, const char *help, const pl_srv_hist *h) {
    mt_printf(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < h->n; i++) {
        cum += h->counts[i];
        mt_printf(t, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], (unsigned long long)cum);
    }
    cum += h->counts[h->n];
    mt_printf(t, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, (unsigned long long)cum, name,
              h->sum, name, (unsigned long long)h->count);
}

static void counter(mtext *t, const char *name, const char *help, uint64_t v) {
    mt_printf(t, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, (unsigned long long)v);
}

static void gauge(mtext *t, const char *name, const char *help, double v) {
    mt_printf(t, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

char *pl_srv_metrics_text(const pl_srv_metrics *m, int queue_len, int busy_slots, int n_slots, int64_t kv_used,
                          int64_t kv_total, const pl_proc_stats *proc) {
    mtext t = { 0 };
    mt_printf(&t, "# HELP parley_requests_total HTTP responses by status code.\n"
                  "# TYPE parley_requests_total counter\n");
    for (int i = 0; i <= PL_SRV_STATUS_CODES; i++) {
        if (i < PL_SRV_STATUS_CODES)
            mt_printf(&t, "parley_requests_total{status=\"%d\"} %llu\n", status_codes[i],
                      (unsigned long long)m->by_status[i]);
        else mt_printf(&t, "parley_requests_total{status=\"other\"} %llu\n", (unsigned long long)m->by_status[i]);
    }
    counter(&t, "parley_completions_total", "Completions finished (any finish reason).", m->requests_done);
    counter(&t, "parley_prompt_tokens_total", "Prompt tokens of finished completions.", m->prompt_tokens);
    counter(&t, "parley_cached_tokens_total", "Of those, tokens reused from the KV cache.", m->cached_tokens);
    counter(&t, "parley_generated_tokens_total", "Tokens generated.", m->generated_tokens);
    hist_text(&t, "parley_time_to_first_token_seconds", "Request arrival to its first token.", &m->ttft);
    hist_text(&t, "parley_inter_token_seconds", "Time between consecutive tokens of a stream.", &m->itl);
    gauge(&t, "parley_queue_length", "Requests waiting for a slot.", queue_len);
    gauge(&t, "parley_slots_busy", "Slots serving a request.", busy_slots);
    gauge(&t, "parley_slots_total", "Slots.", n_slots);
    gauge(&t, "parley_kv_cache_used_tokens", "Tokens held in the KV cache.", (double)kv_used);
    gauge(&t, "parley_kv_cache_capacity_tokens", "Tokens the KV cache can hold.", (double)kv_total);
    gauge(&t, "parley_kv_cache_usage_ratio", "Used over capacity.", kv_total > 0 ? (double)kv_used / kv_total : 0);
    mt_printf(&t, "# HELP parley_decode_phase_seconds_total Time inside decode steps by engine phase.\n"
                  "# TYPE parley_decode_phase_seconds_total counter\n");
    for (int ph = 0; ph < PL_PERF_PHASE_COUNT; ph++)
        mt_printf(&t, "parley_decode_phase_seconds_total{phase=\"%s\"} %.6f\n", pl_perf_phase_name((pl_perf_phase)ph),
                  (double)m->perf.phase_ns[ph] / 1e9);
    counter(&t, "parley_decode_steps_total", "Engine decode steps (one batch each).", m->perf.n_decode);
    if (proc) {
        gauge(&t, "parley_process_resident_memory_bytes", "Resident set size of the process.", (double)proc->rss_bytes);
        gauge(&t, "parley_process_peak_resident_memory_bytes", "Peak resident set size of the process.",
              (double)proc->peak_rss_bytes);
        mt_printf(&t, "# HELP parley_process_cpu_seconds_total User + system CPU time of all threads.\n"
                      "# TYPE parley_process_cpu_seconds_total counter\nparley_process_cpu_seconds_total %.3f\n",
                  proc->cpu_user_s + proc->cpu_sys_s);
        gauge(&t, "parley_process_threads", "Threads of the process.", proc->threads);
    }
    if (t.oom) {
        free(t.data);
        return NULL;
    }
    return t.data;
}
