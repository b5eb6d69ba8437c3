/*
 * test_gguf_malformed.c - the reader refuses hand-crafted bad files with the
 * right status and a message naming the field, allocates nothing for hostile
 * counts, and accepts the edge cases that are legal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "gguf_craft.h"
#include "parley/gguf.h"

/* ---- a valid base file with marks at each field, for truncation cases ----
 * header(v3, 1 tensor, 3 kvs)
 * kv0 "a.pad" = string of 64 'x'  (keeps the count pre-check satisfied when cut later)
 * kv1 "b.key" = u32 7
 * kv2 "c.arr" = array u32 [1, 2, 3]
 * tensor 0 "t" f32 [4, 2] at offset 0, padding to 32, 32 data bytes */
typedef struct marks {
    size_t kv1, kv1_type, kv1_val;
    size_t kv2_val;
    size_t t0, t0_ndims, t0_ne1, t0_type, t0_off, t0_end;
    size_t data;
} marks;

static marks M;

static void build_base(gb *b) {
    char pad[65];
    memset(pad, 'x', 64);
    pad[64] = 0;
    gb_header(b, 3, 1, 3);
    gb_kv_str(b, "a.pad", pad);
    M.kv1 = b->len;
    gb_str(b, "b.key");
    M.kv1_type = b->len;
    gb_u32(b, 4);
    M.kv1_val = b->len;
    gb_u32(b, 7);
    gb_key(b, "c.arr", 9);
    M.kv2_val = b->len;
    gb_u32(b, 4);
    gb_u64(b, 3);
    gb_u32(b, 1);
    gb_u32(b, 2);
    gb_u32(b, 3);
    M.t0 = b->len;
    gb_str(b, "t");
    M.t0_ndims = b->len;
    gb_u32(b, 2);
    gb_u64(b, 4);
    M.t0_ne1 = b->len;
    gb_u64(b, 2);
    M.t0_type = b->len;
    gb_u32(b, 0);
    M.t0_off = b->len;
    gb_u64(b, 0);
    M.t0_end = b->len;
    gb_pad_to(b, 32);
    M.data = b->len;
    for (int i = 0; i < 32; i++) gb_u8(b, (uint8_t)i);
}

/* A file with one kv (the case's) and no tensors. */
static void one_kv_header(gb *b) { gb_header(b, 3, 0, 1); }

/* A file with no kvs and one tensor described by the case, plus data. */
static void one_tensor(gb *b, uint32_t n_dims, const int64_t *ne, uint32_t type, uint64_t offset, size_t data) {
    gb_header(b, 3, 1, 0);
    gb_tinfo(b, "t", n_dims, ne, type, offset);
    gb_pad_to(b, 32);
    gb_bytes(b, NULL, data);
}

typedef struct bad_case {
    const char *name;
    void (*build)(gb *b);
    pl_status   want;
    const char *msg; /* substring of the error text */
} bad_case;

#define CUT(fn, at)                  \
    static void fn(gb *b) {          \
        build_base(b);               \
        b->len = (at);               \
    }

