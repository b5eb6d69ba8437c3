/*
 * template_value.c - value helpers for the template engine: UTF-8 and Python
 * whitespace/case rules, ==, ordering, str()/repr(), float repr, json.dumps.
 *
 * These follow Python 3 because that is what the reference renders were made
 * with: str(1.0) is "1.0", str(None) is "None", repr(['a']) is "['a']",
 * True == 1, (1, 2) != [1, 2], and json.dumps(x, ensure_ascii=False).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template_int.h"

bool tstr_eq(tstr a, tstr b) { return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0); }
bool tstr_eqc(tstr a, const char *c) {
    size_t n = strlen(c);
    return a.n == n && memcmp(a.p, c, n) == 0;
}

/* ---- UTF-8 ---- */

/* Decode one code point; invalid bytes decode as themselves (one byte each). */
uint32_t u8_decode(const char *p, size_t n, size_t *adv) {
    const unsigned char *s = (const unsigned char *)p;
    unsigned char c = s[0];
    if (c < 0x80 || n < 2) { *adv = 1; return c; }
    size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
    if (need == 0 || need > 4 || n < need) { *adv = 1; return c; }
    uint32_t cp = c & (need == 2 ? 0x1F : need == 3 ? 0x0F : 0x07);
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) { *adv = 1; return c; }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
        *adv = 1;
        return c;
    }
    *adv = need;
    return cp;
}

size_t u8_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t u8_next(const char *p, size_t n, size_t i) {
    size_t adv;
    if (i >= n) return n;
    u8_decode(p + i, n - i, &adv);
    return i + adv;
}

size_t u8_len(const char *p, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; k++) {
        if ((unsigned char)p[i] < 0x80) i++;
        else i = u8_next(p, n, i);
    }
    return k;
}

size_t u8_offset(const char *p, size_t n, size_t cp) {
    size_t i = 0;
    while (cp > 0 && i < n) {
        i = (unsigned char)p[i] < 0x80 ? i + 1 : u8_next(p, n, i);
        cp--;
    }
    return i;
}

/* Python's str.isspace(). */
static bool cp_space(uint32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

size_t py_space_at(const char *p, size_t n) {
    if (n == 0) return 0;
    size_t adv;
    uint32_t c = u8_decode(p, n, &adv);
    return cp_space(c) ? adv : 0;
}

size_t py_space_before(const char *p, size_t n) {
    if (n == 0) return 0;
    size_t start = n - 1;
    while (start > 0 && n - start < 4 && ((unsigned char)p[start] & 0xC0) == 0x80) start--;
    size_t adv;
    uint32_t c = u8_decode(p + start, n - start, &adv);
    if (start + adv != n) { /* not a whole code point: look at the last byte alone */
        c = (unsigned char)p[n - 1];
        return cp_space(c) && c < 0x80 ? 1 : 0;
    }
    return cp_space(c) ? adv : 0;
}

static bool in_chars(uint32_t c, const tstr *chars) {
    for (size_t i = 0; i < chars->n;) {
        size_t adv;
        if (u8_decode(chars->p + i, chars->n - i, &adv) == c) return true;
        i += adv;
    }
    return false;
}

tstr py_strip(tstr s, bool left, bool right, const tstr *chars) {
    const char *p = s.p;
    size_t a = 0, b = s.n;
    if (left)
        while (a < b) {
            size_t adv;
            uint32_t c = u8_decode(p + a, b - a, &adv);
            if (chars ? !in_chars(c, chars) : !cp_space(c)) break;
            a += adv;
        }
    if (right)
        while (b > a) {
            size_t st = b - 1;
            while (st > a && b - st < 4 && ((unsigned char)p[st] & 0xC0) == 0x80) st--;
            size_t adv;
            uint32_t c = u8_decode(p + st, b - st, &adv);
            if (st + adv != b) { st = b - 1; c = (unsigned char)p[st]; }
            if (chars ? !in_chars(c, chars) : !cp_space(c)) break;
            b = st;
        }
    return (tstr){ p + a, b - a };
}

/* Case mapping for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic. */
uint32_t py_upper(uint32_t c) {
    if (c >= 'a' && c <= 'z') return c - 32;
    if (c < 0x80) return c;
    if (c == 0xB5) return 0x39C;
    if ((c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 32;
    if (c == 0xFF) return 0x178;
    if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149) {
        bool odd_lower = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
        if (odd_lower) return (c & 1) ? c : c - 1;
        if (c == 0x17F) return 'S';
        return (c & 1) ? c - 1 : c;
    }
    if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
    if (c == 0x3C2) return 0x3A3;
    if (c >= 0x430 && c <= 0x44F) return c - 32;
    if (c >= 0x450 && c <= 0x45F) return c - 80;
    return c;
}

uint32_t py_lower(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c < 0x80) return c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    if (c == 0x178) return 0xFF;
    if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17F) {
        bool odd_lower = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
        if (odd_lower) return (c & 1) ? c + 1 : c;
        return (c & 1) ? c : c + 1;
    }
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    return c;
}

