/*
 * audio_alsa.c - capture and playback devices through ALSA (parley/audio_dev.h).
 *
 * The device side is S16 mono, interleaved read/write access; the name is
 * opened through the plug layer so ALSA converts to what the hardware has.
 * Memory: one S16 buffer of one device buffer's length, made at init; read
 * and write allocate nothing.
 */
#include <alsa/asoundlib.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "parley/audio.h"
#include "parley/audio_dev.h"

struct pl_audio_dev {
    pl_ctx            *ctx;
    snd_pcm_t         *pcm;
    pl_audio_dev_dir   dir;
    int                rate;
    snd_pcm_uframes_t  period, buffer;
    int16_t           *buf;      /* [buffer] */
    uint64_t           xruns;
    uint64_t           pace_t0;  /* capture: wall time the samples since are measured from */
    uint64_t           pace_n;   /* capture: samples read since pace_t0 */
    char               name[256];
    char               err[320];
};

static const char *const dir_names[PL_AUDIO_DEV_DIR_COUNT] = {
    [PL_AUDIO_DEV_CAPTURE] = "capture",
    [PL_AUDIO_DEV_PLAYBACK] = "playback",
};

const char *pl_audio_dev_dir_name(pl_audio_dev_dir d) {
    return (unsigned)d < PL_AUDIO_DEV_DIR_COUNT ? dir_names[d] : "unknown";
}

pl_audio_dev_params pl_audio_dev_default_params(void) {
    pl_audio_dev_params p = { 0 };
    p.device = "default";
    p.dir = PL_AUDIO_DEV_CAPTURE;
    p.sample_rate = PL_AUDIO_STT_RATE;
    p.period_ms = 20;
    p.buffer_ms = 200;
    return p;
}

/* ALSA prints its own diagnostics to stderr unless told otherwise; a library
 * must not, and the reason reaches the caller through snd_strerror. The
 * handler is process-wide state of libasound, so it is set once. */
static void quiet_alsa(const char *file, int line, const char *function, int err, const char *fmt, ...) {
    (void)file, (void)line, (void)function, (void)err, (void)fmt;
}
static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;
static void quiet_init(void) { snd_lib_error_set_handler(quiet_alsa); }

static pl_status dev_fail(pl_ctx *ctx, pl_audio_dev *d, int err, const char *what) {
    pl_status st = err == -ENOENT || err == -ENODEV ? PL_ERR_NOT_FOUND
                   : err == -EINVAL                 ? PL_ERR_UNSUPPORTED
                                                    : PL_ERR_IO;
    const char *hint = err == -ENOENT ? (d->dir == PL_AUDIO_DEV_CAPTURE ? " (`arecord -L` lists the devices)"
                                                                       : " (`aplay -L` lists the devices)")
                                      : "";
    return pl_ctx_err(ctx, st, "%s device '%s': %s%s%s%s", pl_audio_dev_dir_name(d->dir), d->name, what,
                      what[0] ? ": " : "", snd_strerror(err), hint);
}

/* "plug:'NAME'" unless NAME is a plug device already or cannot be quoted. */
static void plug_name(const char *name, char *out, size_t cap) {
    if (strncmp(name, "plug", 4) == 0 || strchr(name, '\'') || strlen(name) + 8 > cap) snprintf(out, cap, "%s", name);
    else snprintf(out, cap, "plug:'%s'", name);
}

