/*
 * test_speech.c - the speech module's unit tests: audio decoding and its
 * refusals, resampling, the WAV writer, the VAD on real speech (jfk.wav in
 * silence and in noise), word error distance, transcript rendering, and a
 * recognizer's own segments placed in a transcript (a test double).
 *
 * Independent expectations: files are written with libsndfile itself (a
 * different writer than ours) and checked with Goertzel filters and zero
 * crossings; jfk.wav's speech edges were derived by hand (see jfk_truth);
 * the WAV header is checked byte by byte against the RIFF layout.
 *
 * Exit status: failures -> 1; all passed but $PL_SHARED_DIR/audio absent
 * (jfk tests skipped) -> 77; otherwise 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sndfile.h>
#include <sys/stat.h>

#include "parley/audio.h"
#include "parley/stt.h"
#include "parley/vad.h"
#include "speech/speech_int.h"
#include "speech/speech_test.h"

static char tmpdir[256];
static pl_ctx *ctx;

static void tmp_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", tmpdir, name);
}

/* Write n mono/interleaved float frames with libsndfile in the given format. */
static void sf_write_file(const char *path, int format, int rate, int ch, const float *x, size_t n) {
    SF_INFO in = { .samplerate = rate, .channels = ch, .format = format };
    SNDFILE *f = sf_open(path, SFM_WRITE, &in);
    assert_non_null(f);
    assert_int_equal(sf_writef_float(f, x, (sf_count_t)n), (sf_count_t)n);
    sf_close(f);
}

static float *sine(size_t n, double f, double sr, double amp) {
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(amp * sin(2.0 * M_PI * f * (double)i / sr));
    return x;
}

/* Positive-going zero crossings per second over x[from, to). */
static double crossing_rate(const float *x, size_t from, size_t to, double sr) {
    size_t first = 0, last = 0, count = 0;
    for (size_t i = from + 1; i < to; i++) {
        if (x[i - 1] < 0.0f && x[i] >= 0.0f) {
            if (count == 0) first = i;
            last = i;
            count++;
        }
    }
    return count > 1 ? (double)(count - 1) * sr / (double)(last - first) : 0.0;
}

static double rms(const float *x, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s / (double)n);
}

/* ---- audio loading ---- */

/* jfk.wav: 16-bit mono 16 kHz, 11 s. Compared sample by sample with our own
 * parse of its data chunk. */
static void test_load_jfk(void **state) {
    (void)state;
    char buf[512];
    const char *path = shared_audio("jfk.wav", buf, sizeof buf);
    if (!path) skip();
    pl_audio *a = NULL;
    assert_int_equal(pl_audio_load_file(ctx, path, NULL, &a), PL_OK);
    assert_int_equal(a->n_frames, 176000);
    assert_int_equal(a->sample_rate, 16000);
    assert_int_equal(a->src_rate, 16000);
    assert_int_equal(a->src_channels, 1);
    assert_int_equal(a->channels, 1);
    assert_string_equal(a->src_format, "wav");
    assert_true(fabs(a->src_seconds - 11.0) < 1e-9);

    size_t n = 0;
    char *raw = test_read_file(path, &n);
    assert_non_null(raw);
    size_t off = 12;
    while (off + 8 <= n && memcmp(raw + off, "data", 4) != 0) {
        uint32_t len = (uint8_t)raw[off + 4] | (uint8_t)raw[off + 5] << 8 |
                       (uint8_t)raw[off + 6] << 16 | (uint32_t)(uint8_t)raw[off + 7] << 24;
        off += 8 + len + (len & 1);
    }
    assert_true(off + 8 + 2 * 176000 <= n);
    const uint8_t *d = (const uint8_t *)raw + off + 8;
    for (size_t i = 0; i < 176000; i++) {
        int16_t s = (int16_t)(uint16_t)(d[2 * i] | d[2 * i + 1] << 8);
        if (a->samples[i] != (float)s / 32768.0f) fail_msg("sample %zu differs", i);
    }
    /* The same bytes from memory give the same samples. */
    pl_audio *m = NULL;
    assert_int_equal(pl_audio_load_memory(ctx, raw, n, NULL, &m), PL_OK);
    assert_int_equal(m->n_frames, a->n_frames);
    assert_memory_equal(m->samples, a->samples, a->n_frames * sizeof(float));
    pl_audio_free(m);
    free(raw);
    pl_audio_free(a);
}

/* 44.1 kHz sines resampled to 16 kHz keep their frequency (zero crossings and
 * Goertzel), amplitude and duration; a tone above 8 kHz is filtered out. */
static void test_resample_sine(void **state) {
    (void)state;
    const double sr = 44100.0;
    const size_t n = 44100 * 2;
    const double freqs[] = { 440.0, 1000.0, 3000.0, 6000.0 };
    for (size_t k = 0; k < sizeof freqs / sizeof freqs[0]; k++) {
        float *x = sine(n, freqs[k], sr, 0.5);
        for (int q = 0; q < PL_RESAMPLE_QUALITY_LINEAR; q++) {
            pl_audio *a = NULL;
            assert_int_equal(pl_audio_resample(ctx, x, n, 44100, 16000, (pl_resample_quality)q, &a), PL_OK);
            assert_int_equal(a->sample_rate, 16000);
            assert_true(labs((long)a->n_frames - 32000) <= 2);
            /* Skip the filter's edges (50 ms each side). */
            double zc = crossing_rate(a->samples, 800, a->n_frames - 800, 16000.0);
            assert_true(fabs(zc - freqs[k]) < 0.5);
            double p_at = goertzel(a->samples + 800, 16000, freqs[k], 16000.0);
            double p_off = goertzel(a->samples + 800, 16000, freqs[k] * 1.1, 16000.0);
            assert_true(p_at > 1000.0 * p_off);
            double r = rms(a->samples + 800, a->n_frames - 1600);
            /* FASTEST's pass band is 80% of Nyquist: 6 kHz is on its slope (-0.5 dB). */
            double tol = q == PL_RESAMPLE_QUALITY_FASTEST ? 0.025 : 0.01;
            if (fabs(r - 0.5 / sqrt(2.0)) >= tol) fail_msg("%.0f Hz, quality %d: rms %f", freqs[k], q, r);
            pl_audio_free(a);
        }
        free(x);
    }
    /* 10 kHz is above the 8 kHz Nyquist of the output: gone, not aliased to 6 kHz. */
    float *x = sine(n, 10000.0, sr, 0.5);
    pl_audio *a = NULL;
    assert_int_equal(pl_audio_resample(ctx, x, n, 44100, 16000, PL_RESAMPLE_QUALITY_MEDIUM, &a), PL_OK);
    assert_true(rms(a->samples + 800, a->n_frames - 1600) < 0.005);
    pl_audio_free(a);
    free(x);
}

