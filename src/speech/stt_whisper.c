/*
 * stt_whisper.c - the native Whisper row of the STT table (src/whisper/ on
 * parley's kernels, whisper.cpp ggml model files).
 *
 * params.model is a file path or a model-store name ("whisper-base.en",
 * resolved like -m; NULL: "whisper-base.en"). Audio is buffered and the
 * utterance is transcribed at finalize (Whisper needs the whole utterance:
 * its encoder sees a 30 s window), with Whisper's segments in the result.
 * Partials re-decode the audio so far, cheaply (see parley/stt.h).
 * params.language: "en" by default; "auto" detects (multilingual files).
 * Environment (read at create, for callers that can't pass more):
 *   PARLEY_WHISPER_THREADS    threads (default: physical cores)
 *   PARLEY_WHISPER_AUDIO_CTX  encoder frames (default: the model's 1500 = 30 s);
 *                             smaller is faster for short utterances but less
 *                             accurate (see parley/whisper.h), and longer
 *                             utterances are cut into windows of it.
 * Cost: finalize = mel + one encoder pass per window + one decoder step per
 * token; a partial update = the same over the audio so far at a context cut
 * to it, greedy, without fallback.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/store.h"
#include "parley/whisper.h"
#include "speech/speech_int.h"

#define DEFAULT_MODEL "whisper-base.en"

typedef struct wh_stt {
    pl_ctx            *ctx;
    const atomic_bool *cancel;
    pl_whisper_model  *model;
    pl_whisper_state  *state;
    int                T;          /* the state's audio ctx */
    char               language[16];
    float             *pcm;
    size_t             n, cap;
    /* the last finalize: text, then each segment's text, NUL-separated */
    char              *strs;
    size_t             strs_cap;
    pl_stt_segment    *segs;
    size_t             segs_cap;
    int32_t           *toks;       /* the segments' tokens */
    size_t             toks_cap;
    /* partials: the hypothesis over pcm[0, part_n) */
    char              *ptext;
    size_t             ptext_cap, part_n, interval; /* interval: samples */
    char               err[256];
} wh_stt;

static void wh_free(void *vs) {
    wh_stt *s = vs;
    if (!s) return;
    pl_whisper_state_free(s->state);
    pl_whisper_model_free(s->model);
    pl_free(s->ctx, s->pcm);
    pl_free(s->ctx, s->strs);
    pl_free(s->ctx, s->segs);
    pl_free(s->ctx, s->toks);
    pl_free(s->ctx, s->ptext);
    pl_free(s->ctx, s);
}

/* grow *p to hold n elements of sz */
static bool ensure(wh_stt *s, void **p, size_t *cap, size_t n, size_t sz) {
    if (n <= *cap) return true;
    size_t c = *cap ? *cap : 16, bytes;
    while (c < n)
        if (!pl_size_mul(c, 2, &c)) return false;
    void *q = pl_size_mul(c, sz, &bytes) ? pl_realloc(s->ctx, *p, bytes) : NULL;
    if (!q) {
        snprintf(s->err, sizeof s->err, "out of memory");
        return false;
    }
    *p = q;
    *cap = c;
    return true;
}

/* src with single spaces (newlines and tabs count as spaces), trimmed, into
 * dst (room for strlen(src) + 1); returns the length. */
static size_t norm_text(char *dst, const char *src) {
    size_t o = 0;
    for (; *src; src++) {
        char c = *src == '\n' || *src == '\t' ? ' ' : *src;
        if (c == ' ' && (o == 0 || dst[o - 1] == ' ')) continue;
        dst[o++] = c;
    }
    while (o && dst[o - 1] == ' ') o--;
    dst[o] = '\0';
    return o;
}

static int env_int(const char *name, int lo, int hi, int def) {
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end;
    long x = strtol(v, &end, 10);
    return (*end || x < lo || x > hi) ? def : (int)x;
}

