/*
 * writer.c - GGUF v3 writer.
 *
 * Metadata values are serialized when set (the writer owns the bytes), in
 * insertion order. Tensor data is borrowed or produced by a fill callback at
 * write time; both stream through one 1 MiB buffer to the file, so writing a
 * multi-GB model costs 1 MiB of memory. write_mem lays the same bytes into one
 * exact-size allocation instead.
 *
 * Layout written: header, kvs, tensor infos, zero padding to the alignment
 * (general.alignment when set, else 32), then each tensor at the next aligned
 * offset with zeroed padding between tensors. The file ends right after the
 * last tensor's bytes, or right after the metadata when there are no tensors.
 *
 * Duplicate keys/names are found by a linear scan: O(n) per add, fine for the
 * tens of keys and hundreds of tensors a model has.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gguf/gguf_int.h"
#include "parley/tensor.h"

#define WRITE_BUF_SIZE ((size_t)1 << 20)

typedef struct wkv {
    char    *key;
    size_t   key_len;
    uint32_t type;
    uint8_t *val; /* serialized value (what follows the type id in the file) */
    size_t   val_len;
} wkv;

typedef struct wtensor {
    char           *name;
    size_t          name_len;
    uint32_t        type;
    int             n_dims;
    int64_t         ne[PL_GGUF_MAX_DIMS];
    uint64_t        nbytes;
    uint64_t        offset; /* set by plan() */
    const void     *data;
    pl_gguf_fill_fn fill;
    void           *ud;
} wtensor;

struct pl_gguf_writer {
    pl_ctx  *ctx;
    wkv     *kv;
    size_t   n_kv, cap_kv;
    wtensor *t;
    size_t   n_t, cap_t;
    uint32_t alignment;
    char     err[512];
};

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static pl_status werr(pl_gguf_writer *w, pl_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(w->err, sizeof w->err, "gguf writer: ");
    vsnprintf(w->err + n, sizeof w->err - (size_t)n, fmt, ap);
    va_end(ap);
    return st;
}

pl_status pl_gguf_writer_init(pl_ctx *ctx, pl_gguf_writer **out) {
    if (!ctx) return PL_ERR_INVALID_ARG;
    if (!out) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "gguf writer: out is NULL");
    *out = NULL;
    pl_gguf_writer *w = pl_calloc(ctx, 1, sizeof *w);
    if (!w) return pl_ctx_err(ctx, PL_ERR_NOMEM, "gguf writer: out of memory");
    w->ctx = ctx;
    w->alignment = PL_GGUF_DEFAULT_ALIGNMENT;
    *out = w;
    return PL_OK;
}

void pl_gguf_writer_free(pl_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        pl_free(w->ctx, w->kv[i].key);
        pl_free(w->ctx, w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) pl_free(w->ctx, w->t[i].name);
    pl_free(w->ctx, w->kv);
    pl_free(w->ctx, w->t);
    pl_free(w->ctx, w);
}

const char *pl_gguf_writer_last_error(const pl_gguf_writer *w) { return w ? w->err : ""; }

/* Grow a table to hold one more element. */
static bool grow(pl_ctx *ctx, void **arr, size_t *cap, size_t n, size_t elem) {
    if (n < *cap) return true;
    size_t nc = *cap ? *cap * 2 : 16, bytes;
    if (!pl_size_mul(nc, elem, &bytes)) return false;
    void *p = pl_realloc(ctx, *arr, bytes);
    if (!p) return false;
    *arr = p;
    *cap = nc;
    return true;
}

