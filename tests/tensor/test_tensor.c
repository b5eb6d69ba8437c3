/*
 * test_tensor.c - the type table's reference rows.
 *
 *  - f16/bf16 scalar conversions against hand-known bit patterns (subnormals,
 *    infinities, NaN, round-to-nearest-even ties);
 *  - dequantization of hand-built blocks (bytes written here from the formats.md
 *    definitions) to exact expected values, for every quantized type;
 *  - quantize -> dequantize: exact on values the format represents, and within a
 *    per-type error bound on random data;
 *  - vec_dot against dequantize-both-then-f32-dot, and pl_matmul against naive loops,
 *    single- and multi-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "parley/core.h"
#include "parley/tensor.h"

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

/* xorshift for reproducible test data; uniform in [-1, 1). */
static uint64_t rng_state = 88172645463325252ull;
static float frand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) * 0x1p-52 - 1.0);
}

/* ---- f16 / bf16 ---- */

static void test_f16(void **state) {
    (void)state;
    assert_int_equal(pl_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(pl_f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(pl_f32_to_f16(0.0f), 0x0000);
    assert_int_equal(pl_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(pl_f32_to_f16(65504.0f), 0x7bff);   /* largest finite */
    assert_int_equal(pl_f32_to_f16(65519.0f), 0x7bff);   /* below the rounding midpoint */
    assert_int_equal(pl_f32_to_f16(65520.0f), 0x7c00);   /* midpoint rounds to even = inf */
    assert_int_equal(pl_f32_to_f16(1e10f), 0x7c00);
    assert_int_equal(pl_f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(pl_f32_to_f16(0x1p-24f), 0x0001);   /* smallest subnormal */
    assert_int_equal(pl_f32_to_f16(0x1p-25f), 0x0000);   /* tie between 0 and 1 ulp: even (0) */
    assert_int_equal(pl_f32_to_f16(0x1.8p-24f), 0x0002); /* tie between 1 and 2 ulp: even (2) */
    assert_int_equal(pl_f32_to_f16(0x1.8p-25f), 0x0001); /* 0.75 ulp rounds up */
    assert_int_equal(pl_f32_to_f16(1023 * 0x1p-24f), 0x03ff); /* largest subnormal */
    assert_int_equal(pl_f32_to_f16(0x1p-14f), 0x0400);   /* smallest normal */
    assert_int_equal(pl_f32_to_f16(1.0f + 0x1p-11f), 0x3c00); /* tie: to even */
    assert_int_equal(pl_f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02); /* tie: to even (up) */
    assert_int_equal(pl_f32_to_f16(1.0f + 0x1.02p-11f), 0x3c01); /* just above a tie */
    assert_int_equal(pl_f32_to_f16(2047.5f), 0x67ff + 1); /* 2047.5 -> tie -> 2048 (even) */
    uint16_t nan = pl_f32_to_f16(NAN);
    assert_int_equal(nan & 0x7c00, 0x7c00);
    assert_true((nan & 0x3ff) != 0);

    assert_true(pl_f16_to_f32(0x3c00) == 1.0f);
    assert_true(pl_f16_to_f32(0xc000) == -2.0f);
    assert_true(pl_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(pl_f16_to_f32(0x0001) == 0x1p-24f);
    assert_true(pl_f16_to_f32(0x83ff) == -1023 * 0x1p-24f);
    assert_true(pl_f16_to_f32(0x0400) == 0x1p-14f);
    assert_true(isinf(pl_f16_to_f32(0x7c00)) && pl_f16_to_f32(0x7c00) > 0);
    assert_true(isinf(pl_f16_to_f32(0xfc00)) && pl_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(pl_f16_to_f32(0x7e00)));
    assert_int_equal(f32_bits(pl_f16_to_f32(0x8000)), 0x80000000u);
    /* every finite half survives f16 -> f32 -> f16 */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00) continue;
        assert_int_equal(pl_f32_to_f16(pl_f16_to_f32((uint16_t)h)), h);
    }
}

static void test_bf16(void **state) {
    (void)state;
    assert_int_equal(pl_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(pl_f32_to_bf16(-2.0f), 0xc000);
    assert_int_equal(pl_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);      /* tie: to even */
    assert_int_equal(pl_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);  /* tie: to even (up) */
    assert_int_equal(pl_f32_to_bf16(1.0f + 0x1.02p-8f), 0x3f81);
    assert_int_equal(pl_f32_to_bf16(INFINITY), 0x7f80);
    assert_int_equal(pl_f32_to_bf16(bits_f32(0x7f7fffffu)), 0x7f80); /* FLT_MAX rounds to inf */
    assert_int_equal(pl_f32_to_bf16(bits_f32(0x00010000u)), 0x0001); /* f32 subnormal kept */
    assert_int_equal(pl_f32_to_bf16(bits_f32(0x00018000u)), 0x0002); /* subnormal tie to even */
    uint16_t nan = pl_f32_to_bf16(bits_f32(0x7f800001u)); /* signalling nan payload low */
    assert_int_equal(nan & 0x7f80, 0x7f80);
    assert_true((nan & 0x7f) != 0);
    assert_true(pl_bf16_to_f32(0x3f80) == 1.0f);
    assert_true(pl_bf16_to_f32(0x0001) == bits_f32(0x00010000u));
    assert_true(isnan(pl_bf16_to_f32(0x7fc0)));
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7f80) == 0x7f80) continue;
        assert_int_equal(pl_f32_to_bf16(pl_bf16_to_f32((uint16_t)h)), h);
    }
}

/* ---- hand-built blocks ---- */

static void dequant(pl_type t, const void *blk, float *y, int64_t n) {
    assert_int_equal(pl_type_to_f32(t, blk, y, n), PL_OK);
}

static void test_dequant_32_blocks(void **state) {
    (void)state;
    uint8_t b[64];
    float y[32];

    /* Q8_0 {d=0.5; q[j] = j-16} */
    put16(b, 0x3800);
    for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)(j - 16);
    dequant(PL_TYPE_Q8_0, b, y, 32);
    for (int j = 0; j < 32; j++) assert_true(y[j] == 0.5f * (float)(j - 16));

    /* Q4_0 {d=2; qs[j] = j | (15-j)<<4}: x[j] = 2(j-8), x[j+16] = 2(7-j) */
    put16(b, 0x4000);
    for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    dequant(PL_TYPE_Q4_0, b, y, 32);
    for (int j = 0; j < 16; j++) {
        assert_true(y[j] == 2.0f * (float)(j - 8));
        assert_true(y[j + 16] == 2.0f * (float)(7 - j));
    }

    /* Q4_1 {d=1; m=-1; qs[j] = j | j<<4}: x = q - 1 */
    put16(b, 0x3c00);
    put16(b + 2, 0xbc00);
    for (int j = 0; j < 16; j++) b[4 + j] = (uint8_t)(j | (j << 4));
    dequant(PL_TYPE_Q4_1, b, y, 32);
    for (int j = 0; j < 16; j++) {
        assert_true(y[j] == (float)j - 1.0f);
        assert_true(y[j + 16] == (float)j - 1.0f);
    }

    /* Q5_0 {d=1; qh = 0xAAAAAAAA (odd bits); qs[j] = j | (15-j)<<4}: x = q - 16 */
    put16(b, 0x3c00);
    b[2] = b[3] = b[4] = b[5] = 0xaa;
    for (int j = 0; j < 16; j++) b[6 + j] = (uint8_t)(j | ((15 - j) << 4));
    dequant(PL_TYPE_Q5_0, b, y, 32);
    for (int j = 0; j < 16; j++) {
        assert_true(y[j] == (float)(j + ((j & 1) ? 16 : 0) - 16));
        assert_true(y[j + 16] == (float)((15 - j) + ((j & 1) ? 16 : 0) - 16));
    }

    /* Q5_1 {d=0.5; m=1; qh = 0x0000FFFF (bytes ff ff 00 00); qs[j] = j | j<<4}: x = 0.5q + 1 */
    put16(b, 0x3800);
    put16(b + 2, 0x3c00);
    b[4] = b[5] = 0xff;
    b[6] = b[7] = 0x00;
    for (int j = 0; j < 16; j++) b[8 + j] = (uint8_t)(j | (j << 4));
    dequant(PL_TYPE_Q5_1, b, y, 32);
    for (int j = 0; j < 16; j++) {
        assert_true(y[j] == 0.5f * (float)(j + 16) + 1.0f);
        assert_true(y[j + 16] == 0.5f * (float)j + 1.0f);
    }
}

