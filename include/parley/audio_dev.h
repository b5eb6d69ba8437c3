/*
 * parley/audio_dev.h - live audio through ALSA: a capture device (the
 * microphone) and a playback device (the speaker) as mono f32 at a chosen
 * rate, and a player that queues output on its own thread, can drop what is
 * queued at once (barge-in) and reports what has been played.
 *
 * Devices are ALSA PCM names ("default", "hw:1,0", "plughw:1", "null", a
 * name defined in ~/.asoundrc; `arecord -L` / `aplay -L` list them). The name
 * is opened through ALSA's plug layer (as "plug:'NAME'" unless it already
 * names a plug device), so ALSA converts the rate, sample format and channel
 * count to whatever the hardware has; the device side is always S16 mono.
 *
 * Errors: a device that cannot be opened or configured gives PL_ERR_IO (or
 * PL_ERR_NOT_FOUND when ALSA says there is no such device) with one line in
 * pl_ctx_last_error(ctx) naming the device and ALSA's reason
 * (snd_strerror): "capture device 'hw:3': No such file or directory".
 * Over- and underruns (xruns) are recovered with snd_pcm_recover and
 * counted, not returned. ALSA's own diagnostics (it prints to stderr by
 * default) are switched off process-wide by the first pl_audio_dev_init:
 * a library does not print, and the reason is in the returned text instead.
 *
 * Pacing: ALSA's software devices "null" (capture gives silence, playback
 * discards) and "file" deliver and accept samples as fast as asked. A capture
 * device never delivers faster than real time here (reads that do not block
 * sleep up to the wall clock), so such a device stands in for a microphone in
 * tests; a hardware device paces itself and is never delayed by this.
 *
 * Ownership: pl_audio_dev and pl_audio_player are owned by the caller and
 * released with _free; _free(NULL) is a no-op.
 * Thread-safety: a pl_audio_dev is used by one thread at a time. A
 * pl_audio_player may be written, dropped and queried from any thread (it
 * owns its device and thread); pl_audio_player_write from one thread at a
 * time.
 */
#ifndef PARLEY_AUDIO_DEV_H
#define PARLEY_AUDIO_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pl_audio_dev_dir {
    PL_AUDIO_DEV_CAPTURE = 0,
    PL_AUDIO_DEV_PLAYBACK,
    PL_AUDIO_DEV_DIR_COUNT
} pl_audio_dev_dir;

/* "capture" / "playback"; "unknown" outside the enum. */
const char *pl_audio_dev_dir_name(pl_audio_dev_dir d);

typedef struct pl_audio_dev_params {
    const char      *device;      /* ALSA PCM name; NULL or "": "default" */
    pl_audio_dev_dir dir;
    int              sample_rate; /* 8000..192000; default 16000 (PL_AUDIO_STT_RATE) */
    int              period_ms;   /* ALSA period: the read/write granule; 5..200, default 20 */
    int              buffer_ms;   /* device buffer: capture, how long the reader may stall
                                     before samples are lost; playback, the most audio
                                     queued in the device (what a drop discards);
                                     >= 2 periods, <= 2000; default 200 */
} pl_audio_dev_params;

pl_audio_dev_params pl_audio_dev_default_params(void);

typedef struct pl_audio_dev pl_audio_dev;

/* Open and configure the device (capture starts with the first read).
 * Errors: PL_ERR_INVALID_ARG
 * (params), PL_ERR_NOT_FOUND / PL_ERR_IO (the device; see above),
 * PL_ERR_UNSUPPORTED (it refuses 16-bit mono at the rate even through the
 * plug layer), PL_ERR_NOMEM. */
pl_status pl_audio_dev_init(pl_ctx *ctx, const pl_audio_dev_params *params, pl_audio_dev **out);
void pl_audio_dev_free(pl_audio_dev *d);

/* Capture: read up to n samples into pcm (blocks until at least one period is
 * there, or returns fewer at end of input); *got gets the count. An overrun
 * (samples lost) is recovered and counted. Errors: PL_ERR_STATE (a playback
 * device), PL_ERR_IO (the device failed for good, e.g. unplugged; text in
 * pl_audio_dev_last_error). */
