/*
 * test_load.c - the load path of pl_model_load (memory check, prefault / mlock,
 * warm-up, progress, cancel, load stats) and the context's profiling counters,
 * on the tiny f32 fixture.
 *
 * Expectations are set here independently: the bytes that must be resident are
 * summed from the GGUF tensor table; the memory figures come from meminfo files
 * this test writes; the progress calls are the sequence the header documents;
 * locked memory is read back from /proc/self/status (VmLck); untouched KV pages
 * are checked against RSS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "parley/gguf.h"
#include "parley/model.h"
#include "parley/profile.h"

static char model_path[512], tmpdir[256];
static uint64_t tensor_bytes, file_bytes;

static int setup(void **state) {
    (void)state;
    const char *fx = getenv("PL_FIXTURE_DIR");
    if (!fx) return -1;
    snprintf(model_path, sizeof model_path, "%s/tiny-f32.gguf", fx);
    pl_ctx *ctx;
    pl_gguf *g;
    if (pl_ctx_init(&ctx, NULL) != PL_OK || pl_gguf_open(ctx, model_path, &g) != PL_OK) return -1;
    for (int64_t i = 0; i < pl_gguf_n_tensors(g); i++) {
        pl_gguf_tensor t;
        if (pl_gguf_tensor_at(g, i, &t) == PL_OK) tensor_bytes += t.nbytes;
    }
    file_bytes = pl_gguf_file_size(g);
    pl_gguf_free(g);
    pl_ctx_free(ctx);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pl_test_load_%d", (int)getpid());
    return mkdir(tmpdir, 0700) == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- progress ---- */

typedef struct event {
    pl_load_phase ph;
    uint64_t      done, total;
} event;

typedef struct recorder {
    event ev[64];
    int   n;
    int   cancel_phase; /* -1: never */
} recorder;

static bool record(void *ud, pl_load_phase ph, uint64_t done, uint64_t total) {
    recorder *r = ud;
    if (r->n < 64) r->ev[r->n] = (event){ ph, done, total };
    r->n++;
    return (int)ph != r->cancel_phase;
}

static void test_load_default(void **state) {
    (void)state;
    pl_ctx *ctx;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    pl_model *m = NULL;
    assert_int_equal(pl_model_load(ctx, model_path, NULL, &m), PL_OK);
    const pl_model_load_stats *ls = pl_model_get_load_stats(m);
    assert_non_null(ls);
    assert_true(ls->ms[PL_LOAD_PHASE_MAP] > 0 && ls->total_ms >= ls->ms[PL_LOAD_PHASE_MAP]);
    assert_true(ls->ms[PL_LOAD_PHASE_TOUCH] == 0 && ls->ms[PL_LOAD_PHASE_WARMUP] == 0);
    assert_false(ls->touched);
    assert_false(ls->locked);
    assert_true(ls->resident_bytes == tensor_bytes);
    assert_true(pl_model_get_info(m)->weight_bytes == tensor_bytes);
    pl_meminfo mi;
    if (pl_meminfo_read(NULL, &mi) == PL_OK) assert_true(ls->mem_available >= tensor_bytes); /* it loaded */
    assert_null(pl_model_get_load_stats(NULL));
    assert_string_equal(pl_load_phase_name(PL_LOAD_PHASE_TOUCH), "touch");
    assert_string_equal(pl_load_phase_name(PL_LOAD_PHASE_COUNT), "unknown");
    pl_model_free(m);
    pl_ctx_free(ctx);
}