/* Q4_K / Q5_K: 6-bit scales and mins, packed by hand below for these values. */
static const int k4_sc[8] = { 1, 2, 3, 4, 17, 33, 50, 63 };
static const int k4_mn[8] = { 0, 1, 5, 63, 16, 31, 47, 2 };
/* j<4: scales[j] = sc_j | (sc_{j+4}>>4)<<6, scales[j+4] = mn_j | (mn_{j+4}>>4)<<6;
 * scales[8+j] = (sc_{j+4}&15) | (mn_{j+4}&15)<<4, worked out by hand: */
static const uint8_t k4_scales[12] = { 65, 130, 195, 196, 64, 65, 133, 63, 1, 241, 242, 47 };

static void test_dequant_q4_k_q5_k(void **state) {
    (void)state;
    uint8_t b[176];
    float y[256];
    /* Q4_K {d=1; dmin=0.5; scales; qs[i] = (i%16) | (15 - i%16)<<4} */
    put16(b, 0x3c00);
    put16(b + 2, 0x3800);
    memcpy(b + 4, k4_scales, 12);
    for (int i = 0; i < 128; i++) b[16 + i] = (uint8_t)((i % 16) | ((15 - i % 16) << 4));
    dequant(PL_TYPE_Q4_K, b, y, 256);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            assert_true(y[64 * c + l] == (float)(k4_sc[2 * c] * (l % 16)) - 0.5f * (float)k4_mn[2 * c]);
            assert_true(y[64 * c + 32 + l] ==
                        (float)(k4_sc[2 * c + 1] * (15 - l % 16)) - 0.5f * (float)k4_mn[2 * c + 1]);
        }

    /* Q5_K: same, plus qh[l] = 0b01010101 for even l (low sub-block bits), 0 for odd l */
    put16(b, 0x3c00);
    put16(b + 2, 0x3800);
    memcpy(b + 4, k4_scales, 12);
    for (int l = 0; l < 32; l++) b[16 + l] = (l % 2 == 0) ? 0x55 : 0x00;
    for (int i = 0; i < 128; i++) b[48 + i] = (uint8_t)((i % 16) | ((15 - i % 16) << 4));
    dequant(PL_TYPE_Q5_K, b, y, 256);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            int q0 = l % 16 + (l % 2 == 0 ? 16 : 0), q1 = 15 - l % 16;
            assert_true(y[64 * c + l] == (float)(k4_sc[2 * c] * q0) - 0.5f * (float)k4_mn[2 * c]);
            assert_true(y[64 * c + 32 + l] == (float)(k4_sc[2 * c + 1] * q1) - 0.5f * (float)k4_mn[2 * c + 1]);
        }
}

