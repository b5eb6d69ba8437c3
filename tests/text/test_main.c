/* test_main.c - runs every text stage test group; shared capture helpers. */
#include <stdlib.h>

#include "test_text.h"

pl_ctx *g_ctx;

void cap_reset(capture *c) {
    c->len = 0;
    c->pieces = 0;
    c->bad_piece = false;
    if (c->s) c->s[0] = 0;
}

void cap_free(capture *c) {
    free(c->s);
    memset(c, 0, sizeof *c);
}

void cap_add(capture *c, const char *s, size_t n) {
    if (c->len + n + 1 > c->cap) {
        size_t nc = (c->len + n + 1) * 2;
        char *p = realloc(c->s, nc);
        assert_non_null(p);
        c->s = p;
        c->cap = nc;
    }
    memcpy(c->s + c->len, s, n);
    c->len += n;
    c->s[c->len] = 0;
}

bool utf8_whole(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t l = u[i] < 0x80 ? 1 : (u[i] & 0xE0) == 0xC0 ? 2 : (u[i] & 0xF0) == 0xE0 ? 3
                 : (u[i] & 0xF8) == 0xF0 ? 4 : 0;
        if (l == 0 || i + l > n) return false;
        for (size_t k = 1; k < l; k++)
            if ((u[i + k] & 0xC0) != 0x80) return false;
        i += l;
    }
    return true;
}

void cap_text_fn(void *ud, const char *s, size_t n) {
    capture *c = ud;
    if (n == 0 || !utf8_whole(s, n)) c->bad_piece = true;
    c->pieces++;
    cap_add(c, s, n);
}

void feed_split(feed_fn feed, void *stage, void *out, const char *s, size_t n,
                const size_t *cuts, size_t n_cuts) {
    size_t at = 0;
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : n;
        if (end > at) feed(stage, s + at, end - at, out);
        at = end;
    }
}

void for_each_split(size_t n, size_t pair_max, split_fn fn, void *arg) {
    size_t *cuts = malloc((n + 1) * sizeof *cuts);
    assert_non_null(cuts);
    fn(arg, cuts, 0);
    for (size_t i = 1; i < n; i++) {
        cuts[0] = i;
        fn(arg, cuts, 1);
    }
    if (n <= pair_max)
        for (size_t i = 1; i < n; i++)
            for (size_t j = i + 1; j < n; j++) {
                cuts[0] = i, cuts[1] = j;
                fn(arg, cuts, 2);
            }
    for (size_t i = 1; i < n; i++) cuts[i - 1] = i;
    if (n > 1) fn(arg, cuts, n - 1);
    uint64_t x = 0x9E3779B97F4A7C15ull ^ n;
    for (int r = 0; r < 200 && n > 1; r++) {
        size_t k = 0;
        for (size_t i = 1; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
            if (x % 4 == 0) cuts[k++] = i;
        }
        fn(arg, cuts, k);
    }
    free(cuts);
}

int main(void) {
    if (pl_ctx_init(&g_ctx, NULL) != PL_OK) return 1;
    int failed = 0;
    failed += test_stop_group();
    failed += test_think_group();
    failed += test_speak_group();
    failed += test_sentences_group();
    pl_ctx_free(g_ctx);
    return failed ? 1 : 0;
}
