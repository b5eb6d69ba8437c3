/*
 * server.c - pl_server: civetweb setup, routing, authentication, CORS, the
 * small endpoints (/health, /v1/models, /props, /metrics, /tokenize,
 * /detokenize) and the static web page. Completions are in api.c, the
 * scheduler in sched.c.
 *
 * Every request passes civetweb's begin_request callback (one router, no
 * file serving by civetweb itself). Limits: civetweb's worker count bounds
 * the open connections, request_timeout_ms bounds reading the headers and
 * each read/write (slowloris), max_request_size the header bytes, and
 * max_body the body (413).
 */
#include <arpa/inet.h>
#include <civetweb.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server/server_int.h"

pl_server_params pl_server_default_params(void) {
    return (pl_server_params){
        .host = "127.0.0.1",
        .port = 8080,
        .n_slots = 4,
        .n_batch = 512,
        .prefill_chunk = 256,
        .timeout_s = 600,
        .max_queue = 64,
        .max_body = (size_t)8 << 20,
        .max_connections = 64,
        .io_timeout_ms = 30000,
        .ping_ms = 5000,
        .drain_ms = 5000,
        .realtime_frame_timeout_ms = 20000,
        .realtime_idle_ms = 30000,
        .reasoning = PL_THINK_MODE_SEPARATE,
        .sampling = pl_sampler_default_params(),
        .max_audio_s = 600,
    };
}

const char *pl_srv_reason(int status) {
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 426: return "Upgrade Required";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

static void count_status(pl_server *s, int status) {
    pthread_mutex_lock(&s->mu);
    pl_srv_metrics_count_status(&s->metrics, status);
    pthread_mutex_unlock(&s->mu);
}

/* CORS header lines (or ""), into buf. */
static const char *cors_lines(const pl_server *s, char *buf, size_t cap) {
    if (!s->cors) return "";
    snprintf(buf, cap,
             "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n"
             "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"
             "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n",
             s->cors);
    return buf;
}

void pl_srv_send(struct mg_connection *conn, pl_server *s, int status, const char *content_type, const char *body,
                 size_t len, const char *extra_headers) {
    char cors[512];
    count_status(s, status); /* before the write: a client may ask /metrics the moment it has the answer */
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
              "X-Content-Type-Options: nosniff\r\n%s%sConnection: close\r\n\r\n",
              status, pl_srv_reason(status), content_type, len, cors_lines(s, cors, sizeof cors),
              extra_headers ? extra_headers : "");
    if (len) mg_write(conn, body, len);
}

void pl_srv_send_json(struct mg_connection *conn, pl_server *s, int status, const cJSON *obj) {
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    if (!text) {
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,"
                                  "\"code\":null}}";
        pl_srv_send(conn, s, 500, "application/json", oom, sizeof oom - 1, NULL);
        return;
    }
    pl_srv_send(conn, s, status, "application/json", text, strlen(text), NULL);
    cJSON_free(text);
}

/* {"error":{"message","type","param","code"}} as OpenAI sends it. */
static cJSON *error_json(const pl_srv_error *e) {
    cJSON *root = cJSON_CreateObject(), *o = cJSON_AddObjectToObject(root, "error");
    if (!o) {
        cJSON_Delete(root);
        return NULL;
    }
    cJSON_AddStringToObject(o, "message", e->message);
    cJSON_AddStringToObject(o, "type", e->type ? e->type : "invalid_request_error");
    if (e->param[0]) cJSON_AddStringToObject(o, "param", e->param);
    else cJSON_AddNullToObject(o, "param");
    if (e->code) cJSON_AddStringToObject(o, "code", e->code);
    else cJSON_AddNullToObject(o, "code");
    return root;
}

void pl_srv_send_error(struct mg_connection *conn, pl_server *s, const pl_srv_error *e, const char *extra_headers) {
    cJSON *root = error_json(e);
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        pl_srv_send_json(conn, s, 500, NULL);
        return;
    }
    pl_srv_send(conn, s, e->http, "application/json", text, strlen(text), extra_headers);
    cJSON_free(text);
}

static void send_err(struct mg_connection *conn, pl_server *s, int http, const char *type, const char *code,
                     const char *msg) {
    pl_srv_error e;
    pl_srv_err(&e, http, type, NULL, "%s", msg);
    e.code = code;
    pl_srv_send_error(conn, s, &e, NULL);
}

