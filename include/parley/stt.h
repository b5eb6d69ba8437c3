/*
 * parley/stt.h - speech to text: one interface, several backends.
 *
 * Audio goes in as 16 kHz mono f32 (PL_AUDIO_STT_RATE; see parley/audio.h to
 * convert), in pieces of any size, as it arrives. One utterance is everything
 * fed since the last finalize/reset; pl_stt_finalize() ends it and gives its
 * transcript. While it runs, pl_stt_partial() gives the running hypothesis
 * when the backend has one. A voice pipeline feeds the frames between the
 * VAD's speech_started (starting with the event's prefix audio) and
 * speech_stopped, then finalizes.
 *
 * Backends are rows of a table (pl_stt_backend: create, feed, partial,
 * finalize, reset, free); a native Whisper backend adds a row. A caller may
 * also pass its own row in params (a test double, an out-of-tree backend).
 *
 *   whisper       native Whisper (parley/whisper.h) on whisper.cpp ggml files.
 *                 Audio is buffered; finalize transcribes the utterance and
 *                 gives Whisper's segments with their timestamps. Partials
 *                 are always available (see pl_stt_partial_get for the cost).
 *   pocketsphinx  CMU PocketSphinx 5prealpha with Debian's en-us model
 *                 (pocketsphinx-en-us). English only. Two modes:
 *                   batch (default): audio is buffered and decoded at finalize
 *                     with whole-utterance cepstral mean normalization (more
 *                     accurate; finalize costs about 0.3-0.6x the utterance);
 *                   partials = true: decoded while fed (live normalization,
 *                     less accurate on the first utterance), partial results
 *                     available, finalize is almost free.
 *                 WER figures: docs/benchmarks.md.
 *
 * Ownership: the caller owns the pl_stt; results point into it and stay valid
 * until the next feed/finalize/reset/free on it.
 * Thread-safety: one thread at a time per pl_stt, except pl_stt_cancel(),
 * which any thread may call. Backend libraries allocate with malloc, outside
 * the ctx allocator. PocketSphinx logs to its own global log, which is sent
 * to /dev/null (libraries never print).
 */
#ifndef PARLEY_STT_H
#define PARLEY_STT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pl_stt_word {
    const char *text;
    double start_s, end_s;   /* from the start of the utterance's audio */
} pl_stt_word;

/* A stretch of the utterance that the recognizer timed itself (Whisper's
 * segments, from its timestamp tokens). The statistics are OpenAI's per-segment
 * fields; has_stats is false when the backend has none. */
typedef struct pl_stt_segment {
    double         start_s, end_s; /* from the start of the utterance's audio; start <= end */
    double         seek_s;         /* start of the decoding window it came from */
    const char    *text;           /* UTF-8, single spaces, trimmed, not empty */
    const int32_t *tokens;         /* the recognizer's text token ids, or NULL */
    size_t         n_tokens;
    bool           has_stats;
    float          temperature, avg_logprob, compression_ratio, no_speech_prob;
} pl_stt_segment;

typedef struct pl_stt_result {
    const char        *text;     /* UTF-8, single spaces, no fillers; "" when nothing heard */
    const pl_stt_word *words;    /* word timings when the backend has them, else NULL */
    size_t             n_words;
    /* The recognizer's own segments, in time order, when it has them (whisper),
     * else NULL / 0 (pocketsphinx); their texts joined by spaces give text. */
    const pl_stt_segment *segments;
    size_t             n_segments;
    double             audio_s;     /* the utterance's audio length */
    double             feed_ms;     /* wall time spent in feed() for this utterance */
    double             partial_ms;  /* wall time spent in partials for this utterance */
    double             finalize_ms; /* wall time of finalize(): the time to the final text */
} pl_stt_result;

/* The running hypothesis of the utterance in progress. */
typedef struct pl_stt_partial {
    const char *text;      /* UTF-8, single spaces; "" when none yet */
    double      audio_s;   /* the utterance audio it covers (a prefix of what was fed) */
    bool        updated;   /* computed by this call; false: the previous one again */
    double      ms;        /* wall time of this call */
    uint32_t    n_updates; /* hypotheses computed in this utterance so far */
} pl_stt_partial_result;

typedef struct pl_stt_backend pl_stt_backend;

