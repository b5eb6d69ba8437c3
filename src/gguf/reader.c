/*
 * reader.c - GGUF v2/v3 reader: map the file, validate all of it, index it.
 *
 * Two walks over the header, both bounded by the file size (every element
 * consumes at least one byte, every string or nested array at least 8):
 *  1. validate: every length, type, count, dimension and size is checked
 *     against the bytes that remain; nothing is allocated, so a hostile count
 *     costs at most one walk of the file, never memory.
 *  2. fill: allocate exactly what walk 1 proved is needed (kv and tensor
 *     tables, the element index, the hash tables) and record offsets; duplicate
 *     names and tensor extents (which need the data-section start) are checked
 *     here.
 * Cost: O(file header bytes) time; memory ~72 B per kv, ~80 B per tensor, 8 B
 * per string-array element (16 B per nested-array element).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf/gguf_int.h"
#include "parley/tensor.h"

typedef struct parser {
    const uint8_t *base;
    uint64_t       size;
    uint64_t       pos;
    uint64_t      *idx;    /* walk 2: where element offsets go; NULL in walk 1 */
    uint64_t       n_idx;  /* idx entries reserved so far */
    char           where[160]; /* "kv 3 ('general.name')", "tensor 0 ('output.weight')" */
    char           err[512];
} parser;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static pl_status perr(parser *p, pl_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    return st;
}

/* Printable, bounded rendering of a name for one-line messages. */
static void show_name(char *dst, size_t cap, const uint8_t *s, uint64_t len) {
    size_t o = 0;
    const uint64_t max = 64;
    for (uint64_t i = 0; i < len && i < max && o + 1 < cap; i++)
        dst[o++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'') ? (char)s[i] : '?';
    if (len > max && o + 4 < cap) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o < cap ? o : cap - 1] = '\0';
}

/* "kv 3 ('x') element 5": the current place joined with `what`, for messages. */
static const char *place(const parser *p, const char *what, char *buf, size_t cap) {
    snprintf(buf, cap, "%s%s%s", p->where, p->where[0] && what[0] ? " " : "", what);
    if (!buf[0]) snprintf(buf, cap, "value");
    return buf;
}

static pl_status need(parser *p, uint64_t n, const char *what) {
    if (p->size - p->pos >= n) return PL_OK;
    char pl[256];
    return perr(p, PL_ERR_FORMAT, "truncated file: %s at offset %" PRIu64 " (size %" PRIu64 ")",
                place(p, what, pl, sizeof pl), p->pos, p->size);
}

static pl_status rd_u32(parser *p, const char *what, uint32_t *v) {
    pl_status st = need(p, 4, what);
    if (st != PL_OK) return st;
    *v = gguf_rd_u32(p->base + p->pos);
    p->pos += 4;
    return PL_OK;
}

static pl_status rd_u64(parser *p, const char *what, uint64_t *v) {
    pl_status st = need(p, 8, what);
    if (st != PL_OK) return st;
    *v = gguf_rd_u64(p->base + p->pos);
    p->pos += 8;
    return PL_OK;
}

/* u64 length + bytes; *off gets the offset of the bytes. */
static pl_status rd_str(parser *p, const char *what, uint64_t *off, uint64_t *len) {
    char w[96];
    snprintf(w, sizeof w, "%s length", what);
    pl_status st = rd_u64(p, w, len);
    if (st != PL_OK) return st;
    if (*len > p->size - p->pos) {
        char pl[256];
        return perr(p, PL_ERR_FORMAT,
                    "truncated file: %s length %" PRIu64 " past end of file at offset %" PRIu64
                    " (size %" PRIu64 ")",
                    place(p, what, pl, sizeof pl), *len, p->pos, p->size);
    }
    *off = p->pos;
    p->pos += *len;
    return PL_OK;
}

