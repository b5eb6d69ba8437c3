/*
 * audio_api.c - the OpenAI speech endpoints of `parley serve`:
 *
 *   POST /v1/audio/transcriptions  multipart/form-data: file (required),
 *        model, language, prompt, response_format (json | text | srt | vtt |
 *        verbose_json), temperature. The upload is decoded from memory
 *        (WAV/FLAC/OGG/MP3), resampled to 16 kHz mono, cut by the VAD and
 *        recognized (pl_transcribe, as `parley transcribe` does).
 *   POST /v1/audio/speech  JSON {model, input (<= 4096 characters), voice,
 *        response_format wav | pcm (default wav), speed 0.25..4}. The audio
 *        is streamed as it is synthesized, with chunked transfer encoding:
 *        PCM is s16le mono at 24 kHz (OpenAI's pcm rate); WAV is a 44-byte
 *        header with the "unknown length" sizes 0xFFFFFFFF (nothing is known in
 *        advance; players read to the end) followed by the same samples. A
 *        client that goes away makes the next chunk's write fail, which stops
 *        the synthesis at that chunk (espeak: 49 ms of audio).
 *
 * Recognizer choice: ONE pl_stt for the server, made on the first request and
 * used under a mutex. A PocketSphinx model costs ~20 MB and 0.5-1 s to load,
 * so one per request would be slower and a burst of uploads could multiply
 * the memory; concurrent transcriptions queue on the mutex instead
 * (transcribing costs ~0.1-0.6x the audio length). The synthesizer is made
 * per request (cheap; eSpeak NG serializes synthesis process-wide anyway).
 *
 * Constructors report errors through a pl_ctx's last-error text, which is
 * not thread-safe on a shared ctx: each request makes its own small pl_ctx
 * for decoding and synthesis, and the recognizer has its own, used under the
 * mutex.
 */
#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parley/audio.h"
#include "parley/stt.h"
#include "parley/tts.h"
#include "server/server_int.h"

#define SPEECH_MAX_CHARS 4096
#define SPEECH_RATE 24000 /* OpenAI's pcm format: 24 kHz s16le mono */

typedef struct pl_srv_audio pl_srv_audio;

struct pl_srv_audio {
    pthread_mutex_t stt_mu;
    pl_ctx         *stt_ctx; /* under stt_mu */
    pl_stt         *stt;     /* made on first use, under stt_mu */
    char           *stt_backend, *stt_model, *tts_voice;
    double          max_audio_s;
    _Atomic unsigned long long n_transcriptions, n_speech, n_speech_canceled, speech_ms;
};

static char *dup_or_null(pl_ctx *ctx, const char *v, bool *oom) {
    if (!v || !*v) return NULL;
    char *d = pl_strdup(ctx, v);
    if (!d) *oom = true;
    return d;
}

pl_status pl_srv_audio_init(pl_server *s, const pl_server_params *p) {
    pl_srv_audio *a = pl_calloc(s->ctx, 1, sizeof *a);
    if (!a) return PL_ERR_NOMEM;
    bool oom = false;
    a->stt_backend = dup_or_null(s->ctx, p->stt_backend, &oom);
    a->stt_model = dup_or_null(s->ctx, p->stt_model, &oom);
    a->tts_voice = dup_or_null(s->ctx, p->tts_voice, &oom);
    a->max_audio_s = p->max_audio_s > 0 ? p->max_audio_s : 600;
    pthread_mutex_init(&a->stt_mu, NULL);
    s->audio = a;
    return oom ? PL_ERR_NOMEM : PL_OK;
}

void pl_srv_audio_free(pl_server *s) {
    pl_srv_audio *a = s ? s->audio : NULL;
    if (!a) return;
    pl_stt_free(a->stt);
    pl_ctx_free(a->stt_ctx);
    pthread_mutex_destroy(&a->stt_mu);
    pl_free(s->ctx, a->stt_backend);
    pl_free(s->ctx, a->stt_model);
    pl_free(s->ctx, a->tts_voice);
    pl_free(s->ctx, a);
    s->audio = NULL;
}

const char *pl_srv_audio_stt_backend(const pl_server *s) { return s->audio ? s->audio->stt_backend : NULL; }
const char *pl_srv_audio_tts_voice(const pl_server *s) { return s->audio ? s->audio->tts_voice : NULL; }

