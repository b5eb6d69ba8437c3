/*
 * load.c - read a tokenizer from GGUF metadata (a full model or a
 * vocabulary-only file) into a pl_tok_spec and build it.
 */
#include <string.h>

#include "tokenizer/tokenizer_int.h"

#define KEY_MODEL  "tokenizer.ggml.model"
#define KEY_PRE    "tokenizer.ggml.pre"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES  "tokenizer.ggml.token_type"
#define KEY_MERGES "tokenizer.ggml.merges"

/* Rows: the optional special-id keys and where they go. */
static const struct {
    const char *key;
    size_t      off; /* offset of the int64_t field in pl_tok_spec */
} id_keys[] = {
    { "tokenizer.ggml.bos_token_id",     offsetof(pl_tok_spec, bos) },
    { "tokenizer.ggml.eos_token_id",     offsetof(pl_tok_spec, eos) },
    { "tokenizer.ggml.eot_token_id",     offsetof(pl_tok_spec, eot) },
    { "tokenizer.ggml.eom_token_id",     offsetof(pl_tok_spec, eom) },
    { "tokenizer.ggml.unknown_token_id", offsetof(pl_tok_spec, unk) },
    { "tokenizer.ggml.padding_token_id", offsetof(pl_tok_spec, pad) },
};

static const struct {
    const char *key;
    size_t      off; /* offset of the int field in pl_tok_spec */
} flag_keys[] = {
    { "tokenizer.ggml.add_bos_token",    offsetof(pl_tok_spec, add_bos) },
    { "tokenizer.ggml.add_eos_token",    offsetof(pl_tok_spec, add_eos) },
    { "tokenizer.ggml.add_space_prefix", offsetof(pl_tok_spec, add_space_prefix) },
};

/* A string array as pl_str[] (allocated). */
static pl_status read_strs(pl_ctx *ctx, const pl_gguf *g, const char *key, bool required, pl_str **out,
                           int64_t *n) {
    *out = NULL;
    *n = 0;
    pl_gguf_arr a;
    pl_status st = pl_gguf_get_arr(g, key, &a);
    if (st == PL_ERR_NOT_FOUND && !required) return PL_OK;
    if (st == PL_ERR_NOT_FOUND) return pl_ctx_err(ctx, PL_ERR_FORMAT, "%s is missing", key);
    if (st != PL_OK || a.elem_type != PL_GGUF_TYPE_STRING)
        return pl_ctx_err(ctx, PL_ERR_FORMAT, "%s is not an array of strings", key);
    if (a.count > INT32_MAX) return pl_ctx_err(ctx, PL_ERR_FORMAT, "%s has too many entries", key);
    pl_str *s = pl_calloc(ctx, a.count ? (size_t)a.count : 1, sizeof *s);
    if (!s) return pl_ctx_err(ctx, PL_ERR_NOMEM, "tokenizer: out of memory");
    for (uint64_t i = 0; i < a.count; i++) {
        if (pl_gguf_arr_str(&a, i, &s[i]) != PL_OK) {
            pl_free(ctx, s);
            return pl_ctx_err(ctx, PL_ERR_FORMAT, "%s[%llu] is unreadable", key, (unsigned long long)i);
        }
    }
    *out = s;
    *n = (int64_t)a.count;
    return PL_OK;
}

