/*
 * matmul.c - y = W·x for a weight matrix in any type with a vec_dot row, dispatched
 * through the type table. This is the seam the fast kernels replace: callers only
 * see pl_matmul(), the per-type work is whatever the table's row points at.
 *
 * Cost: the n activation rows are converted once to the weight's vec_dot_type
 * (split over threads by row), then the weight rows are split over threads (each
 * its own span, idle ones stealing the others' last chunks: run_dynamic); each
 * weight row is read once and dotted with all n activation rows while it is in cache.
 */
#include <string.h>

#include "tensor_int.h"

pl_status pl_mat_init(pl_mat *m, uint32_t type, int64_t k, int64_t rows, const void *data) {
    if (!m || k <= 0 || rows <= 0) return PL_ERR_INVALID_ARG;
    const pl_type_info *t = pl_type_get(type);
    if (!t || !t->vec_dot) return PL_ERR_UNSUPPORTED;
    uint64_t rb;
    pl_status st = pl_type_row_bytes(type, (uint64_t)k, &rb);
    if (st != PL_OK) return st;
    if (rb > SIZE_MAX) return PL_ERR_OVERFLOW;
    *m = (pl_mat){ .type = type, .k = k, .rows = rows, .row_bytes = (size_t)rb, .data = data };
    return PL_OK;
}

size_t pl_gemm_act_bytes(uint32_t vdt, int64_t k) {
    if (k <= 0 || k > (INT64_MAX >> 4)) return 0;
    uint64_t b = (uint64_t)k + 4 * ((uint64_t)k / 32); /* values + a float per 32 */
    if (vdt == PL_TYPE_Q8_K) b += 4 * ((uint64_t)k / 256);
    else if (vdt != PL_TYPE_Q8_0) return 0;
    b = (b + 63) & ~(uint64_t)63;
    return b > SIZE_MAX ? 0 : (size_t)b;
}

/* The decode kernels' activation format (layouts in gemv_x86.inc): for Q8_0 weights'
 * partners 256 bytes per 128 values, then the k % 128 tail as Q8_0 blocks; for Q8_K
 * 384 bytes per 256; rounded to 64. 0 for other types or a bad k. */
size_t pl_gemv_act_bytes(uint32_t vdt, int64_t k) {
    if (k <= 0 || k > (INT64_MAX >> 4)) return 0;
    uint64_t b;
    if (vdt == PL_TYPE_Q8_0 && k % PL_QK32 == 0)
        b = (uint64_t)(k / 128) * 256 + (uint64_t)(k % 128 / PL_QK32) * sizeof(pl_block_q8_0);
    else if (vdt == PL_TYPE_Q8_K && k % PL_QKK == 0)
        b = (uint64_t)(k / PL_QKK) * 384;
    else
        return 0;
    b = (b + 63) & ~(uint64_t)63;
    return b > SIZE_MAX ? 0 : (size_t)b;
}

/* Row-dot format: n rows of the vec_dot_type; GEMM format: n columns of pl_gemm_act_bytes. */
size_t pl_matmul_work_size(uint32_t w_type, int64_t k, int64_t n) {
    const pl_type_info *t = pl_type_get(w_type);
    if (!t || !t->vec_dot || k <= 0 || n < 0) return 0;
    if (t->vec_dot_type == PL_TYPE_F32) return 0; /* x is used in place */
    uint64_t rb, total;
    if (pl_type_row_bytes(t->vec_dot_type, (uint64_t)k, &rb) != PL_OK) return 0;
    size_t gb = pl_gemm_act_bytes(t->vec_dot_type, k);
    if (gb > rb) rb = gb;
    size_t vb = pl_gemv_act_bytes(t->vec_dot_type, k); /* the decode kernels' format, larger */
    if (vb > rb) rb = vb;
    if (!pl_u64_mul(rb, (uint64_t)n, &total) || total > SIZE_MAX) return SIZE_MAX;
    return (size_t)total;
}

