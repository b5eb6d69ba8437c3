/*
 * fuzz_whisper.c - libFuzzer target for the whisper.cpp ggml loader.
 *
 * Each input goes through pl_whisper_model_load_mem(); when it is accepted the
 * invariants are checked (abort on violation): hparams inside the loader's
 * bounds, every token id has text, the tokenizer gives ids inside the stored
 * vocabulary, and a state at a small audio ctx runs mel, encoder and one decoder
 * step (the model's sizes are bounded by the input's, so this stays cheap).
 * With $PL_FUZZ_WRITE_SEEDS set, LLVMFuzzerInitialize writes small valid files
 * (state 2, one layer, 2 mel bins) made by the fixture writer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/whisper.h"
#include "whisper/whisper_int.h"

#define FUZZ_NAME "fuzz_whisper"
#include "fuzz/fuzz_util.h"

static pl_ctx *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_level = PL_LOG_LEVEL_NONE;
    if (pl_ctx_init(&ctx, &cp) != PL_OK) abort();
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (!dir) return 0;
    const struct { bool ml; uint32_t type; int actx, tctx; } seeds[] = {
        { false, PL_TYPE_F16, 4, 8 }, { true, PL_TYPE_F32, 2, 4 },
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        pl_whisper_fixture_params p = { .shape = "tiny", .multilingual = seeds[i].ml, .type = seeds[i].type,
                                        .n_audio_ctx = seeds[i].actx, .n_text_ctx = seeds[i].tctx, .seed = i + 1,
                                        .n_state = 2, .n_head = 1, .n_layer = 1, .n_mels = 2,
                                        .n_vocab_stored = 256 + (int)i * 40 };
        char path[4096];
        snprintf(path, sizeof path, "%s/seed-%zu.bin", dir, i);
        if (pl_whisper_fixture_write(ctx, &p, path) != PL_OK) fprintf(stderr, "%s\n", pl_ctx_last_error(ctx));
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pl_whisper_model *m = NULL;
    if (pl_whisper_model_load_mem(ctx, data, size, &m) != PL_OK) {
        CHECK(m == NULL);
        CHECK(pl_ctx_last_error(ctx)[0] != '\0');
        return 0;
    }
    const pl_whisper_hparams *h = pl_whisper_model_hparams(m);
    const pl_whisper_specials *sp = pl_whisper_model_specials(m);
    CHECK(h->n_vocab >= 51864 && h->n_audio_layer >= 1 && h->n_audio_layer <= PL_WHISPER_MAX_LAYERS);
    CHECK(h->n_audio_state % h->n_audio_head == 0);
    CHECK(sp->eot < sp->sot && sp->sot + sp->n_languages < sp->translate && sp->ts_begin < h->n_vocab);
    for (int32_t id = 0; id < h->n_vocab; id++) {
        size_t len = 0;
        CHECK(pl_whisper_token_text(m, id, &len) != NULL);
    }
    int32_t ids[64];
    size_t n = 0;
    pl_status st = pl_whisper_tokenize(m, "Hello world, it's 42!", ids, 64, &n);
    CHECK(st == PL_OK || st == PL_ERR_RANGE);
    for (size_t i = 0; i < n && i < 64; i++) CHECK(ids[i] >= 0 && ids[i] < sp->sot);
    pl_whisper_state *s = NULL;
    int actx = h->n_audio_ctx < 8 ? h->n_audio_ctx : 8;
    if (pl_whisper_state_init(m, 1, actx, &s) == PL_OK) {
        float pcm[800];
        for (int i = 0; i < 800; i++) pcm[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
        CHECK(pl_whisper_set_audio(s, pcm, 800) == PL_OK);
        CHECK(pl_whisper_encode(s) == PL_OK);
        const float *logits;
        int32_t tok = sp->sot;
        CHECK(pl_whisper_decode(s, &tok, 1, 0, &logits) == PL_OK);
        pl_whisper_state_free(s);
    }
    pl_whisper_model_free(m);
    return 0;
}