static pl_status wh_create(pl_ctx *ctx, const pl_stt_params *p, const atomic_bool *cancel, void **out) {
    *out = NULL;
    const char *spec = p->model && *p->model ? p->model : DEFAULT_MODEL;
    char *path = NULL;
    if (pl_model_resolve(ctx, spec, &path) != PL_OK)
        return pl_ctx_err(ctx, PL_ERR_NOT_FOUND, "stt: whisper: %s", pl_ctx_last_error(ctx));
    wh_stt *s = pl_calloc(ctx, 1, sizeof *s);
    if (!s) {
        pl_free(ctx, path);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "stt: whisper: out of memory");
    }
    s->ctx = ctx;
    s->cancel = cancel;
    snprintf(s->language, sizeof s->language, "%s", p->language ? p->language : "en");
    pl_status st = pl_whisper_model_load(ctx, path, &s->model);
    pl_free(ctx, path);
    if (st != PL_OK) {
        wh_free(s);
        return pl_ctx_err(ctx, st, "stt: %s", pl_ctx_last_error(ctx));
    }
    const pl_whisper_specials *sp = pl_whisper_model_specials(s->model);
    if (!sp->multilingual && strncmp(s->language, "en", 2) != 0) {
        wh_free(s);
        return pl_ctx_err(ctx, PL_ERR_UNSUPPORTED, "stt: whisper: language '%s' with an English-only model",
                          p->language);
    }
    int threads = env_int("PARLEY_WHISPER_THREADS", 0, 1024, 0);
    int actx = env_int("PARLEY_WHISPER_AUDIO_CTX", 0, pl_whisper_model_hparams(s->model)->n_audio_ctx, 0);
    if ((st = pl_whisper_state_init(s->model, threads, actx, &s->state)) != PL_OK) {
        wh_free(s);
        return pl_ctx_err(ctx, st, "stt: whisper: %s", pl_ctx_last_error(ctx));
    }
    s->T = actx ? actx : pl_whisper_model_hparams(s->model)->n_audio_ctx;
    double iv = p->partial_interval_ms > 0.0 ? p->partial_interval_ms : 1000.0;
    s->interval = (size_t)(fmin(iv, 3600e3) * PL_WHISPER_SAMPLE_RATE / 1000.0);
    if (s->interval == 0) s->interval = 1;
    *out = s;
    return PL_OK;
}

static pl_status wh_feed(void *vs, const float *pcm, size_t n) {
    wh_stt *s = vs;
    size_t need;
    if (!pl_size_add(s->n, n, &need)) return PL_ERR_OVERFLOW;
    if (need > s->cap) {
        size_t cap = s->cap ? s->cap : 16000 * 8, bytes;
        while (cap < need)
            if (!pl_size_mul(cap, 2, &cap)) return PL_ERR_OVERFLOW;
        if (!pl_size_mul(cap, sizeof(float), &bytes)) return PL_ERR_OVERFLOW;
        float *q = pl_realloc(s->ctx, s->pcm, bytes);
        if (!q) {
            snprintf(s->err, sizeof s->err, "out of memory");
            return PL_ERR_NOMEM;
        }
        s->pcm = q;
        s->cap = cap;
    }
    memcpy(s->pcm + s->n, pcm, n * sizeof(float));
    s->n = need;
    return PL_OK;
}

static void drop_utterance(wh_stt *s) {
    s->n = 0;
    s->part_n = 0;
    if (s->ptext) s->ptext[0] = '\0';
}

