/*
 * test_pipeline.c - the voice pipeline (parley/voice.h) end to end with a
 * fixture LLM whose tokens are scripted through the session's pick hook:
 *
 *  - full pipeline: espeak speaks a question, the audio goes in framed,
 *    PocketSphinx transcribes it, the fixture "answers" with a reasoning
 *    block and three sentences; events in order, thoughts never spoken,
 *    metrics present and adding up (against the events' own clock), the
 *    second turn reuses the KV prefix;
 *  - barge-in: a TTS double (160 samples per byte, so what was played maps
 *    to text by hand) and synthetic voiced speech pushed during playback:
 *    no audio after speech_started, generation and synthesis stopped within
 *    one frame, the history holds only the played text;
 *  - jfk.wav through the pipeline as one turn (WER bound, speech edges);
 *  - `parley voice` (JSON and text output, --mic on a device that does not exist);
 *  - the pure pieces: percentiles, the played-text cut, metrics JSON.
 *
 * Needs the `models` fixtures (tiny-f32.gguf). The full pipeline test skips
 * when espeak-ng or PocketSphinx data are missing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

#include "parley/engine.h"
#include "parley/model.h"
#include "parley/voice.h"
#include "speech/speech_int.h"
#include "speech/speech_test.h"

static pl_ctx *ctx;
static pl_model *model;
static pl_engine *engine;

/* ---- scripted tokens ---- */

typedef struct script {
    pl_token ids[1024];
    size_t   n, i;
    pl_token eos;
    pl_token filler[8]; /* after the script: repeated until canceled (barge-in test) */
    size_t   n_filler, fi;
    int      filler_sleep_us;
} script;

static void script_set(script *s, const char *text) {
    const pl_tokenizer *tok = pl_engine_tokenizer(engine);
    pl_encode_params ep = pl_encode_default_params();
    ep.add_bos = ep.add_eos = false;
    size_t n = 0;
    assert_int_equal(pl_tokenizer_encode(tok, NULL, text, strlen(text), &ep, s->ids, 1024, &n), PL_OK);
    s->n = n;
    s->i = 0;
    s->eos = pl_tokenizer_eos(tok);
}

static int32_t script_pick(void *ud, const float *logits, int32_t n_vocab) {
    (void)logits;
    (void)n_vocab;
    script *s = ud;
    if (s->i < s->n) return s->ids[s->i++];
    if (s->n_filler) {
        if (s->filler_sleep_us) {
            struct timespec ts = { 0, s->filler_sleep_us * 1000L };
            nanosleep(&ts, NULL);
        }
        return s->filler[s->fi++ % s->n_filler];
    }
    s->i = 0; /* the next turn says it again */
    return s->eos;
}

/* ---- event log ---- */

#define MAX_EV 8192
typedef struct ev_rec {
    pl_voice_event_type type;
    uint64_t turn, pos;
    double   t_ms;
    size_t   n_pcm;
    char     text[256];
    pl_voice_metrics m;
} ev_rec;

typedef struct ev_log {
    ev_rec *ev;
    _Atomic size_t n;
    _Atomic uint64_t audio_samples;
    pl_voice *v;
} ev_log;

static void on_event(void *ud, const pl_voice_event *e) {
    ev_log *L = ud;
    size_t i = atomic_load(&L->n);
    if (i >= MAX_EV) return;
    ev_rec *r = &L->ev[i];
    r->type = e->type;
    r->turn = e->turn;
    r->pos = e->pos;
    r->t_ms = e->t_ms;
    r->n_pcm = e->n_pcm;
    pl_speech_copy_text(r->text, sizeof r->text, e->text, e->len);
    if (e->metrics) r->m = *e->metrics;
    if (e->type == PL_VOICE_EVENT_AUDIO) atomic_fetch_add(&L->audio_samples, e->n_pcm);
    atomic_store(&L->n, i + 1);
}

static size_t first_of(const ev_log *L, pl_voice_event_type t, size_t from) {
    for (size_t i = from; i < L->n; i++)
        if (L->ev[i].type == t) return i;
    return SIZE_MAX;
}

static size_t last_of(const ev_log *L, pl_voice_event_type t) {
    size_t k = SIZE_MAX;
    for (size_t i = 0; i < L->n; i++)
        if (L->ev[i].type == t) k = i;
    return k;
}

/* Concatenate the texts of events of type t with turn `turn`. */
static void join(const ev_log *L, pl_voice_event_type t, uint64_t turn, const char *sep, char *out, size_t cap) {
    out[0] = 0;
    for (size_t i = 0; i < L->n; i++) {
        if (L->ev[i].type != t || L->ev[i].turn != turn) continue;
        if (out[0] && sep) strncat(out, sep, cap - strlen(out) - 1);
        strncat(out, L->ev[i].text, cap - strlen(out) - 1);
    }
}

