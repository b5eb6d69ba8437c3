/*
 * fuzz_gguf.c - libFuzzer target for the GGUF reader (and writer, by round trip).
 *
 * Each input is opened with pl_gguf_open_memory(); when it is accepted, every kv,
 * array element (nested included) and tensor is read through the getters, and
 * invariants are checked (abort on violation):
 *  - find_key / find_tensor return the entry's own index for NUL-free names;
 *  - every tensor lies inside the input;
 *  - copying all kvs and tensors through the writer gives a file that opens,
 *    with the same counts.
 * With $PL_FUZZ_WRITE_SEEDS set to a directory, LLVMFuzzerInitialize first writes
 * a few valid seed files there (made with the writer).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/gguf.h"
#include "parley/tensor.h"

#define FUZZ_NAME "fuzz_gguf"
#include "fuzz/fuzz_util.h"

static volatile uint64_t sink; /* keeps the reads from being optimized out */

static void walk_arr(const pl_gguf_arr *a, int depth) {
    CHECK(depth <= 8);
    for (uint64_t i = 0; i < a->count; i++) {
        uint64_t u;
        int64_t v;
        double d;
        float f;
        pl_str s;
        pl_gguf_arr sub;
        switch (a->elem_type) {
        case PL_GGUF_TYPE_STRING:
            CHECK(pl_gguf_arr_str(a, i, &s) == PL_OK);
            if (s.len) sink += (uint8_t)s.ptr[0] + (uint8_t)s.ptr[s.len - 1];
            break;
        case PL_GGUF_TYPE_ARRAY:
            CHECK(pl_gguf_arr_arr(a, i, &sub) == PL_OK);
            walk_arr(&sub, depth + 1);
            break;
        case PL_GGUF_TYPE_FLOAT32:
        case PL_GGUF_TYPE_FLOAT64:
            CHECK(pl_gguf_arr_f64(a, i, &d) == PL_OK);
            if (pl_gguf_arr_f32(a, i, &f) == PL_OK) sink += f != 0;
            sink += d != 0;
            break;
        default:
            if (pl_gguf_arr_u64(a, i, &u) == PL_OK) sink += u;
            if (pl_gguf_arr_i64(a, i, &v) == PL_OK) sink += (uint64_t)v;
            break;
        }
    }
    uint64_t u;
    CHECK(pl_gguf_arr_u64(a, a->count, &u) != PL_OK);
}

static bool cstr_of(pl_str s, char *buf, size_t cap) {
    if (s.len >= cap || memchr(s.ptr, 0, s.len)) return false;
    memcpy(buf, s.ptr, s.len);
    buf[s.len] = '\0';
    return true;
}

