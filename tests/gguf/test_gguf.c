/*
 * test_gguf.c - GGUF writer/reader: hand-built golden bytes, round trips of
 * every value type and of tensors at two alignments, typed getter conversions,
 * writer errors and cleanup, allocation-failure injection, hashed lookup at
 * scale, and the real vocabulary files in $PL_SHARED_DIR/vocab.
 *
 * Exit status: failures -> 1; all passed but $PL_SHARED_DIR absent (vocab
 * tests skipped) -> 77; otherwise 0.
 */
#include <float.h>
#include <math.h>
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
#include "parley/tensor.h"

static pl_ctx *new_ctx(void) {
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    return ctx;
}

static pl_gguf_writer *new_writer(pl_ctx *ctx) {
    pl_gguf_writer *w = NULL;
    assert_int_equal(pl_gguf_writer_init(ctx, &w), PL_OK);
    return w;
}

/* write_mem + open_memory; *buf must be pl_free'd after pl_gguf_free. */
static pl_gguf *write_and_open(pl_ctx *ctx, pl_gguf_writer *w, void **buf, size_t *size) {
    assert_int_equal(pl_gguf_writer_write_mem(w, buf, size), PL_OK);
    pl_gguf *g = NULL;
    pl_status st = pl_gguf_open_memory(ctx, *buf, *size, &g);
    if (st != PL_OK) fail_msg("reopen: %s", pl_ctx_last_error(ctx));
    return g;
}

static void assert_str(pl_str s, const char *want, size_t want_len) {
    assert_int_equal(s.len, want_len);
    if (want_len) assert_memory_equal(s.ptr, want, want_len);
}

/* ---- golden: the writer's bytes equal a file built by hand from the format ---- */

static void golden(uint32_t align) {
    pl_ctx *ctx = new_ctx();
    pl_gguf_writer *w = new_writer(ctx);
    if (align) assert_int_equal(pl_gguf_writer_set_u32(w, "general.alignment", align), PL_OK);
    assert_int_equal(pl_gguf_writer_set_u32(w, "a", 0x01020304u), PL_OK);
    assert_int_equal(pl_gguf_writer_set_str(w, "bb", "hi"), PL_OK);
    float d1[2] = { 1.0f, 2.0f };
    uint8_t d2[3] = { 7, 8, 9 };
    assert_int_equal(pl_gguf_writer_add_tensor(w, "t", PL_TYPE_F32, 1, (int64_t[]){ 2 }, d1), PL_OK);
    assert_int_equal(pl_gguf_writer_add_tensor(w, "u8", PL_TYPE_I8, 2, (int64_t[]){ 3, 1 }, d2), PL_OK);
    void *buf;
    size_t size;
    assert_int_equal(pl_gguf_writer_write_mem(w, &buf, &size), PL_OK);

    uint32_t a = align ? align : 32;
    gb b = { 0 };
    gb_header(&b, 3, 2, align ? 3 : 2);
    if (align) gb_kv_u32(&b, "general.alignment", align);
    gb_kv_u32(&b, "a", 0x01020304u);
    gb_kv_str(&b, "bb", "hi");
    gb_tinfo(&b, "t", 1, (int64_t[]){ 2 }, 0, 0);
    gb_tinfo(&b, "u8", 2, (int64_t[]){ 3, 1 }, 24, a); /* second tensor at the next aligned offset */
    gb_pad_to(&b, a);
    gb_bytes(&b, "\x00\x00\x80\x3f\x00\x00\x00\x40", 8); /* 1.0f, 2.0f little-endian */
    gb_pad_to(&b, a);
    gb_bytes(&b, "\x07\x08\x09", 3);
    assert_int_equal(size, b.len);
    assert_memory_equal(buf, b.p, b.len);
    gb_free(&b);
    pl_free(ctx, buf);
    pl_gguf_writer_free(w);
    pl_ctx_free(ctx);
}

static void test_golden_bytes(void **state) {
    (void)state;
    golden(0);
    golden(64);
}

/* ---- every value type ---- */

static const uint8_t  A_U8[]  = { 0, 1, 255 };
static const int8_t   A_I8[]  = { -128, 0, 127 };
static const uint16_t A_U16[] = { 0, 65535, 1234 };
static const int16_t  A_I16[] = { -32768, 32767, -1 };
static const uint32_t A_U32[] = { 0, 4294967295u, 42 };
static const int32_t  A_I32[] = { INT32_MIN, INT32_MAX, -7 };
static const float    A_F32[] = { 1.5f, -2.25f, 1e-30f };
static const uint8_t  A_BOOL[] = { 1, 0, 1 };
static const uint64_t A_U64[] = { 0, UINT64_MAX, 1ull << 40 };
static const int64_t  A_I64[] = { INT64_MIN, INT64_MAX, -1 };
static const double   A_F64[] = { 1e300, -0.5, 3.141592653589793 };

static const struct {
    uint32_t type;
    const void *data;
    size_t esz;
} ARRS[] = {
    { PL_GGUF_TYPE_UINT8, A_U8, 1 },     { PL_GGUF_TYPE_INT8, A_I8, 1 },     { PL_GGUF_TYPE_UINT16, A_U16, 2 },
    { PL_GGUF_TYPE_INT16, A_I16, 2 },    { PL_GGUF_TYPE_UINT32, A_U32, 4 },  { PL_GGUF_TYPE_INT32, A_I32, 4 },
    { PL_GGUF_TYPE_FLOAT32, A_F32, 4 },  { PL_GGUF_TYPE_BOOL, A_BOOL, 1 },   { PL_GGUF_TYPE_UINT64, A_U64, 8 },
    { PL_GGUF_TYPE_INT64, A_I64, 8 },    { PL_GGUF_TYPE_FLOAT64, A_F64, 8 },
};
#define N_ARRS (sizeof ARRS / sizeof ARRS[0])

static const char *const STRS[] = { "", "a", "h\xc3\xa9llo", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "\xf0\x9f\x98\x80", "x\0y" };
static const size_t STR_LENS[] = { 0, 1, 6, 9, 4, 3 };

/* Raw nested elements: [ u32[1,2,3], string["p",""], array[ i8[-1] ], u8[] ] */
static void nested_raw(gb *b) {
    gb_u32(b, PL_GGUF_TYPE_UINT32);
    gb_u64(b, 3);
    gb_u32(b, 1);
    gb_u32(b, 2);
    gb_u32(b, 3);
    gb_u32(b, PL_GGUF_TYPE_STRING);
    gb_u64(b, 2);
    gb_str(b, "p");
    gb_str(b, "");
    gb_u32(b, PL_GGUF_TYPE_ARRAY);
    gb_u64(b, 1);
    gb_u32(b, PL_GGUF_TYPE_INT8);
    gb_u64(b, 1);
    gb_u8(b, 0xff);
    gb_u32(b, PL_GGUF_TYPE_UINT8);
    gb_u64(b, 0);
}