/* ---- authentication ---- */

/* Constant time in the key's length: every byte is compared whatever
 * matched before (a timing side channel would leak the key byte by byte). */
static bool key_equal(const char *given, size_t glen, const char *key) {
    size_t klen = strlen(key);
    unsigned diff = (unsigned)(glen != klen);
    for (size_t i = 0; i < klen; i++) diff |= (unsigned char)key[i] ^ (unsigned char)(i < glen ? given[i] : 0);
    return diff == 0;
}

bool pl_srv_authorized(struct mg_connection *conn, const pl_server *s) {
    if (!s->api_key) return true;
    const char *h = mg_get_header(conn, "Authorization");
    if (!h || mg_strncasecmp(h, "Bearer ", 7) != 0) return false;
    h += 7;
    while (*h == ' ') h++;
    size_t len = strlen(h);
    while (len && (h[len - 1] == ' ' || h[len - 1] == '\t')) len--;
    return key_equal(h, len, s->api_key);
}

/* ---- bodies ---- */

/* Read the body (NUL terminated) into *out (pl_free on s->ctx). 0 on
 * success, else the HTTP status to answer (413, 400, 500). */
static int read_body(struct mg_connection *conn, pl_server *s, char **out, size_t *len) {
    const struct mg_request_info *ri = mg_get_request_info(conn);
    *out = NULL;
    *len = 0;
    if (ri->content_length > 0 && (unsigned long long)ri->content_length > s->p.max_body) return 413;
    size_t cap = ri->content_length >= 0 ? (size_t)ri->content_length + 1 : 65536, n = 0;
    char *buf = pl_malloc(s->ctx, cap);
    if (!buf) return 500;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > s->p.max_body + 1) {
                pl_free(s->ctx, buf);
                return 413;
            }
            size_t nc = cap * 2 > s->p.max_body + 2 ? s->p.max_body + 2 : cap * 2;
            char *nb = pl_realloc(s->ctx, buf, nc);
            if (!nb) {
                pl_free(s->ctx, buf);
                return 500;
            }
            buf = nb;
            cap = nc;
        }
        int k = mg_read(conn, buf + n, cap - 1 - n);
        if (k < 0) {
            pl_free(s->ctx, buf);
            return 400;
        }
        if (k == 0) break;
        n += (size_t)k;
        if (n > s->p.max_body) {
            pl_free(s->ctx, buf);
            return 413;
        }
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

/* ---- small endpoints ---- */

static void handle_health(struct mg_connection *conn, pl_server *s) {
    int state = atomic_load(&s->state);
    if (state == 1) {
        static const char ok[] = "{\"status\":\"ok\"}";
        pl_srv_send(conn, s, 200, "application/json", ok, sizeof ok - 1, NULL);
    } else if (state == 0) {
        send_err(conn, s, 503, "unavailable_error", "model_loading", "Loading model");
    } else if (state == 2) {
        char msg[600];
        snprintf(msg, sizeof msg, "the model failed to load: %s", s->err);
        send_err(conn, s, 503, "unavailable_error", "model_load_failed", msg);
    } else {
        send_err(conn, s, 503, "unavailable_error", "shutting_down", "the server is shutting down");
    }
}

static void handle_models(struct mg_connection *conn, pl_server *s) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", s->alias);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)s->created);
    cJSON_AddStringToObject(m, "owned_by", "parley");
    cJSON_AddItemToArray(data, m);
    pl_srv_send_json(conn, s, 200, root);
    cJSON_Delete(root);
}

