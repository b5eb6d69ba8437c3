/*
 * loader.c - whisper.cpp ggml model files (shared formats.md, "whisper.cpp ggml
 * model files"): magic, 11 i32 hyperparameters, mel filters, vocabulary, then
 * tensors (n_dims, name length, type, dims, name, data) to the end of the file.
 *
 * Two walks, like the GGUF reader:
 *  1. validate everything against the bytes left (nothing allocated but the
 *     expected-tensor table, whose size follows from the checked hparams):
 *     every count, length, dim and dims x type-size product is overflow-checked;
 *     each tensor name must be one the hparams call for, with their shape, once;
 *  2. copy: tensor data in whisper files is not aligned (names of any length sit
 *     between them), so every tensor is copied to a 64-byte aligned slot of one
 *     buffer (memory = the file's size; load time ~ one memcpy of it). Vectors
 *     that are not f32 are converted into an f32 area.
 * The mapping (or the caller's bytes) is only read during the load.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "whisper/whisper_int.h"

#define MAX_NAME   255
#define MAX_TOKLEN 1024
#define ALIGN      64

/* ---- languages (OpenAI's order; token sot + 1 + i) ---- */
static const char *const langs[] = {
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv",
    "it", "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no",
    "th", "ur", "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr",
    "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw",
    "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu",
    "am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl",
    "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su", "yue",
};
#define N_LANGS ((int)(sizeof langs / sizeof langs[0]))

const char *pl_whisper_lang_code(int i) { return i >= 0 && i < N_LANGS ? langs[i] : NULL; }

int pl_whisper_lang_index(const char *code) {
    for (int i = 0; code && i < N_LANGS; i++)
        if (strcmp(langs[i], code) == 0) return i;
    return -1;
}

/* ---- the expected tensors ---- */

typedef struct wh_expect {
    char          name[64];
    wh_kind       kind;
    int64_t       ne0, ne1;      /* MAT/CONV: n_in, n_out; VEC: n; POS: state, ctx */
    pl_mat       *mat;
    const float **vec;
    bool          seen;
    uint32_t      type;
    uint64_t      off, bytes;    /* data in the file */
    size_t        slot;          /* offset in the copy buffer */
    size_t        f32_off;       /* offset in the f32 area (SIZE_MAX: used in place) */
} wh_expect;

typedef struct wh_table {
    wh_expect *e;
    size_t     n, cap;
} wh_table;

typedef struct rd {
    const uint8_t *p;
    uint64_t       size, pos;
    char           err[300];
} rd;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static pl_status rerr(rd *r, pl_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    return st;
}

static pl_status rd_i32(rd *r, const char *what, int32_t *v) {
    if (r->size - r->pos < 4)
        return rerr(r, PL_ERR_FORMAT, "truncated file: %s at offset %" PRIu64 " (size %" PRIu64 ")", what, r->pos,
                    r->size);
    uint32_t u = (uint32_t)r->p[r->pos] | (uint32_t)r->p[r->pos + 1] << 8 | (uint32_t)r->p[r->pos + 2] << 16 |
                 (uint32_t)r->p[r->pos + 3] << 24;
    memcpy(v, &u, 4);
    r->pos += 4;
    return PL_OK;
}

static pl_status need(rd *r, uint64_t n, const char *what) {
    if (r->size - r->pos >= n) return PL_OK;
    return rerr(r, PL_ERR_FORMAT, "truncated file: %s (%" PRIu64 " bytes) past end of file at offset %" PRIu64
                " (size %" PRIu64 ")", what, n, r->pos, r->size);
}

static bool add_expect(pl_ctx *ctx, wh_table *t, wh_kind kind, int64_t ne0, int64_t ne1, pl_mat *mat,
                       const float **vec, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 8, 9)))
#endif
    ;
static bool add_expect(pl_ctx *ctx, wh_table *t, wh_kind kind, int64_t ne0, int64_t ne1, pl_mat *mat,
                       const float **vec, const char *fmt, ...) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64, bytes;
        if (!pl_size_mul(cap, sizeof *t->e, &bytes)) return false;
        wh_expect *e = pl_realloc(ctx, t->e, bytes);
        if (!e) return false;
        t->e = e;
        t->cap = cap;
    }
    wh_expect *e = &t->e[t->n++];
    memset(e, 0, sizeof *e);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->name, sizeof e->name, fmt, ap);
    va_end(ap);
    e->kind = kind;
    e->ne0 = ne0;
    e->ne1 = ne1;
    e->mat = mat;
    e->vec = vec;
    return true;
}

#define ADD(kind, a, b, mat, vec, ...) \
    if (!add_expect(ctx, t, kind, a, b, mat, vec, __VA_ARGS__)) return false