static void test_dequant_q6_k(void **state) {
    (void)state;
    uint8_t b[210] = { 0 };
    float y[256];
    /* all q = 0 except a few spots; d = 0.25, scales[j] = (j odd ? -(j+1) : j+1) */
    for (int j = 0; j < 16; j++) b[192 + j] = (uint8_t)(int8_t)((j & 1) ? -(j + 1) : j + 1);
    put16(b + 208, 0x3400);
    b[5] = 0x0f;         /* ql[5] low: value 5 gets q = 15 */
    b[32 + 7] = 0xf0;    /* ql[39] high: value 96+7 = 103 gets q = 15 */
    b[128 + 32 + 3] = 0x0c; /* qh half 1, l=3, bits 2-3: value 128+32+3 = 163 gets q = 48 */
    b[64 + 10] = 0x30;   /* ql half 1, [10] high: value 128+64+10 = 202 gets q low = 3 */
    b[128 + 32 + 10] = 0x30; /* qh half 1, l=10, bits 4-5: value 202 gets q += 48 -> 51 */
    dequant(PL_TYPE_Q6_K, b, y, 256);
    int q[256];
    for (int v = 0; v < 256; v++) q[v] = 0;
    q[5] = 15;
    q[103] = 15;
    q[163] = 48;
    q[202] = 51;
    for (int v = 0; v < 256; v++) {
        int j = v / 16, sc = (j & 1) ? -(j + 1) : j + 1;
        assert_true(y[v] == 0.25f * (float)sc * (float)(q[v] - 32));
    }
}

