/*
 * audio_player.c - a queue in front of a playback device, played out by a
 * thread of its own (parley/audio_dev.h).
 *
 * Writers copy into a ring made at init (queue_s at the rate: 60 s at
 * 22050 Hz is 5.3 MB) and never touch the device, so a producer (a TTS
 * thread delivering audio inside a pipeline's event lock) is held up only
 * when the ring is full. The thread moves one device period at a time from
 * the ring to the device, so a drop reaches the device within one period.
 *
 * Accounting: the device has been given dev_written samples; of those
 * dev_gone were played or dropped (reported). After each write and while the
 * device plays out, played = dev_written - ALSA's delay.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "parley/audio_dev.h"

struct pl_audio_player {
    pl_ctx                *ctx;
    pl_audio_player_params p;
    pl_audio_dev          *dev;
    pthread_mutex_t        mu;
    pthread_cond_t         cv_data, cv_space, cv_done;
    pthread_t              th;
    bool                   have_th;

    /* under mu */
    float   *ring;
    size_t   cap, head, count;
    bool     stop, dev_drop, failed;
    uint64_t ring_dropped;     /* dropped from the ring, not yet reported */
    pl_audio_player_stats st;
    char     err[320];

    /* player thread only */
    float   *chunk;            /* [period] */
    size_t   chunk_cap;
    uint64_t dev_written, dev_gone;
};

pl_audio_player_params pl_audio_player_default_params(void) {
    pl_audio_player_params p = { 0 };
    p.device = "default";
    p.period_ms = 20;
    p.buffer_ms = 200;
    p.queue_s = 60.0;
    return p;
}

/* Report outside the lock (the callback may take other locks), then count. */
static void report(pl_audio_player *p, uint64_t played, uint64_t dropped, bool did_drop) {
    if (!played && !dropped && !did_drop) return;
    pthread_mutex_unlock(&p->mu);
    if (p->p.on_played && (played || dropped)) p->p.on_played(p->p.ud, played, dropped);
    pthread_mutex_lock(&p->mu);
    p->st.played += played;
    p->st.dropped += dropped;
    if (did_drop && dropped) p->st.drops++;
    pthread_cond_broadcast(&p->cv_done);
}

/* Samples the device played since the last report (mu not held). */
static uint64_t dev_played(pl_audio_player *p, pl_status *st) {
    uint64_t pending = 0;
    *st = pl_audio_dev_pending(p->dev, &pending);
    if (*st != PL_OK) return 0;
    uint64_t played = p->dev_written - (pending < p->dev_written ? pending : p->dev_written);
    if (played <= p->dev_gone) return 0;
    uint64_t n = played - p->dev_gone;
    p->dev_gone = played;
    return n;
}

/* The device failed for good: everything queued counts as dropped, writers
 * get PL_ERR_IO (mu held). */
static void fail_locked(pl_audio_player *p) {
    p->failed = true;
    snprintf(p->err, sizeof p->err, "%s", pl_audio_dev_last_error(p->dev));
    uint64_t dropped = p->count + p->ring_dropped + (p->dev_written - p->dev_gone);
    p->count = p->ring_dropped = 0;
    p->dev_gone = p->dev_written;
    pthread_cond_broadcast(&p->cv_space);
    report(p, 0, dropped, true);
}

