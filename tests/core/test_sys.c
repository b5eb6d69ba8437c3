/*
 * test_sys.c - clocks and timers, CPU feature detection (checked against
 * /proc/cpuinfo and a fake sysfs tree), kernel level choice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "test_core.h"

static void sleep_ms(int ms) {
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void test_clocks(void **state) {
    (void)state;
    uint64_t prev = pl_time_ns();
    assert_true(prev > 0);
    for (int i = 0; i < 10000; i++) {
        uint64_t now = pl_time_ns();
        assert_true(now >= prev);
        prev = now;
    }
    uint64_t t0 = pl_time_ns();
    sleep_ms(3);
    assert_true(pl_time_ns() - t0 >= 3000000u);

    /* wall clock agrees with time() to within a couple of seconds */
    uint64_t w = pl_time_wall_us();
    time_t now = time(NULL);
    assert_true(w / 1000000u + 2 >= (uint64_t)now && w / 1000000u <= (uint64_t)now + 2);
    assert_true(w > 1577836800ull * 1000000u); /* after 2020 */
}

/* deadlines: carries into seconds, whole seconds, no-ops (hand-computed) */
static void test_timespec_add_ms(void **state) {
    (void)state;
    struct timespec ts = { .tv_sec = 10, .tv_nsec = 999000000L };
    pl_timespec_add_ms(&ts, 2);
    assert_int_equal(ts.tv_sec, 11);
    assert_int_equal(ts.tv_nsec, 1000000L);
    pl_timespec_add_ms(&ts, 2500);
    assert_int_equal(ts.tv_sec, 13);
    assert_int_equal(ts.tv_nsec, 501000000L);
    pl_timespec_add_ms(&ts, 499);
    assert_int_equal(ts.tv_sec, 14);
    assert_int_equal(ts.tv_nsec, 0);
    pl_timespec_add_ms(&ts, 0);
    pl_timespec_add_ms(&ts, -5);
    assert_int_equal(ts.tv_sec, 14);
    assert_int_equal(ts.tv_nsec, 0);
    pl_timespec_add_ms(NULL, 5);
}

static void test_timer(void **state) {
    (void)state;
    pl_timer t = { 0 };
    assert_int_equal(pl_timer_stop(&t), 0);
    assert_int_equal(t.count, 0);
    pl_timer_start(&t);
    assert_true(t.start_ns != 0);
    sleep_ms(2);
    uint64_t d1 = pl_timer_stop(&t);
    assert_true(d1 >= 2000000u);
    assert_true(d1 < 10ull * 1000000000u);
    assert_int_equal(t.start_ns, 0);
    assert_int_equal(t.count, 1);
    assert_true(t.total_ns == d1);
    assert_int_equal(pl_timer_stop(&t), 0); /* already stopped */
    assert_int_equal(t.count, 1);
    pl_timer_start(&t);
    sleep_ms(1);
    uint64_t d2 = pl_timer_stop(&t);
    assert_true(d2 >= 1000000u);
    assert_int_equal(t.count, 2);
    assert_true(t.total_ns == d1 + d2);
    double ms = pl_timer_ms(&t);
    assert_true(ms > (double)(d1 + d2) / 1e6 - 1e-6 && ms < (double)(d1 + d2) / 1e6 + 1e-6);
    assert_true(pl_timer_ms(NULL) == 0.0);
}

/* ---- CPU ---- */

static void test_cpu_consistency(void **state) {
    (void)state;
    const pl_cpu_features *f = pl_cpu_detect();
    assert_non_null(f);
    assert_ptr_equal(pl_cpu_detect(), f);
    assert_true(f->n_logical >= 1);
    assert_true(f->n_physical >= 1 && f->n_physical <= f->n_logical);
    assert_true(f->n_logical <= sysconf(_SC_NPROCESSORS_ONLN));
    /* each feature needs the ones it builds on */
    if (f->avx2 || f->fma || f->f16c || f->avx_vnni) assert_true(f->avx);
    if (f->avx_vnni) assert_true(f->avx2);
    if (f->avx512f) assert_true(f->avx2 && f->avx);
    if (f->avx512bw || f->avx512vl || f->avx512vnni || f->avx512bf16) assert_true(f->avx512f);
    if (f->dotprod) assert_true(f->neon);
#if defined(__x86_64__)
    assert_false(f->neon);
    assert_true(f->sse42 || !f->avx);
#elif defined(__aarch64__)
    assert_true(f->neon);
    assert_false(f->avx);
#endif
}

/* Compare with the kernel's own view (/proc/cpuinfo flags), which also
 * accounts for OS support of the YMM/ZMM state. */
