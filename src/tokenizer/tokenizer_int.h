/*
 * tokenizer_int.h - private structures of the tokenizer module.
 *
 *   vocab.c    build the immutable tables (text hash, merge-rank hash, pieces,
 *              special-token list, EOG set), load from GGUF, accessors
 *   unicode.c  strict UTF-8 decoding, the GPT-2 byte<->unicode map
 *   pretok.c   the PCRE2 pre-tokenizer table and the streaming regex split
 *   spm.c      SentencePiece BPE over one text fragment
 *   bpe.c      byte-level BPE over one pre-tokenized word
 *   encode.c   special-token partition, BOS/EOS, the scratch object
 *   detok.c    pieces, whole-sequence decode, the streaming decoder
 */
#ifndef PL_TOKENIZER_INT_H
#define PL_TOKENIZER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"
#include "parley/gguf.h"
#include "parley/tokenizer.h"

/* ---- unicode.c ---- */

/* Length (1..4) of the strictly valid UTF-8 sequence at s[0..n), its code
 * point in *cp; 0 when s starts with an invalid or truncated sequence
 * (overlong forms, surrogates and values above U+10FFFF are invalid). */
int pl_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
/* Encode cp (<= 0x10FFFF) into out[4]; returns the length. */
int pl_utf8_encode(uint32_t cp, uint8_t *out);
/* Length 0..3 of a trailing incomplete sequence at the end of s[0..n) that
 * more bytes could still complete into valid UTF-8. */
size_t pl_utf8_incomplete_tail(const uint8_t *s, size_t n);

/* For an ill-formed sequence at s (pl_utf8_decode returned 0): the length of
 * its maximal subpart (the bytes one U+FFFD replaces), at least 1. */
size_t pl_utf8_invalid_len(const uint8_t *s, size_t n);

/* GPT-2 byte<->unicode map: the printable bytes '!'..'~', 0xA1..0xAC and
 * 0xAE..0xFF stand for themselves; the other 68 bytes take U+0100.. in order. */
typedef struct pl_bytemap {
    uint8_t  utf8[256][2]; /* each byte's code point as UTF-8 (1 or 2 bytes) */
    uint8_t  len[256];
    uint16_t cp[256];
    int16_t  rev[324];     /* code point (< 324) -> byte, -1 when it is not a map image */
} pl_bytemap;

void pl_bytemap_init(pl_bytemap *m);

/* ---- pretok.c ---- */

typedef enum pl_pretok {
    PL_PRETOK_GPT2 = 0,
    PL_PRETOK_LLAMA3,
    PL_PRETOK_QWEN2,
    PL_PRETOK_SMOLLM,
    PL_PRETOK_STARCODER,
    PL_PRETOK_REFACT,
    PL_PRETOK_DEEPSEEK_LLM,
    PL_PRETOK_DEEPSEEK_CODER,
    PL_PRETOK_DEEPSEEK3,
    PL_PRETOK_FALCON,
    PL_PRETOK_MPT,
    PL_PRETOK_GPT_NEOX,
    PL_PRETOK_BLOOM,
    PL_PRETOK_TEKKEN,
    PL_PRETOK_COUNT
} pl_pretok;

#define PL_PRETOK_MAX_REGEX 6

typedef struct pl_pretok_def {
    const char *name;                        /* canonical tokenizer.ggml.pre value */
    const char *const *aliases;              /* other pre names with the same rules, NULL-ended */
    const char *regex[PL_PRETOK_MAX_REGEX];  /* applied in sequence, NULL-ended */
    int  mapped_from;                        /* >0: regexes from this index on run on the
                                                byte-mapped text (after a ByteLevel step) */
    bool ignore_merges;                      /* a word that is a whole token skips BPE */
    bool add_bos;                            /* default for add_bos_token */
} pl_pretok_def;

extern const pl_pretok_def pl_pretok_table[PL_PRETOK_COUNT];

/* Row for a tokenizer.ggml.pre value; false when the name is unknown. */
bool pl_pretok_lookup(const char *name, size_t len, pl_pretok *out);

