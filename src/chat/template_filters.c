/*
 * template_filters.c - the jinja2 builtin filters as a table (see the jinja2
 * "List of Builtin Filters" doc), with HF's tojson. Filters that return
 * generators in jinja (map, select, reject, selectattr, rejectattr, unique,
 * items, reverse) return LIST_GEN lists here, so truth tests, len() and
 * printing behave as in Python.
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "template_int.h"

/* attribute path "a.b.0" as jinja's make_attrgetter does it (getitem per part) */
static bool get_path(rt *r, const jv *v, tstr path, jv *out) {
    jv cur = *v;
    size_t i = 0;
    while (i <= path.n) {
        size_t j = i;
        while (j < path.n && path.p[j] != '.') j++;
        tstr part = { path.p + i, j - i };
        jv key = jv_str(part.p, part.n);
        bool digits = part.n > 0 && part.n < 18;
        for (size_t q = 0; q < part.n && digits; q++) digits = isdigit((unsigned char)part.p[q]);
        if (digits) key = jv_int(strtoll(part.p, NULL, 10));
        if (cur.t == JT_UNDEF) return rt_undef_err(r, NULL, &cur);
        if (!tmpl_getitem(r, &cur, &key, &cur)) return false;
        i = j + 1;
    }
    *out = cur;
    return true;
}

/* ---- sorting (stable merge sort on precomputed keys; comparisons may fail) ---- */

typedef struct sort_ctx {
    rt       *r;
    const jv *keys;
    bool      reverse;
    bool      failed;
} sort_ctx;

static bool key_less(sort_ctx *s, size_t a, size_t b) {
    int c;
    if (s->failed) return false;
    if (!jv_cmp(s->r, &s->keys[a], &s->keys[b], &c)) {
        s->failed = true;
        return false;
    }
    return s->reverse ? c > 0 : c < 0;
}

static void merge_sort(sort_ctx *s, size_t *idx, size_t *tmp, size_t n) {
    if (n < 2) return;
    size_t h = n / 2;
    merge_sort(s, idx, tmp, h);
    merge_sort(s, idx + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = key_less(s, idx[j], idx[i]) ? idx[j++] : idx[i++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof(size_t));
}

/* Sort key for an item: optional attribute path, lower-cased strings unless case_sensitive. */
static bool sort_key(rt *r, const jv *item, const jv *attr, bool cs, jv *out) {
    jv k = *item;
    if (attr && attr->t == JT_STR && !get_path(r, item, attr->u.s, &k)) return false;
    if (!cs && k.t == JT_STR) return tmpl_map_case(r, k.u.s, 0, out);
    *out = k;
    return true;
}

static bool sorted_index(rt *r, const jv *items, size_t n, const jv *attr, bool cs, bool reverse, size_t **out) {
    jv *keys = n ? rt_alloc_n(r, n, sizeof(jv)) : NULL;
    size_t *idx = n ? rt_alloc_n(r, n, sizeof(size_t)) : NULL, *tmp = n ? rt_alloc_n(r, n, sizeof(size_t)) : NULL;
    if (n && (!keys || !idx || !tmp)) return false;
    if (!rt_step(r, n * (64 - (uint64_t)__builtin_clzll((unsigned long long)n | 1)))) return false;
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
        if (!sort_key(r, &items[i], attr, cs, &keys[i])) return false;
    }
    sort_ctx s = { .r = r, .keys = keys, .reverse = reverse };
    merge_sort(&s, idx, tmp, n);
    if (s.failed) return false;
    *out = idx;
    return true;
}

/* ---- filters ---- */

static bool f_abs(rt *r, const jv *v, const tcall *c, jv *out) {
    if (!tmpl_no_args(r, "abs", c)) return false;
    if (v->t == JT_FLOAT) { *out = jv_float(fabs(v->u.f)); return true; }
    if (v->t == JT_INT || v->t == JT_BOOL) {
        int64_t i = v->t == JT_BOOL ? v->u.b : v->u.i;
        if (i == INT64_MIN) return rt_err(r, NULL, PL_ERR_RANGE, "integer overflow");
        *out = jv_int(i < 0 ? -i : i);
        return true;
    }
    if (v->t == JT_UNDEF) return rt_undef_err(r, NULL, v);
    return rt_err(r, NULL, PL_ERR_FORMAT, "bad operand type for abs(): '%s'", jv_type_name(v));
}

static bool f_attr(rt *r, const jv *v, const tcall *c, jv *out) {
    TMPL_BIND("attr", "name");
    tstr name;
    if (!tmpl_want_str(r, "attr", &a[0], &name)) return false;
    if (v->t == JT_UNDEF) return rt_undef_err(r, NULL, v);
    if (v->t == JT_DICT) { /* attributes only: a dict's keys are not attributes */
        int m = tmpl_method_find(v, name);
        if (m < 0) { *out = (jv){ .t = JT_UNDEF, .flags = UNDEF_ATTR, .u.s = name }; return true; }
    }
    return tmpl_getattr(r, v, name, out);
}

