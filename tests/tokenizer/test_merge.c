/* test_merge.c - BPE and SPM merging on small hand-built vocabularies, checked
 * against hand-computed ids and against naive quadratic reference
 * implementations written from the definitions (rescan all adjacent pairs,
 * merge the best one, repeat). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_tokenizer.h"

/* ---- byte-level BPE ---- */

/* Token list: the 256 byte symbols, then extra texts (in map images). */
typedef struct bpe_fixture {
    char         texts[512][48];
    const char  *tokens[513];
    size_t       n;
} bpe_fixture;

static void bpe_fixture_init(bpe_fixture *f, const char *const *extra) {
    pl_bytemap m;
    pl_bytemap_init(&m);
    f->n = 0;
    for (int b = 0; b < 256; b++) {
        memcpy(f->texts[f->n], m.utf8[b], m.len[b]);
        f->texts[f->n][m.len[b]] = 0;
        f->tokens[f->n] = f->texts[f->n];
        f->n++;
    }
    for (size_t i = 0; extra && extra[i]; i++) {
        snprintf(f->texts[f->n], sizeof f->texts[0], "%s", extra[i]);
        f->tokens[f->n] = f->texts[f->n];
        f->n++;
    }
    f->tokens[f->n] = NULL;
}

static pl_token id_of(const pl_tokenizer *t, const char *s) {
    pl_token id = pl_tokenizer_find(t, s, strlen(s));
    assert_int_not_equal(id, PL_TOKEN_NULL);
    return id;
}

static void test_bpe_hand(void **state) {
    (void)state;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    static const char *const extra[] = { "ab", "abc", "bc", "Ġa", "Ġab", "cc", "ccc", NULL };
    static const char *const merges[] = { "a b", "ab c", "b c", "Ġ a", "Ġa b", "c c", "cc c", NULL };
    bpe_fixture f;
    bpe_fixture_init(&f, extra);
    tt_vocab v = { .type = PL_VOCAB_TYPE_BPE, .tokens = f.tokens, .merges = merges, .pre = "gpt-2",
                   .bos = -1, .eos = -1, .unk = -1, .add_bos = -1, .add_eos = -1, .add_space_prefix = -1 };
    pl_tokenizer *t = tt_build(ctx, &v);
    assert_non_null(t);
    pl_token ids[32];
    /* "abc": a+b (rank 0) first, then ab+c (rank 1) */
    assert_int_equal(tt_encode(t, "abc", 3, false, false, ids, 32), 1);
    assert_int_equal(ids[0], id_of(t, "abc"));
    /* "bbc": b+c is the only merge */
    assert_int_equal(tt_encode(t, "bbc", 3, false, false, ids, 32), 2);
    assert_int_equal(ids[0], id_of(t, "b"));
    assert_int_equal(ids[1], id_of(t, "bc"));
    /* " abc" is one word: a+b (rank 0) comes before Ġ+a (rank 3), then
     * ab+c; "Ġ abc" is no merge */
    assert_int_equal(tt_encode(t, " abc", 4, false, false, ids, 32), 2);
    assert_int_equal(ids[0], id_of(t, "Ġ"));
    assert_int_equal(ids[1], id_of(t, "abc"));
    assert_int_equal(tt_encode(t, " a", 2, false, false, ids, 32), 1);
    assert_int_equal(ids[0], id_of(t, "Ġa"));
    /* "cccc": ties on rank go leftmost: (cc)(cc), then cc+c needs a c */
    assert_int_equal(tt_encode(t, "cccc", 4, false, false, ids, 32), 2);
    assert_int_equal(ids[0], id_of(t, "cc"));
    assert_int_equal(ids[1], id_of(t, "cc"));
    /* "ccc": leftmost cc first, then cc+c */
    assert_int_equal(tt_encode(t, "ccc", 3, false, false, ids, 32), 1);
    assert_int_equal(ids[0], id_of(t, "ccc"));
    /* words do not merge across the pre-tokenizer's cuts: "ab" | " ab" */
    assert_int_equal(tt_encode(t, "ab ab", 5, false, false, ids, 32), 3);
    assert_int_equal(ids[0], id_of(t, "ab"));
    assert_int_equal(ids[1], id_of(t, "Ġ"));
    assert_int_equal(ids[2], id_of(t, "ab"));
    pl_tokenizer_free(t);
    pl_ctx_free(ctx);
}