static void c_empty(gb *b) { (void)b; }
CUT(c_trunc_magic, 2)
static void c_bad_magic(gb *b) { build_base(b); b->p[3] = 'X'; }
CUT(c_trunc_version, 6)
static void c_version1(gb *b) { build_base(b); b->p[4] = 1; }
static void c_version99(gb *b) { build_base(b); b->p[4] = 99; }
CUT(c_trunc_ntensors, 12)
CUT(c_trunc_nkv, 20)
static void c_absurd_nkv(gb *b) { build_base(b); memcpy(b->p + 16, &(uint64_t){ 1ull << 60 }, 8); }
static void c_absurd_ntensors(gb *b) { build_base(b); memcpy(b->p + 8, &(uint64_t){ 1ull << 60 }, 8); }
static void c_max_nkv(gb *b) { build_base(b); memcpy(b->p + 16, &(uint64_t){ UINT64_MAX }, 8); }
CUT(c_trunc_key_len, M.kv1 + 3)
CUT(c_trunc_key, M.kv1 + 8 + 2)
CUT(c_trunc_type, M.kv1_type + 2)
CUT(c_trunc_value, M.kv1_val + 1)
CUT(c_trunc_arr_type, M.kv2_val + 1)
CUT(c_trunc_arr_count, M.kv2_val + 4 + 5)
CUT(c_trunc_arr_data, M.kv2_val + 12 + 5)
CUT(c_trunc_tname_len, M.t0 + 4)
CUT(c_trunc_tname, M.t0 + 8)
CUT(c_trunc_ndims, M.t0_ndims + 2)
CUT(c_trunc_ne1, M.t0_ne1 + 3)
CUT(c_trunc_ttype, M.t0_type + 1)
CUT(c_trunc_toff, M.t0_off + 7)
CUT(c_trunc_infos_end, M.t0_end)
CUT(c_trunc_data, M.data + 10)
static void c_str_past_eof(gb *b) {
    one_kv_header(b);
    gb_key(b, "general.name", 8);
    gb_u64(b, 4096);
    gb_bytes(b, "abc", 3);
}
static void c_key_past_eof(gb *b) {
    gb_header(b, 3, 0, 1);
    gb_u64(b, 1000);
    gb_bytes(b, "abcdefghijklmnopqrstuvwxyz", 26);
}
static void c_key_too_long(gb *b) {
    gb_header(b, 3, 0, 1);
    gb_u64(b, 70000);
    gb_bytes(b, NULL, 70010);
}
static void c_empty_key(gb *b) {
    gb_header(b, 3, 0, 1);
    gb_u64(b, 0);
    gb_u32(b, 4);
    gb_u32(b, 1);
    gb_bytes(b, NULL, 8);
}
static void c_unknown_type(gb *b) {
    one_kv_header(b);
    gb_key(b, "x.bad", 13);
    gb_u64(b, 0);
}
static void c_unknown_elem_type(gb *b) {
    one_kv_header(b);
    gb_key(b, "x.arr", 9);
    gb_u32(b, 13);
    gb_u64(b, 1);
    gb_u64(b, 0);
}
static void c_arr_overflow(gb *b) {
    one_kv_header(b);
    gb_key(b, "x.arr", 9);
    gb_u32(b, 4);
    gb_u64(b, 1ull << 62);
    gb_u64(b, 0);
}
static void c_arr_past_eof(gb *b) {
    one_kv_header(b);
    gb_key(b, "x.arr", 9);
    gb_u32(b, 4);
    gb_u64(b, 100);
    gb_bytes(b, NULL, 40);
}
static void c_strarr_absurd(gb *b) {
    one_kv_header(b);
    gb_key(b, "x.strs", 9);
    gb_u32(b, 8);
    gb_u64(b, 1ull << 61);
    gb_bytes(b, NULL, 64);
}
static void c_strarr_elem_past_eof(gb *b) {
    one_kv_header(b);
    gb_key(b, "x.strs", 9);
    gb_u32(b, 8);
    gb_u64(b, 3);
    gb_str(b, "ab");
    gb_str(b, "");
    gb_u64(b, 50); /* element 2 claims 50 bytes */
    gb_bytes(b, "xyz", 3);
}
static void nested(gb *b, int levels) {
    one_kv_header(b);
    gb_key(b, "x.deep", 9);
    for (int i = 0; i < levels - 1; i++) {
        gb_u32(b, 9);
        gb_u64(b, 1);
    }
    gb_u32(b, 0); /* innermost: one u8 */
    gb_u64(b, 1);
    gb_u8(b, 42);
}
static void c_nested9(gb *b) { nested(b, 9); }
static void c_dup_key(gb *b) {
    gb_header(b, 3, 0, 3);
    gb_kv_u32(b, "a.one", 1);
    gb_kv_u32(b, "b.two", 2);
    gb_kv_u32(b, "a.one", 3);
}
static void align_kv(gb *b, uint32_t type, uint64_t v) {
    gb_header(b, 3, 0, 1);
    gb_key(b, "general.alignment", type);
    if (type == 10) gb_u64(b, v);
    else gb_u32(b, (uint32_t)v);
}
static void c_align0(gb *b) { align_kv(b, 4, 0); }
static void c_align48(gb *b) { align_kv(b, 4, 48); }
static void c_align_u64(gb *b) { align_kv(b, 10, 64); }
static void c_ndims5(gb *b) { one_tensor(b, 5, (int64_t[]){ 1, 1, 1, 1, 1 }, 0, 0, 64); }
static void c_ndims0(gb *b) { one_tensor(b, 0, NULL, 0, 0, 64); }
static void c_neg_dim(gb *b) { one_tensor(b, 2, (int64_t[]){ 4, -3 }, 0, 0, 64); }
static void c_nel_overflow(gb *b) { one_tensor(b, 3, (int64_t[]){ 0, 1ll << 32, 1ll << 32 }, 0, 0, 64); }
static void c_bytes_overflow(gb *b) { one_tensor(b, 2, (int64_t[]){ 1ll << 31, 1ll << 31 }, 0, 0, 64); }
static void c_block_multiple(gb *b) { one_tensor(b, 2, (int64_t[]){ 33, 1 }, 8, 0, 64); }
static void c_unknown_ttype(gb *b) { one_tensor(b, 1, (int64_t[]){ 4 }, 99, 0, 64); }
static void c_retired_ttype(gb *b) { one_tensor(b, 1, (int64_t[]){ 32 }, 4, 0, 64); }
static void c_iq_ttype(gb *b) { one_tensor(b, 1, (int64_t[]){ 256 }, 16, 0, 256); }
static void c_off_past_eof(gb *b) { one_tensor(b, 1, (int64_t[]){ 4 }, 0, 4096, 64); }
static void c_off_size_past_eof(gb *b) { one_tensor(b, 1, (int64_t[]){ 100 }, 0, 0, 64); }
static void c_misaligned(gb *b) { one_tensor(b, 1, (int64_t[]){ 4 }, 0, 4, 64); }
static void c_dup_tensor(gb *b) {
    gb_header(b, 3, 2, 0);
    gb_tinfo(b, "same", 1, (int64_t[]){ 4 }, 0, 0);
    gb_tinfo(b, "same", 1, (int64_t[]){ 4 }, 0, 32);
    gb_pad_to(b, 32);
    gb_bytes(b, NULL, 64);
}
static void c_empty_tname(gb *b) {
    gb_header(b, 3, 1, 0);
    gb_tinfo(b, "", 1, (int64_t[]){ 4 }, 0, 0);
    gb_pad_to(b, 32);
    gb_bytes(b, NULL, 64);
}