bool py_isalpha(uint32_t c) {
    if (c < 0x80) return (c | 32) >= 'a' && (c | 32) <= 'z';
    return py_upper(c) != c || py_lower(c) != c || (c >= 0x4E00 && c <= 0x9FFF) ||
           (c >= 0x3040 && c <= 0x30FF) || (c >= 0xAC00 && c <= 0xD7A3);
}

/* ---- type names and truth ---- */

const char *jv_type_name(const jv *v) {
    switch ((jt)v->t) {
    case JT_UNDEF: return "Undefined";
    case JT_NONE: return "NoneType";
    case JT_BOOL: return "bool";
    case JT_INT: return "int";
    case JT_FLOAT: return "float";
    case JT_STR: return "str";
    case JT_LIST: return v->flags & LIST_GEN ? "generator" : v->flags & LIST_TUPLE ? "tuple" : "list";
    case JT_DICT: return "dict";
    case JT_NS: return "Namespace";
    case JT_LOOP: return "LoopContext";
    case JT_MACRO: return "Macro";
    case JT_FUNC: return "function";
    case JT_METHOD: return "method";
    case JT_COUNT: break;
    }
    return "object";
}

bool jv_truthy(const jv *v) {
    switch ((jt)v->t) {
    case JT_UNDEF:
    case JT_NONE: return false;
    case JT_BOOL: return v->u.b;
    case JT_INT: return v->u.i != 0;
    case JT_FLOAT: return v->u.f != 0.0;
    case JT_STR: return v->u.s.n > 0;
    case JT_LIST: return (v->flags & LIST_GEN) || v->u.l->n > 0;
    case JT_DICT: return v->u.d->n > 0;
    default: return true;
    }
}

/* ---- lists, dicts, namespaces ---- */

jlist *jl_new(rt *r, size_t n) {
    jlist *l = rt_alloc(r, sizeof *l);
    if (!l) return NULL;
    l->n = n;
    l->pos = 0;
    l->err = NULL;
    l->v = n ? rt_alloc_n(r, n, sizeof(jv)) : NULL;
    if (n && !l->v) return NULL;
    return l;
}

jv tmpl_pair(rt *r, jv a, jv b) {
    jlist *l = jl_new(r, 2);
    if (!l) return jv_undef();
    l->v[0] = a;
    l->v[1] = b;
    return jv_list(l, true);
}

jdict *jd_new(rt *r, size_t cap) {
    jdict *d = rt_alloc(r, sizeof *d);
    if (!d) return NULL;
    d->n = 0;
    d->k = cap ? rt_alloc_n(r, cap, sizeof(jv)) : NULL;
    d->v = cap ? rt_alloc_n(r, cap, sizeof(jv)) : NULL;
    if (cap && (!d->k || !d->v)) return NULL;
    return d;
}

bool jd_getc(const jdict *d, tstr key, jv *out) {
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == JT_STR && tstr_eq(d->k[i].u.s, key)) {
            *out = d->v[i];
            return true;
        }
    return false;
}

bool jd_get(rt *r, const jdict *d, const jv *key, jv *out, bool *found) {
    *found = false;
    if (key->t == JT_STR) {
        *found = jd_getc(d, key->u.s, out);
        return true;
    }
    for (size_t i = 0; i < d->n; i++) {
        bool eq;
        if (!jv_eq(r, &d->k[i], key, &eq)) return false;
        if (eq) {
            *out = d->v[i];
            *found = true;
            return true;
        }
    }
    return true;
}

