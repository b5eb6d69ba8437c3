/* test_main.c - runs every tokenizer test group. Exit 1 when a test failed,
 * 77 when all passed but the golden tests had no ../shared to read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_tokenizer.h"

bool tt_shared_missing = false;

const char *tt_shared_vocab(const char *name) {
    static char path[1024];
    const char *dir = getenv("PL_SHARED_DIR");
    if (!dir) {
        tt_shared_missing = true;
        return NULL;
    }
    snprintf(path, sizeof path, "%s/vocab/%s", dir, name);
    if (access(path, R_OK) != 0) {
        tt_shared_missing = true;
        return NULL;
    }
    return path;
}

static size_t count(const char *const *a) {
    size_t n = 0;
    while (a && a[n]) n++;
    return n;
}

pl_tokenizer *tt_build(pl_ctx *ctx, const tt_vocab *v) {
    pl_tok_spec sp = pl_tok_spec_empty(v->type);
    size_t nt = count(v->tokens), nm = count(v->merges);
    pl_str *toks = calloc(nt + 1, sizeof *toks), *merges = calloc(nm + 1, sizeof *merges);
    for (size_t i = 0; i < nt; i++) toks[i] = (pl_str){ v->tokens[i], strlen(v->tokens[i]) };
    for (size_t i = 0; i < nm; i++) merges[i] = (pl_str){ v->merges[i], strlen(v->merges[i]) };
    sp.n_tokens = (int64_t)nt;
    sp.tokens = toks;
    sp.scores = v->scores;
    sp.n_scores = v->scores ? (int64_t)nt : 0;
    sp.types = v->types;
    sp.n_types = v->types ? (int64_t)nt : 0;
    sp.n_merges = (int64_t)nm;
    sp.merges = merges;
    if (v->pre) sp.pre = (pl_str){ v->pre, strlen(v->pre) };
    sp.bos = v->bos;
    sp.eos = v->eos;
    sp.unk = v->unk;
    sp.add_bos = v->add_bos;
    sp.add_eos = v->add_eos;
    sp.add_space_prefix = v->add_space_prefix;
    pl_tokenizer *tok = NULL;
    pl_status st = pl_tok_build(ctx, &sp, &tok);
    if (st != PL_OK) fprintf(stderr, "tt_build: %s\n", pl_ctx_last_error(ctx));
    free(toks);
    free(merges);
    return tok;
}

size_t tt_encode(const pl_tokenizer *tok, const char *text, size_t len, bool add_special, bool parse_special,
                 pl_token *out, size_t cap) {
    pl_encode_params p = pl_encode_default_params();
    p.add_bos = p.add_eos = add_special;
    p.parse_special = parse_special;
    size_t n = 0;
    pl_status st = pl_tokenizer_encode(tok, NULL, text, len, &p, out, cap, &n);
    assert_int_equal(st, PL_OK);
    return n;
}

size_t tt_decode(const pl_tokenizer *tok, const pl_token *ids, size_t n, char *buf, size_t cap) {
    size_t len = 0;
    pl_status st = pl_tokenizer_decode(tok, ids, n, NULL, buf, cap - 1, &len);
    assert_int_equal(st, PL_OK);
    buf[len] = 0;
    return len;
}

int main(void) {
    int failed = 0;
    failed += test_unicode_group();
    failed += test_pretok_group();
    failed += test_merge_group();
    failed += test_special_group();
    failed += test_detok_group();
    failed += test_load_group();
    failed += test_golden_group();
    failed += test_cmd_group();
    if (failed) return 1;
    return tt_shared_missing ? 77 : 0;
}