/* The streaming resampler in random-sized pieces gives the one-shot result. */
static void test_resampler_streaming(void **state) {
    (void)state;
    const size_t n = 48000;
    float *x = sine(n, 523.25, 48000.0, 0.3);
    pl_audio *whole = NULL;
    assert_int_equal(pl_audio_resample(ctx, x, n, 48000, 16000, PL_RESAMPLE_QUALITY_MEDIUM, &whole), PL_OK);
    pl_resampler *r = NULL;
    assert_int_equal(pl_resampler_init(ctx, 48000, 16000, 1, PL_RESAMPLE_QUALITY_MEDIUM, &r), PL_OK);
    float *out = calloc(n, sizeof *out);
    size_t pos = 0, made_total = 0;
    test_rng rng = { 12345 };
    while (pos < n) {
        size_t k = 1 + (size_t)(rng_uniform(&rng) * 2000.0);
        if (k > n - pos) k = n - pos;
        size_t cap = pl_resampler_max_out(r, k), used, made;
        assert_true(made_total + cap <= n);
        assert_int_equal(pl_resampler_process(r, x + pos, k, out + made_total, cap, false, &used, &made), PL_OK);
        assert_int_equal(used, k); /* the bound let it take everything */
        pos += used;
        made_total += made;
    }
    for (;;) {
        size_t used, made;
        assert_int_equal(pl_resampler_process(r, NULL, 0, out + made_total, n - made_total, true, &used, &made), PL_OK);
        made_total += made;
        if (made == 0) break;
    }
    assert_int_equal(made_total, whole->n_frames);
    for (size_t i = 0; i < made_total; i++) assert_true(fabsf(out[i] - whole->samples[i]) < 1e-5f);
    /* Same rate: a copy. */
    pl_resampler *same = NULL;
    assert_int_equal(pl_resampler_init(ctx, 16000, 16000, 1, PL_RESAMPLE_QUALITY_MEDIUM, &same), PL_OK);
    size_t used, made;
    assert_int_equal(pl_resampler_process(same, x, 100, out, 100, false, &used, &made), PL_OK);
    assert_int_equal(made, 100);
    assert_memory_equal(out, x, 100 * sizeof(float));
    pl_resampler_free(same);
    pl_resampler_free(r);
    pl_audio_free(whole);
    free(out);
    free(x);
    /* Bad ratios are refused. */
    assert_int_equal(pl_resampler_init(ctx, 8000, 8000 * 300, 1, PL_RESAMPLE_QUALITY_MEDIUM, &r), PL_ERR_RANGE);
    assert_null(r);
}

/* Every container libsndfile writes here comes back at 16 kHz mono with its
 * tone intact; stereo is averaged (L = tone, R = 0 halves the amplitude). */
static void test_load_formats(void **state) {
    (void)state;
    const struct { const char *name; int format; const char *fmt; double tol; } rows[] = {
        { "s.wav",  SF_FORMAT_WAV | SF_FORMAT_PCM_16,          "wav",  0.01 },
        { "s.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16,         "flac", 0.01 },
        { "s.ogg",  SF_FORMAT_OGG | SF_FORMAT_VORBIS,          "ogg",  0.03 },
        { "s.opus", SF_FORMAT_OGG | SF_FORMAT_OPUS,            "ogg",  0.03 },
        { "s.mp3",  SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, "mp3",  0.03 },
        { "f.wav",  SF_FORMAT_WAV | SF_FORMAT_FLOAT,           "wav",  0.01 },
    };
    const size_t n = 48000;
    float *st = calloc(2 * n, sizeof *st);
    for (size_t i = 0; i < n; i++) st[2 * i] = (float)(0.6 * sin(2.0 * M_PI * 880.0 * (double)i / 48000.0));
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        char path[300];
        tmp_path(path, sizeof path, rows[k].name);
        sf_write_file(path, rows[k].format, 48000, 2, st, n);
        pl_audio *a = NULL;
        if (pl_audio_load_file(ctx, path, NULL, &a) != PL_OK)
            fail_msg("%s: %s", rows[k].name, pl_ctx_last_error(ctx));
        assert_string_equal(a->src_format, rows[k].fmt);
        assert_int_equal(a->src_rate, 48000);
        assert_int_equal(a->src_channels, 2);
        assert_int_equal(a->sample_rate, 16000);
        /* Lossy codecs add priming samples: allow 0.1 s either way. */
        assert_true(labs((long)a->n_frames - 16000) < 1600);
        size_t mid = a->n_frames / 4, len = a->n_frames / 2;
        assert_true(fabs(crossing_rate(a->samples, mid, mid + len, 16000.0) - 880.0) < 2.0);
        double want = 0.3 / sqrt(2.0), got = rms(a->samples + mid, len);
        if (fabs(got - want) > rows[k].tol) fail_msg("%s: rms %f, want %f", rows[k].name, got, want);
        pl_audio_free(a);
    }
    free(st);
}

/* Headerless s16le: mono and stereo (averaged), and a torn frame refused. */
static void test_load_raw(void **state) {
    (void)state;
    uint8_t b[8 * 4];
    for (int i = 0; i < 8; i++) {
        int16_t l = (int16_t)(i * 1000), r = (int16_t)(-i * 500);
        b[4 * i] = (uint8_t)(l & 0xff);
        b[4 * i + 1] = (uint8_t)((uint16_t)l >> 8);
        b[4 * i + 2] = (uint8_t)(r & 0xff);
        b[4 * i + 3] = (uint8_t)((uint16_t)r >> 8);
    }
    pl_audio_load_params p = pl_audio_default_load_params();
    p.out_rate = 0;
    p.raw_rate = 8000;
    p.raw_channels = 2;
    pl_audio *a = NULL;
    assert_int_equal(pl_audio_load_memory(ctx, b, sizeof b, &p, &a), PL_OK);
    assert_int_equal(a->n_frames, 8);
    assert_string_equal(a->src_format, "raw");
    for (int i = 0; i < 8; i++) assert_true(fabsf(a->samples[i] - (float)(i * 250) / 32768.0f) < 1e-6f);
    pl_audio_free(a);
    /* As a file, mono: 16 samples. */
    char path[300];
    tmp_path(path, sizeof path, "x.pcm");
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, sizeof b, f);
    fclose(f);
    p.raw_channels = 1;
    assert_int_equal(pl_audio_load_file(ctx, path, &p, &a), PL_OK);
    assert_int_equal(a->n_frames, 16);
    assert_true(fabsf(a->samples[2] - 1000.0f / 32768.0f) < 1e-6f);
    assert_true(fabsf(a->samples[3] - -500.0f / 32768.0f) < 1e-6f);
    pl_audio_free(a);
    /* 7 bytes is not a whole number of frames. */
    assert_int_equal(pl_audio_load_memory(ctx, b, 7, &p, &a), PL_ERR_FORMAT);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "whole number"));
    /* Raw parameters are checked like a header. */
    p.raw_rate = 4000;
    assert_int_equal(pl_audio_load_memory(ctx, b, 8, &p, &a), PL_ERR_RANGE);
    p.raw_rate = 16000;
    p.raw_channels = 9;
    assert_int_equal(pl_audio_load_memory(ctx, b, 18, &p, &a), PL_ERR_UNSUPPORTED);
}

