/*
 * test_whisper.c - native Whisper: FFT and log-mel against direct O(n^2)
 * references, the loader on fixture files (written by `parley fixture --whisper`
 * at test time) and on malformed copies of them, the tokenizer, and the engine's
 * encoder output and greedy tokens against the naive f32 reference (ref_whisper.c).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parley/stt.h"
#include "parley/whisper.h"
#include "whisper/ref_whisper.h"
#include "whisper/whisper_int.h"

static pl_ctx *ctx;
static uint8_t *en_bytes, *ml_bytes;
static size_t en_size, ml_size;
static char en_path[1024], ml_path[1024];

static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n);
    if (fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return p;
}

static int setup(void **state) {
    (void)state;
    if (pl_ctx_init(&ctx, NULL) != PL_OK) return -1;
    pl_ctx_set_log_level(ctx, PL_LOG_LEVEL_NONE);
    const char *dir = getenv("PL_FIXTURE_DIR");
    if (!dir) return -1;
    snprintf(en_path, sizeof en_path, "%s/whisper-tiny-en-f16.bin", dir);
    snprintf(ml_path, sizeof ml_path, "%s/whisper-tiny-f16.bin", dir);
    en_bytes = read_all(en_path, &en_size);
    ml_bytes = read_all(ml_path, &ml_size);
    return en_bytes && ml_bytes ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    free(en_bytes);
    free(ml_bytes);
    pl_ctx_free(ctx);
    return 0;
}

static uint64_t rs = 12345;
static double urand(void) {
    rs = rs * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rs >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* ---- FFT and mel ---- */

static void test_fft_vs_dft(void **state) {
    (void)state;
    const int sizes[] = { 1, 2, 3, 4, 5, 8, 12, 16, 25, 30, 49, 80, 400 };
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        int n = sizes[si];
        wh_fft f;
        assert_int_equal(wh_fft_init(ctx, n, &f), PL_OK);
        double *in = malloc(2 * (size_t)n * sizeof(double)), *out = malloc(2 * (size_t)n * sizeof(double));
        for (int i = 0; i < 2 * n; i++) in[i] = urand();
        wh_fft_run(&f, in, out);
        for (int k = 0; k < n; k++) {
            double re = 0, im = 0;
            for (int j = 0; j < n; j++) {
                double a = -2.0 * M_PI * (double)j * k / n;
                re += in[2 * j] * cos(a) - in[2 * j + 1] * sin(a);
                im += in[2 * j] * sin(a) + in[2 * j + 1] * cos(a);
            }
            assert_true(fabs(out[2 * k] - re) < 1e-9 * n);
            assert_true(fabs(out[2 * k + 1] - im) < 1e-9 * n);
        }
        free(in);
        free(out);
        wh_fft_free(ctx, &f);
    }
    wh_fft f;
    assert_int_equal(wh_fft_init(ctx, 11 * 13, &f), PL_ERR_UNSUPPORTED); /* primes above 7 */
}

/* Whisper's definition written out directly: reflect-padded frames, periodic
 * Hann, O(n^2) DFT, power, filters, log10, clamp, scale. */
static void ref_mel(const float *filt, int NM, const float *pcm, size_t n, size_t pad, size_t nf, float *out) {
    const size_t L = n + pad;
    double mx = -1e300;
    double *pw = malloc(201 * sizeof(double));
    for (size_t t = 0; t < nf; t++) {
        for (int k = 0; k < 201; k++) {
            double re = 0, im = 0;
            for (int j = 0; j < 400; j++) {
                long long idx = (long long)(t * 160) + j - 200;
                if (idx < 0) idx = -idx;                            /* reflect at the start */
                if (idx >= (long long)L) idx = 2 * ((long long)L - 1) - idx; /* and at the end */
                double x = (size_t)idx < n ? pcm[idx] : 0.0;
                x *= 0.5 - 0.5 * cos(2.0 * M_PI * j / 400.0);
                re += x * cos(2.0 * M_PI * j * k / 400.0);
                im -= x * sin(2.0 * M_PI * j * k / 400.0);
            }
            pw[k] = re * re + im * im;
        }
        for (int b = 0; b < NM; b++) {
            double s = 0;
            for (int k = 0; k < 201; k++) s += filt[b * 201 + k] * pw[k];
            double v = log10(s < 1e-10 ? 1e-10 : s);
            out[b * nf + t] = (float)v;
            if (v > mx) mx = v;
        }
    }
    for (size_t i = 0; i < (size_t)NM * nf; i++) {
        double v = out[i] < mx - 8 ? mx - 8 : out[i];
        out[i] = (float)((v + 4) / 4);
    }
    free(pw);
}

static void test_mel_vs_direct(void **state) {
    (void)state;
    pl_whisper_model *m;
    assert_int_equal(pl_whisper_model_load_mem(ctx, en_bytes, en_size, &m), PL_OK);
    const int NM = pl_whisper_model_hparams(m)->n_mels;
    const size_t n = 16000 * 3 / 4, pad = 4000, nf = (n + pad) / 160; /* 0.75 s speech + 0.25 s zeros */
    float *pcm = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        pcm[i] = (float)(0.3 * sin(2 * M_PI * (200.0 + i * 0.2) * i / 16000.0) + 0.05 * urand());
    float *a = malloc((size_t)NM * nf * sizeof(float)), *b = malloc((size_t)NM * nf * sizeof(float));
    assert_int_equal(pl_whisper_mel_frames(n + pad), nf);
    assert_int_equal(pl_whisper_log_mel(ctx, m->filters, NM, pcm, n, pad, nf, a), PL_OK);
    ref_mel(m->filters, NM, pcm, n, pad, nf, b);
    double worst = 0;
    for (size_t i = 0; i < (size_t)NM * nf; i++) worst = fmax(worst, fabs((double)a[i] - b[i]));
    assert_true(worst < 1e-4);
    /* frames past the available audio are refused */
    assert_int_equal(pl_whisper_log_mel(ctx, m->filters, NM, pcm, n, pad, nf + 1, a), PL_ERR_RANGE);
    free(pcm);
    free(a);
    free(b);
    pl_whisper_model_free(m);
}