static void test_dequant_q2_k_q3_k(void **state) {
    (void)state;
    float y[256];
    /* Q2_K {scales[j] = (j+1 clipped to 15) | (15-j)<<4; qs; d=1; dmin=0.5} */
    uint8_t b[110] = { 0 };
    for (int j = 0; j < 16; j++) b[j] = (uint8_t)((j == 15 ? 15 : j + 1) | ((15 - j) << 4));
    b[16 + 32 + 5] = 0xc0; /* half 1, plane 3, l=5 -> value 229, q=3 */
    b[16 + 7] = 0x04;      /* half 0, plane 1, l=7 -> value 39, q=1 */
    b[16 + 20] = 0x02;     /* half 0, plane 0, l=20 -> value 20, q=2 */
    put16(b + 80, 0x3c00);
    put16(b + 82, 0x3800);
    dequant(PL_TYPE_Q2_K, b, y, 256);
    for (int v = 0; v < 256; v++) {
        int j = v / 16, sc = j == 15 ? 15 : j + 1, mn = 15 - j;
        int qv = v == 229 ? 3 : v == 39 ? 1 : v == 20 ? 2 : 0;
        assert_true(y[v] == (float)(sc * qv) - 0.5f * (float)mn);
    }
    assert_true(y[229] == 44.5f); /* 15*3 - 0.5*1, by hand */
    assert_true(y[39] == -3.5f);  /* 3*1 - 0.5*13 */

    /* Q3_K {hmask[32]; qs[64]; scales[12]; d=1} */
    memset(b, 0, sizeof b);
    b[96] = 0x21;      /* scales[0]: j=0 low 1, j=8 low 2 */
    b[96 + 8] = 0xe4;  /* scales[8]: high bits j=0:0, j=4:1, j=8:2, j=12:3 */
    b[3] = 0x01;       /* hmask[3] bit 0 (half 0, plane 0): value 3 -> no -4 */
    b[20] = 0x20;      /* hmask[20] bit 5 (half 1, plane 1): value 180 -> no -4 */
    b[32 + 32 + 20] = 0x0c; /* qs half 1, l=20, plane 1: value 180 gets q2 = 3 */
    b[32 + 32 + 2] = 0x02;  /* qs half 1, l=2, plane 0: value 130 gets q2 = 2 */
    put16(b + 108, 0x3c00);
    dequant(PL_TYPE_Q3_K, b, y, 256);
    for (int v = 0; v < 256; v++) {
        int j = v / 16;
        int scale = j == 0 ? 1 : j == 8 ? 2 + 32 : j == 4 ? 16 : j == 12 ? 48 : 0;
        int qv = v == 3 ? 0 : v == 180 ? 3 : v == 130 ? 2 - 4 : -4;
        assert_true(y[v] == (float)((scale - 32) * qv));
    }
    assert_true(y[130] == -4.0f); /* (34-32) * (2-4), by hand */
    assert_true(y[180] == -96.0f);
}

static void test_dequant_q8_k(void **state) {
    (void)state;
    uint8_t b[292] = { 0 };
    float y[256], d = 0.125f;
    memcpy(b, &d, 4);
    for (int j = 0; j < 256; j++) b[4 + j] = (uint8_t)(int8_t)(j - 128);
    dequant(PL_TYPE_Q8_K, b, y, 256);
    for (int j = 0; j < 256; j++) assert_true(y[j] == 0.125f * (float)(j - 128));
}