/* Compiled regexes of one row (immutable, shared by threads). */
typedef struct pl_regex_set {
    int   n;
    void *code[PL_PRETOK_MAX_REGEX];  /* pcre2_code_8 * */
    void *gctx;                        /* pcre2_general_context_8 * (ctx allocator) */
    bool  jit[PL_PRETOK_MAX_REGEX];
    int   mapped_from;                 /* -1: every regex runs on the original text */
} pl_regex_set;

pl_status pl_regex_set_compile(pl_ctx *ctx, pl_pretok row, pl_regex_set *rs);
void pl_regex_set_free(pl_regex_set *rs);

/* Per-thread matching state. */
typedef struct pl_regex_state {
    void   *md;      /* pcre2_match_data_8 * */
    void   *mctx;    /* pcre2_match_context_8 * */
    void   *jstack;  /* pcre2_jit_stack_8 * */
    pl_ctx *ctx;
    char   *mbuf;    /* byte-mapped copy of a piece (rows with mapped_from) */
    size_t  mcap;
} pl_regex_state;

pl_status pl_regex_state_init(pl_ctx *ctx, const pl_regex_set *rs, pl_regex_state *st);
void pl_regex_state_free(pl_regex_state *st);

/* Called once per word, in order; return non-OK to stop. */
typedef pl_status (*pl_word_fn)(void *ud, const char *word, size_t len);

/* Split valid UTF-8 text[0..len) by the row's regexes in sequence: each regex
 * cuts every piece the previous one produced into its matches and the gaps
 * between them (both kept, in order). Streams words to fn without building
 * lists. A regex that fails to run (resource limit) leaves its piece whole.
 * Words are always spans of text (for byte-mapped stages, mapped back). */
pl_status pl_regex_split(const pl_regex_set *rs, pl_regex_state *st, const pl_bytemap *bm,
                         const char *text, size_t len, pl_word_fn fn, void *ud);

/* Rewrite a pattern so \s and \S mean exactly Unicode White_Space (PCRE2's \s
 * also takes U+180E). Writes at most cap bytes, NUL-terminated; returns the
 * length needed (excluding NUL), or 0 when \S appears inside a class. */
size_t pl_regex_rewrite_space(const char *pat, char *out, size_t cap);

/* ---- vocab.c: the immutable tokenizer ---- */

/* When decoding emits a token's piece. */
enum { PL_EMIT_NEVER = 0, PL_EMIT_ALWAYS, PL_EMIT_SPECIAL /* only with render_special */ };

typedef struct pl_tok_entry {
    uint32_t text_off;  /* into tok->blob */
    uint32_t text_len;
    uint32_t piece_off; /* decoded bytes, into tok->blob */
    uint32_t piece_len;
    float    score;     /* SPM merge priority */
    uint8_t  type;      /* pl_token_type */
    uint8_t  emit;      /* PL_EMIT_* */
} pl_tok_entry;

/* Merge ranks: open addressing over pair keys (left id << 32 | right id,
 * UINT64_MAX = empty) with the rank in a parallel array, so a probe touches
 * 8 bytes per slot; the merged token comes from merge_result[rank]. A 2^20-bit
 * filter over the pair hash answers most failed lookups (the common case at
 * word boundaries) from 128 KiB instead of a probe into the table. */
#define PL_MERGE_FILTER_BITS 20

typedef struct pl_special {
    pl_token id;
    uint32_t len;
    bool     control;   /* CONTROL or UNKNOWN: matched only with parse_special */
} pl_special;

struct pl_tokenizer {
    pl_ctx        *ctx;
    pl_vocab_type  type;
    int32_t        n_vocab;
    pl_tok_entry  *tokens;
    char          *blob;       /* all token texts, then all pieces */
    size_t         blob_len;
    size_t         max_piece;

    /* text -> id, open addressing; a slot holds the upper half of the text's
     * hash and id + 1 (0 = empty) */
    uint64_t      *text_slots;
    size_t         text_mask;

    /* BPE merge ranks keyed by the pair of ids (see PL_MERGE_FILTER_BITS) */
    uint64_t      *merge_keys;
    uint32_t      *merge_ranks;
    pl_token      *merge_result;  /* [n_merges]: the token rank r produces */
    uint64_t      *merge_filter;  /* 2^PL_MERGE_FILTER_BITS bits */
    size_t         merge_mask;
    int32_t        n_merges;

