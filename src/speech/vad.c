/*
 * vad.c - energy + voicing voice activity detector with an adaptive noise
 * floor (see parley/vad.h for the rules and why they are what they are).
 *
 * State machine, one step per frame [t0, t1):
 *   SILENCE   --frame > floor+start_db-->                      CANDIDATE (edge t0)
 *   CANDIDATE --2 voiced frames and >= min_speech_ms-->        SPEECH (STARTED)
 *   CANDIDATE --frame <= floor+stop_db, no voice in lead-->    SILENCE
 *   SPEECH    --silence_ms without an active frame-->          SILENCE (STOPPED)
 * During a candidate the thresholds use the floor from its first frame, while
 * the floor itself keeps learning: a candidate that turns out to be noise has
 * then taught the floor, and a confirmed one restores the snapshot.
 */
#include <math.h>
#include <string.h>

#include "parley/vad.h"

#define VOICED_R 0.75f    /* normalized autocorrelation that counts as voiced */
#define VOICED_FRAMES 2   /* voiced frames needed to confirm a start */
#define HPF_HZ 100.0
#define FLOOR_DOWN_MS 40.0
#define FLOOR_UP_MS 250.0
#define FLOOR_UP_SPEECH_MS 3000.0 /* in a turn, quiet syllables must not lift the floor */

typedef enum { ST_SILENCE, ST_CANDIDATE, ST_SPEECH } vad_state;

struct pl_vad {
    pl_ctx       *ctx;
    pl_vad_params p;
    int           F;              /* samples per frame */
    int           W, lag_min, lag_max; /* voicing window and lags, samples */
    float        *frame;          /* [F] samples of the frame being filled */
    size_t        frame_fill;
    float        *hist;           /* [W + lag_max] high-passed history, newest last */
    float        *ring;           /* [ring_cap] raw samples, for the prefix audio */
    float        *scratch;        /* [ring_cap] contiguous copy handed to the callback */
    size_t        ring_cap;
    double        b0, b1, b2, a1, a2, x1, x2, y1, y2; /* high-pass biquad */
    float         a_down, a_up, a_up_speech; /* floor smoothing per frame */
    uint64_t      pos;            /* samples analysed (whole frames) */
    float         level, floor;
    vad_state     state;
    /* candidate */
    uint64_t      cand_start;
    float         cand_floor;
    int           cand_voiced;
    /* speech */
    uint64_t      onset, last_voiced_end, last_active_end;
    uint64_t      pad_ms_samples, silence_samples, hang_samples, lead_samples;
    uint64_t      min_speech_samples, max_speech_samples, cand_max_samples;
};

pl_vad_params pl_vad_default_params(void) {
    return (pl_vad_params){
        .sample_rate = 16000,
        .frame_ms = 10,
        .silence_ms = 500,
        .prefix_pad_ms = 300,
        .min_speech_ms = 60,
        .voice_lead_ms = 250,
        .hang_ms = 300,
        .max_speech_ms = 0,
        .start_db = 15.0f,
        .stop_db = 10.0f,
        .floor_min_db = -60.0f,
    };
}

const char *pl_vad_event_name(pl_vad_event_type t) {
    static const char *const names[PL_VAD_EVENT_COUNT] = {
        [PL_VAD_EVENT_SPEECH_STARTED] = "speech_started",
        [PL_VAD_EVENT_SPEECH_STOPPED] = "speech_stopped",
    };
    return (unsigned)t < PL_VAD_EVENT_COUNT ? names[t] : "unknown";
}

static uint64_t ms_to_samples(const pl_vad *v, int ms) {
    return (uint64_t)ms * (uint64_t)v->p.sample_rate / 1000u;
}

static double samples_to_ms(const pl_vad *v, uint64_t s) {
    return (double)s * 1000.0 / v->p.sample_rate;
}

