/*
 * access.c - read-only accessors over an opened GGUF: metadata by index or
 * key (hashed), typed conversions, O(1) array elements, tensors.
 *
 * Everything here only reads the immutable pl_gguf, so it is thread-safe, and
 * never sets error text (errors are statuses: several threads may call at once).
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "gguf/gguf_int.h"

/* ---- file-level ---- */

uint32_t pl_gguf_version(const pl_gguf *g) { return g ? g->version : 0; }
uint32_t pl_gguf_alignment(const pl_gguf *g) { return g ? g->alignment : 0; }
uint64_t pl_gguf_file_size(const pl_gguf *g) { return g ? g->size : 0; }
uint64_t pl_gguf_data_offset(const pl_gguf *g) { return g ? g->data_offset : 0; }
const void *pl_gguf_base(const pl_gguf *g) { return g ? g->base : NULL; }

/* ---- pl_str ---- */

bool pl_str_eq(pl_str s, const char *cstr) {
    if (!cstr) return false;
    size_t n = strlen(cstr);
    return n == s.len && (n == 0 || memcmp(s.ptr, cstr, n) == 0);
}

size_t pl_str_copy(pl_str s, char *buf, size_t cap) {
    if (buf && cap) {
        size_t n = s.len < cap - 1 ? s.len : cap - 1;
        if (n) memcpy(buf, s.ptr, n);
        buf[n] = '\0';
    }
    return s.len;
}

/* ---- scalar conversions (v points at one packed little-endian value) ---- */

typedef enum num_kind { NUM_NONE, NUM_UNSIGNED, NUM_SIGNED, NUM_FLOAT } num_kind;

typedef struct num {
    num_kind kind;
    bool     is_bool;
    uint64_t u;
    int64_t  i;
    double   f;
} num;

static num load_num(uint32_t type, const uint8_t *v) {
    num n = { .kind = NUM_NONE };
    switch (type) {
    case PL_GGUF_TYPE_UINT8:  n.kind = NUM_UNSIGNED; n.u = v[0]; break;
    case PL_GGUF_TYPE_BOOL:   n.kind = NUM_UNSIGNED; n.u = v[0] != 0; n.is_bool = true; break;
    case PL_GGUF_TYPE_INT8:   n.kind = NUM_SIGNED; n.i = (int8_t)v[0]; break;
    case PL_GGUF_TYPE_UINT16: { uint16_t x; memcpy(&x, v, 2); n.kind = NUM_UNSIGNED; n.u = x; break; }
    case PL_GGUF_TYPE_INT16:  { int16_t x; memcpy(&x, v, 2); n.kind = NUM_SIGNED; n.i = x; break; }
    case PL_GGUF_TYPE_UINT32: { uint32_t x; memcpy(&x, v, 4); n.kind = NUM_UNSIGNED; n.u = x; break; }
    case PL_GGUF_TYPE_INT32:  { int32_t x; memcpy(&x, v, 4); n.kind = NUM_SIGNED; n.i = x; break; }
    case PL_GGUF_TYPE_UINT64: { uint64_t x; memcpy(&x, v, 8); n.kind = NUM_UNSIGNED; n.u = x; break; }
    case PL_GGUF_TYPE_INT64:  { int64_t x; memcpy(&x, v, 8); n.kind = NUM_SIGNED; n.i = x; break; }
    case PL_GGUF_TYPE_FLOAT32: { float x; memcpy(&x, v, 4); n.kind = NUM_FLOAT; n.f = x; break; }
    case PL_GGUF_TYPE_FLOAT64: { double x; memcpy(&x, v, 8); n.kind = NUM_FLOAT; n.f = x; break; }
    default: break;
    }
    return n;
}

/* Integer conversions: any integer kind whose value fits; bool only when allowed. */
static pl_status num_u64(num n, bool allow_bool, uint64_t *out) {
    if (n.is_bool && !allow_bool) return PL_ERR_TYPE;
    if (n.kind == NUM_UNSIGNED) { *out = n.u; return PL_OK; }
    if (n.kind == NUM_SIGNED) {
        if (n.i < 0) return PL_ERR_RANGE;
        *out = (uint64_t)n.i;
        return PL_OK;
    }
    return PL_ERR_TYPE;
}

