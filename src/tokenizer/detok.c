/*
 * detok.c - token ids back to bytes: single pieces, whole sequences and the
 * streaming decoder.
 *
 * Pieces are decoded once at load (vocab.c), so decoding is a copy per token.
 * SPM with add_space_prefix: the encoder puts one "▁" before text that starts
 * the input or follows a special token; undo_space_prefix removes exactly
 * that one space again, so decode(encode(x)) == x.
 */
#include <string.h>

#include "tokenizer/tokenizer_int.h"

pl_detok_params pl_detok_default_params(void) {
    return (pl_detok_params){ .render_special = false, .undo_space_prefix = true, .replace_invalid = false };
}

/* Tokens the encoder emits as their own fragment, after which SPM prefixes
 * the next text with a space. (UNKNOWN is left out: unk mostly comes from
 * byte fallback inside text.) */
static inline bool is_special_type(uint8_t ty) {
    return ty == PL_TOKEN_TYPE_CONTROL || ty == PL_TOKEN_TYPE_USER_DEFINED;
}

/* The bytes a token contributes; updates the space-prefix state. */
static const char *piece_of(const pl_tokenizer *t, pl_token id, bool render_special, bool *strip_pending,
                            bool strip_enabled, size_t *len) {
    const pl_tok_entry *e = &t->tokens[id];
    bool emit = e->emit == PL_EMIT_ALWAYS || (e->emit == PL_EMIT_SPECIAL && render_special);
    const char *p = t->blob + e->piece_off;
    size_t n = emit ? e->piece_len : 0;
    if (is_special_type(e->type)) {
        *strip_pending = strip_enabled;
    } else if (n > 0) {
        if (*strip_pending && p[0] == ' ') {
            p++;
            n--;
        }
        *strip_pending = false;
    }
    *len = n;
    return p;
}

size_t pl_tokenizer_piece(const pl_tokenizer *t, pl_token id, bool render_special, char *buf, size_t cap) {
    if (!t || id < 0 || id >= t->n_vocab) return 0;
    bool strip = false;
    size_t n;
    const char *p = piece_of(t, id, render_special, &strip, false, &n);
    if (buf && cap) memcpy(buf, p, n < cap ? n : cap);
    return n;
}

pl_status pl_tokenizer_decode(const pl_tokenizer *t, const pl_token *ids, size_t n,
                              const pl_detok_params *params, char *buf, size_t cap, size_t *n_out) {
    if (n_out) *n_out = 0;
    if (!t || !n_out || (!ids && n) || (!buf && cap)) return PL_ERR_INVALID_ARG;
    pl_detok_params p = params ? *params : pl_detok_default_params();
    bool strip_enabled = p.undo_space_prefix && t->add_space_prefix;
    bool strip = strip_enabled;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab) return PL_ERR_INVALID_ARG;
        size_t l;
        const char *s = piece_of(t, ids[i], p.render_special, &strip, strip_enabled, &l);
        if (total < cap) memcpy(buf + total, s, cap - total < l ? cap - total : l);
        if (!pl_size_add(total, l, &total)) return PL_ERR_OVERFLOW;
    }
    *n_out = total;
    return total > cap ? PL_ERR_RANGE : PL_OK;
}

/* ---- streaming ---- */

struct pl_detok {
    const pl_tokenizer *tok;
    pl_detok_params     p;
    bool                strip_enabled, strip;
    uint8_t             held[4];
    size_t              n_held;
    char               *work;    /* held bytes + the new piece */
    char               *out;     /* what push returns */
    size_t              work_cap, out_cap;
};

pl_status pl_detok_init(const pl_tokenizer *tok, const pl_detok_params *params, pl_detok **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    if (!tok) return PL_ERR_INVALID_ARG;
    pl_detok *d = pl_calloc(tok->ctx, 1, sizeof *d);
    if (!d) return PL_ERR_NOMEM;
    d->tok = tok;
    d->p = params ? *params : pl_detok_default_params();
    d->strip_enabled = d->p.undo_space_prefix && tok->add_space_prefix;
    /* worst case: 3 held bytes + the longest piece, each byte replaced by a
     * 3-byte U+FFFD */
    d->work_cap = tok->max_piece + 4;
    d->out_cap = d->work_cap * 3;
    d->work = pl_malloc(tok->ctx, d->work_cap);
    d->out = pl_malloc(tok->ctx, d->out_cap);
    if (!d->work || !d->out) {
        pl_detok_free(d);
        return PL_ERR_NOMEM;
    }
    pl_detok_reset(d);
    *out = d;
    return PL_OK;
}

void pl_detok_free(pl_detok *d) {
    if (!d) return;
    pl_ctx *ctx = d->tok->ctx;
    pl_free(ctx, d->work);
    pl_free(ctx, d->out);
    pl_free(ctx, d);
}

void pl_detok_reset(pl_detok *d) {
    if (!d) return;
    d->strip = d->strip_enabled;
    d->n_held = 0;
}

size_t pl_detok_pending(const pl_detok *d) { return d ? d->n_held : 0; }

/* Copy s[0..n) to d->out, replacing ill-formed sequences with U+FFFD when
 * asked. Returns the output length. */
static size_t emit(pl_detok *d, const uint8_t *s, size_t n) {
    if (!d->p.replace_invalid) {
        if ((const char *)s != d->out) memmove(d->out, s, n);
        return n;
    }
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = pl_utf8_decode(s + i, n - i, &cp);
        if (l > 0) {
            memcpy(d->out + o, s + i, (size_t)l);
            o += (size_t)l;
            i += (size_t)l;
        } else {
            memcpy(d->out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += pl_utf8_invalid_len(s + i, n - i);
        }
    }
    return o;
}

pl_status pl_detok_push(pl_detok *d, pl_token id, const char **text, size_t *len) {
    if (text) *text = NULL;
    if (len) *len = 0;
    if (!d || !text || !len) return PL_ERR_INVALID_ARG;
    const pl_tokenizer *t = d->tok;
    if (id < 0 || id >= t->n_vocab) return PL_ERR_INVALID_ARG;
    size_t n;
    const char *p = piece_of(t, id, d->p.render_special, &d->strip, d->strip_enabled, &n);
    uint8_t *w = (uint8_t *)d->work;
    memcpy(w, d->held, d->n_held);
    memcpy(w + d->n_held, p, n);
    size_t total = d->n_held + n;
    size_t tail = pl_utf8_incomplete_tail(w, total);
    size_t ready = total - tail;
    memcpy(d->held, w + ready, tail);
    d->n_held = tail;
    *len = emit(d, w, ready);
    *text = d->out;
    return PL_OK;
}

void pl_detok_flush(pl_detok *d, const char **text, size_t *len) {
    if (text) *text = NULL;
    if (len) *len = 0;
    if (!d) return;
    size_t n = emit(d, d->held, d->n_held);
    if (text) *text = d->out;
    if (len) *len = n;
    pl_detok_reset(d);
}