bool jns_get(const jns *ns, tstr key, jv *out) {
    for (size_t i = 0; i < ns->n; i++)
        if (tstr_eq(ns->k[i], key)) {
            *out = ns->v[i];
            return true;
        }
    return false;
}

bool jns_set(rt *r, jns *ns, tstr key, jv val) {
    for (size_t i = 0; i < ns->n; i++)
        if (tstr_eq(ns->k[i], key)) {
            ns->v[i] = val;
            return true;
        }
    if (ns->n == ns->cap) {
        size_t nc = ns->cap ? ns->cap * 2 : 4;
        tstr *k = rt_alloc_n(r, nc, sizeof(tstr));
        jv *v = rt_alloc_n(r, nc, sizeof(jv));
        if (!k || !v) return false;
        if (ns->n) {
            memcpy(k, ns->k, ns->n * sizeof(tstr));
            memcpy(v, ns->v, ns->n * sizeof(jv));
        }
        ns->k = k;
        ns->v = v;
        ns->cap = nc;
    }
    ns->k[ns->n] = key;
    ns->v[ns->n] = val;
    ns->n++;
    return true;
}

bool jv_iter(rt *r, const jv *v, const jv **items, size_t *n) {
    switch ((jt)v->t) {
    case JT_UNDEF:
        *items = NULL;
        *n = 0;
        return true;
    case JT_LIST:
        if (v->u.l->err) return rt_err(r, NULL, PL_ERR_FORMAT, "%s", v->u.l->err);
        *items = v->u.l->v ? v->u.l->v + v->u.l->pos : NULL;
        *n = v->u.l->n - v->u.l->pos;
        if (v->flags & LIST_GEN) v->u.l->pos = v->u.l->n; /* consumed */
        return true;
    case JT_DICT:
        *items = v->u.d->k;
        *n = v->u.d->n;
        return true;
    case JT_STR: {
        size_t cnt = u8_len(v->u.s.p, v->u.s.n);
        jv *out = cnt ? rt_alloc_n(r, cnt, sizeof(jv)) : NULL;
        if (cnt && !out) return false;
        const char *p = v->u.s.p;
        size_t i = 0;
        for (size_t k = 0; k < cnt; k++) {
            size_t j = u8_next(p, v->u.s.n, i);
            out[k] = jv_str(p + i, j - i);
            i = j;
        }
        *items = out;
        *n = cnt;
        return true;
    }
    default:
        return rt_err(r, NULL, PL_ERR_FORMAT, "'%s' object is not iterable", jv_type_name(v));
    }
}

/* ---- equality and ordering ---- */

static bool eq_rec(rt *r, const jv *a, const jv *b, bool *out, int depth) {
    if (depth > TMPL_MAX_VALUE_DEPTH)
        return rt_err(r, NULL, PL_ERR_RANGE, "values nested too deeply to compare");
    *out = false;
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a->t == JT_FLOAT || b->t == JT_FLOAT) {
            double x = a->t == JT_FLOAT ? a->u.f : (double)(a->t == JT_BOOL ? a->u.b : a->u.i);
            double y = b->t == JT_FLOAT ? b->u.f : (double)(b->t == JT_BOOL ? b->u.b : b->u.i);
            *out = x == y;
        } else {
            int64_t x = a->t == JT_BOOL ? a->u.b : a->u.i, y = b->t == JT_BOOL ? b->u.b : b->u.i;
            *out = x == y;
        }
        return true;
    }
    if (a->t != b->t) return true;
    switch ((jt)a->t) {
    case JT_UNDEF:
    case JT_NONE: *out = true; return true;
    case JT_STR: *out = tstr_eq(a->u.s, b->u.s); return true;
    case JT_LIST: {
        if ((a->flags & LIST_GEN) || (b->flags & LIST_GEN)) { *out = a->u.l == b->u.l; return true; }
        if ((a->flags & LIST_TUPLE) != (b->flags & LIST_TUPLE) || a->u.l->n != b->u.l->n) return true;
        for (size_t i = 0; i < a->u.l->n; i++) {
            bool e;
            if (!eq_rec(r, &a->u.l->v[i], &b->u.l->v[i], &e, depth + 1)) return false;
            if (!e) return true;
        }
        *out = true;
        return true;
    }
    case JT_DICT: {
        const jdict *x = a->u.d, *y = b->u.d;
        if (x->n != y->n) return true;
        for (size_t i = 0; i < x->n; i++) {
            bool found = false, e = false;
            for (size_t j = 0; j < y->n && !found; j++) {
                if (!eq_rec(r, &x->k[i], &y->k[j], &e, depth + 1)) return false;
                if (e) {
                    found = true;
                    if (!eq_rec(r, &x->v[i], &y->v[j], &e, depth + 1)) return false;
                }
            }
            if (!found || !e) return true;
        }
        *out = true;
        return true;
    }
    case JT_NS: *out = a->u.ns == b->u.ns; return true;
    case JT_LOOP: *out = a->u.loop == b->u.loop; return true;
    case JT_MACRO: *out = a->u.m == b->u.m; return true;
    case JT_FUNC: *out = a->id == b->id; return true;
    case JT_METHOD: *out = a->u.bm == b->u.bm; return true;
    default: return true;
    }
}

