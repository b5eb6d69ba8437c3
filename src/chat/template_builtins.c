/*
 * template_builtins.c - tests, global functions, dict/list/loop methods and
 * attribute/item access, each a row in a table, with jinja2 / Python
 * semantics (see the jinja2 "List of Builtin Tests" and "List of Global
 * Functions" docs). Filters are in template_filters.c, str methods in
 * template_strings.c.
 *
 * Conventions: a builtin gets the receiver (`self`: the tested value, the
 * method's object) and the call's arguments as written; tmpl_bind() maps them
 * onto named parameters like a Python signature would.
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "template_int.h"

/* ---- argument binding ---- */

bool tmpl_bind(rt *r, const char *fname, const tcall *c, const char *const *params, size_t np, jv *vals,
                 bool *has) {
    for (size_t i = 0; i < np; i++) {
        has[i] = false;
        vals[i] = jv_undef();
    }
    if (c->npos > np)
        return rt_err(r, NULL, PL_ERR_FORMAT, "%s() takes at most %zu argument(s) (%zu given)", fname, np, c->npos);
    for (size_t i = 0; i < c->npos; i++) {
        vals[i] = c->pos[i];
        has[i] = true;
    }
    for (size_t k = 0; k < c->nkw; k++) {
        size_t i;
        for (i = 0; i < np; i++)
            if (tstr_eqc(c->kwn[k], params[i])) break;
        if (i == np)
            return rt_err(r, NULL, PL_ERR_FORMAT, "%s() got an unexpected keyword argument '%.*s'", fname,
                          (int)c->kwn[k].n, c->kwn[k].p);
        if (has[i])
            return rt_err(r, NULL, PL_ERR_FORMAT, "%s() got multiple values for argument '%s'", fname, params[i]);
        vals[i] = c->kwv[k];
        has[i] = true;
    }
    return true;
}

/* A string with each code point mapped. mode: 0 lower, 1 upper, 2 capitalize,
 * 3 title filter, 4 str.title(), 5 swapcase */
bool tmpl_map_case(rt *r, tstr s, int mode, jv *out) {
    char *d = rt_alloc(r, s.n * 2 + 1); /* case mapping never more than doubles UTF-8 length here */
    if (!d) return false;
    size_t k = 0;
    bool prev_cased = false, at_start = true;
    for (size_t i = 0; i < s.n;) {
        size_t adv;
        uint32_t c = u8_decode(s.p + i, s.n - i, &adv), m = c;
        if (adv == 1 && c >= 0x80) { /* invalid byte: copy */
            d[k++] = s.p[i++];
            continue;
        }
        switch (mode) {
        case 0: m = py_lower(c); break;
        case 1: m = py_upper(c); break;
        case 2: m = i == 0 ? py_upper(c) : py_lower(c); break;
        case 3: {
            bool sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py_space_at(s.p + i, s.n - i);
            m = at_start ? py_upper(c) : py_lower(c);
            at_start = sep;
            break;
        }
        case 4: {
            bool cased = py_isalpha(c);
            m = cased ? (prev_cased ? py_lower(c) : py_upper(c)) : c;
            prev_cased = cased;
            break;
        }
        case 5: m = py_upper(c) != c ? py_upper(c) : py_lower(c); break;
        }
        k += u8_encode(m, d + k);
        i += adv;
    }
    *out = jv_str(d, k);
    return true;
}

/* ---- tests ---- */

static bool t_arg(rt *r, const char *name, const tcall *c, jv *arg) {
    if (c->npos != 1 || c->nkw) return rt_err(r, NULL, PL_ERR_FORMAT, "test '%s' takes one argument", name);
    *arg = c->pos[0];
    return true;
}

typedef enum tid {
    T_DEFINED, T_UNDEFINED, T_NONE, T_STRING, T_NUMBER, T_INTEGER, T_FLOAT, T_BOOLEAN, T_TRUE, T_FALSE,
    T_MAPPING, T_SEQUENCE, T_ITERABLE, T_CALLABLE, T_EVEN, T_ODD, T_DIVISIBLEBY, T_SAMEAS, T_EQ, T_NE,
    T_LT, T_LE, T_GT, T_GE, T_IN, T_LOWER, T_UPPER, T_ESCAPED, T_FILTER, T_TEST
} tid;