static char *dup_bytes(pl_ctx *ctx, const void *s, size_t n) {
    char *p = pl_malloc(ctx, n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static bool name_ok(pl_gguf_writer *w, const char *what, const char *name, size_t len, pl_status *st) {
    if (!name || len == 0) {
        *st = werr(w, PL_ERR_INVALID_ARG, "empty %s", what);
        return false;
    }
    if (len > GGUF_MAX_NAME_LEN) {
        *st = werr(w, PL_ERR_INVALID_ARG, "%s length %zu exceeds the limit %u", what, len, GGUF_MAX_NAME_LEN);
        return false;
    }
    return true;
}

/* Add a kv whose value (val_len bytes) the caller writes through *val_out;
 * the entry only counts once kv_commit() accepts it. */
static pl_status kv_begin(pl_gguf_writer *w, const char *key, size_t key_len, uint32_t type,
                          size_t val_len, uint8_t **val_out) {
    pl_status st;
    if (!name_ok(w, "key", key, key_len, &st)) return st;
    for (size_t i = 0; i < w->n_kv; i++)
        if (w->kv[i].key_len == key_len && memcmp(w->kv[i].key, key, key_len) == 0)
            return werr(w, PL_ERR_EXISTS, "duplicate key '%.*s'", (int)(key_len > 200 ? 200 : key_len), key);
    if (!grow(w->ctx, (void **)&w->kv, &w->cap_kv, w->n_kv, sizeof *w->kv))
        return werr(w, PL_ERR_NOMEM, "out of memory adding key '%.*s'", (int)(key_len > 200 ? 200 : key_len), key);
    wkv *kv = &w->kv[w->n_kv];
    *kv = (wkv){ .key = dup_bytes(w->ctx, key, key_len), .key_len = key_len, .type = type,
                 .val = pl_malloc(w->ctx, val_len ? val_len : 1), .val_len = val_len };
    if (!kv->key || !kv->val) {
        pl_free(w->ctx, kv->key);
        pl_free(w->ctx, kv->val);
        return werr(w, PL_ERR_NOMEM, "out of memory for key '%.*s' (%zu-byte value)",
                    (int)(key_len > 200 ? 200 : key_len), key, val_len);
    }
    *val_out = kv->val;
    return PL_OK;
}

/* Accept the pending kv (general.alignment is checked and honoured here). */
static pl_status kv_commit(pl_gguf_writer *w) {
    wkv *kv = &w->kv[w->n_kv];
    static const char align_key[] = "general.alignment";
    if (kv->key_len == sizeof align_key - 1 && memcmp(kv->key, align_key, kv->key_len) == 0) {
        uint32_t a = kv->type == PL_GGUF_TYPE_UINT32 ? gguf_rd_u32(kv->val) : 0;
        if (kv->type != PL_GGUF_TYPE_UINT32 || a == 0 || (a & (a - 1)) != 0) {
            pl_free(w->ctx, kv->key);
            pl_free(w->ctx, kv->val);
            return werr(w, PL_ERR_INVALID_ARG, "general.alignment must be a u32 non-zero power of two");
        }
        w->alignment = a;
    }
    w->n_kv++;
    return PL_OK;
}

static pl_status set_scalar(pl_gguf_writer *w, const char *key, uint32_t type, const void *v) {
    if (!w) return PL_ERR_INVALID_ARG;
    size_t n = gguf_scalar_size(type);
    uint8_t *val;
    pl_status st = kv_begin(w, key, key ? strlen(key) : 0, type, n, &val);
    if (st != PL_OK) return st;
    memcpy(val, v, n);
    return kv_commit(w);
}

pl_status pl_gguf_writer_set_u8(pl_gguf_writer *w, const char *key, uint8_t v) { return set_scalar(w, key, PL_GGUF_TYPE_UINT8, &v); }
pl_status pl_gguf_writer_set_i8(pl_gguf_writer *w, const char *key, int8_t v) { return set_scalar(w, key, PL_GGUF_TYPE_INT8, &v); }
pl_status pl_gguf_writer_set_u16(pl_gguf_writer *w, const char *key, uint16_t v) { return set_scalar(w, key, PL_GGUF_TYPE_UINT16, &v); }
pl_status pl_gguf_writer_set_i16(pl_gguf_writer *w, const char *key, int16_t v) { return set_scalar(w, key, PL_GGUF_TYPE_INT16, &v); }
pl_status pl_gguf_writer_set_u32(pl_gguf_writer *w, const char *key, uint32_t v) { return set_scalar(w, key, PL_GGUF_TYPE_UINT32, &v); }
pl_status pl_gguf_writer_set_i32(pl_gguf_writer *w, const char *key, int32_t v) { return set_scalar(w, key, PL_GGUF_TYPE_INT32, &v); }
pl_status pl_gguf_writer_set_u64(pl_gguf_writer *w, const char *key, uint64_t v) { return set_scalar(w, key, PL_GGUF_TYPE_UINT64, &v); }
pl_status pl_gguf_writer_set_i64(pl_gguf_writer *w, const char *key, int64_t v) { return set_scalar(w, key, PL_GGUF_TYPE_INT64, &v); }
pl_status pl_gguf_writer_set_f32(pl_gguf_writer *w, const char *key, float v) { return set_scalar(w, key, PL_GGUF_TYPE_FLOAT32, &v); }
pl_status pl_gguf_writer_set_f64(pl_gguf_writer *w, const char *key, double v) { return set_scalar(w, key, PL_GGUF_TYPE_FLOAT64, &v); }

pl_status pl_gguf_writer_set_bool(pl_gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return set_scalar(w, key, PL_GGUF_TYPE_BOOL, &b);
}

pl_status pl_gguf_writer_set_strn(pl_gguf_writer *w, const char *key, const char *v, size_t len) {
    if (!w) return PL_ERR_INVALID_ARG;
    if (!v && len) return werr(w, PL_ERR_INVALID_ARG, "NULL string value");
    size_t total;
    if (!pl_size_add(len, 8, &total)) return werr(w, PL_ERR_OVERFLOW, "string too long");
    uint8_t *val;
    pl_status st = kv_begin(w, key, key ? strlen(key) : 0, PL_GGUF_TYPE_STRING, total, &val);
    if (st != PL_OK) return st;
    uint64_t n = len;
    memcpy(val, &n, 8);
    if (len) memcpy(val + 8, v, len);
    return kv_commit(w);
}

pl_status pl_gguf_writer_set_str(pl_gguf_writer *w, const char *key, const char *v) {
    if (!w) return PL_ERR_INVALID_ARG;
    if (!v) return werr(w, PL_ERR_INVALID_ARG, "NULL string value");
    return pl_gguf_writer_set_strn(w, key, v, strlen(v));
}

static void put_arr_header(uint8_t *val, uint32_t et, uint64_t n) {
    memcpy(val, &et, 4);
    memcpy(val + 4, &n, 8);
}

pl_status pl_gguf_writer_set_arr(pl_gguf_writer *w, const char *key, uint32_t elem_type,
                                 const void *data, uint64_t n) {
    if (!w) return PL_ERR_INVALID_ARG;
    size_t esz = gguf_scalar_size(elem_type), bytes, total;
    if (esz == 0)
        return werr(w, PL_ERR_INVALID_ARG, "set_arr takes scalar element types, not %s (use set_arr_str/set_arr_raw)",
                    pl_gguf_type_name(elem_type));
    if (!data && n) return werr(w, PL_ERR_INVALID_ARG, "NULL array data");
    if (n > SIZE_MAX || !pl_size_mul((size_t)n, esz, &bytes) || !pl_size_add(bytes, GGUF_ARRAY_MIN, &total))
        return werr(w, PL_ERR_OVERFLOW, "array of %" PRIu64 " %s overflows", n, pl_gguf_type_name(elem_type));
    uint8_t *val;
    pl_status st = kv_begin(w, key, key ? strlen(key) : 0, PL_GGUF_TYPE_ARRAY, total, &val);
    if (st != PL_OK) return st;
    put_arr_header(val, elem_type, n);
    if (bytes) memcpy(val + GGUF_ARRAY_MIN, data, bytes);
    return kv_commit(w);
}

pl_status pl_gguf_writer_set_arr_str(pl_gguf_writer *w, const char *key, const char *const *strs,
                                     const size_t *lens, uint64_t n) {
    if (!w) return PL_ERR_INVALID_ARG;
    if (!strs && n) return werr(w, PL_ERR_INVALID_ARG, "NULL string array");
    size_t total = GGUF_ARRAY_MIN;
    for (uint64_t i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : (strs[i] ? strlen(strs[i]) : 0);
        if (!strs[i] && len) return werr(w, PL_ERR_INVALID_ARG, "NULL string at element %" PRIu64, i);
        if (!pl_size_add(total, 8, &total) || !pl_size_add(total, len, &total))
            return werr(w, PL_ERR_OVERFLOW, "string array too large");
    }
    uint8_t *val;
    pl_status st = kv_begin(w, key, key ? strlen(key) : 0, PL_GGUF_TYPE_ARRAY, total, &val);
    if (st != PL_OK) return st;
    put_arr_header(val, PL_GGUF_TYPE_STRING, n);
    size_t o = GGUF_ARRAY_MIN;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = lens ? lens[i] : (strs[i] ? strlen(strs[i]) : 0);
        memcpy(val + o, &len, 8);
        if (len) memcpy(val + o + 8, strs[i], len);
        o += 8 + len;
    }
    return kv_commit(w);
}

pl_status pl_gguf_writer_set_arr_raw(pl_gguf_writer *w, const char *key, uint32_t elem_type,
                                     const void *raw, size_t raw_bytes, uint64_t n) {
    if (!w) return PL_ERR_INVALID_ARG;
    if (!raw && raw_bytes) return werr(w, PL_ERR_INVALID_ARG, "NULL raw array data");
    char why[256];
    if (gguf_check_elems(raw, raw_bytes, elem_type, n, 1, why, sizeof why) != PL_OK)
        return werr(w, PL_ERR_INVALID_ARG, "raw array for '%s' is not %" PRIu64 " valid %s elements: %s",
                    key ? key : "(null)", n, pl_gguf_type_name(elem_type), why);
    size_t total;
    if (!pl_size_add(raw_bytes, GGUF_ARRAY_MIN, &total)) return werr(w, PL_ERR_OVERFLOW, "raw array too large");
    uint8_t *val;
    pl_status st = kv_begin(w, key, key ? strlen(key) : 0, PL_GGUF_TYPE_ARRAY, total, &val);
    if (st != PL_OK) return st;
    put_arr_header(val, elem_type, n);
    if (raw_bytes) memcpy(val + GGUF_ARRAY_MIN, raw, raw_bytes);
    return kv_commit(w);
}

pl_status pl_gguf_writer_copy_kv(pl_gguf_writer *w, const pl_gguf *src, int64_t i) {
    if (!w) return PL_ERR_INVALID_ARG;
    if (!src || i < 0 || i >= src->n_kv)
        return werr(w, PL_ERR_RANGE, "copy_kv: no kv %" PRId64 " in the source", i);
    const gguf_kv *kv = &src->kv[i];
    if (kv->val_len > SIZE_MAX) return werr(w, PL_ERR_OVERFLOW, "copy_kv: value too large");
    uint8_t *val;
    pl_status st = kv_begin(w, (const char *)src->base + kv->key_off, kv->key_len, kv->type,
                            (size_t)kv->val_len, &val);
    if (st != PL_OK) return st;
    /* Validated when the source was opened: copied verbatim. */
    if (kv->val_len) memcpy(val, src->base + kv->val_off, (size_t)kv->val_len);
    return kv_commit(w);
}

/* ---- tensors ---- */

static pl_status add_tensor(pl_gguf_writer *w, const char *name, uint32_t type, int n_dims,
                            const int64_t *ne, const void *data, pl_gguf_fill_fn fill, void *ud) {
    if (!w) return PL_ERR_INVALID_ARG;
    size_t len = name ? strlen(name) : 0;
    pl_status st;
    if (!name_ok(w, "tensor name", name, len, &st)) return st;
    for (size_t i = 0; i < w->n_t; i++)
        if (w->t[i].name_len == len && memcmp(w->t[i].name, name, len) == 0)
            return werr(w, PL_ERR_EXISTS, "duplicate tensor name '%s'", name);
    if (n_dims < 1 || n_dims > PL_GGUF_MAX_DIMS || !ne)
        return werr(w, PL_ERR_INVALID_ARG, "tensor '%s': n_dims %d out of range 1..%d", name, n_dims,
                    PL_GGUF_MAX_DIMS);
    const pl_type_info *ti = pl_type_get(type);
    if (!ti || !pl_type_sized(type))
        return werr(w, PL_ERR_UNSUPPORTED, "tensor '%s': type %s (%u) has no known block layout", name,
                    pl_type_name(type), type);
    wtensor t = { .type = type, .n_dims = n_dims, .ne = { 1, 1, 1, 1 }, .data = data, .fill = fill, .ud = ud };
    uint64_t nel = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] < 0) return werr(w, PL_ERR_INVALID_ARG, "tensor '%s': ne[%d] = %" PRId64 " is negative", name, d, ne[d]);
        if (!pl_u64_mul(nel, ne[d] ? (uint64_t)ne[d] : 1, &nel) || nel > (uint64_t)INT64_MAX)
            return werr(w, PL_ERR_OVERFLOW, "tensor '%s': element count overflows", name);
        t.ne[d] = ne[d];
    }
    st = pl_type_tensor_bytes(type, n_dims, ne, &t.nbytes);
    if (st == PL_ERR_OVERFLOW) return werr(w, st, "tensor '%s': byte size overflows", name);
    if (st != PL_OK)
        return werr(w, PL_ERR_INVALID_ARG, "tensor '%s': ne[0] = %" PRId64 " is not a multiple of the %s block size %u",
                    name, ne[0], ti->name, ti->block_size);
    if (!data && !fill && t.nbytes)
        return werr(w, PL_ERR_INVALID_ARG, "tensor '%s': no data and no fill callback", name);
    if (!grow(w->ctx, (void **)&w->t, &w->cap_t, w->n_t, sizeof *w->t) || !(t.name = dup_bytes(w->ctx, name, len)))
        return werr(w, PL_ERR_NOMEM, "out of memory adding tensor '%s'", name);
    t.name_len = len;
    w->t[w->n_t++] = t;
    return PL_OK;
}