static bool add_linear(pl_ctx *ctx, wh_table *t, wh_linear *l, int64_t n_in, int64_t n_out, bool bias,
                       const char *prefix) {
    ADD(WH_MAT, n_in, n_out, &l->w, NULL, "%s.weight", prefix);
    if (bias) ADD(WH_VEC, n_out, 0, NULL, &l->b, "%s.bias", prefix);
    return true;
}

static bool add_ln(pl_ctx *ctx, wh_table *t, wh_ln *ln, int64_t n, const char *prefix) {
    ADD(WH_VEC, n, 0, NULL, &ln->w, "%s.weight", prefix);
    ADD(WH_VEC, n, 0, NULL, &ln->b, "%s.bias", prefix);
    return true;
}

static bool add_attn(pl_ctx *ctx, wh_table *t, wh_attn *a, int64_t n, const char *prefix) {
    char p[64];
    snprintf(p, sizeof p, "%s.query", prefix);
    if (!add_linear(ctx, t, &a->q, n, n, true, p)) return false;
    snprintf(p, sizeof p, "%s.key", prefix);
    if (!add_linear(ctx, t, &a->k, n, n, false, p)) return false;
    snprintf(p, sizeof p, "%s.value", prefix);
    if (!add_linear(ctx, t, &a->v, n, n, true, p)) return false;
    snprintf(p, sizeof p, "%s.out", prefix);
    return add_linear(ctx, t, &a->o, n, n, true, p);
}

/* Every tensor the hparams call for, with its destination in the model. */
static bool build_table(pl_ctx *ctx, pl_whisper_model *m, wh_table *t) {
    const pl_whisper_hparams *h = &m->hp;
    const int64_t E = h->n_audio_state, D = h->n_text_state;
    char p[64];
    ADD(WH_POS, E, h->n_audio_ctx, NULL, &m->enc_pos, "encoder.positional_embedding");
    ADD(WH_CONV, h->n_mels, E, &m->conv1, NULL, "encoder.conv1.weight");
    ADD(WH_VEC, E, 0, NULL, &m->conv1_b, "encoder.conv1.bias");
    ADD(WH_CONV, E, E, &m->conv2, NULL, "encoder.conv2.weight");
    ADD(WH_VEC, E, 0, NULL, &m->conv2_b, "encoder.conv2.bias");
    for (int l = 0; l < h->n_audio_layer; l++) {
        wh_enc_layer *ly = &m->enc[l];
        snprintf(p, sizeof p, "encoder.blocks.%d.attn_ln", l);
        if (!add_ln(ctx, t, &ly->attn_ln, E, p)) return false;
        snprintf(p, sizeof p, "encoder.blocks.%d.attn", l);
        if (!add_attn(ctx, t, &ly->attn, E, p)) return false;
        snprintf(p, sizeof p, "encoder.blocks.%d.mlp_ln", l);
        if (!add_ln(ctx, t, &ly->mlp_ln, E, p)) return false;
        snprintf(p, sizeof p, "encoder.blocks.%d.mlp.0", l);
        if (!add_linear(ctx, t, &ly->mlp0, E, 4 * E, true, p)) return false;
        snprintf(p, sizeof p, "encoder.blocks.%d.mlp.2", l);
        if (!add_linear(ctx, t, &ly->mlp2, 4 * E, E, true, p)) return false;
    }
    if (!add_ln(ctx, t, &m->ln_post, E, "encoder.ln_post")) return false;
    ADD(WH_POS, D, h->n_text_ctx, NULL, &m->dec_pos, "decoder.positional_embedding");
    ADD(WH_MAT, D, h->n_vocab, &m->tok_emb, NULL, "decoder.token_embedding.weight");
    for (int l = 0; l < h->n_text_layer; l++) {
        wh_dec_layer *ly = &m->dec[l];
        snprintf(p, sizeof p, "decoder.blocks.%d.attn_ln", l);
        if (!add_ln(ctx, t, &ly->attn_ln, D, p)) return false;
        snprintf(p, sizeof p, "decoder.blocks.%d.attn", l);
        if (!add_attn(ctx, t, &ly->attn, D, p)) return false;
        snprintf(p, sizeof p, "decoder.blocks.%d.cross_attn_ln", l);
        if (!add_ln(ctx, t, &ly->cross_ln, D, p)) return false;
        snprintf(p, sizeof p, "decoder.blocks.%d.cross_attn", l);
        if (!add_attn(ctx, t, &ly->cross, D, p)) return false;
        snprintf(p, sizeof p, "decoder.blocks.%d.mlp_ln", l);
        if (!add_ln(ctx, t, &ly->mlp_ln, D, p)) return false;
        snprintf(p, sizeof p, "decoder.blocks.%d.mlp.0", l);
        if (!add_linear(ctx, t, &ly->mlp0, D, 4 * D, true, p)) return false;
        snprintf(p, sizeof p, "decoder.blocks.%d.mlp.2", l);
        if (!add_linear(ctx, t, &ly->mlp2, 4 * D, D, true, p)) return false;
    }
    return add_ln(ctx, t, &m->ln, D, "decoder.ln");
}
#undef ADD

