/* test_load.c - loading from GGUF: good synthetic vocabularies, and bad ones
 * that must give a clear one-line error (never a crash). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_tokenizer.h"

typedef struct vopts {
    const char *model;               /* NULL: key absent */
    const char *pre;
    const char *const *tokens;       /* NULL: key absent */
    bool tokens_as_ints;             /* write tokens as an i32 array */
    int64_t n_scores;                /* -1: absent */
    int64_t n_types;                 /* -1: absent */
    int32_t bad_type;                /* != 0: this value in the last type slot */
    const char *const *merges;       /* NULL: key absent */
    int64_t eos;                     /* -1: absent */
    int64_t pad;
    int add_bos;                     /* -1 absent */
} vopts;

static void *write_vocab(pl_ctx *ctx, const vopts *o, size_t *size) {
    pl_gguf_writer *w = NULL;
    assert_int_equal(pl_gguf_writer_init(ctx, &w), PL_OK);
    assert_int_equal(pl_gguf_writer_set_str(w, "general.architecture", "llama"), PL_OK);
    if (o->model) assert_int_equal(pl_gguf_writer_set_str(w, "tokenizer.ggml.model", o->model), PL_OK);
    if (o->pre) assert_int_equal(pl_gguf_writer_set_str(w, "tokenizer.ggml.pre", o->pre), PL_OK);
    size_t nt = 0;
    while (o->tokens && o->tokens[nt]) nt++;
    if (o->tokens && !o->tokens_as_ints)
        assert_int_equal(pl_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", o->tokens, NULL, nt), PL_OK);
    if (o->tokens && o->tokens_as_ints) {
        int32_t z[4] = { 0 };
        assert_int_equal(pl_gguf_writer_set_arr(w, "tokenizer.ggml.tokens", PL_GGUF_TYPE_INT32, z, 4), PL_OK);
    }
    if (o->n_scores >= 0) {
        float *s = calloc((size_t)o->n_scores + 1, sizeof *s);
        assert_int_equal(pl_gguf_writer_set_arr(w, "tokenizer.ggml.scores", PL_GGUF_TYPE_FLOAT32, s,
                                                (uint64_t)o->n_scores), PL_OK);
        free(s);
    }
    if (o->n_types >= 0) {
        int32_t *t = calloc((size_t)o->n_types + 1, sizeof *t);
        for (int64_t i = 0; i < o->n_types; i++) t[i] = PL_TOKEN_TYPE_NORMAL;
        if (o->bad_type && o->n_types > 0) t[o->n_types - 1] = o->bad_type;
        assert_int_equal(pl_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", PL_GGUF_TYPE_INT32, t,
                                                (uint64_t)o->n_types), PL_OK);
        free(t);
    }
    if (o->merges) {
        size_t nm = 0;
        while (o->merges[nm]) nm++;
        assert_int_equal(pl_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", o->merges, NULL, nm), PL_OK);
    }
    if (o->eos >= 0) assert_int_equal(pl_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)o->eos), PL_OK);
    if (o->pad >= 0) assert_int_equal(pl_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)o->pad), PL_OK);
    if (o->add_bos >= 0) assert_int_equal(pl_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", o->add_bos), PL_OK);
    void *mem = NULL;
    assert_int_equal(pl_gguf_writer_write_mem(w, &mem, size), PL_OK);
    pl_gguf_writer_free(w);
    return mem;
}

static pl_status load(pl_ctx *ctx, const vopts *o, pl_tokenizer **tok) {
    size_t size = 0;
    void *mem = write_vocab(ctx, o, &size);
    pl_gguf *g = NULL;
    assert_int_equal(pl_gguf_open_memory(ctx, mem, size, &g), PL_OK);
    pl_status st = pl_tokenizer_load(ctx, g, tok);
    pl_gguf_free(g); /* the tokenizer keeps no pointer into the file */
    pl_free(ctx, mem);
    return st;
}

static const char *const toks[] = { "a", "b", "ab", "<|im_end|>", NULL };
static const char *const merges[] = { "a b", NULL };

static vopts base(void) {
    return (vopts){ .model = "gpt2", .pre = "qwen2", .tokens = toks, .n_scores = -1, .n_types = -1,
                    .merges = merges, .eos = -1, .pad = -1, .add_bos = -1 };
}

static int n_warn;
static char last_warn[256];
static void on_log(void *ud, pl_log_level level, const char *msg) {
    (void)ud;
    if (level != PL_LOG_LEVEL_WARN) return;
    n_warn++;
    snprintf(last_warn, sizeof last_warn, "%s", msg);
}

