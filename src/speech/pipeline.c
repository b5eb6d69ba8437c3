/*
 * pipeline.c - the voice pipeline (parley/voice.h): PCM -> VAD -> STT ->
 * chat session -> speakable text -> sentences -> TTS -> PCM, with barge-in.
 *
 * Three threads share one mutex (mu) for the pipeline state and one (ev_mu)
 * that serializes event delivery. Lock order: ev_mu before mu; nothing holds
 * mu while taking ev_mu or calling out (events, STT, LLM, TTS).
 *
 *   push thread  (the caller)  resample, VAD, capture the utterance, barge-in
 *   turn thread                STT, session turn, text stages, truncation
 *   tts thread                 one queued sentence at a time
 *
 * Memory: three utterance buffers (capture, pending, working) of
 * max_utterance_s at 16 kHz each (30 s: 1.9 MB each), the response's spoken
 * text (64 KiB) and its sentence table, all made at init.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "parley/voice.h"
#include "speech/speech_int.h"

#define MAX_SENTENCES 256          /* per response; later sentences are not spoken */
#define SPOKEN_CAP    65536        /* spoken text per response, sentences NUL-separated */
#define TEXT_CAP      16384        /* a user message (carried text + transcript) */
#define HISTORY       1024         /* turns kept for the summary */
#define PUSH_BLOCK    4096         /* input frames per resampler call */
#define TAIL_MS       100          /* audio kept after the speech's end edge for the STT */

typedef struct utt_buf {
    float   *pcm;
    size_t   n, cap;
    uint64_t start;        /* input position (16 kHz) of pcm[0] */
    uint64_t edge_start, edge_end, detected;
    uint64_t t_detect_ns;  /* wall time of the speech_stopped decision (or the submit) */
    uint64_t starts;       /* speech starts seen when posted */
    bool     is_text;
    char    *text;         /* [TEXT_CAP] for submitted text */
    size_t   text_len;
} utt_buf;

typedef struct sentence {
    size_t   off, len;           /* in spoken */
    uint64_t out_start, out_end; /* output stream positions of its audio */
    bool     started, done;      /* audio begun; synthesis completed */
} sentence;

struct pl_voice {
    pl_ctx         *ctx;
    pl_voice_params p;
    pl_vad         *vad;
    pl_resampler   *rs;          /* NULL at 16 kHz input */
    float          *rsbuf;
    size_t          rsbuf_cap;
    int             out_rate;
    uint64_t        t0;

    pthread_mutex_t mu, ev_mu;
    pthread_cond_t  cv_turn, cv_tts, cv_idle;
    pthread_t       th_turn, th_tts;
    bool            have_turn, have_tts, stop;

    /* push thread only */
    utt_buf        *capb;
    bool            capturing;
    uint64_t        cap_next;    /* input position the capture has reached */
    const float    *chunk;       /* the piece pl_vad_feed is looking at */
    uint64_t        chunk_pos;
    size_t          chunk_n;

    /* under mu */
    utt_buf        *pend, *work;
    bool            pend_ready, busy;
    uint64_t        speech_starts, turn_no;
    bool            resp_active;     /* from the response's start until its TTS drained */
    bool            resp_has_msg;    /* the last assistant message is the last response's */
    uint64_t        resp_turn;
    bool            trunc_pending;   /* a barge-in's record, for the turn thread to apply: */
    uint64_t        trunc_played, trunc_turn, t_barge_ns;
    char           *trunc_text;      /* [SPOKEN_CAP] what was played, taken at the barge-in */
    bool            tts_synth;       /* the tts thread is inside pl_tts_synthesize */
    bool            tts_busy_at_barge;
    uint64_t        t_tts_stopped;   /* when a synthesis ended by a cancel returned */
    size_t          trunc_len;
    double          trunc_played_ms;
    uint64_t        out_emitted, out_played, clk_ns, clk_pos;
    size_t          n_sent, sent_next;
    bool            resp_end_queued, tts_resp_done;
    double          tts_ms, tts_audio_ms;
    uint64_t        t_first_audio;
    pl_voice_metrics *hist;          /* [HISTORY] ring */
    uint64_t        n_hist;
    double         *scratch;         /* [HISTORY] for percentiles */

    _Atomic int     cancel;          /* the session's cancel flag */

    /* turn thread (sentences are read by the tts thread under the queue rules) */
    sentence        sent[MAX_SENTENCES];
    char           *spoken;
    size_t          spoken_len;
    char           *text, *carry, *kept;
    size_t          carry_len;
    pl_speakable   *sp;
    pl_sentences   *se;
    uint64_t        cur_turn, t_first_tok, t_first_sent;
    size_t          cur_sent;        /* tts thread: the sentence being synthesized */
};

/* ---- small helpers ---- */

static uint64_t now_ns(void) { return pl_time_ns(); }
static double ms(uint64_t a, uint64_t b) { return b >= a ? (double)(b - a) / 1e6 : -(double)(a - b) / 1e6; }

static void emit(pl_voice *v, pl_voice_event *ev) {
    if (!v->p.on_event) return;
    ev->t_ms = ms(v->t0, now_ns());
    pl_voice_event_fn fn = v->p.on_event;
    fn(v->p.ud, ev);
}

