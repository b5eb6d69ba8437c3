/* test_pretok.c - every pre-tokenizer row against hand-computed splits.
 *
 * Each case writes a small synthetic vocabulary GGUF (the 256 byte symbols,
 * model gpt2) with the case's tokenizer.ggml.pre, loads it, and splits the
 * input with the loaded tokenizer's regexes. The expected words were worked
 * out by hand from the published regex definitions (leftmost alternative,
 * backtracking semantics). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_tokenizer.h"

#define MAXW 16

typedef struct split_case {
    const char *pre;
    const char *text;
    const char *words[MAXW]; /* NULL-terminated */
} split_case;

static const split_case cases[] = {
    /* gpt-2: contractions, optional leading space, \s+(?!\S) leaves the last
     * space of a run to the next word; a lone newline before a letter */
    { "gpt-2", "Hello, world!  123abc\n\nx",
      { "Hello", ",", " world", "!", " ", " 123", "abc", "\n", "\n", "x" } },
    { "gpt-2", "I'm   here's 'S", { "I", "'m", "  ", " here", "'s", " '", "S" } },
    { "gpt-2", "   Hello", { "  ", " Hello" } },
    { "default", "a  b", { "a", " ", " b" } },
    { "mpt", "x=1", { "x", "=", "1" } },
    { "gpt-neox", "don't  stop\t", { "don", "'t", " ", " stop", "\t" } },
    /* U+180E is not White_Space (PCRE2's own \s says it is) */
    { "gpt-2", "a \xE1\xA0\x8E" "b", { "a", " \xE1\xA0\x8E", "b" } },
    /* NEL U+0085 and NBSP are White_Space */
    { "gpt-2", "a\xC2\x85\xC2\xA0" "b", { "a", "\xC2\x85", "\xC2\xA0", "b" } },

    /* llama-bpe: digits in groups of 1-3, case-insensitive contractions,
     * newline runs kept together */
    { "llama-bpe", "Hello, world!  123456abc\n\nx's",
      { "Hello", ",", " world", "!", " ", " ", "123", "456", "abc", "\n\n", "x", "'s" } },
    { "llama3", "HE'S 1234567", { "HE", "'S", " ", "123", "456", "7" } },
    { "llama-bpe", "a.\n\n b", { "a", ".\n\n", " b" } },
    { "llama-bpe", "  \n  x", { "  \n", " ", " x" } },

    /* qwen2: single digits */
    { "qwen2", "abc 2024!", { "abc", " ", "2", "0", "2", "4", "!" } },
    { "deepseek-r1-qwen", "x12", { "x", "1", "2" } },

    /* smollm / starcoder / refact: digits isolated first, then gpt-2 */
    { "smollm", "a 12b", { "a", " ", "1", "2", "b" } },
    { "starcoder", "v3.14", { "v", "3", ".", "1", "4" } },
    { "refact", "Hi 7", { "Hi", " ", "7" } },

    /* deepseek-llm: newlines, letters, punctuation, trailing space, CJK, digits */
    { "deepseek-llm", "Hello \xE4\xB8\x96\xE7\x95\x8C" "123\n",
      { "Hello", " ", "\xE4\xB8\x96\xE7\x95\x8C", "1", "2", "3", "\n" } },
    { "deepseek-llm", "Hi, you!! ", { "Hi", ",", " you", "!!", " " } },

    /* deepseek-coder */
    { "deepseek-coder", "a, 12", { "a", ",", " ", "1", "2" } },
    { "deepseek-coder", "if(x)\n", { "if", "(", "x", ")", "\n" } },

    /* deepseek-v3: digits 1-3, CJK + kana, then its word regex */
    { "deepseek-v3", "abc 12345 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xA7\xE3\x81\x99",
      { "abc", " ", "123", "45", " ", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xA7\xE3\x81\x99" } },
    { "deepseek-v3", ".Net x", { ".Net", " x" } },

    /* falcon: punctuation runs, gpt-2, then digits (runs, then threes) on the
     * byte-mapped text: 0xBD maps to '½', a number, so it splits off */
    { "falcon", "Hi!! x=1234\xC2\xBD",
      { "Hi", "!!", " x", "=", "123", "4", "\xC2", "\xBD" } },
    { "falcon", "\xD0\xBC", { "\xD0", "\xBC" } }, /* 'м' = D0 BC, BC maps to '¼' */
    { "falcon", "(a) 123456", { "(", "a", ")", " ", "123", "456" } },

    /* bloom: everything up to a space or listed punctuation */
    { "bloom", "Hello, world (x)", { "Hello", ",", " world", " (", "x", ")" } },

    /* tekken: case-aware words, single digits */
    { "tekken", "HelloWorld ABC def 42", { "Hello", "World", " ABC", " def", " ", "4", "2" } },

    /* unknown names fall back to gpt-2 (with a warning) */
    { "no-such-pre", "a  b", { "a", " ", " b" } },
};

typedef struct collected {
    const char *w[MAXW * 2];
    size_t      l[MAXW * 2];
    size_t      n;
} collected;

static pl_status collect(void *ud, const char *w, size_t len) {
    collected *c = ud;
    if (c->n < MAXW * 2) {
        c->w[c->n] = w;
        c->l[c->n] = len;
    }
    c->n++;
    return PL_OK;
}

/* A vocabulary-only GGUF: the 256 byte symbols, no merges. */
static void *write_byte_vocab(pl_ctx *ctx, const char *pre, size_t *size) {
    pl_bytemap m;
    pl_bytemap_init(&m);
    char texts[256][3];
    const char *strs[256];
    size_t lens[256];
    for (int b = 0; b < 256; b++) {
        memcpy(texts[b], m.utf8[b], m.len[b]);
        strs[b] = texts[b];
        lens[b] = m.len[b];
    }
    pl_gguf_writer *w = NULL;
    assert_int_equal(pl_gguf_writer_init(ctx, &w), PL_OK);
    assert_int_equal(pl_gguf_writer_set_str(w, "general.architecture", "gpt2"), PL_OK);
    assert_int_equal(pl_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2"), PL_OK);
    if (pre) assert_int_equal(pl_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre), PL_OK);
    assert_int_equal(pl_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, lens, 256), PL_OK);
    assert_int_equal(pl_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", NULL, NULL, 0), PL_OK);
    void *mem = NULL;
    assert_int_equal(pl_gguf_writer_write_mem(w, &mem, size), PL_OK);
    pl_gguf_writer_free(w);
    return mem;
}

static int n_warnings;
static void count_warn(void *ud, pl_log_level level, const char *msg) {
    (void)ud;
    (void)msg;
    if (level == PL_LOG_LEVEL_WARN) n_warnings++;
}

static void test_rows(void **state) {
    (void)state;
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_fn = count_warn;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, &cp), PL_OK);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const split_case *k = &cases[c];
        size_t size = 0;
        void *mem = write_byte_vocab(ctx, k->pre, &size);
        pl_gguf *g = NULL;
        assert_int_equal(pl_gguf_open_memory(ctx, mem, size, &g), PL_OK);
        pl_tokenizer *tok = NULL;
        n_warnings = 0;
        assert_int_equal(pl_tokenizer_load(ctx, g, &tok), PL_OK);
        pl_pretok row;
        bool known = pl_pretok_lookup(k->pre, strlen(k->pre), &row);
        assert_int_equal(n_warnings, known ? 0 : 1);
        assert_string_equal(pl_tokenizer_pre(tok), known ? pl_pretok_table[row].name : "gpt-2");

        pl_regex_state st;
        assert_int_equal(pl_regex_state_init(ctx, &tok->regex, &st), PL_OK);
        collected got = { .n = 0 };
        assert_int_equal(pl_regex_split(&tok->regex, &st, &tok->bytemap, k->text, strlen(k->text), collect, &got),
                         PL_OK);
        size_t nw = 0;
        while (k->words[nw]) nw++;
        bool ok = got.n == nw;
        for (size_t i = 0; ok && i < nw; i++)
            ok = got.l[i] == strlen(k->words[i]) && memcmp(got.w[i], k->words[i], got.l[i]) == 0;
        if (!ok) {
            fprintf(stderr, "pre %s, text '%s': got", k->pre, k->text);
            for (size_t i = 0; i < got.n && i < MAXW * 2; i++) fprintf(stderr, " [%.*s]", (int)got.l[i], got.w[i]);
            fprintf(stderr, "\n");
            fail();
        }
        /* the words tile the input */
        size_t total = 0;
        for (size_t i = 0; i < got.n; i++) {
            assert_ptr_equal(got.w[i], k->text + total);
            total += got.l[i];
        }
        assert_int_equal(total, strlen(k->text));
        pl_regex_state_free(&st);
        pl_tokenizer_free(tok);
        pl_gguf_free(g);
        pl_free(ctx, mem);
    }
    pl_ctx_free(ctx);
}

