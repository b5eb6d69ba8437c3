/*
 * template_strings.c - Python str methods for templates ('x'.startswith(...),
 * .split(), .strip(), .replace(), .format(), ...). Indices and lengths are in
 * code points, as in Python; the bytes are UTF-8.
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template_int.h"

static bool arg_str(rt *r, const char *fname, const jv *v, tstr *out) {
    if (v->t == JT_STR) { *out = v->u.s; return true; }
    if (v->t == JT_UNDEF) return rt_undef_err(r, NULL, v);
    return rt_err(r, NULL, PL_ERR_FORMAT, "%s: expected a string argument, got '%s'", fname, jv_type_name(v));
}

static bool arg_int(rt *r, const char *fname, const jv *v, int64_t *out) {
    if (v->t == JT_INT || v->t == JT_BOOL) { *out = v->t == JT_BOOL ? v->u.b : v->u.i; return true; }
    if (v->t == JT_UNDEF) return rt_undef_err(r, NULL, v);
    return rt_err(r, NULL, PL_ERR_FORMAT, "%s: expected an integer argument, got '%s'", fname, jv_type_name(v));
}

static const char *find_bytes(const char *h, size_t hn, const char *n, size_t nn) {
    if (nn == 0) return h;
    if (nn > hn) return NULL;
    return memmem(h, hn, n, nn);
}

static const char *rfind_bytes(const char *h, size_t hn, const char *n, size_t nn) {
    if (nn > hn) return NULL;
    for (size_t i = hn - nn + 1; i-- > 0;)
        if (memcmp(h + i, n, nn) == 0) return h + i;
    return NULL;
}

/* Python's s[start:end] for the optional start/end of find/count/startswith. */
static bool sub_range(rt *r, tstr s, const jv *start, bool hs, const jv *end, bool he, tstr *out, size_t *cp0) {
    int64_t n = (int64_t)u8_len(s.p, s.n), a = 0, b = n;
    if (hs && start->t != JT_NONE && !arg_int(r, "start", start, &a)) return false;
    if (he && end->t != JT_NONE && !arg_int(r, "end", end, &b)) return false;
    if (a < 0) a = a + n < 0 ? 0 : a + n;
    if (b < 0) b = b + n < 0 ? 0 : b + n;
    if (a > n) a = n;
    if (b > n) b = n;
    if (b < a) b = a;
    size_t pa = u8_offset(s.p, s.n, (size_t)a), pb = u8_offset(s.p, s.n, (size_t)b);
    *out = (tstr){ s.p + pa, pb - pa };
    *cp0 = (size_t)a;
    return true;
}

static bool affix(rt *r, tstr s, const tcall *c, bool ends, jv *out) {
    TMPL_BIND(ends ? "endswith" : "startswith", "prefix", "start", "end");
    tstr sub;
    size_t cp0;
    if (!h[0]) return rt_err(r, NULL, PL_ERR_FORMAT, "startswith/endswith need an argument");
    if (!sub_range(r, s, &a[1], h[1], &a[2], h[2], &sub, &cp0)) return false;
    const jv *cands = &a[0];
    size_t nc = 1;
    if (a[0].t == JT_LIST && (a[0].flags & LIST_TUPLE)) {
        cands = a[0].u.l->v;
        nc = a[0].u.l->n;
    }
    for (size_t i = 0; i < nc; i++) {
        tstr p;
        if (!arg_str(r, ends ? "endswith" : "startswith", &cands[i], &p)) return false;
        if (p.n <= sub.n && memcmp(ends ? sub.p + sub.n - p.n : sub.p, p.p, p.n) == 0) {
            *out = jv_bool(true);
            return true;
        }
    }
    *out = jv_bool(false);
    return true;
}

static bool push_piece(rt *r, jv **items, size_t *n, size_t *cap, tstr piece) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        jv *v = rt_alloc_n(r, nc, sizeof(jv));
        if (!v) return false;
        if (*n) memcpy(v, *items, *n * sizeof(jv));
        *items = v;
        *cap = nc;
    }
    (*items)[(*n)++] = jv_str(piece.p, piece.n);
    return true;
}

