/*
 * sched.c - the scheduler thread: loads the model, then runs decode steps
 * over the slots (continuous batching).
 *
 * One step:
 *   1. under the lock: finish cancelled requests, move queued requests into
 *      free slots (the slot whose cache shares the longest prefix with the
 *      prompt; its KV is truncated to that prefix, the rest is prefilled);
 *   2. build ONE batch: the pending token of every generating slot, then
 *      prompt chunks (at most prefill_chunk per slot, n_batch in all) of the
 *      slots still prefilling; a logit row only where a token is sampled;
 *   3. pl_context_decode;
 *   4. per row: sample, run detok -> stop -> think into the slot's stage
 *      buffers, decide the finish;
 *   5. under the lock: hand the staged text to the requests, publish stats,
 *      wake the HTTP threads.
 * Nothing here allocates per token: the batch arrays are sized at load
 * (n_batch), stage buffers grow geometrically and are kept across requests.
 */
#include <math.h>
#include <string.h>
#include <time.h>

#include "server/server_int.h"

static double ms_between(uint64_t a, uint64_t b) { return b > a ? (double)(b - a) / 1e6 : 0.0; }

static pl_status load(pl_server *s) {
    pl_model_params mp = pl_model_default_params();
    pl_status st = pl_model_load(s->ctx, s->model_path, &mp, &s->model);
    if (st != PL_OK) {
        snprintf(s->err, sizeof s->err, "%s", pl_ctx_last_error(s->ctx));
        return st;
    }
    pl_engine_params ep = pl_engine_default_params();
    ep.template_name = s->tmpl_name;
    ep.template_source = s->tmpl_src;
    if ((st = pl_engine_init(s->ctx, s->model, &ep, &s->engine)) != PL_OK) {
        snprintf(s->err, sizeof s->err, "%s", pl_ctx_last_error(s->ctx));
        return st;
    }
    const pl_model_info *mi = pl_model_get_info(s->model);
    int32_t n_ctx = s->p.n_ctx > 0 ? s->p.n_ctx : (mi->n_ctx_train < 4096 ? mi->n_ctx_train : 4096);
    int64_t n_kv = (int64_t)n_ctx * s->p.n_slots;
    if (n_kv > INT32_MAX) {
        snprintf(s->err, sizeof s->err, "context %d x %d slots is too large", n_ctx, s->p.n_slots);
        return PL_ERR_INVALID_ARG;
    }
    pl_context_params cp = pl_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = s->p.n_batch;
    cp.n_seq_max = s->p.n_slots;
    cp.n_kv = (int32_t)n_kv;
    cp.n_outputs_max = s->p.n_slots;
    cp.n_threads = s->p.n_threads;
    if ((st = pl_context_init(s->model, &cp, &s->lc)) != PL_OK) {
        snprintf(s->err, sizeof s->err, "%s", pl_ctx_last_error(s->ctx));
        return st;
    }
    s->n_ctx = pl_context_n_ctx(s->lc);
    s->n_vocab = mi->n_vocab;
    size_t nb = (size_t)s->p.n_batch;
    s->slots = pl_calloc(s->ctx, (size_t)s->p.n_slots, sizeof *s->slots);
    s->b_tok = pl_calloc(s->ctx, nb, sizeof *s->b_tok);
    s->b_pos = pl_calloc(s->ctx, nb, sizeof *s->b_pos);
    s->b_seq = pl_calloc(s->ctx, nb, sizeof *s->b_seq);
    s->b_out = pl_calloc(s->ctx, nb, sizeof *s->b_out);
    if (!s->slots || !s->b_tok || !s->b_pos || !s->b_seq || !s->b_out) goto oom;
    pl_ctx_params xp = pl_ctx_default_params();
    xp.log_level = PL_LOG_LEVEL_NONE;
    if (pl_ctx_init(&s->sched_ctx, &xp) != PL_OK) goto oom;
    size_t piece_cap = pl_tokenizer_max_piece(pl_engine_tokenizer(s->engine)) + 8;
    for (int i = 0; i < s->p.n_slots; i++) {
        pl_srv_slot *sl = &s->slots[i];
        sl->seq = i;
        sl->ctx = s->ctx;
        sl->out_row = -1;
        sl->itl_s = -1;
        sl->piece_cap = piece_cap;
        if (!(sl->cache = pl_calloc(s->ctx, (size_t)s->n_ctx, sizeof *sl->cache))) goto oom;
        if (!(sl->piece = pl_malloc(s->ctx, piece_cap))) goto oom;
        if (pl_sampler_init(s->sched_ctx, &s->p.sampling, s->n_vocab, &sl->sampler) != PL_OK) goto oom;
        for (int c = 0; c < PL_CHANNEL_COUNT; c++)
            if (!pl_srv_buf_put(s->ctx, &sl->stage[c], "", 0)) goto oom;
    }
    return PL_OK;
oom:
    snprintf(s->err, sizeof s->err, "out of memory for %d slots", s->p.n_slots);
    return PL_ERR_NOMEM;
}