/* Every row and alias resolves, and every row's regexes compile and JIT. */
static void test_table(void **state) {
    (void)state;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    for (int r = 0; r < PL_PRETOK_COUNT; r++) {
        const pl_pretok_def *d = &pl_pretok_table[r];
        assert_non_null(d->name);
        assert_non_null(d->regex[0]);
        pl_pretok got;
        assert_true(pl_pretok_lookup(d->name, strlen(d->name), &got));
        assert_int_equal(got, r);
        for (const char *const *a = d->aliases; a && *a; a++) {
            assert_true(pl_pretok_lookup(*a, strlen(*a), &got));
            assert_int_equal(got, r);
        }
        pl_regex_set rs;
        assert_int_equal(pl_regex_set_compile(ctx, (pl_pretok)r, &rs), PL_OK);
        for (int i = 0; i < rs.n; i++) assert_true(rs.jit[i]);
        pl_regex_set_free(&rs);
    }
    pl_pretok got;
    assert_false(pl_pretok_lookup("gpt-", 4, &got));
    assert_false(pl_pretok_lookup("", 0, &got));
    pl_ctx_free(ctx);
}

static void test_rewrite_space(void **state) {
    (void)state;
    char out[512];
    size_t n = pl_regex_rewrite_space("a\\s+(?!\\S)", out, sizeof out);
    assert_int_equal(n, strlen(out));
    assert_non_null(strstr(out, "\\x{85}"));
    assert_non_null(strstr(out, "[^\\t\\n"));
    assert_null(strstr(out, "\\s"));
    assert_null(strstr(out, "\\S"));
    /* inside a class \s expands in place */
    pl_regex_rewrite_space("[^\\s\\p{L}]", out, sizeof out);
    assert_int_equal(strncmp(out, "[^\\t\\n", 6), 0);
    assert_non_null(strstr(out, "\\p{L}]"));
    /* other escapes and a literal ']' first in a class pass through */
    pl_regex_rewrite_space("[]\\]]\\p{N}\\\\s", out, sizeof out);
    assert_string_equal(out, "[]\\]]\\p{N}\\\\s");
    /* \S inside a class cannot be expressed */
    assert_int_equal(pl_regex_rewrite_space("[\\S]", out, sizeof out), 0);
    /* a short buffer still reports the full length, NUL-terminated */
    char tiny[4];
    size_t full = pl_regex_rewrite_space("\\s", NULL, 0);
    assert_true(full > 10);
    assert_int_equal(pl_regex_rewrite_space("\\s", tiny, sizeof tiny), full);
    assert_int_equal(tiny[3], 0);
}

