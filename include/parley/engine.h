/*
 * parley/engine.h - chat sessions: a conversation rendered through the chat
 * template, trimmed to a token budget, answered with the KV cache of earlier
 * turns reused, and streamed as two channels (reasoning and content).
 *
 *   pl_engine   a loaded model's chat side: its tokenizer and compiled chat
 *               template (the model's, a named built-in, or given source;
 *               ChatML when the model has none). Immutable, shared by sessions.
 *   pl_conv     a conversation: an optional system message and a list of
 *               user / assistant / tool messages; JSON round trip
 *               ({"messages":[{"role","content"}, ...]}).
 *   pl_session  one conversation being held: its pl_conv, a KV cache (its own
 *               pl_context, or one sequence of a borrowed one), the sampler,
 *               and the stop / think stages of parley/text.h.
 *
 * A turn (pl_session_turn = add the user message, then pl_session_respond):
 *   1. render system + history + generation prompt through the template
 *      (enable_thinking is passed as a template variable) and tokenize it with
 *      special-token parsing (as the model was trained: control-token text
 *      in messages becomes control tokens);
 *   2. fit it in the history budget (n_ctx - max_tokens - reserve, or
 *      history_budget): keep the system message and the newest whole turns;
 *      dropping starts at a user message, and is sticky (later turns keep the
 *      same start, so the cached prefix stays valid) until the conversation is
 *      replaced. When it drops, it drops until the prompt fits in trim_target
 *      percent of the budget, so the next turns need not drop again. Only when
 *      the newest user message alone (with the system message) exceeds the
 *      budget is its start cut, at a character boundary, and the stats say so;
 *   3. find the longest common prefix of the prompt's tokens and the tokens in
 *      the KV cache, truncate the cache there and prefill only the rest;
 *   4. sample until an end-of-generation token of the tokenizer, a stop string,
 *      max_tokens, a full context (finish "length": the cache is never written
 *      past n_ctx and nothing is dropped silently) or the cancel flag;
 *   5. stream the text through pl_stop -> pl_think to the on_text callback and
 *      append the content as the assistant message.
 *
 * Costs: a turn renders and tokenizes the whole conversation (a few
 * milliseconds for a full 4k context), more times (O(log n)) only when it has
 * to trim. The per-token loop (sample, detokenize, stop/think stages,
 * callback, one-token decode) allocates nothing: buffers are sized at init
 * (prompt and cache token arrays of n_ctx) or grow geometrically per turn
 * (the reply text).
 *
 * Ownership and threads:
 *  - pl_engine borrows the model (it must outlive the engine and its
 *    sessions); it owns its tokenizer and template. After init it is
 *    immutable: sessions on any threads may share it.
 *  - pl_session is single-thread state (one call at a time). It borrows the
 *    engine, and a borrowed pl_context when given one (the session owns that
 *    sequence; nothing else may touch it). The cancel flag in the callbacks
 *    may be set from any thread.
 *  - pl_conv is single-thread state. A session's conv belongs to the session.
 *  - Every pl_*_free(NULL) is a no-op.
 * Nothing here prints; errors come back as a pl_status with the text in
 * pl_session_last_error() (or pl_ctx_last_error(ctx) for constructors).
 */
#ifndef PARLEY_ENGINE_H
#define PARLEY_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"
#include "parley/model.h"
#include "parley/sample.h"
#include "parley/text.h"
#include "parley/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ================= engine ================= */

typedef struct pl_engine pl_engine;

typedef struct pl_engine_params {
    /* Template source text (e.g. a --chat-template-file's contents), NUL
     * terminated; wins over everything. NULL: not given. */
    const char *template_source;
    /* A built-in template name (see pl_template_builtin); wins over the
     * model's. NULL: the model's tokenizer.chat_template, else ChatML. */
    const char *template_name;
} pl_engine_params;

pl_engine_params pl_engine_default_params(void);

/* Load the model's tokenizer and compile the template. Errors
 * (PL_ERR_FORMAT for a bad vocabulary or template, PL_ERR_NOT_FOUND for an
 * unknown built-in name) leave a one-line message in pl_ctx_last_error(ctx).
 * params NULL: defaults. ctx must outlive the engine. */
pl_status pl_engine_init(pl_ctx *ctx, const pl_model *model, const pl_engine_params *params, pl_engine **out);
void pl_engine_free(pl_engine *e);

const pl_model *pl_engine_model(const pl_engine *e);
const pl_tokenizer *pl_engine_tokenizer(const pl_engine *e);
/* Where the template came from: "model", "built-in NAME", "source", or
 * "built-in chatml (the model has none)". */
const char *pl_engine_template_origin(const pl_engine *e);

/* ================= conversation ================= */