static pl_status check(pl_ctx *ctx, const pl_vad_params *p) {
#define BAD(...) pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "vad: " __VA_ARGS__)
    if (p->sample_rate < 8000 || p->sample_rate > 48000)
        return BAD("sample_rate %d outside 8000..48000", p->sample_rate);
    if (p->frame_ms != 10 && p->frame_ms != 20 && p->frame_ms != 30)
        return BAD("frame_ms must be 10, 20 or 30 (got %d)", p->frame_ms);
    if (p->silence_ms < p->frame_ms || p->silence_ms > 60000)
        return BAD("silence_ms %d outside frame_ms..60000", p->silence_ms);
    if (p->prefix_pad_ms < 0 || p->prefix_pad_ms > 5000)
        return BAD("prefix_pad_ms %d outside 0..5000", p->prefix_pad_ms);
    if (p->min_speech_ms < 0 || p->min_speech_ms > 5000)
        return BAD("min_speech_ms %d outside 0..5000", p->min_speech_ms);
    if (p->voice_lead_ms < p->frame_ms || p->voice_lead_ms > 5000)
        return BAD("voice_lead_ms %d outside frame_ms..5000", p->voice_lead_ms);
    if (p->hang_ms < 0 || p->hang_ms > 10000)
        return BAD("hang_ms %d outside 0..10000", p->hang_ms);
    if (p->max_speech_ms < 0 || (p->max_speech_ms > 0 && p->max_speech_ms < 1000))
        return BAD("max_speech_ms %d must be 0 or >= 1000", p->max_speech_ms);
    if (!(p->stop_db >= 0.0f) || !(p->start_db >= p->stop_db) || p->start_db > 60.0f)
        return BAD("need 0 <= stop_db <= start_db <= 60 (got %g, %g)", p->stop_db, p->start_db);
    if (!(p->floor_min_db >= -120.0f && p->floor_min_db <= -10.0f))
        return BAD("floor_min_db %g outside -120..-10", p->floor_min_db);
#undef BAD
    return PL_OK;
}

pl_status pl_vad_init(pl_ctx *ctx, const pl_vad_params *params, pl_vad **out) {
    if (!out) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "vad: out is NULL");
    *out = NULL;
    pl_vad_params p = params ? *params : pl_vad_default_params();
    pl_status st = check(ctx, &p);
    if (st != PL_OK) return st;
    pl_vad *v = pl_calloc(ctx, 1, sizeof *v);
    if (!v) return pl_ctx_err(ctx, PL_ERR_NOMEM, "vad: out of memory");
    v->ctx = ctx;
    v->p = p;
    v->F = p.sample_rate * p.frame_ms / 1000;
    v->W = p.sample_rate / 50;         /* 20 ms window */
    v->lag_min = p.sample_rate / 500;  /* 500 Hz */
    v->lag_max = p.sample_rate / 80;   /* 80 Hz */
    v->pad_ms_samples = ms_to_samples(v, p.prefix_pad_ms);
    v->silence_samples = ms_to_samples(v, p.silence_ms);
    v->hang_samples = ms_to_samples(v, p.hang_ms);
    v->lead_samples = ms_to_samples(v, p.voice_lead_ms);
    v->min_speech_samples = ms_to_samples(v, p.min_speech_ms);
    v->max_speech_samples = ms_to_samples(v, p.max_speech_ms);
    /* A candidate lives at most until its lead ran out without voice, or (with
     * voice) until it has had time for min_speech and the second voiced frame. */
    v->cand_max_samples = v->lead_samples + v->min_speech_samples + 2u * (uint64_t)v->F;
    v->ring_cap = (size_t)(v->pad_ms_samples + v->cand_max_samples) + 4u * (size_t)v->F;
    v->frame = pl_calloc(ctx, (size_t)v->F, sizeof(float));
    v->hist = pl_calloc(ctx, (size_t)(v->W + v->lag_max), sizeof(float));
    v->ring = pl_calloc(ctx, v->ring_cap, sizeof(float));
    v->scratch = pl_calloc(ctx, v->ring_cap, sizeof(float));
    if (!v->frame || !v->hist || !v->ring || !v->scratch) {
        pl_vad_free(v);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "vad: out of memory");
    }
    /* RBJ cookbook high-pass, Q = 1/sqrt(2) (Butterworth). */
    double w0 = 2.0 * M_PI * HPF_HZ / p.sample_rate, al = sin(w0) / (2.0 * M_SQRT1_2);
    double c = cos(w0), a0 = 1.0 + al;
    v->b0 = (1.0 + c) / 2.0 / a0;
    v->b1 = -(1.0 + c) / a0;
    v->b2 = (1.0 + c) / 2.0 / a0;
    v->a1 = -2.0 * c / a0;
    v->a2 = (1.0 - al) / a0;
    v->a_down = (float)(1.0 - exp(-p.frame_ms / FLOOR_DOWN_MS));
    v->a_up = (float)(1.0 - exp(-p.frame_ms / FLOOR_UP_MS));
    v->a_up_speech = (float)(1.0 - exp(-p.frame_ms / FLOOR_UP_SPEECH_MS));
    pl_vad_reset(v);
    *out = v;
    return PL_OK;
}

