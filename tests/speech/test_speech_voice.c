/*
 * test_speech_voice.c - the recognizer and the synthesizer for real:
 * PocketSphinx on jfk.wav against its reference transcript, the espeak ->
 * resample -> PocketSphinx round trip on a fixed sentence set (word error
 * rates asserted against measured bounds), TTS streaming, cancel and
 * concurrency, the backend table with a test double, and the `parley
 * transcribe` / `parley speak` commands.
 *
 * Figures printed here (WER, first-chunk latency, RTF, cancel latency) are
 * recorded in docs/benchmarks.md; only behaviour is asserted, except the WER
 * bounds, which are deterministic for given package versions.
 *
 * Exit status: failures -> 1; all passed but $PL_SHARED_DIR/audio absent
 * (jfk tests skipped) -> 77; otherwise 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sndfile.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "cli_run.h"
#include "parley/audio.h"
#include "parley/stt.h"
#include "parley/tts.h"
#include "speech/speech_int.h"
#include "speech/speech_test.h"

static pl_ctx *ctx;
static pl_stt *stt;      /* batch pocketsphinx, shared (model load ~1 s) */
static char tmpdir[256];

static double wer(const char *ref, const char *hyp) {
    size_t nr = 0, d = pl_speech_word_distance(ctx, ref, hyp, &nr);
    assert_true(d != SIZE_MAX && nr > 0);
    return (double)d / (double)nr;
}

/* ---- STT on jfk.wav ---- */

/* Measured with pocketsphinx 0.8+5prealpha+1-15 and its en-us model:
 *   batch, one utterance: 4 errors / 22 words = 0.18 ("and all my fellow
 *   american and not what your country ..."). */
#define JFK_WER_BATCH 0.25
#define JFK_WER_LIVE_FIRST 0.95 /* measured 0.86: the first utterance, cold */
#define JFK_WER_LIVE 0.60

static void test_stt_jfk(void **state) {
    (void)state;
    char buf[512], tbuf[512];
    const char *path = shared_audio("jfk.wav", buf, sizeof buf);
    const char *tpath = shared_audio("jfk.txt", tbuf, sizeof tbuf);
    if (!path || !tpath) skip();
    size_t n;
    char *ref = test_read_file(tpath, &n);
    pl_audio *a = NULL;
    assert_int_equal(pl_audio_load_file(ctx, path, NULL, &a), PL_OK);

    pl_stt_result r;
    assert_int_equal(pl_stt_transcribe(stt, a->samples, a->n_frames, &r), PL_OK);
    double w = wer(ref, r.text);
    print_message("  jfk batch: WER %.3f, finalize %.0f ms for %.1f s (RTF %.2f): %s\n", w,
                  r.finalize_ms, r.audio_s, r.finalize_ms / 1000.0 / r.audio_s, r.text);
    assert_true(w <= JFK_WER_BATCH);
    assert_true(fabs(r.audio_s - 11.0) < 1e-9);
    /* Word timings: in order, inside the audio, and "country" is the last word. */
    assert_true(r.n_words >= 15);
    for (size_t i = 0; i < r.n_words; i++) {
        assert_true(r.words[i].start_s < r.words[i].end_s);
        assert_true(r.words[i].end_s <= 11.0 + 1e-9);
        if (i) assert_true(r.words[i].start_s >= r.words[i - 1].end_s - 1e-9);
    }
    assert_string_equal(r.words[r.n_words - 1].text, "country");

    /* The whole-recording path on the first 4.6 s ("And so my fellow
     * Americans, ask not"): the VAD finds two utterances, merged into one
     * segment; its errors are the batch result's first three. */
    pl_transcript *t = NULL;
    assert_int_equal(pl_transcribe(stt, NULL, a->samples, 16000 * 46 / 10, NULL, NULL, &t), PL_OK);
    assert_int_equal(t->n_segments, 1);
    assert_true(fabs(t->segments[0].start_s - 0.32) <= 0.06);
    assert_true(fabs(t->segments[0].end_s - 4.28) <= 0.06);
    print_message("  jfk 0-4.6 s transcribe: %s\n", t->text);
    assert_true(pl_speech_word_distance(ctx, "and so my fellow americans ask not", t->text, NULL) <= 3);
    pl_transcript_free(t);
    /* Live mode: 20 ms frames, partial results grow while it listens. */
    pl_stt_params sp = pl_stt_default_params();
    sp.partials = true;
    pl_stt *live = NULL;
    assert_int_equal(pl_stt_init(ctx, &sp, &live), PL_OK);
    size_t partials = 0, longest = 0;
    for (size_t i = 0; i < a->n_frames; i += 320) {
        size_t k = a->n_frames - i < 320 ? a->n_frames - i : 320;
        assert_int_equal(pl_stt_feed(live, a->samples + i, k), PL_OK);
        if (i % 16000 == 0) {
            const char *p = NULL;
            assert_int_equal(pl_stt_partial(live, &p), PL_OK);
            if (*p) partials++;
            if (strlen(p) > longest) longest = strlen(p);
        }
    }
    assert_int_equal(pl_stt_finalize(live, &r), PL_OK);
    double wl = wer(ref, r.text);
    print_message("  jfk live: WER %.3f, %zu non-empty partials, finalize %.1f ms: %s\n", wl,
                  partials, r.finalize_ms, r.text);
    assert_true(partials >= 5);
    assert_true(longest > 20);
    assert_true(wl <= JFK_WER_LIVE_FIRST);
    /* A second utterance on the same decoder: its live normalization has
     * adapted to the channel, as in a conversation's later turns. */
    assert_int_equal(pl_stt_transcribe(live, a->samples, a->n_frames, &r), PL_OK);
    double wl2 = wer(ref, r.text);
    print_message("  jfk live, second utterance: WER %.3f: %s\n", wl2, r.text);
    assert_true(wl2 <= JFK_WER_LIVE);
    pl_stt_free(live);
    /* The batch recognizer has no partials. */
    const char *p;
    assert_int_equal(pl_stt_partial(stt, &p), PL_ERR_UNSUPPORTED);
    pl_audio_free(a);
    free(ref);
}

