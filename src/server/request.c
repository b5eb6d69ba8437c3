/*
 * request.c - OpenAI completion request bodies to pl_srv_opts (+ a pl_conv
 * for chat). Every field is type- and range-checked; an error names the
 * parameter as OpenAI does ({"error":{"param": "temperature", ...}}).
 * Fields the server does not implement yet (n > 1, tools, response_format
 * other than text) are refused with "not supported yet" rather than ignored.
 * Unknown fields are ignored (clients send extras such as "user").
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

pl_status pl_srv_err(pl_srv_error *err, int http, const char *type, const char *param, const char *fmt, ...) {
    err->http = http;
    err->type = type;
    err->code = NULL;
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return http >= 500 ? PL_ERR_NOMEM : PL_ERR_INVALID_ARG;
}

#define BAD(param, ...) pl_srv_err(err, 400, "invalid_request_error", param, __VA_ARGS__)

void pl_srv_opts_free(pl_ctx *ctx, pl_srv_opts *o) {
    if (!o) return;
    pl_free(ctx, o->bias);
    for (size_t i = 0; i < o->n_stops; i++) pl_free(ctx, o->stops[i]);
    pl_free(ctx, o->prompt);
    memset(o, 0, sizeof *o);
}

/* A number field in [lo, hi]; absent or null leaves *out. */
static pl_status get_num(const cJSON *root, const char *name, double lo, double hi, double *out, pl_srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!v || cJSON_IsNull(v)) return PL_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return BAD(name, "'%s' must be a number", name);
    if (v->valuedouble < lo || v->valuedouble > hi) return BAD(name, "'%s' must be between %g and %g", name, lo, hi);
    *out = v->valuedouble;
    return PL_OK;
}

/* An integer field in [lo, hi]; *given says whether it was there. */
static pl_status get_int(const cJSON *root, const char *name, double lo, double hi, int64_t *out, bool *given,
                         pl_srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (given) *given = false;
    if (!v || cJSON_IsNull(v)) return PL_OK;
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || !isfinite(d) || d != floor(d)) return BAD(name, "'%s' must be an integer", name);
    if (d < lo || d > hi) return BAD(name, "'%s' must be between %.0f and %.0f", name, lo, hi);
    *out = (int64_t)d;
    if (given) *given = true;
    return PL_OK;
}

static pl_status get_bool(const cJSON *root, const char *name, bool *out, pl_srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!v || cJSON_IsNull(v)) return PL_OK;
    if (!cJSON_IsBool(v)) return BAD(name, "'%s' must be a boolean", name);
    *out = cJSON_IsTrue(v);
    return PL_OK;
}

/* Text of a message's content: a string, null (""), or an array of
 * {"type":"text","text":...} parts (joined with newlines). Into buf. */
static pl_status content_text(pl_ctx *ctx, const cJSON *c, pl_srv_buf *buf, pl_srv_error *err) {
    buf->len = 0;
    if (!pl_srv_buf_put(ctx, buf, "", 0)) return pl_srv_err(err, 500, "server_error", NULL, "out of memory");
    if (!c || cJSON_IsNull(c)) return PL_OK;
    if (cJSON_IsString(c)) {
        if (!pl_srv_buf_put(ctx, buf, c->valuestring, strlen(c->valuestring)))
            return pl_srv_err(err, 500, "server_error", NULL, "out of memory");
        return PL_OK;
    }
    if (!cJSON_IsArray(c)) return BAD("messages", "a message's 'content' must be a string or an array of parts");
    bool first = true;
    for (const cJSON *part = c->child; part; part = part->next) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsObject(part) || !cJSON_IsString(type))
            return BAD("messages", "a content part must be an object with a 'type'");
        if (strcmp(type->valuestring, "text") != 0)
            return BAD("messages", "content parts of type '%.40s' are not supported yet", type->valuestring);
        if (!cJSON_IsString(text)) return BAD("messages", "a text part needs a string 'text'");
        if ((!first && !pl_srv_buf_put(ctx, buf, "\n", 1)) ||
            !pl_srv_buf_put(ctx, buf, text->valuestring, strlen(text->valuestring)))
            return pl_srv_err(err, 500, "server_error", NULL, "out of memory");
        first = false;
    }
    return PL_OK;
}