static bool f_capitalize(rt *r, const jv *v, const tcall *c, jv *out) {
    jv s;
    return tmpl_no_args(r, "capitalize", c) && jv_to_str(r, v, &s) && tmpl_map_case(r, s.u.s, 2, out);
}

static bool f_title(rt *r, const jv *v, const tcall *c, jv *out) {
    jv s;
    return tmpl_no_args(r, "title", c) && jv_to_str(r, v, &s) && tmpl_map_case(r, s.u.s, 3, out);
}

static bool f_lower(rt *r, const jv *v, const tcall *c, jv *out) {
    jv s;
    return tmpl_no_args(r, "lower", c) && jv_to_str(r, v, &s) && tmpl_map_case(r, s.u.s, 0, out);
}

static bool f_upper(rt *r, const jv *v, const tcall *c, jv *out) {
    jv s;
    return tmpl_no_args(r, "upper", c) && jv_to_str(r, v, &s) && tmpl_map_case(r, s.u.s, 1, out);
}

static bool len_of(rt *r, const jv *v, int64_t *n) {
    switch ((jt)v->t) {
    case JT_STR: *n = (int64_t)u8_len(v->u.s.p, v->u.s.n); return true;
    case JT_LIST:
        if (v->flags & LIST_GEN) break;
        *n = (int64_t)v->u.l->n;
        return true;
    case JT_DICT: *n = (int64_t)v->u.d->n; return true;
    case JT_UNDEF: *n = 0; return true;
    default: break;
    }
    return rt_err(r, NULL, PL_ERR_FORMAT, "object of type '%s' has no len()", jv_type_name(v));
}

static bool f_length(rt *r, const jv *v, const tcall *c, jv *out) {
    int64_t n = 0;
    if (!tmpl_no_args(r, "length", c) || !len_of(r, v, &n)) return false;
    *out = jv_int(n);
    return true;
}

static bool f_default(rt *r, const jv *v, const tcall *c, jv *out) {
    TMPL_BIND("default", "default_value", "boolean");
    jv dflt = h[0] ? a[0] : jv_str("", 0);
    bool boolean = h[1] && jv_truthy(&a[1]);
    *out = (v->t == JT_UNDEF || (boolean && !jv_truthy(v))) ? dflt : *v;
    return true;
}

static bool f_dictsort(rt *r, const jv *v, const tcall *c, jv *out) {
    TMPL_BIND("dictsort", "case_sensitive", "by", "reverse");
    if (v->t != JT_DICT) {
        if (v->t == JT_UNDEF) return rt_undef_err(r, NULL, v);
        return rt_err(r, NULL, PL_ERR_FORMAT, "dictsort: expected a mapping");
    }
    bool by_value = false;
    if (h[1]) {
        tstr by;
        if (!tmpl_want_str(r, "dictsort", &a[1], &by)) return false;
        if (tstr_eqc(by, "value")) by_value = true;
        else if (!tstr_eqc(by, "key")) return rt_err(r, NULL, PL_ERR_FORMAT, "You can only sort by either \"key\" or \"value\"");
    }
    const jdict *d = v->u.d;
    size_t *idx;
    if (!sorted_index(r, by_value ? d->v : d->k, d->n, NULL, h[0] && jv_truthy(&a[0]), h[2] && jv_truthy(&a[2]), &idx))
        return false;
    jlist *l = jl_new(r, d->n);
    if (!l) return false;
    for (size_t i = 0; i < d->n; i++)
        if ((l->v[i] = tmpl_pair(r, d->k[idx[i]], d->v[idx[i]])).t == JT_UNDEF) return false;
    *out = jv_list(l, false);
    return true;
}

static bool f_escape(rt *r, const jv *v, const tcall *c, jv *out) {
    jv s;
    if (!tmpl_no_args(r, "escape", c) || !jv_to_str(r, v, &s)) return false;
    sbuf b;
    sb_init(&b, r);
    for (size_t i = 0; i < s.u.s.n; i++) {
        char ch = s.u.s.p[i];
        switch (ch) {
        case '&': sb_puts(&b, "&amp;"); break;
        case '<': sb_puts(&b, "&lt;"); break;
        case '>': sb_puts(&b, "&gt;"); break;
        case '"': sb_puts(&b, "&#34;"); break;
        case '\'': sb_puts(&b, "&#39;"); break;
        default: sb_putc(&b, ch);
        }
    }
    *out = sb_value(&b);
    return b.ok;
}