#define MM_MAX PL_MATMUL_MAX
#define PL_CONVERT_INLINE (16 * 4096) /* values converted inline rather than on the pool */
/* Activation rows from which the GEMM runs (below: the decode kernels). Measured per
 * column (one thread, 512 x 2048 in L2, Q4_0 / Q4_K / Q8_0 alike): the decode kernels
 * ~8 us at 8-31 columns (so 32-39 too), the GEMM 8.9 at 32, 8.0 at 40, 7.3 at 48 (its panel packing
 * is shared by fewer columns below that). */
#define PL_GEMM_MIN_N 40

/* One weight matrix of a job with its level kernels (kernels.c). */
typedef struct mm_mat {
    const pl_mat  *w;
    pl_vec_dot_fn  dot;
    pl_vec_dot4_fn dot4;  /* or NULL */
    float         *y;     /* [n][w->rows] */
    int64_t        first; /* index of its first row in the job's concatenated rows */
    pl_gemm_fn     gemm;  /* or NULL */
    pl_gemv_fn     gemv;  /* or NULL */
    int64_t        first_panel; /* GEMM: index of its first 16-row panel */
} mm_mat;

typedef struct mm_job {
    mm_mat          m[MM_MAX];
    int             n_m;
    int64_t         k;
    pl_from_f32_fn  quantize;
    const float    *x;
    const uint8_t  *xq;      /* n rows of xq_bytes in the activation type */
    size_t          xq_bytes;
    int64_t         n;
} mm_job;

static void mm_convert(void *ud, int64_t begin, int64_t end, int ith) {
    mm_job *j = ud;
    (void)ith;
    for (int64_t i = begin; i < end; i++) j->quantize(j->x + i * j->k, (uint8_t *)j->xq + (size_t)i * j->xq_bytes, j->k);
}

/* rows [begin, end) of the concatenation of the job's matrices */
static void mm_rows(void *ud, int64_t begin, int64_t end, int ith) {
    mm_job *j = ud;
    (void)ith;
    for (int mi = 0; mi < j->n_m; mi++) {
        const mm_mat *m = &j->m[mi];
        const int64_t R = m->w->rows;
        int64_t lo = begin - m->first, hi = end - m->first;
        if (lo < 0) lo = 0;
        if (hi > R) hi = R;
        const uint8_t *wd = m->w->data;
        for (int64_t r = lo; r < hi; r++) {
            const void *wr = wd + (size_t)r * m->w->row_bytes;
            int64_t i = 0;
            if (m->dot4) {
                float o[4];
                for (; i + 4 <= j->n; i += 4) {
                    m->dot4(wr, j->xq + (size_t)i * j->xq_bytes, j->xq_bytes, j->k, o);
                    for (int c = 0; c < 4; c++) m->y[(i + c) * R + r] = o[c];
                }
            }
            for (; i < j->n; i++) m->y[i * R + r] = m->dot(wr, j->xq + (size_t)i * j->xq_bytes, j->k);
        }
    }
}

/* GEMM: panels [begin, end) of the concatenation of the job's matrices' panels */
static void mm_panels(void *ud, int64_t begin, int64_t end, int ith) {
    mm_job *j = ud;
    (void)ith;
    for (int mi = 0; mi < j->n_m; mi++) {
        const mm_mat *m = &j->m[mi];
        const int64_t np = (m->w->rows + PL_GEMM_ROWS - 1) / PL_GEMM_ROWS;
        int64_t lo = begin - m->first_panel, hi = end - m->first_panel;
        if (lo < 0) lo = 0;
        if (hi > np) hi = np;
        if (lo >= hi) continue;
        pl_gemm_args g = { .w = m->w->data, .row_bytes = m->w->row_bytes, .rows = m->w->rows, .k = j->k,
                           .a = j->xq, .a_stride = j->xq_bytes, .n = j->n, .y = m->y };
        m->gemm(&g, lo, hi);
    }
}

