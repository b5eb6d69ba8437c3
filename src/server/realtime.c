/*
 * realtime.c - the /v1/realtime WebSocket (OpenAI Realtime event names) for
 * the web page's voice mode (web/voice.js): one pl_voice pipeline per
 * connection, with its own pl_session (a KV context of its own on the
 * server's engine), pl_stt and pl_tts.
 *
 * In:  {"type":"input_audio_buffer.append","audio":base64 PCM16 16 kHz mono}
 *      {"type":"input_audio_buffer.commit"} (end of utterance now)
 *      {"type":"response.cancel"}, {"type":"session.update",...} (answered
 *      with session.updated; nothing in it is applied yet).
 * Out: session.created (output_audio_sample_rate), input_audio_buffer.
 *      speech_started / speech_stopped, conversation.item.input_audio_
 *      transcription.completed, response.created, response.reasoning.delta,
 *      response.text.delta, response.audio.delta (base64 PCM16 at the
 *      session's rate), conversation.item.truncated, response.done (with the
 *      turn's metrics), error.
 *
 * Transport: our own RFC 6455 framing on the connection's socket (ws.c),
 * not civetweb's WebSocket handlers, as a documented exception: civetweb
 * 1.15 can neither enforce 5.1 (unmasked client frames: 1002) nor bound a
 * frame that stalls (it waited forever, so 4 silent clients held every slot);
 * ws.c's header says what the socket hand-over relies on. The router
 * (server.c) has checked the API key (401) and the model (503); here: TLS is
 * refused (501: the socket would carry TLS records), the handshake checked
 * (400, 426), the connection count (503), the socket found (500 when not:
 * never a guess), then the 101.
 *
 * Limits: a message (fragments together) over RT_MAX_FRAME closes with 1009,
 * decided from the frame header before its payload is read; a started frame
 * must complete within realtime_frame_timeout_ms and an idle client answer
 * a ping within realtime_idle_ms (1008); at most RT_MAX_CONNS connections at
 * once (each holds a KV context, a recognizer and a synthesizer); the model
 * must be loaded. Output plays by the clock (the page does not acknowledge
 * playback), so barge-in truncation assumes real-time playback from the
 * first sample.
 *
 * Threads: the connection's civetweb worker runs pl_srv_handle_realtime for
 * the connection's life: the reader loop (decode + pl_voice_push). The
 * pipeline's threads run the event callback, which the pipeline serializes,
 * and write frames (ws.c locks per frame). A server stop (state 3) ends the
 * reader within 100 ms with 1001; the pipeline is freed (its threads joined)
 * before the handler returns, and the server's drain waits for rt_conns.
 */
#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/audio.h"
#include "parley/voice.h"
#include "server/server_int.h"

#define RT_MAX_FRAME ((size_t)1 << 20) /* 1 MiB: ~30 s of base64 PCM16 16 kHz per append */
#define RT_MAX_CONNS 4

typedef struct rt_conn {
    pl_server            *s;
    pl_srv_ws            *ws;
    pl_ctx               *ctx;
    pl_session           *session;
    pl_stt               *stt;
    pl_tts               *tts;
    pl_voice             *voice;
    int                   out_rate;
    /* the reader's (the connection's HTTP worker) */
    float                *pcm;  /* decoded input, RT_MAX_FRAME * 3 / 8 samples at most */
    size_t                pcm_cap;
    uint8_t              *in16; /* base64-decoded input bytes */
    size_t                in16_cap;
    /* the event callback's (pipeline threads, serialized by the pipeline) */
    char                 *out;  /* an audio delta event (callback only) */
    size_t                out_cap;
    uint8_t              *s16;
    size_t                s16_cap;
    char                 *delta;  /* a delta made valid UTF-8 */
    size_t                delta_cap;
    char                  carry[2][4]; /* [text, reasoning]: an incomplete UTF-8 sequence cut off a delta */
    size_t                n_carry[2];
} rt_conn;

static bool grow(pl_ctx *ctx, void **buf, size_t *cap, size_t need);

