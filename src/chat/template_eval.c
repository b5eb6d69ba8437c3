/*
 * template_eval.c - the tree-walking evaluator: expressions, statements,
 * scopes, macros and output sinks.
 *
 * Scopes follow jinja2: `for` bodies, macro calls and `with` get a new frame
 * (a `for` frame is cleared at each iteration, so assignments in the body
 * neither leak out nor survive to the next iteration); `if` does not. Name
 * lookup walks the frames outwards and ends at the global builtins.
 *
 * Cost: every value is allocated in the per-render arena and freed at the
 * end of the render. Chains of string `+` (the common "'<|im_start|>' + role +
 * '\n' + content" pattern) and `~` are built with one allocation instead of a
 * copy per operator.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "template_int.h"

/* ---- frames ---- */

frame *tmpl_frame_new(rt *r, frame *parent) {
    frame *f = rt_alloc(r, sizeof *f);
    if (!f) return NULL;
    memset(f, 0, sizeof *f);
    f->parent = parent;
    return f;
}

bool tmpl_frame_set(rt *r, frame *f, uint32_t sym, jv v) {
    if (sym == SYM_NONE) return true;
    for (uint32_t i = 0; i < f->n; i++)
        if (f->syms[i] == sym) {
            f->vals[i] = v;
            return true;
        }
    if (f->n == f->cap) {
        uint32_t nc = f->cap ? f->cap * 2 : 8;
        uint32_t *s = rt_alloc_n(r, nc, sizeof(uint32_t));
        jv *vals = rt_alloc_n(r, nc, sizeof(jv));
        if (!s || !vals) return false;
        if (f->n) {
            memcpy(s, f->syms, f->n * sizeof(uint32_t));
            memcpy(vals, f->vals, f->n * sizeof(jv));
        }
        f->syms = s;
        f->vals = vals;
        f->cap = nc;
    }
    f->syms[f->n] = sym;
    f->vals[f->n] = v;
    f->n++;
    return true;
}

static bool lookup(const rt *r, const frame *f, uint32_t sym, jv *out) {
    for (; f; f = f->parent)
        for (uint32_t i = f->n; i-- > 0;)
            if (f->syms[i] == sym) {
                *out = f->vals[i];
                return true;
            }
    int g = sym < r->t->nsyms ? r->t->sym_global[sym] : -1;
    if (g >= 0) {
        *out = (jv){ .t = JT_FUNC, .id = (uint16_t)g };
        return true;
    }
    return false;
}

/* ---- output ---- */

static bool out_write(rt *r, const char *p, size_t n) {
    if (n == 0) return true;
    sink *s = r->out;
    if (!s) { /* the caller's buffer */
        pl_template_buf *b = r->buf;
        size_t need;
        if (!pl_size_add(b->len, n, &need) || need - r->out_base > r->max_out)
            return rt_err(r, NULL, PL_ERR_RANGE, "rendered output exceeds the limit of %zu bytes", r->max_out);
        if (need + 1 > b->cap) {
            size_t nc = b->cap ? b->cap : 256;
            while (nc < need + 1) nc *= 2;
            char *d = pl_realloc(b->ctx, b->data, nc);
            if (!d) return rt_err(r, NULL, PL_ERR_NOMEM, "out of memory");
            b->data = d;
            b->cap = nc;
        }
        memcpy(b->data + b->len, p, n);
        b->len = need;
        b->data[need] = 0;
        return true;
    }
    if (s->n + n > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 256;
        while (nc < s->n + n) {
            if (nc > SIZE_MAX / 2) return rt_err(r, NULL, PL_ERR_RANGE, "captured output too large");
            nc *= 2;
        }
        char *d = rt_alloc(r, nc);
        if (!d) return false;
        if (s->n) memcpy(d, s->p, s->n);
        s->p = d;
        s->cap = nc;
    }
    memcpy(s->p + s->n, p, n);
    s->n += n;
    return true;
}

static bool out_value(rt *r, const jv *v) {
    if (v->t == JT_STR) return out_write(r, v->u.s.p, v->u.s.n);
    if (v->t == JT_UNDEF) return true;
    jv s;
    if (!jv_to_str(r, v, &s)) return false;
    return out_write(r, s.u.s.p, s.u.s.n);
}

/* Run body with its output captured into a string value. */
static bool capture(rt *r, node *const *body, uint32_t n, frame *f, jv *out) {
    sink s = { 0 };
    sink *saved = r->out;
    r->out = &s;
    bool ok = tmpl_exec(r, body, n, f);
    r->out = saved;
    *out = jv_str(s.p ? s.p : "", s.n);
    return ok;
}

/* ---- expressions ---- */

static bool ev(rt *r, const node *e, frame *f, jv *out);

static bool enter(rt *r, const node *at) {
    if (++r->depth > r->max_depth) {
        r->depth--;
        return rt_err(r, at, PL_ERR_RANGE, "evaluation nested too deeply (limit %d)", r->max_depth);
    }
    return true;
}

