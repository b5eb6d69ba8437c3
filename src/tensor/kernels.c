/*
 * kernels.c - the kernel table: per SIMD level, per weight type, the row dot and
 * the quantizer of its activation format. Chosen once per process from the detected
 * CPU (pl_cpu_best_level(), so PL_CPU=scalar|avx2|avx512 forces a level); types a
 * level has no kernel for use the scalar rows of the type table.
 */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "tensor_int.h"

/* ---- scalar vector helpers (the reference the SIMD ones are tested against) ---- */

static float scalar_dot_f32_f16(const float *x, const uint16_t *y, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += x[i] * pl_f16_to_f32(y[i]);
    return s;
}
static void scalar_axpy_f16(float *y, float a, const uint16_t *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * pl_f16_to_f32(x[i]);
}
static void scalar_f32_to_f16(const float *x, void *y, int64_t n) {
    uint16_t *o = y;
    for (int64_t i = 0; i < n; i++) o[i] = pl_f32_to_f16(x[i]);
}
/* The reference attention: per query, blocks of PL_ATTN_BLOCK positions in order, the
 * running max / sum rescaled per block (the order the SIMD kernels follow). */
static void scalar_attn(const pl_attn_args *a) {
    float s[PL_ATTN_BLOCK];
    for (int32_t i = 0; i < a->nq; i++) {
        const float *q = a->q + (size_t)i * a->q_stride;
        float *o = a->o + (size_t)i * a->o_stride;
        float m = -INFINITY, l = 0.0f;
        memset(o, 0, (size_t)a->hd_v * sizeof(float));
        for (int32_t p0 = 0; p0 <= a->last[i]; p0 += PL_ATTN_BLOCK) {
            int32_t np = a->last[i] - p0 + 1 < PL_ATTN_BLOCK ? a->last[i] - p0 + 1 : PL_ATTN_BLOCK;
            size_t blk = (size_t)a->blocks[p0 / PL_ATTN_BLOCK];
            const uint16_t *kb = a->k + blk * a->k_block + a->k_head, *vb = a->v + blk * a->v_block + a->v_head;
            float bm = -INFINITY;
            for (int32_t p = 0; p < np; p++) {
                s[p] = a->scale * scalar_dot_f32_f16(q, kb + (size_t)p * (size_t)a->hd_k, a->hd_k);
                if (s[p] > bm) bm = s[p];
            }
            float mn = m > bm ? m : bm, alpha = expf(m - mn);
            l *= alpha;
            for (int32_t d = 0; d < a->hd_v; d++) o[d] *= alpha;
            for (int32_t p = 0; p < np; p++) {
                float e = expf(s[p] - mn);
                l += e;
                scalar_axpy_f16(o, e, vb + (size_t)p * (size_t)a->hd_v, a->hd_v);
            }
            m = mn;
        }
        for (int32_t d = 0; d < a->hd_v; d++) o[d] /= l;
    }
}