/* ---- loader ---- */

static void test_load_specials(void **state) {
    (void)state;
    pl_whisper_model *m = NULL;
    assert_int_equal(pl_whisper_model_load(ctx, en_path, &m), PL_OK);
    const pl_whisper_hparams *h = pl_whisper_model_hparams(m);
    assert_int_equal(h->n_vocab, 51864);
    assert_int_equal(h->n_audio_ctx, 1500);
    assert_int_equal(h->n_audio_state, 384);
    assert_int_equal(h->n_audio_head, 6);
    assert_int_equal(h->n_audio_layer, 4);
    assert_int_equal(h->n_text_ctx, 448);
    assert_int_equal(h->n_mels, 80);
    assert_int_equal(h->ftype, 1);
    const pl_whisper_specials *s = pl_whisper_model_specials(m);
    /* English-only ids (whisper.cpp's layout) */
    assert_false(s->multilingual);
    assert_int_equal(s->eot, 50256);
    assert_int_equal(s->sot, 50257);
    assert_int_equal(s->translate, 50357);
    assert_int_equal(s->transcribe, 50358);
    assert_int_equal(s->solm, 50359);
    assert_int_equal(s->prev, 50360);
    assert_int_equal(s->nosp, 50361);
    assert_int_equal(s->not_ts, 50362);
    assert_int_equal(s->ts_begin, 50363);
    assert_int_equal(s->n_languages, 99);
    size_t len;
    const char *t = pl_whisper_token_text(m, 50363 + 150, &len);
    assert_int_equal(len, strlen("<|3.00|>"));
    assert_memory_equal(t, "<|3.00|>", len);
    t = pl_whisper_token_text(m, 50258, &len);
    assert_memory_equal(t, "<|en|>", len);
    t = pl_whisper_token_text(m, 65, &len);
    assert_int_equal(len, 1);
    assert_int_equal(t[0], 'A');
    assert_null(pl_whisper_token_text(m, 51864, &len));
    assert_string_equal(pl_whisper_model_type_name(m), "f16");
    pl_whisper_model_free(m);

    assert_int_equal(pl_whisper_model_load_mem(ctx, ml_bytes, ml_size, &m), PL_OK);
    s = pl_whisper_model_specials(m);
    assert_true(s->multilingual);
    assert_int_equal(s->eot, 50257);
    assert_int_equal(s->sot, 50258);
    assert_int_equal(s->n_languages, 99);
    assert_int_equal(s->translate, 50358);
    assert_int_equal(s->transcribe, 50359);
    assert_int_equal(s->prev, 50361);
    assert_int_equal(s->nosp, 50362);
    assert_int_equal(s->not_ts, 50363);
    assert_int_equal(s->ts_begin, 50364);
    t = pl_whisper_token_text(m, 50258 + 1 + 2, &len); /* the third language */
    assert_memory_equal(t, "<|de|>", len);
    t = pl_whisper_token_text(m, 50257, &len);
    assert_memory_equal(t, "<|endoftext|>", len);
    pl_whisper_model_free(m);
    assert_string_equal(pl_whisper_lang_code(0), "en");
    assert_int_equal(pl_whisper_lang_index("ja"), 7);
    assert_int_equal(pl_whisper_lang_index("xx"), -1);
}

static void put32(uint8_t *p, int32_t v) { memcpy(p, &v, 4); }

/* load a mutated copy: expect st and (when given) a phrase in the message */
static void expect_bad(const uint8_t *p, size_t n, pl_status st, const char *phrase) {
    pl_whisper_model *m = (pl_whisper_model *)1;
    pl_status got = pl_whisper_model_load_mem(ctx, p, n, &m);
    if (got != st || (phrase && !strstr(pl_ctx_last_error(ctx), phrase)))
        fprintf(stderr, "expected %s '%s', got %s: %s\n", pl_status_name(st), phrase ? phrase : "",
                pl_status_name(got), pl_ctx_last_error(ctx));
    assert_int_equal(got, st);
    assert_null(m);
    if (phrase) assert_non_null(strstr(pl_ctx_last_error(ctx), phrase));
}

