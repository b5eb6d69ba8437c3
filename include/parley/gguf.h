/*
 * parley/gguf.h - GGUF v2/v3 reader (read-only mmap, no copies) and writer.
 *
 * Reader
 *  - pl_gguf_open() maps the file read-only and validates ALL of it before
 *    returning: every count, string length, array length, dimension, offset and
 *    dims x type-size product is checked (overflow-safe) against the file size.
 *    A bad file yields PL_ERR_FORMAT (or PL_ERR_UNSUPPORTED for an unknown version or
 *    tensor type without a layout) and a one-line message naming the field, in
 *    pl_ctx_last_error(ctx), e.g. "gguf: PATH: truncated file: kv 3
 *    ('general.name') string length 4096 past end of file at offset 120 (size 130)".
 *    Rules beyond the format: keys and tensor names are 1..65535 bytes, arrays
 *    nest at most 8 deep, n_dims is 1..4, dims are >= 0 (a 0 dim makes an empty
 *    tensor) with the product of the non-zero dims fitting an int64, ne[0] is a multiple of the
 *    type's block size, general.alignment (when present) is a u32 non-zero power
 *    of two, tensor offsets are multiples of it and every tensor lies inside the
 *    file (tensors may overlap). Tensor types that are retired, unknown, or have
 *    no known block layout (IQ*, TQ*) are refused with PL_ERR_UNSUPPORTED, since
 *    their extent can't be checked. Duplicate keys or tensor names are refused.
 *    A file without tensors may end right after its metadata (no padding).
 *  - Nothing is allocated until the whole header has been walked and proven to
 *    fit the file, so hostile counts cost no memory.
 *  - Strings point into the mapping and are NOT NUL-terminated: use pl_str.
 *    They stay valid until pl_gguf_free().
 *  - Memory: the mapping, plus an index of O(n_kv + n_tensors + total string
 *    array elements) 8-byte entries (so string-array element i is O(1)).
 *  - Thread-safety: an opened pl_gguf is immutable; all getters may be called
 *    from any number of threads at once.
 *
 * Writer
 *  - Collects metadata (copied) and tensor descriptions (data borrowed or
 *    produced by a callback at write time, so multi-GB files stream through a
 *    small buffer), then writes a v3 file with general.alignment padding.
 *  - Single-thread object.
 */
#ifndef PARLEY_GGUF_H
#define PARLEY_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PL_GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */
#define PL_GGUF_DEFAULT_ALIGNMENT 32
#define PL_GGUF_MAX_DIMS 4

/* Metadata value types (ids are the file format). */
typedef enum pl_gguf_type {
    PL_GGUF_TYPE_UINT8   = 0,
    PL_GGUF_TYPE_INT8    = 1,
    PL_GGUF_TYPE_UINT16  = 2,
    PL_GGUF_TYPE_INT16   = 3,
    PL_GGUF_TYPE_UINT32  = 4,
    PL_GGUF_TYPE_INT32   = 5,
    PL_GGUF_TYPE_FLOAT32 = 6,
    PL_GGUF_TYPE_BOOL    = 7,
    PL_GGUF_TYPE_STRING  = 8,
    PL_GGUF_TYPE_ARRAY   = 9,
    PL_GGUF_TYPE_UINT64  = 10,
    PL_GGUF_TYPE_INT64   = 11,
    PL_GGUF_TYPE_FLOAT64 = 12,
    PL_GGUF_TYPE_COUNT
} pl_gguf_type;

/* "u32", "string", "array", ...; "unknown" when out of range. */
const char *pl_gguf_type_name(uint32_t type);

/* A byte string inside the mapping (not NUL-terminated). */
typedef struct pl_str {
    const char *ptr;
    size_t      len;
} pl_str;

/* An array value. For scalar element types `data` points at `count` packed
 * little-endian elements in the mapping (possibly unaligned: read with memcpy or
 * the pl_gguf_arr_* helpers). For STRING and ARRAY elements use the helpers. */
typedef struct pl_gguf_arr {
    const struct pl_gguf *g;
    uint32_t    elem_type; /* pl_gguf_type */
    uint64_t    count;
    const void *data;      /* first element */
    uint64_t    index;     /* internal: where this array's element index starts (strings/arrays) */
} pl_gguf_arr;

typedef struct pl_gguf_tensor {
    pl_str      name;
    uint32_t    type;             /* pl_type (ggml type id) */
    int         n_dims;           /* 1..4 */
    int64_t     ne[PL_GGUF_MAX_DIMS]; /* ne[0] innermost; unused dims are 1 */
    uint64_t    offset;           /* relative to the data section */
    uint64_t    nbytes;           /* ne product x type size / block size */
    const void *data;             /* in the mapping */
} pl_gguf_tensor;

typedef struct pl_gguf pl_gguf;

/* Open and validate a file (read-only mmap, MAP_PRIVATE). On failure *out is NULL
 * and the message is in pl_ctx_last_error(ctx): PL_ERR_NOT_FOUND when the path
 * doesn't exist, PL_ERR_IO when it can't be opened/mapped or is not a regular
 * file, PL_ERR_FORMAT for an empty or malformed file. */
