/*
 * cmd_top.c - `parley top URL`: a live view of a running parley server, from
 * its GET /metrics (Prometheus text) and GET /props (JSON), polled every
 * --interval seconds. --once prints one snapshot and exits (scripts, tests).
 *
 * Metric names read (a missing one shows as "-"):
 *   parley_requests_total{status="..."}  counter per finish status
 *   parley_prompt_tokens_total, parley_cached_tokens_total, parley_generated_tokens_total
 *   parley_queue_length, parley_slots_busy, parley_slots_total
 *   parley_kv_cache_used_tokens, parley_kv_cache_capacity_tokens
 *   parley_process_resident_memory_bytes, parley_process_peak_resident_memory_bytes
 *   parley_generation_tokens_per_second   gauge (the server's recent rate)
 *   parley_time_to_first_token_seconds    histogram (_bucket{le}, _sum, _count)
 * Rates "since the last poll" come from the counters' deltas.
 */
#include <curl/curl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "parley/profile.h"

static const char usage_text[] =
    "usage: parley top [--once] [--interval S] [--timeout S] [--api-key KEY] URL\n"
    "\n"
    "Live view of a running parley server: slots, queue, KV cache, tokens and tok/s,\n"
    "time to first token, requests by status and memory, from URL/metrics (Prometheus\n"
    "text) and URL/props, refreshed every interval. Ctrl-C quits.\n"
    "\n"
    "options:\n"
    "  --once          print one snapshot to stdout and exit (1 when the server cannot be read)\n"
    "  --interval S    seconds between polls (default 2)\n"
    "  --timeout S     seconds to wait for each reply (default 5)\n"
    "  --api-key KEY   the server's API key (default: $PARLEY_API_KEY)\n"
    "  -h, --help      this text\n";

#define MAX_BODY     ((size_t)8 << 20)
#define MAX_STATUSES 16
#define MAX_BUCKETS  64

typedef struct body {
    char  *data;
    size_t len;
    bool   too_big;
} body;

static size_t on_data(char *p, size_t size, size_t n, void *ud) {
    body *b = ud;
    size_t k = size * n;
    if (b->len + k > MAX_BODY) {
        b->too_big = true;
        return 0;
    }
    char *nd = realloc(b->data, b->len + k + 1);
    if (!nd) return 0;
    memcpy(nd + b->len, p, k);
    b->data = nd;
    b->len += k;
    b->data[b->len] = 0;
    return k;
}

/* GET base+path into *out; on failure a message in err. HTTP status in *code. */
static bool http_get(const char *base, const char *path, const char *key, long timeout_ms, body *out, long *code,
                     char *err, size_t cap) {
    *out = (body){ 0 };
    *code = 0;
    char url[2048];
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/') bl--;
    if (snprintf(url, sizeof url, "%.*s%s", (int)bl, base, path) >= (int)sizeof url) {
        snprintf(err, cap, "URL too long");
        return false;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, cap, "curl_easy_init failed");
        return false;
    }
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "parley-top/" PL_VERSION);
    struct curl_slist *hdr = NULL;
    if (key && *key) {
        char h[600];
        snprintf(h, sizeof h, "Authorization: Bearer %.500s", key);
        hdr = curl_slist_append(NULL, h);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(hdr);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK || *code != 200) {
        if (out->too_big) snprintf(err, cap, "%.300s: reply larger than %zu MiB", url, MAX_BODY >> 20);
        else if (rc != CURLE_OK) snprintf(err, cap, "%.300s: %.180s", url, ebuf[0] ? ebuf : curl_easy_strerror(rc));
        else snprintf(err, cap, "%.300s: HTTP %ld", url, *code);
        free(out->data);
        *out = (body){ 0 };
        return false;
    }
    return true;
}

/* ---- one poll's figures (NAN: not reported) ---- */

typedef struct snapshot {
    double prompt, cached, generated, queue, busy, slots, kv_used, kv_size, rss, peak, gen_tps;
    int    n_status;
    char   status[MAX_STATUSES][32];
    double status_count[MAX_STATUSES];
    int    n_buckets;
    double le[MAX_BUCKETS], cum[MAX_BUCKETS]; /* cumulative counts by upper bound */
    double ttft_sum, ttft_count;
    size_t bad_line;
    double t;         /* monotonic seconds when taken */
    char   model[256];
    double n_ctx;
    bool   have_props;
} snapshot;