/* decode kernels: rows [begin, end) of the concatenation of the job's matrices */
static void mm_gemv(void *ud, int64_t begin, int64_t end, int ith) {
    mm_job *j = ud;
    (void)ith;
    for (int mi = 0; mi < j->n_m; mi++) {
        const mm_mat *m = &j->m[mi];
        int64_t lo = begin - m->first, hi = end - m->first;
        if (lo < 0) lo = 0;
        if (hi > m->w->rows) hi = m->w->rows;
        if (lo >= hi) continue;
        pl_gemm_args g = { .w = m->w->data, .row_bytes = m->w->row_bytes, .rows = m->w->rows, .k = j->k,
                           .a = j->xq, .a_stride = j->xq_bytes, .n = j->n, .y = m->y };
        m->gemv(&g, lo, hi);
    }
}

static void run_for(pl_pool *pool, int64_t n, int64_t grain, pl_pool_range_fn fn, void *ud);

/* The activation conversion: on the pool for prefill-sized batches, inline for a few
 * rows (a decode step of 4 sequences converts 4 x k values, ~1 us a row: a pool round
 * trip, paid once per matmul, costs more than that). */
static void convert(pl_pool *pool, mm_job *j) {
    if (j->n <= PL_CONVERT_INLINE / j->k) /* n * k <= PL_CONVERT_INLINE, without the product */ mm_convert(j, 0, j->n, 0);
    else run_for(pool, j->n, 1, mm_convert, j);
}

/* Run fn over [0, n) on the pool, or inline without one. */
static void run_for(pl_pool *pool, int64_t n, int64_t grain, pl_pool_range_fn fn, void *ud) {
    if (n <= 0) return;
    if (pool && pl_pool_n_threads(pool) > 1 && n > grain) pl_pool_for(pool, n, grain, fn, ud);
    else fn(ud, 0, n, 0);
}

/* Work split for the matmuls: pl_pool_for_dynamic over chunks of about 1/PL_MM_CHUNKS of
 * a thread's share (whole multiples of `unit`: 16 rows, or one GEMM panel). Each thread
 * streams its own contiguous span as with an equal split, and one that finishes first
 * takes the other's last chunks. Why: with an equal split a thread that lost its core
 * for a moment (another process's burst on a 2-core machine) held the other at the end
 * of every matmul. Llama-3.2-1B Q4_0 decode, 2 threads: beside intermittent builds
 * 18-20 tok/s split equally, 23-52 with stealing; beside a steady nice-10 busy loop
 * 19.7-21.5 vs 21.0-25.1; beside a full-priority one ~17 both (a thread preempted for
 * a whole time slice still holds its chunk: stealing cannot help there, fewer threads
 * would); quiet, the same within the host's noise (4 alternating pairs: 48.6 vs
 * 50.8 tok/s mean; Qwen2.5-0.5B 107.7 vs 107.3; pp512 unchanged). */
#define PL_MM_CHUNKS 24
static void run_dynamic(pl_pool *pool, int64_t n, int64_t unit, pl_pool_range_fn fn, void *ud) {
    if (n <= 0) return;
    int nth = pool ? pl_pool_n_threads(pool) : 1;
    if (nth <= 1 || n <= unit) {
        fn(ud, 0, n, 0);
        return;
    }
    int64_t chunk = n / ((int64_t)nth * PL_MM_CHUNKS);
    chunk = (chunk + unit - 1) / unit * unit;
    if (chunk < unit) chunk = unit;
    pl_pool_for_dynamic(pool, n, chunk, fn, ud);
}