/* Emit one event under ev_mu (the caller must not hold ev_mu or mu). */
static void emit_text(pl_voice *v, pl_voice_event_type t, uint64_t turn, const char *text, size_t len,
                      uint64_t pos) {
    pl_voice_event ev = { .type = t, .turn = turn, .text = text ? text : "", .len = text ? len : 0, .pos = pos };
    pthread_mutex_lock(&v->ev_mu);
    emit(v, &ev);
    pthread_mutex_unlock(&v->ev_mu);
}

static void emit_error(pl_voice *v, uint64_t turn, pl_status st, const char *what, const char *detail) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s: %s", what, detail && detail[0] ? detail : pl_status_str(st));
    pl_voice_event ev = { .type = PL_VOICE_EVENT_ERROR, .turn = turn, .text = buf, .len = strlen(buf), .status = st };
    pthread_mutex_lock(&v->ev_mu);
    emit(v, &ev);
    pthread_mutex_unlock(&v->ev_mu);
}

/* Output samples played by now (mu held). */
static uint64_t played_locked(pl_voice *v) {
    switch (v->p.playback) {
    case PL_VOICE_PLAYBACK_INSTANT:
        return v->out_emitted;
    case PL_VOICE_PLAYBACK_CLOCK: {
        uint64_t el = now_ns() - v->clk_ns;
        uint64_t p = v->clk_pos + (uint64_t)((double)el * 1e-9 * v->out_rate);
        return p < v->out_emitted ? p : v->out_emitted;
    }
    default:
        return v->out_played < v->out_emitted ? v->out_played : v->out_emitted;
    }
}

/* ---- events and names ---- */

static const char *const event_names[PL_VOICE_EVENT_COUNT] = {
    [PL_VOICE_EVENT_SPEECH_STARTED] = "speech_started", [PL_VOICE_EVENT_SPEECH_STOPPED] = "speech_stopped",
    [PL_VOICE_EVENT_TRANSCRIPT] = "transcript",         [PL_VOICE_EVENT_REASONING_DELTA] = "reasoning_delta",
    [PL_VOICE_EVENT_TEXT_DELTA] = "text_delta",         [PL_VOICE_EVENT_SENTENCE] = "sentence",
    [PL_VOICE_EVENT_AUDIO] = "audio",                   [PL_VOICE_EVENT_RESPONSE_DONE] = "response_done",
    [PL_VOICE_EVENT_TRUNCATED] = "truncated",           [PL_VOICE_EVENT_ERROR] = "error",
};

const char *pl_voice_event_name(pl_voice_event_type t) {
    return (unsigned)t < PL_VOICE_EVENT_COUNT ? event_names[t] : "unknown";
}

pl_voice_params pl_voice_default_params(void) {
    pl_voice_params p = { 0 };
    p.input_rate = PL_AUDIO_STT_RATE;
    p.vad = pl_vad_default_params();
    p.max_utterance_s = 30.0;
    p.playback = PL_VOICE_PLAYBACK_ACK;
    p.barge_in = true;
    p.max_sentence_bytes = 400;
    p.speakable = pl_speakable_default_params();
    return p;
}

int pl_voice_output_rate(const pl_voice *v) { return v ? v->out_rate : 0; }

/* ---- barge-in (push thread, or pl_voice_cancel) ---- */

/* The text of the last response that was played, into out (SPOKEN_CAP); its
 * audio played in ms into *played_ms. mu held (the sentence table is written
 * under it). */
static size_t played_text_locked(pl_voice *v, uint64_t played, char *out, double *played_ms) {
    size_t n = 0;
    uint64_t first = UINT64_MAX;
    double spb = 0; /* output samples per byte of the completed sentences: estimates a cut one */
    uint64_t samples = 0;
    size_t bytes = 0;
    for (size_t i = 0; i < v->n_sent; i++)
        if (v->sent[i].done && v->sent[i].started) {
            samples += v->sent[i].out_end - v->sent[i].out_start;
            bytes += v->sent[i].len;
        }
    if (bytes) spb = (double)samples / (double)bytes;
    for (size_t i = 0; i < v->n_sent; i++) {
        const sentence *s = &v->sent[i];
        if (!s->started || s->out_start >= played) break;
        if (first == UINT64_MAX) first = s->out_start;
        double total = (double)(s->out_end - s->out_start);
        if (!s->done && spb > 0 && spb * (double)s->len > total) total = spb * (double)s->len;
        double frac = total > 0 ? (double)(played - s->out_start) / total : 1.0;
        size_t k = pl_voice_played_bytes(v->spoken + s->off, s->len, frac);
        if (k == 0) break;
        if (n) out[n++] = ' ';
        memcpy(out + n, v->spoken + s->off, k);
        n += k;
        if (k < s->len) break;
    }
    out[n] = 0;
    *played_ms = first == UINT64_MAX || played < first ? 0.0 : (double)(played - first) * 1000.0 / v->out_rate;
    return n;
}


/* Stop the response in progress or being played (mu held). */
static void cancel_locked(pl_voice *v) {
    uint64_t played = played_locked(v);
    bool playing = played < v->out_emitted;
    if (!(v->busy || v->resp_active || playing)) return;
    atomic_store(&v->cancel, 1);
    pl_tts_cancel(v->p.tts);
    v->tts_busy_at_barge = v->tts_synth;
    if (v->resp_has_msg && (v->resp_active || playing) && !v->trunc_pending) {
        v->trunc_pending = true;
        v->trunc_played = played;
        v->trunc_turn = v->resp_turn;
        v->trunc_len = played_text_locked(v, played, v->trunc_text, &v->trunc_played_ms);
        v->t_barge_ns = now_ns();
        pthread_cond_broadcast(&v->cv_turn);
    }
}

