/*
 * kquants.c - scalar reference rows for the 256-value K types Q2_K, Q3_K, Q4_K, Q5_K,
 * Q6_K and the activation type Q8_K: dequantize, quantize, and the dot product of a
 * K-type row against activations in Q8_K. Written from the block definitions in
 * shared formats.md.
 *
 * Quantizers are the simple one-pass kind: each sub-block's scale (and min) from its
 * range, the sub-block scales quantized against the super-block d (and dmin), then
 * the values against the stored (rounded) scales. They are good enough for fixtures
 * and tests; a search-based quantizer (lower error) belongs to `parley quantize`.
 */
#include <math.h>
#include <string.h>

#include "tensor_int.h"

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static inline int rnd(float v) { return (int)roundf(v); }

static float signed_absmax(const float *v, int n) {
    float m = 0.0f;
    for (int j = 0; j < n; j++)
        if (fabsf(v[j]) > fabsf(m)) m = v[j];
    return m;
}

/* ---- the 6-bit scale/min packing shared by Q4_K and Q5_K (12 bytes, 8 pairs) ---- */

static inline void k4_scale_min(const uint8_t s[12], int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

static void k4_pack_scales(const int sc[8], const int mn[8], uint8_t s[12]) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        s[j + 4] = (uint8_t)(mn[j] | ((mn[j + 4] >> 4) << 6));
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
    }
}

/* Affine sub-block quantization x ~ d*sc*q - dmin*mn with q in [0, levels]:
 * returns the stored d/dmin (f16 bits) and the integer sc/mn per sub-block. */
static void affine_scales(const float *v, int n_sub, int sub_len, int levels, int sc_max,
                          uint16_t *d16, uint16_t *dmin16, int *sc, int *mn) {
    float scale[16], off[16], max_scale = 0.0f, max_off = 0.0f;
    for (int j = 0; j < n_sub; j++) {
        const float *s = v + j * sub_len;
        float lo = 0.0f, hi = s[0]; /* the min is kept <= 0 so the offset dmin*mn is >= 0 */
        for (int l = 0; l < sub_len; l++) {
            lo = fminf(lo, s[l]);
            hi = fmaxf(hi, s[l]);
        }
        scale[j] = (hi - lo) / (float)levels;
        off[j] = -lo;
        max_scale = fmaxf(max_scale, scale[j]);
        max_off = fmaxf(max_off, off[j]);
    }
    *d16 = pl_f32_to_f16(max_scale / (float)sc_max);
    *dmin16 = pl_f32_to_f16(max_off / (float)sc_max);
    float d = pl_f16_to_f32(*d16), dmin = pl_f16_to_f32(*dmin16);
    for (int j = 0; j < n_sub; j++) {
        sc[j] = d > 0.0f ? clampi(rnd(scale[j] / d), 0, sc_max) : 0;
        mn[j] = dmin > 0.0f ? clampi(rnd(off[j] / dmin), 0, sc_max) : 0;
    }
}

static inline int affine_q(float x, float ds, float dm, int levels) {
    return ds > 0.0f ? clampi(rnd((x + dm) / ds), 0, levels) : 0;
}

/* ---- Q4_K: 8 sub-blocks of 32; chunk c of qs[32c..] holds sub-blocks 2c (low) and 2c+1 (high) ---- */

void pl_q4_k_to_f32_row(const void *x, float *y, int64_t n) {
    const pl_block_q4_k *b = x;
    for (int64_t i = 0; i < n / PL_QKK; i++, y += PL_QKK) {
        float d = pl_f16_to_f32(b[i].d), dmin = pl_f16_to_f32(b[i].dmin);
        for (int c = 0; c < 4; c++) {
            int sc0, mn0, sc1, mn1;
            k4_scale_min(b[i].scales, 2 * c, &sc0, &mn0);
            k4_scale_min(b[i].scales, 2 * c + 1, &sc1, &mn1);
            for (int l = 0; l < 32; l++) {
                uint8_t q = b[i].qs[32 * c + l];
                y[64 * c + l] = d * (float)sc0 * (float)(q & 15) - dmin * (float)mn0;
                y[64 * c + 32 + l] = d * (float)sc1 * (float)(q >> 4) - dmin * (float)mn1;
            }
        }
    }
}

