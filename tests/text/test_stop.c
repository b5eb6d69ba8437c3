/* test_stop.c - stop strings: case table fed at every split, and a naive
 * reference (search the whole text for the earliest-ending stop) on random
 * streams. */
#include <stdio.h>
#include <stdlib.h>

#include "test_text.h"

typedef struct stop_case {
    const char *stops[4];
    size_t n_stops;
    const char *in;
    const char *out; /* everything passed on, finish included */
    int hit;
} stop_case;

static const stop_case CASES[] = {
    { { "</s>" }, 1, "Hello</s>world", "Hello", 0 },
    { { "\n\nUser:", "###" }, 2, "Answer is 42.\n\nUser: hi ###", "Answer is 42.", 0 },
    { { "\n\nUser:", "###" }, 2, "a\n\nUse ### b", "a\n\nUse ", 1 },
    /* overlapping: "bc" completes before "abcd" does */
    { { "abcd", "bc" }, 2, "xabcdy", "xa", 1 },
    /* completed by the same byte: the longer one wins */
    { { "b", "ab" }, 2, "xaby", "x", 1 },
    /* KMP: the partial "abcab" fails at 'c' but "ab" still counts */
    { { "abcabd" }, 1, "abcabcabd!", "abc", 0 },
    { { "aab" }, 1, "aaaab", "aa", 0 },
    /* near misses pass through whole */
    { { "STOP" }, 1, "STOSTO ST OP STOPP", "STOSTO ST OP ", 0 },
    { { "STOP" }, 1, "STOSTO ST OP STO", "STOSTO ST OP STO", -1 },
    { { "aa" }, 1, "a", "a", -1 },
    /* stop at the very start and the very end */
    { { "<|im_end|>" }, 1, "<|im_end|>rest", "", 0 },
    { { "<|im_end|>" }, 1, "done<|im_end|>", "done", 0 },
    /* UTF-8 stop strings and text */
    { { "\xE3\x80\x82" }, 1, "\xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82\xE5\x86\x8D", "\xE4\xBD\xA0\xE5\xA5\xBD", 0 },
    { { "\xC3\xA9!" }, 1, "caf\xC3\xA9 au lait \xC3\xA9", "caf\xC3\xA9 au lait \xC3\xA9", -1 },
    { { "\xF0\x9F\x98\x80" }, 1, "ok \xF0\x9F\x98\x81 \xF0\x9F\x98\x80 x", "ok \xF0\x9F\x98\x81 ", 0 },
    /* empty stop strings are ignored; the index is the caller's */
    { { "", "z" }, 2, "xyz", "xy", 1 },
    /* no stop strings: only keeps characters whole */
    { { NULL }, 0, "\xE2\x82\xAC and \xF0\x9F\x8E\x89", "\xE2\x82\xAC and \xF0\x9F\x8E\x89", -1 },
};

typedef struct stop_run {
    const stop_case *c;
    const char *in;
    size_t n;
    capture out;
} stop_run;

static void feed_stop(void *stage, const char *s, size_t n, void *out) {
    pl_stop_feed(stage, s, n, cap_text_fn, out);
}

static void check_split(void *arg, const size_t *cuts, size_t n_cuts) {
    stop_run *r = arg;
    pl_stop *st;
    assert_int_equal(pl_stop_init(g_ctx, r->c->stops, r->c->n_stops, &st), PL_OK);
    cap_reset(&r->out);
    feed_split(feed_stop, st, &r->out, r->in, r->n, cuts, n_cuts);
    pl_stop_finish(st, cap_text_fn, &r->out);
    if (strcmp(r->out.s ? r->out.s : "", r->c->out) != 0)
        print_message("in %s: got [%s] want [%s] (%zu cuts)\n", r->in, r->out.s, r->c->out, n_cuts);
    assert_string_equal(r->out.s ? r->out.s : "", r->c->out);
    assert_int_equal(pl_stop_hit(st), r->c->hit);
    assert_false(r->out.bad_piece); /* pieces end on character boundaries */
    pl_stop_free(st);
}

static void test_stop_cases(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        stop_run r = { .c = &CASES[i], .in = CASES[i].in, .n = strlen(CASES[i].in) };
        cap_add(&r.out, "", 0);
        for_each_split(r.n, 64, check_split, &r);
        cap_free(&r.out);
    }
}

