/*
 * ref_whisper.c - tests only: the reference. Every value is f32/double, every
 * op a plain loop (O(n^3) matmuls, O(T^2) attention recomputed per step), GELU
 * with erf, LayerNorm eps 1e-5, attention softmax(q k^T / sqrt(hd)) v.
 * Weights are read by name with an independent walk of the file.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/tensor.h"
#include "whisper/ref_whisper.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation" /* names are short; snprintf cuts safely */
#endif

static int32_t rd32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

int ref_file_walk(const uint8_t *p, size_t size, ref_file *f) {
    memset(f, 0, sizeof *f);
    f->p = p;
    f->size = size;
    size_t o = 4;
    for (int i = 0; i < 11; i++, o += 4) f->hp[i] = rd32(p + o);
    f->filt_off = o;
    int32_t nm = rd32(p + o), nf = rd32(p + o + 4);
    o += 8 + (size_t)nm * (size_t)nf * 4;
    f->vocab_off = o;
    f->n_vocab_stored = rd32(p + o);
    o += 4;
    for (int32_t i = 0; i < f->n_vocab_stored; i++) o += 4 + (size_t)rd32(p + o);
    f->tensors_off = o;
    size_t cap = 0;
    while (o < size) {
        if (f->n_t == cap) {
            cap = cap ? 2 * cap : 256;
            f->t = realloc(f->t, cap * sizeof *f->t);
        }
        ref_tensor *t = &f->t[f->n_t++];
        memset(t, 0, sizeof *t);
        t->hdr_off = o;
        t->n_dims = rd32(p + o);
        int32_t nl = rd32(p + o + 4);
        t->type = rd32(p + o + 8);
        o += 12;
        int64_t ne[3] = { 1, 1, 1 };
        for (int d = 0; d < t->n_dims; d++, o += 4) ne[d] = t->ne[d] = rd32(p + o);
        for (int d = t->n_dims; d < 3; d++) t->ne[d] = 1;
        memcpy(t->name, p + o, (size_t)nl);
        t->name[nl] = '\0';
        o += (size_t)nl;
        uint64_t bytes;
        if (pl_type_tensor_bytes((uint32_t)t->type, t->n_dims, ne, &bytes) != PL_OK) return -1;
        t->data_off = o;
        t->data_bytes = (size_t)bytes;
        o += (size_t)bytes;
    }
    return o == size ? 0 : -1;
}

void ref_file_free(ref_file *f) { free(f->t); }

float *ref_tensor_f32(const ref_file *f, const char *name, size_t *n) {
    for (size_t i = 0; i < f->n_t; i++) {
        const ref_tensor *t = &f->t[i];
        if (strcmp(t->name, name) != 0) continue;
        size_t cnt = (size_t)t->ne[0] * (size_t)t->ne[1] * (size_t)t->ne[2];
        void *raw = malloc(t->data_bytes);
        float *out = malloc(cnt * sizeof *out);
        memcpy(raw, f->p + t->data_off, t->data_bytes);
        pl_type_to_f32((uint32_t)t->type, raw, out, (int64_t)cnt);
        free(raw);
        if (n) *n = cnt;
        return out;
    }
    return NULL;
}

/* ---- model ---- */

typedef struct lin { float *w, *b; int n_in, n_out; } lin; /* w [n_out][n_in] */
typedef struct ln { float *w, *b; } ln;
typedef struct attn { lin q, k, v, o; } attn;
typedef struct blk { ln a_ln, c_ln, m_ln; attn a, c; lin m0, m2; } blk;

struct ref_model {
    int32_t hp[11];
    int E, H, NM, V, C, LE, LD;
    float *conv1_w, *conv1_b, *conv2_w, *conv2_b, *epos, *dpos, *tok;
    ln ln_post, ln_dec;
    blk enc[64], dec[64];
};

static float *get(const ref_file *f, const char *fmt, int l) {
    char name[128];
    snprintf(name, sizeof name, fmt, l);
    float *v = ref_tensor_f32(f, name, NULL);
    if (!v) fprintf(stderr, "ref: missing %s\n", name);
    return v;
}

