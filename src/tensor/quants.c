/*
 * quants.c - scalar reference rows for the 32-value block types Q8_0, Q4_0, Q4_1,
 * Q5_0, Q5_1: dequantize (to_f32), quantize (from_f32) and the dot product against
 * activations quantized to Q8_0. Written from the block definitions in shared
 * formats.md. Also the f32/f16/bf16 dots (activations in the same type).
 *
 * Quantizers: one pass per block, scale from the extreme value, round to nearest
 * (half away from zero) using the f16-rounded scale that is actually stored.
 * Cost: O(n) with a division-free inner loop; these are the reference, the SIMD
 * kernels come later behind pl_matmul().
 */
#include <math.h>
#include <string.h>

#include "tensor_int.h"

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* ---- Q8_0: x[j] = d*q[j] ---- */

void pl_q8_0_to_f32_row(const void *x, float *y, int64_t n) {
    const pl_block_q8_0 *b = x;
    for (int64_t i = 0; i < n / PL_QK32; i++) {
        float d = pl_f16_to_f32(b[i].d);
        for (int j = 0; j < PL_QK32; j++) y[i * PL_QK32 + j] = d * (float)b[i].qs[j];
    }
}

void pl_q8_0_from_f32_row(const float *x, void *y, int64_t n) {
    pl_block_q8_0 *b = y;
    for (int64_t i = 0; i < n / PL_QK32; i++) {
        const float *v = x + i * PL_QK32;
        float amax = 0.0f;
        for (int j = 0; j < PL_QK32; j++) amax = fmaxf(amax, fabsf(v[j]));
        b[i].d = pl_f32_to_f16(amax / 127.0f);
        float d = pl_f16_to_f32(b[i].d);
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < PL_QK32; j++) b[i].qs[j] = (int8_t)clampi((int)roundf(v[j] * id), -127, 127);
    }
}

float pl_q8_0_vec_dot(const void *x, const void *y, int64_t n) {
    const pl_block_q8_0 *a = x, *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / PL_QK32; i++) {
        int32_t s = 0;
        for (int j = 0; j < PL_QK32; j++) s += (int32_t)a[i].qs[j] * b[i].qs[j];
        sum += (float)s * (pl_f16_to_f32(a[i].d) * pl_f16_to_f32(b[i].d));
    }
    return sum;
}

/* ---- Q4_0: x[j] = d*(lo nibble - 8), x[j+16] = d*(hi nibble - 8) ---- */

void pl_q4_0_to_f32_row(const void *x, float *y, int64_t n) {
    const pl_block_q4_0 *b = x;
    for (int64_t i = 0; i < n / PL_QK32; i++) {
        float d = pl_f16_to_f32(b[i].d);
        float *o = y + i * PL_QK32;
        for (int j = 0; j < 16; j++) {
            o[j] = d * (float)((b[i].qs[j] & 15) - 8);
            o[j + 16] = d * (float)((b[i].qs[j] >> 4) - 8);
        }
    }
}

/* Signed value of largest magnitude: used so the extreme lands exactly on -2^(bits-1). */
static float signed_absmax(const float *v, int n) {
    float m = 0.0f;
    for (int j = 0; j < n; j++)
        if (fabsf(v[j]) > fabsf(m)) m = v[j];
    return m;
}

