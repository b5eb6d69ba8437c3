/*
 * vocab.c - build the immutable tokenizer from plain arrays (pl_tok_spec):
 * the text->id hash, the merge-rank hash, decoded pieces, the special-token
 * list and the end-of-generation set; plus the read-only accessors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_int.h"

/* ---- hashing ---- */

static inline uint64_t mix64(uint64_t h) {
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    return h;
}

uint64_t pl_tok_hash(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ mix64(w)) * 0x9E3779B97F4A7C15ull;
        s += 8;
        n -= 8;
    }
    uint64_t t = 0;
    memcpy(&t, s, n);
    return mix64(h ^ t ^ ((uint64_t)n << 56));
}

/* Smallest power of two >= 2n (load factor <= 1/2), at least 16. */
static bool table_size(size_t n, size_t *out) {
    size_t c = 16;
    while (c < n * 2) {
        if (c > SIZE_MAX / 4) return false;
        c <<= 1;
    }
    *out = c;
    return true;
}

/* Slots hold (hash >> 32) << 32 | (id + 1); 0 is empty. The stored hash
 * half answers most mismatches without touching the token's entry and text. */
pl_token pl_tokenizer_find(const pl_tokenizer *t, const char *text, size_t len) {
    if (!t || (!text && len)) return PL_TOKEN_NULL;
    uint64_t h = pl_tok_hash(text, len), tag = h >> 32;
    for (size_t i = (size_t)h & t->text_mask;; i = (i + 1) & t->text_mask) {
        uint64_t v = t->text_slots[i];
        if (v == 0) return PL_TOKEN_NULL;
        if ((v >> 32) != tag) continue;
        uint32_t id = (uint32_t)v - 1;
        const pl_tok_entry *e = &t->tokens[id];
        if (e->text_len == len && memcmp(t->blob + e->text_off, text, len) == 0) return (pl_token)id;
    }
}

/* Insert id; a later token with the same text replaces the earlier one (the
 * reference's map keeps the last). */
static void text_insert(pl_tokenizer *t, pl_token id) {
    const pl_tok_entry *e = &t->tokens[id];
    const char *s = t->blob + e->text_off;
    uint64_t h = pl_tok_hash(s, e->text_len), tag = h >> 32;
    uint64_t nv = (tag << 32) | ((uint64_t)(uint32_t)id + 1);
    for (size_t i = (size_t)h & t->text_mask;; i = (i + 1) & t->text_mask) {
        uint64_t v = t->text_slots[i];
        if (v == 0) {
            t->text_slots[i] = nv;
            return;
        }
        if ((v >> 32) != tag) continue;
        const pl_tok_entry *o = &t->tokens[(uint32_t)v - 1];
        if (o->text_len == e->text_len && memcmp(t->blob + o->text_off, s, e->text_len) == 0) {
            t->text_slots[i] = nv;
            return;
        }
    }
}

/* Insert a merge; a pair listed twice keeps its first (lowest) rank. */
static void merge_insert(pl_tokenizer *t, pl_token a, pl_token b, uint32_t rank) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t h = pl_tok_pair_hash(key);
    uint64_t f = h >> (64 - PL_MERGE_FILTER_BITS);
    t->merge_filter[f >> 6] |= 1ull << (f & 63);
    for (size_t i = (size_t)h & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        if (t->merge_keys[i] == key) return;
        if (t->merge_keys[i] == UINT64_MAX) {
            t->merge_keys[i] = key;
            t->merge_ranks[i] = rank;
            return;
        }
    }
}

/* Empty merge tables (SPM, or a BPE file with no merges). */
static pl_status merge_alloc(pl_tokenizer *t, size_t cap, size_t n_merges) {
    pl_ctx *ctx = t->ctx;
    t->merge_keys = pl_malloc(ctx, cap * sizeof *t->merge_keys);
    t->merge_ranks = pl_malloc(ctx, cap * sizeof *t->merge_ranks);
    t->merge_result = pl_malloc(ctx, (n_merges ? n_merges : 1) * sizeof *t->merge_result);
    t->merge_filter = pl_calloc(ctx, ((size_t)1 << PL_MERGE_FILTER_BITS) / 64, sizeof *t->merge_filter);
    if (!t->merge_keys || !t->merge_ranks || !t->merge_result || !t->merge_filter)
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "tokenizer: out of memory for %zu merges", n_merges);
    memset(t->merge_keys, 0xFF, cap * sizeof *t->merge_keys);
    t->merge_mask = cap - 1;
    return PL_OK;
}