pl_status wh_tensor_specs(pl_ctx *ctx, const pl_whisper_hparams *hp, wh_spec **out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (hp->n_audio_layer < 1 || hp->n_audio_layer > PL_WHISPER_MAX_LAYERS || hp->n_text_layer < 1 ||
        hp->n_text_layer > PL_WHISPER_MAX_LAYERS)
        return PL_ERR_INVALID_ARG;
    pl_whisper_model *dummy = pl_calloc(ctx, 1, sizeof *dummy);
    wh_table t = { 0 };
    if (!dummy) return PL_ERR_NOMEM;
    dummy->hp = *hp;
    pl_status st = PL_ERR_NOMEM;
    if (build_table(ctx, dummy, &t) && (*out = pl_calloc(ctx, t.n, sizeof **out))) {
        for (size_t i = 0; i < t.n; i++) {
            memcpy((*out)[i].name, t.e[i].name, sizeof t.e[i].name);
            (*out)[i].kind = t.e[i].kind;
            (*out)[i].ne0 = t.e[i].ne0;
            (*out)[i].ne1 = t.e[i].ne1;
        }
        *n = t.n;
        st = PL_OK;
    }
    pl_free(ctx, t.e);
    pl_free(ctx, dummy);
    return st;
}

/* ---- hyperparameters and specials ---- */

static pl_status check_hparams(rd *r, pl_whisper_hparams *h) {
    static const struct { const char *name; size_t off; int32_t lo, hi; } f[] = {
        { "n_vocab",       offsetof(pl_whisper_hparams, n_vocab),       51864, 51765 + 1 + N_LANGS },
        { "n_audio_ctx",   offsetof(pl_whisper_hparams, n_audio_ctx),   1, 4096 },
        { "n_audio_state", offsetof(pl_whisper_hparams, n_audio_state), 1, 8192 },
        { "n_audio_head",  offsetof(pl_whisper_hparams, n_audio_head),  1, 256 },
        { "n_audio_layer", offsetof(pl_whisper_hparams, n_audio_layer), 1, PL_WHISPER_MAX_LAYERS },
        { "n_text_ctx",    offsetof(pl_whisper_hparams, n_text_ctx),    4, 4096 },
        { "n_text_state",  offsetof(pl_whisper_hparams, n_text_state),  1, 8192 },
        { "n_text_head",   offsetof(pl_whisper_hparams, n_text_head),   1, 256 },
        { "n_text_layer",  offsetof(pl_whisper_hparams, n_text_layer),  1, PL_WHISPER_MAX_LAYERS },
        { "n_mels",        offsetof(pl_whisper_hparams, n_mels),        1, 256 },
        { "ftype",         offsetof(pl_whisper_hparams, ftype),         0, 1000 * 1000 },
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        int32_t v = 0;
        pl_status st = rd_i32(r, f[i].name, &v);
        if (st != PL_OK) return st;
        if (v < f[i].lo || v > f[i].hi)
            return rerr(r, PL_ERR_FORMAT, "hparam %s = %" PRId32 " outside %" PRId32 "..%" PRId32, f[i].name, v,
                        f[i].lo, f[i].hi);
        memcpy((char *)h + f[i].off, &v, sizeof v);
    }
    if (h->n_audio_state % h->n_audio_head != 0 || h->n_text_state % h->n_text_head != 0)
        return rerr(r, PL_ERR_FORMAT, "hparams: state %d/%d not a multiple of heads %d/%d", h->n_audio_state,
                    h->n_text_state, h->n_audio_head, h->n_text_head);
    if (h->n_audio_state != h->n_text_state)
        return rerr(r, PL_ERR_FORMAT, "hparams: n_audio_state %d != n_text_state %d (cross-attention needs "
                    "them equal)", h->n_audio_state, h->n_text_state);
    /* whisper.cpp stores quantization version * 1000 + ftype */
    if (!pl_ftype_name((uint32_t)(h->ftype % 1000)))
        return rerr(r, PL_ERR_FORMAT, "hparam ftype %d: unknown file type", h->ftype);
    return PL_OK;
}

static void set_specials(pl_whisper_model *m) {
    pl_whisper_specials *s = &m->sp;
    s->multilingual = m->hp.n_vocab >= 51865;
    s->n_languages = m->hp.n_vocab - 51765 - (s->multilingual ? 1 : 0);
    /* English-only files keep the base ids; multilingual ones move eot/sot up by one and
     * the task and later ids by the language count over 98 */
    int32_t d = s->multilingual ? 1 : 0, dt = s->multilingual ? s->n_languages - 98 : 0;
    s->eot = 50256 + d;
    s->sot = 50257 + d;
    s->translate = 50357 + dt;
    s->transcribe = 50358 + dt;
    s->solm = 50359 + dt;
    s->prev = 50360 + dt;
    s->nosp = 50361 + dt;
    s->not_ts = 50362 + dt;
    s->ts_begin = 50363 + dt;
}