typedef struct pl_stt_params {
    const char           *backend;      /* a row's name; NULL: "pocketsphinx" */
    const pl_stt_backend *backend_impl; /* when set, used instead of the name */
    const char           *model;        /* backend-specific model path; NULL: its default */
    const char           *language;     /* BCP-47 tag; NULL: "en" */
    bool                  partials;     /* pocketsphinx: decode live for partial results (see above) */
    double                partial_interval_ms; /* whisper: a partial is recomputed only once this
                                                  much audio arrived since the last; 0: 1000 */
    double                max_utterance_s; /* longer utterances are refused; default 600 */
} pl_stt_params;

/* A backend row. Every function gets the state that create() made. Errors:
 * create() writes its message to ctx; the others return a status and leave
 * their text for error(). cancel points at the pl_stt's cancel flag, which a
 * long finalize should poll and answer with PL_ERR_CANCELED. */
struct pl_stt_backend {
    const char *name;
    const char *description;
    bool        has_partials;  /* partial() can give text while audio is fed */
    /* partial: out arrives with audio_s = the audio fed and updated = true;
     * the backend sets text and may lower audio_s / clear updated.
     * finalize: out arrives zeroed with text ""; the backend fills text, words
     * and segments (pointing into its state until its next call). */
    pl_status (*create)(pl_ctx *ctx, const pl_stt_params *p, const atomic_bool *cancel,
                        void **state);
    void      (*free)(void *state);
    pl_status (*feed)(void *state, const float *pcm, size_t n);
    pl_status (*partial)(void *state, pl_stt_partial_result *out); /* NULL: no partials */
    pl_status (*finalize)(void *state, pl_stt_result *out);
    void      (*reset)(void *state);                        /* drop the utterance */
    const char *(*error)(void *state);
};

typedef struct pl_stt pl_stt;

pl_stt_params pl_stt_default_params(void);

/* The built-in rows. */
size_t pl_stt_backend_count(void);
const pl_stt_backend *pl_stt_backend_at(size_t i);
const pl_stt_backend *pl_stt_backend_find(const char *name); /* NULL when unknown */

/* Errors: PL_ERR_NOT_FOUND (no such backend or model files), PL_ERR_FORMAT
 * (model unreadable), PL_ERR_UNSUPPORTED (language), PL_ERR_NOMEM; the text is
 * in pl_ctx_last_error(ctx). Loading the PocketSphinx model takes ~0.5-1 s. */
pl_status pl_stt_init(pl_ctx *ctx, const pl_stt_params *params, pl_stt **out);
void pl_stt_free(pl_stt *stt);

/* 16 kHz mono samples. PL_ERR_RANGE when the utterance passes max_utterance_s. */
pl_status pl_stt_feed(pl_stt *stt, const float *pcm, size_t n);
/* The running hypothesis (may be ""); PL_ERR_UNSUPPORTED when the backend or
 * mode has none. The text stays valid until the next call on stt.
 *   pocketsphinx (partials = true): the live decoder's hypothesis; cheap.
 *   whisper: recomputed when at least partial_interval_ms of audio arrived
 *     since the last one (else the last one again, updated = false): Whisper
 *     over all the audio so far with pl_whisper_partial_params(): its
 *     audio_ctx cut to that audio (ceil(samples / 320) encoder frames, at
 *     most the state's), greedy, no timestamps, no temperature fallback, at
 *     most 8 + 6 tokens per whole second (a guard against greedy loops).
 *     Cost of an update: the mel + one encoder pass over the audio so far
 *     (quadratic in its length in the attention; one window per 30 s) + one
 *     decoder step per token: tiny f16 on one thread, about 70 / 165 / 270
 *     ms CPU at 1 / 3 / 5 s of audio with 14 / 26 / 38 tokens, against
 *     ~1.6 s for the finalize's 30 s encoder window (docs/benchmarks.md). A
 *     pl_stt_cancel() stops it with PL_ERR_CANCELED and still cancels the
 *     finalize that follows. finalize is unaffected: it decodes the whole
 *     utterance with the state's context and every rule. */
pl_status pl_stt_partial_get(pl_stt *stt, pl_stt_partial_result *out);
/* pl_stt_partial_get's text only. */
pl_status pl_stt_partial(pl_stt *stt, const char **text);
/* End the utterance and transcribe it. An utterance with no audio gives "".
 * PL_ERR_CANCELED when pl_stt_cancel() came first (the utterance is dropped). */
pl_status pl_stt_finalize(pl_stt *stt, pl_stt_result *out);
/* Drop the utterance in progress (and a pending cancel). */
void pl_stt_reset(pl_stt *stt);
/* Any thread: make the finalize in progress, or the next one, return
 * PL_ERR_CANCELED as soon as the backend checks. */