pl_status pl_gguf_open(pl_ctx *ctx, const char *path, pl_gguf **out);
/* Same over caller memory, which must outlive the object (tests, fuzzing). */
pl_status pl_gguf_open_memory(pl_ctx *ctx, const void *data, size_t size, pl_gguf **out);
void pl_gguf_free(pl_gguf *g);

uint32_t pl_gguf_version(const pl_gguf *g);
uint32_t pl_gguf_alignment(const pl_gguf *g);
uint64_t pl_gguf_file_size(const pl_gguf *g);
/* Absolute start of the data section: the end of the tensor infos rounded up to
 * the alignment (may lie past the end of a file that has no tensors). */
uint64_t pl_gguf_data_offset(const pl_gguf *g);
const void *pl_gguf_base(const pl_gguf *g);     /* start of the mapping */

/* ---- metadata ---- */
int64_t pl_gguf_n_kv(const pl_gguf *g);
/* Key of kv i, in file order; {NULL, 0} when i is out of range. */
pl_str pl_gguf_kv_key(const pl_gguf *g, int64_t i);
/* Value type of kv i; PL_GGUF_TYPE_COUNT when i is out of range. */
uint32_t pl_gguf_kv_type(const pl_gguf *g, int64_t i);
/* Index of key (hashed, O(1) expected) or -1. */
int64_t pl_gguf_find_key(const pl_gguf *g, const char *key);

/* Typed getters by key. PL_ERR_NOT_FOUND when absent, PL_ERR_TYPE when the stored type
 * can't convert, PL_ERR_RANGE when an integer doesn't fit. Integer getters accept
 * any stored integer type whose value fits (files disagree on u32 vs i32), not
 * bool; float getters accept f32 and f64 (get_f32: PL_ERR_RANGE for a finite f64
 * beyond float's range); bool accepts bool only. These never set error text. */
pl_status pl_gguf_get_u32(const pl_gguf *g, const char *key, uint32_t *out);
pl_status pl_gguf_get_i32(const pl_gguf *g, const char *key, int32_t *out);
pl_status pl_gguf_get_u64(const pl_gguf *g, const char *key, uint64_t *out);
pl_status pl_gguf_get_i64(const pl_gguf *g, const char *key, int64_t *out);
pl_status pl_gguf_get_f32(const pl_gguf *g, const char *key, float *out);
pl_status pl_gguf_get_f64(const pl_gguf *g, const char *key, double *out);
pl_status pl_gguf_get_bool(const pl_gguf *g, const char *key, bool *out);
pl_status pl_gguf_get_str(const pl_gguf *g, const char *key, pl_str *out);
pl_status pl_gguf_get_arr(const pl_gguf *g, const char *key, pl_gguf_arr *out);

/* Same by kv index (for listing); PL_ERR_RANGE when i is out of range. The integer
 * readers also accept bool (as 0/1). */
pl_status pl_gguf_kv_u64(const pl_gguf *g, int64_t i, uint64_t *out);  /* any unsigned/non-negative int, bool */
pl_status pl_gguf_kv_i64(const pl_gguf *g, int64_t i, int64_t *out);   /* any int that fits, bool */
pl_status pl_gguf_kv_f64(const pl_gguf *g, int64_t i, double *out);    /* f32, f64 */
pl_status pl_gguf_kv_str(const pl_gguf *g, int64_t i, pl_str *out);
pl_status pl_gguf_kv_arr(const pl_gguf *g, int64_t i, pl_gguf_arr *out);

/* Array element access, i < arr->count (PL_ERR_RANGE otherwise, PL_ERR_TYPE on a type
 * mismatch). The numeric readers convert like the kv-index readers above (integers
 * and bool for _u64/_i64, f32/f64 for _f64/_f32). O(1). */
pl_status pl_gguf_arr_u64(const pl_gguf_arr *a, uint64_t i, uint64_t *out);
pl_status pl_gguf_arr_i64(const pl_gguf_arr *a, uint64_t i, int64_t *out);
pl_status pl_gguf_arr_f64(const pl_gguf_arr *a, uint64_t i, double *out);
pl_status pl_gguf_arr_f32(const pl_gguf_arr *a, uint64_t i, float *out);
pl_status pl_gguf_arr_str(const pl_gguf_arr *a, uint64_t i, pl_str *out);
pl_status pl_gguf_arr_arr(const pl_gguf_arr *a, uint64_t i, pl_gguf_arr *out); /* nested */

/* ---- tensors ---- */
int64_t pl_gguf_n_tensors(const pl_gguf *g);
/* Fills *out for tensor i (0 <= i < n). PL_ERR_RANGE otherwise. */
pl_status pl_gguf_tensor_at(const pl_gguf *g, int64_t i, pl_gguf_tensor *out);
/* Index of the named tensor (hashed) or -1. */
int64_t pl_gguf_find_tensor(const pl_gguf *g, const char *name);

/* pl_str helpers */
bool pl_str_eq(pl_str s, const char *cstr);
/* Copy into buf (truncating, always NUL-terminated when cap > 0); returns s.len. */
size_t pl_str_copy(pl_str s, char *buf, size_t cap);