void pl_q4_k_from_f32_row(const float *x, void *y, int64_t n) {
    pl_block_q4_k *b = y;
    for (int64_t i = 0; i < n / PL_QKK; i++, x += PL_QKK) {
        int sc[8], mn[8];
        affine_scales(x, 8, 32, 15, 63, &b[i].d, &b[i].dmin, sc, mn);
        k4_pack_scales(sc, mn, b[i].scales);
        float d = pl_f16_to_f32(b[i].d), dmin = pl_f16_to_f32(b[i].dmin);
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                int lo = affine_q(x[64 * c + l], d * (float)sc[2 * c], dmin * (float)mn[2 * c], 15);
                int hi = affine_q(x[64 * c + 32 + l], d * (float)sc[2 * c + 1], dmin * (float)mn[2 * c + 1], 15);
                b[i].qs[32 * c + l] = (uint8_t)(lo | (hi << 4));
            }
        }
    }
}

/* sum = d*dy*sum_j sc_j*sum(q a) - dmin*dy*sum_j mn_j*sum(a) (sum(a) from Q8_K bsums) */
float pl_q4_k_vec_dot(const void *x, const void *y, int64_t n) {
    const pl_block_q4_k *a = x;
    const pl_block_q8_k *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / PL_QKK; i++) {
        int32_t sumi = 0, summ = 0;
        for (int c = 0; c < 4; c++) {
            int sc0, mn0, sc1, mn1;
            k4_scale_min(a[i].scales, 2 * c, &sc0, &mn0);
            k4_scale_min(a[i].scales, 2 * c + 1, &sc1, &mn1);
            int32_t s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                uint8_t q = a[i].qs[32 * c + l];
                s0 += (q & 15) * (int32_t)b[i].qs[64 * c + l];
                s1 += (q >> 4) * (int32_t)b[i].qs[64 * c + 32 + l];
            }
            sumi += sc0 * s0 + sc1 * s1;
            summ += mn0 * (b[i].bsums[4 * c] + b[i].bsums[4 * c + 1]) +
                    mn1 * (b[i].bsums[4 * c + 2] + b[i].bsums[4 * c + 3]);
        }
        sum += b[i].d * (pl_f16_to_f32(a[i].d) * (float)sumi - pl_f16_to_f32(a[i].dmin) * (float)summ);
    }
    return sum;
}

/* ---- Q5_K: Q4_K plus a 5th bit: bit 2c (low sub-block) / 2c+1 (high) of qh[l] ---- */

void pl_q5_k_to_f32_row(const void *x, float *y, int64_t n) {
    const pl_block_q5_k *b = x;
    for (int64_t i = 0; i < n / PL_QKK; i++, y += PL_QKK) {
        float d = pl_f16_to_f32(b[i].d), dmin = pl_f16_to_f32(b[i].dmin);
        for (int c = 0; c < 4; c++) {
            int sc0, mn0, sc1, mn1;
            k4_scale_min(b[i].scales, 2 * c, &sc0, &mn0);
            k4_scale_min(b[i].scales, 2 * c + 1, &sc1, &mn1);
            for (int l = 0; l < 32; l++) {
                uint8_t q = b[i].qs[32 * c + l], h = b[i].qh[l];
                int q0 = (q & 15) | (((h >> (2 * c)) & 1) << 4);
                int q1 = (q >> 4) | (((h >> (2 * c + 1)) & 1) << 4);
                y[64 * c + l] = d * (float)sc0 * (float)q0 - dmin * (float)mn0;
                y[64 * c + 32 + l] = d * (float)sc1 * (float)q1 - dmin * (float)mn1;
            }
        }
    }
}

void pl_q5_k_from_f32_row(const float *x, void *y, int64_t n) {
    pl_block_q5_k *b = y;
    for (int64_t i = 0; i < n / PL_QKK; i++, x += PL_QKK) {
        int sc[8], mn[8];
        affine_scales(x, 8, 32, 31, 63, &b[i].d, &b[i].dmin, sc, mn);
        k4_pack_scales(sc, mn, b[i].scales);
        memset(b[i].qh, 0, sizeof b[i].qh);
        float d = pl_f16_to_f32(b[i].d), dmin = pl_f16_to_f32(b[i].dmin);
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                int lo = affine_q(x[64 * c + l], d * (float)sc[2 * c], dmin * (float)mn[2 * c], 31);
                int hi = affine_q(x[64 * c + 32 + l], d * (float)sc[2 * c + 1], dmin * (float)mn[2 * c + 1], 31);
                b[i].qs[32 * c + l] = (uint8_t)((lo & 15) | ((hi & 15) << 4));
                b[i].qh[l] |= (uint8_t)(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
            }
        }
    }
}

