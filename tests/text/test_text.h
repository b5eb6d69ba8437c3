/* test_text.h - the streaming text stage tests (one executable, test_text). */
#ifndef PL_TEST_TEXT_H
#define PL_TEST_TEXT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "parley/text.h"

extern pl_ctx *g_ctx;

/* A growable capture of one output stream; pieces counts the callbacks. */
typedef struct capture {
    char *s;
    size_t len, cap;
    size_t pieces;
    bool bad_piece; /* a piece was empty or not whole UTF-8 characters */
} capture;

void cap_reset(capture *c);
void cap_free(capture *c);
void cap_add(capture *c, const char *s, size_t n);
/* pl_text_fn that appends to the capture in ud. */
void cap_text_fn(void *ud, const char *s, size_t n);
/* True when s[0 .. n) is whole, valid UTF-8. */
bool utf8_whole(const char *s, size_t n);

/* Feed `n` bytes of `s` to a stage cut at the given (sorted) split offsets. */
typedef void (*feed_fn)(void *stage, const char *s, size_t n, void *out);
void feed_split(feed_fn feed, void *stage, void *out, const char *s, size_t n,
                const size_t *cuts, size_t n_cuts);

/* Call fn for many ways to cut a stream of n bytes: no cut, every single
 * cut, every pair of cuts (when n <= pair_max), every byte on its own, and
 * 200 random cut sets from a fixed seed. */
typedef void (*split_fn)(void *arg, const size_t *cuts, size_t n_cuts);
void for_each_split(size_t n, size_t pair_max, split_fn fn, void *arg);

int test_stop_group(void);
int test_think_group(void);
int test_speak_group(void);
int test_sentences_group(void);

#endif
