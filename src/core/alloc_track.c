/*
 * alloc_track.c - a counting, failure-injecting allocator hook for tests and
 * leak checks. Each block carries a 16-byte header (payload size + a magic
 * word), which keeps the payload at malloc's 16-byte alignment.
 */
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "parley/core.h"

#define TRACK_MAGIC 0x706c74726b616c63ull /* "pltrkalc" */

typedef struct track_hdr {
    size_t   size;  /* payload bytes */
    uint64_t magic; /* TRACK_MAGIC while live; cleared on free */
} track_hdr;

_Static_assert(sizeof(track_hdr) == 16, "tracker header must be 16 bytes");
_Static_assert(alignof(max_align_t) <= 16, "16-byte header must keep max_align_t alignment");

void pl_alloc_tracker_reset(pl_alloc_tracker *t) {
    if (!t) return;
    atomic_store(&t->in_use, 0);
    atomic_store(&t->peak, 0);
    atomic_store(&t->n_allocs, 0);
    atomic_store(&t->fail_at, 0);
    atomic_store(&t->n_calls, 0);
}

static track_hdr *hdr_of(void *ptr) {
    track_hdr *h = (track_hdr *)((char *)ptr - sizeof(track_hdr));
    /* A pointer that did not come from this hook, or a double free: memory is
     * already corrupt, and going on would hide the bug. */
    if (h->magic != TRACK_MAGIC) abort();
    return h;
}

static void add_in_use(pl_alloc_tracker *t, int64_t delta) {
    int64_t now = atomic_fetch_add_explicit(&t->in_use, delta, memory_order_relaxed) + delta;
    int64_t peak = atomic_load_explicit(&t->peak, memory_order_relaxed);
    while (now > peak &&
           !atomic_compare_exchange_weak_explicit(&t->peak, &peak, now, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
}

void *pl_track_alloc(void *ud, void *ptr, size_t size) {
    pl_alloc_tracker *t = ud;
    if (size == 0) {
        if (ptr) {
            track_hdr *h = hdr_of(ptr);
            add_in_use(t, -(int64_t)h->size);
            h->magic = 0;
            free(h);
        }
        return NULL;
    }
    int64_t call = atomic_fetch_add_explicit(&t->n_calls, 1, memory_order_relaxed) + 1;
    int64_t fail_at = atomic_load_explicit(&t->fail_at, memory_order_relaxed);
    if (fail_at > 0 && call == fail_at) return NULL;
    /* Sizes above INT64_MAX / 2 cannot be counted (and never succeed anyway). */
    if (size > (size_t)(INT64_MAX / 2) || size > SIZE_MAX - sizeof(track_hdr)) return NULL;

    track_hdr *old = ptr ? hdr_of(ptr) : NULL;
    size_t old_size = old ? old->size : 0;
    /* On failure realloc leaves the old block, header included, untouched. */
    track_hdr *h = realloc(old, sizeof(track_hdr) + size);
    if (!h) return NULL;
    h->size = size;
    h->magic = TRACK_MAGIC;
    atomic_fetch_add_explicit(&t->n_allocs, 1, memory_order_relaxed);
    add_in_use(t, (int64_t)size - (int64_t)old_size);
    return h + 1;
}