static void test_roundtrip_all_types(void **state) {
    (void)state;
    pl_ctx *ctx = new_ctx();
    pl_gguf_writer *w = new_writer(ctx);
    assert_int_equal(pl_gguf_writer_set_u8(w, "s.u8", 250), PL_OK);
    assert_int_equal(pl_gguf_writer_set_i8(w, "s.i8", -100), PL_OK);
    assert_int_equal(pl_gguf_writer_set_u16(w, "s.u16", 65000), PL_OK);
    assert_int_equal(pl_gguf_writer_set_i16(w, "s.i16", -30000), PL_OK);
    assert_int_equal(pl_gguf_writer_set_u32(w, "s.u32", 4000000000u), PL_OK);
    assert_int_equal(pl_gguf_writer_set_i32(w, "s.i32", -2000000000), PL_OK);
    assert_int_equal(pl_gguf_writer_set_f32(w, "s.f32", 3.5f), PL_OK);
    assert_int_equal(pl_gguf_writer_set_bool(w, "s.bool", true), PL_OK);
    assert_int_equal(pl_gguf_writer_set_str(w, "s.str", "h\xc3\xa9llo w\xc3\xb6rld"), PL_OK);
    assert_int_equal(pl_gguf_writer_set_u64(w, "s.u64", (1ull << 63) + 5), PL_OK);
    assert_int_equal(pl_gguf_writer_set_i64(w, "s.i64", INT64_MIN), PL_OK);
    assert_int_equal(pl_gguf_writer_set_f64(w, "s.f64", -1e300), PL_OK);
    assert_int_equal(pl_gguf_writer_set_strn(w, "s.strn", "ab\0cd", 5), PL_OK);
    assert_int_equal(pl_gguf_writer_set_strn(w, "s.empty", NULL, 0), PL_OK);
    for (size_t i = 0; i < N_ARRS; i++) {
        char key[32];
        snprintf(key, sizeof key, "a.%s", pl_gguf_type_name(ARRS[i].type));
        assert_int_equal(pl_gguf_writer_set_arr(w, key, ARRS[i].type, ARRS[i].data, 3), PL_OK);
    }
    assert_int_equal(pl_gguf_writer_set_arr(w, "a.none", PL_GGUF_TYPE_UINT32, NULL, 0), PL_OK);
    assert_int_equal(pl_gguf_writer_set_arr_str(w, "a.strs", STRS, STR_LENS, 6), PL_OK);
    const char *cstrs[] = { "one", "", "three" };
    assert_int_equal(pl_gguf_writer_set_arr_str(w, "a.cstrs", cstrs, NULL, 3), PL_OK);
    assert_int_equal(pl_gguf_writer_set_arr_str(w, "a.nostrs", NULL, NULL, 0), PL_OK);
    gb raw = { 0 };
    nested_raw(&raw);
    assert_int_equal(pl_gguf_writer_set_arr_raw(w, "a.nested", PL_GGUF_TYPE_ARRAY, raw.p, raw.len, 4), PL_OK);
    gb_free(&raw);

    void *buf;
    size_t size;
    pl_gguf *g = write_and_open(ctx, w, &buf, &size);
    assert_int_equal(pl_gguf_version(g), 3);
    assert_int_equal(pl_gguf_n_kv(g), 14 + N_ARRS + 5);
    assert_int_equal(pl_gguf_n_tensors(g), 0);
    assert_int_equal(pl_gguf_file_size(g), size);
    /* insertion order and types */
    assert_true(pl_str_eq(pl_gguf_kv_key(g, 0), "s.u8"));
    assert_true(pl_str_eq(pl_gguf_kv_key(g, 11), "s.f64"));
    assert_true(pl_str_eq(pl_gguf_kv_key(g, pl_gguf_n_kv(g) - 1), "a.nested"));
    static const uint32_t scalar_types[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12 };
    for (int i = 0; i < 12; i++) assert_int_equal(pl_gguf_kv_type(g, i), scalar_types[i]);

    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    int64_t i64;
    float f32;
    double f64;
    bool b;
    pl_str s;
    assert_int_equal(pl_gguf_get_u32(g, "s.u8", &u32), PL_OK);
    assert_int_equal(u32, 250);
    assert_int_equal(pl_gguf_get_i32(g, "s.i8", &i32), PL_OK);
    assert_int_equal(i32, -100);
    assert_int_equal(pl_gguf_get_u32(g, "s.u16", &u32), PL_OK);
    assert_int_equal(u32, 65000);
    assert_int_equal(pl_gguf_get_i32(g, "s.i16", &i32), PL_OK);
    assert_int_equal(i32, -30000);
    assert_int_equal(pl_gguf_get_u32(g, "s.u32", &u32), PL_OK);
    assert_int_equal(u32, 4000000000u);
    assert_int_equal(pl_gguf_get_i32(g, "s.i32", &i32), PL_OK);
    assert_int_equal(i32, -2000000000);
    assert_int_equal(pl_gguf_get_f32(g, "s.f32", &f32), PL_OK);
    assert_true(f32 == 3.5f);
    assert_int_equal(pl_gguf_get_bool(g, "s.bool", &b), PL_OK);
    assert_true(b);
    assert_int_equal(pl_gguf_get_str(g, "s.str", &s), PL_OK);
    assert_str(s, "h\xc3\xa9llo w\xc3\xb6rld", 13);
    assert_int_equal(pl_gguf_get_u64(g, "s.u64", &u64), PL_OK);
    assert_true(u64 == (1ull << 63) + 5);
    assert_int_equal(pl_gguf_get_i64(g, "s.i64", &i64), PL_OK);
    assert_true(i64 == INT64_MIN);
    assert_int_equal(pl_gguf_get_f64(g, "s.f64", &f64), PL_OK);
    assert_true(f64 == -1e300);
    assert_int_equal(pl_gguf_get_str(g, "s.strn", &s), PL_OK);
    assert_str(s, "ab\0cd", 5);
    assert_int_equal(pl_gguf_get_str(g, "s.empty", &s), PL_OK);
    assert_int_equal(s.len, 0);

    /* scalar arrays: raw bytes and element readers */
    for (size_t i = 0; i < N_ARRS; i++) {
        char key[32];
        snprintf(key, sizeof key, "a.%s", pl_gguf_type_name(ARRS[i].type));
        pl_gguf_arr a;
        assert_int_equal(pl_gguf_get_arr(g, key, &a), PL_OK);
        assert_int_equal(a.elem_type, ARRS[i].type);
        assert_int_equal(a.count, 3);
        assert_memory_equal(a.data, ARRS[i].data, 3 * ARRS[i].esz);
    }
    pl_gguf_arr a;
    assert_int_equal(pl_gguf_get_arr(g, "a.i8", &a), PL_OK);
    assert_int_equal(pl_gguf_arr_i64(&a, 0, &i64), PL_OK);
    assert_int_equal(i64, -128);
    assert_int_equal(pl_gguf_arr_u64(&a, 0, &u64), PL_ERR_RANGE);
    assert_int_equal(pl_gguf_arr_u64(&a, 2, &u64), PL_OK);
    assert_int_equal(u64, 127);
    assert_int_equal(pl_gguf_arr_i64(&a, 3, &i64), PL_ERR_RANGE);
    assert_int_equal(pl_gguf_arr_f64(&a, 0, &f64), PL_ERR_TYPE);
    assert_int_equal(pl_gguf_arr_str(&a, 0, &s), PL_ERR_TYPE);
    assert_int_equal(pl_gguf_arr_arr(&a, 0, &a), PL_ERR_TYPE);
    assert_int_equal(pl_gguf_get_arr(g, "a.u64", &a), PL_OK);
    assert_int_equal(pl_gguf_arr_u64(&a, 1, &u64), PL_OK);
    assert_true(u64 == UINT64_MAX);
    assert_int_equal(pl_gguf_arr_i64(&a, 1, &i64), PL_ERR_RANGE);
    assert_int_equal(pl_gguf_get_arr(g, "a.bool", &a), PL_OK);
    assert_int_equal(pl_gguf_arr_u64(&a, 0, &u64), PL_OK);
    assert_int_equal(u64, 1);
    assert_int_equal(pl_gguf_get_arr(g, "a.f32", &a), PL_OK);
    assert_int_equal(pl_gguf_arr_f32(&a, 1, &f32), PL_OK);
    assert_true(f32 == -2.25f);
    assert_int_equal(pl_gguf_arr_f64(&a, 2, &f64), PL_OK);
    assert_true(f64 == (double)1e-30f);
    assert_int_equal(pl_gguf_arr_u64(&a, 0, &u64), PL_ERR_TYPE);
    assert_int_equal(pl_gguf_get_arr(g, "a.f64", &a), PL_OK);
    assert_int_equal(pl_gguf_arr_f32(&a, 0, &f32), PL_ERR_RANGE); /* 1e300 doesn't fit a float */
    assert_int_equal(pl_gguf_arr_f32(&a, 1, &f32), PL_OK);
    assert_true(f32 == -0.5f);
    assert_int_equal(pl_gguf_get_arr(g, "a.none", &a), PL_OK);
    assert_int_equal(a.count, 0);
    assert_int_equal(pl_gguf_arr_u64(&a, 0, &u64), PL_ERR_RANGE);

    /* string arrays, O(1) by index, in any order */
    assert_int_equal(pl_gguf_get_arr(g, "a.strs", &a), PL_OK);
    assert_int_equal(a.elem_type, PL_GGUF_TYPE_STRING);
    assert_int_equal(a.count, 6);
    for (int i = 5; i >= 0; i--) {
        assert_int_equal(pl_gguf_arr_str(&a, (uint64_t)i, &s), PL_OK);
        assert_str(s, STRS[i], STR_LENS[i]);
    }
    assert_int_equal(pl_gguf_arr_str(&a, 6, &s), PL_ERR_RANGE);
    assert_int_equal(pl_gguf_arr_u64(&a, 0, &u64), PL_ERR_TYPE);
    assert_int_equal(pl_gguf_get_arr(g, "a.cstrs", &a), PL_OK);
    assert_int_equal(pl_gguf_arr_str(&a, 2, &s), PL_OK);
    assert_str(s, "three", 5);
    assert_int_equal(pl_gguf_arr_str(&a, 1, &s), PL_OK);
    assert_int_equal(s.len, 0);
    assert_int_equal(pl_gguf_get_arr(g, "a.nostrs", &a), PL_OK);
    assert_int_equal(a.count, 0);

    /* arrays of arrays */
    assert_int_equal(pl_gguf_get_arr(g, "a.nested", &a), PL_OK);
    assert_int_equal(a.elem_type, PL_GGUF_TYPE_ARRAY);
    assert_int_equal(a.count, 4);
    pl_gguf_arr e, e2;
    assert_int_equal(pl_gguf_arr_arr(&a, 1, &e), PL_OK); /* out of order on purpose */
    assert_int_equal(e.elem_type, PL_GGUF_TYPE_STRING);
    assert_int_equal(e.count, 2);
    assert_int_equal(pl_gguf_arr_str(&e, 0, &s), PL_OK);
    assert_str(s, "p", 1);
    assert_int_equal(pl_gguf_arr_str(&e, 1, &s), PL_OK);
    assert_int_equal(s.len, 0);
    assert_int_equal(pl_gguf_arr_arr(&a, 0, &e), PL_OK);
    assert_int_equal(e.elem_type, PL_GGUF_TYPE_UINT32);
    assert_int_equal(pl_gguf_arr_u64(&e, 2, &u64), PL_OK);
    assert_int_equal(u64, 3);
    assert_int_equal(pl_gguf_arr_arr(&a, 2, &e), PL_OK);
    assert_int_equal(e.elem_type, PL_GGUF_TYPE_ARRAY);
    assert_int_equal(pl_gguf_arr_arr(&e, 0, &e2), PL_OK);
    assert_int_equal(e2.elem_type, PL_GGUF_TYPE_INT8);
    assert_int_equal(pl_gguf_arr_i64(&e2, 0, &i64), PL_OK);
    assert_int_equal(i64, -1);
    assert_int_equal(pl_gguf_arr_arr(&a, 3, &e), PL_OK);
    assert_int_equal(e.elem_type, PL_GGUF_TYPE_UINT8);
    assert_int_equal(e.count, 0);
    assert_int_equal(pl_gguf_arr_arr(&a, 4, &e), PL_ERR_RANGE);

    /* a copy through copy_kv reads back byte-identical */
    pl_gguf_writer *w2 = new_writer(ctx);
    for (int64_t i = 0; i < pl_gguf_n_kv(g); i++) assert_int_equal(pl_gguf_writer_copy_kv(w2, g, i), PL_OK);
    void *buf2;
    size_t size2;
    assert_int_equal(pl_gguf_writer_write_mem(w2, &buf2, &size2), PL_OK);
    assert_int_equal(size2, size);
    assert_memory_equal(buf2, buf, size);
    assert_int_equal(pl_gguf_writer_copy_kv(w2, g, 0), PL_ERR_EXISTS);
    assert_int_equal(pl_gguf_writer_copy_kv(w2, g, pl_gguf_n_kv(g)), PL_ERR_RANGE);
    pl_free(ctx, buf2);
    pl_gguf_writer_free(w2);

    pl_gguf_free(g);
    pl_free(ctx, buf);
    pl_gguf_writer_free(w);
    pl_ctx_free(ctx);
}