/* ---- walk 1 ---- */

static pl_status read_filters(rd *r, pl_whisper_model *m, uint64_t *off) {
    int32_t n_mel, n_fft;
    pl_status st;
    if ((st = rd_i32(r, "mel filters n_mel", &n_mel)) != PL_OK) return st;
    if ((st = rd_i32(r, "mel filters n_fft", &n_fft)) != PL_OK) return st;
    if (n_mel != m->hp.n_mels)
        return rerr(r, PL_ERR_FORMAT, "mel filters: n_mel %" PRId32 " != hparam n_mels %d", n_mel, m->hp.n_mels);
    if (n_fft != PL_WHISPER_N_FFT_BINS)
        return rerr(r, PL_ERR_FORMAT, "mel filters: n_fft %" PRId32 " (expected %d bins of a 400-point FFT)", n_fft,
                    PL_WHISPER_N_FFT_BINS);
    uint64_t bytes = (uint64_t)n_mel * (uint64_t)n_fft * 4u; /* both small: no overflow */
    if ((st = need(r, bytes, "mel filters")) != PL_OK) return st;
    for (uint64_t i = 0; i < bytes; i += 4) {
        float v;
        memcpy(&v, r->p + r->pos + i, 4);
        if (!isfinite(v)) return rerr(r, PL_ERR_FORMAT, "mel filters: value %" PRIu64 " is not finite", i / 4);
    }
    *off = r->pos;
    r->pos += bytes;
    return PL_OK;
}

static pl_status read_vocab(rd *r, pl_whisper_model *m, uint64_t *off, uint64_t *bytes) {
    int32_t n;
    pl_status st = rd_i32(r, "vocab count", &n);
    if (st != PL_OK) return st;
    if (n < 256 || n > m->sp.sot)
        return rerr(r, PL_ERR_FORMAT, "vocab count %" PRId32 " outside 256..%d (the ids from "
                    "<|startoftranscript|> on are special)", n, m->sp.sot);
    *off = r->pos;
    for (int32_t i = 0; i < n; i++) {
        int32_t len;
        char w[48];
        snprintf(w, sizeof w, "vocab token %" PRId32 " length", i);
        if ((st = rd_i32(r, w, &len)) != PL_OK) return st;
        if (len < 0 || len > MAX_TOKLEN)
            return rerr(r, PL_ERR_FORMAT, "vocab token %" PRId32 " length %" PRId32 " outside 0..%d", i, len,
                        MAX_TOKLEN);
        snprintf(w, sizeof w, "vocab token %" PRId32, i);
        if ((st = need(r, (uint64_t)len, w)) != PL_OK) return st;
        r->pos += (uint64_t)len;
    }
    m->n_stored = n;
    *bytes = r->pos - *off;
    return PL_OK;
}

static void show_name(char *dst, size_t cap, const uint8_t *s, size_t len) {
    size_t o = 0;
    for (size_t i = 0; i < len && i < 64 && o + 1 < cap; i++)
        dst[o++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'') ? (char)s[i] : '?';
    dst[o] = '\0';
}

