/*
 * parley/tokenizer.h - text <-> token ids for GGUF language models.
 *
 * Two vocabulary kinds, chosen by tokenizer.ggml.model:
 *  - "llama": SentencePiece BPE (score-driven merges, "▁" for spaces, a space
 *    prefix, <0xNN> byte fallback);
 *  - "gpt2":  byte-level BPE (GPT-2 byte->unicode map, a regex pre-tokenizer
 *    chosen by tokenizer.ggml.pre, merges by rank from tokenizer.ggml.merges).
 * Special and added tokens (types CONTROL and USER_DEFINED) are matched in the
 * text before BPE, longest first. USER_DEFINED tokens are always matched;
 * CONTROL (and UNKNOWN) token text only when pl_encode_params.parse_special is
 * set, so user chat text never turns into control tokens unless asked.
 *
 * Invalid UTF-8 in the input is kept byte for byte, so decode(encode(x)) == x
 * for every byte string x:
 *  - byte-level BPE: the pre-tokenizer sees each invalid byte as U+FFFD (so it
 *    splits as the reference splits text it had to repair), but the word keeps
 *    the original byte, which the byte map turns into its own symbol;
 *  - SentencePiece: each invalid byte is its own symbol, never merged, and
 *    falls back to its <0xNN> token.
 *
 * Ownership: pl_tokenizer_load*() and the *_init() functions make objects the
 * caller frees with the matching *_free(); *_free(NULL) is a no-op. A tokenizer
 * copies everything it needs, so the pl_gguf it was loaded from may be freed.
 *
 * Thread-safety: a loaded pl_tokenizer is immutable; every function taking a
 * const pl_tokenizer * may be called from any number of threads at once. A
 * pl_tok_scratch and a pl_detok are single-thread objects (one per thread or
 * per stream). The tokenizer must outlive its scratches and decoders.
 *
 * Hot paths: pl_tokenizer_encode() with a reused scratch allocates only when
 * an input is larger than any the scratch has seen; pl_detok_push() never
 * allocates.
 */
#ifndef PARLEY_TOKENIZER_H
#define PARLEY_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"
#include "parley/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t pl_token;
#define PL_TOKEN_NULL ((pl_token)-1)

typedef enum pl_vocab_type {
    PL_VOCAB_TYPE_SPM = 0, /* tokenizer.ggml.model "llama" */
    PL_VOCAB_TYPE_BPE,     /* tokenizer.ggml.model "gpt2" */
    PL_VOCAB_TYPE_COUNT
} pl_vocab_type;

/* tokenizer.ggml.token_type values (the numbers are the file format). */
typedef enum pl_token_type {
    PL_TOKEN_TYPE_UNDEFINED    = 0, /* treated as NORMAL */
    PL_TOKEN_TYPE_NORMAL       = 1,
    PL_TOKEN_TYPE_UNKNOWN      = 2,
    PL_TOKEN_TYPE_CONTROL      = 3,
    PL_TOKEN_TYPE_USER_DEFINED = 4,
    PL_TOKEN_TYPE_UNUSED       = 5,
    PL_TOKEN_TYPE_BYTE         = 6,
    PL_TOKEN_TYPE_COUNT
} pl_token_type;

typedef struct pl_tokenizer pl_tokenizer;

/* ---- loading ----
 * Reads tokenizer.ggml.{model, pre, tokens, scores, token_type, merges,
 * bos/eos/eot/eom/unknown/padding_token_id, add_bos_token, add_eos_token,
 * add_space_prefix}. A bad vocabulary (missing tokens, array lengths that
 * disagree, a merge naming a token that is not in the vocabulary, ...) gives
 * PL_ERR_FORMAT with a one-line message in pl_ctx_last_error(ctx). An unknown
 * tokenizer.ggml.pre logs a warning and uses the gpt-2 rules. Cost: O(vocab +
 * merges) time; memory about twice the vocabulary's text plus 40 bytes per
 * token, 28 per merge and 136 KiB (gpt-2: about 5 MB). The
 * ctx must outlive the tokenizer. */
pl_status pl_tokenizer_load(pl_ctx *ctx, const pl_gguf *g, pl_tokenizer **out);
/* Open path, load, close. */
pl_status pl_tokenizer_load_file(pl_ctx *ctx, const char *path, pl_tokenizer **out);
void pl_tokenizer_free(pl_tokenizer *tok);

/* ---- vocabulary facts ---- */
pl_vocab_type pl_tokenizer_type(const pl_tokenizer *tok);
int32_t pl_tokenizer_n_vocab(const pl_tokenizer *tok);
/* Name of the pre-tokenizer row in use ("gpt-2", "llama-bpe", ...); "" for SPM. */
const char *pl_tokenizer_pre(const pl_tokenizer *tok);
/* Special ids from metadata; PL_TOKEN_NULL when the vocabulary has none. */
pl_token pl_tokenizer_bos(const pl_tokenizer *tok);
pl_token pl_tokenizer_eos(const pl_tokenizer *tok);
pl_token pl_tokenizer_eot(const pl_tokenizer *tok);
pl_token pl_tokenizer_unk(const pl_tokenizer *tok);
pl_token pl_tokenizer_pad(const pl_tokenizer *tok);
/* Whether encode adds BOS / EOS (tokenizer.ggml.add_bos_token / add_eos_token,
 * or the model kind's default: SPM adds BOS, byte-level BPE does not except
 * llama-bpe). */
bool pl_tokenizer_add_bos(const pl_tokenizer *tok);
bool pl_tokenizer_add_eos(const pl_tokenizer *tok);