/* ---- getter conversions and their errors ---- */

static void test_getter_conversions(void **state) {
    (void)state;
    pl_ctx *ctx = new_ctx();
    pl_gguf_writer *w = new_writer(ctx);
    assert_int_equal(pl_gguf_writer_set_i8(w, "neg", -5), PL_OK);
    assert_int_equal(pl_gguf_writer_set_u64(w, "big", 1ull << 40), PL_OK);
    assert_int_equal(pl_gguf_writer_set_u64(w, "huge", UINT64_MAX), PL_OK);
    assert_int_equal(pl_gguf_writer_set_i64(w, "min", INT64_MIN), PL_OK);
    assert_int_equal(pl_gguf_writer_set_i32(w, "i32", 77), PL_OK);
    assert_int_equal(pl_gguf_writer_set_f64(w, "f64big", 1e300), PL_OK);
    assert_int_equal(pl_gguf_writer_set_f64(w, "f64inf", INFINITY), PL_OK);
    assert_int_equal(pl_gguf_writer_set_f32(w, "f32", 0.25f), PL_OK);
    assert_int_equal(pl_gguf_writer_set_bool(w, "flag", false), PL_OK);
    assert_int_equal(pl_gguf_writer_set_str(w, "str", "x"), PL_OK);
    assert_int_equal(pl_gguf_writer_set_arr(w, "arr", PL_GGUF_TYPE_UINT8, "ab", 2), PL_OK);
    void *buf;
    size_t size;
    pl_gguf *g = write_and_open(ctx, w, &buf, &size);

    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    int64_t i64;
    float f32;
    double f64;
    bool b;
    pl_str s;
    pl_gguf_arr a;
    assert_int_equal(pl_gguf_get_u32(g, "neg", &u32), PL_ERR_RANGE);
    assert_int_equal(pl_gguf_get_u64(g, "neg", &u64), PL_ERR_RANGE);
    assert_int_equal(pl_gguf_get_i64(g, "neg", &i64), PL_OK);
    assert_int_equal(i64, -5);
    assert_int_equal(pl_gguf_get_u32(g, "big", &u32), PL_ERR_RANGE);
    assert_int_equal(pl_gguf_get_i32(g, "big", &i32), PL_ERR_RANGE);
    assert_int_equal(pl_gguf_get_i64(g, "big", &i64), PL_OK);
    assert_true(i64 == (1ll << 40));
    assert_int_equal(pl_gguf_get_i64(g, "huge", &i64), PL_ERR_RANGE);
    assert_int_equal(pl_gguf_get_i32(g, "min", &i32), PL_ERR_RANGE);
    assert_int_equal(pl_gguf_get_u32(g, "i32", &u32), PL_OK); /* files disagree on u32 vs i32 */
    assert_int_equal(u32, 77);
    assert_int_equal(pl_gguf_get_f32(g, "f64big", &f32), PL_ERR_RANGE);
    assert_int_equal(pl_gguf_get_f64(g, "f64big", &f64), PL_OK);
    assert_int_equal(pl_gguf_get_f32(g, "f64inf", &f32), PL_OK);
    assert_true(isinf(f32));
    assert_int_equal(pl_gguf_get_f64(g, "f32", &f64), PL_OK);
    assert_true(f64 == 0.25);
    assert_int_equal(pl_gguf_get_f32(g, "i32", &f32), PL_ERR_TYPE);
    assert_int_equal(pl_gguf_get_u32(g, "f32", &u32), PL_ERR_TYPE);
    assert_int_equal(pl_gguf_get_bool(g, "i32", &b), PL_ERR_TYPE);
    assert_int_equal(pl_gguf_get_u32(g, "flag", &u32), PL_ERR_TYPE);
    assert_int_equal(pl_gguf_get_bool(g, "flag", &b), PL_OK);
    assert_false(b);
    assert_int_equal(pl_gguf_get_str(g, "i32", &s), PL_ERR_TYPE);
    assert_int_equal(pl_gguf_get_arr(g, "str", &a), PL_ERR_TYPE);
    assert_int_equal(pl_gguf_get_u32(g, "arr", &u32), PL_ERR_TYPE);
    assert_int_equal(pl_gguf_get_u32(g, "str", &u32), PL_ERR_TYPE);
    assert_int_equal(pl_gguf_get_u32(g, "nope", &u32), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_gguf_get_str(g, "nope", &s), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_gguf_get_arr(g, "nope", &a), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_gguf_get_bool(g, "nope", &b), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_gguf_find_key(g, "nope"), -1);
    assert_int_equal(pl_gguf_find_key(g, "ar"), -1);
    assert_int_equal(pl_gguf_find_key(g, "arr"), 10);

    /* by index: bool reads as an integer, range errors for bad indices */
    int64_t flag = pl_gguf_find_key(g, "flag");
    assert_int_equal(pl_gguf_kv_u64(g, flag, &u64), PL_OK);
    assert_int_equal(u64, 0);
    assert_int_equal(pl_gguf_kv_i64(g, pl_gguf_find_key(g, "neg"), &i64), PL_OK);
    assert_int_equal(i64, -5);
    assert_int_equal(pl_gguf_kv_u64(g, pl_gguf_find_key(g, "neg"), &u64), PL_ERR_RANGE);
    assert_int_equal(pl_gguf_kv_f64(g, pl_gguf_find_key(g, "f32"), &f64), PL_OK);
    assert_int_equal(pl_gguf_kv_f64(g, flag, &f64), PL_ERR_TYPE);
    assert_int_equal(pl_gguf_kv_str(g, flag, &s), PL_ERR_TYPE);
    assert_int_equal(pl_gguf_kv_arr(g, flag, &a), PL_ERR_TYPE);
    assert_int_equal(pl_gguf_kv_u64(g, -1, &u64), PL_ERR_RANGE);
    assert_int_equal(pl_gguf_kv_u64(g, 11, &u64), PL_ERR_RANGE);
    assert_int_equal(pl_gguf_kv_str(g, 11, &s), PL_ERR_RANGE);
    assert_null(pl_gguf_kv_key(g, 11).ptr);
    assert_int_equal(pl_gguf_kv_type(g, -1), PL_GGUF_TYPE_COUNT);
    pl_gguf_tensor t;
    assert_int_equal(pl_gguf_tensor_at(g, 0, &t), PL_ERR_RANGE);
    assert_int_equal(pl_gguf_find_tensor(g, "x"), -1);

    /* pl_str helpers */
    char small[3];
    assert_int_equal(pl_str_copy((pl_str){ "hello", 5 }, small, sizeof small), 5);
    assert_string_equal(small, "he");
    assert_false(pl_str_eq((pl_str){ "hello", 5 }, "hell"));
    assert_true(pl_str_eq((pl_str){ "hell", 4 }, "hell"));
    assert_string_equal(pl_gguf_type_name(99), "unknown");
    assert_string_equal(pl_gguf_type_name(PL_GGUF_TYPE_FLOAT64), "f64");

    pl_gguf_free(g);
    pl_free(ctx, buf);
    pl_gguf_writer_free(w);
    pl_ctx_free(ctx);
}