/* ---- round trip: espeak -> 16 kHz -> pocketsphinx ---- */

static const char *const sentences[] = {
    "Please call me back when you get home tonight.",
    "The weather will be sunny and warm tomorrow.",
    "I would like to book a table for two people.",
    "Turn off the lights in the living room.",
    "What time does the train leave for the city?",
    "She bought a new car last week.",
    "Can you tell me how to get to the station?",
    "We need to finish the report before Friday.",
};

/* Measured (espeak-ng 1.51, pocketsphinx 5prealpha en-us, batch), errors / 69
 * words: en-us+klatt2 32 (0.46), en-us+klatt 40, en-us+klatt4 46, the default
 * en-us formant voice about 65 (0.95). eSpeak's output varies by a few samples
 * from call to call (its voice has random jitter), so the bound leaves six
 * words of room. */
#define ROUNDTRIP_VOICE "en-us+klatt2"
#define ROUNDTRIP_WER 0.55

typedef struct feed_ctx {
    pl_resampler *rs;
    pl_stt       *stt;
    float         out[8192];
    pl_status     st;
} feed_ctx;

/* TTS chunk -> streaming resampler -> STT, as a pipeline would wire them. */
static int feed_chunk(void *ud, const float *pcm, size_t n) {
    feed_ctx *f = ud;
    while (n) {
        size_t k = n < 2048 ? n : 2048, used, made;
        f->st = pl_resampler_process(f->rs, pcm, k, f->out, 8192, false, &used, &made);
        if (f->st == PL_OK && made) f->st = pl_stt_feed(f->stt, f->out, made);
        if (f->st != PL_OK) return 1;
        pcm += used;
        n -= used;
    }
    return 0;
}