static const struct { const char *name; uint8_t id; } tests[] = {
    { "defined", T_DEFINED },   { "undefined", T_UNDEFINED }, { "none", T_NONE },
    { "string", T_STRING },     { "number", T_NUMBER },       { "integer", T_INTEGER },
    { "float", T_FLOAT },       { "boolean", T_BOOLEAN },     { "true", T_TRUE },
    { "false", T_FALSE },       { "mapping", T_MAPPING },     { "sequence", T_SEQUENCE },
    { "iterable", T_ITERABLE }, { "callable", T_CALLABLE },   { "even", T_EVEN },
    { "odd", T_ODD },           { "divisibleby", T_DIVISIBLEBY }, { "sameas", T_SAMEAS },
    { "eq", T_EQ },             { "equalto", T_EQ },          { "==", T_EQ },
    { "ne", T_NE },             { "!=", T_NE },               { "lt", T_LT },
    { "lessthan", T_LT },       { "<", T_LT },                { "le", T_LE },
    { "<=", T_LE },             { "gt", T_GT },               { "greaterthan", T_GT },
    { ">", T_GT },              { "ge", T_GE },               { ">=", T_GE },
    { "in", T_IN },             { "lower", T_LOWER },         { "upper", T_UPPER },
    { "escaped", T_ESCAPED },   { "filter", T_FILTER },       { "test", T_TEST },
};
enum { N_TESTS = sizeof tests / sizeof tests[0] };

static bool num_mod(rt *r, const jv *v, int64_t m, int64_t *out) {
    if (v->t == JT_INT || v->t == JT_BOOL) {
        int64_t x = v->t == JT_BOOL ? v->u.b : v->u.i;
        if (m == 0) return rt_err(r, NULL, PL_ERR_FORMAT, "integer division or modulo by zero");
        if (m == -1) { *out = 0; return true; }
        int64_t k = x % m;
        if (k != 0 && ((k < 0) != (m < 0))) k += m;
        *out = k;
        return true;
    }
    if (v->t == JT_FLOAT) { /* value % m == 0 / == 1 with Python's float modulo */
        if (m == 0) return rt_err(r, NULL, PL_ERR_FORMAT, "float modulo");
        double k = fmod(v->u.f, (double)m);
        if (k != 0 && ((k < 0) != (m < 0))) k += (double)m;
        *out = k == 0 ? 0 : k == 1 ? 1 : 2;
        return true;
    }
    if (v->t == JT_STR) { /* str % int is formatting; the result never equals 0 or 1 */
        jv arg = jv_int(m), res;
        if (!tmpl_percent_format(r, v->u.s, &arg, 1, false, &res)) return false;
        *out = 2;
        return true;
    }
    if (v->t == JT_UNDEF) return rt_undef_err(r, NULL, v);
    return rt_err(r, NULL, PL_ERR_FORMAT, "unsupported operand type(s) for %%: '%s' and 'int'", jv_type_name(v));
}

static bool case_test(const jv *v, bool upper) {
    if (v->t != JT_STR) return false;
    bool cased = false;
    for (size_t i = 0; i < v->u.s.n;) {
        size_t adv;
        uint32_t ch = u8_decode(v->u.s.p + i, v->u.s.n - i, &adv);
        if (py_upper(ch) != ch || py_lower(ch) != ch) {
            cased = true;
            if (upper ? py_upper(ch) != ch : py_lower(ch) != ch) return false;
        }
        i += adv;
    }
    return cased;
}

