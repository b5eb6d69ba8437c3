/*
 * template_builtins.c - filters, tests, methods and global functions, each a
 * row in a table, with jinja2 / Python semantics (see the jinja2 "List of
 * Builtin Filters" / "List of Builtin Tests" docs and Python's str methods).
 *
 * Conventions: a builtin gets the receiver (`self`: the filtered or tested
 * value, the method's object) and the call's arguments as written; bind()
 * maps them onto named parameters like a Python signature would.
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

#define BIND(fname, ...)                                                                   \
    static const char *const params_[] = { __VA_ARGS__ };                                  \
    enum { NP_ = sizeof params_ / sizeof params_[0] };                                     \
    jv a[NP_];                                                                             \
    bool h[NP_];                                                                           \
    if (!tmpl_bind(r, fname, c, params_, NP_, a, h)) return false

static bool no_args(rt *r, const char *fname, const tcall *c) {
    if (c->npos || c->nkw) return rt_err(r, NULL, PL_ERR_FORMAT, "%s() takes no arguments", fname);
    return true;
}

static bool want_str(rt *r, const char *fname, const jv *v, tstr *out) {
    if (v->t == JT_STR) { *out = v->u.s; return true; }
    if (v->t == JT_UNDEF) return rt_undef_err(r, NULL, v);
    return rt_err(r, NULL, PL_ERR_FORMAT, "%s: expected a string, got '%s'", fname, jv_type_name(v));
}

static bool want_int(rt *r, const char *fname, const jv *v, int64_t *out) {
    if (v->t == JT_INT || v->t == JT_BOOL) { *out = v->t == JT_BOOL ? v->u.b : v->u.i; return true; }
    if (v->t == JT_UNDEF) return rt_undef_err(r, NULL, v);
    return rt_err(r, NULL, PL_ERR_FORMAT, "%s: expected an integer, got '%s'", fname, jv_type_name(v));
}

static jv mk_list(jlist *l, bool tuple) { return (jv){ .t = JT_LIST, .flags = tuple ? LIST_TUPLE : 0, .u.l = l }; }

static jv mk_pair(rt *r, jv a, jv b) {
    jlist *l = jl_new(r, 2);
    if (!l) return jv_undef();
    l->v[0] = a;
    l->v[1] = b;
    return mk_list(l, true);
}

/* A string with each code point mapped (upper/lower/title/capitalize). mode:
 * 0 lower, 1 upper, 2 capitalize, 3 title filter, 4 str.title(), 5 swapcase */
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
    if (!no_args(r, "abs", c)) return false;
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
    BIND("attr", "name");
    tstr name;
    if (!want_str(r, "attr", &a[0], &name)) return false;
    if (v->t == JT_UNDEF) return rt_undef_err(r, NULL, v);
    if (v->t == JT_DICT) { /* attributes only: a dict's keys are not attributes */
        int m = tmpl_method_find(v, name);
        if (m < 0) { *out = (jv){ .t = JT_UNDEF, .flags = UNDEF_ATTR, .u.s = name }; return true; }
    }
    return tmpl_getattr(r, v, name, out);
}

static bool f_capitalize(rt *r, const jv *v, const tcall *c, jv *out) {
    jv s;
    return no_args(r, "capitalize", c) && jv_to_str(r, v, &s) && tmpl_map_case(r, s.u.s, 2, out);
}

static bool f_title(rt *r, const jv *v, const tcall *c, jv *out) {
    jv s;
    return no_args(r, "title", c) && jv_to_str(r, v, &s) && tmpl_map_case(r, s.u.s, 3, out);
}

static bool f_lower(rt *r, const jv *v, const tcall *c, jv *out) {
    jv s;
    return no_args(r, "lower", c) && jv_to_str(r, v, &s) && tmpl_map_case(r, s.u.s, 0, out);
}

static bool f_upper(rt *r, const jv *v, const tcall *c, jv *out) {
    jv s;
    return no_args(r, "upper", c) && jv_to_str(r, v, &s) && tmpl_map_case(r, s.u.s, 1, out);
}

