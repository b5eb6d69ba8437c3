/* test_detok.c - pieces, whole-sequence decode and the streaming decoder.
 *
 * The streaming test builds a byte-level vocabulary that holds every
 * substring of a test text as a token, so the text can be fed cut at every
 * byte position (and in every segmentation of a shorter text): the decoder
 * must never emit part of a UTF-8 sequence, must hold back exactly the
 * incomplete tail, and must give back the text byte for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_tokenizer.h"

typedef struct sub_vocab {
    char       **texts;
    const char **tokens;
    size_t       n;
} sub_vocab;

/* Byte symbols + every substring of s (as map images). */
static pl_tokenizer *build_substrings(pl_ctx *ctx, const char *s, size_t len, sub_vocab *v) {
    pl_bytemap m;
    pl_bytemap_init(&m);
    size_t cap = 256 + len * (len + 1) / 2 + 1;
    v->texts = calloc(cap, sizeof *v->texts);
    v->tokens = calloc(cap, sizeof *v->tokens);
    v->n = 0;
    for (int b = 0; b < 256; b++) {
        v->texts[v->n] = calloc(4, 1);
        memcpy(v->texts[v->n], m.utf8[b], m.len[b]);
        v->n++;
    }
    for (size_t i = 0; i < len; i++)
        for (size_t j = i + 2; j <= len; j++) {
            char *t = calloc(2 * (j - i) + 1, 1);
            size_t o = 0;
            for (size_t k = i; k < j; k++) {
                memcpy(t + o, m.utf8[(uint8_t)s[k]], m.len[(uint8_t)s[k]]);
                o += m.len[(uint8_t)s[k]];
            }
            v->texts[v->n++] = t;
        }
    for (size_t i = 0; i < v->n; i++) v->tokens[i] = v->texts[i];
    static const char *const no_merges[] = { NULL };
    tt_vocab tv = { .type = PL_VOCAB_TYPE_BPE, .tokens = v->tokens, .merges = no_merges, .pre = "gpt-2",
                    .bos = -1, .eos = -1, .unk = -1, .add_bos = -1, .add_eos = -1, .add_space_prefix = -1 };
    return tt_build(ctx, &tv);
}

static void free_substrings(sub_vocab *v) {
    for (size_t i = 0; i < v->n; i++) free(v->texts[i]);
    free(v->texts);
    free(v->tokens);
}

/* Token for s[i..j) in a substring vocabulary. */
static pl_token sub_id(const pl_tokenizer *t, const char *s, size_t i, size_t j) {
    pl_bytemap m;
    pl_bytemap_init(&m);
    char buf[256];
    size_t o = 0;
    for (size_t k = i; k < j; k++) {
        memcpy(buf + o, m.utf8[(uint8_t)s[k]], m.len[(uint8_t)s[k]]);
        o += m.len[(uint8_t)s[k]];
    }
    pl_token id = pl_tokenizer_find(t, buf, o);
    assert_int_not_equal(id, PL_TOKEN_NULL);
    return id;
}

/* Longest prefix of s[0..k) that ends on a character boundary of valid s. */
static size_t boundary(const char *s, size_t k) {
    size_t b = 0;
    while (b < k) {
        uint32_t cp;
        int l = pl_utf8_decode((const uint8_t *)s + b, k - b, &cp);
        if (l <= 0) break;
        b += (size_t)l;
    }
    return b;
}

/* Feed s cut at the given positions (a bitmask over 1..len-1). */
static void feed_cuts(pl_detok *d, const pl_tokenizer *t, const char *s, size_t len, uint64_t mask,
                      const size_t *cuts, size_t ncuts) {
    char out[256];
    size_t ol = 0, start = 0;
    pl_detok_reset(d);
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        if (c < ncuts && !(mask >> c & 1)) continue;
        if (end == start) continue;
        const char *p;
        size_t pl;
        assert_int_equal(pl_detok_push(d, sub_id(t, s, start, end), &p, &pl), PL_OK);
        assert_true(pl_utf8_valid(p, pl)); /* never a partial sequence */
        memcpy(out + ol, p, pl);
        ol += pl;
        /* everything up to the last complete character is out, the rest held */
        assert_int_equal(ol, boundary(s, end));
        assert_int_equal(pl_detok_pending(d), end - ol);
        start = end;
    }
    const char *p;
    size_t pl;
    pl_detok_flush(d, &p, &pl);
    assert_int_equal(pl, 0);
    assert_int_equal(ol, len);
    assert_memory_equal(out, s, len);
}