static void walk(pl_ctx *ctx, const pl_gguf *g, const uint8_t *data, size_t size) {
    char name[65536 + 1];
    pl_gguf_writer *w = NULL;
    bool copy_ok = pl_gguf_writer_init(ctx, &w) == PL_OK;
    for (int64_t i = 0; i < pl_gguf_n_kv(g); i++) {
        pl_str key = pl_gguf_kv_key(g, i);
        CHECK(key.ptr && key.len > 0);
        if (cstr_of(key, name, sizeof name)) CHECK(pl_gguf_find_key(g, name) == i);
        uint32_t type = pl_gguf_kv_type(g, i);
        CHECK(type < PL_GGUF_TYPE_COUNT);
        uint64_t u;
        int64_t v;
        double d;
        pl_str s;
        pl_gguf_arr a;
        if (pl_gguf_kv_u64(g, i, &u) == PL_OK) sink += u;
        if (pl_gguf_kv_i64(g, i, &v) == PL_OK) sink += (uint64_t)v;
        if (pl_gguf_kv_f64(g, i, &d) == PL_OK) sink += d != 0;
        if (pl_gguf_kv_str(g, i, &s) == PL_OK && s.len) sink += (uint8_t)s.ptr[s.len - 1];
        if (pl_gguf_kv_arr(g, i, &a) == PL_OK) walk_arr(&a, 1);
        if (copy_ok && pl_gguf_writer_copy_kv(w, g, i) != PL_OK) copy_ok = false;
    }
    const uint8_t *end = data + size;
    for (int64_t i = 0; i < pl_gguf_n_tensors(g); i++) {
        pl_gguf_tensor t;
        CHECK(pl_gguf_tensor_at(g, i, &t) == PL_OK);
        CHECK(t.n_dims >= 1 && t.n_dims <= PL_GGUF_MAX_DIMS);
        CHECK((const uint8_t *)t.data >= data && t.nbytes <= (uint64_t)(end - (const uint8_t *)t.data));
        if (t.nbytes) sink += ((const uint8_t *)t.data)[0] + ((const uint8_t *)t.data)[t.nbytes - 1];
        if (cstr_of(t.name, name, sizeof name)) {
            CHECK(pl_gguf_find_tensor(g, name) == i);
            if (copy_ok && pl_gguf_writer_add_tensor(w, name, t.type, t.n_dims, t.ne, t.data) != PL_OK)
                copy_ok = false;
        } else {
            copy_ok = false;
        }
    }
    CHECK(pl_gguf_tensor_at(g, pl_gguf_n_tensors(g), &(pl_gguf_tensor){ 0 }) == PL_ERR_RANGE);

    /* What the reader accepted, the writer reproduces and the reader accepts again. */
    void *buf = NULL;
    size_t n = 0;
    if (copy_ok && pl_gguf_writer_write_mem(w, &buf, &n) == PL_OK) {
        pl_gguf *g2 = NULL;
        pl_status st = pl_gguf_open_memory(ctx, buf, n, &g2);
        if (st != PL_OK) fprintf(stderr, "fuzz_gguf: re-open failed: %s\n", pl_ctx_last_error(ctx));
        CHECK(st == PL_OK);
        CHECK(pl_gguf_n_kv(g2) == pl_gguf_n_kv(g));
        CHECK(pl_gguf_n_tensors(g2) == pl_gguf_n_tensors(g));
        CHECK(pl_gguf_alignment(g2) == pl_gguf_alignment(g));
        pl_gguf_free(g2);
    }
    pl_free(ctx, buf);
    pl_gguf_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pl_ctx *ctx = NULL;
    if (pl_ctx_init(&ctx, NULL) != PL_OK) return 0;
    pl_gguf *g = NULL;
    if (pl_gguf_open_memory(ctx, data, size, &g) == PL_OK) {
        walk(ctx, g, data, size);
        pl_gguf_free(g);
    } else {
        CHECK(g == NULL);
        const char *err = pl_ctx_last_error(ctx);
        CHECK(strncmp(err, "gguf: ", 6) == 0 && strchr(err, '\n') == NULL);
    }
    pl_ctx_free(ctx);
    return 0;
}

/* ---- seeds ---- */

static void put_u32(uint8_t **p, uint32_t v) { memcpy(*p, &v, 4); *p += 4; }
static void put_u64(uint8_t **p, uint64_t v) { memcpy(*p, &v, 8); *p += 8; }

static void save(pl_ctx *ctx, pl_gguf_writer *w, const char *dir, const char *name, bool as_v2) {
    void *buf;
    size_t n;
    if (pl_gguf_writer_write_mem(w, &buf, &n) != PL_OK) {
        fprintf(stderr, "fuzz_gguf: seed %s: %s\n", name, pl_gguf_writer_last_error(w));
        return;
    }
    if (as_v2) ((uint8_t *)buf)[4] = 2;
    fuzz_write_bytes(dir, name, buf, n);
    pl_free(ctx, buf);
}

