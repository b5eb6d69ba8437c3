/*
 * encode.c - the top of tokenization: special-token partition, BOS/EOS, the
 * per-thread scratch.
 *
 * Special tokens are applied the way the reference does it: in order of text
 * length (longest first), each one cuts every raw-text fragment left by the
 * ones before at all its occurrences, left to right. A pre-scan over the input
 * first marks which specials occur at all, so the cost is one pass over the
 * text plus one search per special that is actually present.
 */
#include <string.h>

#include "tokenizer/tokenizer_int.h"

pl_encode_params pl_encode_default_params(void) {
    return (pl_encode_params){ .add_bos = true, .add_eos = true, .parse_special = false };
}

void *pl_scratch_grow(pl_tok_scratch *s, void *p, size_t *cap, size_t need) {
    if (need <= *cap) return p;
    size_t nc = *cap ? *cap : 256;
    while (nc < need) {
        if (nc > SIZE_MAX / 2) {
            nc = need;
            break;
        }
        nc *= 2;
    }
    void *np = pl_realloc(s->tok->ctx, p, nc);
    if (!np) return NULL;
    *cap = nc;
    return np;
}

/* with_cache false: a one-call scratch, where the word cache would cost more
 * to allocate than it saves. */
static pl_status scratch_new(const pl_tokenizer *tok, bool with_cache, pl_tok_scratch **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    if (!tok) return PL_ERR_INVALID_ARG;
    pl_tok_scratch *s = pl_calloc(tok->ctx, 1, sizeof *s);
    if (!s) return PL_ERR_NOMEM;
    s->tok = tok;
    pl_status st = PL_OK;
    if (tok->type == PL_VOCAB_TYPE_BPE) st = pl_regex_state_init(tok->ctx, &tok->regex, &s->rx);
    if (with_cache) s->wcache = pl_calloc(tok->ctx, PL_WCACHE_SLOTS, sizeof *s->wcache);
    if (st != PL_OK || (with_cache && !s->wcache)) {
        pl_tok_scratch_free(s);
        return st != PL_OK ? st : PL_ERR_NOMEM;
    }
    *out = s;
    return PL_OK;
}

pl_status pl_tok_scratch_init(const pl_tokenizer *tok, pl_tok_scratch **out) {
    return scratch_new(tok, true, out);
}

void pl_tok_scratch_free(pl_tok_scratch *s) {
    if (!s) return;
    pl_ctx *ctx = s->tok->ctx;
    pl_regex_state_free(&s->rx);
    pl_free(ctx, s->wcache);
    pl_free(ctx, s->syms);
    pl_free(ctx, s->heap);
    pl_free(ctx, s->text);
    pl_free(ctx, s->subs);
    pl_free(ctx, s->word);
    pl_free(ctx, s->frags);
    pl_free(ctx, s->frags2);
    pl_free(ctx, s->seen);
    pl_free(ctx, s);
}

pl_status pl_wcache_encode(pl_tok_scratch *s, const char *w, size_t len, pl_word_encode_fn fn, pl_tok_out *out) {
    if (len > PL_WCACHE_MAXLEN || !s->wcache) return fn(s, w, len, out);
    pl_wcache_slot *c = &s->wcache[pl_tok_hash(w, len) & (PL_WCACHE_SLOTS - 1)];
    if (c->len == len && memcmp(c->bytes, w, len) == 0) {
        for (int i = 0; i < c->n_ids; i++) pl_tok_out_push(out, c->ids[i]);
        return PL_OK;
    }
    /* compute into a private buffer (a word of n bytes gives at most n ids),
     * then copy out and remember it when it fits a slot */
    pl_token ids[PL_WCACHE_MAXLEN];
    pl_tok_out o = { .ids = ids, .cap = PL_WCACHE_MAXLEN, .n = 0 };
    pl_status st = fn(s, w, len, &o);
    if (st != PL_OK) return st;
    if (o.n > o.cap) return PL_ERR_INTERNAL;
    for (size_t i = 0; i < o.n; i++) pl_tok_out_push(out, ids[i]);
    if (o.n <= PL_WCACHE_MAXIDS) {
        c->len = (uint8_t)len;
        c->n_ids = (uint8_t)o.n;
        memcpy(c->bytes, w, len);
        memcpy(c->ids, ids, o.n * sizeof *ids);
    }
    return PL_OK;
}

static inline bool bit(const uint8_t *set, uint32_t i) { return (set[i >> 3] >> (i & 7)) & 1; }