pl_status pl_gguf_writer_add_tensor(pl_gguf_writer *w, const char *name, uint32_t type, int n_dims,
                                    const int64_t *ne, const void *data) {
    return add_tensor(w, name, type, n_dims, ne, data, NULL, NULL);
}

pl_status pl_gguf_writer_add_tensor_fill(pl_gguf_writer *w, const char *name, uint32_t type,
                                         int n_dims, const int64_t *ne, pl_gguf_fill_fn fill,
                                         void *ud) {
    if (w && !fill) return werr(w, PL_ERR_INVALID_ARG, "tensor '%s': NULL fill callback", name ? name : "");
    return add_tensor(w, name, type, n_dims, ne, NULL, fill, ud);
}

/* ---- layout and output ---- */

/* Sizes of everything and each tensor's offset; false on overflow. */
static bool plan(pl_gguf_writer *w, uint64_t *data_offset, uint64_t *total) {
    uint64_t n = GGUF_HEADER_SIZE;
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kv[i];
        if (!pl_u64_add(n, 8 + 4 + (uint64_t)kv->key_len, &n) || !pl_u64_add(n, kv->val_len, &n)) return false;
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        if (!pl_u64_add(n, 8 + (uint64_t)t->name_len + 4 + 8 * (uint64_t)t->n_dims + 4 + 8, &n)) return false;
    }
    uint64_t a = w->alignment, cur = 0;
    if (!pl_u64_add(n, a - 1, data_offset)) return false;
    *data_offset &= ~(a - 1);
    for (size_t i = 0; i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        if (!pl_u64_add(cur, a - 1, &t->offset)) return false;
        t->offset &= ~(a - 1);
        if (!pl_u64_add(t->offset, t->nbytes, &cur)) return false;
    }
    /* No tensors: no data section, the file ends after the metadata (as
     * vocab-only files do), so copying such a file is byte-identical. */
    if (w->n_t == 0) {
        *data_offset = n;
        *total = n;
        return true;
    }
    return pl_u64_add(*data_offset, cur, total);
}