/* End-of-generation set: eos, eot, eom from metadata plus the chat-template
 * end tokens present in the vocabulary as CONTROL or USER_DEFINED tokens
 * (<|im_end|>, <|eot_id|>, <|eom_id|>, <|end|>, <end_of_turn>, <|endoftext|>).
 * O(1). */
bool pl_tokenizer_is_eog(const pl_tokenizer *tok, pl_token id);
/* The set, ascending, valid for the tokenizer's life; returns its size. */
size_t pl_tokenizer_eog_ids(const pl_tokenizer *tok, const pl_token **ids);

/* Raw vocabulary text of a token ("Ġthe", "▁the", "<0x0A>", "<|im_end|>"),
 * not NUL-terminated; NULL (and *len 0) for an id outside the vocabulary. */
const char *pl_tokenizer_token_text(const pl_tokenizer *tok, pl_token id, size_t *len);
/* PL_TOKEN_TYPE_COUNT for an id outside the vocabulary. */
pl_token_type pl_tokenizer_token_type(const pl_tokenizer *tok, pl_token id);
/* The id whose vocabulary text is exactly text[0..len), or PL_TOKEN_NULL. O(len). */
pl_token pl_tokenizer_find(const pl_tokenizer *tok, const char *text, size_t len);
/* Longest decoded piece of any token, in bytes (sizes buffers for pl_tokenizer_piece). */
size_t pl_tokenizer_max_piece(const pl_tokenizer *tok);

/* ---- encoding ---- */

typedef struct pl_encode_params {
    bool add_bos;       /* add BOS when the vocabulary asks for it (default true) */
    bool add_eos;       /* add EOS when the vocabulary asks for it (default true) */
    bool parse_special; /* match CONTROL token text in the input (default false) */
} pl_encode_params;

pl_encode_params pl_encode_default_params(void);

/* Reusable per-thread working memory for pl_tokenizer_encode(): a 256 KiB
 * cache of recently seen words (most words repeat, and a hit skips the
 * merges) plus buffers that grow to the largest input seen. */
typedef struct pl_tok_scratch pl_tok_scratch;

pl_status pl_tok_scratch_init(const pl_tokenizer *tok, pl_tok_scratch **out);
void pl_tok_scratch_free(pl_tok_scratch *s);

/* Tokenize text[0..len) (any bytes). Writes up to cap ids to out and the full
 * count to *n_out. Returns PL_OK, or PL_ERR_RANGE when the count exceeds cap
 * (the first cap ids are written; call again with a buffer of *n_out).
 * out may be NULL when cap is 0. scratch NULL: a temporary one is made and
 * freed (allocates). params NULL: pl_encode_default_params().
 * Cost: O(len log len); no allocation once the scratch has grown. */
pl_status pl_tokenizer_encode(const pl_tokenizer *tok, pl_tok_scratch *scratch, const char *text,
                              size_t len, const pl_encode_params *params, pl_token *out,
                              size_t cap, size_t *n_out);

/* ---- decoding ---- */

typedef struct pl_detok_params {
    /* Emit the text of CONTROL tokens ("<|im_end|>", "<s>"); default false:
     * they decode to nothing. */
    bool render_special;
    /* SPM with add_space_prefix: drop the one space the encoder puts before
     * text at the start and after each special token, so decode(encode(x)) ==
     * x (default true; no effect on byte-level BPE). */
    bool undo_space_prefix;
    /* Streaming only: replace bytes that can never form valid UTF-8 (and an
     * incomplete sequence left at pl_detok_flush) with U+FFFD, so the output is
     * always valid UTF-8 (default false: pass bytes through unchanged). */
    bool replace_invalid;
} pl_detok_params;

pl_detok_params pl_detok_default_params(void);

/* One token's bytes as decoding produces them mid-stream (no space-prefix
 * undo): "▁" -> ' ', <0xNN> -> the byte, byte-level symbols -> bytes. Writes up
 * to cap bytes and returns the full length (0 for an id outside the vocabulary
 * and for CONTROL tokens unless render_special). */
size_t pl_tokenizer_piece(const pl_tokenizer *tok, pl_token id, bool render_special, char *buf,
                          size_t cap);

/* Decode ids[0..n) into buf: writes up to cap bytes (no terminator) and the
 * full length to *n_out. PL_ERR_RANGE when it exceeds cap (the first cap bytes
 * are written), PL_ERR_INVALID_ARG for an id outside the vocabulary.
 * params NULL: defaults. replace_invalid is ignored: bytes come back exact. */
pl_status pl_tokenizer_decode(const pl_tokenizer *tok, const pl_token *ids, size_t n,
                              const pl_detok_params *params, char *buf, size_t cap, size_t *n_out);

/* Streaming decoder: feed ids one at a time, get back the bytes that became
 * complete UTF-8. An incomplete sequence at the end is held back until it
 * completes or the stream ends; bytes that can never be valid are passed on
 * at once (or replaced, see replace_invalid). */
typedef struct pl_detok pl_detok;

pl_status pl_detok_init(const pl_tokenizer *tok, const pl_detok_params *params, pl_detok **out);
void pl_detok_free(pl_detok *d);
/* Start a new stream (drops anything held back). */
void pl_detok_reset(pl_detok *d);
/* Feed one id. *text and *len receive the bytes ready to show (possibly none);
 * they stay valid until the next call on d. PL_ERR_INVALID_ARG for an id
 * outside the vocabulary (state unchanged). Never allocates. */
pl_status pl_detok_push(pl_detok *d, pl_token id, const char **text, size_t *len);
/* End of stream: returns what was held back, then resets the stream. */
void pl_detok_flush(pl_detok *d, const char **text, size_t *len);
/* Bytes currently held back (0..3). */
size_t pl_detok_pending(const pl_detok *d);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_TOKENIZER_H */
