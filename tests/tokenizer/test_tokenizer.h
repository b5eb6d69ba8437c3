/* test_tokenizer.h - groups and helpers of the tokenizer tests (one executable). */
#ifndef PL_TEST_TOKENIZER_H
#define PL_TEST_TOKENIZER_H

#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "parley/core.h"
#include "parley/gguf.h"
#include "parley/tokenizer.h"
#include "tokenizer/tokenizer_int.h"

int test_unicode_group(void);
int test_pretok_group(void);
int test_merge_group(void);
int test_special_group(void);
int test_detok_group(void);
int test_load_group(void);
int test_golden_group(void);
int test_cmd_group(void);

/* PL_SHARED_DIR/vocab/NAME when readable, else NULL (static buffer). */
const char *tt_shared_vocab(const char *name);
/* Set when a test skipped for want of ../shared. */
extern bool tt_shared_missing;

/* A tokenizer from a NULL-terminated token list (C strings). */
typedef struct tt_vocab {
    pl_vocab_type type;
    const char *const *tokens;   /* NULL-terminated */
    const float *scores;         /* NULL: 0 */
    const int32_t *types;        /* NULL: NORMAL */
    const char *const *merges;   /* NULL-terminated, BPE */
    const char *pre;             /* NULL: absent */
    int64_t bos, eos, unk;       /* -1 absent (0 means id 0: set explicitly) */
    int add_bos, add_eos, add_space_prefix;
} tt_vocab;

pl_tokenizer *tt_build(pl_ctx *ctx, const tt_vocab *v);

/* Encode with defaults except the flags given; returns the count, ids in out. */
size_t tt_encode(const pl_tokenizer *tok, const char *text, size_t len, bool add_special, bool parse_special,
                 pl_token *out, size_t cap);
/* Decode (defaults) into buf, NUL-terminated; returns the length. */
size_t tt_decode(const pl_tokenizer *tok, const pl_token *ids, size_t n, char *buf, size_t cap);

/* Deterministic xorshift for generated inputs. */
static inline uint64_t tt_rand(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

#endif