static void test_cpu_vs_proc(void **state) {
    (void)state;
#if !defined(__x86_64__)
    skip();
#else
    FILE *fp = fopen("/proc/cpuinfo", "r");
    if (!fp) skip();
    static char line[16384];
    bool found = false;
    while (fgets(line, sizeof line, fp))
        if (strncmp(line, "flags", 5) == 0) {
            found = true;
            break;
        }
    fclose(fp);
    if (!found) skip();
    strcat(line, " ");
    const pl_cpu_features *f = pl_cpu_detect();
    static const struct { const char *flag; size_t off; } rows[] = {
#define R(flag, field) { " " flag " ", offsetof(pl_cpu_features, field) }
        R("sse4_2", sse42), R("avx", avx), R("avx2", avx2), R("fma", fma), R("f16c", f16c),
        R("avx512f", avx512f), R("avx512bw", avx512bw), R("avx512vl", avx512vl),
        R("avx512_vnni", avx512vnni), R("avx512_bf16", avx512bf16), R("avx_vnni", avx_vnni),
#undef R
    };
    char *flags = strchr(line, ':');
    assert_non_null(flags);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        bool have = strstr(flags, rows[i].flag) != NULL;
        bool det = *(const bool *)((const char *)f + rows[i].off);
        if (have != det) fail_msg("feature%s: /proc/cpuinfo %d, detected %d", rows[i].flag, have, det);
    }
#endif
}