static const bad_case cases[] = {
    { "empty",             c_empty,             PL_ERR_FORMAT,      "empty file" },
    { "trunc magic",       c_trunc_magic,       PL_ERR_FORMAT,      "truncated file: header magic at offset 0 (size 2)" },
    { "bad magic",         c_bad_magic,         PL_ERR_FORMAT,      "bad magic 47 47 55 58" },
    { "trunc version",     c_trunc_version,     PL_ERR_FORMAT,      "truncated file: header version at offset 4" },
    { "version 1",         c_version1,          PL_ERR_UNSUPPORTED, "unsupported version 1" },
    { "version 99",        c_version99,         PL_ERR_UNSUPPORTED, "unsupported version 99" },
    { "trunc n_tensors",   c_trunc_ntensors,    PL_ERR_FORMAT,      "header n_tensors at offset 8" },
    { "trunc n_kv",        c_trunc_nkv,         PL_ERR_FORMAT,      "header n_kv at offset 16" },
    { "absurd n_kv",       c_absurd_nkv,        PL_ERR_FORMAT,      "n_kv 1152921504606846976 too large" },
    { "absurd n_tensors",  c_absurd_ntensors,   PL_ERR_FORMAT,      "n_tensors 1152921504606846976 too large" },
    { "max n_kv",          c_max_nkv,           PL_ERR_FORMAT,      "n_kv 18446744073709551615 too large" },
    { "trunc key length",  c_trunc_key_len,     PL_ERR_FORMAT,      "truncated file: kv 1 key length at offset" },
    { "trunc key",         c_trunc_key,         PL_ERR_FORMAT,      "truncated file: kv 1 key length 5 past end of file" },
    { "trunc value type",  c_trunc_type,        PL_ERR_FORMAT,      "truncated file: kv 1 ('b.key') value type at offset" },
    { "trunc value",       c_trunc_value,       PL_ERR_FORMAT,      "truncated file: kv 1 ('b.key') u32 value at offset" },
    { "trunc arr type",    c_trunc_arr_type,    PL_ERR_FORMAT,      "kv 2 ('c.arr') array element type at offset" },
    { "trunc arr count",   c_trunc_arr_count,   PL_ERR_FORMAT,      "kv 2 ('c.arr') array count at offset" },
    { "trunc arr data",    c_trunc_arr_data,    PL_ERR_FORMAT,      "kv 2 ('c.arr') array of 3 u32 (12 bytes) past end of file" },
    { "trunc tname len",   c_trunc_tname_len,   PL_ERR_FORMAT,      "truncated file: tensor 0 name length at offset" },
    { "trunc tname",       c_trunc_tname,       PL_ERR_FORMAT,      "truncated file: tensor 0 name length 1 past end of file" },
    { "trunc n_dims",      c_trunc_ndims,       PL_ERR_FORMAT,      "truncated file: tensor 0 ('t') n_dims at offset" },
    { "trunc ne[1]",       c_trunc_ne1,         PL_ERR_FORMAT,      "truncated file: tensor 0 ('t') ne[1] at offset" },
    { "trunc ttype",       c_trunc_ttype,       PL_ERR_FORMAT,      "truncated file: tensor 0 ('t') type at offset" },
    { "trunc toffset",     c_trunc_toff,        PL_ERR_FORMAT,      "truncated file: tensor 0 ('t') offset at offset" },
    { "no data section",   c_trunc_infos_end,   PL_ERR_FORMAT,      "data section at offset" },
    { "trunc data",        c_trunc_data,        PL_ERR_FORMAT,      "tensor 't': offset 0 + 32 bytes past end of data" },
    { "string past eof",   c_str_past_eof,      PL_ERR_FORMAT,      "kv 0 ('general.name') string length 4096 past end of file at offset 56 (size 59)" },
    { "key past eof",      c_key_past_eof,      PL_ERR_FORMAT,      "kv 0 key length 1000 past end of file" },
    { "key too long",      c_key_too_long,      PL_ERR_FORMAT,      "kv 0: key length 70000 exceeds the limit 65535" },
    { "empty key",         c_empty_key,         PL_ERR_FORMAT,      "kv 0: empty key" },
    { "unknown type",      c_unknown_type,      PL_ERR_FORMAT,      "kv 0 ('x.bad'): unknown value type 13" },
    { "unknown elem type", c_unknown_elem_type, PL_ERR_FORMAT,      "kv 0 ('x.arr'): unknown array element type 13" },
    { "arr overflow",      c_arr_overflow,      PL_ERR_FORMAT,      "kv 0 ('x.arr'): array count 4611686018427387904 x 4 bytes overflows" },
    { "arr past eof",      c_arr_past_eof,      PL_ERR_FORMAT,      "kv 0 ('x.arr') array of 100 u32 (400 bytes) past end of file" },
    { "strarr absurd",     c_strarr_absurd,     PL_ERR_FORMAT,      "kv 0 ('x.strs') array of 2305843009213693952 strings needs at least 8 bytes each" },
    { "strarr elem eof",   c_strarr_elem_past_eof, PL_ERR_FORMAT,   "kv 0 ('x.strs') element 2 length 50 past end of file" },
    { "nested 9",          c_nested9,           PL_ERR_FORMAT,      "kv 0 ('x.deep') element 0 element 0 element 0 element 0 element 0 element 0 element 0 element 0: arrays nested deeper than 8" },
    { "dup key",           c_dup_key,           PL_ERR_FORMAT,      "kv 2 ('a.one'): duplicate key (also kv 0)" },
    { "alignment 0",       c_align0,            PL_ERR_FORMAT,      "general.alignment 0 is not a non-zero power of two" },
    { "alignment 48",      c_align48,           PL_ERR_FORMAT,      "general.alignment 48 is not a non-zero power of two" },
    { "alignment u64",     c_align_u64,         PL_ERR_FORMAT,      "general.alignment must be u32, not u64" },
    { "n_dims 5",          c_ndims5,            PL_ERR_FORMAT,      "tensor 0 ('t'): n_dims 5 out of range 1..4" },
    { "n_dims 0",          c_ndims0,            PL_ERR_FORMAT,      "tensor 0 ('t'): n_dims 0 out of range 1..4" },
    { "negative dim",      c_neg_dim,           PL_ERR_FORMAT,      "tensor 0 ('t'): ne[1] = -3 is negative" },
    { "nel overflow",      c_nel_overflow,      PL_ERR_FORMAT,      "tensor 0 ('t'): element count overflows" },
    { "bytes overflow",    c_bytes_overflow,    PL_ERR_FORMAT,      "tensor 0 ('t'): byte size of the f32 tensor overflows" },
    { "block multiple",    c_block_multiple,    PL_ERR_FORMAT,      "tensor 0 ('t'): ne[0] = 33 is not a multiple of the q8_0 block size 32" },
    { "unknown ttype",     c_unknown_ttype,     PL_ERR_UNSUPPORTED, "unsupported tensor type 99 in tensor 't'" },
    { "retired ttype",     c_retired_ttype,     PL_ERR_UNSUPPORTED, "unsupported tensor type 4 in tensor 't'" },
    { "iq ttype",          c_iq_ttype,          PL_ERR_UNSUPPORTED, "unsupported tensor type iq2_xxs (16, no known block layout) in tensor 't'" },
    { "offset past eof",   c_off_past_eof,      PL_ERR_FORMAT,      "tensor 't': offset 4096 past end of data" },
    { "offset+size eof",   c_off_size_past_eof, PL_ERR_FORMAT,      "tensor 't': offset 0 + 400 bytes past end of data" },
    { "misaligned",        c_misaligned,        PL_ERR_FORMAT,      "tensor 't': offset 4 is not a multiple of the alignment 32" },
    { "dup tensor",        c_dup_tensor,        PL_ERR_FORMAT,      "tensor 1 ('same'): duplicate tensor name (also tensor 0)" },
    { "empty tensor name", c_empty_tname,       PL_ERR_FORMAT,      "tensor 0: empty name" },
};

