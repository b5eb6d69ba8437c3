/* fuzz_util.h - what every libFuzzer target here shares: the entry-point
 * prototypes, CHECK (an invariant that must hold for every input: abort so the
 * fuzzer saves the input) and seed-file writing for $PL_FUZZ_WRITE_SEEDS.
 * Define FUZZ_NAME (the target's name, for messages) before including. */
#ifndef PL_FUZZ_UTIL_H
#define PL_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s: invariant failed: %s (line %d)\n", FUZZ_NAME, #cond, __LINE__); \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

/* dir/name := n bytes of data (best effort: a seed that can't be written is skipped) */
static inline void fuzz_write_bytes(const char *dir, const char *name, const void *data, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

static inline void fuzz_write_text(const char *dir, const char *name, const char *text) {
    fuzz_write_bytes(dir, name, text, strlen(text));
}

#endif