static jv list_of(jv *items, size_t n, jlist *l) {
    l->n = n;
    l->v = items;
    l->pos = 0;
    l->err = NULL;
    return (jv){ .t = JT_LIST, .u.l = l };
}

static bool split(rt *r, tstr s, const tcall *c, bool from_right, jv *out) {
    TMPL_BIND(from_right ? "rsplit" : "split", "sep", "maxsplit");
    int64_t maxsplit = -1;
    if (h[1] && !arg_int(r, "split", &a[1], &maxsplit)) return false;
    if (!rt_step(r, s.n / 1024)) return false;
    jv *items = NULL;
    size_t n = 0, cap = 0;
    jlist *l = rt_alloc(r, sizeof *l);
    if (!l) return false;
    if (!h[0] || a[0].t == JT_NONE) { /* runs of whitespace, ends dropped */
        size_t i = 0, e = s.n;
        if (!from_right) {
            for (;;) {
                size_t k;
                while (i < e && (k = py_space_at(s.p + i, e - i)) > 0) i += k;
                if (i >= e) break;
                if (maxsplit >= 0 && (int64_t)n == maxsplit) {
                    tstr rest = py_strip((tstr){ s.p + i, e - i }, false, true, NULL);
                    if (!push_piece(r, &items, &n, &cap, rest)) return false;
                    break;
                }
                size_t j = i;
                while (j < e && py_space_at(s.p + j, e - j) == 0) j = u8_next(s.p, e, j);
                if (!push_piece(r, &items, &n, &cap, (tstr){ s.p + i, j - i })) return false;
                i = j;
            }
        } else {
            for (;;) {
                size_t k;
                while (e > 0 && (k = py_space_before(s.p, e)) > 0) e -= k;
                if (e == 0) break;
                if (maxsplit >= 0 && (int64_t)n == maxsplit) {
                    tstr rest = py_strip((tstr){ s.p, e }, true, false, NULL);
                    if (!push_piece(r, &items, &n, &cap, rest)) return false;
                    break;
                }
                size_t j = e;
                while (j > 0 && py_space_before(s.p, j) == 0) {
                    j--;
                    while (j > 0 && ((unsigned char)s.p[j] & 0xC0) == 0x80) j--;
                }
                if (!push_piece(r, &items, &n, &cap, (tstr){ s.p + j, e - j })) return false;
                e = j;
            }
            for (size_t q = 0; q < n / 2; q++) { jv t = items[q]; items[q] = items[n - 1 - q]; items[n - 1 - q] = t; }
        }
        *out = list_of(items, n, l);
        return true;
    }
    tstr sep;
    if (!arg_str(r, "split", &a[0], &sep)) return false;
    if (sep.n == 0) return rt_err(r, NULL, PL_ERR_FORMAT, "empty separator");
    if (!from_right) {
        size_t i = 0;
        for (;;) {
            const char *q = (maxsplit < 0 || (int64_t)n < maxsplit) ? find_bytes(s.p + i, s.n - i, sep.p, sep.n) : NULL;
            if (!q) {
                if (!push_piece(r, &items, &n, &cap, (tstr){ s.p + i, s.n - i })) return false;
                break;
            }
            size_t at = (size_t)(q - s.p);
            if (!push_piece(r, &items, &n, &cap, (tstr){ s.p + i, at - i })) return false;
            i = at + sep.n;
        }
    } else {
        size_t e = s.n;
        for (;;) {
            const char *q = (maxsplit < 0 || (int64_t)n < maxsplit) ? rfind_bytes(s.p, e, sep.p, sep.n) : NULL;
            if (!q) {
                if (!push_piece(r, &items, &n, &cap, (tstr){ s.p, e })) return false;
                break;
            }
            size_t at = (size_t)(q - s.p);
            if (!push_piece(r, &items, &n, &cap, (tstr){ s.p + at + sep.n, e - at - sep.n })) return false;
            e = at;
        }
        for (size_t q = 0; q < n / 2; q++) { jv t = items[q]; items[q] = items[n - 1 - q]; items[n - 1 - q] = t; }
    }
    *out = list_of(items, n, l);
    return true;
}