/* Output: a buffer that is either the whole result (fd < 0) or a 1 MiB
 * window flushed to fd. */
typedef struct sink {
    pl_gguf_writer *w;
    uint8_t *buf;
    size_t   cap, len;
    int      fd;
    const char *path; /* for messages (file output) */
    uint64_t pos; /* bytes emitted so far */
} sink;

static pl_status sink_flush(sink *s) {
    if (s->fd < 0) return s->len == s->cap ? werr(s->w, PL_ERR_INTERNAL, "layout size mismatch") : PL_OK;
    size_t o = 0;
    while (o < s->len) {
        ssize_t r = write(s->fd, s->buf + o, s->len - o);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            char eb[128];
            return werr(s->w, PL_ERR_IO, "%s: write failed at byte %" PRIu64 ": %s", s->path,
                        s->pos - s->len + o, strerror_r(r < 0 ? errno : EIO, eb, sizeof eb));
        }
        o += (size_t)r;
    }
    s->len = 0;
    return PL_OK;
}

/* Writable window of at least one byte. */
static pl_status sink_space(sink *s, uint8_t **p, size_t *avail) {
    if (s->len == s->cap) {
        pl_status st = sink_flush(s);
        if (st != PL_OK) return st;
    }
    *p = s->buf + s->len;
    *avail = s->cap - s->len;
    return PL_OK;
}