/* Every case: expected status, message substring with the "gguf: " prefix, no
 * object, nothing left allocated; and no index was allocated for hostile counts
 * (walk 1 fails before any allocation for every case but duplicates/extents). */
static void test_malformed_cases(void **state) {
    (void)state;
    size_t n = sizeof cases / sizeof cases[0];
    assert_true(n >= 25);
    for (size_t i = 0; i < n; i++) {
        const bad_case *c = &cases[i];
        gb b = { 0 };
        c->build(&b);
        pl_alloc_tracker tr;
        pl_alloc_tracker_reset(&tr);
        pl_ctx_params cp = pl_ctx_default_params();
        cp.alloc = pl_track_alloc;
        cp.alloc_ud = &tr;
        pl_ctx *ctx = NULL;
        assert_int_equal(pl_ctx_init(&ctx, &cp), PL_OK);
        int64_t base_peak = tr.peak;
        pl_gguf *g = (pl_gguf *)&b; /* must be reset to NULL */
        pl_status st = pl_gguf_open_memory(ctx, b.p, b.len, &g);
        const char *err = pl_ctx_last_error(ctx);
        if (st != c->want || !strstr(err, c->msg) || strncmp(err, "gguf: ", 6) != 0)
            fail_msg("case '%s': got %s \"%s\", want %s containing \"%s\"", c->name, pl_status_name(st), err,
                     pl_status_name(c->want), c->msg);
        if (getenv("PL_TEST_VERBOSE")) printf("  %-18s %s\n", c->name, err);
        assert_null(g);
        assert_null(strchr(err, '\n'));
        /* Hostile counts: never more than a few KiB (error text, if the ctx allocates it). */
        if (tr.peak - base_peak > 4096)
            fail_msg("case '%s': peak allocation %lld bytes", c->name, (long long)(tr.peak - base_peak));
        pl_ctx_free(ctx);
        assert_int_equal(tr.in_use, 0); /* nothing leaked */
        gb_free(&b);
    }
}

