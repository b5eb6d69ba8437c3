/*
 * parley/vad.h - voice activity detection and end of turn, on a stream of mono
 * f32 samples.
 *
 * How it decides (per 10/20/30 ms frame, all thresholds in dB relative to an
 * adaptive noise floor):
 *  - the frame's level is the RMS of the signal after a 100 Hz high-pass
 *    (removes hum and rumble);
 *  - the noise floor follows the level's lower envelope: it falls fast (40 ms)
 *    and rises slowly (250 ms; 3 s inside a turn, where only frames below the
 *    stop threshold count), so a room or a fan that gets louder is learnt
 *    within about a second, and quiet syllables do not lift it;
 *  - speech starts (hysteresis, high threshold) when a frame is start_db above
 *    the floor and the run that follows stays stop_db above it and contains
 *    voiced frames (normalized autocorrelation >= 0.75 at a lag of 2-12.5 ms,
 *    i.e. a pitch of 80-500 Hz) within voice_lead_ms. Loud but unvoiced
 *    sound (a noise burst, a door, a fan switching on, applause) never starts
 *    speech on its own, and the noise floor learns it;
 *  - speech continues (low threshold) while frames are stop_db above the floor
 *    and voiced frames keep coming (an unvoiced tail such as a final "s" is
 *    kept up to hang_ms after the last voiced frame);
 *  - the turn ends after silence_ms with no such frame.
 * The speech edges reported are those frame boundaries, not the moments the
 * decisions were made (which come later: the start needs a voiced frame, the
 * stop needs silence_ms): both are in each event.
 *
 * Cost: a biquad and an RMS per sample; the voicing autocorrelation (20 ms
 * window x 169 lags at 16 kHz) runs only on frames above the floor. Worst
 * case (every frame voiced) 0.03 ms per 30 ms of 16 kHz audio, 0.23 ms at
 * 48 kHz (docs/benchmarks.md). No allocation after _init.
 *
 * Ownership: the caller owns the pl_vad (pl_vad_free). Thread-safety: one
 * thread at a time per pl_vad; the event callback runs on the feeding thread,
 * inside pl_vad_feed()/pl_vad_flush().
 */
#ifndef PARLEY_VAD_H
#define PARLEY_VAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pl_vad_event_type {
    PL_VAD_EVENT_SPEECH_STARTED = 0,
    PL_VAD_EVENT_SPEECH_STOPPED,
    PL_VAD_EVENT_COUNT
} pl_vad_event_type;

/* Positions count samples fed since _init or the last _reset. */
typedef struct pl_vad_event {
    pl_vad_event_type type;
    uint64_t edge;          /* STARTED: first sample of speech; STOPPED: one past the last */
    uint64_t detected;      /* the stream position when the decision was made (>= edge) */
    uint64_t pad_start;     /* STARTED: edge - prefix padding (>= 0): where the utterance's
                             * audio should begin */
    double   edge_ms, detected_ms, pad_start_ms;
    bool     forced;        /* STOPPED: cut by max_speech_ms or by _flush, not by silence */
    /* STARTED only: the samples [pad_start, detected), which the stream has already
     * passed, so a recognizer can start with the padding; valid during the
     * callback only. */
    const float *audio;
    size_t   n_audio;
} pl_vad_event;

typedef void (*pl_vad_event_fn)(void *ud, const pl_vad_event *ev);

typedef struct pl_vad_params {
    int   sample_rate;     /* 8000..48000; default 16000 */
    int   frame_ms;        /* 10, 20 or 30; default 10 */
    int   silence_ms;      /* trailing silence that ends a turn; default 500 */
    int   prefix_pad_ms;   /* audio kept before the speech edge; default 300 */
    int   min_speech_ms;   /* shorter voiced bursts are ignored; default 60 */
    int   voice_lead_ms;   /* longest unvoiced start (an "s", an "f") before a voiced
                            * frame; default 250 */
    int   hang_ms;         /* unvoiced tail kept after the last voiced frame; default 300 */
    int   max_speech_ms;   /* 0: no limit; else a turn is cut (forced STOPPED) */
    float start_db;        /* default 15 */
    float stop_db;         /* default 10 (must be <= start_db) */
    float floor_min_db;    /* the floor never goes below this (digital silence); -60 */
    pl_vad_event_fn on_event; /* may be NULL (poll pl_vad_in_speech instead) */
    void *ud;
} pl_vad_params;

typedef struct pl_vad pl_vad;

pl_vad_params pl_vad_default_params(void);
/* Errors: PL_ERR_INVALID_ARG with the reason in pl_ctx_last_error(ctx). */
pl_status pl_vad_init(pl_ctx *ctx, const pl_vad_params *params, pl_vad **out);
void pl_vad_free(pl_vad *vad);
/* Forget everything (noise floor included); positions restart at 0. */
void pl_vad_reset(pl_vad *vad);

/* Feed any number of samples; complete frames are analysed and events are
 * delivered through on_event before this returns, in stream order. */
pl_status pl_vad_feed(pl_vad *vad, const float *pcm, size_t n);
/* End of stream: a turn in progress is closed (STOPPED with forced = true). */
pl_status pl_vad_flush(pl_vad *vad);

bool     pl_vad_in_speech(const pl_vad *vad);
uint64_t pl_vad_position(const pl_vad *vad);  /* samples fed so far */
float    pl_vad_level_db(const pl_vad *vad);  /* last frame's level (dBFS) */
float    pl_vad_floor_db(const pl_vad *vad);  /* current noise floor (dBFS) */
int      pl_vad_frame_samples(const pl_vad *vad);

const char *pl_vad_event_name(pl_vad_event_type t); /* "speech_started", "speech_stopped" */

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_VAD_H */
