/*
 * engine.c - pl_engine: a model's tokenizer and chat template, loaded once and
 * shared by sessions; the role and finish-reason name tables.
 */
#include <stdio.h>
#include <string.h>

#include "engine/engine_int.h"
#include "parley/gguf.h"

static const char *const role_names[PL_ROLE_COUNT] = {
    [PL_ROLE_SYSTEM] = "system",
    [PL_ROLE_USER] = "user",
    [PL_ROLE_ASSISTANT] = "assistant",
    [PL_ROLE_TOOL] = "tool",
};

static const char *const finish_names[PL_FINISH_COUNT] = {
    [PL_FINISH_STOP] = "stop",
    [PL_FINISH_LENGTH] = "length",
    [PL_FINISH_CANCEL] = "cancel",
};

const char *pl_role_name(pl_role r) {
    return (unsigned)r < PL_ROLE_COUNT ? role_names[r] : "unknown";
}

pl_status pl_role_parse(const char *s, pl_role *out) {
    for (int i = 0; s && i < PL_ROLE_COUNT; i++)
        if (strcmp(s, role_names[i]) == 0) {
            *out = (pl_role)i;
            return PL_OK;
        }
    return PL_ERR_INVALID_ARG;
}

const char *pl_finish_name(pl_finish f) {
    return (unsigned)f < PL_FINISH_COUNT ? finish_names[f] : "unknown";
}

pl_engine_params pl_engine_default_params(void) {
    return (pl_engine_params){ 0 };
}

/* Copy of a special token's vocabulary text (what templates print as
 * bos_token / eos_token), or NULL when the vocabulary has none. */
static char *token_text(pl_ctx *ctx, const pl_tokenizer *tok, pl_token id) {
    size_t len = 0;
    const char *t = id >= 0 ? pl_tokenizer_token_text(tok, id, &len) : NULL;
    if (!t) return NULL;
    char *s = pl_malloc(ctx, len + 1);
    if (s) {
        memcpy(s, t, len);
        s[len] = 0;
    }
    return s;
}

pl_status pl_engine_init(pl_ctx *ctx, const pl_model *model, const pl_engine_params *params, pl_engine **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    if (!model) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "engine: no model");
    pl_engine_params p = params ? *params : pl_engine_default_params();
    pl_engine *e = pl_calloc(ctx, 1, sizeof *e);
    if (!e) return pl_ctx_err(ctx, PL_ERR_NOMEM, "engine: out of memory");
    e->ctx = ctx;
    e->model = model;
    pl_status st = pl_tokenizer_load(ctx, pl_model_gguf(model), &e->tok);
    if (st != PL_OK) {
        pl_ctx_err(ctx, st, "tokenizer: %s", pl_ctx_last_error(ctx));
        goto fail;
    }
    if (pl_tokenizer_n_vocab(e->tok) > pl_model_get_info(model)->n_vocab) {
        st = pl_ctx_err(ctx, PL_ERR_FORMAT, "the vocabulary has %d tokens, the model only %d rows of embeddings",
                        pl_tokenizer_n_vocab(e->tok), pl_model_get_info(model)->n_vocab);
        goto fail;
    }
    e->bos_text = token_text(ctx, e->tok, pl_tokenizer_bos(e->tok));
    e->eos_text = token_text(ctx, e->tok, pl_tokenizer_eos(e->tok));

    const char *src = NULL;
    size_t len = 0;
    pl_str ms;
    if (p.template_source) {
        src = p.template_source;
        len = strlen(src);
        snprintf(e->origin, sizeof e->origin, "source");
    } else if (p.template_name) {
        if (!(src = pl_template_builtin(p.template_name))) {
            st = pl_ctx_err(ctx, PL_ERR_NOT_FOUND, "no built-in chat template named '%s'", p.template_name);
            goto fail;
        }
        len = strlen(src);
        snprintf(e->origin, sizeof e->origin, "built-in %s", p.template_name);
    } else if (pl_gguf_get_str(pl_model_gguf(model), "tokenizer.chat_template", &ms) == PL_OK) {
        src = ms.ptr;
        len = ms.len;
        snprintf(e->origin, sizeof e->origin, "model");
    } else {
        src = pl_template_builtin(PL_TEMPLATE_DEFAULT_NAME);
        len = strlen(src);
        snprintf(e->origin, sizeof e->origin, "built-in %s (the model has none)", PL_TEMPLATE_DEFAULT_NAME);
    }
    st = pl_template_compile(ctx, src, len, &e->tmpl);
    if (st != PL_OK) {
        pl_ctx_err(ctx, st, "chat template (%s): %s", e->origin, pl_ctx_last_error(ctx));
        goto fail;
    }
    *out = e;
    return PL_OK;
fail:
    pl_engine_free(e);
    return st;
}

void pl_engine_free(pl_engine *e) {
    if (!e) return;
    pl_template_free(e->tmpl);
    pl_tokenizer_free(e->tok);
    pl_free(e->ctx, e->bos_text);
    pl_free(e->ctx, e->eos_text);
    pl_free(e->ctx, e);
}

const pl_model *pl_engine_model(const pl_engine *e) { return e ? e->model : NULL; }
const pl_tokenizer *pl_engine_tokenizer(const pl_engine *e) { return e ? e->tok : NULL; }
const char *pl_engine_template_origin(const pl_engine *e) { return e ? e->origin : ""; }