void pl_srv_audio_metrics(const pl_server *s, char *buf, size_t cap) {
    const pl_srv_audio *a = s->audio;
    if (!a) {
        buf[0] = 0;
        return;
    }
    snprintf(buf, cap,
             "# HELP parley_audio_transcriptions_total Transcriptions answered.\n"
             "# TYPE parley_audio_transcriptions_total counter\nparley_audio_transcriptions_total %llu\n"
             "# HELP parley_audio_speech_total Speech syntheses started.\n"
             "# TYPE parley_audio_speech_total counter\nparley_audio_speech_total %llu\n"
             "# HELP parley_audio_speech_canceled_total Speech syntheses stopped early (client gone, shutdown).\n"
             "# TYPE parley_audio_speech_canceled_total counter\nparley_audio_speech_canceled_total %llu\n"
             "# HELP parley_audio_speech_seconds_total Synthesized audio sent.\n"
             "# TYPE parley_audio_speech_seconds_total counter\nparley_audio_speech_seconds_total %.3f\n",
             (unsigned long long)a->n_transcriptions, (unsigned long long)a->n_speech,
             (unsigned long long)a->n_speech_canceled, (double)a->speech_ms / 1000.0);
}

/* A per-request ctx that logs nothing (its text is read back, not logged). */
static pl_ctx *request_ctx(void) {
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_level = PL_LOG_LEVEL_NONE;
    pl_ctx *c = NULL;
    return pl_ctx_init(&c, &cp) == PL_OK ? c : NULL;
}

static void send_400(struct mg_connection *conn, pl_server *s, const char *param, const char *msg) {
    pl_srv_error e;
    pl_srv_err(&e, 400, "invalid_request_error", param, "%s", msg);
    pl_srv_send_error(conn, s, &e, NULL);
}

static void send_500(struct mg_connection *conn, pl_server *s, const char *msg) {
    pl_srv_error e;
    pl_srv_err(&e, 500, "server_error", NULL, "%s", msg);
    pl_srv_send_error(conn, s, &e, NULL);
}

/* A text field of the form as a NUL-terminated copy in buf (cut to cap-1). */
static const char *field(const pl_srv_part *parts, size_t n, const char *name, char *buf, size_t cap) {
    const pl_srv_part *p = pl_srv_multipart_find(parts, n, name);
    if (!p) return NULL;
    size_t k = p->len < cap - 1 ? p->len : cap - 1;
    memcpy(buf, p->data, k);
    buf[k] = 0;
    /* trim the whitespace a form field may carry */
    while (k && (buf[k - 1] == ' ' || buf[k - 1] == '\t' || buf[k - 1] == '\r' || buf[k - 1] == '\n')) buf[--k] = 0;
    return buf;
}

/* ---- transcription ---- */

static int stop_on_shutdown(void *ud, const pl_transcript_segment *seg) {
    (void)seg;
    const pl_server *s = ud;
    return atomic_load(&s->state) == 3;
}

static const char *transcript_mime(pl_transcript_format f) {
    switch (f) {
    case PL_TRANSCRIPT_FORMAT_JSON:
    case PL_TRANSCRIPT_FORMAT_VERBOSE_JSON: return "application/json";
    case PL_TRANSCRIPT_FORMAT_VTT: return "text/vtt; charset=utf-8";
    default: return "text/plain; charset=utf-8";
    }
}

