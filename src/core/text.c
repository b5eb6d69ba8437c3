/*
 * text.c - UTF-8 validation and JSON string escaping (for JSON-lines logs and
 * for truncating error text without splitting a character).
 */
#include <string.h>

#include "core/core_int.h"

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid: then *bad
 * is the length of the maximal invalid subpart (>= 1) and *truncated tells
 * whether it is a valid prefix cut off by the end of the input. The byte
 * ranges are Unicode's "well-formed UTF-8 byte sequences" table, which rules
 * out overlongs (C0, C1, E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and
 * code points above U+10FFFF (F4 90.., F5..FF). */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad, bool *truncated) {
    unsigned c = s[0];
    *truncated = false;
    if (c < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        else if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if (i >= n) {
            *bad = i;
            *truncated = true;
            return 0;
        }
        unsigned b = s[i];
        if (b < lo || b > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return len;
}

size_t pl_utf8_trim(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t bad = 0;
        bool trunc = false;
        size_t len = utf8_seq(u + i, n - i, &bad, &trunc);
        if (len) {
            i += len;
        } else if (trunc) {
            return i; /* a character cut by the end: drop its start */
        } else {
            i += bad;
        }
    }
    return n;
}

bool pl_utf8_valid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (i + 8 <= n) { /* ASCII 8 bytes at a time (most of the text this sees) */
            uint64_t w;
            memcpy(&w, u + i, 8);
            if ((w & 0x8080808080808080ull) == 0) {
                i += 8;
                continue;
            }
        }
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t bad = 0;
        bool trunc = false;
        size_t len = utf8_seq(u + i, n - i, &bad, &trunc);
        if (!len) return false;
        i += len;
    }
    return true;
}

size_t pl_json_escape(char *dst, size_t cap, const char *s, size_t n, size_t *consumed) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0, i = 0;
    if (cap == 0) {
        if (consumed) *consumed = 0;
        return 0;
    }
    while (i < n) {
        unsigned c = u[i];
        char esc[8];
        const char *put = esc;
        size_t plen, in = 1;
        switch (c) {
        case '"':  put = "\\\""; plen = 2; break;
        case '\\': put = "\\\\"; plen = 2; break;
        case '\b': put = "\\b";  plen = 2; break;
        case '\f': put = "\\f";  plen = 2; break;
        case '\n': put = "\\n";  plen = 2; break;
        case '\r': put = "\\r";  plen = 2; break;
        case '\t': put = "\\t";  plen = 2; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                plen = 6;
            } else if (c < 0x80) {
                put = (const char *)u + i;
                plen = 1;
            } else {
                size_t bad = 0;
                bool trunc = false;
                size_t len = utf8_seq(u + i, n - i, &bad, &trunc);
                if (len) {
                    put = (const char *)u + i;
                    plen = in = len;
                } else {
                    put = "\\ufffd";
                    plen = 6;
                    in = bad;
                }
            }
            break;
        }
        if (plen >= cap - o) break; /* keep room for the NUL */
        memcpy(dst + o, put, plen);
        o += plen;
        i += in;
    }
    dst[o] = '\0';
    if (consumed) *consumed = i;
    return o;
}