static pl_session *make_session(script *sc, int32_t max_tokens) {
    pl_session_params sp = pl_session_default_params();
    sp.n_ctx = 512;
    sp.n_threads = 1;
    sp.sampling.max_tokens = max_tokens;
    sp.pick = script_pick;
    sp.pick_ud = sc;
    pl_session *s = NULL;
    assert_int_equal(pl_session_init(ctx, engine, &sp, &s), PL_OK);
    return s;
}

/* ---- full pipeline ---- */

#define REASONING "The user is testing secret plan zebra."
#define ANSWER "Hello there. I am a small model! Goodbye now?"

typedef struct acc { float *b; size_t n, cap; } acc;

static int put(void *ud, const float *pcm, size_t k) {
    acc *a = ud;
    if (a->n + k > a->cap) return 1;
    memcpy(a->b + a->n, pcm, k * sizeof *pcm);
    a->n += k;
    return 0;
}

/* espeak audio of text at 16 kHz, with lead seconds of quiet noise before
 * and trail after. */
static float *make_question(const char *text, double lead, double trail, size_t *n_out, size_t *n_speech) {
    pl_tts_params tp = pl_tts_default_params();
    tp.sample_rate = 16000;
    tp.voice = "en-us+klatt";
    pl_tts *t = NULL;
    if (pl_tts_init(ctx, &tp, &t) != PL_OK) return NULL;
    size_t cap = 16000 * 30, n = (size_t)(lead * 16000);
    float *buf = calloc(cap, sizeof *buf);
    acc a = { buf, n, cap };
    pl_status st = pl_tts_synthesize(t, text, put, &a, NULL);
    pl_tts_free(t);
    if (st != PL_OK) {
        free(buf);
        return NULL;
    }
    *n_speech = a.n - n;
    n = a.n + (size_t)(trail * 16000);
    test_rng r = { 12345 };
    for (size_t i = 0; i < n; i++) buf[i] += (float)(rng_gauss(&r) * 1e-3);
    *n_out = n;
    return buf;
}

static void push_framed(pl_voice *v, const float *x, size_t n, size_t frame) {
    for (size_t o = 0; o < n; o += frame) assert_int_equal(pl_voice_push(v, x + o, n - o < frame ? n - o : frame), PL_OK);
}

