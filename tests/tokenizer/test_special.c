/* test_special.c - special and added tokens matched in the text before BPE:
 * CONTROL only with parse_special, USER_DEFINED always, longest first (as a
 * global order, like the reference), and the end-of-generation set. */
#include <string.h>

#include "test_tokenizer.h"

enum { NB = 256 };

/* byte symbols (no merges) + the specials below */
static const struct { const char *text; int32_t type; } specials[] = {
    { "<|im_start|>", PL_TOKEN_TYPE_CONTROL },      /* NB + 0 */
    { "<|im_end|>", PL_TOKEN_TYPE_CONTROL },        /* NB + 1 */
    { "<tool>", PL_TOKEN_TYPE_USER_DEFINED },       /* NB + 2 */
    { "ab", PL_TOKEN_TYPE_CONTROL },                /* NB + 3 */
    { "bcd", PL_TOKEN_TYPE_CONTROL },               /* NB + 4 */
    { "<|x|>", PL_TOKEN_TYPE_CONTROL },             /* NB + 5 */
    { "<|x|>y", PL_TOKEN_TYPE_CONTROL },            /* NB + 6 */
    { " ", PL_TOKEN_TYPE_USER_DEFINED },            /* NB + 7: 1 byte */
    { "<|end|>", PL_TOKEN_TYPE_NORMAL },            /* NB + 8: not special */
    { "<|eot_id|>", PL_TOKEN_TYPE_CONTROL },        /* NB + 9 */
};
#define NS (sizeof specials / sizeof specials[0])

typedef struct fixture {
    char        texts[NB][3];
    const char *tokens[NB + NS + 1];
    int32_t     types[NB + NS];
} fixture;

static pl_tokenizer *build(pl_ctx *ctx, fixture *f) {
    pl_bytemap m;
    pl_bytemap_init(&m);
    for (int b = 0; b < NB; b++) {
        memcpy(f->texts[b], m.utf8[b], m.len[b]);
        f->texts[b][m.len[b]] = 0;
        f->tokens[b] = f->texts[b];
        f->types[b] = PL_TOKEN_TYPE_NORMAL;
    }
    for (size_t i = 0; i < NS; i++) {
        f->tokens[NB + i] = specials[i].text;
        f->types[NB + i] = specials[i].type;
    }
    f->tokens[NB + NS] = NULL;
    static const char *const no_merges[] = { NULL };
    tt_vocab v = { .type = PL_VOCAB_TYPE_BPE, .tokens = f->tokens, .types = f->types, .merges = no_merges,
                   .pre = "gpt-2", .bos = -1, .eos = NB + 1, .unk = -1, .add_bos = -1, .add_eos = -1,
                   .add_space_prefix = -1 };
    return tt_build(ctx, &v);
}

/* ids expected: a string where each char is a byte token, with specials
 * spliced in via -1-terminated lists */
static void expect(const pl_tokenizer *t, const char *text, bool parse, const pl_token *want, size_t nw) {
    pl_token got[64];
    size_t n = tt_encode(t, text, strlen(text), false, parse, got, 64);
    assert_int_equal(n, nw);
    assert_memory_equal(got, want, nw * sizeof *got);
    /* and back, with specials rendered */
    char buf[128];
    pl_detok_params dp = pl_detok_default_params();
    dp.render_special = true;
    size_t dl = 0;
    assert_int_equal(pl_tokenizer_decode(t, got, n, &dp, buf, sizeof buf, &dl), PL_OK);
    assert_int_equal(dl, strlen(text));
    assert_memory_equal(buf, text, dl);
}

#define B(c) ((pl_token)(uint8_t)(c))

static void test_partition(void **state) {
    (void)state;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    fixture f;
    pl_tokenizer *t = build(ctx, &f);
    assert_non_null(t);
    assert_int_equal(t->n_specials, 9); /* CONTROL + USER_DEFINED, not the NORMAL one */

    /* chat markup: control tokens only when asked */
    const pl_token chat_on[] = { NB + 0, B('u'), B('\n'), B('h'), NB + 1 };
    expect(t, "<|im_start|>u\nh<|im_end|>", true, chat_on, 5);
    const char *chat = "<|im_start|>u\nh<|im_end|>";
    pl_token chat_off[64];
    for (size_t i = 0; i < strlen(chat); i++) chat_off[i] = B(chat[i]);
    expect(t, chat, false, chat_off, strlen(chat));

    /* USER_DEFINED tokens are matched either way (the 1-byte " " too) */
    const pl_token tool[] = { B('a'), NB + 2, B('b'), NB + 7, B('c') };
    expect(t, "a<tool>b c", false, tool, 5);
    expect(t, "a<tool>b c", true, tool, 5);

    /* longest first as a global order: "bcd" (3) claims its text before
     * "ab" (2) is looked for, so "abcd" is a | bcd, not ab | cd */
    const pl_token lf[] = { B('a'), NB + 4 };
    expect(t, "abcd", true, lf, 2);
    const pl_token lf2[] = { NB + 3, B('c'), NB + 3 };
    expect(t, "abcab", true, lf2, 3);
    const pl_token xy[] = { NB + 6, NB + 5, B('z') };
    expect(t, "<|x|>y<|x|>z", true, xy, 3);

    /* adjacent, repeated, at both ends; incomplete markup stays text */
    const pl_token rep[] = { NB + 1, NB + 1, B('q'), NB + 1 };
    expect(t, "<|im_end|><|im_end|>q<|im_end|>", true, rep, 4);
    const pl_token part[] = { B('<'), B('|'), B('i'), B('m'), B('_'), B('e'), B('n'), B('d'), B('|') };
    expect(t, "<|im_end|", true, part, 9);

    /* a NORMAL token that looks like markup is never matched as special */
    pl_token got[64];
    size_t n = tt_encode(t, "<|end|>", 7, false, true, got, 64);
    assert_int_equal(n, 7);
    pl_tokenizer_free(t);
    pl_ctx_free(ctx);
}

