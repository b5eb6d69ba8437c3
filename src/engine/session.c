/*
 * session.c - pl_session: one conversation on a KV cache. A turn renders the
 * prompt (prompt.c), reuses the longest cached prefix, prefills the rest and
 * samples the answer token by token through detok -> stop -> think.
 */
#include <string.h>

#include "engine/engine_int.h"

pl_session_params pl_session_default_params(void) {
    return (pl_session_params){
        .sampling = pl_sampler_default_params(),
        .trim_target = 75,
        .reasoning = PL_THINK_MODE_SEPARATE,
        .enable_thinking = true,
    };
}

void pl_session_free(pl_session *s) {
    if (!s) return;
    pl_ctx *ctx = s->ctx;
    if (s->own_lc) pl_context_free(s->lc);
    pl_sampler_free(s->sampler);
    pl_detok_free(s->detok);
    pl_stop_free(s->stop);
    pl_think_free(s->think);
    pl_tok_scratch_free(s->scratch);
    pl_template_buf_free(&s->text);
    pl_conv_free(s->conv);
    for (size_t i = 0; s->stops && i < s->p.n_stops; i++) pl_free(ctx, s->stops[i]);
    pl_free(ctx, s->stops);
    pl_free(ctx, s->prompt);
    pl_free(ctx, s->piece);
    pl_free(ctx, s->cache);
    pl_free(ctx, s->content.data);
    pl_free(ctx, s->reasoning.data);
    pl_free(ctx, s);
}

/* max_tokens + reserve must leave room for a prompt. */
static pl_status compute_budget(const pl_session *s, int32_t *budget) {
    int64_t b = (int64_t)s->n_ctx - s->p.sampling.max_tokens - s->p.reserve;
    if (s->p.history_budget > 0 && s->p.history_budget < b) b = s->p.history_budget;
    if (b < 1) return PL_ERR_INVALID_ARG;
    *budget = (int32_t)b;
    return PL_OK;
}

