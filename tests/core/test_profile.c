/*
 * test_profile.c - parley/profile.h: /proc/meminfo and /proc/self/status
 * parsing (hand-written texts with hand-computed byte figures), the live
 * readers against independent sources (sysinfo(2), memory this test touches,
 * a thread it starts, CPU it burns), the Prometheus text reader (samples,
 * labels, escapes, every kind of bad line), and the NVML probe: absent
 * library, and two fake libraries built next to this test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <time.h>

#include "parley/profile.h"

/* ---- meminfo ---- */

static void test_meminfo_parse(void **state) {
    (void)state;
    const char *t = "MemTotal:       16318412 kB\n"
                    "MemFree:         1000000 kB\n"
                    "MemAvailable:    8000000 kB\n"
                    "Buffers:          100 kB\n"
                    "Cached:          5000000 kB\n"
                    "SwapCached:            7 kB\n"
                    "SwapTotal:       2097148 kB\n"
                    "SwapFree:        2000000 kB\n"
                    "HugePages_Total:       0\n";
    pl_meminfo m;
    assert_int_equal(pl_meminfo_parse(t, strlen(t), &m), PL_OK);
    assert_true(m.total == 16318412ull * 1024);
    assert_true(m.available == 8000000ull * 1024);
    assert_true(m.swap_total == 2097148ull * 1024);
    assert_true(m.swap_free == 2000000ull * 1024);

    /* no MemAvailable (kernels < 3.14): MemFree + Cached; SwapCached is not Cached */
    const char *old = "MemTotal: 1000 kB\nMemFree: 100 kB\nSwapCached: 999 kB\nCached: 50 kB\n";
    assert_int_equal(pl_meminfo_parse(old, strlen(old), &m), PL_OK);
    assert_true(m.available == 150ull * 1024 && m.swap_free == 0 && m.swap_total == 0);

    /* no unit: bytes as written; the last line without a newline */
    const char *nounit = "MemTotal: 4096\nMemAvailable: 2048";
    assert_int_equal(pl_meminfo_parse(nounit, strlen(nounit), &m), PL_OK);
    assert_true(m.total == 4096 && m.available == 2048);

    const char *bad[] = { "", "MemFree: 1 kB\n", "MemTotal: kB\nMemFree: 1 kB\n", "MemTotal: 1 kB\n",
                          "MemTotal: 99999999999999999999 kB\nMemFree: 1 kB\n", "XMemTotal: 1 kB\nMemFree: 1 kB\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(pl_meminfo_parse(bad[i], strlen(bad[i]), &m), PL_ERR_FORMAT);
    assert_int_equal(pl_meminfo_read("/nonexistent/meminfo", &m), PL_ERR_IO);
}

static void test_meminfo_live(void **state) {
    (void)state;
    pl_meminfo m;
    if (pl_meminfo_read(NULL, &m) != PL_OK) skip();
    struct sysinfo si;
    assert_int_equal(sysinfo(&si), 0);
    /* both come from the kernel's count of RAM pages */
    assert_true(m.total == (uint64_t)si.totalram * si.mem_unit);
    assert_true(m.swap_total == (uint64_t)si.totalswap * si.mem_unit);
    assert_true(m.available > 0 && m.available <= m.total);
    assert_true(m.swap_free <= m.swap_total);
}

/* ---- process ---- */

static void test_proc_status_parse(void **state) {
    (void)state;
    const char *t = "Name:\ttest\nVmPeak:\t  999 kB\nVmHWM:\t    3000 kB\nVmRSS:\t    2000 kB\nThreads:\t7\n";
    pl_proc_stats p = { 0 };
    assert_int_equal(pl_proc_status_parse(t, strlen(t), &p), PL_OK);
    assert_true(p.rss_bytes == 2000 * 1024 && p.peak_rss_bytes == 3000 * 1024);
    assert_int_equal(p.threads, 7);
    /* a peak below the current figure (a race between the two lines) is raised to it */
    const char *race = "VmHWM: 10 kB\nVmRSS: 20 kB\n";
    assert_int_equal(pl_proc_status_parse(race, strlen(race), &p), PL_OK);
    assert_true(p.peak_rss_bytes == 20 * 1024);
    const char *none = "VmHWM: 10 kB\n";
    assert_int_equal(pl_proc_status_parse(none, strlen(none), &p), PL_ERR_FORMAT);
}

static pthread_barrier_t g_bar;
static void *parked(void *ud) {
    (void)ud;
    pthread_barrier_wait(&g_bar); /* started */
    pthread_barrier_wait(&g_bar); /* released */
    return NULL;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_proc_stats_live(void **state) {
    (void)state;
    pl_proc_stats a, b;
    if (pl_proc_stats_read(&a) != PL_OK) skip();
    assert_true(a.rss_bytes > 0 && a.peak_rss_bytes >= a.rss_bytes && a.threads >= 1);

    /* touching 64 MiB of fresh memory raises RSS and the peak by about that */
    size_t n = (size_t)64 << 20;
    volatile char *p = malloc(n);
    assert_non_null(p);
    for (size_t i = 0; i < n; i += 4096) p[i] = 1;
    assert_int_equal(pl_proc_stats_read(&b), PL_OK);
    assert_true(b.rss_bytes >= a.rss_bytes + ((uint64_t)60 << 20));
    assert_true(b.peak_rss_bytes >= b.rss_bytes);
    assert_true(b.minor_faults >= a.minor_faults + 60 * 256); /* one fault per 4 KiB page at most */
    free((void *)p);

    /* one more thread shows in Threads */
    pthread_t th;
    pthread_barrier_init(&g_bar, NULL, 2);
    assert_int_equal(pthread_create(&th, NULL, parked, NULL), 0);
    pthread_barrier_wait(&g_bar);
    assert_int_equal(pl_proc_stats_read(&b), PL_OK);
    assert_int_equal(b.threads, a.threads + 1);
    pthread_barrier_wait(&g_bar);
    pthread_join(th, NULL);
    pthread_barrier_destroy(&g_bar);

    /* 100 ms of CPU (by the process CPU clock) shows in user + sys */
    double c0 = cpu_now();
    volatile double x = 0;
    while (cpu_now() - c0 < 0.1) x = x + 1.0;
    assert_true(x > 0);
    assert_int_equal(pl_proc_stats_read(&b), PL_OK);
    assert_true((b.cpu_user_s + b.cpu_sys_s) - (a.cpu_user_s + a.cpu_sys_s) >= 0.08);
}

/* ---- Prometheus text ---- */

#define MAX_SEEN 16
typedef struct seen {
    int            n;
    pl_prom_sample s[MAX_SEEN];
    int            stop_after; /* 0: never */
} seen;

static bool collect(void *ud, const pl_prom_sample *s) {
    seen *z = ud;
    if (z->n < MAX_SEEN) z->s[z->n] = *s;
    z->n++;
    return !(z->stop_after && z->n >= z->stop_after);
}

static void test_prom_samples(void **state) {
    (void)state;
    const char *t = "# HELP parley_requests_total Requests.\n"
                    "# TYPE parley_requests_total counter\n"
                    "parley_requests_total{status=\"ok\"} 40\n"
                    "\n"
                    "   \t\n"
                    "parley_requests_total{ status = \"error\" , slot=\"1\", } 2 1700000000123\r\n"
                    "up 1\n"
                    "a:b_c9{path=\"C:\\\\x\\\"y\\nz\"} -1.5e3\n"
                    "nan_metric NaN\n"
                    "inf_metric{le=\"+Inf\"} +Inf\n"
                    "minf -Inf\n"
                    "trailing_ws 7   \n"
                    "last_no_newline 0.25";
    seen z = { 0 };
    size_t bad = 99;
    assert_int_equal(pl_prom_parse(t, strlen(t), collect, &z, &bad), PL_OK);
    assert_int_equal(bad, 0);
    assert_int_equal(z.n, 9);
    assert_true(pl_prom_is(&z.s[0], "parley_requests_total"));
    assert_false(pl_prom_is(&z.s[0], "parley_requests"));
    assert_true(z.s[0].value == 40 && !z.s[0].has_timestamp);
    char buf[64];
    assert_true(pl_prom_label(&z.s[0], "status", buf, sizeof buf));
    assert_string_equal(buf, "ok");
    assert_false(pl_prom_label(&z.s[0], "slot", buf, sizeof buf));

    assert_true(z.s[1].value == 2 && z.s[1].has_timestamp && z.s[1].timestamp_ms == 1700000000123LL);
    assert_true(pl_prom_label(&z.s[1], "status", buf, sizeof buf));
    assert_string_equal(buf, "error");
    assert_true(pl_prom_label(&z.s[1], "slot", buf, sizeof buf));
    assert_string_equal(buf, "1");

    assert_true(pl_prom_is(&z.s[2], "up") && z.s[2].labels_len == 0 && z.s[2].value == 1);
    assert_true(pl_prom_is(&z.s[3], "a:b_c9") && z.s[3].value == -1500.0);
    assert_true(pl_prom_label(&z.s[3], "path", buf, sizeof buf));
    assert_string_equal(buf, "C:\\x\"y\nz"); /* \\ -> \, \" -> ", \n -> newline */
    char small[4];
    assert_true(pl_prom_label(&z.s[3], "path", small, sizeof small)); /* cut, still terminated */
    assert_string_equal(small, "C:\\");
    assert_true(isnan(z.s[4].value));
    assert_true(isinf(z.s[5].value) && z.s[5].value > 0);
    assert_true(pl_prom_label(&z.s[5], "le", buf, sizeof buf));
    assert_string_equal(buf, "+Inf");
    assert_true(isinf(z.s[6].value) && z.s[6].value < 0);
    assert_true(z.s[7].value == 7);
    assert_true(pl_prom_is(&z.s[8], "last_no_newline") && z.s[8].value == 0.25);

    /* empty text: nothing, fine */
    z.n = 0;
    assert_int_equal(pl_prom_parse("", 0, collect, &z, &bad), PL_OK);
    assert_int_equal(z.n, 0);
    /* a callback that stops */
    seen y = { .stop_after = 2 };
    assert_int_equal(pl_prom_parse(t, strlen(t), collect, &y, NULL), PL_ERR_CANCELED);
    assert_int_equal(y.n, 2);
}

static void test_prom_bad_lines(void **state) {
    (void)state;
    /* each bad line sits at line 2 between two good ones; both good ones still arrive */
    const char *bad[] = {
        "novalue",
        "9starts_with_digit 1",
        "m{a=\"unterminated} 1",
        "m{a=unquoted} 1",
        "m{a=\"x\" b=\"y\"} 1",      /* no comma between labels */
        "m{=\"x\"} 1",
        "m{a=\"\\q\"} 1",             /* unknown escape */
        "m 1 2 3",
        "m 1x",
        "m 1 12.5",                   /* timestamp must be an integer */
        "m 1 99999999999999999999",   /* timestamp overflow */
        "m{a=\"x\"}1",                /* no blank before the value */
        "m{a=\"x\"",
        "m{a=\"x\"} ",
        "m 0x1p3garbage",
        "m 1234567890123456789012345678901234567890123456789012345678901234567890",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char t[256];
        snprintf(t, sizeof t, "good 1\n%s\nalso_good 2\n", bad[i]);
        seen z = { 0 };
        size_t line = 0;
        pl_status st = pl_prom_parse(t, strlen(t), collect, &z, &line);
        if (st != PL_ERR_FORMAT) fail_msg("line '%s' was accepted", bad[i]);
        assert_int_equal(line, 2);
        assert_int_equal(z.n, 2);
        assert_true(pl_prom_is(&z.s[0], "good") && pl_prom_is(&z.s[1], "also_good"));
    }
    /* a line past PL_PROM_MAX_LINE */
    size_t n = PL_PROM_MAX_LINE + 100;
    char *big = malloc(n + 16);
    assert_non_null(big);
    memcpy(big, "ok 1\nm{a=\"", 11);
    memset(big + 11, 'x', n - 11);
    memcpy(big + n, "\"} 1\n", 6);
    size_t line = 0;
    seen z = { 0 };
    assert_int_equal(pl_prom_parse(big, strlen(big), collect, &z, &line), PL_ERR_FORMAT);
    assert_int_equal(line, 2);
    assert_int_equal(z.n, 1);
    free(big);
    /* NUL bytes inside a value */
    const char nul[] = "m 1\0 2\n";
    z.n = 0;
    assert_int_equal(pl_prom_parse(nul, sizeof nul - 1, collect, &z, &line), PL_ERR_FORMAT);
    assert_int_equal(z.n, 0);
}

/* ---- NVML ---- */

static void test_gpu_absent(void **state) {
    (void)state;
    pl_ctx *ctx;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    pl_gpu *g = (pl_gpu *)1;
    assert_int_equal(pl_gpu_open(ctx, "/nonexistent/libnvidia-ml.so.1", &g), PL_ERR_NOT_FOUND);
    assert_null(g);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "no NVIDIA GPU library"));
    /* the real library: absent on machines without the driver; either way a clean answer */
    pl_status st = pl_gpu_open(ctx, NULL, &g);
    if (st == PL_OK) {
        assert_true(pl_gpu_count(g) >= 0);
        pl_gpu_free(g);
    } else {
        assert_true(st == PL_ERR_NOT_FOUND || st == PL_ERR_IO || st == PL_ERR_UNSUPPORTED);
        assert_null(g);
    }
    assert_int_equal(pl_gpu_count(NULL), 0);
    pl_gpu_info gi;
    assert_int_equal(pl_gpu_read(NULL, 0, &gi), PL_ERR_INVALID_ARG);
    pl_gpu_free(NULL);
    pl_ctx_free(ctx);
}