static bool f_first(rt *r, const jv *v, const tcall *c, jv *out) {
    const jv *items;
    size_t n;
    if (!tmpl_no_args(r, "first", c)) return false;
    if (jv_is_gen(v)) { /* takes one item */
        jlist *l = v->u.l;
        if (l->err) return rt_err(r, NULL, PL_ERR_FORMAT, "%s", l->err);
        *out = l->pos < l->n ? l->v[l->pos++] : (jv){ .t = JT_UNDEF, .u.s = TSTR_LIT("first item") };
        return true;
    }
    if (!jv_iter(r, v, &items, &n)) return false;
    *out = n ? items[0] : (jv){ .t = JT_UNDEF, .u.s = TSTR_LIT("first item") };
    return true;
}

static bool f_last(rt *r, const jv *v, const tcall *c, jv *out) {
    const jv *items;
    size_t n;
    if (!tmpl_no_args(r, "last", c)) return false;
    if (jv_is_gen(v)) return rt_err(r, NULL, PL_ERR_FORMAT, "'generator' object is not reversible");
    if (!jv_iter(r, v, &items, &n)) return false;
    *out = n ? items[n - 1] : (jv){ .t = JT_UNDEF, .u.s = TSTR_LIT("last item") };
    return true;
}

/* Python float(str): optional whitespace, sign, digits with '_', inf/nan. */
static bool parse_pyfloat(tstr s, double *out) {
    s = py_strip(s, true, true, NULL);
    if (s.n == 0 || s.n > 64) return false;
    char buf[80];
    size_t k = 0;
    for (size_t i = 0; i < s.n; i++) {
        char ch = s.p[i];
        if (ch == '_') {
            if (i == 0 || i + 1 == s.n || !isdigit((unsigned char)s.p[i - 1]) || !isdigit((unsigned char)s.p[i + 1]))
                return false;
            continue;
        }
        if (ch == 'x' || ch == 'X' || ch == 'p' || ch == 'P' || (unsigned char)ch >= 0x80) return false;
        buf[k++] = ch;
    }
    buf[k] = 0;
    char *end;
    *out = strtod(buf, &end);
    return end != buf && *end == 0;
}