static void test_stream_every_cut(void **state) {
    (void)state;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    /* 1, 2, 3 and 4-byte characters, a combining mark, a ZWJ sequence */
    const char *s = "a\xC3\xA9\xE2\x82\xAC" "e\xCC\x81\xF0\x9F\x98\x80" "b\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9";
    size_t len = strlen(s);
    sub_vocab v;
    pl_tokenizer *t = build_substrings(ctx, s, len, &v);
    assert_non_null(t);
    pl_detok *d = NULL;
    assert_int_equal(pl_detok_init(t, NULL, &d), PL_OK);
    size_t cuts[64];
    for (size_t i = 1; i < len; i++) cuts[i - 1] = i;
    /* every single cut position, then every pair of cut positions */
    for (size_t a = 0; a < len - 1; a++) {
        size_t one[1] = { cuts[a] };
        feed_cuts(d, t, s, len, 1, one, 1);
        for (size_t b = a + 1; b < len - 1; b++) {
            size_t two[2] = { cuts[a], cuts[b] };
            feed_cuts(d, t, s, len, 3, two, 2);
        }
    }
    /* byte by byte */
    feed_cuts(d, t, s, len, ~0ull, cuts, len - 1);
    pl_detok_free(d);
    pl_tokenizer_free(t);
    free_substrings(&v);

    /* all 2^(n-1) segmentations of a shorter text */
    const char *s2 = "x\xE2\x82\xAC\xF0\x9F\x98\x80\xC3\xA9";
    size_t len2 = strlen(s2);
    t = build_substrings(ctx, s2, len2, &v);
    assert_non_null(t);
    assert_int_equal(pl_detok_init(t, NULL, &d), PL_OK);
    for (size_t i = 1; i < len2; i++) cuts[i - 1] = i;
    for (uint64_t mask = 0; mask < (1ull << (len2 - 1)); mask++) feed_cuts(d, t, s2, len2, mask, cuts, len2 - 1);
    pl_detok_free(d);
    pl_tokenizer_free(t);
    free_substrings(&v);
    pl_ctx_free(ctx);
}

/* Bytes that can never be valid pass through at once (or become U+FFFD);
 * an incomplete tail at the end comes out at flush. */
static void test_stream_invalid(void **state) {
    (void)state;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    const char *s = "a\xFF" "b\xE2\x82" "c\xF0\x9F";
    size_t len = strlen(s);
    sub_vocab v;
    pl_tokenizer *t = build_substrings(ctx, s, len, &v);
    assert_non_null(t);
    for (int replace = 0; replace < 2; replace++) {
        pl_detok_params p = pl_detok_default_params();
        p.replace_invalid = replace;
        pl_detok *d = NULL;
        assert_int_equal(pl_detok_init(t, &p, &d), PL_OK);
        char out[64];
        size_t ol = 0;
        for (size_t i = 0; i < len; i++) {
            const char *q;
            size_t ql;
            assert_int_equal(pl_detok_push(d, sub_id(t, s, i, i + 1), &q, &ql), PL_OK);
            memcpy(out + ol, q, ql);
            ol += ql;
            if (i == 1) assert_int_equal(ol, replace ? 4 : 2); /* "a" + FF at once */
        }
        assert_int_equal(pl_detok_pending(d), 2); /* F0 9F */
        const char *q;
        size_t ql;
        pl_detok_flush(d, &q, &ql);
        memcpy(out + ol, q, ql);
        ol += ql;
        if (!replace) {
            assert_int_equal(ol, len);
            assert_memory_equal(out, s, len);
        } else {
            /* each maximal ill-formed subpart is one U+FFFD */
            const char *want = "a\xEF\xBF\xBD" "b\xEF\xBF\xBD" "c\xEF\xBF\xBD";
            assert_int_equal(ol, strlen(want));
            assert_memory_equal(out, want, ol);
        }
        pl_detok_free(d);
    }
    pl_tokenizer_free(t);
    free_substrings(&v);
    pl_ctx_free(ctx);
}

