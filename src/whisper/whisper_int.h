/* whisper_int.h - private: the loaded model's layout, the FFT, the random-weight
 * fixture writer (used by `parley fixture --whisper`, bench-stt and the tests). */
#ifndef PL_WHISPER_INT_H
#define PL_WHISPER_INT_H

#include "parley/tensor.h"
#include "parley/whisper.h"

#define PL_WHISPER_MAX_LAYERS 64
#define PL_WHISPER_N_FFT_BINS (PL_WHISPER_N_FFT / 2 + 1) /* 201 */

/* One linear layer y = W x + b. W is a matrix in its file type (borrowed from
 * the mapping) with ne = [n_in, n_out]; b is f32 [n_out] or NULL (key projections). */
typedef struct wh_linear {
    pl_mat       w;
    const float *b;
} wh_linear;

typedef struct wh_ln { const float *w, *b; } wh_ln; /* LayerNorm [n] */

typedef struct wh_attn { wh_linear q, k, v, o; } wh_attn;

typedef struct wh_enc_layer {
    wh_ln     attn_ln, mlp_ln;
    wh_attn   attn;
    wh_linear mlp0, mlp2; /* [n -> 4n], [4n -> n] */
} wh_enc_layer;

typedef struct wh_dec_layer {
    wh_ln     attn_ln, cross_ln, mlp_ln;
    wh_attn   attn, cross;
    wh_linear mlp0, mlp2;
} wh_dec_layer;

struct pl_whisper_model {
    pl_ctx             *ctx;
    pl_whisper_hparams  hp;
    pl_whisper_specials sp;
    uint32_t            wtype;    /* type of the attention matrices (for display) */
    const uint8_t      *base;     /* the aligned tensor copies inside buf */
    size_t              size;
    float              *filters;  /* [n_mels][201], owned */
    /* vocabulary: n_vocab entries; stored tokens point into the file, the rest
     * into names (owned) */
    const char        **tok;
    uint32_t           *tok_len;
    int32_t             n_stored; /* tokens stored in the file */
    char               *names;
    int32_t            *hash;     /* open addressing over stored tokens: id or -1 */
    uint32_t            hash_cap; /* power of two */
    int32_t             byte_tok[256]; /* token of each single byte, or -1 */
    /* encoder: conv kernels as matrices [n_out][n_in * 3] (the file's [3, n_in, n_out] data) */
    pl_mat              conv1, conv2;
    const float        *conv1_b, *conv2_b;
    const float        *enc_pos;  /* [n_audio_ctx][n_audio_state] */
    wh_enc_layer        enc[PL_WHISPER_MAX_LAYERS];
    wh_ln               ln_post;
    /* decoder */
    const float        *dec_pos;  /* [n_text_ctx][n_text_state] */
    pl_mat              tok_emb;  /* [n_vocab][n_text_state] in its file type (also the logits matrix) */
    wh_dec_layer        dec[PL_WHISPER_MAX_LAYERS];
    wh_ln               ln;
    void               *buf;      /* owned: the tensors, each copied to a 64-byte aligned slot */
    float              *vecs_owned; /* owned: f32 conversions of vectors stored in other types */
    size_t              f32_cap;
};

/* ---- fft.c ----
 * Complex FFT of any size whose prime factors are <= 7 (400 = 4 4 5 5):
 * recursive mixed-radix decimation in time, interleaved re/im doubles. The
 * plan holds the radices and the twiddles exp(-2 pi i k / n). Cost:
 * O(n * sum of radices) per transform, no allocation. */
#define WH_FFT_MAX_RADIX 7
typedef struct wh_fft {
    int     n;
    int     n_radix;
    int     radix[32];
    double *tw;        /* [2n] */
} wh_fft;

pl_status wh_fft_init(pl_ctx *ctx, int n, wh_fft *f);
void wh_fft_free(pl_ctx *ctx, wh_fft *f);
/* out[k] = sum_j in[j] exp(-2 pi i j k / n); in and out (2n doubles each) differ. */
void wh_fft_run(const wh_fft *f, const double *in, double *out);

