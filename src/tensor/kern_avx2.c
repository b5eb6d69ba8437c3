/* kern_avx2.c - the AVX2+FMA+F16C kernel set (kern_x86.inc); empty off x86-64. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define KT       __attribute__((target("avx2,fma,f16c")))
#define KNAME(x) pl_avx2_##x
#define K_VNNI   0
#include "kern_x86.inc"
#else
typedef int pl_kern_avx2_empty; /* ISO C forbids an empty translation unit */
#endif