static void test_load_good(void **state) {
    (void)state;
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_fn = on_log;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, &cp), PL_OK);
    vopts o = base();
    o.eos = 3;
    pl_tokenizer *t = NULL;
    n_warn = 0;
    assert_int_equal(load(ctx, &o, &t), PL_OK);
    assert_int_equal(n_warn, 0);
    assert_int_equal(pl_tokenizer_n_vocab(t), 4);
    assert_string_equal(pl_tokenizer_pre(t), "qwen2");
    assert_int_equal(pl_tokenizer_eos(t), 3);
    assert_int_equal(pl_tokenizer_bos(t), PL_TOKEN_NULL);
    assert_false(pl_tokenizer_add_bos(t));
    assert_true(pl_tokenizer_is_eog(t, 3));
    size_t len;
    const char *txt = pl_tokenizer_token_text(t, 2, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(txt, "ab", 2);
    assert_null(pl_tokenizer_token_text(t, 4, &len));
    assert_int_equal(pl_tokenizer_token_type(t, 0), PL_TOKEN_TYPE_NORMAL);
    assert_int_equal(pl_tokenizer_token_type(t, -1), PL_TOKEN_TYPE_COUNT);
    pl_token ids[4];
    assert_int_equal(tt_encode(t, "ab", 2, true, false, ids, 4), 1);
    assert_int_equal(ids[0], 2);
    pl_tokenizer_free(t);

    /* add_bos_token without a BOS id adds nothing; llama-bpe defaults add_bos */
    o = base();
    o.add_bos = 1;
    assert_int_equal(load(ctx, &o, &t), PL_OK);
    assert_false(pl_tokenizer_add_bos(t));
    pl_tokenizer_free(t);

    /* unknown pre: a warning naming it, and the gpt-2 rules */
    o = base();
    o.pre = "brand-new-pre";
    n_warn = 0;
    assert_int_equal(load(ctx, &o, &t), PL_OK);
    assert_int_equal(n_warn, 1);
    assert_non_null(strstr(last_warn, "brand-new-pre"));
    assert_string_equal(pl_tokenizer_pre(t), "gpt-2");
    pl_tokenizer_free(t);

    /* a special id outside the vocabulary: a warning, ignored */
    o = base();
    o.pad = 1000;
    n_warn = 0;
    assert_int_equal(load(ctx, &o, &t), PL_OK);
    assert_int_equal(n_warn, 1);
    assert_int_equal(pl_tokenizer_pad(t), PL_TOKEN_NULL);
    pl_tokenizer_free(t);

    /* SPM: defaults bos 1 / eos 2 / unk 0, add_bos on */
    static const char *const spm_toks[] = { "<unk>", "<s>", "</s>", "\xE2\x96\x81" "a", NULL };
    o = base();
    o.model = "llama";
    o.pre = NULL;
    o.tokens = spm_toks;
    o.merges = NULL;
    o.n_scores = 4;
    o.n_types = 4;
    assert_int_equal(load(ctx, &o, &t), PL_OK);
    assert_int_equal(pl_tokenizer_type(t), PL_VOCAB_TYPE_SPM);
    assert_int_equal(pl_tokenizer_bos(t), 1);
    assert_int_equal(pl_tokenizer_eos(t), 2);
    assert_int_equal(pl_tokenizer_unk(t), 0);
    assert_int_equal(pl_tokenizer_eot(t), PL_TOKEN_NULL);
    assert_true(pl_tokenizer_add_bos(t));
    assert_string_equal(pl_tokenizer_pre(t), "");
    assert_int_equal(tt_encode(t, "a", 1, true, false, ids, 4), 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 3);
    pl_tokenizer_free(t);
    pl_ctx_free(ctx);
}

static void test_load_bad(void **state) {
    (void)state;
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_level = PL_LOG_LEVEL_NONE;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, &cp), PL_OK);
    static const char *const bad_merge[] = { "a b", "a zz", NULL };
    static const char *const no_space[] = { "ab", NULL };
    static const char *const no_result[] = { "b a", NULL };
    static const char *const empty[] = { NULL };
    struct { vopts o; pl_status st; const char *msg; } cases[] = {
        { base(), PL_ERR_FORMAT, "tokenizer.ggml.model is missing" },
        { base(), PL_ERR_UNSUPPORTED, "'bert' is not supported" },
        { base(), PL_ERR_FORMAT, "tokenizer.ggml.tokens is missing" },
        { base(), PL_ERR_FORMAT, "tokenizer.ggml.tokens is not an array of strings" },
        { base(), PL_ERR_FORMAT, "tokenizer.ggml.tokens is empty" },
        { base(), PL_ERR_FORMAT, "tokenizer.ggml.scores has 3 entries but tokenizer.ggml.tokens has 4" },
        { base(), PL_ERR_FORMAT, "tokenizer.ggml.token_type has 5 entries but tokenizer.ggml.tokens has 4" },
        { base(), PL_ERR_FORMAT, "tokenizer.ggml.token_type[3] is not a token type" },
        { base(), PL_ERR_FORMAT, "tokenizer.ggml.merges is missing" },
        { base(), PL_ERR_FORMAT, "merges[1] 'a zz': its right part is not in tokenizer.ggml.tokens" },
        { base(), PL_ERR_FORMAT, "merges[0] has no space" },
        { base(), PL_ERR_FORMAT, "merges[0] 'b a': its result is not in tokenizer.ggml.tokens" },
    };
    cases[0].o.model = NULL;
    cases[1].o.model = "bert";
    cases[2].o.tokens = NULL;
    cases[3].o.tokens_as_ints = true;
    cases[4].o.tokens = empty;
    cases[5].o.n_scores = 3;
    cases[6].o.n_types = 5;
    cases[7].o.n_types = 4;
    cases[7].o.bad_type = 9;
    cases[8].o.merges = NULL;
    cases[9].o.merges = bad_merge;
    cases[10].o.merges = no_space;
    cases[11].o.merges = no_result;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pl_tokenizer *t = (pl_tokenizer *)&cases; /* must be reset to NULL */
        pl_status st = load(ctx, &cases[i].o, &t);
        if (st != cases[i].st || !strstr(pl_ctx_last_error(ctx), cases[i].msg))
            fprintf(stderr, "case %zu: status %d, error '%s'\n", i, st, pl_ctx_last_error(ctx));
        assert_int_equal(st, cases[i].st);
        assert_null(t);
        assert_non_null(strstr(pl_ctx_last_error(ctx), cases[i].msg));
        assert_null(strchr(pl_ctx_last_error(ctx), '\n'));
    }
    /* a file that is not there */
    pl_tokenizer *t = NULL;
    assert_int_not_equal(pl_tokenizer_load_file(ctx, "/nonexistent/vocab.gguf", &t), PL_OK);
    assert_null(t);
    assert_int_equal(pl_tokenizer_load(ctx, NULL, &t), PL_ERR_INVALID_ARG);
    pl_ctx_free(ctx);
}