pl_status pl_audio_dev_read(pl_audio_dev *d, float *pcm, size_t n, size_t *got);
/* Playback: write n samples (clipped to [-1, 1]); blocks while the device
 * buffer is full. An underrun is recovered and counted. */
pl_status pl_audio_dev_write(pl_audio_dev *d, const float *pcm, size_t n);
/* Playback: samples written and not yet played (ALSA's delay). 0 after an
 * underrun: everything was played; the device is made ready for the next
 * write and the underrun is not counted (the writer had nothing more: the end
 * of the audio, not a glitch). Only underruns met by a write count. */
pl_status pl_audio_dev_pending(pl_audio_dev *d, uint64_t *n);
/* Playback: discard what the device holds (snd_pcm_drop) and get ready for
 * more. */
pl_status pl_audio_dev_drop(pl_audio_dev *d);

int pl_audio_dev_rate(const pl_audio_dev *d);
/* The configured period and buffer, in samples. */
size_t pl_audio_dev_period(const pl_audio_dev *d);
size_t pl_audio_dev_buffer(const pl_audio_dev *d);
/* Over- or underruns recovered so far. */
uint64_t pl_audio_dev_xruns(const pl_audio_dev *d);
/* The device name as given ("default" for NULL). */
const char *pl_audio_dev_name(const pl_audio_dev *d);
/* Text of the last failure of read/write/pending/drop ("" when none). */
const char *pl_audio_dev_last_error(const pl_audio_dev *d);

/* ---- the player ---- */

/* Samples leave the player either played or dropped (pl_audio_player_drop);
 * called on the player's thread, in order, never twice at once. A voice
 * pipeline acknowledges both (pl_voice_played(played + dropped)): dropped
 * samples will never play, and its output position must stay in step. */
typedef void (*pl_audio_played_fn)(void *ud, uint64_t played, uint64_t dropped);

typedef struct pl_audio_player_params {
    const char        *device;      /* playback device; NULL or "": "default" */
    int                sample_rate; /* of the samples written; 8000..192000, required */
    int                period_ms;   /* as pl_audio_dev_params; default 20 */
    int                buffer_ms;   /* default 200 */
    double             queue_s;     /* queue in front of the device, made at init; writes
                                       block while it is full; 1..600, default 60 */
    pl_audio_played_fn on_played;   /* may be NULL */
    void              *ud;
} pl_audio_player_params;

pl_audio_player_params pl_audio_player_default_params(void);

typedef struct pl_audio_player pl_audio_player;

typedef struct pl_audio_player_stats {
    uint64_t written;   /* samples accepted by pl_audio_player_write */
    uint64_t played;    /* reported as played */
    uint64_t dropped;   /* discarded by pl_audio_player_drop */
    uint64_t xruns;     /* underruns met by a write (the thread was late while samples
                           were queued); the device running out at the end of the
                           audio is not one */
    uint64_t drops;     /* pl_audio_player_drop calls that discarded something */
} pl_audio_player_stats;

/* Open the device and start the thread. Errors as pl_audio_dev_init. */
pl_status pl_audio_player_init(pl_ctx *ctx, const pl_audio_player_params *params, pl_audio_player **out);
/* Stops at once: what is queued is dropped (not reported). */
void pl_audio_player_free(pl_audio_player *p);
/* Queue n samples (copied). Blocks while the queue is full (the device plays
 * it out at real time). PL_ERR_IO once the device failed for good (text in
 * pl_audio_player_last_error). */
pl_status pl_audio_player_write(pl_audio_player *p, const float *pcm, size_t n);
/* Discard everything queued, here and in the device; returns at once (the
 * device is dropped within one period, and the samples are reported as
 * dropped from the player's thread). Samples written after this call play. */
void pl_audio_player_drop(pl_audio_player *p);
/* Wait until every sample written so far was played or dropped; timeout_ms
 * < 0: no limit. True when so. */
bool pl_audio_player_wait(pl_audio_player *p, int timeout_ms);
void pl_audio_player_stats_get(pl_audio_player *p, pl_audio_player_stats *out);
/* "" while the device works. */
const char *pl_audio_player_last_error(pl_audio_player *p);

#ifdef __cplusplus
}
#endif

#endif /* PARLEY_AUDIO_DEV_H */