typedef enum pl_role {
    PL_ROLE_SYSTEM = 0,
    PL_ROLE_USER,
    PL_ROLE_ASSISTANT,
    PL_ROLE_TOOL,
    PL_ROLE_COUNT
} pl_role;

/* "system", "user", "assistant", "tool"; "unknown" outside the enum. */
const char *pl_role_name(pl_role r);
/* One of the names above; PL_ERR_INVALID_ARG otherwise. */
pl_status pl_role_parse(const char *s, pl_role *out);

typedef struct pl_conv pl_conv;

/* Limits against untrusted input (a loaded file, an API request). */
#define PL_CONV_MAX_MESSAGES 100000
#define PL_CONV_MAX_BYTES    ((size_t)64 << 20) /* all content together */

pl_status pl_conv_init(pl_ctx *ctx, pl_conv **out);
void pl_conv_free(pl_conv *c);
/* Set or (NULL or "") remove the system message. */
pl_status pl_conv_set_system(pl_conv *c, const char *text);
/* The system message, or NULL when there is none. */
const char *pl_conv_system(const pl_conv *c);
/* Append a message (role other than system). content[0..len) must not hold
 * a NUL byte (PL_ERR_INVALID_ARG); PL_ERR_RANGE past the limits. */
pl_status pl_conv_add(pl_conv *c, pl_role role, const char *content, size_t len);
/* Messages, not counting the system message. */
size_t pl_conv_count(const pl_conv *c);
/* Role / content (NUL terminated, owned by the conv, valid until it changes)
 * of message i; PL_ROLE_COUNT / NULL for i out of range. */
pl_role pl_conv_role(const pl_conv *c, size_t i);
const char *pl_conv_content(const pl_conv *c, size_t i);
/* Remove the last message (no-op when empty). */
void pl_conv_pop(pl_conv *c);
/* Remove every message; the system message stays. */
void pl_conv_clear(pl_conv *c);
/* {"messages":[{"role":"system",...},{"role":"user","content":"..."},...]},
 * pretty-printed, NUL terminated; *out is freed with pl_free(ctx). */
pl_status pl_conv_to_json(const pl_conv *c, char **out);
/* Replace the conversation from JSON: {"messages":[...]} or a bare array of
 * {"role","content"} objects (other fields are ignored; a system message must
 * come first). On error (PL_ERR_FORMAT with the reason in
 * pl_ctx_last_error(ctx)) the conversation is unchanged. */
pl_status pl_conv_from_json(pl_conv *c, const char *text, size_t len);

/* ================= session ================= */

typedef enum pl_finish {
    PL_FINISH_STOP = 0, /* an end-of-generation token or a stop string */
    PL_FINISH_LENGTH,   /* max_tokens, or the context is full */
    PL_FINISH_CANCEL,   /* the cancel flag was set */
    PL_FINISH_COUNT
} pl_finish;

/* "stop", "length", "cancel"; "unknown" outside the enum. */
const char *pl_finish_name(pl_finish f);

/* Pick the next token instead of the sampler (constrained decoding, recorded
 * streams in tests): logits[n_vocab] of the next position; return a token id
 * in [0, n_vocab) or a negative pl_status to fail the turn. Called once per
 * generated token, before any stop check. */
typedef int32_t (*pl_session_pick_fn)(void *ud, const float *logits, int32_t n_vocab);

typedef struct pl_session_params {
    /* The KV cache: a context of its own ... */
    int32_t n_ctx;     /* tokens; 0: min(model's trained length, 4096) */
    int32_t n_batch;   /* 0: 512 */
    int     n_threads; /* 0: physical cores */
    pl_pool *pool;     /* borrowed pool for the own context, or NULL */
    /* ... or one sequence of a borrowed context (the session truncates it to 0
     * at init). NULL: make one. */
    pl_context *context;
    int32_t seq;
    /* ... or none: a session that only builds prompts (pl_session_prompt,
     * with its trimming) for n_ctx tokens and never decodes; respond fails
     * with PL_ERR_INVALID_ARG. For a server that renders requests on its
     * HTTP threads and decodes them elsewhere. Default false. */
    bool render_only;

    pl_sampler_params sampling; /* max_tokens is the limit per answer; 0: the context */
    int32_t reserve;            /* tokens kept free besides max_tokens (default 0) */
    int32_t history_budget;     /* prompt tokens at most; 0: n_ctx - max_tokens - reserve */
    int32_t trim_target;        /* percent of the budget a trimmed prompt is cut to,
                                   1..100 (default 75: room for a few more turns
                                   before the prefix breaks again) */
    pl_think_mode reasoning;    /* default separate */
    bool enable_thinking;       /* template variable (default true) */
    const char *const *stops;   /* stop strings, copied; may be NULL */
    size_t n_stops;
    const char *now;            /* fixed strftime_now() result (tests); NULL: clock */
    pl_session_pick_fn pick;    /* NULL: the sampler */
    void *pick_ud;
} pl_session_params;