static void handle_props(struct mg_connection *conn, pl_server *s) {
    cJSON *root = cJSON_CreateObject();
    const pl_model_info *mi = pl_model_get_info(s->model);
    cJSON_AddStringToObject(root, "model", s->alias);
    cJSON_AddStringToObject(root, "model_path", s->model_path);
    cJSON_AddStringToObject(root, "arch", mi->arch);
    cJSON_AddStringToObject(root, "chat_template", pl_engine_template_origin(s->engine));
    cJSON_AddNumberToObject(root, "n_ctx", s->n_ctx);
    cJSON_AddNumberToObject(root, "n_ctx_train", mi->n_ctx_train);
    cJSON_AddNumberToObject(root, "n_vocab", s->n_vocab);
    cJSON_AddNumberToObject(root, "total_slots", s->p.n_slots);
    cJSON_AddStringToObject(root, "reasoning", pl_think_mode_name(s->p.reasoning));
    cJSON_AddStringToObject(root, "version", PL_VERSION);
    cJSON *slots = cJSON_AddArrayToObject(root, "slots");
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->p.n_slots; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", i);
        cJSON_AddBoolToObject(o, "busy", s->slots[i].req != NULL);
        cJSON_AddNumberToObject(o, "n_cache", s->slots[i].n_cache_pub);
        cJSON_AddItemToArray(slots, o);
    }
    cJSON_AddNumberToObject(root, "queue_length", s->queue_len);
    pthread_mutex_unlock(&s->mu);
    pl_srv_send_json(conn, s, 200, root);
    cJSON_Delete(root);
}

static void handle_metrics(struct mg_connection *conn, pl_server *s) {
    pl_proc_stats proc;
    bool have_proc = pl_proc_stats_read(&proc) == PL_OK;
    pthread_mutex_lock(&s->mu);
    bool ready = atomic_load(&s->state) == 1;
    char *text = pl_srv_metrics_text(&s->metrics, s->queue_len, s->busy, s->p.n_slots, s->kv_used,
                                     ready ? (int64_t)s->n_ctx * s->p.n_slots : 0,
                                     have_proc ? &proc : NULL);
    pthread_mutex_unlock(&s->mu);
    if (!text) {
        pl_srv_send_json(conn, s, 500, NULL);
        return;
    }
    char audio[1200];
    pl_srv_audio_metrics(s, audio, sizeof audio);
    size_t tl = strlen(text), al = strlen(audio);
    char *all = realloc(text, tl + al + 1);
    if (all) {
        memcpy(all + tl, audio, al + 1);
        text = all;
    }
    pl_srv_send(conn, s, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text), NULL);
    free(text);
}

static void handle_tokenize(struct mg_connection *conn, pl_server *s, const char *body, size_t len) {
    pl_srv_error e;
    bool deep;
    cJSON *req = pl_srv_json_parse(body, len, &deep);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(req, "content");
    const cJSON *special = cJSON_GetObjectItemCaseSensitive(req, "add_special");
    const cJSON *pieces = cJSON_GetObjectItemCaseSensitive(req, "with_pieces");
    if (!cJSON_IsObject(req) || !cJSON_IsString(content) || (special && !cJSON_IsBool(special)) ||
        (pieces && !cJSON_IsBool(pieces))) {
        cJSON_Delete(req);
        pl_srv_err(&e, 400, "invalid_request_error", "content",
                   "expected {\"content\": string, \"add_special\": bool, \"with_pieces\": bool}");
        pl_srv_send_error(conn, s, &e, NULL);
        return;
    }
    const pl_tokenizer *tok = pl_engine_tokenizer(s->engine);
    pl_tok_scratch *scratch = NULL;
    size_t clen = strlen(content->valuestring), cap = clen + 8, n = 0;
    pl_token *ids = pl_calloc(s->ctx, cap, sizeof *ids);
    pl_encode_params ep = pl_encode_default_params();
    ep.add_bos = ep.add_eos = cJSON_IsTrue(special);
    ep.parse_special = true;
    if (!ids || pl_tok_scratch_init(tok, &scratch) != PL_OK ||
        pl_tokenizer_encode(tok, scratch, content->valuestring, clen, &ep, ids, cap, &n) != PL_OK) {
        pl_free(s->ctx, ids);
        pl_tok_scratch_free(scratch);
        cJSON_Delete(req);
        send_err(conn, s, 500, "server_error", NULL, "tokenizing failed");
        return;
    }
    pl_tok_scratch_free(scratch);
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "tokens");
    char piece[512];
    for (size_t i = 0; i < n; i++) {
        if (cJSON_IsTrue(pieces)) {
            size_t pl = pl_tokenizer_piece(tok, ids[i], true, piece, sizeof piece - 1);
            piece[pl < sizeof piece - 1 ? pl : sizeof piece - 1] = 0;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "id", ids[i]);
            cJSON_AddStringToObject(o, "piece", piece);
            cJSON_AddItemToArray(arr, o);
        } else {
            cJSON_AddItemToArray(arr, cJSON_CreateNumber(ids[i]));
        }
    }
    pl_free(s->ctx, ids);
    cJSON_Delete(req);
    pl_srv_send_json(conn, s, 200, root);
    cJSON_Delete(root);
}