bool jv_eq(rt *r, const jv *a, const jv *b, bool *out) { return eq_rec(r, a, b, out, 0); }

static bool cmp_rec(rt *r, const jv *a, const jv *b, int *out, int depth) {
    if (depth > TMPL_MAX_VALUE_DEPTH)
        return rt_err(r, NULL, PL_ERR_RANGE, "values nested too deeply to compare");
    if (a->t == JT_UNDEF) return rt_undef_err(r, NULL, a);
    if (b->t == JT_UNDEF) return rt_undef_err(r, NULL, b);
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a->t == JT_FLOAT || b->t == JT_FLOAT) {
            double x = a->t == JT_FLOAT ? a->u.f : (double)(a->t == JT_BOOL ? a->u.b : a->u.i);
            double y = b->t == JT_FLOAT ? b->u.f : (double)(b->t == JT_BOOL ? b->u.b : b->u.i);
            *out = x < y ? -1 : x > y ? 1 : 0; /* NaN compares "equal": never less */
        } else {
            int64_t x = a->t == JT_BOOL ? a->u.b : a->u.i, y = b->t == JT_BOOL ? b->u.b : b->u.i;
            *out = x < y ? -1 : x > y;
        }
        return true;
    }
    if (a->t == JT_STR && b->t == JT_STR) {
        size_t m = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
        int c = m ? memcmp(a->u.s.p, b->u.s.p, m) : 0; /* UTF-8 byte order == code point order */
        *out = c < 0 ? -1 : c > 0 ? 1 : a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n;
        return true;
    }
    if (a->t == JT_LIST && b->t == JT_LIST && a->flags == b->flags && !(a->flags & LIST_GEN)) {
        size_t m = a->u.l->n < b->u.l->n ? a->u.l->n : b->u.l->n;
        for (size_t i = 0; i < m; i++) {
            bool e;
            if (!eq_rec(r, &a->u.l->v[i], &b->u.l->v[i], &e, depth + 1)) return false;
            if (!e) return cmp_rec(r, &a->u.l->v[i], &b->u.l->v[i], out, depth + 1);
        }
        *out = a->u.l->n < b->u.l->n ? -1 : a->u.l->n > b->u.l->n;
        return true;
    }
    return rt_err(r, NULL, PL_ERR_FORMAT, "'<' not supported between instances of '%s' and '%s'",
                  jv_type_name(a), jv_type_name(b));
}

bool jv_cmp(rt *r, const jv *a, const jv *b, int *out) { return cmp_rec(r, a, b, out, 0); }

/* ---- number formatting ---- */

/* Python's repr(float): the shortest digits that round-trip, fixed notation
 * when the decimal exponent is in [-4, 16), else d.ddde+XX. */
