/*
 * matmul.c - y = W·x for a weight matrix in any type with a vec_dot row, dispatched
 * through the type table. This is the seam the fast kernels replace: callers only
 * see pl_matmul(), the per-type work is whatever the table's row points at.
 *
 * Cost: the n activation rows are converted once to the weight's vec_dot_type
 * (split over threads by row), then the weight rows are split over threads; each
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

size_t pl_matmul_work_size(uint32_t w_type, int64_t k, int64_t n) {
    const pl_type_info *t = pl_type_get(w_type);
    if (!t || !t->vec_dot || k <= 0 || n < 0) return 0;
    if (t->vec_dot_type == PL_TYPE_F32) return 0; /* x is used in place */
    uint64_t rb, total;
    if (pl_type_row_bytes(t->vec_dot_type, (uint64_t)k, &rb) != PL_OK) return 0;
    if (!pl_u64_mul(rb, (uint64_t)n, &total) || total > SIZE_MAX) return SIZE_MAX;
    return (size_t)total;
}

typedef struct mm_job {
    const pl_mat       *w;
    const pl_type_info *wt, *at; /* weight row, activation row */
    pl_vec_dot_fn       dot;     /* the level's kernels (kernels.c) */
    pl_vec_dot4_fn      dot4;    /* or NULL */
    pl_from_f32_fn      quantize;
    const float        *x;
    const uint8_t      *xq;      /* n rows of xq_bytes in the activation type */
    size_t              xq_bytes;
    int64_t             n;
    float              *y;
} mm_job;

static void mm_convert(void *ud, int64_t begin, int64_t end, int ith) {
    mm_job *j = ud;
    (void)ith;
    for (int64_t i = begin; i < end; i++)
        j->quantize(j->x + i * j->w->k, (uint8_t *)j->xq + (size_t)i * j->xq_bytes, j->w->k);
}

static void mm_rows(void *ud, int64_t begin, int64_t end, int ith) {
    mm_job *j = ud;
    (void)ith;
    const uint8_t *wd = j->w->data;
    pl_vec_dot_fn dot = j->dot;
    const int64_t R = j->w->rows;
    for (int64_t r = begin; r < end; r++) {
        const void *wr = wd + (size_t)r * j->w->row_bytes;
        int64_t i = 0;
        if (j->dot4) {
            float o[4];
            for (; i + 4 <= j->n; i += 4) {
                j->dot4(wr, j->xq + (size_t)i * j->xq_bytes, j->xq_bytes, j->w->k, o);
                for (int c = 0; c < 4; c++) j->y[(i + c) * R + r] = o[c];
            }
        }
        for (; i < j->n; i++) j->y[i * R + r] = dot(wr, j->xq + (size_t)i * j->xq_bytes, j->w->k);
    }
}

/* Run fn over [0, n) on the pool, or inline without one. */
static void run_for(pl_pool *pool, int64_t n, int64_t grain, pl_pool_range_fn fn, void *ud) {
    if (n <= 0) return;
    if (pool && pl_pool_n_threads(pool) > 1 && n > grain) pl_pool_for(pool, n, grain, fn, ud);
    else fn(ud, 0, n, 0);
}

pl_status pl_matmul(pl_pool *pool, const pl_mat *w, const float *x, int64_t n, float *y,
                    void *work, size_t work_size) {
    if (!w || !x || !y || n < 0) return PL_ERR_INVALID_ARG;
    const pl_type_info *wt = pl_type_get(w->type);
    if (!wt || !wt->vec_dot) return PL_ERR_UNSUPPORTED;
    const pl_type_info *at = pl_type_get(wt->vec_dot_type);
    if (n == 0) return PL_OK;
    mm_job j = { .w = w, .wt = wt, .at = at, .x = x, .n = n, .y = y };
    if (pl_type_kernel(w->type, pl_kernel_level(), &j.dot, &j.quantize) != PL_OK) {
        j.dot = wt->vec_dot;
        j.quantize = at->from_f32;
    }
    j.dot4 = pl_type_kernel_dot4(w->type, pl_kernel_level());
    if (wt->vec_dot_type == PL_TYPE_F32) {
        j.xq = (const uint8_t *)x;
        j.xq_bytes = (size_t)w->k * sizeof(float);
    } else {
        size_t need = pl_matmul_work_size(w->type, w->k, n);
        if (need == 0 || need == SIZE_MAX || !work || work_size < need) return PL_ERR_INVALID_ARG;
        j.xq = work;
        j.xq_bytes = need / (size_t)n;
        run_for(pool, n, 1, mm_convert, &j);
    }
    run_for(pool, w->rows, 16, mm_rows, &j);
    return PL_OK;
}
