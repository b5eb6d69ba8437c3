/*
 * ref_model.c - the naive reference forward pass the engine is checked against.
 *
 * Written separately from src/model: it reads the GGUF metadata itself, dequantizes
 * every weight to f32 up front (the type table's to_f32), and runs one token at a
 * time with plain loops and double accumulators. Architecture differences are
 * spelled out by name here rather than taken from the engine's table.
 */
#include "ref_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/tensor.h"

typedef struct ref_mat {
    float   *w;      /* [rows][k] */
    int64_t  k, rows;
    uint32_t type;   /* the file's type (emulation rounds activations to its vec_dot_type) */
} ref_mat;

typedef struct ref_layer {
    float  *attn_norm, *ffn_norm, *bq, *bk, *bv, *qn, *kn;
    ref_mat q, k, v, o, gate, up, down;
} ref_layer;

struct ref_model {
    char       arch[32];
    int        E, L, H, HKV, HD, HDV, F, V, n_rot, n_ctx;
    float      eps, base;
    bool       emulate, neox;
    float     *rope_freqs; /* [n_rot/2] or NULL */
    float      freq_scale;
    ref_mat    tok_embd, output;
    float     *out_norm;
    ref_layer *layers;
    float     *kc, *vc;    /* [L][n_ctx][HKV*HD], [L][n_ctx][HKV*HDV] */
    int        n_past;
    /* scratch */
    float     *x, *h, *q, *k, *v, *att, *g, *u, *tmp, *sc;
    float     *rt_in;      /* round-trip scratch */
    uint8_t   *rt_buf;
};

static float *dequant_tensor(const pl_gguf *g, const char *name, int64_t *ne0, int64_t *ne1, uint32_t *type) {
    int64_t i = pl_gguf_find_tensor(g, name);
    if (i < 0) return NULL;
    pl_gguf_tensor t;
    if (pl_gguf_tensor_at(g, i, &t) != PL_OK) return NULL;
    int64_t n = t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3];
    float *w = malloc((size_t)n * sizeof(float));
    if (!w || pl_type_to_f32(t.type, t.data, w, n) != PL_OK) {
        free(w);
        return NULL;
    }
    if (ne0) *ne0 = t.ne[0];
    if (ne1) *ne1 = t.ne[1];
    if (type) *type = t.type;
    return w;
}

static bool load_mat(const pl_gguf *g, const char *name, ref_mat *m) {
    m->w = dequant_tensor(g, name, &m->k, &m->rows, &m->type);
    return m->w != NULL;
}

/* Split rows [r0, r0+n) of a fused matrix into their own matrix (same type). */
static ref_mat sub_rows(const ref_mat *m, int64_t r0, int64_t n) {
    ref_mat s = { .k = m->k, .rows = n, .type = m->type };
    s.w = malloc((size_t)(n * m->k) * sizeof(float));
    memcpy(s.w, m->w + r0 * m->k, (size_t)(n * m->k) * sizeof(float));
    return s;
}

static uint32_t get_u32(const pl_gguf *g, const char *arch, const char *suffix, uint32_t def) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, suffix);
    uint32_t v;
    return pl_gguf_get_u32(g, k, &v) == PL_OK ? v : def;
}

static float get_f32(const pl_gguf *g, const char *arch, const char *suffix, float def) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", arch, suffix);
    float v;
    return pl_gguf_get_f32(g, k, &v) == PL_OK ? v : def;
}