static pl_status num_i64(num n, bool allow_bool, int64_t *out) {
    if (n.is_bool && !allow_bool) return PL_ERR_TYPE;
    if (n.kind == NUM_SIGNED) { *out = n.i; return PL_OK; }
    if (n.kind == NUM_UNSIGNED) {
        if (n.u > (uint64_t)INT64_MAX) return PL_ERR_RANGE;
        *out = (int64_t)n.u;
        return PL_OK;
    }
    return PL_ERR_TYPE;
}

static pl_status num_f64(num n, double *out) {
    if (n.kind != NUM_FLOAT) return PL_ERR_TYPE;
    *out = n.f;
    return PL_OK;
}

/* f64 -> f32: finite values beyond float's range are PL_ERR_RANGE (inf/nan pass through). */
static pl_status num_f32(num n, float *out) {
    double d;
    pl_status st = num_f64(n, &d);
    if (st != PL_OK) return st;
    if (isfinite(d) && fabs(d) > FLT_MAX) return PL_ERR_RANGE;
    *out = (float)d;
    return PL_OK;
}

/* ---- metadata by index ---- */

int64_t pl_gguf_n_kv(const pl_gguf *g) { return g ? g->n_kv : 0; }

static const gguf_kv *kv_at(const pl_gguf *g, int64_t i) {
    return g && i >= 0 && i < g->n_kv ? &g->kv[i] : NULL;
}

pl_str pl_gguf_kv_key(const pl_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv) return (pl_str){ NULL, 0 };
    return (pl_str){ (const char *)g->base + kv->key_off, kv->key_len };
}

uint32_t pl_gguf_kv_type(const pl_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv ? kv->type : PL_GGUF_TYPE_COUNT;
}

int64_t pl_gguf_find_key(const pl_gguf *g, const char *key) {
    if (!g || !key || g->n_kv == 0) return -1;
    size_t len = strlen(key);
    uint64_t h = gguf_hash(key, len);
    for (uint64_t s = h & g->kv_mask;; s = (s + 1) & g->kv_mask) {
        uint64_t e = g->kv_slots[s];
        if (e == 0) return -1;
        const gguf_kv *kv = &g->kv[e - 1];
        if (kv->hash == h && kv->key_len == len && memcmp(g->base + kv->key_off, key, len) == 0)
            return (int64_t)(e - 1);
    }
}

static num kv_num(const pl_gguf *g, const gguf_kv *kv) { return load_num(kv->type, g->base + kv->val_off); }

pl_status pl_gguf_kv_u64(const pl_gguf *g, int64_t i, uint64_t *out) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || !out) return kv ? PL_ERR_INVALID_ARG : PL_ERR_RANGE;
    return num_u64(kv_num(g, kv), true, out);
}

pl_status pl_gguf_kv_i64(const pl_gguf *g, int64_t i, int64_t *out) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || !out) return kv ? PL_ERR_INVALID_ARG : PL_ERR_RANGE;
    return num_i64(kv_num(g, kv), true, out);
}

pl_status pl_gguf_kv_f64(const pl_gguf *g, int64_t i, double *out) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || !out) return kv ? PL_ERR_INVALID_ARG : PL_ERR_RANGE;
    return num_f64(kv_num(g, kv), out);
}

pl_status pl_gguf_kv_str(const pl_gguf *g, int64_t i, pl_str *out) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || !out) return kv ? PL_ERR_INVALID_ARG : PL_ERR_RANGE;
    if (kv->type != PL_GGUF_TYPE_STRING) return PL_ERR_TYPE;
    out->len = (size_t)gguf_rd_u64(g->base + kv->val_off);
    out->ptr = (const char *)g->base + kv->val_off + 8;
    return PL_OK;
}

pl_status pl_gguf_kv_arr(const pl_gguf *g, int64_t i, pl_gguf_arr *out) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || !out) return kv ? PL_ERR_INVALID_ARG : PL_ERR_RANGE;
    if (kv->type != PL_GGUF_TYPE_ARRAY) return PL_ERR_TYPE;
    *out = (pl_gguf_arr){ .g = g, .elem_type = kv->elem_type, .count = kv->count,
                          .data = g->base + kv->data_off, .index = kv->index };
    return PL_OK;
}