static pl_status sink_put(sink *s, const void *data, uint64_t n) {
    const uint8_t *d = data;
    while (n) {
        uint8_t *p;
        size_t avail;
        pl_status st = sink_space(s, &p, &avail);
        if (st != PL_OK) return st;
        size_t k = n < avail ? (size_t)n : avail;
        if (d) {
            memcpy(p, d, k);
            d += k;
        } else {
            memset(p, 0, k);
        }
        s->len += k;
        s->pos += k;
        n -= k;
    }
    return PL_OK;
}

static pl_status sink_u32(sink *s, uint32_t v) { return sink_put(s, &v, 4); }
static pl_status sink_u64(sink *s, uint64_t v) { return sink_put(s, &v, 8); }

static pl_status sink_fill(sink *s, const wtensor *t) {
    for (uint64_t done = 0; done < t->nbytes;) {
        uint8_t *p;
        size_t avail;
        pl_status st = sink_space(s, &p, &avail);
        if (st != PL_OK) return st;
        size_t k = t->nbytes - done < avail ? (size_t)(t->nbytes - done) : avail;
        st = t->fill(t->ud, p, done, k);
        if (st != PL_OK)
            return werr(s->w, st, "tensor '%s': fill callback failed at byte %" PRIu64 ": %s", t->name,
                        done, pl_status_str(st));
        s->len += k;
        s->pos += k;
        done += k;
    }
    return PL_OK;
}