void pl_vad_free(pl_vad *v) {
    if (!v) return;
    pl_free(v->ctx, v->frame);
    pl_free(v->ctx, v->hist);
    pl_free(v->ctx, v->ring);
    pl_free(v->ctx, v->scratch);
    pl_free(v->ctx, v);
}

void pl_vad_reset(pl_vad *v) {
    if (!v) return;
    v->frame_fill = 0;
    memset(v->hist, 0, (size_t)(v->W + v->lag_max) * sizeof(float));
    memset(v->ring, 0, v->ring_cap * sizeof(float));
    v->x1 = v->x2 = v->y1 = v->y2 = 0.0;
    v->pos = 0;
    v->floor = v->p.floor_min_db;
    v->level = -120.0f;
    v->state = ST_SILENCE;
    v->cand_start = v->onset = v->last_voiced_end = v->last_active_end = 0;
    v->cand_voiced = 0;
}

bool pl_vad_in_speech(const pl_vad *v) { return v && v->state == ST_SPEECH; }
uint64_t pl_vad_position(const pl_vad *v) { return v ? v->pos + v->frame_fill : 0; }
float pl_vad_level_db(const pl_vad *v) { return v ? v->level : -120.0f; }
float pl_vad_floor_db(const pl_vad *v) { return v ? v->floor : -120.0f; }
int pl_vad_frame_samples(const pl_vad *v) { return v ? v->F : 0; }

/* Peak normalized autocorrelation of the newest W samples of hist against the
 * same window lag_min..lag_max samples earlier. Four partial sums break the
 * add dependency chain (about 4x faster than one at -O2, no -ffast-math). */
static float periodicity(const pl_vad *v) {
    const int W = v->W, L0 = v->lag_min, L1 = v->lag_max;
    const float *cur = v->hist + L1;
    double e0 = 0.0, e1 = 0.0;
    for (int i = 0; i < W; i++) e0 += (double)cur[i] * cur[i];
    for (int i = 0; i < W; i++) e1 += (double)cur[i - L0] * cur[i - L0];
    if (e0 < 1e-12) return 0.0f;
    float best = 0.0f;
    for (int L = L0; L <= L1; L++) {
        const float *seg = cur - L;
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        int i = 0;
        for (; i + 4 <= W; i += 4) {
            s0 += cur[i] * seg[i];
            s1 += cur[i + 1] * seg[i + 1];
            s2 += cur[i + 2] * seg[i + 2];
            s3 += cur[i + 3] * seg[i + 3];
        }
        for (; i < W; i++) s0 += cur[i] * seg[i];
        double den = e0 * e1;
        if (den > 1e-24) {
            float r = (float)((s0 + s1 + s2 + s3) / sqrt(den));
            if (r > best) best = r;
        }
        /* Slide the lagged window one sample earlier. */
        if (L < L1) {
            double add = (double)seg[-1] * seg[-1], sub = (double)seg[W - 1] * seg[W - 1];
            e1 += add - sub;
            if (e1 < 0.0) e1 = 0.0;
        }
    }
    return best;
}

static void floor_track(pl_vad *v, float level) {
    float a = level < v->floor ? v->a_down : v->state == ST_SPEECH ? v->a_up_speech : v->a_up;
    v->floor += (level - v->floor) * a;
    if (v->floor < v->p.floor_min_db) v->floor = v->p.floor_min_db;
}

static void emit(pl_vad *v, pl_vad_event *ev) {
    ev->edge_ms = samples_to_ms(v, ev->edge);
    ev->detected_ms = samples_to_ms(v, ev->detected);
    ev->pad_start_ms = samples_to_ms(v, ev->pad_start);
    if (v->p.on_event) v->p.on_event(v->p.ud, ev);
}

static void emit_started(pl_vad *v, uint64_t edge, uint64_t now) {
    uint64_t pad = edge > v->pad_ms_samples ? edge - v->pad_ms_samples : 0;
    uint64_t oldest = now > v->ring_cap ? now - v->ring_cap : 0;
    if (pad < oldest) pad = oldest;
    size_t n = (size_t)(now - pad);
    /* The ring holds sample k at ring[k % ring_cap]; copy [pad, now) in order. */
    for (size_t i = 0; i < n; i++) v->scratch[i] = v->ring[(pad + i) % v->ring_cap];
    pl_vad_event ev = {
        .type = PL_VAD_EVENT_SPEECH_STARTED, .edge = edge, .detected = now,
        .pad_start = pad, .audio = v->scratch, .n_audio = n,
    };
    emit(v, &ev);
}