static lin get_lin(const ref_file *f, const char *pre, int l, int n_in, int n_out, int bias) {
    char w[128], b[128];
    snprintf(w, sizeof w, "%s.weight", pre);
    snprintf(b, sizeof b, "%s.bias", pre);
    lin r = { .w = get(f, w, l), .b = bias ? get(f, b, l) : NULL, .n_in = n_in, .n_out = n_out };
    return r;
}

static ln get_ln(const ref_file *f, const char *pre, int l) {
    char w[128], b[128];
    snprintf(w, sizeof w, "%s.weight", pre);
    snprintf(b, sizeof b, "%s.bias", pre);
    return (ln){ get(f, w, l), get(f, b, l) };
}

static attn get_attn(const ref_file *f, const char *pre, int l, int E) {
    char q[128], k[128], v[128], o[128];
    snprintf(q, sizeof q, "%s.query", pre);
    snprintf(k, sizeof k, "%s.key", pre);
    snprintf(v, sizeof v, "%s.value", pre);
    snprintf(o, sizeof o, "%s.out", pre);
    return (attn){ get_lin(f, q, l, E, E, 1), get_lin(f, k, l, E, E, 0), get_lin(f, v, l, E, E, 1),
                   get_lin(f, o, l, E, E, 1) };
}

ref_model *ref_model_load(const ref_file *f) {
    ref_model *m = calloc(1, sizeof *m);
    memcpy(m->hp, f->hp, sizeof m->hp);
    m->V = f->hp[0];
    m->E = f->hp[2];
    m->H = f->hp[3];
    m->LE = f->hp[4];
    m->C = f->hp[5];
    m->LD = f->hp[8];
    m->NM = f->hp[9];
    int E = m->E;
    m->conv1_w = get(f, "encoder.conv1.weight", 0);
    m->conv1_b = get(f, "encoder.conv1.bias", 0);
    m->conv2_w = get(f, "encoder.conv2.weight", 0);
    m->conv2_b = get(f, "encoder.conv2.bias", 0);
    m->epos = get(f, "encoder.positional_embedding", 0);
    m->dpos = get(f, "decoder.positional_embedding", 0);
    m->tok = get(f, "decoder.token_embedding.weight", 0);
    m->ln_post = get_ln(f, "encoder.ln_post", 0);
    m->ln_dec = get_ln(f, "decoder.ln", 0);
    for (int l = 0; l < m->LE; l++) {
        blk *b = &m->enc[l];
        b->a_ln = get_ln(f, "encoder.blocks.%d.attn_ln", l);
        b->a = get_attn(f, "encoder.blocks.%d.attn", l, E);
        b->m_ln = get_ln(f, "encoder.blocks.%d.mlp_ln", l);
        b->m0 = get_lin(f, "encoder.blocks.%d.mlp.0", l, E, 4 * E, 1);
        b->m2 = get_lin(f, "encoder.blocks.%d.mlp.2", l, 4 * E, E, 1);
    }
    for (int l = 0; l < m->LD; l++) {
        blk *b = &m->dec[l];
        b->a_ln = get_ln(f, "decoder.blocks.%d.attn_ln", l);
        b->a = get_attn(f, "decoder.blocks.%d.attn", l, E);
        b->c_ln = get_ln(f, "decoder.blocks.%d.cross_attn_ln", l);
        b->c = get_attn(f, "decoder.blocks.%d.cross_attn", l, E);
        b->m_ln = get_ln(f, "decoder.blocks.%d.mlp_ln", l);
        b->m0 = get_lin(f, "decoder.blocks.%d.mlp.0", l, E, 4 * E, 1);
        b->m2 = get_lin(f, "decoder.blocks.%d.mlp.2", l, 4 * E, E, 1);
    }
    return m;
}

