/*
 * float.c - f32/f16/bf16 scalar conversions and their table rows.
 * Written from IEEE 754 binary16 and bfloat16 definitions; round to nearest even.
 * Cost: a few integer ops per value; the SIMD paths (F16C) come with the kernels.
 */
#include <math.h>
#include <string.h>

#include "tensor_int.h"

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float pl_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) /* inf / nan */
        return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);
        /* subnormal: man * 2^-24 exactly */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t pl_f32_to_f16(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) /* inf or nan (keep nan quiet and non-zero) */
        return (uint16_t)(sign | 0x7c00 | (a > 0x7f800000u ? 0x200 | ((a >> 13) & 0x3ff) : 0));
    if (a >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00);
    if (a < 0x38800000u) { /* below the smallest normal half (2^-14): subnormal or zero */
        /* value / 2^-24, rounded to nearest even */
        float v = bits_f32(a) * 0x1p24f;
        float r = nearbyintf(v); /* default rounding mode is to-nearest-even */
        return (uint16_t)(sign | (uint16_t)r);
    }
    uint32_t exp = (a >> 23) - 112;
    uint32_t man = a & 0x7fffff;
    uint32_t h = (exp << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* carries into exp correctly */
    return (uint16_t)(sign | h);
}

float pl_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t pl_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet nan */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

void pl_f32_to_f32_row(const void *x, float *y, int64_t n) { memcpy(y, x, (size_t)n * sizeof(float)); }
void pl_f32_from_f32_row(const float *x, void *y, int64_t n) { memcpy(y, x, (size_t)n * sizeof(float)); }

void pl_f16_to_f32_row(const void *x, float *y, int64_t n) {
    const uint8_t *p = x;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        y[i] = pl_f16_to_f32(h);
    }
}

void pl_f16_from_f32_row(const float *x, void *y, int64_t n) {
    uint8_t *p = y;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = pl_f32_to_f16(x[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

void pl_bf16_to_f32_row(const void *x, float *y, int64_t n) {
    const uint8_t *p = x;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        y[i] = pl_bf16_to_f32(h);
    }
}

void pl_bf16_from_f32_row(const float *x, void *y, int64_t n) {
    uint8_t *p = y;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = pl_f32_to_bf16(x[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}