static size_t line_break_at(const char *p, size_t n, size_t i) {
    unsigned char ch = (unsigned char)p[i];
    if (ch == '\r') return i + 1 < n && p[i + 1] == '\n' ? 2 : 1;
    if (ch == '\n' || ch == '\v' || ch == '\f' || (ch >= 0x1c && ch <= 0x1e)) return 1;
    if (ch >= 0x80) {
        size_t adv;
        uint32_t cp = u8_decode(p + i, n - i, &adv);
        if (cp == 0x85 || cp == 0x2028 || cp == 0x2029) return adv;
    }
    return 0;
}

static bool splitlines(rt *r, tstr s, const tcall *c, jv *out) {
    TMPL_BIND("splitlines", "keepends");
    bool keep = h[0] && jv_truthy(&a[0]);
    jv *items = NULL;
    size_t n = 0, cap = 0;
    jlist *l = rt_alloc(r, sizeof *l);
    if (!l) return false;
    size_t i = 0;
    while (i < s.n) {
        size_t j = i, brk = 0;
        while (j < s.n && (brk = line_break_at(s.p, s.n, j)) == 0) j = u8_next(s.p, s.n, j);
        if (!push_piece(r, &items, &n, &cap, (tstr){ s.p + i, j - i + (keep ? brk : 0) })) return false;
        i = j + brk;
    }
    *out = list_of(items, n, l);
    return true;
}

static bool replace(rt *r, tstr s, const tcall *c, jv *out) {
    TMPL_BIND("replace", "old", "new", "count");
    tstr old, nw;
    int64_t count = -1;
    if (!h[0] || !h[1]) return rt_err(r, NULL, PL_ERR_FORMAT, "replace expected at least 2 arguments");
    if (!arg_str(r, "replace", &a[0], &old) || !arg_str(r, "replace", &a[1], &nw)) return false;
    if (h[2] && a[2].t != JT_NONE && !arg_int(r, "replace", &a[2], &count)) return false;
    if (!rt_step(r, s.n / 1024)) return false;
    sbuf b;
    sb_init(&b, r);
    int64_t done = 0;
    if (old.n == 0) { /* insert before every code point and at the end */
        size_t i = 0;
        for (;;) {
            if (count < 0 || done < count) { sb_put(&b, nw.p, nw.n); done++; }
            if (i >= s.n) break;
            size_t j = u8_next(s.p, s.n, i);
            sb_put(&b, s.p + i, j - i);
            i = j;
            if (b.n > r->max_mem) return rt_err(r, NULL, PL_ERR_RANGE, "replace result too large");
        }
    } else {
        size_t i = 0;
        for (;;) {
            const char *q = (count < 0 || done < count) ? find_bytes(s.p + i, s.n - i, old.p, old.n) : NULL;
            if (!q) break;
            size_t at = (size_t)(q - s.p);
            sb_put(&b, s.p + i, at - i);
            sb_put(&b, nw.p, nw.n);
            i = at + old.n;
            done++;
            if (!b.ok) return false;
        }
        sb_put(&b, s.p + i, s.n - i);
    }
    *out = sb_value(&b);
    return b.ok;
}

static bool find(rt *r, tstr s, const tcall *c, bool rev, bool must, jv *out) {
    TMPL_BIND(rev ? "rfind" : "find", "sub", "start", "end");
    tstr sub, hay;
    size_t cp0;
    if (!h[0]) return rt_err(r, NULL, PL_ERR_FORMAT, "find expected at least 1 argument");
    if (!arg_str(r, "find", &a[0], &sub) || !sub_range(r, s, &a[1], h[1], &a[2], h[2], &hay, &cp0)) return false;
    const char *q = rev ? rfind_bytes(hay.p, hay.n, sub.p, sub.n) : find_bytes(hay.p, hay.n, sub.p, sub.n);
    if (!q) {
        if (must) return rt_err(r, NULL, PL_ERR_FORMAT, "substring not found");
        *out = jv_int(-1);
        return true;
    }
    *out = jv_int((int64_t)(cp0 + u8_len(hay.p, (size_t)(q - hay.p))));
    return true;
}

