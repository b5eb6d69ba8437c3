/*
 * text_int.h - helpers shared by the streaming text stages (stop.c, think.c,
 * speak.c, sentences.c). Named text_int.h, not chat_int.h: the template
 * engine in the same module keeps its own private header.
 */
#ifndef PL_TEXT_INT_H
#define PL_TEXT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/text.h"

/* ASCII whitespace (what models put around tags and between sentences). */
static inline bool pl_text_is_space(unsigned char c) {
    return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Expected length of the UTF-8 sequence a byte starts: 1 for ASCII and for
 * bytes that cannot start one (they pass through as single bytes). */
static inline size_t pl_utf8_lead_len(unsigned char b) {
    return b >= 0xF0 && b <= 0xF4 ? 4 : b >= 0xE0 ? (b <= 0xEF ? 3 : 1) : b >= 0xC2 ? 2 : 1;
}

/* Decode one well-formed sequence s[0 .. n) (n from pl_utf8_lead_len, all
 * continuation bytes checked); returns the code point or -1 when malformed. */
static inline int32_t pl_utf8_decode(const unsigned char *s, size_t n) {
    if (n == 1) return s[0] < 0x80 ? s[0] : -1;
    int32_t cp = s[0] & (0x7F >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const int32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    return cp;
}

#endif