static void test_progress_sequence(void **state) {
    (void)state;
    pl_ctx *ctx;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    recorder r = { .cancel_phase = -1 };
    pl_model_params p = pl_model_default_params();
    p.prefault = true;
    p.warmup = true;
    p.warmup_threads = 1;
    p.progress = record;
    p.progress_ud = &r;
    pl_model *m = NULL;
    assert_int_equal(pl_model_load(ctx, model_path, &p, &m), PL_OK);
    /* the file is under one 64 MiB chunk: map done, touch start and end, warm-up start and end */
    const event want[] = {
        { PL_LOAD_PHASE_MAP, file_bytes, file_bytes }, { PL_LOAD_PHASE_TOUCH, 0, file_bytes },
        { PL_LOAD_PHASE_TOUCH, file_bytes, file_bytes }, { PL_LOAD_PHASE_WARMUP, 0, 1 },
        { PL_LOAD_PHASE_WARMUP, 1, 1 },
    };
    assert_int_equal(r.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r.ev[i].ph, want[i].ph);
        assert_true(r.ev[i].done == want[i].done && r.ev[i].total == want[i].total);
    }
    const pl_model_load_stats *ls = pl_model_get_load_stats(m);
    assert_true(ls->touched && !ls->locked);
    assert_true(ls->ms[PL_LOAD_PHASE_TOUCH] > 0 && ls->ms[PL_LOAD_PHASE_WARMUP] > 0);
    assert_true(ls->total_ms >= ls->ms[0] + ls->ms[1] + ls->ms[2]);
    pl_model_free(m);
    pl_ctx_free(ctx);
}

static void test_cancel(void **state) {
    (void)state;
    for (int ph = 0; ph < PL_LOAD_PHASE_COUNT; ph++) {
        pl_alloc_tracker t;
        pl_alloc_tracker_reset(&t);
        pl_ctx_params cp = pl_ctx_default_params();
        cp.alloc = pl_track_alloc;
        cp.alloc_ud = &t;
        pl_ctx *ctx;
        assert_int_equal(pl_ctx_init(&ctx, &cp), PL_OK);
        int64_t base = t.in_use;
        recorder r = { .cancel_phase = ph };
        pl_model_params p = pl_model_default_params();
        p.prefault = p.warmup = true;
        p.warmup_threads = 1;
        p.progress = record;
        p.progress_ud = &r;
        pl_model *m = (pl_model *)1;
        assert_int_equal(pl_model_load(ctx, model_path, &p, &m), PL_ERR_CANCELED);
        assert_null(m);
        assert_int_equal(r.n, ph == PL_LOAD_PHASE_MAP ? 1 : ph == PL_LOAD_PHASE_TOUCH ? 2 : 4);
        char want[64];
        snprintf(want, sizeof want, "canceled during %s", pl_load_phase_name((pl_load_phase)ph));
        assert_non_null(strstr(pl_ctx_last_error(ctx), want));
        assert_int_equal(t.in_use, base); /* everything the load took is back */
        pl_ctx_free(ctx);
    }
}

/* ---- memory check ---- */

static void write_meminfo(const char *path, uint64_t total_kb, uint64_t avail_kb, uint64_t swap_free_kb) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "MemTotal: %llu kB\nMemFree: 1 kB\nMemAvailable: %llu kB\nSwapTotal: %llu kB\nSwapFree: %llu kB\n",
            (unsigned long long)total_kb, (unsigned long long)avail_kb, (unsigned long long)swap_free_kb,
            (unsigned long long)swap_free_kb);
    fclose(f);
}