static bool parse_pyint(tstr s, int base, int64_t *out) {
    s = py_strip(s, true, true, NULL);
    if (s.n == 0 || s.n > 80) return false;
    size_t i = 0;
    bool neg = false;
    if (s.p[0] == '+' || s.p[0] == '-') { neg = s.p[0] == '-'; i++; }
    if (i + 1 < s.n && s.p[i] == '0' && base == 16 && (s.p[i + 1] | 32) == 'x') i += 2;
    if (i >= s.n) return false;
    uint64_t v = 0;
    for (; i < s.n; i++) {
        char ch = s.p[i];
        if (ch == '_') continue;
        int d = isdigit((unsigned char)ch) ? ch - '0' : isalpha((unsigned char)ch) ? (ch | 32) - 'a' + 10 : 99;
        if (d >= base) return false;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) return false;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    if (v > (uint64_t)INT64_MAX + (neg ? 1u : 0u)) return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static bool f_float(rt *r, const jv *v, const tcall *c, jv *out) {
    TMPL_BIND("float", "default");
    double d;
    if (v->t == JT_UNDEF) return rt_undef_err(r, NULL, v); /* float(Undefined) raises */
    if (v->t == JT_FLOAT) *out = *v;
    else if (v->t == JT_INT || v->t == JT_BOOL) *out = jv_float((double)(v->t == JT_BOOL ? v->u.b : v->u.i));
    else if (v->t == JT_STR && parse_pyfloat(v->u.s, &d)) *out = jv_float(d);
    else *out = h[0] ? a[0] : jv_float(0.0);
    return true;
}

static bool f_int(rt *r, const jv *v, const tcall *c, jv *out) {
    TMPL_BIND("int", "default", "base");
    int64_t base = 10, i;
    if (h[1] && !tmpl_want_int(r, "int", &a[1], &base)) return false;
    if (base < 2 || base > 36) base = 10;
    double d;
    if (v->t == JT_UNDEF) return rt_undef_err(r, NULL, v); /* int(Undefined) raises */
    if (v->t == JT_INT) *out = *v;
    else if (v->t == JT_BOOL) *out = jv_int(v->u.b);
    else if (v->t == JT_FLOAT && isfinite(v->u.f) && fabs(v->u.f) < 9.2e18) *out = jv_int((int64_t)v->u.f);
    else if (v->t == JT_STR && parse_pyint(v->u.s, (int)base, &i)) *out = jv_int(i);
    else if (v->t == JT_STR && parse_pyfloat(v->u.s, &d) && isfinite(d) && fabs(d) < 9.2e18) *out = jv_int((int64_t)d);
    else *out = h[0] ? a[0] : jv_int(0);
    return true;
}

/* jinja's generator filters fail only when iterated: an empty generator that
 * raises `msg` then. */
static bool lazy_fail(rt *r, const char *msg, jv *out) {
    jlist *l = jl_new(r, 0);
    if (!l) return false;
    l->err = msg;
    *out = jv_gen(l);
    return true;
}

static bool iterable(const jv *v) { return v->t == JT_STR || v->t == JT_LIST || v->t == JT_DICT || v->t == JT_UNDEF; }

/* map/select/reject iterate `if value:` first, so falsy input yields nothing */
static bool gen_input(rt *r, const jv *v, bool skip_falsy, const jv **items, size_t *n, jv *failed, bool *done) {
    *done = false;
    if ((skip_falsy && !jv_truthy(v)) || !iterable(v)) {
        *done = true;
        if (skip_falsy && !jv_truthy(v)) {
            jlist *l = jl_new(r, 0);
            *failed = l ? jv_gen(l) : jv_undef();
            return l != NULL;
        }
        return lazy_fail(r, v->t == JT_NONE ? "'NoneType' object is not iterable"
                            : v->t == JT_BOOL ? "'bool' object is not iterable"
                            : v->t == JT_INT ? "'int' object is not iterable"
                            : v->t == JT_FLOAT ? "'float' object is not iterable"
                                               : "object is not iterable", failed);
    }
    if (jv_is_gen(v) && v->u.l->err) {
        *done = true;
        *failed = *v;
        return true;
    }
    return jv_iter(r, v, items, n) && rt_step(r, *n);
}

static bool f_items(rt *r, const jv *v, const tcall *c, jv *out) {
    if (!tmpl_no_args(r, "items", c)) return false;
    if (v->t == JT_UNDEF) { *out = jv_gen(jl_new(r, 0)); return out->u.l != NULL; }
    if (v->t != JT_DICT) return lazy_fail(r, "Can only get item pairs from a mapping.", out);
    jlist *l = jl_new(r, v->u.d->n);
    if (!l) return false;
    for (size_t i = 0; i < v->u.d->n; i++)
        if ((l->v[i] = tmpl_pair(r, v->u.d->k[i], v->u.d->v[i])).t == JT_UNDEF) return false;
    *out = jv_gen(l);
    return true;
}

static bool f_join(rt *r, const jv *v, const tcall *c, jv *out) {
    TMPL_BIND("join", "d", "attribute");
    tstr sep = { "", 0 };
    if (h[0] && !tmpl_want_str(r, "join", &a[0], &sep)) return false;
    const jv *items;
    size_t n;
    if (!jv_iter(r, v, &items, &n) || !rt_step(r, n)) return false;
    sbuf b;
    sb_init(&b, r);
    for (size_t i = 0; i < n; i++) {
        jv item = items[i];
        if (h[1] && a[1].t == JT_STR && !get_path(r, &items[i], a[1].u.s, &item)) return false;
        if (i) sb_put(&b, sep.p, sep.n);
        if (item.t != JT_UNDEF && !jv_write(r, &b, &item, false)) return false;
    }
    *out = sb_value(&b);
    return b.ok;
}

static bool f_list(rt *r, const jv *v, const tcall *c, jv *out) {
    const jv *items;
    size_t n;
    if (!tmpl_no_args(r, "list", c) || !jv_iter(r, v, &items, &n)) return false;
    jlist *l = jl_new(r, n);
    if (!l) return false;
    if (n) memcpy(l->v, items, n * sizeof(jv));
    *out = jv_list(l, false);
    return true;
}

static bool map_eager(rt *r, const jv *v, const tcall *c, jv *out) {
    const jv *items = NULL;
    size_t n = 0;
    bool done;
    if (!gen_input(r, v, true, &items, &n, out, &done)) return false;
    if (done) return true;
    jlist *l = jl_new(r, n);
    if (!l) return false;
    jv attr = jv_undef(), dflt = jv_undef();
    bool has_attr = false, has_dflt = false;
    for (size_t k = 0; k < c->nkw; k++) {
        if (tstr_eqc(c->kwn[k], "attribute")) { attr = c->kwv[k]; has_attr = true; }
        else if (tstr_eqc(c->kwn[k], "default")) { dflt = c->kwv[k]; has_dflt = true; }
    }
    if (has_attr) {
        if (c->npos || c->nkw != 1u + has_dflt) return rt_err(r, NULL, PL_ERR_FORMAT, "map: unexpected arguments");
        tstr path;
        if (!tmpl_want_str(r, "map", &attr, &path)) return false;
        for (size_t i = 0; i < n; i++) {
            if (!get_path(r, &items[i], path, &l->v[i])) return false;
            if (has_dflt && l->v[i].t == JT_UNDEF) l->v[i] = dflt;
        }
    } else {
        if (c->npos == 0) return rt_err(r, NULL, PL_ERR_FORMAT, "map requires a filter argument");
        tstr name;
        if (!tmpl_want_str(r, "map", &c->pos[0], &name)) return false;
        int id = tmpl_filter_find(name);
        if (id < 0) return rt_err(r, NULL, PL_ERR_FORMAT, "no filter named '%.*s'", (int)name.n, name.p);
        tcall rest = { .pos = c->pos + 1, .npos = c->npos - 1, .kwn = c->kwn, .kwv = c->kwv, .nkw = c->nkw };
        for (size_t i = 0; i < n; i++)
            if (!tmpl_call_filter(r, id, &items[i], &rest, &l->v[i])) return false;
    }
    *out = jv_gen(l);
    return true;
}

static bool minmax(rt *r, const jv *v, const tcall *c, jv *out, bool want_max) {
    TMPL_BIND(want_max ? "max" : "min", "case_sensitive", "attribute");
    const jv *items;
    size_t n;
    if (!jv_iter(r, v, &items, &n) || !rt_step(r, n)) return false;
    if (n == 0) { *out = (jv){ .t = JT_UNDEF, .u.s = TSTR_LIT("min/max of an empty sequence") }; return true; }
    bool cs = h[0] && jv_truthy(&a[0]);
    size_t best = 0;
    jv bk;
    if (!sort_key(r, &items[0], h[1] ? &a[1] : NULL, cs, &bk)) return false;
    for (size_t i = 1; i < n; i++) {
        jv k;
        int cmp;
        if (!sort_key(r, &items[i], h[1] ? &a[1] : NULL, cs, &k) || !jv_cmp(r, &k, &bk, &cmp)) return false;
        if (want_max ? cmp > 0 : cmp < 0) { best = i; bk = k; }
    }
    *out = items[best];
    return true;
}
static bool f_max(rt *r, const jv *v, const tcall *c, jv *out) { return minmax(r, v, c, out, true); }
static bool f_min(rt *r, const jv *v, const tcall *c, jv *out) { return minmax(r, v, c, out, false); }

/* select/reject(test, *args), selectattr/rejectattr(attr, test, *args) */
static bool select_eager(rt *r, const jv *v, const tcall *c, jv *out, bool attr, bool keep) {
    const jv *items = NULL;
    size_t n = 0;
    bool done;
    if (!gen_input(r, v, true, &items, &n, out, &done)) return false;
    if (done) return true;
    size_t ai = 0;
    tstr path = { 0 };
    if (attr) {
        if (c->npos < 1) return rt_err(r, NULL, PL_ERR_FORMAT, "selectattr/rejectattr need an attribute");
        if (!tmpl_want_str(r, "selectattr", &c->pos[0], &path)) return false;
        ai = 1;
    }
    int test = -1;
    if (c->npos > ai) {
        tstr tn;
        if (!tmpl_want_str(r, "select", &c->pos[ai], &tn)) return false;
        test = tmpl_test_find(tn);
        if (test < 0) return rt_err(r, NULL, PL_ERR_FORMAT, "no test named '%.*s'", (int)tn.n, tn.p);
    }
    tcall rest = { .pos = c->npos > ai + 1 ? c->pos + ai + 1 : NULL, .npos = c->npos > ai + 1 ? c->npos - ai - 1 : 0,
                   .kwn = c->kwn, .kwv = c->kwv, .nkw = c->nkw };
    jlist *l = jl_new(r, n);
    if (!l) return false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        jv x = items[i];
        if (attr && !get_path(r, &items[i], path, &x)) return false;
        bool res;
        if (test >= 0) {
            if (!tmpl_call_test(r, test, &x, &rest, &res)) return false;
        } else {
            res = jv_truthy(&x);
        }
        if (res == keep) l->v[k++] = items[i];
    }
    l->n = k;
    *out = jv_gen(l);
    return true;
}
/* The generator filters run eagerly here; a type error they hit becomes the
 * error the generator raises when iterated, as with jinja's lazy generators
 * (so `x | map(...)` that is never iterated never fails). Limits still fail. */
