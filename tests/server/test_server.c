/*
 * test_server.c - the HTTP server in-process on an ephemeral port, driven
 * with libcurl, on the tiny-qwen2 fixture (random weights; byte-level
 * vocabulary: byte b is token b, 257 <|im_start|>, 258 <|im_end|>; ChatML).
 *
 * Independent expectations: prompt token counts by hand from the ChatML
 * layout (a message is len(role) + len(content) + 4 tokens, the generation
 * prompt 11); generated text against a pl_session answering the same
 * conversation on its own context (the engine's single-sequence path);
 * concurrent answers against the same requests run one at a time; response
 * shapes field by field against OpenAI's chat.completion(.chunk) objects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "parley/engine.h"
#include "parley/server.h"
#include "server/http_util.h"

#define GEN_PROMPT 11
static int32_t msg_tokens(const char *role, const char *content) {
    return (int32_t)(strlen(role) + strlen(content) + 4);
}

static pl_ctx *ctx;
static char model_path[1024];

typedef struct hooks {
    sem_t load_gate; /* on_load waits here when gate is set */
    bool  gate;
    int   step_sleep_us;
} hooks;

static void on_load(void *ud) {
    hooks *h = ud;
    if (h->gate) sem_wait(&h->load_gate);
}

static void on_step(void *ud) {
    hooks *h = ud;
    if (h->step_sleep_us) usleep((useconds_t)h->step_sleep_us);
}

static pl_server_params base_params(hooks *h) {
    pl_server_params p = pl_server_default_params();
    p.model_path = model_path;
    p.model_alias = "tiny";
    p.port = 0;
    p.n_slots = 2;
    p.n_ctx = 512;
    p.n_threads = 1;
    p.on_load = on_load;
    p.on_step = on_step;
    p.hook_ud = h;
    return p;
}

static pl_server *start(const pl_server_params *p) {
    pl_server *s = NULL;
    assert_int_equal(pl_server_start(ctx, p, &s), PL_OK);
    assert_true(pl_server_port(s) > 0);
    return s;
}

static cJSON *parse_body(const http_resp *r) {
    cJSON *j = cJSON_Parse(r->body);
    if (!j) fprintf(stderr, "not JSON: %s\n", r->body);
    assert_non_null(j);
    return j;
}

static const cJSON *path_get(const cJSON *j, const char *a, const char *b) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, a);
    return b ? cJSON_GetObjectItemCaseSensitive(x, b) : x;
}

static double num(const cJSON *j, const char *a, const char *b) {
    const cJSON *x = path_get(j, a, b);
    assert_true(cJSON_IsNumber(x));
    return x->valuedouble;
}

/* The OpenAI error shape: {"error":{"message","type","param","code"}}. */
static void check_error(const http_resp *r, long status, const char *param) {
    if (r->status != status) fprintf(stderr, "status %ld: %s\n", r->status, r->body);
    assert_int_equal(r->status, status);
    cJSON *j = parse_body(r);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    assert_true(cJSON_IsObject(e));
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    assert_true(cJSON_IsString(msg) && msg->valuestring[0]);
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "type")));
    assert_non_null(cJSON_GetObjectItemCaseSensitive(e, "code"));
    const cJSON *pa = cJSON_GetObjectItemCaseSensitive(e, "param");
    if (param) assert_true(cJSON_IsString(pa) && strcmp(pa->valuestring, param) == 0);
    else assert_true(cJSON_IsNull(pa));
    cJSON_Delete(j);
}

static void chat_body(char *buf, size_t cap, const char *user, int max_tokens, bool stream) {
    snprintf(buf, cap,
             "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"max_tokens\":%d,"
             "\"temperature\":0%s}",
             user, max_tokens, stream ? ",\"stream\":true,\"stream_options\":{\"include_usage\":true}" : "");
}

/* The answer a pl_session gives on its own context (greedy): its token ids
 * through the server's text stages (detok with invalid UTF-8 replaced, as
 * JSON needs, then the think splitter's content channel). */
typedef struct ids_rec {
    int32_t ids[1024];
    int     n;
} ids_rec;

static void rec_token(void *ud, pl_token id) {
    ids_rec *r = ud;
    if (r->n < 1024) r->ids[r->n++] = id;
}

static void rec_content(void *ud, pl_channel ch, const char *t, size_t len) {
    char *out = ud;
    if (ch == PL_CHANNEL_CONTENT) strncat(out, t, len);
}