typedef struct gauge_name {
    const char *name;
    size_t      off;
} gauge_name;

static const gauge_name gauges[] = {
    { "parley_prompt_tokens_total", offsetof(snapshot, prompt) },
    { "parley_cached_tokens_total", offsetof(snapshot, cached) },
    { "parley_generated_tokens_total", offsetof(snapshot, generated) },
    { "parley_queue_length", offsetof(snapshot, queue) },
    { "parley_slots_busy", offsetof(snapshot, busy) },
    { "parley_slots_total", offsetof(snapshot, slots) },
    { "parley_kv_cache_used_tokens", offsetof(snapshot, kv_used) },
    { "parley_kv_cache_capacity_tokens", offsetof(snapshot, kv_size) },
    { "parley_process_resident_memory_bytes", offsetof(snapshot, rss) },
    { "parley_process_peak_resident_memory_bytes", offsetof(snapshot, peak) },
    { "parley_generation_tokens_per_second", offsetof(snapshot, gen_tps) },
    { "parley_time_to_first_token_seconds_sum", offsetof(snapshot, ttft_sum) },
    { "parley_time_to_first_token_seconds_count", offsetof(snapshot, ttft_count) },
};

static bool on_sample(void *ud, const pl_prom_sample *s) {
    snapshot *sn = ud;
    for (size_t i = 0; i < sizeof gauges / sizeof gauges[0]; i++)
        if (pl_prom_is(s, gauges[i].name)) {
            /* a metric with several label sets (e.g. per slot) is summed */
            double *d = (double *)((char *)sn + gauges[i].off);
            *d = isnan(*d) ? s->value : *d + s->value;
            return true;
        }
    char lab[64];
    if (pl_prom_is(s, "parley_requests_total")) {
        if (!pl_prom_label(s, "status", lab, sizeof lab)) snprintf(lab, sizeof lab, "all");
        for (int i = 0; i < sn->n_status; i++)
            if (strcmp(sn->status[i], lab) == 0) {
                sn->status_count[i] += s->value;
                return true;
            }
        if (sn->n_status < MAX_STATUSES) {
            snprintf(sn->status[sn->n_status], sizeof sn->status[0], "%.31s", lab);
            sn->status_count[sn->n_status++] = s->value;
        }
    } else if (pl_prom_is(s, "parley_time_to_first_token_seconds_bucket") && pl_prom_label(s, "le", lab, sizeof lab)) {
        char *end;
        double le = strcmp(lab, "+Inf") == 0 ? INFINITY : strtod(lab, &end);
        if (isnan(le) || sn->n_buckets >= MAX_BUCKETS) return true;
        /* keep them sorted by le (servers write them in order; this is for the rest) */
        int k = sn->n_buckets++;
        while (k > 0 && sn->le[k - 1] > le) {
            sn->le[k] = sn->le[k - 1];
            sn->cum[k] = sn->cum[k - 1];
            k--;
        }
        sn->le[k] = le;
        sn->cum[k] = s->value;
    }
    return true;
}

/* Quantile q of the histogram, linear within the bucket as Prometheus'
 * histogram_quantile does; NAN when empty. *above: it lies in the +Inf bucket
 * (the value returned is then the highest finite bound). */
static double quantile(const snapshot *sn, double q, bool *above) {
    *above = false;
    if (sn->n_buckets == 0) return NAN;
    double total = sn->cum[sn->n_buckets - 1];
    if (!(total > 0)) return NAN;
    double rank = q * total, lo = 0, prev = 0;
    for (int i = 0; i < sn->n_buckets; i++) {
        if (sn->cum[i] >= rank) {
            if (isinf(sn->le[i])) {
                *above = true;
                return lo;
            }
            double in = sn->cum[i] - prev;
            return in > 0 ? lo + (sn->le[i] - lo) * (rank - prev) / in : sn->le[i];
        }
        lo = sn->le[i];
        prev = sn->cum[i];
    }
    return lo;
}

static double now_s(void) { return (double)pl_time_ns() / 1e9; }