/* Evaluate a call's arguments (positional, keywords, *args, **kwargs). */
static bool eval_args(rt *r, const node *call, frame *f, tcall *c) {
    size_t npos = call->n, nkw = call->n2;
    jv star = jv_undef(), dstar = jv_undef();
    if (call->c && !ev(r, call->c, f, &star)) return false;
    if (call->d && !ev(r, call->d, f, &dstar)) return false;
    if (call->c) {
        if (star.t != JT_LIST) return rt_err(r, call->c, PL_ERR_FORMAT, "*args must be a list or tuple");
        npos += star.u.l->n;
    }
    if (call->d) {
        if (dstar.t != JT_DICT) return rt_err(r, call->d, PL_ERR_FORMAT, "**kwargs must be a dict");
        nkw += dstar.u.d->n;
    }
    jv *pos = npos ? rt_alloc_n(r, npos, sizeof(jv)) : NULL;
    jv *kwv = nkw ? rt_alloc_n(r, nkw, sizeof(jv)) : NULL;
    tstr *kwn = nkw ? rt_alloc_n(r, nkw, sizeof(tstr)) : NULL;
    if ((npos && !pos) || (nkw && (!kwv || !kwn))) return false;
    for (uint32_t i = 0; i < call->n; i++)
        if (!ev(r, call->list[i], f, &pos[i])) return false;
    if (call->c)
        for (size_t i = 0; i < star.u.l->n; i++) pos[call->n + i] = star.u.l->v[i];
    for (uint32_t i = 0; i < call->n2; i++) {
        kwn[i] = call->names[i];
        if (!ev(r, call->list2[i], f, &kwv[i])) return false;
    }
    if (call->d)
        for (size_t i = 0; i < dstar.u.d->n; i++) {
            if (dstar.u.d->k[i].t != JT_STR) return rt_err(r, call->d, PL_ERR_FORMAT, "keywords must be strings");
            kwn[call->n2 + i] = dstar.u.d->k[i].u.s;
            kwv[call->n2 + i] = dstar.u.d->v[i];
        }
    *c = (tcall){ .pos = pos, .npos = npos, .kwn = kwn, .kwv = kwv, .nkw = nkw };
    return true;
}

static bool call_value(rt *r, const node *at, const jv *fn, const tcall *c, jv *out) {
    r->at = at;
    switch ((jt)fn->t) {
    case JT_FUNC: return tmpl_call_global(r, fn->id, c, out);
    case JT_METHOD: return tmpl_call_method(r, fn->u.bm->id, &fn->u.bm->self, c, out);
    case JT_MACRO: return tmpl_call_macro(r, fn, c, out);
    case JT_UNDEF: return rt_undef_err(r, at, fn);
    default: return rt_err(r, at, PL_ERR_FORMAT, "'%s' object is not callable", jv_type_name(fn));
    }
}

static bool ev_call(rt *r, const node *e, frame *f, jv *out) {
    jv fn, self;
    int method = -1;
    const node *callee = e->a;
    if (callee->kind == E_ATTR) { /* obj.method(...) without a bound-method allocation */
        if (!ev(r, callee->a, f, &self)) return false;
        if (self.t == JT_UNDEF) return rt_undef_err(r, callee, &self);
        method = tmpl_method_find(&self, callee->val.u.s);
        if (method < 0 && !tmpl_getattr(r, &self, callee->val.u.s, &fn)) return false;
    } else if (!ev(r, callee, f, &fn)) {
        return false;
    }
    tcall c;
    if (!eval_args(r, e, f, &c)) return false;
    if (!rt_step(r, 1)) return false;
    if (method >= 0) {
        r->at = e;
        return tmpl_call_method(r, method, &self, &c, out);
    }
    return call_value(r, e, &fn, &c, out);
}

static bool to_index(rt *r, const node *at, const jv *v, bool *present, int64_t *out) {
    *present = false;
    if (!v || v->t == JT_NONE || v->t == JT_UNDEF) return true;
    if (v->t == JT_INT || v->t == JT_BOOL) {
        *present = true;
        *out = v->t == JT_BOOL ? v->u.b : v->u.i;
        return true;
    }
    return rt_err(r, at, PL_ERR_FORMAT, "slice indices must be integers or None");
}

/* Python slice bounds for a sequence of length len. */
static bool slice_bounds(rt *r, const node *e, frame *f, int64_t len, int64_t *start, int64_t *step,
                         int64_t *count) {
    jv vb = jv_none(), vc = jv_none(), vd = jv_none();
    if ((e->b && !ev(r, e->b, f, &vb)) || (e->c && !ev(r, e->c, f, &vc)) || (e->d && !ev(r, e->d, f, &vd)))
        return false;
    bool hs, he, hp;
    int64_t s = 0, t = 0, p = 1;
    if (!to_index(r, e->b, &vb, &hs, &s) || !to_index(r, e->c, &vc, &he, &t) || !to_index(r, e->d, &vd, &hp, &p))
        return false;
    if (!hp) p = 1;
    if (p == 0) return rt_err(r, e, PL_ERR_FORMAT, "slice step cannot be zero");
    if (p == INT64_MIN) p = -INT64_MAX;
    if (p > 0) {
        if (!hs) s = 0;
        else if (s < 0) { s = s < -len ? 0 : s + len; }
        else if (s > len) s = len;
        if (!he) t = len;
        else if (t < 0) { t = t < -len ? 0 : t + len; }
        else if (t > len) t = len;
        *count = t > s ? (t - s - 1) / p + 1 : 0;
    } else {
        if (!hs) s = len - 1;
        else if (s < 0) { s = s < -len ? -1 : s + len; }
        else if (s >= len) s = len - 1;
        if (!he) t = -1;
        else if (t < 0) { t = t < -len ? -1 : t + len; }
        else if (t >= len) t = len - 1;
        *count = s > t ? (s - t - 1) / (-p) + 1 : 0;
    }
    *start = s;
    *step = p;
    return true;
}