static void test_memory_check(void **state) {
    (void)state;
    pl_ctx *ctx;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    char mi[300];
    snprintf(mi, sizeof mi, "%s/meminfo", tmpdir);
    pl_model_params p = pl_model_default_params();
    p.meminfo_path = mi;
    p.prefault = true;
    recorder r = { .cancel_phase = -1 };
    p.progress = record;
    p.progress_ud = &r;
    pl_model *m = NULL;

    /* 1 MiB available + 2 MiB of swap against the tiny model's ~5.5 MiB of tensors */
    assert_true(tensor_bytes > (3u << 20) && tensor_bytes < (1u << 30));
    write_meminfo(mi, 4096, 1024, 2048);
    assert_int_equal(pl_model_load(ctx, model_path, &p, &m), PL_ERR_NOMEM);
    assert_null(m);
    char want[200];
    snprintf(want, sizeof want, "needs %.1f MiB of memory", (double)tensor_bytes / 1048576.0);
    const char *e = pl_ctx_last_error(ctx);
    assert_non_null(strstr(e, want));
    assert_non_null(strstr(e, "only 3.0 MiB is available (MemAvailable 1.0 MiB + SwapFree 2.0 MiB, of 4.0 MiB RAM)"));
    assert_non_null(strstr(e, model_path));
    /* refused before anything was touched */
    assert_int_equal(r.n, 1);
    assert_int_equal(r.ev[0].ph, PL_LOAD_PHASE_MAP);

    /* the boundary, in whole kB: RAM + swap one kB short of the tensors, then just enough */
    uint64_t need_kb = (tensor_bytes + 1023) / 1024;
    write_meminfo(mi, 1u << 20, need_kb / 2, need_kb - need_kb / 2 - 1);
    assert_int_equal(pl_model_load(ctx, model_path, &p, &m), PL_ERR_NOMEM);
    write_meminfo(mi, 1u << 20, need_kb / 2, need_kb - need_kb / 2);
    assert_int_equal(pl_model_load(ctx, model_path, &p, &m), PL_OK);
    assert_true(pl_model_get_load_stats(m)->mem_available == need_kb * 1024);
    pl_model_free(m);
    m = NULL;

    /* swap alone counts too (other programs' memory can go there) */
    write_meminfo(mi, 1u << 20, 0, need_kb);
    assert_int_equal(pl_model_load(ctx, model_path, &p, &m), PL_OK);
    pl_model_free(m);
    m = NULL;

    /* the check can be turned off */
    write_meminfo(mi, 4096, 1, 0);
    p.check_memory = false;
    assert_int_equal(pl_model_load(ctx, model_path, &p, &m), PL_OK);
    assert_true(pl_model_get_load_stats(m)->mem_available == 0);
    pl_model_free(m);
    m = NULL;

    /* a meminfo file that was asked for but cannot be read is an error */
    p.check_memory = true;
    p.meminfo_path = "/nonexistent/meminfo";
    assert_int_equal(pl_model_load(ctx, model_path, &p, &m), PL_ERR_IO);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "/nonexistent/meminfo"));
    pl_ctx_free(ctx);
}

/* ---- mlock ---- */

/* ASan intercepts mlock/munlock and makes them no-ops that succeed: nothing to observe */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static uint64_t vmlck_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmLck: %llu kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb * 1024;
}

static void test_mlock_locks(void **state) {
    (void)state;
    if (UNDER_ASAN) skip();
    pl_ctx *ctx;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    pl_ctx_set_log_level(ctx, PL_LOG_LEVEL_NONE);
    pl_model_params p = pl_model_default_params();
    p.mlock = true;
    pl_model *m = NULL;
    uint64_t before = vmlck_bytes();
    assert_int_equal(pl_model_load(ctx, model_path, &p, &m), PL_OK); /* refused or not, it loads */
    const pl_model_load_stats *ls = pl_model_get_load_stats(m);
    if (!ls->locked) {
        pl_model_free(m);
        pl_ctx_free(ctx);
        skip(); /* RLIMIT_MEMLOCK too small here: the refusal is tested below */
    }
    assert_true(ls->touched);
    /* the whole mapping (file size rounded up to pages) is locked */
    assert_true(vmlck_bytes() - before >= file_bytes);
    pl_model_free(m);
    assert_true(vmlck_bytes() == before); /* unmapped, unlocked */
    pl_ctx_free(ctx);
}

static char g_log[4096];
static void capture(void *ud, pl_log_level level, const char *msg) {
    (void)ud;
    if (level == PL_LOG_LEVEL_WARN) snprintf(g_log, sizeof g_log, "%s", msg);
}

