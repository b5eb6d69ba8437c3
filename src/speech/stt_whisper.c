/*
 * stt_whisper.c - the native Whisper row of the STT table (src/whisper/ on
 * parley's kernels, whisper.cpp ggml model files).
 *
 * params.model is a file path or a model-store name ("whisper-base.en",
 * resolved like -m; NULL: "whisper-base.en"). Audio is buffered and the
 * utterance is transcribed at finalize (Whisper needs the whole utterance:
 * its encoder sees a 30 s window). params.language: "en" by default; "auto"
 * detects (multilingual files).
 * Environment (read at create, for callers that can't pass more):
 *   PARLEY_WHISPER_THREADS    threads (default: physical cores)
 *   PARLEY_WHISPER_AUDIO_CTX  encoder frames (default: the model's 1500 = 30 s);
 *                             smaller is faster for short utterances but less
 *                             accurate (see parley/whisper.h), and longer
 *                             utterances are cut into windows of it.
 * Cost: finalize = mel + one encoder pass per window + one decoder step per token.
 */
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
    char               language[16];
    float             *pcm;
    size_t             n, cap;
    char              *text;
    char               err[256];
} wh_stt;

static void wh_free(void *vs) {
    wh_stt *s = vs;
    if (!s) return;
    pl_whisper_state_free(s->state);
    pl_whisper_model_free(s->model);
    pl_free(s->ctx, s->pcm);
    pl_free(s->ctx, s->text);
    pl_free(s->ctx, s);
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

static pl_status wh_finalize(void *vs, pl_stt_result *out) {
    wh_stt *s = vs;
    out->text = "";
    if (s->n == 0) return PL_OK;
    pl_whisper_params wp = pl_whisper_default_params();
    wp.language = s->language;
    wp.cancel = s->cancel;
    const pl_whisper_result *r;
    pl_status st = pl_whisper_full(s->state, &wp, s->pcm, s->n, &r);
    s->n = 0;
    if (st != PL_OK) {
        snprintf(s->err, sizeof s->err, "%s", pl_whisper_state_error(s->state));
        return st;
    }
    /* single spaces, trimmed */
    size_t len = strlen(r->text);
    char *t = pl_realloc(s->ctx, s->text, len + 1);
    if (!t) {
        snprintf(s->err, sizeof s->err, "out of memory");
        return PL_ERR_NOMEM;
    }
    s->text = t;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = r->text[i] == '\n' || r->text[i] == '\t' ? ' ' : r->text[i];
        if (c == ' ' && (o == 0 || t[o - 1] == ' ')) continue;
        t[o++] = c;
    }
    while (o && t[o - 1] == ' ') o--;
    t[o] = '\0';
    out->text = t;
    return PL_OK;
}

static void wh_reset(void *vs) { ((wh_stt *)vs)->n = 0; }
static const char *wh_error(void *vs) { return ((wh_stt *)vs)->err; }

const pl_stt_backend pl_stt_backend_whisper = {
    .name = "whisper",
    .description = "native Whisper (whisper.cpp ggml files) on parley's kernels",
    .has_partials = false,
    .create = wh_create,
    .free = wh_free,
    .feed = wh_feed,
    .partial = NULL,
    .finalize = wh_finalize,
    .reset = wh_reset,
    .error = wh_error,
};
