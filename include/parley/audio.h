/*
 * parley/audio.h - audio in and out for the speech module: decode WAV, FLAC,
 * OGG/Vorbis/Opus and MP3 (libsndfile) or headerless s16le PCM, from a file or
 * from memory; convert to mono at a target rate (libsamplerate); a streaming
 * resampler for live audio; write 16-bit WAV or raw s16le PCM.
 *
 * Samples are f32 in [-1, 1]. The loaders always mix down to mono (the speech
 * stages want mono, and mixing while decoding keeps memory at one channel's
 * worth: a 10-minute 16 kHz result is 38 MB).
 *
 * Untrusted input: a file that is corrupt, longer than the duration limit, has
 * 0 or more than max_channels channels or a rate outside [min_rate, max_rate]
 * is refused before its samples are decoded, with one line of text in
 * pl_ctx_last_error(ctx). The limit is also enforced while decoding, so a
 * header that lies about its length cannot make the loader allocate more.
 *
 * Ownership: pl_audio, pl_resampler and pl_audio_writer are owned by the
 * caller and released with their _free/_close; _free(NULL) is a no-op.
 * Thread-safety: the functions are reentrant; each object is single-thread.
 */
#ifndef PARLEY_AUDIO_H
#define PARLEY_AUDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The rate the speech recognizers and the VAD work at. */
#define PL_AUDIO_STT_RATE 16000

/* Resampler quality (libsamplerate's converters). Speed for 44.1 -> 16 kHz on
 * one core (docs/benchmarks.md): MEDIUM 130x, BEST 43x, FASTEST 400x real
 * time; LINEAR aliases and is only for tests. */
typedef enum pl_resample_quality {
    PL_RESAMPLE_QUALITY_MEDIUM = 0, /* default: sinc, 121 dB SNR, 90% band */
    PL_RESAMPLE_QUALITY_BEST,
    PL_RESAMPLE_QUALITY_FASTEST,
    PL_RESAMPLE_QUALITY_LINEAR,
    PL_RESAMPLE_QUALITY_COUNT
} pl_resample_quality;

/* Mono (or interleaved multi-channel) f32 samples. */
typedef struct pl_audio {
    float   *samples;     /* n_frames * channels, interleaved */
    size_t   n_frames;
    int      channels;    /* 1 from the loaders */
    int      sample_rate;
    /* What the input was (from its header, or the raw parameters). */
    int      src_rate;
    int      src_channels;
    double   src_seconds;
    char     src_format[16]; /* "wav", "flac", "ogg", "mp3", "raw", ... */
    pl_ctx  *ctx;            /* private: the allocator that owns samples */
} pl_audio;

typedef struct pl_audio_load_params {
    int    out_rate;      /* default PL_AUDIO_STT_RATE; 0 keeps the source rate */
    double max_seconds;   /* default 600 (10 min); longer input is refused */
    int    max_channels;  /* default 8 */
    int    min_rate;      /* default 8000 */
    int    max_rate;      /* default 192000 */
    pl_resample_quality quality;
    /* Headerless input: raw_rate > 0 means the bytes are s16le PCM at raw_rate
     * with raw_channels (default 1) interleaved channels. */
    int    raw_rate;
    int    raw_channels;
} pl_audio_load_params;

pl_audio_load_params pl_audio_default_load_params(void);

/* Decode a file (path "-" is not special). params NULL: defaults.
 * Errors: PL_ERR_IO (cannot open/read), PL_ERR_FORMAT (not audio, corrupt),
 * PL_ERR_UNSUPPORTED (channel count), PL_ERR_RANGE (rate, duration),
 * PL_ERR_NOMEM. */
pl_status pl_audio_load_file(pl_ctx *ctx, const char *path,
                             const pl_audio_load_params *params, pl_audio **out);
/* The same from bytes in memory (an HTTP upload); data is only read during the
 * call. size 0 is refused as PL_ERR_FORMAT ("empty"). */
pl_status pl_audio_load_memory(pl_ctx *ctx, const void *data, size_t size,
                               const pl_audio_load_params *params, pl_audio **out);
void pl_audio_free(pl_audio *a);

/* Mix interleaved frames down to mono: out[i] = mean over channels. in and out
 * may be the same buffer. */