static void reference_answer(const char *user, int max_tokens, char *out, size_t cap, int32_t *n_gen) {
    pl_model *m = NULL;
    pl_engine *e = NULL;
    pl_session *s = NULL;
    assert_int_equal(pl_model_load(ctx, model_path, NULL, &m), PL_OK);
    assert_int_equal(pl_engine_init(ctx, m, NULL, &e), PL_OK);
    pl_session_params sp = pl_session_default_params();
    sp.n_ctx = 512;
    sp.n_threads = 1;
    sp.sampling.temperature = 0;
    sp.sampling.max_tokens = max_tokens;
    assert_int_equal(pl_session_init(ctx, e, &sp, &s), PL_OK);
    pl_turn_stats st;
    ids_rec rec = { .n = 0 };
    pl_turn_callbacks cb = { .on_token = rec_token, .ud = &rec };
    assert_int_equal(pl_session_turn(s, user, strlen(user), &cb, &st), PL_OK);
    *n_gen = st.generated_tokens;
    const pl_tokenizer *tok = pl_engine_tokenizer(e);
    pl_detok_params dp = pl_detok_default_params();
    dp.replace_invalid = true;
    pl_detok *d = NULL;
    pl_think *th = NULL;
    assert_int_equal(pl_detok_init(tok, &dp, &d), PL_OK);
    assert_int_equal(pl_think_init(ctx, NULL, &th), PL_OK);
    assert_true(cap > 4096);
    out[0] = 0;
    const char *t;
    size_t len;
    for (int i = 0; i < rec.n; i++) {
        if (pl_tokenizer_is_eog(tok, rec.ids[i])) break;
        if (pl_detok_push(d, rec.ids[i], &t, &len) == PL_OK && len) pl_think_feed(th, t, len, rec_content, out);
    }
    pl_detok_flush(d, &t, &len);
    if (len) pl_think_feed(th, t, len, rec_content, out);
    pl_think_finish(th, rec_content, out);
    pl_detok_free(d);
    pl_think_free(th);
    pl_session_free(s);
    pl_engine_free(e);
    pl_model_free(m);
}

/* ---- shapes ---- */

static void check_envelope(const cJSON *j, const char *object) {
    const cJSON *id = path_get(j, "id", NULL);
    assert_true(cJSON_IsString(id) && strncmp(id->valuestring, "chatcmpl-", 9) == 0);
    assert_string_equal(path_get(j, "object", NULL)->valuestring, object);
    double created = num(j, "created", NULL);
    assert_true(created > (double)time(NULL) - 60 && created <= (double)time(NULL) + 1);
    assert_string_equal(path_get(j, "model", NULL)->valuestring, "tiny");
    assert_true(cJSON_IsArray(path_get(j, "choices", NULL)));
}

static void check_usage(const cJSON *u, int32_t prompt, int32_t completion) {
    assert_int_equal((int)num(u, "prompt_tokens", NULL), prompt);
    assert_int_equal((int)num(u, "completion_tokens", NULL), completion);
    assert_int_equal((int)num(u, "total_tokens", NULL), prompt + completion);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens_details");
    double cached = num(d, "cached_tokens", NULL);
    assert_true(cached >= 0 && cached < prompt);
}

static void check_timings(const cJSON *t, const cJSON *u) {
    assert_true(cJSON_IsObject(t));
    double cached = num(u, "prompt_tokens_details", "cached_tokens");
    assert_int_equal((int)num(t, "cache_n", NULL), (int)cached);
    assert_int_equal((int)(num(t, "prompt_n", NULL) + cached), (int)num(u, "prompt_tokens", NULL));
    assert_int_equal((int)num(t, "predicted_n", NULL), (int)num(u, "completion_tokens", NULL));
    assert_true(num(t, "prompt_ms", NULL) >= 0 && num(t, "predicted_ms", NULL) >= 0);
    assert_true(num(t, "ttft_ms", NULL) > 0);
    assert_true(num(t, "prompt_per_second", NULL) >= 0 && num(t, "predicted_per_second", NULL) >= 0);
}