static bool ev_slice(rt *r, const node *e, frame *f, jv *out) {
    jv obj;
    if (!ev(r, e->a, f, &obj)) return false;
    if (obj.t == JT_UNDEF) return rt_undef_err(r, e, &obj);
    int64_t start, step, count;
    if (obj.t == JT_LIST && !jv_is_gen(&obj)) {
        const jlist *l = obj.u.l;
        if (!slice_bounds(r, e, f, (int64_t)l->n, &start, &step, &count)) return false;
        jlist *nl = jl_new(r, (size_t)count);
        if (!nl) return false;
        for (int64_t i = 0; i < count; i++) nl->v[i] = l->v[start + i * step];
        *out = (jv){ .t = JT_LIST, .flags = obj.flags, .u.l = nl };
        return true;
    }
    if (obj.t == JT_STR) {
        tstr s = obj.u.s;
        size_t cps = u8_len(s.p, s.n);
        if (!slice_bounds(r, e, f, (int64_t)cps, &start, &step, &count)) return false;
        if (cps == s.n) { /* ASCII */
            if (step == 1) { *out = jv_str(s.p + start, (size_t)count); return true; }
            char *d = rt_alloc(r, (size_t)count + 1);
            if (!d) return false;
            for (int64_t i = 0; i < count; i++) d[i] = s.p[start + i * step];
            *out = jv_str(d, (size_t)count);
            return true;
        }
        size_t *offs = rt_alloc_n(r, cps + 1, sizeof(size_t));
        if (!offs) return false;
        for (size_t i = 0, k = 0; k <= cps; k++) {
            offs[k] = i;
            i = u8_next(s.p, s.n, i);
        }
        if (step == 1) {
            *out = jv_str(s.p + offs[start], offs[start + count] - offs[start]);
            return true;
        }
        char *d = rt_alloc(r, s.n + 1);
        if (!d) return false;
        size_t k = 0;
        for (int64_t i = 0; i < count; i++) {
            size_t a = offs[start + i * step], b = offs[start + i * step + 1];
            memcpy(d + k, s.p + a, b - a);
            k += b - a;
        }
        *out = jv_str(d, k);
        return true;
    }
    /* slices bypass jinja's forgiving getitem: anything else is a TypeError */
    return rt_err(r, e, PL_ERR_FORMAT, "'%s' object is not subscriptable", jv_type_name(&obj));
}

static bool arith_err(rt *r, const node *at, const char *op, const jv *a, const jv *b) {
    if (a->t == JT_UNDEF) return rt_undef_err(r, at, a);
    if (b->t == JT_UNDEF) return rt_undef_err(r, at, b);
    return rt_err(r, at, PL_ERR_FORMAT, "unsupported operand type(s) for %s: '%s' and '%s'", op,
                  jv_type_name(a), jv_type_name(b));
}

static double num_f(const jv *v) { return v->t == JT_FLOAT ? v->u.f : (double)(v->t == JT_BOOL ? v->u.b : v->u.i); }
static int64_t num_i(const jv *v) { return v->t == JT_BOOL ? v->u.b : v->u.i; }

static bool repeat(rt *r, const node *at, const jv *seq, int64_t times, jv *out) {
    if (times < 0) times = 0;
    if (seq->t == JT_STR) {
        size_t total;
        if (!pl_size_mul(seq->u.s.n, (size_t)times, &total) || total > r->max_mem)
            return rt_err(r, at, PL_ERR_RANGE, "string repetition too large");
        char *d = rt_alloc(r, total + 1);
        if (!d) return false;
        for (int64_t i = 0; i < times; i++) memcpy(d + (size_t)i * seq->u.s.n, seq->u.s.p, seq->u.s.n);
        *out = jv_str(d, total);
        return true;
    }
    size_t total;
    if (!pl_size_mul(seq->u.l->n, (size_t)times, &total) || total > r->max_mem / sizeof(jv))
        return rt_err(r, at, PL_ERR_RANGE, "list repetition too large");
    jlist *l = jl_new(r, total);
    if (!l) return false;
    for (int64_t i = 0; i < times && seq->u.l->n; i++) memcpy(l->v + (size_t)i * seq->u.l->n, seq->u.l->v, seq->u.l->n * sizeof(jv));
    *out = (jv){ .t = JT_LIST, .flags = seq->flags, .u.l = l };
    return true;
}