static void test_eog(void **state) {
    (void)state;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    fixture f;
    pl_tokenizer *t = build(ctx, &f);
    assert_non_null(t);
    /* eos (<|im_end|>, from metadata) and <|eot_id|> (CONTROL, by name);
     * <|end|> is NORMAL here, so it is not included */
    const pl_token *ids;
    assert_int_equal(pl_tokenizer_eog_ids(t, &ids), 2);
    assert_int_equal(ids[0], NB + 1);
    assert_int_equal(ids[1], NB + 9);
    assert_true(pl_tokenizer_is_eog(t, NB + 9));
    assert_false(pl_tokenizer_is_eog(t, NB + 8));
    assert_false(pl_tokenizer_is_eog(t, NB + 0));
    assert_false(pl_tokenizer_is_eog(t, -1));
    pl_tokenizer_free(t);
    pl_ctx_free(ctx);
}

/* SPM: text after a special token gets the space prefix; decoding removes it. */
static void test_spm_specials(void **state) {
    (void)state;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    static const char *const tokens[] = { "<unk>", "<s>", "</s>", "<|user|>", "<sep>", "\xE2\x96\x81", "h", "i",
                                          "\xE2\x96\x81h", "\xE2\x96\x81hi", NULL };
    static const int32_t types[] = { PL_TOKEN_TYPE_UNKNOWN, PL_TOKEN_TYPE_CONTROL, PL_TOKEN_TYPE_CONTROL,
                                     PL_TOKEN_TYPE_CONTROL, PL_TOKEN_TYPE_USER_DEFINED, 1, 1, 1, 1, 1 };
    static const float scores[] = { 0, 0, 0, 0, 0, -1, -2, -2, -3, -1 };
    tt_vocab v = { .type = PL_VOCAB_TYPE_SPM, .tokens = tokens, .types = types, .scores = scores, .bos = 1,
                   .eos = 2, .unk = 0, .add_bos = -1, .add_eos = -1, .add_space_prefix = -1 };
    pl_tokenizer *t = tt_build(ctx, &v);
    assert_non_null(t);
    pl_token got[32];
    /* <s> + "<|user|>hi<sep>hi": ▁hi after each special */
    const char *text = "<|user|>hi<sep>hi";
    size_t n = tt_encode(t, text, strlen(text), true, true, got, 32);
    const pl_token want[] = { 1, 3, 9, 4, 9 };
    assert_int_equal(n, 5);
    assert_memory_equal(got, want, sizeof want);
    char buf[64];
    pl_detok_params dp = pl_detok_default_params();
    dp.render_special = true;
    size_t dl = 0;
    assert_int_equal(pl_tokenizer_decode(t, got, n, &dp, buf, sizeof buf, &dl), PL_OK);
    assert_int_equal(dl, strlen("<s>") + strlen(text));
    assert_memory_equal(buf, "<s><|user|>hi<sep>hi", dl);
    /* without parse_special the control markup is text (with byte fallback
     * to <unk>: no byte tokens here) but <sep> (USER_DEFINED) still matches */
    n = tt_encode(t, text, strlen(text), false, false, got, 32);
    bool has_sep = false, has_user = false;
    for (size_t i = 0; i < n; i++) {
        has_sep |= got[i] == 4;
        has_user |= got[i] == 3;
    }
    assert_true(has_sep);
    assert_false(has_user);
    pl_tokenizer_free(t);
    pl_ctx_free(ctx);
}

int test_special_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition),
        cmocka_unit_test(test_eog),
        cmocka_unit_test(test_spm_specials),
    };
    return cmocka_run_group_tests_name("special", tests, NULL, NULL);
}