static void handle_detokenize(struct mg_connection *conn, pl_server *s, const char *body, size_t len) {
    pl_srv_error e;
    bool deep;
    cJSON *req = pl_srv_json_parse(body, len, &deep);
    const cJSON *tokens = cJSON_GetObjectItemCaseSensitive(req, "tokens");
    int n = cJSON_IsArray(tokens) ? cJSON_GetArraySize(tokens) : -1;
    pl_token *ids = n > 0 ? pl_calloc(s->ctx, (size_t)n, sizeof *ids) : NULL;
    int k = 0;
    for (const cJSON *t = n > 0 ? tokens->child : NULL; t; t = t->next, k++) {
        if (!cJSON_IsNumber(t) || t->valuedouble < 0 || t->valuedouble >= s->n_vocab ||
            t->valuedouble != (double)(int32_t)t->valuedouble)
            break;
        if (ids) ids[k] = (pl_token)t->valuedouble;
    }
    if (n < 0 || k != n || (n > 0 && !ids)) {
        pl_free(s->ctx, ids);
        cJSON_Delete(req);
        pl_srv_err(&e, 400, "invalid_request_error", "tokens", "expected {\"tokens\": [token ids below %d]}",
                   s->n_vocab);
        pl_srv_send_error(conn, s, &e, NULL);
        return;
    }
    cJSON_Delete(req);
    const pl_tokenizer *tok = pl_engine_tokenizer(s->engine);
    size_t cap = (size_t)n * (pl_tokenizer_max_piece(tok) + 4) + 16, out_n = 0;
    char *text = pl_malloc(s->ctx, cap);
    pl_detok_params dp = pl_detok_default_params();
    if (!text || pl_tokenizer_decode(tok, ids, (size_t)n, &dp, text, cap, &out_n) != PL_OK) {
        pl_free(s->ctx, ids);
        pl_free(s->ctx, text);
        send_err(conn, s, 500, "server_error", NULL, "detokenizing failed");
        return;
    }
    text[out_n < cap ? out_n : cap - 1] = 0;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "content", text);
    pl_srv_send_json(conn, s, 200, root);
    cJSON_Delete(root);
    pl_free(s->ctx, ids);
    pl_free(s->ctx, text);
}

/* ---- static files ---- */

static const struct {
    const char *ext, *type;
} mime_types[] = {
    { ".html", "text/html; charset=utf-8" },     { ".htm", "text/html; charset=utf-8" },
    { ".js", "text/javascript; charset=utf-8" }, { ".mjs", "text/javascript; charset=utf-8" },
    { ".css", "text/css; charset=utf-8" },       { ".json", "application/json" },
    { ".map", "application/json" },              { ".webmanifest", "application/manifest+json" },
    { ".svg", "image/svg+xml" },                 { ".png", "image/png" },
    { ".jpg", "image/jpeg" },                    { ".jpeg", "image/jpeg" },
    { ".gif", "image/gif" },                     { ".ico", "image/x-icon" },
    { ".webp", "image/webp" },                   { ".wasm", "application/wasm" },
    { ".woff2", "font/woff2" },                  { ".woff", "font/woff" },
    { ".txt", "text/plain; charset=utf-8" },     { ".wav", "audio/wav" },
};

static const char *mime_type(const char *path) {
    size_t len = strlen(path);
    for (size_t i = 0; i < sizeof mime_types / sizeof mime_types[0]; i++) {
        size_t el = strlen(mime_types[i].ext);
        if (len >= el && strcasecmp(path + len - el, mime_types[i].ext) == 0) return mime_types[i].type;
    }
    return "application/octet-stream";
}