static void test_load_malformed(void **state) {
    (void)state;
    ref_file f;
    assert_int_equal(ref_file_walk(en_bytes, en_size, &f), 0);
    uint8_t *c = malloc(en_size + 64);
    const ref_tensor *t0 = &f.t[0], *tl = &f.t[f.n_t - 1];
#define RESET() memcpy(c, en_bytes, en_size)
    /* truncations: every region */
    const size_t cuts[] = { 0, 3, 4, 20, 47, 48, 52, f.filt_off + 100, f.vocab_off + 2, f.vocab_off + 4000,
                            f.tensors_off + 5, t0->data_off - 1, t0->data_off + 7, tl->hdr_off + 13, en_size - 1 };
    RESET();
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) expect_bad(c, cuts[i], PL_ERR_FORMAT, cuts[i] ? "truncated" : NULL);
    /* exactly at a tensor boundary: the last tensor is missing */
    expect_bad(c, tl->hdr_off, PL_ERR_FORMAT, "missing tensor");
    /* magic */
    RESET();
    put32(c, 0x46554747);
    expect_bad(c, en_size, PL_ERR_FORMAT, "bad magic");
    /* hparams out of range or inconsistent */
    struct { int idx; int32_t v; const char *phrase; } hp[] = {
        { 0, 50000, "n_vocab" }, { 0, 60000, "n_vocab" }, { 1, 0, "n_audio_ctx" }, { 1, -5, "n_audio_ctx" },
        { 3, 5, "multiple of heads" }, { 4, 0, "n_audio_layer" }, { 4, 65, "n_audio_layer" },
        { 6, 768, "n_text_state" }, { 9, 0, "n_mels" }, { 9, 128, "n_mel 80" }, { 10, 55, "ftype" },
        { 10, -1, "ftype" }, { 2, 0x7fffffff, "n_audio_state" },
    };
    for (size_t i = 0; i < sizeof hp / sizeof hp[0]; i++) {
        RESET();
        put32(c + 4 + 4 * hp[i].idx, hp[i].v);
        expect_bad(c, en_size, PL_ERR_FORMAT, hp[i].phrase);
    }
    /* more layers than the file has: a missing tensor */
    RESET();
    put32(c + 4 + 4 * 4, 5);
    expect_bad(c, en_size, PL_ERR_FORMAT, "missing tensor 'encoder.blocks.4");
    /* mel filters */
    RESET();
    put32(c + f.filt_off + 4, 200);
    expect_bad(c, en_size, PL_ERR_FORMAT, "n_fft 200");
    RESET();
    float nan = NAN;
    memcpy(c + f.filt_off + 8 + 4 * 17, &nan, 4);
    expect_bad(c, en_size, PL_ERR_FORMAT, "not finite");
    /* vocabulary */
    int32_t bad_counts[] = { -1, 0, 255, 50258, 0x7fffffff };
    for (size_t i = 0; i < sizeof bad_counts / sizeof bad_counts[0]; i++) {
        RESET();
        put32(c + f.vocab_off, bad_counts[i]);
        expect_bad(c, en_size, PL_ERR_FORMAT, "vocab count");
    }
    RESET();
    put32(c + f.vocab_off + 4, -3);
    expect_bad(c, en_size, PL_ERR_FORMAT, "vocab token 0 length");
    RESET();
    put32(c + f.vocab_off + 4, 1 << 30);
    expect_bad(c, en_size, PL_ERR_FORMAT, "vocab token 0 length");
    /* tensor headers */
    struct { size_t off; int32_t v; pl_status st; const char *phrase; } th[] = {
        { 0, 0, PL_ERR_FORMAT, "n_dims 0" }, { 0, 4, PL_ERR_FORMAT, "n_dims 4" }, { 0, -1, PL_ERR_FORMAT, "n_dims" },
        { 4, 0, PL_ERR_FORMAT, "name length 0" }, { 4, 1 << 20, PL_ERR_FORMAT, "name length" },
        { 4, -7, PL_ERR_FORMAT, "name length" },
        { 8, 4, PL_ERR_UNSUPPORTED, "type 4" }, { 8, 99, PL_ERR_UNSUPPORTED, "type 99" },
        { 8, 16, PL_ERR_UNSUPPORTED, "not supported" }, { 8, -2, PL_ERR_UNSUPPORTED, "type -2" },
        { 12, 0, PL_ERR_FORMAT, "dim 0 = 0" }, { 12, -384, PL_ERR_FORMAT, "dim 0" },
        { 16, 0x7fffffff, PL_ERR_FORMAT, "truncated" },
    };
    for (size_t i = 0; i < sizeof th / sizeof th[0]; i++) {
        RESET();
        put32(c + t0->hdr_off + th[i].off, th[i].v);
        expect_bad(c, en_size, th[i].st, th[i].phrase);
    }
    /* a matrix whose rows don't fit a block type: q8_0 needs ne0 % 32 == 0 (conv kernel ne0 = 3) */
    const ref_tensor *conv = NULL, *mat = NULL;
    for (size_t i = 0; i < f.n_t; i++) {
        if (!strcmp(f.t[i].name, "encoder.conv1.weight")) conv = &f.t[i];
        if (!strcmp(f.t[i].name, "encoder.blocks.0.attn.query.weight")) mat = &f.t[i];
    }
    assert_non_null(conv);
    assert_non_null(mat);
    RESET();
    put32(c + conv->hdr_off + 8, 8);
    expect_bad(c, en_size, PL_ERR_FORMAT, "block");
    /* wrong shape (swap a matrix's dims: same size, other shape) */
    RESET();
    put32(c + mat->hdr_off + 12, 96);
    put32(c + mat->hdr_off + 16, 1536);
    expect_bad(c, en_size, PL_ERR_FORMAT, "expected 384x384");
    /* dims whose product overflows */
    RESET();
    put32(c + mat->hdr_off + 12, 0x40000000);
    put32(c + mat->hdr_off + 16, 0x40000000);
    expect_bad(c, en_size, PL_ERR_FORMAT, NULL);
    /* unknown and duplicated names */
    RESET();
    c[t0->data_off - 1] ^= 0x20;
    expect_bad(c, en_size, PL_ERR_FORMAT, "not a tensor of this model");
    RESET();
    memcpy(c + en_size, en_bytes + t0->hdr_off, 40); /* a second copy of tensor 0 cut inside its name */
    expect_bad(c, en_size + 40, PL_ERR_FORMAT, "truncated");
    uint8_t *dup = malloc(en_size + t0->data_off + t0->data_bytes - t0->hdr_off);
    memcpy(dup, en_bytes, en_size);
    memcpy(dup + en_size, en_bytes + t0->hdr_off, t0->data_off + t0->data_bytes - t0->hdr_off);
    expect_bad(dup, en_size + t0->data_off + t0->data_bytes - t0->hdr_off, PL_ERR_FORMAT, "duplicate");
    free(dup);
    /* not a file */
    pl_whisper_model *m;
    assert_int_equal(pl_whisper_model_load(ctx, "/nonexistent/x.bin", &m), PL_ERR_IO);
    assert_int_equal(pl_whisper_model_load_mem(ctx, NULL, 0, &m), PL_ERR_FORMAT);
#undef RESET
    free(c);
    ref_file_free(&f);
}

/* ---- tokenizer ---- */

