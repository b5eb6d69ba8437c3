/*
 * test_profile_cli.c - what the profiler shows a user: `parley top` against a
 * fake server (tests/store/http_server.c on loopback, serving canned /metrics
 * and /props), `--verbose` of generate and chat, and the up-front memory
 * refusal (PARLEY_MEMINFO points the loader at a meminfo file made here).
 *
 * The expected figures are worked out by hand from the canned texts (see the
 * comments at each assertion), not read back from the tool.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_run.h"
#include "store/http_server.h"

static const char *bin, *fixdir;
static char tmpdir[256];

/* Run "[env] $PL_BIN args" through /bin/sh; `pre` is put before the binary (env settings, timeout). */
static cli_result run(const char *pre, const char *fmt, ...) {
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return cli_run(tmpdir, bin, pre, NULL, args);
}

static void want(const char *text, const char *sub) {
    if (!strstr(text, sub)) fail_msg("missing '%s' in:\n%s", sub, text);
}

/* ---- parley top ---- */

static const char metrics[] =
    "# HELP parley_requests_total Requests by finish status.\n"
    "# TYPE parley_requests_total counter\n"
    "parley_requests_total{status=\"ok\"} 40\n"
    "parley_requests_total{status=\"error\"} 2\n"
    "parley_prompt_tokens_total 12000\n"
    "parley_cached_tokens_total 3000\n"
    "parley_generated_tokens_total 6789\n"
    "parley_queue_length 2\n"
    "parley_slots_busy 3\n"
    "parley_slots_total 4\n"
    "parley_kv_cache_used_tokens 2048\n"
    "parley_kv_cache_capacity_tokens 8192\n"
    "parley_process_resident_memory_bytes 851443712\n"
    "parley_process_peak_resident_memory_bytes 943718400\n"
    "parley_generation_tokens_per_second 42.5\n"
    "# TYPE parley_time_to_first_token_seconds histogram\n"
    "parley_time_to_first_token_seconds_bucket{le=\"0.05\"} 10\n"
    "parley_time_to_first_token_seconds_bucket{le=\"0.1\"} 30\n"
    "parley_time_to_first_token_seconds_bucket{le=\"0.25\"} 38\n"
    "parley_time_to_first_token_seconds_bucket{le=\"+Inf\"} 40\n"
    "parley_time_to_first_token_seconds_sum 4.2\n"
    "parley_time_to_first_token_seconds_count 40\n";

static const char props[] = "{\"model\": \"qwen2.5-0.5b-instruct\", \"n_ctx\": 8192, \"total_slots\": 4}";