/* Length of the valid UTF-8 sequence at p (n bytes left): 1..4; 0 when it is
 * cut off by the end (could still complete); -1 when invalid. */
static int utf8_seq(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : -1;
    if (len < 0 || c == 0xC0 || c == 0xC1 || c > 0xF4) return -1;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n) return 0;
        if ((p[i] & 0xC0) != 0x80) return -1;
    }
    if (len == 3 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F))) return -1; /* overlong, surrogate */
    if (len == 4 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))) return -1;
    return len;
}

/* A text delta as valid UTF-8 into c->delta (NUL-terminated): the generation's
 * deltas are arbitrary cuts of its bytes (a WebSocket text frame must be valid
 * UTF-8, or the browser fails the connection), so a sequence cut at the end is
 * kept for the next delta and an invalid byte becomes U+FFFD. NULL when out
 * of memory. */
static const char *valid_delta(rt_conn *c, int ch, const char *text, size_t len) {
    size_t nc = c->n_carry[ch], total = nc + len, cap;
    if (!pl_size_mul(total, 3, &cap) || !grow(c->ctx, (void **)&c->delta, &c->delta_cap, cap + 1)) return NULL;
    unsigned char *buf = (unsigned char *)c->delta + cap - total; /* the input at the end; output from the start */
    memcpy(buf, c->carry[ch], nc);
    memcpy(buf + nc, text, len);
    size_t o = 0, i = 0;
    c->n_carry[ch] = 0;
    while (i < total) {
        int k = utf8_seq(buf + i, total - i);
        if (k == 0) {
            memcpy(c->carry[ch], buf + i, total - i);
            c->n_carry[ch] = total - i;
            break;
        }
        if (k < 0) {
            memcpy(c->delta + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memmove(c->delta + o, buf + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
        }
    }
    c->delta[o] = 0;
    return c->delta;
}

/* ---- base64 ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64_encode(const uint8_t *in, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    return o;
}

static int b64_val(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Decode into out (cap >= n * 3 / 4); -1 on a bad character. */
static long b64_decode(const char *in, size_t n, uint8_t *out) {
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '=') break;
        int v = b64_val((unsigned char)in[i]);
        if (v < 0) return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (long)o;
}

/* ---- events out ---- */

static void send_text(rt_conn *c, const char *text, size_t len) {
    pl_srv_ws_send(c->ws, PL_SRV_WS_OP_TEXT, text, len);
}

static void send_json(rt_conn *c, cJSON *o) {
    char *t = o ? cJSON_PrintUnformatted(o) : NULL;
    if (t) send_text(c, t, strlen(t));
    cJSON_free(t);
    cJSON_Delete(o);
}

static cJSON *event(const char *type) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    return o;
}

static void send_error(rt_conn *c, const char *msg) {
    cJSON *o = event("error"), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "type", "server_error");
    cJSON_AddStringToObject(e, "message", msg);
    send_json(c, o);
}

static void send_session(rt_conn *c, const char *type) {
    cJSON *o = event(type), *se = cJSON_AddObjectToObject(o, "session");
    cJSON_AddStringToObject(se, "model", c->s->alias);
    cJSON_AddStringToObject(se, "input_audio_format", "pcm16");
    cJSON_AddNumberToObject(se, "input_audio_sample_rate", PL_AUDIO_STT_RATE);
    cJSON_AddStringToObject(se, "output_audio_format", "pcm16");
    cJSON_AddNumberToObject(se, "output_audio_sample_rate", c->out_rate);
    send_json(c, o);
}

static bool grow(pl_ctx *ctx, void **buf, size_t *cap, size_t need) {
    /* (declared above valid_delta) */
    if (need <= *cap) return true;
    size_t n = *cap ? *cap : 4096;
    while (n < need) n *= 2;
    void *b = pl_realloc(ctx, *buf, n);
    if (!b) return false;
    *buf = b;
    *cap = n;
    return true;
}