static void free_lin(lin *l) { free(l->w); free(l->b); }
static void free_ln(ln *l) { free(l->w); free(l->b); }
static void free_attn(attn *a) { free_lin(&a->q); free_lin(&a->k); free_lin(&a->v); free_lin(&a->o); }

void ref_model_free(ref_model *m) {
    if (!m) return;
    free(m->conv1_w); free(m->conv1_b); free(m->conv2_w); free(m->conv2_b);
    free(m->epos); free(m->dpos); free(m->tok);
    free_ln(&m->ln_post); free_ln(&m->ln_dec);
    for (int l = 0; l < m->LE; l++) {
        blk *b = &m->enc[l];
        free_ln(&b->a_ln); free_ln(&b->m_ln); free_attn(&b->a); free_lin(&b->m0); free_lin(&b->m2);
    }
    for (int l = 0; l < m->LD; l++) {
        blk *b = &m->dec[l];
        free_ln(&b->a_ln); free_ln(&b->c_ln); free_ln(&b->m_ln); free_attn(&b->a); free_attn(&b->c);
        free_lin(&b->m0); free_lin(&b->m2);
    }
    free(m);
}

/* y[t][o] = sum_i W[o][i] x[t][i] + b[o] */
static void ref_lin(const lin *l, const float *x, int n, float *y) {
    for (int t = 0; t < n; t++)
        for (int o = 0; o < l->n_out; o++) {
            double s = l->b ? l->b[o] : 0.0;
            for (int i = 0; i < l->n_in; i++) s += (double)l->w[(size_t)o * l->n_in + i] * x[(size_t)t * l->n_in + i];
            y[(size_t)t * l->n_out + o] = (float)s;
        }
}

static void ref_ln(const ln *l, const float *x, int n, int E, float *y) {
    for (int t = 0; t < n; t++) {
        double mu = 0, var = 0;
        for (int i = 0; i < E; i++) mu += x[t * E + i];
        mu /= E;
        for (int i = 0; i < E; i++) var += (x[t * E + i] - mu) * (x[t * E + i] - mu);
        var /= E;
        for (int i = 0; i < E; i++)
            y[t * E + i] = (float)((x[t * E + i] - mu) / sqrt(var + 1e-5) * l->w[i] + l->b[i]);
    }
}

static float ref_gelu(float x) { return (float)(0.5 * x * (1.0 + erf(x / sqrt(2.0)))); }

/* out[t] = softmax_p(q[t] . k[p] / sqrt(hd), p < n_k(t)) v[p], per head; causal: n_k(t) = t + 1 */
static void ref_attn(const float *q, const float *k, const float *v, int nq, int nk, int E, int H, int causal,
                     float *out) {
    int hd = E / H;
    double *s = malloc((size_t)nk * sizeof *s);
    for (int t = 0; t < nq; t++)
        for (int h = 0; h < H; h++) {
            int n = causal ? t + 1 : nk;
            double mx = -1e300, sum = 0;
            for (int p = 0; p < n; p++) {
                double d = 0;
                for (int i = 0; i < hd; i++) d += (double)q[t * E + h * hd + i] * k[p * E + h * hd + i];
                s[p] = d / sqrt((double)hd);
                if (s[p] > mx) mx = s[p];
            }
            for (int p = 0; p < n; p++) sum += (s[p] = exp(s[p] - mx));
            for (int i = 0; i < hd; i++) {
                double o = 0;
                for (int p = 0; p < n; p++) o += s[p] / sum * v[p * E + h * hd + i];
                out[t * E + h * hd + i] = (float)o;
            }
        }
    free(s);
}