void pl_voice_cancel(pl_voice *v) {
    if (!v) return;
    pthread_mutex_lock(&v->mu);
    cancel_locked(v);
    pthread_mutex_unlock(&v->mu);
}

/* ---- capture (push thread) ---- */

static void cap_append(utt_buf *b, const float *x, size_t n) {
    size_t room = b->cap - b->n;
    if (n > room) n = room; /* max_utterance_s; the VAD cuts the turn before this */
    memcpy(b->pcm + b->n, x, n * sizeof *x);
    b->n += n;
}

/* Append the current chunk's samples from cap_next up to input position upto. */
static void cap_chunk(pl_voice *v, uint64_t upto) {
    uint64_t end = v->chunk_pos + v->chunk_n;
    if (upto > end) upto = end;
    uint64_t lo = v->cap_next > v->chunk_pos ? v->cap_next : v->chunk_pos;
    if (v->chunk && upto > lo) cap_append(v->capb, v->chunk + (lo - v->chunk_pos), (size_t)(upto - lo));
    if (upto > v->cap_next) v->cap_next = upto;
}

/* Hand the captured utterance to the turn thread (mu held). A job the turn
 * thread has not taken yet is extended instead (the user paused briefly). */
static void post_locked(pl_voice *v) {
    utt_buf *c = v->capb;
    if (v->pend_ready && !v->pend->is_text) {
        cap_append(v->pend, c->pcm, c->n);
        v->pend->edge_end = c->edge_end;
        v->pend->detected = c->detected;
        v->pend->t_detect_ns = c->t_detect_ns;
    } else if (!v->pend_ready) {
        utt_buf *t = v->pend;
        v->pend = c;
        v->capb = t;
        v->pend_ready = true;
    } /* else a submitted text is queued: this utterance waits for nothing and is dropped */
    v->pend->starts = v->speech_starts;
    v->capb->n = 0;
    pthread_cond_broadcast(&v->cv_turn);
}

static void on_vad(void *ud, const pl_vad_event *ev) {
    pl_voice *v = ud;
    utt_buf *c = v->capb;
    if (ev->type == PL_VAD_EVENT_SPEECH_STARTED) {
        pthread_mutex_lock(&v->mu);
        v->speech_starts++;
        if (v->p.barge_in) cancel_locked(v);
        uint64_t turn = v->turn_no + 1 + (v->pend_ready ? 1 : 0);
        pthread_mutex_unlock(&v->mu);
        v->capturing = true;
        c->n = 0;
        c->is_text = false;
        c->start = ev->pad_start;
        c->edge_start = ev->edge;
        cap_append(c, ev->audio, ev->n_audio);
        v->cap_next = ev->detected;
        emit_text(v, PL_VOICE_EVENT_SPEECH_STARTED, turn, NULL, 0, ev->edge);
        return;
    }
    if (!v->capturing) return;
    cap_chunk(v, ev->detected);
    uint64_t tail = (uint64_t)PL_AUDIO_STT_RATE * TAIL_MS / 1000, keep_end = ev->edge + tail;
    if (keep_end > c->start && keep_end - c->start < c->n) c->n = (size_t)(keep_end - c->start);
    c->edge_end = ev->edge;
    c->detected = ev->detected;
    c->t_detect_ns = now_ns();
    v->capturing = false;
    pthread_mutex_lock(&v->mu);
    uint64_t turn = v->turn_no + 1 + (v->pend_ready ? 1 : 0);
    if (v->pend_ready && !v->pend->is_text) turn--; /* merged into the queued one */
    post_locked(v);
    pthread_mutex_unlock(&v->mu);
    emit_text(v, PL_VOICE_EVENT_SPEECH_STOPPED, turn, NULL, 0, ev->edge);
}

static pl_status feed16(pl_voice *v, const float *x, size_t n) {
    v->chunk = x;
    v->chunk_pos = pl_vad_position(v->vad);
    v->chunk_n = n;
    pl_status st = pl_vad_feed(v->vad, x, n);
    if (v->capturing) cap_chunk(v, v->chunk_pos + n);
    v->chunk = NULL;
    return st;
}

pl_status pl_voice_push(pl_voice *v, const float *pcm, size_t n) {
    if (!v || (!pcm && n)) return PL_ERR_INVALID_ARG;
    if (!v->rs) return feed16(v, pcm, n);
    while (n > 0) {
        size_t take = n < PUSH_BLOCK ? n : PUSH_BLOCK, used = 0, made = 0;
        pl_status st = pl_resampler_process(v->rs, pcm, take, v->rsbuf, v->rsbuf_cap, false, &used, &made);
        if (st != PL_OK) return st;
        if (made && (st = feed16(v, v->rsbuf, made)) != PL_OK) return st;
        if (used == 0 && made == 0) break;
        pcm += used;
        n -= used;
    }
    return PL_OK;
}

pl_status pl_voice_flush(pl_voice *v) {
    if (!v) return PL_ERR_INVALID_ARG;
    v->chunk = NULL;
    v->chunk_pos = v->chunk_n = 0;
    return pl_vad_flush(v->vad);
}