static void write_file(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void make_cpu(const char *root, int cpu, const char *core, const char *pkg) {
    char path[512];
    snprintf(path, sizeof path, "%s/cpu%d", root, cpu);
    assert_int_equal(mkdir(path, 0700), 0);
    if (!core) return;
    snprintf(path, sizeof path, "%s/cpu%d/topology", root, cpu);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/cpu%d/topology/core_id", root, cpu);
    write_file(path, core);
    snprintf(path, sizeof path, "%s/cpu%d/topology/physical_package_id", root, cpu);
    write_file(path, pkg);
}

static bool skip_cpu3(void *ud, int cpu) {
    (void)ud;
    return cpu != 3;
}

static void test_cpu_physical_sysfs(void **state) {
    (void)state;
    char root[] = "/tmp/pl_test_sysfs_XXXXXX";
    assert_non_null(mkdtemp(root));
    make_cpu(root, 0, "0\n", "0\n");
    make_cpu(root, 1, "1\n", "0\n");
    make_cpu(root, 2, "0\n", "0\n");  /* SMT sibling of cpu0 */
    make_cpu(root, 3, "0\n", "1\n");  /* core 0 of the second package */
    make_cpu(root, 4, NULL, NULL);    /* offline: no topology */
    make_cpu(root, 10, "1\n", "0\n"); /* sibling of cpu1 */
    char path[512];
    snprintf(path, sizeof path, "%s/cpufreq", root); /* not a cpu */
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/cpu5x", root);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(pl_cpu_count_physical_at(root, NULL, NULL), 3);
    assert_int_equal(pl_cpu_count_physical_at(root, skip_cpu3, NULL), 2);
    assert_int_equal(pl_cpu_count_physical_at("/nonexistent/pl", NULL, NULL), 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

static void test_cpu_levels(void **state) {
    (void)state;
    for (int i = 0; i < PL_CPU_LEVEL_COUNT; i++) {
        pl_cpu_level lv = PL_CPU_LEVEL_COUNT;
        assert_int_equal(pl_cpu_level_parse(pl_cpu_level_name((pl_cpu_level)i), &lv), PL_OK);
        assert_int_equal(lv, i);
    }
    assert_string_equal(pl_cpu_level_name(PL_CPU_LEVEL_AVX512), "avx512");
    assert_string_equal(pl_cpu_level_name(PL_CPU_LEVEL_COUNT), "unknown");
    pl_cpu_level lv;
    assert_int_equal(pl_cpu_level_parse("sse", &lv), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_cpu_level_parse(NULL, &lv), PL_ERR_INVALID_ARG);

    pl_cpu_features none = { .n_logical = 1, .n_physical = 1 };
    pl_cpu_features avx2 = { .sse42 = true, .avx = true, .avx2 = true, .fma = true, .f16c = true };
    pl_cpu_features avx2_no_f16c = avx2;
    avx2_no_f16c.f16c = false;
    pl_cpu_features avx512 = avx2;
    avx512.avx512f = avx512.avx512bw = avx512.avx512vl = true;
    pl_cpu_features avx512_no_vl = avx512;
    avx512_no_vl.avx512vl = false;
    pl_cpu_features neon = { .neon = true };

    assert_int_equal(pl_cpu_level_select(&none, NULL), PL_CPU_LEVEL_SCALAR);
    assert_int_equal(pl_cpu_level_select(&none, "avx2"), PL_CPU_LEVEL_SCALAR);
    assert_int_equal(pl_cpu_level_select(&avx2, NULL), PL_CPU_LEVEL_AVX2);
    assert_int_equal(pl_cpu_level_select(&avx2_no_f16c, NULL), PL_CPU_LEVEL_SCALAR);
    assert_int_equal(pl_cpu_level_select(&avx2, "scalar"), PL_CPU_LEVEL_SCALAR);
    assert_int_equal(pl_cpu_level_select(&avx2, "avx512"), PL_CPU_LEVEL_AVX2); /* not above the CPU */
    assert_int_equal(pl_cpu_level_select(&avx2, "bogus"), PL_CPU_LEVEL_AVX2);
    assert_int_equal(pl_cpu_level_select(&avx2, ""), PL_CPU_LEVEL_AVX2);
    assert_int_equal(pl_cpu_level_select(&avx512, NULL), PL_CPU_LEVEL_AVX512);
    assert_int_equal(pl_cpu_level_select(&avx512, "AVX2"), PL_CPU_LEVEL_AVX2);
    assert_int_equal(pl_cpu_level_select(&avx512, "neon"), PL_CPU_LEVEL_AVX512);
    assert_int_equal(pl_cpu_level_select(&avx512_no_vl, NULL), PL_CPU_LEVEL_AVX2);
    assert_int_equal(pl_cpu_level_select(&neon, NULL), PL_CPU_LEVEL_NEON);
    assert_int_equal(pl_cpu_level_select(&neon, "avx2"), PL_CPU_LEVEL_NEON);
    assert_int_equal(pl_cpu_level_select(&neon, "scalar"), PL_CPU_LEVEL_SCALAR);
}

/* $PL_CPU is read at call time, after detection was cached. */
static void test_cpu_env_override(void **state) {
    (void)state;
    const pl_cpu_features *f = pl_cpu_detect();
    char *old = getenv("PL_CPU") ? strdup(getenv("PL_CPU")) : NULL;
    unsetenv("PL_CPU");
    pl_cpu_level best = pl_cpu_best_level();
    assert_int_equal(best, pl_cpu_level_select(f, NULL));
    assert_true(pl_cpu_level_supported(f, best));
#if defined(__x86_64__)
    if (f->avx512f && f->avx512bw && f->avx512vl) assert_int_equal(best, PL_CPU_LEVEL_AVX512);
    else if (f->avx2 && f->fma && f->f16c) assert_int_equal(best, PL_CPU_LEVEL_AVX2);
    else assert_int_equal(best, PL_CPU_LEVEL_SCALAR);
#endif
    setenv("PL_CPU", "scalar", 1);
    assert_int_equal(pl_cpu_best_level(), PL_CPU_LEVEL_SCALAR);
    setenv("PL_CPU", "avx2", 1);
    assert_int_equal(pl_cpu_best_level(), pl_cpu_level_supported(f, PL_CPU_LEVEL_AVX2) ? PL_CPU_LEVEL_AVX2 : best);
    setenv("PL_CPU", "avx512", 1);
    assert_int_equal(pl_cpu_best_level(), pl_cpu_level_supported(f, PL_CPU_LEVEL_AVX512) ? PL_CPU_LEVEL_AVX512 : best);
    setenv("PL_CPU", "turbo", 1);
    assert_int_equal(pl_cpu_best_level(), best);
    if (old) setenv("PL_CPU", old, 1); else unsetenv("PL_CPU");
    free(old);
}

static void test_cpu_features_str(void **state) {
    (void)state;
    char buf[256];
    pl_cpu_features f = { .avx = true, .avx2 = true, .fma = true };
    pl_cpu_features_str(&f, buf, sizeof buf);
    assert_string_equal(buf, "avx avx2 fma");
    pl_cpu_features_str(&f, buf, 9); /* "avx avx2" needs 9 with the NUL */
    assert_string_equal(buf, "avx avx2");
    pl_cpu_features_str(&f, buf, 8);
    assert_string_equal(buf, "avx");
    pl_cpu_features_str(&f, buf, 3);
    assert_string_equal(buf, "");
    buf[0] = 'x';
    pl_cpu_features_str(&f, buf, 1);
    assert_int_equal(buf[0], '\0');
    pl_cpu_features none = { 0 };
    pl_cpu_features_str(&none, buf, sizeof buf);
    assert_string_equal(buf, "none");
    pl_cpu_features all = { .sse42 = 1, .avx = 1, .avx2 = 1, .fma = 1, .f16c = 1, .avx512f = 1,
                            .avx512bw = 1, .avx512vl = 1, .avx512vnni = 1, .avx512bf16 = 1,
                            .avx_vnni = 1, .neon = 1, .dotprod = 1 };
    pl_cpu_features_str(&all, buf, sizeof buf);
    assert_string_equal(buf, "sse4.2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512vnni "
                             "avx512bf16 avxvnni neon dotprod");
    const pl_cpu_features *real = pl_cpu_detect();
    pl_cpu_features_str(real, buf, sizeof buf);
    assert_int_equal(strstr(buf, "avx512f") != NULL, real->avx512f);
    assert_int_equal(strstr(buf, "avx2") != NULL, real->avx2);
}

int test_sys_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_timespec_add_ms),
        cmocka_unit_test(test_timer),
        cmocka_unit_test(test_cpu_consistency),
        cmocka_unit_test(test_cpu_vs_proc),
        cmocka_unit_test(test_cpu_physical_sysfs),
        cmocka_unit_test(test_cpu_levels),
        cmocka_unit_test(test_cpu_env_override),
        cmocka_unit_test(test_cpu_features_str),
    };
    return cmocka_run_group_tests_name("core/sys", tests, NULL, NULL);
}