static void check_turn(ev_log *L, uint64_t turn, pl_session *s, const pl_voice_metrics **mout) {
    /* the turn's events in pipeline order */
    size_t i_start = SIZE_MAX, i_stop = SIZE_MAX, i_tr = SIZE_MAX, i_done = SIZE_MAX;
    for (size_t i = 0; i < L->n; i++) {
        if (L->ev[i].turn != turn) continue;
        pl_voice_event_type t = L->ev[i].type;
        if (t == PL_VOICE_EVENT_SPEECH_STARTED && i_start == SIZE_MAX) i_start = i;
        if (t == PL_VOICE_EVENT_SPEECH_STOPPED && i_stop == SIZE_MAX) i_stop = i;
        if (t == PL_VOICE_EVENT_TRANSCRIPT) i_tr = i;
        if (t == PL_VOICE_EVENT_RESPONSE_DONE) i_done = i;
        assert_int_not_equal(t, PL_VOICE_EVENT_ERROR);
    }
    assert_true(i_start < i_stop && i_stop < i_tr && i_tr < i_done);
    size_t first_text = SIZE_MAX, first_sent = SIZE_MAX, first_audio = SIZE_MAX, last_reason = 0;
    uint64_t next_pos = UINT64_MAX, samples = 0;
    for (size_t i = i_tr; i <= i_done; i++) {
        const ev_rec *e = &L->ev[i];
        if (e->turn != turn && e->type != PL_VOICE_EVENT_AUDIO) continue;
        if (e->type == PL_VOICE_EVENT_REASONING_DELTA) last_reason = i;
        if (e->type == PL_VOICE_EVENT_TEXT_DELTA && first_text == SIZE_MAX) first_text = i;
        if (e->type == PL_VOICE_EVENT_SENTENCE && first_sent == SIZE_MAX) first_sent = i;
        if (e->type == PL_VOICE_EVENT_AUDIO) {
            if (first_audio == SIZE_MAX) first_audio = i;
            if (next_pos != UINT64_MAX) assert_int_equal(e->pos, next_pos); /* contiguous output */
            next_pos = e->pos + e->n_pcm;
            samples += e->n_pcm;
        }
    }
    assert_true(last_reason > i_tr && last_reason < first_text); /* thoughts come first */
    assert_true(first_text < first_sent && first_sent < first_audio && first_audio < i_done);
    for (size_t i = i_done + 1; i < L->n; i++) assert_int_not_equal(L->ev[i].type, PL_VOICE_EVENT_AUDIO);

    char buf[4096];
    join(L, PL_VOICE_EVENT_REASONING_DELTA, turn, NULL, buf, sizeof buf);
    assert_string_equal(buf, REASONING);
    join(L, PL_VOICE_EVENT_TEXT_DELTA, turn, NULL, buf, sizeof buf);
    assert_string_equal(buf, ANSWER);
    join(L, PL_VOICE_EVENT_SENTENCE, turn, "|", buf, sizeof buf);
    assert_string_equal(buf, "Hello there.|I am a small model!|Goodbye now?");
    assert_null(strstr(buf, "zebra")); /* thoughts never spoken */

    /* history: the transcript as the user message, the content as the answer */
    pl_conv *c = pl_session_conv(s);
    size_t nc = pl_conv_count(c);
    assert_true(nc >= 2);
    assert_int_equal(pl_conv_role(c, nc - 1), PL_ROLE_ASSISTANT);
    assert_string_equal(pl_conv_content(c, nc - 1), ANSWER);
    assert_string_equal(pl_conv_content(c, nc - 2), L->ev[i_tr].text);

    /* metrics: present, and the stages add up */
    const pl_voice_metrics *m = &L->ev[i_done].m;
    assert_int_equal(m->turn, turn);
    for (int k = 0; k < PL_VOICE_STAGE_COUNT; k++) assert_true(pl_voice_stage_value(m, (pl_voice_stage)k) >= 0);
    double sum = m->eos_delay_ms + m->stt_ms + m->llm_ttft_ms + m->first_sentence_ms + m->tts_first_chunk_ms;
    assert_true(fabs(m->v2v_ms - sum) < 1e-6);
    /* against the event clock: speech_stopped -> first audio sample */
    double ev_span = L->ev[first_audio].t_ms - L->ev[i_stop].t_ms;
    print_message("  turn %llu: v2v %.1f ms = eos %.1f + stt %.1f + ttft %.1f + sentence %.1f + tts %.1f "
                  "(events: %.1f ms after speech_stopped)\n",
                  (unsigned long long)turn, m->v2v_ms, m->eos_delay_ms, m->stt_ms, m->llm_ttft_ms,
                  m->first_sentence_ms, m->tts_first_chunk_ms, ev_span);
    /* the events are stamped when delivered, a lock or a preemption later
     * than the stage clocks (30 ms seen under ASan on a loaded VM) */
    assert_true(fabs((m->v2v_ms - m->eos_delay_ms) - ev_span) < 100.0);
    /* the VAD waits silence_ms (500) after the end edge, rounded to frames */
    assert_true(m->eos_delay_ms >= 500.0 && m->eos_delay_ms <= 530.0);
    assert_int_equal(m->sentences, 3);
    assert_int_equal(m->finish, PL_FINISH_STOP);
    assert_false(m->interrupted);
    assert_true(m->reasoning_tokens > 0 && m->generated_tokens > m->reasoning_tokens);
    assert_true(fabs(m->tts_audio_ms - (double)samples * 1000.0 / 22050.0) < 1.0);
    assert_true(m->tts_rtf > 0);
    char json[2048];
    size_t jl = pl_voice_metrics_json(m, json, sizeof json);
    assert_true(jl < sizeof json && json[0] == '{' && json[jl - 1] == '}');
    assert_non_null(strstr(json, "\"v2v_ms\":"));
    *mout = m;
}