static bool count(rt *r, tstr s, const tcall *c, jv *out) {
    TMPL_BIND("count", "sub", "start", "end");
    tstr sub, hay;
    size_t cp0;
    if (!h[0]) return rt_err(r, NULL, PL_ERR_FORMAT, "count expected at least 1 argument");
    if (!arg_str(r, "count", &a[0], &sub) || !sub_range(r, s, &a[1], h[1], &a[2], h[2], &hay, &cp0)) return false;
    if (sub.n == 0) { *out = jv_int((int64_t)u8_len(hay.p, hay.n) + 1); return true; }
    int64_t k = 0;
    for (size_t i = 0;;) {
        const char *q = find_bytes(hay.p + i, hay.n - i, sub.p, sub.n);
        if (!q) break;
        k++;
        i = (size_t)(q - hay.p) + sub.n;
    }
    *out = jv_int(k);
    return true;
}

static bool join(rt *r, tstr s, const tcall *c, jv *out) {
    TMPL_BIND("join", "iterable");
    const jv *items;
    size_t n;
    if (!h[0]) return rt_err(r, NULL, PL_ERR_FORMAT, "join() takes exactly one argument");
    if (a[0].t == JT_UNDEF) return rt_undef_err(r, NULL, &a[0]);
    if (!jv_iter(r, &a[0], &items, &n)) return false;
    sbuf b;
    sb_init(&b, r);
    for (size_t i = 0; i < n; i++) {
        if (items[i].t != JT_STR)
            return rt_err(r, NULL, PL_ERR_FORMAT, "sequence item %zu: expected str instance, %s found", i,
                          jv_type_name(&items[i]));
        if (i) sb_put(&b, s.p, s.n);
        sb_put(&b, items[i].u.s.p, items[i].u.s.n);
    }
    *out = sb_value(&b);
    return b.ok;
}

/* str.format: {} {0} {name} {{ }} and !s / !r; no format specs. */
static bool format(rt *r, tstr s, const tcall *c, jv *out) {
    sbuf b;
    sb_init(&b, r);
    size_t auto_i = 0;
    for (size_t i = 0; i < s.n; i++) {
        char ch = s.p[i];
        if (ch == '}') {
            if (i + 1 < s.n && s.p[i + 1] == '}') { sb_putc(&b, '}'); i++; continue; }
            return rt_err(r, NULL, PL_ERR_FORMAT, "single '}' encountered in format string");
        }
        if (ch != '{') { sb_putc(&b, ch); continue; }
        if (i + 1 < s.n && s.p[i + 1] == '{') { sb_putc(&b, '{'); i++; continue; }
        size_t j = i + 1;
        while (j < s.n && s.p[j] != '}' && s.p[j] != '!' && s.p[j] != ':') j++;
        tstr field = { s.p + i + 1, j - i - 1 };
        bool repr = false;
        if (j < s.n && s.p[j] == '!') {
            if (j + 1 >= s.n || (s.p[j + 1] != 'r' && s.p[j + 1] != 's'))
                return rt_err(r, NULL, PL_ERR_FORMAT, "unknown conversion in format string");
            repr = s.p[j + 1] == 'r';
            j += 2;
        }
        if (j < s.n && s.p[j] == ':') {
            if (j + 1 < s.n && s.p[j + 1] == '}') j++;
            else return rt_err(r, NULL, PL_ERR_UNSUPPORTED, "format specs in str.format are not supported");
        }
        if (j >= s.n || s.p[j] != '}') return rt_err(r, NULL, PL_ERR_FORMAT, "expected '}' before end of string");
        const jv *v = NULL;
        if (field.n == 0) {
            if (auto_i >= c->npos) return rt_err(r, NULL, PL_ERR_FORMAT, "format: not enough positional arguments");
            v = &c->pos[auto_i++];
        } else if (isdigit((unsigned char)field.p[0])) {
            size_t k = 0;
            for (size_t q = 0; q < field.n && k < 1000000; q++) {
                if (!isdigit((unsigned char)field.p[q])) return rt_err(r, NULL, PL_ERR_UNSUPPORTED, "format: bad field");
                k = k * 10 + (size_t)(field.p[q] - '0');
            }
            if (k >= c->npos) return rt_err(r, NULL, PL_ERR_FORMAT, "format: replacement index %zu out of range", k);
            v = &c->pos[k];
        } else {
            for (size_t q = 0; q < c->nkw && !v; q++)
                if (tstr_eq(c->kwn[q], field)) v = &c->kwv[q];
            if (!v) return rt_err(r, NULL, PL_ERR_FORMAT, "format: no argument named '%.*s'", (int)field.n, field.p);
        }
        if (!jv_write(r, &b, v, repr)) return false;
        i = j;
    }
    *out = sb_value(&b);
    return b.ok;
}

