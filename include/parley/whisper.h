/*
 * parley/whisper.h - native Whisper speech-to-text on parley's tensor types,
 * kernels (pl_matmul) and thread pool, reading whisper.cpp ggml model files
 * (ggml-tiny.en.bin, ggml-base.bin, their q5_0/q8_0 variants, ...).
 *
 * Pieces, each usable alone:
 *  - pl_whisper_model: the loaded file. Validated completely before it is
 *    returned (every count, length, dim, type and size against the bytes left;
 *    tensor names and shapes against the hyperparameters); bad files give
 *    PL_ERR_FORMAT / PL_ERR_UNSUPPORTED and a one-line message in
 *    pl_ctx_last_error(ctx) naming the field and offset. Matrices stay in
 *    their file type (copied once to aligned memory: memory = file size);
 *    norms, biases and positions not stored as f32 are converted once.
 *  - log-mel spectrogram as Whisper defines it (16 kHz, 400-point periodic
 *    Hann window, hop 160, |STFT|^2 through the file's mel filters, log10,
 *    clamped to max - 8, (x + 4) / 4), with a mixed-radix FFT of size 400.
 *  - pl_whisper_state: encoder/decoder buffers, KV caches and the thread pool
 *    of one decoding session; transcription with Whisper's decoding rules.
 *
 * Ownership: the caller owns models and states; a state borrows its model,
 * which must outlive it. Results point into the state and stay valid until
 * the next call on it.
 * Thread-safety: a loaded model is immutable and may be shared by any number
 * of states on any threads; a state is used by one thread at a time.
 */
#ifndef PARLEY_WHISPER_H
#define PARLEY_WHISPER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PL_WHISPER_MAGIC       0x67676d6cu /* "ggml" read as a little-endian u32 */
#define PL_WHISPER_SAMPLE_RATE 16000
#define PL_WHISPER_N_FFT       400
#define PL_WHISPER_HOP         160
#define PL_WHISPER_CHUNK_S     30      /* one encoder window */
#define PL_WHISPER_N_FRAMES    3000    /* mel frames in one window */
#define PL_WHISPER_TS_STEP     0.02    /* seconds per timestamp token (= 2 mel frames) */

/* The 11 header fields, in file order. */
typedef struct pl_whisper_hparams {
    int32_t n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer;
    int32_t n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype;
} pl_whisper_hparams;

/* Special token ids, laid out from n_vocab as whisper.cpp does (English-only
 * files: n_vocab 51864; multilingual: >= 51865, eot/sot one higher and the task
 * and later ids shifted by n_languages - 98). */
typedef struct pl_whisper_specials {
    int32_t eot, sot, translate, transcribe, solm, prev, nosp, not_ts, ts_begin;
    int32_t n_languages;   /* language tokens are sot + 1 .. sot + n_languages */
    bool    multilingual;
} pl_whisper_specials;

typedef struct pl_whisper_model pl_whisper_model;

/* Map and validate a file. Errors: PL_ERR_IO, PL_ERR_FORMAT, PL_ERR_UNSUPPORTED
 * (a tensor type without a kernel), PL_ERR_NOMEM. */
pl_status pl_whisper_model_load(pl_ctx *ctx, const char *path, pl_whisper_model **out);
/* The same over bytes in memory (only read during the call: tensors are copied
 * to aligned memory either way, since whisper files do not align them). */
pl_status pl_whisper_model_load_mem(pl_ctx *ctx, const void *data, size_t size, pl_whisper_model **out);
void pl_whisper_model_free(pl_whisper_model *m);

const pl_whisper_hparams  *pl_whisper_model_hparams(const pl_whisper_model *m);
const pl_whisper_specials *pl_whisper_model_specials(const pl_whisper_model *m);
/* Bytes of token id (not NUL-terminated; *len gets the length); special and
 * extra ids give their "<|...|>" name. NULL when id is out of range. */
const char *pl_whisper_token_text(const pl_whisper_model *m, int32_t id, size_t *len);
/* Language code ("en") of language index i (token sot + 1 + i); NULL past the table. */
const char *pl_whisper_lang_code(int i);
/* Index of a code or -1; only indices < n_languages exist in a given model. */
int pl_whisper_lang_index(const char *code);
/* The file type name of the weight matrices ("f16", "q8_0", ...). */
const char *pl_whisper_model_type_name(const pl_whisper_model *m);
/* Encode text to token ids with the file's byte-level vocabulary (BPE with a
 * token's id as its merge rank, as in tiktoken). Writes up to cap ids to ids
 * and the number needed to *n. PL_ERR_RANGE when cap is too small. */
pl_status pl_whisper_tokenize(const pl_whisper_model *m, const char *text, int32_t *ids, size_t cap, size_t *n);

/* ---- log-mel spectrogram ---- */

/* Frames for n samples: n / 160 (the STFT's last frame is dropped, as Whisper does). */
size_t pl_whisper_mel_frames(size_t n_samples);
/* mel[b * n_frames_out + t] for bin b < n_mels, t < n_frames_out: frames of the
 * samples followed by n_pad_zeros zero samples (Whisper pads 30 s), reflect
 * padded by 200 at both ends, computed up to n_frames_out frames (the rest of
 * the padded signal is not needed). filters: [n_mels][201]. The clamp uses the
 * max over the frames computed. Allocation: scratch from ctx. */
pl_status pl_whisper_log_mel(pl_ctx *ctx, const float *filters, int n_mels, const float *pcm, size_t n,
                             size_t n_pad_zeros, size_t n_frames_out, float *mel);