static void test_gpu_fake(void **state) {
    (void)state;
    pl_ctx *ctx;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    pl_gpu *g = NULL;
    assert_int_equal(pl_gpu_open(ctx, FAKE_NVML_LIB, &g), PL_OK);
    assert_int_equal(pl_gpu_count(g), 2);
    pl_gpu_info gi;
    assert_int_equal(pl_gpu_read(g, 0, &gi), PL_OK);
    assert_string_equal(gi.name, "Fake GPU Zero");
    assert_int_equal(gi.util_gpu_pct, 37);
    assert_int_equal(gi.util_mem_pct, 12);
    assert_true(gi.mem_total == 80ull << 30 && gi.mem_used == 1ull << 30);
    assert_int_equal(gi.temp_c, 45);
    assert_int_equal(pl_gpu_read(g, 1, &gi), PL_OK);
    assert_string_equal(gi.name, "Fake GPU One");
    assert_int_equal(gi.util_gpu_pct, 38);
    assert_true(gi.mem_used == 2ull << 30);
    assert_int_equal(gi.temp_c, -1); /* the fake says "not supported" for this one */
    assert_int_equal(pl_gpu_read(g, 2, &gi), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_gpu_read(g, -1, &gi), PL_ERR_INVALID_ARG);
    pl_gpu_free(g);

    /* nvmlInit fails: the driver's message comes through */
    setenv("FAKE_NVML_INIT_FAIL", "1", 1);
    g = NULL;
    assert_int_equal(pl_gpu_open(ctx, FAKE_NVML_LIB, &g), PL_ERR_IO);
    assert_null(g);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "Driver Not Loaded"));
    unsetenv("FAKE_NVML_INIT_FAIL");

    /* a library without one of the entry points */
    assert_int_equal(pl_gpu_open(ctx, FAKE_NVML_NOTEMP_LIB, &g), PL_ERR_UNSUPPORTED);
    assert_null(g);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "nvmlDeviceGetTemperature"));
    pl_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meminfo_parse),
        cmocka_unit_test(test_meminfo_live),
        cmocka_unit_test(test_proc_status_parse),
        cmocka_unit_test(test_proc_stats_live),
        cmocka_unit_test(test_prom_samples),
        cmocka_unit_test(test_prom_bad_lines),
        cmocka_unit_test(test_gpu_absent),
        cmocka_unit_test(test_gpu_fake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