/* Llama 3's ignore_merges: a word that is itself a token is taken whole even
 * when the merges could not build it. */
static void test_bpe_ignore_merges(void **state) {
    (void)state;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    static const char *const extra[] = { "ab", "abcd", NULL };
    static const char *const merges[] = { "a b", NULL };
    bpe_fixture f;
    bpe_fixture_init(&f, extra);
    pl_token ids[8];
    const char *pres[2] = { "gpt-2", "llama-bpe" };
    for (int k = 0; k < 2; k++) {
        tt_vocab v = { .type = PL_VOCAB_TYPE_BPE, .tokens = f.tokens, .merges = merges, .pre = pres[k],
                       .bos = -1, .eos = -1, .unk = -1, .add_bos = -1, .add_eos = -1, .add_space_prefix = -1 };
        pl_tokenizer *t = tt_build(ctx, &v);
        assert_non_null(t);
        size_t n = tt_encode(t, "abcd", 4, false, false, ids, 8);
        if (k == 0) {
            assert_int_equal(n, 3);
            assert_int_equal(ids[0], id_of(t, "ab"));
        } else {
            assert_int_equal(n, 1);
            assert_int_equal(ids[0], id_of(t, "abcd"));
        }
        pl_tokenizer_free(t);
    }
    pl_ctx_free(ctx);
}

/* Naive byte-level BPE on one word: symbols are strings of map images; find
 * the adjacent pair with the lowest merge rank (leftmost), join, repeat. */
static size_t naive_bpe(const char *const *merges, size_t n_merges, const char *word, size_t len,
                        char syms[][64], size_t nsym_cap) {
    pl_bytemap m;
    pl_bytemap_init(&m);
    size_t n = 0;
    for (size_t i = 0; i < len && n < nsym_cap; i++) {
        uint8_t b = (uint8_t)word[i];
        memcpy(syms[n], m.utf8[b], m.len[b]);
        syms[n][m.len[b]] = 0;
        n++;
    }
    for (;;) {
        size_t best = SIZE_MAX, at = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            char pair[130];
            snprintf(pair, sizeof pair, "%.63s %.63s", syms[i], syms[i + 1]);
            for (size_t r = 0; r < n_merges && r < best; r++)
                if (strcmp(merges[r], pair) == 0) {
                    best = r;
                    at = i;
                }
        }
        if (best == SIZE_MAX) break;
        size_t la = strlen(syms[at]), lb = strlen(syms[at + 1]);
        memcpy(syms[at] + la, syms[at + 1], lb + 1);
        memmove(syms[at + 1], syms[at + 2], (n - at - 2) * sizeof syms[0]);
        n--;
    }
    return n;
}

