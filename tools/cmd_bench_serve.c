/*
 * cmd_bench_serve.c - `parley bench-serve`: drive a running OpenAI-compatible
 * server with C concurrent streaming chat clients until N requests are done,
 * and report time to first token, time per output token, aggregate tok/s and
 * errors.
 *
 * One thread, libcurl's multi interface: C transfers in flight; each one that
 * finishes starts the next. Every request gets a distinct prompt prefix (no
 * prefix-cache hits between requests) of about P tokens, asks for exactly M
 * tokens (ignore_eos, so a random-weight model runs the full length), and
 * stream_options.include_usage (the token count comes from the server).
 */
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char usage_text[] =
    "usage: parley bench-serve --url URL [-c CLIENTS] [-n REQUESTS] [options]\n"
    "\n"
    "Run REQUESTS streaming chat completions against a server (parley serve, llama-server,\n"
    "vLLM, ...), CLIENTS at a time, and report TTFT p50/p99, time per output token\n"
    "(TPOT: after the first token), aggregate generated tok/s and errors.\n"
    "\n"
    "options:\n"
    "  --url URL            server base URL, e.g. http://127.0.0.1:8080 (required)\n"
    "  -c, --clients N      concurrent streams (default 1)\n"
    "  -n, --requests N     requests in all (default 4 x clients)\n"
    "  --prompt-tokens P    prompt length, about P tokens (default 64)\n"
    "  --max-tokens M       tokens per answer (default 128; ignore_eos is sent)\n"
    "  --model NAME         the model field (default \"default\")\n"
    "  --api-key KEY        Authorization: Bearer KEY\n"
    "  --temp T             temperature (default 0: greedy)\n"
    "  --warmup N           requests run one at a time before measuring, not counted\n"
    "                       (default 1: the server's first request pays page faults)\n"
    "  -h, --help           this text\n";

typedef struct xfer {
    CURL    *easy;
    struct curl_slist *headers;
    char    *body;
    char     buf[16384]; /* an unfinished SSE event */
    size_t   len;
    double   t_start, t_first, t_last;
    long     completion_tokens, prompt_tokens;
    double   server_ttft_ms, server_gen_ms; /* from the server's "timings" when it sends them */
    bool     error, done_seen;
} xfer;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Non-empty string value of "key":"..." in an event. */
static bool has_text(const char *ev, const char *key) {
    const char *p = strstr(ev, key);
    return p && p[strlen(key)] != '"';
}

static void on_event(xfer *x, char *ev) {
    if (strncmp(ev, "data: ", 6) != 0) return; /* comments (": ping") */
    ev += 6;
    if (strncmp(ev, "[DONE]", 6) == 0) {
        x->done_seen = true;
        return;
    }
    if (strstr(ev, "\"error\":")) x->error = true;
    if (has_text(ev, "\"content\":\"") || has_text(ev, "\"reasoning_content\":\"") || has_text(ev, "\"text\":\"")) {
        double t = now_s();
        if (x->t_first == 0) x->t_first = t;
        x->t_last = t;
    }
    const char *t = strstr(ev, "\"ttft_ms\":");
    if (t) x->server_ttft_ms = strtod(t + 10, NULL);
    t = strstr(ev, "\"predicted_ms\":");
    if (t) x->server_gen_ms = strtod(t + 15, NULL);
    const char *u = strstr(ev, "\"completion_tokens\":");
    if (u) x->completion_tokens = strtol(u + 20, NULL, 10);
    u = strstr(ev, "\"prompt_tokens\":");
    if (u) x->prompt_tokens = strtol(u + 16, NULL, 10);
}

