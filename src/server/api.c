/*
 * api.c - POST /v1/chat/completions and /v1/completions on an HTTP worker
 * thread: parse and validate, render the chat template and tokenize (a
 * render-only pl_session: the engine's trimming to the history budget),
 * check its sampling params (the slot's sampler takes them) and build its
 * text stages, queue it for the scheduler, then either stream its text as
 * OpenAI SSE chunks or wait and answer once.
 *
 * Stream shape (chat.completion.chunk, as OpenAI sends it):
 *   {"choices":[{"index":0,"delta":{"role":"assistant","content":""},...}]}
 *   {"choices":[{"index":0,"delta":{"reasoning_content":"..."},...}]}  (0+)
 *   {"choices":[{"index":0,"delta":{"content":"..."},...}]}            (0+)
 *   {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"timings":{...}}
 *   {"choices":[],"usage":{...},"timings":{...}}   (stream_options.include_usage)
 *   [DONE]
 * with "usage":null on the other chunks when usage was asked for. Comment
 * lines (": ping") keep the connection alive while nothing else is sent.
 * A write that fails (the client went away) cancels the request; the
 * scheduler frees its slot at its next step.
 */
#include <civetweb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/server_int.h"

typedef struct job {
    pl_server   *s;
    pl_srv_kind  kind;
    pl_srv_opts  o;
    pl_srv_req  *r;
    char         id[48];
    int64_t      created;
    bool         gone;      /* the client disconnected */
    bool         timed_out;
    uint64_t     deadline;  /* pl_time_ns */
} job;

static double ms(uint64_t a, uint64_t b) { return b > a ? (double)(b - a) / 1e6 : 0.0; }

static const char *finish_name(pl_finish f) { return f == PL_FINISH_LENGTH ? "length" : "stop"; }

static cJSON *usage_json(const pl_srv_req *r) {
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", r->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", r->n_gen);
    cJSON_AddNumberToObject(u, "total_tokens", (double)r->n_prompt + r->n_gen);
    cJSON *pd = cJSON_AddObjectToObject(u, "prompt_tokens_details");
    cJSON_AddNumberToObject(pd, "cached_tokens", r->n_cached);
    cJSON *cd = cJSON_AddObjectToObject(u, "completion_tokens_details");
    cJSON_AddNumberToObject(cd, "reasoning_tokens", r->n_reasoning);
    return u;
}

static cJSON *timings_json(const pl_srv_req *r) {
    cJSON *t = cJSON_CreateObject();
    double prompt_ms = ms(r->t_assigned, r->t_prefilled), gen_ms = ms(r->t_first, r->t_last);
    int32_t prompt_n = r->n_prompt - r->n_cached;
    cJSON_AddNumberToObject(t, "prompt_n", prompt_n);
    cJSON_AddNumberToObject(t, "cache_n", r->n_cached);
    cJSON_AddNumberToObject(t, "prompt_ms", prompt_ms);
    cJSON_AddNumberToObject(t, "prompt_per_second", prompt_ms > 0 ? prompt_n / (prompt_ms / 1e3) : 0);
    cJSON_AddNumberToObject(t, "predicted_n", r->n_gen);
    cJSON_AddNumberToObject(t, "predicted_ms", gen_ms);
    /* tokens after the first over the time after the first */
    cJSON_AddNumberToObject(t, "predicted_per_second", r->n_gen > 1 && gen_ms > 0 ? (r->n_gen - 1) / (gen_ms / 1e3) : 0);
    cJSON_AddNumberToObject(t, "ttft_ms", r->t_first ? ms(r->t_submit, r->t_first) : 0);
    cJSON_AddNumberToObject(t, "queue_ms", ms(r->t_submit, r->t_assigned));
    return t;
}

/* The envelope every response and chunk shares. */
static cJSON *envelope(const job *j, const char *object) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", j->id);
    cJSON_AddStringToObject(root, "object", object);
    cJSON_AddNumberToObject(root, "created", (double)j->created);
    cJSON_AddStringToObject(root, "model", j->s->alias);
    cJSON_AddStringToObject(root, "system_fingerprint", "parley-" PL_VERSION);
    return root;
}

/* ---- streaming ---- */