pl_status pl_matmul_multi(pl_pool *pool, const pl_mat *const *w, int n_w, const float *x, int64_t n,
                          float *const *y, void *work, size_t work_size) {
    if (!w || !x || !y || n < 0 || n_w < 1 || n_w > MM_MAX) return PL_ERR_INVALID_ARG;
    mm_job j = { .n_m = n_w, .x = x, .n = n };
    uint32_t vdt = 0;
    int64_t total = 0;
    pl_cpu_level lv = pl_kernel_level();
    for (int i = 0; i < n_w; i++) {
        if (!w[i] || !y[i]) return PL_ERR_INVALID_ARG;
        const pl_type_info *wt = pl_type_get(w[i]->type);
        if (!wt || !wt->vec_dot) return PL_ERR_UNSUPPORTED;
        if (i == 0) {
            vdt = wt->vec_dot_type;
            j.k = w[0]->k;
        } else if (wt->vec_dot_type != vdt || w[i]->k != j.k) {
            return PL_ERR_INVALID_ARG;
        }
        mm_mat *m = &j.m[i];
        *m = (mm_mat){ .w = w[i], .y = y[i], .first = total };
        if (pl_type_kernel(w[i]->type, lv, &m->dot, i == 0 ? &j.quantize : NULL) != PL_OK) {
            m->dot = wt->vec_dot;
            if (i == 0) j.quantize = pl_type_get(vdt)->from_f32;
        }
        m->dot4 = pl_type_kernel_dot4(w[i]->type, lv);
        total += w[i]->rows;
    }
    if (n == 0) return PL_OK;
    /* GEMM when every matrix has one at this level and the batch amortizes the panel
     * packing; below PL_GEMM_MIN_N the row dots run (decode, small batches), so their
     * results don't change with the batch size there. */
    bool gemm = n >= PL_GEMM_MIN_N;
    pl_from_f32_fn gq = NULL;
    int64_t panels = 0;
    for (int i = 0; i < n_w && gemm; i++) {
        j.m[i].gemm = pl_type_kernel_gemm(w[i]->type, lv, &gq);
        j.m[i].first_panel = panels;
        panels += (w[i]->rows + PL_GEMM_ROWS - 1) / PL_GEMM_ROWS;
        gemm = j.m[i].gemm != NULL;
    }
    if (gemm) {
        size_t need = pl_matmul_work_size(w[0]->type, j.k, n);
        if (need == 0 || need == SIZE_MAX || !work || work_size < need) return PL_ERR_INVALID_ARG;
        j.xq = work;
        j.xq_bytes = pl_gemm_act_bytes(vdt, j.k);
        j.quantize = gq;
        convert(pool, &j);
        run_dynamic(pool, panels, 1, mm_panels, &j);
        return PL_OK;
    }
    /* Decode kernels when every matrix has one (same format per vec_dot_type). */
    bool gemv = true;
    pl_from_f32_fn vq = NULL;
    bool mixed = false;
    for (int i = 0; i < n_w && gemv; i++) {
        pl_from_f32_fn q = NULL;
        j.m[i].gemv = pl_type_kernel_gemv(w[i]->type, lv, &q);
        gemv = j.m[i].gemv != NULL;
        mixed |= i > 0 && q != vq;
        vq = q;
    }
    if (gemv && mixed) {
        /* the 32-block types' decode formats differ in their correction (Q4_0 beside
         * Q8_0 weights): one conversion and one pool run per matrix instead */
        for (int i = 0; i < n_w; i++) {
            pl_status st = pl_matmul_multi(pool, &w[i], 1, x, n, &y[i], work, work_size);
            if (st != PL_OK) return st;
        }
        return PL_OK;
    }
    if (gemv) {
        size_t need = pl_matmul_work_size(w[0]->type, j.k, n);
        if (need == 0 || need == SIZE_MAX || !work || work_size < need) return PL_ERR_INVALID_ARG;
        j.xq = work;
        j.xq_bytes = pl_gemv_act_bytes(vdt, j.k);
        j.quantize = vq;
        convert(pool, &j);
        run_dynamic(pool, total, 16, mm_gemv, &j);
        return PL_OK;
    }
    if (vdt == PL_TYPE_F32) {
        j.xq = (const uint8_t *)x;
        j.xq_bytes = (size_t)j.k * sizeof(float);
    } else {
        size_t need = pl_matmul_work_size(w[0]->type, j.k, n);
        if (need == 0 || need == SIZE_MAX || !work || work_size < need) return PL_ERR_INVALID_ARG;
        j.xq = work;
        j.xq_bytes = need / (size_t)n;
        convert(pool, &j);
    }
    run_dynamic(pool, total, 16, mm_rows, &j);
    return PL_OK;
}

pl_status pl_matmul(pl_pool *pool, const pl_mat *w, const float *x, int64_t n, float *y,
                    void *work, size_t work_size) {
    return pl_matmul_multi(pool, &w, 1, x, n, &y, work, work_size);
}
