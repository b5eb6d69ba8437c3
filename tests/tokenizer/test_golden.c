/* test_golden.c - the real vocabularies in ../shared/vocab: every .inp string
 * must give exactly the reference ids of the .out file (no BOS) and decode
 * back to itself; generated Unicode text (and invalid UTF-8) must round-trip;
 * the streaming decoder must rebuild the text fed token by token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_tokenizer.h"

#define SEP "\n__ggml_vocab_test__\n"

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) b[n] = 0;
    *len = (size_t)n;
    return b;
}

/* Parse one .out line of space-separated ids. */
static size_t parse_ids(const char *line, size_t len, pl_token *ids, size_t cap) {
    size_t n = 0;
    const char *p = line, *end = line + len;
    while (p < end) {
        while (p < end && *p == ' ') p++;
        if (p >= end) break;
        long v = 0;
        while (p < end && *p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
        assert_true(n < cap);
        ids[n++] = (pl_token)v;
    }
    return n;
}

static void check_vocab_file(const char *name) {
    const char *path = tt_shared_vocab(name);
    if (!path) skip();
    char inp_path[1100], out_path[1100];
    snprintf(inp_path, sizeof inp_path, "%s.inp", path);
    snprintf(out_path, sizeof out_path, "%s.out", path);
    size_t inp_len, out_len;
    char *inp = slurp(inp_path, &inp_len), *outs = slurp(out_path, &out_len);
    assert_non_null(inp);
    assert_non_null(outs);

    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    pl_tokenizer *tok = NULL;
    assert_int_equal(pl_tokenizer_load_file(ctx, path, &tok), PL_OK);
    pl_tok_scratch *scr = NULL;
    assert_int_equal(pl_tok_scratch_init(tok, &scr), PL_OK);

    enum { CAP = 4096 };
    pl_token *got = malloc(CAP * sizeof *got), *want = malloc(CAP * sizeof *want);
    char *dec = malloc(CAP * 8);
    const char *p = inp, *o = outs;
    size_t n_cases = 0;
    pl_encode_params ep = { .add_bos = false, .add_eos = false, .parse_special = false };
    while (p < inp + inp_len) {
        const char *sep = strstr(p, SEP);
        assert_non_null(sep);
        size_t len = (size_t)(sep - p);
        const char *nl = memchr(o, '\n', (size_t)(outs + out_len - o));
        assert_non_null(nl);
        size_t nw = parse_ids(o, (size_t)(nl - o), want, CAP);
        size_t ng = 0;
        assert_int_equal(pl_tokenizer_encode(tok, scr, p, len, &ep, got, CAP, &ng), PL_OK);
        if (ng != nw || memcmp(got, want, nw * sizeof *got) != 0) {
            fprintf(stderr, "%s case %zu '%.*s':\n  want", name, n_cases, (int)len, p);
            for (size_t i = 0; i < nw; i++) fprintf(stderr, " %d", want[i]);
            fprintf(stderr, "\n  got ");
            for (size_t i = 0; i < ng; i++) fprintf(stderr, " %d", got[i]);
            fprintf(stderr, "\n");
            fail();
        }
        /* and back */
        size_t dl = 0;
        assert_int_equal(pl_tokenizer_decode(tok, got, ng, NULL, dec, CAP * 8, &dl), PL_OK);
        if (dl != len || memcmp(dec, p, len) != 0) {
            fprintf(stderr, "%s case %zu decodes to '%.*s'\n", name, n_cases, (int)dl, dec);
            fail();
        }
        n_cases++;
        p = sep + strlen(SEP);
        o = nl + 1;
    }
    assert_int_equal(n_cases, 46);
    free(got);
    free(want);
    free(dec);
    free(inp);
    free(outs);
    pl_tok_scratch_free(scr);
    pl_tokenizer_free(tok);
    pl_ctx_free(ctx);
}

static void test_golden_gpt2(void **state) {
    (void)state;
    check_vocab_file("ggml-vocab-gpt-2.gguf");
}

static void test_golden_spm(void **state) {
    (void)state;
    check_vocab_file("ggml-vocab-llama-spm.gguf");
}

/* ---- generated text ---- */

/* Pieces of text in many scripts and shapes; the generator strings them
 * together at random. */
static const char *const gen_pieces[] = {
    "Hello", " world", "the", " quick", "'s", "'LL", " I'm", "don't", "123", "4567890", " 42", "3.14",
    " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", " \n ", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\x83",
    ("Gr\xC3\xBC\xC3\x9F" "e"), "\xC3\xA9t\xC3\xA9", "e\xCC\x81", "a\xCC\x8A\xCC\x81",          /* combining marks */
    "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82",                                        /* Cyrillic */
    "\xCE\xB1\xCE\xB2\xCE\xB3",                                                                /* Greek */
    "\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7",                                                /* Arabic */
    "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D",                                                        /* Hebrew */
    "\xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8\xE0\xA5\x8D\xE0\xA4\xA4\xE0\xA5\x87",                /* Devanagari */
    "\xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C",                                        /* Chinese */
    "\xE3\x81\x93\xE3\x82\x93\xE3\x81\xAB\xE3\x81\xA1\xE3\x81\xAF",                            /* Japanese */
    "\xEC\x95\x88\xEB\x85\x95",                                                                /* Korean */
    "\xE0\xB8\xAA\xE0\xB8\xA7\xE0\xB8\xB1\xE0\xB8\xAA\xE0\xB8\x94\xE0\xB8\xB5",                /* Thai */
    "\xF0\x9F\x98\x80", "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7", /* emoji, ZWJ */
    "\xF0\x9F\x87\xAB\xF0\x9F\x87\xB7", "\xE2\x9C\x85", "\xF0\x9D\x94\xB8",                      /* flag, U+1D538 */
    "\xEF\xBB\xBF", "\xE2\x80\x8B", "\xC2\x85", "\xE1\xA0\x8E",                                /* BOM, ZWSP, NEL, U+180E */
    "!!!", "...", "?!", "(x)", "{\"a\": [1, 2]}", "<|im_end|>", "<s>", "</s>", "<unk>", "_",
    "\xC2\xBD", "\xC2\xB2", "\xE2\x85\xA0",                                                     /* ½ ² Ⅰ */
    "\x01\x02\x7F", "\0",
};

/* Invalid UTF-8 fragments. */
static const char *const bad_pieces[] = {
    "\xFF", "\xC0\xAF", "\xE2\x82", "\xF0\x9F\x98", "\x80", "\xBF\xBF", "\xED\xA0\x80", "\xF4\x90\x80\x80",
    "\xC3", "\xE0\x80\x80", "\xF8\x88\x80\x80\x80",
};

static size_t gen_text(uint64_t *seed, char *buf, size_t cap, bool invalid) {
    size_t n = 0, np = sizeof gen_pieces / sizeof gen_pieces[0], nb = sizeof bad_pieces / sizeof bad_pieces[0];
    int k = 1 + (int)(tt_rand(seed) % 24);
    for (int i = 0; i < k; i++) {
        const char *s;
        size_t l;
        if (invalid && tt_rand(seed) % 4 == 0) {
            s = bad_pieces[tt_rand(seed) % nb];
            l = strlen(s);
        } else {
            size_t idx = tt_rand(seed) % np;
            s = gen_pieces[idx];
            l = idx == np - 1 ? 1 : strlen(s); /* the last piece is a NUL byte */
        }
        if (n + l > cap) break;
        memcpy(buf + n, s, l);
        n += l;
    }
    return n;
}

static void round_trip_file(const char *name, int rounds) {
    const char *path = tt_shared_vocab(name);
    if (!path) skip();
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    pl_tokenizer *tok = NULL;
    assert_int_equal(pl_tokenizer_load_file(ctx, path, &tok), PL_OK);
    pl_tok_scratch *scr = NULL;
    assert_int_equal(pl_tok_scratch_init(tok, &scr), PL_OK);
    pl_detok *dt = NULL;
    assert_int_equal(pl_detok_init(tok, NULL, &dt), PL_OK);
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    char text[2048], dec[8192], stream[8192];
    pl_token ids[4096];
    for (int r = 0; r < rounds; r++) {
        bool invalid = r % 3 == 2;
        size_t len = gen_text(&seed, text, sizeof text, invalid);
        for (int bos = 0; bos < 2; bos++) {
            pl_encode_params ep = { .add_bos = bos, .add_eos = bos, .parse_special = false };
            size_t n = 0;
            assert_int_equal(pl_tokenizer_encode(tok, scr, text, len, &ep, ids, 4096, &n), PL_OK);
            size_t dl = 0;
            assert_int_equal(pl_tokenizer_decode(tok, ids, n, NULL, dec, sizeof dec, &dl), PL_OK);
            if (dl != len || memcmp(dec, text, len) != 0) {
                fprintf(stderr, "%s round %d: %zu bytes in, %zu out\n  in: ", name, r, len, dl);
                for (size_t i = 0; i < len; i++) fprintf(stderr, "%02x", (uint8_t)text[i]);
                fprintf(stderr, "\n out: ");
                for (size_t i = 0; i < dl; i++) fprintf(stderr, "%02x", (uint8_t)dec[i]);
                fprintf(stderr, "\n");
                fail();
            }
            /* user text never becomes a control token */
            for (size_t i = (size_t)bos; i + (size_t)bos < n; i++)
                assert_int_not_equal(pl_tokenizer_token_type(tok, ids[i]), PL_TOKEN_TYPE_CONTROL);
            /* streaming: the same bytes, never a partial sequence mid-stream */
            size_t sl = 0;
            pl_detok_reset(dt);
            for (size_t i = 0; i < n; i++) {
                const char *t;
                size_t tl;
                assert_int_equal(pl_detok_push(dt, ids[i], &t, &tl), PL_OK);
                if (!invalid && tl) assert_true(pl_utf8_valid(t, tl));
                memcpy(stream + sl, t, tl);
                sl += tl;
            }
            const char *t;
            size_t tl;
            pl_detok_flush(dt, &t, &tl);
            memcpy(stream + sl, t, tl);
            sl += tl;
            assert_int_equal(sl, len);
            assert_memory_equal(stream, text, len);
        }
    }
    pl_detok_free(dt);
    pl_tok_scratch_free(scr);
    pl_tokenizer_free(tok);
    pl_ctx_free(ctx);
}

static void test_round_trip_gpt2(void **state) {
    (void)state;
    round_trip_file("ggml-vocab-gpt-2.gguf", 300);
}

static void test_round_trip_spm(void **state) {
    (void)state;
    round_trip_file("ggml-vocab-llama-spm.gguf", 300);
}

/* Specific reference behaviour of the real vocabularies. */
static void test_real_vocab_facts(void **state) {
    (void)state;
    const char *gpt2 = tt_shared_vocab("ggml-vocab-gpt-2.gguf");
    if (!gpt2) skip();
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    pl_tokenizer *g = NULL, *s = NULL;
    assert_int_equal(pl_tokenizer_load_file(ctx, gpt2, &g), PL_OK);
    const char *spm = tt_shared_vocab("ggml-vocab-llama-spm.gguf");
    if (!spm) skip();
    assert_int_equal(pl_tokenizer_load_file(ctx, spm, &s), PL_OK);
    pl_token ids[64];

    /* gpt-2: <|endoftext|> (50256) is CONTROL: text unless parse_special */
    assert_int_equal(pl_tokenizer_type(g), PL_VOCAB_TYPE_BPE);
    assert_string_equal(pl_tokenizer_pre(g), "gpt-2");
    assert_false(pl_tokenizer_add_bos(g));
    size_t n = tt_encode(g, "a<|endoftext|>", 14, true, true, ids, 64);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 64); /* "a" */
    assert_int_equal(ids[1], 50256);
    n = tt_encode(g, "a<|endoftext|>", 14, true, false, ids, 64);
    assert_true(n > 2);
    for (size_t i = 0; i < n; i++) assert_int_not_equal(ids[i], 50256);
    assert_true(pl_tokenizer_is_eog(g, 50256));
    const pl_token *eog;
    assert_int_equal(pl_tokenizer_eog_ids(g, &eog), 1);
    assert_int_equal(eog[0], 50256);

    /* SPM: BOS added by default, EOS not; </s> is the only EOG */
    assert_int_equal(pl_tokenizer_type(s), PL_VOCAB_TYPE_SPM);
    assert_true(pl_tokenizer_add_bos(s));
    assert_false(pl_tokenizer_add_eos(s));
    n = tt_encode(s, "Hello world", 11, true, false, ids, 64);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 15043);
    assert_int_equal(ids[2], 3186);
    assert_true(pl_tokenizer_is_eog(s, 2));
    assert_false(pl_tokenizer_is_eog(s, 1));
    /* after a special token in the text the next text gets the space prefix */
    n = tt_encode(s, "<s>Hello", 8, false, true, ids, 64);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 15043);
    char buf[64];
    pl_detok_params dp = pl_detok_default_params();
    dp.render_special = true;
    size_t dl = 0;
    assert_int_equal(pl_tokenizer_decode(s, ids, n, &dp, buf, sizeof buf, &dl), PL_OK);
    assert_int_equal(dl, 8);
    assert_memory_equal(buf, "<s>Hello", 8);
    /* byte fallback: U+1F600 is not in the vocabulary -> 4 byte tokens */
    n = tt_encode(s, "\xF0\x9F\x98\x80", 4, false, false, ids, 64);
    assert_int_equal(n, 5);
    assert_int_equal(ids[0], 29871); /* "▁" */
    assert_int_equal(ids[1], 0xF0 + 3);
    assert_int_equal(ids[4], 0x80 + 3);
    /* a literal U+2581 is SentencePiece's space mark: it decodes as a space,
     * as in the reference */
    n = tt_encode(s, "a\xE2\x96\x81" "b", 5, false, false, ids, 64);
    assert_int_equal(tt_decode(s, ids, n, buf, sizeof buf), 3);
    assert_string_equal(buf, "a b");
    /* invalid bytes: each one its own byte token */
    n = tt_encode(s, "a\xFF" "b", 3, false, false, ids, 64);
    assert_int_equal(tt_decode(s, ids, n, buf, sizeof buf), 3);
    assert_memory_equal(buf, "a\xFF" "b", 3);
    bool has_ff = false;
    for (size_t i = 0; i < n; i++) has_ff |= ids[i] == 0xFF + 3;
    assert_true(has_ff);

    pl_tokenizer_free(g);
    pl_tokenizer_free(s);
    pl_ctx_free(ctx);
}

int test_golden_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_gpt2),
        cmocka_unit_test(test_golden_spm),
        cmocka_unit_test(test_round_trip_gpt2),
        cmocka_unit_test(test_round_trip_spm),
        cmocka_unit_test(test_real_vocab_facts),
    };
    return cmocka_run_group_tests_name("golden", tests, NULL, NULL);
}
