/* server_int.h - private structures of the server module. */
#ifndef PL_SERVER_INT_H
#define PL_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <cjson/cJSON.h>

#include "parley/engine.h"
#include "parley/model.h"
#include "parley/profile.h"
#include "parley/server.h"

struct mg_context;
struct mg_connection;

/* ================= request parsing (request.c; fuzzed) ================= */

typedef enum pl_srv_kind {
    PL_SRV_KIND_CHAT = 0,   /* /v1/chat/completions */
    PL_SRV_KIND_COMPLETION, /* /v1/completions */
    PL_SRV_KIND_COUNT
} pl_srv_kind;

/* An OpenAI-shaped error: {"error":{"message","type","param","code"}}. */
typedef struct pl_srv_error {
    int         http;      /* status code */
    const char *type;      /* "invalid_request_error", ... (static) */
    const char *code;      /* static or NULL */
    char        param[64]; /* "" when none */
    char        message[320];
} pl_srv_error;

/* The fields of a completion request, validated. Strings and arrays are
 * allocated on the ctx given to the parser: pl_srv_opts_free. */
typedef struct pl_srv_opts {
    pl_srv_kind       kind;
    bool              stream;
    bool              include_usage;  /* stream_options.include_usage */
    bool              ignore_eos;     /* non-standard (llama-server): generate past end-of-generation */
    bool              enable_thinking; /* chat_template_kwargs.enable_thinking (default true) */
    int64_t           max_tokens;     /* 0: not given */
    pl_sampler_params sampling;       /* the server's defaults with the request's fields */
    pl_logit_bias    *bias;           /* [n_bias] */
    size_t            n_bias;
    char             *stops[PL_STOP_MAX_STRINGS];
    size_t            n_stops;
    char             *prompt;         /* completions: the prompt text */
    size_t            prompt_len;
} pl_srv_opts;

/* Parse a request body of `kind`. Chat messages go into conv (which must
 * be empty). defaults: the server's sampling defaults. On error fills err
 * (400 with the parameter named) and returns PL_ERR_INVALID_ARG (or
 * PL_ERR_NOMEM: 500). The opts are always safe to free. */
/* Nesting deeper than this is refused before parsing (cJSON recurses per level). */
#define PL_SRV_JSON_MAX_DEPTH 64
#define PL_SRV_STR_(x) #x
#define PL_SRV_STR(x) PL_SRV_STR_(x)
/* cJSON_ParseWithLength after a depth check; NULL with *too_deep set past
 * PL_SRV_JSON_MAX_DEPTH, NULL with it clear on a syntax error. */
cJSON *pl_srv_json_parse(const char *body, size_t len, bool *too_deep);
pl_status pl_srv_parse_request(pl_ctx *ctx, pl_srv_kind kind, const char *body, size_t len,
                               const pl_sampler_params *defaults, pl_conv *conv, pl_srv_opts *opts,
                               pl_srv_error *err);
