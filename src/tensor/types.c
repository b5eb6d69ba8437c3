/*
 * types.c - the tensor type table: one row per ggml type id.
 *
 * Block sizes and bytes per block are the file format's (see shared formats.md).
 * IQ and TQ types are listed by name only (block_size 0): files that use them
 * open, and loading a model that needs them gives "unsupported tensor type".
 * Rows with a vec_dot can be matmul weights; the converters are in float.c,
 * quants.c (32-value blocks) and kquants.c (256-value K blocks).
 */
#include <strings.h>

#include "parley/tensor.h"

#include "tensor_int.h"

#define ROW(id_, name_, bs_, ts_, q_, ...) \
    [id_] = { .name = (name_), .block_size = (bs_), .type_size = (ts_), .quantized = (q_), __VA_ARGS__ }

/* A quantized row: its reference converters and dot against activations in `vdt`. */
#define QROW(id_, name_, bs_, ts_, fn_, vdt_)                                            \
    ROW(id_, name_, bs_, ts_, true, .to_f32 = pl_##fn_##_to_f32_row,                     \
        .from_f32 = pl_##fn_##_from_f32_row, .vec_dot_type = (vdt_), .vec_dot = pl_##fn_##_vec_dot)

static const pl_type_info type_table[PL_TYPE_COUNT] = {
    ROW(PL_TYPE_F32,     "f32",     1,   4,   false, .to_f32 = pl_f32_to_f32_row, .from_f32 = pl_f32_from_f32_row,
        .vec_dot_type = PL_TYPE_F32, .vec_dot = pl_f32_vec_dot),
    ROW(PL_TYPE_F16,     "f16",     1,   2,   false, .to_f32 = pl_f16_to_f32_row, .from_f32 = pl_f16_from_f32_row,
        .vec_dot_type = PL_TYPE_F16, .vec_dot = pl_f16_vec_dot),
    QROW(PL_TYPE_Q4_0,   "q4_0",    32,  18,  q4_0, PL_TYPE_Q8_0),
    QROW(PL_TYPE_Q4_1,   "q4_1",    32,  20,  q4_1, PL_TYPE_Q8_0),
    QROW(PL_TYPE_Q5_0,   "q5_0",    32,  22,  q5_0, PL_TYPE_Q8_0),
    QROW(PL_TYPE_Q5_1,   "q5_1",    32,  24,  q5_1, PL_TYPE_Q8_0),
    QROW(PL_TYPE_Q8_0,   "q8_0",    32,  34,  q8_0, PL_TYPE_Q8_0),
    ROW(PL_TYPE_Q8_1,    "q8_1",    32,  36,  true),
    QROW(PL_TYPE_Q2_K,   "q2_K",    256, 84,  q2_k, PL_TYPE_Q8_K),
    QROW(PL_TYPE_Q3_K,   "q3_K",    256, 110, q3_k, PL_TYPE_Q8_K),
    QROW(PL_TYPE_Q4_K,   "q4_K",    256, 144, q4_k, PL_TYPE_Q8_K),
    QROW(PL_TYPE_Q5_K,   "q5_K",    256, 176, q5_k, PL_TYPE_Q8_K),
    QROW(PL_TYPE_Q6_K,   "q6_K",    256, 210, q6_k, PL_TYPE_Q8_K),
    QROW(PL_TYPE_Q8_K,   "q8_K",    256, 292, q8_k, PL_TYPE_Q8_K),
    ROW(PL_TYPE_IQ2_XXS, "iq2_xxs", 0,   0,   true),
    ROW(PL_TYPE_IQ2_XS,  "iq2_xs",  0,   0,   true),
    ROW(PL_TYPE_IQ3_XXS, "iq3_xxs", 0,   0,   true),
    ROW(PL_TYPE_IQ1_S,   "iq1_s",   0,   0,   true),
    ROW(PL_TYPE_IQ4_NL,  "iq4_nl",  0,   0,   true),
    ROW(PL_TYPE_IQ3_S,   "iq3_s",   0,   0,   true),
    ROW(PL_TYPE_IQ2_S,   "iq2_s",   0,   0,   true),
    ROW(PL_TYPE_IQ4_XS,  "iq4_xs",  0,   0,   true),
    ROW(PL_TYPE_I8,      "i8",      1,   1,   false),
    ROW(PL_TYPE_I16,     "i16",     1,   2,   false),
    ROW(PL_TYPE_I32,     "i32",     1,   4,   false),
    ROW(PL_TYPE_I64,     "i64",     1,   8,   false),
    ROW(PL_TYPE_F64,     "f64",     1,   8,   false),
    ROW(PL_TYPE_IQ1_M,   "iq1_m",   0,   0,   true),
    ROW(PL_TYPE_BF16,    "bf16",    1,   2,   false, .to_f32 = pl_bf16_to_f32_row, .from_f32 = pl_bf16_from_f32_row,
        .vec_dot_type = PL_TYPE_BF16, .vec_dot = pl_bf16_vec_dot),
    ROW(PL_TYPE_TQ1_0,   "tq1_0",   0,   0,   true),
    ROW(PL_TYPE_TQ2_0,   "tq2_0",   0,   0,   true),
};

#undef QROW
#undef ROW

const pl_type_info *pl_type_get(uint32_t id) {
    if (id >= PL_TYPE_COUNT || type_table[id].name == NULL) return NULL;
    return &type_table[id];
}

const char *pl_type_name(uint32_t id) {
    const pl_type_info *t = pl_type_get(id);
    return t ? t->name : "unknown";
}

pl_status pl_type_from_name(const char *name, pl_type *out) {
    if (!name || !out) return PL_ERR_INVALID_ARG;
    for (uint32_t i = 0; i < PL_TYPE_COUNT; i++) {
        if (type_table[i].name && strcasecmp(type_table[i].name, name) == 0) {
            *out = (pl_type)i;
            return PL_OK;
        }
    }
    return PL_ERR_NOT_FOUND;
}

bool pl_type_sized(uint32_t id) {
    const pl_type_info *t = pl_type_get(id);
    return t && t->block_size > 0;
}

pl_status pl_type_row_bytes(uint32_t id, uint64_t n, uint64_t *out) {
    const pl_type_info *t = pl_type_get(id);
    if (!t || t->block_size == 0 || !out) return PL_ERR_INVALID_ARG;
    if (n % t->block_size) return PL_ERR_INVALID_ARG;
    if (!pl_u64_mul(n / t->block_size, t->type_size, out)) return PL_ERR_OVERFLOW;
    return PL_OK;
}

pl_status pl_type_tensor_bytes(uint32_t id, int n_dims, const int64_t *ne, uint64_t *out) {
    if (!ne || !out || n_dims < 1 || n_dims > 4) return PL_ERR_INVALID_ARG;
    for (int i = 0; i < n_dims; i++)
        if (ne[i] < 0) return PL_ERR_INVALID_ARG;
    uint64_t bytes;
    pl_status st = pl_type_row_bytes(id, (uint64_t)ne[0], &bytes);
    if (st != PL_OK) return st;
    for (int i = 1; i < n_dims; i++)
        if (!pl_u64_mul(bytes, (uint64_t)ne[i], &bytes)) return PL_ERR_OVERFLOW;
    *out = bytes;
    return PL_OK;
}

pl_status pl_type_to_f32(uint32_t id, const void *x, float *y, int64_t n) {
    const pl_type_info *t = pl_type_get(id);
    if (!t || !x || !y || n < 0) return PL_ERR_INVALID_ARG;
    if (!t->to_f32) return PL_ERR_UNSUPPORTED;
    if (n % t->block_size) return PL_ERR_INVALID_ARG;
    t->to_f32(x, y, n);
    return PL_OK;
}

pl_status pl_type_from_f32(uint32_t id, const float *x, void *y, int64_t n) {
    const pl_type_info *t = pl_type_get(id);
    if (!t || !x || !y || n < 0) return PL_ERR_INVALID_ARG;
    if (!t->from_f32) return PL_ERR_UNSUPPORTED;
    if (n % t->block_size) return PL_ERR_INVALID_ARG;
    t->from_f32(x, y, n);
    return PL_OK;
}

/* general.file_type -> name of the whole-file quant mix. */
static const char *const ftype_names[] = {
    [0] = "ALL_F32", [1] = "F16",     [2] = "Q4_0",    [3] = "Q4_1",
    [7] = "Q8_0",    [8] = "Q5_0",    [9] = "Q5_1",    [10] = "Q2_K",
    [11] = "Q3_K_S", [12] = "Q3_K_M", [13] = "Q3_K_L", [14] = "Q4_K_S",
    [15] = "Q4_K_M", [16] = "Q5_K_S", [17] = "Q5_K_M", [18] = "Q6_K",
    [32] = "BF16",
};

const char *pl_ftype_name(uint32_t ftype) {
    if (ftype >= sizeof ftype_names / sizeof ftype_names[0]) return NULL;
    return ftype_names[ftype];
}