/* ---- tensors ---- */

/* Byte o of a fill-made tensor: a pattern that changes across chunk boundaries. */
static uint8_t pattern(uint64_t o, uint8_t seed) { return (uint8_t)((o * 31 + seed) ^ (o >> 11)); }

typedef struct fill_ud {
    uint8_t  seed;
    uint64_t next;   /* fills must come in order */
    uint64_t calls;
    uint64_t fail_at; /* byte offset at which to fail; 0 = never */
} fill_ud;

static pl_status fill_pattern(void *ud, void *buf, uint64_t offset, size_t n) {
    fill_ud *f = ud;
    if (offset != f->next) return PL_ERR_INTERNAL;
    if (f->fail_at && offset + n > f->fail_at) return PL_ERR_CANCELED;
    for (size_t i = 0; i < n; i++) ((uint8_t *)buf)[i] = pattern(offset + i, f->seed);
    f->next += n;
    f->calls++;
    return PL_OK;
}

typedef struct tdesc {
    const char *name;
    uint32_t type;
    int n_dims;
    int64_t ne[4];
    uint64_t nbytes; /* hand-computed */
} tdesc;

static const tdesc TENSORS[] = {
    { "f32.vec", PL_TYPE_F32, 1, { 3 }, 12 },
    { "f16.mat", PL_TYPE_F16, 2, { 5, 2 }, 20 },
    { "q8_0.mat", PL_TYPE_Q8_0, 2, { 64, 3 }, 2 * 34 * 3 },
    { "q4_K.row", PL_TYPE_Q4_K, 3, { 256, 1, 2 }, 144 * 2 },
    { "empty", PL_TYPE_F32, 2, { 0, 4 }, 0 },
    { "bf16.4d", PL_TYPE_BF16, 4, { 2, 3, 1, 2 }, 24 },
    { "q6_K.x", PL_TYPE_Q6_K, 1, { 512 }, 420 },
};
#define N_TENSORS (sizeof TENSORS / sizeof TENSORS[0])