static const char no_web_page[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>parley</title></head><body>"
    "<h1>parley</h1><p>The web UI is not installed (no web/ directory next to the binary; see "
    "<code>parley serve --web-dir</code>). The OpenAI-compatible API is at <code>/v1</code>.</p></body></html>";

/* A safe path under web_dir: no "..", no hidden files, no backslashes or
 * control bytes; and the resolved file must stay under the resolved root
 * (a symlink cannot lead out). */
static void handle_static(struct mg_connection *conn, pl_server *s, const char *uri) {
    if (!s->web_dir) {
        if (strcmp(uri, "/") == 0 || strcmp(uri, "/index.html") == 0)
            pl_srv_send(conn, s, 200, "text/html; charset=utf-8", no_web_page, sizeof no_web_page - 1, NULL);
        else send_err(conn, s, 404, "invalid_request_error", "not_found", "not found");
        return;
    }
    const char *rel = strcmp(uri, "/") == 0 ? "/index.html" : uri;
    bool bad = strlen(rel) > 1024 || rel[0] != '/';
    for (const char *p = rel; !bad && *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == '\\' || *p == 0x7f) bad = true;
        if (*p == '/' && p[1] == '.') bad = true; /* "..", ".hidden", "/./" */
        if (*p == '/' && p[1] == '/') bad = true;
    }
    char path[PATH_MAX + 1100], real[PATH_MAX];
    if (!bad) snprintf(path, sizeof path, "%s%s", s->web_dir, rel);
    struct stat st;
    size_t rl = strlen(s->web_dir);
    if (bad || !realpath(path, real) || strncmp(real, s->web_dir, rl) != 0 || real[rl] != '/' ||
        stat(real, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (64 << 20)) {
        send_err(conn, s, 404, "invalid_request_error", "not_found", "not found");
        return;
    }
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    char *data = fd >= 0 ? pl_malloc(s->ctx, (size_t)st.st_size + 1) : NULL;
    size_t n = 0;
    while (data && n < (size_t)st.st_size) {
        ssize_t k = read(fd, data + n, (size_t)st.st_size - n);
        if (k <= 0) break;
        n += (size_t)k;
    }
    if (fd >= 0) close(fd);
    if (!data || n != (size_t)st.st_size) {
        pl_free(s->ctx, data);
        send_err(conn, s, 500, "server_error", NULL, "cannot read the file");
        return;
    }
    pl_srv_send(conn, s, 200, mime_type(real), data, n, NULL);
    pl_free(s->ctx, data);
}

/* ---- routing ---- */

typedef enum route_id {
    R_HEALTH, R_MODELS, R_PROPS, R_METRICS, R_TOKENIZE, R_DETOKENIZE, R_CHAT, R_COMPLETIONS, R_TRANSCRIBE, R_SPEECH,
    R_REALTIME, R_COUNT
} route_id;

static const struct route {
    const char *path, *alias, *method;
    bool        auth, needs_model, body;
} routes[R_COUNT] = {
    [R_HEALTH] = { .path = "/health", .alias = "/v1/health", .method = "GET" },
    [R_MODELS] = { .path = "/v1/models", .alias = "/models", .method = "GET", .auth = true },
    [R_PROPS] = { .path = "/props", .method = "GET", .auth = true, .needs_model = true },
    [R_METRICS] = { .path = "/metrics", .method = "GET", .auth = true },
    [R_TOKENIZE] = { .path = "/tokenize", .method = "POST", .auth = true, .needs_model = true, .body = true },
    [R_DETOKENIZE] = { .path = "/detokenize", .method = "POST", .auth = true, .needs_model = true, .body = true },
    [R_CHAT] = { .path = "/v1/chat/completions", .alias = "/chat/completions", .method = "POST", .auth = true,
                 .needs_model = true, .body = true },
    [R_COMPLETIONS] = { .path = "/v1/completions", .alias = "/completions", .method = "POST", .auth = true,
                        .needs_model = true, .body = true },
    /* the speech endpoints do not need the language model */
    [R_TRANSCRIBE] = { .path = "/v1/audio/transcriptions", .alias = "/audio/transcriptions", .method = "POST",
                       .auth = true, .body = true },
    [R_SPEECH] = { .path = "/v1/audio/speech", .alias = "/audio/speech", .method = "POST", .auth = true,
                   .body = true },
    /* the WebSocket: the handshake and the connection's life in realtime.c */
    [R_REALTIME] = { .path = "/v1/realtime", .method = "GET", .auth = true, .needs_model = true },
};

static int begin_request(struct mg_connection *conn) {
    pl_server *s = mg_get_user_data(mg_get_context(conn));
    const struct mg_request_info *ri = mg_get_request_info(conn);
    const char *uri = ri->local_uri ? ri->local_uri : "/";
    const char *method = ri->request_method ? ri->request_method : "";
    int r = 0;
    while (r < R_COUNT && strcmp(uri, routes[r].path) != 0 && !(routes[r].alias && strcmp(uri, routes[r].alias) == 0))
        r++;
    if (strcmp(method, "OPTIONS") == 0) { /* a CORS preflight */
        if (s->cors) pl_srv_send(conn, s, 204, "text/plain", "", 0, NULL);
        else send_err(conn, s, 405, "invalid_request_error", NULL, "CORS is not enabled on this server");
        return 1;
    }
    if (r == R_COUNT) {
        if (strncmp(uri, "/v1/", 4) == 0) send_err(conn, s, 404, "invalid_request_error", "not_found", "no such endpoint");
        else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            send_err(conn, s, 405, "invalid_request_error", NULL, "method not allowed");
        else handle_static(conn, s, uri);
        return 1;
    }
    const struct route *rt = &routes[r];
    if (strcmp(method, rt->method) != 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s takes %s", rt->path, rt->method);
        send_err(conn, s, 405, "invalid_request_error", NULL, msg);
        return 1;
    }
    if (rt->auth && !pl_srv_authorized(conn, s)) {
        pl_srv_error e;
        pl_srv_err(&e, 401, "invalid_request_error", NULL, "a valid API key is required (Authorization: Bearer KEY)");
        e.code = "invalid_api_key";
        pl_srv_send_error(conn, s, &e, "WWW-Authenticate: Bearer\r\n");
        return 1;
    }
    if (rt->needs_model && atomic_load(&s->state) != 1) {
        handle_health(conn, s); /* 503 with the reason */
        return 1;
    }
    char *body = NULL;
    size_t len = 0;
    if (rt->body) {
        int http = read_body(conn, s, &body, &len);
        if (http) {
            send_err(conn, s, http, http == 413 ? "invalid_request_error" : "server_error", NULL,
                     http == 413 ? "the request body is too large" : "cannot read the request body");
            return 1;
        }
    }
    switch ((route_id)r) {
    case R_HEALTH: handle_health(conn, s); break;
    case R_MODELS: handle_models(conn, s); break;
    case R_PROPS: handle_props(conn, s); break;
    case R_METRICS: handle_metrics(conn, s); break;
    case R_TOKENIZE: handle_tokenize(conn, s, body, len); break;
    case R_DETOKENIZE: handle_detokenize(conn, s, body, len); break;
    case R_CHAT: pl_srv_handle_completion(conn, s, PL_SRV_KIND_CHAT, body, len); break;
    case R_COMPLETIONS: pl_srv_handle_completion(conn, s, PL_SRV_KIND_COMPLETION, body, len); break;
    case R_TRANSCRIBE: pl_srv_handle_transcription(conn, s, body, len); break;
    case R_SPEECH: pl_srv_handle_speech(conn, s, body, len); break;
    case R_REALTIME: pl_srv_handle_realtime(conn, s); break;
    case R_COUNT: break;
    }
    pl_free(s->ctx, body);
    return 1;
}

static int log_message(const struct mg_connection *conn, const char *message) {
    const struct mg_context *mc = mg_get_context(conn);
    pl_server *s = mc ? mg_get_user_data(mc) : NULL;
    if (s) pl_log(s->ctx, PL_LOG_LEVEL_DEBUG, "serve: http: %s", message);
    return 1; /* civetweb prints nothing itself */
}

/* ---- lifetime ---- */

static char *dup_opt(pl_ctx *ctx, const char *v, bool *oom) {
    if (!v || !*v) return NULL;
    char *d = pl_strdup(ctx, v);
    if (!d) *oom = true;
    return d;
}

pl_status pl_server_start(pl_ctx *ctx, const pl_server_params *params, pl_server **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    pl_server_params p = params ? *params : pl_server_default_params();
    if (!p.model_path || !*p.model_path) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "serve: no model");
    if (p.port < 0 || p.port > 65535 || p.n_slots < 1 || p.n_slots > 256 || p.n_ctx < 0 || p.n_batch < 1 ||
        p.prefill_chunk < 1 || p.timeout_s < 1 || p.max_queue < 0 || p.max_queue > 100000 || p.max_body < 1 ||
        p.max_connections < 1 || p.max_connections > 10000 || p.io_timeout_ms < 1 || p.ping_ms < 1 ||
        p.drain_ms < 0 || p.realtime_frame_timeout_ms < 1 || p.realtime_idle_ms < 1 ||
        (unsigned)p.reasoning >= PL_THINK_MODE_COUNT)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "serve: bad parameters");
    if (p.n_batch < p.n_slots) p.n_batch = p.n_slots; /* every generating slot fits each step */
    pl_server *s = pl_calloc(ctx, 1, sizeof *s);
    if (!s) return pl_ctx_err(ctx, PL_ERR_NOMEM, "serve: out of memory");
    s->ctx = ctx;
    s->p = p;
    s->created = (int64_t)time(NULL);
    pl_srv_metrics_init(&s->metrics);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_cond_init(&s->loaded_cv, &ca);
    pthread_condattr_destroy(&ca);
    bool oom = false;
    s->model_path = dup_opt(ctx, p.model_path, &oom);
    s->host = dup_opt(ctx, p.host ? p.host : "127.0.0.1", &oom);
    s->api_key = dup_opt(ctx, p.api_key, &oom);
    s->cors = dup_opt(ctx, p.cors_origin, &oom);
    s->tmpl_name = dup_opt(ctx, p.template_name, &oom);
    s->tmpl_src = dup_opt(ctx, p.template_source, &oom);
    if (p.model_alias && *p.model_alias) {
        s->alias = dup_opt(ctx, p.model_alias, &oom);
    } else {
        const char *base = strrchr(p.model_path, '/');
        base = base ? base + 1 : p.model_path;
        s->alias = dup_opt(ctx, base, &oom);
        size_t bl = s->alias ? strlen(s->alias) : 0;
        if (bl > 5 && strcmp(s->alias + bl - 5, ".gguf") == 0) s->alias[bl - 5] = 0;
    }
    if (p.web_dir) {
        char real[PATH_MAX];
        struct stat st;
        if (realpath(p.web_dir, real) && stat(real, &st) == 0 && S_ISDIR(st.st_mode))
            s->web_dir = dup_opt(ctx, real, &oom);
        else pl_log(ctx, PL_LOG_LEVEL_WARN, "serve: web directory '%s' not found: serving the built-in page", p.web_dir);
    }
    s->p.model_path = s->p.model_alias = s->p.host = s->p.api_key = s->p.cors_origin = s->p.web_dir = NULL;
    s->p.template_name = s->p.template_source = NULL;
    if (!oom && pl_srv_audio_init(s, &p) != PL_OK) oom = true;
    if (oom || !s->alias) {
        pl_server_free(s);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "serve: out of memory");
    }
    /* the scheduler thread loads the model while the listener already answers /health */
    if (pthread_create(&s->thread, NULL, pl_srv_sched_main, s) != 0) {
        pl_server_free(s);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "serve: cannot start the scheduler thread");
    }
    s->thread_started = true;

    char ports[300], threads[16], timeout[16];
    bool v6 = strchr(s->host, ':') != NULL;
    snprintf(ports, sizeof ports, v6 ? "[%s]:%d" : "%s:%d", s->host, p.port);
    snprintf(threads, sizeof threads, "%d", p.max_connections);
    snprintf(timeout, sizeof timeout, "%d", p.io_timeout_ms);
    const char *opts[] = {
        "listening_ports", ports, "num_threads", threads, "request_timeout_ms", timeout,
        "enable_keep_alive", "no", "max_request_size", "16384", "access_control_allow_origin", "",
        "enable_directory_listing", "no", "decode_url", "yes", NULL,
    };
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.begin_request = begin_request;
    cb.log_message = log_message;
    mg_init_library(0);
    s->mg = mg_start(&cb, s, opts);
    if (!s->mg) {
        mg_exit_library();
        pl_ctx_err(ctx, PL_ERR_IO, "serve: cannot listen on %s (in use, or not an address of this host?)", ports);
        pl_server_free(s);
        return PL_ERR_IO;
    }
    struct mg_server_port sp[4];
    int np = mg_get_server_ports(s->mg, 4, sp);
    s->port = np > 0 ? sp[0].port : p.port;
    *out = s;
    return PL_OK;
}