bool tmpl_call_test(rt *r, int id, const jv *v, const tcall *c, bool *out) {
    if (id < 0 || id >= N_TESTS) return rt_err(r, NULL, PL_ERR_INTERNAL, "bad test id");
    tid t = (tid)tests[id].id;
    jv arg;
    int cmp;
    int64_t m;
    bool needs_arg = t == T_DIVISIBLEBY || t == T_SAMEAS || (t >= T_EQ && t <= T_IN);
    if (needs_arg) {
        if (!t_arg(r, tests[id].name, c, &arg)) return false;
    } else if (c->npos || c->nkw) {
        return rt_err(r, NULL, PL_ERR_FORMAT, "test '%s' takes no arguments", tests[id].name);
    }
    switch (t) {
    case T_DEFINED: *out = v->t != JT_UNDEF; return true;
    case T_UNDEFINED: *out = v->t == JT_UNDEF; return true;
    case T_NONE: *out = v->t == JT_NONE; return true;
    case T_STRING: *out = v->t == JT_STR; return true;
    case T_NUMBER: *out = jv_is_num(v); return true;
    case T_INTEGER: *out = v->t == JT_INT; return true;
    case T_FLOAT: *out = v->t == JT_FLOAT; return true;
    case T_BOOLEAN: *out = v->t == JT_BOOL; return true;
    case T_TRUE: *out = v->t == JT_BOOL && v->u.b; return true;
    case T_FALSE: *out = v->t == JT_BOOL && !v->u.b; return true;
    case T_MAPPING: *out = v->t == JT_DICT; return true;
    case T_SEQUENCE: *out = v->t == JT_STR || (v->t == JT_LIST && !jv_is_gen(v)) || v->t == JT_DICT || v->t == JT_UNDEF; return true;
    case T_ITERABLE: *out = v->t == JT_STR || v->t == JT_LIST || v->t == JT_DICT || v->t == JT_UNDEF; return true;
    case T_CALLABLE: *out = v->t == JT_MACRO || v->t == JT_FUNC || v->t == JT_METHOD; return true;
    case T_EVEN:
    case T_ODD:
        if (!num_mod(r, v, 2, &m)) return false;
        *out = t == T_EVEN ? m == 0 : m == 1;
        return true;
    case T_DIVISIBLEBY: {
        int64_t d;
        if (!tmpl_want_int(r, "divisibleby", &arg, &d) || !num_mod(r, v, d, &m)) return false;
        *out = m == 0;
        return true;
    }
    case T_SAMEAS:
        if (v->t != arg.t) { *out = false; return true; }
        switch ((jt)v->t) {
        case JT_NONE:
        case JT_UNDEF: *out = v->t == JT_NONE; return true;
        case JT_BOOL: *out = v->u.b == arg.u.b; return true;
        case JT_INT: *out = v->u.i == arg.u.i && v->u.i >= -5 && v->u.i <= 256; return true; /* CPython small ints */
        case JT_LIST: *out = v->u.l == arg.u.l; return true;
        case JT_DICT: *out = v->u.d == arg.u.d; return true;
        case JT_NS: *out = v->u.ns == arg.u.ns; return true;
        case JT_STR: *out = v->u.s.p == arg.u.s.p && v->u.s.n == arg.u.s.n; return true;
        default: *out = false; return true;
        }
    case T_EQ:
    case T_NE:
        if (!jv_eq(r, v, &arg, out)) return false;
        if (t == T_NE) *out = !*out;
        return true;
    case T_LT:
    case T_LE:
    case T_GT:
    case T_GE:
        if (!jv_cmp(r, v, &arg, &cmp)) return false;
        *out = t == T_LT ? cmp < 0 : t == T_LE ? cmp <= 0 : t == T_GT ? cmp > 0 : cmp >= 0;
        return true;
    case T_IN: return tmpl_contains(r, NULL, &arg, v, out);
    case T_LOWER:
    case T_UPPER: { /* str(value).islower() / .isupper() */
        jv s;
        if (!jv_to_str(r, v, &s)) return false;
        *out = case_test(&s, t == T_UPPER);
        return true;
    }
    case T_ESCAPED: *out = false; return true;
    case T_FILTER: *out = v->t == JT_STR && tmpl_filter_find(v->u.s) >= 0; return true;
    case T_TEST: *out = v->t == JT_STR && tmpl_test_find(v->u.s) >= 0; return true;
    }
    return rt_err(r, NULL, PL_ERR_INTERNAL, "bad test");
}

int tmpl_test_find(tstr name) {
    for (int i = 0; i < N_TESTS; i++)
        if (tstr_eqc(name, tests[i].name)) return i;
    return -1;
}

/* ---- global functions ---- */

