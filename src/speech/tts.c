/*
 * tts.c - the TTS front: backend table, parameter ranges, int16 -> f32,
 * optional resampling to the caller's rate, chunk streaming, cancel and the
 * per-call timing (first chunk, RTF, cancel latency).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "speech/speech_int.h"

typedef enum pl_tts_backend_id {
    PL_TTS_BACKEND_ESPEAK = 0,
    PL_TTS_BACKEND_COUNT
} pl_tts_backend_id;

static const pl_tts_backend *const backends[PL_TTS_BACKEND_COUNT] = {
    [PL_TTS_BACKEND_ESPEAK] = &pl_tts_backend_espeak,
};

#define CONV_FRAMES 2048 /* int16 -> f32 conversion block: eSpeak hands 1081 */

struct pl_tts {
    pl_ctx               *ctx;
    const pl_tts_backend *be;
    void                 *state;
    int                   native_rate, out_rate;
    pl_resampler         *rs;        /* NULL when out_rate == native_rate */
    float                *conv;      /* [CONV_FRAMES] */
    float                *rsout;     /* [rsout_cap] */
    size_t                rsout_cap;
    atomic_bool           cancel;
    _Atomic uint64_t      cancel_ns; /* when pl_tts_cancel() was called */
    char                  err[256];
};

size_t pl_tts_backend_count(void) { return PL_TTS_BACKEND_COUNT; }

const pl_tts_backend *pl_tts_backend_at(size_t i) {
    return i < PL_TTS_BACKEND_COUNT ? backends[i] : NULL;
}

const pl_tts_backend *pl_tts_backend_find(const char *name) {
    for (size_t i = 0; name && i < PL_TTS_BACKEND_COUNT; i++)
        if (strcmp(backends[i]->name, name) == 0) return backends[i];
    return NULL;
}

pl_tts_params pl_tts_default_params(void) {
    return (pl_tts_params){ .backend = "espeak", .speed = 1.0f, .pitch = 1.0f };
}

static pl_status check_ranges(pl_ctx *ctx, float speed, float pitch) {
    if (!(speed >= 0.25f && speed <= 4.0f))
        return pl_ctx_err(ctx, PL_ERR_RANGE, "tts: speed %g outside 0.25..4", speed);
    if (!(pitch >= 0.0f && pitch <= 2.0f))
        return pl_ctx_err(ctx, PL_ERR_RANGE, "tts: pitch %g outside 0..2", pitch);
    return PL_OK;
}

static const pl_tts_backend *resolve(pl_ctx *ctx, const char *name, const pl_tts_backend *impl) {
    if (impl) return impl;
    if (!name) name = "espeak";
    const pl_tts_backend *be = pl_tts_backend_find(name);
    if (!be) {
        char list[128] = "";
        for (size_t i = 0; i < PL_TTS_BACKEND_COUNT; i++) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", backends[i]->name);
        }
        pl_ctx_err(ctx, PL_ERR_NOT_FOUND, "tts: no backend '%s' (have: %s)", name, list);
    }
    return be;
}

pl_status pl_tts_init(pl_ctx *ctx, const pl_tts_params *params, pl_tts **out) {
    if (!out) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "tts: out is NULL");
    *out = NULL;
    pl_tts_params p = params ? *params : pl_tts_default_params();
    if (p.speed == 0.0f) p.speed = 1.0f;
    pl_status st = check_ranges(ctx, p.speed, p.pitch);
    if (st != PL_OK) return st;
    if (p.sample_rate != 0 && (p.sample_rate < 8000 || p.sample_rate > 192000))
        return pl_ctx_err(ctx, PL_ERR_RANGE, "tts: sample_rate %d outside 8000..192000", p.sample_rate);
    const pl_tts_backend *be = resolve(ctx, p.backend, p.backend_impl);
    if (!be) return PL_ERR_NOT_FOUND;
    if (!be->create || !be->free || !be->sample_rate || !be->synthesize || !be->configure)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "tts: backend '%s' lacks a required function",
                          be->name ? be->name : "?");
    pl_tts *t = pl_calloc(ctx, 1, sizeof *t);
    if (!t) return pl_ctx_err(ctx, PL_ERR_NOMEM, "tts: out of memory");
    t->ctx = ctx;
    t->be = be;
    atomic_init(&t->cancel, false);
    atomic_init(&t->cancel_ns, 0);
    st = be->create(ctx, &p, &t->state);
    if (st != PL_OK) {
        pl_free(ctx, t);
        return st;
    }
    t->native_rate = be->sample_rate(t->state);
    t->out_rate = p.sample_rate ? p.sample_rate : t->native_rate;
    t->conv = pl_malloc(ctx, CONV_FRAMES * sizeof(float));
    if (!t->conv) goto nomem;
    if (t->out_rate != t->native_rate) {
        st = pl_resampler_init(ctx, t->native_rate, t->out_rate, 1, PL_RESAMPLE_QUALITY_MEDIUM, &t->rs);
        if (st != PL_OK) {
            pl_tts_free(t);
            return st;
        }
        /* Enough for one conversion block plus the filter's held-back tail. */
        t->rsout_cap = (size_t)((double)CONV_FRAMES * t->out_rate / t->native_rate) + 4096;
        t->rsout = pl_malloc(ctx, t->rsout_cap * sizeof(float));
        if (!t->rsout) goto nomem;
    }
    *out = t;
    return PL_OK;
