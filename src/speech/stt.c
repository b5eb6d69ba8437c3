/*
 * stt.c - the STT front: backend table, utterance bookkeeping (length limit,
 * timing), cancel flag, error text.
 */
#include <stdio.h>
#include <string.h>

#include "speech/speech_int.h"

typedef enum pl_stt_backend_id {
    PL_STT_BACKEND_POCKETSPHINX = 0,
    PL_STT_BACKEND_WHISPER,
    PL_STT_BACKEND_COUNT
} pl_stt_backend_id;

extern const pl_stt_backend pl_stt_backend_whisper; /* stt_whisper.c */

static const pl_stt_backend *const backends[PL_STT_BACKEND_COUNT] = {
    [PL_STT_BACKEND_POCKETSPHINX] = &pl_stt_backend_pocketsphinx,
    [PL_STT_BACKEND_WHISPER] = &pl_stt_backend_whisper,
};

struct pl_stt {
    pl_ctx               *ctx;
    const pl_stt_backend *be;
    void                 *state;
    pl_stt_params         p;
    atomic_bool           cancel;
    uint64_t              utt_samples, max_samples;
    uint64_t              feed_ns, partial_ns;
    uint32_t              n_partials;
    char                  err[256];
};

size_t pl_stt_backend_count(void) { return PL_STT_BACKEND_COUNT; }

const pl_stt_backend *pl_stt_backend_at(size_t i) {
    return i < PL_STT_BACKEND_COUNT ? backends[i] : NULL;
}

const pl_stt_backend *pl_stt_backend_find(const char *name) {
    for (size_t i = 0; name && i < PL_STT_BACKEND_COUNT; i++)
        if (strcmp(backends[i]->name, name) == 0) return backends[i];
    return NULL;
}

pl_stt_params pl_stt_default_params(void) {
    return (pl_stt_params){
        .backend = "pocketsphinx",
        .language = "en",
        .max_utterance_s = 600.0,
    };
}

static pl_status fail(pl_stt *s, pl_status st, const char *what) {
    const char *msg = s->be->error ? s->be->error(s->state) : NULL;
    snprintf(s->err, sizeof s->err, "stt: %s: %s: %s", s->be->name, what,
             msg && *msg ? msg : pl_status_str(st));
    return st;
}

pl_status pl_stt_init(pl_ctx *ctx, const pl_stt_params *params, pl_stt **out) {
    if (!out) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "stt: out is NULL");
    *out = NULL;
    pl_stt_params p = params ? *params : pl_stt_default_params();
    if (!p.language) p.language = "en";
    if (!(p.max_utterance_s > 0.0)) p.max_utterance_s = 600.0;
    if (p.max_utterance_s > 86400.0)
        return pl_ctx_err(ctx, PL_ERR_RANGE, "stt: max_utterance_s above a day");
    const pl_stt_backend *be = p.backend_impl;
    if (!be) {
        const char *name = p.backend ? p.backend : "pocketsphinx";
        be = pl_stt_backend_find(name);
        if (!be) {
            char list[128] = "";
            for (size_t i = 0; i < PL_STT_BACKEND_COUNT; i++) {
                size_t len = strlen(list);
                snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", backends[i]->name);
            }
            return pl_ctx_err(ctx, PL_ERR_NOT_FOUND, "stt: no backend '%s' (have: %s)", name, list);
        }
    }
    if (!be->create || !be->free || !be->feed || !be->finalize)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "stt: backend '%s' lacks a required function",
                          be->name ? be->name : "?");
    pl_stt *s = pl_calloc(ctx, 1, sizeof *s);
    if (!s) return pl_ctx_err(ctx, PL_ERR_NOMEM, "stt: out of memory");
    s->ctx = ctx;
    s->be = be;
    s->p = p;
    s->p.backend = be->name;
    s->p.backend_impl = be;
    s->p.model = NULL; /* not kept: the caller's string */
    s->max_samples = (uint64_t)(p.max_utterance_s * PL_AUDIO_STT_RATE);
    atomic_init(&s->cancel, false);
    pl_status st = be->create(ctx, &p, &s->cancel, &s->state);
    if (st != PL_OK) {
        pl_free(ctx, s);
        return st;
    }
    *out = s;
    return PL_OK;
}

void pl_stt_free(pl_stt *s) {
    if (!s) return;
    s->be->free(s->state);
    pl_free(s->ctx, s);
}

pl_status pl_stt_feed(pl_stt *s, const float *pcm, size_t n) {
    if (!s || (!pcm && n)) return PL_ERR_INVALID_ARG;
    if (n == 0) return PL_OK;
    if (s->utt_samples + n > s->max_samples) {
        snprintf(s->err, sizeof s->err, "stt: utterance longer than %.0f s", s->p.max_utterance_s);
        return PL_ERR_RANGE;
    }
    uint64_t t0 = pl_time_ns();
    pl_status st = s->be->feed(s->state, pcm, n);
    s->feed_ns += pl_time_ns() - t0;
    if (st != PL_OK) return fail(s, st, "feed");
    s->utt_samples += n;
    return PL_OK;
}