static pl_status emit(pl_gguf_writer *w, sink *s, uint64_t data_offset) {
    pl_status st = PL_OK;
#define TRY(x) do { if ((st = (x)) != PL_OK) return st; } while (0)
    TRY(sink_u32(s, PL_GGUF_MAGIC));
    TRY(sink_u32(s, 3));
    TRY(sink_u64(s, w->n_t));
    TRY(sink_u64(s, w->n_kv));
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kv[i];
        TRY(sink_u64(s, kv->key_len));
        TRY(sink_put(s, kv->key, kv->key_len));
        TRY(sink_u32(s, kv->type));
        TRY(sink_put(s, kv->val, kv->val_len));
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        TRY(sink_u64(s, t->name_len));
        TRY(sink_put(s, t->name, t->name_len));
        TRY(sink_u32(s, (uint32_t)t->n_dims));
        for (int d = 0; d < t->n_dims; d++) TRY(sink_u64(s, (uint64_t)t->ne[d]));
        TRY(sink_u32(s, t->type));
        TRY(sink_u64(s, t->offset));
    }
    TRY(sink_put(s, NULL, data_offset - s->pos));
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        TRY(sink_put(s, NULL, data_offset + t->offset - s->pos));
        TRY(t->fill ? sink_fill(s, t) : sink_put(s, t->data, t->nbytes));
    }