/* Allocation failure at every step of a load: a clean error, no leak. */
static void test_load_nomem(void **state) {
    (void)state;
    pl_ctx *plain = NULL;
    assert_int_equal(pl_ctx_init(&plain, NULL), PL_OK);
    vopts o = base();
    o.eos = 3;
    size_t size = 0;
    void *mem = write_vocab(plain, &o, &size);
    pl_gguf *g = NULL;
    assert_int_equal(pl_gguf_open_memory(plain, mem, size, &g), PL_OK);
    pl_alloc_tracker tr;
    int64_t k;
    for (k = 1; k < 1000; k++) {
        pl_alloc_tracker_reset(&tr);
        pl_ctx_params cp = pl_ctx_default_params();
        cp.alloc = pl_track_alloc;
        cp.alloc_ud = &tr;
        cp.log_level = PL_LOG_LEVEL_NONE;
        pl_ctx *ctx = NULL;
        assert_int_equal(pl_ctx_init(&ctx, &cp), PL_OK);
        atomic_store(&tr.fail_at, atomic_load(&tr.n_calls) + k);
        pl_tokenizer *t = NULL;
        pl_status st = pl_tokenizer_load(ctx, g, &t);
        bool done = st == PL_OK;
        if (done) {
            /* every allocation succeeded: a scratch and an encode work too */
            atomic_store(&tr.fail_at, 0);
            pl_token ids[4];
            assert_int_equal(tt_encode(t, "ab", 2, false, false, ids, 4), 1);
            pl_tokenizer_free(t);
        } else {
            assert_int_equal(st, PL_ERR_NOMEM);
            assert_null(t);
        }
        pl_ctx_free(ctx);
        assert_int_equal(atomic_load(&tr.in_use), 0);
        if (done) break;
    }
    assert_true(k > 5 && k < 1000);
    /* the same for making a scratch and encoding */
    pl_alloc_tracker_reset(&tr);
    pl_ctx_params cp = pl_ctx_default_params();
    cp.alloc = pl_track_alloc;
    cp.alloc_ud = &tr;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, &cp), PL_OK);
    pl_tokenizer *t = NULL;
    assert_int_equal(pl_tokenizer_load(ctx, g, &t), PL_OK);
    int64_t base_use = atomic_load(&tr.in_use);
    char text[600];
    for (int i = 0; i < 600; i++) text[i] = "ab <|im_end|>\xFF"[i % 15];
    for (k = 1; k < 1000; k++) {
        atomic_store(&tr.fail_at, atomic_load(&tr.n_calls) + k);
        pl_tok_scratch *s = NULL;
        pl_status st = pl_tok_scratch_init(t, &s);
        size_t n = 0;
        if (st == PL_OK) {
            pl_encode_params ep = pl_encode_default_params();
            ep.parse_special = true;
            st = pl_tokenizer_encode(t, s, text, sizeof text, &ep, NULL, 0, &n);
            if (st == PL_ERR_RANGE) st = PL_OK;
        }
        pl_tok_scratch_free(s);
        atomic_store(&tr.fail_at, 0);
        assert_int_equal(atomic_load(&tr.in_use), base_use);
        if (st == PL_OK) {
            assert_true(n > 0);
            break;
        }
        assert_int_equal(st, PL_ERR_NOMEM);
    }
    assert_true(k > 3 && k < 1000);
    pl_tokenizer_free(t);
    pl_ctx_free(ctx);
    assert_int_equal(atomic_load(&tr.in_use), 0);
    pl_gguf_free(g);
    pl_free(plain, mem);
    pl_ctx_free(plain);
}

int test_load_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_good),
        cmocka_unit_test(test_load_bad),
        cmocka_unit_test(test_load_nomem),
    };
    return cmocka_run_group_tests_name("load", tests, NULL, NULL);
}