static bool g_range(rt *r, const jv *self, const tcall *c, jv *out) {
    (void)self;
    if (c->nkw || c->npos < 1 || c->npos > 3) return rt_err(r, NULL, PL_ERR_FORMAT, "range expected 1 to 3 arguments");
    int64_t v[3] = { 0, 0, 1 };
    for (size_t i = 0; i < c->npos; i++)
        if (!tmpl_want_int(r, "range", &c->pos[i], &v[i])) return false;
    int64_t start = c->npos == 1 ? 0 : v[0], stop = c->npos == 1 ? v[0] : v[1], step = c->npos == 3 ? v[2] : 1;
    if (step == 0) return rt_err(r, NULL, PL_ERR_FORMAT, "range() arg 3 must not be zero");
    uint64_t n = 0;
    if (step > 0 && stop > start) n = ((uint64_t)stop - (uint64_t)start - 1) / (uint64_t)step + 1;
    if (step < 0 && start > stop) n = ((uint64_t)start - (uint64_t)stop - 1) / (0 - (uint64_t)step) + 1;
    if (n > r->max_steps || n > r->max_mem / sizeof(jv))
        return rt_err(r, NULL, PL_ERR_RANGE, "range() too large (%" PRIu64 " items)", n);
    if (!rt_step(r, n)) return false;
    jlist *l = jl_new(r, (size_t)n);
    if (!l) return false;
    for (uint64_t i = 0; i < n; i++) l->v[i] = jv_int((int64_t)((uint64_t)start + i * (uint64_t)step));
    *out = jv_list(l, false);
    return true;
}

/* dict(**kw) / dict(mapping, **kw) and namespace(...) share the init rule */
static bool init_pairs(rt *r, const tcall *c, const char *fname, jdict **out) {
    if (c->npos > 1) return rt_err(r, NULL, PL_ERR_FORMAT, "%s expected at most 1 positional argument", fname);
    size_t base = 0;
    const jv *m = c->npos ? &c->pos[0] : NULL;
    if (m && m->t != JT_DICT) {
        if (m->t != JT_LIST) return rt_err(r, NULL, PL_ERR_FORMAT, "%s: cannot convert '%s' to a mapping", fname, jv_type_name(m));
        base = m->u.l->n;
    } else if (m) {
        base = m->u.d->n;
    }
    jdict *d = jd_new(r, base + c->nkw);
    if (!d) return false;
    if (m && m->t == JT_DICT) {
        memcpy(d->k, m->u.d->k, base * sizeof(jv));
        memcpy(d->v, m->u.d->v, base * sizeof(jv));
        d->n = base;
    } else if (m) {
        for (size_t i = 0; i < base; i++) {
            const jv *p = &m->u.l->v[i];
            if (p->t != JT_LIST || p->u.l->n != 2)
                return rt_err(r, NULL, PL_ERR_FORMAT, "%s: sequence elements must be pairs", fname);
            bool dup = false;
            for (size_t j = 0; j < d->n && !dup; j++) {
                if (!jv_eq(r, &d->k[j], &p->u.l->v[0], &dup)) return false;
                if (dup) d->v[j] = p->u.l->v[1];
            }
            if (!dup) { d->k[d->n] = p->u.l->v[0]; d->v[d->n++] = p->u.l->v[1]; }
        }
    }
    for (size_t k = 0; k < c->nkw; k++) {
        jv key = jv_str(c->kwn[k].p, c->kwn[k].n);
        size_t j;
        for (j = 0; j < d->n; j++)
            if (d->k[j].t == JT_STR && tstr_eq(d->k[j].u.s, c->kwn[k])) break;
        if (j < d->n) d->v[j] = c->kwv[k];
        else { d->k[d->n] = key; d->v[d->n++] = c->kwv[k]; }
    }
    *out = d;
    return true;
}

static bool g_dict(rt *r, const jv *self, const tcall *c, jv *out) {
    (void)self;
    jdict *d;
    if (!init_pairs(r, c, "dict", &d)) return false;
    *out = (jv){ .t = JT_DICT, .u.d = d };
    return true;
}

static bool g_namespace(rt *r, const jv *self, const tcall *c, jv *out) {
    (void)self;
    jdict *d;
    if (!init_pairs(r, c, "namespace", &d)) return false;
    jns *ns = rt_alloc(r, sizeof *ns);
    if (!ns) return false;
    memset(ns, 0, sizeof *ns);
    for (size_t i = 0; i < d->n; i++) {
        if (d->k[i].t != JT_STR) return rt_err(r, NULL, PL_ERR_FORMAT, "namespace: keys must be strings");
        if (!jns_set(r, ns, d->k[i].u.s, d->v[i])) return false;
    }
    *out = (jv){ .t = JT_NS, .u.ns = ns };
    return true;
}

