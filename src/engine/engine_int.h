/* engine_int.h - private structures of the engine module (engine, conv, session). */
#ifndef PL_ENGINE_INT_H
#define PL_ENGINE_INT_H

#include <cjson/cJSON.h>

#include "parley/engine.h"
#include "parley/template.h"

struct pl_engine {
    pl_ctx             *ctx;
    const pl_model     *model;
    pl_tokenizer       *tok;
    pl_template        *tmpl;
    char               *bos_text; /* token text for the template's bos_token, or NULL */
    char               *eos_text;
    char                origin[96];
};

struct pl_conv {
    pl_ctx  *ctx;
    char    *system;   /* NULL when none */
    cJSON   *messages; /* array of {"role","content"} objects (no system message) */
    size_t   bytes;    /* content bytes, system included */
    /* Bumped by every change other than appending: a session keeps its trim
     * point only while this stays the same. */
    uint64_t version;
};

/* A growable byte buffer (grows by doubling: amortized, never per token). */
typedef struct pl_ebuf {
    char  *data;
    size_t len, cap;
} pl_ebuf;

struct pl_session {
    pl_ctx            *ctx;
    const pl_engine   *e;
    pl_session_params  p;
    char             **stops;   /* copies of p.stops */
    pl_conv           *conv;
    pl_context        *lc;      /* the context in use (own or borrowed) */
    bool               own_lc;
    int32_t            seq, n_ctx, n_vocab;
    pl_sampler        *sampler;
    pl_detok          *detok;
    pl_stop           *stop;
    pl_think          *think;
    pl_tok_scratch    *scratch;
    pl_template_buf    text;    /* the rendered prompt */
    pl_token          *prompt;  /* [n_ctx] tokens of the rendered prompt */
    int32_t            n_prompt;
    pl_token          *cache;   /* [n_ctx] tokens held by the KV cache, in order */
    int32_t            n_cache;
    /* trimming: messages [0, first) of the conv are left out of the prompt */
    size_t             first;
    uint64_t           conv_version;
    /* the turn being generated */
    const pl_turn_callbacks *cb;
    pl_ebuf            content, reasoning;
    char              *piece;   /* [piece_cap] a token's text without NUL bytes */
    size_t             piece_cap;
    bool               generating; /* this turn got past the prefill */
    bool               oom;     /* a reply buffer could not grow: the turn fails */
    char               err[PL_CTX_ERR_CAP];
};

/* Render + tokenize system + messages[first..] with the newest user message
 * (index `cut_msg`, or SIZE_MAX for none) starting at byte `cut`; the tokens
 * go to s->prompt (at most n_ctx; *n gets the full count). */
pl_status pl_session_render(pl_session *s, size_t first, size_t cut_msg, size_t cut, int32_t *n);
/* Steps 1-2 of a turn: fills s->prompt / s->n_prompt and the trim stats. */
pl_status pl_session_build_prompt(pl_session *s, pl_turn_stats *st);
/* Set the session error (printf-style) and return st. */
pl_status pl_session_err(pl_session *s, pl_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