/* Write a mono 16-bit WAV of n frames with libsndfile and return its bytes. */
static char *make_wav(size_t n_frames, int rate, int ch, size_t *len) {
    char path[300];
    tmp_path(path, sizeof path, "craft.wav");
    float *x = calloc(n_frames * (size_t)ch + 1, sizeof *x);
    for (size_t i = 0; i < n_frames * (size_t)ch; i++) x[i] = (float)(0.1 * sin((double)i));
    sf_write_file(path, SF_FORMAT_WAV | SF_FORMAT_PCM_16, rate, ch, x, n_frames);
    free(x);
    char *b = test_read_file(path, len);
    assert_non_null(b);
    return b;
}

static size_t fmt_offset(const char *b, size_t n) {
    size_t off = 12;
    while (off + 8 <= n && memcmp(b + off, "fmt ", 4) != 0) {
        uint32_t len = (uint8_t)b[off + 4] | (uint8_t)b[off + 5] << 8 | (uint8_t)b[off + 6] << 16 |
                       (uint32_t)(uint8_t)b[off + 7] << 24;
        off += 8 + len + (len & 1);
    }
    assert_true(off + 24 <= n);
    return off + 8; /* the fmt body */
}

static void put32(char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (char)(v >> (8 * i));
}

/* Load bytes both from memory and from a file; both must fail with want and a
 * message containing needle. */
static void expect_refused(const char *b, size_t n, const pl_audio_load_params *p, pl_status want,
                           const char *needle) {
    pl_audio *a = NULL;
    pl_status st = pl_audio_load_memory(ctx, b, n, p, &a);
    if (st != want) fail_msg("memory: got %s (%s), want %s", pl_status_name(st), pl_ctx_last_error(ctx), pl_status_name(want));
    assert_null(a);
    if (!strstr(pl_ctx_last_error(ctx), needle)) fail_msg("'%s' lacks '%s'", pl_ctx_last_error(ctx), needle);
    char path[300];
    tmp_path(path, sizeof path, "bad.wav");
    FILE *f = fopen(path, "wb");
    if (n) fwrite(b, 1, n, f);
    fclose(f);
    st = pl_audio_load_file(ctx, path, p, &a);
    if (st != want) fail_msg("file: got %s (%s), want %s", pl_status_name(st), pl_ctx_last_error(ctx), pl_status_name(want));
    assert_null(a);
    if (!strstr(pl_ctx_last_error(ctx), needle)) fail_msg("'%s' lacks '%s'", pl_ctx_last_error(ctx), needle);
}

static void test_refusals(void **state) {
    (void)state;
    size_t n;
    char *b = make_wav(1600, 16000, 1, &n);
    size_t fo = fmt_offset(b, n);
    /* 0 channels */
    char *c = malloc(n);
    memcpy(c, b, n);
    c[fo + 2] = 0;
    c[fo + 3] = 0;
    expect_refused(c, n, NULL, PL_ERR_FORMAT, "0 channels");
    /* absurd rates: 1 Hz and 4 MHz (byte rate patched to match) */
    const uint32_t rates[] = { 1, 4000000, 7999, 192001 };
    for (size_t i = 0; i < 4; i++) {
        memcpy(c, b, n);
        put32(c + fo + 4, rates[i]);
        put32(c + fo + 8, rates[i] * 2);
        char want[64];
        snprintf(want, sizeof want, "sample rate %u Hz", rates[i]);
        expect_refused(c, n, NULL, PL_ERR_RANGE, want);
    }
    /* the limits are inclusive: 8 kHz and 192 kHz load */
    pl_audio *a = NULL;
    memcpy(c, b, n);
    put32(c + fo + 4, 192000);
    put32(c + fo + 8, 384000);
    assert_int_equal(pl_audio_load_memory(ctx, c, n, NULL, &a), PL_OK);
    assert_int_equal(a->src_rate, 192000);
    assert_true(labs((long)a->n_frames - 133) <= 2);
    pl_audio_free(a);
    free(c);
    free(b);
    /* headers lying about their sizes: RIFF and data chunk sizes claiming 4 GiB
     * (a "duration bomb" of 37 hours at 16 kHz) over 1600 real frames. What is
     * loaded is what the file holds (never an allocation sized by the claim),
     * or a clear refusal; never a crash or a read past the buffer (ASan). */
    {
        b = make_wav(1600, 16000, 1, &n);
        size_t dpos = 12;
        while (dpos + 8 <= n && memcmp(b + dpos, "data", 4) != 0) {
            uint32_t len = (uint8_t)b[dpos + 4] | (uint8_t)b[dpos + 5] << 8 | (uint8_t)b[dpos + 6] << 16 |
                           (uint32_t)(uint8_t)b[dpos + 7] << 24;
            dpos += 8 + len + (len & 1);
        }
        assert_true(dpos + 8 <= n);
        const uint32_t lies[] = { 0xFFFFFFFFu, 0x7FFFFFF0u, (uint32_t)(n - dpos - 8) + 2 };
        for (size_t i = 0; i < 3; i++) {
            c = malloc(n);
            memcpy(c, b, n);
            put32(c + 4, lies[i]);        /* RIFF size */
            put32(c + dpos + 4, lies[i]); /* data size */
            pl_audio *la = NULL;
            pl_status st = pl_audio_load_memory(ctx, c, n, NULL, &la);
            if (st == PL_OK) {
                assert_true(la->n_frames <= 1600); /* what is there, not what is claimed */
                assert_true(la->n_frames >= 1590);
                pl_audio_free(la);
            } else {
                assert_null(la);
                assert_true(st == PL_ERR_FORMAT || st == PL_ERR_RANGE);
                assert_true(strlen(pl_ctx_last_error(ctx)) > 0);
            }
            free(c);
        }
        /* a data chunk cut in the middle of a frame: the whole frames only */
        pl_audio *la = NULL;
        assert_int_equal(pl_audio_load_memory(ctx, b, n - 3, NULL, &la), PL_OK);
        assert_int_equal(la->n_frames, 1598);
        pl_audio_free(la);
        free(b);
    }
    /* a valid header with no samples (found by fuzz_audio) */
    b = make_wav(0, 16000, 1, &n);
    expect_refused(b, n, NULL, PL_ERR_FORMAT, "no samples");
    free(b);
    /* 9 channels (a real 9-channel file) */
    b = make_wav(100, 16000, 9, &n);
    expect_refused(b, n, NULL, PL_ERR_UNSUPPORTED, "9 channels");
    free(b);
    /* longer than the limit: 3 s against 2 s */
    b = make_wav(48000, 16000, 1, &n);
    pl_audio_load_params p = pl_audio_default_load_params();
    p.max_seconds = 2.0;
    expect_refused(b, n, &p, PL_ERR_RANGE, "limit");
    /* a header claiming 2 GB of data in a 96 KB file: only what is there loads */
    size_t off = 12;
    while (memcmp(b + off, "data", 4) != 0) off += 8 + ((uint8_t)b[off + 4] | (uint8_t)b[off + 5] << 8);
    put32(b + off + 4, 0x7ffffff0u);
    assert_int_equal(pl_audio_load_memory(ctx, b, n, NULL, &a), PL_OK);
    assert_int_equal(a->n_frames, 48000);
    pl_audio_free(a);
    /* and with the lie, the limit still holds while decoding */
    expect_refused(b, n, &p, PL_ERR_RANGE, "limit");
    /* truncated header, garbage, empty */
    expect_refused(b, 30, NULL, PL_ERR_FORMAT, "audio");
    char junk[1000];
    test_rng rng = { 99 };
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)(rng_uniform(&rng) * 256.0);
    expect_refused(junk, sizeof junk, NULL, PL_ERR_FORMAT, "not a readable audio file");
    expect_refused(b, 0, NULL, PL_ERR_FORMAT, "empty");
    free(b);
    /* missing file, a directory */
    assert_int_equal(pl_audio_load_file(ctx, "/nonexistent/x.wav", NULL, &a), PL_ERR_IO);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "cannot open"));
    assert_int_equal(pl_audio_load_file(ctx, tmpdir, NULL, &a), PL_ERR_IO);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "not a regular file"));
    /* bad parameters */
    p = pl_audio_default_load_params();
    p.max_seconds = -1;
    assert_int_equal(pl_audio_load_memory(ctx, junk, 10, &p, &a), PL_ERR_INVALID_ARG);
}

