/*
 * audio.c - decoding (libsndfile) to mono at a target rate (libsamplerate),
 * with the untrusted-input checks: channels, rate, duration, corrupt data.
 *
 * Decoding streams: 4096 frames are read, mixed down and resampled at a time,
 * so memory is the output plus one chunk, whatever the input's channel count
 * or rate. The output buffer is sized from the header's frame count and grows
 * (doubling) when a header understated it, never past the duration limit.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sndfile.h>

#include "speech/speech_int.h"

#define CHUNK_FRAMES 4096

pl_audio_load_params pl_audio_default_load_params(void) {
    return (pl_audio_load_params){
        .out_rate = PL_AUDIO_STT_RATE,
        .max_seconds = 600.0,
        .max_channels = 8,
        .min_rate = 8000,
        .max_rate = 192000,
        .quality = PL_RESAMPLE_QUALITY_MEDIUM,
        .raw_rate = 0,
        .raw_channels = 1,
    };
}

void pl_audio_free(pl_audio *a) {
    if (!a) return;
    pl_ctx *ctx = a->ctx;
    pl_free(ctx, a->samples);
    pl_free(ctx, a);
}

/* Clean one sample of untrusted float data: NaN/Inf -> 0, clamp to [-1, 1]
 * (float WAVs may hold anything; one NaN would poison every later stage). */
static inline float clean_sample(float v) {
    if (!isfinite(v)) return 0.0f;
    return v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v;
}

void pl_audio_downmix(const float *in, size_t n_frames, int channels, float *out) {
    if (channels <= 1) {
        for (size_t i = 0; i < n_frames; i++) out[i] = clean_sample(in[i]);
        return;
    }
    const float inv = 1.0f / (float)channels;
    for (size_t i = 0; i < n_frames; i++) {
        float acc = 0.0f;
        const float *f = in + i * (size_t)channels;
        for (int c = 0; c < channels; c++) acc += clean_sample(f[c]);
        out[i] = acc * inv; /* in == out is safe: out[i] is written after f is read */
    }
}

/* ---- libsndfile virtual I/O over a memory block ---- */

typedef struct mem_io {
    const unsigned char *data;
    sf_count_t size, pos;
} mem_io;

static sf_count_t mem_len(void *ud) { return ((mem_io *)ud)->size; }

static sf_count_t mem_seek(sf_count_t off, int whence, void *ud) {
    mem_io *m = ud;
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->size;
    if (off > 0 && base > INT64_MAX - off) return -1;
    sf_count_t p = base + off;
    if (p < 0) return -1;
    m->pos = p > m->size ? m->size : p;
    return m->pos;
}

static sf_count_t mem_read(void *ptr, sf_count_t count, void *ud) {
    mem_io *m = ud;
    if (count <= 0 || m->pos >= m->size) return 0;
    sf_count_t n = m->size - m->pos < count ? m->size - m->pos : count;
    memcpy(ptr, m->data + m->pos, (size_t)n);
    m->pos += n;
    return n;
}

static sf_count_t mem_write(const void *ptr, sf_count_t count, void *ud) {
    (void)ptr, (void)count, (void)ud;
    return 0;
}

static sf_count_t mem_tell(void *ud) { return ((mem_io *)ud)->pos; }

/* ---- header sniffing for clear messages ----
 * libsndfile refuses a WAV with 0 channels or a silly rate with a generic
 * "malformed" text; read the fmt chunk ourselves so the user hears what is
 * wrong. Only looks, never trusts: every field is bounds-checked. */