ref_model *ref_model_init(const pl_gguf *g, int32_t n_ctx, bool emulate) {
    ref_model *r = calloc(1, sizeof *r);
    pl_str a;
    if (pl_gguf_get_str(g, "general.architecture", &a) != PL_OK || a.len >= sizeof r->arch) goto fail;
    memcpy(r->arch, a.ptr, a.len);
    r->emulate = emulate;
    r->neox = strcmp(r->arch, "llama") != 0; /* qwen2, qwen3, phi3: split-half pairs */
    r->E = (int)get_u32(g, r->arch, "embedding_length", 0);
    r->L = (int)get_u32(g, r->arch, "block_count", 0);
    r->H = (int)get_u32(g, r->arch, "attention.head_count", 0);
    r->HKV = (int)get_u32(g, r->arch, "attention.head_count_kv", (uint32_t)r->H);
    r->F = (int)get_u32(g, r->arch, "feed_forward_length", 0);
    r->HD = (int)get_u32(g, r->arch, "attention.key_length", (uint32_t)(r->E / r->H));
    r->HDV = (int)get_u32(g, r->arch, "attention.value_length", (uint32_t)(r->E / r->H));
    r->n_rot = (int)get_u32(g, r->arch, "rope.dimension_count", (uint32_t)r->HD);
    r->eps = get_f32(g, r->arch, "attention.layer_norm_rms_epsilon", 0);
    r->base = get_f32(g, r->arch, "rope.freq_base", 10000.0f);
    float factor = get_f32(g, r->arch, "rope.scaling.factor", 1.0f);
    r->freq_scale = factor > 0 ? 1.0f / factor : 1.0f;
    r->n_ctx = n_ctx;
    if (!load_mat(g, "token_embd.weight", &r->tok_embd)) goto fail;
    r->V = (int)r->tok_embd.rows;
    r->out_norm = dequant_tensor(g, "output_norm.weight", NULL, NULL, NULL);
    if (!load_mat(g, "output.weight", &r->output)) r->output = r->tok_embd; /* tied */
    r->rope_freqs = dequant_tensor(g, "rope_freqs.weight", NULL, NULL, NULL);
    r->layers = calloc((size_t)r->L, sizeof *r->layers);
    char nm[96];
    bool phi3 = strcmp(r->arch, "phi3") == 0;
    for (int l = 0; l < r->L; l++) {
        ref_layer *y = &r->layers[l];
#define N(s) (snprintf(nm, sizeof nm, "blk.%d." s, l), nm)
        y->attn_norm = dequant_tensor(g, N("attn_norm.weight"), NULL, NULL, NULL);
        y->ffn_norm = dequant_tensor(g, N("ffn_norm.weight"), NULL, NULL, NULL);
        if (phi3) {
            ref_mat qkv, gu;
            if (!load_mat(g, N("attn_qkv.weight"), &qkv) || !load_mat(g, N("ffn_up.weight"), &gu)) goto fail;
            y->q = sub_rows(&qkv, 0, r->H * r->HD);
            y->k = sub_rows(&qkv, r->H * r->HD, r->HKV * r->HD);
            y->v = sub_rows(&qkv, r->H * r->HD + r->HKV * r->HD, r->HKV * r->HDV);
            y->gate = sub_rows(&gu, 0, r->F);
            y->up = sub_rows(&gu, r->F, r->F);
            free(qkv.w);
            free(gu.w);
        } else {
            if (!load_mat(g, N("attn_q.weight"), &y->q) || !load_mat(g, N("attn_k.weight"), &y->k) ||
                !load_mat(g, N("attn_v.weight"), &y->v) || !load_mat(g, N("ffn_gate.weight"), &y->gate) ||
                !load_mat(g, N("ffn_up.weight"), &y->up))
                goto fail;
        }
        if (!load_mat(g, N("attn_output.weight"), &y->o) || !load_mat(g, N("ffn_down.weight"), &y->down)) goto fail;
        if (strcmp(r->arch, "qwen2") == 0) {
            y->bq = dequant_tensor(g, N("attn_q.bias"), NULL, NULL, NULL);
            y->bk = dequant_tensor(g, N("attn_k.bias"), NULL, NULL, NULL);
            y->bv = dequant_tensor(g, N("attn_v.bias"), NULL, NULL, NULL);
        }
        if (strcmp(r->arch, "qwen3") == 0) {
            y->qn = dequant_tensor(g, N("attn_q_norm.weight"), NULL, NULL, NULL);
            y->kn = dequant_tensor(g, N("attn_k_norm.weight"), NULL, NULL, NULL);
        }
#undef N
    }
    size_t kvd = (size_t)r->HKV * (size_t)r->HD, vvd = (size_t)r->HKV * (size_t)r->HDV;
    r->kc = calloc((size_t)r->L * (size_t)n_ctx * kvd, sizeof(float));
    r->vc = calloc((size_t)r->L * (size_t)n_ctx * vvd, sizeof(float));
    size_t big = (size_t)(r->E > r->F ? r->E : r->F) + (size_t)r->H * (size_t)(r->HD > r->HDV ? r->HD : r->HDV);
    r->x = calloc((size_t)r->E, sizeof(float));
    r->h = calloc((size_t)r->E, sizeof(float));
    r->tmp = calloc(big + (size_t)r->V, sizeof(float));
    r->q = calloc((size_t)r->H * (size_t)r->HD, sizeof(float));
    r->k = calloc(kvd, sizeof(float));
    r->v = calloc(vvd, sizeof(float));
    r->att = calloc((size_t)r->H * (size_t)r->HDV, sizeof(float));
    r->g = calloc((size_t)r->F, sizeof(float));
    r->u = calloc((size_t)r->F, sizeof(float));
    r->sc = calloc((size_t)n_ctx, sizeof(float));
    r->rt_in = calloc(big, sizeof(float));
    r->rt_buf = calloc(big * 4 + 1024, 1);
    return r;
fail:
    ref_model_free(r);
    return NULL;
}