    /* per input byte: the id of its single-byte symbol (BPE: the byte's map
     * image; SPM: <0xNN>, else the 1-byte token, else unk), PL_TOKEN_NULL if none */
    pl_token       byte_tok[256];
    pl_bytemap     bytemap;

    /* special/added tokens sorted by length desc, then id (the order the
     * partition applies them in) */
    pl_special    *specials;
    int32_t        n_specials;
    /* occurrence pre-scan: keys of the specials' first one or two bytes
     * ((b0 << 8 | b1), or 0x10000 | b0 for 1-byte texts), sorted, with the
     * index into specials; a 64 Kbit filter over the 2-byte keys and a 256-bit
     * one over first bytes */
    uint32_t      *sk_key;
    int32_t       *sk_idx;
    uint8_t       *sk_two;            /* 8192 bytes */
    uint8_t        sk_one[32];
    uint8_t        sk_first[32];

    pl_token       bos, eos, eot, eom, unk, pad;
    bool           add_bos, add_eos, add_space_prefix, ignore_merges;
    /* SPM: no text token has a "▁" right after another character, so the
     * text can be merged word by word */
    bool           spm_split_words;

    pl_token      *eog;        /* ascending */
    size_t         n_eog;

    pl_pretok      pre;
    pl_regex_set   regex;
};

/* Everything needed to build a tokenizer, as plain arrays (the GGUF loader
 * fills one from the file; tests fill one by hand). */
typedef struct pl_tok_spec {
    pl_vocab_type  type;
    int64_t        n_tokens;
    const pl_str  *tokens;
    const float   *scores;     /* NULL: all 0 */
    const int32_t *types;      /* NULL: all NORMAL */
    int64_t        n_scores;   /* must equal n_tokens when scores given */
    int64_t        n_types;
    int64_t        n_merges;
    const pl_str  *merges;     /* "left right" */
    pl_str         pre;        /* tokenizer.ggml.pre (ptr NULL: absent) */
    int64_t        bos, eos, eot, eom, unk, pad; /* -1: absent */
    int            add_bos, add_eos, add_space_prefix; /* -1: model default */
} pl_tok_spec;

/* A spec with no tokens, all ids and flags unset. */
pl_tok_spec pl_tok_spec_empty(pl_vocab_type type);
pl_status pl_tok_build(pl_ctx *ctx, const pl_tok_spec *spec, pl_tokenizer **out);

/* Hash of a byte string (used by the text table). */
uint64_t pl_tok_hash(const void *p, size_t n);

static inline const char *pl_tok_text(const pl_tokenizer *t, pl_token id) {
    return t->blob + t->tokens[id].text_off;
}

/* Whether a token may come out of merging ordinary text (NORMAL and
 * USER_DEFINED; never CONTROL, UNKNOWN, UNUSED or BYTE tokens). */
static inline bool pl_tok_is_text(const pl_tokenizer *t, pl_token id) {
    uint8_t ty = t->tokens[id].type;
    return ty == PL_TOKEN_TYPE_NORMAL || ty == PL_TOKEN_TYPE_USER_DEFINED;
}

static inline uint64_t pl_tok_pair_hash(uint64_t key) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

/* Rank of the merge of pair (a, b); false when the pair never merges. */
static inline bool pl_tok_merge_find(const pl_tokenizer *t, pl_token a, pl_token b, uint32_t *rank) {
    if (a < 0 || b < 0) return false;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint64_t h = pl_tok_pair_hash(key);
    uint64_t f = h >> (64 - PL_MERGE_FILTER_BITS);
    if (!((t->merge_filter[f >> 6] >> (f & 63)) & 1)) return false;
    for (size_t i = (size_t)h & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        uint64_t k = t->merge_keys[i];
        if (k == key) {
            *rank = t->merge_ranks[i];
            return true;
        }
        if (k == UINT64_MAX) return false;
    }
}

/* ---- encode.c: per-thread scratch ---- */

typedef struct pl_tok_out {
    pl_token *ids;
    size_t    cap;
    size_t    n;
} pl_tok_out;