static bool len_of(rt *r, const jv *v, int64_t *n) {
    switch ((jt)v->t) {
    case JT_STR: *n = (int64_t)u8_len(v->u.s.p, v->u.s.n); return true;
    case JT_LIST: *n = (int64_t)v->u.l->n; return true;
    case JT_DICT: *n = (int64_t)v->u.d->n; return true;
    case JT_UNDEF: *n = 0; return true;
    default: return rt_err(r, NULL, PL_ERR_FORMAT, "object of type '%s' has no len()", jv_type_name(v));
    }
}

static bool f_length(rt *r, const jv *v, const tcall *c, jv *out) {
    int64_t n = 0;
    if (!no_args(r, "length", c) || !len_of(r, v, &n)) return false;
    *out = jv_int(n);
    return true;
}

static bool f_default(rt *r, const jv *v, const tcall *c, jv *out) {
    BIND("default", "default_value", "boolean");
    jv dflt = h[0] ? a[0] : jv_str("", 0);
    bool boolean = h[1] && jv_truthy(&a[1]);
    *out = (v->t == JT_UNDEF || (boolean && !jv_truthy(v))) ? dflt : *v;
    return true;
}

static bool f_dictsort(rt *r, const jv *v, const tcall *c, jv *out) {
    BIND("dictsort", "case_sensitive", "by", "reverse");
    if (v->t != JT_DICT) {
        if (v->t == JT_UNDEF) return rt_undef_err(r, NULL, v);
        return rt_err(r, NULL, PL_ERR_FORMAT, "dictsort: expected a mapping");
    }
    bool by_value = false;
    if (h[1]) {
        tstr by;
        if (!want_str(r, "dictsort", &a[1], &by)) return false;
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
        if ((l->v[i] = mk_pair(r, d->k[idx[i]], d->v[idx[i]])).t == JT_UNDEF) return false;
    *out = mk_list(l, false);
    return true;
}

static bool f_escape(rt *r, const jv *v, const tcall *c, jv *out) {
    jv s;
    if (!no_args(r, "escape", c) || !jv_to_str(r, v, &s)) return false;
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
    if (!no_args(r, "first", c) || !jv_iter(r, v, &items, &n)) return false;
    *out = n ? items[0] : (jv){ .t = JT_UNDEF, .u.s = TSTR_LIT("first item") };
    return true;
}

static bool f_last(rt *r, const jv *v, const tcall *c, jv *out) {
    const jv *items;
    size_t n;
    if (!no_args(r, "last", c) || !jv_iter(r, v, &items, &n)) return false;
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
    BIND("float", "default");
    double d;
    if (v->t == JT_FLOAT) *out = *v;
    else if (v->t == JT_INT || v->t == JT_BOOL) *out = jv_float((double)(v->t == JT_BOOL ? v->u.b : v->u.i));
    else if (v->t == JT_STR && parse_pyfloat(v->u.s, &d)) *out = jv_float(d);
    else *out = h[0] ? a[0] : jv_float(0.0);
    return true;
}

static bool f_int(rt *r, const jv *v, const tcall *c, jv *out) {
    BIND("int", "default", "base");
    int64_t base = 10, i;
    if (h[1] && !want_int(r, "int", &a[1], &base)) return false;
    if (base < 2 || base > 36) base = 10;
    double d;
    if (v->t == JT_INT) *out = *v;
    else if (v->t == JT_BOOL) *out = jv_int(v->u.b);
    else if (v->t == JT_FLOAT && isfinite(v->u.f) && fabs(v->u.f) < 9.2e18) *out = jv_int((int64_t)v->u.f);
    else if (v->t == JT_STR && parse_pyint(v->u.s, (int)base, &i)) *out = jv_int(i);
    else if (v->t == JT_STR && parse_pyfloat(v->u.s, &d) && isfinite(d) && fabs(d) < 9.2e18) *out = jv_int((int64_t)d);
    else *out = h[0] ? a[0] : jv_int(0);
    return true;
}

static bool f_items(rt *r, const jv *v, const tcall *c, jv *out) {
    if (!no_args(r, "items", c)) return false;
    if (v->t == JT_UNDEF) { *out = mk_list(jl_new(r, 0), false); return out->u.l != NULL; }
    if (v->t != JT_DICT) return rt_err(r, NULL, PL_ERR_FORMAT, "Can only get item pairs from a mapping.");
    jlist *l = jl_new(r, v->u.d->n);
    if (!l) return false;
    for (size_t i = 0; i < v->u.d->n; i++)
        if ((l->v[i] = mk_pair(r, v->u.d->k[i], v->u.d->v[i])).t == JT_UNDEF) return false;
    *out = mk_list(l, false);
    return true;
}

static bool f_join(rt *r, const jv *v, const tcall *c, jv *out) {
    BIND("join", "d", "attribute");
    tstr sep = { "", 0 };
    if (h[0] && !want_str(r, "join", &a[0], &sep)) return false;
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
    if (!no_args(r, "list", c) || !jv_iter(r, v, &items, &n)) return false;
    jlist *l = jl_new(r, n);
    if (!l) return false;
    if (n) memcpy(l->v, items, n * sizeof(jv));
    *out = mk_list(l, false);
    return true;
}

static bool f_map(rt *r, const jv *v, const tcall *c, jv *out) {
    const jv *items;
    size_t n;
    if (!jv_iter(r, v, &items, &n) || !rt_step(r, n)) return false;
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
        if (!want_str(r, "map", &attr, &path)) return false;
        for (size_t i = 0; i < n; i++) {
            if (!get_path(r, &items[i], path, &l->v[i])) return false;
            if (has_dflt && l->v[i].t == JT_UNDEF) l->v[i] = dflt;
        }
    } else {
        if (c->npos == 0) return rt_err(r, NULL, PL_ERR_FORMAT, "map requires a filter argument");
        tstr name;
        if (!want_str(r, "map", &c->pos[0], &name)) return false;
        int id = tmpl_filter_find(name);
        if (id < 0) return rt_err(r, NULL, PL_ERR_FORMAT, "no filter named '%.*s'", (int)name.n, name.p);
        tcall rest = { .pos = c->pos + 1, .npos = c->npos - 1, .kwn = c->kwn, .kwv = c->kwv, .nkw = c->nkw };
        for (size_t i = 0; i < n; i++)
            if (!tmpl_call_filter(r, id, &items[i], &rest, &l->v[i])) return false;
    }
    *out = mk_list(l, false);
    return true;
}