static float scalar_sum_sq(const float *x, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return (float)s;
}
static void scalar_silu_mul(float *y, const float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

#define SCALAR_SET_ \
    { .vec = { .dot_f32_f16 = scalar_dot_f32_f16, .axpy_f16 = scalar_axpy_f16, .f32_to_f16 = scalar_f32_to_f16, \
               .attn = scalar_attn, .sum_sq = scalar_sum_sq, .silu_mul = scalar_silu_mul } }

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PL_HAVE_X86_KERNELS 1
#define X86_DECL_(p)                                                          \
    void p##quantize_q8_0(const float *x, void *y, int64_t n);                \
    void p##quantize_q8_k(const float *x, void *y, int64_t n);                \
    void p##quantize_f16(const float *x, void *y, int64_t n);                 \
    float p##q8_0_vec_dot(const void *x, const void *y, int64_t n);           \
    float p##q4_0_vec_dot(const void *x, const void *y, int64_t n);           \
    float p##q5_0_vec_dot(const void *x, const void *y, int64_t n);           \
    float p##q4_1_vec_dot(const void *x, const void *y, int64_t n);           \
    float p##q5_1_vec_dot(const void *x, const void *y, int64_t n);           \
    float p##q4_k_vec_dot(const void *x, const void *y, int64_t n);           \
    float p##q5_k_vec_dot(const void *x, const void *y, int64_t n);           \
    float p##q6_k_vec_dot(const void *x, const void *y, int64_t n);           \
    float p##f16_vec_dot(const void *x, const void *y, int64_t n);            \
    float p##f32_vec_dot(const void *x, const void *y, int64_t n);            \
    float p##dot_f32_f16(const float *x, const uint16_t *y, int64_t n);       \
    void p##axpy_f16(float *y, float a, const uint16_t *x, int64_t n);        \
    void p##attn(const pl_attn_args *a);                                      \
    float p##sum_sq(const float *x, int64_t n);                               \
    void p##silu_mul(float *y, const float *g, const float *u, int64_t n);   \
    void p##q8_0_vec_dot4(const void *x, const void *y, size_t ys, int64_t n, float *o); \
    void p##q4_0_vec_dot4(const void *x, const void *y, size_t ys, int64_t n, float *o); \
    void p##q5_0_vec_dot4(const void *x, const void *y, size_t ys, int64_t n, float *o); \
    void p##q4_k_vec_dot4(const void *x, const void *y, size_t ys, int64_t n, float *o); \
    void p##q6_k_vec_dot4(const void *x, const void *y, size_t ys, int64_t n, float *o);
X86_DECL_(pl_avx2_)
X86_DECL_(pl_avx512_)
#undef X86_DECL_
#define GEMM_DECL_(t) void pl_avx512_gemm_##t(const pl_gemm_args *g, int64_t p0, int64_t p1);
GEMM_DECL_(q8_0) GEMM_DECL_(q4_0) GEMM_DECL_(q5_0) GEMM_DECL_(q4_k) GEMM_DECL_(q6_k)
#undef GEMM_DECL_
void pl_avx512_gemm_quant_q8_0(const float *x, void *y, int64_t n);
void pl_avx512_gemm_quant_q8_k(const float *x, void *y, int64_t n);
void pl_avx512_gemv_q4_0(const pl_gemm_args *g, int64_t r0, int64_t r1);
void pl_avx512_gemv_q8_0(const pl_gemm_args *g, int64_t r0, int64_t r1);
void pl_avx512_gemv_q5_0(const pl_gemm_args *g, int64_t r0, int64_t r1);
void pl_avx512_gemv_quant_q4_0(const float *x, void *y, int64_t n);
void pl_avx512_gemv_quant_q5_0(const float *x, void *y, int64_t n);
void pl_avx512_gemv_quant_q8_0(const float *x, void *y, int64_t n);
void pl_avx512_gemv_q4_k(const pl_gemm_args *g, int64_t r0, int64_t r1);
void pl_avx512_gemv_q6_k(const pl_gemm_args *g, int64_t r0, int64_t r1);
void pl_avx512_gemv_quant_q8_k(const float *x, void *y, int64_t n);
#define X86_GEMM_NONE_
#define X86_GEMM_AVX512_                                                                              \
    .gemm = { [PL_TYPE_Q8_0] = pl_avx512_gemm_q8_0, [PL_TYPE_Q4_0] = pl_avx512_gemm_q4_0,             \
              [PL_TYPE_Q5_0] = pl_avx512_gemm_q5_0, [PL_TYPE_Q4_K] = pl_avx512_gemm_q4_k,             \
              [PL_TYPE_Q6_K] = pl_avx512_gemm_q6_k },                                                 \
    .gemm_quant = { [PL_TYPE_Q8_0] = pl_avx512_gemm_quant_q8_0, [PL_TYPE_Q8_K] = pl_avx512_gemm_quant_q8_k },  \
    .gemv = { [PL_TYPE_Q4_0] = pl_avx512_gemv_q4_0, [PL_TYPE_Q8_0] = pl_avx512_gemv_q8_0,             \
              [PL_TYPE_Q5_0] = pl_avx512_gemv_q5_0,                                                   \
              [PL_TYPE_Q4_K] = pl_avx512_gemv_q4_k,             \
              [PL_TYPE_Q6_K] = pl_avx512_gemv_q6_k },                                                 \
    .gemv_quant = { [PL_TYPE_Q4_0] = pl_avx512_gemv_quant_q4_0, [PL_TYPE_Q5_0] = pl_avx512_gemv_quant_q5_0,  \
                    [PL_TYPE_Q8_0] = pl_avx512_gemv_quant_q8_0, [PL_TYPE_Q4_K] = pl_avx512_gemv_quant_q8_k,  \
                    [PL_TYPE_Q6_K] = pl_avx512_gemv_quant_q8_k },

/* one row per level: designated initializers, NULL = scalar fallback */
#define X86_SET_(p, GEMM)                                                                      \
    {                                                                                          \
        GEMM                                                                                   \
        .vec_dot = {                                                                           \
            [PL_TYPE_F32] = p##f32_vec_dot,   [PL_TYPE_F16] = p##f16_vec_dot,                  \
            [PL_TYPE_Q4_0] = p##q4_0_vec_dot, [PL_TYPE_Q4_1] = p##q4_1_vec_dot,                \
            [PL_TYPE_Q5_0] = p##q5_0_vec_dot, [PL_TYPE_Q5_1] = p##q5_1_vec_dot,                \
            [PL_TYPE_Q8_0] = p##q8_0_vec_dot, [PL_TYPE_Q4_K] = p##q4_k_vec_dot,                \
            [PL_TYPE_Q5_K] = p##q5_k_vec_dot, [PL_TYPE_Q6_K] = p##q6_k_vec_dot,                \
        },                                                                                     \
        .quantize = {                                                                          \
            [PL_TYPE_Q8_0] = p##quantize_q8_0, [PL_TYPE_Q8_K] = p##quantize_q8_k,              \
            [PL_TYPE_F16] = p##quantize_f16,                                                   \
        },                                                                                     \
        .vec_dot4 = { [PL_TYPE_Q8_0] = p##q8_0_vec_dot4, [PL_TYPE_Q4_0] = p##q4_0_vec_dot4,          \
                      [PL_TYPE_Q5_0] = p##q5_0_vec_dot4, [PL_TYPE_Q4_K] = p##q4_k_vec_dot4,      \
                      [PL_TYPE_Q6_K] = p##q6_k_vec_dot4 },                                     \
        .vec = { .dot_f32_f16 = p##dot_f32_f16, .axpy_f16 = p##axpy_f16, .f32_to_f16 = p##quantize_f16, \
                 .attn = p##attn, .sum_sq = p##sum_sq, .silu_mul = p##silu_mul },                                                                \
    }
static const pl_kernel_set kernel_sets[PL_CPU_LEVEL_COUNT] = {
    [PL_CPU_LEVEL_SCALAR] = SCALAR_SET_,
    [PL_CPU_LEVEL_AVX2] = X86_SET_(pl_avx2_, X86_GEMM_NONE_),
    [PL_CPU_LEVEL_AVX512] = X86_SET_(pl_avx512_, X86_GEMM_AVX512_),
};
#undef X86_SET_
#else
static const pl_kernel_set kernel_sets[PL_CPU_LEVEL_COUNT] = { [PL_CPU_LEVEL_SCALAR] = SCALAR_SET_ };
#endif

/* The level's set, or NULL when this CPU can't run it. The AVX-512 set needs
 * AVX512-VNNI on top of F/BW/VL; without it the level runs the AVX2 set. */
static const pl_kernel_set *set_for(pl_cpu_level lv) {
    const pl_cpu_features *f = pl_cpu_detect();
    switch (lv) {
    case PL_CPU_LEVEL_SCALAR: return &kernel_sets[PL_CPU_LEVEL_SCALAR];
#if PL_HAVE_X86_KERNELS
    case PL_CPU_LEVEL_AVX2:
        return f->avx2 && f->fma && f->f16c ? &kernel_sets[PL_CPU_LEVEL_AVX2] : NULL;
    case PL_CPU_LEVEL_AVX512:
        if (!(f->avx2 && f->fma && f->f16c && f->avx512f && f->avx512bw && f->avx512vl)) return NULL;
        return f->avx512vnni ? &kernel_sets[PL_CPU_LEVEL_AVX512] : &kernel_sets[PL_CPU_LEVEL_AVX2];
#endif
    default: return NULL;
    }
}

pl_vec_dot4_fn pl_type_kernel_dot4(uint32_t id, pl_cpu_level lv) {
    const pl_kernel_set *ks = id < PL_TYPE_COUNT && (unsigned)lv < PL_CPU_LEVEL_COUNT ? set_for(lv) : NULL;
    return ks ? ks->vec_dot4[id] : NULL;
}

pl_gemm_fn pl_type_kernel_gemm(uint32_t id, pl_cpu_level lv, pl_from_f32_fn *quantize) {
    const pl_type_info *t = pl_type_get(id);
    const pl_kernel_set *ks = t && t->vec_dot && (unsigned)lv < PL_CPU_LEVEL_COUNT ? set_for(lv) : NULL;
    if (!ks || !ks->gemm[id] || !ks->gemm_quant[t->vec_dot_type]) return NULL;
    if (quantize) *quantize = ks->gemm_quant[t->vec_dot_type];
    return ks->gemm[id];
}

pl_gemv_fn pl_type_kernel_gemv(uint32_t id, pl_cpu_level lv, pl_from_f32_fn *quantize) {
    const pl_type_info *t = pl_type_get(id);
    const pl_kernel_set *ks = t && t->vec_dot && (unsigned)lv < PL_CPU_LEVEL_COUNT ? set_for(lv) : NULL;
    if (!ks || !ks->gemv[id] || !ks->gemv_quant[id]) return NULL;
    if (quantize) *quantize = ks->gemv_quant[id];
    return ks->gemv[id];
}

pl_status pl_type_kernel(uint32_t id, pl_cpu_level lv, pl_vec_dot_fn *dot, pl_from_f32_fn *quantize) {
    const pl_type_info *t = pl_type_get(id);
    if (!t || !t->vec_dot || (unsigned)lv >= PL_CPU_LEVEL_COUNT) return PL_ERR_INVALID_ARG;
    const pl_kernel_set *ks = set_for(lv);
    if (!ks) return PL_ERR_UNSUPPORTED;
    const pl_type_info *at = pl_type_get(t->vec_dot_type);
    if (dot) *dot = ks->vec_dot[id] ? ks->vec_dot[id] : t->vec_dot;
    if (quantize) *quantize = ks->quantize[t->vec_dot_type] ? ks->quantize[t->vec_dot_type] : at->from_f32;
    return PL_OK;
}

/* The process-wide level: read once, so every matmul of a run uses one kernel set. */
static pl_cpu_level g_level;
static pthread_once_t g_level_once = PTHREAD_ONCE_INIT;
static void level_init(void) { g_level = pl_cpu_best_level(); }

pl_cpu_level pl_kernel_level(void) {
    pthread_once(&g_level_once, level_init);
    return g_level;
}

const pl_vec_ops *pl_vec_ops_get(pl_cpu_level lv) {
    if ((unsigned)lv >= PL_CPU_LEVEL_COUNT) return NULL;
    const pl_kernel_set *ks = set_for(lv);
    return ks ? &ks->vec : NULL;
}