static void test_chat_whole(void **state) {
    (void)state;
    hooks h = { 0 };
    pl_server_params p = base_params(&h);
    pl_server *s = start(&p);
    assert_int_equal(pl_server_wait_loaded(s), PL_OK);
    char body[512], ref[8192];
    int32_t ref_n;
    reference_answer("hello there", 12, ref, sizeof ref, &ref_n);
    chat_body(body, sizeof body, "hello there", 12, false);
    http_resp r = { 0 };
    http_do(pl_server_port(s), "POST", "/v1/chat/completions", body, strlen(body), NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Type: application/json"));
    cJSON *j = parse_body(&r);
    check_envelope(j, "chat.completion");
    const cJSON *choices = path_get(j, "choices", NULL);
    assert_int_equal(cJSON_GetArraySize(choices), 1);
    const cJSON *c = choices->child;
    assert_int_equal((int)num(c, "index", NULL), 0);
    assert_true(cJSON_IsNull(path_get(c, "logprobs", NULL)));
    const cJSON *fr = path_get(c, "finish_reason", NULL);
    assert_string_equal(fr->valuestring, ref_n >= 12 ? "length" : "stop");
    const cJSON *m = path_get(c, "message", NULL);
    assert_string_equal(path_get(m, "role", NULL)->valuestring, "assistant");
    assert_string_equal(path_get(m, "content", NULL)->valuestring, ref);
    const cJSON *u = path_get(j, "usage", NULL);
    check_usage(u, msg_tokens("user", "hello there") + GEN_PROMPT, ref_n);
    check_timings(path_get(j, "timings", NULL), u);
    cJSON_Delete(j);
    http_resp_free(&r);

    /* /v1/completions: the prompt as given, no template */
    const char *cbody = "{\"prompt\":\"abc\",\"max_tokens\":5,\"temperature\":0,\"ignore_eos\":true}";
    http_do(pl_server_port(s), "POST", "/v1/completions", cbody, strlen(cbody), NULL, &r);
    assert_int_equal(r.status, 200);
    j = parse_body(&r);
    assert_string_equal(path_get(j, "object", NULL)->valuestring, "text_completion");
    c = path_get(j, "choices", NULL)->child;
    assert_true(cJSON_IsString(path_get(c, "text", NULL)));
    assert_string_equal(path_get(c, "finish_reason", NULL)->valuestring, "length");
    assert_int_equal((int)num(j, "usage", "prompt_tokens"), 3); /* three bytes, no BOS in this vocabulary */
    assert_int_equal((int)num(j, "usage", "completion_tokens"), 5);
    cJSON_Delete(j);
    http_resp_free(&r);
    pl_server_free(s);
}

/* Split an SSE body into its data payloads. */
static int sse_events(char *body, char **ev, int max) {
    int n = 0;
    for (char *p = body; (p = strstr(p, "data: ")) != NULL && n < max;) {
        p += 6;
        char *end = strstr(p, "\n\n");
        assert_non_null(end);
        *end = 0;
        ev[n++] = p;
        p = end + 2;
    }
    return n;
}

static void test_chat_stream(void **state) {
    (void)state;
    hooks h = { 0 };
    pl_server_params p = base_params(&h);
    pl_server *s = start(&p);
    assert_int_equal(pl_server_wait_loaded(s), PL_OK);
    char body[512], ref[8192];
    int32_t ref_n;
    reference_answer("stream me", 10, ref, sizeof ref, &ref_n);
    chat_body(body, sizeof body, "stream me", 10, true);
    http_resp r = { 0 };
    http_do(pl_server_port(s), "POST", "/v1/chat/completions", body, strlen(body), NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "text/event-stream"));
    char *ev[256];
    int n = sse_events(r.body, ev, 256);
    assert_true(n >= 4); /* role, finish, usage, [DONE] */
    assert_string_equal(ev[n - 1], "[DONE]");
    char text[4096] = "", id[64] = "";
    for (int i = 0; i < n - 1; i++) {
        cJSON *j = cJSON_Parse(ev[i]);
        assert_non_null(j);
        check_envelope(j, "chat.completion.chunk");
        if (i == 0) snprintf(id, sizeof id, "%s", path_get(j, "id", NULL)->valuestring);
        assert_string_equal(path_get(j, "id", NULL)->valuestring, id);
        const cJSON *choices = path_get(j, "choices", NULL), *u = path_get(j, "usage", NULL);
        if (i == n - 2) { /* the usage chunk: no choices */
            assert_int_equal(cJSON_GetArraySize(choices), 0);
            check_usage(u, msg_tokens("user", "stream me") + GEN_PROMPT, ref_n);
            check_timings(path_get(j, "timings", NULL), u);
        } else {
            assert_true(cJSON_IsNull(u));
            assert_int_equal(cJSON_GetArraySize(choices), 1);
            const cJSON *c = choices->child, *d = path_get(c, "delta", NULL);
            assert_int_equal((int)num(c, "index", NULL), 0);
            assert_true(cJSON_IsObject(d));
            const cJSON *fr = path_get(c, "finish_reason", NULL);
            if (i == 0) { /* the role delta first */
                assert_string_equal(path_get(d, "role", NULL)->valuestring, "assistant");
                assert_true(cJSON_IsNull(fr));
            } else if (i == n - 3) { /* the finish chunk: an empty delta */
                assert_null(d->child);
                assert_string_equal(fr->valuestring, ref_n >= 10 ? "length" : "stop");
            } else {
                assert_true(cJSON_IsNull(fr));
                assert_null(path_get(d, "role", NULL));
                const cJSON *ct = path_get(d, "content", NULL);
                assert_true(cJSON_IsString(ct) && ct->valuestring[0]);
                strncat(text, ct->valuestring, sizeof text - strlen(text) - 1);
            }
        }
        cJSON_Delete(j);
    }
    assert_string_equal(text, ref);
    http_resp_free(&r);
    pl_server_free(s);
}