/* First index in sk_key with key >= k. */
static int32_t sk_lower(const pl_tokenizer *t, uint32_t k) {
    int32_t lo = 0, hi = t->n_specials;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (t->sk_key[mid] < k) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static void mark_key(const pl_tokenizer *t, uint8_t *seen, uint32_t key, const char *p, size_t left,
                     bool parse_special) {
    for (int32_t j = sk_lower(t, key); j < t->n_specials && t->sk_key[j] == key; j++) {
        int32_t k = t->sk_idx[j];
        const pl_special *sp = &t->specials[k];
        if (seen[k] || (sp->control && !parse_special) || sp->len > left) continue;
        if (memcmp(p, pl_tok_text(t, sp->id), sp->len) == 0) seen[k] = 1;
    }
}

/* Mark in s->seen every special whose text occurs in text; returns how many. */
static size_t prescan(pl_tok_scratch *s, const char *text, size_t len, bool parse_special) {
    const pl_tokenizer *t = s->tok;
    memset(s->seen, 0, (size_t)t->n_specials);
    for (size_t i = 0; i < len; i++) {
        uint8_t b0 = (uint8_t)text[i];
        if (!bit(t->sk_first, b0)) continue;
        if (bit(t->sk_one, b0)) mark_key(t, s->seen, 0x10000u | b0, text + i, len - i, parse_special);
        if (i + 1 < len) {
            uint32_t key = ((uint32_t)b0 << 8) | (uint8_t)text[i + 1];
            if (bit(t->sk_two, key)) mark_key(t, s->seen, key, text + i, len - i, parse_special);
        }
    }
    size_t n = 0;
    for (int32_t k = 0; k < t->n_specials; k++) n += s->seen[k];
    return n;
}

static pl_status push_frag(pl_tok_scratch *s, size_t *n, size_t off, size_t len, pl_token id) {
    size_t need;
    if (!pl_size_mul(*n + 1, sizeof(pl_frag), &need)) return PL_ERR_OVERFLOW;
    pl_frag *f = pl_scratch_grow(s, s->frags2, &s->frags2_cap, need);
    if (!f) return PL_ERR_NOMEM;
    s->frags2 = f;
    f[*n] = (pl_frag){ .off = off, .len = len, .id = id };
    (*n)++;
    return PL_OK;
}

/* Cut text into raw fragments and special tokens into s->frags. */
static pl_status partition(pl_tok_scratch *s, const char *text, size_t len, bool parse_special,
                           size_t *n_frags) {
    const pl_tokenizer *t = s->tok;
    pl_frag *f = pl_scratch_grow(s, s->frags, &s->frags_cap, sizeof(pl_frag));
    if (!f) return PL_ERR_NOMEM;
    s->frags = f;
    f[0] = (pl_frag){ .off = 0, .len = len, .id = PL_TOKEN_NULL };
    *n_frags = 1;
    if (t->n_specials == 0) return PL_OK;
    uint8_t *seen = pl_scratch_grow(s, s->seen, &s->seen_cap, (size_t)t->n_specials);
    if (!seen) return PL_ERR_NOMEM;
    s->seen = seen;
    if (prescan(s, text, len, parse_special) == 0) return PL_OK;

    for (int32_t k = 0; k < t->n_specials; k++) {
        if (!s->seen[k]) continue;
        const pl_special *sp = &t->specials[k];
        const char *needle = pl_tok_text(t, sp->id);
        size_t nn = 0;
        for (size_t i = 0; i < *n_frags; i++) {
            pl_frag fr = s->frags[i];
            pl_status st = PL_OK;
            if (fr.id != PL_TOKEN_NULL) {
                st = push_frag(s, &nn, fr.off, fr.len, fr.id);
            } else {
                size_t pos = fr.off, end = fr.off + fr.len;
                while (st == PL_OK && pos < end) {
                    const char *hit = end - pos >= sp->len ? memmem(text + pos, end - pos, needle, sp->len) : NULL;
                    if (!hit) break;
                    size_t at = (size_t)(hit - text);
                    if (at > pos) st = push_frag(s, &nn, pos, at - pos, PL_TOKEN_NULL);
                    if (st == PL_OK) st = push_frag(s, &nn, at, sp->len, sp->id);
                    pos = at + sp->len;
                }
                if (st == PL_OK && pos < end) st = push_frag(s, &nn, pos, end - pos, PL_TOKEN_NULL);
            }
            if (st != PL_OK) return st;
        }
        /* swap the lists */
        pl_frag *tmp = s->frags;
        size_t tcap = s->frags_cap;
        s->frags = s->frags2;
        s->frags_cap = s->frags2_cap;
        s->frags2 = tmp;
        s->frags2_cap = tcap;
        *n_frags = nn;
    }
    return PL_OK;
}

static pl_status encode(const pl_tokenizer *tok, pl_tok_scratch *s, const char *text, size_t len,
                        const pl_encode_params *p, pl_tok_out *o) {
    if (p->add_bos && tok->add_bos) pl_tok_out_push(o, tok->bos);
    if (len > 0) {
        size_t nf = 0;
        pl_status st = partition(s, text, len, p->parse_special, &nf);
        if (st != PL_OK) return st;
        /* SPM puts a space before text that starts the input or follows a
         * special token */
        bool prev_special = true;
        for (size_t i = 0; i < nf; i++) {
            pl_frag fr = s->frags[i];
            if (fr.id != PL_TOKEN_NULL) {
                pl_tok_out_push(o, fr.id);
                prev_special = true;
                continue;
            }
            if (tok->type == PL_VOCAB_TYPE_SPM)
                st = pl_spm_encode(s, text + fr.off, fr.len, tok->add_space_prefix && prev_special, o);
            else
                st = pl_bpe_encode(s, text + fr.off, fr.len, o);
            if (st != PL_OK) return st;
            prev_special = false;
        }
    }
    if (p->add_eos && tok->add_eos) pl_tok_out_push(o, tok->eos);
    return PL_OK;
}

pl_status pl_tokenizer_encode(const pl_tokenizer *tok, pl_tok_scratch *scratch, const char *text,
                              size_t len, const pl_encode_params *params, pl_token *out,
                              size_t cap, size_t *n_out) {
    if (n_out) *n_out = 0;
    if (!tok || !n_out || (!text && len) || (!out && cap)) return PL_ERR_INVALID_ARG;
    if (scratch && scratch->tok != tok) return PL_ERR_INVALID_ARG;
    pl_encode_params p = params ? *params : pl_encode_default_params();
    pl_tok_scratch *s = scratch;
    if (!s) {
        pl_status st = scratch_new(tok, false, &s);
        if (st != PL_OK) return st;
    }
    pl_tok_out o = { .ids = out, .cap = cap, .n = 0 };
    pl_status st = encode(tok, s, text, len, &p, &o);
    if (!scratch) pl_tok_scratch_free(s);
    if (st != PL_OK) return st;
    *n_out = o.n;
    return o.n > cap ? PL_ERR_RANGE : PL_OK;
}