static void tensors_roundtrip(uint32_t align) {
    pl_ctx *ctx = new_ctx();
    pl_gguf_writer *w = new_writer(ctx);
    assert_int_equal(pl_gguf_writer_set_str(w, "general.architecture", "test"), PL_OK);
    uint8_t *data[N_TENSORS];
    fill_ud fu = { .seed = 5 };
    for (size_t i = 0; i < N_TENSORS; i++) {
        const tdesc *d = &TENSORS[i];
        data[i] = malloc(d->nbytes + 1);
        for (uint64_t k = 0; k < d->nbytes; k++) data[i][k] = pattern(k, (uint8_t)(i + 100));
        if (i == 2) {
            assert_int_equal(pl_gguf_writer_add_tensor_fill(w, d->name, d->type, d->n_dims, d->ne, fill_pattern, &fu), PL_OK);
        } else {
            assert_int_equal(pl_gguf_writer_add_tensor(w, d->name, d->type, d->n_dims, d->ne, data[i]), PL_OK);
        }
    }
    /* alignment set after the tensors still applies */
    if (align) assert_int_equal(pl_gguf_writer_set_u32(w, "general.alignment", align), PL_OK);
    uint32_t a = align ? align : 32;
    void *buf;
    size_t size;
    pl_gguf *g = write_and_open(ctx, w, &buf, &size);
    assert_int_equal(pl_gguf_alignment(g), a);
    assert_int_equal(pl_gguf_data_offset(g) % a, 0);
    assert_int_equal(pl_gguf_n_tensors(g), N_TENSORS);
    assert_ptr_equal(pl_gguf_base(g), buf);
    const uint8_t *base = buf;
    uint64_t expect_off = 0;
    for (size_t i = 0; i < N_TENSORS; i++) {
        const tdesc *d = &TENSORS[i];
        int64_t idx = pl_gguf_find_tensor(g, d->name);
        assert_int_equal(idx, (int64_t)i);
        pl_gguf_tensor t;
        assert_int_equal(pl_gguf_tensor_at(g, idx, &t), PL_OK);
        assert_true(pl_str_eq(t.name, d->name));
        assert_int_equal(t.type, d->type);
        assert_int_equal(t.n_dims, d->n_dims);
        for (int k = 0; k < 4; k++) assert_int_equal(t.ne[k], k < d->n_dims ? d->ne[k] : 1);
        assert_int_equal(t.nbytes, d->nbytes);
        expect_off = (expect_off + a - 1) / a * a;
        assert_int_equal(t.offset, expect_off);
        assert_ptr_equal(t.data, base + pl_gguf_data_offset(g) + t.offset);
        if (i == 2) {
            for (uint64_t k = 0; k < t.nbytes; k++) assert_int_equal(((const uint8_t *)t.data)[k], pattern(k, 5));
        } else if (t.nbytes) {
            assert_memory_equal(t.data, data[i], t.nbytes);
        }
        expect_off += d->nbytes;
    }
    assert_int_equal(size, pl_gguf_data_offset(g) + expect_off); /* ends after the last tensor */
    pl_gguf_free(g);
    pl_free(ctx, buf);
    for (size_t i = 0; i < N_TENSORS; i++) free(data[i]);
    pl_gguf_writer_free(w);
    pl_ctx_free(ctx);
}

static void test_tensors_roundtrip(void **state) {
    (void)state;
    tensors_roundtrip(0);
    tensors_roundtrip(64);
    tensors_roundtrip(1);
}

/* Padding bytes between tensors are zero: check every byte of the data section
 * that no tensor covers. */
static void test_padding_zeroed(void **state) {
    (void)state;
    pl_ctx *ctx = new_ctx();
    pl_gguf_writer *w = new_writer(ctx);
    uint8_t ff[40];
    memset(ff, 0xff, sizeof ff);
    assert_int_equal(pl_gguf_writer_set_u32(w, "general.alignment", 64), PL_OK);
    assert_int_equal(pl_gguf_writer_add_tensor(w, "a", PL_TYPE_I8, 1, (int64_t[]){ 5 }, ff), PL_OK);
    assert_int_equal(pl_gguf_writer_add_tensor(w, "b", PL_TYPE_I8, 1, (int64_t[]){ 40 }, ff), PL_OK);
    assert_int_equal(pl_gguf_writer_add_tensor(w, "c", PL_TYPE_I8, 1, (int64_t[]){ 1 }, ff), PL_OK);
    void *buf;
    size_t size;
    pl_gguf *g = write_and_open(ctx, w, &buf, &size);
    const uint8_t *p = buf;
    uint64_t d0 = pl_gguf_data_offset(g);
    assert_int_equal(size, d0 + 128 + 1);
    for (uint64_t o = d0; o < size; o++) {
        bool covered = (o - d0 < 5) || (o - d0 >= 64 && o - d0 < 104) || o - d0 == 128;
        assert_int_equal(p[o], covered ? 0xff : 0);
    }
    pl_gguf_free(g);
    pl_free(ctx, buf);
    pl_gguf_writer_free(w);
    pl_ctx_free(ctx);
}

/* ---- write_file: streams > 1 MiB through the buffer, atomic, cleans up ---- */

