/*
 * template.c - public API of the chat-template engine: compile, render,
 * output buffer; the per-render runtime (arena accounting, limits, errors);
 * conversion of the cJSON inputs into template values.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "template_int.h"

#define DEFAULT_MAX_OUTPUT ((size_t)16 << 20)
#define DEFAULT_MAX_MEMORY ((size_t)256 << 20)
#define DEFAULT_MAX_STEPS  10000000u
#define DEFAULT_MAX_DEPTH  500
#define JSON_MAX_DEPTH     200

/* ---- runtime helpers ---- */

bool rt_err(rt *r, const node *at, pl_status st, const char *fmt, ...) {
    if (r->st != PL_OK) return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    r->st = st;
    if (at) {
        r->line = at->line;
        r->col = at->col;
    }
    return false;
}

bool rt_undef_err(rt *r, const node *at, const jv *u) {
    tstr n = u->u.s;
    int len = (int)(n.n > 80 ? 80 : n.n);
    if (u->flags & UNDEF_ATTR) return rt_err(r, at, PL_ERR_FORMAT, "no attribute or key '%.*s'", len, n.p ? n.p : "");
    if (n.n == 0) return rt_err(r, at, PL_ERR_FORMAT, "value is undefined");
    return rt_err(r, at, PL_ERR_FORMAT, "'%.*s' is undefined", len, n.p);
}

