/*
 * stop.c - streaming stop-string matcher (see parley/text.h).
 *
 * Each stop string runs its own KMP automaton: q[j] is the length of the
 * longest suffix of the stream so far that is a prefix of stop j. The bytes
 * that must be held back are exactly the last max_j q[j] (plus an incomplete
 * UTF-8 tail); everything before can no longer be part of a match.
 *
 * Memory, one block made at init:
 *   pat   concatenated stop strings, off[j] / len[j] into it
 *   fail  KMP failure function per string (same offsets)
 *   q     current state per string
 *   held  the held-back tail, cap = max len - 1 + 3 (UTF-8), plus 3 bytes
 *         of room to complete its last character when it is emitted
 */
#include <string.h>

#include "chat/text_int.h"

struct pl_stop {
    pl_ctx *ctx;
    size_t n;           /* non-empty stop strings kept */
    int *index;         /* [n] position in the caller's array (empties skipped) */
    size_t *off, *len;  /* [n] */
    unsigned char *pat; /* [sum len] */
    uint16_t *fail;     /* [sum len] */
    uint16_t *q;        /* [n] */
    char *held;         /* [held_cap] */
    size_t held_len, held_cap;
    int hit; /* caller's index of the stop hit, or -1 */
};

pl_status pl_stop_init(pl_ctx *ctx, const char *const *stops, size_t n_stops, pl_stop **out) {
    if (!ctx || !out || (n_stops && !stops)) return PL_ERR_INVALID_ARG;
    *out = NULL;
    if (n_stops > PL_STOP_MAX_STRINGS)
        return pl_ctx_err(ctx, PL_ERR_RANGE, "stop: %zu stop strings (at most %d)", n_stops,
                          PL_STOP_MAX_STRINGS);
    size_t total = 0, maxlen = 0;
    for (size_t i = 0; i < n_stops; i++) {
        if (!stops[i]) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "stop: string %zu is NULL", i);
        size_t l = strnlen(stops[i], PL_STOP_MAX_LEN + 1);
        if (l > PL_STOP_MAX_LEN)
            return pl_ctx_err(ctx, PL_ERR_RANGE, "stop: string %zu is longer than %d bytes", i,
                              PL_STOP_MAX_LEN);
        total += l;
        if (l > maxlen) maxlen = l;
    }
    pl_stop *st = pl_calloc(ctx, 1, sizeof *st);
    if (!st) return pl_ctx_err(ctx, PL_ERR_NOMEM, "stop: out of memory");
    st->ctx = ctx;
    /* Sizes are bounded by the limits above (32 x 256 bytes): no overflow. */
    size_t ns = n_stops ? n_stops : 1;
    st->index = pl_calloc(ctx, ns, sizeof *st->index);
    st->off = pl_calloc(ctx, ns, sizeof *st->off);
    st->len = pl_calloc(ctx, ns, sizeof *st->len);
    st->q = pl_calloc(ctx, ns, sizeof *st->q);
    st->pat = pl_calloc(ctx, total + 1, 1);
    st->fail = pl_calloc(ctx, total + 1, sizeof *st->fail);
    st->held_cap = (maxlen ? maxlen - 1 : 0) + 3;
    st->held = pl_calloc(ctx, st->held_cap + 3, 1);
    if (!st->index || !st->off || !st->len || !st->q || !st->pat || !st->fail || !st->held) {
        pl_stop_free(st);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "stop: out of memory");
    }
    size_t at = 0;
    for (size_t i = 0; i < n_stops; i++) {
        size_t l = strlen(stops[i]);
        if (l == 0) continue;
        size_t j = st->n++;
        st->index[j] = (int)i;
        st->off[j] = at;
        st->len[j] = l;
        memcpy(st->pat + at, stops[i], l);
        /* KMP failure: fail[k] = longest proper border of pat[0 .. k]. */
        const unsigned char *p = st->pat + at;
        uint16_t *f = st->fail + at;
        f[0] = 0;
        for (size_t k = 1, b = 0; k < l; k++) {
            while (b > 0 && p[k] != p[b]) b = f[b - 1];
            if (p[k] == p[b]) b++;
            f[k] = (uint16_t)b;
        }
        at += l;
    }
    pl_stop_reset(st);
    *out = st;
    return PL_OK;
}