pl_status pl_voice_submit_text(pl_voice *v, const char *text, size_t len) {
    if (!v || (!text && len)) return PL_ERR_INVALID_ARG;
    if (len >= TEXT_CAP) return PL_ERR_RANGE;
    pthread_mutex_lock(&v->mu);
    if (v->pend_ready) {
        pthread_mutex_unlock(&v->mu);
        return PL_ERR_BUSY;
    }
    utt_buf *b = v->pend;
    b->is_text = true;
    memcpy(b->text, text, len);
    b->text[len] = 0;
    b->text_len = len;
    b->n = 0;
    b->edge_start = b->edge_end = b->detected = b->start = 0;
    b->t_detect_ns = now_ns();
    b->starts = v->speech_starts;
    v->pend_ready = true;
    pthread_cond_broadcast(&v->cv_turn);
    pthread_mutex_unlock(&v->mu);
    return PL_OK;
}

void pl_voice_played(pl_voice *v, uint64_t n) {
    if (!v) return;
    pthread_mutex_lock(&v->mu);
    v->out_played += n;
    pthread_mutex_unlock(&v->mu);
}

uint64_t pl_voice_output_pos(pl_voice *v, uint64_t *played) {
    if (!v) return 0;
    pthread_mutex_lock(&v->mu);
    uint64_t e = v->out_emitted;
    if (played) *played = played_locked(v);
    pthread_mutex_unlock(&v->mu);
    return e;
}

/* ---- the tts thread ---- */

static int on_chunk(void *ud, const float *pcm, size_t n) {
    pl_voice *v = ud;
    pthread_mutex_lock(&v->ev_mu);
    if (atomic_load(&v->cancel)) { /* checked under ev_mu: nothing after speech_started */
        pthread_mutex_unlock(&v->ev_mu);
        return 1;
    }
    pthread_mutex_lock(&v->mu);
    if (v->p.playback == PL_VOICE_PLAYBACK_CLOCK && played_locked(v) >= v->out_emitted) {
        v->clk_ns = now_ns(); /* underrun or first sample: playback (re)starts now */
        v->clk_pos = v->out_emitted;
    }
    uint64_t pos = v->out_emitted;
    v->out_emitted += n;
    sentence *s = &v->sent[v->cur_sent];
    if (!s->started) {
        s->started = true;
        s->out_start = pos;
    }
    s->out_end = pos + n;
    if (!v->t_first_audio) v->t_first_audio = now_ns();
    uint64_t turn = v->resp_turn;
    pthread_mutex_unlock(&v->mu);
    pl_voice_event ev = { .type = PL_VOICE_EVENT_AUDIO, .turn = turn, .text = "", .pcm = pcm, .n_pcm = n,
                          .sample_rate = v->out_rate, .pos = pos };
    emit(v, &ev);
    pthread_mutex_unlock(&v->ev_mu);
    return 0;
}

static void *tts_main(void *arg) {
    pl_voice *v = arg;
    pthread_mutex_lock(&v->mu);
    for (;;) {
        while (!v->stop && v->sent_next >= v->n_sent && !(v->resp_end_queued && !v->tts_resp_done))
            pthread_cond_wait(&v->cv_tts, &v->mu);
        if (v->stop) break;
        if (v->sent_next < v->n_sent) {
            size_t i = v->sent_next++;
            v->cur_sent = i;
            const char *text = v->spoken + v->sent[i].off; /* immutable until the response ends */
            uint64_t turn = v->resp_turn;
            v->tts_synth = true;
            pthread_mutex_unlock(&v->mu);
            pl_tts_stats ts = { 0 };
            pl_status st = PL_ERR_CANCELED;
            if (!atomic_load(&v->cancel)) st = pl_tts_synthesize(v->p.tts, text, on_chunk, v, &ts);
            if (st != PL_OK && st != PL_ERR_CANCELED)
                emit_error(v, turn, st, "tts", pl_tts_last_error(v->p.tts));
            pthread_mutex_lock(&v->mu);
            v->tts_synth = false;
            if (st == PL_ERR_CANCELED) v->t_tts_stopped = now_ns();
            v->tts_ms += ts.total_ms;
            v->tts_audio_ms += ts.audio_ms;
            v->sent[i].done = st == PL_OK;
            continue;
        }
        v->tts_resp_done = true; /* every sentence of the response is through */
        pthread_cond_broadcast(&v->cv_idle);
    }
    pthread_mutex_unlock(&v->mu);
    return NULL;
}

/* ---- the turn thread: text stages ---- */

static void on_sentence(void *ud, const char *text, size_t len) {
    pl_voice *v = ud;
    if (atomic_load(&v->cancel)) return;
    if (v->n_sent >= MAX_SENTENCES || v->spoken_len + len + 1 > SPOKEN_CAP) return;
    size_t off = v->spoken_len;
    memcpy(v->spoken + off, text, len);
    v->spoken[off + len] = 0;
    v->spoken_len += len + 1;
    if (!v->t_first_sent) v->t_first_sent = now_ns();
    emit_text(v, PL_VOICE_EVENT_SENTENCE, v->cur_turn, v->spoken + off, len, 0);
    pthread_mutex_lock(&v->mu);
    v->sent[v->n_sent] = (sentence){ .off = off, .len = len };
    v->n_sent++;
    pthread_cond_signal(&v->cv_tts);
    pthread_mutex_unlock(&v->mu);
}