void fmt_pyfloat(double d, char *buf, size_t cap) {
    if (isnan(d)) { snprintf(buf, cap, "nan"); return; }
    if (isinf(d)) { snprintf(buf, cap, d < 0 ? "-inf" : "inf"); return; }
    if (d == 0) { snprintf(buf, cap, signbit(d) ? "-0.0" : "0.0"); return; }
    char tmp[40];
    int prec;
    for (prec = 0; prec < 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, d);
        if (strtod(tmp, NULL) == d) break;
    }
    /* tmp: [-]D[.DDD]e[+-]XX */
    char digits[24];
    size_t nd = 0;
    const char *p = tmp;
    bool neg = *p == '-';
    if (neg) p++;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    char out[64];
    size_t k = 0;
    if (neg) out[k++] = '-';
    if (exp < -4 || exp >= 16) {
        out[k++] = digits[0];
        if (nd > 1) {
            out[k++] = '.';
            for (size_t i = 1; i < nd; i++) out[k++] = digits[i];
        }
        k += (size_t)snprintf(out + k, sizeof out - k, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    } else if (exp < 0) {
        out[k++] = '0';
        out[k++] = '.';
        for (int i = 0; i < -exp - 1; i++) out[k++] = '0';
        for (size_t i = 0; i < nd; i++) out[k++] = digits[i];
    } else {
        for (int i = 0; i <= exp; i++) out[k++] = (size_t)i < nd ? digits[i] : '0';
        out[k++] = '.';
        if ((size_t)exp + 1 < nd)
            for (size_t i = (size_t)exp + 1; i < nd; i++) out[k++] = digits[i];
        else
            out[k++] = '0';
    }
    out[k] = 0;
    snprintf(buf, cap, "%s", out);
}

/* ---- str() and repr() ---- */

/* Python's repr of a str: quotes chosen as Python does, escapes for
 * non-printables (approximated by Unicode ranges). */
static void repr_str(sbuf *b, tstr s) {
    bool sq = memchr(s.p, '\'', s.n) != NULL, dq = memchr(s.p, '"', s.n) != NULL;
    char q = sq && !dq ? '"' : '\'';
    sb_putc(b, q);
    for (size_t i = 0; i < s.n;) {
        size_t adv;
        uint32_t c = u8_decode(s.p + i, s.n - i, &adv);
        char e[16];
        if (c == (uint32_t)q || c == '\\') { sb_putc(b, '\\'); sb_putc(b, (char)c); }
        else if (c == '\n') sb_puts(b, "\\n");
        else if (c == '\r') sb_puts(b, "\\r");
        else if (c == '\t') sb_puts(b, "\\t");
        else if (c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0xA0) || c == 0xAD || (adv == 1 && c >= 0x80)) {
            snprintf(e, sizeof e, "\\x%02x", c);
            sb_puts(b, e);
        } else if ((c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) ||
                   (c >= 0x205F && c <= 0x206F) || c == 0x3000 || c == 0xFEFF || c == 0x1680 ||
                   (c >= 0xE000 && c <= 0xF8FF) || (c >= 0xFFF0 && c <= 0xFFFB)) {
            snprintf(e, sizeof e, "\\u%04x", c);
            sb_puts(b, e);
        } else {
            sb_put(b, s.p + i, adv);
        }
        i += adv;
    }
    sb_putc(b, q);
}