/* ---- decoding ---- */

typedef struct pl_whisper_params {
    int         n_threads;     /* unused by pl_whisper_full (the state's pool decides) */
    int         audio_ctx;     /* encoder frames of this call's windows, at most the state's;
                                  0: the state's (pl_whisper_state_init's audio_ctx, by
                                  default the model's 1500 = 30 s). A smaller value encodes
                                  only audio_ctx * 20 ms per window: faster (the encoder is
                                  quadratic in it) but the model was trained on full 30 s
                                  windows, so accuracy drops, most on short contexts
                                  (whisper.cpp's audio_ctx has the same trade-off). Audio
                                  longer than the context is cut into windows of it. */
    const char *language;      /* "en", ...; NULL or "auto": detect (multilingual files) */
    bool        translate;     /* task: translate to English (multilingual files) */
    bool        timestamps;    /* sample timestamp tokens (segments); false: <|notimestamps|> */
    bool        suppress_blank;/* suppress " " and eot as the first token (Whisper default) */
    bool        suppress_non_speech; /* Whisper's non-speech symbol list (its "-1") */
    const char *initial_prompt;/* text before <|startoftranscript|>; NULL: none */
    int         max_tokens;    /* per window; 0: n_text_ctx / 2 */
    /* temperature fallback: 0, step, 2 step ... up to 1.0 while a window's result
     * fails a threshold; step 0 disables fallback */
    float       temperature_inc;          /* default 0.2 */
    float       compression_ratio_thold;  /* default 2.4 (zlib ratio of the text) */
    float       logprob_thold;            /* default -1.0 (average token log-prob) */
    float       no_speech_thold;          /* default 0.6: with a low logprob, the window is silence */
    uint64_t    seed;                     /* sampling at temperature > 0 */
    bool        greedy_raw;   /* tests: plain argmax of the logits, no suppression or rules */
    const atomic_bool *cancel; /* polled between tokens; may be NULL */
} pl_whisper_params;

pl_whisper_params pl_whisper_default_params(void);

/* The parameters of a cheap running hypothesis (a partial transcript) over the
 * first n_samples of an utterance, for a state of audio ctx state_ctx (<= 0:
 * 1500): greedy, no timestamps (one window, no seeking back), no temperature
 * fallback, audio_ctx = ceil(n_samples / 320) frames (the audio, not 30 s)
 * capped at state_ctx, at most 8 + 6 tokens per whole second (a guard against
 * greedy loops: speech runs about 3 tokens a second). Cost: the mel, one
 * encoder pass at that context (per state_ctx window), one decoder step per
 * token. */
pl_whisper_params pl_whisper_partial_params(size_t n_samples, int state_ctx);

typedef struct pl_whisper_segment {
    double      start_s, end_s;   /* from the start of the audio */
    double      seek_s;           /* start of the window it was decoded in (Whisper's "seek") */
    const char *text;             /* UTF-8 */
    const int32_t *tokens;        /* the segment's text tokens */
    size_t      n_tokens;
    float       avg_logprob, no_speech_prob, temperature, compression_ratio;
} pl_whisper_segment;

typedef struct pl_whisper_timings {
    double mel_ms, encode_ms, decode_ms; /* summed over windows */
    int64_t n_decoded;                   /* decoder steps (tokens sampled) */
    int     n_windows, n_fallbacks;
} pl_whisper_timings;

typedef struct pl_whisper_result {
    const pl_whisper_segment *segments;
    size_t      n_segments;
    const char *text;         /* segments joined, leading space trimmed */
    const char *language;     /* the language used (detected or given) */
    const int32_t *tokens;    /* every sampled token of every window (timestamps too) */
    size_t      n_tokens;
    pl_whisper_timings t;
} pl_whisper_result;

typedef struct pl_whisper_state pl_whisper_state;

/* Buffers for one session at audio_ctx (0: the model's). Memory: about
 * audio_ctx * n_audio_state * 40 B for the encoder plus audio_ctx^2 * 4 B of
 * attention scores per thread group, plus the decoder caches. */
pl_status pl_whisper_state_init(const pl_whisper_model *m, int n_threads, int audio_ctx, pl_whisper_state **out);
void pl_whisper_state_free(pl_whisper_state *s);
const char *pl_whisper_state_error(const pl_whisper_state *s);

/* Transcribe 16 kHz mono audio. */
pl_status pl_whisper_full(pl_whisper_state *s, const pl_whisper_params *p, const float *pcm, size_t n,
                          const pl_whisper_result **out);

/* Lower-level steps (tests, bench): */
/* Compute the window's mel ([n_mels][2 * audio_ctx]) from samples [0, n). */
pl_status pl_whisper_set_audio(pl_whisper_state *s, const float *pcm, size_t n);
/* Run the encoder on the window's mel; cross-attention K/V are computed here. */
pl_status pl_whisper_encode(pl_whisper_state *s);
/* Encoder output [audio_ctx][n_audio_state] after encode(). */
const float *pl_whisper_encoder_output(const pl_whisper_state *s, int *n_ctx);
/* Decode n tokens at positions n_past.. (the self-attention cache keeps them);
 * logits [n_vocab] of the last token. n_past + n <= n_text_ctx. */
pl_status pl_whisper_decode(pl_whisper_state *s, const int32_t *tokens, int n, int n_past, const float **logits);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_WHISPER_H */