void *rt_alloc(rt *r, size_t size) {
    if (r->st != PL_OK) return NULL;
    size_t total;
    if (!pl_size_add(r->mem, size, &total) || total > r->max_mem) {
        rt_err(r, NULL, PL_ERR_RANGE, "template needs more than %zu bytes of memory", r->max_mem);
        return NULL;
    }
    void *p = pl_arena_alloc(r->arena, size ? size : 1, 8);
    if (!p) {
        rt_err(r, NULL, PL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    r->mem = total;
    return p;
}

void *rt_alloc_n(rt *r, size_t n, size_t size) {
    size_t bytes;
    if (!pl_size_mul(n, size, &bytes)) {
        rt_err(r, NULL, PL_ERR_RANGE, "allocation too large");
        return NULL;
    }
    return rt_alloc(r, bytes);
}

char *rt_strdup(rt *r, const char *p, size_t n) {
    char *d = rt_alloc(r, n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, p, n);
    d[n] = 0;
    return d;
}

bool rt_step(rt *r, uint64_t n) {
    r->steps += n;
    if (r->steps > r->max_steps)
        return rt_err(r, NULL, PL_ERR_RANGE, "template exceeded its work limit (%llu steps)",
                      (unsigned long long)r->max_steps);
    return true;
}

void sb_init(sbuf *b, rt *r) { *b = (sbuf){ .r = r, .ok = true }; }

void sb_put(sbuf *b, const char *p, size_t n) {
    if (!b->ok || n == 0) return;
    if (n > b->cap - b->n) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc - b->n < n) {
            if (nc > SIZE_MAX / 2) { b->ok = false; rt_err(b->r, NULL, PL_ERR_RANGE, "string too large"); return; }
            nc *= 2;
        }
        char *d = rt_alloc(b->r, nc);
        if (!d) { b->ok = false; return; }
        if (b->n) memcpy(d, b->p, b->n);
        b->p = d;
        b->cap = nc;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void sb_putc(sbuf *b, char c) { sb_put(b, &c, 1); }
void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
jv sb_value(sbuf *b) { return b->ok ? jv_str(b->p ? b->p : "", b->n) : jv_undef(); }

/* ---- cJSON -> values ---- */

static bool from_json(rt *r, const cJSON *j, jv *out, int depth) {
    if (depth > JSON_MAX_DEPTH) return rt_err(r, NULL, PL_ERR_RANGE, "input JSON nested too deeply");
    if (cJSON_IsNull(j) || cJSON_IsRaw(j) || cJSON_IsInvalid(j)) { *out = jv_none(); return true; }
    if (cJSON_IsBool(j)) { *out = jv_bool(cJSON_IsTrue(j)); return true; }
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        /* cJSON keeps only a double: integral values that fit exactly are ints */
        if (isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0) *out = jv_int((int64_t)d);
        else *out = jv_float(d);
        return true;
    }
    if (cJSON_IsString(j)) {
        const char *s = j->valuestring ? j->valuestring : "";
        *out = jv_str(s, strlen(s));
        return true;
    }
    size_t n = 0;
    for (const cJSON *c = j->child; c; c = c->next) n++;
    if (!rt_step(r, n)) return false;
    if (cJSON_IsArray(j)) {
        jlist *l = jl_new(r, n);
        if (!l) return false;
        size_t i = 0;
        for (const cJSON *c = j->child; c; c = c->next)
            if (!from_json(r, c, &l->v[i++], depth + 1)) return false;
        *out = (jv){ .t = JT_LIST, .u.l = l };
        return true;
    }
    if (cJSON_IsObject(j)) {
        jdict *d = jd_new(r, n);
        if (!d) return false;
        for (const cJSON *c = j->child; c; c = c->next) {
            const char *k = c->string ? c->string : "";
            d->k[d->n] = jv_str(k, strlen(k));
            if (!from_json(r, c, &d->v[d->n], depth + 1)) return false;
            d->n++;
        }
        *out = (jv){ .t = JT_DICT, .u.d = d };
        return true;
    }
    *out = jv_none();
    return true;
}

static bool set_global(rt *r, frame *f, const char *name, jv v) {
    uint32_t sym = tmpl_sym_find(r->t, (tstr){ name, strlen(name) });
    return sym == SYM_NONE || tmpl_frame_set(r, f, sym, v);
}

/* ---- public API ---- */

void pl_template_buf_free(pl_template_buf *b) {
    if (!b) return;
    pl_free(b->ctx, b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void pl_template_free(pl_template *t) {
    if (!t) return;
    pl_ctx *ctx = t->ctx;
    pl_arena_free(t->arena);
    pl_free(ctx, t);
}

pl_status pl_template_compile(pl_ctx *ctx, const char *src, size_t len, pl_template **out) {
    if (!out) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "pl_template_compile: out is NULL");
    *out = NULL;
    if (!ctx || (!src && len)) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "pl_template_compile: bad arguments");
    if (len > TMPL_MAX_SOURCE)
        return pl_ctx_err(ctx, PL_ERR_RANGE, "template is %zu bytes; the limit is %u", len, TMPL_MAX_SOURCE);
    pl_template *t = pl_calloc(ctx, 1, sizeof *t);
    if (!t) return pl_ctx_err(ctx, PL_ERR_NOMEM, "out of memory");
    t->ctx = ctx;
    if (pl_arena_init(ctx, 16384, &t->arena) != PL_OK) {
        pl_free(ctx, t);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "out of memory");
    }
    /* jinja2 reads the source with universal newlines and, as
     * keep_trailing_newline is off, drops one final "\n" */
    char *s = pl_arena_alloc(t->arena, len + 1, 1);
    if (!s) {
        pl_template_free(t);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = 0;

    tmpl_err err = { .st = PL_OK };
    token *toks = NULL;
    size_t ntoks = 0;
    bool ok = tmpl_lex(ctx, t->arena, s, n, &toks, &ntoks, &err) && tmpl_parse(t, toks, ntoks, &err);
    pl_free(ctx, toks);
    if (ok) {
        t->sym_global = pl_arena_alloc(t->arena, (t->nsyms ? t->nsyms : 1) * sizeof(int16_t), 0);
        if (!t->sym_global) {
            err.st = PL_ERR_NOMEM;
            snprintf(err.msg, sizeof err.msg, "out of memory");
            ok = false;
        } else {
            for (uint32_t i = 0; i < t->nsyms; i++) t->sym_global[i] = (int16_t)tmpl_global_find(t->syms[i]);
            t->sym_loop = tmpl_sym_find(t, TSTR_LIT("loop"));
            t->sym_caller = tmpl_sym_find(t, TSTR_LIT("caller"));
            t->sym_varargs = tmpl_sym_find(t, TSTR_LIT("varargs"));
            t->sym_kwargs = tmpl_sym_find(t, TSTR_LIT("kwargs"));
        }
    }
    if (!ok) {
        pl_template_free(t);
        if (err.st == PL_ERR_NOMEM) return pl_ctx_err(ctx, PL_ERR_NOMEM, "out of memory compiling a template");
        const char *what = err.st == PL_ERR_UNSUPPORTED ? "unsupported template construct"
                           : err.st == PL_ERR_RANGE     ? "template limit exceeded"
                                                        : "template syntax error";
        return pl_ctx_err(ctx, err.st, "%s at line %d, column %d: %s", what, err.line, err.col, err.msg);
    }
    *out = t;
    return PL_OK;
}

pl_status pl_template_render(const pl_template *t, pl_ctx *ctx, const pl_template_params *p,
                             pl_template_buf *out) {
    if (!t || !ctx || !p || !out) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "pl_template_render: bad arguments");
    if (!out->ctx) out->ctx = ctx;
    if (p->messages && !cJSON_IsArray(p->messages))
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "messages must be a JSON array");
    if (p->vars && !cJSON_IsObject(p->vars))
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "template variables must be a JSON object");
    rt r = {
        .ctx = ctx, .t = t, .p = p, .buf = out, .out_base = out->len,
        .max_out = p->limits.max_output ? p->limits.max_output : DEFAULT_MAX_OUTPUT,
        .max_mem = p->limits.max_memory ? p->limits.max_memory : DEFAULT_MAX_MEMORY,
        .max_steps = p->limits.max_steps ? p->limits.max_steps : DEFAULT_MAX_STEPS,
        .max_depth = p->limits.max_depth > 0 ? p->limits.max_depth : DEFAULT_MAX_DEPTH,
        .st = PL_OK,
    };
    if (pl_arena_init(ctx, 65536, &r.arena) != PL_OK) return pl_ctx_err(ctx, PL_ERR_NOMEM, "out of memory");
    bool ok = true;
    frame *root = tmpl_frame_new(&r, NULL), *tf = root ? tmpl_frame_new(&r, root) : NULL;
    ok = tf != NULL;
    if (ok && p->vars)
        for (const cJSON *c = p->vars->child; c && ok; c = c->next) {
            if (!c->string) continue;
            uint32_t sym = tmpl_sym_find(t, (tstr){ c->string, strlen(c->string) });
            jv v;
            if (sym != SYM_NONE) ok = from_json(&r, c, &v, 0) && tmpl_frame_set(&r, root, sym, v);
        }
    if (ok) {
        jv msgs;
        if (p->messages) {
            ok = from_json(&r, p->messages, &msgs, 0);
        } else {
            jlist *l = jl_new(&r, 0);
            ok = l != NULL;
            msgs = (jv){ .t = JT_LIST, .u.l = l };
        }
        ok = ok && set_global(&r, root, "messages", msgs) &&
             set_global(&r, root, "add_generation_prompt", jv_bool(p->add_generation_prompt));
        if (ok && p->bos_token) ok = set_global(&r, root, "bos_token", jv_str(p->bos_token, strlen(p->bos_token)));
        if (ok && p->eos_token) ok = set_global(&r, root, "eos_token", jv_str(p->eos_token, strlen(p->eos_token)));
    }
    ok = ok && tmpl_exec(&r, t->body, t->n, tf);
    pl_arena_free(r.arena);
    if (ok) return PL_OK;
    out->len = r.out_base;
    if (out->data) out->data[out->len] = 0;
    if (r.st == PL_OK) { /* defensive: a failure always records a status */
        r.st = PL_ERR_INTERNAL;
        snprintf(r.msg, sizeof r.msg, "render failed");
    }
    if (r.raised)
        return pl_ctx_err(ctx, r.st, "template refused: %s (line %d, column %d)", r.msg, r.line, r.col);
    if (r.st == PL_ERR_NOMEM) return pl_ctx_err(ctx, r.st, "out of memory rendering a template");
    return pl_ctx_err(ctx, r.st, "template error at line %d, column %d: %s", r.line, r.col, r.msg);
}