pl_status pl_session_init(pl_ctx *ctx, const pl_engine *e, const pl_session_params *params, pl_session **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    if (!e) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "session: no engine");
    pl_session_params p = params ? *params : pl_session_default_params();
    if (p.reserve < 0 || p.history_budget < 0 || p.sampling.max_tokens < 0 || p.trim_target < 1 ||
        p.trim_target > 100 || (unsigned)p.reasoning >= PL_THINK_MODE_COUNT || (p.n_stops && !p.stops))
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "session: bad parameters");
    pl_session *s = pl_calloc(ctx, 1, sizeof *s);
    if (!s) return pl_ctx_err(ctx, PL_ERR_NOMEM, "session: out of memory");
    s->ctx = ctx;
    s->e = e;
    s->p = p;
    s->p.stops = NULL;
    s->p.n_stops = 0;
    s->text.ctx = ctx;
    pl_status st;
    if (p.n_stops) {
        if (!(s->stops = pl_calloc(ctx, p.n_stops, sizeof *s->stops))) goto oom;
        s->p.n_stops = p.n_stops;
        for (size_t i = 0; i < p.n_stops; i++)
            if (!(s->stops[i] = pl_strdup(ctx, p.stops[i] ? p.stops[i] : ""))) goto oom;
        s->p.stops = (const char *const *)s->stops;
    }
    if (p.render_only) {
        if (p.n_ctx <= 0) {
            st = pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "session: a render-only session needs n_ctx");
            goto fail;
        }
    } else if (p.context) {
        s->lc = p.context;
        s->seq = p.seq;
        if (pl_context_model(s->lc) != e->model) {
            st = pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "session: the borrowed context is for another model");
            goto fail;
        }
        if ((st = pl_context_kv_truncate(s->lc, s->seq, 0)) != PL_OK) {
            pl_ctx_err(ctx, st, "session: %s", pl_context_last_error(s->lc));
            goto fail;
        }
    } else {
        pl_context_params cp = pl_context_default_params();
        cp.n_ctx = p.n_ctx;
        cp.n_batch = p.n_batch;
        cp.n_threads = p.n_threads;
        cp.pool = p.pool;
        if ((st = pl_context_init(e->model, &cp, &s->lc)) != PL_OK) goto fail; /* message on the model's ctx */
        s->own_lc = true;
        s->seq = 0;
    }
    s->n_ctx = s->lc ? pl_context_n_ctx(s->lc) : p.n_ctx;
    s->n_vocab = pl_model_get_info(e->model)->n_vocab;
    int32_t budget;
    if (compute_budget(s, &budget) != PL_OK) {
        st = pl_ctx_err(ctx, PL_ERR_INVALID_ARG,
                        "session: max_tokens %d + reserve %d leave no room for a prompt in a context of %d tokens",
                        p.sampling.max_tokens, p.reserve, s->n_ctx);
        goto fail;
    }
    if ((st = pl_sampler_init(ctx, &p.sampling, s->n_vocab, &s->sampler)) != PL_OK) goto fail;
    s->p.sampling.logit_bias = NULL; /* the caller's array: the sampler keeps its own copy */
    s->p.sampling.n_logit_bias = 0;
    pl_think_params tp = pl_think_default_params();
    tp.mode = p.reasoning;
    if ((st = pl_think_init(ctx, &tp, &s->think)) != PL_OK) goto fail;
    if ((st = pl_stop_init(ctx, s->p.stops, s->p.n_stops, &s->stop)) != PL_OK) goto fail;
    if ((st = pl_detok_init(e->tok, NULL, &s->detok)) != PL_OK) goto fail;
    if ((st = pl_tok_scratch_init(e->tok, &s->scratch)) != PL_OK) goto fail;
    if ((st = pl_conv_init(ctx, &s->conv)) != PL_OK) goto fail;
    s->piece_cap = pl_tokenizer_max_piece(e->tok) + 8; /* + a held partial UTF-8 sequence */
    s->piece = pl_malloc(ctx, s->piece_cap);
    s->prompt = pl_calloc(ctx, (size_t)s->n_ctx, sizeof *s->prompt);
    s->cache = pl_calloc(ctx, (size_t)s->n_ctx, sizeof *s->cache);
    s->content.data = pl_malloc(ctx, s->content.cap = 4096);
    s->reasoning.data = pl_malloc(ctx, s->reasoning.cap = 4096);
    if (!s->piece || !s->prompt || !s->cache || !s->content.data || !s->reasoning.data) goto oom;
    *out = s;
    return PL_OK;
oom:
    st = pl_ctx_err(ctx, PL_ERR_NOMEM, "session: out of memory");
fail:
    pl_session_free(s);
    return st;
}

/* ---- the text pipeline: detok -> stop -> think -> callback + reply buffers ---- */

static void buf_put(pl_session *s, pl_ebuf *b, const char *t, size_t len) {
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap;
        while (cap < b->len + len + 1)
            if (!pl_size_mul(cap, 2, &cap)) {
                s->oom = true;
                return;
            }
        char *d = pl_realloc(s->ctx, b->data, cap);
        if (!d) {
            s->oom = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, t, len);
    b->len += len;
    b->data[b->len] = 0;
}

static void on_channel(void *ud, pl_channel ch, const char *text, size_t len) {
    pl_session *s = ud;
    buf_put(s, ch == PL_CHANNEL_REASONING ? &s->reasoning : &s->content, text, len);
    if (s->cb && s->cb->on_text) s->cb->on_text(s->cb->ud, ch, text, len);
}

static void on_stopped_text(void *ud, const char *text, size_t len) {
    pl_session *s = ud;
    pl_think_feed(s->think, text, len, on_channel, s);
}

/* NUL bytes (a model can emit the byte token 0) would cut the answer short
 * in every C string downstream: drop them. Copies into s->piece, sized at
 * init for the longest token piece. */
static const char *strip_nul(pl_session *s, const char *text, size_t *len) {
    size_t n = 0;
    for (size_t i = 0; i < *len && n < s->piece_cap; i++)
        if (text[i]) s->piece[n++] = text[i];
    *len = n;
    return s->piece;
}