static void test_full_pipeline(void **state) {
    (void)state;
    pl_stt *stt = NULL;
    if (pl_stt_init(ctx, NULL, &stt) != PL_OK) skip();
    pl_tts *tts = NULL;
    if (pl_tts_init(ctx, NULL, &tts) != PL_OK) {
        pl_stt_free(stt);
        skip();
    }
    assert_int_equal(pl_tts_sample_rate(tts), 22050);
    size_t n = 0, n_speech = 0;
    float *q = make_question("What is the weather like today?", 1.0, 1.0, &n, &n_speech);
    assert_non_null(q);

    script sc = { 0 };
    script_set(&sc, "<think>" REASONING "</think>" ANSWER);
    pl_session *s = make_session(&sc, 200);
    ev_log L = { .ev = calloc(MAX_EV, sizeof(ev_rec)) };
    pl_voice_params vp = pl_voice_default_params();
    vp.session = s;
    vp.stt = stt;
    vp.tts = tts;
    vp.on_event = on_event;
    vp.ud = &L;
    vp.playback = PL_VOICE_PLAYBACK_INSTANT;
    pl_voice *v = NULL;
    assert_int_equal(pl_voice_init(ctx, &vp, &v), PL_OK);

    push_framed(v, q, n, 320);
    assert_true(pl_voice_wait_idle(v, 60000));
    const pl_voice_metrics *m1 = NULL, *m2 = NULL;
    check_turn(&L, 1, s, &m1);
    /* the speech edges bracket the synthesized speech */
    assert_true(m1->speech_ms > 0.5 * n_speech / 16.0 && m1->speech_ms < n_speech / 16.0 + 300.0);

    /* second turn: the same question again; the conversation's prefix is reused */
    push_framed(v, q, n, 320);
    assert_true(pl_voice_wait_idle(v, 60000));
    check_turn(&L, 2, s, &m2);
    assert_int_equal(pl_conv_count(pl_session_conv(s)), 4);
    assert_true(m2->cached_tokens > m1->prompt_tokens / 2);
    print_message("  turn 2: %d of %d prompt tokens from the cache\n", m2->cached_tokens, m2->prompt_tokens);

    pl_voice_summary sum;
    pl_voice_summary_get(v, &sum);
    assert_int_equal(sum.n_turns, 2);
    double lo = m1->v2v_ms < m2->v2v_ms ? m1->v2v_ms : m2->v2v_ms;
    double hi = m1->v2v_ms < m2->v2v_ms ? m2->v2v_ms : m1->v2v_ms;
    assert_true(sum.p50[PL_VOICE_STAGE_V2V] == lo && sum.p90[PL_VOICE_STAGE_V2V] == hi);

    pl_voice_free(v);
    pl_session_free(s);
    pl_tts_free(tts);
    pl_stt_free(stt);
    free(L.ev);
    free(q);
}

/* jfk.wav through the pipeline: its 1.1 s pauses fit in a 1.2 s end-of-turn
 * silence, so it is one turn; the transcript is PocketSphinx's batch result
 * on the whole utterance (WER 0.18 in docs/benchmarks.md). */
static void test_jfk(void **state) {
    (void)state;
    char buf[512], tbuf[512];
    const char *path = shared_audio("jfk.wav", buf, sizeof buf), *tpath = shared_audio("jfk.txt", tbuf, sizeof tbuf);
    if (!path || !tpath) skip();
    pl_stt *stt = NULL;
    pl_tts *tts = NULL;
    if (pl_stt_init(ctx, NULL, &stt) != PL_OK) skip();
    if (pl_tts_init(ctx, NULL, &tts) != PL_OK) {
        pl_stt_free(stt);
        skip();
    }
    size_t n;
    char *ref = test_read_file(tpath, &n);
    pl_audio *a = NULL;
    assert_int_equal(pl_audio_load_file(ctx, path, NULL, &a), PL_OK);
    script sc = { 0 };
    script_set(&sc, "<think>" REASONING "</think>" ANSWER);
    pl_session *s = make_session(&sc, 200);
    ev_log L = { .ev = calloc(MAX_EV, sizeof(ev_rec)) };
    pl_voice_params vp = pl_voice_default_params();
    vp.session = s;
    vp.stt = stt;
    vp.tts = tts;
    vp.on_event = on_event;
    vp.ud = &L;
    vp.vad.silence_ms = 1200;
    vp.playback = PL_VOICE_PLAYBACK_INSTANT;
    pl_voice *v = NULL;
    assert_int_equal(pl_voice_init(ctx, &vp, &v), PL_OK);
    push_framed(v, a->samples, a->n_frames, 320);
    static const float zeros[320];
    for (int k = 0; k < 75; k++) assert_int_equal(pl_voice_push(v, zeros, 320), PL_OK); /* 1.5 s */
    assert_true(pl_voice_wait_idle(v, 120000));
    size_t i_tr = first_of(&L, PL_VOICE_EVENT_TRANSCRIPT, 0);
    assert_true(i_tr != SIZE_MAX);
    assert_int_equal(last_of(&L, PL_VOICE_EVENT_TRANSCRIPT), i_tr); /* one turn */
    size_t nr = 0, d = pl_speech_word_distance(ctx, ref, L.ev[i_tr].text, &nr);
    print_message("  jfk through the pipeline: WER %zu/%zu: %s\n", d, nr, L.ev[i_tr].text);
    assert_true(nr > 0 && (double)d / (double)nr <= 0.25);
    const pl_voice_metrics *m = &L.ev[first_of(&L, PL_VOICE_EVENT_RESPONSE_DONE, 0)].m;
    /* the speech runs from 0.32 s to 10.36 s (the VAD's edges, see test_speech) */
    assert_true(fabs(m->speech_ms - 10040.0) < 150.0);
    assert_true(m->eos_delay_ms >= 1200.0 && m->eos_delay_ms <= 1220.0);
    assert_true(m->v2v_ms > m->eos_delay_ms + m->stt_ms);
    pl_voice_free(v);
    pl_session_free(s);
    pl_tts_free(tts);
    pl_stt_free(stt);
    pl_audio_free(a);
    free(L.ev);
    free(ref);
}

