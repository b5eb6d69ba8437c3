/*
 * spm.c - SentencePiece BPE over one raw text fragment.
 *
 * The text gets a leading "▁" (add_space_prefix, when the fragment starts the
 * input or follows a special token) and every ' ' becomes "▁". Symbols start
 * as single characters (each invalid UTF-8 byte on its own). The adjacent pair
 * whose concatenation is a vocabulary token with the highest score merges
 * first, the leftmost on ties, until no pair forms a token. Symbols that are
 * not tokens fall back to their bytes' <0xNN> tokens (or unk).
 *
 * Candidate pairs sit in a binary max-heap keyed (score, -left); stale entries
 * are recognised by their size. Cost: O(n log n) for n characters, one hash
 * probe per candidate; the fragment is not pre-split (SentencePiece merges
 * across the whole text).
 */
#include <string.h>

#include "tokenizer/tokenizer_int.h"

static inline bool pair_before(const pl_spm_pair *a, const pl_spm_pair *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(pl_spm_pair *h, size_t *n, pl_spm_pair v) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!pair_before(&v, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static pl_spm_pair heap_pop(pl_spm_pair *h, size_t *n) {
    pl_spm_pair top = h[0];
    pl_spm_pair last = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && pair_before(&h[c + 1], &h[c])) c++;
        if (!pair_before(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m > 0) h[i] = last;
    return top;
}

/* The token a span may merge into (ordinary text tokens only). */
static inline pl_token span_token(const pl_tokenizer *t, const char *p, size_t n) {
    pl_token id = pl_tokenizer_find(t, p, n);
    return id != PL_TOKEN_NULL && pl_tok_is_text(t, id) ? id : PL_TOKEN_NULL;
}

static inline void try_pair(const pl_tokenizer *t, const char *text, const pl_spm_sym *sy, pl_spm_pair *h,
                            size_t *n, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    uint32_t size = sy[l].len + sy[r].len;
    pl_token id = span_token(t, text + sy[l].off, size);
    if (id == PL_TOKEN_NULL) return;
    heap_push(h, n, (pl_spm_pair){ .score = t->tokens[id].score, .left = l, .right = r, .size = size });
}

/* Merge one chunk of escaped text e[0..el) and emit its ids. */
static pl_status spm_chunk(pl_tok_scratch *s, const char *e, size_t el, pl_tok_out *out) {
    const pl_tokenizer *t = s->tok;
    if (el == 0) return PL_OK;
    /* symbols: one per character */
    size_t need_s, need_h;
    if (!pl_size_mul(el, sizeof(pl_spm_sym), &need_s) || !pl_size_mul(el, 3 * sizeof(pl_spm_pair), &need_h))
        return PL_ERR_OVERFLOW;
    pl_spm_sym *sy = pl_scratch_grow(s, s->syms, &s->syms_cap, need_s);
    if (!sy) return PL_ERR_NOMEM;
    s->syms = sy;
    pl_spm_pair *h = pl_scratch_grow(s, s->heap, &s->heap_cap, need_h);
    if (!h) return PL_ERR_NOMEM;
    s->heap = h;
    int32_t n = 0;
    for (size_t i = 0; i < el;) {
        uint32_t cp;
        int l = pl_utf8_decode((const uint8_t *)e + i, el - i, &cp);
        if (l <= 0) l = 1;
        sy[n] = (pl_spm_sym){ .off = (uint32_t)i, .len = (uint32_t)l, .prev = n - 1, .next = n + 1 };
        n++;
        i += (size_t)l;
    }
    sy[n - 1].next = -1;

    size_t hn = 0;
    for (int32_t i = 0; i + 1 < n; i++) try_pair(t, e, sy, h, &hn, i, i + 1);
    while (hn > 0) {
        pl_spm_pair p = heap_pop(h, &hn);
        pl_spm_sym *L = &sy[p.left], *R = &sy[p.right];
        if (L->len == 0 || R->len == 0 || L->len + R->len != p.size) continue; /* stale */
        L->len += R->len;
        R->len = 0;
        L->next = R->next;
        if (R->next >= 0) sy[R->next].prev = p.left;
        try_pair(t, e, sy, h, &hn, L->prev, p.left);
        try_pair(t, e, sy, h, &hn, p.left, L->next);
    }

    for (int32_t i = 0; i >= 0; i = sy[i].next) {
        pl_token id = span_token(t, e + sy[i].off, sy[i].len);
        if (id != PL_TOKEN_NULL) {
            pl_tok_out_push(out, id);
            continue;
        }
        for (uint32_t k = 0; k < sy[i].len; k++) {
            pl_token b = t->byte_tok[(uint8_t)e[sy[i].off + k]];
            if (b != PL_TOKEN_NULL) pl_tok_out_push(out, b);
        }
    }
    return PL_OK;
}

pl_status pl_spm_encode(pl_tok_scratch *s, const char *text, size_t len, bool prefix, pl_tok_out *out) {
    const pl_tokenizer *t = s->tok;
    if (len == 0 && !prefix) return PL_OK;

    /* escape: each ' ' -> "▁" (3 bytes), plus the optional leading "▁" */
    size_t need;
    if (!pl_size_mul(len, 3, &need) || !pl_size_add(need, 3, &need) || need > UINT32_MAX)
        return PL_ERR_OVERFLOW;
    char *e = pl_scratch_grow(s, s->text, &s->text_cap, need);
    if (!e) return PL_ERR_NOMEM;
    s->text = e;
    size_t el = 0;
    static const char ws[3] = { (char)0xE2, (char)0x96, (char)0x81 };
    if (prefix) {
        memcpy(e, ws, 3);
        el = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(e + el, ws, 3);
            el += 3;
        } else {
            e[el++] = text[i];
        }
    }

    if (!t->spm_split_words) return spm_chunk(s, e, el, out);
    /* No token has a "▁" right after another character, so no merge can
     * cross the start of a "▁" run: merge word by word (same result, small
     * heaps, and repeated words come from the word cache). */
    size_t a = 0;
    for (size_t i = 1; i + 3 <= el; i++) {
        if (memcmp(e + i, ws, 3) != 0) continue;
        if (i >= 3 && memcmp(e + i - 3, ws, 3) == 0) continue;
        pl_status st = pl_wcache_encode(s, e + a, i - a, spm_chunk, out);
        if (st != PL_OK) return st;
        a = i;
        i += 2;
    }
    return pl_wcache_encode(s, e + a, el - a, spm_chunk, out);
}