static int configure(pl_audio_dev *d, const pl_audio_dev_params *p, const char **what) {
    snd_pcm_hw_params_t *hw = NULL;
    snd_pcm_sw_params_t *sw = NULL;
    int e = snd_pcm_hw_params_malloc(&hw);
    if (e < 0) return *what = "", e;
    *what = "no configuration";
    if ((e = snd_pcm_hw_params_any(d->pcm, hw)) < 0) goto out;
    snd_pcm_hw_params_set_rate_resample(d->pcm, hw, 1);
    *what = "cannot take 16-bit mono samples";
    if ((e = snd_pcm_hw_params_set_access(d->pcm, hw, SND_PCM_ACCESS_RW_INTERLEAVED)) < 0) goto out;
    if ((e = snd_pcm_hw_params_set_format(d->pcm, hw, SND_PCM_FORMAT_S16)) < 0) goto out;
    if ((e = snd_pcm_hw_params_set_channels(d->pcm, hw, 1)) < 0) goto out;
    unsigned rate = (unsigned)p->sample_rate;
    *what = "cannot run at the sample rate";
    if ((e = snd_pcm_hw_params_set_rate_near(d->pcm, hw, &rate, NULL)) < 0) goto out;
    if (rate != (unsigned)p->sample_rate) {
        e = -EINVAL;
        goto out;
    }
    /* rate <= 192000 and ms <= 2000 (checked): no overflow */
    snd_pcm_uframes_t period = (snd_pcm_uframes_t)p->sample_rate * (unsigned)p->period_ms / 1000;
    snd_pcm_uframes_t buffer = (snd_pcm_uframes_t)p->sample_rate * (unsigned)p->buffer_ms / 1000;
    *what = "cannot set the period and buffer sizes";
    if ((e = snd_pcm_hw_params_set_period_size_near(d->pcm, hw, &period, NULL)) < 0) goto out;
    if ((e = snd_pcm_hw_params_set_buffer_size_near(d->pcm, hw, &buffer)) < 0) goto out;
    *what = "cannot apply the configuration";
    if ((e = snd_pcm_hw_params(d->pcm, hw)) < 0) goto out;
    snd_pcm_hw_params_get_period_size(hw, &d->period, NULL);
    snd_pcm_hw_params_get_buffer_size(hw, &d->buffer);
    if (d->period == 0 || d->buffer < d->period) {
        e = -EINVAL;
        goto out;
    }
    if ((e = snd_pcm_sw_params_malloc(&sw)) < 0) goto out;
    if ((e = snd_pcm_sw_params_current(d->pcm, sw)) < 0) goto out;
    snd_pcm_sw_params_set_avail_min(d->pcm, sw, d->period);
    /* playback starts with the first period written (not when the buffer is
     * full: that would hold a short answer back); capture with the first
     * read (not at open: samples would pile up and overrun while the caller
     * loads its models) */
    snd_pcm_sw_params_set_start_threshold(d->pcm, sw, d->dir == PL_AUDIO_DEV_PLAYBACK ? d->period : 1);
    if ((e = snd_pcm_sw_params(d->pcm, sw)) < 0) goto out;
    e = 0;
out:
    snd_pcm_hw_params_free(hw);
    if (sw) snd_pcm_sw_params_free(sw);
    return e;
}

pl_status pl_audio_dev_init(pl_ctx *ctx, const pl_audio_dev_params *params, pl_audio_dev **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    pl_audio_dev_params p = params ? *params : pl_audio_dev_default_params();
    if (!p.device || !p.device[0]) p.device = "default";
    if ((unsigned)p.dir >= PL_AUDIO_DEV_DIR_COUNT) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio device: bad direction");
    if (p.sample_rate < 8000 || p.sample_rate > 192000)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio device: rate %d outside 8000..192000", p.sample_rate);
    if (p.period_ms == 0) p.period_ms = 20;
    if (p.buffer_ms == 0) p.buffer_ms = 200;
    if (p.period_ms < 5 || p.period_ms > 200 || p.buffer_ms < 2 * p.period_ms || p.buffer_ms > 2000)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio device: period %d ms / buffer %d ms outside 5..200 / 2 periods..2000",
                          p.period_ms, p.buffer_ms);
    if (strlen(p.device) >= sizeof ((pl_audio_dev *)0)->name)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio device: name longer than 255 bytes");
    pthread_once(&quiet_once, quiet_init);
    pl_audio_dev *d = pl_calloc(ctx, 1, sizeof *d);
    if (!d) return pl_ctx_err(ctx, PL_ERR_NOMEM, "audio device: out of memory");
    d->ctx = ctx;
    d->dir = p.dir;
    d->rate = p.sample_rate;
    snprintf(d->name, sizeof d->name, "%s", p.device);
    char full[300];
    plug_name(p.device, full, sizeof full);
    int e = snd_pcm_open(&d->pcm, full, d->dir == PL_AUDIO_DEV_CAPTURE ? SND_PCM_STREAM_CAPTURE : SND_PCM_STREAM_PLAYBACK, 0);
    if (e < 0) {
        d->pcm = NULL;
        pl_status st = dev_fail(ctx, d, e, "");
        pl_audio_dev_free(d);
        return st;
    }
    const char *what = "";
    if ((e = configure(d, &p, &what)) < 0) {
        pl_status st = dev_fail(ctx, d, e, what);
        pl_audio_dev_free(d);
        return st;
    }
    if (!(d->buf = pl_calloc(ctx, d->buffer, sizeof *d->buf))) {
        pl_audio_dev_free(d);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "audio device: out of memory");
    }
    *out = d;
    return PL_OK;
}