static void write_seeds(const char *dir) {
    pl_ctx *ctx = NULL;
    if (pl_ctx_init(&ctx, NULL) != PL_OK) return;
    static float fdata[2048];
    for (int i = 0; i < 2048; i++) fdata[i] = (float)i * 0.5f - 7.0f;

    /* 1: every value type, string arrays, nested arrays, a few tensors */
    pl_gguf_writer *w = NULL;
    if (pl_gguf_writer_init(ctx, &w) != PL_OK) return;
    pl_gguf_writer_set_str(w, "general.architecture", "llama");
    pl_gguf_writer_set_u8(w, "t.u8", 7);
    pl_gguf_writer_set_i8(w, "t.i8", -7);
    pl_gguf_writer_set_u16(w, "t.u16", 700);
    pl_gguf_writer_set_i16(w, "t.i16", -700);
    pl_gguf_writer_set_u32(w, "t.u32", 70000);
    pl_gguf_writer_set_i32(w, "t.i32", -70000);
    pl_gguf_writer_set_f32(w, "t.f32", 0.5f);
    pl_gguf_writer_set_bool(w, "t.bool", true);
    pl_gguf_writer_set_u64(w, "t.u64", 1ull << 40);
    pl_gguf_writer_set_i64(w, "t.i64", -(1ll << 40));
    pl_gguf_writer_set_f64(w, "t.f64", 1e-3);
    static const uint32_t u32s[] = { 1, 2, 3, 4 };
    static const int8_t i8s[] = { -1, 2, -3 };
    pl_gguf_writer_set_arr(w, "a.u32", PL_GGUF_TYPE_UINT32, u32s, 4);
    pl_gguf_writer_set_arr(w, "a.i8", PL_GGUF_TYPE_INT8, i8s, 3);
    pl_gguf_writer_set_arr(w, "a.f32", PL_GGUF_TYPE_FLOAT32, fdata, 5);
    const char *strs[] = { "<unk>", "<s>", "", "h\xc3\xa9llo" };
    pl_gguf_writer_set_arr_str(w, "a.strs", strs, NULL, 4);
    uint8_t raw[128], *p = raw;
    put_u32(&p, PL_GGUF_TYPE_UINT8); /* [ u8[2], string["ab"], array[ u16[1] ] ] */
    put_u64(&p, 2);
    *p++ = 1;
    *p++ = 2;
    put_u32(&p, PL_GGUF_TYPE_STRING);
    put_u64(&p, 1);
    put_u64(&p, 2);
    *p++ = 'a';
    *p++ = 'b';
    put_u32(&p, PL_GGUF_TYPE_ARRAY);
    put_u64(&p, 1);
    put_u32(&p, PL_GGUF_TYPE_UINT16);
    put_u64(&p, 1);
    *p++ = 9;
    *p++ = 0;
    pl_gguf_writer_set_arr_raw(w, "a.nested", PL_GGUF_TYPE_ARRAY, raw, (size_t)(p - raw), 3);
    pl_gguf_writer_add_tensor(w, "token_embd.weight", PL_TYPE_F32, 2, (int64_t[]){ 8, 4 }, fdata);
    pl_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", PL_TYPE_Q8_0, 2, (int64_t[]){ 32, 2 }, fdata);
    pl_gguf_writer_add_tensor(w, "blk.0.ffn_down.weight", PL_TYPE_Q4_K, 1, (int64_t[]){ 256 }, fdata);
    save(ctx, w, dir, "seed_all_types.gguf", false);

    /* 2: the same at alignment 64 with an empty tensor, as v2 */
    pl_gguf_writer_set_u32(w, "general.alignment", 64);
    pl_gguf_writer_add_tensor(w, "empty", PL_TYPE_F16, 2, (int64_t[]){ 0, 3 }, NULL);
    save(ctx, w, dir, "seed_align64_v2.gguf", true);
    pl_gguf_writer_free(w);

    /* 3: vocab-like: tokens, scores, types, no tensors */
    if (pl_gguf_writer_init(ctx, &w) != PL_OK) return;
    char tok[64][8];
    const char *toks[64];
    int32_t types[64];
    for (int i = 0; i < 64; i++) {
        snprintf(tok[i], sizeof tok[i], i < 3 ? "<%d>" : "t%d", i);
        toks[i] = tok[i];
        types[i] = i < 3 ? 3 : 1;
    }
    pl_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    pl_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 64);
    pl_gguf_writer_set_arr(w, "tokenizer.ggml.scores", PL_GGUF_TYPE_FLOAT32, fdata, 64);
    pl_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", PL_GGUF_TYPE_INT32, types, 64);
    pl_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    save(ctx, w, dir, "seed_vocab.gguf", false);
    pl_gguf_writer_free(w);

    /* 4: tensors only */
    if (pl_gguf_writer_init(ctx, &w) != PL_OK) return;
    pl_gguf_writer_add_tensor(w, "a", PL_TYPE_F32, 4, (int64_t[]){ 2, 2, 2, 2 }, fdata);
    pl_gguf_writer_add_tensor(w, "b", PL_TYPE_Q6_K, 1, (int64_t[]){ 256 }, fdata);
    pl_gguf_writer_add_tensor(w, "c", PL_TYPE_I8, 1, (int64_t[]){ 3 }, fdata);
    save(ctx, w, dir, "seed_tensors.gguf", false);
    pl_gguf_writer_free(w);
    pl_ctx_free(ctx);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (dir && *dir) write_seeds(dir);
    return 0;
}