/* One tensor header + data; finds its row in the table and checks its shape. */
static pl_status read_tensor(rd *r, wh_table *t, int idx) {
    int32_t n_dims, name_len, type;
    char w[64];
    pl_status st;
    snprintf(w, sizeof w, "tensor %d n_dims", idx);
    if ((st = rd_i32(r, w, &n_dims)) != PL_OK) return st;
    snprintf(w, sizeof w, "tensor %d name length", idx);
    if ((st = rd_i32(r, w, &name_len)) != PL_OK) return st;
    snprintf(w, sizeof w, "tensor %d type", idx);
    if ((st = rd_i32(r, w, &type)) != PL_OK) return st;
    if (n_dims < 1 || n_dims > 3)
        return rerr(r, PL_ERR_FORMAT, "tensor %d: n_dims %" PRId32 " outside 1..3", idx, n_dims);
    if (name_len < 1 || name_len > MAX_NAME)
        return rerr(r, PL_ERR_FORMAT, "tensor %d: name length %" PRId32 " outside 1..%d", idx, name_len, MAX_NAME);
    int64_t ne[3] = { 1, 1, 1 };
    for (int d = 0; d < n_dims; d++) {
        int32_t v = 0;
        snprintf(w, sizeof w, "tensor %d dim %d", idx, d);
        if ((st = rd_i32(r, w, &v)) != PL_OK) return st;
        if (v < 1) return rerr(r, PL_ERR_FORMAT, "tensor %d: dim %d = %" PRId32 " (must be >= 1)", idx, d, v);
        ne[d] = v;
    }
    snprintf(w, sizeof w, "tensor %d name", idx);
    if ((st = need(r, (uint64_t)name_len, w)) != PL_OK) return st;
    const uint8_t *name = r->p + r->pos;
    r->pos += (uint64_t)name_len;
    char shown[80];
    show_name(shown, sizeof shown, name, (size_t)name_len);
    wh_expect *e = NULL;
    for (size_t i = 0; i < t->n && !e; i++)
        if (strlen(t->e[i].name) == (size_t)name_len && memcmp(t->e[i].name, name, (size_t)name_len) == 0)
            e = &t->e[i];
    if (!e) return rerr(r, PL_ERR_FORMAT, "tensor %d ('%s'): not a tensor of this model's hparams", idx, shown);
    if (e->seen) return rerr(r, PL_ERR_FORMAT, "tensor %d ('%s'): duplicate", idx, shown);
    const pl_type_info *ti = pl_type_get((uint32_t)type);
    if (type < 0 || !ti || !pl_type_sized((uint32_t)type) || !ti->to_f32)
        return rerr(r, PL_ERR_UNSUPPORTED, "tensor %d ('%s'): type %" PRId32 " (%s) is not supported", idx, shown,
                    type, pl_type_name((uint32_t)(type < 0 ? 9999 : type)));
    uint64_t bytes;
    st = pl_type_tensor_bytes((uint32_t)type, n_dims, ne, &bytes);
    if (st != PL_OK)
        return rerr(r, PL_ERR_FORMAT, "tensor %d ('%s'): dims %" PRId64 "x%" PRId64 "x%" PRId64 " do not fit type %s"
                    " (%s)", idx, shown, ne[0], ne[1], ne[2], ti->name, st == PL_ERR_OVERFLOW ? "size overflow"
                    : "row not a multiple of the block");
    snprintf(w, sizeof w, "tensor %d data", idx);
    if ((st = need(r, bytes, w)) != PL_OK) return st;
    bool ok;
    switch (e->kind) {
    case WH_MAT: ok = n_dims == 2 && ne[0] == e->ne0 && ne[1] == e->ne1; break;
    case WH_CONV: ok = n_dims == 3 && ne[0] == 3 && ne[1] == e->ne0 && ne[2] == e->ne1; break;
    case WH_POS: ok = n_dims == 2 && ne[0] == e->ne0 && ne[1] == e->ne1; break;
    default: ok = ne[0] * ne[1] * ne[2] == e->ne0 && (ne[0] == e->ne0 || ne[1] == e->ne0); break;
    }
    if (!ok) {
        if (e->kind == WH_VEC)
            return rerr(r, PL_ERR_FORMAT, "tensor %d ('%s'): shape %" PRId64 "x%" PRId64 "x%" PRId64 ", expected %"
                        PRId64 " values", idx, shown, ne[0], ne[1], ne[2], e->ne0);
        return rerr(r, PL_ERR_FORMAT, "tensor %d ('%s'): shape %" PRId64 "x%" PRId64 "x%" PRId64 " (%d dims), "
                    "expected %s%" PRId64 "x%" PRId64, idx, shown, ne[0], ne[1], ne[2], n_dims,
                    e->kind == WH_CONV ? "3x" : "", e->ne0, e->ne1);
    }
    if (e->kind == WH_MAT || e->kind == WH_CONV) {
        pl_mat tmp;
        int64_t k = e->kind == WH_CONV ? 3 * e->ne0 : e->ne0;
        if (pl_mat_init(&tmp, (uint32_t)type, k, e->ne1, NULL) != PL_OK)
            return rerr(r, PL_ERR_UNSUPPORTED, "tensor %d ('%s'): type %s has no matmul kernel", idx, shown,
                        ti->name);
    }
    e->seen = true;
    e->type = (uint32_t)type;
    e->off = r->pos;
    e->bytes = bytes;
    r->pos += bytes;
    return PL_OK;
}

/* ---- walk 2 ---- */