/* ---- barge-in ---- */

/* TTS double: 16 kHz, SPB samples of a 200 Hz tone per byte, chunks of 320. */
#define SPB 160
typedef struct dbl { char err[8]; } dbl;
static pl_status d_create(pl_ctx *c, const pl_tts_params *p, void **state) {
    (void)p;
    *state = pl_calloc(c, 1, sizeof(dbl));
    return *state ? PL_OK : PL_ERR_NOMEM;
}
static void d_free(void *state) { pl_free(ctx, state); }
static int d_rate(void *state) {
    (void)state;
    return 16000;
}
static pl_status d_configure(void *state, const char *voice, float speed, float pitch) {
    (void)state, (void)voice, (void)speed, (void)pitch;
    return PL_OK;
}
static pl_status d_synth(void *state, const char *text, pl_tts_sink_fn sink, void *ud) {
    (void)state;
    size_t total = strlen(text) * SPB;
    int16_t chunk[320];
    for (size_t o = 0; o < total; o += 320) {
        size_t k = total - o < 320 ? total - o : 320;
        for (size_t i = 0; i < k; i++) chunk[i] = (int16_t)(8000 * sin(2 * M_PI * 200 * (double)(o + i) / 16000));
        if (sink(ud, chunk, k)) return PL_ERR_CANCELED;
    }
    return PL_OK;
}
static const char *d_error(void *state) {
    (void)state;
    return "";
}
static const pl_tts_backend tts_double = { .name = "double", .description = "test double", .create = d_create,
                                           .free = d_free, .sample_rate = d_rate, .configure = d_configure,
                                           .synthesize = d_synth, .error = d_error };

static void sleep_ms(int k) {
    struct timespec ts = { 0, k * 1000000L };
    nanosleep(&ts, NULL);
}

/* 20 ms of a voiced sound: 140 Hz and its harmonics. */
static void voiced(float *x, size_t n, size_t at) {
    for (size_t i = 0; i < n; i++) {
        double t = (double)(at + i) / 16000.0, y = 0;
        for (int h = 1; h <= 6; h++) y += sin(2 * M_PI * 140.0 * h * t) / h;
        x[i] = (float)(0.2 * y);
    }
}