/* ---- state.c: one session's buffers (shapes: T = audio ctx, F = 2T mel frames,
 * E = state, H heads of hd, C = n_text_ctx) ---- */
struct pl_whisper_state {
    const pl_whisper_model *m;
    pl_ctx   *ctx;
    pl_pool  *pool;
    int       n_threads;
    int       T;              /* audio ctx in use (a pl_whisper_full call may lower it) */
    int       T_cap;          /* audio ctx the buffers are sized for */
    float    *mel;            /* [n_mels][F] of the current window */
    /* encoder */
    float    *col;            /* im2col [F][3 n_mels] or [T][3 E] */
    float    *h1;             /* conv1 out [F][E] */
    float    *x, *xn, *att;   /* [T][E] */
    float    *q, *k, *vt;     /* per head: q, k [H][T][hd]; vt [H][hd][T] */
    float    *qkv[3];         /* matmul outputs [T][E] */
    float    *h4;             /* [T][4E] */
    float    *scores;         /* [T][T] (one head at a time) */
    float    *enc_out;        /* [T][E] */
    float    *ck, *cv;        /* cross K/V [n_text_layer][T][E] */
    bool      encoded;
    /* decoder */
    float    *kself, *vself;  /* [n_text_layer][C][E] */
    float    *dx, *dxn, *dq, *dk, *dv, *datt, *dh4; /* [C][E] ([C][4E] for dh4) */
    float    *dscores;        /* [n_threads][max(T, C)] */
    float    *logits;         /* [n_vocab] */
    void     *work;      /* 64-byte aligned inside work_raw (see pl_matmul) */
    void     *work_raw;
    size_t    work_size;
    char      err[256];
    /* decode.c: the result of pl_whisper_full() */
    void     *res;
};

pl_status wh_state_err(pl_whisper_state *s, pl_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* decode.c: frees s->res */
void wh_result_free(pl_whisper_state *s);

/* ---- loader.c: the tensors a model of these hparams has ---- */
typedef enum wh_kind {
    WH_MAT = 0, /* 2-D matrix [n_in, n_out] kept in its type */
    WH_CONV,    /* 3-D [3, n_in, n_out] kept as a matrix [n_out][3 n_in] */
    WH_VEC,     /* n values needed as f32 (any dims with that product) */
    WH_POS,     /* 2-D [n_state, n_ctx] as f32 */
} wh_kind;

typedef struct wh_spec {
    char    name[64];
    wh_kind kind;
    int64_t ne0, ne1; /* MAT/CONV: n_in, n_out; VEC: n; POS: state, ctx */
} wh_spec;

/* The list in file order (free with pl_free(ctx, *out)). */
pl_status wh_tensor_specs(pl_ctx *ctx, const pl_whisper_hparams *hp, wh_spec **out, size_t *n);

/* ---- fixture.c: random-weight files in the whisper.cpp layout ---- */
typedef struct pl_whisper_fixture_params {
    const char *shape;    /* "tiny" (384x4, 6 heads), "base" (512x6, 8 heads), "small" (768x12, 12) */
    bool        multilingual;
    uint32_t    type;     /* matrix type: F32, F16, Q8_0, Q5_0, Q4_0, ... */
    int         n_audio_ctx; /* 0: 1500 */
    int         n_text_ctx;  /* 0: 448 */
    uint64_t    seed;
    /* non-zero: override the shape's (small seed files for the fuzzer) */
    int         n_state, n_head, n_layer, n_mels, n_vocab_stored;
} pl_whisper_fixture_params;

/* Make the whole file in memory (*out, *size; free with pl_free(ctx, *out)). */
pl_status pl_whisper_fixture_make(pl_ctx *ctx, const pl_whisper_fixture_params *p, uint8_t **out, size_t *size);
/* Make it and write it to path. */
pl_status pl_whisper_fixture_write(pl_ctx *ctx, const pl_whisper_fixture_params *p, const char *path);

/* ---- decode.c helpers shared with the tests ---- */
/* zlib compression ratio of text (Whisper's gzip ratio); 0 for empty text. */
float pl_whisper_compression_ratio(const char *text, size_t len);

#endif