static void block(const ref_model *m, const blk *b, float *x, int n, const float *enc, int T, int causal) {
    const int E = m->E;
    size_t sz = (size_t)n * E * sizeof(float);
    float *h = malloc(sz), *q = malloc(sz), *k = malloc(sz), *v = malloc(sz), *a = malloc(sz), *o = malloc(sz);
    float *f = malloc(sz * 4);
    ref_ln(&b->a_ln, x, n, E, h);
    ref_lin(&b->a.q, h, n, q);
    ref_lin(&b->a.k, h, n, k);
    ref_lin(&b->a.v, h, n, v);
    ref_attn(q, k, v, n, n, E, m->H, causal, a);
    ref_lin(&b->a.o, a, n, o);
    for (size_t i = 0; i < (size_t)n * E; i++) x[i] += o[i];
    if (enc) {
        float *ck = malloc((size_t)T * E * sizeof(float)), *cv = malloc((size_t)T * E * sizeof(float));
        ref_ln(&b->c_ln, x, n, E, h);
        ref_lin(&b->c.q, h, n, q);
        ref_lin(&b->c.k, enc, T, ck);
        ref_lin(&b->c.v, enc, T, cv);
        ref_attn(q, ck, cv, n, T, E, m->H, 0, a);
        ref_lin(&b->c.o, a, n, o);
        for (size_t i = 0; i < (size_t)n * E; i++) x[i] += o[i];
        free(ck);
        free(cv);
    }
    ref_ln(&b->m_ln, x, n, E, h);
    ref_lin(&b->m0, h, n, f);
    for (size_t i = 0; i < (size_t)n * 4 * E; i++) f[i] = ref_gelu(f[i]);
    ref_lin(&b->m2, f, n, o);
    for (size_t i = 0; i < (size_t)n * E; i++) x[i] += o[i];
    free(h); free(q); free(k); free(v); free(a); free(o); free(f);
}

void ref_encode(const ref_model *m, const float *mel, int T, float *out) {
    const int E = m->E, NM = m->NM, F = 2 * T;
    float *h1 = malloc((size_t)F * E * sizeof(float)), *x = malloc((size_t)T * E * sizeof(float));
    /* conv1d(k=3, pad=1): y[t][o] = b[o] + sum_c sum_j W[o][c][j] in[c][t + j - 1]; W is [n_out][n_in][3] */
    for (int t = 0; t < F; t++)
        for (int o = 0; o < E; o++) {
            double s = m->conv1_b[o];
            for (int c = 0; c < NM; c++)
                for (int j = 0; j < 3; j++) {
                    int src = t + j - 1;
                    if (src >= 0 && src < F) s += (double)m->conv1_w[((size_t)o * NM + c) * 3 + j] * mel[c * F + src];
                }
            h1[t * E + o] = ref_gelu((float)s);
        }
    for (int t = 0; t < T; t++)
        for (int o = 0; o < E; o++) {
            double s = m->conv2_b[o];
            for (int c = 0; c < E; c++)
                for (int j = 0; j < 3; j++) {
                    int src = 2 * t + j - 1;
                    if (src >= 0 && src < F) s += (double)m->conv2_w[((size_t)o * E + c) * 3 + j] * h1[src * E + c];
                }
            x[t * E + o] = ref_gelu((float)s) + m->epos[t * E + o];
        }
    for (int l = 0; l < m->LE; l++) block(m, &m->enc[l], x, T, NULL, 0, 0);
    ref_ln(&m->ln_post, x, T, E, out);
    free(h1);
    free(x);
}

void ref_decode(const ref_model *m, const float *enc, int T, const int32_t *tokens, int n, float *logits) {
    const int E = m->E;
    float *x = malloc((size_t)n * E * sizeof(float)), *y = malloc((size_t)E * sizeof(float));
    for (int t = 0; t < n; t++)
        for (int i = 0; i < E; i++) x[t * E + i] = m->tok[(size_t)tokens[t] * E + i] + m->dpos[t * E + i];
    for (int l = 0; l < m->LD; l++) block(m, &m->dec[l], x, n, enc, T, 1);
    ref_ln(&m->ln_dec, x + (size_t)(n - 1) * E, 1, E, y);
    for (int v = 0; v < m->V; v++) {
        double s = 0;
        for (int i = 0; i < E; i++) s += (double)m->tok[(size_t)v * E + i] * y[i];
        logits[v] = (float)s;
    }
    free(x);
    free(y);
}