/* ---- metadata by key ---- */

static pl_status key_num(const pl_gguf *g, const char *key, num *n) {
    if (!g || !key) return PL_ERR_INVALID_ARG;
    int64_t i = pl_gguf_find_key(g, key);
    if (i < 0) return PL_ERR_NOT_FOUND;
    *n = kv_num(g, &g->kv[i]);
    return PL_OK;
}

pl_status pl_gguf_get_u64(const pl_gguf *g, const char *key, uint64_t *out) {
    num n;
    pl_status st = out ? key_num(g, key, &n) : PL_ERR_INVALID_ARG;
    return st != PL_OK ? st : num_u64(n, false, out);
}

pl_status pl_gguf_get_i64(const pl_gguf *g, const char *key, int64_t *out) {
    num n;
    pl_status st = out ? key_num(g, key, &n) : PL_ERR_INVALID_ARG;
    return st != PL_OK ? st : num_i64(n, false, out);
}

pl_status pl_gguf_get_u32(const pl_gguf *g, const char *key, uint32_t *out) {
    uint64_t v;
    pl_status st = out ? pl_gguf_get_u64(g, key, &v) : PL_ERR_INVALID_ARG;
    if (st != PL_OK) return st;
    if (v > UINT32_MAX) return PL_ERR_RANGE;
    *out = (uint32_t)v;
    return PL_OK;
}

pl_status pl_gguf_get_i32(const pl_gguf *g, const char *key, int32_t *out) {
    int64_t v;
    pl_status st = out ? pl_gguf_get_i64(g, key, &v) : PL_ERR_INVALID_ARG;
    if (st != PL_OK) return st;
    if (v < INT32_MIN || v > INT32_MAX) return PL_ERR_RANGE;
    *out = (int32_t)v;
    return PL_OK;
}

pl_status pl_gguf_get_f64(const pl_gguf *g, const char *key, double *out) {
    num n;
    pl_status st = out ? key_num(g, key, &n) : PL_ERR_INVALID_ARG;
    return st != PL_OK ? st : num_f64(n, out);
}

pl_status pl_gguf_get_f32(const pl_gguf *g, const char *key, float *out) {
    num n;
    pl_status st = out ? key_num(g, key, &n) : PL_ERR_INVALID_ARG;
    return st != PL_OK ? st : num_f32(n, out);
}

pl_status pl_gguf_get_bool(const pl_gguf *g, const char *key, bool *out) {
    num n;
    pl_status st = out ? key_num(g, key, &n) : PL_ERR_INVALID_ARG;
    if (st != PL_OK) return st;
    if (!n.is_bool) return PL_ERR_TYPE;
    *out = n.u != 0;
    return PL_OK;
}

pl_status pl_gguf_get_str(const pl_gguf *g, const char *key, pl_str *out) {
    if (!g || !key || !out) return PL_ERR_INVALID_ARG;
    int64_t i = pl_gguf_find_key(g, key);
    return i < 0 ? PL_ERR_NOT_FOUND : pl_gguf_kv_str(g, i, out);
}

pl_status pl_gguf_get_arr(const pl_gguf *g, const char *key, pl_gguf_arr *out) {
    if (!g || !key || !out) return PL_ERR_INVALID_ARG;
    int64_t i = pl_gguf_find_key(g, key);
    return i < 0 ? PL_ERR_NOT_FOUND : pl_gguf_kv_arr(g, i, out);
}

/* ---- array elements ---- */

static pl_status arr_num(const pl_gguf_arr *a, uint64_t i, num *n) {
    if (!a || !a->g) return PL_ERR_INVALID_ARG;
    if (i >= a->count) return PL_ERR_RANGE;
    uint32_t esz = gguf_scalar_size(a->elem_type);
    if (esz == 0) return PL_ERR_TYPE;
    *n = load_num(a->elem_type, (const uint8_t *)a->data + i * esz);
    return PL_OK;
}