bool tmpl_binop(rt *r, const node *at, int op, const jv *a, const jv *b, jv *out) {
    bool nums = jv_is_num(a) && jv_is_num(b), flt = nums && (a->t == JT_FLOAT || b->t == JT_FLOAT);
    int64_t x = nums ? num_i(a) : 0, y = nums ? num_i(b) : 0, z;
    switch (op) {
    case OP_ADD:
        if (nums) {
            if (flt) { *out = jv_float(num_f(a) + num_f(b)); return true; }
            if (__builtin_add_overflow(x, y, &z)) return rt_err(r, at, PL_ERR_RANGE, "integer overflow");
            *out = jv_int(z);
            return true;
        }
        if (a->t == JT_STR && b->t == JT_STR) {
            size_t n;
            if (!pl_size_add(a->u.s.n, b->u.s.n, &n)) return rt_err(r, at, PL_ERR_RANGE, "string too large");
            char *d = rt_alloc(r, n + 1);
            if (!d) return false;
            memcpy(d, a->u.s.p, a->u.s.n);
            memcpy(d + a->u.s.n, b->u.s.p, b->u.s.n);
            *out = jv_str(d, n);
            return true;
        }
        if (a->t == JT_LIST && b->t == JT_LIST && a->flags == b->flags && !jv_is_gen(a)) {
            jlist *l = jl_new(r, a->u.l->n + b->u.l->n);
            if (!l) return false;
            if (a->u.l->n) memcpy(l->v, a->u.l->v, a->u.l->n * sizeof(jv));
            if (b->u.l->n) memcpy(l->v + a->u.l->n, b->u.l->v, b->u.l->n * sizeof(jv));
            *out = (jv){ .t = JT_LIST, .flags = a->flags, .u.l = l };
            return true;
        }
        return arith_err(r, at, "+", a, b);
    case OP_SUB:
        if (!nums) return arith_err(r, at, "-", a, b);
        if (flt) { *out = jv_float(num_f(a) - num_f(b)); return true; }
        if (__builtin_sub_overflow(x, y, &z)) return rt_err(r, at, PL_ERR_RANGE, "integer overflow");
        *out = jv_int(z);
        return true;
    case OP_MUL:
        if (nums) {
            if (flt) { *out = jv_float(num_f(a) * num_f(b)); return true; }
            if (__builtin_mul_overflow(x, y, &z)) return rt_err(r, at, PL_ERR_RANGE, "integer overflow");
            *out = jv_int(z);
            return true;
        }
        if ((a->t == JT_STR || (a->t == JT_LIST && !jv_is_gen(a))) && (b->t == JT_INT || b->t == JT_BOOL))
            return repeat(r, at, a, num_i(b), out);
        if ((b->t == JT_STR || (b->t == JT_LIST && !jv_is_gen(b))) && (a->t == JT_INT || a->t == JT_BOOL))
            return repeat(r, at, b, num_i(a), out);
        return arith_err(r, at, "*", a, b);
    case OP_DIV:
        if (!nums) return arith_err(r, at, "/", a, b);
        if (num_f(b) == 0) return rt_err(r, at, PL_ERR_FORMAT, "division by zero");
        *out = jv_float(num_f(a) / num_f(b));
        return true;
    case OP_FLOORDIV:
    case OP_MOD:
        if (!nums) {
            if (op == OP_MOD && a->t == JT_STR) { /* printf-style formatting */
                if (b->t == JT_LIST && (b->flags & LIST_TUPLE))
                    return tmpl_percent_format(r, a->u.s, b->u.l->v, b->u.l->n, false, out);
                /* a non-tuple with __getitem__ (list, dict, Undefined) may go unused */
                bool mapping = (b->t == JT_LIST && !jv_is_gen(b)) || b->t == JT_DICT || b->t == JT_UNDEF;
                return tmpl_percent_format(r, a->u.s, b, 1, mapping, out);
            }
            return arith_err(r, at, op == OP_MOD ? "%" : "//", a, b);
        }
        if (flt) { /* CPython's float_divmod */
            double p = num_f(a), q = num_f(b);
            if (q == 0) return rt_err(r, at, PL_ERR_FORMAT, "float division by zero");
            double m = fmod(p, q), d = (p - m) / q, fd;
            if (m != 0) {
                if ((q < 0) != (m < 0)) { m += q; d -= 1.0; }
            } else {
                m = copysign(0.0, q);
            }
            if (d != 0) {
                fd = floor(d);
                if (d - fd > 0.5) fd += 1.0;
            } else {
                fd = copysign(0.0, p / q);
            }
            *out = jv_float(op == OP_MOD ? m : fd);
            return true;
        }
        if (y == 0) return rt_err(r, at, PL_ERR_FORMAT, "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) {
            if (op == OP_MOD) { *out = jv_int(0); return true; }
            return rt_err(r, at, PL_ERR_RANGE, "integer overflow");
        }
        {
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) { m += y; q -= 1; }
            *out = jv_int(op == OP_MOD ? m : q);
        }
        return true;
    case OP_POW:
        if (!nums) return arith_err(r, at, "**", a, b);
        if (flt || y < 0) {
            if (num_f(a) == 0 && num_f(b) < 0) return rt_err(r, at, PL_ERR_FORMAT, "zero to a negative power");
            *out = jv_float(pow(num_f(a), num_f(b)));
            return true;
        }
        {
            int64_t acc = 1, base = x;
            for (int64_t e = y; e > 0; e >>= 1) {
                if ((e & 1) && __builtin_mul_overflow(acc, base, &acc)) return rt_err(r, at, PL_ERR_RANGE, "integer overflow");
                if (e > 1 && __builtin_mul_overflow(base, base, &base)) return rt_err(r, at, PL_ERR_RANGE, "integer overflow");
            }
            *out = jv_int(acc);
        }
        return true;
    }
    return rt_err(r, at, PL_ERR_INTERNAL, "bad operator");
}

/* Left spine of a + chain, evaluated left to right; strings are joined with
 * one allocation, anything else falls back to pairwise addition. */