/* ---- quantize ---- */

static const pl_type quant_types[] = {
    PL_TYPE_Q8_0, PL_TYPE_Q4_0, PL_TYPE_Q4_1, PL_TYPE_Q5_0, PL_TYPE_Q5_1, PL_TYPE_Q2_K,
    PL_TYPE_Q3_K, PL_TYPE_Q4_K, PL_TYPE_Q5_K, PL_TYPE_Q6_K, PL_TYPE_Q8_K,
};
#define N_QUANT (sizeof quant_types / sizeof quant_types[0])

/* Values the 32-block formats hold exactly: quantize then dequantize gives them back. */
static void test_quant_exact(void **state) {
    (void)state;
    float x[64], y[64];
    uint8_t q[128];
    struct { pl_type t; float d, lo; int levels; } cases[] = {
        { PL_TYPE_Q8_0, 0.25f, -127 * 0.25f, 254 }, /* d*(k - 127) for k = 0..254 */
        { PL_TYPE_Q4_0, 0.5f, -8 * 0.5f, 15 },
        { PL_TYPE_Q5_0, 0.5f, -16 * 0.5f, 31 },
        { PL_TYPE_Q4_1, 0.25f, 1.0f, 15 },
        { PL_TYPE_Q5_1, 0.25f, -3.0f, 31 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        /* each block holds its lowest level (sets the scale), the others cycle, and the top */
        for (int i = 0; i < 64; i++) {
            int k = i % 32 == 0 ? 0 : i % 32 == 1 ? cases[c].levels : (i * 7) % (cases[c].levels + 1);
            x[i] = cases[c].lo + cases[c].d * (float)k;
        }
        if (cases[c].t == PL_TYPE_Q8_0) /* symmetric: make the extreme the absmax */
            for (int i = 0; i < 64; i++) x[i] = cases[c].d * (float)((i * 37) % 255 - 127);
        assert_int_equal(pl_type_from_f32(cases[c].t, x, q, 64), PL_OK);
        dequant(cases[c].t, q, y, 64);
        for (int i = 0; i < 64; i++) assert_true(y[i] == x[i]);
    }
}

/* Worst-case error of the reference quantizers, as a fraction of the largest |x| of
 * the block (super-block for K types). From the formats: the 32-block types err by at
 * most half a step (one step at the clipped end); the K types add the error of their
 * quantized sub-block scales (bounds for those set from the formats' step sizes with
 * about 20% headroom over the measured maxima, which the test prints). */
static double quant_bound(pl_type t) {
    switch (t) {
    case PL_TYPE_Q8_0: return 0.5 / 127 * 1.01;
    case PL_TYPE_Q8_K: return 0.5 / 127 * 1.01;
    case PL_TYPE_Q4_0: return 1.0 / 8 * 1.01;  /* clipped end: one full step */
    case PL_TYPE_Q5_0: return 1.0 / 16 * 1.01;
    case PL_TYPE_Q4_1: return 2.0 / 30 * 1.01; /* range <= 2*amax, half step of range/15 */
    case PL_TYPE_Q5_1: return 2.0 / 62 * 1.01;
    case PL_TYPE_Q6_K: return 0.04; /* clipped end: amax/32, plus int8 scale rounding */
    case PL_TYPE_Q5_K: return 0.045;
    case PL_TYPE_Q4_K: return 0.09;
    case PL_TYPE_Q3_K: return 0.30; /* clipped end: a full step of amax/4, plus scale rounding */
    case PL_TYPE_Q2_K: return 0.45;
    default: return 0;
    }
}

static void test_quant_error_bounds(void **state) {
    (void)state;
    enum { N = 256 * 16 };
    static float x[N], y[N];
    static uint8_t q[N * 2];
    for (size_t ti = 0; ti < N_QUANT; ti++) {
        pl_type t = quant_types[ti];
        const pl_type_info *info = pl_type_get(t);
        int bs = (int)info->block_size;
        double worst = 0, sq = 0;
        for (int trial = 0; trial < 4; trial++) {
            for (int i = 0; i < N; i++) {
                /* mixed shapes: plain uniform, offset, and blocks with one outlier */
                float v = frand();
                if (trial == 1) v = 0.5f + 0.5f * v;
                if (trial == 2 && i % 97 == 0) v *= 8.0f;
                if (trial == 3) v *= (float)(1 + i % 5);
                x[i] = v;
            }
            assert_int_equal(pl_type_from_f32(t, x, q, N), PL_OK);
            dequant(t, q, y, N);
            for (int b0 = 0; b0 < N; b0 += bs) {
                double amax = 0;
                for (int i = b0; i < b0 + bs; i++) amax = fmax(amax, fabs(x[i]));
                for (int i = b0; i < b0 + bs; i++) {
                    double e = fabs((double)y[i] - x[i]) / amax;
                    worst = fmax(worst, e);
                    sq += e * e;
                }
            }
        }
        print_message("  %-5s max err %.4f (bound %.4f), rms %.4f of block absmax\n", info->name, worst,
                      quant_bound(t), sqrt(sq / (4.0 * N)));
        assert_true(worst <= quant_bound(t));
    }
    /* a zero block quantizes to zeros */
    memset(x, 0, sizeof(float) * 256);
    for (size_t ti = 0; ti < N_QUANT; ti++) {
        assert_int_equal(pl_type_from_f32(quant_types[ti], x, q, 256), PL_OK);
        dequant(quant_types[ti], q, y, 256);
        for (int i = 0; i < 256; i++) assert_true(y[i] == 0.0f);
    }
}

/* ---- vec_dot and matmul ---- */

static void test_vec_dot(void **state) {
    (void)state;
    enum { N = 1024 };
    static float x[N], a[N], xd[N], ad[N];
    static uint8_t qx[N * 4], qa[N * 4];
    const pl_type types[] = { PL_TYPE_F32, PL_TYPE_F16, PL_TYPE_BF16, PL_TYPE_Q8_0, PL_TYPE_Q4_0,
                              PL_TYPE_Q4_1, PL_TYPE_Q5_0, PL_TYPE_Q5_1, PL_TYPE_Q2_K, PL_TYPE_Q3_K,
                              PL_TYPE_Q4_K, PL_TYPE_Q5_K, PL_TYPE_Q6_K, PL_TYPE_Q8_K };
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const pl_type_info *t = pl_type_get(types[ti]);
        assert_non_null(t->vec_dot);
        const pl_type_info *at = pl_type_get(t->vec_dot_type);
        assert_non_null(at->from_f32);
        /* the partner formats: Q8_0 for the 32-blocks, Q8_K for the K types */
        if (t->quantized)
            assert_int_equal(t->vec_dot_type, t->block_size == 32 ? PL_TYPE_Q8_0 : PL_TYPE_Q8_K);
        for (int trial = 0; trial < 3; trial++) {
            for (int i = 0; i < N; i++) {
                x[i] = frand() + (trial == 1 ? 0.3f : 0.0f);
                a[i] = frand() * (trial == 2 ? 100.0f : 1.0f);
            }
            t->from_f32(x, qx, N);
            at->from_f32(a, qa, N);
            t->to_f32(qx, xd, N);
            at->to_f32(qa, ad, N);
            double ref = 0, mag = 0;
            for (int i = 0; i < N; i++) {
                ref += (double)xd[i] * ad[i];
                mag += fabs((double)xd[i] * ad[i]);
            }
            float got = t->vec_dot(qx, qa, N);
            /* the same products summed in another order: only f32 rounding differs */
            assert_true(fabs(got - ref) <= 2e-6 * mag + 1e-30);
        }
    }
}