static void snapshot_init(snapshot *sn) {
    memset(sn, 0, sizeof *sn);
    for (size_t i = 0; i < sizeof gauges / sizeof gauges[0]; i++) *(double *)((char *)sn + gauges[i].off) = NAN;
    sn->n_ctx = NAN;
}

static void read_props(snapshot *sn, const char *text, size_t len) {
    cJSON *j = cJSON_ParseWithLength(text, len);
    if (!j) return;
    sn->have_props = true;
    static const char *const model_keys[] = { "model", "model_alias", "model_path" };
    for (size_t i = 0; i < sizeof model_keys / sizeof model_keys[0] && !sn->model[0]; i++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, model_keys[i]);
        if (cJSON_IsString(m)) snprintf(sn->model, sizeof sn->model, "%s", m->valuestring);
    }
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "n_ctx");
    if (!cJSON_IsNumber(n)) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "default_generation_settings");
        n = d ? cJSON_GetObjectItemCaseSensitive(d, "n_ctx") : NULL;
    }
    if (cJSON_IsNumber(n)) sn->n_ctx = n->valuedouble;
    cJSON_Delete(j);
}

/* Poll the server; false with err set when /metrics cannot be read. */
static bool poll_server(const char *url, const char *key, long timeout_ms, snapshot *sn, char *err, size_t cap) {
    snapshot_init(sn);
    body b;
    long code;
    if (!http_get(url, "/metrics", key, timeout_ms, &b, &code, err, cap)) return false;
    sn->t = now_s();
    pl_prom_parse(b.data, b.len, on_sample, sn, &sn->bad_line);
    free(b.data);
    char perr[256];
    if (http_get(url, "/props", key, timeout_ms, &b, &code, perr, sizeof perr)) { /* optional */
        read_props(sn, b.data, b.len);
        free(b.data);
    }
    return true;
}

/* "%.0f" of a figure or "-" */
static const char *num(char *buf, size_t cap, const char *fmt, double v) {
    if (isnan(v)) snprintf(buf, cap, "-");
    else snprintf(buf, cap, fmt, v);
    return buf;
}

static void print_snapshot(FILE *f, const char *url, const snapshot *sn, const snapshot *prev) {
    char a[64], b[64], c[64];
    fprintf(f, "parley top  %s", url);
    if (sn->model[0]) fprintf(f, "  model %s", sn->model);
    if (!isnan(sn->n_ctx)) fprintf(f, "  n_ctx %.0f", sn->n_ctx);
    fputc('\n', f);
    fprintf(f, "slots     %s busy of %s   queue %s\n", num(a, sizeof a, "%.0f", sn->busy),
            num(b, sizeof b, "%.0f", sn->slots), num(c, sizeof c, "%.0f", sn->queue));
    fprintf(f, "kv cache  %s of %s tokens", num(a, sizeof a, "%.0f", sn->kv_used), num(b, sizeof b, "%.0f", sn->kv_size));
    if (sn->kv_size > 0 && !isnan(sn->kv_used)) fprintf(f, " (%.1f%%)", 100.0 * sn->kv_used / sn->kv_size);
    fputc('\n', f);
    fprintf(f, "tokens    prompt %s (cached %s", num(a, sizeof a, "%.0f", sn->prompt), num(b, sizeof b, "%.0f", sn->cached));
    if (sn->prompt > 0 && !isnan(sn->cached)) fprintf(f, ", %.1f%%", 100.0 * sn->cached / sn->prompt);
    fprintf(f, ")   generated %s\n", num(a, sizeof a, "%.0f", sn->generated));
    fprintf(f, "speed     generation %s tok/s (server, recent)", num(a, sizeof a, "%.1f", sn->gen_tps));
    if (prev && sn->t > prev->t) {
        double dt = sn->t - prev->t;
        fprintf(f, "   last %.1f s: %s tok/s generated, %s tok/s prompt", dt,
                num(a, sizeof a, "%.1f", (sn->generated - prev->generated) / dt),
                num(b, sizeof b, "%.1f", (sn->prompt - prev->prompt) / dt));
    }
    fputc('\n', f);
    fprintf(f, "ttft      ");
    if (sn->ttft_count > 0) {
        fprintf(f, "mean %.1f ms", 1e3 * sn->ttft_sum / sn->ttft_count);
        static const double qs[] = { 0.5, 0.95, 0.99 };
        for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
            bool above;
            double v = quantile(sn, qs[i], &above);
            if (!isnan(v)) fprintf(f, "   p%.0f %s%.1f ms", qs[i] * 100, above ? ">" : "", 1e3 * v);
        }
        fprintf(f, "   (%.0f requests)\n", sn->ttft_count);
    } else {
        fprintf(f, "-\n");
    }
    fprintf(f, "requests ");
    /* statuses never seen (a server lists every code it counts) are left out */
    int shown = 0;
    for (int i = 0; i < sn->n_status; i++)
        if (sn->status_count[i] > 0) shown += fprintf(f, " %s %.0f", sn->status[i], sn->status_count[i]) > 0;
    if (!shown) fprintf(f, " -");
    fputc('\n', f);
    fprintf(f, "memory    RSS %s MiB   peak %s MiB\n", num(a, sizeof a, "%.1f", sn->rss / 1048576.0),
            num(b, sizeof b, "%.1f", sn->peak / 1048576.0));
    if (sn->bad_line) fprintf(f, "(metrics: line %zu and maybe others unreadable, skipped)\n", sn->bad_line);
}