static pl_status build_vocab(pl_whisper_model *m, const uint8_t *voc, uint64_t voc_bytes) {
    pl_ctx *ctx = m->ctx;
    const pl_whisper_specials *s = &m->sp;
    const int32_t N = m->hp.n_vocab;
    /* one block: stored token bytes, then the names of the rest ("<|...|>", < 24 B each) */
    size_t names_cap = (size_t)voc_bytes + (size_t)(N - m->n_stored) * 24 + 1;
    m->names = pl_malloc(ctx, names_cap);
    m->tok = pl_calloc(ctx, (size_t)N, sizeof *m->tok);
    m->tok_len = pl_calloc(ctx, (size_t)N, sizeof *m->tok_len);
    uint32_t cap = 1;
    while (cap < 2u * (uint32_t)m->n_stored) cap <<= 1;
    m->hash = pl_malloc(ctx, (size_t)cap * sizeof *m->hash);
    if (!m->names || !m->tok || !m->tok_len || !m->hash) return PL_ERR_NOMEM;
    m->hash_cap = cap;
    memset(m->hash, 0xff, (size_t)cap * sizeof *m->hash);
    for (int i = 0; i < 256; i++) m->byte_tok[i] = -1;
    size_t o = 0, in = 0;
    for (int32_t i = 0; i < m->n_stored; i++) {
        uint32_t len = (uint32_t)voc[in] | (uint32_t)voc[in + 1] << 8 | (uint32_t)voc[in + 2] << 16 |
                       (uint32_t)voc[in + 3] << 24;
        in += 4;
        memcpy(m->names + o, voc + in, len);
        m->tok[i] = m->names + o;
        m->tok_len[i] = len;
        in += len;
        o += len;
        if (len == 1 && m->byte_tok[(uint8_t)m->tok[i][0]] < 0) m->byte_tok[(uint8_t)m->tok[i][0]] = i;
        /* FNV-1a; the first id of a duplicated text wins (lowest rank) */
        uint32_t hsh = 2166136261u;
        for (uint32_t j = 0; j < len; j++) hsh = (hsh ^ (uint8_t)m->tok[i][j]) * 16777619u;
        for (uint32_t p = hsh & (cap - 1);; p = (p + 1) & (cap - 1)) {
            int32_t id = m->hash[p];
            if (id < 0) {
                m->hash[p] = i;
                break;
            }
            if (m->tok_len[id] == len && memcmp(m->tok[id], m->tok[i], len) == 0) break;
        }
    }
    for (int32_t i = m->n_stored; i < N; i++) {
        char buf[32];
        if (i == s->eot) snprintf(buf, sizeof buf, "<|endoftext|>");
        else if (i == s->sot) snprintf(buf, sizeof buf, "<|startoftranscript|>");
        else if (i > s->sot && i <= s->sot + s->n_languages) snprintf(buf, sizeof buf, "<|%s|>", langs[i - s->sot - 1]);
        else if (i == s->translate) snprintf(buf, sizeof buf, "<|translate|>");
        else if (i == s->transcribe) snprintf(buf, sizeof buf, "<|transcribe|>");
        else if (i == s->solm) snprintf(buf, sizeof buf, "<|startoflm|>");
        else if (i == s->prev) snprintf(buf, sizeof buf, "<|startofprev|>");
        else if (i == s->nosp) snprintf(buf, sizeof buf, "<|nospeech|>");
        else if (i == s->not_ts) snprintf(buf, sizeof buf, "<|notimestamps|>");
        else if (i >= s->ts_begin) snprintf(buf, sizeof buf, "<|%.2f|>", (i - s->ts_begin) * PL_WHISPER_TS_STEP);
        else snprintf(buf, sizeof buf, "<|extra_%d|>", (int)i);
        size_t len = strlen(buf);
        memcpy(m->names + o, buf, len);
        m->tok[i] = m->names + o;
        m->tok_len[i] = (uint32_t)len;
        o += len;
    }
    return PL_OK;
}