static bool pad(rt *r, tstr s, const tcall *c, int how, jv *out) { /* 0 center, 1 ljust, 2 rjust, 3 zfill */
    TMPL_BIND(how == 3 ? "zfill" : "center", "width", "fillchar");
    int64_t width;
    if (!h[0]) return rt_err(r, NULL, PL_ERR_FORMAT, "missing width");
    if (!arg_int(r, "width", &a[0], &width)) return false;
    tstr fill = TSTR_LIT(" ");
    if (h[1] && (!arg_str(r, "fillchar", &a[1], &fill) || u8_len(fill.p, fill.n) != 1))
        return rt_err(r, NULL, PL_ERR_FORMAT, "The fill character must be exactly one character long");
    int64_t len = (int64_t)u8_len(s.p, s.n);
    if (width <= len) { *out = jv_str(s.p, s.n); return true; }
    if (width > (int64_t)(r->max_mem / 4)) return rt_err(r, NULL, PL_ERR_RANGE, "width too large");
    int64_t marg = width - len, left;
    if (how == 0) left = marg / 2 + (marg & width & 1);
    else if (how == 1) left = 0;
    else left = marg;
    sbuf b;
    sb_init(&b, r);
    if (how == 3) {
        fill = TSTR_LIT("0");
        size_t sign = s.n && (s.p[0] == '+' || s.p[0] == '-') ? 1 : 0;
        sb_put(&b, s.p, sign);
        for (int64_t i = 0; i < marg; i++) sb_putc(&b, '0');
        sb_put(&b, s.p + sign, s.n - sign);
    } else {
        for (int64_t i = 0; i < left; i++) sb_put(&b, fill.p, fill.n);
        sb_put(&b, s.p, s.n);
        for (int64_t i = 0; i < marg - left; i++) sb_put(&b, fill.p, fill.n);
    }
    *out = sb_value(&b);
    return b.ok;
}

static bool partition(rt *r, tstr s, const tcall *c, bool rev, jv *out) {
    TMPL_BIND(rev ? "rpartition" : "partition", "sep");
    tstr sep;
    if (!h[0] || !arg_str(r, "partition", &a[0], &sep)) return h[0] ? false : rt_err(r, NULL, PL_ERR_FORMAT, "missing sep");
    if (sep.n == 0) return rt_err(r, NULL, PL_ERR_FORMAT, "empty separator");
    jlist *l = jl_new(r, 3);
    if (!l) return false;
    const char *q = rev ? rfind_bytes(s.p, s.n, sep.p, sep.n) : find_bytes(s.p, s.n, sep.p, sep.n);
    if (!q) {
        l->v[rev ? 2 : 0] = jv_str(s.p, s.n);
        l->v[1] = jv_str("", 0);
        l->v[rev ? 0 : 2] = jv_str("", 0);
    } else {
        size_t at = (size_t)(q - s.p);
        l->v[0] = jv_str(s.p, at);
        l->v[1] = jv_str(sep.p, sep.n);
        l->v[2] = jv_str(s.p + at + sep.n, s.n - at - sep.n);
    }
    *out = (jv){ .t = JT_LIST, .flags = LIST_TUPLE, .u.l = l };
    return true;
}

/* isdigit/isalpha/...: non-empty and every code point passes */
static bool char_class(tstr s, int kind) {
    if (s.n == 0) return false;
    bool cased = false, prev_cased = false, title_ok = true;
    for (size_t i = 0; i < s.n;) {
        size_t adv;
        uint32_t ch = u8_decode(s.p + i, s.n - i, &adv);
        bool digit = ch < 0x80 && isdigit((int)ch), alpha = py_isalpha(ch);
        bool up = py_lower(ch) != ch, lo = py_upper(ch) != ch;
        switch (kind) {
        case 0: if (!digit) return false; break;
        case 1: if (!alpha) return false; break;
        case 2: if (!alpha && !digit) return false; break;
        case 3: if (!py_space_at(s.p + i, s.n - i)) return false; break;
        case 4: if (lo) return false; if (up) cased = true; break;
        case 5: if (up) return false; if (lo) cased = true; break;
        case 6:
            if (up) { if (prev_cased) title_ok = false; prev_cased = cased = true; }
            else if (lo) { if (!prev_cased) title_ok = false; prev_cased = cased = true; }
            else prev_cased = false;
            break;
        }
        i += adv;
    }
    return kind < 4 ? true : kind == 6 ? cased && title_ok : cased;
}