static void send_audio(rt_conn *c, const float *pcm, size_t n, int rate) {
    size_t bytes = n * 2, need = bytes / 3 * 4 + 8 + 128;
    if (!grow(c->ctx, (void **)&c->s16, &c->s16_cap, bytes) || !grow(c->ctx, (void **)&c->out, &c->out_cap, need)) return;
    pl_audio_f32_to_s16le(pcm, n, c->s16);
    int k = snprintf(c->out, c->out_cap, "{\"type\":\"response.audio.delta\",\"sample_rate\":%d,\"delta\":\"", rate);
    size_t len = (size_t)k + b64_encode(c->s16, bytes, c->out + k);
    memcpy(c->out + len, "\"}", 2);
    send_text(c, c->out, len + 2);
}

static void on_event(void *ud, const pl_voice_event *ev) {
    rt_conn *c = ud;
    if (ev->type != PL_VOICE_EVENT_AUDIO && ev->type != PL_VOICE_EVENT_TEXT_DELTA &&
        ev->type != PL_VOICE_EVENT_REASONING_DELTA)
        pl_log(c->s->ctx, PL_LOG_LEVEL_DEBUG, "serve: realtime: %s (turn %llu)", pl_voice_event_name(ev->type),
               (unsigned long long)ev->turn);
    cJSON *o = NULL;
    switch (ev->type) {
    case PL_VOICE_EVENT_SPEECH_STARTED:
        o = event("input_audio_buffer.speech_started");
        cJSON_AddNumberToObject(o, "audio_start_ms", (double)(ev->pos * 1000 / PL_AUDIO_STT_RATE));
        break;
    case PL_VOICE_EVENT_SPEECH_STOPPED:
        o = event("input_audio_buffer.speech_stopped");
        cJSON_AddNumberToObject(o, "audio_end_ms", (double)(ev->pos * 1000 / PL_AUDIO_STT_RATE));
        break;
    case PL_VOICE_EVENT_TRANSCRIPT:
        c->n_carry[0] = c->n_carry[1] = 0; /* a new response */
        o = event("conversation.item.input_audio_transcription.completed");
        cJSON_AddStringToObject(o, "transcript", ev->text ? ev->text : "");
        send_json(c, o);
        o = event("response.created");
        break;
    case PL_VOICE_EVENT_REASONING_DELTA:
    case PL_VOICE_EVENT_TEXT_DELTA: {
        int ch = ev->type == PL_VOICE_EVENT_TEXT_DELTA ? 0 : 1;
        const char *t = valid_delta(c, ch, ev->text, ev->len);
        if (!t || !t[0]) break; /* only a cut sequence so far */
        o = event(ch == 0 ? "response.text.delta" : "response.reasoning.delta");
        cJSON_AddStringToObject(o, "delta", t);
        break;
    }
    case PL_VOICE_EVENT_AUDIO: send_audio(c, ev->pcm, ev->n_pcm, ev->sample_rate); break;
    case PL_VOICE_EVENT_TRUNCATED:
        o = event("conversation.item.truncated");
        cJSON_AddStringToObject(o, "text", ev->text ? ev->text : "");
        break;
    case PL_VOICE_EVENT_RESPONSE_DONE: {
        o = event("response.done");
        char m[2048];
        pl_voice_metrics_json(ev->metrics, m, sizeof m);
        cJSON *mj = cJSON_Parse(m);
        if (mj) cJSON_AddItemToObject(o, "metrics", mj);
        cJSON *r = cJSON_AddObjectToObject(o, "response");
        cJSON_AddStringToObject(r, "status", ev->metrics && ev->metrics->interrupted ? "cancelled" : "completed");
        break;
    }
    case PL_VOICE_EVENT_ERROR: send_error(c, ev->text ? ev->text : pl_status_str(ev->status)); break;
    default: break;
    }
    if (o) send_json(c, o);
}

/* ---- connection ---- */