float pl_q5_k_vec_dot(const void *x, const void *y, int64_t n) {
    const pl_block_q5_k *a = x;
    const pl_block_q8_k *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / PL_QKK; i++) {
        int32_t sumi = 0, summ = 0;
        for (int c = 0; c < 4; c++) {
            int sc0, mn0, sc1, mn1;
            k4_scale_min(a[i].scales, 2 * c, &sc0, &mn0);
            k4_scale_min(a[i].scales, 2 * c + 1, &sc1, &mn1);
            int32_t s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                uint8_t q = a[i].qs[32 * c + l], h = a[i].qh[l];
                int q0 = (q & 15) | (((h >> (2 * c)) & 1) << 4);
                int q1 = (q >> 4) | (((h >> (2 * c + 1)) & 1) << 4);
                s0 += q0 * (int32_t)b[i].qs[64 * c + l];
                s1 += q1 * (int32_t)b[i].qs[64 * c + 32 + l];
            }
            sumi += sc0 * s0 + sc1 * s1;
            summ += mn0 * (b[i].bsums[4 * c] + b[i].bsums[4 * c + 1]) +
                    mn1 * (b[i].bsums[4 * c + 2] + b[i].bsums[4 * c + 3]);
        }
        sum += b[i].d * (pl_f16_to_f32(a[i].d) * (float)sumi - pl_f16_to_f32(a[i].dmin) * (float)summ);
    }
    return sum;
}

/* ---- Q6_K: two halves of 128; value v of a half has scale scales[8h + v/16] ---- */

/* The 6-bit value of element v (0..127) of half h, per the ql/qh layout. */
static inline int q6_get(const pl_block_q6_k *b, int h, int v) {
    const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
    int l = v & 31, quarter = v >> 5; /* quarter 0..3 -> ql low l, low l+32, high l, high l+32 */
    int lo = (quarter & 1) ? ql[l + 32] : ql[l];
    lo = (quarter & 2) ? lo >> 4 : lo & 15;
    return lo | (((qh[l] >> (2 * quarter)) & 3) << 4);
}

void pl_q6_k_to_f32_row(const void *x, float *y, int64_t n) {
    const pl_block_q6_k *b = x;
    for (int64_t i = 0; i < n / PL_QKK; i++, y += PL_QKK) {
        float d = pl_f16_to_f32(b[i].d);
        for (int h = 0; h < 2; h++)
            for (int v = 0; v < 128; v++)
                y[128 * h + v] = d * (float)b[i].scales[8 * h + v / 16] * (float)(q6_get(&b[i], h, v) - 32);
    }
}

void pl_q6_k_from_f32_row(const float *x, void *y, int64_t n) {
    pl_block_q6_k *b = y;
    for (int64_t i = 0; i < n / PL_QKK; i++, x += PL_QKK) {
        float scale[16], max_abs = 0.0f;
        for (int j = 0; j < 16; j++) {
            scale[j] = signed_absmax(x + 16 * j, 16) / -32.0f;
            max_abs = fmaxf(max_abs, fabsf(scale[j]));
        }
        b[i].d = pl_f32_to_f16(max_abs / 127.0f);
        float d = pl_f16_to_f32(b[i].d);
        memset(b[i].ql, 0, sizeof b[i].ql);
        memset(b[i].qh, 0, sizeof b[i].qh);
        for (int j = 0; j < 16; j++) {
            int sc = d > 0.0f ? clampi(rnd(scale[j] / d), -128, 127) : 0;
            b[i].scales[j] = (int8_t)sc;
            float ds = d * (float)sc;
            for (int k = 0; k < 16; k++) {
                int v = 16 * j + k, h = v / 128, w = v % 128;
                int q = ds != 0.0f ? clampi(rnd(x[v] / ds) + 32, 0, 63) : 32;
                int l = w & 31, quarter = w >> 5;
                uint8_t *ql = b[i].ql + 64 * h + l + ((quarter & 1) ? 32 : 0);
                *ql |= (uint8_t)((quarter & 2) ? (q & 15) << 4 : (q & 15));
                b[i].qh[32 * h + l] |= (uint8_t)((q >> 4) << (2 * quarter));
            }
        }
    }
}