uint32_t gguf_scalar_size(uint32_t type) {
    static const uint8_t sizes[PL_GGUF_TYPE_COUNT] = {
        [PL_GGUF_TYPE_UINT8] = 1,   [PL_GGUF_TYPE_INT8] = 1,    [PL_GGUF_TYPE_UINT16] = 2,
        [PL_GGUF_TYPE_INT16] = 2,   [PL_GGUF_TYPE_UINT32] = 4,  [PL_GGUF_TYPE_INT32] = 4,
        [PL_GGUF_TYPE_FLOAT32] = 4, [PL_GGUF_TYPE_BOOL] = 1,    [PL_GGUF_TYPE_STRING] = 0,
        [PL_GGUF_TYPE_ARRAY] = 0,   [PL_GGUF_TYPE_UINT64] = 8,  [PL_GGUF_TYPE_INT64] = 8,
        [PL_GGUF_TYPE_FLOAT64] = 8,
    };
    return type < PL_GGUF_TYPE_COUNT ? sizes[type] : 0;
}

const char *pl_gguf_type_name(uint32_t type) {
    static const char *const names[PL_GGUF_TYPE_COUNT] = {
        [PL_GGUF_TYPE_UINT8] = "u8",    [PL_GGUF_TYPE_INT8] = "i8",      [PL_GGUF_TYPE_UINT16] = "u16",
        [PL_GGUF_TYPE_INT16] = "i16",   [PL_GGUF_TYPE_UINT32] = "u32",   [PL_GGUF_TYPE_INT32] = "i32",
        [PL_GGUF_TYPE_FLOAT32] = "f32", [PL_GGUF_TYPE_BOOL] = "bool",    [PL_GGUF_TYPE_STRING] = "string",
        [PL_GGUF_TYPE_ARRAY] = "array", [PL_GGUF_TYPE_UINT64] = "u64",   [PL_GGUF_TYPE_INT64] = "i64",
        [PL_GGUF_TYPE_FLOAT64] = "f64",
    };
    return type < PL_GGUF_TYPE_COUNT ? names[type] : "unknown";
}

typedef struct arr_info {
    uint32_t elem_type;
    uint64_t count;
    uint64_t data_off;
    uint64_t index;
} arr_info;

static pl_status parse_array(parser *p, int depth, const char *what, arr_info *ai);

/* n elements of elem_type starting at p->pos; depth is the enclosing array's. */
static pl_status parse_elems(parser *p, uint32_t et, uint64_t count, int depth, const char *what,
                             uint64_t *index_out) {
    uint32_t esz = gguf_scalar_size(et);
    uint64_t left = p->size - p->pos;
    char pl[256];
    place(p, what, pl, sizeof pl);
    *index_out = 0;
    if (esz) {
        uint64_t bytes;
        if (!pl_u64_mul(count, esz, &bytes))
            return perr(p, PL_ERR_FORMAT, "%s: array count %" PRIu64 " x %u bytes overflows",
                        pl, count, esz);
        if (bytes > left)
            return perr(p, PL_ERR_FORMAT,
                        "truncated file: %s array of %" PRIu64 " %s (%" PRIu64
                        " bytes) past end of file at offset %" PRIu64 " (size %" PRIu64 ")",
                        pl, count, pl_gguf_type_name(et), bytes, p->pos, p->size);
        p->pos += bytes;
        return PL_OK;
    }
    /* STRING or ARRAY elements: at least 8 / 12 bytes each, so an absurd count
     * fails here, before any walking. */
    uint64_t min = et == PL_GGUF_TYPE_STRING ? GGUF_STRING_MIN : GGUF_ARRAY_MIN;
    if (count > left / min)
        return perr(p, PL_ERR_FORMAT,
                    "truncated file: %s array of %" PRIu64 " %ss needs at least %" PRIu64
                    " bytes each, only %" PRIu64 " left at offset %" PRIu64 " (size %" PRIu64 ")",
                    pl, count, pl_gguf_type_name(et), min, left, p->pos, p->size);
    uint64_t per = et == PL_GGUF_TYPE_STRING ? 1 : 2;
    if (count * per > GGUF_MAX_INDEX - p->n_idx) /* count <= size/8: no overflow */
        return perr(p, PL_ERR_UNSUPPORTED, "%s: too many array elements in the file (limit %llu)",
                    pl, (unsigned long long)GGUF_MAX_INDEX);
    uint64_t base = p->n_idx;
    p->n_idx += count * per;
    *index_out = base;
    char w[96];
    for (uint64_t i = 0; i < count; i++) {
        uint64_t off = p->pos;
        pl_status st;
        if (et == PL_GGUF_TYPE_STRING) {
            /* Hot loop (vocabularies hold 10^5 strings): label only on error. */
            uint64_t left_now = p->size - p->pos;
            if (left_now >= 8 && gguf_rd_u64(p->base + p->pos) <= left_now - 8) {
                p->pos += 8 + gguf_rd_u64(p->base + p->pos);
                if (p->idx) p->idx[base + i] = off;
                continue;
            }
            snprintf(w, sizeof w, "%s%selement %" PRIu64, what, what[0] ? " " : "", i);
            uint64_t so, sl;
            st = rd_str(p, w, &so, &sl); /* fails, with the message */
        } else {
            snprintf(w, sizeof w, "%s%selement %" PRIu64, what, what[0] ? " " : "", i);
            if (p->idx) {
                p->idx[base + 2 * i] = off;
                p->idx[base + 2 * i + 1] = p->n_idx;
            }
            arr_info sub;
            st = parse_array(p, depth + 1, w, &sub);
        }
        if (st != PL_OK) return st;
    }
    return PL_OK;
}