static bool g_raise(rt *r, const jv *self, const tcall *c, jv *out) {
    (void)self;
    (void)out;
    jv msg = jv_str("", 0);
    if (c->npos >= 1 && !jv_to_str(r, &c->pos[0], &msg)) return false;
    if (r->st != PL_OK) return false;
    r->raised = true;
    return rt_err(r, NULL, PL_ERR_INVALID_ARG, "%.*s", (int)(msg.u.s.n > 300 ? 300 : msg.u.s.n), msg.u.s.p);
}

/* strftime with only the conversions glibc documents, one at a time, so a
 * hostile format cannot reach undefined behaviour. */
static bool g_strftime_now(rt *r, const jv *self, const tcall *c, jv *out) {
    (void)self;
    TMPL_BIND("strftime_now", "format");
    tstr fmt;
    if (!tmpl_want_str(r, "strftime_now", &a[0], &fmt)) return false;
    const pl_template_params *p = r->p;
    if (p->now) {
        *out = jv_str(p->now, strlen(p->now));
        return true;
    }
    time_t now = p->clock ? (time_t)p->clock(p->clock_ud) : time(NULL);
    struct tm tmv;
    if (!localtime_r(&now, &tmv)) return rt_err(r, NULL, PL_ERR_RANGE, "strftime_now: time out of range");
    sbuf b;
    sb_init(&b, r);
    for (size_t i = 0; i < fmt.n; i++) {
        if (fmt.p[i] != '%' || i + 1 >= fmt.n) { sb_putc(&b, fmt.p[i]); continue; }
        char conv = fmt.p[++i];
        if (!conv || !strchr("aAbBcCdDeFgGhHIjklmMnprRsStTuUVwWxXyYzZ%", conv)) {
            sb_putc(&b, '%');
            sb_putc(&b, conv);
            continue;
        }
        char spec[3] = { '%', conv, 0 }, res[128];
        size_t n = strftime(res, sizeof res, spec, &tmv);
        sb_put(&b, res, n);
    }
    *out = sb_value(&b);
    return b.ok;
}

static const tmpl_builtin globals[] = {
    { "range", g_range },
    { "dict", g_dict },
    { "namespace", g_namespace },
    { "raise_exception", g_raise },
    { "strftime_now", g_strftime_now },
};
enum { N_GLOBALS = sizeof globals / sizeof globals[0] };

int tmpl_global_find(tstr name) {
    for (int i = 0; i < N_GLOBALS; i++)
        if (tstr_eqc(name, globals[i].name)) return i;
    return -1;
}

const char *tmpl_global_name(int id) { return id >= 0 && id < N_GLOBALS ? globals[id].name : "?"; }

bool tmpl_call_global(rt *r, int id, const tcall *c, jv *out) {
    if (id < 0 || id >= N_GLOBALS) return rt_err(r, NULL, PL_ERR_INTERNAL, "bad global id");
    return globals[id].fn(r, NULL, c, out);
}

/* ---- methods of dicts, lists and the loop object (strings: template_strings.c) ---- */

static bool m_items(rt *r, const jv *self, const tcall *c, jv *out) { /* a view: has len, true iff non-empty */
    if (!tmpl_no_args(r, "items", c)) return false;
    jlist *l = jl_new(r, self->u.d->n);
    if (!l) return false;
    for (size_t i = 0; i < self->u.d->n; i++)
        if ((l->v[i] = tmpl_pair(r, self->u.d->k[i], self->u.d->v[i])).t == JT_UNDEF) return false;
    *out = jv_list(l, false);
    return true;
}

static bool m_keys(rt *r, const jv *self, const tcall *c, jv *out) {
    if (!tmpl_no_args(r, "keys", c)) return false;
    jlist *l = jl_new(r, self->u.d->n);
    if (!l) return false;
    if (l->n) memcpy(l->v, self->u.d->k, l->n * sizeof(jv));
    *out = jv_list(l, false);
    return true;
}