float pl_q6_k_vec_dot(const void *x, const void *y, int64_t n) {
    const pl_block_q6_k *a = x;
    const pl_block_q8_k *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / PL_QKK; i++) {
        int32_t sumi = 0;
        for (int h = 0; h < 2; h++)
            for (int j = 0; j < 8; j++) {
                int32_t s = 0;
                for (int k = 0; k < 16; k++) {
                    int v = 16 * j + k;
                    s += (q6_get(&a[i], h, v) - 32) * (int32_t)b[i].qs[128 * h + v];
                }
                sumi += a[i].scales[8 * h + j] * s;
            }
        sum += pl_f16_to_f32(a[i].d) * b[i].d * (float)sumi;
    }
    return sum;
}

/* ---- Q2_K / Q3_K share the plane layout: half h (32 bytes of qs), plane p (shift 2p);
 * byte l of the plane gives value 128h + 32p + l, in sub-block 8h + 2p + l/16. ---- */

static inline int plane_q2(const uint8_t *qs, int v) {
    int h = v / 128, p = (v % 128) / 32, l = v % 32;
    return (qs[32 * h + l] >> (2 * p)) & 3;
}

void pl_q2_k_to_f32_row(const void *x, float *y, int64_t n) {
    const pl_block_q2_k *b = x;
    for (int64_t i = 0; i < n / PL_QKK; i++, y += PL_QKK) {
        float d = pl_f16_to_f32(b[i].d), dmin = pl_f16_to_f32(b[i].dmin);
        for (int v = 0; v < PL_QKK; v++) {
            uint8_t sc = b[i].scales[v / 16];
            y[v] = d * (float)(sc & 15) * (float)plane_q2(b[i].qs, v) - dmin * (float)(sc >> 4);
        }
    }
}

void pl_q2_k_from_f32_row(const float *x, void *y, int64_t n) {
    pl_block_q2_k *b = y;
    for (int64_t i = 0; i < n / PL_QKK; i++, x += PL_QKK) {
        int sc[16], mn[16];
        affine_scales(x, 16, 16, 3, 15, &b[i].d, &b[i].dmin, sc, mn);
        float d = pl_f16_to_f32(b[i].d), dmin = pl_f16_to_f32(b[i].dmin);
        for (int j = 0; j < 16; j++) b[i].scales[j] = (uint8_t)(sc[j] | (mn[j] << 4));
        memset(b[i].qs, 0, sizeof b[i].qs);
        for (int v = 0; v < PL_QKK; v++) {
            int j = v / 16;
            int q = affine_q(x[v], d * (float)sc[j], dmin * (float)mn[j], 3);
            int h = v / 128, p = (v % 128) / 32, l = v % 32;
            b[i].qs[32 * h + l] |= (uint8_t)(q << (2 * p));
        }
    }
}

float pl_q2_k_vec_dot(const void *x, const void *y, int64_t n) {
    const pl_block_q2_k *a = x;
    const pl_block_q8_k *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / PL_QKK; i++) {
        int32_t sumi = 0, summ = 0;
        for (int j = 0; j < 16; j++) {
            int32_t s = 0;
            for (int k = 0; k < 16; k++) s += plane_q2(a[i].qs, 16 * j + k) * (int32_t)b[i].qs[16 * j + k];
            sumi += (a[i].scales[j] & 15) * s;
            summ += (a[i].scales[j] >> 4) * b[i].bsums[j];
        }
        sum += b[i].d * (pl_f16_to_f32(a[i].d) * (float)sumi - pl_f16_to_f32(a[i].dmin) * (float)summ);
    }
    return sum;
}

/* Q3_K: value = 2-bit plane value, minus 4 when its hmask bit is clear; the hmask bit
 * of value v is bit (4h + p) of hmask[l]. Sub-block scale: 6 bits, stored +32. */
static inline int q3_get(const pl_block_q3_k *b, int v) {
    int h = v / 128, p = (v % 128) / 32, l = v % 32;
    int hb = (b->hmask[l] >> (4 * h + p)) & 1;
    return plane_q2(b->qs, v) - (hb ? 0 : 4);
}