/* An array value (u32 elem type, u64 count, elements) at nesting depth `depth` (>= 1). */
static pl_status parse_array(parser *p, int depth, const char *what, arr_info *ai) {
    char pl[256];
    place(p, what, pl, sizeof pl);
    if (depth > GGUF_MAX_DEPTH)
        return perr(p, PL_ERR_FORMAT, "%s: arrays nested deeper than %d levels", pl, GGUF_MAX_DEPTH);
    char w[112];
    snprintf(w, sizeof w, "%s%sarray element type", what, what[0] ? " " : "");
    pl_status st = rd_u32(p, w, &ai->elem_type);
    if (st != PL_OK) return st;
    if (ai->elem_type >= PL_GGUF_TYPE_COUNT)
        return perr(p, PL_ERR_FORMAT, "%s: unknown array element type %u", pl, ai->elem_type);
    snprintf(w, sizeof w, "%s%sarray count", what, what[0] ? " " : "");
    st = rd_u64(p, w, &ai->count);
    if (st != PL_OK) return st;
    ai->data_off = p->pos;
    return parse_elems(p, ai->elem_type, ai->count, depth, what, &ai->index);
}

pl_status gguf_check_elems(const void *buf, size_t size, uint32_t elem_type, uint64_t n, int depth,
                           char *err, size_t err_cap) {
    parser p = { .base = buf, .size = size };
    pl_status st;
    uint64_t index;
    if (elem_type >= PL_GGUF_TYPE_COUNT)
        st = perr(&p, PL_ERR_INVALID_ARG, "unknown array element type %u", elem_type);
    else if (depth > GGUF_MAX_DEPTH)
        st = perr(&p, PL_ERR_INVALID_ARG, "arrays nested deeper than %d levels", GGUF_MAX_DEPTH);
    else
        st = parse_elems(&p, elem_type, n, depth, "", &index);
    if (st == PL_OK && p.pos != size)
        st = perr(&p, PL_ERR_INVALID_ARG, "%" PRIu64 " elements end at byte %" PRIu64 " of %zu", n,
                  p.pos, size);
    if (st != PL_OK && err_cap) snprintf(err, err_cap, "%s", p.err);
    return st == PL_OK ? PL_OK : PL_ERR_INVALID_ARG;
}

/* ---- hash tables ---- */