static pl_status parse(pl_whisper_model *m, const uint8_t *data, size_t size, char *err, size_t err_cap) {
    pl_ctx *ctx = m->ctx;
    rd r = { .p = data, .size = size };
    wh_table t = { 0 };
    pl_status st;
    int32_t magic;
    uint64_t filt_off = 0, voc_off = 0, voc_bytes = 0;
    if ((st = rd_i32(&r, "magic", &magic)) != PL_OK) goto out;
    if ((uint32_t)magic != PL_WHISPER_MAGIC) {
        st = rerr(&r, PL_ERR_FORMAT, "bad magic 0x%08" PRIx32 " (expected 0x%08x, a whisper.cpp ggml file)",
                  (uint32_t)magic, PL_WHISPER_MAGIC);
        goto out;
    }
    if ((st = check_hparams(&r, &m->hp)) != PL_OK) goto out;
    set_specials(m);
    if ((st = read_filters(&r, m, &filt_off)) != PL_OK) goto out;
    if ((st = read_vocab(&r, m, &voc_off, &voc_bytes)) != PL_OK) goto out;
    if (!build_table(ctx, m, &t)) {
        st = rerr(&r, PL_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int idx = 0; r.pos < r.size; idx++)
        if ((st = read_tensor(&r, &t, idx)) != PL_OK) goto out;
    /* sizes of the copy buffer and the f32 area */
    size_t copy = 0, f32n = 0;
    for (size_t i = 0; i < t.n; i++) {
        wh_expect *e = &t.e[i];
        if (!e->seen) {
            st = rerr(&r, PL_ERR_FORMAT, "missing tensor '%s'", e->name);
            goto out;
        }
        e->slot = copy;
        if (!pl_size_add(copy, (size_t)e->bytes, &copy) || !pl_size_align_up(copy, ALIGN, &copy)) {
            st = rerr(&r, PL_ERR_OVERFLOW, "tensor sizes overflow");
            goto out;
        }
        e->f32_off = SIZE_MAX;
        if ((e->kind == WH_VEC || e->kind == WH_POS) && e->type != PL_TYPE_F32) {
            size_t n = (size_t)(e->kind == WH_VEC ? e->ne0 : e->ne0 * e->ne1);
            e->f32_off = f32n;
            f32n += n; /* bounded by the file size */
        }
    }
    /* walk 2: allocate and copy */
    m->f32_cap = f32n + 1;
    size_t bytes;
    if (!pl_size_add(copy, ALIGN, &bytes) || !(m->buf = pl_malloc(ctx, bytes)) ||
        !(m->filters = pl_malloc(ctx, (size_t)m->hp.n_mels * PL_WHISPER_N_FFT_BINS * sizeof(float)))) {
        st = rerr(&r, PL_ERR_NOMEM, "out of memory for %zu bytes of tensors", copy);
        goto out;
    }
    float *conv = pl_malloc(ctx, m->f32_cap * sizeof(float));
    if (!conv) {
        st = rerr(&r, PL_ERR_NOMEM, "out of memory");
        goto out;
    }
    uint8_t *buf = m->buf;
    uint8_t *aligned = buf + ((ALIGN - ((uintptr_t)buf % ALIGN)) % ALIGN);
    m->base = aligned;
    m->size = copy;
    m->vecs_owned = conv;
    memcpy(m->filters, data + filt_off, (size_t)m->hp.n_mels * PL_WHISPER_N_FFT_BINS * sizeof(float));
    for (size_t i = 0; i < t.n; i++) {
        wh_expect *e = &t.e[i];
        uint8_t *dst = aligned + e->slot;
        memcpy(dst, data + e->off, (size_t)e->bytes);
        if (e->kind == WH_MAT) {
            pl_mat_init(e->mat, e->type, e->ne0, e->ne1, dst);
        } else if (e->kind == WH_CONV) {
            pl_mat_init(e->mat, e->type, 3 * e->ne0, e->ne1, dst);
        } else if (e->f32_off == SIZE_MAX) {
            *e->vec = (const float *)dst;
        } else {
            size_t n = (size_t)(e->kind == WH_VEC ? e->ne0 : e->ne0 * e->ne1);
            pl_type_to_f32(e->type, dst, conv + e->f32_off, (int64_t)n);
            *e->vec = conv + e->f32_off;
        }
    }
    m->wtype = m->enc[0].attn.q.w.type;
    if ((st = build_vocab(m, data + voc_off, voc_bytes)) != PL_OK) rerr(&r, st, "out of memory for the vocabulary");
out:
    if (st != PL_OK) snprintf(err, err_cap, "%s", r.err);
    pl_free(ctx, t.e);
    return st;
}

void pl_whisper_model_free(pl_whisper_model *m) {
    if (!m) return;
    pl_ctx *ctx = m->ctx;
    pl_free(ctx, m->buf);
    pl_free(ctx, m->vecs_owned);
    pl_free(ctx, m->filters);
    pl_free(ctx, m->tok);
    pl_free(ctx, m->tok_len);
    pl_free(ctx, m->names);
    pl_free(ctx, m->hash);
    pl_free(ctx, m);
}

static pl_status load(pl_ctx *ctx, const char *what, const void *data, size_t size, pl_whisper_model **out) {
    pl_whisper_model *m = pl_calloc(ctx, 1, sizeof *m);
    if (!m) return pl_ctx_err(ctx, PL_ERR_NOMEM, "whisper: %s: out of memory", what);
    m->ctx = ctx;
    char err[320] = "";
    pl_status st = parse(m, data, size, err, sizeof err);
    if (st != PL_OK) {
        pl_whisper_model_free(m);
        return pl_ctx_err(ctx, st, "whisper: %s: %s", what, err[0] ? err : pl_status_str(st));
    }
    *out = m;
    return PL_OK;
}

pl_status pl_whisper_model_load_mem(pl_ctx *ctx, const void *data, size_t size, pl_whisper_model **out) {
    if (!out) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "whisper: out is NULL");
    *out = NULL;
    if (!data && size) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "whisper: data is NULL");
    return load(ctx, "memory", size ? data : "", size, out);
}