static bool write_chunk(struct mg_connection *conn, job *j, const char *data, size_t len) {
    if (j->gone) return false;
    if (mg_send_chunk(conn, data, (unsigned)len) <= 0) j->gone = true;
    return !j->gone;
}

static bool write_event(struct mg_connection *conn, job *j, cJSON *obj) {
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!text) return false;
    size_t n = strlen(text);
    /* one write per event: "data: " + JSON + "\n\n" */
    char stackbuf[2048];
    char *buf = n + 9 <= sizeof stackbuf ? stackbuf : pl_malloc(j->s->ctx, n + 9);
    bool ok = false;
    if (buf) {
        memcpy(buf, "data: ", 6);
        memcpy(buf + 6, text, n);
        memcpy(buf + 6 + n, "\n\n", 2);
        ok = write_chunk(conn, j, buf, n + 8);
        if (buf != stackbuf) pl_free(j->s->ctx, buf);
    }
    cJSON_free(text);
    return ok;
}

/* A chunk with one choice; delta/text fields set by the caller. */
static cJSON *chunk(const job *j, cJSON **choice) {
    bool chat = j->kind == PL_SRV_KIND_CHAT;
    cJSON *root = envelope(j, chat ? "chat.completion.chunk" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON_AddItemToArray(choices, c);
    *choice = c;
    return root;
}

static void finish_choice(cJSON *root, cJSON *c, const job *j, const char *finish) {
    cJSON_AddNullToObject(c, "logprobs");
    if (finish) cJSON_AddStringToObject(c, "finish_reason", finish);
    else cJSON_AddNullToObject(c, "finish_reason");
    if (j->o.include_usage) cJSON_AddNullToObject(root, "usage");
}

static bool send_delta(struct mg_connection *conn, job *j, pl_channel ch, const char *text, size_t len) {
    cJSON *c, *root = chunk(j, &c);
    cJSON *s = cJSON_CreateString(""); /* text may hold any bytes up to len: copy it as a string */
    if (s) {
        cJSON_free(s->valuestring);
        s->valuestring = cJSON_malloc(len + 1);
        if (s->valuestring) {
            memcpy(s->valuestring, text, len);
            s->valuestring[len] = 0;
        }
    }
    if (!s || !s->valuestring) {
        cJSON_Delete(s);
        cJSON_Delete(root);
        return false;
    }
    if (j->kind == PL_SRV_KIND_CHAT) {
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        cJSON_AddItemToObject(d, ch == PL_CHANNEL_REASONING ? "reasoning_content" : "content", s);
    } else {
        cJSON_AddItemToObject(c, "text", s);
    }
    finish_choice(root, c, j, NULL);
    return write_event(conn, j, root);
}

static void error_event(struct mg_connection *conn, job *j, const char *type, const char *msg) {
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddNullToObject(e, "param");
    cJSON_AddNullToObject(e, "code");
    write_event(conn, j, root);
}

static void cancel(job *j) {
    atomic_store(&j->r->cancel, 1);
    pl_srv_wait_done(j->s, j->r);
}

#define PROBE_MS 250 /* keep-alive interval before the first delta (see stream) */

static void stream(struct mg_connection *conn, job *j) {
    pl_server *s = j->s;
    pl_srv_req *r = j->r;
    char cors[512] = "";
    if (s->cors)
        snprintf(cors, sizeof cors, "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n", s->cors);
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n"
              "Transfer-Encoding: chunked\r\nX-Accel-Buffering: no\r\n%sConnection: close\r\n\r\n",
              cors);
    pthread_mutex_lock(&s->mu);
    pl_srv_metrics_count_status(&s->metrics, 200);
    pthread_mutex_unlock(&s->mu);
    if (j->kind == PL_SRV_KIND_CHAT) { /* the role delta first */
        cJSON *c, *root = chunk(j, &c);
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        cJSON_AddStringToObject(d, "role", "assistant");
        cJSON_AddStringToObject(d, "content", "");
        finish_choice(root, c, j, NULL);
        write_event(conn, j, root);
    }
    pl_srv_buf take[PL_CHANNEL_COUNT] = { { 0 } };
    /* Until the first delta (queued, prefilling) the keep-alive comes at least every
     * PROBE_MS: civetweb gives no way to watch the socket, and a write is how a closed
     * connection shows (the first write after the peer's close draws a reset, the
     * second fails), so a client that leaves during a long prefill frees its slot within
     * ~2 probes instead of 2 ping intervals. Costs 3 bytes per probe per waiting stream. */
    const uint64_t ping_ns = (uint64_t)s->p.ping_ms * 1000000u, probe_ns = (uint64_t)PROBE_MS * 1000000u;
    uint64_t last_write = pl_time_ns();
    bool done = false, started = false;
    while (!done && !j->gone) {
        uint64_t now = pl_time_ns();
        if (now >= j->deadline) {
            j->timed_out = true;
            break;
        }
        const uint64_t every = !started && probe_ns < ping_ns ? probe_ns : ping_ns;
        uint64_t wake = last_write + every < j->deadline ? last_write + every : j->deadline;
        struct timespec ts = { .tv_sec = (time_t)(wake / 1000000000u), .tv_nsec = (long)(wake % 1000000000u) };
        pthread_mutex_lock(&s->mu);
        while (!r->done && !r->pend[0].len && !r->pend[1].len)
            if (pthread_cond_timedwait(&r->cv, &s->mu, &ts) != 0) break;
        for (int c = 0; c < PL_CHANNEL_COUNT; c++) { /* swap buffers: no copy under the lock */
            pl_srv_buf t = take[c];
            take[c] = r->pend[c];
            r->pend[c] = t;
            r->pend[c].len = 0;
        }
        done = r->done;
        pthread_mutex_unlock(&s->mu);
        bool wrote = false;
        if (take[PL_CHANNEL_REASONING].len)
            wrote = send_delta(conn, j, PL_CHANNEL_REASONING, take[1].data, take[1].len);
        if (take[PL_CHANNEL_CONTENT].len) wrote = send_delta(conn, j, PL_CHANNEL_CONTENT, take[0].data, take[0].len);
        if (wrote) {
            last_write = pl_time_ns();
            started = true;
        } else if (!done && pl_time_ns() >= last_write + every) {
            if (every == ping_ns) write_chunk(conn, j, ": ping\n\n", 8);
            else write_chunk(conn, j, ":\n\n", 3);
            last_write = pl_time_ns();
        }
    }
    for (int c = 0; c < PL_CHANNEL_COUNT; c++) pl_free(s->ctx, take[c].data);
    if (!done) cancel(j); /* gone or timed out: stop it, wait for the scheduler to let go */
    if (j->gone) return;
    if (j->timed_out) {
        error_event(conn, j, "timeout_error", "the request ran past the server's timeout");
    } else if (r->error != PL_OK) {
        error_event(conn, j, "server_error", pl_status_str(r->error));
    } else {
        cJSON *c, *root = chunk(j, &c);
        if (j->kind == PL_SRV_KIND_CHAT) cJSON_AddObjectToObject(c, "delta");
        else cJSON_AddStringToObject(c, "text", "");
        finish_choice(root, c, j, finish_name(r->finish));
        cJSON_AddItemToObject(root, "timings", timings_json(r));
        write_event(conn, j, root);
        if (j->o.include_usage) {
            root = envelope(j, j->kind == PL_SRV_KIND_CHAT ? "chat.completion.chunk" : "text_completion");
            cJSON_AddArrayToObject(root, "choices");
            cJSON_AddItemToObject(root, "usage", usage_json(r));
            cJSON_AddItemToObject(root, "timings", timings_json(r));
            write_event(conn, j, root);
        }
    }
    write_chunk(conn, j, "data: [DONE]\n\n", 14);
    mg_send_chunk(conn, "", 0);
}