pl_status pl_stt_partial_get(pl_stt *s, pl_stt_partial_result *out) {
    if (!s || !out) return PL_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    out->text = "";
    out->n_updates = s->n_partials;
    if (!s->be->partial || !s->be->has_partials) {
        snprintf(s->err, sizeof s->err, "stt: %s: no partial results", s->be->name);
        return PL_ERR_UNSUPPORTED;
    }
    const double fed_s = (double)s->utt_samples / PL_AUDIO_STT_RATE;
    out->audio_s = fed_s;
    out->updated = true;
    uint64_t t0 = pl_time_ns();
    pl_status st = s->be->partial(s->state, out);
    uint64_t dt = pl_time_ns() - t0;
    s->partial_ns += dt;
    if (st == PL_ERR_UNSUPPORTED) {
        memset(out, 0, sizeof *out);
        out->text = "";
        snprintf(s->err, sizeof s->err, "stt: %s: no partial results in this mode", s->be->name);
        return st;
    }
    if (st != PL_OK) {
        memset(out, 0, sizeof *out);
        out->text = "";
        out->n_updates = s->n_partials;
        if (st == PL_ERR_CANCELED) { /* the flag stays set: the finalize is canceled too */
            snprintf(s->err, sizeof s->err, "stt: canceled");
            return st;
        }
        return fail(s, st, "partial");
    }
    if (!out->text) out->text = "";
    if (!(out->audio_s >= 0.0) || out->audio_s > fed_s) out->audio_s = fed_s;
    if (out->updated) s->n_partials++;
    out->n_updates = s->n_partials;
    out->ms = (double)dt / 1e6;
    return PL_OK;
}

pl_status pl_stt_partial(pl_stt *s, const char **text) {
    if (!s || !text) return PL_ERR_INVALID_ARG;
    pl_stt_partial_result p;
    pl_status st = pl_stt_partial_get(s, &p);
    *text = p.text;
    return st;
}

static void end_utterance(pl_stt *s) {
    s->utt_samples = 0;
    s->feed_ns = 0;
    s->partial_ns = 0;
    s->n_partials = 0;
}

pl_status pl_stt_finalize(pl_stt *s, pl_stt_result *out) {
    if (!s || !out) return PL_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    out->text = "";
    if (atomic_exchange(&s->cancel, false)) {
        if (s->be->reset) s->be->reset(s->state);
        end_utterance(s);
        snprintf(s->err, sizeof s->err, "stt: canceled");
        return PL_ERR_CANCELED;
    }
    double audio_s = (double)s->utt_samples / PL_AUDIO_STT_RATE;
    double feed_ms = (double)s->feed_ns / 1e6, partial_ms = (double)s->partial_ns / 1e6;
    uint64_t t0 = pl_time_ns();
    pl_status st = s->be->finalize(s->state, out);
    double fin_ms = (double)(pl_time_ns() - t0) / 1e6;
    end_utterance(s);
    if (st == PL_ERR_CANCELED || atomic_exchange(&s->cancel, false)) {
        snprintf(s->err, sizeof s->err, "stt: canceled");
        memset(out, 0, sizeof *out);
        out->text = "";
        return PL_ERR_CANCELED;
    }
    if (st != PL_OK) return fail(s, st, "finalize");
    if (!out->text) out->text = "";
    out->audio_s = audio_s;
    out->feed_ms = feed_ms;
    out->partial_ms = partial_ms;
    out->finalize_ms = fin_ms;
    if (!out->segments) out->n_segments = 0;
    return PL_OK;
}

void pl_stt_reset(pl_stt *s) {
    if (!s) return;
    if (s->be->reset) {
        s->be->reset(s->state);
    } else {
        pl_stt_result r;
        (void)s->be->finalize(s->state, &r);
    }
    atomic_store(&s->cancel, false);
    end_utterance(s);
}

void pl_stt_cancel(pl_stt *s) {
    if (s) atomic_store(&s->cancel, true);
}

pl_status pl_stt_transcribe(pl_stt *s, const float *pcm, size_t n, pl_stt_result *out) {
    if (!s || !out) return PL_ERR_INVALID_ARG;
    pl_status st = pl_stt_feed(s, pcm, n);
    if (st != PL_OK) {
        pl_stt_reset(s);
        memset(out, 0, sizeof *out);
        out->text = "";
        return st;
    }
    return pl_stt_finalize(s, out);
}

const char *pl_stt_last_error(const pl_stt *s) { return s ? s->err : ""; }
const pl_stt_backend *pl_stt_backend_of(const pl_stt *s) { return s ? s->be : NULL; }

pl_ctx *pl_stt_ctx(const pl_stt *s) { return s ? s->ctx : NULL; }
