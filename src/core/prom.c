/*
 * prom.c - Prometheus text exposition format (0.0.4) reader.
 *
 *   line    = sample | "#" anything | blank
 *   sample  = name [ "{" [ label *( "," label ) [ "," ] ] "}" ] ws value [ ws timestamp ] [ ws ]
 *   name    = [a-zA-Z_:][a-zA-Z0-9_:]*
 *   label   = lname ws? "=" ws? '"' ( [^"\\\n] | "\\" ["\\n] )* '"'
 *   value   = a float as strtod reads it, or NaN / +Inf / -Inf
 *
 * The text is untrusted (a remote server): every step is bounds-checked
 * against the line end, nothing is allocated, and a bad line is skipped and
 * reported rather than ending the parse. Cost: O(len).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "parley/profile.h"

static bool name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
static bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }
static const char *skip_ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\t')) p++;
    return p;
}

/* A number token [p, e) into *v. strtod needs a NUL-terminated copy. */
static bool parse_float(const char *p, const char *e, double *v) {
    size_t n = (size_t)(e - p);
    char buf[64];
    if (n == 0 || n >= sizeof buf || memchr(p, 0, n)) return false;
    memcpy(buf, p, n);
    buf[n] = 0;
    if (strcmp(buf, "+Inf") == 0 || strcmp(buf, "Inf") == 0) { *v = INFINITY; return true; }
    if (strcmp(buf, "-Inf") == 0) { *v = -INFINITY; return true; }
    if (strcmp(buf, "NaN") == 0) { *v = NAN; return true; }
    char *end;
    *v = strtod(buf, &end);
    return *end == 0;
}

static bool parse_int(const char *p, const char *e, int64_t *v) {
    bool neg = p < e && *p == '-';
    if (neg) p++;
    if (p == e) return false;
    uint64_t x = 0;
    for (; p < e; p++) {
        if (*p < '0' || *p > '9') return false;
        if (!pl_u64_mul(x, 10, &x) || !pl_u64_add(x, (uint64_t)(*p - '0'), &x) || x > (uint64_t)INT64_MAX)
            return false;
    }
    *v = neg ? -(int64_t)x : (int64_t)x;
    return true;
}

/* Past a quoted label value starting at the opening quote; NULL when unterminated or bad escape. */
static const char *skip_quoted(const char *p, const char *e) {
    if (p >= e || *p != '"') return NULL;
    for (p++; p < e; p++) {
        if (*p == '"') return p + 1;
        if (*p == '\\') {
            if (p + 1 >= e || (p[1] != '"' && p[1] != '\\' && p[1] != 'n')) return NULL;
            p++;
        }
    }
    return NULL;
}

/* One label "name=\"value\"" at p; returns the position after it or NULL. */
static const char *label(const char *p, const char *e, const char **key, size_t *klen, const char **val) {
    p = skip_ws(p, e);
    if (p >= e || !name_start(*p) || *p == ':') return NULL;
    *key = p;
    while (p < e && name_char(*p) && *p != ':') p++;
    *klen = (size_t)(p - *key);
    p = skip_ws(p, e);
    if (p >= e || *p != '=') return NULL;
    p = skip_ws(p + 1, e);
    *val = p;
    return skip_quoted(p, e);
}

/* Parse the sample on line [p, e); false when malformed. */
static bool parse_line(const char *p, const char *e, pl_prom_sample *s) {
    memset(s, 0, sizeof *s);
    if (!name_start(*p)) return false;
    s->name = p;
    while (p < e && name_char(*p)) p++;
    s->name_len = (size_t)(p - s->name);
    s->labels = p; /* empty */
    if (p < e && *p == '{') {
        const char *lb = ++p;
        p = skip_ws(p, e);
        while (p < e && *p != '}') {
            const char *k, *v;
            size_t kl;
            if (!(p = label(p, e, &k, &kl, &v))) return false;
            p = skip_ws(p, e);
            if (p < e && *p == ',') p = skip_ws(p + 1, e);
            else if (p < e && *p != '}') return false;
        }
        if (p >= e) return false;
        s->labels = lb;
        s->labels_len = (size_t)(p - lb);
        p++;
    }
    const char *v = skip_ws(p, e);
    if (v == p || v >= e) return false; /* a value needs a separating blank */
    const char *ve = v;
    while (ve < e && *ve != ' ' && *ve != '\t') ve++;
    if (!parse_float(v, ve, &s->value)) return false;
    const char *t = skip_ws(ve, e);
    if (t < e) {
        const char *te = t;
        while (te < e && *te != ' ' && *te != '\t') te++;
        if (!parse_int(t, te, &s->timestamp_ms) || skip_ws(te, e) != e) return false;
        s->has_timestamp = true;
    }
    return true;
}

pl_status pl_prom_parse(const char *text, size_t len, pl_prom_fn fn, void *ud, size_t *bad_line) {
    if (bad_line) *bad_line = 0;
    if (!text && len) return PL_ERR_INVALID_ARG;
    const char *p = text, *end = text + len;
    size_t line = 0, first_bad = 0;
    while (p < end) {
        line++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *next = nl ? nl + 1 : end;
        if (le > p && le[-1] == '\r') le--;
        const char *q = skip_ws(p, le);
        if (q == le || *q == '#') {
            p = next;
            continue;
        }
        pl_prom_sample s;
        if ((size_t)(le - p) > PL_PROM_MAX_LINE || !parse_line(q, le, &s)) {
            if (!first_bad) first_bad = line;
        } else if (fn && !fn(ud, &s)) {
            return PL_ERR_CANCELED;
        }
        p = next;
    }
    if (bad_line) *bad_line = first_bad;
    return first_bad ? PL_ERR_FORMAT : PL_OK;
}

bool pl_prom_is(const pl_prom_sample *s, const char *name) {
    size_t n = strlen(name);
    return s && s->name_len == n && memcmp(s->name, name, n) == 0;
}

bool pl_prom_label(const pl_prom_sample *s, const char *key, char *buf, size_t cap) {
    if (!s || !key) return false;
    const char *p = s->labels, *e = s->labels + s->labels_len;
    size_t want = strlen(key);
    while (p < e) {
        const char *k, *v;
        size_t kl;
        const char *after = label(p, e, &k, &kl, &v);
        if (!after) return false; /* cannot happen on a parsed sample */
        if (kl == want && memcmp(k, key, kl) == 0) {
            size_t o = 0;
            for (const char *c = v + 1; c < after - 1; c++) {
                char ch = *c;
                if (ch == '\\') {
                    c++;
                    ch = *c == 'n' ? '\n' : *c;
                }
                if (buf && o + 1 < cap) buf[o++] = ch;
            }
            if (buf && cap) buf[o] = 0;
            return true;
        }
        p = skip_ws(after, e);
        if (p < e && *p == ',') p++;
    }
    return false;
}
