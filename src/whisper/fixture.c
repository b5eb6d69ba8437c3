/*
 * fixture.c - random-weight Whisper files in the whisper.cpp ggml layout, at the
 * real shapes, for tests and bench-stt (never committed; written at test time).
 *
 *  - hparams of the named shape; n_vocab 51864 (English-only) or 51865;
 *  - mel filters: the Slaney-scale triangular bank librosa makes for
 *    sr 16000, n_fft 400 (the recipe Whisper's own filters come from);
 *  - vocabulary: the 256 single bytes, then tokens made by joining two earlier
 *    ones (so BPE merges exist), "<|endoftext|>" last for English-only files;
 *  - tensors in the loader's order: matrices in the asked type (quantized from
 *    f32 through the type table), conv kernels f16 (f32 for an f32 file), the
 *    rest f32; encoder positions are Whisper's sinusoids, the other values
 *    uniform with a scale of 1/sqrt(n_in) so activations stay O(1).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "whisper/whisper_int.h"

typedef struct wbuf {
    pl_ctx  *ctx;
    uint8_t *p;
    size_t   len, cap;
    bool     nomem;
} wbuf;

static uint8_t *wb_reserve(wbuf *b, size_t n) {
    size_t need;
    if (b->nomem || !pl_size_add(b->len, n, &need)) {
        b->nomem = true;
        return NULL;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 20;
        while (cap < need) cap *= 2;
        uint8_t *q = pl_realloc(b->ctx, b->p, cap);
        if (!q) {
            b->nomem = true;
            return NULL;
        }
        b->p = q;
        b->cap = cap;
    }
    uint8_t *r = b->p + b->len;
    b->len = need;
    return r;
}

static void wb_i32(wbuf *b, int32_t v) {
    uint8_t *p = wb_reserve(b, 4);
    if (p) memcpy(p, &v, 4); /* little-endian hosts only (x86-64, arm64) */
}

static void wb_bytes(wbuf *b, const void *d, size_t n) {
    uint8_t *p = wb_reserve(b, n);
    if (p && n) memcpy(p, d, n);
}