/* ---- turns ---- */

static double ms_between(uint64_t a, uint64_t b) { return b > a ? (double)(b - a) / 1e6 : 0.0; }

pl_status pl_session_prompt(pl_session *s, const pl_token **tokens, int32_t *n_tokens, pl_turn_stats *stats) {
    if (!s) return PL_ERR_INVALID_ARG;
    pl_turn_stats st = { 0 };
    s->err[0] = 0;
    if (compute_budget(s, &st.budget) != PL_OK)
        return pl_session_err(s, PL_ERR_INVALID_ARG, "max_tokens leaves no room for a prompt");
    pl_status rc = pl_session_build_prompt(s, &st);
    if (rc != PL_OK) return rc;
    int32_t k = 0;
    while (k < s->n_prompt && k < s->n_cache && s->prompt[k] == s->cache[k]) k++;
    st.cached_tokens = k;
    st.prefill_tokens = s->n_prompt - k;
    st.kv_tokens = s->n_cache;
    if (tokens) *tokens = s->prompt;
    if (n_tokens) *n_tokens = s->n_prompt;
    if (stats) *stats = st;
    return PL_OK;
}

pl_status pl_session_respond(pl_session *s, const pl_turn_callbacks *cb, pl_turn_stats *stats) {
    if (!s) return PL_ERR_INVALID_ARG;
    if (!s->lc) return pl_session_err(s, PL_ERR_INVALID_ARG, "a render-only session cannot respond");
    uint64_t t0 = pl_time_ns();
    s->generating = false;
    pl_turn_stats st;
    pl_status rc = pl_session_prompt(s, NULL, NULL, &st);
    if (rc != PL_OK) {
        if (stats) *stats = st;
        return rc;
    }
    if (s->n_prompt == 0) return pl_session_err(s, PL_ERR_INVALID_ARG, "the template rendered an empty prompt");

    /* Prefix reuse: keep the common prefix, but always decode at least the
     * prompt's last token (its logits give the first answer token). */
    int32_t keep = st.cached_tokens < s->n_prompt ? st.cached_tokens : s->n_prompt - 1;
    if ((rc = pl_context_kv_truncate(s->lc, s->seq, keep)) != PL_OK)
        return pl_session_err(s, rc, "%s", pl_context_last_error(s->lc));
    s->n_cache = keep;
    st.cached_tokens = keep;
    st.prefill_tokens = s->n_prompt - keep;
    pl_batch b = { .n_tokens = s->n_prompt - keep, .tokens = s->prompt + keep, .seq = s->seq };
    if ((rc = pl_context_decode(s->lc, &b)) != PL_OK)
        return pl_session_err(s, rc, "prefill: %s", pl_context_last_error(s->lc));
    memcpy(s->cache + keep, s->prompt + keep, (size_t)(s->n_prompt - keep) * sizeof *s->cache);
    s->n_cache = s->n_prompt;
    s->generating = true;
    uint64_t t1 = pl_time_ns();
    st.prefill_ms = ms_between(t0, t1);
    st.prefill_tok_s = st.prefill_ms > 0 ? st.prefill_tokens / (st.prefill_ms / 1e3) : 0;

    /* generation */
    const pl_tokenizer *tok = s->e->tok;
    bool opens = s->p.reasoning != PL_THINK_MODE_NONE && pl_think_prompt_opens(s->text.data, s->text.len, NULL);
    pl_think_reset(s->think, opens);
    pl_stop_reset(s->stop);
    pl_detok_reset(s->detok);
    s->content.len = s->reasoning.len = 0;
    s->content.data[0] = s->reasoning.data[0] = 0;
    s->oom = false;
    s->cb = cb;
    int32_t max_tokens = pl_sampler_params_get(s->sampler)->max_tokens;
    uint64_t t_first = 0, t_last = t1;
    bool stopped = false;
    st.finish = PL_FINISH_LENGTH;
    for (;;) {
        if (cb && cb->cancel && *cb->cancel) {
            st.finish = PL_FINISH_CANCEL;
            break;
        }
        const float *logits = pl_context_logits(s->lc, pl_context_n_outputs(s->lc) - 1);
        int32_t id = s->p.pick ? s->p.pick(s->p.pick_ud, logits, s->n_vocab) : pl_sampler_sample(s->sampler, logits);
        if (id < 0 || id >= s->n_vocab) {
            rc = pl_session_err(s, id < 0 ? (pl_status)id : PL_ERR_RANGE, "sampling failed: %s",
                                id < 0 ? pl_status_str((pl_status)id) : "token out of range");
            goto fail;
        }
        t_last = pl_time_ns();
        if (!t_first) t_first = t_last;
        if (!s->p.pick) pl_sampler_accept(s->sampler, id);
        if (cb && cb->on_token) cb->on_token(cb->ud, id);
        if (pl_tokenizer_is_eog(tok, id)) {
            st.finish = PL_FINISH_STOP;
            break;
        }
        st.generated_tokens++;
        if (pl_think_in_reasoning(s->think)) st.reasoning_tokens++;
        const char *text;
        size_t len;
        if (pl_detok_push(s->detok, id, &text, &len) == PL_OK && len && memchr(text, 0, len))
            text = strip_nul(s, text, &len);
        if (len && pl_stop_feed(s->stop, text, len, on_stopped_text, s)) {
            st.finish = PL_FINISH_STOP;
            stopped = true;
            break;
        }
        if (s->oom) {
            rc = pl_session_err(s, PL_ERR_NOMEM, "out of memory for the answer");
            goto fail;
        }
        if (max_tokens > 0 && st.generated_tokens >= max_tokens) break;
        if (s->n_cache >= s->n_ctx) break; /* the context is full: "length" */
        pl_batch nb = { .n_tokens = 1, .tokens = &id, .seq = s->seq };
        if ((rc = pl_context_decode(s->lc, &nb)) != PL_OK) {
            if (rc == PL_ERR_CONTEXT_FULL) break; /* the KV pool is shared and full */
            rc = pl_session_err(s, rc, "decode: %s", pl_context_last_error(s->lc));
            goto fail;
        }
        s->cache[s->n_cache++] = id;
    }
    if (!stopped) { /* flush what the stages hold back */
        const char *text;
        size_t len;
        pl_detok_flush(s->detok, &text, &len);
        if (len && memchr(text, 0, len)) text = strip_nul(s, text, &len);
        if (len && pl_stop_feed(s->stop, text, len, on_stopped_text, s)) st.finish = PL_FINISH_STOP;
        else pl_stop_finish(s->stop, on_stopped_text, s);
    }
    pl_think_finish(s->think, on_channel, s);
    s->cb = NULL;
    if (s->oom) {
        rc = pl_session_err(s, PL_ERR_NOMEM, "out of memory for the answer");
        goto fail;
    }
    if ((rc = pl_conv_add(s->conv, PL_ROLE_ASSISTANT, s->content.data, s->content.len)) != PL_OK) {
        pl_session_err(s, rc, "%s", pl_ctx_last_error(s->ctx));
        goto fail;
    }
    s->conv_version = s->conv->version; /* appending keeps the trim point */
    st.ttft_ms = ms_between(t0, t_first);
    st.gen_ms = ms_between(t_first, t_last);
    st.gen_tok_s = st.generated_tokens > 1 && st.gen_ms > 0 ? (st.generated_tokens - 1) / (st.gen_ms / 1e3) : 0;
    st.kv_tokens = s->n_cache;
    if (stats) *stats = st;
    return PL_OK;
fail:
    s->cb = NULL;
    st.kv_tokens = s->n_cache;
    if (stats) *stats = st;
    return rc;
}