/* Every proper prefix of a valid file fails cleanly (FORMAT), never crashes. */
static void test_every_truncation(void **state) {
    (void)state;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    gb b = { 0 };
    build_base(&b);
    pl_gguf *g = NULL;
    assert_int_equal(pl_gguf_open_memory(ctx, b.p, b.len, &g), PL_OK);
    pl_gguf_free(g);
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan catches any overread */
        memcpy(copy, b.p, n);
        pl_status st = pl_gguf_open_memory(ctx, copy, n, &g);
        if (st != PL_ERR_FORMAT) fail_msg("prefix %zu: %s %s", n, pl_status_name(st), pl_ctx_last_error(ctx));
        assert_null(g);
        free(copy);
    }
    gb_free(&b);
    pl_ctx_free(ctx);
}

/* Legal edge cases: 8 levels of nesting, zero-size tensors, v2, a vocab-style
 * file that ends right after the metadata. */
static void test_legal_edges(void **state) {
    (void)state;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    pl_gguf *g = NULL;

    gb b = { 0 };
    nested(&b, 8);
    assert_int_equal(pl_gguf_open_memory(ctx, b.p, b.len, &g), PL_OK);
    pl_gguf_arr a;
    assert_int_equal(pl_gguf_get_arr(g, "x.deep", &a), PL_OK);
    for (int i = 0; i < 7; i++) {
        assert_int_equal(a.elem_type, PL_GGUF_TYPE_ARRAY);
        assert_int_equal(a.count, 1);
        pl_gguf_arr in;
        assert_int_equal(pl_gguf_arr_arr(&a, 0, &in), PL_OK);
        a = in;
    }
    uint64_t v;
    assert_int_equal(pl_gguf_arr_u64(&a, 0, &v), PL_OK);
    assert_int_equal(v, 42);
    pl_gguf_free(g);
    gb_free(&b);

    /* v2, a tensor with a zero dim at the very end of the data */
    gb_header(&b, 2, 2, 0);
    gb_tinfo(&b, "empty", 2, (int64_t[]){ 0, 7 }, 0, 32);
    gb_tinfo(&b, "full", 1, (int64_t[]){ 8 }, 0, 0);
    gb_pad_to(&b, 32);
    gb_bytes(&b, NULL, 32);
    assert_int_equal(pl_gguf_open_memory(ctx, b.p, b.len, &g), PL_OK);
    assert_int_equal(pl_gguf_version(g), 2);
    pl_gguf_tensor t;
    assert_int_equal(pl_gguf_tensor_at(g, pl_gguf_find_tensor(g, "empty"), &t), PL_OK);
    assert_int_equal(t.nbytes, 0);
    assert_int_equal(t.ne[0], 0);
    assert_int_equal(t.ne[1], 7);
    assert_int_equal(t.ne[2], 1);
    pl_gguf_free(g);
    gb_free(&b);

    /* no tensors, unpadded end */
    gb_header(&b, 3, 0, 1);
    gb_kv_str(&b, "general.name", "abc");
    assert_int_equal(b.len % 32 != 0, 1);
    assert_int_equal(pl_gguf_open_memory(ctx, b.p, b.len, &g), PL_OK);
    assert_int_equal(pl_gguf_data_offset(g), (b.len + 31) / 32 * 32);
    pl_gguf_free(g);
    gb_free(&b);

    /* tensors may overlap */
    gb_header(&b, 3, 2, 0);
    gb_tinfo(&b, "a", 1, (int64_t[]){ 8 }, 0, 0);
    gb_tinfo(&b, "b", 1, (int64_t[]){ 4 }, 0, 0);
    gb_pad_to(&b, 32);
    gb_bytes(&b, NULL, 32);
    assert_int_equal(pl_gguf_open_memory(ctx, b.p, b.len, &g), PL_OK);
    pl_gguf_free(g);
    gb_free(&b);
    pl_ctx_free(ctx);
}