void pl_srv_handle_transcription(struct mg_connection *conn, pl_server *s, const char *body, size_t len) {
    pl_srv_audio *a = s->audio;
    const char *ct = mg_get_header(conn, "Content-Type");
    pl_srv_part parts[PL_SRV_MAX_PARTS];
    size_t n = 0;
    pl_srv_error e;
    if (pl_srv_multipart_parse(ct, body, len, parts, PL_SRV_MAX_PARTS, &n, &e) != PL_OK) {
        pl_srv_send_error(conn, s, &e, NULL);
        return;
    }
    const pl_srv_part *file = pl_srv_multipart_find(parts, n, "file");
    if (!file) {
        send_400(conn, s, "file", "the form has no 'file' part (the audio to transcribe)");
        return;
    }
    if (file->len == 0) {
        send_400(conn, s, "file", "the uploaded file is empty");
        return;
    }
    char fmt_s[32], lang[32];
    pl_transcript_format fmt = PL_TRANSCRIPT_FORMAT_JSON;
    if (field(parts, n, "response_format", fmt_s, sizeof fmt_s) && fmt_s[0] &&
        pl_transcript_format_parse(fmt_s, &fmt) != PL_OK) {
        send_400(conn, s, "response_format", "response_format must be json, text, srt, vtt or verbose_json");
        return;
    }
    const char *language = field(parts, n, "language", lang, sizeof lang);
    if (language && !language[0]) language = NULL;
    if (language) {
        bool ok = true;
        for (const char *c = language; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '-' || *c == '_')) ok = false;
        if (!ok) {
            send_400(conn, s, "language", "language must be a language tag such as 'en'");
            return;
        }
    }

    pl_ctx *rc = request_ctx();
    if (!rc) {
        send_500(conn, s, "out of memory");
        return;
    }
    pl_audio_load_params lp = pl_audio_default_load_params();
    lp.max_seconds = a->max_audio_s;
    pl_audio *audio = NULL;
    pl_status st = pl_audio_load_memory(rc, file->data, file->len, &lp, &audio);
    if (st != PL_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "cannot decode the audio file: %s", pl_ctx_last_error(rc));
        if (st == PL_ERR_NOMEM) send_500(conn, s, msg);
        else send_400(conn, s, "file", msg);
        pl_ctx_free(rc);
        return;
    }

    pthread_mutex_lock(&a->stt_mu);
    char *out = NULL;
    size_t out_len = 0;
    int http = 200;
    char msg[400] = "";
    if (!a->stt) {
        if (!a->stt_ctx) a->stt_ctx = request_ctx();
        pl_stt_params sp = pl_stt_default_params();
        sp.backend = a->stt_backend;
        sp.model = a->stt_model;
        sp.max_utterance_s = a->max_audio_s;
        st = a->stt_ctx ? pl_stt_init(a->stt_ctx, &sp, &a->stt) : PL_ERR_NOMEM;
        if (st != PL_OK) {
            http = 500;
            snprintf(msg, sizeof msg, "the speech recognizer is not available: %s",
                     a->stt_ctx ? pl_ctx_last_error(a->stt_ctx) : "out of memory");
        }
    }
    pl_transcript *tr = NULL;
    if (http == 200) {
        pl_transcribe_params tp = pl_transcribe_default_params();
        st = pl_transcribe(a->stt, &tp, audio->samples, audio->n_frames, stop_on_shutdown, s, &tr);
        if (st == PL_OK) st = pl_transcript_render(tr, fmt, language ? language : "en", &out, &out_len);
        if (st != PL_OK) {
            http = st == PL_ERR_CANCELED ? 503 : st == PL_ERR_RANGE ? 400 : 500;
            snprintf(msg, sizeof msg, "transcription failed: %s", pl_ctx_last_error(a->stt_ctx));
        }
    }
    pthread_mutex_unlock(&a->stt_mu);
    pl_audio_free(audio);
    if (http == 200) {
        atomic_fetch_add(&a->n_transcriptions, 1);
        pl_srv_send(conn, s, 200, transcript_mime(fmt), out, out_len, NULL);
    } else if (http == 400) {
        send_400(conn, s, "file", msg);
    } else {
        pl_srv_err(&e, http, "server_error", NULL, "%s", msg);
        pl_srv_send_error(conn, s, &e, NULL);
    }
    if (out) pl_free(tr->ctx, out);
    pl_transcript_free(tr);
    pl_ctx_free(rc);
}

/* ---- speech ---- */

/* OpenAI's voice names: spoken with the server's default voice. */
static const char *const openai_voices[] = { "alloy", "ash",  "ballad", "coral",   "echo",  "fable",
                                             "onyx",  "nova", "sage",   "shimmer", "verse" };

typedef struct speech_out {
    struct mg_connection *conn;
    pl_server            *s;
    uint8_t              *buf; /* s16le staging, grown rarely (chunks are ~50 ms) */
    size_t                cap;
    uint64_t              frames;
    bool                  write_failed;
} speech_out;

static int speech_chunk(void *ud, const float *pcm, size_t n) {
    speech_out *o = ud;
    if (atomic_load(&o->s->state) == 3) return 1; /* shutting down */
    size_t bytes;
    if (!pl_size_mul(n, 2, &bytes)) return 1;
    if (bytes > o->cap) {
        size_t cap = bytes < 8192 ? 8192 : bytes;
        uint8_t *b = pl_realloc(o->s->ctx, o->buf, cap);
        if (!b) return 1;
        o->buf = b;
        o->cap = cap;
    }
    pl_audio_f32_to_s16le(pcm, n, o->buf);
    if (bytes && mg_send_chunk(o->conn, (const char *)o->buf, (unsigned)bytes) <= 0) {
        o->write_failed = true;
        return 1;
    }
    o->frames += n;
    return 0;
}

static size_t utf8_chars(const char *t) {
    size_t n = 0;
    for (; *t; t++) n += ((unsigned char)*t & 0xC0) != 0x80;
    return n;
}