/* ---- the text pipeline of one slot ---- */

static void on_channel(void *ud, pl_channel ch, const char *text, size_t len) {
    pl_srv_slot *sl = ud;
    /* the stage buffers are kept across requests: this grows only until the
     * largest step's text fits */
    if (!sl->oom && !pl_srv_buf_put(sl->ctx, &sl->stage[ch], text, len)) sl->oom = true;
}

static void on_stopped(void *ud, const char *text, size_t len) {
    pl_srv_slot *sl = ud;
    if (sl->req->think) pl_think_feed(sl->req->think, text, len, on_channel, sl);
    else on_channel(sl, PL_CHANNEL_CONTENT, text, len);
}

static const char *strip_nul(pl_srv_slot *sl, const char *text, size_t *len) {
    size_t n = 0;
    for (size_t i = 0; i < *len && n < sl->piece_cap; i++)
        if (text[i]) sl->piece[n++] = text[i];
    *len = n;
    return sl->piece;
}

static void finish(pl_srv_slot *sl, pl_finish f, bool flush) {
    pl_srv_req *r = sl->req;
    if (flush) {
        const char *text;
        size_t len;
        pl_detok_flush(r->detok, &text, &len);
        if (len && memchr(text, 0, len)) text = strip_nul(sl, text, &len);
        if (len && pl_stop_feed(r->stop, text, len, on_stopped, sl)) f = PL_FINISH_STOP;
        else pl_stop_finish(r->stop, on_stopped, sl);
        if (r->think) pl_think_finish(r->think, on_channel, sl);
    }
    sl->finished = true;
    sl->finish = f;
}

/* Sample and run the pipeline for the slot's row (sets sl->finished at the end). */
static void take_token(pl_server *s, pl_srv_slot *sl, uint64_t now) {
    pl_srv_req *r = sl->req;
    const float *logits = pl_context_logits(s->lc, sl->out_row);
    int32_t id = logits ? pl_sampler_sample(sl->sampler, logits) : PL_ERR_RANGE;
    if (id < 0 || id >= s->n_vocab) {
        r->error = PL_ERR_RANGE;
        finish(sl, PL_FINISH_STOP, false);
        return;
    }
    pl_sampler_accept(sl->sampler, id);
    if (!r->t_first) r->t_first = now;
    else sl->itl_s = ms_between(sl->t_tok, now) / 1e3; /* into the histogram under the lock (publish) */
    sl->t_tok = now;
    r->t_last = now;
    const pl_tokenizer *tok = pl_engine_tokenizer(s->engine);
    if (pl_tokenizer_is_eog(tok, id) && !r->ignore_eos) {
        finish(sl, PL_FINISH_STOP, true);
        return;
    }
    r->n_gen++;
    if (r->think && pl_think_in_reasoning(r->think)) r->n_reasoning++;
    const char *text;
    size_t len;
    if (pl_detok_push(r->detok, id, &text, &len) == PL_OK && len) {
        if (memchr(text, 0, len)) text = strip_nul(sl, text, &len);
        if (len && pl_stop_feed(r->stop, text, len, on_stopped, sl)) {
            if (r->think) pl_think_finish(r->think, on_channel, sl);
            finish(sl, PL_FINISH_STOP, false);
            return;
        }
    }
    if (r->n_gen >= r->max_tokens || sl->n_cache >= s->n_ctx) {
        finish(sl, PL_FINISH_LENGTH, true);
        return;
    }
    sl->gen = true;
    sl->next = id;
}

