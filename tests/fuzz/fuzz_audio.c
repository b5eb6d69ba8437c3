/*
 * fuzz_audio.c - libFuzzer target for audio decoding (an HTTP upload's path):
 * pl_audio_load_memory() with a 30 s limit, then the VAD over the result.
 *
 * Invariants (abort on violation): an accepted input gives 16 kHz mono
 * samples, at most the limit's worth, every one finite and in [-1, 1]; a
 * refused one leaves *out NULL and an error message.
 * With $PL_FUZZ_WRITE_SEEDS set, LLVMFuzzerInitialize writes seed WAVs there.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/audio.h"
#include "parley/vad.h"

#define FUZZ_NAME "fuzz_audio"
#include "fuzz/fuzz_util.h"

static pl_ctx *ctx;
static pl_vad *vad;

static void write_seed(const char *dir, const char *name, int rate, int ch, size_t frames) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    uint8_t h[PL_WAV_HEADER_SIZE];
    pl_audio_wav_header(h, rate, ch, frames);
    fwrite(h, 1, sizeof h, f);
    for (size_t i = 0; i < frames * (size_t)ch; i++) {
        float v = (float)(0.3 * sin(0.05 * (double)i));
        uint8_t b[2];
        pl_audio_f32_to_s16le(&v, 1, b);
        fwrite(b, 1, 2, f);
    }
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_level = PL_LOG_LEVEL_NONE;
    if (pl_ctx_init(&ctx, &cp) != PL_OK || pl_vad_init(ctx, NULL, &vad) != PL_OK) abort();
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (dir) {
        write_seed(dir, "mono16k.wav", 16000, 1, 400);
        write_seed(dir, "stereo44k.wav", 44100, 2, 300);
        write_seed(dir, "mono8k.wav", 8000, 1, 100);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pl_audio_load_params p = pl_audio_default_load_params();
    p.max_seconds = 30.0;
    pl_audio *a = (pl_audio *)1;
    pl_status st = pl_audio_load_memory(ctx, data, size, &p, &a);
    if (st != PL_OK) {
        CHECK(a == NULL);
        CHECK(pl_ctx_last_error(ctx)[0] != '\0');
        return 0;
    }
    CHECK(a && a->channels == 1 && a->sample_rate == 16000);
    CHECK(a->n_frames <= 30 * 16000 + 64);
    CHECK(a->src_channels >= 1 && a->src_channels <= 8);
    CHECK(a->src_rate >= 8000 && a->src_rate <= 192000);
    for (size_t i = 0; i < a->n_frames; i++)
        CHECK(isfinite(a->samples[i]) && fabsf(a->samples[i]) <= 1.0f);
    pl_vad_reset(vad);
    CHECK(pl_vad_feed(vad, a->samples, a->n_frames) == PL_OK);
    CHECK(pl_vad_flush(vad) == PL_OK);
    pl_audio_free(a);
    return 0;
}
