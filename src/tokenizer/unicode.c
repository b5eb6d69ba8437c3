/*
 * unicode.c - strict UTF-8 decoding and the GPT-2 byte<->unicode map.
 */
#include <string.h>

#include "tokenizer/tokenizer_int.h"

/* Valid second-byte range for each lead byte (RFC 3629 table 3-7): this is
 * what rules out overlong forms, surrogates and code points above U+10FFFF. */
static bool second_ok(uint8_t lead, uint8_t b) {
    switch (lead) {
    case 0xE0: return b >= 0xA0 && b <= 0xBF;
    case 0xED: return b >= 0x80 && b <= 0x9F;
    case 0xF0: return b >= 0x90 && b <= 0xBF;
    case 0xF4: return b >= 0x80 && b <= 0x8F;
    default:   return b >= 0x80 && b <= 0xBF;
    }
}

/* Sequence length announced by a lead byte; 0 for bytes that never start one
 * (continuations, C0/C1 overlong leads, F5..FF). */
static int lead_len(uint8_t c) {
    if (c < 0x80) return 1;
    if (c < 0xC2) return 0;
    if (c < 0xE0) return 2;
    if (c < 0xF0) return 3;
    if (c < 0xF5) return 4;
    return 0;
}

int pl_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    uint8_t c = s[0];
    int len = lead_len(c);
    if (len == 0 || (size_t)len > n) return 0;
    if (len == 1) {
        *cp = c;
        return 1;
    }
    if (!second_ok(c, s[1])) return 0;
    for (int i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    uint32_t v = c & (0x7F >> len);
    for (int i = 1; i < len; i++) v = (v << 6) | (s[i] & 0x3F);
    *cp = v;
    return len;
}

int pl_utf8_encode(uint32_t cp, uint8_t *out) {
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

size_t pl_utf8_incomplete_tail(const uint8_t *s, size_t n) {
    /* A candidate starts at most 3 bytes from the end: a lead byte followed
     * only by bytes that keep the sequence completable. */
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        uint8_t c = s[n - k];
        if ((c & 0xC0) == 0x80) continue; /* continuation: look further back */
        int len = lead_len(c);
        if (len <= 1 || (size_t)len <= k) return 0;
        if (k >= 2 && !second_ok(c, s[n - k + 1])) return 0;
        /* bytes after the second were continuations (checked by the loop) */
        return k;
    }
    return 0;
}

void pl_bytemap_init(pl_bytemap *m) {
    int next = 256;
    for (int i = 0; i < 324; i++) m->rev[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool self = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        uint32_t cp = self ? (uint32_t)b : (uint32_t)next++;
        m->cp[b] = (uint16_t)cp;
        m->len[b] = (uint8_t)pl_utf8_encode(cp, m->utf8[b]);
        m->rev[cp] = (int16_t)b;
    }
}

size_t pl_utf8_invalid_len(const uint8_t *s, size_t n) {
    if (n == 0) return 0;
    int len = lead_len(s[0]);
    if (len <= 1) return 1;
    size_t k = 1;
    while (k < (size_t)len && k < n) {
        bool ok = k == 1 ? second_ok(s[0], s[1]) : (s[k] & 0xC0) == 0x80;
        if (!ok) break;
        k++;
    }
    return k;
}