static bool ev_add(rt *r, const node *e, frame *f, jv *out) {
    const node *spine[16]; /* longer chains recurse through ev() */
    size_t k = 0;
    const node *x = e;
    while (x->kind == E_BIN && x->op == OP_ADD && k < 16) {
        spine[k++] = x;
        x = x->a;
    }
    jv acc;
    if (!ev(r, x, f, &acc)) return false;
    /* spine[k-1] is the innermost: its b is the second operand */
    size_t i = k;
    while (i > 0) {
        if (acc.t == JT_STR) {
            jv parts[16];
            size_t np = 0, total = acc.u.s.n;
            size_t j = i;
            while (j > 0) {
                jv v;
                if (!ev(r, spine[j - 1]->b, f, &v)) return false;
                if (v.t != JT_STR) {
                    /* flush what we have, then let tmpl_binop report or handle it */
                    jv joined;
                    if (np) {
                        char *d = rt_alloc(r, total + 1);
                        if (!d) return false;
                        memcpy(d, acc.u.s.p, acc.u.s.n);
                        size_t o = acc.u.s.n;
                        for (size_t q = 0; q < np; q++) { memcpy(d + o, parts[q].u.s.p, parts[q].u.s.n); o += parts[q].u.s.n; }
                        joined = jv_str(d, total);
                    } else {
                        joined = acc;
                    }
                    if (!tmpl_binop(r, spine[j - 1], OP_ADD, &joined, &v, &acc)) return false;
                    j--;
                    np = 0;
                    break;
                }
                if (!pl_size_add(total, v.u.s.n, &total)) return rt_err(r, e, PL_ERR_RANGE, "string too large");
                parts[np++] = v;
                j--;
            }
            if (np) {
                char *d = rt_alloc(r, total + 1);
                if (!d) return false;
                memcpy(d, acc.u.s.p, acc.u.s.n);
                size_t o = acc.u.s.n;
                for (size_t q = 0; q < np; q++) { memcpy(d + o, parts[q].u.s.p, parts[q].u.s.n); o += parts[q].u.s.n; }
                acc = jv_str(d, total);
            }
            i = j;
        } else {
            jv v;
            if (!ev(r, spine[i - 1]->b, f, &v)) return false;
            if (!tmpl_binop(r, spine[i - 1], OP_ADD, &acc, &v, &acc)) return false;
            i--;
        }
    }
    *out = acc;
    return true;
}

static bool ev_concat(rt *r, const node *e, frame *f, jv *out) {
    jv *parts = rt_alloc_n(r, e->n, sizeof(jv));
    if (!parts) return false;
    size_t total = 0;
    for (uint32_t i = 0; i < e->n; i++) {
        jv v;
        if (!ev(r, e->list[i], f, &v) || !jv_to_str(r, &v, &parts[i])) return false;
        if (!pl_size_add(total, parts[i].u.s.n, &total)) return rt_err(r, e, PL_ERR_RANGE, "string too large");
    }
    char *d = rt_alloc(r, total + 1);
    if (!d) return false;
    size_t o = 0;
    for (uint32_t i = 0; i < e->n; i++) {
        memcpy(d + o, parts[i].u.s.p, parts[i].u.s.n);
        o += parts[i].u.s.n;
    }
    *out = jv_str(d, total);
    return true;
}

bool tmpl_contains(rt *r, const node *at, const jv *hay, const jv *needle, bool *out) {
    *out = false;
    switch ((jt)hay->t) {
    case JT_STR:
        if (needle->t == JT_UNDEF) return rt_undef_err(r, at, needle);
        if (needle->t != JT_STR)
            return rt_err(r, at, PL_ERR_FORMAT, "'in <string>' requires string as left operand, not %s",
                          jv_type_name(needle));
        if (!rt_step(r, hay->u.s.n / 1024)) return false;
        *out = needle->u.s.n == 0 ||
               (needle->u.s.n <= hay->u.s.n && memmem(hay->u.s.p, hay->u.s.n, needle->u.s.p, needle->u.s.n));
        return true;
    case JT_LIST:
    case JT_DICT: {
        if (hay->t == JT_LIST && hay->u.l->err) return rt_err(r, at, PL_ERR_FORMAT, "%s", hay->u.l->err);
        if (hay->t == JT_DICT && ((needle->t == JT_LIST && !(needle->flags & (LIST_TUPLE | LIST_GEN))) || needle->t == JT_DICT))
            return rt_err(r, at, PL_ERR_FORMAT, "unhashable type: '%s'", jv_type_name(needle));
        size_t start = hay->t == JT_LIST ? hay->u.l->pos : 0;
        const jv *items = hay->t == JT_LIST ? hay->u.l->v : hay->u.d->k;
        size_t n = hay->t == JT_LIST ? hay->u.l->n : hay->u.d->n;
        if (!rt_step(r, n)) return false;
        for (size_t i = start; i < n; i++) {
            bool eq;
            if (!jv_eq(r, &items[i], needle, &eq)) return false;
            if (eq) {
                if (jv_is_gen(hay)) hay->u.l->pos = i + 1; /* `in` consumes a generator up to the match */
                *out = true;
                return true;
            }
        }
        if (jv_is_gen(hay)) hay->u.l->pos = n;
        return true;
    }
    case JT_UNDEF: return true; /* iterating an undefined yields nothing */
    default:
        return rt_err(r, at, PL_ERR_FORMAT, "argument of type '%s' is not iterable", jv_type_name(hay));
    }
}

static bool ev_cmp(rt *r, const node *e, frame *f, jv *out) {
    jv left;
    if (!ev(r, e->a, f, &left)) return false;
    for (uint32_t i = 0; i < e->n; i++) {
        jv right;
        if (!ev(r, e->list[i], f, &right)) return false;
        bool res = false;
        int c;
        switch (e->ops[i]) {
        case OP_EQ:
        case OP_NE:
            if (!jv_eq(r, &left, &right, &res)) return false;
            if (e->ops[i] == OP_NE) res = !res;
            break;
        case OP_IN:
        case OP_NOTIN:
            if (!tmpl_contains(r, e, &right, &left, &res)) return false;
            if (e->ops[i] == OP_NOTIN) res = !res;
            break;
        default:
            r->at = e;
            if (!jv_cmp(r, &left, &right, &c)) return false;
            res = e->ops[i] == OP_LT ? c < 0 : e->ops[i] == OP_LE ? c <= 0 : e->ops[i] == OP_GT ? c > 0 : c >= 0;
            /* NaN: every ordering is false */
            if ((left.t == JT_FLOAT && isnan(left.u.f)) || (right.t == JT_FLOAT && isnan(right.u.f))) res = false;
            break;
        }
        if (!res) { *out = jv_bool(false); return true; }
        left = right;
    }
    *out = jv_bool(true);
    return true;
}