/* ---- slots and the queue (under the lock) ---- */

static int32_t common_prefix(const pl_token *a, int32_t na, const pl_token *b, int32_t nb) {
    int32_t k = 0;
    while (k < na && k < nb && a[k] == b[k]) k++;
    return k;
}

static void req_finish_locked(pl_server *s, pl_srv_req *r, pl_finish f);

static void assign(pl_server *s, pl_srv_req *r, uint64_t now) {
    int best = -1;
    int32_t best_k = -1;
    for (int i = 0; i < s->p.n_slots; i++) {
        pl_srv_slot *sl = &s->slots[i];
        if (sl->req) continue;
        int32_t k = common_prefix(sl->cache, sl->n_cache, r->prompt, r->n_prompt);
        /* longest prefix; among equals the least recently used (its cache is
         * the least likely to be wanted again) */
        if (k > best_k || (k == best_k && sl->used < s->slots[best].used)) {
            best = i;
            best_k = k;
        }
    }
    pl_srv_slot *sl = &s->slots[best];
    /* the request's params (checked by its HTTP thread): this can fail only
     * for memory, when its bias list or penalty window is the longest yet */
    pl_status st = pl_sampler_set_params(sl->sampler, r->sampling);
    if (st != PL_OK) {
        pl_log(s->ctx, PL_LOG_LEVEL_ERROR, "serve: sampler: %s", pl_ctx_last_error(s->sched_ctx));
        r->error = st;
        req_finish_locked(s, r, PL_FINISH_STOP);
        return;
    }
    /* always decode at least the prompt's last token: its logits give the
     * first answer token */
    int32_t keep = best_k < r->n_prompt ? best_k : r->n_prompt - 1;
    pl_context_kv_truncate(s->lc, sl->seq, keep);
    sl->n_cache = keep;
    sl->n_cache_pub = keep;
    sl->n_done = keep;
    sl->req = r;
    sl->gen = false;
    sl->finished = false;
    sl->oom = false;
    sl->out_row = -1;
    sl->used = s->step;
    for (int c = 0; c < PL_CHANNEL_COUNT; c++) sl->stage[c].len = 0;
    r->assigned = true;
    r->slot = best;
    r->n_cached = keep;
    r->t_assigned = now;
    pl_stop_reset(r->stop);
    pl_detok_reset(r->detok);
    if (r->think) pl_think_reset(r->think, r->think_opens);
    s->busy++;
}

static void req_finish_locked(pl_server *s, pl_srv_req *r, pl_finish f) {
    r->finish = f;
    r->done = true;
    if (r->assigned && r->error == PL_OK) {
        s->metrics.requests_done++;
        s->metrics.prompt_tokens += (uint64_t)r->n_prompt;
        s->metrics.cached_tokens += (uint64_t)r->n_cached;
        s->metrics.generated_tokens += (uint64_t)r->n_gen;
        if (r->t_first) pl_srv_hist_add(&s->metrics.ttft, ms_between(r->t_submit, r->t_first) / 1e3);
    }
    pthread_cond_broadcast(&r->cv);
}

/* Take the slot's staged text into the request (locked). */
static void publish(pl_server *s, pl_srv_slot *sl) {
    pl_srv_req *r = sl->req;
    if (sl->itl_s >= 0) pl_srv_hist_add(&s->metrics.itl, sl->itl_s);
    sl->itl_s = -1;
    for (int c = 0; c < PL_CHANNEL_COUNT; c++) {
        if (sl->stage[c].len && !pl_srv_buf_put(s->ctx, &r->pend[c], sl->stage[c].data, sl->stage[c].len))
            sl->oom = true;
        sl->stage[c].len = 0;
    }
    if (sl->oom && r->error == PL_OK) {
        r->error = PL_ERR_NOMEM;
        sl->finished = true;
    }
    if (sl->finished) {
        req_finish_locked(s, r, sl->finish);
        sl->req = NULL;
        sl->gen = false;
        s->busy--;
    } else {
        pthread_cond_broadcast(&r->cv);
    }
}