static void test_matmul(void **state) {
    (void)state;
    enum { K = 512, ROWS = 37, NX = 5 };
    static float w[ROWS * K], x[NX * K], wd[ROWS * K], y1[NX * ROWS], y2[NX * ROWS];
    static uint8_t wq[ROWS * K * 4];
    pl_ctx *ctx = NULL;
    pl_pool *pool = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    assert_int_equal(pl_pool_init(ctx, 2, &pool), PL_OK);
    for (int i = 0; i < ROWS * K; i++) w[i] = frand();
    for (int i = 0; i < NX * K; i++) x[i] = frand();
    const pl_type types[] = { PL_TYPE_F32, PL_TYPE_F16, PL_TYPE_Q4_0, PL_TYPE_Q5_1, PL_TYPE_Q4_K, PL_TYPE_Q6_K };
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        pl_type t = types[ti];
        assert_int_equal(pl_type_from_f32(t, w, wq, ROWS * K), PL_OK);
        dequant(t, wq, wd, ROWS * K);
        pl_mat m;
        assert_int_equal(pl_mat_init(&m, t, K, ROWS, wq), PL_OK);
        size_t ws = pl_matmul_work_size(t, K, NX);
        void *work = ws ? malloc(ws) : NULL;
        assert_int_equal(pl_matmul(NULL, &m, x, NX, y1, work, ws), PL_OK);
        assert_int_equal(pl_matmul(pool, &m, x, NX, y2, work, ws), PL_OK);
        for (int i = 0; i < NX; i++)
            for (int r = 0; r < ROWS; r++) {
                double ref = 0, mag = 0;
                for (int k = 0; k < K; k++) {
                    ref += (double)wd[r * K + k] * x[i * K + k];
                    mag += fabs((double)wd[r * K + k] * x[i * K + k]);
                }
                /* activation rounding: q8 steps of absmax/127 (f16/bf16: 2^-9 relative) */
                assert_true(fabs(y1[i * ROWS + r] - ref) <= 0.02 * mag);
                assert_true(y1[i * ROWS + r] == y2[i * ROWS + r]); /* threads don't change results */
            }
        if (ws) assert_int_equal(pl_matmul(NULL, &m, x, NX, y1, work, ws - 1), PL_ERR_INVALID_ARG);
        free(work);
    }
    pl_mat m;
    assert_int_equal(pl_mat_init(&m, PL_TYPE_IQ2_XS, 256, 4, wq), PL_ERR_UNSUPPORTED);
    assert_int_equal(pl_mat_init(&m, PL_TYPE_Q4_K, 100, 4, wq), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_mat_init(&m, PL_TYPE_Q4_K, 256, 0, wq), PL_ERR_INVALID_ARG);
    pl_pool_free(pool);
    pl_ctx_free(ctx);
}