/* ---- concurrency ---- */

typedef struct client {
    int  port;
    char body[512];
    http_resp r;
} client;

static void *client_main(void *arg) {
    client *c = arg;
    http_do(c->port, "POST", "/v1/chat/completions", c->body, strlen(c->body), NULL, &c->r);
    return NULL;
}

static char *content_of(const http_resp *r) {
    cJSON *j = parse_body(r);
    const cJSON *m = path_get(path_get(j, "choices", NULL)->child, "message", NULL);
    char *t = strdup(path_get(m, "content", NULL)->valuestring);
    cJSON_Delete(j);
    return t;
}

static void test_concurrent_equals_sequential(void **state) {
    (void)state;
    hooks h = { 0 };
    pl_server_params p = base_params(&h);
    p.n_slots = 4; /* 8 requests: 4 decode together, 4 wait in the queue */
    pl_server *s = start(&p);
    assert_int_equal(pl_server_wait_loaded(s), PL_OK);
    enum { N = 8 };
    static const char *const prompts[N] = { "one", "two two", "three is a crowd", "four", "fifth prompt here",
                                            "six", "seven seas", "eight and the last" };
    char *seq[N];
    client cl[N];
    memset(cl, 0, sizeof cl);
    for (int i = 0; i < N; i++) {
        cl[i].port = pl_server_port(s);
        snprintf(cl[i].body, sizeof cl[i].body,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"max_tokens\":%d,\"temperature\":0,"
                 "\"ignore_eos\":true}",
                 prompts[i], 16 + 3 * i);
        client_main(&cl[i]);
        assert_int_equal(cl[i].r.status, 200);
        seq[i] = content_of(&cl[i].r);
        http_resp_free(&cl[i].r);
    }
    pthread_t th[N];
    for (int i = 0; i < N; i++) assert_int_equal(pthread_create(&th[i], NULL, client_main, &cl[i]), 0);
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(cl[i].r.status, 200);
        char *t = content_of(&cl[i].r);
        assert_string_equal(t, seq[i]);
        cJSON *j = parse_body(&cl[i].r);
        assert_int_equal((int)num(j, "usage", "completion_tokens"), 16 + 3 * i);
        cJSON_Delete(j);
        free(t);
        free(seq[i]);
        http_resp_free(&cl[i].r);
    }
    pl_server_free(s);
}

/* The slot keeps one sampler and gives it each request's params (sched.c):
 * a seeded request with a penalty and a bias answers the same on a fresh
 * slot and after a request with other params (a longer bias list, other
 * penalties and temperature, another seed) used that slot, and that other
 * request answers differently (the params reach the sampler at all). */
static void test_slot_sampler_params(void **state) {
    (void)state;
    hooks h = { 0 };
    pl_server_params p = base_params(&h);
    p.n_slots = 1;
    pl_server *s = start(&p);
    assert_int_equal(pl_server_wait_loaded(s), PL_OK);
    static const char a_body[] =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}],\"max_tokens\":16,\"temperature\":1.0,"
        "\"seed\":42,\"presence_penalty\":0.5,\"logit_bias\":{\"5\":3},\"ignore_eos\":true,\"top_k\":0}";
    static const char b_body[] =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}],\"max_tokens\":16,\"temperature\":1.5,"
        "\"seed\":7,\"frequency_penalty\":1.0,\"repeat_penalty\":1.3,"
        "\"logit_bias\":{\"1\":2,\"2\":2,\"3\":-100,\"4\":1,\"6\":1,\"7\":-1},\"ignore_eos\":true,\"top_k\":0}";
    char *ans[3];
    const char *bodies[3] = { a_body, b_body, a_body };
    for (int i = 0; i < 3; i++) {
        http_resp r = { 0 };
        http_do(pl_server_port(s), "POST", "/v1/chat/completions", bodies[i], strlen(bodies[i]), NULL, &r);
        if (r.status != 200) fprintf(stderr, "%ld: %s\n", r.status, r.body);
        assert_int_equal(r.status, 200);
        ans[i] = content_of(&r);
        http_resp_free(&r);
    }
    assert_string_equal(ans[2], ans[0]);
    assert_string_not_equal(ans[1], ans[0]);
    for (int i = 0; i < 3; i++) free(ans[i]);
    pl_server_free(s);
}