static size_t on_data(char *p, size_t sz, size_t n, void *ud) {
    xfer *x = ud;
    size_t k = sz * n;
    for (size_t i = 0; i < k; i++) {
        if (x->len + 1 >= sizeof x->buf) { /* an event larger than the buffer: keep its start */
            x->buf[x->len] = 0;
        } else {
            x->buf[x->len++] = p[i];
        }
        if (x->len >= 2 && x->buf[x->len - 1] == '\n' && x->buf[x->len - 2] == '\n') {
            x->buf[x->len - 2] = 0;
            on_event(x, x->buf);
            x->len = 0;
        }
    }
    return k;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, int n, double q) {
    if (n <= 0) return 0;
    int i = (int)ceil(q * n) - 1;
    return v[i < 0 ? 0 : (i >= n ? n - 1 : i)];
}

static const char *const words[] = { " the", " cat", " sat", " on", " a", " mat", " and", " then" };

/* n_words words of filler text into buf (NUL-terminated). */
static int filler(char *b, size_t cap, int n_words) {
    int k = 0;
    for (int i = 0; i < n_words && (size_t)k + 8 < cap; i++) k += snprintf(b + k, cap - (size_t)k, "%s", words[i % 8]);
    b[k] = 0;
    return k;
}

/* Tokens the server counts for n_words of filler (POST /tokenize, which
 * parley serve and llama-server have), or -1 when it cannot tell. */
static long count_tokens(const char *base, size_t base_len, const char *key, int n_words) {
    char url[1200];
    snprintf(url, sizeof url, "%.*s/tokenize", (int)base_len, base);
    size_t cap = (size_t)n_words * 6 + 64;
    char *body = malloc(cap + 32), *text = malloc(cap);
    if (!body || !text) {
        free(body);
        free(text);
        return -1;
    }
    filler(text, cap, n_words);
    snprintf(body, cap + 32, "{\"content\":\"%s\"}", text);
    free(text);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    char authz[600];
    if (key) {
        snprintf(authz, sizeof authz, "Authorization: Bearer %s", key);
        h = curl_slist_append(h, authz);
    }
    /* the reply {"tokens":[...]} into a temporary file: the ids are its commas + 1 */
    FILE *mem = tmpfile();
    long n = -1;
    if (c && h && mem) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
        long status = 0;
        if (curl_easy_perform(c) == CURLE_OK && curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
            status == 200) {
            rewind(mem);
            int ch, commas = 0, digits = 0;
            while ((ch = fgetc(mem)) != EOF) {
                commas += ch == ',';
                digits += ch >= '0' && ch <= '9';
            }
            n = digits ? commas + 1 : 0;
        }
    }
    if (mem) fclose(mem);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(body);
    return n;
}

