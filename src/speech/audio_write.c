/*
 * audio_write.c - 16-bit PCM output: the canonical WAV header, f32 <-> s16le,
 * and a streaming writer that patches the WAV sizes on close when it can seek.
 *
 * WAV layout written (all little-endian), from the RIFF/WAVE definition:
 *   "RIFF" u32 riff_size "WAVE"
 *   "fmt " u32 16  u16 1 (PCM)  u16 channels  u32 rate  u32 byte_rate
 *          u16 block_align  u16 16 (bits)
 *   "data" u32 data_size  <samples>
 * riff_size = 36 + data_size.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "speech/speech_int.h"

static const char *const format_names[PL_AUDIO_FORMAT_COUNT] = {
    [PL_AUDIO_FORMAT_WAV] = "wav",
    [PL_AUDIO_FORMAT_PCM] = "pcm",
};

pl_status pl_audio_format_parse(const char *s, pl_audio_format *out) {
    for (int i = 0; s && i < PL_AUDIO_FORMAT_COUNT; i++) {
        if (strcmp(s, format_names[i]) == 0) {
            *out = (pl_audio_format)i;
            return PL_OK;
        }
    }
    return PL_ERR_INVALID_ARG;
}

const char *pl_audio_format_name(pl_audio_format f) {
    return (unsigned)f < PL_AUDIO_FORMAT_COUNT ? format_names[f] : "unknown";
}

static void put_u16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v) {
    put_u16(p, v & 0xffff);
    put_u16(p + 2, v >> 16);
}

void pl_audio_wav_header(uint8_t out[PL_WAV_HEADER_SIZE], int sample_rate, int channels,
                         uint64_t n_frames) {
    const uint32_t block = (uint32_t)channels * 2;
    uint64_t data = 0;
    bool known = n_frames != UINT64_MAX && pl_u64_mul(n_frames, block, &data) &&
                 data <= (uint64_t)UINT32_MAX - 36;
    memcpy(out, "RIFF", 4);
    put_u32(out + 4, known ? (uint32_t)(36 + data) : UINT32_MAX);
    memcpy(out + 8, "WAVEfmt ", 8);
    put_u32(out + 16, 16);
    put_u16(out + 20, 1);
    put_u16(out + 22, (uint32_t)channels);
    put_u32(out + 24, (uint32_t)sample_rate);
    put_u32(out + 28, (uint32_t)sample_rate * block);
    put_u16(out + 32, block);
    put_u16(out + 34, 16);
    memcpy(out + 36, "data", 4);
    put_u32(out + 40, known ? (uint32_t)data : UINT32_MAX);
}

void pl_audio_f32_to_s16le(const float *in, size_t n, uint8_t *out) {
    for (size_t i = 0; i < n; i++) {
        float v = in[i] * 32768.0f;
        int32_t s = isfinite(v) ? (int32_t)lrintf(v > 32767.0f ? 32767.0f : v < -32768.0f ? -32768.0f : v) : 0;
        out[2 * i] = (uint8_t)(s & 0xff);
        out[2 * i + 1] = (uint8_t)((uint32_t)s >> 8);
    }
}

void pl_audio_s16le_to_f32(const uint8_t *in, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) {
        int16_t s = (int16_t)(uint16_t)(in[2 * i] | in[2 * i + 1] << 8);
        out[i] = (float)s / 32768.0f;
    }
}

struct pl_audio_writer {
    pl_ctx         *ctx;
    FILE           *f;
    bool            is_stdout;
    pl_audio_format fmt;
    int             rate, channels;
    uint64_t        frames;
    pl_status       err;      /* first failure */
    char            path[256];
};