static void test_second_turn_cached(void **state) {
    (void)state;
    hooks h = { 0 };
    pl_server_params p = base_params(&h);
    pl_server *s = start(&p);
    assert_int_equal(pl_server_wait_loaded(s), PL_OK);
    char body[2048];
    http_resp r = { 0 };
    chat_body(body, sizeof body, "first question", 8, false);
    http_do(pl_server_port(s), "POST", "/v1/chat/completions", body, strlen(body), NULL, &r);
    assert_int_equal(r.status, 200);
    char *answer = content_of(&r);
    cJSON *j = parse_body(&r);
    int first_prompt = (int)num(j, "usage", "prompt_tokens");
    assert_int_equal((int)num(path_get(j, "usage", "prompt_tokens_details"), "cached_tokens", NULL), 0);
    cJSON_Delete(j);
    http_resp_free(&r);
    /* the next turn: the whole conversation again, as clients send it */
    cJSON *req = cJSON_CreateObject(), *msgs = cJSON_AddArrayToObject(req, "messages");
    const char *turns[3][2] = { { "user", "first question" }, { "assistant", answer }, { "user", "and then?" } };
    for (int i = 0; i < 3; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", turns[i][0]);
        cJSON_AddStringToObject(m, "content", turns[i][1]);
        cJSON_AddItemToArray(msgs, m);
    }
    cJSON_AddNumberToObject(req, "max_tokens", 4);
    cJSON_AddNumberToObject(req, "temperature", 0);
    char *text = cJSON_PrintUnformatted(req);
    http_do(pl_server_port(s), "POST", "/v1/chat/completions", text, strlen(text), NULL, &r);
    assert_int_equal(r.status, 200);
    j = parse_body(&r);
    int prompt2 = (int)num(j, "usage", "prompt_tokens");
    int cached = (int)num(path_get(j, "usage", "prompt_tokens_details"), "cached_tokens", NULL);
    /* the ChatML layout by hand; the first prompt is a prefix of the second */
    assert_int_equal(prompt2, msg_tokens("user", "first question") + msg_tokens("assistant", answer) +
                                  msg_tokens("user", "and then?") + GEN_PROMPT);
    assert_true(cached >= first_prompt);
    assert_true(cached < prompt2);
    assert_int_equal((int)num(j, "timings", "cache_n"), cached);
    cJSON_Delete(j);
    /* /metrics counted both: cached tokens in total */
    http_resp_free(&r);
    http_do(pl_server_port(s), "GET", "/metrics", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    char want[128];
    snprintf(want, sizeof want, "parley_cached_tokens_total %d\n", cached);
    assert_non_null(strstr(r.body, want));
    snprintf(want, sizeof want, "parley_prompt_tokens_total %d\n", first_prompt + prompt2);
    assert_non_null(strstr(r.body, want));
    assert_non_null(strstr(r.body, "parley_requests_total{status=\"200\"} 2\n"));
    assert_non_null(strstr(r.body, "parley_time_to_first_token_seconds_count 2\n"));
    assert_non_null(strstr(r.body, "parley_process_resident_memory_bytes "));
    http_resp_free(&r);
    cJSON_free(text);
    cJSON_Delete(req);
    free(answer);
    pl_server_free(s);
}

/* ---- cancellation, queue ---- */

typedef struct streamer {
    int port;
    atomic_int abort;
    http_resp r;
} streamer;

static void *streamer_main(void *arg) {
    streamer *st = arg;
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"go on\"}],\"max_tokens\":400,"
                       "\"temperature\":0,\"ignore_eos\":true,\"stream\":true}";
    st->r.abort_flag = &st->abort;
    http_do(st->port, "POST", "/v1/chat/completions", body, strlen(body), NULL, &st->r);
    return NULL;
}

/* Poll /props until slot 0's busy flag is `busy` and the queue holds `queued`. */
static void wait_props(int port, bool busy, int queued) {
    for (int tries = 0; tries < 500; tries++) {
        http_resp r = { 0 };
        http_do(port, "GET", "/props", NULL, 0, NULL, &r);
        cJSON *j = cJSON_Parse(r.body);
        const cJSON *sl = path_get(j, "slots", NULL);
        bool b = sl && cJSON_IsTrue(path_get(sl->child, "busy", NULL));
        int q = (int)cJSON_GetNumberValue(path_get(j, "queue_length", NULL));
        cJSON_Delete(j);
        http_resp_free(&r);
        if (b == busy && q == queued) return;
        usleep(10000);
    }
    fail_msg("slot 0 never became %s with %d queued", busy ? "busy" : "free", queued);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_queue_full_and_disconnect(void **state) {
    (void)state;
    hooks h = { .step_sleep_us = 10000 }; /* 10 ms a step: 400 tokens would take 4 s */
    pl_server_params p = base_params(&h);
    p.n_slots = 1;
    p.max_queue = 1;
    pl_server *s = start(&p);
    assert_int_equal(pl_server_wait_loaded(s), PL_OK);
    int port = pl_server_port(s);
    streamer a = { .port = port };
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, streamer_main, &a), 0);
    wait_props(port, true, 0);
    client b = { .port = port };
    snprintf(b.body, sizeof b.body,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"queued\"}],\"max_tokens\":3,\"temperature\":0}");
    assert_int_equal(pthread_create(&tb, NULL, client_main, &b), 0);
    wait_props(port, true, 1);
    /* slot busy, queue full: 503 with Retry-After */
    http_resp r = { 0 };
    http_do(port, "POST", "/v1/chat/completions", b.body, strlen(b.body), NULL, &r);
    check_error(&r, 503, NULL);
    assert_non_null(strstr(r.headers, "Retry-After: 1"));
    http_resp_free(&r);
    /* the streaming client goes away: its slot is freed at the next step, so
     * the queued request is served long before the 4 s the stream had left */
    double t0 = now_s();
    atomic_store(&a.abort, 1);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    double waited = now_s() - t0;
    assert_int_equal(b.r.status, 200);
    assert_true(waited < 2.0);
    assert_true(a.r.events >= 1 && a.r.events < 300);
    http_resp_free(&a.r);
    http_resp_free(&b.r);
    wait_props(port, false, 0);
    pl_server_free(s);
}

