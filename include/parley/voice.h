/*
 * parley/voice.h - the voice pipeline: one object that holds a spoken
 * conversation.
 *
 *   PCM in (pl_voice_push) -> VAD (speech_started / speech_stopped)
 *     -> STT final transcript of the utterance
 *     -> the chat session (pl_session: same conversation, KV prefix reuse)
 *        streaming reasoning | content (thoughts are never spoken)
 *     -> pl_speakable -> pl_sentences -> TTS, one sentence at a time, each
 *        as soon as it is complete while generation goes on
 *     -> PCM out (PL_VOICE_EVENT_AUDIO)
 *
 * Threads (no busy waiting: mutex + condition variables):
 *  - the caller's thread runs pl_voice_push(): resampling to 16 kHz and the
 *    VAD run inline (cheap: ~0.03 ms per 30 ms frame); the utterance's audio
 *    is copied into a buffer made at init;
 *  - a "turn" thread runs STT, the session's turn and the text stages;
 *  - a "tts" thread synthesizes the queued sentences.
 * Nothing is allocated per frame or per token after pl_voice_init.
 *
 * Barge-in: when the VAD detects speech while a response is in progress
 * (being transcribed, generated or synthesized) or being played (output
 * samples not yet acknowledged as played, see pl_voice_playback), the
 * pushing thread - inside the very frame in which the VAD decided - sets the
 * generation cancel flag and pl_tts_cancel(), and no audio event of that
 * response is delivered after its speech_started event. The turn thread then
 * replaces the assistant message with the text actually played (whole
 * sentences played, plus the played fraction of the one being played, cut at
 * a word end; as OpenAI Realtime's truncate) and reports it with
 * PL_VOICE_EVENT_TRUNCATED. When nothing was played, the assistant message
 * and the user message are both removed and the user's text is put in front
 * of the next transcript (the user was still talking).
 *
 * Events: one callback, called from the pushing thread (speech_*), the turn
 * thread and the tts thread, but never two calls at once (one lock), so the
 * receiver sees one ordered stream and needs no lock of its own. Inside the
 * callback, pl_voice_played(), pl_voice_cancel(), pl_voice_output_pos(),
 * pl_voice_summary_get() and pl_voice_last_metrics() may be called;
 * pl_voice_push/flush/submit_text/wait_idle/free must not. A slow callback
 * delays the pipeline (audio delivery holds the event lock).
 *
 * Use from a server (e.g. a WebSocket /v1/realtime connection): one pl_voice
 * per connection, with its own pl_session, pl_stt and pl_tts (all borrowed,
 * see below); the connection's reader thread calls pl_voice_push() with the
 * decoded PCM frames and pl_voice_played() as the client reports playback;
 * the event callback serializes events to the socket; pl_voice_cancel() from
 * any thread (client "response.cancel", connection closed). No globals: two
 * pl_voice objects are independent (espeak-ng itself serializes synthesis
 * process-wide, see parley/tts.h).
 *
 * Ownership: the pl_voice borrows the session, stt and tts given in params;
 * they must outlive it, and nobody else may use them while it lives, except
 * between turns: after pl_voice_wait_idle() returned true and before the next
 * push/submit, the caller may read the session (its conversation, stats).
 * pl_voice_free(NULL) is a no-op; free joins the threads.
 */
#ifndef PARLEY_VOICE_H
#define PARLEY_VOICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"
#include "parley/engine.h"
#include "parley/stt.h"
#include "parley/text.h"
#include "parley/tts.h"
#include "parley/vad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- metrics ---- */

/* One turn. Times in ms; a negative value means "did not happen" (no audio
 * was produced, say) and is null in JSON.
 *
 * The stages follow each other on one time line and add up exactly:
 *   v2v_ms = eos_delay_ms + stt_ms + llm_ttft_ms + first_sentence_ms
 *            + tts_first_chunk_ms
 * eos_delay_ms is audio time (the VAD's decision point minus the speech's
 * end edge: the trailing silence it waited for plus frame rounding), so the
 * figure is what a live speaker waits, whatever the pace audio was pushed
 * at; the other stages are wall time measured here. */