static bool str_no_args(rt *r, tstr name, const tcall *c) {
    if (c->npos || c->nkw) return rt_err(r, NULL, PL_ERR_FORMAT, "%.*s() takes no arguments", (int)name.n, name.p);
    return true;
}

bool tmpl_str_method(rt *r, tstr name, const jv *self, const tcall *c, jv *out) {
    tstr s = self->u.s;
#define IS(x) tstr_eqc(name, x)
    if (IS("startswith")) return affix(r, s, c, false, out);
    if (IS("endswith")) return affix(r, s, c, true, out);
    if (IS("split")) return split(r, s, c, false, out);
    if (IS("rsplit")) return split(r, s, c, true, out);
    if (IS("splitlines")) return splitlines(r, s, c, out);
    if (IS("strip") || IS("lstrip") || IS("rstrip")) {
        TMPL_BIND("strip", "chars");
        tstr chars;
        bool hc = h[0] && a[0].t != JT_NONE;
        if (hc && !arg_str(r, "strip", &a[0], &chars)) return false;
        tstr t = py_strip(s, !IS("rstrip"), !IS("lstrip"), hc ? &chars : NULL);
        *out = jv_str(t.p, t.n);
        return true;
    }
    if (IS("upper")) return str_no_args(r, name, c) && tmpl_map_case(r, s, 1, out);
    if (IS("lower") || IS("casefold")) return str_no_args(r, name, c) && tmpl_map_case(r, s, 0, out);
    if (IS("capitalize")) return str_no_args(r, name, c) && tmpl_map_case(r, s, 2, out);
    if (IS("title")) return str_no_args(r, name, c) && tmpl_map_case(r, s, 4, out);
    if (IS("swapcase")) return str_no_args(r, name, c) && tmpl_map_case(r, s, 5, out);
    if (IS("replace")) return replace(r, s, c, out);
    if (IS("find")) return find(r, s, c, false, false, out);
    if (IS("rfind")) return find(r, s, c, true, false, out);
    if (IS("index")) return find(r, s, c, false, true, out);
    if (IS("rindex")) return find(r, s, c, true, true, out);
    if (IS("count")) return count(r, s, c, out);
    if (IS("join")) return join(r, s, c, out);
    if (IS("format")) return format(r, s, c, out);
    if (IS("center")) return pad(r, s, c, 0, out);
    if (IS("ljust")) return pad(r, s, c, 1, out);
    if (IS("rjust")) return pad(r, s, c, 2, out);
    if (IS("zfill")) return pad(r, s, c, 3, out);
    if (IS("partition")) return partition(r, s, c, false, out);
    if (IS("rpartition")) return partition(r, s, c, true, out);
    if (IS("removeprefix") || IS("removesuffix")) {
        TMPL_BIND("removeprefix", "affix");
        tstr x;
        if (!h[0] || !arg_str(r, "removeprefix", &a[0], &x)) return h[0] ? false : rt_err(r, NULL, PL_ERR_FORMAT, "missing argument");
        bool pre = IS("removeprefix");
        if (x.n <= s.n && memcmp(pre ? s.p : s.p + s.n - x.n, x.p, x.n) == 0)
            s = pre ? (tstr){ s.p + x.n, s.n - x.n } : (tstr){ s.p, s.n - x.n };
        *out = jv_str(s.p, s.n);
        return true;
    }
    if (IS("expandtabs")) {
        TMPL_BIND("expandtabs", "tabsize");
        int64_t ts = 8;
        if (h[0] && !arg_int(r, "expandtabs", &a[0], &ts)) return false;
        if (ts < 0) ts = 0;
        if (ts > 256) return rt_err(r, NULL, PL_ERR_RANGE, "tabsize too large");
        sbuf b;
        sb_init(&b, r);
        int64_t col = 0;
        for (size_t i = 0; i < s.n;) {
            size_t j = u8_next(s.p, s.n, i);
            if (s.p[i] == '\t') {
                int64_t sp = ts ? ts - col % ts : 0;
                for (int64_t k = 0; k < sp; k++) sb_putc(&b, ' ');
                col += sp;
            } else {
                sb_put(&b, s.p + i, j - i);
                col = s.p[i] == '\n' || s.p[i] == '\r' ? 0 : col + 1;
            }
            i = j;
        }
        *out = sb_value(&b);
        return b.ok;
    }
    static const char *const classes[] = { "isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower", "istitle" };
    for (int k = 0; k < 7; k++)
        if (IS(classes[k])) {
            if (!str_no_args(r, name, c)) return false;
            *out = jv_bool(char_class(s, k));
            return true;
        }
    if (IS("isnumeric") || IS("isdecimal")) {
        if (!str_no_args(r, name, c)) return false;
        *out = jv_bool(char_class(s, 0));
        return true;
    }
#undef IS
    return rt_err(r, NULL, PL_ERR_FORMAT, "'str object' has no attribute '%.*s'", (int)name.n, name.p);
}

