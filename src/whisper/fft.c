/*
 * fft.c - mixed-radix complex FFT (Cooley-Tukey, decimation in time), for the
 * 400-point STFT of the log-mel spectrogram (Whisper's n_fft is 400, not a
 * power of two; zero-padding to 512 would change the spectrum).
 *
 * X[k + s m] = sum_q W_n^(q (k + s m)) Y_q[k]   (n = p m, Y_q = DFT_m of x[q + p j])
 * A radix-p butterfly is a direct p-point DFT (p <= 7); radix 4 is used before
 * 2 to halve the recursion depth.
 */
#include <math.h>
#include <string.h>

#include "whisper/whisper_int.h"

pl_status wh_fft_init(pl_ctx *ctx, int n, wh_fft *f) {
    memset(f, 0, sizeof *f);
    if (n < 1 || n > (1 << 24)) return PL_ERR_INVALID_ARG;
    int r = n;
    static const int primes[] = { 4, 2, 3, 5, 7 };
    for (size_t i = 0; i < sizeof primes / sizeof primes[0]; i++)
        while (r % primes[i] == 0 && r > 1) {
            if (f->n_radix == 32) return PL_ERR_INVALID_ARG;
            f->radix[f->n_radix++] = primes[i];
            r /= primes[i];
        }
    if (r != 1) return PL_ERR_UNSUPPORTED; /* a prime factor above 7 */
    f->tw = pl_malloc(ctx, (size_t)n * 2 * sizeof(double));
    if (!f->tw) return PL_ERR_NOMEM;
    for (int k = 0; k < n; k++) {
        double a = -2.0 * M_PI * (double)k / (double)n;
        f->tw[2 * k] = cos(a);
        f->tw[2 * k + 1] = sin(a);
    }
    f->n = n;
    return PL_OK;
}

void wh_fft_free(pl_ctx *ctx, wh_fft *f) {
    if (!f) return;
    pl_free(ctx, f->tw);
    f->tw = NULL;
}

/* DFT of the n values in[0], in[stride], ... into out[0..n) (complex), using
 * radices from index ri on. tw_step: the table index step of W_n (N / n). */
static void fft_rec(const wh_fft *f, const double *in, size_t stride, double *out, int n, int ri, int tw_step) {
    if (n == 1) {
        out[0] = in[0];
        out[1] = in[1];
        return;
    }
    const int p = f->radix[ri], m = n / p;
    for (int q = 0; q < p; q++)
        fft_rec(f, in + 2 * stride * (size_t)q, stride * (size_t)p, out + 2 * (size_t)q * (size_t)m, m, ri + 1,
                tw_step * p);
    const int N = f->n;
    double t[2 * WH_FFT_MAX_RADIX];
    for (int k = 0; k < m; k++) {
        /* t_q = W_n^(q k) Y_q[k] */
        for (int q = 0; q < p; q++) {
            const double *y = out + 2 * ((size_t)q * (size_t)m + (size_t)k);
            int e = (int)(((long long)q * k * tw_step) % N);
            double wr = f->tw[2 * e], wi = f->tw[2 * e + 1];
            t[2 * q] = y[0] * wr - y[1] * wi;
            t[2 * q + 1] = y[0] * wi + y[1] * wr;
        }
        /* X[k + s m] = sum_q t_q W_p^(q s), W_p = W_N^(N / p) */
        for (int s = 0; s < p; s++) {
            double xr = 0.0, xi = 0.0;
            for (int q = 0; q < p; q++) {
                int e = (int)(((long long)q * s % p) * (N / p));
                double wr = f->tw[2 * e], wi = f->tw[2 * e + 1];
                xr += t[2 * q] * wr - t[2 * q + 1] * wi;
                xi += t[2 * q] * wi + t[2 * q + 1] * wr;
            }
            double *x = out + 2 * ((size_t)s * (size_t)m + (size_t)k);
            x[0] = xr;
            x[1] = xi;
        }
    }
}

void wh_fft_run(const wh_fft *f, const double *in, double *out) {
    fft_rec(f, in, 1, out, f->n, 0, 1);
}
