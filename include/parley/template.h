/*
 * parley/template.h - chat templates: a Jinja2-subset renderer for the GGUF
 * `tokenizer.chat_template`, plus named built-in templates.
 *
 * Semantics follow Python's jinja2 as the model authors run it (Hugging Face
 * transformers): ImmutableSandboxedEnvironment with trim_blocks and
 * lstrip_blocks on, keep_trailing_newline off, the loopcontrols extension
 * ({% break %}, {% continue %}), `raise_exception(msg)`, `strftime_now(fmt)`,
 * and a `tojson` filter that is Python's json.dumps(x, ensure_ascii=False,
 * indent=None, separators=None, sort_keys=False). Lists and dicts are
 * immutable (no append/update); namespace() attributes are set with
 * `{% set ns.attr = ... %}`.
 *
 * Supported: if/elif/else, for (loop.*, `for x in y if c`, else, break,
 * continue, tuple unpacking), set (also block set and `set ns.attr`), macro,
 * call, filter blocks, with, raw, generation; the usual expressions, filters,
 * tests and string/dict methods. Everything else (include, extends, import,
 * block, recursive loops, unknown filters or tests) is refused at compile time
 * with a position.
 *
 * Differences from Python worth knowing:
 *  - JSON numbers come from cJSON as doubles: an integral value with
 *    |x| < 2^53 becomes an int (so `1.0` in a message renders as `1`).
 *  - Integers are 64-bit; overflow is an error instead of a big integer.
 *  - upper/lower/title/capitalize map ASCII, Latin-1, Latin Extended-A,
 *    Greek and Cyrillic letters; other scripts are left unchanged.
 *  - range() gives a list; dict views (.items(), .keys()) are lists; the
 *    generator filters (map, select, reject, selectattr, rejectattr, unique,
 *    items, reverse) behave as generators (always true, no len(), one pass)
 *    but are evaluated eagerly, so only their printed form differs.
 *  - Filters/tests on blocks (`{% set x | f %}`), recursive loops, include /
 *    import / extends / block are not supported.
 *
 * Errors (message in pl_ctx_last_error(ctx), always with "line L, column C"):
 *  - compile: PL_ERR_FORMAT for syntax errors, PL_ERR_UNSUPPORTED for
 *    constructs this engine does not implement, PL_ERR_RANGE for a template
 *    over the size/nesting limits;
 *  - render: PL_ERR_INVALID_ARG when the template itself refused the
 *    conversation with raise_exception(msg) (the text starts
 *    "template refused: " followed by msg), PL_ERR_FORMAT for a runtime
 *    error (type errors, calling something undefined, ...), PL_ERR_RANGE when
 *    a limit was hit, PL_ERR_NOMEM when the allocator failed.
 *
 * Ownership and thread-safety:
 *  - A compiled pl_template is immutable: any number of threads may render it
 *    at once, each with its own pl_ctx (or a shared ctx when the error text
 *    is not needed: only a failing call writes it).
 *  - Rendering never keeps pointers into the inputs after it returns.
 *  - pl_template_buf is a plain caller-owned struct; its data comes from the
 *    ctx allocator and is released with pl_template_buf_free().
 */
#ifndef PARLEY_TEMPLATE_H
#define PARLEY_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "parley/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The name of the template used when a model carries none. */
#define PL_TEMPLATE_DEFAULT_NAME "chatml"

typedef struct pl_template pl_template;

/* Compile template source (UTF-8, need not be NUL-terminated). On failure
 * *out is NULL and pl_ctx_last_error(ctx) says what and where. Sources over
 * 4 MiB are refused. Cost: one pass; the AST lives in one arena. */
pl_status pl_template_compile(pl_ctx *ctx, const char *src, size_t len, pl_template **out);
void pl_template_free(pl_template *t);

/* A growable output buffer. Zero-initialize with .ctx set (the allocator);
 * data is NUL-terminated whenever it is non-NULL. Render appends. */
typedef struct pl_template_buf {
    pl_ctx *ctx;
    char   *data;
    size_t  len;
    size_t  cap;
} pl_template_buf;

/* Release data (the struct itself belongs to the caller). NULL is a no-op. */
void pl_template_buf_free(pl_template_buf *b);

/* The clock behind strftime_now(): seconds since the Unix epoch. */
typedef int64_t (*pl_template_clock_fn)(void *ud);

/* Limits against hostile templates. 0 means the default shown. */
typedef struct pl_template_limits {
    size_t   max_output; /* bytes appended by one render (16 MiB) */
    size_t   max_memory; /* scratch bytes one render may allocate (256 MiB) */
    uint64_t max_steps;  /* loop iterations + calls (10,000,000) */
    int      max_depth;  /* nesting of evaluation: expressions, statements, macro calls (500) */
} pl_template_limits;

typedef struct pl_template_params {
    const cJSON *messages;        /* array of message objects {role, content, ...}; NULL: [] */
    const cJSON *vars;            /* object of extra variables (tools, enable_thinking,
                                   * date_string, ...) or NULL. The fields below win
                                   * over a var of the same name. */
    bool         add_generation_prompt;
    const char  *bos_token;       /* NULL: undefined (renders as "") unless in vars */
    const char  *eos_token;
    const char  *now;             /* fixed result of strftime_now(fmt); NULL: use clock */
    pl_template_clock_fn clock;   /* NULL: the system clock; local time is used */
    void        *clock_ud;
    pl_template_limits limits;
} pl_template_params;

/* Render into out (appending; out->ctx must be set). On failure out->len is
 * restored, nothing is appended, and the error is on ctx (see above).
 * ctx provides the scratch memory, freed before returning. */
pl_status pl_template_render(const pl_template *t, pl_ctx *ctx, const pl_template_params *p,
                             pl_template_buf *out);

/* ---- named built-in templates ---- */

/* Source of a built-in ("chatml", "llama3", "llama2", "mistral", "phi3",
 * "gemma", "deepseek-r1"; case-insensitive), or NULL. Static storage. */
const char *pl_template_builtin(const char *name);
/* The i-th built-in's name (0-based) for listings; NULL past the end. */
const char *pl_template_builtin_name(size_t i);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_TEMPLATE_H */