static void test_tokenize(void **state) {
    (void)state;
    pl_whisper_model *m;
    assert_int_equal(pl_whisper_model_load_mem(ctx, en_bytes, en_size, &m), PL_OK);
    /* text built from vocabulary pieces merges below one token per byte, and decodes back */
    char text[256] = "";
    size_t len;
    const char *a = pl_whisper_token_text(m, 3000, &len);
    strncat(text, a, len);
    a = pl_whisper_token_text(m, 40000, &len);
    strncat(text, a, len);
    strcat(text, " Hello, world! 123 \xc3\xa9t\xc3\xa9");
    int32_t ids[256];
    size_t n;
    assert_int_equal(pl_whisper_tokenize(m, text, ids, 256, &n), PL_OK);
    assert_true(n < strlen(text));
    char back[512] = "";
    for (size_t i = 0; i < n; i++) {
        assert_true(ids[i] >= 0 && ids[i] < 50256);
        a = pl_whisper_token_text(m, ids[i], &len);
        strncat(back, a, len);
    }
    assert_string_equal(back, text);
    /* too small an output: the count needed */
    size_t need;
    assert_int_equal(pl_whisper_tokenize(m, text, ids, 2, &need), PL_ERR_RANGE);
    assert_int_equal(need, n);
    pl_whisper_model_free(m);
}

static void test_compression_ratio(void **state) {
    (void)state;
    char rep[2000] = "";
    for (int i = 0; i < 100; i++) strcat(rep, "the same again ");
    assert_true(pl_whisper_compression_ratio(rep, strlen(rep)) > 2.4f);
    const char *plain = "And so my fellow Americans, ask not what your country can do for you.";
    assert_true(pl_whisper_compression_ratio(plain, strlen(plain)) < 2.4f);
    assert_true(pl_whisper_compression_ratio("", 0) == 0.0f);
}

/* ---- engine vs reference ---- */

#define TEST_T 48 /* audio ctx of the comparisons: 0.96 s (the reference is O(n^3)) */

static float *test_audio(size_t n) {
    float *pcm = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        pcm[i] = (float)(0.2 * sin(2 * M_PI * 300.0 * i / 16000.0) * sin(2 * M_PI * 3.0 * i / 16000.0) + 0.02 * urand());
    return pcm;
}

static void test_encoder_vs_ref(void **state) {
    (void)state;
    pl_whisper_model *m;
    assert_int_equal(pl_whisper_model_load_mem(ctx, en_bytes, en_size, &m), PL_OK);
    pl_whisper_state *s;
    assert_int_equal(pl_whisper_state_init(m, 2, TEST_T, &s), PL_OK);
    size_t n = 16000;
    float *pcm = test_audio(n);
    assert_int_equal(pl_whisper_set_audio(s, pcm, n), PL_OK);
    assert_null(pl_whisper_encoder_output(s, NULL));
    assert_int_equal(pl_whisper_encode(s), PL_OK);
    int T = 0;
    const float *enc = pl_whisper_encoder_output(s, &T);
    assert_int_equal(T, TEST_T);
    ref_file f;
    assert_int_equal(ref_file_walk(en_bytes, en_size, &f), 0);
    ref_model *rm = ref_model_load(&f);
    const int E = 384;
    float *want = malloc((size_t)T * E * sizeof(float));
    ref_encode(rm, s->mel, T, want);
    double worst = 0, sum = 0, mag = 0;
    for (size_t i = 0; i < (size_t)T * E; i++) {
        double d = fabs((double)enc[i] - want[i]);
        worst = fmax(worst, d);
        sum += d;
        mag = fmax(mag, fabs(want[i]));
    }
    /* f16 weights with activations rounded to f16 in the engine's matmuls */
    fprintf(stderr, "encoder vs reference: max |d| %.2e, mean %.2e (max |x| %.2f)\n", worst, sum / (T * E), mag);
    assert_true(mag > 0.5);
    assert_true(worst < 5e-3 * mag);
    assert_true(sum / (T * E) < 1e-3);

    /* greedy tokens: the engine (KV cache, batch prompt) vs the reference (recomputed) */
    const pl_whisper_specials *sp = pl_whisper_model_specials(m);
    pl_whisper_params p = pl_whisper_default_params();
    p.greedy_raw = true;
    p.timestamps = false;
    p.max_tokens = 10;
    p.n_threads = 2;
    const pl_whisper_result *r;
    assert_int_equal(pl_whisper_full(s, &p, pcm, n, &r), PL_OK);
    int32_t seq[32] = { sp->sot, sp->not_ts };
    int ns = 2;
    float *logits = malloc((size_t)sp->ts_begin * 2 * sizeof(float));
    size_t got = 0;
    for (int i = 0; i < 10; i++) {
        ref_decode(rm, want, T, seq, ns, logits);
        int32_t best = 0;
        for (int32_t v = 1; v < 51864; v++)
            if (logits[v] > logits[best]) best = v;
        if (best == sp->eot) break;
        assert_true(got < r->n_tokens);
        assert_int_equal(r->tokens[got], best);
        got++;
        seq[ns++] = best;
    }
    assert_int_equal(got, r->n_tokens);
    assert_true(got > 0);
    free(logits);
    free(want);
    free(pcm);
    ref_model_free(rm);
    ref_file_free(&f);
    pl_whisper_state_free(s);
    pl_whisper_model_free(m);
}