pl_status pl_gguf_arr_u64(const pl_gguf_arr *a, uint64_t i, uint64_t *out) {
    num n;
    pl_status st = out ? arr_num(a, i, &n) : PL_ERR_INVALID_ARG;
    return st != PL_OK ? st : num_u64(n, true, out);
}

pl_status pl_gguf_arr_i64(const pl_gguf_arr *a, uint64_t i, int64_t *out) {
    num n;
    pl_status st = out ? arr_num(a, i, &n) : PL_ERR_INVALID_ARG;
    return st != PL_OK ? st : num_i64(n, true, out);
}

pl_status pl_gguf_arr_f64(const pl_gguf_arr *a, uint64_t i, double *out) {
    num n;
    pl_status st = out ? arr_num(a, i, &n) : PL_ERR_INVALID_ARG;
    return st != PL_OK ? st : num_f64(n, out);
}

pl_status pl_gguf_arr_f32(const pl_gguf_arr *a, uint64_t i, float *out) {
    num n;
    pl_status st = out ? arr_num(a, i, &n) : PL_ERR_INVALID_ARG;
    return st != PL_OK ? st : num_f32(n, out);
}

pl_status pl_gguf_arr_str(const pl_gguf_arr *a, uint64_t i, pl_str *out) {
    if (!a || !a->g || !out) return PL_ERR_INVALID_ARG;
    if (i >= a->count) return PL_ERR_RANGE;
    if (a->elem_type != PL_GGUF_TYPE_STRING) return PL_ERR_TYPE;
    const uint8_t *p = a->g->base + a->g->idx[a->index + i];
    out->len = (size_t)gguf_rd_u64(p);
    out->ptr = (const char *)p + 8;
    return PL_OK;
}

pl_status pl_gguf_arr_arr(const pl_gguf_arr *a, uint64_t i, pl_gguf_arr *out) {
    if (!a || !a->g || !out) return PL_ERR_INVALID_ARG;
    if (i >= a->count) return PL_ERR_RANGE;
    if (a->elem_type != PL_GGUF_TYPE_ARRAY) return PL_ERR_TYPE;
    const uint64_t *e = &a->g->idx[a->index + 2 * i];
    const uint8_t *p = a->g->base + e[0];
    uint32_t et = gguf_rd_u32(p);
    uint64_t count = gguf_rd_u64(p + 4);
    bool indexed = et == PL_GGUF_TYPE_STRING || et == PL_GGUF_TYPE_ARRAY;
    *out = (pl_gguf_arr){ .g = a->g, .elem_type = et, .count = count, .data = p + 12,
                          .index = indexed ? e[1] : 0 };
    return PL_OK;
}

/* ---- tensors ---- */

int64_t pl_gguf_n_tensors(const pl_gguf *g) { return g ? g->n_tensors : 0; }

pl_status pl_gguf_tensor_at(const pl_gguf *g, int64_t i, pl_gguf_tensor *out) {
    if (!g || !out) return PL_ERR_INVALID_ARG;
    if (i < 0 || i >= g->n_tensors) return PL_ERR_RANGE;
    const gguf_tensor *t = &g->tensors[i];
    *out = (pl_gguf_tensor){ .name = { (const char *)g->base + t->name_off, t->name_len },
                             .type = t->type, .n_dims = t->n_dims, .offset = t->offset,
                             .nbytes = t->nbytes,
                             .data = g->base + g->data_offset + t->offset };
    memcpy(out->ne, t->ne, sizeof t->ne);
    return PL_OK;
}

int64_t pl_gguf_find_tensor(const pl_gguf *g, const char *name) {
    if (!g || !name || g->n_tensors == 0) return -1;
    size_t len = strlen(name);
    uint64_t h = gguf_hash(name, len);
    for (uint64_t s = h & g->t_mask;; s = (s + 1) & g->t_mask) {
        uint64_t e = g->t_slots[s];
        if (e == 0) return -1;
        const gguf_tensor *t = &g->tensors[e - 1];
        if (t->hash == h && t->name_len == len && memcmp(g->base + t->name_off, name, len) == 0)
            return (int64_t)(e - 1);
    }
}