/* Float WAVs may hold NaN, Inf and out-of-range values: they are cleaned. */
static void test_float_cleaning(void **state) {
    (void)state;
    float x[6] = { NAN, INFINITY, -INFINITY, 3.0f, -2.0f, 0.25f };
    char path[300];
    tmp_path(path, sizeof path, "nan.wav");
    sf_write_file(path, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, x, 6);
    pl_audio *a = NULL;
    assert_int_equal(pl_audio_load_file(ctx, path, NULL, &a), PL_OK);
    const float want[6] = { 0.0f, 0.0f, 0.0f, 1.0f, -1.0f, 0.25f };
    assert_int_equal(a->n_frames, 6);
    for (int i = 0; i < 6; i++) assert_true(a->samples[i] == want[i]);
    pl_audio_free(a);
}

/* ---- output ---- */

static void test_wav_header(void **state) {
    (void)state;
    uint8_t h[PL_WAV_HEADER_SIZE];
    pl_audio_wav_header(h, 22050, 1, 100);
    const uint8_t want[PL_WAV_HEADER_SIZE] = {
        'R', 'I', 'F', 'F', 236, 0, 0, 0, 'W', 'A', 'V', 'E', 'f', 'm', 't', ' ',
        16, 0, 0, 0, 1, 0, 1, 0, 0x22, 0x56, 0, 0, 0x44, 0xac, 0, 0, /* 22050, 44100 */
        2, 0, 16, 0, 'd', 'a', 't', 'a', 200, 0, 0, 0,
    };
    assert_memory_equal(h, want, sizeof want);
    pl_audio_wav_header(h, 24000, 2, UINT64_MAX);
    assert_int_equal(h[4] & h[5] & h[6] & h[7], 0xff);
    assert_int_equal(h[40] & h[41] & h[42] & h[43], 0xff);
    assert_int_equal(h[22], 2);
    assert_int_equal(h[32], 4);
    /* f32 -> s16: rounding and clipping */
    const float in[6] = { 0.0f, 0.5f, -0.5f, 1.5f, -1.5f, 1.0f / 65536.0f };
    const int16_t out[6] = { 0, 16384, -16384, 32767, -32768, 0 };
    uint8_t b[12];
    pl_audio_f32_to_s16le(in, 6, b);
    for (int i = 0; i < 6; i++) assert_int_equal((int16_t)(uint16_t)(b[2 * i] | b[2 * i + 1] << 8), out[i]);
    float back[6];
    pl_audio_s16le_to_f32(b, 6, back);
    assert_true(back[1] == 0.5f && back[4] == -1.0f);
}

/* Our writer's files read back with libsndfile: same samples (to 1/32768). */
static void test_writer_roundtrip(void **state) {
    (void)state;
    const size_t n = 22050;
    float *x = sine(n, 300.0, 22050.0, 0.7);
    char path[300];
    tmp_path(path, sizeof path, "w.wav");
    pl_audio_writer *w = NULL;
    assert_int_equal(pl_audio_writer_open(ctx, path, PL_AUDIO_FORMAT_WAV, 22050, 1, &w), PL_OK);
    for (size_t i = 0; i < n; i += 1000) /* in chunks, as TTS would */
        assert_int_equal(pl_audio_writer_write(w, x + i, n - i < 1000 ? n - i : 1000), PL_OK);
    assert_int_equal(pl_audio_writer_frames(w), n);
    assert_int_equal(pl_audio_writer_close(w), PL_OK);
    SF_INFO info = { 0 };
    SNDFILE *f = sf_open(path, SFM_READ, &info);
    assert_non_null(f);
    assert_int_equal(info.frames, (sf_count_t)n);
    assert_int_equal(info.samplerate, 22050);
    assert_int_equal(info.channels, 1);
    assert_int_equal(info.format, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    float *y = malloc(n * sizeof *y);
    assert_int_equal(sf_readf_float(f, y, (sf_count_t)n), (sf_count_t)n);
    sf_close(f);
    for (size_t i = 0; i < n; i++) assert_true(fabsf(x[i] - y[i]) <= 0.5f / 32768.0f + 1e-7f);
    /* Raw PCM: exactly 2 bytes per sample, no header. */
    tmp_path(path, sizeof path, "w.pcm");
    assert_int_equal(pl_audio_save(ctx, path, PL_AUDIO_FORMAT_PCM, x, n, 22050, 1), PL_OK);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal((size_t)sb.st_size, 2 * n);
    /* Unwritable path */
    assert_int_equal(pl_audio_save(ctx, "/nonexistent/dir/x.wav", PL_AUDIO_FORMAT_WAV, x, n, 22050, 1), PL_ERR_IO);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "cannot create"));
    pl_audio_format fmt;
    assert_int_equal(pl_audio_format_parse("pcm", &fmt), PL_OK);
    assert_int_equal(fmt, PL_AUDIO_FORMAT_PCM);
    assert_int_equal(pl_audio_format_parse("mp3", &fmt), PL_ERR_INVALID_ARG);
    free(x);
    free(y);
}