static uint32_t rd_u32le(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool sniff_wav_fmt(const unsigned char *p, size_t n, int *channels, uint32_t *rate) {
    if (n < 12 || memcmp(p, "RIFF", 4) != 0 || memcmp(p + 8, "WAVE", 4) != 0) return false;
    size_t off = 12;
    while (off + 8 <= n) {
        uint32_t len = rd_u32le(p + off + 4);
        if (memcmp(p + off, "fmt ", 4) == 0) {
            if (len < 16 || off + 8 + 8 > n) return false;
            *channels = p[off + 10] | p[off + 11] << 8;
            *rate = rd_u32le(p + off + 12);
            return true;
        }
        size_t step = 8 + (size_t)len + (len & 1);
        if (step > n - off) return false;
        off += step;
    }
    return false;
}

/* ---- the decoder ---- */

typedef struct load_src {
    const char *name;   /* for messages: the path or "memory" */
    SNDFILE    *sf;
    SF_INFO     info;
} load_src;

static const char *format_name(int format) {
    switch (format & SF_FORMAT_TYPEMASK) {
    case SF_FORMAT_WAV: case SF_FORMAT_WAVEX: case SF_FORMAT_RF64: case SF_FORMAT_W64: return "wav";
    case SF_FORMAT_FLAC:  return "flac";
    case SF_FORMAT_OGG:   return "ogg";
    case SF_FORMAT_MPEG:  return "mp3";
    case SF_FORMAT_RAW:   return "raw";
    case SF_FORMAT_AIFF:  return "aiff";
    case SF_FORMAT_AU:    return "au";
    case SF_FORMAT_CAF:   return "caf";
    default:              return "other";
    }
}

static pl_status check_params(pl_ctx *ctx, const pl_audio_load_params *p) {
    if (p->out_rate != 0 && (p->out_rate < 1000 || p->out_rate > 384000))
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio: out_rate %d outside 1000..384000", p->out_rate);
    if (!(p->max_seconds > 0.0) || p->max_seconds > 86400.0)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio: max_seconds must be in (0, 86400]");
    if (p->max_channels < 1 || p->max_channels > 64)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio: max_channels must be in 1..64");
    if (p->min_rate < 1 || p->max_rate < p->min_rate || p->max_rate > 1000000)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio: bad rate limits %d..%d", p->min_rate, p->max_rate);
    if ((unsigned)p->quality >= PL_RESAMPLE_QUALITY_COUNT)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio: bad resample quality %d", (int)p->quality);
    return PL_OK;
}

/* Checks on the header, shared by every kind of input. */
static pl_status check_header(pl_ctx *ctx, const char *name, const SF_INFO *info,
                              const pl_audio_load_params *p) {
    if (info->channels < 1)
        return pl_ctx_err(ctx, PL_ERR_FORMAT, "audio: %s: 0 channels", name);
    if (info->channels > p->max_channels)
        return pl_ctx_err(ctx, PL_ERR_UNSUPPORTED, "audio: %s: %d channels (at most %d)",
                          name, info->channels, p->max_channels);
    if (info->samplerate < p->min_rate || info->samplerate > p->max_rate)
        return pl_ctx_err(ctx, PL_ERR_RANGE, "audio: %s: sample rate %d Hz outside %d..%d Hz",
                          name, info->samplerate, p->min_rate, p->max_rate);
    if (info->frames > 0 && info->frames != SF_COUNT_MAX &&
        (double)info->frames / info->samplerate > p->max_seconds)
        return pl_ctx_err(ctx, PL_ERR_RANGE, "audio: %s: %.1f s long (limit %.0f s)", name,
                          (double)info->frames / info->samplerate, p->max_seconds);
    return PL_OK;
}

static pl_status grow(pl_ctx *ctx, float **buf, size_t *cap, size_t need, size_t limit) {
    if (need <= *cap) return PL_OK;
    size_t n = *cap ? *cap : 4096;
    while (n < need) {
        if (!pl_size_mul(n, 2, &n)) return PL_ERR_OVERFLOW;
    }
    if (n > limit) n = limit > need ? limit : need;
    size_t bytes;
    if (!pl_size_mul(n, sizeof(float), &bytes)) return PL_ERR_OVERFLOW;
    float *p = pl_realloc(ctx, *buf, bytes);
    if (!p) return PL_ERR_NOMEM;
    *buf = p;
    *cap = n;
    return PL_OK;
}

/* Decode an opened source into *out. Closes nothing (the caller does). */
static pl_status decode(pl_ctx *ctx, load_src *s, const pl_audio_load_params *p, pl_audio **out) {
    pl_status st = check_header(ctx, s->name, &s->info, p);
    if (st != PL_OK) return st;
    const int ch = s->info.channels, in_rate = s->info.samplerate;
    const int out_rate = p->out_rate ? p->out_rate : in_rate;
    /* Frame limits from the duration limit, +1 for rounding. */
    const uint64_t max_in = (uint64_t)(p->max_seconds * in_rate) + 1;
    const size_t max_out = (size_t)(p->max_seconds * out_rate) + 64;

    pl_audio *a = pl_calloc(ctx, 1, sizeof *a);
    float *chunk = NULL, *mono = NULL;
    pl_resampler *rs = NULL;
    size_t chunk_len;
    if (!a || !pl_size_mul((size_t)CHUNK_FRAMES, (size_t)ch, &chunk_len)) goto nomem;
    a->ctx = ctx; /* before any failure: pl_audio_free() frees through it */
    chunk = pl_malloc(ctx, chunk_len * sizeof(float));
    mono = pl_malloc(ctx, CHUNK_FRAMES * sizeof(float));
    if (!chunk || !mono) goto nomem;
    if (out_rate != in_rate) {
        st = pl_resampler_init(ctx, in_rate, out_rate, 1, p->quality, &rs);
        if (st != PL_OK) goto fail;
    }
    a->channels = 1;
    a->sample_rate = out_rate;
    a->src_rate = in_rate;
    a->src_channels = ch;
    snprintf(a->src_format, sizeof a->src_format, "%s", format_name(s->info.format));

    size_t cap = 0;
    if (s->info.frames > 0 && s->info.frames != SF_COUNT_MAX) {
        double est = (double)s->info.frames * out_rate / in_rate + 64;
        size_t want = est < (double)max_out ? (size_t)est : max_out;
        st = grow(ctx, &a->samples, &cap, want, max_out);
        if (st != PL_OK) goto fail;
    }
    uint64_t n_in = 0;
    for (bool eof = false; !eof;) {
        sf_count_t got = sf_readf_float(s->sf, chunk, CHUNK_FRAMES);
        if (got < 0) got = 0;
        if (got < CHUNK_FRAMES) {
            /* A short read is either the end or a decode error mid-file. */
            int e = sf_error(s->sf);
            if (e != SF_ERR_NO_ERROR) {
                st = pl_ctx_err(ctx, PL_ERR_FORMAT, "audio: %s: decoding failed after %.2f s: %s",
                                s->name, (double)n_in / in_rate, sf_strerror(s->sf));
                goto fail;
            }
            eof = true;
        }
        n_in += (uint64_t)got;
        if (n_in > max_in) {
            st = pl_ctx_err(ctx, PL_ERR_RANGE, "audio: %s: longer than the %.0f s limit",
                            s->name, p->max_seconds);
            goto fail;
        }
        pl_audio_downmix(chunk, (size_t)got, ch, mono);
        size_t off = 0;
        for (;;) {
            size_t need, made = 0, used = (size_t)got - off;
            if (rs) {
                size_t room = pl_resampler_max_out(rs, used);
                if (!pl_size_add(a->n_frames, room, &need)) goto nomem;
                if (need > max_out) need = max_out;
                st = grow(ctx, &a->samples, &cap, need, max_out);
                if (st != PL_OK) goto fail;
                st = pl_resampler_process(rs, mono + off, used, a->samples + a->n_frames,
                                          cap - a->n_frames, eof, &used, &made);
                if (st != PL_OK) goto fail;
            } else if (used > 0) {
                if (!pl_size_add(a->n_frames, used, &need)) goto nomem;
                st = grow(ctx, &a->samples, &cap, need, max_out);
                if (st != PL_OK) goto fail;
                memcpy(a->samples + a->n_frames, mono + off, used * sizeof(float));
                made = used;
            }
            if (used == 0 && made == 0 && off < (size_t)got) {
                st = pl_ctx_err(ctx, PL_ERR_INTERNAL, "audio: %s: resampler made no progress", s->name);
                goto fail;
            }
            /* The sinc filter rings past full scale on clipped input (Gibbs):
             * keep the promise of [-1, 1]. */
            if (rs)
                for (size_t i = a->n_frames; i < a->n_frames + made; i++)
                    a->samples[i] = clean_sample(a->samples[i]);
            a->n_frames += made;
            off += used;
            if (off >= (size_t)got && !(rs && eof && made > 0)) break;
            if (a->n_frames >= max_out) break;
        }
    }
    if (n_in == 0) {
        st = pl_ctx_err(ctx, PL_ERR_FORMAT, "audio: %s: no samples", s->name);
        goto fail;
    }
    a->src_seconds = (double)n_in / in_rate;
    pl_resampler_free(rs);
    pl_free(ctx, chunk);
    pl_free(ctx, mono);
    *out = a;
    return PL_OK;
nomem:
    st = pl_ctx_err(ctx, PL_ERR_NOMEM, "audio: %s: out of memory", s->name);
fail:
    if (st == PL_ERR_NOMEM || st == PL_ERR_OVERFLOW)
        pl_ctx_err(ctx, st, "audio: %s: out of memory", s->name);
    pl_resampler_free(rs);
    pl_free(ctx, chunk);
    pl_free(ctx, mono);
    pl_audio_free(a);
    return st;
}

static void raw_info(const pl_audio_load_params *p, SF_INFO *info) {
    memset(info, 0, sizeof *info);
    if (p->raw_rate > 0) {
        info->format = SF_FORMAT_RAW | SF_FORMAT_PCM_16 | SF_ENDIAN_LITTLE;
        info->samplerate = p->raw_rate;
        info->channels = p->raw_channels;
    }
}

/* A failed sf_open: say why as precisely as the bytes allow. */
static pl_status open_error(pl_ctx *ctx, const char *name, const unsigned char *head, size_t n,
                            const pl_audio_load_params *p, const char *sf_msg) {
    if (n == 0) return pl_ctx_err(ctx, PL_ERR_FORMAT, "audio: %s: empty", name);
    int ch;
    uint32_t rate;
    if (sniff_wav_fmt(head, n, &ch, &rate)) {
        if (ch == 0) return pl_ctx_err(ctx, PL_ERR_FORMAT, "audio: %s: 0 channels", name);
        if (ch > p->max_channels)
            return pl_ctx_err(ctx, PL_ERR_UNSUPPORTED, "audio: %s: %d channels (at most %d)",
                              name, ch, p->max_channels);
        if (rate < (uint32_t)p->min_rate || rate > (uint32_t)p->max_rate)
            return pl_ctx_err(ctx, PL_ERR_RANGE, "audio: %s: sample rate %u Hz outside %d..%d Hz",
                              name, rate, p->min_rate, p->max_rate);
    }
    return pl_ctx_err(ctx, PL_ERR_FORMAT, "audio: %s: not a readable audio file (%s)", name, sf_msg);
}

static pl_status check_raw(pl_ctx *ctx, const char *name, const pl_audio_load_params *p) {
    if (p->raw_rate <= 0) return PL_OK;
    if (p->raw_channels < 1)
        return pl_ctx_err(ctx, PL_ERR_FORMAT, "audio: %s: 0 channels", name);
    if (p->raw_channels > p->max_channels)
        return pl_ctx_err(ctx, PL_ERR_UNSUPPORTED, "audio: %s: %d channels (at most %d)", name,
                          p->raw_channels, p->max_channels);
    if (p->raw_rate < p->min_rate || p->raw_rate > p->max_rate)
        return pl_ctx_err(ctx, PL_ERR_RANGE, "audio: %s: sample rate %d Hz outside %d..%d Hz",
                          name, p->raw_rate, p->min_rate, p->max_rate);
    return PL_OK;
}

pl_status pl_audio_load_memory(pl_ctx *ctx, const void *data, size_t size,
                               const pl_audio_load_params *params, pl_audio **out) {
    if (!out) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio: out is NULL");
    *out = NULL;
    if (!data && size) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio: data is NULL");
    pl_audio_load_params p = params ? *params : pl_audio_default_load_params();
    pl_status st = check_params(ctx, &p);
    if (st == PL_OK) st = check_raw(ctx, "memory", &p);
    if (st != PL_OK) return st;
    if (size == 0) return pl_ctx_err(ctx, PL_ERR_FORMAT, "audio: memory: empty");
    if (size > (size_t)INT64_MAX) return pl_ctx_err(ctx, PL_ERR_RANGE, "audio: memory: too large");
    if (p.raw_rate > 0 && size % (2 * (size_t)p.raw_channels) != 0)
        return pl_ctx_err(ctx, PL_ERR_FORMAT, "audio: memory: %zu bytes is not a whole number of "
                          "%d-channel s16le frames", size, p.raw_channels);

    mem_io m = { .data = data, .size = (sf_count_t)size };
    SF_VIRTUAL_IO vio = {
        .get_filelen = mem_len, .seek = mem_seek, .read = mem_read,
        .write = mem_write, .tell = mem_tell,
    };
    load_src s = { .name = "memory" };
    raw_info(&p, &s.info);
    s.sf = sf_open_virtual(&vio, SFM_READ, &s.info, &m);
    if (!s.sf) return open_error(ctx, s.name, data, size, &p, sf_strerror(NULL));
    st = decode(ctx, &s, &p, out);
    sf_close(s.sf);
    return st;
}

pl_status pl_audio_load_file(pl_ctx *ctx, const char *path,
                             const pl_audio_load_params *params, pl_audio **out) {
    if (!out) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio: out is NULL");
    *out = NULL;
    if (!path) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio: path is NULL");
    pl_audio_load_params p = params ? *params : pl_audio_default_load_params();
    pl_status st = check_params(ctx, &p);
    if (st == PL_OK) st = check_raw(ctx, path, &p);
    if (st != PL_OK) return st;

    /* Open ourselves so "cannot open" and "not audio" are told apart, and so a
     * directory or FIFO is refused before libsndfile sees it. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return pl_ctx_err(ctx, PL_ERR_IO, "audio: %s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return pl_ctx_err(ctx, PL_ERR_IO, "audio: %s: not a regular file", path);
    }
    unsigned char head[512];
    ssize_t got = pread(fd, head, sizeof head, 0);
    size_t n_head = got > 0 ? (size_t)got : 0;
    if (p.raw_rate > 0 && (uint64_t)sb.st_size % (2 * (uint64_t)p.raw_channels) != 0) {
        close(fd);
        return pl_ctx_err(ctx, PL_ERR_FORMAT, "audio: %s: %lld bytes is not a whole number of "
                          "%d-channel s16le frames", path, (long long)sb.st_size, p.raw_channels);
    }
    load_src s = { .name = path };
    raw_info(&p, &s.info);
    s.sf = sf_open_fd(fd, SFM_READ, &s.info, 0); /* fd stays ours to close */
    if (!s.sf) {
        st = open_error(ctx, path, head, n_head, &p, sf_strerror(NULL));
        close(fd);
        return st;
    }
    st = decode(ctx, &s, &p, out);
    sf_close(s.sf);
    close(fd);
    return st;
}
