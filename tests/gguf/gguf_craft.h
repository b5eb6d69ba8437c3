/*
 * gguf_craft.h - byte-level GGUF builder for tests: writes the format by hand,
 * independently of the library's writer, so malformed files can be made and the
 * writer's output checked against a hand-built expectation.
 */
#ifndef PL_TEST_GGUF_CRAFT_H
#define PL_TEST_GGUF_CRAFT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct gb {
    uint8_t *p;
    size_t   len, cap;
} gb;

static inline void gb_bytes(gb *b, const void *d, size_t n) {
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n) nc *= 2;
        uint8_t *np = realloc(b->p, nc);
        if (!np) abort();
        b->p = np;
        b->cap = nc;
    }
    if (d) memcpy(b->p + b->len, d, n);
    else memset(b->p + b->len, 0, n);
    b->len += n;
}
static inline void gb_free(gb *b) {
    free(b->p);
    *b = (gb){ 0 };
}
static inline void gb_u8(gb *b, uint8_t v) { gb_bytes(b, &v, 1); }
static inline void gb_u16(gb *b, uint16_t v) { uint8_t x[2] = { (uint8_t)v, (uint8_t)(v >> 8) }; gb_bytes(b, x, 2); }
static inline void gb_u32(gb *b, uint32_t v) {
    uint8_t x[4];
    for (int i = 0; i < 4; i++) x[i] = (uint8_t)(v >> (8 * i));
    gb_bytes(b, x, 4);
}
static inline void gb_u64(gb *b, uint64_t v) {
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    gb_bytes(b, x, 8);
}
static inline void gb_strn(gb *b, const char *s, size_t n) {
    gb_u64(b, n);
    gb_bytes(b, s, n);
}
static inline void gb_str(gb *b, const char *s) { gb_strn(b, s, strlen(s)); }
static inline void gb_pad_to(gb *b, size_t align) {
    while (b->len % align) gb_u8(b, 0);
}
static inline void gb_header(gb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    gb_bytes(b, "GGUF", 4);
    gb_u32(b, version);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}
/* key + type id; the caller appends the value */
static inline void gb_key(gb *b, const char *key, uint32_t type) {
    gb_str(b, key);
    gb_u32(b, type);
}
static inline void gb_kv_u32(gb *b, const char *key, uint32_t v) {
    gb_key(b, key, 4);
    gb_u32(b, v);
}
static inline void gb_kv_str(gb *b, const char *key, const char *v) {
    gb_key(b, key, 8);
    gb_str(b, v);
}
static inline void gb_tinfo(gb *b, const char *name, uint32_t n_dims, const int64_t *ne, uint32_t type,
                            uint64_t offset) {
    gb_str(b, name);
    gb_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) gb_u64(b, (uint64_t)ne[i]);
    gb_u32(b, type);
    gb_u64(b, offset);
}

/* The malformed-file group (test_gguf_malformed.c). */
int gguf_run_malformed_tests(void);

#endif