static bool exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void test_write_file(void **state) {
    (void)state;
    pl_ctx *ctx = new_ctx();
    char dir[] = "/tmp/pl_gguf_w_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], tmp[300];
    snprintf(path, sizeof path, "%s/out.gguf", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);

    pl_gguf_writer *w = new_writer(ctx);
    assert_int_equal(pl_gguf_writer_set_str(w, "general.name", "big"), PL_OK);
    const int64_t n = 700000; /* 2.8 MB of f32: three buffer windows */
    fill_ud fu = { .seed = 9 };
    assert_int_equal(pl_gguf_writer_add_tensor_fill(w, "big", PL_TYPE_F32, 1, &n, fill_pattern, &fu), PL_OK);
    float small[4] = { 1, 2, 3, 4 };
    assert_int_equal(pl_gguf_writer_add_tensor(w, "small", PL_TYPE_F32, 1, (int64_t[]){ 4 }, small), PL_OK);
    assert_int_equal(pl_gguf_writer_write_file(w, path), PL_OK);
    assert_false(exists(tmp));
    assert_true(fu.calls >= 3);
    assert_int_equal(fu.next, (uint64_t)n * 4);

    pl_gguf *g = NULL;
    assert_int_equal(pl_gguf_open(ctx, path, &g), PL_OK);
    pl_gguf_tensor t;
    assert_int_equal(pl_gguf_tensor_at(g, pl_gguf_find_tensor(g, "big"), &t), PL_OK);
    assert_int_equal(t.nbytes, (uint64_t)n * 4);
    for (uint64_t k = 0; k < t.nbytes; k++)
        if (((const uint8_t *)t.data)[k] != pattern(k, 9)) fail_msg("byte %llu differs", (unsigned long long)k);
    assert_int_equal(pl_gguf_tensor_at(g, pl_gguf_find_tensor(g, "small"), &t), PL_OK);
    assert_memory_equal(t.data, small, 16);

    /* write_mem gives the same bytes */
    fu = (fill_ud){ .seed = 9 };
    void *buf;
    size_t size;
    assert_int_equal(pl_gguf_writer_write_mem(w, &buf, &size), PL_OK);
    assert_int_equal(size, pl_gguf_file_size(g));
    assert_memory_equal(buf, pl_gguf_base(g), size);
    pl_free(ctx, buf);
    pl_gguf_free(g);

    /* a failing fill: status passed through, no file, no tmp; the old file is kept */
    fu = (fill_ud){ .seed = 9, .fail_at = 1500000 };
    assert_int_equal(pl_gguf_writer_write_file(w, path), PL_ERR_CANCELED);
    assert_non_null(strstr(pl_gguf_writer_last_error(w), "tensor 'big': fill callback failed"));
    assert_false(exists(tmp));
    assert_int_equal(pl_gguf_open(ctx, path, &g), PL_OK); /* still the complete earlier file */
    pl_gguf_free(g);
    unlink(path);
    fu = (fill_ud){ .seed = 9, .fail_at = 1500000 };
    assert_int_equal(pl_gguf_writer_write_file(w, path), PL_ERR_CANCELED);
    assert_false(exists(path));
    assert_false(exists(tmp));

    /* an unwritable place */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.gguf", dir);
    assert_int_equal(pl_gguf_writer_write_file(w, bad), PL_ERR_IO);
    assert_non_null(strstr(pl_gguf_writer_last_error(w), "cannot create"));

    pl_gguf_writer_free(w);
    rmdir(dir);
    pl_ctx_free(ctx);
}

/* ---- writer argument errors leave the writer unchanged ---- */

static void test_writer_errors(void **state) {
    (void)state;
    pl_ctx *ctx = new_ctx();
    pl_gguf_writer *w = new_writer(ctx);
    float f[32] = { 0 };
    assert_int_equal(pl_gguf_writer_set_u32(w, "k", 1), PL_OK);
    assert_int_equal(pl_gguf_writer_set_str(w, "k", "again"), PL_ERR_EXISTS);
    assert_non_null(strstr(pl_gguf_writer_last_error(w), "duplicate key 'k'"));
    assert_int_equal(pl_gguf_writer_set_u32(w, "", 1), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_gguf_writer_set_u32(w, NULL, 1), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_gguf_writer_set_u32(w, "general.alignment", 48), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_gguf_writer_set_u32(w, "general.alignment", 0), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_gguf_writer_set_u64(w, "general.alignment", 64), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_gguf_writer_set_arr(w, "bad", PL_GGUF_TYPE_STRING, f, 1), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_gguf_writer_set_arr(w, "bad", 77, f, 1), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_gguf_writer_set_arr(w, "bad", PL_GGUF_TYPE_UINT64, f, UINT64_MAX / 4), PL_ERR_OVERFLOW);
    assert_int_equal(pl_gguf_writer_set_str(w, "bad", NULL), PL_ERR_INVALID_ARG);
    /* raw arrays are validated like file input */
    gb raw = { 0 };
    gb_u32(&raw, PL_GGUF_TYPE_UINT32);
    gb_u64(&raw, 5); /* claims 5 elements, holds 1 */
    gb_u32(&raw, 1);
    assert_int_equal(pl_gguf_writer_set_arr_raw(w, "bad", PL_GGUF_TYPE_ARRAY, raw.p, raw.len, 1), PL_ERR_INVALID_ARG);
    assert_non_null(strstr(pl_gguf_writer_last_error(w), "raw array for 'bad'"));
    assert_int_equal(pl_gguf_writer_set_arr_raw(w, "bad", PL_GGUF_TYPE_UINT32, raw.p, raw.len, 1), PL_ERR_INVALID_ARG); /* 4 bytes left over */
    assert_int_equal(pl_gguf_writer_set_arr_raw(w, "ok", PL_GGUF_TYPE_UINT32, raw.p, raw.len, 4), PL_OK);
    gb_free(&raw);

    assert_int_equal(pl_gguf_writer_add_tensor(w, "t", PL_TYPE_F32, 1, (int64_t[]){ 32 }, f), PL_OK);
    assert_int_equal(pl_gguf_writer_add_tensor(w, "t", PL_TYPE_F32, 1, (int64_t[]){ 32 }, f), PL_ERR_EXISTS);
    assert_int_equal(pl_gguf_writer_add_tensor(w, "q", PL_TYPE_Q8_0, 1, (int64_t[]){ 33 }, f), PL_ERR_INVALID_ARG);
    assert_non_null(strstr(pl_gguf_writer_last_error(w), "not a multiple of the q8_0 block size 32"));
    assert_int_equal(pl_gguf_writer_add_tensor(w, "iq", PL_TYPE_IQ2_XXS, 1, (int64_t[]){ 256 }, f), PL_ERR_UNSUPPORTED);
    assert_int_equal(pl_gguf_writer_add_tensor(w, "r", 4, 1, (int64_t[]){ 32 }, f), PL_ERR_UNSUPPORTED);
    assert_int_equal(pl_gguf_writer_add_tensor(w, "d5", PL_TYPE_F32, 5, (int64_t[]){ 1, 1, 1, 1, 1 }, f), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_gguf_writer_add_tensor(w, "d0", PL_TYPE_F32, 0, (int64_t[]){ 1 }, f), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_gguf_writer_add_tensor(w, "neg", PL_TYPE_F32, 2, (int64_t[]){ 1, -1 }, f), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_gguf_writer_add_tensor(w, "nodata", PL_TYPE_F32, 1, (int64_t[]){ 1 }, NULL), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_gguf_writer_add_tensor(w, "", PL_TYPE_F32, 1, (int64_t[]){ 1 }, f), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_gguf_writer_add_tensor_fill(w, "nofill", PL_TYPE_F32, 1, (int64_t[]){ 1 }, NULL, NULL), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_gguf_writer_add_tensor(w, "ovf", PL_TYPE_F32, 2, (int64_t[]){ 1ll << 40, 1ll << 40 }, f), PL_ERR_OVERFLOW);

    /* only the good ones were kept */
    void *buf;
    size_t size;
    pl_gguf *g = write_and_open(ctx, w, &buf, &size);
    assert_int_equal(pl_gguf_n_kv(g), 2);
    assert_int_equal(pl_gguf_n_tensors(g), 1);
    assert_int_equal(pl_gguf_alignment(g), 32);
    pl_gguf_free(g);
    pl_free(ctx, buf);
    pl_gguf_writer_free(w);
    pl_gguf_writer_free(NULL);
    pl_gguf_free(NULL);
    pl_ctx_free(ctx);
}