static bool deferred(rt *r, bool ok, jv *out) {
    if (ok) return true;
    if (r->st != PL_ERR_FORMAT || r->raised) return false;
    char msg[TMPL_ERR_CAP];
    snprintf(msg, sizeof msg, "%s", r->msg);
    r->st = PL_OK;
    r->line = r->col = 0;
    r->msg[0] = 0;
    char *m = rt_strdup(r, msg, strlen(msg));
    return m && lazy_fail(r, m, out);
}

static bool f_map(rt *r, const jv *v, const tcall *c, jv *out) { return deferred(r, map_eager(r, v, c, out), out); }
static bool select_common(rt *r, const jv *v, const tcall *c, jv *out, bool attr, bool keep) {
    return deferred(r, select_eager(r, v, c, out, attr, keep), out);
}

static bool f_select(rt *r, const jv *v, const tcall *c, jv *out) { return select_common(r, v, c, out, false, true); }
static bool f_reject(rt *r, const jv *v, const tcall *c, jv *out) { return select_common(r, v, c, out, false, false); }
static bool f_selectattr(rt *r, const jv *v, const tcall *c, jv *out) { return select_common(r, v, c, out, true, true); }
static bool f_rejectattr(rt *r, const jv *v, const tcall *c, jv *out) { return select_common(r, v, c, out, true, false); }