static void test_bpe_vs_naive(void **state) {
    (void)state;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    /* merges over a 4-letter alphabet, built so that ranks interact */
    static const char *const merges[] = {
        "a b", "c d", "ab cd", "b a", "a a", "d c", "ba b", "aa a", "cd ab", "ab ab", "dc dc",
        "b c", "c c", "bc d", "cc cc", "a c", "abcd ab", "aa b", "d d", "dd d", NULL };
    size_t nm = 0;
    while (merges[nm]) nm++;
    const char *extra[32];
    char buf[32][48];
    for (size_t i = 0; i < nm; i++) {
        const char *sp = strchr(merges[i], ' ');
        snprintf(buf[i], sizeof buf[i], "%.*s%s", (int)(sp - merges[i]), merges[i], sp + 1);
        extra[i] = buf[i];
    }
    extra[nm] = NULL;
    bpe_fixture f;
    bpe_fixture_init(&f, extra);
    tt_vocab v = { .type = PL_VOCAB_TYPE_BPE, .tokens = f.tokens, .merges = merges, .pre = "gpt-2",
                   .bos = -1, .eos = -1, .unk = -1, .add_bos = -1, .add_eos = -1, .add_space_prefix = -1 };
    pl_tokenizer *t = tt_build(ctx, &v);
    assert_non_null(t);
    pl_tok_scratch *s = NULL;
    assert_int_equal(pl_tok_scratch_init(t, &s), PL_OK);
    uint64_t seed = 77;
    char word[80];
    char syms[80][64];
    pl_token ids[96];
    for (int r = 0; r < 20000; r++) {
        /* up to 32 bytes take the array path, longer ones the heap */
        size_t len = 1 + tt_rand(&seed) % (r % 2 ? 32 : 72);
        for (size_t i = 0; i < len; i++) word[i] = "abcd"[tt_rand(&seed) % 4];
        size_t nn = naive_bpe(merges, nm, word, len, syms, 80);
        pl_tok_out o = { .ids = ids, .cap = 96, .n = 0 };
        assert_int_equal(pl_bpe_word(s, word, len, &o), PL_OK);
        assert_int_equal(o.n, nn);
        for (size_t i = 0; i < nn; i++) assert_int_equal(ids[i], id_of(t, syms[i]));
    }
    pl_tok_scratch_free(s);
    pl_tokenizer_free(t);
    pl_ctx_free(ctx);
}

/* ---- SentencePiece ---- */

/* <unk> <s> </s>, the 256 byte tokens, then texts with scores. */
typedef struct spm_fixture {
    char         texts[300][32];
    const char  *tokens[301];
    float        scores[300];
    int32_t      types[300];
    size_t       n;
} spm_fixture;

static void spm_fixture_init(spm_fixture *f, const char *const *texts, const float *scores, bool bytes) {
    f->n = 0;
    static const char *const head[3] = { "<unk>", "<s>", "</s>" };
    static const int32_t head_types[3] = { PL_TOKEN_TYPE_UNKNOWN, PL_TOKEN_TYPE_CONTROL, PL_TOKEN_TYPE_CONTROL };
    for (int i = 0; i < 3; i++) {
        snprintf(f->texts[f->n], 32, "%s", head[i]);
        f->types[f->n] = head_types[i];
        f->scores[f->n] = 0;
        f->n++;
    }
    for (int b = 0; bytes && b < 256; b++) {
        snprintf(f->texts[f->n], 32, "<0x%02X>", b);
        f->types[f->n] = PL_TOKEN_TYPE_BYTE;
        f->scores[f->n] = 0;
        f->n++;
    }
    for (size_t i = 0; texts[i]; i++) {
        snprintf(f->texts[f->n], 32, "%s", texts[i]);
        f->types[f->n] = PL_TOKEN_TYPE_NORMAL;
        f->scores[f->n] = scores[i];
        f->n++;
    }
    for (size_t i = 0; i < f->n; i++) f->tokens[i] = f->texts[i];
    f->tokens[f->n] = NULL;
}

static pl_tokenizer *spm_build(pl_ctx *ctx, spm_fixture *f) {
    tt_vocab v = { .type = PL_VOCAB_TYPE_SPM, .tokens = f->tokens, .scores = f->scores, .types = f->types,
                   .bos = 1, .eos = 2, .unk = 0, .add_bos = -1, .add_eos = -1, .add_space_prefix = -1 };
    return tt_build(ctx, &v);
}

#define WS "\xE2\x96\x81"