static pl_status parse_messages(pl_ctx *ctx, const cJSON *root, pl_conv *conv, pl_srv_error *err) {
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!msgs) return BAD("messages", "'messages' is required");
    if (!cJSON_IsArray(msgs)) return BAD("messages", "'messages' must be an array");
    if (!msgs->child) return BAD("messages", "'messages' must not be empty");
    pl_srv_buf buf = { 0 };
    pl_status st = PL_OK;
    size_t i = 0;
    for (const cJSON *m = msgs->child; m && st == PL_OK; m = m->next, i++) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role)) {
            st = BAD("messages", "messages[%zu] must be an object with a string 'role'", i);
            break;
        }
        if ((st = content_text(ctx, cJSON_GetObjectItemCaseSensitive(m, "content"), &buf, err)) != PL_OK) break;
        if (memchr(buf.data, 0, buf.len) || strlen(buf.data) != buf.len) {
            st = BAD("messages", "messages[%zu] content holds a NUL character", i);
            break;
        }
        const char *r = role->valuestring;
        pl_role pr;
        if (strcmp(r, "system") == 0 || strcmp(r, "developer") == 0) {
            if (i != 0) {
                st = BAD("messages", "a system message must come first (messages[%zu])", i);
                break;
            }
            if (pl_conv_set_system(conv, buf.data) != PL_OK) st = BAD("messages", "%s", pl_ctx_last_error(ctx));
            continue;
        }
        if (pl_role_parse(r, &pr) != PL_OK) {
            st = BAD("messages", "messages[%zu] has an unknown role '%.40s'", i, r);
            break;
        }
        if (pl_conv_add(conv, pr, buf.data, buf.len) != PL_OK) st = BAD("messages", "%s", pl_ctx_last_error(ctx));
    }
    pl_free(ctx, buf.data);
    if (st == PL_OK && pl_conv_count(conv) == 0) st = BAD("messages", "'messages' needs a message besides the system one");
    return st;
}

static pl_status parse_stop(pl_ctx *ctx, const cJSON *root, pl_srv_opts *o, pl_srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "stop");
    if (!v || cJSON_IsNull(v)) return PL_OK;
    const cJSON *one = cJSON_IsString(v) ? v : NULL;
    if (!one && !cJSON_IsArray(v)) return BAD("stop", "'stop' must be a string or an array of strings");
    for (const cJSON *e = one ? one : v->child; e; e = one ? NULL : e->next) {
        if (!cJSON_IsString(e)) return BAD("stop", "'stop' must be a string or an array of strings");
        size_t len = strlen(e->valuestring);
        if (o->n_stops >= PL_STOP_MAX_STRINGS || len > PL_STOP_MAX_LEN)
            return BAD("stop", "at most %d stop strings of %d bytes", PL_STOP_MAX_STRINGS, PL_STOP_MAX_LEN);
        if (!(o->stops[o->n_stops] = pl_strdup(ctx, e->valuestring)))
            return pl_srv_err(err, 500, "server_error", NULL, "out of memory");
        o->n_stops++;
    }
    return PL_OK;
}

static pl_status parse_bias(pl_ctx *ctx, const cJSON *root, pl_srv_opts *o, pl_srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "logit_bias");
    if (!v || cJSON_IsNull(v)) return PL_OK;
    if (!cJSON_IsObject(v)) return BAD("logit_bias", "'logit_bias' must be an object of token id -> bias");
    size_t n = (size_t)cJSON_GetArraySize(v);
    if (n > 1024) return BAD("logit_bias", "'logit_bias' has more than 1024 entries");
    if (n && !(o->bias = pl_calloc(ctx, n, sizeof *o->bias)))
        return pl_srv_err(err, 500, "server_error", NULL, "out of memory");
    for (const cJSON *e = v->child; e; e = e->next) {
        char *end = NULL;
        long id = e->string ? strtol(e->string, &end, 10) : -1;
        if (!e->string || !*e->string || *end || id < 0 || id > INT32_MAX)
            return BAD("logit_bias", "'logit_bias' keys must be token ids");
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble) || e->valuedouble < -100 || e->valuedouble > 100)
            return BAD("logit_bias", "'logit_bias' values must be numbers from -100 to 100");
        /* -100 bans the token, as OpenAI documents it */
        o->bias[o->n_bias++] = (pl_logit_bias){ .token = (int32_t)id,
                                                .bias = e->valuedouble <= -100 ? -INFINITY : (float)e->valuedouble };
    }
    return PL_OK;
}