static bool f_replace(rt *r, const jv *v, const tcall *c, jv *out) {
    TMPL_BIND("replace", "old", "new", "count");
    jv s;
    if (!h[0] || !h[1]) return rt_err(r, NULL, PL_ERR_FORMAT, "replace() needs old and new");
    if (!jv_to_str(r, v, &s)) return false;
    tcall mc = { .pos = a, .npos = h[2] ? 3 : 2 };
    return tmpl_str_method(r, TSTR_LIT("replace"), &s, &mc, out);
}

static bool f_reverse(rt *r, const jv *v, const tcall *c, jv *out) {
    if (!tmpl_no_args(r, "reverse", c)) return false;
    const jv *items;
    size_t n;
    if (v->t == JT_STR) {
        tstr s = v->u.s;
        char *d = rt_alloc(r, s.n + 1);
        if (!d) return false;
        size_t k = s.n;
        for (size_t i = 0; i < s.n;) {
            size_t j = u8_next(s.p, s.n, i);
            k -= j - i;
            memcpy(d + k, s.p + i, j - i);
            i = j;
        }
        *out = jv_str(d, s.n);
        return true;
    }
    if (!jv_iter(r, v, &items, &n)) return false;
    jlist *l = jl_new(r, n);
    if (!l) return false;
    for (size_t i = 0; i < n; i++) l->v[i] = items[n - 1 - i];
    *out = jv_gen(l);
    return true;
}

static bool f_round(rt *r, const jv *v, const tcall *c, jv *out) {
    TMPL_BIND("round", "precision", "method");
    int64_t prec = 0;
    if (h[0] && !tmpl_want_int(r, "round", &a[0], &prec)) return false;
    tstr method = TSTR_LIT("common");
    if (h[1] && !tmpl_want_str(r, "round", &a[1], &method)) return false;
    if (!tstr_eqc(method, "common") && !tstr_eqc(method, "ceil") && !tstr_eqc(method, "floor"))
        return rt_err(r, NULL, PL_ERR_FORMAT, "method must be common, ceil or floor");
    if (!jv_is_num(v)) {
        if (v->t == JT_UNDEF) return rt_undef_err(r, NULL, v);
        return rt_err(r, NULL, PL_ERR_FORMAT, "round: expected a number, got '%s'", jv_type_name(v));
    }
    if (prec < -300) prec = -300;
    if (prec > 300) prec = 300;
    if (tstr_eqc(method, "common")) {
        if (v->t != JT_FLOAT) { *out = jv_int(v->t == JT_BOOL ? v->u.b : v->u.i); return true; } /* round(int) is int */
        double x = v->u.f;
        if (!isfinite(x)) { *out = *v; return true; }
        if (prec >= 0) {
            char buf[400];
            snprintf(buf, sizeof buf, "%.*f", (int)(prec > 60 ? 60 : prec), x); /* exact decimal, half-even ties */
            *out = jv_float(strtod(buf, NULL));
        } else {
            double p = pow(10.0, (double)-prec);
            *out = jv_float(nearbyint(x / p) * p);
        }
        return true;
    }
    double p = pow(10.0, (double)prec), x = v->t == JT_FLOAT ? v->u.f : (double)(v->t == JT_BOOL ? v->u.b : v->u.i);
    *out = jv_float((tstr_eqc(method, "ceil") ? ceil(x * p) : floor(x * p)) / p);
    return true;
}

static bool f_safe(rt *r, const jv *v, const tcall *c, jv *out) {
    return tmpl_no_args(r, "safe", c) && jv_to_str(r, v, out);
}

static bool f_string(rt *r, const jv *v, const tcall *c, jv *out) {
    return tmpl_no_args(r, "string", c) && jv_to_str(r, v, out);
}

static bool f_pprint(rt *r, const jv *v, const tcall *c, jv *out) {
    if (!tmpl_no_args(r, "pprint", c)) return false;
    sbuf b;
    sb_init(&b, r);
    if (!jv_write(r, &b, v, true)) return false;
    *out = sb_value(&b);
    return b.ok;
}

static bool f_sort(rt *r, const jv *v, const tcall *c, jv *out) {
    TMPL_BIND("sort", "reverse", "case_sensitive", "attribute");
    const jv *items;
    size_t n, *idx;
    if (!jv_iter(r, v, &items, &n)) return false;
    if (!sorted_index(r, items, n, h[2] ? &a[2] : NULL, h[1] && jv_truthy(&a[1]), h[0] && jv_truthy(&a[0]), &idx))
        return false;
    jlist *l = jl_new(r, n);
    if (!l) return false;
    for (size_t i = 0; i < n; i++) l->v[i] = items[idx[i]];
    *out = jv_list(l, false);
    return true;
}

