/*
 * cpu.c - CPU feature detection (cpuid/xgetbv on x86-64, auxv on aarch64),
 * logical/physical core counts, and the kernel level choice.
 *
 * Detection runs once (pthread_once) into static storage: the hardware does
 * not change under a running process, and every caller sees the same answer.
 */
#include <ctype.h>
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1ul << 20)
#endif
#endif

#include "core/core_int.h"

static pl_cpu_features g_features;
static pthread_once_t  g_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect_x86(pl_cpu_features *f) {
    unsigned a, b, c, d;
    unsigned max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 1) return;
    __cpuid(1, a, b, c, d);
    bool osxsave = c & (1u << 27);
    f->sse42 = c & (1u << 20);
    bool cpu_avx = c & (1u << 28), cpu_fma = c & (1u << 12), cpu_f16c = c & (1u << 29);

    /* The OS must save the wider registers on a context switch: XCR0 bits 1-2
     * (SSE, AVX upper halves) for YMM, plus 5-7 (opmask, ZMM0-15 upper, ZMM16-31)
     * for AVX-512. Without them the instructions fault even if cpuid has them. */
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    bool os_ymm = (xcr0 & 0x6) == 0x6;
    bool os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0;

    f->avx = cpu_avx && os_ymm;
    f->fma = cpu_fma && os_ymm;
    f->f16c = cpu_f16c && os_ymm;
    if (max_leaf < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    unsigned leaf7_max_sub = a;
    f->avx2 = (b & (1u << 5)) && os_ymm;
    f->avx512f = (b & (1u << 16)) && os_zmm;
    f->avx512bw = (b & (1u << 30)) && os_zmm;
    f->avx512vl = (b & (1u << 31)) && os_zmm;
    f->avx512vnni = (c & (1u << 11)) && os_zmm;
    if (leaf7_max_sub >= 1) {
        __cpuid_count(7, 1, a, b, c, d);
        f->avx_vnni = (a & (1u << 4)) && os_ymm;
        f->avx512bf16 = (a & (1u << 5)) && os_zmm;
    }
}
#endif

static bool in_affinity(void *ud, int cpu) {
    const cpu_set_t *set = ud;
    return cpu >= 0 && cpu < CPU_SETSIZE && CPU_ISSET(cpu, set);
}

static bool read_int_file(const char *path, long *out) {
    FILE *fp = fopen(path, "r");
    if (!fp) return false;
    bool ok = fscanf(fp, "%ld", out) == 1;
    fclose(fp);
    return ok;
}

int pl_cpu_count_physical_at(const char *root, bool (*want)(void *ud, int cpu), void *ud) {
    /* Unique (package, core) pairs; a fixed table keeps detection free of
     * allocation. Past 1024 cores the count saturates (pool sizes are clamped
     * to logical CPUs anyway). */
    enum { MAX_PAIRS = 1024 };
    long pairs[MAX_PAIRS][2];
    int n_pairs = 0;
    DIR *dir = opendir(root);
    if (!dir) return 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        const char *nm = de->d_name;
        if (strncmp(nm, "cpu", 3) != 0 || !isdigit((unsigned char)nm[3])) continue;
        char *end;
        long cpu = strtol(nm + 3, &end, 10);
        if (*end || cpu < 0 || cpu > 1 << 20) continue;
        if (want && !want(ud, (int)cpu)) continue;
        char path[512];
        long core, pkg;
        snprintf(path, sizeof path, "%s/%s/topology/core_id", root, nm);
        if (!read_int_file(path, &core)) continue;
        snprintf(path, sizeof path, "%s/%s/topology/physical_package_id", root, nm);
        if (!read_int_file(path, &pkg)) continue;
        bool seen = false;
        for (int i = 0; i < n_pairs && !seen; i++) seen = pairs[i][0] == pkg && pairs[i][1] == core;
        if (!seen && n_pairs < MAX_PAIRS) {
            pairs[n_pairs][0] = pkg;
            pairs[n_pairs][1] = core;
            n_pairs++;
        }
    }
    closedir(dir);
    return n_pairs;
}

static void detect(void) {
    pl_cpu_features *f = &g_features;
    memset(f, 0, sizeof *f);
#if defined(__x86_64__)
    detect_x86(f);
#elif defined(__aarch64__)
    f->neon = true; /* mandatory in AArch64 */
    f->dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int n = online > 0 ? (int)online : 1;
    /* The affinity mask (taskset, cgroups cpusets) can allow fewer CPUs than
     * are online; past CPU_SETSIZE CPUs the call fails and is ignored. */
    cpu_set_t set;
    CPU_ZERO(&set);
    bool have_set = sched_getaffinity(0, sizeof set, &set) == 0;
    if (have_set) {
        int allowed = CPU_COUNT(&set);
        if (allowed > 0 && allowed < n) n = allowed;
    }
    f->n_logical = n;
    int phys = pl_cpu_count_physical_at("/sys/devices/system/cpu",
                                        have_set ? in_affinity : NULL, &set);
    f->n_physical = phys > 0 && phys <= n ? phys : n;
}