/* Under the lock: cancellations and new assignments. */
static void admit(pl_server *s, uint64_t now) {
    for (int i = 0; i < s->p.n_slots; i++) {
        pl_srv_slot *sl = &s->slots[i];
        if (sl->req && (atomic_load(&sl->req->cancel) || s->quit)) {
            /* the KV holds what was decoded: keep it for prefix reuse */
            finish(sl, PL_FINISH_CANCEL, false);
            publish(s, sl);
        }
    }
    pl_srv_req **pp = &s->queue_head;
    while (*pp) {
        pl_srv_req *r = *pp;
        if (atomic_load(&r->cancel) || s->quit) {
            *pp = r->next;
            s->queue_len--;
            req_finish_locked(s, r, PL_FINISH_CANCEL);
            continue;
        }
        if (s->busy >= s->p.n_slots) break;
        *pp = r->next;
        s->queue_len--;
        assign(s, r, now);
    }
    s->queue_tail = NULL;
    for (pl_srv_req *r = s->queue_head; r; r = r->next) s->queue_tail = r;
}

/* One decode step over the busy slots. */
static void step(pl_server *s) {
    int32_t n = 0, n_out = 0, nb = s->p.n_batch;
    /* generating slots first: one token each */
    for (int i = 0; i < s->p.n_slots; i++) {
        pl_srv_slot *sl = &s->slots[i];
        sl->out_row = -1;
        if (!sl->req || !sl->gen || n >= nb) continue;
        s->b_tok[n] = sl->next;
        s->b_pos[n] = sl->n_cache;
        s->b_seq[n] = sl->seq;
        s->b_out[n] = 1;
        sl->out_row = n_out++;
        n++;
    }
    /* then prompt chunks */
    for (int i = 0; i < s->p.n_slots && n < nb; i++) {
        pl_srv_slot *sl = &s->slots[i];
        if (!sl->req || sl->gen) continue;
        pl_srv_req *r = sl->req;
        int32_t take = r->n_prompt - sl->n_done;
        if (take > s->p.prefill_chunk) take = s->p.prefill_chunk;
        if (take > nb - n) take = nb - n;
        for (int32_t k = 0; k < take; k++, n++) {
            s->b_tok[n] = r->prompt[sl->n_done + k];
            s->b_pos[n] = sl->n_done + k;
            s->b_seq[n] = sl->seq;
            s->b_out[n] = 0;
        }
        if (sl->n_done + take == r->n_prompt) {
            s->b_out[n - 1] = 1;
            sl->out_row = n_out++;
        }
    }
    if (n == 0) return;
    pl_batch b = { .n_tokens = n, .tokens = s->b_tok, .pos = s->b_pos, .seq_id = s->b_seq, .output = s->b_out };
    pl_status st = pl_context_decode(s->lc, &b);
    uint64_t now = pl_time_ns();
    pl_decode_perf perf;
    pl_context_perf(s->lc, &perf);
    pthread_mutex_lock(&s->mu);
    s->metrics.perf = perf;
    if (st != PL_OK) {
        pl_log(s->ctx, PL_LOG_LEVEL_ERROR, "serve: decode: %s", pl_context_last_error(s->lc));
        for (int i = 0; i < s->p.n_slots; i++) {
            pl_srv_slot *sl = &s->slots[i];
            if (!sl->req) continue;
            /* the cache no longer says what the sequence holds: start it over */
            pl_context_kv_truncate(s->lc, sl->seq, 0);
            sl->n_cache = 0;
            sl->req->error = st;
            finish(sl, PL_FINISH_STOP, false);
            publish(s, sl);
        }
        pthread_mutex_unlock(&s->mu);
        return;
    }
    pthread_mutex_unlock(&s->mu);
    /* account for the decoded tokens, then sample (outside the lock: the
     * sampler and stages belong to the scheduler while the request runs) */
    for (int i = 0; i < s->p.n_slots; i++) {
        pl_srv_slot *sl = &s->slots[i];
        if (!sl->req) continue;
        pl_srv_req *r = sl->req;
        if (sl->gen) {
            if (sl->out_row < 0) continue; /* did not fit this step */
            sl->cache[sl->n_cache++] = sl->next;
        } else {
            int32_t added = 0;
            for (int32_t k = 0; k < n; k++) added += s->b_seq[k] == sl->seq;
            memcpy(sl->cache + sl->n_done, r->prompt + sl->n_done, (size_t)added * sizeof *sl->cache);
            sl->n_done += added;
            sl->n_cache = sl->n_done;
            if (sl->out_row < 0) continue; /* more prompt to go */
            r->t_prefilled = now;
        }
        take_token(s, sl, now);
    }
    pthread_mutex_lock(&s->mu);
    int64_t kv = 0;
    for (int i = 0; i < s->p.n_slots; i++) {
        pl_srv_slot *sl = &s->slots[i];
        kv += sl->n_cache;
        sl->n_cache_pub = sl->n_cache;
        if (sl->req && (sl->out_row >= 0 || sl->finished)) publish(s, sl);
    }
    s->kv_used = kv;
    pthread_mutex_unlock(&s->mu);
}