static uint64_t slots_for(uint64_t n) {
    uint64_t s = 2;
    while (s < 2 * n) s <<= 1;
    return s;
}

/* Insert entry i (hash h, name at off/len); returns the clashing index or -1. */
static int64_t hash_insert(const pl_gguf *g, uint64_t *slots, uint64_t mask, uint64_t h, uint64_t off,
                           uint32_t len, int64_t i, bool tensors) {
    for (uint64_t s = h & mask;; s = (s + 1) & mask) {
        if (slots[s] == 0) {
            slots[s] = (uint64_t)i + 1;
            return -1;
        }
        int64_t j = (int64_t)slots[s] - 1;
        uint64_t jh = tensors ? g->tensors[j].hash : g->kv[j].hash;
        uint64_t joff = tensors ? g->tensors[j].name_off : g->kv[j].key_off;
        uint32_t jlen = tensors ? g->tensors[j].name_len : g->kv[j].key_len;
        if (jh == h && jlen == len && memcmp(g->base + joff, g->base + off, len) == 0) return j;
    }
}

/* ---- the walks ---- */

static pl_status parse_kvs(parser *p, pl_gguf *g, int64_t n_kv, uint32_t *alignment) {
    for (int64_t i = 0; i < n_kv; i++) {
        snprintf(p->where, sizeof p->where, "kv %" PRId64, i);
        uint64_t key_len;
        pl_status st = rd_u64(p, "key length", &key_len);
        if (st != PL_OK) return st;
        if (key_len == 0) return perr(p, PL_ERR_FORMAT, "%s: empty key", p->where);
        if (key_len > GGUF_MAX_NAME_LEN)
            return perr(p, PL_ERR_FORMAT, "%s: key length %" PRIu64 " exceeds the limit %u", p->where,
                        key_len, GGUF_MAX_NAME_LEN);
        if (key_len > p->size - p->pos)
            return perr(p, PL_ERR_FORMAT,
                        "truncated file: %s key length %" PRIu64 " past end of file at offset %" PRIu64
                        " (size %" PRIu64 ")",
                        p->where, key_len, p->pos, p->size);
        uint64_t key_off = p->pos;
        p->pos += key_len;
        char shown[80];
        show_name(shown, sizeof shown, p->base + key_off, key_len);
        snprintf(p->where, sizeof p->where, "kv %" PRId64 " ('%s')", i, shown);

        uint32_t type;
        if ((st = rd_u32(p, "value type", &type)) != PL_OK) return st;
        if (type >= PL_GGUF_TYPE_COUNT)
            return perr(p, PL_ERR_FORMAT, "%s: unknown value type %u", p->where, type);
        uint64_t val_off = p->pos;
        arr_info ai = { 0 };
        if (type == PL_GGUF_TYPE_ARRAY) {
            st = parse_array(p, 1, "", &ai);
        } else if (type == PL_GGUF_TYPE_STRING) {
            uint64_t so, sl;
            st = rd_str(p, "string", &so, &sl);
        } else {
            char w[32];
            snprintf(w, sizeof w, "%s value", pl_gguf_type_name(type));
            st = need(p, gguf_scalar_size(type), w);
            p->pos += st == PL_OK ? gguf_scalar_size(type) : 0;
        }
        if (st != PL_OK) return st;

        static const char align_key[] = "general.alignment";
        if (key_len == sizeof align_key - 1 && memcmp(p->base + key_off, align_key, key_len) == 0) {
            if (type != PL_GGUF_TYPE_UINT32)
                return perr(p, PL_ERR_FORMAT, "%s: general.alignment must be u32, not %s", p->where,
                            pl_gguf_type_name(type));
            uint32_t a = gguf_rd_u32(p->base + val_off);
            if (a == 0 || (a & (a - 1)) != 0)
                return perr(p, PL_ERR_FORMAT,
                            "%s: general.alignment %u is not a non-zero power of two", p->where, a);
            *alignment = a;
        }
        if (g) {
            gguf_kv *kv = &g->kv[i];
            *kv = (gguf_kv){ .key_off = key_off, .hash = gguf_hash(p->base + key_off, key_len),
                             .key_len = (uint32_t)key_len, .type = type, .val_off = val_off,
                             .val_len = p->pos - val_off, .elem_type = ai.elem_type,
                             .count = ai.count, .data_off = ai.data_off, .index = ai.index };
            int64_t j = hash_insert(g, g->kv_slots, g->kv_mask, kv->hash, key_off, kv->key_len, i, false);
            if (j >= 0)
                return perr(p, PL_ERR_FORMAT, "%s: duplicate key (also kv %" PRId64 ")", p->where, j);
        }
    }
    p->where[0] = '\0';
    return PL_OK;
}

