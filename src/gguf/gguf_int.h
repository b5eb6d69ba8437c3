/*
 * gguf_int.h - private structures shared by the GGUF reader, getters and writer.
 *
 * The reader keeps the mapping as is and builds a small index next to it:
 *  - one gguf_kv per metadata entry and one gguf_tensor per tensor info;
 *  - idx[]: u64 file offsets, so string-array and array-of-array elements are
 *    O(1) to reach. A STRING array of n elements owns n entries (offset of each
 *    element's u64 length prefix). An ARRAY array of n elements owns 2n entries:
 *    [2i] offset of element i's header (u32 type, u64 count), [2i+1] where
 *    element i's own entries start (meaningless when it holds scalars).
 *    Entries are laid out in pre-order, so a single walk fills them.
 *  - two open-addressing hash tables (keys, tensor names), 2x the count
 *    rounded up to a power of two, slots hold index+1 (0 = empty).
 */
#ifndef PL_GGUF_INT_H
#define PL_GGUF_INT_H

#include <stdint.h>
#include <string.h>

#include "parley/gguf.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "parley's GGUF code assumes a little-endian host"
#endif

/* Limits on untrusted structure (the format itself has none). */
#define GGUF_MAX_NAME_LEN   65535u      /* keys and tensor names */
#define GGUF_MAX_DEPTH      8           /* arrays inside arrays, counting the top one */
#define GGUF_MAX_INDEX      (1ull << 30) /* idx entries (string/array elements): 8 GiB of index */

/* Smallest encodings, used to reject absurd counts before walking or allocating. */
#define GGUF_HEADER_SIZE    24u   /* magic, version, n_tensors, n_kv */
#define GGUF_MIN_KV_SIZE    14u   /* u64 key len + 1 key byte + u32 type + 1-byte value */
#define GGUF_MIN_TINFO_SIZE 33u   /* u64 len + 1 name byte + u32 n_dims + 1 u64 dim + u32 type + u64 offset */
#define GGUF_STRING_MIN     8u    /* u64 length, empty string */
#define GGUF_ARRAY_MIN      12u   /* u32 type + u64 count, empty array */

typedef struct gguf_kv {
    uint64_t key_off;   /* key bytes in the file */
    uint64_t hash;      /* FNV-1a of the key */
    uint32_t key_len;
    uint32_t type;      /* pl_gguf_type */
    uint64_t val_off;   /* first byte of the value */
    uint64_t val_len;   /* bytes of the value (copy_kv copies them verbatim) */
    /* arrays only */
    uint32_t elem_type;
    uint64_t count;
    uint64_t data_off;  /* first element */
    uint64_t index;     /* first idx[] entry of the elements */
} gguf_kv;

typedef struct gguf_tensor {
    uint64_t name_off;
    uint64_t hash;
    uint32_t name_len;
    uint32_t type;
    int      n_dims;
    int64_t  ne[PL_GGUF_MAX_DIMS];
    uint64_t offset;    /* relative to the data section */
    uint64_t nbytes;
} gguf_tensor;

struct pl_gguf {
    pl_ctx        *ctx;
    const uint8_t *base;
    uint64_t       size;
    void          *map;      /* mmap'd region (NULL for open_memory) */
    size_t         map_len;
    uint32_t       version;
    uint32_t       alignment;
    uint64_t       data_offset;
    int64_t        n_kv;
    int64_t        n_tensors;
    gguf_kv       *kv;
    gguf_tensor   *tensors;
    uint64_t      *idx;
    uint64_t       n_idx;
    uint64_t      *kv_slots;  /* hash slots: kv index + 1, 0 = empty */
    uint64_t       kv_mask;
    uint64_t      *t_slots;
    uint64_t       t_mask;
};

/* Bytes of one element of a scalar value type; 0 for STRING, ARRAY and unknown ids. */
uint32_t gguf_scalar_size(uint32_t type);

static inline uint64_t gguf_hash(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static inline uint64_t gguf_rd_u64(const void *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline uint32_t gguf_rd_u32(const void *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Validate `n` serialized elements of `elem_type` in buf[0..size) at nesting depth
 * `depth` (1 = a top-level array's elements); they must fill the buffer exactly.
 * Used by the writer to check pre-serialized array bytes. On failure writes a
 * one-line reason into err. */
pl_status gguf_check_elems(const void *buf, size_t size, uint32_t elem_type, uint64_t n,
                           int depth, char *err, size_t err_cap);

#endif /* PL_GGUF_INT_H */
