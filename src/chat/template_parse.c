/*
 * template_parse.c - recursive-descent parser from tokens to the AST.
 *
 * The grammar and precedence are jinja2's (lowest first):
 *   conditional `a if c else b` < or < and < not < compare (== != < <= > >= in,
 *   not in; chained) < + - < ~ < * / // % < ** (left-associative) < unary - +
 *   < filters `|f` and tests `is t` < postfix . [] ()
 * Statement bodies are node arrays in the template arena. Filter and test
 * names are resolved here, so an unknown one is a compile error with its
 * position, as in jinja2.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "template_int.h"

typedef struct parser {
    pl_template *t;
    const token *tk;
    size_t       n, i;
    tmpl_err    *err;
    int          depth;
    int          loops;     /* enclosing for loops (reset inside macros) */
    node        *macro;     /* innermost macro being parsed, for its MACRO_* flags */
} parser;

/* growable node array (realloc'd on the ctx, moved into the arena when done) */
typedef struct nvec {
    node  **v;
    size_t  n, cap;
} nvec;

static bool pfail(parser *P, const token *at, pl_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static bool pfail(parser *P, const token *at, pl_status st, const char *fmt, ...) {
    if (P->err->st != PL_OK) return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(P->err->msg, sizeof P->err->msg, fmt, ap);
    va_end(ap);
    P->err->st = st;
    P->err->line = at->line;
    P->err->col = at->col;
    return false;
}

static const token *cur(parser *P) { return &P->tk[P->i]; }
static const token *peek(parser *P, size_t k) {
    return P->i + k < P->n ? &P->tk[P->i + k] : &P->tk[P->n - 1];
}
static void next(parser *P) {
    if (P->i + 1 < P->n) P->i++;
}
static bool is_op(const token *t, int op) { return t->kind == TK_OP && t->op == op; }
static bool is_name(const token *t, const char *name) { return t->kind == TK_NAME && tstr_eqc(t->s, name); }

static const char *op_text[OP_COUNT] = {
    [OP_ADD] = "+", [OP_SUB] = "-", [OP_DIV] = "/", [OP_FLOORDIV] = "//", [OP_MUL] = "*",
    [OP_MOD] = "%", [OP_POW] = "**", [OP_TILDE] = "~", [OP_LBRACKET] = "[", [OP_RBRACKET] = "]",
    [OP_LPAREN] = "(", [OP_RPAREN] = ")", [OP_LBRACE] = "{", [OP_RBRACE] = "}", [OP_EQ] = "==",
    [OP_NE] = "!=", [OP_GT] = ">", [OP_GE] = ">=", [OP_LT] = "<", [OP_LE] = "<=", [OP_ASSIGN] = "=",
    [OP_DOT] = ".", [OP_COLON] = ":", [OP_PIPE] = "|", [OP_COMMA] = ",", [OP_SEMI] = ";",
};

/* Describe a token for messages. */
static const char *describe(const token *t, char *buf, size_t cap) {
    switch ((tk)t->kind) {
    case TK_EOF: return "end of template";
    case TK_DATA: return "template data";
    case TK_VAR_BEGIN: return "'{{'";
    case TK_VAR_END: return "end of print statement '}}'";
    case TK_BLOCK_BEGIN: return "'{%'";
    case TK_BLOCK_END: return "end of statement block '%}'";
    case TK_NAME: snprintf(buf, cap, "'%.*s'", (int)(t->s.n > 40 ? 40 : t->s.n), t->s.p); return buf;
    case TK_STRING: return "string";
    case TK_INT: return "integer";
    case TK_FLOAT: return "float";
    case TK_OP: snprintf(buf, cap, "'%s'", op_text[t->op] ? op_text[t->op] : "?"); return buf;
    }
    return "token";
}

static bool unexpected(parser *P, const char *expected) {
    char b[64];
    const token *t = cur(P);
    if (expected) return pfail(P, t, PL_ERR_FORMAT, "unexpected %s, expected %s", describe(t, b, sizeof b), expected);
    return pfail(P, t, PL_ERR_FORMAT, "unexpected %s", describe(t, b, sizeof b));
}

static bool expect_op(parser *P, int op) {
    if (!is_op(cur(P), op)) {
        char e[16];
        snprintf(e, sizeof e, "'%s'", op_text[op]);
        return unexpected(P, e);
    }
    next(P);
    return true;
}

static bool expect_kind(parser *P, tk kind, const char *what) {
    if (cur(P)->kind != kind) return unexpected(P, what);
    next(P);
    return true;
}

static node *mk(parser *P, nk kind, const token *at) {
    node *n = pl_arena_alloc(P->t->arena, sizeof *n, 0);
    if (!n) {
        pfail(P, at, PL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memset(n, 0, sizeof *n);
    n->kind = (uint8_t)kind;
    n->line = at->line;
    n->col = at->col;
    n->sym = SYM_NONE;
    return n;
}

static bool nv_push(parser *P, nvec *v, node *x) {
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 8, bytes;
        if (!pl_size_mul(nc, sizeof(node *), &bytes)) return pfail(P, cur(P), PL_ERR_NOMEM, "out of memory");
        node **p = pl_realloc(P->t->ctx, v->v, bytes);
        if (!p) return pfail(P, cur(P), PL_ERR_NOMEM, "out of memory");
        v->v = p;
        v->cap = nc;
    }
    v->v[v->n++] = x;
    return true;
}

/* Move a vector into the arena (frees the ctx copy). */
static node **nv_done(parser *P, nvec *v, uint32_t *n) {
    node **out = NULL;
    if (v->n) {
        out = pl_arena_alloc(P->t->arena, v->n * sizeof(node *), 0);
        if (out) memcpy(out, v->v, v->n * sizeof(node *));
        else pfail(P, cur(P), PL_ERR_NOMEM, "out of memory");
    }
    *n = (uint32_t)v->n;
    pl_free(P->t->ctx, v->v);
    v->v = NULL;
    v->n = v->cap = 0;
    return out;
}

static void nv_drop(parser *P, nvec *v) {
    pl_free(P->t->ctx, v->v);
    v->v = NULL;
    v->n = v->cap = 0;
}

static bool enter(parser *P) {
    if (++P->depth > TMPL_MAX_PARSE_DEPTH)
        return pfail(P, cur(P), PL_ERR_RANGE, "template nested too deeply (limit %d)", TMPL_MAX_PARSE_DEPTH);
    return true;
}

static node *parse_expr(parser *P, bool with_cond);
static node *parse_tuple(parser *P, bool simplified, bool with_cond, const char *extra_end, bool explicit_parens);
static node *parse_unary(parser *P, bool with_filter);
static node *parse_primary(parser *P);
static node *parse_postfix(parser *P, node *x);
static node *parse_filter_expr(parser *P, node *x);

/* ---- call arguments: (a, b, k=v, *args, **kwargs) ---- */

static bool parse_args(parser *P, node *call) {
    nvec pos = { 0 }, kwv = { 0 };
    tstr *kwn = NULL;
    size_t nkw = 0, capkw = 0;
    bool ok = false;
    if (!expect_op(P, OP_LPAREN)) return false;
    bool need_comma = false;
    while (!is_op(cur(P), OP_RPAREN)) {
        if (need_comma) {
            if (!expect_op(P, OP_COMMA)) goto out;
            if (is_op(cur(P), OP_RPAREN)) break;
        }
        if (is_op(cur(P), OP_MUL)) {
            next(P);
            if (!(call->c = parse_expr(P, true))) goto out;
        } else if (is_op(cur(P), OP_POW)) {
            next(P);
            if (!(call->d = parse_expr(P, true))) goto out;
        } else if (cur(P)->kind == TK_NAME && is_op(peek(P, 1), OP_ASSIGN)) {
            if (call->d) { pfail(P, cur(P), PL_ERR_FORMAT, "invalid argument syntax"); goto out; }
            if (nkw == capkw) {
                size_t nc = capkw ? capkw * 2 : 4;
                tstr *k = pl_realloc(P->t->ctx, kwn, nc * sizeof(tstr));
                if (!k) { pfail(P, cur(P), PL_ERR_NOMEM, "out of memory"); goto out; }
                kwn = k;
                capkw = nc;
            }
            kwn[nkw++] = cur(P)->s;
            next(P);
            next(P);
            node *v = parse_expr(P, true);
            if (!v || !nv_push(P, &kwv, v)) goto out;
        } else {
            if (kwv.n || call->c || call->d) { pfail(P, cur(P), PL_ERR_FORMAT, "invalid argument syntax"); goto out; }
            node *v = parse_expr(P, true);
            if (!v || !nv_push(P, &pos, v)) goto out;
        }
        need_comma = true;
    }
    if (!expect_op(P, OP_RPAREN)) goto out;
    call->list = nv_done(P, &pos, &call->n);
    call->list2 = nv_done(P, &kwv, &call->n2);
    if (nkw) {
        call->names = pl_arena_alloc(P->t->arena, nkw * sizeof(tstr), 0);
        if (!call->names) { pfail(P, cur(P), PL_ERR_NOMEM, "out of memory"); goto out; }
        memcpy(call->names, kwn, nkw * sizeof(tstr));
    }
    ok = P->err->st == PL_OK;
out:
    nv_drop(P, &pos);
    nv_drop(P, &kwv);
    pl_free(P->t->ctx, kwn);
    return ok;
}

/* A dotted filter/test name ("a.b" is allowed by jinja; we join it back). */
static bool parse_dotted_name(parser *P, tstr *out) {
    if (cur(P)->kind != TK_NAME) return unexpected(P, "a name");
    *out = cur(P)->s;
    next(P);
    while (is_op(cur(P), OP_DOT) && peek(P, 1)->kind == TK_NAME) {
        /* tokens are contiguous in the source only when written without spaces */
        tstr nx = peek(P, 1)->s;
        if (nx.p != out->p + out->n + 1) break;
        out->n += 1 + nx.n;
        next(P);
        next(P);
    }
    return true;
}

static node *parse_filter(parser *P, node *x, bool start_inline) {
    while (is_op(cur(P), OP_PIPE) || start_inline) {
        if (!start_inline) next(P);
        start_inline = false;
        const token *at = cur(P);
        tstr name;
        if (!parse_dotted_name(P, &name)) return NULL;
        int id = tmpl_filter_find(name);
        if (id < 0) {
            pfail(P, at, PL_ERR_UNSUPPORTED, "no filter named '%.*s'", (int)(name.n > 60 ? 60 : name.n), name.p);
            return NULL;
        }
        node *f = mk(P, E_FILTER, at);
        if (!f) return NULL;
        f->op = (uint8_t)id;
        f->a = x;
        f->val = jv_str(name.p, name.n);
        if (is_op(cur(P), OP_LPAREN) && !parse_args(P, f)) return NULL;
        x = f;
    }
    return x;
}

static node *parse_test(parser *P, node *x) {
    const token *at = cur(P);
    next(P); /* 'is' */
    bool neg = false;
    if (is_name(cur(P), "not")) {
        neg = true;
        next(P);
    }
    const token *nt = cur(P);
    tstr name;
    if (!parse_dotted_name(P, &name)) return NULL;
    int id = tmpl_test_find(name);
    if (id < 0) {
        pfail(P, nt, PL_ERR_UNSUPPORTED, "no test named '%.*s'", (int)(name.n > 60 ? 60 : name.n), name.p);
        return NULL;
    }
    node *t = mk(P, E_TEST, at);
    if (!t) return NULL;
    t->op = (uint8_t)id;
    t->flags = neg;
    t->a = x;
    t->val = jv_str(name.p, name.n);
    const token *c = cur(P);
    if (is_op(c, OP_LPAREN)) {
        if (!parse_args(P, t)) return NULL;
    } else if ((c->kind == TK_NAME || c->kind == TK_STRING || c->kind == TK_INT || c->kind == TK_FLOAT ||
                is_op(c, OP_LPAREN) || is_op(c, OP_LBRACKET) || is_op(c, OP_LBRACE)) &&
               !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
        if (is_name(c, "is")) {
            pfail(P, c, PL_ERR_FORMAT, "you cannot chain multiple tests with is");
            return NULL;
        }
        node *arg = parse_primary(P);
        if (!arg || !(arg = parse_postfix(P, arg))) return NULL;
        t->list = pl_arena_alloc(P->t->arena, sizeof(node *), 0);
        if (!t->list) { pfail(P, c, PL_ERR_NOMEM, "out of memory"); return NULL; }
        t->list[0] = arg;
        t->n = 1;
    }
    return t;
}

/* expr[...] contents: an expression or a slice a:b:c */
static node *parse_subscribed(parser *P) {
    const token *at = cur(P);
    node *parts[3] = { NULL, NULL, NULL };
    if (is_op(cur(P), OP_COLON)) {
        next(P);
    } else {
        node *e = parse_expr(P, true);
        if (!e || !is_op(cur(P), OP_COLON)) return e;
        next(P);
        parts[0] = e;
    }
    if (!is_op(cur(P), OP_COLON) && !is_op(cur(P), OP_RBRACKET) && !is_op(cur(P), OP_COMMA))
        if (!(parts[1] = parse_expr(P, true))) return NULL;
    if (is_op(cur(P), OP_COLON)) {
        next(P);
        if (!is_op(cur(P), OP_RBRACKET) && !is_op(cur(P), OP_COMMA))
            if (!(parts[2] = parse_expr(P, true))) return NULL;
    }
    node *s = mk(P, E_SLICE, at);
    if (!s) return NULL;
    s->b = parts[0];
    s->c = parts[1];
    s->d = parts[2];
    return s;
}

static node *parse_postfix(parser *P, node *x) {
    for (;;) {
        const token *at = cur(P);
        if (is_op(at, OP_DOT)) {
            next(P);
            const token *nt = cur(P);
            if (nt->kind == TK_NAME) {
                node *g = mk(P, E_ATTR, at);
                if (!g) return NULL;
                g->a = x;
                g->val = jv_str(nt->s.p, nt->s.n);
                next(P);
                x = g;
            } else if (nt->kind == TK_INT) {
                node *g = mk(P, E_ITEM, at), *k = mk(P, E_CONST, nt);
                if (!g || !k) return NULL;
                k->val = jv_int(nt->i);
                g->a = x;
                g->b = k;
                next(P);
                x = g;
            } else {
                unexpected(P, "a name or number after '.'");
                return NULL;
            }
        } else if (is_op(at, OP_LBRACKET)) {
            next(P);
            nvec args = { 0 };
            while (!is_op(cur(P), OP_RBRACKET)) {
                if (args.n && !expect_op(P, OP_COMMA)) { nv_drop(P, &args); return NULL; }
                if (is_op(cur(P), OP_RBRACKET)) break;
                node *s = parse_subscribed(P);
                if (!s || !nv_push(P, &args, s)) { nv_drop(P, &args); return NULL; }
            }
            if (!expect_op(P, OP_RBRACKET)) { nv_drop(P, &args); return NULL; }
            if (args.n == 0) { nv_drop(P, &args); unexpected(P, "a subscript"); return NULL; }
            node *key;
            if (args.n == 1) {
                key = args.v[0];
                nv_drop(P, &args);
            } else {
                for (size_t k = 0; k < args.n; k++)
                    if (args.v[k]->kind == E_SLICE) {
                        nv_drop(P, &args);
                        pfail(P, at, PL_ERR_UNSUPPORTED, "a slice inside a tuple subscript is not supported");
                        return NULL;
                    }
                key = mk(P, E_TUPLE, at);
                if (!key) { nv_drop(P, &args); return NULL; }
                key->list = nv_done(P, &args, &key->n);
            }
            if (key->kind == E_SLICE) {
                key->a = x;
                x = key;
            } else {
                node *g = mk(P, E_ITEM, at);
                if (!g) return NULL;
                g->a = x;
                g->b = key;
                x = g;
            }
        } else if (is_op(at, OP_LPAREN)) {
            node *c = mk(P, E_CALL, at);
            if (!c) return NULL;
            c->line = x->line; /* a call is reported where its callee starts */
            c->col = x->col;
            c->a = x;
            if (!parse_args(P, c)) return NULL;
            x = c;
        } else {
            return x;
        }
    }
}

static node *parse_filter_expr(parser *P, node *x) {
    for (;;) {
        if (is_op(cur(P), OP_PIPE)) x = parse_filter(P, x, false);
        else if (is_name(cur(P), "is")) x = parse_test(P, x);
        else if (is_op(cur(P), OP_LPAREN)) {
            node *c = mk(P, E_CALL, cur(P));
            if (!c) return NULL;
            c->a = x;
            if (!parse_args(P, c)) return NULL;
            x = c;
        } else return x;
        if (!x) return NULL;
    }
}

static node *parse_collection(parser *P, bool dict) {
    const token *at = cur(P);
    next(P);
    nvec keys = { 0 }, vals = { 0 };
    int close = dict ? OP_RBRACE : OP_RBRACKET;
    while (!is_op(cur(P), close)) {
        if (keys.n && !expect_op(P, OP_COMMA)) goto fail;
        if (is_op(cur(P), close)) break;
        node *k = parse_expr(P, true);
        if (!k || !nv_push(P, &keys, k)) goto fail;
        if (dict) {
            if (!expect_op(P, OP_COLON)) goto fail;
            node *v = parse_expr(P, true);
            if (!v || !nv_push(P, &vals, v)) goto fail;
        }
    }
    if (!expect_op(P, close)) goto fail;
    node *c = mk(P, dict ? E_DICT : E_LIST, at);
    if (!c) goto fail;
    c->list = nv_done(P, &keys, &c->n);
    c->list2 = nv_done(P, &vals, &c->n2);
    return c;
fail:
    nv_drop(P, &keys);
    nv_drop(P, &vals);
    return NULL;
}

static node *parse_primary(parser *P) {
    const token *t = cur(P);
    node *x;
    switch ((tk)t->kind) {
    case TK_NAME:
        if (is_name(t, "true") || is_name(t, "True") || is_name(t, "false") || is_name(t, "False")) {
            if (!(x = mk(P, E_CONST, t))) return NULL;
            x->val = jv_bool(t->s.p[0] == 't' || t->s.p[0] == 'T');
        } else if (is_name(t, "none") || is_name(t, "None")) {
            if (!(x = mk(P, E_CONST, t))) return NULL;
            x->val = jv_none();
        } else {
            if (!(x = mk(P, E_NAME, t))) return NULL;
            x->sym = tmpl_sym(P->t, t->s);
            if (x->sym == SYM_NONE) { pfail(P, t, PL_ERR_NOMEM, "out of memory"); return NULL; }
            x->val = jv_str(t->s.p, t->s.n);
            if (P->macro) {
                if (tstr_eqc(t->s, "caller")) P->macro->flags |= MACRO_CALLER;
                else if (tstr_eqc(t->s, "varargs")) P->macro->flags |= MACRO_VARARGS;
                else if (tstr_eqc(t->s, "kwargs")) P->macro->flags |= MACRO_KWARGS;
            }
        }
        next(P);
        return x;
    case TK_STRING: {
        if (!(x = mk(P, E_CONST, t))) return NULL;
        tstr s = t->s;
        next(P);
        if (cur(P)->kind == TK_STRING) { /* adjacent literals concatenate */
            size_t total = s.n;
            for (size_t k = P->i; k < P->n && P->tk[k].kind == TK_STRING; k++) total += P->tk[k].s.n;
            char *buf = pl_arena_alloc(P->t->arena, total + 1, 1);
            if (!buf) { pfail(P, t, PL_ERR_NOMEM, "out of memory"); return NULL; }
            memcpy(buf, s.p, s.n);
            size_t o = s.n;
            while (cur(P)->kind == TK_STRING) {
                memcpy(buf + o, cur(P)->s.p, cur(P)->s.n);
                o += cur(P)->s.n;
                next(P);
            }
            s = (tstr){ buf, o };
        }
        x->val = jv_str(s.p, s.n);
        return x;
    }
    case TK_INT:
    case TK_FLOAT:
        if (!(x = mk(P, E_CONST, t))) return NULL;
        x->val = t->kind == TK_INT ? jv_int(t->i) : jv_float(t->f);
        next(P);
        return x;
    case TK_OP:
        if (t->op == OP_LPAREN) {
            next(P);
            x = parse_tuple(P, false, true, NULL, true);
            if (!x || !expect_op(P, OP_RPAREN)) return NULL;
            return x;
        }
        if (t->op == OP_LBRACKET) return parse_collection(P, false);
        if (t->op == OP_LBRACE) return parse_collection(P, true);
        break;
    default: break;
    }
    unexpected(P, "an expression");
    return NULL;
}

static node *parse_unary(parser *P, bool with_filter) {
    if (!enter(P)) return NULL;
    const token *t = cur(P);
    node *x;
    if (is_op(t, OP_SUB) || is_op(t, OP_ADD)) {
        next(P);
        node *a = parse_unary(P, false);
        if (!a || !(x = mk(P, E_UNARY, t))) return NULL;
        x->op = t->op == OP_SUB ? OP_NEG : OP_POS;
        x->a = a;
    } else {
        x = parse_primary(P);
    }
    if (x) x = parse_postfix(P, x);
    if (x && with_filter) x = parse_filter_expr(P, x);
    P->depth--;
    return x;
}

static node *binary(parser *P, const token *at, int op, node *a, node *b) {
    node *x = mk(P, E_BIN, at);
    if (!x) return NULL;
    x->op = (uint8_t)op;
    x->a = a;
    x->b = b;
    return x;
}

static node *parse_pow(parser *P) {
    node *x = parse_unary(P, true);
    while (x && is_op(cur(P), OP_POW)) {
        const token *at = cur(P);
        next(P);
        node *y = parse_unary(P, true);
        x = y ? binary(P, at, OP_POW, x, y) : NULL;
    }
    return x;
}

static node *parse_math2(parser *P) {
    node *x = parse_pow(P);
    while (x && cur(P)->kind == TK_OP &&
           (cur(P)->op == OP_MUL || cur(P)->op == OP_DIV || cur(P)->op == OP_FLOORDIV || cur(P)->op == OP_MOD)) {
        const token *at = cur(P);
        int op = at->op;
        next(P);
        node *y = parse_pow(P);
        x = y ? binary(P, at, op, x, y) : NULL;
    }
    return x;
}

static node *parse_concat(parser *P) {
    const token *at = cur(P);
    node *x = parse_math2(P);
    if (!x || !is_op(cur(P), OP_TILDE)) return x;
    nvec parts = { 0 };
    if (!nv_push(P, &parts, x)) return NULL;
    while (is_op(cur(P), OP_TILDE)) {
        next(P);
        node *y = parse_math2(P);
        if (!y || !nv_push(P, &parts, y)) { nv_drop(P, &parts); return NULL; }
    }
    node *c = mk(P, E_CONCAT, at);
    if (!c) { nv_drop(P, &parts); return NULL; }
    c->list = nv_done(P, &parts, &c->n);
    return c;
}

static node *parse_math1(parser *P) {
    node *x = parse_concat(P);
    while (x && (is_op(cur(P), OP_ADD) || is_op(cur(P), OP_SUB))) {
        const token *at = cur(P);
        int op = at->op;
        next(P);
        node *y = parse_concat(P);
        x = y ? binary(P, at, op, x, y) : NULL;
    }
    return x;
}

static node *parse_compare(parser *P) {
    const token *at = cur(P);
    node *x = parse_math1(P);
    if (!x) return NULL;
    nvec operands = { 0 };
    uint8_t ops[64];
    size_t nops = 0;
    for (;;) {
        const token *t = cur(P);
        int op;
        if (t->kind == TK_OP && (t->op == OP_EQ || t->op == OP_NE || t->op == OP_LT || t->op == OP_LE ||
                                 t->op == OP_GT || t->op == OP_GE)) {
            op = t->op;
            next(P);
        } else if (is_name(t, "in")) {
            op = OP_IN;
            next(P);
        } else if (is_name(t, "not") && is_name(peek(P, 1), "in")) {
            op = OP_NOTIN;
            next(P);
            next(P);
        } else {
            break;
        }
        if (nops == sizeof ops) { nv_drop(P, &operands); pfail(P, t, PL_ERR_RANGE, "comparison chain too long"); return NULL; }
        node *y = parse_math1(P);
        if (!y || !nv_push(P, &operands, y)) { nv_drop(P, &operands); return NULL; }
        ops[nops++] = (uint8_t)op;
    }
    if (!nops) return x;
    node *c = mk(P, E_CMP, at);
    if (!c) { nv_drop(P, &operands); return NULL; }
    c->a = x;
    c->list = nv_done(P, &operands, &c->n);
    c->ops = pl_arena_alloc(P->t->arena, nops, 1);
    if (!c->ops) { pfail(P, at, PL_ERR_NOMEM, "out of memory"); return NULL; }
    memcpy(c->ops, ops, nops);
    return c;
}

static node *parse_not(parser *P) {
    if (is_name(cur(P), "not")) {
        const token *at = cur(P);
        next(P);
        if (!enter(P)) return NULL;
        node *a = parse_not(P);
        P->depth--;
        node *x = a ? mk(P, E_UNARY, at) : NULL;
        if (!x) return NULL;
        x->op = OP_NOT;
        x->a = a;
        return x;
    }
    return parse_compare(P);
}

static node *parse_and(parser *P) {
    node *x = parse_not(P);
    while (x && is_name(cur(P), "and")) {
        const token *at = cur(P);
        next(P);
        node *y = parse_not(P);
        x = y ? binary(P, at, OP_AND, x, y) : NULL;
    }
    return x;
}

static node *parse_or(parser *P) {
    node *x = parse_and(P);
    while (x && is_name(cur(P), "or")) {
        const token *at = cur(P);
        next(P);
        node *y = parse_and(P);
        x = y ? binary(P, at, OP_OR, x, y) : NULL;
    }
    return x;
}

static node *parse_expr(parser *P, bool with_cond) {
    if (!enter(P)) return NULL;
    node *x = parse_or(P);
    while (x && with_cond && is_name(cur(P), "if")) {
        const token *at = cur(P);
        next(P);
        node *c = parse_or(P), *e = NULL;
        if (!c) { x = NULL; break; }
        if (is_name(cur(P), "else")) {
            next(P);
            if (!(e = parse_expr(P, true))) { x = NULL; break; }
        }
        node *k = mk(P, E_COND, at);
        if (!k) { x = NULL; break; }
        k->a = c;
        k->b = x;
        k->c = e;
        x = k;
    }
    P->depth--;
    return x;
}

static bool tuple_end(parser *P, const char *extra_end) {
    const token *t = cur(P);
    if (t->kind == TK_VAR_END || t->kind == TK_BLOCK_END || t->kind == TK_EOF || is_op(t, OP_RPAREN)) return true;
    return extra_end && is_name(t, extra_end);
}

static node *parse_tuple(parser *P, bool simplified, bool with_cond, const char *extra_end, bool explicit_parens) {
    const token *at = cur(P);
    nvec items = { 0 };
    bool is_tuple = false;
    for (;;) {
        if (items.n && !expect_op(P, OP_COMMA)) goto fail;
        if (tuple_end(P, extra_end)) break;
        node *x = simplified ? parse_primary(P) : parse_expr(P, with_cond);
        if (!x || !nv_push(P, &items, x)) goto fail;
        if (is_op(cur(P), OP_COMMA)) is_tuple = true;
        else break;
    }
    if (!is_tuple) {
        if (items.n) {
            node *x = items.v[0];
            nv_drop(P, &items);
            return x;
        }
        if (!explicit_parens) {
            unexpected(P, "an expression");
            goto fail;
        }
    }
    node *t = mk(P, E_TUPLE, at);
    if (!t) goto fail;
    t->list = nv_done(P, &items, &t->n);
    return t;
fail:
    nv_drop(P, &items);
    return NULL;
}

/* ---- statements ---- */

static bool parse_body(parser *P, nvec *body, const char *const *ends, const char *owner);

/* Body until one of `ends`; then the end name is current (not consumed). */
static bool body_until(parser *P, node ***list, uint32_t *n, const char *const *ends, const char *owner) {
    nvec v = { 0 };
    if (!parse_body(P, &v, ends, owner)) {
        nv_drop(P, &v);
        return false;
    }
    *list = nv_done(P, &v, n);
    return P->err->st == PL_OK;
}

static bool end_tag(parser *P) { next(P); return expect_kind(P, TK_BLOCK_END, "end of statement block '%}'"); }

/* assignment target: name, or names separated by commas; for set also ns.attr */
static bool parse_targets(parser *P, node *s, const char *extra_end, bool allow_ns) {
    const token *t = cur(P);
    if (allow_ns && t->kind == TK_NAME && is_op(peek(P, 1), OP_DOT) && peek(P, 2)->kind == TK_NAME) {
        s->kind = S_SET_NS;
        s->sym = tmpl_sym(P->t, t->s);
        s->val = jv_str(peek(P, 2)->s.p, peek(P, 2)->s.n);
        next(P);
        next(P);
        next(P);
        return s->sym != SYM_NONE || pfail(P, t, PL_ERR_NOMEM, "out of memory");
    }
    uint32_t syms[32];
    tstr names[32];
    uint32_t n = 0;
    bool parens = false;
    if (is_op(t, OP_LPAREN)) {
        parens = true;
        next(P);
    }
    for (;;) {
        const token *nt = cur(P);
        if (nt->kind != TK_NAME) return unexpected(P, "a variable name to assign to");
        if (is_name(nt, "true") || is_name(nt, "false") || is_name(nt, "none") || is_name(nt, "True") ||
            is_name(nt, "False") || is_name(nt, "None"))
            return pfail(P, nt, PL_ERR_FORMAT, "cannot assign to '%.*s'", (int)nt->s.n, nt->s.p);
        if (n == 32) return pfail(P, nt, PL_ERR_RANGE, "too many assignment targets");
        names[n] = nt->s;
        syms[n] = tmpl_sym(P->t, nt->s);
        if (syms[n] == SYM_NONE) return pfail(P, nt, PL_ERR_NOMEM, "out of memory");
        n++;
        next(P);
        if (!is_op(cur(P), OP_COMMA)) break;
        next(P);
        if (parens ? is_op(cur(P), OP_RPAREN) : (tuple_end(P, extra_end) || is_op(cur(P), OP_ASSIGN))) break;
    }
    if (parens && !expect_op(P, OP_RPAREN)) return false;
    s->syms = pl_arena_alloc(P->t->arena, n * sizeof(uint32_t), 0);
    s->names = pl_arena_alloc(P->t->arena, n * sizeof(tstr), 0);
    if (!s->syms || !s->names) return pfail(P, t, PL_ERR_NOMEM, "out of memory");
    memcpy(s->syms, syms, n * sizeof(uint32_t));
    memcpy(s->names, names, n * sizeof(tstr));
    s->nnames = n;
    s->flags = n > 1 || parens; /* unpack */
    return true;
}

static node *parse_if(parser *P, const token *at) {
    static const char *const ends[] = { "elif", "else", "endif", NULL };
    static const char *const ends2[] = { "endif", NULL };
    node *s = mk(P, S_IF, at);
    if (!s || !(s->a = parse_tuple(P, false, false, NULL, false))) return NULL;
    if (!expect_kind(P, TK_BLOCK_END, "end of statement block '%}'")) return NULL;
    if (!body_until(P, &s->list, &s->n, ends, "if")) return NULL;
    const token *t = cur(P);
    if (is_name(t, "elif")) {
        next(P);
        node *e = parse_if(P, t);
        if (!e) return NULL;
        s->list2 = pl_arena_alloc(P->t->arena, sizeof(node *), 0);
        if (!s->list2) { pfail(P, t, PL_ERR_NOMEM, "out of memory"); return NULL; }
        s->list2[0] = e;
        s->n2 = 1;
        return s; /* the nested if consumed endif */
    }
    if (is_name(t, "else")) {
        if (!end_tag(P)) return NULL;
        if (!body_until(P, &s->list2, &s->n2, ends2, "if")) return NULL;
    }
    return end_tag(P) ? s : NULL;
}

static node *parse_for(parser *P, const token *at) {
    static const char *const ends[] = { "endfor", "else", NULL };
    static const char *const ends2[] = { "endfor", NULL };
    node *s = mk(P, S_FOR, at);
    if (!s || !parse_targets(P, s, "in", false)) return NULL;
    if (!is_name(cur(P), "in")) { unexpected(P, "'in'"); return NULL; }
    next(P);
    if (!(s->a = parse_tuple(P, false, false, "recursive", false))) return NULL;
    if (is_name(cur(P), "if")) {
        next(P);
        if (!(s->b = parse_expr(P, true))) return NULL;
    }
    if (is_name(cur(P), "recursive")) {
        pfail(P, cur(P), PL_ERR_UNSUPPORTED, "recursive for loops are not supported");
        return NULL;
    }
    if (!expect_kind(P, TK_BLOCK_END, "end of statement block '%}'")) return NULL;
    P->loops++;
    bool ok = body_until(P, &s->list, &s->n, ends, "for");
    P->loops--;
    if (!ok) return NULL;
    if (is_name(cur(P), "else")) {
        if (!end_tag(P)) return NULL;
        if (!body_until(P, &s->list2, &s->n2, ends2, "for")) return NULL;
    }
    return end_tag(P) ? s : NULL;
}

/* (a, b=1, ...) for macros and call blocks */
static bool parse_signature(parser *P, node *s) {
    if (!expect_op(P, OP_LPAREN)) return false;
    uint32_t syms[64];
    tstr names[64];
    node *defs[64];
    uint32_t n = 0;
    while (!is_op(cur(P), OP_RPAREN)) {
        if (n && !expect_op(P, OP_COMMA)) return false;
        if (is_op(cur(P), OP_RPAREN)) break;
        const token *t = cur(P);
        if (t->kind != TK_NAME) return unexpected(P, "a parameter name");
        if (n == 64) return pfail(P, t, PL_ERR_RANGE, "too many parameters");
        names[n] = t->s;
        syms[n] = tmpl_sym(P->t, t->s);
        if (syms[n] == SYM_NONE) return pfail(P, t, PL_ERR_NOMEM, "out of memory");
        next(P);
        defs[n] = NULL;
        if (is_op(cur(P), OP_ASSIGN)) {
            next(P);
            if (!(defs[n] = parse_expr(P, true))) return false;
        } else if (n && defs[n - 1]) {
            return pfail(P, t, PL_ERR_FORMAT, "non-default argument follows default argument");
        }
        n++;
    }
    next(P);
    if (n) {
        s->syms = pl_arena_alloc(P->t->arena, n * sizeof(uint32_t), 0);
        s->names = pl_arena_alloc(P->t->arena, n * sizeof(tstr), 0);
        s->list2 = pl_arena_alloc(P->t->arena, n * sizeof(node *), 0);
        if (!s->syms || !s->names || !s->list2) return pfail(P, cur(P), PL_ERR_NOMEM, "out of memory");
        memcpy(s->syms, syms, n * sizeof(uint32_t));
        memcpy(s->names, names, n * sizeof(tstr));
        memcpy(s->list2, defs, n * sizeof(node *));
    }
    s->nnames = s->n2 = n;
    return true;
}

static node *parse_macro_like(parser *P, const token *at, bool is_call) {
    static const char *const mends[] = { "endmacro", NULL };
    static const char *const cends[] = { "endcall", NULL };
    node *s = mk(P, is_call ? S_CALLBLOCK : S_MACRO, at);
    if (!s) return NULL;
    if (is_call) {
        if (is_op(cur(P), OP_LPAREN) && !parse_signature(P, s)) return NULL;
        const token *ct = cur(P);
        if (!(s->a = parse_expr(P, true))) return NULL;
        if (s->a->kind != E_CALL) { pfail(P, ct, PL_ERR_FORMAT, "expected a call after 'call'"); return NULL; }
    } else {
        const token *nt = cur(P);
        if (nt->kind != TK_NAME) { unexpected(P, "a macro name"); return NULL; }
        s->sym = tmpl_sym(P->t, nt->s);
        s->val = jv_str(nt->s.p, nt->s.n);
        if (s->sym == SYM_NONE) { pfail(P, nt, PL_ERR_NOMEM, "out of memory"); return NULL; }
        next(P);
        if (!parse_signature(P, s)) return NULL;
    }
    if (!expect_kind(P, TK_BLOCK_END, "end of statement block '%}'")) return NULL;
    node *outer = P->macro;
    int loops = P->loops;
    P->macro = s;
    P->loops = 0;
    bool ok = body_until(P, &s->list, &s->n, is_call ? cends : mends, is_call ? "call" : "macro");
    P->macro = outer;
    P->loops = loops;
    if (!ok) return NULL;
    return end_tag(P) ? s : NULL;
}

static node *parse_statement(parser *P) {
    static const char *const set_ends[] = { "endset", NULL };
    static const char *const filter_ends[] = { "endfilter", NULL };
    static const char *const with_ends[] = { "endwith", NULL };
    static const char *const gen_ends[] = { "endgeneration", NULL };
    static const char *const unsupported[] = { "extends", "include", "import", "from", "block", "autoescape",
                                               "do", "trans", "pluralize", "endblock", NULL };
    const token *at = cur(P);
    if (at->kind != TK_NAME) { unexpected(P, "a statement name"); return NULL; }
    next(P);
    if (is_name(at, "if")) return parse_if(P, at);
    if (is_name(at, "for")) return parse_for(P, at);
    if (is_name(at, "macro")) return parse_macro_like(P, at, false);
    if (is_name(at, "call")) return parse_macro_like(P, at, true);
    if (is_name(at, "set")) {
        node *s = mk(P, S_SET, at);
        if (!s || !parse_targets(P, s, NULL, true)) return NULL;
        if (is_op(cur(P), OP_ASSIGN)) {
            next(P);
            if (!(s->a = parse_tuple(P, false, true, NULL, false))) return NULL;
            return expect_kind(P, TK_BLOCK_END, "end of statement block '%}'") ? s : NULL;
        }
        if (s->kind != S_SET || s->flags) { unexpected(P, "'='"); return NULL; }
        if (is_op(cur(P), OP_PIPE)) {
            pfail(P, cur(P), PL_ERR_UNSUPPORTED, "filters on block assignments are not supported");
            return NULL;
        }
        if (!expect_kind(P, TK_BLOCK_END, "'=' or end of statement block '%}'")) return NULL;
        s->kind = S_SETBLOCK;
        s->sym = s->syms[0];
        if (!body_until(P, &s->list, &s->n, set_ends, "set")) return NULL;
        return end_tag(P) ? s : NULL;
    }
    if (is_name(at, "filter")) {
        node *s = mk(P, S_FILTERBLOCK, at);
        if (!s) return NULL;
        node *chain = parse_filter(P, NULL, true);
        if (!chain) return NULL;
        nvec fs = { 0 };
        for (node *f = chain; f; f = f->a)
            if (!nv_push(P, &fs, f)) { nv_drop(P, &fs); return NULL; }
        /* innermost first */
        for (size_t i = 0; i < fs.n / 2; i++) {
            node *tmp = fs.v[i];
            fs.v[i] = fs.v[fs.n - 1 - i];
            fs.v[fs.n - 1 - i] = tmp;
        }
        s->list2 = nv_done(P, &fs, &s->n2);
        if (!expect_kind(P, TK_BLOCK_END, "end of statement block '%}'")) return NULL;
        if (!body_until(P, &s->list, &s->n, filter_ends, "filter")) return NULL;
        return end_tag(P) ? s : NULL;
    }
    if (is_name(at, "with")) {
        node *s = mk(P, S_WITH, at);
        if (!s) return NULL;
        uint32_t syms[32];
        tstr names[32];
        node *vals[32];
        uint32_t n = 0;
        while (cur(P)->kind != TK_BLOCK_END) {
            if (n && !expect_op(P, OP_COMMA)) return NULL;
            const token *nt = cur(P);
            if (nt->kind != TK_NAME) { unexpected(P, "a variable name"); return NULL; }
            if (n == 32) { pfail(P, nt, PL_ERR_RANGE, "too many assignments in with"); return NULL; }
            names[n] = nt->s;
            syms[n] = tmpl_sym(P->t, nt->s);
            if (syms[n] == SYM_NONE) { pfail(P, nt, PL_ERR_NOMEM, "out of memory"); return NULL; }
            next(P);
            if (!expect_op(P, OP_ASSIGN)) return NULL;
            if (!(vals[n] = parse_expr(P, true))) return NULL;
            n++;
        }
        next(P);
        if (n) {
            s->syms = pl_arena_alloc(P->t->arena, n * sizeof(uint32_t), 0);
            s->names = pl_arena_alloc(P->t->arena, n * sizeof(tstr), 0);
            s->list2 = pl_arena_alloc(P->t->arena, n * sizeof(node *), 0);
            if (!s->syms || !s->names || !s->list2) { pfail(P, at, PL_ERR_NOMEM, "out of memory"); return NULL; }
            memcpy(s->syms, syms, n * sizeof(uint32_t));
            memcpy(s->names, names, n * sizeof(tstr));
            memcpy(s->list2, vals, n * sizeof(node *));
        }
        s->nnames = s->n2 = n;
        if (!body_until(P, &s->list, &s->n, with_ends, "with")) return NULL;
        return end_tag(P) ? s : NULL;
    }
    if (is_name(at, "generation")) {
        node *s = mk(P, S_BLOCK, at);
        if (!s || !expect_kind(P, TK_BLOCK_END, "end of statement block '%}'")) return NULL;
        if (!body_until(P, &s->list, &s->n, gen_ends, "generation")) return NULL;
        return end_tag(P) ? s : NULL;
    }
    if (is_name(at, "break") || is_name(at, "continue")) {
        if (P->loops == 0) {
            pfail(P, at, PL_ERR_FORMAT, "'%.*s' outside of a loop", (int)at->s.n, at->s.p);
            return NULL;
        }
        node *s = mk(P, at->s.p[0] == 'b' ? S_BREAK : S_CONTINUE, at);
        return s && expect_kind(P, TK_BLOCK_END, "end of statement block '%}'") ? s : NULL;
    }
    for (const char *const *u = unsupported; *u; u++)
        if (is_name(at, *u)) {
            pfail(P, at, PL_ERR_UNSUPPORTED, "the '%s' tag is not supported in chat templates", *u);
            return NULL;
        }
    pfail(P, at, PL_ERR_FORMAT, "unknown tag '%.*s'", (int)(at->s.n > 40 ? 40 : at->s.n), at->s.p);
    return NULL;
}

static bool parse_body(parser *P, nvec *body, const char *const *ends, const char *owner) {
    if (!enter(P)) return false;
    for (;;) {
        const token *t = cur(P);
        if (t->kind == TK_EOF) {
            P->depth--;
            if (!ends) return true;
            return pfail(P, t, PL_ERR_FORMAT, "unexpected end of template: '%s' block is not closed (expected '%s')",
                         owner, ends[0]);
        }
        if (t->kind == TK_DATA) {
            node *d = mk(P, S_DATA, t);
            if (!d) return false;
            d->val = jv_str(t->s.p, t->s.n);
            if (!nv_push(P, body, d)) return false;
            next(P);
        } else if (t->kind == TK_VAR_BEGIN) {
            next(P);
            node *o = mk(P, S_OUT, t);
            if (!o || !(o->a = parse_tuple(P, false, true, NULL, false))) return false;
            if (!expect_kind(P, TK_VAR_END, "end of print statement '}}'")) return false;
            if (!nv_push(P, body, o)) return false;
        } else if (t->kind == TK_BLOCK_BEGIN) {
            next(P);
            const token *nt = cur(P);
            if (ends && nt->kind == TK_NAME)
                for (const char *const *e = ends; *e; e++)
                    if (is_name(nt, *e)) {
                        P->depth--;
                        return true;
                    }
            if (nt->kind == TK_NAME && nt->s.n >= 3 && (memcmp(nt->s.p, "end", 3) == 0 || is_name(nt, "else") ||
                                                        is_name(nt, "elif"))) {
                if (owner)
                    return pfail(P, nt, PL_ERR_FORMAT, "unexpected '%.*s': the innermost open block is '%s' (expected '%s')",
                                 (int)(nt->s.n > 40 ? 40 : nt->s.n), nt->s.p, owner, ends[0]);
                return pfail(P, nt, PL_ERR_FORMAT, "unexpected '%.*s' with no open block",
                             (int)(nt->s.n > 40 ? 40 : nt->s.n), nt->s.p);
            }
            node *s = parse_statement(P);
            if (!s || !nv_push(P, body, s)) return false;
        } else {
            return unexpected(P, NULL);
        }
    }
}

uint32_t tmpl_sym_find(const pl_template *t, tstr name) {
    for (uint32_t i = 0; i < t->nsyms; i++)
        if (tstr_eq(t->syms[i], name)) return i;
    return SYM_NONE;
}

uint32_t tmpl_sym(pl_template *t, tstr name) {
    uint32_t i = tmpl_sym_find(t, name);
    if (i != SYM_NONE) return i;
    if (t->nsyms == t->cap_syms) {
        uint32_t nc = t->cap_syms ? t->cap_syms * 2 : 32;
        tstr *s = pl_arena_alloc(t->arena, nc * sizeof(tstr), 0);
        if (!s) return SYM_NONE;
        if (t->nsyms) memcpy(s, t->syms, t->nsyms * sizeof(tstr));
        t->syms = s;
        t->cap_syms = nc;
    }
    t->syms[t->nsyms] = name;
    return t->nsyms++;
}

bool tmpl_parse(pl_template *t, const token *toks, size_t ntoks, tmpl_err *err) {
    parser P = { .t = t, .tk = toks, .n = ntoks, .err = err };
    nvec body = { 0 };
    if (!parse_body(&P, &body, NULL, NULL)) {
        nv_drop(&P, &body);
        return false;
    }
    t->body = nv_done(&P, &body, &t->n);
    return err->st == PL_OK;
}
