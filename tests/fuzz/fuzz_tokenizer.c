/*
 * fuzz_tokenizer.c - libFuzzer target: arbitrary bytes through every
 * tokenizer kind.
 *
 * LLVMFuzzerInitialize loads the real vocabularies from $PL_SHARED_DIR (or the
 * ../shared next to the source tree, PL_FUZZ_SHARED_DIR) when present, and
 * always builds small synthetic ones in memory: an SPM vocabulary and one
 * byte-level BPE vocabulary per pre-tokenizer row (so every regex runs).
 * Each input is encoded by all of them, with special-token parsing off and
 * on, and these invariants are checked (abort on violation):
 *  - encode succeeds, every id is inside the vocabulary, and the count
 *    reported with a too-small buffer equals the real one;
 *  - decode(encode(x)) == x (SPM: with U+2581 read as a space, and unless an
 *    UNKNOWN token was matched, as in the reference);
 *  - the streaming decoder rebuilds the same bytes, and for valid UTF-8 input
 *    never hands out an invalid chunk.
 * With $PL_FUZZ_WRITE_SEEDS set, a few seed inputs are written there first.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/tokenizer.h"
#include "tokenizer/tokenizer_int.h"

#define FUZZ_NAME "fuzz_tokenizer"
#include "fuzz/fuzz_util.h"

#define MAX_TOK 24

static pl_ctx *g_ctx;
static pl_tokenizer *g_tok[MAX_TOK];
static pl_tok_scratch *g_scr[MAX_TOK];
static pl_detok *g_dt[MAX_TOK];
static int g_n;

static void add(pl_tokenizer *t) {
    if (!t || g_n >= MAX_TOK) return;
    CHECK(pl_tok_scratch_init(t, &g_scr[g_n]) == PL_OK);
    CHECK(pl_detok_init(t, NULL, &g_dt[g_n]) == PL_OK);
    g_tok[g_n++] = t;
}

static const char *const bpe_extra[] = { "Ġt", "he", "Ġthe", "in", "er", "Ġa", "on", "re", "12", "123", NULL };
static const char *const bpe_merges[] = { "Ġ t", "h e", "Ġt he", "i n", "e r", "Ġ a", "o n", "r e", "1 2", "12 3", NULL };
static const char *const specials[] = { "<|im_start|>", "<|im_end|>", "<tool>", NULL };

static pl_tokenizer *synthetic_bpe(const char *pre) {
    pl_bytemap m;
    pl_bytemap_init(&m);
    pl_str toks[300];
    int32_t types[300];
    char texts[256][3];
    int64_t n = 0;
    for (int b = 0; b < 256; b++, n++) {
        memcpy(texts[b], m.utf8[b], m.len[b]);
        toks[n] = (pl_str){ texts[b], m.len[b] };
        types[n] = PL_TOKEN_TYPE_NORMAL;
    }
    for (int i = 0; bpe_extra[i]; i++, n++) {
        toks[n] = (pl_str){ bpe_extra[i], strlen(bpe_extra[i]) };
        types[n] = PL_TOKEN_TYPE_NORMAL;
    }
    for (int i = 0; specials[i]; i++, n++) {
        toks[n] = (pl_str){ specials[i], strlen(specials[i]) };
        types[n] = i == 2 ? PL_TOKEN_TYPE_USER_DEFINED : PL_TOKEN_TYPE_CONTROL;
    }
    pl_str merges[16];
    int64_t nm = 0;
    for (; bpe_merges[nm]; nm++) merges[nm] = (pl_str){ bpe_merges[nm], strlen(bpe_merges[nm]) };
    pl_tok_spec sp = pl_tok_spec_empty(PL_VOCAB_TYPE_BPE);
    sp.n_tokens = n;
    sp.tokens = toks;
    sp.types = types;
    sp.n_types = n;
    sp.merges = merges;
    sp.n_merges = nm;
    sp.pre = (pl_str){ pre, strlen(pre) };
    sp.eos = n - 2;
    pl_tokenizer *t = NULL;
    CHECK(pl_tok_build(g_ctx, &sp, &t) == PL_OK);
    return t;
}

static pl_tokenizer *synthetic_spm(void) {
    static const char *const words[] = { "\xE2\x96\x81", "\xE2\x96\x81t", "he", "\xE2\x96\x81the", "a", "b",
                                         "ab", "\xE2\x96\x81\xE2\x96\x81", "x\xE2\x96\x81", NULL };
    pl_str toks[400];
    int32_t types[400];
    float scores[400];
    char bytes[256][8];
    int64_t n = 0;
    static const char *const head[3] = { "<unk>", "<s>", "</s>" };
    for (int i = 0; i < 3; i++, n++) {
        toks[n] = (pl_str){ head[i], strlen(head[i]) };
        types[n] = i == 0 ? PL_TOKEN_TYPE_UNKNOWN : PL_TOKEN_TYPE_CONTROL;
        scores[n] = 0;
    }
    for (int b = 0; b < 256; b++, n++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        toks[n] = (pl_str){ bytes[b], 6 };
        types[n] = PL_TOKEN_TYPE_BYTE;
        scores[n] = 0;
    }
    for (int i = 0; words[i]; i++, n++) {
        toks[n] = (pl_str){ words[i], strlen(words[i]) };
        types[n] = PL_TOKEN_TYPE_NORMAL;
        scores[n] = (float)(-i % 4);
    }
    for (int i = 0; specials[i]; i++, n++) {
        toks[n] = (pl_str){ specials[i], strlen(specials[i]) };
        types[n] = i == 2 ? PL_TOKEN_TYPE_USER_DEFINED : PL_TOKEN_TYPE_CONTROL;
        scores[n] = 0;
    }
    pl_tok_spec sp = pl_tok_spec_empty(PL_VOCAB_TYPE_SPM);
    sp.n_tokens = n;
    sp.tokens = toks;
    sp.types = types;
    sp.n_types = n;
    sp.scores = scores;
    sp.n_scores = n;
    pl_tokenizer *t = NULL;
    CHECK(pl_tok_build(g_ctx, &sp, &t) == PL_OK);
    return t;
}

static void load_shared(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/vocab/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return;
    fclose(f);
    pl_tokenizer *t = NULL;
    if (pl_tokenizer_load_file(g_ctx, path, &t) == PL_OK) add(t);
}

static void write_seeds(const char *dir) {
    static const char *const seeds[] = {
        "Hello world! It's 2024, isn't it?\n\n  Indented\tcode();",
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
        "\xF0\x9F\x98\x80 na\xC3\xAFve \xE4\xBD\xA0\xE5\xA5\xBD \xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 e\xCC\x81",
        "bad \xFF\xC0\xAF\xE2\x82 bytes \xED\xA0\x80 end\xF0\x9F",
        "12345678901234567890 3.14 \xC2\xBD \xD0\xBC \xE2\x96\x81 <tool>",
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "seed-tok-%zu", i);
        fuzz_write_text(dir, name, seeds[i]);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_level = PL_LOG_LEVEL_NONE;
    CHECK(pl_ctx_init(&g_ctx, &cp) == PL_OK);
    const char *dir = getenv("PL_SHARED_DIR");
#ifdef PL_FUZZ_SHARED_DIR
    if (!dir) dir = PL_FUZZ_SHARED_DIR;
#endif
    if (dir) {
        load_shared(dir, "ggml-vocab-gpt-2.gguf");
        load_shared(dir, "ggml-vocab-llama-spm.gguf");
    }
    add(synthetic_spm());
    for (int r = 0; r < PL_PRETOK_COUNT; r++) add(synthetic_bpe(pl_pretok_table[r].name));
    const char *seeds = getenv("PL_FUZZ_WRITE_SEEDS");
    if (seeds && *seeds) write_seeds(seeds);
    return 0;
}

static pl_token ids_buf[1 << 16];
static char dec_buf[1 << 18], stream_buf[1 << 18], want_buf[1 << 18];

static void run_one(int k, const uint8_t *data, size_t size, bool parse) {
    const pl_tokenizer *t = g_tok[k];
    pl_encode_params ep = { .add_bos = parse, .add_eos = parse, .parse_special = parse };
    size_t n = 0;
    pl_status st = pl_tokenizer_encode(t, g_scr[k], (const char *)data, size, &ep, ids_buf,
                                       sizeof ids_buf / sizeof ids_buf[0], &n);
    if (st == PL_ERR_RANGE) return; /* more ids than the buffer: fine, nothing to check */
    CHECK(st == PL_OK);
    bool has_unk = false;
    for (size_t i = 0; i < n; i++) {
        CHECK(ids_buf[i] >= 0 && ids_buf[i] < pl_tokenizer_n_vocab(t));
        has_unk |= pl_tokenizer_token_type(t, ids_buf[i]) == PL_TOKEN_TYPE_UNKNOWN;
    }
    /* counting with a small buffer gives the same total */
    if (n > 0) {
        size_t n2 = 0;
        st = pl_tokenizer_encode(t, g_scr[k], (const char *)data, size, &ep, ids_buf, n - 1, &n2);
        CHECK(st == PL_ERR_RANGE && n2 == n);
    }

    pl_detok_params dp = pl_detok_default_params();
    dp.render_special = true;
    size_t dl = 0;
    CHECK(pl_tokenizer_decode(t, ids_buf, n, &dp, dec_buf, sizeof dec_buf, &dl) == PL_OK);

    /* the expected text: BOS/EOS rendered around it when added */
    size_t wl = 0;
    bool spm = pl_tokenizer_type(t) == PL_VOCAB_TYPE_SPM;
    if (parse && pl_tokenizer_add_bos(t)) {
        size_t l;
        const char *s = pl_tokenizer_token_text(t, pl_tokenizer_bos(t), &l);
        memcpy(want_buf, s, l);
        wl += l;
    }
    for (size_t i = 0; i < size; i++) {
        if (spm && i + 3 <= size && memcmp(data + i, "\xE2\x96\x81", 3) == 0) {
            want_buf[wl++] = ' ';
            i += 2;
        } else {
            want_buf[wl++] = (char)data[i];
        }
    }
    if (parse && pl_tokenizer_add_eos(t)) {
        size_t l;
        const char *s = pl_tokenizer_token_text(t, pl_tokenizer_eos(t), &l);
        memcpy(want_buf + wl, s, l);
        wl += l;
    }
    if (!has_unk) {
        CHECK(dl == wl);
        CHECK(memcmp(dec_buf, want_buf, wl) == 0);
    }

    /* streaming gives the same bytes */
    pl_detok *d = g_dt[k];
    pl_detok_reset(d);
    size_t sl = 0;
    bool valid_in = pl_utf8_valid((const char *)data, size);
    for (size_t i = 0; i < n; i++) {
        const char *p;
        size_t pl;
        CHECK(pl_detok_push(d, ids_buf[i], &p, &pl) == PL_OK);
        CHECK(pl_detok_pending(d) <= 3);
        if (valid_in && !has_unk) CHECK(pl_utf8_valid(p, pl));
        memcpy(stream_buf + sl, p, pl);
        sl += pl;
    }
    const char *p;
    size_t pl;
    pl_detok_flush(d, &p, &pl);
    memcpy(stream_buf + sl, p, pl);
    sl += pl;
    /* the streaming decoder here does not render specials: compare with a
     * plain decode */
    dp.render_special = false;
    CHECK(pl_tokenizer_decode(t, ids_buf, n, &dp, dec_buf, sizeof dec_buf, &dl) == PL_OK);
    CHECK(sl == dl);
    CHECK(memcmp(stream_buf, dec_buf, dl) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 14) return 0;
    for (int k = 0; k < g_n; k++) {
        run_one(k, data, size, false);
        run_one(k, data, size, true);
    }
    return 0;
}