#define WS "\xE2\x96\x81"

/* SPM pieces: "▁" -> ' ', <0xNN> -> byte, control text only when rendering,
 * and the one space the encoder adds is removed at the start and after a
 * special token, not elsewhere. */
static void test_spm_pieces(void **state) {
    (void)state;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    static const char *const tokens[] = { "<unk>", "<s>", "</s>", "<0x41>", "<0xE2>", "<0x82>", "<0xAC>",
                                          WS "Hello", WS "world", WS, "<|end|>", "x" WS "y", NULL };
    static const int32_t types[] = { 2, 3, 3, 6, 6, 6, 6, 1, 1, 1, 3, 1 };
    tt_vocab v = { .type = PL_VOCAB_TYPE_SPM, .tokens = tokens, .types = types, .bos = 1, .eos = 2, .unk = 0,
                   .add_bos = -1, .add_eos = -1, .add_space_prefix = -1 };
    pl_tokenizer *t = tt_build(ctx, &v);
    assert_non_null(t);
    char buf[64];
    assert_int_equal(pl_tokenizer_piece(t, 7, false, buf, sizeof buf), 6);
    assert_memory_equal(buf, " Hello", 6);
    assert_int_equal(pl_tokenizer_piece(t, 3, false, buf, sizeof buf), 1);
    assert_int_equal(buf[0], 'A');
    assert_int_equal(pl_tokenizer_piece(t, 1, false, buf, sizeof buf), 0);
    assert_int_equal(pl_tokenizer_piece(t, 1, true, buf, sizeof buf), 3);
    assert_memory_equal(buf, "<s>", 3);
    assert_int_equal(pl_tokenizer_piece(t, 11, false, buf, sizeof buf), 3);
    assert_memory_equal(buf, "x y", 3);
    assert_int_equal(pl_tokenizer_piece(t, 99, true, buf, sizeof buf), 0);
    /* a short buffer gets a prefix; the length is the full one */
    assert_int_equal(pl_tokenizer_piece(t, 7, false, buf, 2), 6);
    assert_int_equal(pl_tokenizer_max_piece(t), 7); /* "<|end|>" */

    static const struct {
        pl_token ids[8];
        size_t   n;
        bool     render, undo;
        const char *want;
    } cases[] = {
        { { 7, 8 }, 2, false, true, "Hello world" },
        { { 1, 7, 8 }, 3, false, true, "Hello world" },             /* after BOS */
        { { 1, 7, 8 }, 3, true, true, "<s>Hello world" },
        { { 7, 10, 8 }, 3, true, true, "Hello<|end|>world" },       /* after a control token */
        { { 7, 8 }, 2, false, false, " Hello world" },
        { { 9, 7 }, 2, false, true, " Hello" },                     /* only one space goes */
        { { 4, 5, 6, 3 }, 4, false, true, "\xE2\x82\xAC" "A" },      /* byte tokens */
        { { 2 }, 1, false, true, "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pl_detok_params p = pl_detok_default_params();
        p.render_special = cases[i].render;
        p.undo_space_prefix = cases[i].undo;
        size_t n = 0;
        assert_int_equal(pl_tokenizer_decode(t, cases[i].ids, cases[i].n, &p, buf, sizeof buf, &n), PL_OK);
        assert_int_equal(n, strlen(cases[i].want));
        assert_memory_equal(buf, cases[i].want, n);
        /* the streaming decoder agrees */
        pl_detok *d = NULL;
        assert_int_equal(pl_detok_init(t, &p, &d), PL_OK);
        char out[64];
        size_t ol = 0;
        for (size_t k = 0; k < cases[i].n; k++) {
            const char *q;
            size_t ql;
            assert_int_equal(pl_detok_push(d, cases[i].ids[k], &q, &ql), PL_OK);
            memcpy(out + ol, q, ql);
            ol += ql;
        }
        const char *q;
        size_t ql;
        pl_detok_flush(d, &q, &ql);
        assert_int_equal(ql, 0);
        assert_int_equal(ol, n);
        assert_memory_equal(out, buf, n);
        pl_detok_free(d);
    }

    /* decode: a small buffer gets PL_ERR_RANGE and the needed size */
    pl_token ids[2] = { 7, 8 };
    size_t n = 0;
    assert_int_equal(pl_tokenizer_decode(t, ids, 2, NULL, buf, 4, &n), PL_ERR_RANGE);
    assert_int_equal(n, 11);
    assert_memory_equal(buf, "Hell", 4);
    assert_int_equal(pl_tokenizer_decode(t, ids, 2, NULL, NULL, 0, &n), PL_ERR_RANGE);
    assert_int_equal(n, 11);
    /* bad ids */
    pl_token bad[1] = { 12 };
    assert_int_equal(pl_tokenizer_decode(t, bad, 1, NULL, buf, sizeof buf, &n), PL_ERR_INVALID_ARG);
    pl_detok *d = NULL;
    assert_int_equal(pl_detok_init(t, NULL, &d), PL_OK);
    const char *q;
    size_t ql;
    assert_int_equal(pl_detok_push(d, -1, &q, &ql), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_detok_push(d, 12, &q, &ql), PL_ERR_INVALID_ARG);
    pl_detok_free(d);
    pl_detok_free(NULL);
    pl_tokenizer_free(t);
    pl_ctx_free(ctx);
}

/* encode's buffer contract: PL_ERR_RANGE with the needed count, first ids
 * written; NULL output with cap 0 to count */
static void test_encode_contract(void **state) {
    (void)state;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    sub_vocab v;
    pl_tokenizer *t = build_substrings(ctx, "ab", 2, &v);
    assert_non_null(t);
    pl_token ids[4];
    size_t n = 0;
    assert_int_equal(pl_tokenizer_encode(t, NULL, "a b c", 5, NULL, NULL, 0, &n), PL_ERR_RANGE);
    assert_int_equal(n, 5);
    ids[2] = 12345;
    assert_int_equal(pl_tokenizer_encode(t, NULL, "a b c", 5, NULL, ids, 2, &n), PL_ERR_RANGE);
    assert_int_equal(n, 5);
    assert_int_equal(ids[0], 'a');
    assert_int_equal(ids[2], 12345);
    assert_int_equal(pl_tokenizer_encode(t, NULL, "", 0, NULL, NULL, 0, &n), PL_OK);
    assert_int_equal(n, 0);
    assert_int_equal(pl_tokenizer_encode(t, NULL, NULL, 1, NULL, ids, 4, &n), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_tokenizer_encode(t, NULL, "a", 1, NULL, NULL, 4, &n), PL_ERR_INVALID_ARG);
    /* a scratch belongs to one tokenizer */
    sub_vocab v2;
    pl_tokenizer *t2 = build_substrings(ctx, "cd", 2, &v2);
    pl_tok_scratch *s2 = NULL;
    assert_int_equal(pl_tok_scratch_init(t2, &s2), PL_OK);
    assert_int_equal(pl_tokenizer_encode(t, s2, "a", 1, NULL, ids, 4, &n), PL_ERR_INVALID_ARG);
    pl_tok_scratch_free(s2);
    pl_tok_scratch_free(NULL);
    pl_tokenizer_free(t2);
    free_substrings(&v2);
    pl_tokenizer_free(t);
    pl_tokenizer_free(NULL);
    free_substrings(&v);
    pl_ctx_free(ctx);
}

int test_detok_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_every_cut),
        cmocka_unit_test(test_stream_invalid),
        cmocka_unit_test(test_spm_pieces),
        cmocka_unit_test(test_encode_contract),
    };
    return cmocka_run_group_tests_name("detok", tests, NULL, NULL);
}