static bool m_values(rt *r, const jv *self, const tcall *c, jv *out) {
    if (!tmpl_no_args(r, "values", c)) return false;
    jlist *l = jl_new(r, self->u.d->n);
    if (!l) return false;
    if (l->n) memcpy(l->v, self->u.d->v, l->n * sizeof(jv));
    *out = jv_list(l, false);
    return true;
}

static bool m_get(rt *r, const jv *self, const tcall *c, jv *out) {
    TMPL_BIND("get", "key", "default");
    if (!h[0]) return rt_err(r, NULL, PL_ERR_FORMAT, "get expected at least 1 argument");
    bool found;
    if (!jd_get(r, self->u.d, &a[0], out, &found)) return false;
    if (!found) *out = h[1] ? a[1] : jv_none();
    return true;
}

static bool m_list_count(rt *r, const jv *self, const tcall *c, jv *out) {
    TMPL_BIND("count", "value");
    int64_t k = 0;
    if (!rt_step(r, self->u.l->n)) return false;
    for (size_t i = 0; i < self->u.l->n; i++) {
        bool eq;
        if (!jv_eq(r, &self->u.l->v[i], &a[0], &eq)) return false;
        k += eq;
    }
    *out = jv_int(k);
    return true;
}

static bool m_list_index(rt *r, const jv *self, const tcall *c, jv *out) {
    TMPL_BIND("index", "value");
    if (!rt_step(r, self->u.l->n)) return false;
    for (size_t i = 0; i < self->u.l->n; i++) {
        bool eq;
        if (!jv_eq(r, &self->u.l->v[i], &a[0], &eq)) return false;
        if (eq) { *out = jv_int((int64_t)i); return true; }
    }
    return rt_err(r, NULL, PL_ERR_FORMAT, "value is not in list");
}

static bool m_cycle(rt *r, const jv *self, const tcall *c, jv *out) {
    if (c->nkw || c->npos == 0) return rt_err(r, NULL, PL_ERR_FORMAT, "no items for cycling given");
    *out = c->pos[self->u.loop->i % c->npos];
    return true;
}

/* name -> receiver type; string methods dispatch by name in template_strings.c */
static const struct { const char *name; uint8_t type; tmpl_fn fn; } methods[] = {
    { "items", JT_DICT, m_items },
    { "keys", JT_DICT, m_keys },
    { "values", JT_DICT, m_values },
    { "get", JT_DICT, m_get },
    { "count", JT_LIST, m_list_count },
    { "index", JT_LIST, m_list_index },
    { "cycle", JT_LOOP, m_cycle },
#define S(n) { n, JT_STR, NULL }
    S("startswith"), S("endswith"), S("split"), S("rsplit"), S("splitlines"), S("strip"), S("lstrip"),
    S("rstrip"), S("upper"), S("lower"), S("title"), S("capitalize"), S("swapcase"), S("replace"),
    S("find"), S("rfind"), S("index"), S("rindex"), S("count"), S("join"), S("format"), S("isdigit"),
    S("isnumeric"), S("isdecimal"), S("isalpha"), S("isalnum"), S("isspace"), S("isupper"), S("islower"),
    S("istitle"), S("center"), S("ljust"), S("rjust"), S("zfill"), S("removeprefix"), S("removesuffix"),
    S("partition"), S("rpartition"), S("expandtabs"), S("casefold"),
#undef S
};
enum { N_METHODS = sizeof methods / sizeof methods[0] };

int tmpl_method_find(const jv *self, tstr name) {
    if (jv_is_gen(self)) return -1;
    for (int i = 0; i < N_METHODS; i++)
        if (methods[i].type == self->t && tstr_eqc(name, methods[i].name)) return i;
    return -1;
}

bool tmpl_call_method(rt *r, int id, const jv *self, const tcall *c, jv *out) {
    if (id < 0 || id >= N_METHODS || methods[id].type != self->t) return rt_err(r, NULL, PL_ERR_INTERNAL, "bad method id");
    if (!rt_step(r, 1)) return false;
    if (!methods[id].fn) return tmpl_str_method(r, (tstr){ methods[id].name, strlen(methods[id].name) }, self, c, out);
    return methods[id].fn(r, self, c, out);
}

/* ---- attribute and item access ---- */

