/*
 * bpe.c - byte-level BPE: pre-tokenize a fragment with the row's regexes, then
 * merge each word by rank.
 *
 * A word starts as one symbol per byte (the token of the byte's GPT-2 map
 * image). Candidate pairs sit in a binary min-heap keyed (rank, left index);
 * the pop takes the lowest rank, leftmost on ties, exactly the order of the
 * reference's repeated "merge the best-ranked adjacent pair". Entries made
 * stale by an earlier merge are recognised by their remembered ids and
 * skipped. Cost per word of n bytes: O(n log n) with one hash probe per
 * candidate pair; the symbol and heap arrays live in the scratch.
 */
#include <string.h>

#include "tokenizer/tokenizer_int.h"

static inline bool pair_less(const pl_bpe_pair *a, const pl_bpe_pair *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(pl_bpe_pair *h, size_t *n, pl_bpe_pair v) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!pair_less(&v, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static pl_bpe_pair heap_pop(pl_bpe_pair *h, size_t *n) {
    pl_bpe_pair top = h[0];
    pl_bpe_pair last = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && pair_less(&h[c + 1], &h[c])) c++;
        if (!pair_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m > 0) h[i] = last;
    return top;
}

static inline void try_pair(const pl_tokenizer *t, const pl_bpe_sym *sy, pl_bpe_pair *h, size_t *n,
                            int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    uint32_t rank;
    if (!pl_tok_merge_find(t, sy[l].id, sy[r].id, &rank)) return;
    heap_push(h, n, (pl_bpe_pair){ .rank = rank, .left = l, .right = r, .lid = sy[l].id, .rid = sy[r].id });
}

/* Short words: the current pairs' ranks in an array, rescanned for the
 * minimum (leftmost on ties) after each merge: the same order as the heap,
 * without its bookkeeping. O(n^2) for n <= SMALL_WORD bytes. */
#define SMALL_WORD 32

static void bpe_small(const pl_tokenizer *t, const uint8_t *w, size_t len, pl_tok_out *out) {
    pl_token id[SMALL_WORD];
    uint32_t rk[SMALL_WORD]; /* rk[i]: rank of pair (i, i+1), UINT32_MAX if none */
    size_t n = len;
    for (size_t i = 0; i < n; i++) id[i] = t->byte_tok[w[i]];
    for (size_t i = 0; i + 1 < n; i++)
        if (!pl_tok_merge_find(t, id[i], id[i + 1], &rk[i])) rk[i] = UINT32_MAX;
    while (n > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (rk[i] < rk[best]) best = i;
        if (rk[best] == UINT32_MAX) break;
        id[best] = t->merge_result[rk[best]];
        memmove(id + best + 1, id + best + 2, (n - best - 2) * sizeof id[0]);
        memmove(rk + best + 1, rk + best + 2, (n - best - 2) * sizeof rk[0]);
        n--;
        if (best > 0 && !pl_tok_merge_find(t, id[best - 1], id[best], &rk[best - 1])) rk[best - 1] = UINT32_MAX;
        if (best + 1 < n && !pl_tok_merge_find(t, id[best], id[best + 1], &rk[best])) rk[best] = UINT32_MAX;
    }
    for (size_t i = 0; i < n; i++)
        if (id[i] != PL_TOKEN_NULL) pl_tok_out_push(out, id[i]);
}

static pl_status bpe_word_uncached(pl_tok_scratch *s, const char *word, size_t len, pl_tok_out *out) {
    const pl_tokenizer *t = s->tok;
    const uint8_t *w = (const uint8_t *)word;

    if (t->ignore_merges && len > 1) {
        /* a word that is itself a token is emitted whole */
        size_t need;
        if (!pl_size_mul(len, 2, &need)) return PL_ERR_OVERFLOW;
        char *m = pl_scratch_grow(s, s->word, &s->word_cap, need);
        if (!m) return PL_ERR_NOMEM;
        s->word = m;
        size_t ml = 0;
        for (size_t i = 0; i < len; i++) {
            memcpy(m + ml, t->bytemap.utf8[w[i]], t->bytemap.len[w[i]]);
            ml += t->bytemap.len[w[i]];
        }
        pl_token id = pl_tokenizer_find(t, m, ml);
        if (id != PL_TOKEN_NULL && pl_tok_is_text(t, id)) {
            pl_tok_out_push(out, id);
            return PL_OK;
        }
    }
    if (len <= SMALL_WORD) {
        bpe_small(t, w, len, out);
        return PL_OK;
    }
    if (len > INT32_MAX / 4) return PL_ERR_OVERFLOW;

    size_t need_s, need_h;
    if (!pl_size_mul(len, sizeof(pl_bpe_sym), &need_s) || !pl_size_mul(len, 3 * sizeof(pl_bpe_pair), &need_h))
        return PL_ERR_OVERFLOW;
    pl_bpe_sym *sy = pl_scratch_grow(s, s->syms, &s->syms_cap, need_s);
    if (!sy) return PL_ERR_NOMEM;
    s->syms = sy;
    pl_bpe_pair *h = pl_scratch_grow(s, s->heap, &s->heap_cap, need_h);
    if (!h) return PL_ERR_NOMEM;
    s->heap = h;

    int32_t n = (int32_t)len;
    for (int32_t i = 0; i < n; i++)
        sy[i] = (pl_bpe_sym){ .id = t->byte_tok[w[i]], .prev = i - 1, .next = i + 1 < n ? i + 1 : -1, .len = 1 };
    size_t hn = 0;
    for (int32_t i = 0; i + 1 < n; i++) try_pair(t, sy, h, &hn, i, i + 1);

    while (hn > 0) {
        pl_bpe_pair p = heap_pop(h, &hn);
        pl_bpe_sym *L = &sy[p.left], *R = &sy[p.right];
        if (L->len == 0 || R->len == 0 || L->id != p.lid || R->id != p.rid) continue; /* stale */
        L->id = t->merge_result[p.rank];
        L->len += R->len;
        R->len = 0;
        L->next = R->next;
        if (R->next >= 0) sy[R->next].prev = p.left;
        try_pair(t, sy, h, &hn, L->prev, p.left);
        try_pair(t, sy, h, &hn, p.left, L->next);
    }
    /* A symbol with no token (a byte whose map image is missing from the
     * vocabulary) has nothing to emit; the reference drops it too. */
    for (int32_t i = 0; i >= 0; i = sy[i].next)
        if (sy[i].id != PL_TOKEN_NULL) pl_tok_out_push(out, sy[i].id);
    return PL_OK;
}

pl_status pl_bpe_word(pl_tok_scratch *s, const char *word, size_t len, pl_tok_out *out) {
    if (len == 0) return PL_OK;
    if (len == 1) {
        pl_token id = s->tok->byte_tok[(uint8_t)word[0]];
        if (id != PL_TOKEN_NULL) pl_tok_out_push(out, id);
        return PL_OK;
    }
    return pl_wcache_encode(s, word, len, bpe_word_uncached, out);
}

/* Original offset of repaired offset x. Each U+FFFD that replaced an
 * invalid byte is 2 bytes longer than that byte; offsets inside one map to
 * its byte. Words arrive in order, so the count of replacements passed is
 * kept in s->n_subs_done (amortized O(1)). */
static size_t orig_offset(pl_tok_scratch *s, size_t x) {
    while (s->n_subs_done < s->n_subs && (size_t)s->subs[s->n_subs_done] + 3 <= x) s->n_subs_done++;
    size_t k = s->n_subs_done;
    if (k < s->n_subs && s->subs[k] < x) x = s->subs[k];
    return x - 2 * k;
}

static pl_status on_word(void *ud, const char *w, size_t len) {
    pl_tok_scratch *s = ud;
    if (s->repaired) {
        size_t a = (size_t)(w - s->repaired);
        size_t oa = orig_offset(s, a), ob = orig_offset(s, a + len);
        return pl_bpe_word(s, s->orig + oa, ob - oa, s->out);
    }
    return pl_bpe_word(s, w, len, s->out);
}

pl_status pl_bpe_encode(pl_tok_scratch *s, const char *text, size_t len, pl_tok_out *out) {
    const pl_tokenizer *t = s->tok;
    s->out = out;
    s->repaired = NULL;
    if (pl_utf8_valid(text, len)) /* parley/core.h */
        return pl_regex_split(&t->regex, &s->rx, &t->bytemap, text, len, on_word, s);

    /* Invalid UTF-8: the regexes see U+FFFD for each invalid byte; the words
     * keep the original bytes. subs lists where the replacements start. */
    size_t cap3, n_invalid = 0, need_subs;
    if (!pl_size_mul(len, 3, &cap3) || cap3 >= UINT32_MAX) return PL_ERR_OVERFLOW;
    for (size_t o = 0; o < len;) {
        uint32_t cp;
        int l = pl_utf8_decode((const uint8_t *)text + o, len - o, &cp);
        n_invalid += l == 0;
        o += l > 0 ? (size_t)l : 1;
    }
    if (!pl_size_mul(n_invalid, sizeof(uint32_t), &need_subs)) return PL_ERR_OVERFLOW;
    char *r = pl_scratch_grow(s, s->text, &s->text_cap, len + 2 * n_invalid);
    if (!r) return PL_ERR_NOMEM;
    s->text = r;
    uint32_t *subs = pl_scratch_grow(s, s->subs, &s->subs_cap, need_subs);
    if (!subs) return PL_ERR_NOMEM;
    s->subs = subs;
    size_t rl = 0, ns = 0;
    for (size_t o = 0; o < len;) {
        uint32_t cp;
        int l = pl_utf8_decode((const uint8_t *)text + o, len - o, &cp);
        if (l > 0) {
            memcpy(r + rl, text + o, (size_t)l);
            rl += (size_t)l;
            o += (size_t)l;
        } else {
            subs[ns++] = (uint32_t)rl;
            memcpy(r + rl, "\xEF\xBF\xBD", 3);
            rl += 3;
            o++;
        }
    }
    s->n_subs = ns;
    s->n_subs_done = 0;
    s->repaired = r;
    s->orig = text;
    pl_status st = pl_regex_split(&t->regex, &s->rx, &t->bytemap, r, rl, on_word, s);
    s->repaired = NULL;
    return st;
}