/* ---- printf-style formatting: "%s" % x and the format filter ---- */

static void pad_out(sbuf *b, const char *p, size_t n, size_t width, bool left, char fill) {
    size_t len = u8_len(p, n);
    if (!left && fill == '0' && n && (p[0] == '-' || p[0] == '+' || p[0] == ' ')) { /* sign before zeros */
        sb_putc(b, p[0]);
        p++;
        n--;
        width = width ? width - 1 : 0;
        len--;
    }
    if (!left)
        for (size_t i = len; i < width; i++) sb_putc(b, fill);
    sb_put(b, p, n);
    if (left)
        for (size_t i = len; i < width; i++) sb_putc(b, ' ');
}

bool tmpl_percent_format(rt *r, tstr fmt, const jv *args, size_t nargs, bool mapping, jv *out) {
    sbuf b;
    sb_init(&b, r);
    size_t ai = 0;
    bool used_key = false;
    for (size_t i = 0; i < fmt.n; i++) {
        if (fmt.p[i] != '%') {
            size_t j = i;
            while (j < fmt.n && fmt.p[j] != '%') j++;
            sb_put(&b, fmt.p + i, j - i);
            i = j - 1;
            continue;
        }
        if (++i >= fmt.n) return rt_err(r, NULL, PL_ERR_FORMAT, "incomplete format");
        const jv *x = NULL;
        if (fmt.p[i] == '(') { /* %(key)s */
            size_t j = i + 1;
            while (j < fmt.n && fmt.p[j] != ')') j++;
            if (j >= fmt.n) return rt_err(r, NULL, PL_ERR_FORMAT, "incomplete format key");
            if (nargs != 1 || args[0].t != JT_DICT) return rt_err(r, NULL, PL_ERR_FORMAT, "format requires a mapping");
            jv found;
            if (!jd_getc(args[0].u.d, (tstr){ fmt.p + i + 1, j - i - 1 }, &found))
                return rt_err(r, NULL, PL_ERR_FORMAT, "format: no key '%.*s'", (int)(j - i - 1), fmt.p + i + 1);
            x = rt_alloc(r, sizeof(jv));
            if (!x) return false;
            *(jv *)x = found;
            used_key = true;
            i = j + 1;
            if (i >= fmt.n) return rt_err(r, NULL, PL_ERR_FORMAT, "incomplete format");
        }
        bool left = false, plus = false, space = false, zero = false, alt = false;
        for (; i < fmt.n && strchr("-+ 0#", fmt.p[i]) && fmt.p[i]; i++) {
            char f = fmt.p[i];
            left |= f == '-';
            plus |= f == '+';
            space |= f == ' ';
            zero |= f == '0';
            alt |= f == '#';
        }
        size_t width = 0;
        int prec = -1;
        while (i < fmt.n && isdigit((unsigned char)fmt.p[i])) {
            width = width * 10 + (size_t)(fmt.p[i++] - '0');
            if (width > 4096) return rt_err(r, NULL, PL_ERR_RANGE, "format width too large");
        }
        if (i < fmt.n && fmt.p[i] == '.') {
            prec = 0;
            for (i++; i < fmt.n && isdigit((unsigned char)fmt.p[i]); i++) {
                prec = prec * 10 + (fmt.p[i] - '0');
                if (prec > 200) return rt_err(r, NULL, PL_ERR_RANGE, "format precision too large");
            }
        }
        if (i < fmt.n && strchr("hlL", fmt.p[i]) && fmt.p[i]) i++; /* length modifiers are ignored */
        if (i >= fmt.n) return rt_err(r, NULL, PL_ERR_FORMAT, "incomplete format");
        char conv = fmt.p[i];
        if (conv == '%') {
            sb_putc(&b, '%');
            continue;
        }
        if (!x) {
            if (ai >= nargs) return rt_err(r, NULL, PL_ERR_FORMAT, "not enough arguments for format string");
            x = &args[ai++];
        }
        char num[400], spec[32];
        if (conv == 's' || conv == 'r' || conv == 'a') {
            sbuf sb2;
            sb_init(&sb2, r);
            if (!jv_write(r, &sb2, x, conv != 's')) return false;
            size_t n = sb2.n;
            if (prec >= 0) n = u8_offset(sb2.p ? sb2.p : "", sb2.n, (size_t)prec);
            pad_out(&b, sb2.p ? sb2.p : "", n, width, left, ' ');
            continue;
        }
        if (conv == 'c') {
            char u[4];
            size_t m;
            if (x->t == JT_STR && u8_len(x->u.s.p, x->u.s.n) == 1) pad_out(&b, x->u.s.p, x->u.s.n, width, left, ' ');
            else if ((x->t == JT_INT || x->t == JT_BOOL) && x->u.i >= 0 && x->u.i <= 0x10FFFF)
                m = u8_encode((uint32_t)(x->t == JT_BOOL ? x->u.b : x->u.i), u), pad_out(&b, u, m, width, left, ' ');
            else return rt_err(r, NULL, PL_ERR_FORMAT, "%%c requires int or char");
            continue;
        }
        if (!jv_is_num(x)) {
            if (x->t == JT_UNDEF) return rt_undef_err(r, NULL, x);
            return rt_err(r, NULL, PL_ERR_FORMAT, "%%%c format: a real number is required, not %s", conv, jv_type_name(x));
        }
        size_t k = 0;
        spec[k++] = '%';
        if (plus) spec[k++] = '+';
        if (space) spec[k++] = ' ';
        if (alt) spec[k++] = '#';
        if (strchr("diuxXo", conv) && conv) {
            int64_t iv;
            if (x->t == JT_FLOAT) {
                if (!isfinite(x->u.f) || fabs(x->u.f) >= 9.2e18)
                    return rt_err(r, NULL, PL_ERR_RANGE, "cannot convert float to integer");
                iv = (int64_t)x->u.f;
            } else {
                iv = x->t == JT_BOOL ? x->u.b : x->u.i;
            }
            if (prec >= 0) k += (size_t)snprintf(spec + k, sizeof spec - k, ".%d", prec);
            const char *pri = conv == 'x' ? PRIx64 : conv == 'X' ? PRIX64 : conv == 'o' ? PRIo64 : PRId64;
            snprintf(spec + k, sizeof spec - k, "%s", pri);
            snprintf(num, sizeof num, spec, iv);
        } else if (strchr("feEFgG", conv) && conv) {
            double d = x->t == JT_FLOAT ? x->u.f : (double)(x->t == JT_BOOL ? x->u.b : x->u.i);
            k += (size_t)snprintf(spec + k, sizeof spec - k, ".%d%c", prec >= 0 ? prec : 6, conv);
            snprintf(num, sizeof num, spec, d);
        } else {
            return rt_err(r, NULL, PL_ERR_FORMAT, "unsupported format character '%c'", conv);
        }
        pad_out(&b, num, strlen(num), width, left, zero && !left ? '0' : ' ');
    }
    if (ai < nargs && !mapping && !used_key)
        return rt_err(r, NULL, PL_ERR_FORMAT, "not all arguments converted during string formatting");
    *out = sb_value(&b);
    return b.ok;
}