/* Keep-alive comments while nothing else is sent; the per-request timeout. */
static void test_ping_and_timeout(void **state) {
    (void)state;
    hooks h = { .step_sleep_us = 60000 }; /* 60 ms a step */
    pl_server_params p = base_params(&h);
    p.ping_ms = 10;
    p.timeout_s = 1;
    pl_server *s = start(&p);
    assert_int_equal(pl_server_wait_loaded(s), PL_OK);
    int port = pl_server_port(s);
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":3,\"ignore_eos\":true,"
                       "\"temperature\":0,\"stream\":true}";
    http_resp r = { 0 };
    http_do(port, "POST", "/v1/chat/completions", body, strlen(body), NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\n\n: ping\n\n"));
    assert_non_null(strstr(r.body, "data: [DONE]"));
    http_resp_free(&r);
    /* 100 tokens at 60 ms a step cannot finish in 1 s: 504, and the slot is freed */
    const char *slow = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":100,\"ignore_eos\":true}";
    double t0 = now_s();
    http_do(port, "POST", "/v1/chat/completions", slow, strlen(slow), NULL, &r);
    double took = now_s() - t0;
    check_error(&r, 504, NULL);
    assert_true(took >= 0.9 && took < 3.0);
    http_resp_free(&r);
    wait_props(port, false, 0);
    pl_server_free(s);
}

/* ---- limits and errors ---- */

static void test_auth(void **state) {
    (void)state;
    hooks h = { 0 };
    pl_server_params p = base_params(&h);
    p.api_key = "sekrit-key";
    pl_server *s = start(&p);
    assert_int_equal(pl_server_wait_loaded(s), PL_OK);
    int port = pl_server_port(s);
    http_resp r = { 0 };
    http_do(port, "GET", "/v1/models", NULL, 0, NULL, &r);
    check_error(&r, 401, NULL);
    http_resp_free(&r);
    http_do(port, "GET", "/v1/models", NULL, 0, "sekrit-kez", &r);
    check_error(&r, 401, NULL);
    http_resp_free(&r);
    http_do(port, "GET", "/v1/models", NULL, 0, "sekrit-key-longer", &r);
    check_error(&r, 401, NULL);
    http_resp_free(&r);
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1}";
    http_do(port, "POST", "/v1/chat/completions", body, strlen(body), "wrong", &r);
    check_error(&r, 401, NULL);
    http_resp_free(&r);
    http_do(port, "GET", "/v1/models", NULL, 0, "sekrit-key", &r);
    assert_int_equal(r.status, 200);
    cJSON *j = parse_body(&r);
    assert_string_equal(path_get(j, "object", NULL)->valuestring, "list");
    const cJSON *m = path_get(j, "data", NULL)->child;
    assert_string_equal(path_get(m, "id", NULL)->valuestring, "tiny");
    assert_string_equal(path_get(m, "object", NULL)->valuestring, "model");
    cJSON_Delete(j);
    http_resp_free(&r);
    http_do(port, "GET", "/health", NULL, 0, NULL, &r); /* health needs no key */
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    pl_server_free(s);
}