static double roundtrip(const char *voice, bool print) {
    pl_tts_params tp = pl_tts_default_params();
    tp.voice = voice;
    pl_tts *tts = NULL;
    assert_int_equal(pl_tts_init(ctx, &tp, &tts), PL_OK);
    feed_ctx f = { .stt = stt };
    assert_int_equal(pl_resampler_init(ctx, pl_tts_sample_rate(tts), 16000, 1,
                                       PL_RESAMPLE_QUALITY_MEDIUM, &f.rs), PL_OK);
    size_t errors = 0, words = 0;
    double stt_ms = 0, audio_s = 0;
    for (size_t i = 0; i < sizeof sentences / sizeof sentences[0]; i++) {
        pl_resampler_reset(f.rs);
        assert_int_equal(pl_tts_synthesize(tts, sentences[i], feed_chunk, &f, NULL), PL_OK);
        for (;;) { /* the resampler's tail */
            size_t used, made;
            assert_int_equal(pl_resampler_process(f.rs, NULL, 0, f.out, 8192, true, &used, &made), PL_OK);
            if (!made) break;
            assert_int_equal(pl_stt_feed(stt, f.out, made), PL_OK);
        }
        pl_stt_result r;
        assert_int_equal(pl_stt_finalize(stt, &r), PL_OK);
        size_t nr = 0, d = pl_speech_word_distance(ctx, sentences[i], r.text, &nr);
        errors += d;
        words += nr;
        stt_ms += r.finalize_ms;
        audio_s += r.audio_s;
        if (print) print_message("    %-48s -> %s\n", sentences[i], r.text);
    }
    pl_resampler_free(f.rs);
    pl_tts_free(tts);
    double w = (double)errors / (double)words;
    print_message("  round trip %s: %zu errors / %zu words = WER %.3f (STT RTF %.2f)\n", voice,
                  errors, words, w, stt_ms / 1000.0 / audio_s);
    return w;
}

static void test_roundtrip(void **state) {
    (void)state;
    double w = roundtrip(ROUNDTRIP_VOICE, true);
    assert_true(w <= ROUNDTRIP_WER);
}

/* ---- TTS ---- */

typedef struct chunks {
    size_t n, samples, max_chunk;
    double sum_sq;
} chunks;

static int count_chunk(void *ud, const float *pcm, size_t n) {
    chunks *c = ud;
    c->n++;
    c->samples += n;
    if (n > c->max_chunk) c->max_chunk = n;
    for (size_t i = 0; i < n; i++) c->sum_sq += (double)pcm[i] * pcm[i];
    return 0;
}

static void test_tts_stream(void **state) {
    (void)state;
    pl_tts *tts = NULL;
    assert_int_equal(pl_tts_init(ctx, NULL, &tts), PL_OK);
    assert_int_equal(pl_tts_sample_rate(tts), 22050);
    const char *text = "Streaming speech arrives in small chunks, so playback can start early.";
    chunks c = { 0 };
    pl_tts_stats s;
    assert_int_equal(pl_tts_synthesize(tts, text, count_chunk, &c, &s), PL_OK);
    print_message("  espeak: %.2f s of audio in %zu chunks, first chunk %.2f ms, total %.1f ms, RTF %.4f\n",
                  s.audio_ms / 1000.0, s.n_chunks, s.first_chunk_ms, s.total_ms, s.rtf);
    assert_true(c.n > 40);                    /* ~50 ms chunks over ~4 s */
    assert_true(c.max_chunk <= 1081);         /* espeak's buffer: 1081 samples, 49 ms */
    assert_int_equal(c.n, s.n_chunks);
    assert_true(fabs(s.audio_ms - (double)c.samples * 1000.0 / 22050.0) < 1e-6);
    assert_true(s.audio_ms > 2500 && s.audio_ms < 8000);
    assert_true(s.first_chunk_ms > 0 && s.first_chunk_ms <= s.total_ms);
    assert_true(sqrt(c.sum_sq / (double)c.samples) > 0.01); /* not silence */
    assert_false(s.canceled);

    /* Twice the speed: about half the audio (espeak scales its phoneme times,
     * not its pauses, so allow 0.4-0.75). */
    assert_int_equal(pl_tts_configure(tts, NULL, 2.0f, -1.0f), PL_OK);
    chunks c2 = { 0 };
    assert_int_equal(pl_tts_synthesize(tts, text, count_chunk, &c2, NULL), PL_OK);
    double ratio = (double)c2.samples / (double)c.samples;
    assert_true(ratio > 0.4 && ratio < 0.75);
    pl_tts_free(tts);

    /* Resampled output at 24 kHz: same duration. */
    pl_tts_params p = pl_tts_default_params();
    p.sample_rate = 24000;
    assert_int_equal(pl_tts_init(ctx, &p, &tts), PL_OK);
    assert_int_equal(pl_tts_sample_rate(tts), 24000);
    chunks c3 = { 0 };
    assert_int_equal(pl_tts_synthesize(tts, text, count_chunk, &c3, &s), PL_OK);
    assert_true(fabs((double)c3.samples / 24000.0 - (double)c.samples / 22050.0) < 0.002);
    pl_tts_free(tts);
}