/* ---- writer ---- */

typedef struct pl_gguf_writer pl_gguf_writer;

/* Produce `n` bytes of tensor data starting at byte `offset` of the tensor into buf.
 * Called in order, in chunks of at most 1 MiB (not aligned to rows or blocks). A
 * status other than PL_OK aborts the write and is returned by it. */
typedef pl_status (*pl_gguf_fill_fn)(void *ud, void *buf, uint64_t offset, size_t n);

pl_status pl_gguf_writer_init(pl_ctx *ctx, pl_gguf_writer **out);
void pl_gguf_writer_free(pl_gguf_writer *w);
/* One-line text of the last failed writer call ("gguf writer: ..."). */
const char *pl_gguf_writer_last_error(const pl_gguf_writer *w);

/* Metadata setters copy key and value. Setting an existing key fails with
 * PL_ERR_EXISTS (files with duplicate keys are invalid). Insertion order is kept.
 * general.alignment set here (u32, a power of two) is honoured by the writer;
 * any other type or value for it is PL_ERR_INVALID_ARG. Keys are 1..65535 bytes.
 * A failed call leaves the writer as it was. */
pl_status pl_gguf_writer_set_u8(pl_gguf_writer *w, const char *key, uint8_t v);
pl_status pl_gguf_writer_set_i8(pl_gguf_writer *w, const char *key, int8_t v);
pl_status pl_gguf_writer_set_u16(pl_gguf_writer *w, const char *key, uint16_t v);
pl_status pl_gguf_writer_set_i16(pl_gguf_writer *w, const char *key, int16_t v);
pl_status pl_gguf_writer_set_u32(pl_gguf_writer *w, const char *key, uint32_t v);
pl_status pl_gguf_writer_set_i32(pl_gguf_writer *w, const char *key, int32_t v);
pl_status pl_gguf_writer_set_u64(pl_gguf_writer *w, const char *key, uint64_t v);
pl_status pl_gguf_writer_set_i64(pl_gguf_writer *w, const char *key, int64_t v);
pl_status pl_gguf_writer_set_f32(pl_gguf_writer *w, const char *key, float v);
pl_status pl_gguf_writer_set_f64(pl_gguf_writer *w, const char *key, double v);
pl_status pl_gguf_writer_set_bool(pl_gguf_writer *w, const char *key, bool v);
pl_status pl_gguf_writer_set_str(pl_gguf_writer *w, const char *key, const char *v);
pl_status pl_gguf_writer_set_strn(pl_gguf_writer *w, const char *key, const char *v, size_t len);
/* Array of a scalar type: `data` holds n packed elements in host (little-endian) layout.
 * STRING/ARRAY element types are PL_ERR_INVALID_ARG here (use the two below). */
pl_status pl_gguf_writer_set_arr(pl_gguf_writer *w, const char *key, uint32_t elem_type,
                                 const void *data, uint64_t n);
/* Array of strings (lens NULL: NUL-terminated). */
pl_status pl_gguf_writer_set_arr_str(pl_gguf_writer *w, const char *key, const char *const *strs,
                                     const size_t *lens, uint64_t n);
/* Array of arrays: `raw` is the already-serialized element bytes (each element
 * is `u32 type, u64 count, elements`), n elements. For nested-array files. Any
 * elem_type works; raw is validated like file input (it must hold exactly n
 * elements, nested at most 8 deep) and PL_ERR_INVALID_ARG otherwise. */
pl_status pl_gguf_writer_set_arr_raw(pl_gguf_writer *w, const char *key, uint32_t elem_type,
                                     const void *raw, size_t raw_bytes, uint64_t n);
/* Copy one kv (any type, nested arrays included) from an opened file. */
pl_status pl_gguf_writer_copy_kv(pl_gguf_writer *w, const pl_gguf *src, int64_t i);

/* Tensors: name copied; data borrowed until the write (must hold nbytes), or
 * produced by fill at write time. Duplicate names -> PL_ERR_EXISTS; types without
 * a block layout -> PL_ERR_UNSUPPORTED; bad n_dims/dims (ne[0] must be a multiple
 * of the block size) -> PL_ERR_INVALID_ARG. Written in the order added. */
pl_status pl_gguf_writer_add_tensor(pl_gguf_writer *w, const char *name, uint32_t type, int n_dims,
                                    const int64_t *ne, const void *data);
pl_status pl_gguf_writer_add_tensor_fill(pl_gguf_writer *w, const char *name, uint32_t type,
                                         int n_dims, const int64_t *ne, pl_gguf_fill_fn fill,
                                         void *ud);

/* Write the file: to path.tmp (streamed through a 1 MiB buffer), fsync, then rename,
 * so a failure never leaves a partial file (path.tmp is removed). The writer can be
 * written again afterwards. */
pl_status pl_gguf_writer_write_file(pl_gguf_writer *w, const char *path);
/* Write into a new buffer allocated with pl_malloc(ctx); caller frees with pl_free. */
pl_status pl_gguf_writer_write_mem(pl_gguf_writer *w, void **out, size_t *out_size);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_GGUF_H */