/* multilingual: language detection agrees with the reference's argmax over language tokens */
static void test_language_vs_ref(void **state) {
    (void)state;
    pl_whisper_model *m;
    assert_int_equal(pl_whisper_model_load_mem(ctx, ml_bytes, ml_size, &m), PL_OK);
    pl_whisper_state *s;
    assert_int_equal(pl_whisper_state_init(m, 2, TEST_T, &s), PL_OK);
    size_t n = 12000;
    float *pcm = test_audio(n);
    pl_whisper_params p = pl_whisper_default_params();
    p.max_tokens = 3;
    p.temperature_inc = 0;
    const pl_whisper_result *r;
    assert_int_equal(pl_whisper_full(s, &p, pcm, n, &r), PL_OK);
    const pl_whisper_specials *sp = pl_whisper_model_specials(m);
    ref_file f;
    assert_int_equal(ref_file_walk(ml_bytes, ml_size, &f), 0);
    ref_model *rm = ref_model_load(&f);
    float *enc = malloc((size_t)TEST_T * 384 * sizeof(float)), *logits = malloc(51865 * sizeof(float));
    ref_encode(rm, s->mel, TEST_T, enc);
    int32_t sot = sp->sot;
    ref_decode(rm, enc, TEST_T, &sot, 1, logits);
    int best = 0;
    for (int i = 1; i < sp->n_languages; i++)
        if (logits[sp->sot + 1 + i] > logits[sp->sot + 1 + best]) best = i;
    assert_string_equal(r->language, pl_whisper_lang_code(best));
    /* a given language and translate are accepted; an unknown one is not */
    p.language = "de";
    p.translate = true;
    assert_int_equal(pl_whisper_full(s, &p, pcm, n, &r), PL_OK);
    assert_string_equal(r->language, "de");
    p.language = "xx";
    assert_int_equal(pl_whisper_full(s, &p, pcm, n, &r), PL_ERR_UNSUPPORTED);
    free(enc);
    free(logits);
    free(pcm);
    ref_model_free(rm);
    ref_file_free(&f);
    pl_whisper_state_free(s);
    pl_whisper_model_free(m);
}

/* Whisper's timestamp rules hold on whatever random weights sample */
static void test_timestamp_rules(void **state) {
    (void)state;
    pl_whisper_model *m;
    assert_int_equal(pl_whisper_model_load_mem(ctx, en_bytes, en_size, &m), PL_OK);
    pl_whisper_state *s;
    assert_int_equal(pl_whisper_state_init(m, 2, TEST_T, &s), PL_OK);
    const pl_whisper_specials *sp = pl_whisper_model_specials(m);
    size_t n = 16000 * 3 / 2; /* two windows of 0.96 s */
    float *pcm = test_audio(n);
    for (int run = 0; run < 3; run++) {
        pl_whisper_params p = pl_whisper_default_params();
        p.max_tokens = 24;
        p.seed = (uint64_t)run + 1;
        p.suppress_non_speech = run == 1;
        p.initial_prompt = run == 2 ? "Hello there." : NULL;
        p.temperature_inc = run == 0 ? 0.0f : 0.5f;
        const pl_whisper_result *r;
        assert_int_equal(pl_whisper_full(s, &p, pcm, n, &r), PL_OK);
        assert_true(r->t.n_windows >= 2);
        assert_true(r->n_tokens > 0);
        /* per window: starts with a timestamp <= 1.0 s; no specials; timestamps never decrease */
        int32_t last_ts = -1;
        bool at_start = true;
        for (size_t i = 0; i < r->n_tokens; i++) {
            int32_t t = r->tokens[i];
            assert_true(t < sp->eot || t >= sp->ts_begin);
            if (at_start) {
                assert_true(t >= sp->ts_begin && t <= sp->ts_begin + 50);
                at_start = false;
                last_ts = t;
                continue;
            }
            if (t >= sp->ts_begin) {
                if (t < last_ts) { /* a new window starts */
                    assert_true(t <= sp->ts_begin + 50);
                }
                assert_true(t <= sp->ts_begin + TEST_T);
                last_ts = t;
            }
        }
        for (size_t i = 0; i < r->n_segments; i++) {
            const pl_whisper_segment *g = &r->segments[i];
            assert_true(g->start_s <= g->end_s);
            assert_true(g->end_s <= (double)n / 16000 + 1.0);
            assert_true(strlen(g->text) > 0);
            for (size_t k = 0; k < g->n_tokens; k++) assert_true(g->tokens[k] < sp->eot);
        }
    }
    free(pcm);
    pl_whisper_state_free(s);
    pl_whisper_model_free(m);
}

/* q8_0 weights (activations quantized to q8_0 per 32): encoder within a looser tolerance */
static void test_encoder_q8_0(void **state) {
    (void)state;
    char path[1100];
    snprintf(path, sizeof path, "%s/whisper-tiny-en-q8_0-small.bin", getenv("PL_FIXTURE_DIR"));
    size_t size;
    uint8_t *bytes = read_all(path, &size);
    assert_non_null(bytes);
    pl_whisper_model *m;
    assert_int_equal(pl_whisper_model_load_mem(ctx, bytes, size, &m), PL_OK);
    assert_string_equal(pl_whisper_model_type_name(m), "q8_0");
    assert_int_equal(pl_whisper_model_hparams(m)->n_audio_ctx, 64);
    assert_int_equal(pl_whisper_model_hparams(m)->ftype, 7);
    pl_whisper_state *s;
    assert_int_equal(pl_whisper_state_init(m, 2, 0, &s), PL_OK);
    assert_int_equal(pl_whisper_state_init(m, 2, 65, &(pl_whisper_state *){ NULL }), PL_ERR_RANGE);
    float *pcm = test_audio(16000);
    assert_int_equal(pl_whisper_set_audio(s, pcm, 16000), PL_OK);
    assert_int_equal(pl_whisper_encode(s), PL_OK);
    int T;
    const float *enc = pl_whisper_encoder_output(s, &T);
    assert_int_equal(T, 64);
    ref_file f;
    assert_int_equal(ref_file_walk(bytes, size, &f), 0);
    ref_model *rm = ref_model_load(&f);
    float *want = malloc((size_t)T * 384 * sizeof(float));
    ref_encode(rm, s->mel, T, want);
    double worst = 0, sum = 0, mag = 0;
    for (size_t i = 0; i < (size_t)T * 384; i++) {
        worst = fmax(worst, fabs((double)enc[i] - want[i]));
        sum += fabs((double)enc[i] - want[i]);
        mag = fmax(mag, fabs(want[i]));
    }
    fprintf(stderr, "q8_0 encoder vs reference: max |d| %.2e, mean %.2e (max |x| %.2f)\n", worst, sum / (T * 384), mag);
    assert_true(worst < 3e-2 * mag);
    assert_true(sum / (T * 384) < 1e-2);
    /* the decoder context is 16: decoding past it is refused */
    const float *logits;
    int32_t toks[17] = { 0 };
    assert_int_equal(pl_whisper_decode(s, toks, 17, 0, &logits), PL_ERR_CONTEXT_FULL);
    toks[0] = 51864;
    assert_int_equal(pl_whisper_decode(s, toks, 1, 0, &logits), PL_ERR_RANGE);
    free(want);
    free(pcm);
    free(bytes);
    ref_model_free(rm);
    ref_file_free(&f);
    pl_whisper_state_free(s);
    pl_whisper_model_free(m);
}