/* ---- VAD ----
 * jfk.wav's speech, derived by hand from its 10 ms frame levels after a
 * 100 Hz high-pass (dBFS), and cross-checked with a forced alignment of the
 * reference text (PocketSphinx, JSGF grammar of jfk.txt, silence removal off):
 *  - background in the pauses: -48..-42 dBFS (tape hiss and rumble);
 *  - starts are sharp (20 dB within 20-30 ms): "And" 0.32 s (0.31: -48,
 *    0.32: -35, 0.33: -26), "ask" 3.28, "your" 5.41, "ask" 8.19; the
 *    alignment puts them 30-40 ms earlier (0.29, 3.25, 5.37, 8.15);
 *  - ends are blurred by the PA's slapback echo: 100-200 ms after each
 *    phrase, bursts 10-15 dB down (e.g. 2.09-2.10 s at -22 after "Americans"
 *    decays at 1.99). The direct sound falls below -32 dBFS (12 dB over the
 *    background) at 2.00, 4.28, 7.54, 10.22 s; the alignment, which gives the
 *    echo to the word, ends them at 2.16, 4.30, 7.67, 10.46 s. An end edge
 *    anywhere in [direct, aligned] is right;
 *  - from 10.7 s the crowd starts (broadband, aperiodic, up to -23 dBFS): not
 *    speech for the alignment either.
 * Pauses are 1.1-1.3 s, so with silence_ms 500 there are four turns. */
static const struct { double start, end_direct, end_aligned; } jfk_truth[4] = {
    { 0.32, 2.00, 2.16 }, { 3.28, 4.28, 4.30 }, { 5.41, 7.54, 7.67 }, { 8.19, 10.22, 10.46 },
};
#define EDGE_TOL 0.060

typedef struct ev_log {
    pl_vad_event ev[32];
    size_t       n;
    const float *signal;     /* to check the prefix audio */
    bool         audio_ok;
} ev_log;

static void log_event(void *ud, const pl_vad_event *e) {
    ev_log *l = ud;
    if (e->type == PL_VAD_EVENT_SPEECH_STARTED) {
        bool ok = e->n_audio == e->detected - e->pad_start &&
                  memcmp(e->audio, l->signal + e->pad_start, e->n_audio * sizeof(float)) == 0;
        if (!ok) l->audio_ok = false;
    }
    if (l->n < 32) {
        l->ev[l->n] = *e;
        l->ev[l->n].audio = NULL;
    }
    l->n++;
}

/* jfk at offset_s in a bed of white noise at noise_dbfs (-inf: silence), fed
 * in random-sized pieces. Returns the signal (caller frees). */
static float *embed_jfk(const pl_audio *jfk, double offset_s, double noise_dbfs, size_t *n_out) {
    size_t pre = (size_t)(offset_s * 16000.0), post = 2 * 16000, n = pre + jfk->n_frames + post;
    float *x = calloc(n, sizeof *x);
    assert_non_null(x);
    test_rng rng = { 0x9e3779b97f4a7c15ull };
    double sigma = isfinite(noise_dbfs) ? pow(10.0, noise_dbfs / 20.0) : 0.0;
    for (size_t i = 0; i < n; i++) {
        double v = sigma > 0.0 ? sigma * rng_gauss(&rng) : 0.0;
        if (i >= pre && i < pre + jfk->n_frames) v += jfk->samples[i - pre];
        x[i] = (float)v;
    }
    *n_out = n;
    return x;
}

static void run_vad(const pl_vad_params *base, const float *x, size_t n, ev_log *log) {
    pl_vad_params p = *base;
    p.on_event = log_event;
    p.ud = log;
    log->n = 0;
    log->signal = x;
    log->audio_ok = true;
    pl_vad *v = NULL;
    assert_int_equal(pl_vad_init(ctx, &p, &v), PL_OK);
    test_rng rng = { 777 };
    for (size_t pos = 0; pos < n;) {
        size_t k = 1 + (size_t)(rng_uniform(&rng) * 997.0);
        if (k > n - pos) k = n - pos;
        assert_int_equal(pl_vad_feed(v, x + pos, k), PL_OK);
        pos += k;
    }
    assert_int_equal(pl_vad_flush(v), PL_OK);
    assert_false(pl_vad_in_speech(v));
    assert_int_equal(pl_vad_position(v), n);
    pl_vad_free(v);
    assert_true(log->audio_ok);
}

static void check_turns(const ev_log *log, const pl_vad_params *p, double offset_s, bool merged,
                        const char *what) {
    size_t want = merged ? 1 : 4;
    if (log->n != 2 * want) {
        for (size_t i = 0; i < log->n && i < 32; i++)
            print_message("  %s %.3f\n", pl_vad_event_name(log->ev[i].type), log->ev[i].edge_ms / 1000.0 - offset_s);
        fail_msg("%s: %zu events, want %zu", what, log->n, 2 * want);
    }
    for (size_t t = 0; t < want; t++) {
        const pl_vad_event *s = &log->ev[2 * t], *e = &log->ev[2 * t + 1];
        assert_int_equal(s->type, PL_VAD_EVENT_SPEECH_STARTED);
        assert_int_equal(e->type, PL_VAD_EVENT_SPEECH_STOPPED);
        double start = s->edge_ms / 1000.0 - offset_s, end = e->edge_ms / 1000.0 - offset_s;
        double ts = jfk_truth[t].start;
        size_t last = merged ? 3 : t;
        double lo = jfk_truth[last].end_direct - EDGE_TOL, hi = jfk_truth[last].end_aligned + EDGE_TOL;
        print_message("  %s turn %zu: %.3f-%.3f (truth %.2f, %.2f..%.2f), detected +%.0f / +%.0f ms\n",
                      what, t, start, end, ts, jfk_truth[last].end_direct, jfk_truth[last].end_aligned,
                      s->detected_ms - s->edge_ms, e->detected_ms - e->edge_ms);
        if (fabs(start - ts) > EDGE_TOL + 1e-9) fail_msg("%s: turn %zu starts at %.3f, truth %.2f", what, t, start, ts);
        if (end < lo - 1e-9 || end > hi + 1e-9) fail_msg("%s: turn %zu ends at %.3f, want %.2f..%.2f", what, t, end, lo, hi);
        /* the stop is decided exactly silence_ms after the edge; the start
         * after at least min_speech_ms and at most the lead + 2 frames */
        assert_false(e->forced);
        double wait = ceil((double)p->silence_ms / p->frame_ms) * p->frame_ms;
        assert_true(fabs(e->detected_ms - e->edge_ms - wait) < 1e-6);
        assert_true(s->detected_ms - s->edge_ms >= p->min_speech_ms - 1e-6);
        assert_true(s->detected_ms - s->edge_ms <= p->voice_lead_ms + p->min_speech_ms + 2 * p->frame_ms + 1e-6);
        assert_true(fabs(s->edge_ms - s->pad_start_ms - p->prefix_pad_ms) < 1e-6);
    }
}