/* ---- hashed lookup at scale ---- */

static void test_many_names(void **state) {
    (void)state;
    pl_ctx *ctx = new_ctx();
    pl_gguf_writer *w = new_writer(ctx);
    enum { NK = 3000, NT = 700 };
    char name[64];
    for (int i = 0; i < NK; i++) {
        snprintf(name, sizeof name, "key.%d.x", i);
        assert_int_equal(pl_gguf_writer_set_i32(w, name, i * 3), PL_OK);
    }
    float v = 0;
    for (int i = 0; i < NT; i++) {
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", i);
        assert_int_equal(pl_gguf_writer_add_tensor(w, name, PL_TYPE_F32, 1, (int64_t[]){ 1 }, &v), PL_OK);
    }
    void *buf;
    size_t size;
    pl_gguf *g = write_and_open(ctx, w, &buf, &size);
    for (int i = 0; i < NK; i++) {
        snprintf(name, sizeof name, "key.%d.x", i);
        int64_t k = pl_gguf_find_key(g, name);
        assert_int_equal(k, i);
        int32_t x;
        assert_int_equal(pl_gguf_get_i32(g, name, &x), PL_OK);
        assert_int_equal(x, i * 3);
        snprintf(name, sizeof name, "key.%d.y", i);
        assert_int_equal(pl_gguf_find_key(g, name), -1);
    }
    for (int i = 0; i < NT; i++) {
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", i);
        assert_int_equal(pl_gguf_find_tensor(g, name), i);
        snprintf(name, sizeof name, "blk.%d.attn_k.weight", i);
        assert_int_equal(pl_gguf_find_tensor(g, name), -1);
    }
    pl_gguf_free(g);
    pl_free(ctx, buf);
    pl_gguf_writer_free(w);
    pl_ctx_free(ctx);
}

/* ---- allocation failures: every one gives NOMEM and leaks nothing ---- */

static void test_alloc_failures(void **state) {
    (void)state;
    gb raw = { 0 };
    nested_raw(&raw);
    int64_t ok_at = 0;
    for (int64_t fail_at = 1; fail_at < 500 && !ok_at; fail_at++) {
        pl_alloc_tracker tr;
        pl_alloc_tracker_reset(&tr);
        pl_ctx_params cp = pl_ctx_default_params();
        cp.alloc = pl_track_alloc;
        cp.alloc_ud = &tr;
        pl_ctx *ctx = NULL;
        assert_int_equal(pl_ctx_init(&ctx, &cp), PL_OK);
        tr.fail_at = tr.n_calls + fail_at;
        pl_gguf_writer *w = NULL;
        pl_gguf *g = NULL;
        void *buf = NULL;
        size_t size;
        float f[4] = { 0 };
        pl_status st = pl_gguf_writer_init(ctx, &w);
        if (st == PL_OK) st = pl_gguf_writer_set_str(w, "a", "x");
        if (st == PL_OK) st = pl_gguf_writer_set_arr_str(w, "b", STRS, STR_LENS, 6);
        if (st == PL_OK) st = pl_gguf_writer_set_arr_raw(w, "c", PL_GGUF_TYPE_ARRAY, raw.p, raw.len, 4);
        if (st == PL_OK) st = pl_gguf_writer_add_tensor(w, "t", PL_TYPE_F32, 1, (int64_t[]){ 4 }, f);
        if (st == PL_OK) st = pl_gguf_writer_write_mem(w, &buf, &size);
        if (st == PL_OK) st = pl_gguf_open_memory(ctx, buf, size, &g);
        if (st == PL_OK) ok_at = fail_at;
        else assert_int_equal(st, PL_ERR_NOMEM);
        assert_true(st != PL_OK || g != NULL);
        pl_gguf_free(g);
        pl_free(ctx, buf);
        pl_gguf_writer_free(w);
        pl_ctx_free(ctx);
        assert_int_equal(tr.in_use, 0); /* nothing leaked */
    }
    assert_true(ok_at > 5); /* several allocations were each made to fail */
    gb_free(&raw);
}

/* ---- real vocabulary files ---- */