static void test_table(void **state) {
    (void)state;
    for (uint32_t id = 0; id < PL_TYPE_COUNT; id++) {
        const pl_type_info *t = pl_type_get(id);
        if (!t) continue;
        /* a row with a dot has both converters, and its partner converts from f32 */
        if (t->vec_dot) {
            assert_non_null(t->to_f32);
            assert_non_null(t->from_f32);
            assert_non_null(pl_type_get(t->vec_dot_type)->from_f32);
        }
        if (t->block_size == 0) assert_null(t->vec_dot); /* IQ/TQ: names only */
    }
    float x[256] = { 0 };
    uint8_t q[512];
    assert_int_equal(pl_type_from_f32(PL_TYPE_Q4_K, x, q, 100), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_type_from_f32(PL_TYPE_IQ4_NL, x, q, 256), PL_ERR_UNSUPPORTED);
    assert_int_equal(pl_type_to_f32(PL_TYPE_I32, q, x, 4), PL_ERR_UNSUPPORTED);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_dequant_32_blocks),
        cmocka_unit_test(test_dequant_q4_k_q5_k),
        cmocka_unit_test(test_dequant_q6_k),
        cmocka_unit_test(test_dequant_q2_k_q3_k),
        cmocka_unit_test(test_dequant_q8_k),
        cmocka_unit_test(test_quant_exact),
        cmocka_unit_test(test_quant_error_bounds),
        cmocka_unit_test(test_vec_dot),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