static pl_status parse_tensor_infos(parser *p, pl_gguf *g, int64_t n_tensors) {
    for (int64_t i = 0; i < n_tensors; i++) {
        snprintf(p->where, sizeof p->where, "tensor %" PRId64, i);
        uint64_t name_len;
        pl_status st = rd_u64(p, "name length", &name_len);
        if (st != PL_OK) return st;
        if (name_len == 0) return perr(p, PL_ERR_FORMAT, "%s: empty name", p->where);
        if (name_len > GGUF_MAX_NAME_LEN)
            return perr(p, PL_ERR_FORMAT, "%s: name length %" PRIu64 " exceeds the limit %u", p->where,
                        name_len, GGUF_MAX_NAME_LEN);
        if (name_len > p->size - p->pos)
            return perr(p, PL_ERR_FORMAT,
                        "truncated file: %s name length %" PRIu64 " past end of file at offset %" PRIu64
                        " (size %" PRIu64 ")",
                        p->where, name_len, p->pos, p->size);
        uint64_t name_off = p->pos;
        p->pos += name_len;
        char shown[80];
        show_name(shown, sizeof shown, p->base + name_off, name_len);
        snprintf(p->where, sizeof p->where, "tensor %" PRId64 " ('%s')", i, shown);

        uint32_t n_dims;
        if ((st = rd_u32(p, "n_dims", &n_dims)) != PL_OK) return st;
        if (n_dims < 1 || n_dims > PL_GGUF_MAX_DIMS)
            return perr(p, PL_ERR_FORMAT, "%s: n_dims %u out of range 1..%d", p->where, n_dims,
                        PL_GGUF_MAX_DIMS);
        int64_t ne[PL_GGUF_MAX_DIMS] = { 1, 1, 1, 1 };
        for (uint32_t d = 0; d < n_dims; d++) {
            char w[16];
            snprintf(w, sizeof w, "ne[%u]", d);
            uint64_t v;
            if ((st = rd_u64(p, w, &v)) != PL_OK) return st;
            if ((int64_t)v < 0)
                return perr(p, PL_ERR_FORMAT, "%s: ne[%u] = %" PRId64 " is negative", p->where, d,
                            (int64_t)v);
            ne[d] = (int64_t)v;
        }
        uint32_t type;
        if ((st = rd_u32(p, "type", &type)) != PL_OK) return st;
        const pl_type_info *ti = pl_type_get(type);
        if (!ti)
            return perr(p, PL_ERR_UNSUPPORTED, "unsupported tensor type %u in tensor '%s' (tensor %" PRId64 ")",
                        type, shown, i);
        if (!pl_type_sized(type))
            return perr(p, PL_ERR_UNSUPPORTED,
                        "unsupported tensor type %s (%u, no known block layout) in tensor '%s' (tensor %" PRId64 ")",
                        ti->name, type, shown, i);
        /* Users compute element and row counts as products of dims: each product
         * must fit an int64, even when a zero dim makes the byte size 0. */
        uint64_t nel = 1;
        for (uint32_t d = 0; d < n_dims; d++)
            if (!pl_u64_mul(nel, ne[d] ? (uint64_t)ne[d] : 1, &nel) || nel > (uint64_t)INT64_MAX)
                return perr(p, PL_ERR_FORMAT, "%s: element count overflows (ne[%u] = %" PRId64 ")",
                            p->where, d, ne[d]);
        uint64_t nbytes;
        st = pl_type_tensor_bytes(type, (int)n_dims, ne, &nbytes);
        if (st == PL_ERR_OVERFLOW)
            return perr(p, PL_ERR_FORMAT, "%s: byte size of the %s tensor overflows", p->where, ti->name);
        if (st != PL_OK)
            return perr(p, PL_ERR_FORMAT, "%s: ne[0] = %" PRId64 " is not a multiple of the %s block size %u",
                        p->where, ne[0], ti->name, ti->block_size);
        uint64_t offset;
        if ((st = rd_u64(p, "offset", &offset)) != PL_OK) return st;
        if (g) {
            gguf_tensor *t = &g->tensors[i];
            *t = (gguf_tensor){ .name_off = name_off, .hash = gguf_hash(p->base + name_off, name_len),
                                .name_len = (uint32_t)name_len, .type = type, .n_dims = (int)n_dims,
                                .offset = offset, .nbytes = nbytes };
            memcpy(t->ne, ne, sizeof ne);
            int64_t j = hash_insert(g, g->t_slots, g->t_mask, t->hash, name_off, t->name_len, i, true);
            if (j >= 0)
                return perr(p, PL_ERR_FORMAT, "%s: duplicate tensor name (also tensor %" PRId64 ")",
                            p->where, j);
        }
    }
    p->where[0] = '\0';
    return PL_OK;
}

