/*
 * speech_test.h - helpers shared by the speech test executables.
 */
#ifndef PL_SPEECH_TEST_H
#define PL_SPEECH_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* $PL_SHARED_DIR/audio/<name> when it exists, else NULL. */
static inline const char *shared_audio(const char *name, char *buf, size_t cap) {
    const char *d = getenv("PL_SHARED_DIR");
    if (!d) return NULL;
    snprintf(buf, cap, "%s/audio/%s", d, name);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

/* xorshift64 and Box-Muller: deterministic noise for the tests. */
typedef struct test_rng { uint64_t s; } test_rng;

static inline double rng_uniform(test_rng *r) {
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return (double)(r->s >> 11) * (1.0 / 9007199254740992.0);
}

static inline double rng_gauss(test_rng *r) {
    double u = rng_uniform(r) + 1e-300, v = rng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* Goertzel power of x[0..n) at frequency f (Hz) for sample rate sr. */
static inline double goertzel(const float *x, size_t n, double f, double sr) {
    double w = 2.0 * M_PI * f / sr, c = 2.0 * cos(w), s1 = 0.0, s2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        double s0 = x[i] + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    return s1 * s1 + s2 * s2 - c * s1 * s2;
}

static inline char *test_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)sz + 1);
    if (p && fread(p, 1, (size_t)sz, f) != (size_t)sz) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p) p[sz] = '\0';
    *n = (size_t)sz;
    return p;
}

#endif