static void free_mat(ref_mat *m) { free(m->w); }

void ref_model_free(ref_model *r) {
    if (!r) return;
    if (r->output.w != r->tok_embd.w) free_mat(&r->output);
    free_mat(&r->tok_embd);
    for (int l = 0; r->layers && l < r->L; l++) {
        ref_layer *y = &r->layers[l];
        free(y->attn_norm); free(y->ffn_norm); free(y->bq); free(y->bk); free(y->bv); free(y->qn); free(y->kn);
        free_mat(&y->q); free_mat(&y->k); free_mat(&y->v); free_mat(&y->o);
        free_mat(&y->gate); free_mat(&y->up); free_mat(&y->down);
    }
    free(r->layers);
    free(r->out_norm); free(r->rope_freqs);
    free(r->kc); free(r->vc);
    free(r->x); free(r->h); free(r->tmp); free(r->q); free(r->k); free(r->v); free(r->att);
    free(r->g); free(r->u); free(r->sc); free(r->rt_in); free(r->rt_buf);
    free(r);
}

int32_t ref_model_n_vocab(const ref_model *r) { return r->V; }
void ref_model_reset(ref_model *r) { r->n_past = 0; }

/* What the engine does to activations before a dot with weights of `type`. */
static const float *act_round(ref_model *r, const float *x, int64_t n, uint32_t type) {
    const pl_type_info *t = pl_type_get(type);
    if (!r->emulate || t->vec_dot_type == PL_TYPE_F32) return x;
    const pl_type_info *at = pl_type_get(t->vec_dot_type);
    at->from_f32(x, r->rt_buf, n);
    at->to_f32(r->rt_buf, r->rt_in, n);
    return r->rt_in;
}

static void mat_vec(ref_model *r, const ref_mat *m, const float *x_in, float *y) {
    const float *x = act_round(r, x_in, m->k, m->type);
    for (int64_t i = 0; i < m->rows; i++) {
        double s = 0;
        for (int64_t j = 0; j < m->k; j++) s += (double)m->w[i * m->k + j] * x[j];
        y[i] = (float)s;
    }
}

static void rms(float *y, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    double inv = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) y[i] = (float)(x[i] * inv * w[i]);
}

static void rope(const ref_model *r, float *v, int pos) {
    int half = r->n_rot / 2;
    for (int i = 0; i < half; i++) {
        double theta = pos * pow(r->base, -2.0 * i / r->n_rot);
        if (r->rope_freqs) theta /= r->rope_freqs[i];
        theta *= r->freq_scale;
        int a = r->neox ? i : 2 * i, b = r->neox ? i + half : 2 * i + 1;
        double x0 = v[a], x1 = v[b];
        v[a] = (float)(x0 * cos(theta) - x1 * sin(theta));
        v[b] = (float)(x0 * sin(theta) + x1 * cos(theta));
    }
}