static void test_vad_jfk(void **state) {
    (void)state;
    char buf[512];
    const char *path = shared_audio("jfk.wav", buf, sizeof buf);
    if (!path) skip();
    pl_audio *jfk = NULL;
    assert_int_equal(pl_audio_load_file(ctx, path, NULL, &jfk), PL_OK);
    /* Conditions: digital silence (so jfk's own hiss starts abruptly at the
     * offset: a 20 dB step the VAD must not call speech), and white noise at
     * -40 dBFS RMS over everything (jfk's background goes from about -45 to
     * -39 dBFS; speech is 25-30 dB above it). Offsets are not frame-aligned. */
    const struct { double offset, noise; const char *name; } conds[] = {
        { 1.503, -INFINITY, "silence" },
        { 2.2517, -40.0, "noise -40 dBFS" },
    };
    const int frames[] = { 10, 20, 30 };
    for (size_t c = 0; c < 2; c++) {
        size_t n;
        float *x = embed_jfk(jfk, conds[c].offset, conds[c].noise, &n);
        for (size_t f = 0; f < 3; f++) {
            pl_vad_params p = pl_vad_default_params();
            p.frame_ms = frames[f];
            ev_log log;
            run_vad(&p, x, n, &log);
            char what[64];
            snprintf(what, sizeof what, "%s, %d ms frames", conds[c].name, frames[f]);
            check_turns(&log, &p, conds[c].offset, false, what);
            /* With a silence longer than jfk's pauses, one turn. */
            p.silence_ms = 1500;
            run_vad(&p, x, n, &log);
            snprintf(what, sizeof what, "%s, %d ms frames, one turn", conds[c].name, frames[f]);
            check_turns(&log, &p, conds[c].offset, true, what);
        }
        free(x);
    }
    pl_audio_free(jfk);
}

/* Loud sound that is not voice never starts a turn: white noise switching on
 * (-60 -> -25 dBFS), a 200 ms burst 20 dB louder, random clicks. */
static void test_vad_rejects_noise(void **state) {
    (void)state;
    const size_t n = 16000 * 6;
    float *x = calloc(n, sizeof *x);
    test_rng rng = { 4242 };
    for (size_t i = 0; i < n; i++) {
        double sigma = i < 16000 ? 0.001 : (i >= 48000 && i < 48000 + 3200) ? 0.56 : 0.056;
        x[i] = (float)(sigma * rng_gauss(&rng));
        if (i % 7919 == 0) x[i] = 0.9f;
    }
    ev_log log;
    pl_vad_params p = pl_vad_default_params();
    run_vad(&p, x, n, &log);
    assert_int_equal(log.n, 0);
    free(x);
}

/* A turn longer than max_speech_ms is cut (forced), and flush closes an open
 * turn. A synthetic vowel: 150 Hz pulses through a resonance, 4 s. */
static void test_vad_forced(void **state) {
    (void)state;
    const size_t n = 16000 * 5;
    float *x = calloc(n, sizeof *x);
    for (size_t i = 8000; i < 8000 + 64000; i++) {
        double t = (double)i / 16000.0;
        x[i] = (float)(0.2 * sin(2 * M_PI * 150 * t) + 0.1 * sin(2 * M_PI * 450 * t) + 0.05 * sin(2 * M_PI * 750 * t));
    }
    ev_log log;
    pl_vad_params p = pl_vad_default_params();
    p.max_speech_ms = 1000;
    run_vad(&p, x, n, &log);
    assert_true(log.n >= 6); /* 4 s of voice cut into 1 s turns */
    assert_int_equal(log.ev[0].type, PL_VAD_EVENT_SPEECH_STARTED);
    assert_true(fabs(log.ev[0].edge_ms - 500.0) <= 10.0);
    assert_true(log.ev[1].forced);
    assert_true(fabs(log.ev[1].edge_ms - log.ev[0].edge_ms - 1000.0) <= 10.0);
    /* flush in the middle of the voice */
    p = pl_vad_default_params();
    run_vad(&p, x, 8000 + 32000, &log);
    assert_int_equal(log.n, 2);
    assert_true(log.ev[1].forced);
    free(x);
}

static void test_vad_params(void **state) {
    (void)state;
    pl_vad *v = NULL;
    pl_vad_params p = pl_vad_default_params();
    p.frame_ms = 15;
    assert_int_equal(pl_vad_init(ctx, &p, &v), PL_ERR_INVALID_ARG);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "frame_ms"));
    p = pl_vad_default_params();
    p.stop_db = 20.0f;
    assert_int_equal(pl_vad_init(ctx, &p, &v), PL_ERR_INVALID_ARG);
    p = pl_vad_default_params();
    p.sample_rate = 96000;
    assert_int_equal(pl_vad_init(ctx, &p, &v), PL_ERR_INVALID_ARG);
    assert_null(v);
    assert_string_equal(pl_vad_event_name(PL_VAD_EVENT_SPEECH_STOPPED), "speech_stopped");
    pl_vad_free(NULL);
}

/* ---- text ---- */

static void test_word_distance(void **state) {
    (void)state;
    size_t nr = 0;
    assert_int_equal(pl_speech_word_distance(ctx, "a b c d", "a x c", &nr), 2); /* sub + del */
    assert_int_equal(nr, 4);
    assert_int_equal(pl_speech_word_distance(ctx, "Hello, World!", "hello world", &nr), 0);
    assert_int_equal(pl_speech_word_distance(ctx, "", "one two", &nr), 2);
    assert_int_equal(nr, 0);
    assert_int_equal(pl_speech_word_distance(ctx, "it's a test", "its a test", &nr), 1);
    assert_int_equal(pl_speech_word_distance(ctx, "kitten sitting", "sitting kitten", &nr), 2);
    /* insertion at the front */
    assert_int_equal(pl_speech_word_distance(ctx, "b c", "a b c", &nr), 1);
}

static void test_transcript_render(void **state) {
    (void)state;
    /* A transcript from a fake backend: every utterance is "word". */
    pl_transcript_segment segs[2] = {
        { .start_s = 0.32, .end_s = 2.1, .text = "and so" },
        { .start_s = 3661.0005, .end_s = 3662.25, .text = "my \"fellow\"" },
    };
    pl_transcript t = { .segments = segs, .n_segments = 2, .text = "and so my \"fellow\"",
                        .duration_s = 3700.0, .ctx = ctx };
    char *s = NULL;
    size_t len = 0;
    assert_int_equal(pl_transcript_render(&t, PL_TRANSCRIPT_FORMAT_SRT, NULL, &s, &len), PL_OK);
    assert_string_equal(s, "1\n00:00:00,320 --> 00:00:02,100\nand so\n\n"
                           "2\n01:01:01,001 --> 01:01:02,250\nmy \"fellow\"\n\n");
    assert_int_equal(len, strlen(s));
    pl_free(ctx, s);
    assert_int_equal(pl_transcript_render(&t, PL_TRANSCRIPT_FORMAT_VTT, NULL, &s, &len), PL_OK);
    assert_string_equal(s, "WEBVTT\n\n00:00:00.320 --> 00:00:02.100\nand so\n\n"
                           "01:01:01.001 --> 01:01:02.250\nmy \"fellow\"\n\n");
    pl_free(ctx, s);
    assert_int_equal(pl_transcript_render(&t, PL_TRANSCRIPT_FORMAT_TEXT, NULL, &s, &len), PL_OK);
    assert_string_equal(s, "and so my \"fellow\"\n");
    pl_free(ctx, s);
    assert_int_equal(pl_transcript_render(&t, PL_TRANSCRIPT_FORMAT_JSON, NULL, &s, &len), PL_OK);
    assert_string_equal(s, "{\"text\":\"and so my \\\"fellow\\\"\"}\n");
    pl_free(ctx, s);
    assert_int_equal(pl_transcript_render(&t, PL_TRANSCRIPT_FORMAT_VERBOSE_JSON, "en", &s, &len), PL_OK);
    /* segments without the recognizer's statistics: no such fields, empty tokens */
    assert_non_null(strstr(s, "\"segments\":[{\"id\":0,\"seek\":0,\"start\":0.32,\"end\":2.1,\"text\":\"and so\","
                              "\"tokens\":[]}"));
    assert_non_null(strstr(s, "\"duration\":3700"));
    pl_free(ctx, s);
    pl_transcript_format f;
    assert_int_equal(pl_transcript_format_parse("verbose_json", &f), PL_OK);
    assert_int_equal(f, PL_TRANSCRIPT_FORMAT_VERBOSE_JSON);
    assert_int_equal(pl_transcript_format_parse("xml", &f), PL_ERR_INVALID_ARG);
}

