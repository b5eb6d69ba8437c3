/* test_unicode.c - strict UTF-8 decoding (against a naive decoder written from
 * the definition) and the GPT-2 byte<->unicode map. */
#include <string.h>

#include "test_tokenizer.h"

/* Naive reference: decode by the bit patterns, then reject overlongs,
 * surrogates and values above U+10FFFF. Returns the length or 0. */
static int naive_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    int len;
    uint32_t v;
    if (s[0] < 0x80) { *cp = s[0]; return 1; }
    else if ((s[0] & 0xE0) == 0xC0) { len = 2; v = s[0] & 0x1F; }
    else if ((s[0] & 0xF0) == 0xE0) { len = 3; v = s[0] & 0x0F; }
    else if ((s[0] & 0xF8) == 0xF0) { len = 4; v = s[0] & 0x07; }
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (v < min[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

static void test_decode_cases(void **state) {
    (void)state;
    static const struct { const char *s; int len; uint32_t cp; } cases[] = {
        { "A", 1, 'A' },
        { "\xC2\xA0", 2, 0xA0 },
        { "\xE2\x82\xAC", 3, 0x20AC },
        { "\xF0\x9F\x98\x80", 4, 0x1F600 },
        { "\xF4\x8F\xBF\xBF", 4, 0x10FFFF },
        { "\xEF\xBF\xBD", 3, 0xFFFD },
        { "\xC0\xAF", 0, 0 },          /* overlong '/' */
        { "\xC1\xBF", 0, 0 },
        { "\xE0\x80\x80", 0, 0 },      /* overlong */
        { "\xE0\x9F\xBF", 0, 0 },
        { "\xED\xA0\x80", 0, 0 },      /* surrogate */
        { "\xF0\x80\x80\x80", 0, 0 },  /* overlong */
        { "\xF4\x90\x80\x80", 0, 0 },  /* above U+10FFFF */
        { "\xF5\x80\x80\x80", 0, 0 },
        { "\xFF", 0, 0 },
        { "\x80", 0, 0 },              /* lone continuation */
        { "\xE2\x82", 0, 0 },          /* truncated */
        { "\xE2\x28\xA1", 0, 0 },      /* bad continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t cp = 0;
        int l = pl_utf8_decode((const uint8_t *)cases[i].s, strlen(cases[i].s), &cp);
        assert_int_equal(l, cases[i].len);
        if (l) assert_int_equal(cp, cases[i].cp);
    }
    /* encode inverts decode over the whole code space */
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x3000 ? 1 : 97)) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        uint8_t b[4];
        int l = pl_utf8_encode(cp, b);
        uint32_t back = 0;
        assert_int_equal(pl_utf8_decode(b, (size_t)l, &back), l);
        assert_int_equal(back, cp);
    }
}

static void test_decode_vs_naive(void **state) {
    (void)state;
    uint64_t seed = 12345;
    uint8_t buf[8];
    for (int r = 0; r < 200000; r++) {
        uint64_t x = tt_rand(&seed);
        size_t n = 1 + (size_t)(x % 4);
        for (size_t i = 0; i < n; i++) {
            /* bias toward lead/continuation bytes so valid sequences are common */
            uint8_t b = (uint8_t)(tt_rand(&seed) >> 11);
            if (i > 0 && (tt_rand(&seed) & 3)) b = 0x80 | (b & 0x3F);
            buf[i] = b;
        }
        uint32_t a = 0, b = 0;
        int la = pl_utf8_decode(buf, n, &a), lb = naive_decode(buf, n, &b);
        assert_int_equal(la, lb);
        if (la) assert_int_equal(a, b);
        /* whole-buffer validity agrees with decoding step by step */
        bool valid = true;
        for (size_t i = 0; i < n;) {
            uint32_t c;
            int l = naive_decode(buf + i, n - i, &c);
            if (!l) { valid = false; break; }
            i += (size_t)l;
        }
        assert_int_equal(pl_utf8_valid((const char *)buf, n), valid); /* parley/core.h */
    }
    /* the 8-byte ASCII fast path */
    assert_true(pl_utf8_valid("0123456789abcdef\xC3\xA9xyz", 21));
    assert_false(pl_utf8_valid("0123456789abcdef\xC3" "xyz", 20));
    assert_false(pl_utf8_valid("01234567\xFF" "9abcdefghij", 20));
}

static void test_incomplete_tail(void **state) {
    (void)state;
    static const struct { const char *s; size_t tail; } cases[] = {
        { "", 0 }, { "a", 0 }, { "\xC3", 1 }, { "a\xE2", 1 }, { "a\xE2\x82", 2 }, { "\xE2\x82\xAC", 0 },
        { "\xF0\x9F", 2 }, { "\xF0\x9F\x98", 3 }, { "\xF0\x9F\x98\x80", 0 },
        { "\xED\xA0", 0 },     /* surrogate prefix: can never complete */
        { "\xE0\x80", 0 },     /* overlong prefix */
        { "\xF4\x90", 0 },     /* above U+10FFFF */
        { "\xC0", 0 }, { "\xF8", 0 }, { "\x80", 0 }, { "\x80\x80\x80", 0 },
        { "\xE2\x41", 0 },     /* already broken */
        { "x\xF0\x90\x80", 3 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(pl_utf8_incomplete_tail((const uint8_t *)cases[i].s, strlen(cases[i].s)), cases[i].tail);
    static const struct { const char *s; size_t len; } bad[] = {
        { "\xFF", 1 }, { "\x80", 1 }, { "\xE2\x82\x41", 2 }, { "\xE2\x41", 1 }, { "\xF0\x9F\x98", 3 },
        { "\xED\xA0\x80", 1 }, { "\xC3", 1 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(pl_utf8_invalid_len((const uint8_t *)bad[i].s, strlen(bad[i].s)), bad[i].len);
}

static void test_bytemap(void **state) {
    (void)state;
    pl_bytemap m;
    pl_bytemap_init(&m);
    bool seen[324] = { false };
    for (int b = 0; b < 256; b++) {
        uint32_t cp = m.cp[b];
        assert_true(cp < 324);
        assert_false(seen[cp]);
        seen[cp] = true;
        assert_int_equal(m.rev[cp], b);
        uint32_t back;
        assert_int_equal(pl_utf8_decode(m.utf8[b], m.len[b], &back), m.len[b]);
        assert_int_equal(back, cp);
    }
    /* printable bytes stand for themselves */
    assert_int_equal(m.cp['A'], 'A');
    assert_int_equal(m.cp['!'], '!');
    assert_int_equal(m.cp[0xA1], 0xA1);
    assert_int_equal(m.cp[0xFF], 0xFF);
    /* the others, in order from U+0100: 0x00..0x20 -> U+0100..U+0120,
     * 0x7F..0xA0 -> U+0121..U+0142, 0xAD -> U+0143 */
    assert_int_equal(m.cp[0x00], 0x100);
    assert_int_equal(m.cp[' '], 0x120);  /* 'Ġ' */
    assert_int_equal(m.cp['\n'], 0x10A); /* 'Ċ' */
    assert_int_equal(m.cp[0x7F], 0x121);
    assert_int_equal(m.cp[0xA0], 0x142);
    assert_int_equal(m.cp[0xAD], 0x143);
    assert_memory_equal(m.utf8[' '], "\xC4\xA0", 2);
}

int test_unicode_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_cases),
        cmocka_unit_test(test_decode_vs_naive),
        cmocka_unit_test(test_incomplete_tail),
        cmocka_unit_test(test_bytemap),
    };
    return cmocka_run_group_tests_name("unicode", tests, NULL, NULL);
}