static bool dict_key_ok(rt *r, const node *at, const jv *k) {
    if (k->t == JT_LIST && !(k->flags & LIST_TUPLE)) return rt_err(r, at, PL_ERR_FORMAT, "unhashable type: 'list'");
    if (k->t == JT_DICT) return rt_err(r, at, PL_ERR_FORMAT, "unhashable type: 'dict'");
    if (k->t == JT_UNDEF) return rt_undef_err(r, at, k);
    return true;
}

static bool ev_inner(rt *r, const node *e, frame *f, jv *out) {
    switch ((nk)e->kind) {
    case E_CONST: *out = e->val; return true;
    case E_NAME:
        if (!lookup(r, f, e->sym, out)) *out = (jv){ .t = JT_UNDEF, .u.s = e->val.u.s };
        return true;
    case E_LIST:
    case E_TUPLE: {
        jlist *l = jl_new(r, e->n);
        if (!l) return false;
        for (uint32_t i = 0; i < e->n; i++)
            if (!ev(r, e->list[i], f, &l->v[i])) return false;
        *out = (jv){ .t = JT_LIST, .flags = e->kind == E_TUPLE ? LIST_TUPLE : 0, .u.l = l };
        return true;
    }
    case E_DICT: {
        jdict *d = jd_new(r, e->n);
        if (!d) return false;
        for (uint32_t i = 0; i < e->n; i++) {
            jv k, v, old;
            bool found;
            if (!ev(r, e->list[i], f, &k) || !dict_key_ok(r, e->list[i], &k) || !ev(r, e->list2[i], f, &v)) return false;
            if (!jd_get(r, d, &k, &old, &found)) return false;
            if (found) {
                for (size_t j = 0; j < d->n; j++) {
                    bool eq;
                    if (!jv_eq(r, &d->k[j], &k, &eq)) return false;
                    if (eq) { d->v[j] = v; break; }
                }
                continue;
            }
            d->k[d->n] = k;
            d->v[d->n] = v;
            d->n++;
        }
        *out = (jv){ .t = JT_DICT, .u.d = d };
        return true;
    }
    case E_ATTR: {
        jv obj;
        if (!ev(r, e->a, f, &obj)) return false;
        if (obj.t == JT_UNDEF) return rt_undef_err(r, e, &obj);
        r->at = e;
        return tmpl_getattr(r, &obj, e->val.u.s, out);
    }
    case E_ITEM: {
        jv obj, key;
        if (!ev(r, e->a, f, &obj) || !ev(r, e->b, f, &key)) return false;
        if (obj.t == JT_UNDEF) return rt_undef_err(r, e, &obj);
        r->at = e;
        return tmpl_getitem(r, &obj, &key, out);
    }
    case E_SLICE: return ev_slice(r, e, f, out);
    case E_CALL: return ev_call(r, e, f, out);
    case E_FILTER: {
        jv v;
        tcall c;
        if (!ev(r, e->a, f, &v) || !eval_args(r, e, f, &c)) return false;
        r->at = e;
        return tmpl_call_filter(r, e->op, &v, &c, out);
    }
    case E_TEST: {
        jv v;
        tcall c;
        bool res;
        if (!ev(r, e->a, f, &v) || !eval_args(r, e, f, &c)) return false;
        r->at = e;
        if (!tmpl_call_test(r, e->op, &v, &c, &res)) return false;
        *out = jv_bool(e->flags ? !res : res);
        return true;
    }
    case E_UNARY: {
        jv v;
        if (!ev(r, e->a, f, &v)) return false;
        if (e->op == OP_NOT) { *out = jv_bool(!jv_truthy(&v)); return true; }
        if (v.t == JT_UNDEF) return rt_undef_err(r, e, &v);
        if (!jv_is_num(&v))
            return rt_err(r, e, PL_ERR_FORMAT, "bad operand type for unary %s: '%s'", e->op == OP_NEG ? "-" : "+",
                          jv_type_name(&v));
        if (e->op == OP_POS) { *out = v.t == JT_BOOL ? jv_int(v.u.b) : v; return true; }
        if (v.t == JT_FLOAT) { *out = jv_float(-v.u.f); return true; }
        int64_t i = num_i(&v);
        if (i == INT64_MIN) return rt_err(r, e, PL_ERR_RANGE, "integer overflow");
        *out = jv_int(-i);
        return true;
    }
    case E_BIN: {
        if (e->op == OP_AND || e->op == OP_OR) {
            jv a;
            if (!ev(r, e->a, f, &a)) return false;
            bool t = jv_truthy(&a);
            if ((e->op == OP_AND && !t) || (e->op == OP_OR && t)) { *out = a; return true; }
            return ev(r, e->b, f, out);
        }
        if (e->op == OP_ADD) return ev_add(r, e, f, out);
        jv a, b;
        if (!ev(r, e->a, f, &a) || !ev(r, e->b, f, &b)) return false;
        return tmpl_binop(r, e, e->op, &a, &b, out);
    }
    case E_CONCAT: return ev_concat(r, e, f, out);
    case E_CMP: return ev_cmp(r, e, f, out);
    case E_COND: {
        jv c;
        if (!ev(r, e->a, f, &c)) return false;
        if (jv_truthy(&c)) return ev(r, e->b, f, out);
        if (e->c) return ev(r, e->c, f, out);
        *out = jv_undef();
        return true;
    }
    default: break;
    }
    return rt_err(r, e, PL_ERR_INTERNAL, "not an expression");
}