pl_status pl_tokenizer_load(pl_ctx *ctx, const pl_gguf *g, pl_tokenizer **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    if (!ctx || !g) return PL_ERR_INVALID_ARG;

    pl_str model;
    pl_status st = pl_gguf_get_str(g, KEY_MODEL, &model);
    if (st == PL_ERR_NOT_FOUND) return pl_ctx_err(ctx, PL_ERR_FORMAT, "%s is missing (no tokenizer in this file)", KEY_MODEL);
    if (st != PL_OK) return pl_ctx_err(ctx, PL_ERR_FORMAT, "%s is not a string", KEY_MODEL);
    pl_vocab_type type;
    if (pl_str_eq(model, "llama")) type = PL_VOCAB_TYPE_SPM;
    else if (pl_str_eq(model, "gpt2")) type = PL_VOCAB_TYPE_BPE;
    else
        return pl_ctx_err(ctx, PL_ERR_UNSUPPORTED, "%s '%.*s' is not supported (llama and gpt2 are)", KEY_MODEL,
                          (int)(model.len > 40 ? 40 : model.len), model.ptr);

    pl_tok_spec sp = pl_tok_spec_empty(type);
    pl_str *tokens = NULL, *merges = NULL;
    float *scores = NULL;
    int32_t *types = NULL;

    st = read_strs(ctx, g, KEY_TOKENS, true, &tokens, &sp.n_tokens);
    if (st == PL_OK && sp.n_tokens == 0) st = pl_ctx_err(ctx, PL_ERR_FORMAT, "%s is empty", KEY_TOKENS);
    if (st == PL_OK && type == PL_VOCAB_TYPE_BPE) st = read_strs(ctx, g, KEY_MERGES, true, &merges, &sp.n_merges);
    if (st != PL_OK) goto done;
    sp.tokens = tokens;
    sp.merges = merges;

    pl_gguf_arr a;
    if (pl_gguf_get_arr(g, KEY_SCORES, &a) == PL_OK) {
        if (a.elem_type != PL_GGUF_TYPE_FLOAT32 && a.elem_type != PL_GGUF_TYPE_FLOAT64) {
            st = pl_ctx_err(ctx, PL_ERR_FORMAT, "%s is not an array of floats", KEY_SCORES);
            goto done;
        }
        if ((int64_t)a.count != sp.n_tokens) {
            st = pl_ctx_err(ctx, PL_ERR_FORMAT, "%s has %llu entries but %s has %lld", KEY_SCORES,
                            (unsigned long long)a.count, KEY_TOKENS, (long long)sp.n_tokens);
            goto done;
        }
        scores = pl_calloc(ctx, (size_t)a.count, sizeof *scores);
        if (!scores) {
            st = pl_ctx_err(ctx, PL_ERR_NOMEM, "tokenizer: out of memory");
            goto done;
        }
        for (uint64_t i = 0; i < a.count; i++) pl_gguf_arr_f32(&a, i, &scores[i]);
        sp.scores = scores;
        sp.n_scores = (int64_t)a.count;
    }
    if (pl_gguf_get_arr(g, KEY_TYPES, &a) == PL_OK) {
        if ((int64_t)a.count != sp.n_tokens) {
            st = pl_ctx_err(ctx, PL_ERR_FORMAT, "%s has %llu entries but %s has %lld", KEY_TYPES,
                            (unsigned long long)a.count, KEY_TOKENS, (long long)sp.n_tokens);
            goto done;
        }
        types = pl_calloc(ctx, (size_t)a.count, sizeof *types);
        if (!types) {
            st = pl_ctx_err(ctx, PL_ERR_NOMEM, "tokenizer: out of memory");
            goto done;
        }
        for (uint64_t i = 0; i < a.count; i++) {
            int64_t v;
            if (pl_gguf_arr_i64(&a, i, &v) != PL_OK || v < 0 || v >= PL_TOKEN_TYPE_COUNT) {
                st = pl_ctx_err(ctx, PL_ERR_FORMAT, "%s[%llu] is not a token type (0..6)", KEY_TYPES,
                                (unsigned long long)i);
                goto done;
            }
            types[i] = (int32_t)v;
        }
        sp.types = types;
        sp.n_types = (int64_t)a.count;
    }

    pl_str pre;
    if (pl_gguf_get_str(g, KEY_PRE, &pre) == PL_OK) sp.pre = pre;

    for (size_t i = 0; i < sizeof id_keys / sizeof id_keys[0]; i++) {
        int64_t v;
        pl_status ks = pl_gguf_get_i64(g, id_keys[i].key, &v);
        if (ks == PL_ERR_NOT_FOUND) continue;
        if (ks != PL_OK) {
            st = pl_ctx_err(ctx, PL_ERR_FORMAT, "%s is not an integer", id_keys[i].key);
            goto done;
        }
        memcpy((char *)&sp + id_keys[i].off, &v, sizeof v);
    }
    for (size_t i = 0; i < sizeof flag_keys / sizeof flag_keys[0]; i++) {
        bool v;
        pl_status ks = pl_gguf_get_bool(g, flag_keys[i].key, &v);
        if (ks == PL_ERR_NOT_FOUND) continue;
        if (ks != PL_OK) {
            st = pl_ctx_err(ctx, PL_ERR_FORMAT, "%s is not a bool", flag_keys[i].key);
            goto done;
        }
        int iv = v;
        memcpy((char *)&sp + flag_keys[i].off, &iv, sizeof iv);
    }

    st = pl_tok_build(ctx, &sp, out);
done:
    pl_free(ctx, tokens);
    pl_free(ctx, merges);
    pl_free(ctx, scores);
    pl_free(ctx, types);
    return st;
}

pl_status pl_tokenizer_load_file(pl_ctx *ctx, const char *path, pl_tokenizer **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    if (!ctx || !path) return PL_ERR_INVALID_ARG;
    pl_gguf *g = NULL;
    pl_status st = pl_gguf_open(ctx, path, &g);
    if (st != PL_OK) return st;
    st = pl_tokenizer_load(ctx, g, out);
    pl_gguf_free(g);
    return st;
}