/* SRT cues: numbered from 1, each start <= end, no earlier than the previous
 * cue's end, inside [0, dur]; returns the count */
static int check_srt(const char *out, double dur) {
    int n = 0;
    double prev = 0.0;
    const char *p = out;
    while (*p) {
        int id, h0, m0, s0, ms0, h1, m1, s1, ms1, used = 0;
        if (sscanf(p, "%d\n%d:%d:%d,%d --> %d:%d:%d,%d\n%n", &id, &h0, &m0, &s0, &ms0, &h1, &m1, &s1, &ms1, &used) != 9 ||
            used == 0)
            fail_msg("not an SRT cue at: %.60s", p);
        assert_int_equal(id, ++n);
        double a = h0 * 3600 + m0 * 60 + s0 + ms0 / 1000.0, b = h1 * 3600 + m1 * 60 + s1 + ms1 / 1000.0;
        if (!(a <= b && a >= prev - 1e-9 && b <= dur + 1e-9))
            fail_msg("cue %d: %.3f --> %.3f (previous end %.3f, audio %.3f s)", id, a, b, prev, dur);
        prev = b;
        p += used;
        const char *end = strstr(p, "\n\n");
        assert_non_null(end);
        assert_true(end > p); /* text */
        p = end + 2;
    }
    return n;
}

/* `parley transcribe --stt whisper` on 1.5 s of headerless audio in every segment format
 * (random weights: the text is noise, the shapes of the outputs are checked); SRT
 * with Whisper's own segments (two windows of 1.28 s), whole and cut by the VAD */
static void test_cli_transcribe(void **state) {
    (void)state;
    const char *bin = getenv("PL_BIN"), *dir = getenv("PL_FIXTURE_DIR");
    char raw[1100], cmd[4096], out[65536];
    snprintf(raw, sizeof raw, "%s/whisper-cli-test.s16", dir);
    float *pcm = test_audio(24000);
    FILE *f = fopen(raw, "wb");
    assert_non_null(f);
    for (int i = 0; i < 24000; i++) {
        int16_t v = (int16_t)(pcm[i] * 32767.0f);
        fwrite(&v, 2, 1, f);
    }
    fclose(f);
    free(pcm);
    const struct { const char *fmt, *want, *opt; } cases[] = {
        { "verbose_json", "\"segments\":[{\"id\":0,\"seek\":0,", "--no-vad" },
        { "verbose_json", "\"avg_logprob\":", "--no-vad" },
        { "srt", " --> ", "--no-vad" }, { "srt", " --> ", "" },
        { "vtt", "WEBVTT", "--no-vad" }, { "json", "{\"text\":", "--no-vad" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s transcribe --stt whisper --stt-model %s/whisper-tiny-en-q8_0-small.bin "
                 "--threads 2 %s --raw 16000 --format %s %s", bin, dir, cases[i].opt, cases[i].fmt, raw);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = '\0';
        assert_int_equal(pclose(p), 0);
        if (!strstr(out, cases[i].want)) fprintf(stderr, "%s: %s\n", cases[i].fmt, out);
        assert_non_null(strstr(out, cases[i].want));
        if (strcmp(cases[i].fmt, "srt") == 0) {
            int cues = check_srt(out, 1.5);
            print_message("  srt %s: %d cue(s)\n", cases[i].opt[0] ? cases[i].opt : "(vad)", cues);
            assert_true(cues >= 1);
        }
    }
    /* a model that is neither a file nor in the store is refused with a message */
    snprintf(cmd, sizeof cmd, "PARLEY_HOME=%s %s transcribe --stt whisper --stt-model whisper-nosuch --raw 16000 %s 2>&1",
             dir, bin, raw);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    assert_int_not_equal(pclose(p), 0);
    assert_non_null(strstr(out, "whisper"));
    remove(raw);
}

/* the STT row: create with a fixture path, transcribe, errors */
static void test_stt_backend(void **state) {
    (void)state;
    setenv("PARLEY_WHISPER_AUDIO_CTX", "32", 1);
    setenv("PARLEY_WHISPER_THREADS", "2", 1);
    char small[1100];
    snprintf(small, sizeof small, "%s/whisper-tiny-en-q8_0-small.bin", getenv("PL_FIXTURE_DIR"));
    pl_stt_params p = pl_stt_default_params();
    p.backend = "whisper";
    p.model = small; /* text ctx 16: random weights can't decode for long */
    pl_stt *stt = NULL;
    assert_int_equal(pl_stt_init(ctx, &p, &stt), PL_OK);
    float *pcm = test_audio(8000);
    pl_stt_result r;
    assert_int_equal(pl_stt_transcribe(stt, pcm, 8000, &r), PL_OK);
    assert_non_null(r.text);
    assert_true(r.audio_s > 0.49 && r.audio_s < 0.51);
    assert_int_equal(pl_stt_finalize(stt, &r), PL_OK); /* no audio: "" */
    assert_string_equal(r.text, "");
    pl_stt_free(stt);
    p.language = "fr";
    assert_int_equal(pl_stt_init(ctx, &p, &stt), PL_ERR_UNSUPPORTED);
    free(pcm);
    unsetenv("PARLEY_WHISPER_AUDIO_CTX");
    unsetenv("PARLEY_WHISPER_THREADS");
}

/* ---- partial transcripts through the STT front ---- */