/* Fields refused until they are implemented. */
static pl_status refuse_unsupported(const cJSON *root, pl_srv_error *err) {
    int64_t n = 1;
    pl_status st = get_int(root, "n", 1, 128, &n, NULL, err);
    if (st != PL_OK) return st;
    if (n != 1) return BAD("n", "'n' other than 1 is not supported yet");
    static const char *const unsupported[] = { "tools", "functions", "tool_choice", "function_call" };
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, unsupported[i]);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsArray(v) && !v->child) &&
            !(cJSON_IsString(v) && strcmp(v->valuestring, "none") == 0))
            return BAD(unsupported[i], "'%s' is not supported yet", unsupported[i]);
    }
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(root, "response_format");
    if (rf && !cJSON_IsNull(rf)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(rf, "type");
        if (!cJSON_IsObject(rf) || !cJSON_IsString(t) || strcmp(t->valuestring, "text") != 0)
            return BAD("response_format", "'response_format' other than text is not supported yet");
    }
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(root, "logprobs");
    if (lp && !cJSON_IsNull(lp) && !cJSON_IsFalse(lp) && !(cJSON_IsNumber(lp) && lp->valuedouble == 0))
        return BAD("logprobs", "'logprobs' is not supported yet");
    /* llama-server's n_probs and OpenAI's top_logprobs: refused, not ignored
     * (a client asking for probabilities must not get an answer without them) */
    static const char *const probs[] = { "n_probs", "top_logprobs" };
    for (size_t i = 0; i < sizeof probs / sizeof probs[0]; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(root, probs[i]);
        if (x && !cJSON_IsNull(x) && !(cJSON_IsNumber(x) && x->valuedouble == 0))
            return BAD(probs[i], "'%s' is not supported yet", probs[i]);
    }
    return PL_OK;
}

static pl_status parse_prompt(pl_ctx *ctx, const cJSON *root, pl_srv_opts *o, pl_srv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    if (!v) return BAD("prompt", "'prompt' is required");
    if (cJSON_IsArray(v)) { /* a batch of one prompt */
        if (cJSON_GetArraySize(v) != 1 || !cJSON_IsString(v->child))
            return BAD("prompt", "'prompt' as an array must hold exactly one string (batches are not supported yet)");
        v = v->child;
    }
    if (!cJSON_IsString(v)) return BAD("prompt", "'prompt' must be a string");
    o->prompt_len = strlen(v->valuestring);
    if (!(o->prompt = pl_strdup(ctx, v->valuestring))) return pl_srv_err(err, 500, "server_error", NULL, "out of memory");
    return PL_OK;
}

/* cJSON recurses once per nesting level and the HTTP worker threads have
 * small stacks: a body of 100k '[' overflowed one. The depth is checked first,
 * outside strings, in one pass (O(len), no allocation). */
cJSON *pl_srv_json_parse(const char *body, size_t len, bool *too_deep) {
    int depth = 0;
    bool in_str = false;
    *too_deep = false;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > PL_SRV_JSON_MAX_DEPTH) {
                *too_deep = true;
                return NULL;
            }
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    /* cJSON stops after the first value; anything but whitespace after it
     * (`{...}]}junk`) makes the body invalid, not a shorter request */
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!j) return NULL;
    for (const char *p = end; p && p < body + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' && *p != 0) {
            cJSON_Delete(j);
            return NULL;
        }
    return j;
}