void pl_audio_dev_free(pl_audio_dev *d) {
    if (!d) return;
    if (d->pcm) {
        snd_pcm_drop(d->pcm);
        snd_pcm_close(d->pcm);
    }
    pl_free(d->ctx, d->buf);
    pl_free(d->ctx, d);
}

/* An xrun (-EPIPE) or a suspend (-ESTRPIPE) recovered: counted, 0. Anything
 * else: the device is gone; the text is kept. */
static int recover(pl_audio_dev *d, int err, const char *what) {
    int r = snd_pcm_recover(d->pcm, err, 1);
    if (r == 0) {
        d->xruns++;
        d->pace_t0 = 0;
        return 0;
    }
    snprintf(d->err, sizeof d->err, "%s device '%s': %s: %s", pl_audio_dev_dir_name(d->dir), d->name, what,
             snd_strerror(err));
    return r;
}

static void sleep_until(uint64_t t_ns) {
    struct timespec ts = { .tv_sec = (time_t)(t_ns / 1000000000u), .tv_nsec = (long)(t_ns % 1000000000u) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* A read that did not block came from a device that does not pace itself
 * (or from a backlog): hold the caller to the wall clock. A read that
 * blocked was paced by the device: measure from now. */
static void pace(pl_audio_dev *d, size_t k, bool blocked) {
    uint64_t now = pl_time_ns();
    if (blocked || d->pace_t0 == 0) {
        d->pace_t0 = now;
        d->pace_n = 0;
        return;
    }
    d->pace_n += k;
    uint64_t due = d->pace_t0 + (uint64_t)((double)d->pace_n * 1e9 / d->rate);
    if (due > now) sleep_until(due);
    else if (now - due > 1000000000u) { /* a second behind: catch up, don't burst */
        d->pace_t0 = now;
        d->pace_n = 0;
    }
}

pl_status pl_audio_dev_read(pl_audio_dev *d, float *pcm, size_t n, size_t *got) {
    if (got) *got = 0;
    if (!d || !got || (!pcm && n)) return PL_ERR_INVALID_ARG;
    if (d->dir != PL_AUDIO_DEV_CAPTURE) return PL_ERR_STATE;
    if (n > d->buffer) n = d->buffer;
    if (n == 0) return PL_OK;
    for (int tries = 0; tries < 8; tries++) {
        memset(d->buf, 0, n * sizeof *d->buf); /* the null and file plugins leave it as it was */
        uint64_t t = pl_time_ns();
        snd_pcm_sframes_t k = snd_pcm_readi(d->pcm, d->buf, n);
        if (k == -EAGAIN || k == -EINTR) continue;
        if (k < 0) {
            if (recover(d, (int)k, "read") < 0) return PL_ERR_IO;
            continue;
        }
        for (snd_pcm_sframes_t i = 0; i < k; i++) pcm[i] = (float)d->buf[i] * (1.0f / 32768.0f);
        *got = (size_t)k;
        uint64_t period_ns = (uint64_t)d->period * 1000000000u / (uint64_t)d->rate;
        pace(d, (size_t)k, pl_time_ns() - t >= period_ns / 4);
        return PL_OK;
    }
    snprintf(d->err, sizeof d->err, "capture device '%s': keeps failing (overruns)", d->name);
    return PL_ERR_IO;
}

pl_status pl_audio_dev_write(pl_audio_dev *d, const float *pcm, size_t n) {
    if (!d || (!pcm && n)) return PL_ERR_INVALID_ARG;
    if (d->dir != PL_AUDIO_DEV_PLAYBACK) return PL_ERR_STATE;
    while (n > 0) {
        size_t k = n < d->buffer ? n : d->buffer;
        for (size_t i = 0; i < k; i++) {
            float x = pcm[i] * 32767.0f;
            x = x > 32767.0f ? 32767.0f : x < -32768.0f ? -32768.0f : x;
            d->buf[i] = (int16_t)(x >= 0 ? x + 0.5f : x - 0.5f);
        }
        size_t off = 0;
        int fails = 0;
        while (off < k) {
            snd_pcm_sframes_t w = snd_pcm_writei(d->pcm, d->buf + off, k - off);
            if (w == -EAGAIN || w == -EINTR) continue;
            if (w < 0) {
                if (recover(d, (int)w, "write") < 0 || ++fails > 8) return PL_ERR_IO;
                continue;
            }
            off += (size_t)w;
        }
        pcm += k;
        n -= k;
    }
    return PL_OK;
}

pl_status pl_audio_dev_pending(pl_audio_dev *d, uint64_t *n) {
    if (n) *n = 0;
    if (!d || !n) return PL_ERR_INVALID_ARG;
    if (d->dir != PL_AUDIO_DEV_PLAYBACK) return PL_ERR_STATE;
    snd_pcm_state_t s = snd_pcm_state(d->pcm);
    snd_pcm_sframes_t delay = 0;
    int e = s == SND_PCM_STATE_XRUN ? -EPIPE : snd_pcm_delay(d->pcm, &delay);
    if (e == -EPIPE) {
        /* everything written was played and nothing more came: the end of
         * the audio (or a wait for the producer), not a glitch; ready the
         * device for the next write without counting an underrun */
        snd_pcm_prepare(d->pcm);
        return PL_OK;
    }
    if (e < 0) {
        snprintf(d->err, sizeof d->err, "playback device '%s': delay: %s", d->name, snd_strerror(e));
        return PL_ERR_IO;
    }
    /* fewer samples than the start threshold never start by themselves */
    if (delay > 0 && s == SND_PCM_STATE_PREPARED) snd_pcm_start(d->pcm);
    *n = delay > 0 ? (uint64_t)delay : 0;
    return PL_OK;
}

pl_status pl_audio_dev_drop(pl_audio_dev *d) {
    if (!d) return PL_ERR_INVALID_ARG;
    if (d->dir != PL_AUDIO_DEV_PLAYBACK) return PL_ERR_STATE;
    int e = snd_pcm_drop(d->pcm);
    if (e >= 0) e = snd_pcm_prepare(d->pcm);
    if (e < 0) {
        snprintf(d->err, sizeof d->err, "playback device '%s': drop: %s", d->name, snd_strerror(e));
        return PL_ERR_IO;
    }
    return PL_OK;
}

int pl_audio_dev_rate(const pl_audio_dev *d) { return d ? d->rate : 0; }
size_t pl_audio_dev_period(const pl_audio_dev *d) { return d ? (size_t)d->period : 0; }
size_t pl_audio_dev_buffer(const pl_audio_dev *d) { return d ? (size_t)d->buffer : 0; }
uint64_t pl_audio_dev_xruns(const pl_audio_dev *d) { return d ? d->xruns : 0; }
const char *pl_audio_dev_name(const pl_audio_dev *d) { return d ? d->name : ""; }
const char *pl_audio_dev_last_error(const pl_audio_dev *d) { return d ? d->err : ""; }