static void test_spm_hand(void **state) {
    (void)state;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    static const char *const texts[] = { WS, "a", "b", "c", "ab", "bc", WS "a", WS "ab", "aa", NULL };
    static const float scores[] = { -1, -2, -2, -2, -3, -1, -4, -5, -6 };
    spm_fixture f;
    spm_fixture_init(&f, texts, scores, true);
    pl_tokenizer *t = spm_build(ctx, &f);
    assert_non_null(t);
    pl_token ids[32];
    /* "abc" -> "▁abc": pairs ▁a(-4) ab(-3) bc(-1): bc first, then ▁+a (-4)
     * vs a+bc (no token): "▁a" "bc" */
    assert_int_equal(tt_encode(t, "abc", 3, false, false, ids, 32), 2);
    assert_int_equal(ids[0], id_of(t, WS "a"));
    assert_int_equal(ids[1], id_of(t, "bc"));
    /* "ab" -> ▁a(-4) vs ab(-3): ab, then ▁+ab = ▁ab (-5) */
    assert_int_equal(tt_encode(t, "ab", 2, false, false, ids, 32), 1);
    assert_int_equal(ids[0], id_of(t, WS "ab"));
    /* ties go leftmost: "aaa" with aa: (aa)(a) after ▁a(-4) beats aa(-6)?
     * ▁a has the higher score, so ▁a, then a+a = aa: "▁a" "aa" */
    assert_int_equal(tt_encode(t, "aaa", 3, false, false, ids, 32), 2);
    assert_int_equal(ids[0], id_of(t, WS "a"));
    assert_int_equal(ids[1], id_of(t, "aa"));
    /* unknown character -> its UTF-8 bytes' <0xNN> tokens */
    assert_int_equal(tt_encode(t, "\xC3\xA9", 2, false, false, ids, 32), 3);
    assert_int_equal(ids[0], id_of(t, WS));
    assert_int_equal(ids[1], 3 + 0xC3);
    assert_int_equal(ids[2], 3 + 0xA9);
    /* BOS from metadata */
    assert_int_equal(tt_encode(t, "a", 1, true, false, ids, 32), 2);
    assert_int_equal(ids[0], 1);
    /* the empty string has no tokens (and no prefix) */
    assert_int_equal(tt_encode(t, "", 0, false, false, ids, 32), 0);
    assert_int_equal(tt_encode(t, "", 0, true, false, ids, 32), 1);
    pl_tokenizer_free(t);

    /* without byte tokens an unknown character becomes <unk> per byte */
    spm_fixture_init(&f, texts, scores, false);
    t = spm_build(ctx, &f);
    assert_non_null(t);
    assert_int_equal(tt_encode(t, "a\xC3\xA9", 3, false, false, ids, 32), 3);
    assert_int_equal(ids[0], id_of(t, WS "a"));
    assert_int_equal(ids[1], 0);
    assert_int_equal(ids[2], 0);
    /* and decodes as U+2585, as the reference shows unknown pieces */
    char buf[32];
    assert_int_equal(tt_decode(t, ids, 3, buf, sizeof buf), 7);
    assert_string_equal(buf, "a\xE2\x96\x85\xE2\x96\x85");
    pl_tokenizer_free(t);
    pl_ctx_free(ctx);
}

/* Naive SentencePiece merging over one escaped string. */
static size_t naive_spm(const pl_tokenizer *t, const char *e, size_t el, pl_token *out) {
    size_t off[128], len[128], n = 0;
    for (size_t i = 0; i < el;) {
        uint32_t cp;
        int l = pl_utf8_decode((const uint8_t *)e + i, el - i, &cp);
        if (l <= 0) l = 1;
        off[n] = i;
        len[n] = (size_t)l;
        n++;
        i += (size_t)l;
    }
    for (;;) {
        float best = 0;
        size_t at = SIZE_MAX;
        for (size_t i = 0; i + 1 < n; i++) {
            pl_token id = pl_tokenizer_find(t, e + off[i], len[i] + len[i + 1]);
            if (id == PL_TOKEN_NULL || pl_tokenizer_token_type(t, id) != PL_TOKEN_TYPE_NORMAL) continue;
            float sc = t->tokens[id].score;
            if (at == SIZE_MAX || sc > best) {
                best = sc;
                at = i;
            }
        }
        if (at == SIZE_MAX) break;
        len[at] += len[at + 1];
        memmove(off + at + 1, off + at + 2, (n - at - 2) * sizeof off[0]);
        memmove(len + at + 1, len + at + 2, (n - at - 2) * sizeof len[0]);
        n--;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        pl_token id = pl_tokenizer_find(t, e + off[i], len[i]);
        if (id != PL_TOKEN_NULL && pl_tokenizer_token_type(t, id) == PL_TOKEN_TYPE_NORMAL) out[k++] = id;
        else
            for (size_t j = 0; j < len[i]; j++) out[k++] = t->byte_tok[(uint8_t)e[off[i] + j]];
    }
    return k;
}