/* Tensor extents against the data section (walk 2, data_offset known). */
static pl_status check_extents(parser *p, const pl_gguf *g) {
    /* The data section may start past EOF only when there is nothing in it
     * (vocab-only files end right after the metadata, unpadded). */
    if (g->n_tensors > 0 && g->data_offset > g->size)
        return perr(p, PL_ERR_FORMAT,
                    "truncated file: data section at offset %" PRIu64 " past end of file (size %" PRIu64 ")",
                    g->data_offset, g->size);
    uint64_t avail = g->data_offset < g->size ? g->size - g->data_offset : 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        char shown[80];
        show_name(shown, sizeof shown, g->base + t->name_off, t->name_len);
        if (t->offset % g->alignment)
            return perr(p, PL_ERR_FORMAT, "tensor '%s': offset %" PRIu64 " is not a multiple of the alignment %u",
                        shown, t->offset, g->alignment);
        if (t->offset > avail)
            return perr(p, PL_ERR_FORMAT,
                        "tensor '%s': offset %" PRIu64 " past end of data (data section at %" PRIu64
                        ", file size %" PRIu64 ")",
                        shown, t->offset, g->data_offset, g->size);
        if (t->nbytes > avail - t->offset)
            return perr(p, PL_ERR_FORMAT,
                        "tensor '%s': offset %" PRIu64 " + %" PRIu64 " bytes past end of data (data section at %" PRIu64
                        ", file size %" PRIu64 ")",
                        shown, t->offset, t->nbytes, g->data_offset, g->size);
    }
    return PL_OK;
}

