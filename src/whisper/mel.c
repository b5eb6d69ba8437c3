/*
 * mel.c - Whisper's log-mel spectrogram:
 *   STFT: n_fft 400, hop 160, periodic Hann window, centered (reflect padding of
 *         200 at both ends), the last frame dropped -> n / 160 frames;
 *   power |X_k|^2 for the 201 bins; mel = filters [n_mels][201] x power;
 *   log10(max(mel, 1e-10)), clamped below at (max - 8), then (x + 4) / 4.
 * Frames whose window holds only padding zeros give log10(1e-10) = -10 without
 * an FFT (Whisper pads every window to 30 s, so most of a short utterance's
 * frames are these). Filters are sparse (each mel band covers a few bins): each
 * row's non-zero span is found once per call.
 * Cost per speech frame: one 400-point complex FFT (~16 k flops) + ~2 x 201 MACs.
 */
#include <math.h>
#include <string.h>

#include "whisper/whisper_int.h"

size_t pl_whisper_mel_frames(size_t n_samples) { return n_samples / PL_WHISPER_HOP; }

/* x[i] of the signal (pcm then zeros) reflected at both ends, length L */
static float sample_at(const float *pcm, size_t n, size_t L, int64_t i) {
    if (L == 1) return n ? pcm[0] : 0.0f;
    const int64_t period = 2 * ((int64_t)L - 1);
    i %= period;
    if (i < 0) i += period;
    if (i >= (int64_t)L) i = period - i;
    return (size_t)i < n ? pcm[i] : 0.0f;
}

pl_status pl_whisper_log_mel(pl_ctx *ctx, const float *filters, int n_mels, const float *pcm, size_t n,
                             size_t n_pad_zeros, size_t n_frames_out, float *mel) {
    enum { NF = PL_WHISPER_N_FFT, NB = PL_WHISPER_N_FFT_BINS, HALF = PL_WHISPER_N_FFT / 2 };
    if (!filters || n_mels < 1 || (!pcm && n) || !mel) return PL_ERR_INVALID_ARG;
    size_t L;
    if (!pl_size_add(n, n_pad_zeros, &L) || L == 0) return PL_ERR_INVALID_ARG;
    if (n_frames_out > pl_whisper_mel_frames(L)) return PL_ERR_RANGE;
    wh_fft f;
    pl_status st = wh_fft_init(ctx, NF, &f);
    if (st != PL_OK) return st;
    double *buf = pl_malloc(ctx, (4 * NF + NB + NF) * sizeof(double));
    int *span = pl_malloc(ctx, 2 * (size_t)n_mels * sizeof(int));
    if (!buf || !span) {
        pl_free(ctx, buf);
        pl_free(ctx, span);
        wh_fft_free(ctx, &f);
        return PL_ERR_NOMEM;
    }
    double *in = buf, *out = buf + 2 * NF, *pw = buf + 4 * NF, *win = pw + NB;
    for (int i = 0; i < NF; i++) win[i] = 0.5 * (1.0 - cos(2.0 * M_PI * i / NF));
    for (int b = 0; b < n_mels; b++) {
        const float *fr = filters + (size_t)b * NB;
        int lo = 0, hi = NB;
        while (lo < NB && fr[lo] == 0.0f) lo++;
        while (hi > lo && fr[hi - 1] == 0.0f) hi--;
        span[2 * b] = lo;
        span[2 * b + 1] = hi;
    }
    const double silent = -10.0; /* log10(1e-10) */
    double mx = -INFINITY;
    for (size_t t = 0; t < n_frames_out; t++) {
        int64_t first = (int64_t)(t * PL_WHISPER_HOP) - HALF; /* window start in the signal */
        bool zero = n == 0 || (first >= (int64_t)n && first + NF <= (int64_t)L);
        if (zero) {
            for (int b = 0; b < n_mels; b++) mel[(size_t)b * n_frames_out + t] = (float)silent;
            if (silent > mx) mx = silent;
            continue;
        }
        for (int i = 0; i < NF; i++) {
            in[2 * i] = win[i] * sample_at(pcm, n, L, first + i);
            in[2 * i + 1] = 0.0;
        }
        wh_fft_run(&f, in, out);
        for (int k = 0; k < NB; k++) pw[k] = out[2 * k] * out[2 * k] + out[2 * k + 1] * out[2 * k + 1];
        for (int b = 0; b < n_mels; b++) {
            const float *fr = filters + (size_t)b * NB;
            double s = 0.0;
            for (int k = span[2 * b]; k < span[2 * b + 1]; k++) s += fr[k] * pw[k];
            double v = log10(s > 1e-10 ? s : 1e-10);
            mel[(size_t)b * n_frames_out + t] = (float)v;
            if (v > mx) mx = v;
        }
    }
    const float floor_v = (float)(mx - 8.0);
    size_t total = (size_t)n_mels * n_frames_out;
    for (size_t i = 0; i < total; i++) {
        float v = mel[i] < floor_v ? floor_v : mel[i];
        mel[i] = (v + 4.0f) / 4.0f;
    }
    pl_free(ctx, buf);
    pl_free(ctx, span);
    wh_fft_free(ctx, &f);
    return PL_OK;
}