static void rt_free(rt_conn *c) {
    if (!c) return;
    pl_voice_free(c->voice); /* joins its threads first */
    pl_tts_free(c->tts);
    pl_stt_free(c->stt);
    pl_session_free(c->session);
    pl_srv_ws_free(c->ws);
    pl_free(c->ctx, c->pcm);
    pl_free(c->ctx, c->in16);
    pl_free(c->ctx, c->out);
    pl_free(c->ctx, c->s16);
    pl_free(c->ctx, c->delta);
    pl_ctx *ctx = c->ctx;
    free(c);
    pl_ctx_free(ctx);
}

/* The voice pipeline of the connection; false (with an error event and a
 * 1011 close sent) when it cannot start. */
static bool rt_start(rt_conn *c) {
    pl_server *s = c->s;
    pl_session_params sp = pl_session_default_params();
    sp.n_ctx = s->p.n_ctx;
    sp.n_threads = s->p.n_threads;
    sp.sampling = s->p.sampling;
    sp.reasoning = s->p.reasoning;
    if (sp.sampling.max_tokens <= 0) sp.sampling.max_tokens = 256; /* a spoken answer */
    if (sp.n_ctx > 0 && sp.sampling.max_tokens > sp.n_ctx / 2) sp.sampling.max_tokens = sp.n_ctx / 2;
    pl_stt_params stp = pl_stt_default_params();
    stp.backend = s->audio ? pl_srv_audio_stt_backend(s) : NULL;
    pl_tts_params tp = pl_tts_default_params();
    tp.voice = s->audio ? pl_srv_audio_tts_voice(s) : NULL;
    pl_status st = pl_session_init(c->ctx, s->engine, &sp, &c->session);
    if (st == PL_OK) st = pl_stt_init(c->ctx, &stp, &c->stt);
    if (st == PL_OK) st = pl_tts_init(c->ctx, &tp, &c->tts);
    if (st == PL_OK) {
        pl_voice_params vp = pl_voice_default_params();
        vp.session = c->session;
        vp.stt = c->stt;
        vp.tts = c->tts;
        vp.on_event = on_event;
        vp.ud = c;
        vp.playback = PL_VOICE_PLAYBACK_CLOCK;
        st = pl_voice_init(c->ctx, &vp, &c->voice);
    }
    if (st != PL_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "cannot start the voice pipeline: %s", pl_ctx_last_error(c->ctx));
        send_error(c, msg);
        pl_srv_ws_close(c->ws, 1011, "cannot start the voice pipeline");
        return false;
    }
    c->out_rate = pl_voice_output_rate(c->voice);
    send_session(c, "session.created");
    return true;
}

/* One event from the client (a whole text message). */
static void rt_event(rt_conn *c, const char *data, size_t len) {
    bool deep;
    cJSON *j = pl_srv_json_parse(data, len, &deep); /* depth-checked: worker stacks are small */
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!cJSON_IsString(type)) {
        send_error(c, "an event must be a JSON object with a type");
    } else if (strcmp(type->valuestring, "input_audio_buffer.append") == 0) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "audio");
        size_t n = cJSON_IsString(a) ? strlen(a->valuestring) : 0;
        if (n && grow(c->ctx, (void **)&c->in16, &c->in16_cap, n / 4 * 3 + 3) &&
            grow(c->ctx, (void **)&c->pcm, &c->pcm_cap, (n / 4 * 3 / 2 + 2) * sizeof(float))) {
            long b = b64_decode(a->valuestring, n, c->in16);
            if (b < 0) send_error(c, "audio is not base64");
            else {
                size_t ns = (size_t)b / 2;
                pl_audio_s16le_to_f32(c->in16, ns, c->pcm);
                pl_voice_push(c->voice, c->pcm, ns);
            }
        }
    } else if (strcmp(type->valuestring, "input_audio_buffer.commit") == 0) {
        pl_voice_flush(c->voice);
    } else if (strcmp(type->valuestring, "response.cancel") == 0) {
        pl_voice_cancel(c->voice);
    } else if (strcmp(type->valuestring, "session.update") == 0) {
        send_session(c, "session.updated");
    }
    cJSON_Delete(j);
}

static bool rt_stopping(void *ud) { return atomic_load(&((pl_server *)ud)->state) != 1; }