static void test_top_once(void **state) {
    (void)state;
    http_server *hs = hs_start();
    assert_non_null(hs);
    hs_route(hs, "/metrics", HS_OK, metrics, strlen(metrics), NULL, 0);
    hs_route(hs, "/props", HS_OK, props, strlen(props), NULL, 0);
    cli_result r = run(NULL, "top --once http://127.0.0.1:%d/", hs_port(hs));
    assert_int_equal(r.code, 0);
    want(r.out, "model qwen2.5-0.5b-instruct  n_ctx 8192");
    want(r.out, "slots     3 busy of 4   queue 2\n");
    want(r.out, "kv cache  2048 of 8192 tokens (25.0%)\n"); /* 2048 / 8192 */
    want(r.out, "prompt 12000 (cached 3000, 25.0%)   generated 6789\n");
    want(r.out, "generation 42.5 tok/s");
    /* mean 4.2 s / 40 = 105 ms. p50: rank 20 falls in (0.05, 0.1] holding 20 (10..30):
     * 0.05 + 0.05 * 10/20 = 75 ms. p95: rank 38 is the top of (0.1, 0.25]: 250 ms.
     * p99: rank 39.6 is in the +Inf bucket: above 250 ms. */
    want(r.out, "ttft      mean 105.0 ms   p50 75.0 ms   p95 250.0 ms   p99 >250.0 ms   (40 requests)\n");
    want(r.out, "requests  ok 40 error 2\n");
    want(r.out, "memory    RSS 812.0 MiB   peak 900.0 MiB\n"); /* 851443712 = 812 MiB, 943718400 = 900 MiB */
    assert_null(strstr(r.out, "unreadable"));
    assert_int_equal(hs_requests(hs, "/metrics"), 1);
    assert_int_equal(hs_requests(hs, "/props"), 1);
    cli_result_free(&r);

    /* a server with fewer metrics, a bad line, labels per slot, and no /props */
    static const char partial[] = "parley_slots_busy{slot=\"0\"} 1\n"
                                  "parley_slots_busy{slot=\"1\"} 1\n"
                                  "parley_slots_total 2\n"
                                  "this line is not a sample\n"
                                  "parley_requests_total 7\n";
    hs_route(hs, "/metrics", HS_OK, partial, strlen(partial), NULL, 0);
    hs_route(hs, "/props", HS_STATUS, "", 0, NULL, 404);
    r = run(NULL, "top --once http://127.0.0.1:%d", hs_port(hs));
    assert_int_equal(r.code, 0);
    want(r.out, "slots     2 busy of 2   queue -\n"); /* the per-slot series are summed */
    want(r.out, "kv cache  - of - tokens\n");
    want(r.out, "ttft      -\n");
    want(r.out, "requests  all 7\n");
    want(r.out, "(metrics: line 4 and maybe others unreadable, skipped)\n");
    assert_null(strstr(r.out, "model "));
    cli_result_free(&r);

    /* no /metrics: exit 1 with the reason */
    hs_route(hs, "/metrics", HS_STATUS, "", 0, NULL, 404);
    r = run(NULL, "top --once http://127.0.0.1:%d", hs_port(hs));
    assert_int_equal(r.code, 1);
    want(r.err, "parley top: http://127.0.0.1:");
    want(r.err, "/metrics: HTTP 404");
    cli_result_free(&r);
    hs_stop(hs);

    r = run(NULL, "top --once");
    assert_int_equal(r.code, 2);
    want(r.err, "missing the server URL");
    cli_result_free(&r);
    r = run(NULL, "top --interval 0 http://x");
    assert_int_equal(r.code, 2);
    cli_result_free(&r);
}

/* The live view: a few polls, then SIGINT ends it cleanly (5 s: a sanitizer
 * build on a busy machine took over 1.5 s to install its handler); from the second
 * poll on it shows rates from the counters' deltas. */
static void test_top_live(void **state) {
    (void)state;
    http_server *hs = hs_start();
    assert_non_null(hs);
    hs_route(hs, "/metrics", HS_OK, metrics, strlen(metrics), NULL, 0);
    hs_route(hs, "/props", HS_OK, props, strlen(props), NULL, 0);
    cli_result r = run("timeout --preserve-status -s INT 5", "top --interval 0.2 http://127.0.0.1:%d", hs_port(hs));
    assert_int_equal(r.code, 0);
    int snapshots = 0;
    for (const char *p = r.out; (p = strstr(p, "parley top  ")); p++) snapshots++;
    assert_true(snapshots >= 2);
    assert_true(hs_requests(hs, "/metrics") >= 2);
    want(r.out, "tok/s generated, 0.0 tok/s prompt"); /* the canned counters do not move */
    cli_result_free(&r);
    hs_stop(hs);
}

/* ---- --verbose and the load options ---- */