static float kv_round(const ref_model *r, float x) { return r->emulate ? pl_f16_to_f32(pl_f32_to_f16(x)) : x; }

void ref_model_eval(ref_model *r, int32_t token, float *logits) {
    int pos = r->n_past++;
    const int E = r->E, HD = r->HD, HDV = r->HDV, group = r->H / r->HKV;
    memcpy(r->x, r->tok_embd.w + (size_t)token * E, (size_t)E * sizeof(float));
    for (int l = 0; l < r->L; l++) {
        ref_layer *y = &r->layers[l];
        rms(r->h, r->x, y->attn_norm, E, r->eps);
        mat_vec(r, &y->q, r->h, r->q);
        mat_vec(r, &y->k, r->h, r->k);
        mat_vec(r, &y->v, r->h, r->v);
        for (int i = 0; y->bq && i < r->H * HD; i++) r->q[i] += y->bq[i];
        for (int i = 0; y->bk && i < r->HKV * HD; i++) r->k[i] += y->bk[i];
        for (int i = 0; y->bv && i < r->HKV * HDV; i++) r->v[i] += y->bv[i];
        for (int h = 0; h < r->H; h++) {
            if (y->qn) rms(r->q + h * HD, r->q + h * HD, y->qn, HD, r->eps);
            rope(r, r->q + h * HD, pos);
        }
        float *kc = r->kc + ((size_t)l * r->n_ctx + pos) * (size_t)(r->HKV * HD);
        float *vc = r->vc + ((size_t)l * r->n_ctx + pos) * (size_t)(r->HKV * HDV);
        for (int h = 0; h < r->HKV; h++) {
            if (y->kn) rms(r->k + h * HD, r->k + h * HD, y->kn, HD, r->eps);
            rope(r, r->k + h * HD, pos);
        }
        for (int i = 0; i < r->HKV * HD; i++) kc[i] = kv_round(r, r->k[i]);
        for (int i = 0; i < r->HKV * HDV; i++) vc[i] = kv_round(r, r->v[i]);
        for (int h = 0; h < r->H; h++) {
            int kh = h / group;
            double mx = -INFINITY, sum = 0;
            for (int p = 0; p <= pos; p++) {
                const float *kp = r->kc + ((size_t)l * r->n_ctx + p) * (size_t)(r->HKV * HD) + kh * HD;
                double s = 0;
                for (int d = 0; d < HD; d++) s += (double)r->q[h * HD + d] * kp[d];
                r->sc[p] = (float)(s / sqrt((double)HD));
                if (r->sc[p] > mx) mx = r->sc[p];
            }
            for (int p = 0; p <= pos; p++) sum += exp(r->sc[p] - mx);
            for (int d = 0; d < HDV; d++) {
                double o = 0;
                for (int p = 0; p <= pos; p++) {
                    const float *vp = r->vc + ((size_t)l * r->n_ctx + p) * (size_t)(r->HKV * HDV) + kh * HDV;
                    o += exp(r->sc[p] - mx) / sum * vp[d];
                }
                r->att[h * HDV + d] = (float)o;
            }
        }
        mat_vec(r, &y->o, r->att, r->tmp);
        for (int i = 0; i < E; i++) r->x[i] += r->tmp[i];
        rms(r->h, r->x, y->ffn_norm, E, r->eps);
        mat_vec(r, &y->gate, r->h, r->g);
        mat_vec(r, &y->up, r->h, r->u);
        for (int i = 0; i < r->F; i++) r->g[i] = (float)(r->g[i] / (1.0 + exp(-(double)r->g[i])) * r->u[i]);
        mat_vec(r, &y->down, r->g, r->tmp);
        for (int i = 0; i < E; i++) r->x[i] += r->tmp[i];
    }
    rms(r->h, r->x, r->out_norm, E, r->eps);
    mat_vec(r, &r->output, r->h, logits);
}