/* ---- the recognizer's own segments in a transcript ---- */

static void test_transcript_place(void **state) {
    (void)state;
    /* hand-computed: chunk [1, 3] of the recording, segments timed from its start */
    const struct { double c0, c1, prev, a, b, want_a, want_b; } cases[] = {
        { 1.0, 3.0, 0.0, 0.5, 1.0, 1.5, 2.0 },   /* offset */
        { 1.0, 3.0, 2.0, 0.8, 1.2, 2.0, 2.2 },   /* starts before the previous end: moved to it */
        { 1.0, 3.0, 2.2, 1.5, 5.0, 2.5, 3.0 },   /* ends past the chunk: clamped */
        { 1.0, 3.0, 3.0, 2.5, 2.0, 3.0, 3.0 },   /* start past the chunk, end before start */
        { 4.0, 6.0, 3.0, -1.0, 0.5, 4.0, 4.5 },  /* before the chunk: clamped to its start */
        { 4.0, 6.0, 6.5, 0.1, 0.2, 6.5, 6.5 },   /* chunks overlap: order wins over the chunk */
        { 1.0, 3.0, 0.0, NAN, NAN, 1.0, 1.0 },   /* NaN: the chunk's start */
        { 1.0, 0.5, 0.0, 0.2, 0.3, 1.0, 1.0 },   /* an empty chunk */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double prev = cases[i].prev, a = cases[i].a, b = cases[i].b;
        pl_transcript_place(cases[i].c0, cases[i].c1, &prev, &a, &b);
        if (fabs(a - cases[i].want_a) > 1e-12 || fabs(b - cases[i].want_b) > 1e-12 || prev != b)
            fail_msg("case %zu: got [%g, %g] prev %g, want [%g, %g]", i, a, b, prev, cases[i].want_a,
                     cases[i].want_b);
    }
}

/* A test double that times its own segments, like Whisper: every utterance
 * gives three segments timed from the start of the audio it was given (the
 * second overlaps the first, the third runs past the audio), and logs where
 * in the recording that audio started (its feed gets a pointer into it). */
static const float *timed_base;
static size_t timed_from[64], timed_len[64], timed_calls;
typedef struct timed { size_t n; pl_stt_segment segs[3]; int32_t toks[3]; } timed;
static timed timed_state;
static pl_status timed_create(pl_ctx *c, const pl_stt_params *p, const atomic_bool *cancel, void **out) {
    (void)c, (void)p, (void)cancel;
    memset(&timed_state, 0, sizeof timed_state);
    *out = &timed_state;
    return PL_OK;
}
static void timed_free(void *s) { (void)s; }
static pl_status timed_feed(void *vs, const float *pcm, size_t n) {
    timed *t = vs;
    if (t->n == 0 && timed_calls < 64) timed_from[timed_calls] = (size_t)(pcm - timed_base);
    t->n += n;
    return PL_OK;
}
static pl_status timed_finalize(void *vs, pl_stt_result *out) {
    timed *t = vs;
    if (timed_calls < 64) timed_len[timed_calls++] = t->n;
    t->n = 0;
    t->toks[0] = 11, t->toks[1] = 12, t->toks[2] = 13;
    t->segs[0] = (pl_stt_segment){ .start_s = 0.10, .end_s = 0.50, .text = "one two", .tokens = t->toks,
                                   .n_tokens = 2, .has_stats = true, .temperature = 0.25f,
                                   .avg_logprob = -0.25f, .compression_ratio = 1.5f, .no_speech_prob = 0.125f };
    t->segs[1] = (pl_stt_segment){ .start_s = 0.40, .end_s = 0.80, .seek_s = 0.30, .text = "three",
                                   .tokens = t->toks + 2, .n_tokens = 1 };
    t->segs[2] = (pl_stt_segment){ .start_s = 0.70, .end_s = 1000.0, .seek_s = 0.30, .text = "four" };
    out->text = "one two three four";
    out->segments = t->segs;
    out->n_segments = 3;
    return PL_OK;
}
static const pl_stt_backend timed_backend = {
    .name = "timed", .description = "times its own segments",
    .create = timed_create, .free = timed_free, .feed = timed_feed, .finalize = timed_finalize,
};

static int count_segments(void *ud, const pl_transcript_segment *seg) {
    (void)seg;
    ++*(int *)ud;
    return 0;
}