#undef TRY
    return PL_OK;
}

pl_status pl_gguf_writer_write_mem(pl_gguf_writer *w, void **out, size_t *out_size) {
    if (!w) return PL_ERR_INVALID_ARG;
    if (!out || !out_size) return werr(w, PL_ERR_INVALID_ARG, "NULL output pointer");
    *out = NULL;
    *out_size = 0;
    uint64_t data_offset, total;
    if (!plan(w, &data_offset, &total) || total > SIZE_MAX)
        return werr(w, PL_ERR_OVERFLOW, "file size overflows");
    uint8_t *buf = pl_malloc(w->ctx, (size_t)total);
    if (!buf) return werr(w, PL_ERR_NOMEM, "out of memory for a %" PRIu64 "-byte file", total);
    sink s = { .w = w, .buf = buf, .cap = (size_t)total, .fd = -1 };
    pl_status st = emit(w, &s, data_offset);
    if (st == PL_OK && s.pos != total) st = werr(w, PL_ERR_INTERNAL, "wrote %" PRIu64 " of %" PRIu64 " bytes", s.pos, total);
    if (st != PL_OK) {
        pl_free(w->ctx, buf);
        return st;
    }
    *out = buf;
    *out_size = (size_t)total;
    return PL_OK;
}

pl_status pl_gguf_writer_write_file(pl_gguf_writer *w, const char *path) {
    if (!w) return PL_ERR_INVALID_ARG;
    if (!path || !*path) return werr(w, PL_ERR_INVALID_ARG, "empty path");
    uint64_t data_offset, total;
    if (!plan(w, &data_offset, &total)) return werr(w, PL_ERR_OVERFLOW, "file size overflows");
    size_t plen = strlen(path);
    char *tmp = pl_malloc(w->ctx, plen + 5);
    uint8_t *buf = pl_malloc(w->ctx, WRITE_BUF_SIZE);
    pl_status st = PL_OK;
    int fd = -1;
    char eb[128];
    if (!tmp || !buf) {
        st = werr(w, PL_ERR_NOMEM, "out of memory for the write buffer");
        goto done;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = werr(w, PL_ERR_IO, "%s: cannot create: %s", tmp, strerror_r(errno, eb, sizeof eb));
        goto done;
    }
    sink s = { .w = w, .buf = buf, .cap = WRITE_BUF_SIZE, .fd = fd, .path = tmp };
    st = emit(w, &s, data_offset);
    if (st == PL_OK) st = sink_flush(&s);
    if (st == PL_OK && s.pos != total)
        st = werr(w, PL_ERR_INTERNAL, "wrote %" PRIu64 " of %" PRIu64 " bytes", s.pos, total);
    if (st == PL_OK && fsync(fd) != 0)
        st = werr(w, PL_ERR_IO, "%s: fsync failed: %s", tmp, strerror_r(errno, eb, sizeof eb));
    int rc = close(fd);
    fd = -1;
    if (st == PL_OK && rc != 0) st = werr(w, PL_ERR_IO, "%s: close failed: %s", tmp, strerror_r(errno, eb, sizeof eb));
    if (st == PL_OK && rename(tmp, path) != 0)
        st = werr(w, PL_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror_r(errno, eb, sizeof eb));
    if (st != PL_OK) unlink(tmp);
done:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    pl_free(w->ctx, tmp);
    pl_free(w->ctx, buf);
    return st;
}