static void test_spm_vs_naive(void **state) {
    (void)state;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    /* scores with ties, tokens with "▁" inside (so word-splitting is off) */
    static const char *const texts[] = {
        WS, "a", "b", "c", "ab", "ba", "bc", "abc", WS "a", WS "b", "aa", "aaa", WS WS, "cab", "a" WS "b",
        WS "ab", "bca", "cc", NULL };
    static const float scores[] = { -1, -2, -2, -2, -3, -3, -1, -3, -2, -2, -3, -1, -5, -2, -4, -3, -2, -2 };
    spm_fixture f;
    spm_fixture_init(&f, texts, scores, true);
    pl_tokenizer *t = spm_build(ctx, &f);
    assert_non_null(t);
    assert_false(t->spm_split_words);
    uint64_t seed = 99;
    char text[40], esc[160];
    pl_token got[200], want[200];
    for (int r = 0; r < 20000; r++) {
        size_t len = 1 + tt_rand(&seed) % 24, el = 0;
        memcpy(esc, WS, 3);
        el = 3;
        for (size_t i = 0; i < len; i++) {
            uint64_t x = tt_rand(&seed) % 6;
            text[i] = x == 4 ? ' ' : x == 5 ? 'd' : "abc"[x];
            if (text[i] == ' ') {
                memcpy(esc + el, WS, 3);
                el += 3;
            } else {
                esc[el++] = text[i];
            }
        }
        size_t nw = naive_spm(t, esc, el, want);
        size_t ng = tt_encode(t, text, len, false, false, got, 200);
        assert_int_equal(ng, nw);
        assert_memory_equal(got, want, nw * sizeof *got);
    }
    pl_tokenizer_free(t);
    pl_ctx_free(ctx);
}

/* Word-by-word SPM merging (when no token has "▁" after another character)
 * gives the same ids as merging the whole text: checked on the real Llama
 * vocabulary over varied text. */
static void test_spm_split_words_exact(void **state) {
    (void)state;
    const char *path = tt_shared_vocab("ggml-vocab-llama-spm.gguf");
    if (!path) skip();
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    pl_tokenizer *t = NULL;
    assert_int_equal(pl_tokenizer_load_file(ctx, path, &t), PL_OK);
    assert_true(t->spm_split_words);
    static const char *const texts[] = {
        "Hello world, this is a test.  Two  spaces   three\n\nnewlines\t\ttabs",
        "   leading and trailing   ", "naïve café Grüße Привет мир 你好 世界 😀👍",
        "x=1;y = 2 ;  z  =3", "▁literal▁marks▁ ▁", "a\xFF" "b \xE2\x82" " c",
    };
    pl_token a[512], b[512];
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        size_t len = strlen(texts[i]);
        t->spm_split_words = true;
        size_t na = tt_encode(t, texts[i], len, true, false, a, 512);
        t->spm_split_words = false;
        size_t nb = tt_encode(t, texts[i], len, true, false, b, 512);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na * sizeof *a);
    }
    t->spm_split_words = true;
    pl_tokenizer_free(t);
    pl_ctx_free(ctx);
}

int test_merge_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bpe_hand),
        cmocka_unit_test(test_bpe_ignore_merges),
        cmocka_unit_test(test_bpe_vs_naive),
        cmocka_unit_test(test_spm_hand),
        cmocka_unit_test(test_spm_vs_naive),
        cmocka_unit_test(test_spm_split_words_exact),
    };
    return cmocka_run_group_tests_name("merge", tests, NULL, NULL);
}