pl_status pl_session_turn(pl_session *s, const char *user_text, size_t len, const pl_turn_callbacks *cb,
                          pl_turn_stats *stats) {
    if (!s) return PL_ERR_INVALID_ARG;
    bool synced = s->conv_version == s->conv->version;
    size_t first = s->first;
    pl_status rc = pl_conv_add(s->conv, PL_ROLE_USER, user_text, len);
    if (rc != PL_OK) return pl_session_err(s, rc, "%s", pl_ctx_last_error(s->ctx));
    rc = pl_session_respond(s, cb, stats);
    if (rc != PL_OK && !s->generating) {
        /* failed before generation: take the message back, and the trim point */
        pl_conv_pop(s->conv);
        if (synced) {
            s->conv_version = s->conv->version;
            s->first = first;
        }
    }
    return rc;
}

pl_conv *pl_session_conv(pl_session *s) { return s ? s->conv : NULL; }

void pl_session_reset(pl_session *s) {
    if (!s) return;
    pl_conv_clear(s->conv);
    if (s->lc) pl_context_kv_truncate(s->lc, s->seq, 0);
    s->n_cache = 0;
    s->first = 0;
    s->conv_version = s->conv->version;
}

pl_status pl_session_set_sampling(pl_session *s, const pl_sampler_params *p) {
    if (!s || !p) return PL_ERR_INVALID_ARG;
    pl_sampler *ns = NULL;
    pl_status rc = pl_sampler_init(s->ctx, p, s->n_vocab, &ns);
    if (rc != PL_OK) return pl_session_err(s, rc, "%s", pl_ctx_last_error(s->ctx));
    pl_sampler_params old = s->p.sampling;
    s->p.sampling = *p;
    int32_t budget;
    if (compute_budget(s, &budget) != PL_OK) {
        s->p.sampling = old;
        pl_sampler_free(ns);
        return pl_session_err(s, PL_ERR_INVALID_ARG, "max_tokens %d leaves no room for a prompt (n_ctx %d)",
                              p->max_tokens, s->n_ctx);
    }
    s->p.sampling.logit_bias = NULL; /* the caller's array; the sampler has its copy */
    s->p.sampling.n_logit_bias = 0;
    pl_sampler_free(s->sampler);
    s->sampler = ns;
    return PL_OK;
}