/* ---- spec ---- */

pl_tok_spec pl_tok_spec_empty(pl_vocab_type type) {
    return (pl_tok_spec){
        .type = type,
        .bos = -1, .eos = -1, .eot = -1, .eom = -1, .unk = -1, .pad = -1,
        .add_bos = -1, .add_eos = -1, .add_space_prefix = -1,
    };
}

/* ---- pieces ---- */

/* "<0xNN>" -> NN, or -1. */
static int parse_byte_token(const char *s, size_t n) {
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
              : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* SPM: "▁" -> ' ', everything else as is. Returns bytes written. */
static size_t spm_unescape(const char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (i + 3 <= n && (uint8_t)s[i] == 0xE2 && (uint8_t)s[i + 1] == 0x96 && (uint8_t)s[i + 2] == 0x81) {
            out[o++] = ' ';
            i += 3;
        } else {
            out[o++] = s[i++];
        }
    }
    return o;
}

/* BPE: each character that is a byte-map image becomes its byte; anything
 * else (added tokens' plain text, invalid UTF-8) is copied as is. */
static size_t bpe_unmap(const pl_bytemap *bm, const char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = pl_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (l > 0 && cp < 324 && bm->rev[cp] >= 0) {
            out[o++] = (char)bm->rev[cp];
            i += (size_t)l;
        } else if (l > 0) {
            memcpy(out + o, s + i, (size_t)l);
            o += (size_t)l;
            i += (size_t)l;
        } else {
            out[o++] = s[i++];
        }
    }
    return o;
}

/* ---- build ---- */