static pl_status wh_finalize(void *vs, pl_stt_result *out) {
    wh_stt *s = vs;
    out->text = "";
    if (s->n == 0) return PL_OK;
    pl_whisper_params wp = pl_whisper_default_params();
    wp.language = s->language;
    wp.cancel = s->cancel;
    const pl_whisper_result *r;
    pl_status st = pl_whisper_full(s->state, &wp, s->pcm, s->n, &r);
    const double audio_s = (double)s->n / PL_WHISPER_SAMPLE_RATE;
    drop_utterance(s);
    if (st != PL_OK) {
        snprintf(s->err, sizeof s->err, "%s", pl_whisper_state_error(s->state));
        return st;
    }
    /* room for the text and each segment's, the segments and their tokens */
    size_t bytes = strlen(r->text) + 1, n_tok = 0;
    for (size_t i = 0; i < r->n_segments; i++) {
        if (!pl_size_add(bytes, strlen(r->segments[i].text) + 1, &bytes) ||
            !pl_size_add(n_tok, r->segments[i].n_tokens, &n_tok))
            return PL_ERR_OVERFLOW;
    }
    if (!ensure(s, (void **)&s->strs, &s->strs_cap, bytes, 1) ||
        !ensure(s, (void **)&s->segs, &s->segs_cap, r->n_segments, sizeof *s->segs) ||
        !ensure(s, (void **)&s->toks, &s->toks_cap, n_tok, sizeof *s->toks))
        return PL_ERR_NOMEM;
    size_t off = norm_text(s->strs, r->text) + 1, k = 0, tk = 0;
    for (size_t i = 0; i < r->n_segments; i++) {
        const pl_whisper_segment *g = &r->segments[i];
        char *t = s->strs + off;
        size_t len = norm_text(t, g->text);
        off += len + 1;
        if (len == 0) continue; /* a segment of spaces says nothing */
        if (g->n_tokens) memcpy(s->toks + tk, g->tokens, g->n_tokens * sizeof *s->toks);
        /* timestamps may run past the audio (the window is longer): clamped to it */
        double a = fmin(g->start_s, audio_s), e = fmin(fmax(g->end_s, a), audio_s);
        s->segs[k++] = (pl_stt_segment){
            .start_s = a, .end_s = e, .seek_s = g->seek_s,
            .text = t, .tokens = g->n_tokens ? s->toks + tk : NULL, .n_tokens = g->n_tokens, .has_stats = true,
            .temperature = g->temperature, .avg_logprob = g->avg_logprob,
            .compression_ratio = g->compression_ratio, .no_speech_prob = g->no_speech_prob,
        };
        tk += g->n_tokens;
    }
    out->text = s->strs;
    out->segments = k ? s->segs : NULL;
    out->n_segments = k;
    return PL_OK;
}

/* A greedy pass over the audio so far, its context cut to that audio (see
 * pl_stt_partial_get in parley/stt.h for the rules and the cost). */
static pl_status wh_partial(void *vs, pl_stt_partial_result *out) {
    wh_stt *s = vs;
    out->text = s->ptext ? s->ptext : "";
    out->audio_s = (double)s->part_n / PL_WHISPER_SAMPLE_RATE;
    out->updated = false;
    if (s->n < s->part_n || s->n - s->part_n < s->interval) return PL_OK;
    pl_whisper_params wp = pl_whisper_partial_params(s->n, s->T);
    wp.language = s->language;
    wp.cancel = s->cancel;
    const pl_whisper_result *r;
    pl_status st = pl_whisper_full(s->state, &wp, s->pcm, s->n, &r);
    if (st != PL_OK) {
        snprintf(s->err, sizeof s->err, "%s", pl_whisper_state_error(s->state));
        return st;
    }
    if (!ensure(s, (void **)&s->ptext, &s->ptext_cap, strlen(r->text) + 1, 1)) return PL_ERR_NOMEM;
    norm_text(s->ptext, r->text);
    s->part_n = s->n;
    out->text = s->ptext;
    out->audio_s = (double)s->n / PL_WHISPER_SAMPLE_RATE;
    out->updated = true;
    return PL_OK;
}

static void wh_reset(void *vs) { drop_utterance(vs); }

static const char *wh_error(void *vs) { return ((wh_stt *)vs)->err; }

const pl_stt_backend pl_stt_backend_whisper = {
    .name = "whisper",
    .description = "native Whisper (whisper.cpp ggml files) on parley's kernels",
    .has_partials = true,
    .create = wh_create,
    .free = wh_free,
    .feed = wh_feed,
    .partial = wh_partial,
    .finalize = wh_finalize,
    .reset = wh_reset,
    .error = wh_error,
};