typedef struct pl_voice_metrics {
    uint64_t turn;
    double speech_ms;          /* the utterance: start edge to end edge */
    double eos_delay_ms;       /* end of speech -> the VAD's speech_stopped decision */
    double stt_ms;             /* speech_stopped -> final transcript */
    double llm_ttft_ms;        /* transcript -> first token sampled */
    double first_sentence_ms;  /* first token -> first complete sentence queued for TTS */
    double tts_first_chunk_ms; /* first sentence queued -> first output sample */
    double v2v_ms;             /* end of user speech -> first output sample */
    double tts_rtf;            /* synthesis time / audio produced */
    double tts_ms;             /* synthesis time, all sentences */
    double tts_audio_ms;       /* audio produced */
    double llm_ms;             /* the whole session turn */
    double gen_tok_s;
    int32_t prompt_tokens, cached_tokens, generated_tokens, reasoning_tokens;
    int32_t sentences;
    pl_finish finish;
    bool   interrupted;        /* barge-in */
    double cancel_ms;          /* barge-in -> the generation loop returned and the synthesis
                                  running at that moment (if any) returned; 0 when both had
                                  finished already */
    double played_ms;          /* output audio of this response played (when interrupted) */
} pl_voice_metrics;

/* The stage fields, in time-line order, for tables and summaries. */
typedef enum pl_voice_stage {
    PL_VOICE_STAGE_EOS_DELAY = 0,
    PL_VOICE_STAGE_STT,
    PL_VOICE_STAGE_LLM_TTFT,
    PL_VOICE_STAGE_FIRST_SENTENCE,
    PL_VOICE_STAGE_TTS_FIRST_CHUNK,
    PL_VOICE_STAGE_V2V,
    PL_VOICE_STAGE_TTS_RTF,
    PL_VOICE_STAGE_COUNT
} pl_voice_stage;

/* "eos_delay_ms", "stt_ms", ... (the JSON key); "unknown" outside the enum. */
const char *pl_voice_stage_name(pl_voice_stage s);
double pl_voice_stage_value(const pl_voice_metrics *m, pl_voice_stage s);

/* p50 / p90 (nearest rank) of each stage over the turns of a session that
 * have the value. */
typedef struct pl_voice_summary {
    size_t n_turns;
    size_t n[PL_VOICE_STAGE_COUNT];
    double p50[PL_VOICE_STAGE_COUNT], p90[PL_VOICE_STAGE_COUNT];
} pl_voice_summary;

/* JSON object of one turn into buf (cap bytes, NUL-terminated, cut when
 * short); returns the length the whole object needs (snprintf style). */
size_t pl_voice_metrics_json(const pl_voice_metrics *m, char *buf, size_t cap);
/* {"turns":N,"eos_delay_ms":{"p50":..,"p90":..},...}, as above. */
size_t pl_voice_summary_json(const pl_voice_summary *s, char *buf, size_t cap);
/* Nearest-rank percentile (p in [0,100]) of the values >= 0 among v[0..n);
 * -1 when there is none. Sorts v in place. */
double pl_voice_percentile(double *v, size_t n, double p);

/* ---- events ---- */

typedef enum pl_voice_event_type {
    PL_VOICE_EVENT_SPEECH_STARTED = 0, /* pos: the speech's first input sample (16 kHz) */
    PL_VOICE_EVENT_SPEECH_STOPPED,     /* pos: one past its last input sample */
    PL_VOICE_EVENT_TRANSCRIPT,         /* text: the utterance's final transcript */
    PL_VOICE_EVENT_REASONING_DELTA,    /* text: model reasoning (never spoken) */
    PL_VOICE_EVENT_TEXT_DELTA,         /* text: model content, as generated */
    PL_VOICE_EVENT_SENTENCE,           /* text: a sentence of spoken text, queued for TTS */
    PL_VOICE_EVENT_AUDIO,              /* pcm: output at sample_rate; pos: its first sample's
                                          offset in the output stream */
    PL_VOICE_EVENT_RESPONSE_DONE,      /* metrics */
    PL_VOICE_EVENT_TRUNCATED,          /* barge-in: text is what the assistant message now
                                          holds (what was played); pos: output played */
    PL_VOICE_EVENT_ERROR,              /* status and text; the turn is abandoned */
    PL_VOICE_EVENT_COUNT
} pl_voice_event_type;

/* "speech_started", "speech_stopped", "transcript", "reasoning_delta",
 * "text_delta", "sentence", "audio", "response_done", "truncated", "error". */
const char *pl_voice_event_name(pl_voice_event_type t);

/* Pointers are valid during the callback only. text is NUL-terminated and
 * len bytes long (the deltas are arbitrary cuts of UTF-8 text). */