typedef struct cancel_run {
    pl_tts          *tts;
    atomic_size_t    chunks;
    pl_status        st;
    pl_tts_stats     stats;
    const char      *text;
} cancel_run;

static int cancel_chunk(void *ud, const float *pcm, size_t n) {
    (void)pcm, (void)n;
    cancel_run *r = ud;
    atomic_fetch_add(&r->chunks, 1);
    return 0;
}

static void *cancel_thread(void *ud) {
    cancel_run *r = ud;
    r->st = pl_tts_synthesize(r->tts, r->text, cancel_chunk, r, &r->stats);
    return NULL;
}

static void test_tts_cancel(void **state) {
    (void)state;
    char *text = malloc(8192);
    text[0] = '\0';
    for (int i = 0; i < 40; i++) strcat(text, "This sentence goes on and on so that there is time to stop it. ");
    pl_tts *tts = NULL;
    assert_int_equal(pl_tts_init(ctx, NULL, &tts), PL_OK);
    double worst = 0, sum = 0;
    const int rounds = 5;
    for (int k = 0; k < rounds; k++) {
        cancel_run r = { .tts = tts, .text = text };
        atomic_init(&r.chunks, 0);
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, cancel_thread, &r), 0);
        while (atomic_load(&r.chunks) < (size_t)(5 + 20 * k)) {
            struct timespec ts = { 0, 200000 };
            nanosleep(&ts, NULL);
        }
        pl_tts_cancel(tts);
        size_t at_cancel = atomic_load(&r.chunks);
        pthread_join(th, NULL);
        assert_int_equal(r.st, PL_ERR_CANCELED);
        assert_true(r.stats.canceled);
        /* At most the chunk being handed over when cancel came. */
        assert_true(atomic_load(&r.chunks) <= at_cancel + 1);
        assert_true(r.stats.audio_ms < 20000.0); /* far less than the whole text */
        if (r.stats.cancel_ms > worst) worst = r.stats.cancel_ms;
        sum += r.stats.cancel_ms;
        /* Sticky until cleared: the next call does nothing. */
        chunks c = { 0 };
        assert_int_equal(pl_tts_synthesize(tts, "Hello.", count_chunk, &c, NULL), PL_ERR_CANCELED);
        assert_int_equal(c.n, 0);
        assert_true(pl_tts_canceled(tts));
        pl_tts_cancel_clear(tts);
        assert_false(pl_tts_canceled(tts));
        assert_int_equal(pl_tts_synthesize(tts, "Hello.", count_chunk, &c, NULL), PL_OK);
        assert_true(c.n > 0);
    }
    print_message("  cancel latency (cancel -> return): mean %.3f ms, worst %.3f ms over %d\n",
                  sum / rounds, worst, rounds);
    free(text);
    pl_tts_free(tts);
}

static int stop_after_3(void *ud, const float *pcm, size_t n) {
    (void)pcm, (void)n;
    return ++*(int *)ud >= 3;
}

static void test_tts_errors(void **state) {
    (void)state;
    pl_tts *tts = NULL;
    pl_tts_params p = pl_tts_default_params();
    p.voice = "xx-nonexistent";
    assert_int_equal(pl_tts_init(ctx, &p, &tts), PL_ERR_NOT_FOUND);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "xx-nonexistent"));
    p = pl_tts_default_params();
    p.speed = 5.0f;
    assert_int_equal(pl_tts_init(ctx, &p, &tts), PL_ERR_RANGE);
    p = pl_tts_default_params();
    p.backend = "festival";
    assert_int_equal(pl_tts_init(ctx, &p, &tts), PL_ERR_NOT_FOUND);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "espeak"));
    assert_null(tts);
    /* "en-gb" is listed by gmw/en, not a voice file of its own: resolved. */
    p = pl_tts_default_params();
    p.voice = "en-gb+klatt";
    assert_int_equal(pl_tts_init(ctx, &p, &tts), PL_OK);
    assert_int_equal(pl_tts_synthesize(tts, "\xff\xfe bad", NULL, NULL, NULL), PL_ERR_INVALID_ARG);
    assert_non_null(strstr(pl_tts_last_error(tts), "UTF-8"));
    chunks c = { 0 };
    assert_int_equal(pl_tts_synthesize(tts, " \n\t ", count_chunk, &c, NULL), PL_OK);
    assert_int_equal(c.n, 0);
    assert_int_equal(pl_tts_configure(tts, "zz", 0, -1), PL_ERR_NOT_FOUND);
    /* the failed configure kept the working voice */
    assert_int_equal(pl_tts_synthesize(tts, "Still here.", count_chunk, &c, NULL), PL_OK);
    assert_true(c.n > 0);
    /* the chunk callback can stop it too */
    int seen = 0;
    pl_tts_stats s;
    assert_int_equal(pl_tts_synthesize(tts, "One two three four five six seven.", stop_after_3, &seen, &s), PL_ERR_CANCELED);
    assert_int_equal(seen, 3);
    assert_false(pl_tts_canceled(tts)); /* not sticky: the caller stopped this one only */
    pl_tts_free(tts);

    pl_tts_voice *v = NULL;
    size_t n = 0;
    assert_int_equal(pl_tts_list_voices(ctx, NULL, &v, &n), PL_OK);
    bool us = false, klatt = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].name, "en-us") == 0 && !v[i].is_variant) us = true;
        if (strcmp(v[i].name, "+klatt") == 0 && v[i].is_variant) klatt = true;
        if (i) assert_true(strcmp(v[i - 1].name, v[i].name) <= 0);
    }
    assert_true(us && klatt && n > 100);
    pl_tts_voices_free(ctx, v);
}