static void test_barge_in(void **state) {
    (void)state;
    pl_tts_params tp = pl_tts_default_params();
    tp.backend_impl = &tts_double;
    pl_tts *tts = NULL;
    assert_int_equal(pl_tts_init(ctx, &tp, &tts), PL_OK);
    script sc = { 0 };
    script_set(&sc, "Hello there. This is the second sentence. ");
    const pl_tokenizer *tok = pl_engine_tokenizer(engine);
    pl_encode_params ep = pl_encode_default_params();
    ep.add_bos = ep.add_eos = false;
    assert_int_equal(pl_tokenizer_encode(tok, NULL, "la ", 3, &ep, sc.filler, 8, &sc.n_filler), PL_OK);
    sc.filler_sleep_us = 2000; /* generation goes on, slowly, until the barge-in */
    pl_session *s = make_session(&sc, 400);
    ev_log L = { .ev = calloc(MAX_EV, sizeof(ev_rec)) };
    pl_voice_params vp = pl_voice_default_params();
    vp.session = s;
    vp.tts = tts;
    vp.on_event = on_event;
    vp.ud = &L;
    vp.vad.frame_ms = 30; /* the bound asserted below: one frame */
    vp.max_sentence_bytes = 4096; /* the filler never makes a third sentence */
    vp.playback = PL_VOICE_PLAYBACK_ACK;
    pl_voice *v = NULL;
    assert_int_equal(pl_voice_init(ctx, &vp, &v), PL_OK);

    /* the room: 0.5 s of quiet noise for the VAD's floor */
    float frame[320];
    test_rng r = { 99 };
    for (int f = 0; f < 25; f++) {
        for (int i = 0; i < 320; i++) frame[i] = (float)(rng_gauss(&r) * 1e-3);
        assert_int_equal(pl_voice_push(v, frame, 320), PL_OK);
    }
    const char *q = "Tell me something.";
    assert_int_equal(pl_voice_submit_text(v, q, strlen(q)), PL_OK);

    /* both sentences synthesized: 12 + 28 bytes */
    const uint64_t s1 = 12 * SPB, s2 = 28 * SPB;
    for (int k = 0; k < 5000 && atomic_load(&L.audio_samples) < s1 + s2; k++) sleep_ms(1);
    assert_int_equal(atomic_load(&L.audio_samples), s1 + s2);
    /* the listener has heard the first sentence and half of the second */
    pl_voice_played(v, s1 + s2 / 2);
    uint64_t played = 0;
    assert_int_equal(pl_voice_output_pos(v, &played), s1 + s2);
    assert_int_equal(played, s1 + s2 / 2);

    /* the user talks over it */
    size_t i_started = SIZE_MAX;
    size_t pushed = 0;
    for (int f = 0; f < 100 && i_started == SIZE_MAX; f++) {
        voiced(frame, 320, pushed);
        pushed += 320;
        assert_int_equal(pl_voice_push(v, frame, 320), PL_OK);
        i_started = first_of(&L, PL_VOICE_EVENT_SPEECH_STARTED, 0);
    }
    assert_true(i_started != SIZE_MAX);
    assert_true(pl_voice_wait_idle(v, 10000));

    /* nothing of the response was delivered after speech_started */
    assert_true(last_of(&L, PL_VOICE_EVENT_AUDIO) < i_started);
    assert_int_equal(atomic_load(&L.audio_samples), s1 + s2);
    size_t i_tr = first_of(&L, PL_VOICE_EVENT_TRUNCATED, 0), i_done = first_of(&L, PL_VOICE_EVENT_RESPONSE_DONE, 0);
    assert_true(i_tr != SIZE_MAX && i_done != SIZE_MAX && i_started < i_tr && i_tr < i_done);
    /* played: "Hello there." whole, 14 of the 28 bytes of the second, cut at the word end */
    assert_string_equal(L.ev[i_tr].text, "Hello there. This is the");
    assert_int_equal(L.ev[i_tr].pos, s1 + s2 / 2);
    pl_conv *c = pl_session_conv(s);
    assert_int_equal(pl_conv_count(c), 2);
    assert_string_equal(pl_conv_content(c, 0), q);
    assert_int_equal(pl_conv_role(c, 1), PL_ROLE_ASSISTANT);
    assert_string_equal(pl_conv_content(c, 1), "Hello there. This is the");

    const pl_voice_metrics *m = &L.ev[i_done].m;
    assert_true(m->interrupted);
    assert_int_equal(m->finish, PL_FINISH_CANCEL);
    assert_true(fabs(m->played_ms - (double)(s1 + s2 / 2) / 16.0) < 1e-9);
    print_message("  barge-in: generation and synthesis stopped %.3f ms after the speech was detected "
                  "(frame %d ms), %d tokens generated\n", m->cancel_ms, vp.vad.frame_ms, m->generated_tokens);
    assert_true(m->cancel_ms >= 0 && m->cancel_ms <= vp.vad.frame_ms);
    assert_true(m->generated_tokens > (int32_t)sc.n); /* it was still generating */

    pl_voice_free(v);
    pl_session_free(s);
    pl_tts_free(tts);
    free(L.ev);
}

/* Nothing played yet: the answer and the user's words are taken back and
 * carried in front of the next utterance. */