static bool f_sum(rt *r, const jv *v, const tcall *c, jv *out) {
    TMPL_BIND("sum", "attribute", "start");
    const jv *items;
    size_t n;
    if (!jv_iter(r, v, &items, &n) || !rt_step(r, n)) return false;
    jv acc = h[1] ? a[1] : jv_int(0);
    for (size_t i = 0; i < n; i++) {
        jv x = items[i];
        if (h[0] && a[0].t == JT_STR && !get_path(r, &items[i], a[0].u.s, &x)) return false;
        if (!tmpl_binop(r, NULL, OP_ADD, &acc, &x, &acc)) return false;
    }
    *out = acc;
    return true;
}

/* HF's tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) */
static bool f_tojson(rt *r, const jv *v, const tcall *c, jv *out) {
    TMPL_BIND("tojson", "ensure_ascii", "indent", "separators", "sort_keys");
    json_opts o = { .item_sep = TSTR_LIT(", "), .key_sep = TSTR_LIT(": "), .ensure_ascii = h[0] && jv_truthy(&a[0]),
                    .sort_keys = h[3] && jv_truthy(&a[3]) };
    char spaces[65];
    if (h[1] && a[1].t != JT_NONE) {
        if (a[1].t == JT_STR) {
            char *ind = rt_strdup(r, a[1].u.s.p, a[1].u.s.n);
            if (!ind) return false;
            o.indent = ind;
        } else {
            int64_t k;
            if (!tmpl_want_int(r, "tojson", &a[1], &k)) return false;
            if (k < 0) k = 0;
            if (k > 64) return rt_err(r, NULL, PL_ERR_RANGE, "tojson: indent too large");
            memset(spaces, ' ', (size_t)k);
            spaces[k] = 0;
            o.indent = spaces;
        }
        o.item_sep = TSTR_LIT(",");
    }
    if (h[2] && a[2].t != JT_NONE) {
        if (a[2].t != JT_LIST || a[2].u.l->n != 2 || a[2].u.l->v[0].t != JT_STR || a[2].u.l->v[1].t != JT_STR)
            return rt_err(r, NULL, PL_ERR_FORMAT, "tojson: separators must be a pair of strings");
        o.item_sep = a[2].u.l->v[0].u.s;
        o.key_sep = a[2].u.l->v[1].u.s;
    }
    sbuf b;
    sb_init(&b, r);
    if (!jv_json(r, &b, v, &o)) return false;
    *out = sb_value(&b);
    return b.ok;
}

static bool f_trim(rt *r, const jv *v, const tcall *c, jv *out) {
    TMPL_BIND("trim", "chars");
    jv s;
    tstr chars;
    if (!jv_to_str(r, v, &s)) return false;
    bool has_chars = h[0] && a[0].t != JT_NONE;
    if (has_chars && !tmpl_want_str(r, "trim", &a[0], &chars)) return false;
    tstr t = py_strip(s.u.s, true, true, has_chars ? &chars : NULL);
    *out = jv_str(t.p, t.n);
    return true;
}

static bool f_unique(rt *r, const jv *v, const tcall *c, jv *out) {
    TMPL_BIND("unique", "case_sensitive", "attribute");
    const jv *items = NULL;
    size_t n = 0;
    bool done;
    if (!gen_input(r, v, false, &items, &n, out, &done)) return false;
    if (done) return true;
    if (!rt_step(r, n * (n < 4096 ? n : 4096))) return false;
    bool cs = h[0] && jv_truthy(&a[0]);
    jlist *l = jl_new(r, n);
    jv *keys = n ? rt_alloc_n(r, n, sizeof(jv)) : NULL;
    if (!l || (n && !keys)) return false;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        jv key;
        if (!sort_key(r, &items[i], h[1] ? &a[1] : NULL, cs, &key)) return false;
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++)
            if (!jv_eq(r, &keys[j], &key, &seen)) return false;
        if (!seen) {
            keys[k] = key;
            l->v[k++] = items[i];
        }
    }
    l->n = k;
    *out = jv_gen(l);
    return true;
}

static bool f_wordcount(rt *r, const jv *v, const tcall *c, jv *out) {
    jv s;
    if (!tmpl_no_args(r, "wordcount", c) || !jv_to_str(r, v, &s)) return false;
    int64_t words = 0;
    bool in = false;
    for (size_t i = 0; i < s.u.s.n;) {
        size_t adv;
        uint32_t ch = u8_decode(s.u.s.p + i, s.u.s.n - i, &adv);
        bool w = ch == '_' || (ch < 0x80 ? isalnum((int)ch) != 0 : py_isalpha(ch));
        if (w && !in) words++;
        in = w;
        i += adv;
    }
    *out = jv_int(words);
    return true;
}

static bool f_center(rt *r, const jv *v, const tcall *c, jv *out) {
    TMPL_BIND("center", "width");
    jv s;
    if (!jv_to_str(r, v, &s)) return false;
    tcall mc = { .pos = a, .npos = h[0] ? 1 : 0 };
    jv w = jv_int(80);
    if (!h[0]) mc = (tcall){ .pos = &w, .npos = 1 };
    return tmpl_str_method(r, TSTR_LIT("center"), &s, &mc, out);
}

