/*
 * arena.c - bump allocation in blocks from the ctx allocator, freed at once.
 *
 * The first block is allocated with the arena itself and survives
 * pl_arena_reset(), so a reused arena costs no allocation while its work fits
 * in one block. A request that would take more than half a block gets a block
 * of its own, linked behind the current one, so the current block's free space
 * is not thrown away.
 */
#include <stdalign.h>
#include <stdint.h>
#include <string.h>

#include "parley/core.h"

#define ARENA_DEFAULT_BLOCK (64u * 1024u)

typedef struct arena_block {
    struct arena_block *next;
    unsigned char      *data;
    size_t              cap;  /* bytes at data */
    size_t              used; /* bytes handed out, alignment padding included */
} arena_block;

struct pl_arena {
    pl_ctx      *ctx;
    size_t       block_size;
    size_t       used;   /* sum of used over the blocks */
    arena_block *cur;    /* small allocations bump here; always the list head */
    arena_block *blocks; /* newest first; ends with &first */
    arena_block  first;  /* its data follows this struct in the same allocation */
};

pl_status pl_arena_init(pl_ctx *ctx, size_t block_size, pl_arena **out) {
    if (!out) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "arena: out is NULL");
    *out = NULL;
    if (block_size == 0) block_size = ARENA_DEFAULT_BLOCK;
    size_t total;
    if (!pl_size_add(sizeof(pl_arena), block_size, &total))
        return pl_ctx_err(ctx, PL_ERR_OVERFLOW, "arena: block size %zu too large", block_size);
    pl_arena *a = pl_malloc(ctx, total);
    if (!a) return pl_ctx_err(ctx, PL_ERR_NOMEM, "arena: cannot allocate a %zu-byte block", block_size);
    a->ctx = ctx;
    a->block_size = block_size;
    a->used = 0;
    a->first = (arena_block){ .next = NULL, .data = (unsigned char *)(a + 1), .cap = block_size, .used = 0 };
    a->cur = a->blocks = &a->first;
    *out = a;
    return PL_OK;
}

void pl_arena_free(pl_arena *a) {
    if (!a) return;
    pl_arena_reset(a);
    pl_free(a->ctx, a);
}

void pl_arena_reset(pl_arena *a) {
    if (!a) return;
    arena_block *b = a->blocks;
    while (b) {
        arena_block *next = b->next;
        if (b != &a->first) pl_free(a->ctx, b);
        b = next;
    }
    a->first.next = NULL;
    a->first.used = 0;
    a->cur = a->blocks = &a->first;
    a->used = 0;
}

size_t pl_arena_used(const pl_arena *a) {
    return a ? a->used : 0;
}

/* Take size bytes at align from b, or NULL when they do not fit. */
static void *bump(pl_arena *a, arena_block *b, size_t size, size_t align) {
    uintptr_t at = (uintptr_t)(b->data + b->used);
    size_t pad = (size_t)(-at & (uintptr_t)(align - 1));
    size_t left = b->cap - b->used;
    if (pad > left || size > left - pad) return NULL;
    void *p = b->data + b->used + pad;
    b->used += pad + size;
    a->used += pad + size;
    return p;
}

void *pl_arena_alloc(pl_arena *a, size_t size, size_t align) {
    if (!a) return NULL;
    if (align == 0) align = alignof(max_align_t);
    if (align & (align - 1)) return NULL;
    if (size == 0) size = 1; /* a distinct pointer, like pl_malloc */
    void *p = bump(a, a->cur, size, align);
    if (p) return p;

    size_t need, total;
    if (!pl_size_add(size, align - 1, &need)) return NULL; /* room for any padding */
    bool large = need > a->block_size / 2;
    size_t cap = large ? need : a->block_size;
    if (!pl_size_add(sizeof(arena_block), cap, &total)) return NULL;
    arena_block *b = pl_malloc(a->ctx, total);
    if (!b) return NULL;
    *b = (arena_block){ .next = NULL, .data = (unsigned char *)(b + 1), .cap = cap, .used = 0 };
    if (large) {
        b->next = a->cur->next;
        a->cur->next = b;
    } else {
        b->next = a->blocks;
        a->blocks = a->cur = b;
    }
    return bump(a, b, size, align);
}

char *pl_arena_strndup(pl_arena *a, const char *s, size_t n) {
    if (!a || !s) return NULL;
    size_t len = strnlen(s, n);
    if (len == SIZE_MAX) return NULL;
    char *d = pl_arena_alloc(a, len + 1, 1);
    if (!d) return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}