static void test_barge_in_unheard(void **state) {
    (void)state;
    pl_tts_params tp = pl_tts_default_params();
    tp.backend_impl = &tts_double;
    pl_tts *tts = NULL;
    assert_int_equal(pl_tts_init(ctx, &tp, &tts), PL_OK);
    script sc = { 0 };
    script_set(&sc, "Hello there. ");
    const pl_tokenizer *tok = pl_engine_tokenizer(engine);
    pl_encode_params ep = pl_encode_default_params();
    ep.add_bos = ep.add_eos = false;
    assert_int_equal(pl_tokenizer_encode(tok, NULL, "la ", 3, &ep, sc.filler, 8, &sc.n_filler), PL_OK);
    sc.filler_sleep_us = 2000;
    pl_session *s = make_session(&sc, 400);
    ev_log L = { .ev = calloc(MAX_EV, sizeof(ev_rec)) };
    pl_voice_params vp = pl_voice_default_params();
    vp.session = s;
    vp.tts = tts;
    vp.on_event = on_event;
    vp.ud = &L;
    pl_voice *v = NULL;
    assert_int_equal(pl_voice_init(ctx, &vp, &v), PL_OK);
    assert_int_equal(pl_voice_submit_text(v, "first words", 11), PL_OK);
    for (int k = 0; k < 5000 && atomic_load(&L.audio_samples) < 12 * SPB; k++) sleep_ms(1);
    pl_voice_cancel(v); /* nothing acknowledged as played */
    assert_true(pl_voice_wait_idle(v, 10000));
    size_t i_tr = first_of(&L, PL_VOICE_EVENT_TRUNCATED, 0);
    assert_true(i_tr != SIZE_MAX);
    assert_string_equal(L.ev[i_tr].text, "");
    assert_int_equal(pl_conv_count(pl_session_conv(s)), 0);

    /* the next turn answers both */
    sc.n_filler = 0;
    sc.i = 0;
    assert_int_equal(pl_voice_submit_text(v, "and more", 8), PL_OK);
    assert_true(pl_voice_wait_idle(v, 10000));
    pl_conv *c = pl_session_conv(s);
    assert_int_equal(pl_conv_count(c), 2);
    assert_string_equal(pl_conv_content(c, 0), "first words and more");
    assert_string_equal(pl_conv_content(c, 1), "Hello there. "); /* the content as generated */
    pl_voice_free(v);
    pl_session_free(s);
    pl_tts_free(tts);
    free(L.ev);
}

/* ---- the CLI ---- */