pl_status pl_srv_parse_request(pl_ctx *ctx, pl_srv_kind kind, const char *body, size_t len,
                               const pl_sampler_params *defaults, pl_conv *conv, pl_srv_opts *o, pl_srv_error *err) {
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->enable_thinking = true;
    o->sampling = defaults ? *defaults : pl_sampler_default_params();
    o->sampling.logit_bias = NULL;
    o->sampling.n_logit_bias = 0;
    o->sampling.max_tokens = 0;
    o->sampling.seed = PL_SAMPLER_SEED_RANDOM;
    bool deep;
    cJSON *root = pl_srv_json_parse(body, len, &deep);
    if (!root) return BAD(NULL, deep ? "the JSON is nested deeper than " PL_SRV_STR(PL_SRV_JSON_MAX_DEPTH) " levels"
                                     : "the body is not valid JSON");
    pl_status st = PL_OK;
    if (!cJSON_IsObject(root)) {
        st = BAD(NULL, "the body must be a JSON object");
        goto out;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (model && !cJSON_IsString(model) && !cJSON_IsNull(model)) {
        st = BAD("model", "'model' must be a string");
        goto out;
    }
    if ((st = refuse_unsupported(root, err)) != PL_OK) goto out;
    double d;
    int64_t i64;
    bool given;
    pl_sampler_params *sp = &o->sampling;
    d = sp->temperature;
    if ((st = get_num(root, "temperature", 0, 2, &d, err)) != PL_OK) goto out;
    sp->temperature = (float)d;
    d = sp->top_p;
    if ((st = get_num(root, "top_p", 0, 1, &d, err)) != PL_OK) goto out;
    sp->top_p = (float)d;
    d = sp->min_p;
    if ((st = get_num(root, "min_p", 0, 1, &d, err)) != PL_OK) goto out;
    sp->min_p = (float)d;
    d = sp->presence_penalty;
    if ((st = get_num(root, "presence_penalty", -2, 2, &d, err)) != PL_OK) goto out;
    sp->presence_penalty = (float)d;
    d = sp->frequency_penalty;
    if ((st = get_num(root, "frequency_penalty", -2, 2, &d, err)) != PL_OK) goto out;
    sp->frequency_penalty = (float)d;
    d = sp->repeat_penalty;
    if ((st = get_num(root, "repeat_penalty", 0.01, 10, &d, err)) != PL_OK) goto out;
    sp->repeat_penalty = (float)d;
    i64 = sp->top_k;
    if ((st = get_int(root, "top_k", 0, 1e9, &i64, NULL, err)) != PL_OK) goto out;
    sp->top_k = (int32_t)i64;
    if ((st = get_int(root, "seed", -9.2e18, 9.2e18, &i64, &given, err)) != PL_OK) goto out;
    if (given) sp->seed = (uint64_t)i64 == PL_SAMPLER_SEED_RANDOM ? 0 : (uint64_t)i64;
    /* max_completion_tokens is the newer name; it wins */
    if ((st = get_int(root, "max_tokens", 1, 1e9, &o->max_tokens, NULL, err)) != PL_OK) goto out;
    if ((st = get_int(root, "max_completion_tokens", 1, 1e9, &i64, &given, err)) != PL_OK) goto out;
    if (given) o->max_tokens = i64;
    if ((st = get_bool(root, "stream", &o->stream, err)) != PL_OK) goto out;
    if ((st = get_bool(root, "ignore_eos", &o->ignore_eos, err)) != PL_OK) goto out;
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) {
            st = BAD("stream_options", "'stream_options' must be an object");
            goto out;
        }
        if ((st = get_bool(so, "include_usage", &o->include_usage, err)) != PL_OK) goto out;
    }
    const cJSON *kw = cJSON_GetObjectItemCaseSensitive(root, "chat_template_kwargs");
    if (kw && !cJSON_IsNull(kw)) {
        if (!cJSON_IsObject(kw)) {
            st = BAD("chat_template_kwargs", "'chat_template_kwargs' must be an object");
            goto out;
        }
        if ((st = get_bool(kw, "enable_thinking", &o->enable_thinking, err)) != PL_OK) goto out;
    }
    if ((st = parse_stop(ctx, root, o, err)) != PL_OK) goto out;
    if ((st = parse_bias(ctx, root, o, err)) != PL_OK) goto out;
    sp->logit_bias = o->bias;
    sp->n_logit_bias = o->n_bias;
    if (kind == PL_SRV_KIND_CHAT) st = parse_messages(ctx, root, conv, err);
    else st = parse_prompt(ctx, root, o, err);
out:
    cJSON_Delete(root);
    return st;
}

bool pl_srv_buf_put(pl_ctx *ctx, pl_srv_buf *b, const char *text, size_t len) {
    size_t need;
    if (!pl_size_add(b->len, len, &need) || !pl_size_add(need, 1, &need)) return false;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            if (!pl_size_mul(cap, 2, &cap)) return false;
        char *d = pl_realloc(ctx, b->data, cap);
        if (!d) return false;
        b->data = d;
        b->cap = cap;
    }
    if (len) memcpy(b->data + b->len, text, len);
    b->len += len;
    b->data[b->len] = 0;
    return true;
}