/* In a child: no CAP_IPC_LOCK, RLIMIT_MEMLOCK 0, so mlock must be refused. */
static int mlock_refused_child(void) {
    struct rlimit rl = { 0, 0 };
    if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0) return 10;
    struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) == 0) {
        d[CAP_TO_INDEX(CAP_IPC_LOCK)].effective &= ~CAP_TO_MASK(CAP_IPC_LOCK);
        if (syscall(SYS_capset, &h, d) != 0) return 11;
    }
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_fn = capture;
    pl_ctx *ctx;
    if (pl_ctx_init(&ctx, &cp) != PL_OK) return 12;
    pl_model_params p = pl_model_default_params();
    p.mlock = true;
    p.prefault = true;
    pl_model *m = NULL;
    if (pl_model_load(ctx, model_path, &p, &m) != PL_OK) return 13;
    const pl_model_load_stats *ls = pl_model_get_load_stats(m);
    if (ls->locked) return 14;
    if (!ls->touched) return 15; /* fell back to reading the pages */
    if (!strstr(g_log, "mlock of the model's") || !strstr(g_log, "RLIMIT_MEMLOCK is 0.0 MiB") ||
        !strstr(g_log, "ulimit -l"))
        return 16;
    if (vmlck_bytes() != 0) return 17; /* nothing left half-locked */
    pl_model_free(m);
    pl_ctx_free(ctx);
    return 0;
}

static void test_mlock_refused(void **state) {
    (void)state;
    if (UNDER_ASAN) skip();
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(mlock_refused_child());
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) != 0) fail_msg("mlock refusal child failed with code %d", WEXITSTATUS(st));
}

/* ---- warm-up and decoding ---- */

static void decode_logits(pl_model *m, float *out, int32_t n_vocab) {
    pl_context_params cp = pl_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 1;
    pl_context *c = NULL;
    assert_int_equal(pl_context_init(m, &cp, &c), PL_OK);
    const int32_t toks[5] = { 1, 17, 300, 42, 5 };
    pl_batch b = { .n_tokens = 5, .tokens = toks };
    assert_int_equal(pl_context_decode(c, &b), PL_OK);
    memcpy(out, pl_context_logits(c, 0), (size_t)n_vocab * sizeof(float));
    pl_context_free(c);
}

static void test_warmup_changes_nothing(void **state) {
    (void)state;
    pl_ctx *ctx;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    pl_model *cold = NULL, *warm = NULL;
    pl_model_params p = pl_model_default_params();
    assert_int_equal(pl_model_load(ctx, model_path, &p, &cold), PL_OK);
    p.warmup = true;
    p.warmup_threads = 2;
    assert_int_equal(pl_model_load(ctx, model_path, &p, &warm), PL_OK);
    int32_t nv = pl_model_get_info(cold)->n_vocab;
    float *a = malloc((size_t)nv * sizeof(float)), *b = malloc((size_t)nv * sizeof(float));
    assert_non_null(a);
    assert_non_null(b);
    decode_logits(cold, a, nv);
    decode_logits(warm, b, nv);
    assert_memory_equal(a, b, (size_t)nv * sizeof(float));
    free(a);
    free(b);
    pl_model_free(cold);
    pl_model_free(warm);
    pl_ctx_free(ctx);
}

static uint64_t rss_now(void) {
    pl_proc_stats ps;
    return pl_proc_stats_read(&ps) == PL_OK ? ps.rss_bytes : 0;
}

static void test_kv_untouched_at_init(void **state) {
    (void)state;
    pl_ctx *ctx;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    pl_model *m = NULL;
    assert_int_equal(pl_model_load(ctx, model_path, NULL, &m), PL_OK);
    pl_context_params cp = pl_context_default_params();
    cp.n_ctx = 65536;
    cp.n_batch = 8;
    cp.n_threads = 1;
    uint64_t r0 = rss_now();
    pl_context *c = NULL;
    assert_int_equal(pl_context_init(m, &cp, &c), PL_OK);
    uint64_t kv = pl_context_memory_usage(c).kv_bytes;
    /* 2 layers x 65536 slots x 2 kv heads x (64 + 64) dims x 2 bytes */
    assert_true(kv == 2ull * 65536 * 2 * 128 * 2);
    uint64_t r1 = rss_now();
    assert_true(r1 < r0 + kv / 4); /* the cache's pages are not touched until used */
    int32_t t = 3;
    pl_batch b = { .n_tokens = 1, .tokens = &t };
    assert_int_equal(pl_context_decode(c, &b), PL_OK);
    assert_true(pl_context_logits(c, 0) != NULL);
    pl_context_free(c);
    pl_model_free(m);
    pl_ctx_free(ctx);
}