static int cmp_special(const void *a, const void *b) {
    const pl_special *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int cmp_token(const void *a, const void *b) {
    pl_token x = *(const pl_token *)a, y = *(const pl_token *)b;
    return x < y ? -1 : x > y;
}

/* Chat-template end-of-turn tokens: in the EOG set when the vocabulary has
 * them as CONTROL or USER_DEFINED tokens. */
static const char *const eog_names[] = {
    "<|im_end|>",  "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>", "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",
};

static pl_status build_fail(pl_tokenizer *t, pl_status st) {
    pl_tokenizer_free(t);
    return st;
}

static pl_token check_id(pl_ctx *ctx, const char *what, int64_t v, int64_t n) {
    if (v < 0) return PL_TOKEN_NULL;
    if (v >= n) {
        pl_log(ctx, PL_LOG_LEVEL_WARN, "tokenizer: %s %lld is outside the vocabulary (%lld tokens); ignored",
               what, (long long)v, (long long)n);
        return PL_TOKEN_NULL;
    }
    return (pl_token)v;
}

static pl_status build_merges(pl_tokenizer *t, const pl_tok_spec *sp) {
    pl_ctx *ctx = t->ctx;
    size_t cap;
    if (sp->n_merges < 0 || (uint64_t)sp->n_merges > INT32_MAX || !table_size((size_t)sp->n_merges, &cap))
        return pl_ctx_err(ctx, PL_ERR_FORMAT, "tokenizer.ggml.merges: bad count %lld", (long long)sp->n_merges);
    pl_status ast = merge_alloc(t, cap, (size_t)sp->n_merges);
    if (ast != PL_OK) return ast;
    t->n_merges = (int32_t)sp->n_merges;
    char *cat = NULL;
    size_t cat_cap = 0;
    pl_status st = PL_OK;
    for (int64_t m = 0; m < sp->n_merges; m++) {
        pl_str s = sp->merges[m];
        /* "left right": the first space after the first byte separates them */
        const char *sp1 = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        if (!sp1) {
            st = pl_ctx_err(ctx, PL_ERR_FORMAT, "tokenizer.ggml.merges[%lld] has no space: '%.*s'",
                            (long long)m, (int)(s.len > 60 ? 60 : s.len), s.ptr ? s.ptr : "");
            break;
        }
        size_t la = (size_t)(sp1 - s.ptr), lb = s.len - la - 1;
        pl_token a = pl_tokenizer_find(t, s.ptr, la);
        pl_token b = pl_tokenizer_find(t, sp1 + 1, lb);
        if (la + lb > cat_cap) {
            char *nc = pl_realloc(ctx, cat, la + lb);
            if (!nc) {
                st = pl_ctx_err(ctx, PL_ERR_NOMEM, "tokenizer: out of memory");
                break;
            }
            cat = nc;
            cat_cap = la + lb;
        }
        memcpy(cat, s.ptr, la);
        memcpy(cat + la, sp1 + 1, lb);
        pl_token ab = pl_tokenizer_find(t, cat, la + lb);
        if (a == PL_TOKEN_NULL || b == PL_TOKEN_NULL || ab == PL_TOKEN_NULL) {
            const char *which = a == PL_TOKEN_NULL ? "left part" : b == PL_TOKEN_NULL ? "right part" : "result";
            st = pl_ctx_err(ctx, PL_ERR_FORMAT,
                            "tokenizer.ggml.merges[%lld] '%.*s': its %s is not in tokenizer.ggml.tokens",
                            (long long)m, (int)(s.len > 60 ? 60 : s.len), s.ptr, which);
            break;
        }
        t->merge_result[m] = ab;
        merge_insert(t, a, b, (uint32_t)m);
    }
    pl_free(ctx, cat);
    return st;
}

static void build_byte_tokens(pl_tokenizer *t) {
    for (int b = 0; b < 256; b++) {
        pl_token id;
        if (t->type == PL_VOCAB_TYPE_BPE) {
            id = pl_tokenizer_find(t, (const char *)t->bytemap.utf8[b], t->bytemap.len[b]);
        } else {
            char buf[8];
            snprintf(buf, sizeof buf, "<0x%02X>", b);
            id = pl_tokenizer_find(t, buf, 6);
            if (id == PL_TOKEN_NULL) {
                char c = (char)b;
                id = pl_tokenizer_find(t, &c, 1);
            }
            if (id == PL_TOKEN_NULL) id = t->unk;
        }
        t->byte_tok[b] = id;
    }
}

static uint32_t special_key(const pl_tokenizer *t, const pl_special *sp) {
    const uint8_t *s = (const uint8_t *)pl_tok_text(t, sp->id);
    return sp->len == 1 ? 0x10000u | s[0] : ((uint32_t)s[0] << 8) | s[1];
}

typedef struct pl_sk {
    uint32_t key;
    int32_t  idx;
} pl_sk;

static int cmp_sk(const void *a, const void *b) {
    const pl_sk *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static pl_status build_specials(pl_tokenizer *t) {
    int32_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        uint8_t ty = t->tokens[i].type;
        if ((ty == PL_TOKEN_TYPE_CONTROL || ty == PL_TOKEN_TYPE_USER_DEFINED || ty == PL_TOKEN_TYPE_UNKNOWN) &&
            t->tokens[i].text_len > 0)
            n++;
    }
    if (n == 0) return PL_OK;
    t->specials = pl_calloc(t->ctx, (size_t)n, sizeof *t->specials);
    t->sk_key = pl_calloc(t->ctx, (size_t)n, sizeof *t->sk_key);
    t->sk_idx = pl_calloc(t->ctx, (size_t)n, sizeof *t->sk_idx);
    t->sk_two = pl_calloc(t->ctx, 8192, 1);
    if (!t->specials || !t->sk_key || !t->sk_idx || !t->sk_two)
        return pl_ctx_err(t->ctx, PL_ERR_NOMEM, "tokenizer: out of memory");
    for (int32_t i = 0; i < t->n_vocab; i++) {
        const pl_tok_entry *e = &t->tokens[i];
        if ((e->type == PL_TOKEN_TYPE_CONTROL || e->type == PL_TOKEN_TYPE_USER_DEFINED ||
             e->type == PL_TOKEN_TYPE_UNKNOWN) && e->text_len > 0) {
            pl_special *s = &t->specials[t->n_specials++];
            s->id = i;
            s->len = e->text_len;
            s->control = e->type != PL_TOKEN_TYPE_USER_DEFINED;
        }
    }
    qsort(t->specials, (size_t)t->n_specials, sizeof *t->specials, cmp_special);
    /* pre-scan index: (key, partition index) pairs sorted by key, equal keys
     * in partition order */
    pl_sk *tmp = pl_calloc(t->ctx, (size_t)t->n_specials, sizeof *tmp);
    if (!tmp) return pl_ctx_err(t->ctx, PL_ERR_NOMEM, "tokenizer: out of memory");
    for (int32_t k = 0; k < t->n_specials; k++) {
        tmp[k].key = special_key(t, &t->specials[k]);
        tmp[k].idx = k;
    }
    qsort(tmp, (size_t)t->n_specials, sizeof *tmp, cmp_sk);
    for (int32_t k = 0; k < t->n_specials; k++) {
        uint32_t key = tmp[k].key;
        t->sk_key[k] = key;
        t->sk_idx[k] = tmp[k].idx;
        uint8_t b0 = (uint8_t)(key & 0x10000u ? key & 0xFF : key >> 8);
        t->sk_first[b0 >> 3] |= (uint8_t)(1u << (b0 & 7));
        if (key & 0x10000u) t->sk_one[b0 >> 3] |= (uint8_t)(1u << (b0 & 7));
        else t->sk_two[key >> 3] |= (uint8_t)(1u << (key & 7));
    }
    pl_free(t->ctx, tmp);
    return PL_OK;
}

static pl_status build_eog(pl_tokenizer *t) {
    size_t nn = sizeof eog_names / sizeof eog_names[0];
    t->eog = pl_calloc(t->ctx, 3 + nn, sizeof *t->eog);
    if (!t->eog) return pl_ctx_err(t->ctx, PL_ERR_NOMEM, "tokenizer: out of memory");
    pl_token ids[3] = { t->eos, t->eot, t->eom };
    for (int i = 0; i < 3; i++)
        if (ids[i] != PL_TOKEN_NULL) t->eog[t->n_eog++] = ids[i];
    for (size_t i = 0; i < nn; i++) {
        pl_token id = pl_tokenizer_find(t, eog_names[i], strlen(eog_names[i]));
        if (id == PL_TOKEN_NULL) continue;
        uint8_t ty = t->tokens[id].type;
        if (ty == PL_TOKEN_TYPE_CONTROL || ty == PL_TOKEN_TYPE_USER_DEFINED) t->eog[t->n_eog++] = id;
    }
    qsort(t->eog, t->n_eog, sizeof *t->eog, cmp_token);
    size_t u = 0;
    for (size_t i = 0; i < t->n_eog; i++)
        if (u == 0 || t->eog[u - 1] != t->eog[i]) t->eog[u++] = t->eog[i];
    t->n_eog = u;
    return PL_OK;
}

pl_status pl_tok_build(pl_ctx *ctx, const pl_tok_spec *sp, pl_tokenizer **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    if (!ctx || !sp) return PL_ERR_INVALID_ARG;
    if (sp->type != PL_VOCAB_TYPE_SPM && sp->type != PL_VOCAB_TYPE_BPE)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "tokenizer: bad vocabulary type %d", (int)sp->type);
    if (sp->n_tokens <= 0 || !sp->tokens)
        return pl_ctx_err(ctx, PL_ERR_FORMAT, "tokenizer.ggml.tokens is missing or empty");
    if (sp->n_tokens >= INT32_MAX)
        return pl_ctx_err(ctx, PL_ERR_FORMAT, "tokenizer.ggml.tokens: %lld tokens is too many",
                          (long long)sp->n_tokens);
    if (sp->scores && sp->n_scores != sp->n_tokens)
        return pl_ctx_err(ctx, PL_ERR_FORMAT, "tokenizer.ggml.scores has %lld entries but tokens has %lld",
                          (long long)sp->n_scores, (long long)sp->n_tokens);
    if (sp->types && sp->n_types != sp->n_tokens)
        return pl_ctx_err(ctx, PL_ERR_FORMAT, "tokenizer.ggml.token_type has %lld entries but tokens has %lld",
                          (long long)sp->n_types, (long long)sp->n_tokens);
    if (sp->type == PL_VOCAB_TYPE_BPE && sp->n_merges > 0 && !sp->merges)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "tokenizer: merges missing");

    size_t n = (size_t)sp->n_tokens;
    /* blob = texts, then pieces (each at most its text + 3 bytes: "▅") */
    size_t text_total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!sp->tokens[i].ptr && sp->tokens[i].len)
            return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "tokenizer: token %zu has no text", i);
        if (!pl_size_add(text_total, sp->tokens[i].len, &text_total))
            return pl_ctx_err(ctx, PL_ERR_OVERFLOW, "tokenizer: vocabulary text too large");
    }
    size_t blob_len, extra;
    if (!pl_size_mul(n, 3, &extra) || !pl_size_add(text_total, text_total, &blob_len) ||
        !pl_size_add(blob_len, extra, &blob_len) || blob_len > UINT32_MAX)
        return pl_ctx_err(ctx, PL_ERR_FORMAT, "tokenizer: vocabulary text too large (%zu bytes)", text_total);
    for (size_t i = 0; i < n && sp->types; i++)
        if (sp->types[i] < 0 || sp->types[i] >= PL_TOKEN_TYPE_COUNT)
            return pl_ctx_err(ctx, PL_ERR_FORMAT, "tokenizer.ggml.token_type[%zu] = %d is not a token type",
                              i, (int)sp->types[i]);

    pl_tokenizer *t = pl_calloc(ctx, 1, sizeof *t);
    if (!t) return pl_ctx_err(ctx, PL_ERR_NOMEM, "tokenizer: out of memory");
    t->ctx = ctx;
    t->type = sp->type;
    t->n_vocab = (int32_t)n;
    t->pre = PL_PRETOK_GPT2;
    pl_bytemap_init(&t->bytemap);
    t->tokens = pl_calloc(ctx, n, sizeof *t->tokens);
    t->blob = pl_malloc(ctx, blob_len ? blob_len : 1);
    size_t cap;
    if (!table_size(n, &cap)) return build_fail(t, pl_ctx_err(ctx, PL_ERR_OVERFLOW, "tokenizer: too many tokens"));
    t->text_slots = pl_calloc(ctx, cap, sizeof *t->text_slots);
    if (!t->tokens || !t->blob || !t->text_slots)
        return build_fail(t, pl_ctx_err(ctx, PL_ERR_NOMEM, "tokenizer: out of memory for %zu tokens", n));
    t->text_mask = cap - 1;

    /* texts */
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        pl_tok_entry *e = &t->tokens[i];
        if (sp->tokens[i].len) memcpy(t->blob + off, sp->tokens[i].ptr, sp->tokens[i].len);
        e->text_off = (uint32_t)off;
        e->text_len = (uint32_t)sp->tokens[i].len;
        off += sp->tokens[i].len;
        float sc = sp->scores ? sp->scores[i] : 0.0f;
        e->score = isnan(sc) ? -INFINITY : sc;
        e->type = (uint8_t)(sp->types ? sp->types[i] : PL_TOKEN_TYPE_NORMAL);
        if (e->type == PL_TOKEN_TYPE_UNDEFINED) e->type = PL_TOKEN_TYPE_NORMAL;
    }
    for (size_t i = 0; i < n; i++) text_insert(t, (pl_token)i);

    /* special ids and flags */
    int64_t bos = sp->bos, eos = sp->eos, unk = sp->unk;
    if (sp->type == PL_VOCAB_TYPE_SPM) { /* SentencePiece's conventional ids */
        if (bos < 0) bos = 1;
        if (eos < 0) eos = 2;
        if (unk < 0) unk = 0;
        if (bos >= (int64_t)n) bos = -1;
        if (eos >= (int64_t)n) eos = -1;
        if (unk >= (int64_t)n) unk = -1;
    }
    t->bos = check_id(ctx, "tokenizer.ggml.bos_token_id", bos, (int64_t)n);
    t->eos = check_id(ctx, "tokenizer.ggml.eos_token_id", eos, (int64_t)n);
    t->eot = check_id(ctx, "tokenizer.ggml.eot_token_id", sp->eot, (int64_t)n);
    t->eom = check_id(ctx, "tokenizer.ggml.eom_token_id", sp->eom, (int64_t)n);
    t->unk = check_id(ctx, "tokenizer.ggml.unknown_token_id", unk, (int64_t)n);
    t->pad = check_id(ctx, "tokenizer.ggml.padding_token_id", sp->pad, (int64_t)n);

    pl_status st = PL_OK;
    if (sp->type == PL_VOCAB_TYPE_BPE) {
        if (!sp->pre.ptr) {
            pl_log(ctx, PL_LOG_LEVEL_WARN, "tokenizer: no tokenizer.ggml.pre; using the gpt-2 pre-tokenizer");
        } else if (!pl_pretok_lookup(sp->pre.ptr, sp->pre.len, &t->pre)) {
            pl_log(ctx, PL_LOG_LEVEL_WARN, "tokenizer: unknown pre-tokenizer '%.*s'; using the gpt-2 rules",
                   (int)(sp->pre.len > 60 ? 60 : sp->pre.len), sp->pre.ptr);
            t->pre = PL_PRETOK_GPT2;
        }
        const pl_pretok_def *row = &pl_pretok_table[t->pre];
        t->add_bos = row->add_bos;
        t->ignore_merges = row->ignore_merges;
        t->add_space_prefix = false; /* byte-level BPE has no space prefix */
        st = build_merges(t, sp);
        if (st == PL_OK) st = pl_regex_set_compile(ctx, t->pre, &t->regex);
    } else {
        t->add_bos = true;
        t->add_space_prefix = sp->add_space_prefix != 0;
        /* an empty merge table keeps the lookups uniform */
        st = merge_alloc(t, 1, 0);
    }
    if (st != PL_OK) return build_fail(t, st);
    if (sp->add_bos >= 0) t->add_bos = sp->add_bos != 0;
    t->add_eos = sp->add_eos > 0;
    if (t->add_bos && t->bos == PL_TOKEN_NULL) t->add_bos = false;
    if (t->add_eos && t->eos == PL_TOKEN_NULL) t->add_eos = false;

    build_byte_tokens(t);
    if (t->type == PL_VOCAB_TYPE_SPM) {
        t->spm_split_words = true;
        for (size_t i = 0; i < n && t->spm_split_words; i++) {
            if (!pl_tok_is_text(t, (pl_token)i)) continue;
            const char *s = t->blob + t->tokens[i].text_off;
            size_t l = t->tokens[i].text_len;
            for (size_t k = 1; k + 3 <= l; k++) {
                if (memcmp(s + k, "\xE2\x96\x81", 3) != 0) continue;
                if (k >= 3 && memcmp(s + k - 3, "\xE2\x96\x81", 3) == 0) continue;
                t->spm_split_words = false;
                break;
            }
        }
    }

    /* pieces */
    for (size_t i = 0; i < n; i++) {
        pl_tok_entry *e = &t->tokens[i];
        const char *s = t->blob + e->text_off;
        char *p = t->blob + off;
        size_t pl = 0;
        int byte;
        switch (e->type) {
        case PL_TOKEN_TYPE_CONTROL:
            e->emit = PL_EMIT_SPECIAL;
            memcpy(p, s, e->text_len);
            pl = e->text_len;
            break;
        case PL_TOKEN_TYPE_UNUSED:
            e->emit = PL_EMIT_NEVER;
            break;
        case PL_TOKEN_TYPE_UNKNOWN:
            if (t->type == PL_VOCAB_TYPE_SPM) { /* SentencePiece shows unknown pieces as U+2585 */
                e->emit = PL_EMIT_ALWAYS;
                memcpy(p, "\xE2\x96\x85", 3);
                pl = 3;
            } else {
                e->emit = PL_EMIT_SPECIAL;
                memcpy(p, s, e->text_len);
                pl = e->text_len;
            }
            break;
        case PL_TOKEN_TYPE_BYTE:
            byte = parse_byte_token(s, e->text_len);
            e->emit = PL_EMIT_ALWAYS;
            if (byte >= 0) {
                p[0] = (char)byte;
                pl = 1;
                break;
            }
            /* a BYTE token that is not <0xNN> decodes as text */
            pl = t->type == PL_VOCAB_TYPE_SPM ? spm_unescape(s, e->text_len, p)
                                              : bpe_unmap(&t->bytemap, s, e->text_len, p);
            break;
        default:
            e->emit = PL_EMIT_ALWAYS;
            if (t->type == PL_VOCAB_TYPE_SPM) pl = spm_unescape(s, e->text_len, p);
            else if (e->type == PL_TOKEN_TYPE_USER_DEFINED) { memcpy(p, s, e->text_len); pl = e->text_len; }
            else pl = bpe_unmap(&t->bytemap, s, e->text_len, p);
            break;
        }
        e->piece_off = (uint32_t)off;
        e->piece_len = (uint32_t)pl;
        off += pl;
        if (pl > t->max_piece) t->max_piece = pl;
    }
    t->blob_len = off;

    st = build_specials(t);
    if (st == PL_OK) st = build_eog(t);
    if (st != PL_OK) return build_fail(t, st);
    *out = t;
    return PL_OK;
}