static bool bound(rt *r, const jv *self, int id, jv *out) {
    jmethod *m = rt_alloc(r, sizeof *m);
    if (!m) return false;
    m->self = *self;
    m->id = (uint16_t)id;
    *out = (jv){ .t = JT_METHOD, .u.bm = m };
    return true;
}

static bool loop_attr(rt *r, const jloop *lp, tstr name, jv *out) {
    int64_t i = (int64_t)lp->i, n = (int64_t)lp->n;
    if (tstr_eqc(name, "index")) *out = jv_int(i + 1);
    else if (tstr_eqc(name, "index0")) *out = jv_int(i);
    else if (tstr_eqc(name, "revindex")) *out = jv_int(n - i);
    else if (tstr_eqc(name, "revindex0")) *out = jv_int(n - i - 1);
    else if (tstr_eqc(name, "first")) *out = jv_bool(i == 0);
    else if (tstr_eqc(name, "last")) *out = jv_bool(i == n - 1);
    else if (tstr_eqc(name, "length")) *out = jv_int(n);
    else if (tstr_eqc(name, "depth")) *out = jv_int(lp->depth0 + 1);
    else if (tstr_eqc(name, "depth0")) *out = jv_int(lp->depth0);
    else if (tstr_eqc(name, "previtem"))
        *out = i > 0 ? lp->items[i - 1] : (jv){ .t = JT_UNDEF, .u.s = TSTR_LIT("previtem") };
    else if (tstr_eqc(name, "nextitem"))
        *out = i + 1 < n ? lp->items[i + 1] : (jv){ .t = JT_UNDEF, .u.s = TSTR_LIT("nextitem") };
    else
        *out = (jv){ .t = JT_UNDEF, .flags = UNDEF_ATTR, .u.s = name };
    (void)r;
    return true;
}

bool tmpl_getattr(rt *r, const jv *obj, tstr name, jv *out) {
    if (obj->t == JT_UNDEF) return rt_undef_err(r, NULL, obj);
    int m = tmpl_method_find(obj, name);
    if (m >= 0) return bound(r, obj, m, out);
    switch ((jt)obj->t) {
    case JT_DICT:
        if (jd_getc(obj->u.d, name, out)) return true;
        break;
    case JT_NS:
        if (jns_get(obj->u.ns, name, out)) return true;
        break;
    case JT_LOOP: return loop_attr(r, obj->u.loop, name, out);
    default: break;
    }
    *out = (jv){ .t = JT_UNDEF, .flags = UNDEF_ATTR, .u.s = name };
    return true;
}

bool tmpl_getitem(rt *r, const jv *obj, const jv *key, jv *out) {
    if (obj->t == JT_UNDEF) return rt_undef_err(r, NULL, obj);
    if (jv_is_gen(obj)) { /* not subscriptable */
        *out = (jv){ .t = JT_UNDEF, .u.s = TSTR_LIT("item") };
        return true;
    }
    if (obj->t == JT_DICT) {
        bool found;
        if (!jd_get(r, obj->u.d, key, out, &found)) return false;
        if (found) return true;
    } else if ((obj->t == JT_LIST || obj->t == JT_STR) && (key->t == JT_INT || key->t == JT_BOOL)) {
        int64_t i = key->t == JT_BOOL ? key->u.b : key->u.i;
        if (obj->t == JT_LIST) {
            int64_t n = (int64_t)obj->u.l->n;
            if (i < 0) i += n;
            if (i >= 0 && i < n) { *out = obj->u.l->v[i]; return true; }
        } else {
            tstr s = obj->u.s;
            int64_t n = (int64_t)u8_len(s.p, s.n);
            if (i < 0) i += n;
            if (i >= 0 && i < n) {
                size_t a = u8_offset(s.p, s.n, (size_t)i);
                *out = jv_str(s.p + a, u8_next(s.p, s.n, a) - a);
                return true;
            }
        }
        *out = (jv){ .t = JT_UNDEF, .u.s = TSTR_LIT("index out of range") };
        return true;
    }
    if (key->t == JT_STR) return tmpl_getattr(r, obj, key->u.s, out);
    *out = (jv){ .t = JT_UNDEF, .u.s = TSTR_LIT("item") };
    return true;
}