static void on_speakable(void *ud, const char *text, size_t len) {
    pl_voice *v = ud;
    pl_sentences_feed(v->se, text, len, on_sentence, v);
}

/* Deltas are not NUL-terminated: copy through a bounded buffer (kept is free
 * during generation). */
static void on_text(void *ud, pl_channel ch, const char *text, size_t len) {
    pl_voice *v = ud;
    pl_voice_event_type t = ch == PL_CHANNEL_REASONING ? PL_VOICE_EVENT_REASONING_DELTA : PL_VOICE_EVENT_TEXT_DELTA;
    for (size_t o = 0; o < len;) {
        size_t k = len - o < SPOKEN_CAP - 1 ? len - o : SPOKEN_CAP - 1;
        memcpy(v->kept, text + o, k);
        v->kept[k] = 0;
        emit_text(v, t, v->cur_turn, v->kept, k, 0);
        o += k;
    }
    if (ch == PL_CHANNEL_CONTENT && !atomic_load(&v->cancel)) pl_speakable_feed(v->sp, text, len, on_speakable, v);
}

static void on_token(void *ud, pl_token id) {
    (void)id;
    pl_voice *v = ud;
    if (!v->t_first_tok) v->t_first_tok = now_ns();
}

/* ---- truncation (turn thread) ---- */

/* Apply a pending barge-in's record to the conversation (turn thread); the
 * turn's metrics (m, or the history's entry) get interrupted and played_ms. */
static void apply_truncation(pl_voice *v, pl_voice_metrics *m) {
    pthread_mutex_lock(&v->mu);
    if (!v->trunc_pending) {
        pthread_mutex_unlock(&v->mu);
        return;
    }
    v->trunc_pending = false;
    size_t n = v->trunc_len;
    memcpy(v->kept, v->trunc_text, n + 1); /* the record may be rewritten once unlocked */
    double played_ms = v->trunc_played_ms;
    uint64_t turn = v->trunc_turn, played = v->trunc_played;
    v->resp_has_msg = false;
    pl_voice_metrics *h = v->n_hist && v->hist[(v->n_hist - 1) % HISTORY].turn == turn
                              ? &v->hist[(v->n_hist - 1) % HISTORY]
                              : NULL;
    if (h) {
        h->interrupted = true;
        h->played_ms = played_ms;
    }
    pthread_mutex_unlock(&v->mu);
    if (m) {
        m->interrupted = true;
        m->played_ms = played_ms;
    }
    pl_conv *c = pl_session_conv(v->p.session);
    size_t cnt = pl_conv_count(c);
    if (cnt && pl_conv_role(c, cnt - 1) == PL_ROLE_ASSISTANT) {
        pl_conv_pop(c);
        cnt--;
    }
    pl_status st = PL_OK;
    if (n) {
        st = pl_conv_add(c, PL_ROLE_ASSISTANT, v->kept, n);
    } else if (cnt && pl_conv_role(c, cnt - 1) == PL_ROLE_USER) {
        /* nothing was heard: the user was still talking; their words go in
         * front of the next utterance */
        const char *u = pl_conv_content(c, cnt - 1);
        size_t k = pl_speech_copy_text(v->text, TEXT_CAP, u, strlen(u));
        if (v->carry_len && k + 1 < TEXT_CAP) {
            v->text[k++] = ' ';
            k += pl_speech_copy_text(v->text + k, TEXT_CAP - k, v->carry, v->carry_len);
        }
        memcpy(v->carry, v->text, k + 1);
        v->carry_len = k;
        pl_conv_pop(c);
    }
    if (st != PL_OK) emit_error(v, turn, st, "history", pl_ctx_last_error(v->ctx));
    emit_text(v, PL_VOICE_EVENT_TRUNCATED, turn, v->kept, n, played);
}

/* Apply every pending barge-in record (turn thread, before a response). */
static void apply_pending(pl_voice *v) {
    for (;;) {
        pthread_mutex_lock(&v->mu);
        bool tp = v->trunc_pending;
        pthread_mutex_unlock(&v->mu);
        if (!tp) return;
        apply_truncation(v, NULL);
    }
}

/* ---- the turn thread: one job ---- */