void pl_stop_free(pl_stop *st) {
    if (!st) return;
    pl_ctx *ctx = st->ctx;
    pl_free(ctx, st->index);
    pl_free(ctx, st->off);
    pl_free(ctx, st->len);
    pl_free(ctx, st->q);
    pl_free(ctx, st->pat);
    pl_free(ctx, st->fail);
    pl_free(ctx, st->held);
    pl_free(ctx, st);
}

void pl_stop_reset(pl_stop *st) {
    if (!st) return;
    st->held_len = 0;
    st->hit = -1;
    for (size_t j = 0; j < st->n; j++) st->q[j] = 0;
}

int pl_stop_hit(const pl_stop *st) { return st ? st->hit : -1; }
size_t pl_stop_held(const pl_stop *st) { return st ? st->held_len : 0; }

/* Emit the first n bytes of held + text (n <= held_len + len). When both
 * parts go out, the held part may end inside a character that the text
 * completes: the missing bytes are copied behind it (held has 3 bytes of
 * room past held_cap) so that every piece is whole characters. Only called
 * with n >= held_len when text is emitted, so held[held_len ..] is free. */
static void emit_prefix(pl_stop *st, const char *text, size_t n, pl_text_fn emit, void *ud) {
    size_t h = n < st->held_len ? n : st->held_len;
    size_t borrow = 0;
    if (h && n > h) {
        for (size_t k = 1; k <= 3 && k <= h; k++) {
            unsigned char b = (unsigned char)st->held[h - k];
            if ((b & 0xC0) == 0x80) continue;
            size_t need = pl_utf8_lead_len(b);
            if (need > k) borrow = need - k;
            break;
        }
        if (borrow > n - h) borrow = n - h;
        memcpy(st->held + h, text, borrow);
    }
    if (h) emit(ud, st->held, h + borrow);
    if (n > h + borrow) emit(ud, text + borrow, n - h - borrow);
}

/* Keep the last `keep` bytes of held + text[0 .. len) as the new held tail. */
static void keep_tail(pl_stop *st, const char *text, size_t len, size_t keep) {
    if (keep <= len) {
        memcpy(st->held, text + len - keep, keep);
    } else {
        size_t from_held = keep - len;
        memmove(st->held, st->held + st->held_len - from_held, from_held);
        memcpy(st->held + from_held, text, len);
    }
    st->held_len = keep;
}

bool pl_stop_feed(pl_stop *st, const char *text, size_t len, pl_text_fn emit, void *ud) {
    if (!st) return false;
    if (st->hit >= 0) return true;
    if (!text || !len) return false;
    const unsigned char *s = (const unsigned char *)text;
    size_t hold = 0;
    for (size_t i = 0; i < len; i++) {
        size_t best = 0; /* length of the longest stop completed by this byte */
        int best_j = -1;
        hold = 0;
        for (size_t j = 0; j < st->n; j++) {
            const unsigned char *p = st->pat + st->off[j];
            const uint16_t *f = st->fail + st->off[j];
            size_t q = st->q[j];
            while (q > 0 && p[q] != s[i]) q = f[q - 1];
            if (p[q] == s[i]) q++;
            if (q == st->len[j]) {
                if (q > best) best = q, best_j = (int)j;
                q = f[q - 1];
            }
            st->q[j] = (uint16_t)q;
            if (q > hold) hold = q;
        }
        if (best_j >= 0) {
            /* The match ends at byte i: it started best - 1 bytes before. */
            size_t end = st->held_len + i + 1;
            emit_prefix(st, text, end - best, emit, ud);
            st->hit = st->index[best_j];
            st->held_len = 0;
            return true;
        }
    }
    size_t total = st->held_len + len;
    /* Also hold an incomplete UTF-8 character at the end. */
    size_t u = 0;
    for (size_t k = 1; k <= 3 && k <= total; k++) {
        size_t at = total - k;
        unsigned char b = at >= st->held_len ? s[at - st->held_len] : (unsigned char)st->held[at];
        if ((b & 0xC0) == 0x80) continue; /* continuation: look further back */
        size_t need = pl_utf8_lead_len(b);
        if (need > k) u = k;
        break;
    }
    if (u > hold) hold = u;
    emit_prefix(st, text, total - hold, emit, ud);
    keep_tail(st, text, len, hold);
    return false;
}

void pl_stop_finish(pl_stop *st, pl_text_fn emit, void *ud) {
    if (!st || st->hit >= 0) return;
    if (st->held_len) emit(ud, st->held, st->held_len);
    st->held_len = 0;
    for (size_t j = 0; j < st->n; j++) st->q[j] = 0;
}