void pl_srv_opts_free(pl_ctx *ctx, pl_srv_opts *opts);
/* Set err (printf-style message) and return PL_ERR_INVALID_ARG. */
pl_status pl_srv_err(pl_srv_error *err, int http, const char *type, const char *param, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* ================= multipart/form-data (multipart.c; fuzzed) ================= */

#define PL_SRV_MAX_PARTS 16

/* One part of a multipart/form-data body. data points into the body (no
 * copy); name and filename are copied, NUL-terminated (a longer name is a
 * 400, a longer filename is cut). */
typedef struct pl_srv_part {
    char        name[64];
    char        filename[128];
    bool        has_filename;
    char        content_type[96];
    const char *data;
    size_t      len;
} pl_srv_part;

/* Parse body (len bytes) of the Content-Type header value content_type
 * (RFC 7578 / RFC 2046: "--boundary" delimiters, CRLF line ends, at most
 * PL_SRV_MAX_PARTS parts, each part's header block at most 8 KiB). Every read
 * is bounded by len; the body need not be NUL-terminated. On error fills
 * err (400) and returns PL_ERR_INVALID_ARG. */
pl_status pl_srv_multipart_parse(const char *content_type, const char *body, size_t len, pl_srv_part *parts,
                                 size_t cap, size_t *n_parts, pl_srv_error *err);
/* The first part named name, or NULL. */
const pl_srv_part *pl_srv_multipart_find(const pl_srv_part *parts, size_t n, const char *name);

/* ================= requests in flight ================= */

/* A growable byte buffer (doubling; never per token once warm). */
typedef struct pl_srv_buf {
    char  *data;
    size_t len, cap;
} pl_srv_buf;

/* Append; false when out of memory (the buffer is unchanged). */
bool pl_srv_buf_put(pl_ctx *ctx, pl_srv_buf *b, const char *text, size_t len);

typedef struct pl_srv_req pl_srv_req;
struct pl_srv_req {
    pl_srv_req *next; /* queue link (srv->mu) */
    /* Set by the HTTP thread before it is queued; read-only after. */
    pl_token   *prompt;
    int32_t     n_prompt;
    int32_t     max_tokens; /* > 0 */
    bool        ignore_eos;
    bool        think_opens; /* the rendered prompt opened a reasoning block */
    const pl_sampler_params *sampling; /* checked; in the HTTP thread's opts, which outlive the request */
    pl_detok   *detok;
    pl_stop    *stop;
    pl_think   *think;      /* NULL: everything is content */
    atomic_int  cancel;     /* set by the HTTP thread (disconnect, timeout, shutdown) */
    /* Under srv->mu. The scheduler appends; the HTTP thread takes. */
    pthread_cond_t cv;
    pl_srv_buf  pend[PL_CHANNEL_COUNT];
    bool        assigned;   /* got a slot */
    bool        done;       /* finished: the scheduler no longer touches it */
    pl_status   error;      /* PL_OK, or why it failed */
    pl_finish   finish;
    int         slot;
    int32_t     n_cached, n_gen, n_reasoning;
    uint64_t    t_submit, t_assigned, t_prefilled, t_first, t_last; /* pl_time_ns */
};

/* ================= metrics (metrics.c) ================= */

#define PL_SRV_HIST_MAX 16

typedef struct pl_srv_hist {
    const double *bounds; /* upper bounds in seconds, ascending */
    int           n;
    uint64_t      counts[PL_SRV_HIST_MAX]; /* per bucket (not cumulative); [n] is +Inf */
    double        sum;
    uint64_t      count;
} pl_srv_hist;

/* HTTP status codes counted one by one; the rest go to "other". */
#define PL_SRV_STATUS_CODES 12

typedef struct pl_srv_metrics {
    uint64_t    by_status[PL_SRV_STATUS_CODES + 1];
    uint64_t    prompt_tokens, cached_tokens, generated_tokens;
    uint64_t    requests_done;
    pl_srv_hist ttft, itl;
    /* the scheduler's pl_context_perf, copied under the lock after each decode
     * (the context's own counters belong to the scheduler thread) */
    pl_decode_perf perf;
} pl_srv_metrics;

void pl_srv_metrics_init(pl_srv_metrics *m);
void pl_srv_hist_add(pl_srv_hist *h, double seconds);
void pl_srv_metrics_count_status(pl_srv_metrics *m, int status);
/* Prometheus text of m plus the gauges; NULL when out of memory (free with free()). */
/* proc: this process's pl_proc_stats, or NULL when they could not be read. */
char *pl_srv_metrics_text(const pl_srv_metrics *m, int queue_len, int busy_slots, int n_slots, int64_t kv_used,
                          int64_t kv_total, const pl_proc_stats *proc);

/* ================= the server ================= */

typedef struct pl_srv_slot {
    pl_ctx     *ctx;
    int32_t     seq;
    pl_token   *cache;   /* [n_ctx] the tokens the sequence holds, in order */
    int32_t     n_cache;
    int32_t     n_cache_pub; /* n_cache as of the last step, under srv->mu (for /props) */
    pl_srv_req *req;     /* NULL: free */
    int32_t     n_done;  /* prompt tokens decoded */
    bool        gen;     /* past the prompt: `next` is the token to decode */
    pl_token    next;
    int32_t     out_row; /* logit row of the last decode, or -1 */
    uint64_t    t_tok;   /* last token time */
    double      itl_s;   /* the last inter-token time not yet in the histogram, or -1 */
    uint64_t    used;    /* step of the last use (LRU among equal prefixes) */
    pl_srv_buf  stage[PL_CHANNEL_COUNT]; /* text of this step (scheduler only) */
    bool        oom, finished;
    pl_finish   finish;
    char       *piece;   /* NUL-free copy of a token's text */
    size_t      piece_cap;
    /* made at load and given each request's params at assignment: its
     * n_vocab x 20 bytes (2.9 MiB at a 152k vocabulary) are not allocated and
     * freed per request, which fragmented the malloc heaps (the soak's RSS
     * growth, docs/robustness.md) and cost page faults on the scheduler */
    pl_sampler *sampler;
} pl_srv_slot;

struct pl_server {
    pl_ctx            *ctx;
    pl_server_params   p;
    /* copies of the params' strings */
    char              *model_path, *alias, *host, *api_key, *cors, *web_dir, *tmpl_name, *tmpl_src;
    struct mg_context *mg;
    int                port;
    /* the model side: made by the scheduler thread, then read-only */
    pl_model          *model;
    pl_engine         *engine;
    pl_context        *lc;
    int32_t            n_ctx, n_vocab;
    atomic_int         state; /* 0 loading, 1 ready, 2 failed, 3 stopping */
    pl_status          load_status;
    char               err[PL_CTX_ERR_CAP];
    pthread_t          thread;
    bool               thread_started, stopped;
    /* under mu */
    pthread_mutex_t    mu;
    pthread_cond_t     cv;        /* wakes the scheduler (a new request, a cancel, stop) */
    pthread_cond_t     loaded_cv; /* load finished */
    pl_srv_req        *queue_head, *queue_tail;
    int                queue_len;
    int                busy;      /* slots with a request */
    int64_t            kv_used;
    uint64_t           next_id;
    bool               quit;      /* the scheduler ends: cancel everything */
    pl_srv_metrics     metrics;
    /* the scheduler's own */
    pl_ctx            *sched_ctx; /* the slots' samplers' (their error text is this thread's) */
    pl_srv_slot       *slots;
    pl_token          *b_tok;
    int32_t           *b_pos, *b_seq;
    int8_t            *b_out;
    uint64_t           step;
    int64_t            created; /* unix time of the start (model "created") */
    struct pl_srv_audio *audio; /* the speech endpoints' state (audio_api.c) */
    atomic_int         rt_conns; /* open /v1/realtime connections (realtime.c) */
};

/* Scheduler thread (sched.c): load, then run steps until quit. */
void *pl_srv_sched_main(void *arg);
/* Queue a prepared request. false (503) when the server is not ready or the
 * queue is full. */
bool pl_srv_submit(pl_server *s, pl_srv_req *r, bool *full);
/* Wait (with the request's cv) until it is done; then it may be freed. */
void pl_srv_wait_done(pl_server *s, pl_srv_req *r);
/* Free a request's objects (after done or when it was never queued). */
void pl_srv_req_free(pl_server *s, pl_srv_req *r);

/* HTTP side (server.c, api.c) */
int pl_srv_handle_completion(struct mg_connection *conn, pl_server *s, pl_srv_kind kind, const char *body,
                             size_t len);
/* Speech endpoints (audio_api.c). init copies what it needs of p. */
pl_status pl_srv_audio_init(pl_server *s, const pl_server_params *p);
void pl_srv_audio_free(pl_server *s);
void pl_srv_handle_transcription(struct mg_connection *conn, pl_server *s, const char *body, size_t len);
void pl_srv_handle_speech(struct mg_connection *conn, pl_server *s, const char *body, size_t len);
/* The configured recognizer backend and voice (NULL: defaults). */
const char *pl_srv_audio_stt_backend(const pl_server *s);
const char *pl_srv_audio_tts_voice(const pl_server *s);
/* GET /v1/realtime (realtime.c), after the router's auth and model checks:
 * the WebSocket handshake, then the connection's whole life on this thread. */
void pl_srv_handle_realtime(struct mg_connection *conn, pl_server *s);
/* The request carries the API key (or none is set). */
bool pl_srv_authorized(struct mg_connection *conn, const pl_server *s);
/* Prometheus lines of the audio counters (a NUL-terminated string in buf). */
void pl_srv_audio_metrics(const pl_server *s, char *buf, size_t cap);
/* Write a response with a body; counts the status in the metrics. */
void pl_srv_send(struct mg_connection *conn, pl_server *s, int status, const char *content_type, const char *body,
                 size_t len, const char *extra_headers);
void pl_srv_send_json(struct mg_connection *conn, pl_server *s, int status, const cJSON *obj);
void pl_srv_send_error(struct mg_connection *conn, pl_server *s, const pl_srv_error *e, const char *extra_headers);
/* Status-line text for a code. */
const char *pl_srv_reason(int status);

/* ================= WebSocket (ws.c; RFC 6455, server side) ================= */

struct mg_request_info;

#define PL_SRV_WS_ACCEPT_LEN 28 /* base64 of a SHA-1 */

typedef enum pl_srv_ws_op {
    PL_SRV_WS_OP_CONT = 0x0,
    PL_SRV_WS_OP_TEXT = 0x1,
    PL_SRV_WS_OP_BINARY = 0x2,
    PL_SRV_WS_OP_CLOSE = 0x8,
    PL_SRV_WS_OP_PING = 0x9,
    PL_SRV_WS_OP_PONG = 0xA,
} pl_srv_ws_op;

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (base64 of 16 bytes, else
 * false): base64(SHA-1(key + the RFC's GUID)), NUL-terminated. */
bool pl_srv_ws_accept_key(const char *key, char out[PL_SRV_WS_ACCEPT_LEN + 1]);
/* Check an upgrade request's headers (RFC 6455 4.2.1). 0 with the accept
 * value; else the HTTP status to answer (400, 426) with err filled and
 * *extra_headers the header lines to add (static, or NULL). */
int pl_srv_ws_handshake(struct mg_connection *conn, char accept[PL_SRV_WS_ACCEPT_LEN + 1], pl_srv_error *err,
                        const char **extra_headers);
/* The descriptor of the TCP connection a request came on, found by its
 * addresses (see ws.c for why and what it relies on); -1 when none, or when
 * two different sockets match. Plain HTTP only. */
int pl_srv_ws_find_socket(const struct mg_request_info *ri);

typedef struct pl_srv_ws_params {
    size_t max_message;      /* bytes of a message, fragments together; past it 1009 */
    int    frame_timeout_ms; /* a started frame (or fragmented message) must be whole within this; else 1008 */
    int    idle_ms;          /* nothing received this long: a ping; as long again: 1008 */
    int    write_timeout_ms; /* a write that makes no progress this long ends the connection */
    bool (*stopping)(void *ud); /* polled every 100 ms by the reader and blocked writers: true ends (1001) */
    void  *ud;
} pl_srv_ws_params;

/* One connection on fd (not owned: not closed by free). The reader
 * functions (read, linger) belong to one thread; send and close may be called
 * from any thread. */
typedef struct pl_srv_ws pl_srv_ws;
pl_status pl_srv_ws_init(pl_ctx *ctx, int fd, const pl_srv_ws_params *p, pl_srv_ws **out);
void pl_srv_ws_free(pl_srv_ws *w);
/* The 101 response. false: the write failed. */
bool pl_srv_ws_accept(pl_srv_ws *w, const char *accept);
/* The next text or binary message (fragments joined), valid until the next
 * call; pings answered, pongs taken, on the way. false: the connection is
 * over (the client closed, a protocol error, a timeout, a stop, a broken
 * write); a close frame was sent when one could be. */
bool pl_srv_ws_read(pl_srv_ws *w, pl_srv_ws_op *op, const uint8_t **data, size_t *len);
/* A frame (text, binary, ping, pong); false once closing or broken. */
bool pl_srv_ws_send(pl_srv_ws *w, pl_srv_ws_op op, const void *data, size_t len);
/* Send a close frame (once; reason cut at 123 bytes); no data frame after it. */
void pl_srv_ws_close(pl_srv_ws *w, uint16_t code, const char *reason);
/* After the end: half-close and discard input until the peer closes (at most 1 s). */
void pl_srv_ws_linger(pl_srv_ws *w);
/* Why it ended: the close code sent or received (1006: none), and a phrase. */
uint16_t pl_srv_ws_end_code(const pl_srv_ws *w);
const char *pl_srv_ws_end_reason(const pl_srv_ws *w);

#endif