static uint64_t rng(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float unif(uint64_t *x) { return (float)((double)(rng(x) >> 11) / 9007199254740992.0 * 2.0 - 1.0); }

static double hz_to_mel(double f) {
    return f < 1000.0 ? f * 3.0 / 200.0 : 15.0 + log(f / 1000.0) * 27.0 / log(6.4);
}
static double mel_to_hz(double m) {
    return m < 15.0 ? m * 200.0 / 3.0 : 1000.0 * exp((m - 15.0) * log(6.4) / 27.0);
}

static void mel_filters(float *f, int n_mels) {
    enum { NB = PL_WHISPER_N_FFT_BINS };
    double pts[260];
    double lo = hz_to_mel(0.0), hi = hz_to_mel(PL_WHISPER_SAMPLE_RATE / 2.0);
    for (int i = 0; i < n_mels + 2; i++) pts[i] = mel_to_hz(lo + (hi - lo) * i / (n_mels + 1));
    for (int b = 0; b < n_mels; b++) {
        double enorm = 2.0 / (pts[b + 2] - pts[b]);
        for (int k = 0; k < NB; k++) {
            double hz = (double)k * PL_WHISPER_SAMPLE_RATE / PL_WHISPER_N_FFT;
            double up = (hz - pts[b]) / (pts[b + 1] - pts[b]), down = (pts[b + 2] - hz) / (pts[b + 2] - pts[b + 1]);
            double w = up < down ? up : down;
            f[b * NB + k] = (float)(w > 0.0 ? w * enorm : 0.0);
        }
    }
}

static const struct { const char *name; int32_t state, head, layer; } shapes[] = {
    { "tiny", 384, 6, 4 }, { "base", 512, 8, 6 }, { "small", 768, 12, 12 }, { "medium", 1024, 16, 24 },
};

static int32_t ftype_of(uint32_t t) {
    switch (t) {
    case PL_TYPE_F32: return 0;
    case PL_TYPE_F16: return 1;
    case PL_TYPE_Q4_0: return 2;
    case PL_TYPE_Q4_1: return 3;
    case PL_TYPE_Q8_0: return 7;
    case PL_TYPE_Q5_0: return 8;
    case PL_TYPE_Q5_1: return 9;
    default: return -1;
    }
}

pl_status pl_whisper_fixture_make(pl_ctx *ctx, const pl_whisper_fixture_params *p, uint8_t **out, size_t *size) {
    if (!p || !out || !size) return PL_ERR_INVALID_ARG;
    *out = NULL;
    *size = 0;
    int si = -1;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (p->shape && strcmp(p->shape, shapes[i].name) == 0) si = (int)i;
    if (si < 0) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "whisper fixture: unknown shape '%s' (tiny, base, small, "
                                  "medium)", p->shape ? p->shape : "");
    const int32_t ftype = ftype_of(p->type);
    if (ftype < 0) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "whisper fixture: type %s not offered (f32, f16, q8_0, "
                                     "q5_0, q5_1, q4_0, q4_1)", pl_type_name(p->type));
    pl_whisper_hparams h = {
        .n_vocab = p->multilingual ? 51865 : 51864,
        .n_audio_ctx = p->n_audio_ctx > 0 ? p->n_audio_ctx : 1500,
        .n_audio_state = shapes[si].state, .n_audio_head = shapes[si].head, .n_audio_layer = shapes[si].layer,
        .n_text_ctx = p->n_text_ctx > 0 ? p->n_text_ctx : 448,
        .n_text_state = shapes[si].state, .n_text_head = shapes[si].head, .n_text_layer = shapes[si].layer,
        .n_mels = p->n_mels > 0 ? p->n_mels : 80, .ftype = ftype,
    };
    if (p->n_state > 0) h.n_audio_state = h.n_text_state = p->n_state;
    if (p->n_head > 0) h.n_audio_head = h.n_text_head = p->n_head;
    if (p->n_layer > 0) h.n_audio_layer = h.n_text_layer = p->n_layer;
    wh_spec *specs = NULL;
    size_t n_specs = 0;
    pl_status st = wh_tensor_specs(ctx, &h, &specs, &n_specs);
    if (st != PL_OK) return pl_ctx_err(ctx, st, "whisper fixture: %s", pl_status_str(st));
    wbuf b = { .ctx = ctx };
    uint64_t seed = p->seed ? p->seed : 1;
    wb_i32(&b, (int32_t)PL_WHISPER_MAGIC);
    const int32_t *hv = &h.n_vocab;
    for (int i = 0; i < 11; i++) wb_i32(&b, hv[i]);
    /* mel filters */
    float *filt = pl_malloc(ctx, (size_t)h.n_mels * PL_WHISPER_N_FFT_BINS * sizeof(float));
    if (filt) {
        mel_filters(filt, h.n_mels);
        wb_i32(&b, h.n_mels);
        wb_i32(&b, PL_WHISPER_N_FFT_BINS);
        wb_bytes(&b, filt, (size_t)h.n_mels * PL_WHISPER_N_FFT_BINS * sizeof(float));
        pl_free(ctx, filt);
    } else {
        b.nomem = true;
    }
    /* vocabulary: offsets of each token's bytes in the buffer (it may move) */
    const int32_t n_stored = p->n_vocab_stored >= 256 && p->n_vocab_stored <= 50257 ? p->n_vocab_stored : 50257;
    size_t *voff = pl_malloc(ctx, (size_t)n_stored * sizeof *voff);
    uint32_t *vlen = pl_malloc(ctx, (size_t)n_stored * sizeof *vlen);
    if (!voff || !vlen) b.nomem = true;
    wb_i32(&b, n_stored);
    for (int32_t i = 0; i < n_stored && !b.nomem; i++) {
        char tok[32];
        size_t len;
        if (i < 256) {
            tok[0] = (char)i;
            len = 1;
        } else if (i == n_stored - 1 && !p->multilingual && n_stored == 50257) {
            len = (size_t)snprintf(tok, sizeof tok, "<|endoftext|>");
        } else {
            /* join two earlier tokens: mostly letters and ' ' (ids 32, 97..122) */
            int32_t a, c;
            do {
                uint64_t r = rng(&seed);
                a = (r & 3) == 0 ? 32 : (int32_t)(r >> 8) % (i < 2000 ? i : 2000);
                c = (int32_t)((r >> 32) % (uint64_t)i);
                if (a < 256 && a != 32) a = 97 + (int32_t)(r >> 40) % 26;
                if (c < 256) c = 97 + (int32_t)(r >> 48) % 26;
            } while (vlen[a] + vlen[c] > 24);
            memcpy(tok, b.p + voff[a], vlen[a]);
            memcpy(tok + vlen[a], b.p + voff[c], vlen[c]);
            len = vlen[a] + vlen[c];
        }
        wb_i32(&b, (int32_t)len);
        voff[i] = b.len;
        vlen[i] = (uint32_t)len;
        wb_bytes(&b, tok, len);
    }
    pl_free(ctx, voff);
    pl_free(ctx, vlen);
    /* tensors */
    float *row = NULL;
    size_t row_cap = 0;
    for (size_t i = 0; i < n_specs && !b.nomem; i++) {
        const wh_spec *e = &specs[i];
        uint32_t type;
        int n_dims;
        int64_t ne[3] = { 1, 1, 1 };
        switch (e->kind) {
        case WH_MAT: type = p->type; n_dims = 2; ne[0] = e->ne0; ne[1] = e->ne1; break;
        case WH_CONV:
            type = p->type == PL_TYPE_F32 ? PL_TYPE_F32 : PL_TYPE_F16;
            n_dims = 3; ne[0] = 3; ne[1] = e->ne0; ne[2] = e->ne1;
            break;
        case WH_POS: type = PL_TYPE_F32; n_dims = 2; ne[0] = e->ne0; ne[1] = e->ne1; break;
        default: /* conv biases as [1, n] like whisper.cpp, other vectors 1-D */
            type = PL_TYPE_F32;
            if (strstr(e->name, "conv")) { n_dims = 2; ne[0] = 1; ne[1] = e->ne0; }
            else { n_dims = 1; ne[0] = e->ne0; }
            break;
        }
        uint64_t bytes;
        if (pl_type_tensor_bytes(type, n_dims, ne, &bytes) != PL_OK) {
            st = PL_ERR_INVALID_ARG;
            break;
        }
        size_t nl = strlen(e->name);
        wb_i32(&b, n_dims);
        wb_i32(&b, (int32_t)nl);
        wb_i32(&b, (int32_t)type);
        for (int d = 0; d < n_dims; d++) wb_i32(&b, (int32_t)ne[d]);
        wb_bytes(&b, e->name, nl);
        uint8_t *dst = wb_reserve(&b, (size_t)bytes);
        if (!dst) break;
        const int64_t rl = ne[0], nrows = ne[1] * ne[2];
        if ((size_t)rl > row_cap) {
            pl_free(ctx, row);
            row_cap = (size_t)rl;
            if (!(row = pl_malloc(ctx, row_cap * sizeof *row))) {
                b.nomem = true;
                break;
            }
        }
        uint64_t rb;
        pl_type_row_bytes(type, (uint64_t)rl, &rb);
        /* rows are converted in an aligned buffer: the file's data is not aligned */
        uint8_t *q = pl_malloc(ctx, (size_t)rb);
        if (!q) {
            b.nomem = true;
            break;
        }
        const bool is_norm_w = strstr(e->name, "ln") && strstr(e->name, ".weight");
        const int64_t fan_in = e->kind == WH_CONV ? 3 * e->ne0 : e->ne0;
        const float scale = e->kind == WH_VEC ? 0.05f : (e->kind == WH_POS ? 0.1f : 1.7f / sqrtf((float)fan_in));
        for (int64_t r = 0; r < nrows; r++) {
            for (int64_t k = 0; k < rl; k++) {
                if (e->kind == WH_POS && i == 0) { /* encoder sinusoids: [sin(t w_j) | cos(t w_j)] */
                    int64_t half = rl / 2, j = k % half;
                    double inc = log(10000.0) / (double)(half > 1 ? half - 1 : 1);
                    double a = (double)r * exp(-inc * (double)j);
                    row[k] = (float)(k < half ? sin(a) : cos(a));
                } else {
                    row[k] = (is_norm_w ? 1.0f : 0.0f) + scale * unif(&seed);
                }
            }
            pl_type_from_f32(type, row, q, rl);
            memcpy(dst + (size_t)r * rb, q, (size_t)rb);
        }
        pl_free(ctx, q);
    }
    pl_free(ctx, row);
    pl_free(ctx, specs);
    if (b.nomem || st != PL_OK) {
        pl_free(ctx, b.p);
        return pl_ctx_err(ctx, b.nomem ? PL_ERR_NOMEM : st, "whisper fixture: %s",
                          b.nomem ? "out of memory" : "bad shape for the type");
    }
    *out = b.p;
    *size = b.len;
    return PL_OK;
}

pl_status pl_whisper_fixture_write(pl_ctx *ctx, const pl_whisper_fixture_params *p, const char *path) {
    uint8_t *data;
    size_t size;
    pl_status st = pl_whisper_fixture_make(ctx, p, &data, &size);
    if (st != PL_OK) return st;
    FILE *f = fopen(path, "wb");
    if (!f) {
        pl_free(ctx, data);
        return pl_ctx_err(ctx, PL_ERR_IO, "whisper fixture: cannot create %s", path);
    }
    bool ok = fwrite(data, 1, size, f) == size;
    ok = (fclose(f) == 0) && ok;
    pl_free(ctx, data);
    if (!ok) return pl_ctx_err(ctx, PL_ERR_IO, "whisper fixture: cannot write %s", path);
    return PL_OK;
}