static void test_generate_verbose(void **state) {
    (void)state;
    char model[512];
    snprintf(model, sizeof model, "%s/tiny-f32.gguf", fixdir);
    cli_result r = run("PARLEY_NVML_LIB=" FAKE_NVML_LIB,
                       "generate -m '%s' --ids '1 2 3' --no-bos -n 4 --print-ids -t 1 -v --warmup", model);
    assert_int_equal(r.code, 0);
    /* 4 ids on stdout; the prompt (3 tokens) is one decode call, then 3 one-token calls */
    int ids = 0;
    for (const char *p = strtok(r.out, " \n"); p; p = strtok(NULL, " \n")) ids++;
    assert_int_equal(ids, 4);
    want(r.err, "parley generate: loading: touch 0% (0 of 6 MiB)\n"); /* plain lines: stderr is a file */
    want(r.err, "parley generate: loading: warm-up done\n");
    want(r.err, "parley generate: load ");
    want(r.err, "| touch ");
    want(r.err, "(read, ");
    want(r.err, "| warm-up ");
    want(r.err, "request: prefill 3 tokens ");
    want(r.err, "| decode 4 tokens ");
    want(r.err, "phases: matmul ");
    want(r.err, "| attention ");
    want(r.err, "| sampling ");
    want(r.err, "| 4 decode calls, 6 tokens, ");
    want(r.err, "process: RSS ");
    want(r.err, "| 1 threads | KV cache 0.5 MiB |"); /* 2 layers x 512 x 2 heads x 128 x 2 B */
    /* the fake NVML library's first device */
    want(r.err, "gpu 0: Fake GPU Zero | util 37% (memory 12%) | memory 1024 of 81920 MiB | 45 C\n");
    want(r.err, "gpu 1: Fake GPU One | util 38% (memory 12%) | memory 2048 of 81920 MiB | -1 C\n");
    cli_result_free(&r);

    /* no NVML: one line saying so */
    r = run("PARLEY_NVML_LIB=/nonexistent/libnvidia-ml.so.1",
            "generate -m '%s' --ids '1 2' --no-bos -n 2 --print-ids -t 1 --verbose --no-prefault", model);
    assert_int_equal(r.code, 0);
    want(r.err, "gpu: none (no NVIDIA GPU library: ");
    want(r.err, "touch - (pages fault in on first use)");
    assert_null(strstr(r.err, "loading: touch"));
    cli_result_free(&r);

    /* without --verbose: none of it */
    r = run(NULL, "generate -m '%s' --ids '1 2' --no-bos -n 2 --print-ids -t 1 --mlock", model);
    assert_int_equal(r.code, 0);
    assert_null(strstr(r.err, "request:"));
    assert_null(strstr(r.err, "loading:"));
    cli_result_free(&r);
}

static void test_chat_verbose(void **state) {
    (void)state;
    char model[512];
    snprintf(model, sizeof model, "%s/tiny-f32.gguf", fixdir);
    cli_result r = run("PARLEY_NVML_LIB=/nonexistent/x.so",
                       "chat --config /dev/null -m '%s' -p Hi -n 3 -t 1 --seed 1 --temp 0 -v --warmup", model);
    if (r.code != 0) fail_msg("chat failed: %s", r.err);
    want(r.err, "parley chat: load ");
    want(r.err, "| warm-up ");
    want(r.err, "parley chat: request: template+tokenize ");
    want(r.err, "| ttft ");
    want(r.err, "phases: matmul ");
    want(r.err, "| sampling+text ");
    want(r.err, "parley chat: process: RSS ");
    want(r.err, "parley chat: gpu: none");
    cli_result_free(&r);
}

static void test_memory_refusal(void **state) {
    (void)state;
    char model[512], mi[300], env[400];
    snprintf(model, sizeof model, "%s/tiny-f32.gguf", fixdir);
    snprintf(mi, sizeof mi, "%s/meminfo", tmpdir);
    FILE *f = fopen(mi, "w");
    assert_non_null(f);
    fputs("MemTotal: 8192 kB\nMemFree: 512 kB\nMemAvailable: 1024 kB\nSwapTotal: 4096 kB\nSwapFree: 2048 kB\n", f);
    fclose(f);
    snprintf(env, sizeof env, "PARLEY_MEMINFO='%s'", mi);
    cli_result r = run(env, "generate -m '%s' --ids '1 2' -n 2 -t 1", model);
    assert_int_equal(r.code, 1);
    want(r.err, "parley generate: ");
    want(r.err, "tiny-f32.gguf: the model needs 5.5 MiB of memory");
    want(r.err, "only 3.0 MiB is available (MemAvailable 1.0 MiB + SwapFree 2.0 MiB, of 8.0 MiB RAM)");
    cli_result_free(&r);
    r = run(env, "chat --config /dev/null -m '%s' -p Hi -n 2 -t 1", model);
    assert_int_equal(r.code, 1);
    want(r.err, "the model needs 5.5 MiB of memory");
    cli_result_free(&r);
}

int main(void) {
    bin = getenv("PL_BIN");
    fixdir = getenv("PL_FIXTURE_DIR");
    if (!bin || !fixdir) {
        fprintf(stderr, "test_profile_cli: PL_BIN and PL_FIXTURE_DIR must be set (run through ctest)\n");
        return 1;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pl_test_profile_cli.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top_once),
        cmocka_unit_test(test_top_live),
        cmocka_unit_test(test_generate_verbose),
        cmocka_unit_test(test_chat_verbose),
        cmocka_unit_test(test_memory_refusal),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "test_profile_cli: could not remove %s\n", tmpdir);
    return rc;
}