pl_status pl_audio_writer_open(pl_ctx *ctx, const char *path, pl_audio_format fmt,
                               int sample_rate, int channels, pl_audio_writer **out) {
    if (!out) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio writer: out is NULL");
    *out = NULL;
    if (!path || (unsigned)fmt >= PL_AUDIO_FORMAT_COUNT)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio writer: bad path or format");
    if (sample_rate < 1000 || sample_rate > 384000 || channels < 1 || channels > 64)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio writer: %d Hz, %d channels not writable",
                          sample_rate, channels);
    pl_audio_writer *w = pl_calloc(ctx, 1, sizeof *w);
    if (!w) return pl_ctx_err(ctx, PL_ERR_NOMEM, "audio writer: out of memory");
    *w = (pl_audio_writer){ .ctx = ctx, .fmt = fmt, .rate = sample_rate, .channels = channels };
    pl_speech_copy_text(w->path, sizeof w->path, path, strlen(path));
    w->is_stdout = strcmp(path, "-") == 0;
    w->f = w->is_stdout ? stdout : fopen(path, "wb");
    if (!w->f) {
        pl_status st = pl_ctx_err(ctx, PL_ERR_IO, "audio writer: %s: cannot create: %s", path,
                                  strerror(errno));
        pl_free(ctx, w);
        return st;
    }
    if (fmt == PL_AUDIO_FORMAT_WAV) {
        uint8_t h[PL_WAV_HEADER_SIZE];
        pl_audio_wav_header(h, sample_rate, channels, UINT64_MAX);
        if (fwrite(h, 1, sizeof h, w->f) != sizeof h) {
            pl_status st = pl_ctx_err(ctx, PL_ERR_IO, "audio writer: %s: write failed", path);
            if (!w->is_stdout) fclose(w->f);
            pl_free(ctx, w);
            return st;
        }
    }
    *out = w;
    return PL_OK;
}

pl_status pl_audio_writer_write(pl_audio_writer *w, const float *pcm, size_t n_frames) {
    if (!w || (!pcm && n_frames)) return PL_ERR_INVALID_ARG;
    if (w->err != PL_OK) return w->err;
    size_t n;
    if (!pl_size_mul(n_frames, (size_t)w->channels, &n)) return PL_ERR_OVERFLOW;
    uint8_t buf[4096];
    for (size_t i = 0; i < n;) {
        size_t k = n - i < sizeof buf / 2 ? n - i : sizeof buf / 2;
        pl_audio_f32_to_s16le(pcm + i, k, buf);
        if (fwrite(buf, 2, k, w->f) != k) {
            w->err = pl_ctx_err(w->ctx, PL_ERR_IO, "audio writer: %s: write failed: %s", w->path,
                                strerror(errno));
            return w->err;
        }
        i += k;
    }
    w->frames += n_frames;
    return PL_OK;
}

uint64_t pl_audio_writer_frames(const pl_audio_writer *w) { return w ? w->frames : 0; }

pl_status pl_audio_writer_close(pl_audio_writer *w) {
    if (!w) return PL_OK;
    pl_status st = w->err;
    /* Patch the sizes when the output can seek (a file; not a pipe). */
    if (st == PL_OK && w->fmt == PL_AUDIO_FORMAT_WAV && fflush(w->f) == 0 &&
        fseeko(w->f, 0, SEEK_SET) == 0) {
        uint8_t h[PL_WAV_HEADER_SIZE];
        pl_audio_wav_header(h, w->rate, w->channels, w->frames);
        if (fwrite(h, 1, sizeof h, w->f) != sizeof h)
            st = pl_ctx_err(w->ctx, PL_ERR_IO, "audio writer: %s: header rewrite failed", w->path);
        fseeko(w->f, 0, SEEK_END);
    }
    if (w->is_stdout) {
        if (fflush(w->f) != 0 && st == PL_OK)
            st = pl_ctx_err(w->ctx, PL_ERR_IO, "audio writer: stdout: flush failed");
    } else if (fclose(w->f) != 0 && st == PL_OK) {
        st = pl_ctx_err(w->ctx, PL_ERR_IO, "audio writer: %s: close failed: %s", w->path,
                        strerror(errno));
    }
    pl_free(w->ctx, w);
    return st;
}

pl_status pl_audio_save(pl_ctx *ctx, const char *path, pl_audio_format fmt,
                        const float *pcm, size_t n_frames, int sample_rate, int channels) {
    pl_audio_writer *w = NULL;
    pl_status st = pl_audio_writer_open(ctx, path, fmt, sample_rate, channels, &w);
    if (st != PL_OK) return st;
    st = pl_audio_writer_write(w, pcm, n_frames);
    pl_status st2 = pl_audio_writer_close(w);
    return st != PL_OK ? st : st2;
}