nomem:
    pl_tts_free(t);
    return pl_ctx_err(ctx, PL_ERR_NOMEM, "tts: out of memory");
}

void pl_tts_free(pl_tts *t) {
    if (!t) return;
    if (t->state) t->be->free(t->state);
    pl_resampler_free(t->rs);
    pl_free(t->ctx, t->conv);
    pl_free(t->ctx, t->rsout);
    pl_free(t->ctx, t);
}

int pl_tts_sample_rate(const pl_tts *t) { return t ? t->out_rate : 0; }

pl_status pl_tts_configure(pl_tts *t, const char *voice, float speed, float pitch) {
    if (!t) return PL_ERR_INVALID_ARG;
    if ((speed > 0.0f && !(speed >= 0.25f && speed <= 4.0f)) || pitch > 2.0f) {
        snprintf(t->err, sizeof t->err, "tts: speed %g or pitch %g out of range (0.25..4, 0..2)",
                 speed, pitch);
        return PL_ERR_RANGE;
    }
    pl_status st = t->be->configure(t->state, voice, speed, pitch);
    if (st != PL_OK) {
        const char *m = t->be->error ? t->be->error(t->state) : NULL;
        snprintf(t->err, sizeof t->err, "tts: %s: %s", t->be->name, m && *m ? m : pl_status_str(st));
    }
    return st;
}

void pl_tts_cancel(pl_tts *t) {
    if (!t) return;
    uint64_t zero = 0;
    atomic_compare_exchange_strong(&t->cancel_ns, &zero, pl_time_ns());
    atomic_store(&t->cancel, true);
}

void pl_tts_cancel_clear(pl_tts *t) {
    if (!t) return;
    atomic_store(&t->cancel, false);
    atomic_store(&t->cancel_ns, 0);
}

bool pl_tts_canceled(const pl_tts *t) {
    return t && atomic_load(&((pl_tts *)t)->cancel);
}

const char *pl_tts_last_error(const pl_tts *t) { return t ? t->err : ""; }
const pl_tts_backend *pl_tts_backend_of(const pl_tts *t) { return t ? t->be : NULL; }

/* Strict UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        else if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
        else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
        else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
        else return false;
        if (n - i < len) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        i += len;
    }
    return true;
}

typedef struct synth_run {
    pl_tts         *t;
    pl_tts_chunk_fn fn;
    void           *ud;
    pl_tts_stats   *stats;
    uint64_t        t0;
    bool            stopped_by_caller;
} synth_run;

static int deliver(synth_run *r, const float *pcm, size_t n) {
    if (n == 0) return 0;
    if (r->stats->n_chunks == 0) r->stats->first_chunk_ms = (double)(pl_time_ns() - r->t0) / 1e6;
    r->stats->n_chunks++;
    r->stats->audio_ms += (double)n * 1000.0 / r->t->out_rate;
    if (r->fn && r->fn(r->ud, pcm, n) != 0) {
        r->stopped_by_caller = true;
        return 1;
    }
    return 0;
}

/* Resample a block (or flush with end) and deliver what comes out. */
static int deliver_resampled(synth_run *r, const float *in, size_t n, bool end) {
    pl_tts *t = r->t;
    size_t off = 0;
    for (;;) {
        size_t used = 0, made = 0;
        if (pl_resampler_process(t->rs, in ? in + off : NULL, n - off, t->rsout, t->rsout_cap, end,
                                 &used, &made) != PL_OK)
            return 1;
        off += used;
        if (deliver(r, t->rsout, made)) return 1;
        if (made == 0 && (off >= n || used == 0)) return 0;
    }
}