static void *player_main(void *arg) {
    pl_audio_player *p = arg;
    pl_status st;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        if (p->dev_drop) {
            p->dev_drop = false;
            uint64_t rd = p->ring_dropped;
            p->ring_dropped = 0;
            pthread_mutex_unlock(&p->mu);
            uint64_t played = dev_played(p, &st);
            pl_status dst = st == PL_OK ? pl_audio_dev_drop(p->dev) : st;
            uint64_t dropped = rd + (p->dev_written - p->dev_gone);
            p->dev_gone = p->dev_written;
            pthread_mutex_lock(&p->mu);
            report(p, played, dropped, true);
            if (dst != PL_OK) fail_locked(p);
            continue;
        }
        if (p->failed) {
            pthread_cond_wait(&p->cv_data, &p->mu);
            continue;
        }
        if (p->count > 0) {
            size_t k = p->count < p->chunk_cap ? p->count : p->chunk_cap;
            size_t first = p->cap - p->head < k ? p->cap - p->head : k;
            memcpy(p->chunk, p->ring + p->head, first * sizeof *p->chunk);
            memcpy(p->chunk + first, p->ring, (k - first) * sizeof *p->chunk);
            p->head = (p->head + k) % p->cap;
            p->count -= k;
            pthread_cond_broadcast(&p->cv_space);
            pthread_mutex_unlock(&p->mu);
            st = pl_audio_dev_write(p->dev, p->chunk, k);
            p->dev_written += k;
            uint64_t played = st == PL_OK ? dev_played(p, &st) : 0;
            pthread_mutex_lock(&p->mu);
            p->st.xruns = pl_audio_dev_xruns(p->dev);
            report(p, played, 0, false);
            if (st != PL_OK) fail_locked(p);
            continue;
        }
        if (p->dev_gone < p->dev_written) { /* the device plays out: look again in a period */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            pl_timespec_add_ms(&until, p->p.period_ms);
            pthread_cond_timedwait(&p->cv_data, &p->mu, &until);
            if (p->count || p->dev_drop || p->stop) continue;
            pthread_mutex_unlock(&p->mu);
            uint64_t played = dev_played(p, &st);
            pthread_mutex_lock(&p->mu);
            report(p, played, 0, false);
            if (st != PL_OK) fail_locked(p);
            continue;
        }
        pthread_cond_wait(&p->cv_data, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

pl_status pl_audio_player_init(pl_ctx *ctx, const pl_audio_player_params *params, pl_audio_player **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    if (!params) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio player: no params");
    pl_audio_player_params pp = *params;
    if (pp.queue_s == 0) pp.queue_s = 60.0;
    if (!(pp.queue_s >= 1.0 && pp.queue_s <= 600.0))
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio player: queue %g s outside 1..600", pp.queue_s);
    if (pp.sample_rate < 8000 || pp.sample_rate > 192000)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "audio player: rate %d outside 8000..192000", pp.sample_rate);
    pl_audio_dev_params dp = pl_audio_dev_default_params();
    dp.device = pp.device;
    dp.dir = PL_AUDIO_DEV_PLAYBACK;
    dp.sample_rate = pp.sample_rate;
    if (pp.period_ms) dp.period_ms = pp.period_ms;
    if (pp.buffer_ms) dp.buffer_ms = pp.buffer_ms;
    pp.period_ms = dp.period_ms;
    pl_audio_player *p = pl_calloc(ctx, 1, sizeof *p);
    if (!p) return pl_ctx_err(ctx, PL_ERR_NOMEM, "audio player: out of memory");
    p->ctx = ctx;
    p->p = pp;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_data, NULL);
    pthread_cond_init(&p->cv_space, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    pl_status st = pl_audio_dev_init(ctx, &dp, &p->dev);
    if (st != PL_OK) {
        pl_audio_player_free(p);
        return st;
    }
    p->cap = (size_t)(pp.queue_s * pp.sample_rate); /* <= 600 * 192000: no overflow */
    p->chunk_cap = pl_audio_dev_period(p->dev);
    p->ring = pl_calloc(ctx, p->cap, sizeof *p->ring);
    p->chunk = pl_calloc(ctx, p->chunk_cap, sizeof *p->chunk);
    if (!p->ring || !p->chunk) {
        pl_audio_player_free(p);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "audio player: out of memory for a %g s queue", pp.queue_s);
    }
    if (pthread_create(&p->th, NULL, player_main, p) != 0) {
        pl_audio_player_free(p);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "audio player: cannot start its thread");
    }
    p->have_th = true;
    *out = p;
    return PL_OK;
}

void pl_audio_player_free(pl_audio_player *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv_data);
    pthread_cond_broadcast(&p->cv_space);
    pthread_cond_broadcast(&p->cv_done);
    pthread_mutex_unlock(&p->mu);
    if (p->have_th) pthread_join(p->th, NULL);
    pl_audio_dev_free(p->dev);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_data);
    pthread_cond_destroy(&p->cv_space);
    pthread_cond_destroy(&p->cv_done);
    pl_free(p->ctx, p->ring);
    pl_free(p->ctx, p->chunk);
    pl_free(p->ctx, p);
}

pl_status pl_audio_player_write(pl_audio_player *p, const float *pcm, size_t n) {
    if (!p || (!pcm && n)) return PL_ERR_INVALID_ARG;
    pthread_mutex_lock(&p->mu);
    while (n > 0) {
        while (p->count == p->cap && !p->stop && !p->failed) pthread_cond_wait(&p->cv_space, &p->mu);
        if (p->stop || p->failed) break;
        size_t tail = (p->head + p->count) % p->cap;
        size_t room = p->cap - p->count, k = n < room ? n : room;
        size_t first = p->cap - tail < k ? p->cap - tail : k;
        memcpy(p->ring + tail, pcm, first * sizeof *pcm);
        memcpy(p->ring, pcm + first, (k - first) * sizeof *pcm);
        p->count += k;
        p->st.written += k;
        pcm += k;
        n -= k;
        pthread_cond_signal(&p->cv_data);
    }
    pl_status st = p->failed ? PL_ERR_IO : p->stop ? PL_ERR_STATE : PL_OK;
    pthread_mutex_unlock(&p->mu);
    return st;
}

void pl_audio_player_drop(pl_audio_player *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->ring_dropped += p->count;
    p->count = 0;
    p->dev_drop = true;
    pthread_cond_signal(&p->cv_data);
    pthread_cond_broadcast(&p->cv_space);
    pthread_mutex_unlock(&p->mu);
}

bool pl_audio_player_wait(pl_audio_player *p, int timeout_ms) {
    if (!p) return true;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    if (timeout_ms >= 0) pl_timespec_add_ms(&until, timeout_ms);
    pthread_mutex_lock(&p->mu);
    bool ok = true;
    while (p->st.played + p->st.dropped < p->st.written && !p->stop) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&p->cv_done, &p->mu);
        } else if (pthread_cond_timedwait(&p->cv_done, &p->mu, &until) != 0) {
            ok = p->st.played + p->st.dropped >= p->st.written;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return ok;
}

void pl_audio_player_stats_get(pl_audio_player *p, pl_audio_player_stats *out) {
    memset(out, 0, sizeof *out);
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    *out = p->st;
    pthread_mutex_unlock(&p->mu);
}

const char *pl_audio_player_last_error(pl_audio_player *p) {
    if (!p) return "";
    pthread_mutex_lock(&p->mu);
    const char *e = p->err; /* written once, when the device fails */
    pthread_mutex_unlock(&p->mu);
    return e;
}
