/*
 * resample.c - pl_resampler over libsamplerate, and the one-shot
 * pl_audio_resample().
 *
 * The resampler counts the frames it has read and written so it can bound the
 * output of the next call exactly: a converter never emits output for time it
 * has not yet read, so total_out <= total_in * ratio (+1 for rounding) at every
 * point, with equality (to rounding) once flushed.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <samplerate.h>

#include "speech/speech_int.h"

struct pl_resampler {
    pl_ctx    *ctx;
    SRC_STATE *src;       /* NULL when in_rate == out_rate (plain copy) */
    int        in_rate, out_rate, channels;
    double     ratio;     /* out_rate / in_rate */
    uint64_t   total_in, total_out;
};

static const int converter[PL_RESAMPLE_QUALITY_COUNT] = {
    [PL_RESAMPLE_QUALITY_MEDIUM]  = SRC_SINC_MEDIUM_QUALITY,
    [PL_RESAMPLE_QUALITY_BEST]    = SRC_SINC_BEST_QUALITY,
    [PL_RESAMPLE_QUALITY_FASTEST] = SRC_SINC_FASTEST,
    [PL_RESAMPLE_QUALITY_LINEAR]  = SRC_LINEAR,
};

pl_status pl_resampler_init(pl_ctx *ctx, int in_rate, int out_rate, int channels,
                            pl_resample_quality q, pl_resampler **out) {
    if (!out) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "resampler: out is NULL");
    *out = NULL;
    if (in_rate < 1 || out_rate < 1 || in_rate > 1000000 || out_rate > 1000000)
        return pl_ctx_err(ctx, PL_ERR_RANGE, "resampler: rates %d -> %d out of range", in_rate, out_rate);
    if (channels < 1 || channels > 64)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "resampler: %d channels", channels);
    if ((unsigned)q >= PL_RESAMPLE_QUALITY_COUNT)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "resampler: bad quality %d", (int)q);
    double ratio = (double)out_rate / in_rate;
    if (!src_is_valid_ratio(ratio))
        return pl_ctx_err(ctx, PL_ERR_RANGE, "resampler: ratio %d -> %d beyond 1:256", in_rate, out_rate);
    pl_resampler *r = pl_calloc(ctx, 1, sizeof *r);
    if (!r) return pl_ctx_err(ctx, PL_ERR_NOMEM, "resampler: out of memory");
    *r = (pl_resampler){ .ctx = ctx, .in_rate = in_rate, .out_rate = out_rate,
                         .channels = channels, .ratio = ratio };
    if (in_rate != out_rate) {
        int err = 0;
        r->src = src_new(converter[q], channels, &err);
        if (!r->src) {
            pl_free(ctx, r);
            return pl_ctx_err(ctx, PL_ERR_NOMEM, "resampler: %s", src_strerror(err));
        }
    }
    *out = r;
    return PL_OK;
}

void pl_resampler_free(pl_resampler *r) {
    if (!r) return;
    if (r->src) src_delete(r->src);
    pl_free(r->ctx, r);
}

void pl_resampler_reset(pl_resampler *r) {
    if (!r) return;
    if (r->src) src_reset(r->src);
    r->total_in = r->total_out = 0;
}

int pl_resampler_in_rate(const pl_resampler *r) { return r ? r->in_rate : 0; }
int pl_resampler_out_rate(const pl_resampler *r) { return r ? r->out_rate : 0; }

size_t pl_resampler_max_out(const pl_resampler *r, size_t n_in) {
    if (!r->src) return n_in;
    double all = ceil((double)(r->total_in + n_in) * r->ratio) + 2.0;
    double have = (double)r->total_out;
    return all > have ? (size_t)(all - have) : 2;
}

pl_status pl_resampler_process(pl_resampler *r, const float *in, size_t n_in,
                               float *out, size_t cap_out, bool end,
                               size_t *n_in_used, size_t *n_out) {
    *n_in_used = *n_out = 0;
    if (!r || (!in && n_in) || (!out && cap_out)) return PL_ERR_INVALID_ARG;
    size_t ch = (size_t)r->channels;
    if (!r->src) {
        size_t n = n_in < cap_out ? n_in : cap_out;
        if (n) memcpy(out, in, n * ch * sizeof(float));
        *n_in_used = *n_out = n;
        r->total_in += n;
        r->total_out += n;
        return PL_OK;
    }
    /* libsamplerate counts in long; feed at most LONG_MAX-sized pieces and loop
     * until the input is used or the output is full. */
    size_t used = 0, made = 0;
    /* libsamplerate ignores a call whose data_in is NULL, even to flush. */
    static const float no_input[1];
    for (;;) {
        size_t in_left = n_in - used, out_left = cap_out - made;
        const size_t piece = (size_t)1 << 30;
        SRC_DATA d = {
            .data_in = in ? in + used * ch : no_input,
            .data_out = out + made * ch,
            .input_frames = (long)(in_left < piece ? in_left : piece),
            .output_frames = (long)(out_left < piece ? out_left : piece),
            .end_of_input = end && in_left <= piece,
            .src_ratio = r->ratio,
        };
        int e = src_process(r->src, &d);
        if (e) return pl_ctx_err(r->ctx, PL_ERR_INTERNAL, "resampler: %s", src_strerror(e));
        used += (size_t)d.input_frames_used;
        made += (size_t)d.output_frames_gen;
        if (d.input_frames_used == 0 && d.output_frames_gen == 0) break;
        if (used >= n_in && !(end && d.output_frames_gen > 0)) break;
        if (made >= cap_out) break;
    }
    r->total_in += used;
    r->total_out += made;
    *n_in_used = used;
    *n_out = made;
    return PL_OK;
}

pl_status pl_audio_resample(pl_ctx *ctx, const float *in, size_t n, int in_rate,
                            int out_rate, pl_resample_quality q, pl_audio **out) {
    if (!out) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "resample: out is NULL");
    *out = NULL;
    if (!in && n) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "resample: in is NULL");
    pl_resampler *r = NULL;
    pl_status st = pl_resampler_init(ctx, in_rate, out_rate, 1, q, &r);
    if (st != PL_OK) return st;
    pl_audio *a = pl_calloc(ctx, 1, sizeof *a);
    size_t cap = pl_resampler_max_out(r, n) + 16, bytes;
    if (!a || !pl_size_mul(cap, sizeof(float), &bytes) || !(a->samples = pl_malloc(ctx, bytes))) {
        pl_resampler_free(r);
        pl_free(ctx, a);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "resample: out of memory");
    }
    a->ctx = ctx;
    a->channels = a->src_channels = 1;
    a->sample_rate = out_rate;
    a->src_rate = in_rate;
    a->src_seconds = (double)n / in_rate;
    snprintf(a->src_format, sizeof a->src_format, "f32");
    size_t used_total = 0;
    for (;;) {
        size_t used, made;
        st = pl_resampler_process(r, in + used_total, n - used_total, a->samples + a->n_frames,
                                  cap - a->n_frames, true, &used, &made);
        if (st != PL_OK) break;
        used_total += used;
        a->n_frames += made;
        if ((used == 0 && made == 0) || a->n_frames >= cap) break;
    }
    pl_resampler_free(r);
    if (st != PL_OK) {
        pl_audio_free(a);
        return st;
    }
    *out = a;
    return PL_OK;
}