static void test_stop_hold_and_after_hit(void **state) {
    (void)state;
    const char *stops[] = { "</s>", "END" };
    pl_stop *st;
    assert_int_equal(pl_stop_init(g_ctx, stops, 2, &st), PL_OK);
    capture c = { 0 };
    assert_false(pl_stop_feed(st, "abc</", 5, cap_text_fn, &c));
    assert_string_equal(c.s, "abc");
    assert_int_equal(pl_stop_held(st), 2);
    assert_false(pl_stop_feed(st, "x E", 3, cap_text_fn, &c));
    assert_string_equal(c.s, "abc</x ");
    assert_int_equal(pl_stop_held(st), 1);
    assert_true(pl_stop_feed(st, "ND tail", 7, cap_text_fn, &c));
    assert_string_equal(c.s, "abc</x ");
    assert_int_equal(pl_stop_hit(st), 1);
    /* after a hit nothing more is taken, and finish adds nothing */
    assert_true(pl_stop_feed(st, "more", 4, cap_text_fn, &c));
    pl_stop_finish(st, cap_text_fn, &c);
    assert_string_equal(c.s, "abc</x ");
    /* reset starts a new stream */
    pl_stop_reset(st);
    assert_int_equal(pl_stop_hit(st), -1);
    cap_reset(&c);
    assert_false(pl_stop_feed(st, "again", 5, cap_text_fn, &c));
    pl_stop_finish(st, cap_text_fn, &c);
    assert_string_equal(c.s, "again");
    pl_stop_free(st);
    pl_stop_free(NULL);
    cap_free(&c);
}

static void test_stop_limits(void **state) {
    (void)state;
    pl_stop *st = (pl_stop *)1;
    char big[PL_STOP_MAX_LEN + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    const char *one[] = { big };
    assert_int_equal(pl_stop_init(g_ctx, one, 1, &st), PL_ERR_RANGE);
    assert_null(st);
    const char *many[PL_STOP_MAX_STRINGS + 1];
    for (int i = 0; i <= PL_STOP_MAX_STRINGS; i++) many[i] = "x";
    assert_int_equal(pl_stop_init(g_ctx, many, PL_STOP_MAX_STRINGS + 1, &st), PL_ERR_RANGE);
    const char *withnull[] = { "a", NULL };
    assert_int_equal(pl_stop_init(g_ctx, withnull, 2, &st), PL_ERR_INVALID_ARG);
    /* the longest allowed string works, held back in full until it fails */
    big[PL_STOP_MAX_LEN] = 0;
    assert_int_equal(pl_stop_init(g_ctx, one, 1, &st), PL_OK);
    capture c = { 0 };
    assert_false(pl_stop_feed(st, big, PL_STOP_MAX_LEN - 1, cap_text_fn, &c));
    assert_int_equal(c.len, 0);
    assert_true(pl_stop_feed(st, "x", 1, cap_text_fn, &c));
    assert_int_equal(c.len, 0);
    pl_stop_free(st);
    cap_free(&c);
}

/* Naive reference: the earliest end position where some stop string ends;
 * of those ending there, the longest. */
static size_t ref_stop(const char *const *stops, size_t ns, const char *in, size_t n, int *hit) {
    for (size_t e = 1; e <= n; e++) {
        size_t best = 0;
        *hit = -1;
        for (size_t j = 0; j < ns; j++) {
            size_t l = strlen(stops[j]);
            if (l && l <= e && memcmp(in + e - l, stops[j], l) == 0 && l > best) best = l, *hit = (int)j;
        }
        if (*hit >= 0) return e - best;
    }
    *hit = -1;
    return n;
}

static void test_stop_random_vs_reference(void **state) {
    (void)state;
    uint64_t x = 12345;
#define RND() (x ^= x << 13, x ^= x >> 7, x ^= x << 17, x)
    char stops_buf[4][8];
    char in[200];
    capture c = { 0 };
    for (int trial = 0; trial < 3000; trial++) {
        size_t ns = 1 + RND() % 4;
        const char *stops[4];
        for (size_t j = 0; j < ns; j++) {
            size_t l = 1 + RND() % 6;
            for (size_t k = 0; k < l; k++) stops_buf[j][k] = (char)('a' + RND() % 3);
            stops_buf[j][l] = 0;
            stops[j] = stops_buf[j];
        }
        size_t n = RND() % sizeof in;
        for (size_t k = 0; k < n; k++) in[k] = (char)('a' + RND() % 3);
        int want_hit;
        size_t want = ref_stop(stops, ns, in, n, &want_hit);
        pl_stop *st;
        assert_int_equal(pl_stop_init(g_ctx, stops, ns, &st), PL_OK);
        cap_reset(&c);
        for (size_t at = 0; at < n;) {
            size_t k = 1 + RND() % 9;
            if (k > n - at) k = n - at;
            if (pl_stop_feed(st, in + at, k, cap_text_fn, &c)) break;
            at += k;
        }
        pl_stop_finish(st, cap_text_fn, &c);
        assert_int_equal(c.len, want);
        assert_true(want == 0 || memcmp(c.s, in, want) == 0);
        assert_int_equal(pl_stop_hit(st), want_hit);
        pl_stop_free(st);
    }
#undef RND
    cap_free(&c);
}

int test_stop_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_cases),
        cmocka_unit_test(test_stop_hold_and_after_hit),
        cmocka_unit_test(test_stop_limits),
        cmocka_unit_test(test_stop_random_vs_reference),
    };
    return cmocka_run_group_tests_name("stop", tests, NULL, NULL);
}