pl_status pl_session_set_stops(pl_session *s, const char *const *stops, size_t n_stops) {
    if (!s || (n_stops && !stops)) return PL_ERR_INVALID_ARG;
    pl_stop *ns = NULL;
    char **copy = n_stops ? pl_calloc(s->ctx, n_stops, sizeof *copy) : NULL;
    pl_status rc = n_stops && !copy ? PL_ERR_NOMEM : PL_OK;
    for (size_t i = 0; rc == PL_OK && i < n_stops; i++)
        if (!(copy[i] = pl_strdup(s->ctx, stops[i] ? stops[i] : ""))) rc = PL_ERR_NOMEM;
    if (rc == PL_OK) rc = pl_stop_init(s->ctx, (const char *const *)copy, n_stops, &ns);
    if (rc != PL_OK) {
        for (size_t i = 0; copy && i < n_stops; i++) pl_free(s->ctx, copy[i]);
        pl_free(s->ctx, copy);
        return pl_session_err(s, rc, "stop strings: %s", rc == PL_ERR_NOMEM ? "out of memory" : pl_ctx_last_error(s->ctx));
    }
    for (size_t i = 0; s->stops && i < s->p.n_stops; i++) pl_free(s->ctx, s->stops[i]);
    pl_free(s->ctx, s->stops);
    pl_stop_free(s->stop);
    s->stop = ns;
    s->stops = copy;
    s->p.stops = (const char *const *)copy;
    s->p.n_stops = n_stops;
    return PL_OK;
}

int32_t pl_session_n_ctx(const pl_session *s) { return s ? s->n_ctx : 0; }

int32_t pl_session_kv_tokens(const pl_session *s, const pl_token **tokens) {
    if (!s) return 0;
    if (tokens) *tokens = s->cache;
    return s->n_cache;
}

const char *pl_session_prompt_text(const pl_session *s) { return s && s->text.data ? s->text.data : ""; }
const pl_session_params *pl_session_params_get(const pl_session *s) { return s ? &s->p : NULL; }
const char *pl_session_last_error(const pl_session *s) { return s ? s->err : ""; }