static bool str_rec(rt *r, sbuf *b, const jv *v, bool repr, int depth) {
    if (depth > TMPL_MAX_VALUE_DEPTH) return rt_err(r, NULL, PL_ERR_RANGE, "values nested too deeply to print");
    char num[64];
    switch ((jt)v->t) {
    case JT_UNDEF:
        if (repr) sb_puts(b, "Undefined");
        return true;
    case JT_NONE: sb_puts(b, "None"); return true;
    case JT_BOOL: sb_puts(b, v->u.b ? "True" : "False"); return true;
    case JT_INT:
        snprintf(num, sizeof num, "%" PRId64, v->u.i);
        sb_puts(b, num);
        return true;
    case JT_FLOAT:
        fmt_pyfloat(v->u.f, num, sizeof num);
        sb_puts(b, num);
        return true;
    case JT_STR:
        if (repr) repr_str(b, v->u.s);
        else sb_put(b, v->u.s.p, v->u.s.n);
        return true;
    case JT_LIST: {
        if (v->flags & LIST_GEN) {
            sb_puts(b, "<generator object>");
            return true;
        }
        bool tup = v->flags & LIST_TUPLE;
        sb_putc(b, tup ? '(' : '[');
        for (size_t i = 0; i < v->u.l->n; i++) {
            if (i) sb_puts(b, ", ");
            if (!str_rec(r, b, &v->u.l->v[i], true, depth + 1)) return false;
        }
        if (tup && v->u.l->n == 1) sb_putc(b, ',');
        sb_putc(b, tup ? ')' : ']');
        return true;
    }
    case JT_DICT:
        sb_putc(b, '{');
        for (size_t i = 0; i < v->u.d->n; i++) {
            if (i) sb_puts(b, ", ");
            if (!str_rec(r, b, &v->u.d->k[i], true, depth + 1)) return false;
            sb_puts(b, ": ");
            if (!str_rec(r, b, &v->u.d->v[i], true, depth + 1)) return false;
        }
        sb_putc(b, '}');
        return true;
    case JT_NS:
        sb_puts(b, "<Namespace {");
        for (size_t i = 0; i < v->u.ns->n; i++) {
            if (i) sb_puts(b, ", ");
            repr_str(b, v->u.ns->k[i]);
            sb_puts(b, ": ");
            if (!str_rec(r, b, &v->u.ns->v[i], true, depth + 1)) return false;
        }
        sb_puts(b, "}>");
        return true;
    case JT_LOOP:
        snprintf(num, sizeof num, "<LoopContext %zu/%zu>", v->u.loop->i + 1, v->u.loop->n);
        sb_puts(b, num);
        return true;
    case JT_MACRO: sb_puts(b, "<Macro>"); return true;
    case JT_FUNC:
        sb_puts(b, "<function ");
        sb_puts(b, tmpl_global_name(v->id));
        sb_putc(b, '>');
        return true;
    case JT_METHOD: sb_puts(b, "<built-in method>"); return true;
    case JT_COUNT: break;
    }
    return true;
}

bool jv_write(rt *r, sbuf *b, const jv *v, bool repr) {
    if (!str_rec(r, b, v, repr, 0)) return false;
    return b->ok;
}

bool jv_to_str(rt *r, const jv *v, jv *out) {
    if (v->t == JT_STR) { *out = *v; return true; }
    if (v->t == JT_UNDEF) { *out = jv_str("", 0); return true; }
    sbuf b;
    sb_init(&b, r);
    if (!jv_write(r, &b, v, false)) return false;
    *out = sb_value(&b);
    return b.ok;
}

/* ---- json.dumps ---- */

static void json_str(sbuf *b, tstr s, bool ascii) {
    sb_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < s.n;) {
        unsigned char c = (unsigned char)s.p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && (c < 0x80 || !ascii)) {
            i++;
            run++;
            continue;
        }
        sb_put(b, s.p + i - run, run);
        run = 0;
        char e[16];
        if (c == '"') sb_puts(b, "\\\"");
        else if (c == '\\') sb_puts(b, "\\\\");
        else if (c == '\n') sb_puts(b, "\\n");
        else if (c == '\r') sb_puts(b, "\\r");
        else if (c == '\t') sb_puts(b, "\\t");
        else if (c == '\b') sb_puts(b, "\\b");
        else if (c == '\f') sb_puts(b, "\\f");
        else if (c < 0x20) { snprintf(e, sizeof e, "\\u%04x", c); sb_puts(b, e); }
        else { /* ensure_ascii and a non-ASCII code point */
            size_t adv;
            uint32_t cp = u8_decode(s.p + i, s.n - i, &adv);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                snprintf(e, sizeof e, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
            } else {
                snprintf(e, sizeof e, "\\u%04x", cp);
            }
            sb_puts(b, e);
            i += adv;
            continue;
        }
        i++;
    }
    sb_put(b, s.p + s.n - run, run);
    sb_putc(b, '"');
}

static void json_newline(sbuf *b, const json_opts *o, int level) {
    sb_putc(b, '\n');
    for (int i = 0; i < level; i++) sb_puts(b, o->indent);
}