/* single spaces (newlines, tabs too), trimmed */
static void squeeze(char *s) {
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i] == '\n' || s[i] == '\t' ? ' ' : s[i];
        if (c == ' ' && (o == 0 || s[o - 1] == ' ')) continue;
        s[o++] = c;
    }
    while (o && s[o - 1] == ' ') o--;
    s[o] = '\0';
}

/* What a partial over pcm[0, n) must say, from the naive model: the direct
 * mel, encoder context ceil(n / 320), prompt <|startoftranscript|>
 * <|notimestamps|>, greedy with Whisper's rules for that prompt (specials and
 * timestamps suppressed; eot and " " not first), at most 8 + 6 tokens per
 * whole second. */
static void ref_partial(const ref_model *rm, const pl_whisper_model *m, const float *pcm, size_t n, char *text,
                        size_t cap) {
    const pl_whisper_specials *sp = pl_whisper_model_specials(m);
    const int NM = pl_whisper_model_hparams(m)->n_mels, E = pl_whisper_model_hparams(m)->n_audio_state;
    const int V = pl_whisper_model_hparams(m)->n_vocab, T = (int)((n + 319) / 320);
    float *mel = malloc((size_t)NM * 2 * T * sizeof(float)), *enc = malloc((size_t)T * E * sizeof(float));
    float *logits = malloc((size_t)V * sizeof(float));
    ref_mel(m->filters, NM, pcm, n, 480000, 2 * (size_t)T, mel);
    ref_encode(rm, mel, T, enc);
    int32_t space[4];
    size_t ns = 0;
    assert_int_equal(pl_whisper_tokenize(m, " ", space, 4, &ns), PL_OK);
    assert_int_equal(ns, 1);
    /* the no-speech probability (after <|startoftranscript|>) is far below Whisper's
     * 0.6 on random weights, so its skip rule does not apply */
    int32_t seq[64] = { sp->sot, sp->not_ts };
    ref_decode(rm, enc, T, seq, 1, logits);
    double mx = logits[0], sum = 0;
    for (int v = 1; v < V; v++) mx = fmax(mx, logits[v]);
    for (int v = 0; v < V; v++) sum += exp(logits[v] - mx);
    assert_true(exp(logits[sp->nosp] - mx) / sum < 0.6);
    const int n_ctx = pl_whisper_model_hparams(m)->n_text_ctx;
    int n_seq = 2, max_tok = 8 + 6 * (int)(n / 16000);
    if (max_tok > n_ctx - 2) max_tok = n_ctx - 2; /* the decoder context holds the prompt too */
    text[0] = '\0';
    size_t len = 0;
    for (int i = 0; i < max_tok; i++) {
        ref_decode(rm, enc, T, seq, n_seq, logits);
        int32_t best = -1;
        for (int32_t v = 0; v <= sp->eot; v++) {
            if (i == 0 && (v == sp->eot || v == space[0])) continue;
            if (best < 0 || logits[v] > logits[best]) best = v;
        }
        if (best == sp->eot) break;
        seq[n_seq++] = best;
        size_t k;
        const char *t = pl_whisper_token_text(m, best, &k);
        assert_true(len + k < cap);
        memcpy(text + len, t, k);
        len += k;
        text[len] = '\0';
    }
    squeeze(text);
    free(mel);
    free(enc);
    free(logits);
}

/* Partials on the tiny fixture (3 s audio ctx, 24-token text ctx): recomputed
 * only once 500 ms of new audio came in, over the whole audio so far (the
 * naive model's greedy text of exactly that prefix: checked at 0.5 s and 1 s,
 * the token caps 8 and 14; the naive decoder is slow); finalize unaffected by
 * them; cancel and reset. */