static void rt_fail(struct mg_connection *conn, pl_server *s, int http, const char *type, const char *code,
                    const char *msg, const char *extra) {
    pl_srv_error e;
    pl_srv_err(&e, http, type, NULL, "%s", msg);
    e.code = code;
    pl_srv_send_error(conn, s, &e, extra);
}

/* The connection on fd after a valid handshake, until it ends. */
static void rt_serve(struct mg_connection *conn, pl_server *s, int fd, const char *accept) {
    rt_conn *c = calloc(1, sizeof *c);
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_level = PL_LOG_LEVEL_NONE;
    if (!c || pl_ctx_init(&c->ctx, &cp) != PL_OK) {
        free(c);
        rt_fail(conn, s, 500, "server_error", NULL, "out of memory", NULL);
        return;
    }
    c->s = s;
    pl_srv_ws_params wp = {
        .max_message = RT_MAX_FRAME,
        .frame_timeout_ms = s->p.realtime_frame_timeout_ms,
        .idle_ms = s->p.realtime_idle_ms,
        .write_timeout_ms = s->p.io_timeout_ms,
        .stopping = rt_stopping,
        .ud = s,
    };
    if (pl_srv_ws_init(c->ctx, fd, &wp, &c->ws) != PL_OK) {
        rt_free(c);
        rt_fail(conn, s, 500, "server_error", NULL, "out of memory", NULL);
        return;
    }
    pthread_mutex_lock(&s->mu);
    pl_srv_metrics_count_status(&s->metrics, 101);
    pthread_mutex_unlock(&s->mu);
    if (pl_srv_ws_accept(c->ws, accept) && rt_start(c)) {
        pl_log(s->ctx, PL_LOG_LEVEL_DEBUG, "serve: realtime: connected (fd %d)", fd);
        pl_srv_ws_op op;
        const uint8_t *data;
        size_t len;
        while (pl_srv_ws_read(c->ws, &op, &data, &len))
            if (op == PL_SRV_WS_OP_TEXT) rt_event(c, (const char *)data, len); /* binary: not an event */
    }
    pl_log(s->ctx, PL_LOG_LEVEL_DEBUG, "serve: realtime: connection closed (%u: %s)",
           (unsigned)pl_srv_ws_end_code(c->ws), pl_srv_ws_end_reason(c->ws));
    if (c->voice) pl_voice_cancel(c->voice);
    pl_voice_free(c->voice); /* joins the threads that write events */
    c->voice = NULL;
    pl_srv_ws_linger(c->ws);
    rt_free(c);
}

void pl_srv_handle_realtime(struct mg_connection *conn, pl_server *s) {
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (ri->is_ssl) { /* ws.c reads the socket itself: TLS records would be read as frames */
        rt_fail(conn, s, 501, "invalid_request_error", NULL, "/v1/realtime is not served over TLS", NULL);
        return;
    }
    char accept[PL_SRV_WS_ACCEPT_LEN + 1];
    pl_srv_error e;
    const char *extra = NULL;
    if (pl_srv_ws_handshake(conn, accept, &e, &extra) != 0) {
        pl_srv_send_error(conn, s, &e, extra);
        return;
    }
    if (atomic_fetch_add(&s->rt_conns, 1) >= RT_MAX_CONNS) {
        rt_fail(conn, s, 503, "unavailable_error", "too_many_connections",
                "voice mode is in use by " PL_SRV_STR(RT_MAX_CONNS) " connections: try again later",
                "Retry-After: 5\r\n");
    } else {
        int fd = pl_srv_ws_find_socket(ri);
        if (fd < 0) {
            pl_log(s->ctx, PL_LOG_LEVEL_ERROR, "serve: realtime: the socket of %s:%d was not found", ri->remote_addr,
                   ri->remote_port);
            rt_fail(conn, s, 500, "server_error", NULL, "cannot take over the connection", NULL);
        } else {
            rt_serve(conn, s, fd, accept);
        }
    }
    atomic_fetch_sub(&s->rt_conns, 1);
}