void pl_tokenizer_free(pl_tokenizer *t) {
    if (!t) return;
    pl_ctx *ctx = t->ctx;
    pl_regex_set_free(&t->regex);
    pl_free(ctx, t->tokens);
    pl_free(ctx, t->blob);
    pl_free(ctx, t->text_slots);
    pl_free(ctx, t->merge_keys);
    pl_free(ctx, t->merge_ranks);
    pl_free(ctx, t->merge_result);
    pl_free(ctx, t->merge_filter);
    pl_free(ctx, t->specials);
    pl_free(ctx, t->sk_key);
    pl_free(ctx, t->sk_idx);
    pl_free(ctx, t->sk_two);
    pl_free(ctx, t->eog);
    pl_free(ctx, t);
}

/* ---- accessors ---- */

pl_vocab_type pl_tokenizer_type(const pl_tokenizer *t) { return t->type; }
int32_t pl_tokenizer_n_vocab(const pl_tokenizer *t) { return t->n_vocab; }
const char *pl_tokenizer_pre(const pl_tokenizer *t) {
    return t->type == PL_VOCAB_TYPE_BPE ? pl_pretok_table[t->pre].name : "";
}
pl_token pl_tokenizer_bos(const pl_tokenizer *t) { return t->bos; }
pl_token pl_tokenizer_eos(const pl_tokenizer *t) { return t->eos; }
pl_token pl_tokenizer_eot(const pl_tokenizer *t) { return t->eot; }
pl_token pl_tokenizer_unk(const pl_tokenizer *t) { return t->unk; }
pl_token pl_tokenizer_pad(const pl_tokenizer *t) { return t->pad; }
bool pl_tokenizer_add_bos(const pl_tokenizer *t) { return t->add_bos; }
bool pl_tokenizer_add_eos(const pl_tokenizer *t) { return t->add_eos; }
size_t pl_tokenizer_max_piece(const pl_tokenizer *t) { return t->max_piece; }

bool pl_tokenizer_is_eog(const pl_tokenizer *t, pl_token id) {
    /* the set holds at most a dozen ids */
    for (size_t i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return true;
    return false;
}

size_t pl_tokenizer_eog_ids(const pl_tokenizer *t, const pl_token **ids) {
    if (ids) *ids = t->eog;
    return t->n_eog;
}

const char *pl_tokenizer_token_text(const pl_tokenizer *t, pl_token id, size_t *len) {
    if (!t || id < 0 || id >= t->n_vocab) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = t->tokens[id].text_len;
    return t->blob + t->tokens[id].text_off;
}

pl_token_type pl_tokenizer_token_type(const pl_tokenizer *t, pl_token id) {
    if (!t || id < 0 || id >= t->n_vocab) return PL_TOKEN_TYPE_COUNT;
    return (pl_token_type)t->tokens[id].type;
}