void pl_q4_0_from_f32_row(const float *x, void *y, int64_t n) {
    pl_block_q4_0 *b = y;
    for (int64_t i = 0; i < n / PL_QK32; i++) {
        const float *v = x + i * PL_QK32;
        b[i].d = pl_f32_to_f16(signed_absmax(v, PL_QK32) / -8.0f);
        float d = pl_f16_to_f32(b[i].d);
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < 16; j++) {
            int lo = clampi((int)roundf(v[j] * id) + 8, 0, 15);
            int hi = clampi((int)roundf(v[j + 16] * id) + 8, 0, 15);
            b[i].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

float pl_q4_0_vec_dot(const void *x, const void *y, int64_t n) {
    const pl_block_q4_0 *a = x;
    const pl_block_q8_0 *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / PL_QK32; i++) {
        int32_t s = 0;
        for (int j = 0; j < 16; j++) {
            s += ((a[i].qs[j] & 15) - 8) * (int32_t)b[i].qs[j];
            s += ((a[i].qs[j] >> 4) - 8) * (int32_t)b[i].qs[j + 16];
        }
        sum += (float)s * (pl_f16_to_f32(a[i].d) * pl_f16_to_f32(b[i].d));
    }
    return sum;
}

/* ---- Q4_1: x = d*q + m ---- */

void pl_q4_1_to_f32_row(const void *x, float *y, int64_t n) {
    const pl_block_q4_1 *b = x;
    for (int64_t i = 0; i < n / PL_QK32; i++) {
        float d = pl_f16_to_f32(b[i].d), m = pl_f16_to_f32(b[i].m);
        float *o = y + i * PL_QK32;
        for (int j = 0; j < 16; j++) {
            o[j] = d * (float)(b[i].qs[j] & 15) + m;
            o[j + 16] = d * (float)(b[i].qs[j] >> 4) + m;
        }
    }
}

/* min/max of a block; the affine types map [min, max] onto [0, levels]. */
static void minmax(const float *v, int n, float *mn, float *mx) {
    *mn = v[0];
    *mx = v[0];
    for (int j = 1; j < n; j++) {
        *mn = fminf(*mn, v[j]);
        *mx = fmaxf(*mx, v[j]);
    }
}

void pl_q4_1_from_f32_row(const float *x, void *y, int64_t n) {
    pl_block_q4_1 *b = y;
    for (int64_t i = 0; i < n / PL_QK32; i++) {
        const float *v = x + i * PL_QK32;
        float mn, mx;
        minmax(v, PL_QK32, &mn, &mx);
        b[i].d = pl_f32_to_f16((mx - mn) / 15.0f);
        b[i].m = pl_f32_to_f16(mn);
        float d = pl_f16_to_f32(b[i].d), m = pl_f16_to_f32(b[i].m);
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < 16; j++) {
            int lo = clampi((int)roundf((v[j] - m) * id), 0, 15);
            int hi = clampi((int)roundf((v[j + 16] - m) * id), 0, 15);
            b[i].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

/* sum_j (d q_j + m) * (dy a_j) = d*dy*sum(q a) + m*dy*sum(a) */
float pl_q4_1_vec_dot(const void *x, const void *y, int64_t n) {
    const pl_block_q4_1 *a = x;
    const pl_block_q8_0 *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / PL_QK32; i++) {
        int32_t s = 0, sa = 0;
        for (int j = 0; j < 16; j++) {
            s += (a[i].qs[j] & 15) * (int32_t)b[i].qs[j];
            s += (a[i].qs[j] >> 4) * (int32_t)b[i].qs[j + 16];
            sa += b[i].qs[j] + b[i].qs[j + 16];
        }
        float dy = pl_f16_to_f32(b[i].d);
        sum += (float)s * (pl_f16_to_f32(a[i].d) * dy) + (float)sa * (pl_f16_to_f32(a[i].m) * dy);
    }
    return sum;
}

/* ---- Q5_0 / Q5_1: nibble | (bit j of the little-endian u32 qh) << 4 ---- */

static inline uint32_t qh_u32(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | ((uint32_t)qh[1] << 8) | ((uint32_t)qh[2] << 16) | ((uint32_t)qh[3] << 24);
}

/* The 32 five-bit values of a Q5 block, in value order. */
static inline void q5_unpack(const uint8_t qh[4], const uint8_t qs[16], int q[32]) {
    uint32_t h = qh_u32(qh);
    for (int j = 0; j < 16; j++) {
        q[j] = (qs[j] & 15) | (int)(((h >> j) & 1) << 4);
        q[j + 16] = (qs[j] >> 4) | (int)(((h >> (j + 16)) & 1) << 4);
    }
}

static inline void q5_pack(const int q[32], uint8_t qh[4], uint8_t qs[16]) {
    uint32_t h = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 15) | ((q[j + 16] & 15) << 4));
        h |= (uint32_t)(q[j] >> 4) << j;
        h |= (uint32_t)(q[j + 16] >> 4) << (j + 16);
    }
    for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(h >> (8 * k));
}