pl_session_params pl_session_default_params(void);

typedef struct pl_session pl_session;

/* Make a session (its context, sampler, stages and buffers; KV and scratch as
 * pl_context_memory_usage reports). ctx gives allocation and template
 * scratch; a failing call of this session writes its error text there too,
 * so sessions running on different threads need their own ctx. Errors:
 * PL_ERR_INVALID_ARG (bad params, max_tokens + reserve leaving no room for a
 * prompt), PL_ERR_NOMEM, and the context's and sampler's errors. */
pl_status pl_session_init(pl_ctx *ctx, const pl_engine *e, const pl_session_params *params, pl_session **out);
void pl_session_free(pl_session *s);

typedef struct pl_turn_stats {
    int32_t  prompt_tokens;    /* tokens of the rendered prompt */
    int32_t  cached_tokens;    /* of those, reused from the KV cache */
    int32_t  prefill_tokens;   /* decoded for the prompt (prompt - cached) */
    int32_t  generated_tokens; /* sampled, not counting the end-of-generation token */
    int32_t  reasoning_tokens; /* of those, inside the reasoning block */
    double   ttft_ms;          /* turn start to the first token sampled */
    double   prefill_ms;
    double   prefill_tok_s;
    double   gen_ms;           /* first token to the last */
    double   gen_tok_s;        /* (generated - 1) / gen_ms */
    pl_finish finish;
    int32_t  budget;           /* the prompt budget in tokens */
    int32_t  dropped_messages; /* oldest messages left out of this prompt */
    int32_t  dropped_now;      /* of those, left out first in this turn */
    size_t   truncated_bytes;  /* bytes cut from the start of the newest user message */
    bool     prefix_broken;    /* this turn's trimming changed the history's start */
    int32_t  kv_tokens;        /* tokens in the cache after the turn */
} pl_turn_stats;

typedef struct pl_turn_callbacks {
    /* Reasoning and content deltas (only content when the mode is none or
     * hidden). The text is valid only during the call. May be NULL. */
    pl_channel_fn on_text;
    /* Each generated token id, end-of-generation included. May be NULL. */
    void (*on_token)(void *ud, pl_token id);
    /* Checked before each token: non-zero ends the turn with finish "cancel".
     * May be set from another thread or a signal handler. NULL: never. */
    const volatile _Atomic int *cancel;
    void *ud;
} pl_turn_callbacks;

/* Add user_text[0..len) as a user message and answer it. On an error before
 * generation starts the user message is removed again; a failure during
 * generation keeps it (with no answer). cb and stats may be NULL. */
pl_status pl_session_turn(pl_session *s, const char *user_text, size_t len, const pl_turn_callbacks *cb,
                          pl_turn_stats *stats);
/* Answer the conversation as it stands (e.g. one replaced from an API
 * request) and append the answer as an assistant message. */
pl_status pl_session_respond(pl_session *s, const pl_turn_callbacks *cb, pl_turn_stats *stats);
/* Steps 1-2 only: the prompt the next respond would use, with the trimming
 * stats filled in (budget, dropped_*, truncated_bytes, prefix_broken,
 * prompt_tokens, and cached_tokens as the common prefix with the cache). It
 * commits the trimming like respond would. *tokens stay valid until the next
 * call on s. */
pl_status pl_session_prompt(pl_session *s, const pl_token **tokens, int32_t *n_tokens, pl_turn_stats *stats);

/* The session's conversation. Change it freely between turns; the next turn
 * finds what of the cache is still valid. */
pl_conv *pl_session_conv(pl_session *s);
/* Forget the conversation (the system message stays) and clear the cache. */
void pl_session_reset(pl_session *s);
/* Replace the sampler settings (a new sampler: penalty history and PRNG
 * restart). max_tokens applies from the next turn on. */
pl_status pl_session_set_sampling(pl_session *s, const pl_sampler_params *p);

/* Replace the stop strings (copied; limits as pl_stop_init). On error the
 * old ones stay. */
pl_status pl_session_set_stops(pl_session *s, const char *const *stops, size_t n_stops);

int32_t pl_session_n_ctx(const pl_session *s);
/* The tokens the KV cache holds, in order; returns their count. */
int32_t pl_session_kv_tokens(const pl_session *s, const pl_token **tokens);
/* The rendered text of the last prompt (NUL terminated), valid until the next call. */
const char *pl_session_prompt_text(const pl_session *s);
const pl_session_params *pl_session_params_get(const pl_session *s);
/* Last error text of this session ("" when none). */
const char *pl_session_last_error(const pl_session *s);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_ENGINE_H */