static void test_bad_requests(void **state) {
    (void)state;
    hooks h = { 0 };
    pl_server_params p = base_params(&h);
    p.max_body = 4096;
    pl_server *s = start(&p);
    assert_int_equal(pl_server_wait_loaded(s), PL_OK);
    int port = pl_server_port(s);
    static const struct {
        const char *body, *param;
        long status;
    } cases[] = {
        { "{not json", NULL, 400 },
        { "[1,2]", NULL, 400 },
        { "{\"messages\":\"hi\"}", "messages", 400 },
        { "{}", "messages", 400 },
        { "{\"messages\":[]}", "messages", 400 },
        { "{\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}", "messages", 400 },
        { "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", "messages", 400 },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}", "temperature", 400 },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":3}", "temperature", 400 },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1.5}", "max_tokens", 400 },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":1}", "stream", 400 },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[1]}", "stop", 400 },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}", "n", 400 },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\"}]}", "tools", 400 },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_object\"}}",
          "response_format", 400 },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"abc\":1}}", "logit_bias", 400 },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"99999\":1}}", "logit_bias", 400 },
    };
    http_resp r = { 0 };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_do(port, "POST", "/v1/chat/completions", cases[i].body, strlen(cases[i].body), NULL, &r);
        check_error(&r, cases[i].status, cases[i].param);
        http_resp_free(&r);
    }
    /* n=2 says why */
    http_do(port, "POST", "/v1/chat/completions", cases[12].body, strlen(cases[12].body), NULL, &r);
    assert_non_null(strstr(r.body, "not supported yet"));
    http_resp_free(&r);
    /* the body limit: 413 before parsing */
    size_t big = 8192;
    char *body = malloc(big + 1);
    memset(body, ' ', big);
    memcpy(body, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]", 43);
    body[big - 1] = '}';
    body[big] = 0;
    http_do(port, "POST", "/v1/chat/completions", body, big, NULL, &r);
    check_error(&r, 413, NULL);
    http_resp_free(&r);
    free(body);
    /* a prompt longer than the context */
    size_t long_len = 2000;
    char *lb = malloc(long_len + 128);
    int k = snprintf(lb, 128, "{\"messages\":[{\"role\":\"user\",\"content\":\"");
    memset(lb + k, 'a', 1000);
    snprintf(lb + k + 1000, 128, "\"}],\"max_tokens\":600}");
    http_do(port, "POST", "/v1/chat/completions", lb, strlen(lb), NULL, &r);
    assert_int_equal(r.status, 200); /* the engine cuts the message start to fit; max_tokens is capped */
    cJSON *j = parse_body(&r);
    assert_true(num(j, "usage", "prompt_tokens") + num(j, "usage", "completion_tokens") <= 512);
    cJSON_Delete(j);
    http_resp_free(&r);
    free(lb);
    /* wrong method, unknown endpoint */
    http_do(port, "GET", "/v1/chat/completions", NULL, 0, NULL, &r);
    check_error(&r, 405, NULL);
    http_resp_free(&r);
    http_do(port, "GET", "/v1/nothing", NULL, 0, NULL, &r);
    check_error(&r, 404, NULL);
    http_resp_free(&r);
    /* CORS is off: no header, preflight refused */
    http_do(port, "GET", "/health", NULL, 0, NULL, &r);
    assert_null(strstr(r.headers, "Access-Control-Allow-Origin"));
    http_resp_free(&r);
    pl_server_free(s);
}