static bool minmax(rt *r, const jv *v, const tcall *c, jv *out, bool want_max) {
    BIND(want_max ? "max" : "min", "case_sensitive", "attribute");
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
static bool select_common(rt *r, const jv *v, const tcall *c, jv *out, bool attr, bool keep) {
    const jv *items;
    size_t n;
    if (!jv_iter(r, v, &items, &n) || !rt_step(r, n)) return false;
    size_t ai = 0;
    tstr path = { 0 };
    if (attr) {
        if (c->npos < 1) return rt_err(r, NULL, PL_ERR_FORMAT, "selectattr/rejectattr need an attribute");
        if (!want_str(r, "selectattr", &c->pos[0], &path)) return false;
        ai = 1;
    }
    int test = -1;
    if (c->npos > ai) {
        tstr tn;
        if (!want_str(r, "select", &c->pos[ai], &tn)) return false;
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
    *out = mk_list(l, false);
    return true;
}
static bool f_select(rt *r, const jv *v, const tcall *c, jv *out) { return select_common(r, v, c, out, false, true); }
static bool f_reject(rt *r, const jv *v, const tcall *c, jv *out) { return select_common(r, v, c, out, false, false); }
static bool f_selectattr(rt *r, const jv *v, const tcall *c, jv *out) { return select_common(r, v, c, out, true, true); }
static bool f_rejectattr(rt *r, const jv *v, const tcall *c, jv *out) { return select_common(r, v, c, out, true, false); }

static bool f_replace(rt *r, const jv *v, const tcall *c, jv *out) {
    BIND("replace", "old", "new", "count");
    jv s;
    if (!h[0] || !h[1]) return rt_err(r, NULL, PL_ERR_FORMAT, "replace() needs old and new");
    if (!jv_to_str(r, v, &s)) return false;
    tcall mc = { .pos = a, .npos = h[2] ? 3 : 2 };
    return tmpl_str_method(r, TSTR_LIT("replace"), &s, &mc, out);
}

static bool f_reverse(rt *r, const jv *v, const tcall *c, jv *out) {
    if (!no_args(r, "reverse", c)) return false;
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
    *out = mk_list(l, false);
    return true;
}

static bool f_round(rt *r, const jv *v, const tcall *c, jv *out) {
    BIND("round", "precision", "method");
    int64_t prec = 0;
    if (h[0] && !want_int(r, "round", &a[0], &prec)) return false;
    tstr method = TSTR_LIT("common");
    if (h[1] && !want_str(r, "round", &a[1], &method)) return false;
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
    return no_args(r, "safe", c) && jv_to_str(r, v, out);
}

static bool f_string(rt *r, const jv *v, const tcall *c, jv *out) {
    return no_args(r, "string", c) && jv_to_str(r, v, out);
}

static bool f_pprint(rt *r, const jv *v, const tcall *c, jv *out) {
    if (!no_args(r, "pprint", c)) return false;
    sbuf b;
    sb_init(&b, r);
    if (!jv_write(r, &b, v, true)) return false;
    *out = sb_value(&b);
    return b.ok;
}

static bool f_sort(rt *r, const jv *v, const tcall *c, jv *out) {
    BIND("sort", "reverse", "case_sensitive", "attribute");
    const jv *items;
    size_t n, *idx;
    if (!jv_iter(r, v, &items, &n)) return false;
    if (!sorted_index(r, items, n, h[2] ? &a[2] : NULL, h[1] && jv_truthy(&a[1]), h[0] && jv_truthy(&a[0]), &idx))
        return false;
    jlist *l = jl_new(r, n);
    if (!l) return false;
    for (size_t i = 0; i < n; i++) l->v[i] = items[idx[i]];
    *out = mk_list(l, false);
    return true;
}

static bool f_sum(rt *r, const jv *v, const tcall *c, jv *out) {
    BIND("sum", "attribute", "start");
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
    BIND("tojson", "ensure_ascii", "indent", "separators", "sort_keys");
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
            if (!want_int(r, "tojson", &a[1], &k)) return false;
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
    BIND("trim", "chars");
    jv s;
    tstr chars;
    if (!jv_to_str(r, v, &s)) return false;
    bool has_chars = h[0] && a[0].t != JT_NONE;
    if (has_chars && !want_str(r, "trim", &a[0], &chars)) return false;
    tstr t = py_strip(s.u.s, true, true, has_chars ? &chars : NULL);
    *out = jv_str(t.p, t.n);
    return true;
}

static bool f_unique(rt *r, const jv *v, const tcall *c, jv *out) {
    BIND("unique", "case_sensitive", "attribute");
    const jv *items;
    size_t n;
    if (!jv_iter(r, v, &items, &n)) return false;
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
    *out = mk_list(l, false);
    return true;
}

static bool f_wordcount(rt *r, const jv *v, const tcall *c, jv *out) {
    jv s;
    if (!no_args(r, "wordcount", c) || !jv_to_str(r, v, &s)) return false;
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
    BIND("center", "width");
    jv s;
    if (!jv_to_str(r, v, &s)) return false;
    tcall mc = { .pos = a, .npos = h[0] ? 1 : 0 };
    jv w = jv_int(80);
    if (!h[0]) mc = (tcall){ .pos = &w, .npos = 1 };
    return tmpl_str_method(r, TSTR_LIT("center"), &s, &mc, out);
}

static bool f_indent(rt *r, const jv *v, const tcall *c, jv *out) {
    BIND("indent", "width", "first", "blank");
    tstr s, ind;
    char spaces[257];
    if (!want_str(r, "indent", v, &s)) return false;
    if (h[0] && a[0].t == JT_STR) {
        ind = a[0].u.s;
    } else {
        int64_t w = 4;
        if (h[0] && !want_int(r, "indent", &a[0], &w)) return false;
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
    while (i < s.n || line == 0) {
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
        if (j >= s.n) break;
        i = j + brk;
        if (i >= s.n) break; /* the appended "\n" ends the last line */
    }
    *out = sb_value(&b);
    return b.ok;
}

/* printf-style formatting: "%s" % x and the format filter (a subset) */
static bool f_format(rt *r, const jv *v, const tcall *c, jv *out) {
    tstr fmt;
    if (!want_str(r, "format", v, &fmt)) return false;
    if (c->nkw) return rt_err(r, NULL, PL_ERR_UNSUPPORTED, "format: keyword arguments are not supported");
    sbuf b;
    sb_init(&b, r);
    size_t ai = 0;
    for (size_t i = 0; i < fmt.n; i++) {
        if (fmt.p[i] != '%') { sb_putc(&b, fmt.p[i]); continue; }
        if (++i >= fmt.n) return rt_err(r, NULL, PL_ERR_FORMAT, "incomplete format");
        if (fmt.p[i] == '%') { sb_putc(&b, '%'); continue; }
        char spec[32];
        size_t k = 0;
        spec[k++] = '%';
        while (i < fmt.n && strchr("-+ 0#", fmt.p[i]) && k < 8) spec[k++] = fmt.p[i++];
        while (i < fmt.n && isdigit((unsigned char)fmt.p[i]) && k < 12) spec[k++] = fmt.p[i++];
        if (i < fmt.n && fmt.p[i] == '.') {
            spec[k++] = fmt.p[i++];
            while (i < fmt.n && isdigit((unsigned char)fmt.p[i]) && k < 16) spec[k++] = fmt.p[i++];
        }
        if (i >= fmt.n) return rt_err(r, NULL, PL_ERR_FORMAT, "incomplete format");
        char conv = fmt.p[i];
        if (ai >= c->npos) return rt_err(r, NULL, PL_ERR_FORMAT, "not enough arguments for format string");
        const jv *x = &c->pos[ai++];
        char num[128];
        if (conv == 's' || conv == 'r') {
            jv s;
            if (conv == 'r') {
                sbuf rb;
                sb_init(&rb, r);
                if (!jv_write(r, &rb, x, true)) return false;
                s = sb_value(&rb);
            } else if (!jv_to_str(r, x, &s)) {
                return false;
            }
            spec[k++] = 's';
            spec[k] = 0;
            if (k == 2) { sb_put(&b, s.u.s.p, s.u.s.n); continue; }
            char *tmp = rt_strdup(r, s.u.s.p, s.u.s.n);
            if (!tmp) return false;
            int w = atoi(spec + 1 + (spec[1] == '-'));
            size_t len = u8_len(s.u.s.p, s.u.s.n);
            bool left = spec[1] == '-';
            if (!left) for (size_t q = len; q < (size_t)w; q++) sb_putc(&b, ' ');
            sb_put(&b, tmp, s.u.s.n);
            if (left) for (size_t q = len; q < (size_t)w; q++) sb_putc(&b, ' ');
            continue;
        }
        if (!jv_is_num(x)) return rt_err(r, NULL, PL_ERR_FORMAT, "%%%c format: a number is required", conv);
        if (conv == 'd' || conv == 'i' || conv == 'x' || conv == 'X' || conv == 'o') {
            int64_t iv = x->t == JT_FLOAT ? (int64_t)x->u.f : x->t == JT_BOOL ? x->u.b : x->u.i;
            memcpy(spec + k, conv == 'x' ? PRIx64 : conv == 'X' ? PRIX64 : conv == 'o' ? PRIo64 : PRId64,
                   strlen(PRId64) + 1);
            snprintf(num, sizeof num, spec, iv);
        } else if (strchr("feEgG", conv)) {
            spec[k++] = conv;
            spec[k] = 0;
            snprintf(num, sizeof num, spec, x->t == JT_FLOAT ? x->u.f : (double)(x->t == JT_BOOL ? x->u.b : x->u.i));
        } else {
            return rt_err(r, NULL, PL_ERR_UNSUPPORTED, "format: unsupported conversion '%%%c'", conv);
        }
        sb_puts(&b, num);
    }
    if (ai < c->npos) return rt_err(r, NULL, PL_ERR_FORMAT, "not all arguments converted during string formatting");
    *out = sb_value(&b);
    return b.ok;
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
    if (v->t == JT_FLOAT) {
        if (m == 0) return rt_err(r, NULL, PL_ERR_FORMAT, "float modulo");
        double k = fmod(v->u.f, (double)m);
        *out = k == 0 ? 0 : 1;
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
    bool needs_arg = t == T_DIVISIBLEBY || t == T_SAMEAS || (t >= T_EQ && t <= T_IN) || t == T_FILTER || t == T_TEST;
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
    case T_SEQUENCE: *out = v->t == JT_STR || v->t == JT_LIST || v->t == JT_DICT || v->t == JT_UNDEF; return true;
    case T_ITERABLE: *out = v->t == JT_STR || v->t == JT_LIST || v->t == JT_DICT || v->t == JT_UNDEF; return true;
    case T_CALLABLE: *out = v->t == JT_MACRO || v->t == JT_FUNC || v->t == JT_METHOD; return true;
    case T_EVEN:
    case T_ODD:
        if (!num_mod(r, v, 2, &m)) return false;
        *out = (m == 0) == (t == T_EVEN);
        return true;
    case T_DIVISIBLEBY: {
        int64_t d;
        if (!want_int(r, "divisibleby", &arg, &d) || !num_mod(r, v, d, &m)) return false;
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
    case T_LOWER: *out = case_test(v, false); return true;
    case T_UPPER: *out = case_test(v, true); return true;
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

/* ---- global functions ---- */

static bool g_range(rt *r, const jv *self, const tcall *c, jv *out) {
    (void)self;
    if (c->nkw || c->npos < 1 || c->npos > 3) return rt_err(r, NULL, PL_ERR_FORMAT, "range expected 1 to 3 arguments");
    int64_t v[3] = { 0, 0, 1 };
    for (size_t i = 0; i < c->npos; i++)
        if (!want_int(r, "range", &c->pos[i], &v[i])) return false;
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
    *out = mk_list(l, false);
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
    BIND("strftime_now", "format");
    tstr fmt;
    if (!want_str(r, "strftime_now", &a[0], &fmt)) return false;
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

static bool m_items(rt *r, const jv *self, const tcall *c, jv *out) { return f_items(r, self, c, out); }

static bool m_keys(rt *r, const jv *self, const tcall *c, jv *out) {
    if (!no_args(r, "keys", c)) return false;
    jlist *l = jl_new(r, self->u.d->n);
    if (!l) return false;
    if (l->n) memcpy(l->v, self->u.d->k, l->n * sizeof(jv));
    *out = mk_list(l, false);
    return true;
}

static bool m_values(rt *r, const jv *self, const tcall *c, jv *out) {
    if (!no_args(r, "values", c)) return false;
    jlist *l = jl_new(r, self->u.d->n);
    if (!l) return false;
    if (l->n) memcpy(l->v, self->u.d->v, l->n * sizeof(jv));
    *out = mk_list(l, false);
    return true;
}

static bool m_get(rt *r, const jv *self, const tcall *c, jv *out) {
    BIND("get", "key", "default");
    if (!h[0]) return rt_err(r, NULL, PL_ERR_FORMAT, "get expected at least 1 argument");
    bool found;
    if (!jd_get(r, self->u.d, &a[0], out, &found)) return false;
    if (!found) *out = h[1] ? a[1] : jv_none();
    return true;
}

static bool m_list_count(rt *r, const jv *self, const tcall *c, jv *out) {
    BIND("count", "value");
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
    BIND("index", "value");
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