static pl_status parse_header(parser *p, uint32_t *version, uint64_t *n_tensors, uint64_t *n_kv) {
    if (p->size == 0) return perr(p, PL_ERR_FORMAT, "empty file");
    snprintf(p->where, sizeof p->where, "header");
    uint32_t magic;
    pl_status st = rd_u32(p, "magic", &magic);
    if (st != PL_OK) return st;
    if (magic != PL_GGUF_MAGIC) {
        const uint8_t *m = p->base;
        return perr(p, PL_ERR_FORMAT, "bad magic %02x %02x %02x %02x (not a GGUF file)", m[0], m[1],
                    m[2], m[3]);
    }
    if ((st = rd_u32(p, "version", version)) != PL_OK) return st;
    if (*version == 1)
        return perr(p, PL_ERR_UNSUPPORTED, "unsupported version 1 (GGUF v1 is obsolete; need v2 or v3)");
    if (*version != 2 && *version != 3)
        return perr(p, PL_ERR_UNSUPPORTED, "unsupported version %u (need 2 or 3)", *version);
    if ((st = rd_u64(p, "n_tensors", n_tensors)) != PL_OK) return st;
    if ((st = rd_u64(p, "n_kv", n_kv)) != PL_OK) return st;
    /* Absurd counts: each kv and tensor info has a minimum encoded size. */
    uint64_t left = p->size - p->pos;
    if (*n_kv > left / GGUF_MIN_KV_SIZE)
        return perr(p, PL_ERR_FORMAT,
                    "header: n_kv %" PRIu64 " too large: at %u bytes or more each they can't fit in the %" PRIu64
                    " bytes after the header (size %" PRIu64 ")",
                    *n_kv, GGUF_MIN_KV_SIZE, left, p->size);
    left -= *n_kv * GGUF_MIN_KV_SIZE;
    if (*n_tensors > left / GGUF_MIN_TINFO_SIZE)
        return perr(p, PL_ERR_FORMAT,
                    "header: n_tensors %" PRIu64 " too large: at %u bytes or more each they can't fit in the %" PRIu64
                    " bytes left after %" PRIu64 " kvs (size %" PRIu64 ")",
                    *n_tensors, GGUF_MIN_TINFO_SIZE, left, *n_kv, p->size);
    p->where[0] = '\0';
    return PL_OK;
}

static pl_status alloc_index(pl_gguf *g, uint64_t n_kv, uint64_t n_tensors, uint64_t n_idx) {
    pl_ctx *ctx = g->ctx;
    /* Counts are bounded by the file size (proven above), so these sizes are too. */
    if (n_kv) {
        g->kv = pl_calloc(ctx, n_kv, sizeof *g->kv);
        g->kv_mask = slots_for(n_kv) - 1;
        g->kv_slots = pl_calloc(ctx, g->kv_mask + 1, sizeof *g->kv_slots);
        if (!g->kv || !g->kv_slots) return PL_ERR_NOMEM;
    }
    if (n_tensors) {
        g->tensors = pl_calloc(ctx, n_tensors, sizeof *g->tensors);
        g->t_mask = slots_for(n_tensors) - 1;
        g->t_slots = pl_calloc(ctx, g->t_mask + 1, sizeof *g->t_slots);
        if (!g->tensors || !g->t_slots) return PL_ERR_NOMEM;
    }
    if (n_idx) {
        g->idx = pl_calloc(ctx, n_idx, sizeof *g->idx);
        if (!g->idx) return PL_ERR_NOMEM;
    }
    return PL_OK;
}