static char *make_body(int idx, int n_words, int max_tokens, const char *model, double temp) {
    size_t cap = (size_t)n_words * 6 + 512;
    char *b = malloc(cap);
    if (!b) return NULL;
    int k = snprintf(b, cap, "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"request %d:", model, idx);
    k += filler(b + k, cap - (size_t)k - 200, n_words);
    snprintf(b + k, cap - (size_t)k,
             "\"}],\"max_tokens\":%d,\"temperature\":%g,\"ignore_eos\":true,\"stream\":true,"
             "\"stream_options\":{\"include_usage\":true}}",
             max_tokens, temp);
    return b;
}

static size_t discard(char *p, size_t sz, size_t n, void *ud) {
    (void)p;
    (void)ud;
    return sz * n;
}

/* One request of the measured shape, alone and not counted (its prompt starts
 * "request -1:", so it shares no prefix with the measured ones beyond that). */
static bool warm_up(const char *endpoint, const char *authz, int idx, int n_words, int max_tokens, const char *model,
                    double temp) {
    char *body = make_body(-1 - idx, n_words, max_tokens, model, temp);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (authz && h) h = curl_slist_append(h, authz);
    long status = 0;
    bool ok = false;
    if (body && c && h) {
        curl_easy_setopt(c, CURLOPT_URL, endpoint);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 600L);
        ok = curl_easy_perform(c) == CURLE_OK && curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
             status == 200;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(body);
    return ok;
}

int cmd_bench_serve(pl_cli *cli, int argc, char **argv) {
    if (pl_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    const char *url = NULL, *model = "default", *key = NULL, *v;
    int64_t clients = 1, requests = 0, prompt_tokens = 64, max_tokens = 128, warmup = 1;
    double temp = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int64_t *num = NULL, lo = 1, hi = 100000;
        if (pl_cli_is_opt(a, "--url")) {
            if (!(url = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--model")) {
            if (!(model = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--api-key")) {
            if (!(key = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--temp")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            char *end;
            temp = strtod(v, &end);
            if (*end || !(temp >= 0 && temp <= 2)) return pl_cli_usage_error(cli, "bad --temp '%s'", v);
        } else if (strcmp(a, "-c") == 0 || pl_cli_is_opt(a, "--clients")) {
            num = &clients;
            hi = 1024;
        } else if (strcmp(a, "-n") == 0 || pl_cli_is_opt(a, "--requests")) {
            num = &requests;
        } else if (pl_cli_is_opt(a, "--prompt-tokens")) {
            num = &prompt_tokens;
            lo = 4;
        } else if (pl_cli_is_opt(a, "--max-tokens")) {
            num = &max_tokens;
        } else if (pl_cli_is_opt(a, "--warmup")) {
            num = &warmup;
            lo = 0;
            hi = 100;
        } else {
            return pl_cli_usage_error(cli, "unexpected argument '%s'", a);
        }
        if (num) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, lo, hi, num)) return pl_cli_usage_error(cli, "bad %s '%s'", a, v);
        }
    }
    if (!url) return pl_cli_usage_error(cli, "missing --url");
    if (requests == 0) requests = clients * 4;
    if (strlen(url) > 1000 || strlen(model) > 200) return pl_cli_usage_error(cli, "--url or --model too long");
    char endpoint[1100];
    size_t ul = strlen(url);
    while (ul && url[ul - 1] == '/') ul--;
    bool has_v1 = ul >= 3 && strncmp(url + ul - 3, "/v1", 3) == 0;
    snprintf(endpoint, sizeof endpoint, "%.*s%s/chat/completions", (int)ul, url, has_v1 ? "" : "/v1");

    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    xfer *xs = calloc((size_t)requests, sizeof *xs);
    double *ttft = calloc((size_t)requests, sizeof *ttft), *tpot = calloc((size_t)requests, sizeof *tpot);
    if (!multi || !xs || !ttft || !tpot) {
        free(xs);
        free(ttft);
        free(tpot);
        curl_multi_cleanup(multi);
        return pl_cli_fail(cli, "out of memory");
    }
    char authz[600] = "";
    if (key) snprintf(authz, sizeof authz, "Authorization: Bearer %s", key);
    /* prompt length: calibrated with the server's tokenizer when it has one
     * (the chat template adds its own tokens around it) */
    int n_words = (int)prompt_tokens;
    long counted = count_tokens(url, has_v1 ? ul - 3 : ul, key, 64);
    if (counted > 0) n_words = (int)(prompt_tokens * 64 / counted);
    if (n_words < 1) n_words = 1;
    for (int64_t w = 0; w < warmup; w++) {
        if (!warm_up(endpoint, key ? authz : NULL, (int)w, n_words, (int)max_tokens, model, temp)) {
            free(xs);
            free(ttft);
            free(tpot);
            curl_multi_cleanup(multi);
            curl_global_cleanup();
            return pl_cli_fail(cli, "warm-up request to %s failed (is the server up? --warmup 0 skips it)", endpoint);
        }
    }
    int started = 0, running = 0, finished = 0;
    double t0 = now_s();
    fprintf(stderr, "bench-serve: %s, %d clients, %d requests, prompt ~%d tokens, %d tokens each\n", endpoint,
            (int)clients, (int)requests, (int)prompt_tokens, (int)max_tokens);
    while (finished < requests) {
        while (running < clients && started < requests) {
            xfer *x = &xs[started];
            x->body = make_body(started, n_words, (int)max_tokens, model, temp);
            x->easy = curl_easy_init();
            x->headers = curl_slist_append(NULL, "Content-Type: application/json");
            if (key) x->headers = curl_slist_append(x->headers, authz);
            if (!x->body || !x->easy || !x->headers) {
                x->error = true;
                finished++;
                started++;
                continue;
            }
            curl_easy_setopt(x->easy, CURLOPT_URL, endpoint);
            curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
            curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
            curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_data);
            curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
            curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
            curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(x->easy, CURLOPT_TCP_NODELAY, 1L);
            x->t_start = now_s();
            curl_multi_add_handle(multi, x->easy);
            started++;
            running++;
        }
        int still = 0;
        curl_multi_perform(multi, &still);
        CURLMsg *m;
        int left, done_now = 0;
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE) continue;
            xfer *x = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            long status = 0;
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            /* tokens without text (a random-weight model's padding tokens) show
             * no delta: then the server's own timings stand in */
            if (m->data.result != CURLE_OK || status != 200 || !x->done_seen || x->completion_tokens <= 0 ||
                (x->t_first == 0 && x->server_ttft_ms <= 0))
                x->error = true;
            if (!x->t_last) x->t_last = now_s();
            curl_multi_remove_handle(multi, m->easy_handle);
            curl_easy_cleanup(m->easy_handle);
            x->easy = NULL;
            curl_slist_free_all(x->headers);
            x->headers = NULL;
            free(x->body);
            x->body = NULL;
            running--;
            finished++;
            done_now++;
        }
        /* a client whose request just ended starts its next one at once: waiting in
         * the poll first (nothing else may be running) left each client idle for up
         * to 100 ms per request, ~90 ms at one client (13% of its aggregate) */
        if (finished < requests && !done_now) curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    double wall = now_s() - t0;
    int ok = 0, errors = 0, server_timed = 0;
    long gen = 0, prompt_sum = 0;
    for (int i = 0; i < requests; i++) {
        xfer *x = &xs[i];
        if (x->error) {
            errors++;
            continue;
        }
        double gen_ms = (x->t_last - x->t_first) * 1e3;
        if (x->t_first > 0) {
            ttft[ok] = (x->t_first - x->t_start) * 1e3;
        } else {
            ttft[ok] = x->server_ttft_ms;
            gen_ms = x->server_gen_ms;
            server_timed++;
        }
        tpot[ok] = x->completion_tokens > 1 ? gen_ms / (double)(x->completion_tokens - 1) : 0;
        gen += x->completion_tokens;
        prompt_sum += x->prompt_tokens;
        ok++;
    }
    qsort(ttft, (size_t)ok, sizeof *ttft, cmp_double);
    qsort(tpot, (size_t)ok, sizeof *tpot, cmp_double);
    double mean_tpot = 0;
    for (int i = 0; i < ok; i++) mean_tpot += tpot[i];
    mean_tpot = ok ? mean_tpot / ok : 0;
    printf("clients %d  requests %d  ok %d  errors %d  wall %.2f s\n", (int)clients, (int)requests, ok, errors, wall);
    printf("prompt  %.0f tokens on average (asked ~%d)\n", ok ? (double)prompt_sum / ok : 0.0, (int)prompt_tokens);
    printf("TTFT    p50 %.1f ms  p99 %.1f ms\n", pct(ttft, ok, 0.5), pct(ttft, ok, 0.99));
    printf("TPOT    p50 %.2f ms  p99 %.2f ms  mean %.2f ms (%.1f tok/s per stream)\n", pct(tpot, ok, 0.5),
           pct(tpot, ok, 0.99), mean_tpot, mean_tpot > 0 ? 1e3 / mean_tpot : 0.0);
    if (server_timed)
        printf("(%d requests streamed no text: their TTFT/TPOT are the server's timings)\n", server_timed);
    printf("tokens  %ld generated, aggregate %.1f tok/s, %.2f req/s\n", gen, wall > 0 ? gen / wall : 0.0,
           wall > 0 ? ok / wall : 0.0);
    free(xs);
    free(ttft);
    free(tpot);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return errors ? 1 : 0;
}