static volatile sig_atomic_t g_stop;
static void on_sigint(int sig) {
    (void)sig;
    g_stop = 1;
}

int cmd_top(pl_cli *cli, int argc, char **argv) {
    if (pl_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    const char *url = NULL, *v, *key = getenv("PARLEY_API_KEY");
    bool once = false;
    double interval = 2.0, timeout = 5.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--once") == 0) {
            once = true;
        } else if (pl_cli_is_opt(a, "--interval") || pl_cli_is_opt(a, "--timeout")) {
            bool is_iv = a[2] == 'i';
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            char *end;
            double x = strtod(v, &end);
            if (*end || !(x >= 0.05 && x <= 3600)) return pl_cli_usage_error(cli, "bad %s '%s'", is_iv ? "--interval" : "--timeout", v);
            *(is_iv ? &interval : &timeout) = x;
        } else if (pl_cli_is_opt(a, "--api-key")) {
            if (!(key = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (a[0] == '-' && a[1]) {
            return pl_cli_usage_error(cli, "unexpected option '%s'", a);
        } else if (!url) {
            url = a;
        } else {
            return pl_cli_usage_error(cli, "more than one URL");
        }
    }
    if (!url) return pl_cli_usage_error(cli, "missing the server URL (e.g. http://127.0.0.1:8080)");
    long timeout_ms = (long)(timeout * 1000);
    char err[512];
    snapshot *cur = malloc(sizeof *cur), *prev = malloc(sizeof *prev);
    if (!cur || !prev) {
        free(cur);
        free(prev);
        return pl_cli_fail(cli, "out of memory");
    }
    int rc = 0;
    if (once) {
        if (poll_server(url, key, timeout_ms, cur, err, sizeof err)) print_snapshot(stdout, url, cur, NULL);
        else rc = pl_cli_fail(cli, "%s", err);
        free(cur);
        free(prev);
        return rc;
    }
    struct sigaction sa = { .sa_handler = on_sigint };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    bool tty = isatty(STDOUT_FILENO), have_prev = false;
    while (!g_stop) {
        bool ok = poll_server(url, key, timeout_ms, cur, err, sizeof err);
        if (tty) fputs("\033[H\033[2J", stdout);
        if (ok) {
            print_snapshot(stdout, url, cur, have_prev ? prev : NULL);
            snapshot *t = prev;
            prev = cur;
            cur = t;
            have_prev = true;
        } else {
            printf("parley top  %s\nunreachable: %s (retrying every %.1f s)\n", url, err, interval);
        }
        if (!tty) printf("\n");
        fflush(stdout);
        struct timespec ts = { .tv_sec = (time_t)interval, .tv_nsec = (long)((interval - (double)(time_t)interval) * 1e9) };
        while (!g_stop && nanosleep(&ts, &ts) != 0) {}
    }
    signal(SIGINT, SIG_DFL);
    free(cur);
    free(prev);
    return 0;
}
