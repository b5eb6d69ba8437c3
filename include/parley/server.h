/*
 * parley/server.h - an OpenAI-compatible HTTP server (`parley serve`).
 *
 * Endpoints: POST /v1/chat/completions and /v1/completions (streamed as SSE
 * or whole), GET /v1/models, /health, /metrics (Prometheus text), /props,
 * POST /tokenize and /detokenize, POST /v1/audio/transcriptions (multipart
 * upload -> text/json/verbose_json/srt/vtt) and /v1/audio/speech (streamed
 * WAV or PCM), the /v1/realtime WebSocket (voice mode: a pl_voice pipeline
 * per connection, at most 4 at once), and the files of a web page under /.
 *
 * Inside: civetweb worker threads parse requests, render the chat template
 * and tokenize (all per-request work that allocates), then hand a ready
 * request to ONE scheduler thread. The scheduler owns the model context: N
 * slots, each one KV sequence of a shared pl_context. Every step is one
 * pl_context_decode holding the next token of every generating slot plus a
 * bounded chunk of prompt tokens of slots still prefilling, so the weights
 * are read once per step for all streams (decode is memory-bound). A new
 * request takes the free slot whose cached tokens share the longest prefix
 * with its prompt (a conversation's next turn reuses its KV). When no slot
 * is free it waits in a bounded queue; past the bound the answer is 503 with
 * Retry-After.
 *
 * Costs: the scheduler allocates nothing per token; text produced in a step
 * is handed to the HTTP threads under one lock per step. Each request
 * allocates its sampler (n_vocab floats), its stages and its prompt on the
 * HTTP thread before it is queued.
 *
 * Ownership and threads: pl_server_start() returns a running server that
 * owns its threads, the model and the context; pl_server_stop() may be called
 * from any thread (not from a signal handler) and is idempotent;
 * pl_server_free() stops and frees (NULL is a no-op). The hooks run on the
 * scheduler thread. The server never prints; it logs through the pl_ctx.
 */
#ifndef PARLEY_SERVER_H
#define PARLEY_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"
#include "parley/sample.h"
#include "parley/text.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pl_server pl_server;

typedef struct pl_server_params {
    const char *model_path;      /* GGUF file (required) */
    const char *model_alias;     /* the id /v1/models reports; NULL: the file name without .gguf */
    const char *template_name;   /* a built-in chat template; NULL: the model's */
    const char *template_source; /* template text; wins over template_name */
    const char *host;            /* bind address; default "127.0.0.1" */
    int         port;            /* default 8080; 0: an ephemeral port (see pl_server_port) */
    int         n_slots;         /* concurrent sequences; default 4 */
    int32_t     n_ctx;           /* tokens per slot (prompt + answer); 0: min(trained, 4096) */
    int32_t     n_batch;         /* tokens per decode step; default 512 */
    int32_t     prefill_chunk;   /* prompt tokens a slot adds per step; default 256 */
    int         n_threads;       /* 0: physical cores */
    const char *api_key;         /* Bearer key; NULL or "": no authentication */
    int         timeout_s;       /* per request, queueing included; default 600 */
    int         max_queue;       /* requests waiting for a slot; default 64 (0: none wait) */
    const char *cors_origin;     /* Access-Control-Allow-Origin value; NULL: CORS off */
    const char *web_dir;         /* static files for /; NULL: a built-in page */
    size_t      max_body;        /* request body bytes; default 8 MiB (413 past it) */
    int         max_connections; /* HTTP worker threads = open connections; default 64 */
    int         io_timeout_ms;   /* reading headers/body, each write; default 30000 (slowloris) */
    int         ping_ms;         /* SSE keep-alive comment while nothing else is sent; default 5000 */
    int         drain_ms;        /* on stop: let running requests finish this long; default 5000 */
    /* /v1/realtime (WebSocket): the bytes of a started frame or fragmented
     * message must all come within frame_timeout (default 20000; else close
     * 1008); with nothing pending, idle ms of silence sends a ping and as long
     * again with nothing received closes (1008; default 30000). */
    int         realtime_frame_timeout_ms;
    int         realtime_idle_ms;
    pl_think_mode reasoning;     /* default separate: reasoning_content apart from content */
    pl_sampler_params sampling;  /* defaults for what a request leaves out (max_tokens: 0 = the context) */
    /* Speech endpoints (POST /v1/audio/transcriptions and /v1/audio/speech).
     * The recognizer is made on the first transcription and shared: one runs
     * at a time (a mutex), so memory stays at one model; speech makes its own
     * synthesizer per request (eSpeak NG itself runs one synthesis at a time). */
    const char *stt_backend;     /* NULL: "pocketsphinx" */
    const char *stt_model;       /* backend model path; NULL: its default */
    const char *tts_voice;       /* default voice (and for OpenAI's voice names); NULL: "en-us" */
    double      max_audio_s;     /* longest upload to transcribe; default 600 (400 past it) */
    /* Tests: on_load runs on the scheduler thread before the model loads (a
     * slow load, to observe /health 503); on_step after each decode step. */
    void (*on_load)(void *ud);
    void (*on_step)(void *ud);
    void *hook_ud;
} pl_server_params;

pl_server_params pl_server_default_params(void);

/* Bind and start serving (the model loads in the background: /health says
 * 503 until it is ready). Errors: PL_ERR_INVALID_ARG (params), PL_ERR_IO
 * (cannot bind), with the text in pl_ctx_last_error(ctx). ctx must outlive
 * the server and is used from several threads (allocation and logging). */
pl_status pl_server_start(pl_ctx *ctx, const pl_server_params *params, pl_server **out);
/* The bound port (the ephemeral one when params.port was 0). */
int pl_server_port(const pl_server *s);
/* Block until the model is loaded (PL_OK) or failed to load (its status;
 * the reason in pl_server_last_error). */
pl_status pl_server_wait_loaded(pl_server *s);
/* Graceful stop: refuse new requests (503), let running ones finish for up
 * to drain_ms, cancel the rest, close the listener and join every thread.
 * Idempotent. */
void pl_server_stop(pl_server *s);
void pl_server_free(pl_server *s);
const char *pl_server_last_error(const pl_server *s);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_SERVER_H */