void pl_srv_handle_speech(struct mg_connection *conn, pl_server *s, const char *body, size_t len) {
    pl_srv_audio *a = s->audio;
    bool deep;
    cJSON *req = pl_srv_json_parse(body, len, &deep); /* depth-checked: worker stacks are small */
    if (!cJSON_IsObject(req)) {
        cJSON_Delete(req);
        send_400(conn, s, NULL, "the body must be a JSON object");
        return;
    }
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(req, "input");
    const cJSON *voice = cJSON_GetObjectItemCaseSensitive(req, "voice");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(req, "response_format");
    const cJSON *speed = cJSON_GetObjectItemCaseSensitive(req, "speed");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(req, "model");
    const char *bad_param = NULL, *bad_msg = NULL;
    char msg[160];
    pl_audio_format af = PL_AUDIO_FORMAT_WAV;
    if (!cJSON_IsString(input)) bad_param = "input", bad_msg = "input (the text to speak) is required";
    else if (!input->valuestring[0]) bad_param = "input", bad_msg = "input is empty";
    else if (utf8_chars(input->valuestring) > SPEECH_MAX_CHARS)
        bad_param = "input", bad_msg = "input is longer than 4096 characters";
    else if (model && !cJSON_IsString(model)) bad_param = "model", bad_msg = "model must be a string";
    else if (voice && !cJSON_IsString(voice)) bad_param = "voice", bad_msg = "voice must be a string";
    else if (fmt && (!cJSON_IsString(fmt) || pl_audio_format_parse(fmt->valuestring, &af) != PL_OK)) {
        snprintf(msg, sizeof msg, "response_format '%.40s' is not supported (wav or pcm)",
                 cJSON_IsString(fmt) ? fmt->valuestring : "?");
        bad_param = "response_format", bad_msg = msg;
    } else if (speed && (!cJSON_IsNumber(speed) || !(speed->valuedouble >= 0.25 && speed->valuedouble <= 4.0)))
        bad_param = "speed", bad_msg = "speed must be a number from 0.25 to 4";
    const char *vname = a->tts_voice;
    if (!bad_param && voice) {
        const char *v = voice->valuestring;
        bool openai = false;
        for (size_t i = 0; i < sizeof openai_voices / sizeof openai_voices[0]; i++)
            if (strcasecmp(v, openai_voices[i]) == 0) openai = true;
        bool ok = strlen(v) > 0 && strlen(v) < 64;
        for (const char *c = v; ok && *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' ||
                  *c == '+' || *c == '_'))
                ok = false;
        if (!ok) bad_param = "voice", bad_msg = "voice must be a voice name such as 'en-us' or 'alloy'";
        else if (!openai) vname = v;
    }
    if (bad_param) {
        send_400(conn, s, bad_param, bad_msg);
        cJSON_Delete(req);
        return;
    }
    pl_ctx *rc = request_ctx();
    pl_tts_params tp = pl_tts_default_params();
    tp.voice = vname;
    tp.speed = speed ? (float)speed->valuedouble : 1.0f;
    tp.sample_rate = SPEECH_RATE;
    pl_tts *tts = NULL;
    pl_status st = rc ? pl_tts_init(rc, &tp, &tts) : PL_ERR_NOMEM;
    if (st != PL_OK) {
        snprintf(msg, sizeof msg, "%s", rc ? pl_ctx_last_error(rc) : "out of memory");
        if (st == PL_ERR_NOT_FOUND && vname) send_400(conn, s, "voice", msg);
        else send_500(conn, s, msg);
        pl_ctx_free(rc);
        cJSON_Delete(req);
        return;
    }

    /* Headers now: the length is not known until the text is spoken. */
    pthread_mutex_lock(&s->mu);
    pl_srv_metrics_count_status(&s->metrics, 200);
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_add(&a->n_speech, 1);
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\nCache-Control: no-store\r\n"
              "X-Content-Type-Options: nosniff\r\nX-Sample-Rate: %d\r\n%s%s%sConnection: close\r\n\r\n",
              af == PL_AUDIO_FORMAT_WAV ? "audio/wav" : "audio/pcm", SPEECH_RATE,
              s->cors ? "Access-Control-Allow-Origin: " : "", s->cors ? s->cors : "", s->cors ? "\r\n" : "");
    speech_out o = { .conn = conn, .s = s };
    bool ok = true;
    if (af == PL_AUDIO_FORMAT_WAV) {
        uint8_t h[PL_WAV_HEADER_SIZE];
        pl_audio_wav_header(h, SPEECH_RATE, 1, UINT64_MAX);
        ok = mg_send_chunk(conn, (const char *)h, sizeof h) > 0;
    }
    st = ok ? pl_tts_synthesize(tts, input->valuestring, speech_chunk, &o, NULL) : PL_ERR_CANCELED;
    atomic_fetch_add(&a->speech_ms, (unsigned long long)(o.frames * 1000 / SPEECH_RATE));
    if (st == PL_OK) {
        mg_send_chunk(conn, "", 0); /* the last chunk */
    } else {
        /* No terminating chunk: the client sees a truncated transfer. */
        if (st == PL_ERR_CANCELED) atomic_fetch_add(&a->n_speech_canceled, 1);
        pl_log(s->ctx, PL_LOG_LEVEL_DEBUG, "serve: speech stopped after %.2f s of audio: %s%s",
               (double)o.frames / SPEECH_RATE, pl_status_str(st), o.write_failed ? " (client gone)" : "");
    }
    pl_free(s->ctx, o.buf);
    pl_tts_free(tts);
    pl_ctx_free(rc);
    cJSON_Delete(req);
}