static bool json_key(rt *r, sbuf *b, const jv *k, const json_opts *o) {
    char num[64];
    switch ((jt)k->t) {
    case JT_STR: json_str(b, k->u.s, o->ensure_ascii); return true;
    case JT_NONE: sb_puts(b, "\"null\""); return true;
    case JT_BOOL: sb_puts(b, k->u.b ? "\"true\"" : "\"false\""); return true;
    case JT_INT: snprintf(num, sizeof num, "\"%" PRId64 "\"", k->u.i); sb_puts(b, num); return true;
    case JT_FLOAT:
        fmt_pyfloat(k->u.f, num, sizeof num);
        sb_putc(b, '"');
        sb_puts(b, isnan(k->u.f) ? "NaN" : isinf(k->u.f) ? (k->u.f < 0 ? "-Infinity" : "Infinity") : num);
        sb_putc(b, '"');
        return true;
    default:
        return rt_err(r, NULL, PL_ERR_FORMAT, "keys must be str, int, float, bool or None, not %s",
                      jv_type_name(k));
    }
}

static bool json_rec(rt *r, sbuf *b, const jv *v, const json_opts *o, int level) {
    if (level > TMPL_MAX_VALUE_DEPTH) return rt_err(r, NULL, PL_ERR_RANGE, "values nested too deeply for tojson");
    char num[64];
    switch ((jt)v->t) {
    case JT_NONE: sb_puts(b, "null"); return true;
    case JT_BOOL: sb_puts(b, v->u.b ? "true" : "false"); return true;
    case JT_INT: snprintf(num, sizeof num, "%" PRId64, v->u.i); sb_puts(b, num); return true;
    case JT_FLOAT:
        if (isnan(v->u.f)) sb_puts(b, "NaN");
        else if (isinf(v->u.f)) sb_puts(b, v->u.f < 0 ? "-Infinity" : "Infinity");
        else { fmt_pyfloat(v->u.f, num, sizeof num); sb_puts(b, num); }
        return true;
    case JT_STR: json_str(b, v->u.s, o->ensure_ascii); return true;
    case JT_LIST: {
        const jlist *l = v->u.l;
        if (v->flags & LIST_GEN) break;
        if (l->n == 0) { sb_puts(b, "[]"); return true; }
        sb_putc(b, '[');
        for (size_t i = 0; i < l->n; i++) {
            if (i) sb_put(b, o->item_sep.p, o->item_sep.n);
            if (o->indent) json_newline(b, o, level + 1);
            if (!json_rec(r, b, &l->v[i], o, level + 1)) return false;
        }
        if (o->indent) json_newline(b, o, level);
        sb_putc(b, ']');
        return b->ok;
    }
    case JT_DICT: {
        const jdict *d = v->u.d;
        if (d->n == 0) { sb_puts(b, "{}"); return true; }
        size_t *order = rt_alloc_n(r, d->n, sizeof(size_t));
        if (!order) return false;
        for (size_t i = 0; i < d->n; i++) order[i] = i;
        if (o->sort_keys) /* insertion sort: dicts in templates are small */
            for (size_t i = 1; i < d->n; i++)
                for (size_t j = i; j > 0; j--) {
                    int c;
                    if (!jv_cmp(r, &d->k[order[j - 1]], &d->k[order[j]], &c)) return false;
                    if (c <= 0) break;
                    size_t t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
                }
        sb_putc(b, '{');
        for (size_t i = 0; i < d->n; i++) {
            if (i) sb_put(b, o->item_sep.p, o->item_sep.n);
            if (o->indent) json_newline(b, o, level + 1);
            if (!json_key(r, b, &d->k[order[i]], o)) return false;
            sb_put(b, o->key_sep.p, o->key_sep.n);
            if (!json_rec(r, b, &d->v[order[i]], o, level + 1)) return false;
        }
        if (o->indent) json_newline(b, o, level);
        sb_putc(b, '}');
        return b->ok;
    }
    default:
        break;
    }
    return rt_err(r, NULL, PL_ERR_FORMAT, "Object of type %s is not JSON serializable", jv_type_name(v));
}

bool jv_json(rt *r, sbuf *b, const jv *v, const json_opts *o) {
    if (!json_rec(r, b, v, o, 0)) return false;
    return b->ok;
}