/* Errors through a path carry the path; missing paths, directories, empty files. */
static void test_paths(void **state) {
    (void)state;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    char dir[] = "/tmp/pl_gguf_test_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    pl_gguf *g = NULL;

    snprintf(path, sizeof path, "%s/missing.gguf", dir);
    assert_int_equal(pl_gguf_open(ctx, path, &g), PL_ERR_NOT_FOUND);
    assert_non_null(strstr(pl_ctx_last_error(ctx), path));
    assert_non_null(strstr(pl_ctx_last_error(ctx), "cannot open"));
    assert_null(g);

    assert_int_equal(pl_gguf_open(ctx, dir, &g), PL_ERR_IO);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "not a regular file"));

    snprintf(path, sizeof path, "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(pl_gguf_open(ctx, path, &g), PL_ERR_IO); /* refused, without blocking */
    assert_non_null(strstr(pl_ctx_last_error(ctx), "not a regular file"));
    unlink(path);

    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(pl_gguf_open(ctx, path, &g), PL_ERR_FORMAT);
    char want[600];
    snprintf(want, sizeof want, "gguf: %s: empty file", path);
    assert_string_equal(pl_ctx_last_error(ctx), want);
    unlink(path);

    gb b = { 0 };
    c_misaligned(&b);
    snprintf(path, sizeof path, "%s/bad.gguf", dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b.p, 1, b.len, f), b.len);
    fclose(f);
    assert_int_equal(pl_gguf_open(ctx, path, &g), PL_ERR_FORMAT);
    snprintf(want, sizeof want, "gguf: %s: tensor 't': offset 4 is not a multiple", path);
    assert_memory_equal(pl_ctx_last_error(ctx), want, strlen(want));
    unlink(path);
    gb_free(&b);

    assert_int_equal(pl_gguf_open(ctx, NULL, &g), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_gguf_open_memory(ctx, NULL, 10, &g), PL_ERR_INVALID_ARG);
    rmdir(dir);
    pl_ctx_free(ctx);
}

int gguf_run_malformed_tests(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_cases),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_legal_edges),
        cmocka_unit_test(test_paths),
    };
    return cmocka_run_group_tests_name("gguf_malformed", tests, NULL, NULL);
}