void *pl_srv_sched_main(void *arg) {
    pl_server *s = arg;
    if (s->p.on_load) s->p.on_load(s->p.hook_ud);
    pl_status st = load(s);
    pthread_mutex_lock(&s->mu);
    s->load_status = st;
    if (atomic_load(&s->state) == 0) atomic_store(&s->state, st == PL_OK ? 1 : 2);
    pthread_cond_broadcast(&s->loaded_cv);
    pthread_mutex_unlock(&s->mu);
    if (st != PL_OK) {
        pl_log(s->ctx, PL_LOG_LEVEL_ERROR, "serve: cannot load the model: %s", s->err);
        /* still answer the queue (it is empty: nothing is admitted before
         * ready) until told to quit */
    }
    for (;;) {
        pthread_mutex_lock(&s->mu);
        if (st == PL_OK) admit(s, pl_time_ns());
        if (s->quit && s->busy == 0) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        if (s->busy == 0 || st != PL_OK) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            pl_timespec_add_ms(&ts, 100);
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        s->step++;
        step(s);
        if (s->p.on_step) s->p.on_step(s->p.hook_ud);
    }
    return NULL;
}

bool pl_srv_submit(pl_server *s, pl_srv_req *r, bool *full) {
    *full = false;
    pthread_mutex_lock(&s->mu);
    bool ok = atomic_load(&s->state) == 1 && !s->quit;
    if (ok && s->queue_len >= s->p.max_queue + (s->p.n_slots - s->busy)) {
        ok = false;
        *full = true;
    }
    if (ok) {
        r->t_submit = pl_time_ns();
        r->next = NULL;
        if (s->queue_tail) s->queue_tail->next = r;
        else s->queue_head = r;
        s->queue_tail = r;
        s->queue_len++;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

void pl_srv_wait_done(pl_server *s, pl_srv_req *r) {
    pthread_mutex_lock(&s->mu);
    pthread_cond_signal(&s->cv); /* a cancel may be waiting to be seen */
    while (!r->done) pthread_cond_wait(&r->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

void pl_srv_req_free(pl_server *s, pl_srv_req *r) {
    if (!r) return;
    pl_detok_free(r->detok);
    pl_stop_free(r->stop);
    pl_think_free(r->think);
    for (int c = 0; c < PL_CHANNEL_COUNT; c++) pl_free(s->ctx, r->pend[c].data);
    pl_free(s->ctx, r->prompt);
    pthread_cond_destroy(&r->cv);
    pl_free(s->ctx, r);
}