static bool ev(rt *r, const node *e, frame *f, jv *out) {
    if (!enter(r, e)) return false;
    bool ok = ev_inner(r, e, f, out);
    r->depth--;
    if (ok) return true;
    /* attach the innermost position to errors raised without one */
    if (r->line == 0) {
        r->line = e->line;
        r->col = e->col;
    }
    return false;
}

/* ---- macros ---- */

static bool call_macro_with(rt *r, const jv *mv, const tcall *c, const jv *caller, jv *out) {
    const jmacro *m = mv->u.m;
    const node *def = m->def;
    const node *at = r->at;
    const pl_template *t = r->t;
    tstr name = def->kind == S_MACRO ? def->val.u.s : TSTR_LIT("caller");
    if (!rt_step(r, 1)) return false;
    if (!enter(r, at)) return false;
    frame *f = tmpl_frame_new(r, m->closure);
    if (!f) return false;
    uint32_t np = def->nnames;
    bool *set = np ? rt_alloc_n(r, np, sizeof(bool)) : NULL;
    if (np && !set) return false;
    if (np) memset(set, 0, np * sizeof(bool));
    size_t extra = c->npos > np ? c->npos - np : 0;
    if (extra && !(def->flags & MACRO_VARARGS))
        return rt_err(r, at, PL_ERR_FORMAT, "macro '%.*s' takes not more than %u argument(s)", (int)name.n, name.p, np);
    jlist *va = jl_new(r, extra);
    jdict *kw = jd_new(r, c->nkw);
    if (!va || !kw) return false;
    for (size_t i = 0; i < c->npos; i++) {
        if (i < np) {
            if (!tmpl_frame_set(r, f, def->syms[i], c->pos[i])) return false;
            set[i] = true;
        } else {
            va->v[i - np] = c->pos[i];
        }
    }
    for (size_t k = 0; k < c->nkw; k++) {
        uint32_t i;
        for (i = 0; i < np; i++)
            if (tstr_eq(def->names[i], c->kwn[k])) break;
        if (i < np) {
            if (set[i])
                return rt_err(r, at, PL_ERR_FORMAT, "macro '%.*s' got multiple values for argument '%.*s'",
                              (int)name.n, name.p, (int)c->kwn[k].n, c->kwn[k].p);
            if (!tmpl_frame_set(r, f, def->syms[i], c->kwv[k])) return false;
            set[i] = true;
        } else if (def->flags & MACRO_KWARGS) {
            kw->k[kw->n] = jv_str(c->kwn[k].p, c->kwn[k].n);
            kw->v[kw->n++] = c->kwv[k];
        } else {
            return rt_err(r, at, PL_ERR_FORMAT, "macro '%.*s' takes no keyword argument '%.*s'", (int)name.n,
                          name.p, (int)c->kwn[k].n, c->kwn[k].p);
        }
    }
    for (uint32_t i = 0; i < np; i++) {
        if (set[i]) continue;
        jv v = (jv){ .t = JT_UNDEF, .u.s = def->names[i] };
        if (def->list2[i] && !ev(r, def->list2[i], f, &v)) return false;
        if (!tmpl_frame_set(r, f, def->syms[i], v)) return false;
    }
    if (!tmpl_frame_set(r, f, t->sym_varargs, (jv){ .t = JT_LIST, .flags = LIST_TUPLE, .u.l = va }) ||
        !tmpl_frame_set(r, f, t->sym_kwargs, (jv){ .t = JT_DICT, .u.d = kw }))
        return false;
    if (caller && !tmpl_frame_set(r, f, t->sym_caller, *caller)) return false;
    int saved_ctl = r->loop_ctl;
    bool ok = capture(r, def->list, def->n, f, out);
    r->loop_ctl = saved_ctl;
    r->depth--;
    return ok;
}

bool tmpl_call_macro(rt *r, const jv *m, const tcall *c, jv *out) {
    return call_macro_with(r, m, c, m->u.m->caller, out);
}

/* ---- statements ---- */

static bool unpack(rt *r, const node *at, frame *f, const node *s, const jv *v) {
    if (!(s->flags)) return tmpl_frame_set(r, f, s->syms[0], *v);
    const jv *items;
    size_t n;
    if (v->t == JT_UNDEF) return rt_undef_err(r, at, v);
    if (!jv_iter(r, v, &items, &n)) return false;
    if (n != s->nnames)
        return rt_err(r, at, PL_ERR_FORMAT, "%s values to unpack (expected %u, got %zu)",
                      n < s->nnames ? "not enough" : "too many", s->nnames, n);
    for (uint32_t i = 0; i < s->nnames; i++)
        if (!tmpl_frame_set(r, f, s->syms[i], items[i])) return false;
    return true;
}