/* Run $PL_BIN with args, stdout and stderr to files under dir; exit code. */
static int run_cli(const char *dir, const char *args, char **out, char **err) {
    char cmd[4096], o[600], e[600];
    snprintf(o, sizeof o, "%s/out", dir);
    snprintf(e, sizeof e, "%s/err", dir);
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s' </dev/null", getenv("PL_BIN"), args, o, e);
    int st = system(cmd);
    size_t n;
    *out = test_read_file(o, &n);
    *err = test_read_file(e, &n);
    assert_non_null(*out);
    assert_non_null(*err);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_cli(void **state) {
    (void)state;
    const char *bin = getenv("PL_BIN"), *fx = getenv("PL_FIXTURE_DIR");
    if (!bin || !fx) skip();
    size_t n = 0, n_speech = 0;
    float *q = make_question("Please tell me a story.", 0.5, 0.2, &n, &n_speech);
    if (!q) skip();
    char dir[] = "/tmp/pl_voice_cli_XXXXXX", wav[600], ans[600], args[2048];
    assert_non_null(mkdtemp(dir));
    snprintf(wav, sizeof wav, "%s/q.wav", dir);
    snprintf(ans, sizeof ans, "%s/a.wav", dir);
    assert_int_equal(pl_audio_save(ctx, wav, PL_AUDIO_FORMAT_WAV, q, n, 16000, 1), PL_OK);
    free(q);

    /* a random-weight fixture made to say words: one turn, spoken text, audio out */
    snprintf(args, sizeof args, "voice -m '%s/tiny-f32.gguf' --in '%s' --out '%s' --fixture-words -n 40 --json -t 1",
             fx, wav, ans);
    char *out, *err;
    int code = run_cli(dir, args, &out, &err);
    if (code != 0) print_message("stderr: %s\n", err);
    assert_int_equal(code, 0);
    const char *head = "{\"turns\":[{\"transcript\":\"";
    assert_true(strncmp(out, head, strlen(head)) == 0);
    assert_non_null(strstr(out, "\"spoken\":\""));
    assert_non_null(strstr(out, "\"v2v_ms\":"));
    assert_null(strstr(out, "\"metrics\":null"));
    pl_audio *a = NULL;
    assert_int_equal(pl_audio_load_file(ctx, ans, NULL, &a), PL_OK);
    assert_true(a->src_rate == 22050 && a->src_seconds > 0.5); /* 40 tokens: a few words spoken */
    pl_audio_free(a);
    free(out);
    free(err);

    /* text output: the sections and the table */
    snprintf(args, sizeof args, "voice -m '%s/tiny-f32.gguf' --in '%s' --fixture-words -n 20 -t 1", fx, wav);
    assert_int_equal(run_cli(dir, args, &out, &err), 0);
    assert_non_null(strstr(out, "transcript: "));
    assert_non_null(strstr(out, "spoken: "));
    assert_non_null(strstr(out, "v2v_ms"));
    free(out);
    free(err);

    /* --mic on a capture device that does not exist: a clear message and
     * exit 1 (tests/speech/test_voice_mic.c has the rest of --mic) */
    snprintf(args, sizeof args, "voice -m '%s/tiny-f32.gguf' --mic --mic-device pl-no-such-mic", fx);
    assert_int_equal(run_cli(dir, args, &out, &err), 1);
    assert_non_null(strstr(err, "parley voice: --mic: capture device 'pl-no-such-mic'"));
    free(out);
    free(err);
    /* usage errors */
    snprintf(args, sizeof args, "voice -m '%s/tiny-f32.gguf'", fx);
    assert_int_equal(run_cli(dir, args, &out, &err), 2);
    free(out);
    free(err);
    snprintf(args, sizeof args, "rm -rf '%s'", dir);
    assert_int_equal(system(args), 0);
}

/* ---- pure pieces ---- */

static void test_pieces(void **state) {
    (void)state;
    double v[] = { 5, -1, 1, 4, 2, 3 };
    /* nearest rank over {1,2,3,4,5}: p50 -> rank ceil(2.5)=3 -> 3; p90 -> rank ceil(4.5)=5 -> 5 */
    assert_true(pl_voice_percentile(v, 6, 50) == 3.0);
    assert_true(pl_voice_percentile(v, 6, 90) == 5.0);
    assert_true(pl_voice_percentile(v, 6, 0) == 1.0);
    double none[] = { -1, -2 };
    assert_true(pl_voice_percentile(none, 2, 50) == -1.0);

    const char *t = "This is the second sentence.";
    assert_int_equal(pl_voice_played_bytes(t, 28, 0.5), 11);  /* 14 bytes: "This is the se" -> "This is the" */
    assert_int_equal(pl_voice_played_bytes(t, 28, 0.1), 0);   /* 2 bytes: no whole word */
    assert_int_equal(pl_voice_played_bytes(t, 28, 4.0 / 28), 4); /* exactly "This" */
    assert_int_equal(pl_voice_played_bytes(t, 28, 1.0), 28);
    assert_int_equal(pl_voice_played_bytes(t, 28, 0.0), 0);

    pl_voice_metrics m = { .turn = 3, .speech_ms = 1000, .eos_delay_ms = 510, .stt_ms = 100, .llm_ttft_ms = 20,
                           .first_sentence_ms = 30, .tts_first_chunk_ms = 5, .v2v_ms = 665, .tts_rtf = 0.01,
                           .finish = PL_FINISH_STOP, .played_ms = -1 };
    char buf[2048];
    size_t n = pl_voice_metrics_json(&m, buf, sizeof buf);
    assert_int_equal(n, strlen(buf));
    assert_non_null(strstr(buf, "\"turn\":3,"));
    assert_non_null(strstr(buf, "\"v2v_ms\":665.000,"));
    assert_non_null(strstr(buf, "\"finish\":\"stop\""));
    assert_non_null(strstr(buf, "\"cancel_ms\":null"));
    char small[16];
    assert_int_equal(pl_voice_metrics_json(&m, small, sizeof small), n); /* snprintf-style */
    assert_int_equal(strlen(small), 15);
    /* the summary: stages with no value are null */
    pl_voice_summary su = { .n_turns = 2 };
    su.n[PL_VOICE_STAGE_V2V] = 2;
    su.p50[PL_VOICE_STAGE_V2V] = 600;
    su.p90[PL_VOICE_STAGE_V2V] = 700.5;
    n = pl_voice_summary_json(&su, buf, sizeof buf);
    assert_int_equal(n, strlen(buf));
    const char *head = "{\"turns\":2,\"eos_delay_ms\":{\"p50\":null,\"p90\":null},";
    assert_true(strncmp(buf, head, strlen(head)) == 0);
    assert_non_null(strstr(buf, "\"v2v_ms\":{\"p50\":600.000,\"p90\":700.500}"));
    assert_string_equal(pl_voice_stage_name(PL_VOICE_STAGE_V2V), "v2v_ms");
    assert_string_equal(pl_voice_event_name(PL_VOICE_EVENT_TRUNCATED), "truncated");
}

static int setup(void **state) {
    (void)state;
    if (pl_ctx_init(&ctx, NULL) != PL_OK) return -1;
    const char *dir = getenv("PL_FIXTURE_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/tiny-f32.gguf", dir ? dir : ".");
    pl_model_params mp = pl_model_default_params();
    if (pl_model_load(ctx, path, &mp, &model) != PL_OK) {
        fprintf(stderr, "no fixture model %s: %s\n", path, pl_ctx_last_error(ctx));
        return -1;
    }
    return pl_engine_init(ctx, model, NULL, &engine) == PL_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    pl_engine_free(engine);
    pl_model_free(model);
    pl_ctx_free(ctx);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_barge_in),
        cmocka_unit_test(test_barge_in_unheard),
        cmocka_unit_test(test_full_pipeline),
        cmocka_unit_test(test_jfk),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