static void emit_stopped(pl_vad *v, uint64_t edge, uint64_t now, bool forced) {
    pl_vad_event ev = {
        .type = PL_VAD_EVENT_SPEECH_STOPPED, .edge = edge, .detected = now, .forced = forced,
    };
    v->state = ST_SILENCE;
    emit(v, &ev);
}

static void process_frame(pl_vad *v) {
    const int F = v->F, H = v->W + v->lag_max;
    const uint64_t t0 = v->pos, t1 = t0 + (uint64_t)F;
    /* Raw samples into the prefix ring; high-passed ones into the history. */
    memmove(v->hist, v->hist + F, (size_t)(H - F) * sizeof(float));
    float *h = v->hist + H - F;
    double acc = 0.0;
    for (int i = 0; i < F; i++) {
        double x = v->frame[i];
        v->ring[(t0 + (uint64_t)i) % v->ring_cap] = (float)x;
        double y = v->b0 * x + v->b1 * v->x1 + v->b2 * v->x2 - v->a1 * v->y1 - v->a2 * v->y2;
        v->x2 = v->x1;
        v->x1 = x;
        v->y2 = v->y1;
        v->y1 = y;
        h[i] = (float)y;
        acc += y * y;
    }
    /* Keep the filter out of denormals after long digital silence. */
    if (fabs(v->y1) < 1e-20 && fabs(v->y2) < 1e-20) v->y1 = v->y2 = 0.0;
    v->pos = t1;
    const float L = (float)(10.0 * log10(acc / F + 1e-12));
    v->level = L;

    switch (v->state) {
    case ST_SILENCE:
        if (L > v->floor + v->p.start_db) {
            v->state = ST_CANDIDATE;
            v->cand_start = t0;
            v->cand_floor = v->floor;
            v->cand_voiced = 0;
            floor_track(v, L);
            goto candidate;
        }
        floor_track(v, L);
        return;
    case ST_CANDIDATE:
        floor_track(v, L); /* tentative: restored from cand_floor if confirmed */
    candidate:
        if (L <= v->cand_floor + v->p.stop_db) {
            v->state = ST_SILENCE;
            return;
        }
        if (periodicity(v) >= VOICED_R) v->cand_voiced++;
        if (v->cand_voiced >= VOICED_FRAMES && t1 - v->cand_start >= v->min_speech_samples) {
            v->floor = v->cand_floor;
            v->state = ST_SPEECH;
            v->onset = v->cand_start;
            v->last_voiced_end = v->last_active_end = t1;
            emit_started(v, v->onset, t1);
            return;
        }
        if ((v->cand_voiced == 0 && t1 - v->cand_start >= v->lead_samples) ||
            t1 - v->cand_start >= v->cand_max_samples) {
            /* Loud but not voice: it was noise, and the floor has been learning
             * it. This frame may still open a new candidate. */
            v->state = ST_SILENCE;
            if (L > v->floor + v->p.start_db) {
                v->state = ST_CANDIDATE;
                v->cand_start = t0;
                v->cand_floor = v->floor;
                v->cand_voiced = periodicity(v) >= VOICED_R;
            }
        }
        return;
    case ST_SPEECH:
        if (L > v->floor + v->p.stop_db) {
            if (periodicity(v) >= VOICED_R) v->last_voiced_end = t1;
            if (t1 - v->last_voiced_end <= v->hang_samples) v->last_active_end = t1;
        } else {
            floor_track(v, L);
        }
        if (v->max_speech_samples && t1 - v->onset >= v->max_speech_samples) {
            emit_stopped(v, t1, t1, true);
            return;
        }
        if (t1 - v->last_active_end >= v->silence_samples) {
            emit_stopped(v, v->last_active_end, t1, false);
        }
        return;
    }
}

pl_status pl_vad_feed(pl_vad *v, const float *pcm, size_t n) {
    if (!v || (!pcm && n)) return PL_ERR_INVALID_ARG;
    while (n) {
        size_t k = (size_t)v->F - v->frame_fill;
        if (k > n) k = n;
        memcpy(v->frame + v->frame_fill, pcm, k * sizeof(float));
        v->frame_fill += k;
        pcm += k;
        n -= k;
        if (v->frame_fill == (size_t)v->F) {
            process_frame(v);
            v->frame_fill = 0;
        }
    }
    return PL_OK;
}

pl_status pl_vad_flush(pl_vad *v) {
    if (!v) return PL_ERR_INVALID_ARG;
    uint64_t now = v->pos + v->frame_fill;
    if (v->state == ST_SPEECH) emit_stopped(v, v->last_active_end, now, true);
    v->state = ST_SILENCE;
    return PL_OK;
}