static bool ex_for(rt *r, const node *s, frame *f) {
    jv it;
    if (!ev(r, s->a, f, &it)) return false;
    const jv *items;
    size_t n;
    r->at = s->a;
    if (!jv_iter(r, &it, &items, &n)) return false;
    frame *lf = tmpl_frame_new(r, f);
    if (!lf) return false;
    if (s->b) { /* `for x in y if cond`: filter first, so loop.* count kept items */
        jv *kept = n ? rt_alloc_n(r, n, sizeof(jv)) : NULL;
        if (n && !kept) return false;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            jv c;
            if (!rt_step(r, 1)) return false;
            lf->n = 0;
            if (!unpack(r, s, lf, s, &items[i]) || !ev(r, s->b, lf, &c)) return false;
            if (jv_truthy(&c)) kept[k++] = items[i];
        }
        items = kept;
        n = k;
    }
    jloop *lp = rt_alloc(r, sizeof *lp);
    if (!lp) return false;
    /* loop.depth counts recursive loop() calls, which are unsupported: always 1 */
    *lp = (jloop){ .items = items, .n = n, .i = 0, .depth0 = 0 };
    for (size_t i = 0; i < n; i++) {
        if (!rt_step(r, 1)) return false;
        lf->n = 0;
        lp->i = i;
        if (!unpack(r, s, lf, s, &items[i])) return false;
        if (!tmpl_frame_set(r, lf, r->t->sym_loop, (jv){ .t = JT_LOOP, .u.loop = lp })) return false;
        if (!tmpl_exec(r, s->list, s->n, lf)) return false;
        if (r->loop_ctl == 1) { r->loop_ctl = 0; break; }
        r->loop_ctl = 0;
    }
    if (n == 0 && s->n2) return tmpl_exec(r, s->list2, s->n2, f);
    return true;
}

static bool ex_stmt(rt *r, const node *s, frame *f) {
    switch ((nk)s->kind) {
    case S_DATA: return out_write(r, s->val.u.s.p, s->val.u.s.n);
    case S_OUT: {
        jv v;
        return ev(r, s->a, f, &v) && out_value(r, &v);
    }
    case S_IF: {
        jv c;
        if (!ev(r, s->a, f, &c)) return false;
        if (jv_truthy(&c)) return tmpl_exec(r, s->list, s->n, f);
        return tmpl_exec(r, s->list2, s->n2, f);
    }
    case S_FOR: return ex_for(r, s, f);
    case S_SET: {
        jv v;
        return ev(r, s->a, f, &v) && unpack(r, s, f, s, &v);
    }
    case S_SET_NS: {
        jv ns, v;
        if (!lookup(r, f, s->sym, &ns) || ns.t != JT_NS)
            return rt_err(r, s, PL_ERR_FORMAT, "cannot assign attribute on non-namespace object");
        return ev(r, s->a, f, &v) && jns_set(r, ns.u.ns, s->val.u.s, v);
    }
    case S_SETBLOCK: {
        jv v;
        return capture(r, s->list, s->n, f, &v) && tmpl_frame_set(r, f, s->sym, v);
    }
    case S_MACRO: {
        jmacro *m = rt_alloc(r, sizeof *m);
        if (!m) return false;
        *m = (jmacro){ .def = s, .closure = f };
        return tmpl_frame_set(r, f, s->sym, (jv){ .t = JT_MACRO, .u.m = m });
    }
    case S_CALLBLOCK: {
        jmacro *cm = rt_alloc(r, sizeof *cm);
        jv *callerv = rt_alloc(r, sizeof *callerv);
        if (!cm || !callerv) return false;
        *cm = (jmacro){ .def = s, .closure = f, .is_caller = true };
        *callerv = (jv){ .t = JT_MACRO, .u.m = cm };
        const node *call = s->a;
        jv fn, res;
        tcall c;
        if (!ev(r, call->a, f, &fn) || !eval_args(r, call, f, &c)) return false;
        if (fn.t != JT_MACRO) {
            if (fn.t == JT_UNDEF) return rt_undef_err(r, call, &fn);
            return rt_err(r, call, PL_ERR_FORMAT, "{%% call %%} needs a macro, not '%s'", jv_type_name(&fn));
        }
        r->at = call;
        return call_macro_with(r, &fn, &c, callerv, &res) && out_value(r, &res);
    }
    case S_FILTERBLOCK: {
        jv v;
        if (!capture(r, s->list, s->n, f, &v)) return false;
        for (uint32_t i = 0; i < s->n2; i++) {
            tcall c;
            if (!eval_args(r, s->list2[i], f, &c)) return false;
            r->at = s->list2[i];
            if (!tmpl_call_filter(r, s->list2[i]->op, &v, &c, &v)) return false;
        }
        return out_value(r, &v);
    }
    case S_BREAK: r->loop_ctl = 1; return true;
    case S_CONTINUE: r->loop_ctl = 2; return true;
    case S_WITH: {
        frame *wf = tmpl_frame_new(r, f);
        if (!wf) return false;
        for (uint32_t i = 0; i < s->nnames; i++) {
            jv v;
            if (!ev(r, s->list2[i], f, &v) || !tmpl_frame_set(r, wf, s->syms[i], v)) return false;
        }
        return tmpl_exec(r, s->list, s->n, wf);
    }
    case S_BLOCK: return tmpl_exec(r, s->list, s->n, f);
    default: break;
    }
    return rt_err(r, s, PL_ERR_INTERNAL, "not a statement");
}

bool tmpl_exec(rt *r, node *const *body, uint32_t n, frame *f) {
    for (uint32_t i = 0; i < n; i++) {
        const node *s = body[i];
        if (!enter(r, s)) return false;
        bool ok = ex_stmt(r, s, f);
        r->depth--;
        if (!ok) {
            if (r->line == 0) {
                r->line = s->line;
                r->col = s->col;
            }
            return false;
        }
        if (r->loop_ctl) return true;
    }
    return true;
}
