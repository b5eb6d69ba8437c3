/*
 * parley/text.h - streaming text stages between the sampler and the user:
 *
 *   token text -> pl_stop (stop strings) -> pl_think (reasoning | content)
 *              -> content -> pl_speakable (markdown to plain words)
 *              -> pl_sentences (one sentence at a time, for speech)
 *
 * Every stage is fed arbitrary chunks (a token's text, a network read, one
 * byte) and gives the same output whatever the chunking: only how that output
 * is cut into callback calls may differ. Each stage holds back just the bytes
 * it cannot decide yet (a possible stop-string start, a partial tag, an open
 * markdown construct, an unfinished sentence), in a buffer of fixed size made
 * at init: feeding never allocates, and untrusted input cannot grow it. When
 * a bound is hit the held text is released as ordinary text.
 *
 * Output goes to callbacks. A pointer passed to a callback is valid only
 * during that call and is not NUL-terminated; len is always >= 1. A callback
 * must not feed the stage that is calling it (feeding the next stage is the
 * intended use).
 *
 * Ownership: each object is owned by the caller and freed with its _free
 * (NULL is a no-op); strings given to _init are copied.
 * Thread-safety: objects are single-thread state (one per stream); distinct
 * objects are independent. The free functions without an object are
 * thread-safe.
 */
#ifndef PARLEY_TEXT_H
#define PARLEY_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A piece of text from a stage. */
typedef void (*pl_text_fn)(void *ud, const char *text, size_t len);

/* ================= stop strings ================= */

/* Limits on what a caller (an API request) may ask for. */
#define PL_STOP_MAX_STRINGS 32
#define PL_STOP_MAX_LEN     256 /* bytes per stop string */

/* pl_stop: finds the first stop string in a stream of text.
 *
 * Text is passed on as soon as it cannot be the start of a stop string; the
 * longest tail that is a prefix of some stop string is held back, and so is an
 * incomplete UTF-8 sequence at the end (so every piece passed on ends on a
 * character boundary when the input is valid UTF-8). On a hit, the text before
 * the stop string is passed on and everything from it on is dropped.
 *
 * "First" means the stop string that is completed earliest in the stream; of
 * two completed by the same byte, the longer one. Empty strings are ignored.
 * Cost: O(bytes x stop strings), KMP per string, no backtracking. */
typedef struct pl_stop pl_stop;

/* stops[n_stops]: NUL-terminated strings, copied. n_stops may be 0 (the stage
 * then only keeps UTF-8 characters whole). PL_ERR_RANGE past the limits. */
pl_status pl_stop_init(pl_ctx *ctx, const char *const *stops, size_t n_stops, pl_stop **out);
void pl_stop_free(pl_stop *st);
/* Feed a chunk; emit gets the text that is now safe. Returns true once a stop
 * string has been hit (then, and on every later call, nothing more is fed). */
bool pl_stop_feed(pl_stop *st, const char *text, size_t len, pl_text_fn emit, void *ud);
/* End of stream without a hit: pass on whatever is held. */
void pl_stop_finish(pl_stop *st, pl_text_fn emit, void *ud);
/* Index (into the array given at init) of the stop string hit, or -1. */
int pl_stop_hit(const pl_stop *st);
/* Bytes held back right now. */
size_t pl_stop_held(const pl_stop *st);
void pl_stop_reset(pl_stop *st);

/* ================= think/speak separation ================= */

typedef enum pl_think_mode {
    PL_THINK_MODE_SEPARATE = 0, /* reasoning and content on their own channels */
    PL_THINK_MODE_NONE,         /* no parsing: everything, tags too, is content */
    PL_THINK_MODE_HIDDEN,       /* reasoning is parsed and dropped */
    PL_THINK_MODE_COUNT
} pl_think_mode;

/* "separate", "none", "hidden"; "unknown" outside the enum. */
const char *pl_think_mode_name(pl_think_mode m);
/* Parse one of the names above; PL_ERR_INVALID_ARG otherwise. */
pl_status pl_think_mode_parse(const char *s, pl_think_mode *out);

typedef enum pl_channel {
    PL_CHANNEL_CONTENT = 0,
    PL_CHANNEL_REASONING,
    PL_CHANNEL_COUNT
} pl_channel;

typedef void (*pl_channel_fn)(void *ud, pl_channel ch, const char *text, size_t len);

#define PL_THINK_MAX_TAG 64 /* bytes per tag */

typedef struct pl_think_params {
    pl_think_mode mode;
    /* The prompt already opened the reasoning block (a generation prompt that
     * ends in "<think>\n"; see pl_think_prompt_opens). An open tag at the very
     * start of the output is then swallowed all the same. */
    bool start_in_reasoning;
    const char *open_tag;  /* NULL: "<think>" */
    const char *close_tag; /* NULL: "</think>" */
} pl_think_params;

pl_think_params pl_think_default_params(void);