/* Validate and index base[0..size). On success takes ownership of map. */
static pl_status gguf_parse(pl_ctx *ctx, const char *path, const uint8_t *base, uint64_t size,
                            void *map, size_t map_len, pl_gguf **out) {
    parser p = { .base = base, .size = size };
    uint32_t version = 0, alignment = PL_GGUF_DEFAULT_ALIGNMENT;
    uint64_t n_tensors = 0, n_kv = 0;
    pl_gguf *g = NULL;

    /* Walk 1: validate, allocate nothing. */
    pl_status st = parse_header(&p, &version, &n_tensors, &n_kv);
    if (st == PL_OK) st = parse_kvs(&p, NULL, (int64_t)n_kv, &alignment);
    uint64_t infos_at = p.pos, n_idx = p.n_idx;
    if (st == PL_OK) st = parse_tensor_infos(&p, NULL, (int64_t)n_tensors);
    uint64_t data_offset = 0;
    if (st == PL_OK && !pl_u64_add(p.pos, alignment - 1, &data_offset))
        st = perr(&p, PL_ERR_FORMAT, "data section offset overflows");
    data_offset &= ~(uint64_t)(alignment - 1);

    /* Walk 2: allocate what walk 1 proved, record offsets, check names and extents. */
    if (st == PL_OK) {
        g = pl_calloc(ctx, 1, sizeof *g);
        if (!g) {
            st = perr(&p, PL_ERR_NOMEM, "out of memory");
        } else {
            *g = (pl_gguf){ .ctx = ctx, .base = base, .size = size, .map = map, .map_len = map_len,
                            .version = version, .alignment = alignment, .data_offset = data_offset,
                            .n_kv = (int64_t)n_kv, .n_tensors = (int64_t)n_tensors, .n_idx = n_idx };
            map = NULL; /* owned by g now */
            st = alloc_index(g, n_kv, n_tensors, n_idx);
            if (st != PL_OK) {
                perr(&p, st, "out of memory for the index (%" PRIu64 " kvs, %" PRIu64
                             " tensors, %" PRIu64 " elements)", n_kv, n_tensors, n_idx);
            } else {
                p.pos = GGUF_HEADER_SIZE;
                p.n_idx = 0;
                p.idx = g->idx;
                st = parse_kvs(&p, g, g->n_kv, &alignment);
                if (st == PL_OK) {
                    p.pos = infos_at;
                    st = parse_tensor_infos(&p, g, g->n_tensors);
                }
                if (st == PL_OK) st = check_extents(&p, g);
            }
        }
    }
    if (st != PL_OK) {
        pl_gguf_free(g);
        if (map) munmap(map, map_len);
        if (path) return pl_ctx_err(ctx, st, "gguf: %s: %s", path, p.err);
        return pl_ctx_err(ctx, st, "gguf: %s", p.err);
    }
    *out = g;
    return PL_OK;
}

pl_status pl_gguf_open_memory(pl_ctx *ctx, const void *data, size_t size, pl_gguf **out) {
    if (!ctx) return PL_ERR_INVALID_ARG;
    if (!out) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "gguf: out is NULL");
    *out = NULL;
    if (!data && size) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "gguf: data is NULL");
    static const uint8_t empty = 0;
    return gguf_parse(ctx, NULL, data ? data : &empty, size, NULL, 0, out);
}

pl_status pl_gguf_open(pl_ctx *ctx, const char *path, pl_gguf **out) {
    if (!ctx) return PL_ERR_INVALID_ARG;
    if (!out) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "gguf: out is NULL");
    *out = NULL;
    if (!path) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "gguf: path is NULL");
    char eb[128];
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        return pl_ctx_err(ctx, e == ENOENT ? PL_ERR_NOT_FOUND : PL_ERR_IO, "gguf: %s: cannot open: %s",
                          path, strerror_r(e, eb, sizeof eb));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return pl_ctx_err(ctx, PL_ERR_IO, "gguf: %s: cannot stat: %s", path, strerror_r(e, eb, sizeof eb));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return pl_ctx_err(ctx, PL_ERR_IO, "gguf: %s: not a regular file", path);
    }
    if (sb.st_size == 0) {
        close(fd);
        return pl_ctx_err(ctx, PL_ERR_FORMAT, "gguf: %s: empty file", path);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return pl_ctx_err(ctx, PL_ERR_UNSUPPORTED, "gguf: %s: file too large to map", path);
    }
    size_t len = (size_t)sb.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file alive */
    if (map == MAP_FAILED)
        return pl_ctx_err(ctx, PL_ERR_IO, "gguf: %s: cannot map: %s", path, strerror_r(e, eb, sizeof eb));
    return gguf_parse(ctx, path, map, len, map, len, out);
}

void pl_gguf_free(pl_gguf *g) {
    if (!g) return;
    pl_ctx *ctx = g->ctx;
    pl_free(ctx, g->kv);
    pl_free(ctx, g->kv_slots);
    pl_free(ctx, g->tensors);
    pl_free(ctx, g->t_slots);
    pl_free(ctx, g->idx);
    if (g->map) munmap(g->map, g->map_len);
    pl_free(ctx, g);
}