/* Two pl_tts on two threads at once each get their own audio: eSpeak's
 * globals are serialized and every call's audio is routed to its own
 * callback. (eSpeak's output is not bit-exact from call to call, so lengths
 * are compared: the two texts differ by a factor of three.) */
typedef struct par_run {
    const char *voice, *text;
    size_t      samples[3];
    pl_status   st[3];
} par_run;

static int len_chunk(void *ud, const float *pcm, size_t n) {
    (void)pcm;
    *(size_t *)ud += n;
    return 0;
}

static void *par_thread(void *ud) {
    par_run *r = ud;
    pl_tts_params p = pl_tts_default_params();
    p.voice = r->voice;
    pl_tts *t = NULL;
    if (pl_tts_init(ctx, &p, &t) != PL_OK) return NULL;
    for (int i = 0; i < 3; i++) {
        r->samples[i] = 0;
        r->st[i] = pl_tts_synthesize(t, r->text, len_chunk, &r->samples[i], NULL);
    }
    pl_tts_free(t);
    return NULL;
}

static void test_tts_concurrent(void **state) {
    (void)state;
    par_run alone[2] = {
        { .voice = "en-us", .text = "A short one." },
        { .voice = "de", .text = "Ein deutlich längerer Satz, damit die beiden Stimmen verschieden "
                                 "lange sprechen und nichts verwechselt werden kann." },
    };
    par_thread(&alone[0]);
    par_thread(&alone[1]);
    assert_true(alone[1].samples[0] > 3 * alone[0].samples[0]);
    par_run both[2] = { alone[0], alone[1] };
    pthread_t th[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, par_thread, &both[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        for (int k = 0; k < 3; k++) {
            assert_int_equal(both[i].st[k], PL_OK);
            double ratio = (double)both[i].samples[k] / (double)alone[i].samples[0];
            if (fabs(ratio - 1.0) > 0.03) fail_msg("voice %d run %d: %zu samples, alone %zu", i, k, both[i].samples[k], alone[i].samples[0]);
        }
    }
}

/* ---- STT table and errors ---- */

/* A test double: "hears" the number of samples it was fed. */
typedef struct fake { pl_ctx *ctx; size_t n; char text[64]; } fake;
static pl_status fake_create(pl_ctx *c, const pl_stt_params *p, const atomic_bool *cancel, void **out) {
    (void)p, (void)cancel;
    fake *f = pl_calloc(c, 1, sizeof(fake));
    if (!f) return PL_ERR_NOMEM;
    f->ctx = c;
    *out = f;
    return PL_OK;
}
static void fake_free(void *s) { pl_free(((fake *)s)->ctx, s); }
static pl_status fake_feed(void *s, const float *pcm, size_t n) {
    (void)pcm;
    ((fake *)s)->n += n;
    return ((fake *)s)->n > 32000 ? PL_ERR_INTERNAL : PL_OK;
}
static pl_status fake_finalize(void *s, pl_stt_result *out) {
    fake *f = s;
    snprintf(f->text, sizeof f->text, "%zu samples", f->n);
    f->n = 0;
    out->text = f->text;
    return PL_OK;
}
static void fake_reset(void *s) { ((fake *)s)->n = 0; }
static const char *fake_error(void *s) { (void)s; return "too much audio"; }
static const pl_stt_backend fake_backend = {
    .name = "fake", .description = "counts samples",
    .create = fake_create, .free = fake_free, .feed = fake_feed,
    .finalize = fake_finalize, .reset = fake_reset, .error = fake_error,
};

static void test_stt_table(void **state) {
    (void)state;
    assert_int_equal(pl_stt_backend_count(), 2);
    assert_string_equal(pl_stt_backend_at(0)->name, "pocketsphinx");
    assert_string_equal(pl_stt_backend_at(1)->name, "whisper");
    assert_null(pl_stt_backend_at(2));
    assert_ptr_equal(pl_stt_backend_find("pocketsphinx"), pl_stt_backend_at(0));
    assert_ptr_equal(pl_stt_backend_of(stt), pl_stt_backend_at(0));
    pl_stt *s = NULL;
    pl_stt_params p = pl_stt_default_params();
    p.backend = "nosuch";
    assert_int_equal(pl_stt_init(ctx, &p, &s), PL_ERR_NOT_FOUND);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "pocketsphinx"));
    assert_non_null(strstr(pl_ctx_last_error(ctx), "whisper"));
    p = pl_stt_default_params();
    p.backend = "whisper";
    p.model = "/nonexistent/ggml-tiny.en.bin";
    assert_int_equal(pl_stt_init(ctx, &p, &s), PL_ERR_NOT_FOUND);
    assert_null(s);
    p = pl_stt_default_params();
    p.model = "/nonexistent";
    assert_int_equal(pl_stt_init(ctx, &p, &s), PL_ERR_NOT_FOUND);
    p = pl_stt_default_params();
    p.language = "fr";
    assert_int_equal(pl_stt_init(ctx, &p, &s), PL_ERR_UNSUPPORTED);
    assert_null(s);

    /* The double through the same front. */
    p = pl_stt_default_params();
    p.backend_impl = &fake_backend;
    p.max_utterance_s = 1.5;
    assert_int_equal(pl_stt_init(ctx, &p, &s), PL_OK);
    float z[1000] = { 0 };
    pl_stt_result r;
    assert_int_equal(pl_stt_feed(s, z, 1000), PL_OK);
    assert_int_equal(pl_stt_feed(s, z, 600), PL_OK);
    assert_int_equal(pl_stt_finalize(s, &r), PL_OK);
    assert_string_equal(r.text, "1600 samples");
    assert_true(fabs(r.audio_s - 0.1) < 1e-9);
    assert_int_equal(pl_stt_partial(s, &(const char *){ NULL }), PL_ERR_UNSUPPORTED);
    /* utterance limit: 1.5 s = 24000 samples */
    for (int i = 0; i < 24; i++) assert_int_equal(pl_stt_feed(s, z, 1000), PL_OK);
    assert_int_equal(pl_stt_feed(s, z, 1), PL_ERR_RANGE);
    assert_non_null(strstr(pl_stt_last_error(s), "longer than"));
    /* cancel before finalize drops the utterance */
    pl_stt_cancel(s);
    assert_int_equal(pl_stt_finalize(s, &r), PL_ERR_CANCELED);
    assert_string_equal(r.text, "");
    assert_int_equal(pl_stt_feed(s, z, 10), PL_OK);
    assert_int_equal(pl_stt_finalize(s, &r), PL_OK);
    assert_string_equal(r.text, "10 samples");
    pl_stt_free(s);
    pl_stt_free(NULL);

    /* pocketsphinx: an empty utterance is "", a cancel drops the audio */
    assert_int_equal(pl_stt_finalize(stt, &r), PL_OK);
    assert_string_equal(r.text, "");
    assert_int_equal(pl_stt_feed(stt, z, 1000), PL_OK);
    pl_stt_cancel(stt);
    assert_int_equal(pl_stt_finalize(stt, &r), PL_ERR_CANCELED);
}