static const char *shared_dir(void) {
    const char *d = getenv("PL_SHARED_DIR");
    static char vocab_probe[512];
    if (!d) return NULL;
    snprintf(vocab_probe, sizeof vocab_probe, "%s/vocab", d);
    return exists(vocab_probe) ? d : NULL;
}

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)sz);
    assert_int_equal(fread(p, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return p;
}

/* Copy every kv through the writer: the result is the source file, byte for byte
 * (both are v3 with no tensors and end after the metadata). */
static void check_copy_identical(pl_ctx *ctx, const pl_gguf *g, const char *path) {
    pl_gguf_writer *w = new_writer(ctx);
    for (int64_t i = 0; i < pl_gguf_n_kv(g); i++) assert_int_equal(pl_gguf_writer_copy_kv(w, g, i), PL_OK);
    void *buf;
    size_t size, fsize;
    assert_int_equal(pl_gguf_writer_write_mem(w, &buf, &size), PL_OK);
    uint8_t *file = read_all(path, &fsize);
    assert_int_equal(size, fsize);
    assert_memory_equal(buf, file, size);
    free(file);
    pl_free(ctx, buf);
    pl_gguf_writer_free(w);
}

static void test_vocab_llama(void **state) {
    (void)state;
    const char *sd = shared_dir();
    if (!sd) skip();
    char path[600];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-llama-spm.gguf", sd);
    pl_ctx *ctx = new_ctx();
    pl_gguf *g = NULL;
    if (pl_gguf_open(ctx, path, &g) != PL_OK) fail_msg("%s", pl_ctx_last_error(ctx));
    assert_int_equal(pl_gguf_version(g), 3);
    assert_int_equal(pl_gguf_n_tensors(g), 0);
    assert_int_equal(pl_gguf_n_kv(g), 22);
    pl_str s;
    assert_int_equal(pl_gguf_get_str(g, "general.architecture", &s), PL_OK);
    assert_true(pl_str_eq(s, "llama"));
    assert_int_equal(pl_gguf_get_str(g, "tokenizer.ggml.model", &s), PL_OK);
    assert_true(pl_str_eq(s, "llama"));
    assert_int_equal(pl_gguf_get_str(g, "tokenizer.ggml.pre", &s), PL_OK);
    assert_true(pl_str_eq(s, "default"));
    uint32_t u;
    assert_int_equal(pl_gguf_get_u32(g, "llama.context_length", &u), PL_OK);
    assert_int_equal(u, 4096);
    assert_int_equal(pl_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u), PL_OK);
    assert_int_equal(u, 1);
    assert_int_equal(pl_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u), PL_OK);
    assert_int_equal(u, 2);
    float eps;
    assert_int_equal(pl_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps), PL_OK);
    assert_true(eps == 1e-5f);
    bool b;
    assert_int_equal(pl_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b), PL_OK);
    assert_true(b);
    assert_int_equal(pl_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b), PL_OK);
    assert_false(b);

    pl_gguf_arr a;
    assert_int_equal(pl_gguf_get_arr(g, "tokenizer.ggml.tokens", &a), PL_OK);
    assert_int_equal(a.elem_type, PL_GGUF_TYPE_STRING);
    assert_int_equal(a.count, 32000);
    static const struct { uint64_t id; const char *s; } toks[] = {
        { 0, "<unk>" }, { 1, "<s>" }, { 2, "</s>" }, { 3, "<0x00>" }, { 4, "<0x01>" },
        { 31999, "\xe7\xbb\x99" }, { 31998, "\xe5\xbc\x98" }, { 31997, "\xe6\x94\xb6" },
    };
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++) {
        assert_int_equal(pl_gguf_arr_str(&a, toks[i].id, &s), PL_OK);
        if (!pl_str_eq(s, toks[i].s)) fail_msg("token %llu is '%.*s'", (unsigned long long)toks[i].id, (int)s.len, s.ptr);
    }
    assert_int_equal(pl_gguf_get_arr(g, "tokenizer.ggml.scores", &a), PL_OK);
    assert_int_equal(a.elem_type, PL_GGUF_TYPE_FLOAT32);
    assert_int_equal(a.count, 32000);
    float f;
    assert_int_equal(pl_gguf_arr_f32(&a, 31999, &f), PL_OK);
    assert_true(f == -31740.0f);
    assert_int_equal(pl_gguf_get_arr(g, "tokenizer.ggml.token_type", &a), PL_OK);
    assert_int_equal(a.elem_type, PL_GGUF_TYPE_INT32);
    int64_t tt;
    assert_int_equal(pl_gguf_arr_i64(&a, 0, &tt), PL_OK);
    assert_int_equal(tt, 2);
    assert_int_equal(pl_gguf_arr_i64(&a, 1, &tt), PL_OK);
    assert_int_equal(tt, 3);
    assert_int_equal(pl_gguf_arr_i64(&a, 3, &tt), PL_OK);
    assert_int_equal(tt, 6);
    check_copy_identical(ctx, g, path);
    pl_gguf_free(g);
    pl_ctx_free(ctx);
}

static void test_vocab_gpt2(void **state) {
    (void)state;
    const char *sd = shared_dir();
    if (!sd) skip();
    char path[600];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-gpt-2.gguf", sd);
    pl_ctx *ctx = new_ctx();
    pl_gguf *g = NULL;
    if (pl_gguf_open(ctx, path, &g) != PL_OK) fail_msg("%s", pl_ctx_last_error(ctx));
    assert_int_equal(pl_gguf_n_kv(g), 16);
    pl_str s;
    assert_int_equal(pl_gguf_get_str(g, "general.architecture", &s), PL_OK);
    assert_true(pl_str_eq(s, "gpt2"));
    assert_int_equal(pl_gguf_get_str(g, "tokenizer.ggml.model", &s), PL_OK);
    assert_true(pl_str_eq(s, "gpt2"));
    uint32_t u;
    assert_int_equal(pl_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u), PL_OK);
    assert_int_equal(u, 50256);
    assert_int_equal(pl_gguf_get_u32(g, "gpt2.embedding_length", &u), PL_OK);
    assert_int_equal(u, 768);
    pl_gguf_arr a;
    assert_int_equal(pl_gguf_get_arr(g, "tokenizer.ggml.tokens", &a), PL_OK);
    assert_int_equal(a.count, 50257);
    static const struct { uint64_t id; const char *s; } toks[] = {
        { 0, "!" }, { 1, "\"" }, { 50256, "<|endoftext|>" }, { 50255, "\xc4\xa0gazed" },
    };
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++) {
        assert_int_equal(pl_gguf_arr_str(&a, toks[i].id, &s), PL_OK);
        if (!pl_str_eq(s, toks[i].s)) fail_msg("token %llu is '%.*s'", (unsigned long long)toks[i].id, (int)s.len, s.ptr);
    }
    assert_int_equal(pl_gguf_get_arr(g, "tokenizer.ggml.merges", &a), PL_OK);
    assert_int_equal(a.count, 50000);
    assert_int_equal(pl_gguf_arr_str(&a, 0, &s), PL_OK);
    assert_true(pl_str_eq(s, "\xc4\xa0 t"));
    assert_int_equal(pl_gguf_arr_str(&a, 49999, &s), PL_OK);
    assert_true(pl_str_eq(s, "\xc4\xa0g azed"));
    assert_int_equal(pl_gguf_get_arr(g, "tokenizer.ggml.token_type", &a), PL_OK);
    int64_t tt;
    assert_int_equal(pl_gguf_arr_i64(&a, 50256, &tt), PL_OK);
    assert_int_equal(tt, 3);
    check_copy_identical(ctx, g, path);
    pl_gguf_free(g);
    pl_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_bytes),
        cmocka_unit_test(test_roundtrip_all_types),
        cmocka_unit_test(test_getter_conversions),
        cmocka_unit_test(test_tensors_roundtrip),
        cmocka_unit_test(test_padding_zeroed),
        cmocka_unit_test(test_write_file),
        cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_many_names),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_vocab_llama),
        cmocka_unit_test(test_vocab_gpt2),
    };
    int failed = cmocka_run_group_tests_name("gguf", tests, NULL, NULL);
    failed += gguf_run_malformed_tests();
    if (failed) return 1;
    return shared_dir() ? 0 : 77;
}