typedef struct pl_voice_event {
    pl_voice_event_type type;
    uint64_t    turn;       /* 1, 2, ...: the user utterance (or submitted text) answered */
    double      t_ms;       /* wall time since pl_voice_init */
    const char *text;
    size_t      len;
    const float *pcm;
    size_t      n_pcm;
    int         sample_rate;
    uint64_t    pos;
    const pl_voice_metrics *metrics;
    pl_status   status;
} pl_voice_event;

typedef void (*pl_voice_event_fn)(void *ud, const pl_voice_event *ev);

/* ---- the pipeline ---- */

/* What counts as "played" (barge-in truncation, and whether the user speaks
 * over playback). */
typedef enum pl_voice_playback {
    PL_VOICE_PLAYBACK_ACK = 0, /* the consumer reports with pl_voice_played() */
    PL_VOICE_PLAYBACK_CLOCK,   /* real time: output plays at its rate from its first sample,
                                  waiting (underrun) when none is queued */
    PL_VOICE_PLAYBACK_INSTANT, /* delivered = played (writing a file) */
    PL_VOICE_PLAYBACK_COUNT
} pl_voice_playback;

typedef struct pl_voice_params {
    pl_session *session;       /* borrowed, required */
    pl_stt     *stt;           /* borrowed; NULL: only pl_voice_submit_text turns */
    pl_tts     *tts;           /* borrowed, required */
    pl_voice_event_fn on_event;
    void       *ud;
    int         input_rate;    /* of pushed PCM, 8000..192000; default 16000 */
    pl_vad_params vad;         /* sample_rate and the callback are set by the pipeline */
    double      max_utterance_s; /* an utterance is cut (forced stop) here; default 30 */
    pl_voice_playback playback;
    bool        barge_in;      /* default true */
    size_t      max_sentence_bytes; /* pl_sentences bound; default 400 */
    pl_speakable_params speakable;
} pl_voice_params;

typedef struct pl_voice pl_voice;

pl_voice_params pl_voice_default_params(void);

/* Errors: PL_ERR_INVALID_ARG (missing session/tts, bad rate), PL_ERR_NOMEM,
 * the VAD's and resampler's; text in pl_ctx_last_error(ctx). ctx must
 * outlive the pipeline; the pipeline writes no error text there after init
 * (errors later go out as PL_VOICE_EVENT_ERROR). */
pl_status pl_voice_init(pl_ctx *ctx, const pl_voice_params *params, pl_voice **out);
void pl_voice_free(pl_voice *v);

/* Feed mono f32 PCM at input_rate, any amount (one thread at a time). VAD
 * events and barge-in happen inside this call. */
pl_status pl_voice_push(pl_voice *v, const float *pcm, size_t n);
/* End of input: an utterance in progress ends now (forced speech_stopped). */
pl_status pl_voice_flush(pl_voice *v);
/* A turn from text instead of speech (a typed message, an API request);
 * copied. Queued like an utterance: PL_ERR_BUSY while another turn is queued
 * and not yet taken (an utterance that ends while a text turn is queued is
 * dropped). PL_ERR_RANGE past 16 KiB. */
pl_status pl_voice_submit_text(pl_voice *v, const char *text, size_t len);
/* Any thread: n more output samples have been played (PLAYBACK_ACK). */
void pl_voice_played(pl_voice *v, uint64_t n);
/* Any thread: output samples delivered and played so far. */
uint64_t pl_voice_output_pos(pl_voice *v, uint64_t *played);
/* Any thread: stop the response in progress as a barge-in would (history
 * truncated to what was played). No-op when none is. */
void pl_voice_cancel(pl_voice *v);
/* Any thread but the callback: wait until no utterance is queued and no
 * response is being made (playback may go on). timeout_ms < 0: no limit.
 * Returns true when idle. */
bool pl_voice_wait_idle(pl_voice *v, int timeout_ms);
/* Any thread: p50/p90 over the turns so far (the last 1024). */
void pl_voice_summary_get(pl_voice *v, pl_voice_summary *out);
/* Any thread: the last turn's metrics; false when there was none. */
bool pl_voice_last_metrics(pl_voice *v, pl_voice_metrics *out);
int pl_voice_output_rate(const pl_voice *v);

#ifdef __cplusplus
}
#endif

#endif /* PARLEY_VOICE_H */