static void test_stt_partials(void **state) {
    (void)state;
    setenv("PARLEY_WHISPER_THREADS", "2", 1);
    char path[1100];
    snprintf(path, sizeof path, "%s/whisper-tiny-en-f16-short.bin", getenv("PL_FIXTURE_DIR"));
    size_t size;
    uint8_t *bytes = read_all(path, &size);
    assert_non_null(bytes);
    pl_stt_params p = pl_stt_default_params();
    p.backend = "whisper";
    p.model = path;
    p.partial_interval_ms = 500;
    pl_stt *stt = NULL, *plain = NULL;
    assert_int_equal(pl_stt_init(ctx, &p, &stt), PL_OK);
    assert_true(pl_stt_backend_of(stt)->has_partials);
    pl_whisper_model *m;
    assert_int_equal(pl_whisper_model_load_mem(ctx, bytes, size, &m), PL_OK);
    assert_int_equal(pl_whisper_model_hparams(m)->n_audio_ctx, 150);
    ref_file f;
    assert_int_equal(ref_file_walk(bytes, size, &f), 0);
    ref_model *rm = ref_model_load(&f);
    const size_t n = 24000, step = 1600; /* 1.5 s in 100 ms pieces */
    float *pcm = test_audio(n);
    pl_stt_partial_result pr;
    assert_int_equal(pl_stt_partial_get(stt, &pr), PL_OK); /* nothing fed */
    assert_string_equal(pr.text, "");
    assert_false(pr.updated);
    size_t last = 0;
    uint32_t updates = 0;
    char prev[4096] = "", want[4096], first[4096] = "";
    for (size_t fed = step; fed <= n; fed += step) {
        assert_int_equal(pl_stt_feed(stt, pcm + fed - step, step), PL_OK);
        assert_int_equal(pl_stt_partial_get(stt, &pr), PL_OK);
        bool due = fed - last >= 8000;
        assert_int_equal(pr.updated, due);
        if (due) {
            last = fed;
            updates++;
            print_message("  partial at %.1f s (%.1f ms): \"%s\"\n", (double)fed / 16000, pr.ms, pr.text);
            if (fed <= 16000) {
                ref_partial(rm, m, pcm, fed, want, sizeof want);
                assert_string_equal(pr.text, want);
            }
            if (updates == 1) snprintf(first, sizeof first, "%s", pr.text);
            snprintf(prev, sizeof prev, "%s", pr.text);
        } else {
            assert_string_equal(pr.text, prev); /* the last one again */
        }
        assert_true(fabs(pr.audio_s - (double)last / 16000) < 1e-9); /* grows with the audio, by the interval */
        assert_int_equal(pr.n_updates, updates);
    }
    assert_int_equal(updates, 3);
    /* the finalize after partials is the one without them */
    pl_stt_result r;
    assert_int_equal(pl_stt_finalize(stt, &r), PL_OK);
    assert_true(r.partial_ms > 0.0);
    char *final_text = strdup(r.text);
    size_t final_segs = r.n_segments;
    assert_int_equal(pl_stt_init(ctx, &p, &plain), PL_OK);
    assert_int_equal(pl_stt_transcribe(plain, pcm, n, &r), PL_OK);
    assert_string_equal(r.text, final_text);
    assert_int_equal(r.n_segments, final_segs);
    assert_true(r.partial_ms == 0.0);
    for (size_t i = 0; i < r.n_segments; i++) { /* Whisper's segments: ordered, inside the audio */
        assert_true(r.segments[i].start_s <= r.segments[i].end_s);
        assert_true(r.segments[i].end_s <= 1.5 + 1e-9);
        assert_true(i == 0 || r.segments[i].start_s >= r.segments[i - 1].end_s);
        assert_true(r.segments[i].has_stats && r.segments[i].n_tokens > 0);
    }
    /* a new utterance starts over; a cancel stops a due partial and the finalize */
    assert_int_equal(pl_stt_partial_get(stt, &pr), PL_OK);
    assert_true(!pr.updated && pr.n_updates == 0 && !pr.text[0]);
    assert_int_equal(pl_stt_feed(stt, pcm, 9000), PL_OK);
    pl_stt_cancel(stt); /* before the partial: it stops at its first token */
    assert_int_equal(pl_stt_partial_get(stt, &pr), PL_ERR_CANCELED);
    assert_int_equal(pl_stt_finalize(stt, &r), PL_ERR_CANCELED);
    /* after it, the first 0.5 s give the first partial again; reset drops it with the audio */
    assert_int_equal(pl_stt_feed(stt, pcm, 8000), PL_OK);
    assert_int_equal(pl_stt_partial_get(stt, &pr), PL_OK);
    assert_true(pr.updated && pr.n_updates == 1);
    assert_string_equal(pr.text, first);
    pl_stt_reset(stt);
    assert_int_equal(pl_stt_feed(stt, pcm, 4000), PL_OK);
    assert_int_equal(pl_stt_partial_get(stt, &pr), PL_OK);
    assert_true(!pr.updated && !pr.text[0] && pr.audio_s == 0.0);
    free(final_text);
    free(pcm);
    ref_model_free(rm);
    ref_file_free(&f);
    pl_whisper_model_free(m);
    pl_stt_free(plain);
    pl_stt_free(stt);
    free(bytes);
    unsetenv("PARLEY_WHISPER_THREADS");
}

/* pl_whisper_full's audio_ctx: a smaller context for one call, then the state's again */
static void test_call_audio_ctx(void **state) {
    (void)state;
    pl_whisper_model *m;
    assert_int_equal(pl_whisper_model_load_mem(ctx, en_bytes, en_size, &m), PL_OK);
    pl_whisper_state *s;
    assert_int_equal(pl_whisper_state_init(m, 2, 2 * TEST_T, &s), PL_OK);
    float *pcm = test_audio(16000);
    pl_whisper_params p = pl_whisper_default_params();
    p.greedy_raw = true;
    p.timestamps = false;
    p.max_tokens = 4;
    p.audio_ctx = 2 * TEST_T + 1;
    const pl_whisper_result *r;
    assert_int_equal(pl_whisper_full(s, &p, pcm, 16000, &r), PL_ERR_RANGE);
    /* at TEST_T the greedy tokens are those of a state made at TEST_T */
    p.audio_ctx = TEST_T;
    assert_int_equal(pl_whisper_full(s, &p, pcm, 16000, &r), PL_OK);
    int32_t got[8];
    size_t n_got = r->n_tokens;
    assert_true(n_got > 0 && n_got <= 8);
    memcpy(got, r->tokens, n_got * sizeof *got);
    pl_whisper_state *s2;
    assert_int_equal(pl_whisper_state_init(m, 2, TEST_T, &s2), PL_OK);
    p.audio_ctx = 0;
    assert_int_equal(pl_whisper_full(s2, &p, pcm, 16000, &r), PL_OK);
    assert_int_equal(r->n_tokens, n_got);
    assert_memory_equal(r->tokens, got, n_got * sizeof *got);
    /* and the first state is back at its own context */
    assert_int_equal(pl_whisper_set_audio(s, pcm, 16000), PL_OK);
    assert_int_equal(pl_whisper_encode(s), PL_OK);
    int T = 0;
    assert_non_null(pl_whisper_encoder_output(s, &T));
    assert_int_equal(T, 2 * TEST_T);
    free(pcm);
    pl_whisper_state_free(s2);
    pl_whisper_state_free(s);
    pl_whisper_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fft_vs_dft),
        cmocka_unit_test(test_mel_vs_direct),
        cmocka_unit_test(test_load_specials),
        cmocka_unit_test(test_load_malformed),
        cmocka_unit_test(test_tokenize),
        cmocka_unit_test(test_compression_ratio),
        cmocka_unit_test(test_encoder_vs_ref),
        cmocka_unit_test(test_language_vs_ref),
        cmocka_unit_test(test_timestamp_rules),
        cmocka_unit_test(test_stt_backend),
        cmocka_unit_test(test_call_audio_ctx),
        cmocka_unit_test(test_stt_partials),
        cmocka_unit_test(test_encoder_q8_0),
        cmocka_unit_test(test_cli_transcribe),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