void pl_stt_cancel(pl_stt *stt);

/* feed + finalize of a whole buffer. */
pl_status pl_stt_transcribe(pl_stt *stt, const float *pcm, size_t n, pl_stt_result *out);

const char *pl_stt_last_error(const pl_stt *stt);
const pl_stt_backend *pl_stt_backend_of(const pl_stt *stt);

/* ---- whole-recording transcription (parley transcribe, the HTTP endpoint) ----
 * The VAD finds the utterances (see parley/vad.h); consecutive utterances are
 * merged into one segment while the segment stays within max_segment_s, so
 * the recognizer sees whole sentences with their context (PocketSphinx's
 * whole-utterance normalization is better on longer audio: jfk.wav 18% WER
 * as one segment, 36% cut at every pause). Each segment's audio runs
 * from its first utterance's padded start to its last one's end + 100 ms.
 * When the recognizer times its own segments (whisper), those are the
 * transcript's segments: their times offset by the start of the audio sent,
 * clamped to it, and kept in order (a segment starts no earlier than the
 * previous one ends). Otherwise (pocketsphinx) every non-empty result is one
 * segment with the VAD's speech edges. */

#include "parley/vad.h"

typedef struct pl_transcribe_params {
    bool          use_vad;       /* false: the whole recording is one segment */
    pl_vad_params vad;           /* sample_rate and the callback are set by the call */
    double        max_segment_s; /* merge utterances up to this long; default 15; 0: never */
} pl_transcribe_params;

pl_transcribe_params pl_transcribe_default_params(void);

typedef struct pl_transcript_segment {
    double      start_s, end_s; /* from the recording's start (see above) */
    const char *text;
    double      seek_s;         /* where the recognizer's window started (OpenAI's "seek") */
    const int32_t *tokens;      /* the recognizer's token ids (NULL, 0: none) */
    size_t      n_tokens;
    bool        has_stats;      /* the four below are the recognizer's (whisper) */
    float       temperature, avg_logprob, compression_ratio, no_speech_prob;
} pl_transcript_segment;

typedef struct pl_transcript {
    const pl_transcript_segment *segments;
    size_t      n_segments;
    const char *text;            /* the segments' text joined by spaces */
    double      duration_s;      /* of the recording */
    double      stt_ms;          /* time spent in the recognizer (feed + finalize) */
    double      vad_ms;          /* time spent in the VAD */
    double      total_ms;        /* time of the whole call */
    pl_ctx     *ctx;             /* private */
} pl_transcript;

/* Called after each segment (may be NULL); return non-zero to stop early
 * (the call then returns PL_ERR_CANCELED and no transcript). */
typedef int (*pl_transcript_segment_fn)(void *ud, const pl_transcript_segment *seg);

/* pcm: 16 kHz mono. params NULL: defaults. Errors as pl_stt_feed/finalize,
 * with the text in pl_ctx_last_error() of the stt's ctx. */
pl_status pl_transcribe(pl_stt *stt, const pl_transcribe_params *params, const float *pcm,
                        size_t n, pl_transcript_segment_fn on_segment, void *ud,
                        pl_transcript **out);
void pl_transcript_free(pl_transcript *t);

typedef enum pl_transcript_format {
    PL_TRANSCRIPT_FORMAT_TEXT = 0,    /* the text and a newline */
    PL_TRANSCRIPT_FORMAT_JSON,        /* {"text": ...} (OpenAI "json") */
    PL_TRANSCRIPT_FORMAT_VERBOSE_JSON,/* + task, language, duration, segments (OpenAI "verbose_json":
                                         id, seek (10 ms frames), start, end, text, tokens, and with
                                         has_stats temperature, avg_logprob, compression_ratio,
                                         no_speech_prob) */
    PL_TRANSCRIPT_FORMAT_SRT,
    PL_TRANSCRIPT_FORMAT_VTT,
    PL_TRANSCRIPT_FORMAT_COUNT
} pl_transcript_format;

/* "text", "json", "verbose_json", "srt", "vtt". */
pl_status pl_transcript_format_parse(const char *s, pl_transcript_format *out);
const char *pl_transcript_format_name(pl_transcript_format f);
/* Render into a new NUL-terminated string (free with pl_free(ctx, *out)). */
pl_status pl_transcript_render(const pl_transcript *t, pl_transcript_format f,
                               const char *language, char **out, size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_STT_H */
