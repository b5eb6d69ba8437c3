/*
 * parley/tts.h - text to speech: one interface, several backends; PCM is
 * streamed out through a callback, chunk by chunk, as it is synthesized.
 *
 * pl_tts_synthesize() blocks the calling thread until the text is spoken or
 * canceled. A voice pipeline runs it on its own thread, one sentence per call,
 * and barges in with pl_tts_cancel() from any other thread: the synthesis
 * stops at the next chunk boundary (espeak-ng chunks are 49 ms of audio, made
 * in about 0.05 ms; the measured latency is in pl_tts_stats and
 * docs/benchmarks.md).
 *
 * Backends are rows of a table (pl_tts_backend); a neural voice adds a row.
 *   espeak  eSpeak NG (libespeak-ng1), formant synthesis at 22050 Hz, about
 *           130 languages and 100 variants (pl_tts_list_voices); a voice is a
 *           language tag with an optional variant: "en-us", "en-gb+klatt".
 *           The Klatt variants are the most intelligible to PocketSphinx (see
 *           docs/benchmarks.md). eSpeak NG
 *           keeps its state in process globals, so parley serializes its use:
 *           every pl_tts of this backend shares one lock, and one synthesis
 *           runs at a time in the process (a second waits for the first).
 *
 * Ownership: the caller owns the pl_tts and the voice list. PCM handed to the
 * chunk callback is valid during the callback only.
 * Thread-safety: one thread at a time per pl_tts for everything except
 * pl_tts_cancel()/pl_tts_canceled(), which any thread may call.
 */
#ifndef PARLEY_TTS_H
#define PARLEY_TTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PL_TTS_MAX_TEXT (1u << 20) /* bytes per synthesize call */

typedef struct pl_tts_voice {
    const char *name;      /* what --voice takes, e.g. "en-us" */
    const char *language;  /* primary language tag, e.g. "en-us" ("" for a variant) */
    const char *display;   /* the backend's human name, e.g. "English (America)" */
    const char *gender;    /* "male", "female" or "" */
    bool        is_variant;/* a voice quality added to a voice: name "+klatt" is
                            * used as "en-us+klatt" */
} pl_tts_voice;

/* Receives mono f32 PCM at pl_tts_sample_rate(). Return 0 to go on, non-zero
 * to stop (the synthesis then ends with PL_ERR_CANCELED). */
typedef int (*pl_tts_chunk_fn)(void *ud, const float *pcm, size_t n);

/* A backend's own sink: int16 PCM at the backend's native rate. */
typedef int (*pl_tts_sink_fn)(void *ud, const int16_t *pcm, size_t n);

typedef struct pl_tts_params {
    const char *backend;        /* a row's name; NULL: "espeak" */
    const struct pl_tts_backend *backend_impl; /* when set, used instead of the name */
    const char *voice;          /* NULL: the backend's default ("en-us" for espeak) */
    float       speed;          /* 1.0 normal; 0.25..4. espeak: 175 wpm x speed, clamped
                                 * to its 80..450 wpm */
    float       pitch;          /* 1.0 the voice's own; 0..2 */
    int         sample_rate;    /* 0: the backend's native rate; else resampled to it */
} pl_tts_params;

typedef struct pl_tts_backend {
    const char *name;
    const char *description;
    pl_status (*create)(pl_ctx *ctx, const pl_tts_params *p, void **state);
    void      (*free)(void *state);
    int       (*sample_rate)(void *state);
    /* Apply voice/speed/pitch (validated by the caller's ranges). */
    pl_status (*configure)(void *state, const char *voice, float speed, float pitch);
    /* Synthesize NUL-terminated UTF-8; call sink per chunk; stop when it returns
     * non-zero (then return PL_ERR_CANCELED). */
    pl_status (*synthesize)(void *state, const char *text, pl_tts_sink_fn sink, void *ud);
    pl_status (*list_voices)(pl_ctx *ctx, pl_tts_voice **out, size_t *n);
    const char *(*error)(void *state);
} pl_tts_backend;

typedef struct pl_tts_stats {
    double   first_chunk_ms;  /* call -> first chunk handed to the callback */
    double   total_ms;        /* call -> return */
    double   audio_ms;        /* audio delivered */
    double   rtf;             /* total_ms / audio_ms (0 when no audio) */
    size_t   n_chunks;
    bool     canceled;
    double   cancel_ms;       /* pl_tts_cancel() -> return, when that is how it ended */
} pl_tts_stats;

typedef struct pl_tts pl_tts;

pl_tts_params pl_tts_default_params(void);

size_t pl_tts_backend_count(void);
const pl_tts_backend *pl_tts_backend_at(size_t i);
const pl_tts_backend *pl_tts_backend_find(const char *name);

/* Errors: PL_ERR_NOT_FOUND (backend or voice), PL_ERR_RANGE (speed, pitch,
 * rate), PL_ERR_IO (backend data missing); text in pl_ctx_last_error(ctx). */
pl_status pl_tts_init(pl_ctx *ctx, const pl_tts_params *params, pl_tts **out);
void pl_tts_free(pl_tts *tts);

int pl_tts_sample_rate(const pl_tts *tts);
/* Change the voice, speed or pitch for the next synthesis (voice NULL,
 * speed <= 0 or pitch < 0: keep). Error text in pl_tts_last_error(). */
pl_status pl_tts_configure(pl_tts *tts, const char *voice, float speed, float pitch);

/* Speak text (NUL-terminated UTF-8, at most PL_TTS_MAX_TEXT bytes), calling
 * on_chunk as PCM is produced. Returns PL_ERR_CANCELED when canceled (by
 * pl_tts_cancel or by on_chunk), PL_ERR_INVALID_ARG for bad UTF-8. stats may
 * be NULL. Whitespace-only text produces no audio and returns PL_OK. */
pl_status pl_tts_synthesize(pl_tts *tts, const char *text, pl_tts_chunk_fn on_chunk,
                            void *ud, pl_tts_stats *stats);

/* Any thread. Cancels the synthesis in progress at its next chunk, and every
 * later one, until pl_tts_cancel_clear(): a barge-in stays in force until the
 * pipeline says the next turn may speak. */
void pl_tts_cancel(pl_tts *tts);
void pl_tts_cancel_clear(pl_tts *tts);
bool pl_tts_canceled(const pl_tts *tts);

const char *pl_tts_last_error(const pl_tts *tts);
const pl_tts_backend *pl_tts_backend_of(const pl_tts *tts);

/* The voices of a backend (NULL: the default backend), sorted by name. Free
 * with pl_tts_voices_free(ctx, list). */
pl_status pl_tts_list_voices(pl_ctx *ctx, const char *backend, pl_tts_voice **out, size_t *n);
void pl_tts_voices_free(pl_ctx *ctx, pl_tts_voice *list);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_TTS_H */