void pl_audio_downmix(const float *in, size_t n_frames, int channels, float *out);

/* Resample mono in (n frames at in_rate) to out_rate in one call; *out is a
 * new pl_audio (channels 1). in_rate == out_rate copies. */
pl_status pl_audio_resample(pl_ctx *ctx, const float *in, size_t n, int in_rate,
                            int out_rate, pl_resample_quality q, pl_audio **out);

/* ---- streaming resampler (live audio: microphone in, TTS out) ----
 * Keeps filter state between calls, so chunk boundaries are seamless.
 * Allocation only in _init. */
typedef struct pl_resampler pl_resampler;

pl_status pl_resampler_init(pl_ctx *ctx, int in_rate, int out_rate, int channels,
                            pl_resample_quality q, pl_resampler **out);
void pl_resampler_free(pl_resampler *r);
/* Upper bound on the frames one call can produce from n_in input frames
 * (including what earlier calls left in the filter). */
size_t pl_resampler_max_out(const pl_resampler *r, size_t n_in);
/* Convert: reads up to n_in frames, writes up to cap_out frames, reports what it
 * used and made. end = true flushes the filter tail (call again with n_in 0
 * while *n_out > 0 to drain). Passing cap_out >= pl_resampler_max_out(r, n_in)
 * guarantees every input frame is consumed. */
pl_status pl_resampler_process(pl_resampler *r, const float *in, size_t n_in,
                               float *out, size_t cap_out, bool end,
                               size_t *n_in_used, size_t *n_out);
/* Forget the filter state (start of a new stream). */
void pl_resampler_reset(pl_resampler *r);
int pl_resampler_in_rate(const pl_resampler *r);
int pl_resampler_out_rate(const pl_resampler *r);

/* ---- output ---- */

typedef enum pl_audio_format {
    PL_AUDIO_FORMAT_WAV = 0, /* RIFF/WAVE, 16-bit PCM */
    PL_AUDIO_FORMAT_PCM,     /* headerless s16le */
    PL_AUDIO_FORMAT_COUNT
} pl_audio_format;

/* "wav" / "pcm" -> format; PL_ERR_INVALID_ARG otherwise. */
pl_status pl_audio_format_parse(const char *s, pl_audio_format *out);
const char *pl_audio_format_name(pl_audio_format f);

#define PL_WAV_HEADER_SIZE 44
/* A canonical 44-byte WAV header for 16-bit PCM. n_frames UINT64_MAX means
 * "unknown length" (streaming): the RIFF and data sizes are 0xFFFFFFFF, which
 * players treat as "read to the end". Lengths over 4 GiB are also written
 * that way. */
void pl_audio_wav_header(uint8_t out[PL_WAV_HEADER_SIZE], int sample_rate, int channels,
                         uint64_t n_frames);
/* f32 -> s16le bytes (2 * n), rounded and clipped to [-32768, 32767]. */
void pl_audio_f32_to_s16le(const float *in, size_t n, uint8_t *out);
/* s16le bytes -> f32 (divides by 32768). */
void pl_audio_s16le_to_f32(const uint8_t *in, size_t n, float *out);

/* A streaming writer: WAV or raw PCM to a file, or to stdout with path "-".
 * A WAV file's header is rewritten with the real length on close when the
 * output can seek; on a pipe it keeps the "unknown length" sizes. */
typedef struct pl_audio_writer pl_audio_writer;

pl_status pl_audio_writer_open(pl_ctx *ctx, const char *path, pl_audio_format fmt,
                               int sample_rate, int channels, pl_audio_writer **out);
/* n_frames interleaved frames. Errors (disk full...) go to the writer's ctx. */
pl_status pl_audio_writer_write(pl_audio_writer *w, const float *pcm, size_t n_frames);
uint64_t pl_audio_writer_frames(const pl_audio_writer *w);
/* Finish the header, flush and close; frees w. Returns the first error seen
 * (a failed write or close), PL_OK otherwise. NULL is a no-op (PL_OK). */
pl_status pl_audio_writer_close(pl_audio_writer *w);

/* Convenience: write a whole buffer. */
pl_status pl_audio_save(pl_ctx *ctx, const char *path, pl_audio_format fmt,
                        const float *pcm, size_t n_frames, int sample_rate, int channels);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_AUDIO_H */