/* ---- the CLI ---- */

static cli_result run(const char *fmt, ...) {
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return cli_run(tmpdir, getenv("PL_BIN"), NULL, NULL, args);
}

static void test_cli(void **state) {
    (void)state;
    if (!getenv("PL_BIN")) skip();
    char wav[300];
    snprintf(wav, sizeof wav, "%s/say.wav", tmpdir);
    cli_result r = run("speak --voice en-us+klatt --stats 'She bought a new car last week.' -o '%s'", wav);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.out_len, 0); /* the product went to the file */
    assert_non_null(strstr(r.err, "first chunk"));
    cli_result_free(&r);
    SF_INFO info = { 0 };
    SNDFILE *f = sf_open(wav, SFM_READ, &info);
    assert_non_null(f);
    sf_close(f);
    assert_int_equal(info.samplerate, 22050);
    assert_true(info.frames > 22050);

    r = run("transcribe --format srt '%s'", wav);
    assert_int_equal(r.code, 0);
    assert_true(strncmp(r.out, "1\n00:00:00,", 11) == 0);
    assert_non_null(strstr(r.out, " --> "));
    assert_non_null(strstr(r.out, "car last week"));
    cli_result_free(&r);
    r = run("transcribe --format json '%s'", wav);
    assert_int_equal(r.code, 0);
    assert_true(strncmp(r.out, "{\"text\":\"", 9) == 0);
    cli_result_free(&r);
    r = run("transcribe --format vtt '%s'", wav);
    assert_true(strncmp(r.out, "WEBVTT\n\n", 8) == 0);
    cli_result_free(&r);

    /* raw PCM to stdout at 16 kHz, read back as --raw */
    char pcm[300];
    snprintf(pcm, sizeof pcm, "%s/say.pcm", tmpdir);
    r = run("speak --rate 16000 --format pcm 'Turn off the lights.' -o -");
    assert_int_equal(r.code, 0);
    assert_true(r.out_len > 16000 && r.out_len % 2 == 0);
    FILE *pf = fopen(pcm, "wb");
    fwrite(r.out, 1, r.out_len, pf);
    fclose(pf);
    cli_result_free(&r);
    r = run("transcribe --raw 16000 '%s'", pcm);
    assert_int_equal(r.code, 0);
    assert_true(r.out_len > 1);
    cli_result_free(&r);

    /* refusals: one line, exit 1 */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/zero.wav", tmpdir);
    size_t n;
    char *b = test_read_file(wav, &n);
    b[22] = b[23] = 0; /* canonical header: channels */
    FILE *bf = fopen(bad, "wb");
    fwrite(b, 1, n, bf);
    fclose(bf);
    free(b);
    r = run("transcribe '%s'", bad);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "0 channels"));
    assert_int_equal(strchr(r.err, '\n') - r.err + 1, (long)strlen(r.err));
    cli_result_free(&r);
    r = run("transcribe --max-seconds 1 '%s'", wav);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "limit"));
    cli_result_free(&r);
    r = run("transcribe /nonexistent.wav");
    assert_int_equal(r.code, 1);
    cli_result_free(&r);
    r = run("transcribe --format xml '%s'", wav);
    assert_int_equal(r.code, 2);
    cli_result_free(&r);
    r = run("speak 'hi'");
    assert_int_equal(r.code, 2);
    cli_result_free(&r);
    r = run("speak --speed 9 'hi' -o x.wav");
    assert_int_equal(r.code, 2);
    cli_result_free(&r);
    r = run("speak --voice nope 'hi' -o '%s'", wav);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "no voice 'nope'"));
    cli_result_free(&r);
    r = run("speak --list-voices");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "en-us "));
    assert_non_null(strstr(r.out, "+klatt"));
    cli_result_free(&r);
    r = run("transcribe --help");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "--format"));
    cli_result_free(&r);
}

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pl_voice_XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_level = PL_LOG_LEVEL_NONE;
    if (pl_ctx_init(&ctx, &cp) != PL_OK) return -1;
    return pl_stt_init(ctx, NULL, &stt) == PL_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    pl_stt_free(stt);
    pl_ctx_free(ctx);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stt_jfk),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_tts_stream),
        cmocka_unit_test(test_tts_cancel),
        cmocka_unit_test(test_tts_errors),
        cmocka_unit_test(test_tts_concurrent),
        cmocka_unit_test(test_stt_table),
        cmocka_unit_test(test_cli),
    };
    int failed = cmocka_run_group_tests_name("speech voice", tests, setup, teardown);
    if (failed) return 1;
    char buf[512];
    return shared_audio("jfk.wav", buf, sizeof buf) ? 0 : 77;
}