static inline int q3_scale(const uint8_t s[12], int j) {
    int lo = j < 8 ? s[j] & 15 : s[j - 8] >> 4;
    int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

void pl_q3_k_to_f32_row(const void *x, float *y, int64_t n) {
    const pl_block_q3_k *b = x;
    for (int64_t i = 0; i < n / PL_QKK; i++, y += PL_QKK) {
        float d = pl_f16_to_f32(b[i].d);
        for (int v = 0; v < PL_QKK; v++)
            y[v] = d * (float)q3_scale(b[i].scales, v / 16) * (float)q3_get(&b[i], v);
    }
}

void pl_q3_k_from_f32_row(const float *x, void *y, int64_t n) {
    pl_block_q3_k *b = y;
    for (int64_t i = 0; i < n / PL_QKK; i++, x += PL_QKK) {
        float scale[16], max_abs = 0.0f;
        for (int j = 0; j < 16; j++) {
            scale[j] = signed_absmax(x + 16 * j, 16) / -4.0f;
            max_abs = fmaxf(max_abs, fabsf(scale[j]));
        }
        b[i].d = pl_f32_to_f16(max_abs / 31.0f);
        float d = pl_f16_to_f32(b[i].d);
        memset(b[i].scales, 0, sizeof b[i].scales);
        memset(b[i].qs, 0, sizeof b[i].qs);
        memset(b[i].hmask, 0, sizeof b[i].hmask);
        for (int j = 0; j < 16; j++) {
            int sc = d > 0.0f ? clampi(rnd(scale[j] / d), -32, 31) : 0;
            int u = sc + 32; /* 6 bits */
            if (j < 8) b[i].scales[j] |= (uint8_t)(u & 15);
            else b[i].scales[j - 8] |= (uint8_t)((u & 15) << 4);
            b[i].scales[8 + j % 4] |= (uint8_t)((u >> 4) << (2 * (j / 4)));
            float ds = d * (float)sc;
            for (int k = 0; k < 16; k++) {
                int v = 16 * j + k;
                int q = (ds != 0.0f ? clampi(rnd(x[v] / ds), -4, 3) : 0) + 4; /* 0..7 */
                int h = v / 128, p = (v % 128) / 32, l = v % 32;
                b[i].qs[32 * h + l] |= (uint8_t)((q & 3) << (2 * p));
                b[i].hmask[l] |= (uint8_t)((q >> 2) << (4 * h + p));
            }
        }
    }
}

float pl_q3_k_vec_dot(const void *x, const void *y, int64_t n) {
    const pl_block_q3_k *a = x;
    const pl_block_q8_k *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / PL_QKK; i++) {
        int32_t sumi = 0;
        for (int j = 0; j < 16; j++) {
            int32_t s = 0;
            for (int k = 0; k < 16; k++) s += q3_get(&a[i], 16 * j + k) * (int32_t)b[i].qs[16 * j + k];
            sumi += q3_scale(a[i].scales, j) * s;
        }
        sum += pl_f16_to_f32(a[i].d) * b[i].d * (float)sumi;
    }
    return sum;
}

/* ---- Q8_K: f32 d, 256 int8, bsums = sums of each 16 (for the min terms above) ---- */

void pl_q8_k_to_f32_row(const void *x, float *y, int64_t n) {
    const pl_block_q8_k *b = x;
    for (int64_t i = 0; i < n / PL_QKK; i++)
        for (int j = 0; j < PL_QKK; j++) y[i * PL_QKK + j] = b[i].d * (float)b[i].qs[j];
}

void pl_q8_k_from_f32_row(const float *x, void *y, int64_t n) {
    pl_block_q8_k *b = y;
    for (int64_t i = 0; i < n / PL_QKK; i++, x += PL_QKK) {
        float amax = 0.0f;
        for (int j = 0; j < PL_QKK; j++) amax = fmaxf(amax, fabsf(x[j]));
        b[i].d = amax / 127.0f;
        float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int k = 0; k < 16; k++) {
                int q = clampi(rnd(x[16 * j + k] * id), -127, 127);
                b[i].qs[16 * j + k] = (int8_t)q;
                s += q;
            }
            b[i].bsums[j] = (int16_t)s;
        }
    }
}

float pl_q8_k_vec_dot(const void *x, const void *y, int64_t n) {
    const pl_block_q8_k *a = x, *b = y;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / PL_QKK; i++) {
        int32_t s = 0;
        for (int j = 0; j < PL_QKK; j++) s += (int32_t)a[i].qs[j] * b[i].qs[j];
        sum += a[i].d * b[i].d * (float)s;
    }
    return sum;
}