void pl_q5_0_to_f32_row(const void *x, float *y, int64_t n) {
    const pl_block_q5_0 *b = x;
    int q[32];
    for (int64_t i = 0; i < n / PL_QK32; i++) {
        float d = pl_f16_to_f32(b[i].d);
        q5_unpack(b[i].qh, b[i].qs, q);
        for (int j = 0; j < PL_QK32; j++) y[i * PL_QK32 + j] = d * (float)(q[j] - 16);
    }
}

void pl_q5_0_from_f32_row(const float *x, void *y, int64_t n) {
    pl_block_q5_0 *b = y;
    int q[32];
    for (int64_t i = 0; i < n / PL_QK32; i++) {
        const float *v = x + i * PL_QK32;
        b[i].d = pl_f32_to_f16(signed_absmax(v, PL_QK32) / -16.0f);
        float d = pl_f16_to_f32(b[i].d);
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < PL_QK32; j++) q[j] = clampi((int)roundf(v[j] * id) + 16, 0, 31);
        q5_pack(q, b[i].qh, b[i].qs);
    }
}

float pl_q5_0_vec_dot(const void *x, const void *y, int64_t n) {
    const pl_block_q5_0 *a = x;
    const pl_block_q8_0 *b = y;
    int q[32];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / PL_QK32; i++) {
        q5_unpack(a[i].qh, a[i].qs, q);
        int32_t s = 0;
        for (int j = 0; j < PL_QK32; j++) s += (q[j] - 16) * (int32_t)b[i].qs[j];
        sum += (float)s * (pl_f16_to_f32(a[i].d) * pl_f16_to_f32(b[i].d));
    }
    return sum;
}

void pl_q5_1_to_f32_row(const void *x, float *y, int64_t n) {
    const pl_block_q5_1 *b = x;
    int q[32];
    for (int64_t i = 0; i < n / PL_QK32; i++) {
        float d = pl_f16_to_f32(b[i].d), m = pl_f16_to_f32(b[i].m);
        q5_unpack(b[i].qh, b[i].qs, q);
        for (int j = 0; j < PL_QK32; j++) y[i * PL_QK32 + j] = d * (float)q[j] + m;
    }
}

void pl_q5_1_from_f32_row(const float *x, void *y, int64_t n) {
    pl_block_q5_1 *b = y;
    int q[32];
    for (int64_t i = 0; i < n / PL_QK32; i++) {
        const float *v = x + i * PL_QK32;
        float mn, mx;
        minmax(v, PL_QK32, &mn, &mx);
        b[i].d = pl_f32_to_f16((mx - mn) / 31.0f);
        b[i].m = pl_f32_to_f16(mn);
        float d = pl_f16_to_f32(b[i].d), m = pl_f16_to_f32(b[i].m);
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < PL_QK32; j++) q[j] = clampi((int)roundf((v[j] - m) * id), 0, 31);
        q5_pack(q, b[i].qh, b[i].qs);
    }
}

float pl_q5_1_vec_dot(const void *x, const void *y, int64_t n) {
    const pl_block_q5_1 *a = x;
    const pl_block_q8_0 *b = y;
    int q[32];
    float sum = 0.0f;
    for (int64_t i = 0; i < n / PL_QK32; i++) {
        q5_unpack(a[i].qh, a[i].qs, q);
        int32_t s = 0, sa = 0;
        for (int j = 0; j < PL_QK32; j++) {
            s += q[j] * (int32_t)b[i].qs[j];
            sa += b[i].qs[j];
        }
        float dy = pl_f16_to_f32(b[i].d);
        sum += (float)s * (pl_f16_to_f32(a[i].d) * dy) + (float)sa * (pl_f16_to_f32(a[i].m) * dy);
    }
    return sum;
}

/* ---- plain types: the activations are in the weight's own type ---- */

float pl_f32_vec_dot(const void *x, const void *y, int64_t n) {
    const float *a = x, *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += a[i] * b[i];
    return sum;
}

float pl_f16_vec_dot(const void *x, const void *y, int64_t n) {
    const uint16_t *a = x, *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += pl_f16_to_f32(a[i]) * pl_f16_to_f32(b[i]);
    return sum;
}

float pl_bf16_vec_dot(const void *x, const void *y, int64_t n) {
    const uint16_t *a = x, *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += pl_bf16_to_f32(a[i]) * pl_bf16_to_f32(b[i]);
    return sum;
}
