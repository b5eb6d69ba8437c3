/* kern_avx512.c - the AVX-512 level kernel set: kern_x86.inc on 256-bit vectors with the
 * int8 block dots in one vpdpbusd (AVX512-VNNI + VL) instead of maddubs + madd. Only handed
 * out when the CPU has AVX512-VNNI (kernels.c); empty off x86-64. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define KT       __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define KNAME(x) pl_avx512_##x
#define K_VNNI   1
#include "kern_x86.inc"
#include "gemm_x86.inc"
#include "gemv_x86.inc"
#else
typedef int pl_kern_avx512_empty;
#endif