/* ---- one answer ---- */

/* The client's half of the connection is closed (it sent its FIN, or the
 * connection reset): poll only, nothing is read. */
static bool peer_closed(int fd) {
    struct pollfd p = { .fd = fd, .events = POLLRDHUP };
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

#define WATCH_MS 250 /* how often a waiting non-streaming request looks at its client */

/* Non-streaming: nothing is written before the answer, so a client that leaves
 * cannot show through a failed write as it does for a stream. From WATCH_MS on,
 * the request's socket is found by its addresses (pl_srv_ws_find_socket, the
 * documented exception of ws.c: plain HTTP only, civetweb does not touch the
 * socket while the handler runs) and polled for the client's FIN every
 * WATCH_MS: a client that hung up frees its slot within ~WATCH_MS, not at the
 * end of its answer or its timeout. Like nginx, a half-close counts as leaving.
 * Cost: one descriptor scan per request that runs past WATCH_MS, then one
 * poll() per WATCH_MS. */
static void whole(struct mg_connection *conn, job *j) {
    pl_server *s = j->s;
    pl_srv_req *r = j->r;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const uint64_t every = (uint64_t)WATCH_MS * 1000000u;
    uint64_t watch = pl_time_ns() + every; /* the next look at the client */
    int fd = -1;
    bool looked = false, gone = false;
    pthread_mutex_lock(&s->mu);
    while (!r->done) {
        uint64_t now = pl_time_ns();
        if (now >= j->deadline) break;
        if (now >= watch) { /* (the scheduler signals every step: look by the clock) */
            pthread_mutex_unlock(&s->mu);
            if (!looked) {
                looked = true;
                if (ri && !ri->is_ssl) fd = pl_srv_ws_find_socket(ri);
            }
            gone = fd >= 0 && peer_closed(fd);
            watch = pl_time_ns() + every;
            pthread_mutex_lock(&s->mu);
            if (gone) break;
            continue;
        }
        uint64_t wake = watch < j->deadline ? watch : j->deadline;
        struct timespec ts = { .tv_sec = (time_t)(wake / 1000000000u), .tv_nsec = (long)(wake % 1000000000u) };
        pthread_cond_timedwait(&r->cv, &s->mu, &ts);
    }
    bool done = r->done;
    pthread_mutex_unlock(&s->mu);
    if (gone && !done) {
        pl_log(s->ctx, PL_LOG_LEVEL_DEBUG, "serve: the client left before its answer: canceled");
        cancel(j);
        return;
    }
    if (!done) {
        cancel(j);
        pl_srv_error e;
        pl_srv_err(&e, 504, "timeout_error", NULL, "the request ran past the server's timeout of %d s",
                   s->p.timeout_s);
        pl_srv_send_error(conn, s, &e, NULL);
        return;
    }
    if (r->error != PL_OK) {
        pl_srv_error e;
        pl_srv_err(&e, 500, "server_error", NULL, "generation failed: %s", pl_status_str(r->error));
        pl_srv_send_error(conn, s, &e, NULL);
        return;
    }
    bool chat = j->kind == PL_SRV_KIND_CHAT;
    cJSON *root = envelope(j, chat ? "chat.completion" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(root, "choices"), *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    const char *content = r->pend[PL_CHANNEL_CONTENT].data ? r->pend[PL_CHANNEL_CONTENT].data : "";
    if (chat) {
        cJSON *m = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        cJSON_AddStringToObject(m, "content", content);
        if (r->pend[PL_CHANNEL_REASONING].len)
            cJSON_AddStringToObject(m, "reasoning_content", r->pend[PL_CHANNEL_REASONING].data);
        cJSON_AddNullToObject(m, "refusal");
    } else {
        cJSON_AddStringToObject(c, "text", content);
    }
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddStringToObject(c, "finish_reason", finish_name(r->finish));
    cJSON_AddItemToArray(choices, c);
    cJSON_AddItemToObject(root, "usage", usage_json(r));
    cJSON_AddItemToObject(root, "timings", timings_json(r));
    pl_srv_send_json(conn, s, 200, root);
    cJSON_Delete(root);
}

/* ---- preparing the request ---- */

/* The prompt tokens (chat: rendered through the template with the engine's
 * trimming; completion: the text as given). */
static pl_status build_prompt(job *j, pl_ctx *rctx, pl_conv *conv, pl_srv_error *e) {
    pl_server *s = j->s;
    pl_srv_req *r = j->r;
    const pl_tokenizer *tok = pl_engine_tokenizer(s->engine);
    if (j->kind == PL_SRV_KIND_CHAT) {
        pl_session_params sp = pl_session_default_params();
        sp.render_only = true;
        sp.n_ctx = s->n_ctx;
        /* room for the answer: what was asked, at most half the context */
        int64_t want = j->o.max_tokens ? j->o.max_tokens : s->n_ctx / 4;
        sp.reserve = (int32_t)(want < s->n_ctx / 2 ? want : s->n_ctx / 2);
        if (sp.reserve < 1) sp.reserve = 1;
        sp.sampling.max_tokens = 0;
        sp.reasoning = s->p.reasoning;
        sp.enable_thinking = j->o.enable_thinking;
        pl_session *sess = NULL;
        pl_status st = pl_session_init(rctx, s->engine, &sp, &sess);
        if (st != PL_OK) return pl_srv_err(e, 500, "server_error", NULL, "%s", pl_ctx_last_error(rctx));
        pl_conv *dst = pl_session_conv(sess);
        if (pl_conv_system(conv)) st = pl_conv_set_system(dst, pl_conv_system(conv));
        for (size_t i = 0; st == PL_OK && i < pl_conv_count(conv); i++) {
            const char *t = pl_conv_content(conv, i);
            st = pl_conv_add(dst, pl_conv_role(conv, i), t, strlen(t));
        }
        const pl_token *toks = NULL;
        int32_t n = 0;
        pl_turn_stats ts;
        if (st == PL_OK) st = pl_session_prompt(sess, &toks, &n, &ts);
        if (st == PL_OK && n > 0 && (r->prompt = pl_malloc(s->ctx, (size_t)n * sizeof *r->prompt))) {
            memcpy(r->prompt, toks, (size_t)n * sizeof *toks);
            r->n_prompt = n;
            const char *text = pl_session_prompt_text(sess);
            r->think_opens = s->p.reasoning != PL_THINK_MODE_NONE && pl_think_prompt_opens(text, strlen(text), NULL);
        }
        if (st == PL_ERR_CONTEXT_FULL) {
            pl_srv_err(e, 400, "invalid_request_error", "messages", "%s", pl_session_last_error(sess));
            e->code = "context_length_exceeded";
        } else if (st != PL_OK) {
            pl_srv_err(e, 400, "invalid_request_error", "messages", "%s",
                       pl_session_last_error(sess)[0] ? pl_session_last_error(sess) : pl_ctx_last_error(rctx));
        } else if (!r->prompt) {
            st = pl_srv_err(e, n ? 500 : 400, n ? "server_error" : "invalid_request_error", NULL, "%s",
                            n ? "out of memory" : "the template rendered an empty prompt");
        }
        pl_session_free(sess);
        return st == PL_OK ? PL_OK : PL_ERR_INVALID_ARG;
    }
    size_t cap = (size_t)s->n_ctx, n = 0;
    pl_tok_scratch *scratch = NULL;
    if (!(r->prompt = pl_calloc(s->ctx, cap, sizeof *r->prompt)) || pl_tok_scratch_init(tok, &scratch) != PL_OK) {
        pl_tok_scratch_free(scratch);
        return pl_srv_err(e, 500, "server_error", NULL, "out of memory");
    }
    pl_encode_params ep = pl_encode_default_params();
    ep.parse_special = true;
    pl_status st = pl_tokenizer_encode(tok, scratch, j->o.prompt, j->o.prompt_len, &ep, r->prompt, cap, &n);
    pl_tok_scratch_free(scratch);
    if (st == PL_ERR_RANGE || (st == PL_OK && n >= cap)) {
        pl_srv_err(e, 400, "invalid_request_error", "prompt", "the prompt is longer than the context of %d tokens",
                   s->n_ctx);
        e->code = "context_length_exceeded";
        return PL_ERR_INVALID_ARG;
    }
    if (st != PL_OK) return pl_srv_err(e, 400, "invalid_request_error", "prompt", "cannot tokenize the prompt");
    if (n == 0) return pl_srv_err(e, 400, "invalid_request_error", "prompt", "the prompt is empty");
    r->n_prompt = (int32_t)n;
    return PL_OK;
}

static pl_status build_stages(job *j, pl_ctx *rctx, pl_srv_error *e) {
    pl_server *s = j->s;
    pl_srv_req *r = j->r;
    int32_t room = s->n_ctx - r->n_prompt;
    int64_t want = j->o.max_tokens ? j->o.max_tokens : s->p.sampling.max_tokens;
    if (room < 1) {
        pl_srv_err(e, 400, "invalid_request_error", "messages", "the prompt fills the context of %d tokens", s->n_ctx);
        e->code = "context_length_exceeded";
        return PL_ERR_INVALID_ARG;
    }
    r->max_tokens = want > 0 && want < room ? (int32_t)want : room; /* capped at the context */
    r->ignore_eos = j->o.ignore_eos;
    /* the slot's sampler takes them at assignment (sched.c) */
    if (pl_sampler_params_check(rctx, &j->o.sampling, s->n_vocab) != PL_OK)
        return pl_srv_err(e, 400, "invalid_request_error", j->o.n_bias ? "logit_bias" : NULL, "%s",
                          pl_ctx_last_error(rctx));
    r->sampling = &j->o.sampling;
    if (pl_stop_init(rctx, (const char *const *)j->o.stops, j->o.n_stops, &r->stop) != PL_OK)
        return pl_srv_err(e, 400, "invalid_request_error", "stop", "%s", pl_ctx_last_error(rctx));
    pl_detok_params dp = pl_detok_default_params();
    dp.replace_invalid = true; /* JSON strings must be valid UTF-8 */
    if (pl_detok_init(pl_engine_tokenizer(s->engine), &dp, &r->detok) != PL_OK)
        return pl_srv_err(e, 500, "server_error", NULL, "out of memory");
    if (j->kind == PL_SRV_KIND_CHAT && s->p.reasoning != PL_THINK_MODE_NONE) {
        pl_think_params tp = pl_think_default_params();
        tp.mode = s->p.reasoning;
        tp.start_in_reasoning = r->think_opens;
        if (pl_think_init(rctx, &tp, &r->think) != PL_OK)
            return pl_srv_err(e, 500, "server_error", NULL, "out of memory");
    }
    return PL_OK;
}

int pl_srv_handle_completion(struct mg_connection *conn, pl_server *s, pl_srv_kind kind, const char *body,
                             size_t len) {
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_level = PL_LOG_LEVEL_NONE;
    pl_ctx *rctx = NULL; /* per request: error text of this thread's calls */
    pl_conv *conv = NULL;
    pl_srv_error e = { 0 };
    job j = { .s = s, .kind = kind };
    pl_status st = pl_ctx_init(&rctx, &cp);
    if (st == PL_OK) st = pl_conv_init(rctx, &conv);
    if (st != PL_OK) {
        pl_srv_err(&e, 500, "server_error", NULL, "out of memory");
        goto fail;
    }
    if ((st = pl_srv_parse_request(rctx, kind, body ? body : "", len, &s->p.sampling, conv, &j.o, &e)) != PL_OK)
        goto fail;
    if (!(j.r = pl_calloc(s->ctx, 1, sizeof *j.r))) {
        st = pl_srv_err(&e, 500, "server_error", NULL, "out of memory");
        goto fail;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j.r->cv, &ca);
    pthread_condattr_destroy(&ca);
    if ((st = build_prompt(&j, rctx, conv, &e)) != PL_OK || (st = build_stages(&j, rctx, &e)) != PL_OK) goto fail;
    pthread_mutex_lock(&s->mu);
    uint64_t id = ++s->next_id;
    pthread_mutex_unlock(&s->mu);
    snprintf(j.id, sizeof j.id, "%s-%08llx%016llx", kind == PL_SRV_KIND_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)s->created & 0xffffffffu, (unsigned long long)id);
    j.created = (int64_t)time(NULL);
    bool full;
    if (!pl_srv_submit(s, j.r, &full)) {
        pl_srv_err(&e, 503, "unavailable_error", NULL, "%s",
                   full ? "the server is busy: every slot is taken and the queue is full; retry shortly"
                        : "the server is not ready");
        e.code = full ? "server_busy" : NULL;
        pl_srv_send_error(conn, s, &e, "Retry-After: 1\r\n");
        pl_srv_req_free(s, j.r);
        j.r = NULL;
        goto out;
    }
    j.deadline = j.r->t_submit + (uint64_t)s->p.timeout_s * 1000000000u;
    if (j.o.stream) stream(conn, &j);
    else whole(conn, &j);
    pl_srv_req_free(s, j.r);
    j.r = NULL;
    goto out;
fail:
    pl_srv_send_error(conn, s, &e, NULL);
    pl_srv_req_free(s, j.r);
out:
    pl_srv_opts_free(rctx, &j.o);
    pl_conv_free(conv);
    pl_ctx_free(rctx);
    return e.http ? e.http : 200;
}