static bool f_indent(rt *r, const jv *v, const tcall *c, jv *out) {
    TMPL_BIND("indent", "width", "first", "blank");
    tstr s, ind;
    char spaces[257];
    if (!tmpl_want_str(r, "indent", v, &s)) return false;
    if (h[0] && a[0].t == JT_STR) {
        ind = a[0].u.s;
    } else {
        int64_t w = 4;
        if (h[0] && !tmpl_want_int(r, "indent", &a[0], &w)) return false;
        if (w < 0) w = 0;
        if (w > 256) return rt_err(r, NULL, PL_ERR_RANGE, "indent: width too large");
        memset(spaces, ' ', (size_t)w);
        ind = (tstr){ spaces, (size_t)w };
    }
    bool first = h[1] && jv_truthy(&a[1]), blank = h[2] && jv_truthy(&a[2]);
    /* lines of s + "\n" per str.splitlines(); line breaks become "\n" */
    sbuf b;
    sb_init(&b, r);
    if (first) sb_put(&b, ind.p, ind.n);
    size_t i = 0, line = 0;
    for (;;) {
        size_t j = i;
        size_t brk = 0;
        while (j < s.n) {
            unsigned char ch = (unsigned char)s.p[j];
            if (ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f' || (ch >= 0x1c && ch <= 0x1e)) {
                brk = ch == '\r' && j + 1 < s.n && s.p[j + 1] == '\n' ? 2 : 1;
                break;
            }
            if (ch >= 0x80) {
                size_t adv;
                uint32_t cp = u8_decode(s.p + j, s.n - j, &adv);
                if (cp == 0x85 || cp == 0x2028 || cp == 0x2029) { brk = adv; break; }
                j += adv;
                continue;
            }
            j++;
        }
        if (line > 0) {
            sb_putc(&b, '\n');
            if (blank || j > i) sb_put(&b, ind.p, ind.n);
        }
        sb_put(&b, s.p + i, j - i);
        line++;
        if (j >= s.n) break; /* the "\n" jinja appends ends this last line */
        i = j + brk;
    }
    *out = sb_value(&b);
    return b.ok;
}

/* format(value, *args) / format(value, **kwargs): value % args */
static bool f_format(rt *r, const jv *v, const tcall *c, jv *out) {
    tstr fmt;
    if (!tmpl_want_str(r, "format", v, &fmt)) return false;
    if (c->npos && c->nkw) return rt_err(r, NULL, PL_ERR_FORMAT, "can't handle positional and keyword arguments");
    if (c->nkw) {
        jdict *d = jd_new(r, c->nkw);
        if (!d) return false;
        for (size_t i = 0; i < c->nkw; i++) {
            d->k[i] = jv_str(c->kwn[i].p, c->kwn[i].n);
            d->v[i] = c->kwv[i];
        }
        d->n = c->nkw;
        jv m = { .t = JT_DICT, .u.d = d };
        return tmpl_percent_format(r, fmt, &m, 1, true, out);
    }
    return tmpl_percent_format(r, fmt, c->pos, c->npos, false, out);
}

static const tmpl_builtin filters[] = {
    { "abs", f_abs },           { "attr", f_attr },         { "capitalize", f_capitalize },
    { "center", f_center },     { "count", f_length },      { "d", f_default },
    { "default", f_default },   { "dictsort", f_dictsort }, { "e", f_escape },
    { "escape", f_escape },     { "first", f_first },       { "float", f_float },
    { "format", f_format },     { "indent", f_indent },     { "int", f_int },
    { "items", f_items },       { "join", f_join },         { "last", f_last },
    { "length", f_length },     { "list", f_list },         { "lower", f_lower },
    { "map", f_map },           { "max", f_max },           { "min", f_min },
    { "pprint", f_pprint },     { "reject", f_reject },     { "rejectattr", f_rejectattr },
    { "replace", f_replace },   { "reverse", f_reverse },   { "round", f_round },
    { "safe", f_safe },         { "select", f_select },     { "selectattr", f_selectattr },
    { "sort", f_sort },         { "string", f_string },     { "sum", f_sum },
    { "title", f_title },       { "tojson", f_tojson },     { "trim", f_trim },
    { "unique", f_unique },     { "upper", f_upper },       { "wordcount", f_wordcount },
};
enum { N_FILTERS = sizeof filters / sizeof filters[0] };

int tmpl_filter_find(tstr name) {
    for (int i = 0; i < N_FILTERS; i++)
        if (tstr_eqc(name, filters[i].name)) return i;
    return -1;
}

bool tmpl_call_filter(rt *r, int id, const jv *v, const tcall *c, jv *out) {
    if (id < 0 || id >= N_FILTERS) return rt_err(r, NULL, PL_ERR_INTERNAL, "bad filter id");
    if (!rt_step(r, 1)) return false;
    return filters[id].fn(r, v, c, out);
}