static inline void pl_tok_out_push(pl_tok_out *o, pl_token id) {
    if (o->n < o->cap) o->ids[o->n] = id;
    o->n++;
}

typedef struct pl_bpe_sym {
    pl_token id;
    int32_t  prev, next;
    uint32_t len;       /* bytes of the original text covered (0: merged away) */
} pl_bpe_sym;

typedef struct pl_bpe_pair {
    uint32_t rank;
    int32_t  left, right;
    pl_token lid, rid;
} pl_bpe_pair;

typedef struct pl_spm_sym {
    uint32_t off, len;  /* into the escaped text; len 0: merged away */
    int32_t  prev, next;
} pl_spm_sym;

typedef struct pl_spm_pair {
    float    score;
    int32_t  left, right;
    uint32_t size;
} pl_spm_pair;

typedef struct pl_frag {
    size_t   off, len;
    pl_token id;        /* PL_TOKEN_NULL: raw text */
} pl_frag;

/* Word cache: a direct-mapped table from a short word's
 * bytes to its ids. Words follow a Zipf law, so most repeat; a hit skips the
 * merges entirely. 4096 slots x 64 bytes = 256 KiB per scratch, allocated
 * once; never shared between threads. */
#define PL_WCACHE_SLOTS   4096
#define PL_WCACHE_MAXLEN  22
#define PL_WCACHE_MAXIDS  8

typedef struct pl_wcache_slot {
    uint8_t  len;                     /* 0: empty */
    uint8_t  n_ids;
    char     bytes[PL_WCACHE_MAXLEN];
    pl_token ids[PL_WCACHE_MAXIDS];
    uint64_t pad_;                    /* keep the slot at 64 bytes */
} pl_wcache_slot;

struct pl_tok_scratch {
    const pl_tokenizer *tok;
    pl_regex_state      rx;
    pl_wcache_slot     *wcache;

    /* all capacities in bytes */
    void    *syms;   size_t syms_cap;
    void    *heap;   size_t heap_cap;
    char    *text;   size_t text_cap;   /* escaped (SPM) / repaired (BPE) text */
    uint32_t *subs;  size_t subs_cap;   /* repaired offsets of U+FFFD replacements */
    char    *word;   size_t word_cap;   /* byte-mapped word (ignore_merges lookups) */
    pl_frag *frags;  size_t frags_cap;
    pl_frag *frags2; size_t frags2_cap;
    uint8_t *seen;   size_t seen_cap;   /* which specials occur in the input */

    /* while the regex split streams words */
    const char *repaired;  /* non-NULL: words point into this repaired copy */
    size_t      n_subs, n_subs_done;
    const char *orig;
    pl_tok_out *out;
};

/* Grow p (capacity *cap bytes) to at least need bytes, keeping its contents:
 * returns the (possibly moved) buffer and updates *cap, or NULL with p still
 * valid when memory runs out. Capacity doubles, so growth is amortized. */
void *pl_scratch_grow(pl_tok_scratch *s, void *p, size_t *cap, size_t need);

/* Encode one word through the scratch's word cache: a hit copies the
 * remembered ids; a miss runs fn and remembers the result. The word's bytes
 * are the whole key, so fn must be a pure function of them. */
typedef pl_status (*pl_word_encode_fn)(pl_tok_scratch *s, const char *w, size_t len, pl_tok_out *out);
pl_status pl_wcache_encode(pl_tok_scratch *s, const char *w, size_t len, pl_word_encode_fn fn, pl_tok_out *out);

/* spm.c: tokenize one raw fragment; prefix adds the leading "▁". */
pl_status pl_spm_encode(pl_tok_scratch *s, const char *text, size_t len, bool prefix, pl_tok_out *out);
/* bpe.c: tokenize one raw fragment (regex split, then merges per word). */
pl_status pl_bpe_encode(pl_tok_scratch *s, const char *text, size_t len, pl_tok_out *out);
/* bpe.c: merges over one word of original bytes. */
pl_status pl_bpe_word(pl_tok_scratch *s, const char *word, size_t len, pl_tok_out *out);

#endif /* PL_TOKENIZER_INT_H */