const pl_cpu_features *pl_cpu_detect(void) {
    pthread_once(&g_once, detect);
    return &g_features;
}

/* ---- levels ---- */

static const char *const level_names[PL_CPU_LEVEL_COUNT] = {
    [PL_CPU_LEVEL_SCALAR] = "scalar",
    [PL_CPU_LEVEL_AVX2]   = "avx2",
    [PL_CPU_LEVEL_AVX512] = "avx512",
    [PL_CPU_LEVEL_NEON]   = "neon",
};

const char *pl_cpu_level_name(pl_cpu_level lv) {
    return (unsigned)lv < PL_CPU_LEVEL_COUNT ? level_names[lv] : "unknown";
}

pl_status pl_cpu_level_parse(const char *s, pl_cpu_level *out) {
    if (!s || !out) return PL_ERR_INVALID_ARG;
    for (int i = 0; i < PL_CPU_LEVEL_COUNT; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (pl_cpu_level)i;
            return PL_OK;
        }
    }
    return PL_ERR_INVALID_ARG;
}

bool pl_cpu_level_supported(const pl_cpu_features *f, pl_cpu_level lv) {
    switch (lv) {
    case PL_CPU_LEVEL_SCALAR: return true;
    case PL_CPU_LEVEL_AVX2:   return f->avx2 && f->fma && f->f16c;
    case PL_CPU_LEVEL_AVX512:
        return pl_cpu_level_supported(f, PL_CPU_LEVEL_AVX2) && f->avx512f && f->avx512bw && f->avx512vl;
    case PL_CPU_LEVEL_NEON:   return f->neon;
    case PL_CPU_LEVEL_COUNT:  break;
    }
    return false;
}

pl_cpu_level pl_cpu_level_select(const pl_cpu_features *f, const char *request) {
    pl_cpu_level best = PL_CPU_LEVEL_SCALAR;
    static const pl_cpu_level order[] = { PL_CPU_LEVEL_NEON, PL_CPU_LEVEL_AVX512, PL_CPU_LEVEL_AVX2 };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (pl_cpu_level_supported(f, order[i])) {
            best = order[i];
            break;
        }
    }
    pl_cpu_level want;
    if (request && pl_cpu_level_parse(request, &want) == PL_OK && pl_cpu_level_supported(f, want))
        return want;
    return best;
}

pl_cpu_level pl_cpu_best_level(void) {
    /* $PL_CPU is read on every call (cheap), so tests and tools can change it
     * after detection ran; the features themselves stay cached. */
    return pl_cpu_level_select(pl_cpu_detect(), getenv("PL_CPU"));
}

/* ---- feature string ---- */

static const struct {
    const char *name;
    size_t      off;
} feature_table[] = {
#define F(field, nm) { .name = nm, .off = offsetof(pl_cpu_features, field) }
    F(sse42, "sse4.2"),     F(avx, "avx"),           F(avx2, "avx2"),
    F(fma, "fma"),          F(f16c, "f16c"),         F(avx512f, "avx512f"),
    F(avx512bw, "avx512bw"), F(avx512vl, "avx512vl"), F(avx512vnni, "avx512vnni"),
    F(avx512bf16, "avx512bf16"), F(avx_vnni, "avxvnni"), F(neon, "neon"),
    F(dotprod, "dotprod"),
#undef F
};

void pl_cpu_features_str(const pl_cpu_features *f, char *buf, size_t cap) {
    if (!buf || cap == 0) return;
    buf[0] = '\0';
    if (!f) return;
    size_t o = 0;
    bool any = false;
    for (size_t i = 0; i < sizeof feature_table / sizeof feature_table[0]; i++) {
        const bool *on = (const bool *)((const char *)f + feature_table[i].off);
        if (!*on) continue;
        any = true;
        const char *nm = feature_table[i].name;
        size_t len = strlen(nm);
        if (len + (o ? 1 : 0) >= cap - o) break; /* whole words only */
        if (o) buf[o++] = ' ';
        memcpy(buf + o, nm, len + 1);
        o += len;
    }
    if (!any && cap > strlen("none")) memcpy(buf, "none", 5);
}