pl_status pl_whisper_model_load(pl_ctx *ctx, const char *path, pl_whisper_model **out) {
    if (!out || !path) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "whisper: path or out is NULL");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return pl_ctx_err(ctx, PL_ERR_IO, "whisper: %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return pl_ctx_err(ctx, PL_ERR_IO, "whisper: %s: not a regular file", path);
    }
    if (sb.st_size == 0) {
        close(fd);
        return pl_ctx_err(ctx, PL_ERR_FORMAT, "whisper: %s: empty file", path);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return pl_ctx_err(ctx, PL_ERR_OVERFLOW, "whisper: %s: too large", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return pl_ctx_err(ctx, PL_ERR_IO, "whisper: %s: mmap: %s", path, strerror(errno));
    (void)madvise(map, size, MADV_SEQUENTIAL);
    pl_status st = load(ctx, path, map, size, out);
    munmap(map, size);
    return st;
}

const pl_whisper_hparams *pl_whisper_model_hparams(const pl_whisper_model *m) { return m ? &m->hp : NULL; }
const pl_whisper_specials *pl_whisper_model_specials(const pl_whisper_model *m) { return m ? &m->sp : NULL; }

const char *pl_whisper_token_text(const pl_whisper_model *m, int32_t id, size_t *len) {
    if (!m || id < 0 || id >= m->hp.n_vocab) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = m->tok_len[id];
    return m->tok[id];
}

const char *pl_whisper_model_type_name(const pl_whisper_model *m) { return m ? pl_type_name(m->wtype) : "?"; }

/* ---- tokenizer: byte-level BPE with id = merge rank ---- */

static int32_t find_tok(const pl_whisper_model *m, const char *s, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t j = 0; j < len; j++) h = (h ^ (uint8_t)s[j]) * 16777619u;
    for (uint32_t p = h & (m->hash_cap - 1);; p = (p + 1) & (m->hash_cap - 1)) {
        int32_t id = m->hash[p];
        if (id < 0) return -1;
        if (m->tok_len[id] == len && memcmp(m->tok[id], s, len) == 0) return id;
    }
}

static bool is_alpha(unsigned char c) { return (c | 0x20) - 'a' < 26 || c >= 0x80; }
static bool is_digit(unsigned char c) { return c - '0' < 10; }
static bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* GPT-2's pre-split, simplified to ASCII classes (non-ASCII bytes count as
 * letters): contractions, ' ?letters', ' ?digits', ' ?other', spaces. */
static size_t next_piece(const char *s, size_t n, size_t i) {
    static const char *const contr[] = { "'s", "'t", "'re", "'ve", "'m", "'ll", "'d" };
    for (size_t c = 0; c < sizeof contr / sizeof contr[0]; c++) {
        size_t l = strlen(contr[c]);
        if (i + l <= n && memcmp(s + i, contr[c], l) == 0) return i + l;
    }
    size_t j = i;
    if (s[j] == ' ' && j + 1 < n && !is_space((unsigned char)s[j + 1])) j++;
    unsigned char c = (unsigned char)s[j];
    if (is_alpha(c)) {
        while (j < n && is_alpha((unsigned char)s[j])) j++;
    } else if (is_digit(c)) {
        while (j < n && is_digit((unsigned char)s[j])) j++;
    } else if (!is_space(c)) {
        while (j < n && !is_space((unsigned char)s[j]) && !is_alpha((unsigned char)s[j]) &&
               !is_digit((unsigned char)s[j]))
            j++;
    } else {
        while (j < n && is_space((unsigned char)s[j])) j++;
        /* leave the last space to the next word */
        if (j < n && j - i > 1) j--;
    }
    return j > i ? j : i + 1;
}

pl_status pl_whisper_tokenize(const pl_whisper_model *m, const char *text, int32_t *ids, size_t cap, size_t *n_out) {
    if (!m || !text || !n_out || (!ids && cap)) return PL_ERR_INVALID_ARG;
    size_t n = strlen(text), total = 0;
    enum { MAXP = 256 };
    for (size_t i = 0; i < n;) {
        size_t e = next_piece(text, n, i), len = e - i;
        /* pieces longer than MAXP bytes are split (rare: long runs of symbols) */
        if (len > MAXP) {
            len = MAXP;
            e = i + len;
        }
        size_t start[MAXP + 1], plen[MAXP];
        size_t np = 0;
        for (size_t k = 0; k < len; k++) {
            start[np] = i + k;
            plen[np++] = 1;
        }
        for (;;) { /* merge the adjacent pair whose joined text has the lowest id */
            int32_t best = -1;
            size_t bi = 0;
            for (size_t k = 0; k + 1 < np; k++) {
                int32_t id = find_tok(m, text + start[k], plen[k] + plen[k + 1]);
                if (id >= 0 && (best < 0 || id < best)) {
                    best = id;
                    bi = k;
                }
            }
            if (best < 0) break;
            plen[bi] += plen[bi + 1];
            memmove(start + bi + 1, start + bi + 2, (np - bi - 2) * sizeof *start);
            memmove(plen + bi + 1, plen + bi + 2, (np - bi - 2) * sizeof *plen);
            np--;
        }
        for (size_t k = 0; k < np; k++) {
            int32_t id = find_tok(m, text + start[k], plen[k]);
            if (id < 0) id = m->byte_tok[(unsigned char)text[start[k]]]; /* plen is 1 here */
            if (id < 0) continue; /* a byte the vocabulary lacks */
            if (total < cap) ids[total] = id;
            total++;
        }
        i = e;
    }
    *n_out = total;
    return total <= cap ? PL_OK : PL_ERR_RANGE;
}