int pl_server_port(const pl_server *s) { return s ? s->port : 0; }

const char *pl_server_last_error(const pl_server *s) { return s ? s->err : ""; }

pl_status pl_server_wait_loaded(pl_server *s) {
    if (!s) return PL_ERR_INVALID_ARG;
    pthread_mutex_lock(&s->mu);
    while (atomic_load(&s->state) == 0) pthread_cond_wait(&s->loaded_cv, &s->mu);
    pl_status st = atomic_load(&s->state) == 2 ? (s->load_status != PL_OK ? s->load_status : PL_ERR_IO) : s->load_status;
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* civetweb's listener polls with a 2 s timeout before it sees the stop
 * flag; a connection to it wakes it at once. Pokes until mg_stop returns. */
typedef struct poke_arg {
    const pl_server *s;
    atomic_int       done;
} poke_arg;

static void *poke_main(void *arg) {
    poke_arg *pa = arg;
    for (int i = 0; i < 300 && !atomic_load(&pa->done); i++) {
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
        bool v6 = strchr(pa->s->host, ':') != NULL;
        int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        socklen_t len;
        if (v6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            a->sin6_family = AF_INET6;
            a->sin6_port = htons((uint16_t)pa->s->port);
            a->sin6_addr = in6addr_loopback;
            len = sizeof *a;
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            a->sin_family = AF_INET;
            a->sin_port = htons((uint16_t)pa->s->port);
            if (inet_pton(AF_INET, pa->s->host, &a->sin_addr) != 1 || a->sin_addr.s_addr == htonl(INADDR_ANY))
                a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            len = sizeof *a;
        }
        (void)!connect(fd, (struct sockaddr *)&ss, len);
        close(fd);
    }
    return NULL;
}

void pl_server_stop(pl_server *s) {
    if (!s || s->stopped) return;
    s->stopped = true;
    /* 1. refuse new work (the state check in submit), 2. drain, 3. cancel */
    int prev = atomic_exchange(&s->state, 3);
    uint64_t deadline = pl_time_ns() + (uint64_t)s->p.drain_ms * 1000000u;
    while (prev == 1 && pl_time_ns() < deadline) {
        pthread_mutex_lock(&s->mu);
        /* realtime connections end themselves on the state change (realtime.c) */
        bool idle = s->busy == 0 && s->queue_len == 0 && atomic_load(&s->rt_conns) == 0;
        pthread_mutex_unlock(&s->mu);
        if (idle) break;
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&s->mu);
    s->quit = true;
    pthread_cond_signal(&s->cv);
    pthread_cond_broadcast(&s->loaded_cv);
    pthread_mutex_unlock(&s->mu);
    if (s->thread_started) pthread_join(s->thread, NULL);
    s->thread_started = false;
    /* HTTP threads waiting on requests were woken by the cancels */
    if (s->mg) {
        poke_arg pa = { .s = s };
        pthread_t poker;
        bool poking = pthread_create(&poker, NULL, poke_main, &pa) == 0;
        mg_stop(s->mg);
        atomic_store(&pa.done, 1);
        if (poking) pthread_join(poker, NULL);
        mg_exit_library();
    }
    s->mg = NULL;
}

void pl_server_free(pl_server *s) {
    if (!s) return;
    pl_server_stop(s);
    pl_ctx *ctx = s->ctx;
    for (int i = 0; s->slots && i < s->p.n_slots; i++) {
        pl_free(ctx, s->slots[i].cache);
        pl_free(ctx, s->slots[i].piece);
        pl_sampler_free(s->slots[i].sampler);
        for (int c = 0; c < PL_CHANNEL_COUNT; c++) pl_free(ctx, s->slots[i].stage[c].data);
    }
    pl_free(ctx, s->slots);
    pl_ctx_free(s->sched_ctx);
    pl_free(ctx, s->b_tok);
    pl_free(ctx, s->b_pos);
    pl_free(ctx, s->b_seq);
    pl_free(ctx, s->b_out);
    pl_srv_audio_free(s);
    pl_context_free(s->lc);
    pl_engine_free(s->engine);
    pl_model_free(s->model);
    char *strs[] = { s->model_path, s->alias, s->host, s->api_key, s->cors, s->web_dir, s->tmpl_name, s->tmpl_src };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) pl_free(ctx, strs[i]);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->loaded_cv);
    pthread_mutex_destroy(&s->mu);
    pl_free(ctx, s);
}