static void test_transcript_stt_segments(void **state) {
    (void)state;
    pl_stt_params sp = pl_stt_default_params();
    sp.backend_impl = &timed_backend;
    pl_stt *stt = NULL;
    assert_int_equal(pl_stt_init(ctx, &sp, &stt), PL_OK);
    /* the whole recording (2 s) as one chunk: the segments' own times, clamped and ordered */
    float *z = calloc(32000, sizeof *z);
    timed_base = z;
    timed_calls = 0;
    pl_transcribe_params tp = pl_transcribe_default_params();
    tp.use_vad = false;
    pl_transcript *t = NULL;
    int seen = 0;
    assert_int_equal(pl_transcribe(stt, &tp, z, 32000, count_segments, &seen, &t), PL_OK);
    assert_int_equal(seen, 3);
    assert_int_equal(t->n_segments, 3);
    const double want[3][2] = { { 0.10, 0.50 }, { 0.50, 0.80 }, { 0.80, 2.0 } };
    for (int i = 0; i < 3; i++) {
        assert_true(fabs(t->segments[i].start_s - want[i][0]) < 1e-9);
        assert_true(fabs(t->segments[i].end_s - want[i][1]) < 1e-9);
    }
    assert_string_equal(t->segments[0].text, "one two");
    assert_string_equal(t->segments[2].text, "four");
    assert_string_equal(t->text, "one two three four");
    assert_int_equal(t->segments[0].n_tokens, 2);
    assert_int_equal(t->segments[0].tokens[1], 12);
    assert_int_equal(t->segments[1].tokens[0], 13);
    assert_null(t->segments[2].tokens);
    assert_true(t->segments[0].has_stats && !t->segments[1].has_stats);
    char *s = NULL;
    assert_int_equal(pl_transcript_render(t, PL_TRANSCRIPT_FORMAT_SRT, NULL, &s, NULL), PL_OK);
    assert_string_equal(s, "1\n00:00:00,100 --> 00:00:00,500\none two\n\n"
                           "2\n00:00:00,500 --> 00:00:00,800\nthree\n\n"
                           "3\n00:00:00,800 --> 00:00:02,000\nfour\n\n");
    pl_free(ctx, s);
    assert_int_equal(pl_transcript_render(t, PL_TRANSCRIPT_FORMAT_VERBOSE_JSON, "en", &s, NULL), PL_OK);
    assert_non_null(strstr(s, "\"segments\":[{\"id\":0,\"seek\":0,\"start\":0.1,\"end\":0.5,\"text\":\"one two\","
                              "\"tokens\":[11,12],\"temperature\":0.25,\"avg_logprob\":-0.25,"
                              "\"compression_ratio\":1.5,\"no_speech_prob\":0.125},"
                              "{\"id\":1,\"seek\":30,\"start\":0.5,\"end\":0.8,\"text\":\"three\",\"tokens\":[13]},"));
    pl_free(ctx, s);
    pl_transcript_free(t);

    /* jfk cut by the VAD: each utterance's segments offset by where its audio started */
    char buf[512];
    const char *path = shared_audio("jfk.wav", buf, sizeof buf);
    pl_audio *a = NULL;
    if (path) assert_int_equal(pl_audio_load_file(ctx, path, NULL, &a), PL_OK);
    if (a) {
        timed_base = a->samples;
        timed_calls = 0;
        tp = pl_transcribe_default_params();
        tp.max_segment_s = 0; /* every utterance alone */
        assert_int_equal(pl_transcribe(stt, &tp, a->samples, a->n_frames, NULL, NULL, &t), PL_OK);
        assert_true(timed_calls >= 3 && timed_calls < 64);
        assert_int_equal(t->n_segments, 3 * timed_calls);
        double prev = 0.0;
        for (size_t c = 0; c < timed_calls; c++) {
            double c0 = (double)timed_from[c] / 16000.0, c1 = (double)(timed_from[c] + timed_len[c]) / 16000.0;
            const double rel[3][2] = { { 0.10, 0.50 }, { 0.40, 0.80 }, { 0.70, 1e9 } };
            for (int k = 0; k < 3; k++) {
                const pl_transcript_segment *g = &t->segments[3 * c + (size_t)k];
                double wa = fmax(c0 + rel[k][0], prev), wb = fmax(fmin(c0 + rel[k][1], c1), wa);
                if (fabs(g->start_s - wa) > 1e-9 || fabs(g->end_s - wb) > 1e-9)
                    fail_msg("chunk %zu seg %d: [%.4f, %.4f], want [%.4f, %.4f]", c, k, g->start_s, g->end_s, wa, wb);
                assert_true(fabs(g->seek_s - (c0 + (k ? 0.30 : 0.0))) < 1e-9);
                prev = wb;
            }
        }
        print_message("  jfk: %zu utterances, first at %.2f s, last ends %.2f s\n", timed_calls,
                      t->segments[0].start_s, t->segments[t->n_segments - 1].end_s);
        pl_transcript_free(t);
        pl_audio_free(a);
    }
    free(z);
    pl_stt_free(stt);
}

/* Every allocation of decoding, the VAD and rendering, made to fail in turn:
 * PL_ERR_NOMEM (never a crash) and nothing leaked. */
static void test_alloc_failures(void **state) {
    (void)state;
    size_t n;
    char *wav = make_wav(4800, 48000, 2, &n);
    pl_transcript_segment seg = { .start_s = 0, .end_s = 1, .text = "x" };
    int ok_at[3] = { 0, 0, 0 };
    for (int which = 0; which < 3; which++) {
        for (int64_t k = 1; k < 100 && !ok_at[which]; k++) {
            pl_alloc_tracker tr;
            pl_alloc_tracker_reset(&tr);
            pl_ctx_params cp = pl_ctx_default_params();
            cp.alloc = pl_track_alloc;
            cp.alloc_ud = &tr;
            cp.log_level = PL_LOG_LEVEL_NONE;
            pl_ctx *c = NULL;
            assert_int_equal(pl_ctx_init(&c, &cp), PL_OK);
            tr.fail_at = tr.n_calls + k; /* count from after the ctx's own */
            int64_t base = tr.in_use;
            pl_status st;
            if (which == 0) {
                pl_audio *a = NULL;
                st = pl_audio_load_memory(c, wav, n, NULL, &a);
                if (st == PL_OK) assert_int_equal(a->n_frames, 1600);
                pl_audio_free(a);
            } else if (which == 1) {
                pl_vad *v = NULL;
                st = pl_vad_init(c, NULL, &v);
                pl_vad_free(v);
            } else {
                pl_transcript t = { .segments = &seg, .n_segments = 1, .text = "x", .ctx = c };
                char *out = NULL;
                st = pl_transcript_render(&t, PL_TRANSCRIPT_FORMAT_SRT, NULL, &out, NULL);
                pl_free(c, out);
            }
            if (st == PL_OK) ok_at[which] = (int)k;
            else assert_int_equal(st, PL_ERR_NOMEM);
            assert_int_equal(tr.in_use, base);
            pl_ctx_free(c);
        }
        assert_true(ok_at[which] > 1); /* at least one allocation was made to fail */
    }
    free(wav);
}

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pl_speech_XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_level = PL_LOG_LEVEL_NONE;
    return pl_ctx_init(&ctx, &cp) == PL_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    pl_ctx_free(ctx);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_jfk),
        cmocka_unit_test(test_resample_sine),
        cmocka_unit_test(test_resampler_streaming),
        cmocka_unit_test(test_load_formats),
        cmocka_unit_test(test_load_raw),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_float_cleaning),
        cmocka_unit_test(test_wav_header),
        cmocka_unit_test(test_writer_roundtrip),
        cmocka_unit_test(test_vad_jfk),
        cmocka_unit_test(test_vad_rejects_noise),
        cmocka_unit_test(test_vad_forced),
        cmocka_unit_test(test_vad_params),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_word_distance),
        cmocka_unit_test(test_transcript_render),
        cmocka_unit_test(test_transcript_place),
        cmocka_unit_test(test_transcript_stt_segments),
    };
    int failed = cmocka_run_group_tests_name("speech", tests, setup, teardown);
    if (failed) return 1;
    char buf[512];
    return shared_audio("jfk.wav", buf, sizeof buf) ? 0 : 77;
}