static void test_health_while_loading(void **state) {
    (void)state;
    hooks h = { .gate = true };
    sem_init(&h.load_gate, 0, 0);
    pl_server_params p = base_params(&h);
    p.cors_origin = "http://example.com";
    pl_server *s = start(&p);
    int port = pl_server_port(s);
    http_resp r = { 0 };
    http_do(port, "GET", "/health", NULL, 0, NULL, &r);
    check_error(&r, 503, NULL);
    assert_non_null(strstr(r.body, "Loading model"));
    http_resp_free(&r);
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1}";
    http_do(port, "POST", "/v1/chat/completions", body, strlen(body), NULL, &r);
    check_error(&r, 503, NULL);
    http_resp_free(&r);
    sem_post(&h.load_gate);
    assert_int_equal(pl_server_wait_loaded(s), PL_OK);
    http_do(port, "GET", "/health", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    assert_non_null(strstr(r.headers, "Access-Control-Allow-Origin: http://example.com"));
    http_resp_free(&r);
    pl_server_free(s);
    sem_destroy(&h.load_gate);
}

/* ---- tokenize, static files ---- */

static void test_tokenize_and_static(void **state) {
    (void)state;
    char dir[] = "/tmp/pl-web-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/index.html", dir);
    FILE *f = fopen(path, "w");
    fputs("<html>hello web</html>", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/app.js", dir);
    f = fopen(path, "w");
    fputs("console.log(1)", f);
    fclose(f);
    hooks h = { 0 };
    pl_server_params p = base_params(&h);
    p.web_dir = dir;
    pl_server *s = start(&p);
    assert_int_equal(pl_server_wait_loaded(s), PL_OK);
    int port = pl_server_port(s);
    http_resp r = { 0 };
    /* byte-level vocabulary: "hi!" is 104 105 33 */
    const char *tb = "{\"content\":\"hi!\"}";
    http_do(port, "POST", "/tokenize", tb, strlen(tb), NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"tokens\":[104,105,33]}");
    http_resp_free(&r);
    const char *db = "{\"tokens\":[104,105,33]}";
    http_do(port, "POST", "/detokenize", db, strlen(db), NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"content\":\"hi!\"}");
    http_resp_free(&r);
    http_do(port, "POST", "/detokenize", "{\"tokens\":[-1]}", 15, NULL, &r);
    check_error(&r, 400, "tokens");
    http_resp_free(&r);
    http_do(port, "GET", "/", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "<html>hello web</html>");
    assert_non_null(strstr(r.headers, "Content-Type: text/html"));
    http_resp_free(&r);
    http_do(port, "GET", "/app.js", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Type: text/javascript"));
    http_resp_free(&r);
    static const char *const bad[] = { "/../etc/passwd", "/%2e%2e/etc/passwd", "/..%2fetc/passwd", "/missing.html",
                                       "/.hidden" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CURL *c = curl_easy_init();
        char url[256];
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, bad[i]);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L); /* send the dots as they are */
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write_cb);
        http_resp rr = { 0 };
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &rr);
        curl_easy_perform(c);
        long st = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        curl_easy_cleanup(c);
        assert_int_equal(st, 404);
        assert_null(strstr(rr.body ? rr.body : "", "root:"));
        http_resp_free(&rr);
    }
    pl_server_free(s);
    snprintf(path, sizeof path, "%s/index.html", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/app.js", dir);
    unlink(path);
    rmdir(dir);
    /* no web directory: the built-in page */
    p.web_dir = NULL;
    s = start(&p);
    http_do(pl_server_port(s), "GET", "/", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "not installed"));
    http_resp_free(&r);
    pl_server_free(s);
}

int main(void) {
    int fx = http_test_fixture("tiny-qwen2-f32.gguf", model_path, sizeof model_path);
    if (fx) return fx;
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_level = PL_LOG_LEVEL_WARN;
    if (pl_ctx_init(&ctx, &cp) != PL_OK) return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_whole),
        cmocka_unit_test(test_chat_stream),
        cmocka_unit_test(test_concurrent_equals_sequential),
        cmocka_unit_test(test_slot_sampler_params),
        cmocka_unit_test(test_second_turn_cached),
        cmocka_unit_test(test_queue_full_and_disconnect),
        cmocka_unit_test(test_ping_and_timeout),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_health_while_loading),
        cmocka_unit_test(test_tokenize_and_static),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    pl_ctx_free(ctx);
    return rc;
}