/* Invalid UTF-8 reaches the regexes as U+FFFD; words keep the original bytes. */
static void test_invalid_utf8_split(void **state) {
    (void)state;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    size_t size = 0;
    void *mem = write_byte_vocab(ctx, "gpt-2", &size);
    pl_gguf *g = NULL;
    assert_int_equal(pl_gguf_open_memory(ctx, mem, size, &g), PL_OK);
    pl_tokenizer *tok = NULL;
    assert_int_equal(pl_tokenizer_load(ctx, g, &tok), PL_OK);
    /* "ab\xFF cd": U+FFFD is a symbol, so the byte joins no letter run:
     * "ab" | "\xFF" | " cd"; every byte comes back as its own symbol token */
    pl_token ids[16];
    size_t n = tt_encode(tok, "ab\xFF" " cd", 6, false, false, ids, 16);
    assert_int_equal(n, 6);
    const uint8_t want[6] = { 'a', 'b', 0xFF, ' ', 'c', 'd' };
    for (size_t i = 0; i < 6; i++) assert_int_equal(ids[i], tok->byte_tok[want[i]]);
    char buf[16];
    assert_int_equal(tt_decode(tok, ids, n, buf, sizeof buf), 6);
    assert_memory_equal(buf, want, 6);
    pl_tokenizer_free(tok);
    pl_gguf_free(g);
    pl_free(ctx, mem);
    pl_ctx_free(ctx);
}

int test_pretok_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_rewrite_space),
        cmocka_unit_test(test_invalid_utf8_split),
    };
    return cmocka_run_group_tests_name("pretok", tests, NULL, NULL);
}