/* pl_think: splits a model's output into reasoning and content.
 *
 * A reasoning block is recognized only at the start of the output (after
 * whitespace), as models emit it; an open tag later on is content. The block
 * ends at the close tag; the rest is content. Whitespace at the start of each
 * channel and at the end of the reasoning is trimmed (a trailing run longer
 * than 64 bytes is passed on whole). A stream that ends inside the block
 * leaves everything in reasoning. Partial tags are held back at chunk ends. */
typedef struct pl_think pl_think;

/* params NULL: defaults. PL_ERR_RANGE for empty or over-long tags. */
pl_status pl_think_init(pl_ctx *ctx, const pl_think_params *params, pl_think **out);
void pl_think_free(pl_think *t);
void pl_think_feed(pl_think *t, const char *text, size_t len, pl_channel_fn emit, void *ud);
/* End of stream: pass on a held partial tag as text. */
void pl_think_finish(pl_think *t, pl_channel_fn emit, void *ud);
/* Start a new stream; start_in_reasoning as in the params. */
void pl_think_reset(pl_think *t, bool start_in_reasoning);
/* Inside the reasoning block right now (or still before it when the prompt
 * opened it). */
bool pl_think_in_reasoning(const pl_think *t);

/* Does a rendered prompt end inside an opened reasoning block, i.e. end with
 * open_tag (NULL: "<think>") followed only by whitespace? Thread-safe. */
bool pl_think_prompt_opens(const char *prompt, size_t len, const char *open_tag);

/* ================= speakable text ================= */

typedef struct pl_speakable_params {
    /* Said once in place of each fenced code block. NULL: "(code omitted)".
     * Put on a line of its own so the segmenter makes it its own sentence. */
    const char *code_phrase;
    /* URLs: true (default) speaks only the host name ("example.com"); false
     * drops the URL. */
    bool url_host;
} pl_speakable_params;

pl_speakable_params pl_speakable_default_params(void);

/* pl_speakable: markdown-ish model output to text a speech engine can read.
 *
 *   "# Title", "> quote", "- item", "* item", "1. item", "1) item"  markers go
 *   **bold**, *it*, __b__, _it_, ~~s~~, `code`     markers go, words stay
 *   [text](url)  -> text        ![alt](url) -> nothing      <https://x.y/z> -> x.y
 *   https://www.example.com/a/b -> example.com  (host; see url_host)
 *   | a | b |  -> "a, b"; table rule rows and "---" rules go
 *   ``` ... ```  -> code_phrase on a line of its own
 *   emoji (pictographs, dingbats, flags, ZWJ, variation selectors) go
 *   <|im_end|>, <｜end▁of▁sentence｜>, </s> and simple HTML tags go
 *   \* -> *      &amp; &lt; &gt; &quot; &#39; &nbsp; -> their characters
 *
 * Newlines are kept (they end sentences for pl_sentences). Constructs are
 * held only as long as needed (a line start, a link's "](", a URL) and never
 * longer than a fixed bound: past it the text goes out as it came. */
typedef struct pl_speakable pl_speakable;

pl_status pl_speakable_init(pl_ctx *ctx, const pl_speakable_params *params, pl_speakable **out);
void pl_speakable_free(pl_speakable *sp);
void pl_speakable_feed(pl_speakable *sp, const char *text, size_t len, pl_text_fn emit, void *ud);
void pl_speakable_finish(pl_speakable *sp, pl_text_fn emit, void *ud);
void pl_speakable_reset(pl_speakable *sp);

/* pl_sentences: cuts plain text into sentences as soon as each one ends.
 *
 * A sentence ends at . ! ? or an ellipsis, after any closing quotes and
 * brackets, when whitespace follows; at a CJK full stop or mark; and at a
 * newline. Not an end: decimals and dotted names (3.14, e.g), titles and
 * common abbreviations (Dr. Mr. Mrs. Ms. Prof. St. vs. e.g. i.e. etc. ...),
 * single-letter initials ("J. Smith"). Ambiguous cases (etc., U.S., an
 * ellipsis) end the sentence only if the next word starts in upper case, so
 * they wait for that word. A sentence longer than max_bytes is cut at its last
 * clause mark (, ; : -) or space before the bound, or at the bound on a
 * character boundary when there is none.
 *
 * Each sentence is emitted once, trimmed of surrounding whitespace, never
 * empty. */
typedef struct pl_sentences pl_sentences;

#define PL_SENTENCES_MIN_BYTES 16
#define PL_SENTENCES_MAX_BYTES 65536

/* max_bytes in [PL_SENTENCES_MIN_BYTES, PL_SENTENCES_MAX_BYTES]; 0: 400. */
pl_status pl_sentences_init(pl_ctx *ctx, size_t max_bytes, pl_sentences **out);
void pl_sentences_free(pl_sentences *se);
void pl_sentences_feed(pl_sentences *se, const char *text, size_t len, pl_text_fn emit, void *ud);
/* End of stream: emit the unfinished last sentence, if any. */
void pl_sentences_finish(pl_sentences *se, pl_text_fn emit, void *ud);
void pl_sentences_reset(pl_sentences *se);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_TEXT_H */