static int sink(void *ud, const int16_t *pcm, size_t n) {
    synth_run *r = ud;
    pl_tts *t = r->t;
    if (atomic_load(&t->cancel)) return 1;
    for (size_t i = 0; i < n;) {
        size_t k = n - i < CONV_FRAMES ? n - i : CONV_FRAMES;
        for (size_t j = 0; j < k; j++) t->conv[j] = (float)pcm[i + j] / 32768.0f;
        int stop = t->rs ? deliver_resampled(r, t->conv, k, false) : deliver(r, t->conv, k);
        if (stop) return 1;
        i += k;
    }
    return atomic_load(&t->cancel) ? 1 : 0;
}

pl_status pl_tts_synthesize(pl_tts *t, const char *text, pl_tts_chunk_fn on_chunk, void *ud,
                            pl_tts_stats *stats) {
    pl_tts_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!t || !text) return PL_ERR_INVALID_ARG;
    uint64_t t0 = pl_time_ns();
    size_t len = strnlen(text, PL_TTS_MAX_TEXT + 1);
    if (len > PL_TTS_MAX_TEXT) {
        snprintf(t->err, sizeof t->err, "tts: text longer than %u bytes", PL_TTS_MAX_TEXT);
        return PL_ERR_RANGE;
    }
    if (!utf8_valid((const unsigned char *)text, len)) {
        snprintf(t->err, sizeof t->err, "tts: text is not valid UTF-8");
        return PL_ERR_INVALID_ARG;
    }
    synth_run r = { .t = t, .fn = on_chunk, .ud = ud, .stats = stats, .t0 = t0 };
    pl_status st = PL_OK;
    if (atomic_load(&t->cancel)) {
        st = PL_ERR_CANCELED;
    } else {
        bool blank = true;
        for (size_t i = 0; i < len && blank; i++)
            blank = text[i] == ' ' || (text[i] >= '\t' && text[i] <= '\r');
        if (!blank) st = t->be->synthesize(t->state, text, sink, &r);
        if (st == PL_OK && t->rs && !atomic_load(&t->cancel) && deliver_resampled(&r, NULL, 0, true))
            st = PL_ERR_CANCELED;
        if (t->rs) pl_resampler_reset(t->rs);
    }
    if (st == PL_OK && atomic_load(&t->cancel)) st = PL_ERR_CANCELED;
    uint64_t t1 = pl_time_ns();
    stats->total_ms = (double)(t1 - t0) / 1e6;
    stats->rtf = stats->audio_ms > 0 ? stats->total_ms / stats->audio_ms : 0.0;
    if (st == PL_ERR_CANCELED) {
        stats->canceled = true;
        uint64_t c = atomic_load(&t->cancel_ns);
        if (!r.stopped_by_caller && c && c <= t1) stats->cancel_ms = (double)(t1 - c) / 1e6;
        snprintf(t->err, sizeof t->err, "tts: canceled");
    } else if (st != PL_OK) {
        const char *m = t->be->error ? t->be->error(t->state) : NULL;
        snprintf(t->err, sizeof t->err, "tts: %s: %s", t->be->name, m && *m ? m : pl_status_str(st));
    }
    return st;
}

static int voice_cmp(const void *a, const void *b) {
    return strcmp(((const pl_tts_voice *)a)->name, ((const pl_tts_voice *)b)->name);
}

pl_status pl_tts_list_voices(pl_ctx *ctx, const char *backend, pl_tts_voice **out, size_t *n) {
    if (!out || !n) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "tts: out is NULL");
    *out = NULL;
    *n = 0;
    const pl_tts_backend *be = resolve(ctx, backend, NULL);
    if (!be) return PL_ERR_NOT_FOUND;
    if (!be->list_voices)
        return pl_ctx_err(ctx, PL_ERR_UNSUPPORTED, "tts: %s cannot list voices", be->name);
    pl_status st = be->list_voices(ctx, out, n);
    if (st == PL_OK && *n > 1) qsort(*out, *n, sizeof **out, voice_cmp);
    return st;
}

void pl_tts_voices_free(pl_ctx *ctx, pl_tts_voice *list) { pl_free(ctx, list); }