static void run_job(pl_voice *v, uint64_t turn) {
    utt_buf *w = v->work;
    pl_voice_metrics m = { .turn = turn, .speech_ms = -1, .first_sentence_ms = -1, .tts_first_chunk_ms = -1,
                           .v2v_ms = -1, .tts_rtf = -1, .cancel_ms = 0, .played_ms = -1 };
    v->cur_turn = turn;
    const char *heard = "";
    size_t heard_len = 0;
    if (w->is_text) {
        heard = w->text;
        heard_len = w->text_len;
        m.eos_delay_ms = 0;
    } else {
        m.speech_ms = (double)(w->edge_end - w->edge_start) * 1000.0 / PL_AUDIO_STT_RATE;
        m.eos_delay_ms = (double)(w->detected - w->edge_end) * 1000.0 / PL_AUDIO_STT_RATE;
        if (!v->p.stt) {
            emit_error(v, turn, PL_ERR_STATE, "stt", "the pipeline has no recognizer");
            return;
        }
        pl_stt_result r;
        pl_stt_reset(v->p.stt);
        pl_status st = pl_stt_feed(v->p.stt, w->pcm, w->n);
        if (st == PL_OK) st = pl_stt_finalize(v->p.stt, &r);
        if (st != PL_OK) {
            emit_error(v, turn, st, "stt", pl_stt_last_error(v->p.stt));
            return;
        }
        heard = r.text;
        heard_len = strlen(r.text);
    }
    uint64_t t_tr = now_ns();
    m.stt_ms = ms(w->t_detect_ns, t_tr);
    emit_text(v, PL_VOICE_EVENT_TRANSCRIPT, turn, heard, heard_len, 0);

    /* the user message: carried words + this transcript. A barge-in on the
     * previous answer (still playing) goes into the history first. */
    size_t n;
rebuild:
    apply_pending(v);
    n = 0;
    if (v->carry_len) {
        n = pl_speech_copy_text(v->text, TEXT_CAP, v->carry, v->carry_len);
        if (heard_len && n + 1 < TEXT_CAP) v->text[n++] = ' ';
    }
    n += pl_speech_copy_text(v->text + n, TEXT_CAP - n, heard, heard_len);

    pthread_mutex_lock(&v->mu);
    if (v->trunc_pending) { /* came in meanwhile */
        pthread_mutex_unlock(&v->mu);
        goto rebuild;
    }
    if (v->speech_starts != w->starts) { /* the user went on talking: answer it all later */
        pthread_mutex_unlock(&v->mu);
        v->carry_len = pl_speech_copy_text(v->carry, TEXT_CAP, v->text, n);
        return;
    }
    v->carry_len = 0;
    if (n == 0) {
        pthread_mutex_unlock(&v->mu);
        return;
    }
    atomic_store(&v->cancel, 0);
    pl_tts_cancel_clear(v->p.tts);
    v->resp_active = v->resp_has_msg = true;
    v->resp_turn = turn;
    v->n_sent = v->sent_next = 0;
    v->resp_end_queued = v->tts_resp_done = false;
    v->tts_busy_at_barge = false;
    v->t_tts_stopped = 0;
    v->tts_ms = v->tts_audio_ms = 0;
    v->t_first_audio = 0;
    pthread_mutex_unlock(&v->mu);
    v->spoken_len = 0;
    v->t_first_tok = v->t_first_sent = 0;
    pl_speakable_reset(v->sp);
    pl_sentences_reset(v->se);

    pl_turn_callbacks cb = { .on_text = on_text, .on_token = on_token, .cancel = &v->cancel, .ud = v };
    pl_turn_stats ts = { 0 };
    pl_status st = pl_session_turn(v->p.session, v->text, n, &cb, &ts);
    uint64_t t_llm = now_ns();
    if (st == PL_OK && !atomic_load(&v->cancel)) {
        pl_speakable_finish(v->sp, on_speakable, v);
        pl_sentences_finish(v->se, on_sentence, v);
    }
    if (st != PL_OK) emit_error(v, turn, st, "llm", pl_session_last_error(v->p.session));

    pthread_mutex_lock(&v->mu);
    v->resp_end_queued = true;
    pthread_cond_signal(&v->cv_tts);
    while (!v->tts_resp_done && !v->stop) pthread_cond_wait(&v->cv_idle, &v->mu);
    bool canceled = atomic_load(&v->cancel) != 0;
    uint64_t t_barge = v->t_barge_ns;
    /* what the barge-in had to stop: the generation (it ended at t_llm) and
     * the synthesis when one was running */
    uint64_t t_stopped = t_llm;
    if (v->tts_busy_at_barge && v->t_tts_stopped > t_stopped) t_stopped = v->t_tts_stopped;
    double tts_ms = v->tts_ms, tts_audio_ms = v->tts_audio_ms;
    uint64_t t_audio = v->t_first_audio;
    pthread_mutex_unlock(&v->mu);

    m.llm_ms = ms(t_tr, t_llm);
    m.prompt_tokens = ts.prompt_tokens;
    m.cached_tokens = ts.cached_tokens;
    m.generated_tokens = ts.generated_tokens;
    m.reasoning_tokens = ts.reasoning_tokens;
    m.gen_tok_s = ts.gen_tok_s;
    m.finish = ts.finish;
    m.sentences = (int32_t)v->n_sent;
    m.tts_ms = tts_ms;
    m.tts_audio_ms = tts_audio_ms;
    m.tts_rtf = tts_audio_ms > 0 ? tts_ms / tts_audio_ms : -1;
    m.llm_ttft_ms = v->t_first_tok ? ms(t_tr, v->t_first_tok) : -1;
    if (v->t_first_tok && v->t_first_sent) m.first_sentence_ms = ms(v->t_first_tok, v->t_first_sent);
    if (v->t_first_sent && t_audio) {
        m.tts_first_chunk_ms = ms(v->t_first_sent, t_audio);
        /* the same sum as the fields, so the figures add up exactly */
        m.v2v_ms = m.eos_delay_ms + m.stt_ms + m.llm_ttft_ms + m.first_sentence_ms + m.tts_first_chunk_ms;
    }
    if (canceled && t_barge >= w->t_detect_ns) m.cancel_ms = t_stopped > t_barge ? ms(t_barge, t_stopped) : 0.0;
    if (canceled && st == PL_OK) apply_truncation(v, &m);

    pthread_mutex_lock(&v->mu);
    v->hist[v->n_hist % HISTORY] = m;
    v->n_hist++;
    v->resp_active = false;
    pthread_mutex_unlock(&v->mu);
    pl_voice_event ev = { .type = PL_VOICE_EVENT_RESPONSE_DONE, .turn = turn, .text = "", .metrics = &m,
                          .status = st };
    pthread_mutex_lock(&v->ev_mu);
    emit(v, &ev);
    pthread_mutex_unlock(&v->ev_mu);
}