/* ---- profiling counters ---- */

static void test_perf_counters(void **state) {
    (void)state;
    pl_ctx *ctx;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    pl_model *m = NULL;
    assert_int_equal(pl_model_load(ctx, model_path, NULL, &m), PL_OK);
    pl_context_params cp = pl_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 2;
    pl_context *c = NULL;
    assert_int_equal(pl_context_init(m, &cp, &c), PL_OK);
    pl_decode_perf z;
    pl_context_perf(c, &z);
    assert_true(z.n_decode == 0 && z.n_tokens == 0 && z.decode_ns == 0);
    for (int i = 0; i < PL_PERF_PHASE_COUNT; i++) assert_true(z.phase_ns[i] == 0);

    const int32_t toks[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    pl_batch b = { .n_tokens = 8, .tokens = toks };
    assert_int_equal(pl_context_decode(c, &b), PL_OK);
    pl_decode_perf a;
    pl_context_perf(c, &a);
    assert_true(a.n_decode == 1 && a.n_tokens == 8);
    uint64_t sum = 0;
    for (int i = 0; i < PL_PERF_PHASE_COUNT; i++) {
        assert_true(a.phase_ns[i] > 0);
        sum += a.phase_ns[i];
    }
    /* the phases tile the forward step, which is most of the decode call */
    assert_true(sum <= a.decode_ns);
    assert_true(sum >= a.decode_ns / 2);

    /* failed and empty decodes count nothing */
    int32_t badtok = 1 << 20;
    pl_batch bad = { .n_tokens = 1, .tokens = &badtok };
    assert_int_equal(pl_context_decode(c, &bad), PL_ERR_INVALID_ARG);
    pl_batch empty = { .n_tokens = 0, .tokens = toks };
    assert_int_equal(pl_context_decode(c, &empty), PL_OK);
    pl_decode_perf a2;
    pl_context_perf(c, &a2);
    assert_memory_equal(&a, &a2, sizeof a);

    pl_batch one = { .n_tokens = 1, .tokens = toks };
    assert_int_equal(pl_context_decode(c, &one), PL_OK);
    pl_decode_perf d;
    pl_context_perf(c, &d);
    assert_true(d.n_decode == 2 && d.n_tokens == 9 && d.decode_ns > a.decode_ns);
    for (int i = 0; i < PL_PERF_PHASE_COUNT; i++) assert_true(d.phase_ns[i] > a.phase_ns[i]);

    pl_context_perf_reset(c);
    pl_context_perf(c, &d);
    assert_memory_equal(&d, &z, sizeof z);
    pl_context_perf(NULL, &d);
    assert_memory_equal(&d, &z, sizeof z);
    pl_context_perf_reset(NULL);
    assert_string_equal(pl_perf_phase_name(PL_PERF_PHASE_MATMUL), "matmul");
    assert_string_equal(pl_perf_phase_name(PL_PERF_PHASE_ATTENTION), "attention");
    assert_string_equal(pl_perf_phase_name(PL_PERF_PHASE_COUNT), "unknown");
    pl_context_free(c);
    pl_model_free(m);
    pl_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_default),
        cmocka_unit_test(test_progress_sequence),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_memory_check),
        cmocka_unit_test(test_mlock_locks),
        cmocka_unit_test(test_mlock_refused),
        cmocka_unit_test(test_warmup_changes_nothing),
        cmocka_unit_test(test_kv_untouched_at_init),
        cmocka_unit_test(test_perf_counters),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
