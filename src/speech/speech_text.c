/*
 * speech_text.c - small text helpers of the speech module: word error
 * distance (for tests and benchmarks) and bounded UTF-8-safe copies.
 */
#include <ctype.h>
#include <string.h>

#include "speech/speech_int.h"

#define MAX_WORDS 4096

size_t pl_speech_copy_text(char *dst, size_t cap, const char *src, size_t n) {
    if (cap == 0) return 0;
    if (n > cap - 1) n = cap - 1;
    /* Do not end inside a UTF-8 sequence: back off over continuation bytes. */
    if (n < strlen(src)) {
        size_t k = n;
        while (k > 0 && ((unsigned char)src[k] & 0xc0) == 0x80) k--;
        n = k;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

static bool word_char(unsigned char c) { return isalnum(c) || c == '\''; }

/* Split normalized words into offsets/lengths; returns the count or SIZE_MAX. */
static size_t split(const char *s, size_t *off, size_t *len) {
    size_t n = 0;
    for (size_t i = 0; s[i];) {
        while (s[i] && !word_char((unsigned char)s[i])) i++;
        if (!s[i]) break;
        size_t b = i;
        while (word_char((unsigned char)s[i])) i++;
        if (n == MAX_WORDS) return SIZE_MAX;
        off[n] = b;
        len[n] = i - b;
        n++;
    }
    return n;
}

static bool same_word(const char *a, size_t la, const char *b, size_t lb) {
    if (la != lb) return false;
    for (size_t i = 0; i < la; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i])) return false;
    return true;
}

size_t pl_speech_word_distance(pl_ctx *ctx, const char *ref, const char *hyp, size_t *n_ref) {
    size_t *buf = pl_calloc(ctx, 4 * MAX_WORDS + 2 * (MAX_WORDS + 1), sizeof(size_t));
    if (!buf) return SIZE_MAX;
    size_t *ro = buf, *rl = ro + MAX_WORDS, *ho = rl + MAX_WORDS, *hl = ho + MAX_WORDS;
    size_t *prev = hl + MAX_WORDS, *cur = prev + MAX_WORDS + 1;
    size_t nr = split(ref, ro, rl), nh = split(hyp, ho, hl), d = SIZE_MAX;
    if (nr != SIZE_MAX && nh != SIZE_MAX) {
        /* Levenshtein over words, two rows: prev[j] = distance(ref[0..i), hyp[0..j)). */
        for (size_t j = 0; j <= nh; j++) prev[j] = j;
        for (size_t i = 1; i <= nr; i++) {
            cur[0] = i;
            for (size_t j = 1; j <= nh; j++) {
                size_t sub = prev[j - 1] +
                             !same_word(ref + ro[i - 1], rl[i - 1], hyp + ho[j - 1], hl[j - 1]);
                size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
                cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            }
            size_t *t = prev;
            prev = cur;
            cur = t;
        }
        d = prev[nh];
        if (n_ref) *n_ref = nr;
    }
    pl_free(ctx, buf);
    return d;
}