static void *turn_main(void *arg) {
    pl_voice *v = arg;
    pthread_mutex_lock(&v->mu);
    for (;;) {
        while (!v->stop && !v->pend_ready && !v->trunc_pending) pthread_cond_wait(&v->cv_turn, &v->mu);
        if (v->stop) break;
        if (v->trunc_pending && !v->resp_active) { /* a barge-in during playback */
            v->busy = true;
            pthread_mutex_unlock(&v->mu);
            apply_truncation(v, NULL);
            pthread_mutex_lock(&v->mu);
            v->busy = false;
            pthread_cond_broadcast(&v->cv_idle);
            continue;
        }
        if (!v->pend_ready) continue;
        utt_buf *t = v->work;
        v->work = v->pend;
        v->pend = t;
        v->pend_ready = false;
        v->busy = true;
        uint64_t turn = ++v->turn_no;
        pthread_mutex_unlock(&v->mu);
        run_job(v, turn);
        pthread_mutex_lock(&v->mu);
        v->busy = false;
        pthread_cond_broadcast(&v->cv_idle);
    }
    pthread_mutex_unlock(&v->mu);
    return NULL;
}

bool pl_voice_wait_idle(pl_voice *v, int timeout_ms) {
    if (!v) return true;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    if (timeout_ms >= 0) pl_timespec_add_ms(&until, timeout_ms);
    pthread_mutex_lock(&v->mu);
    bool ok = true;
    while (v->busy || v->pend_ready || v->trunc_pending) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&v->cv_idle, &v->mu);
        } else if (pthread_cond_timedwait(&v->cv_idle, &v->mu, &until) != 0) {
            ok = !(v->busy || v->pend_ready || v->trunc_pending);
            break;
        }
    }
    pthread_mutex_unlock(&v->mu);
    return ok;
}

void pl_voice_summary_get(pl_voice *v, pl_voice_summary *out) {
    memset(out, 0, sizeof *out);
    if (!v) return;
    pthread_mutex_lock(&v->mu);
    size_t n = v->n_hist < HISTORY ? (size_t)v->n_hist : HISTORY;
    out->n_turns = n;
    for (int s = 0; s < PL_VOICE_STAGE_COUNT; s++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            double x = pl_voice_stage_value(&v->hist[i], (pl_voice_stage)s);
            if (x >= 0) v->scratch[k++] = x;
        }
        out->n[s] = k;
        out->p50[s] = pl_voice_percentile(v->scratch, k, 50);
        out->p90[s] = pl_voice_percentile(v->scratch, k, 90);
    }
    pthread_mutex_unlock(&v->mu);
}

bool pl_voice_last_metrics(pl_voice *v, pl_voice_metrics *out) {
    if (!v) return false;
    pthread_mutex_lock(&v->mu);
    bool have = v->n_hist > 0;
    if (have) *out = v->hist[(v->n_hist - 1) % HISTORY];
    pthread_mutex_unlock(&v->mu);
    return have;
}

/* ---- init / free ---- */

static pl_status utt_init(pl_ctx *ctx, utt_buf **out, size_t cap) {
    utt_buf *b = pl_calloc(ctx, 1, sizeof *b);
    if (!b) return PL_ERR_NOMEM;
    *out = b;
    b->cap = cap;
    b->pcm = pl_calloc(ctx, cap ? cap : 1, sizeof *b->pcm);
    b->text = pl_malloc(ctx, TEXT_CAP);
    return b->pcm && b->text ? PL_OK : PL_ERR_NOMEM;
}

static void utt_free(pl_ctx *ctx, utt_buf *b) {
    if (!b) return;
    pl_free(ctx, b->pcm);
    pl_free(ctx, b->text);
    pl_free(ctx, b);
}

void pl_voice_free(pl_voice *v) {
    if (!v) return;
    pthread_mutex_lock(&v->mu);
    v->stop = true;
    atomic_store(&v->cancel, 1);
    if (v->p.tts) pl_tts_cancel(v->p.tts);
    pthread_cond_broadcast(&v->cv_turn);
    pthread_cond_broadcast(&v->cv_tts);
    pthread_cond_broadcast(&v->cv_idle);
    pthread_mutex_unlock(&v->mu);
    if (v->have_turn) pthread_join(v->th_turn, NULL);
    if (v->have_tts) pthread_join(v->th_tts, NULL);
    if (v->p.tts) pl_tts_cancel_clear(v->p.tts);
    pthread_mutex_destroy(&v->mu);
    pthread_mutex_destroy(&v->ev_mu);
    pthread_cond_destroy(&v->cv_turn);
    pthread_cond_destroy(&v->cv_tts);
    pthread_cond_destroy(&v->cv_idle);
    pl_ctx *ctx = v->ctx;
    pl_vad_free(v->vad);
    pl_resampler_free(v->rs);
    pl_free(ctx, v->rsbuf);
    utt_free(ctx, v->capb);
    utt_free(ctx, v->pend);
    utt_free(ctx, v->work);
    pl_free(ctx, v->hist);
    pl_free(ctx, v->scratch);
    pl_free(ctx, v->spoken);
    pl_free(ctx, v->text);
    pl_free(ctx, v->carry);
    pl_free(ctx, v->kept);
    pl_free(ctx, v->trunc_text);
    pl_speakable_free(v->sp);
    pl_sentences_free(v->se);
    pl_free(ctx, v);
}

pl_status pl_voice_init(pl_ctx *ctx, const pl_voice_params *params, pl_voice **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    if (!params || !params->session || !params->tts)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "voice: a session and a tts are required");
    pl_voice_params p = *params;
    if (p.input_rate == 0) p.input_rate = PL_AUDIO_STT_RATE;
    if (p.input_rate < 8000 || p.input_rate > 192000)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "voice: input rate %d outside 8000..192000", p.input_rate);
    if (!(p.max_utterance_s >= 1.0 && p.max_utterance_s <= 600.0))
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "voice: max_utterance_s %g outside 1..600", p.max_utterance_s);
    if ((unsigned)p.playback >= PL_VOICE_PLAYBACK_COUNT)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "voice: bad playback mode");
    if (p.max_sentence_bytes == 0) p.max_sentence_bytes = 400;
    pl_voice *v = pl_calloc(ctx, 1, sizeof *v);
    if (!v) return pl_ctx_err(ctx, PL_ERR_NOMEM, "voice: out of memory");
    v->ctx = ctx;
    v->p = p;
    v->t0 = now_ns();
    v->out_rate = pl_tts_sample_rate(p.tts);
    pthread_mutex_init(&v->mu, NULL);
    pthread_mutex_init(&v->ev_mu, NULL);
    pthread_cond_init(&v->cv_turn, NULL);
    pthread_cond_init(&v->cv_tts, NULL);
    pthread_cond_init(&v->cv_idle, NULL);

    size_t cap = 0;
    pl_status st = PL_OK;
    if (!pl_size_mul((size_t)(p.max_utterance_s * 1000.0), PL_AUDIO_STT_RATE / 1000, &cap)) st = PL_ERR_OVERFLOW;
    if (st == PL_OK) st = utt_init(ctx, &v->capb, cap);
    if (st == PL_OK) st = utt_init(ctx, &v->pend, cap);
    if (st == PL_OK) st = utt_init(ctx, &v->work, cap);
    if (st == PL_OK) {
        v->hist = pl_calloc(ctx, HISTORY, sizeof *v->hist);
        v->scratch = pl_calloc(ctx, HISTORY, sizeof *v->scratch);
        v->spoken = pl_malloc(ctx, SPOKEN_CAP);
        v->kept = pl_malloc(ctx, SPOKEN_CAP);
        v->trunc_text = pl_malloc(ctx, SPOKEN_CAP);
        v->text = pl_malloc(ctx, TEXT_CAP);
        v->carry = pl_malloc(ctx, TEXT_CAP);
        if (!v->hist || !v->scratch || !v->spoken || !v->kept || !v->trunc_text || !v->text || !v->carry) st = PL_ERR_NOMEM;
    }
    if (st != PL_OK) {
        pl_voice_free(v);
        return pl_ctx_err(ctx, st, "voice: out of memory for the buffers");
    }
    if ((st = pl_speakable_init(ctx, &p.speakable, &v->sp)) != PL_OK ||
        (st = pl_sentences_init(ctx, p.max_sentence_bytes, &v->se)) != PL_OK) {
        pl_voice_free(v);
        return st;
    }
    pl_vad_params vp = p.vad;
    vp.sample_rate = PL_AUDIO_STT_RATE;
    vp.on_event = on_vad;
    vp.ud = v;
    /* the capture buffer ends the turn before it is full */
    int max_ms = (int)(p.max_utterance_s * 1000.0) - vp.prefix_pad_ms - TAIL_MS - 100;
    if (vp.max_speech_ms <= 0 || vp.max_speech_ms > max_ms) vp.max_speech_ms = max_ms > 100 ? max_ms : 100;
    if ((st = pl_vad_init(ctx, &vp, &v->vad)) != PL_OK) {
        pl_voice_free(v);
        return st;
    }
    if (p.input_rate != PL_AUDIO_STT_RATE) {
        if ((st = pl_resampler_init(ctx, p.input_rate, PL_AUDIO_STT_RATE, 1, PL_RESAMPLE_QUALITY_MEDIUM, &v->rs)) !=
            PL_OK) {
            pl_voice_free(v);
            return st;
        }
        v->rsbuf_cap = 2 * pl_resampler_max_out(v->rs, PUSH_BLOCK) + 64; /* room for what the filter holds */
        if (!(v->rsbuf = pl_calloc(ctx, v->rsbuf_cap, sizeof *v->rsbuf))) {
            pl_voice_free(v);
            return pl_ctx_err(ctx, PL_ERR_NOMEM, "voice: out of memory");
        }
    }
    if (pthread_create(&v->th_tts, NULL, tts_main, v) == 0) v->have_tts = true;
    if (v->have_tts && pthread_create(&v->th_turn, NULL, turn_main, v) == 0) v->have_turn = true;
    if (!v->have_turn) {
        pl_voice_free(v);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "voice: cannot start the pipeline threads");
    }
    *out = v;
    return PL_OK;
}
