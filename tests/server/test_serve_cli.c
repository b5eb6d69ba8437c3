/*
 * test_serve_cli.c - `parley serve` as a process (PL_BIN): --help, an API
 * key file, graceful shutdown on SIGTERM with a stream in flight (it is
 * let finish, then the process exits 0) and with a /v1/realtime connection
 * open (closed with 1001, exit 0 within the drain bound), `parley top` and
 * `parley bench-serve` against it; and, run with the argument "npm",
 * the official `openai` npm client against it (tests/server/openai_client.mjs;
 * exit 77 only when node itself is missing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server/http_util.h"
#include "server/ws_util.h"

static const char *bin;
static char model_path[1024];

typedef struct child {
    pid_t pid;
    int   err_fd; /* the child's stderr */
    int   port;
    char  log[8192];
    size_t log_len;
} child;

/* Read the child's stderr until `want` appears (or 20 s pass). */
static bool read_until(child *c, const char *want) {
    for (int i = 0; i < 2000; i++) {
        if (strstr(c->log, want)) return true;
        char buf[512];
        ssize_t k = read(c->err_fd, buf, sizeof buf);
        if (k > 0 && c->log_len + (size_t)k < sizeof c->log) {
            memcpy(c->log + c->log_len, buf, (size_t)k);
            c->log_len += (size_t)k;
            c->log[c->log_len] = 0;
            continue;
        }
        if (k == 0) return strstr(c->log, want) != NULL;
        usleep(10000);
    }
    return false;
}

static void spawn(child *c, const char *const *extra) {
    memset(c, 0, sizeof *c);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    const char *argv[32] = { bin, "serve", "-m", model_path, "--port", "0", "-np", "2", "-c", "256", "-t", "1",
                             "--alias", "tiny" };
    int n = 14;
    for (int i = 0; extra && extra[i]; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        /* a failed assertion leaves the test without stop(): the server must not
         * outlive it (it holds the test's stdout, so ctest waited for its timeout) */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    c->err_fd = fds[0];
    fcntl(c->err_fd, F_SETFL, O_NONBLOCK);
    assert_true(read_until(c, "ready"));
    const char *p = strstr(c->log, "http://127.0.0.1:");
    assert_non_null(p);
    c->port = atoi(p + 17);
    assert_true(c->port > 0);
}

/* The exit status (-1 when it did not exit within 10 s). */
static int reap(child *c) {
    for (int i = 0; i < 1000; i++) {
        int st;
        if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
            close(c->err_fd);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(10000);
    }
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    close(c->err_fd);
    return -1;
}

/* SIGTERM and the exit status (-1 when it did not exit within 10 s). */
static int stop(child *c) {
    kill(c->pid, SIGTERM);
    return reap(c);
}

static void test_help(void **state) {
    (void)state;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' serve --help", bin);
    FILE *f = popen(cmd, "r");
    char out[8192] = "";
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    assert_int_equal(pclose(f), 0);
    assert_non_null(strstr(out, "usage: parley serve"));
    assert_non_null(strstr(out, "--api-key-file"));
    snprintf(cmd, sizeof cmd, "'%s' serve -m '%s' --port 0 --bogus 2>/dev/null", bin, model_path);
    f = popen(cmd, "r");
    assert_int_equal(WEXITSTATUS(pclose(f)), 2);
}

typedef struct streamer {
    int port;
    http_resp r;
} streamer;

static void *stream_main(void *arg) {
    streamer *s = arg;
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":60,\"temperature\":0,"
                       "\"ignore_eos\":true,\"stream\":true}";
    http_do(s->port, "POST", "/v1/chat/completions", body, strlen(body), "k3y-from-file", &s->r);
    return NULL;
}

static void test_key_file_and_graceful_stop(void **state) {
    (void)state;
    char key_path[] = "/tmp/pl-key-XXXXXX";
    int fd = mkstemp(key_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "k3y-from-file\n", 14), 14);
    close(fd);
    const char *extra[] = { "--api-key-file", key_path, NULL };
    child c;
    spawn(&c, extra);
    http_resp r = { 0 };
    http_do(c.port, "GET", "/v1/models", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 401);
    http_resp_free(&r);
    http_do(c.port, "GET", "/v1/models", NULL, 0, "k3y-from-file", &r);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    /* a stream in flight when SIGTERM comes: it is let finish */
    streamer s = { .port = c.port };
    s.r.abort_after = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stream_main, &s), 0);
    for (int i = 0; i < 500; i++) { /* wait for it to start */
        http_do(c.port, "GET", "/metrics", NULL, 0, "k3y-from-file", &r);
        bool busy = strstr(r.body, "parley_slots_busy 1\n") != NULL;
        http_resp_free(&r);
        if (busy) break;
        usleep(2000);
    }
    int rc = stop(&c);
    pthread_join(t, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(s.r.status, 200);
    assert_non_null(strstr(s.r.body, "data: [DONE]"));
    assert_non_null(strstr(s.r.body, "\"finish_reason\":\"length\""));
    http_resp_free(&s.r);
    /* gone: nothing listens any more */
    http_do(c.port, "GET", "/health", NULL, 0, NULL, &r);
    assert_int_not_equal(r.curl_rc, 0);
    http_resp_free(&r);
    unlink(key_path);
}

/* SIGTERM with a /v1/realtime connection open (its voice pipeline running):
 * the connection is closed with 1001 (going away) and the process exits 0
 * within the drain bound (5 s). */
static void test_graceful_stop_with_realtime(void **state) {
    (void)state;
    child c;
    spawn(&c, NULL);
    char resp[1024];
    int fd = ws_open(c.port, resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 101"));
    char *p;
    size_t len;
    assert_int_equal(ws_read_frame(fd, &p, &len), 1);
    assert_non_null(strstr(p, "session.created"));
    free(p);
    double t0 = ws_now();
    kill(c.pid, SIGTERM);
    assert_int_equal(ws_wait_close(fd, 10, NULL, NULL), 1001);
    close(fd);
    int rc = reap(&c);
    double dt = ws_now() - t0;
    fprintf(stderr, "SIGTERM with a realtime connection: exit %d after %.2f s\n", rc, dt);
    assert_int_equal(rc, 0);
    assert_true(dt < 5.0);
}

/* `parley top --once` reads a real server's /metrics and /props (the names the
 * server writes are the ones top looks for), with the API key. */
static void test_top_against_server(void **state) {
    (void)state;
    const char *extra[] = { "--api-key", "topkey", NULL };
    child c;
    spawn(&c, extra);
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":5,"
                       "\"temperature\":0,\"ignore_eos\":true}";
    http_resp r = { 0 };
    http_do(c.port, "POST", "/v1/chat/completions", body, strlen(body), "topkey", &r);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    /* the profiler's figures in /metrics: decode time by phase, process stats */
    http_do(c.port, "GET", "/metrics", NULL, 0, "topkey", &r);
    assert_int_equal(r.status, 200);
    const char *mm = strstr(r.body, "parley_decode_phase_seconds_total{phase=\"matmul\"} ");
    assert_non_null(mm);
    assert_true(atof(mm + strlen("parley_decode_phase_seconds_total{phase=\"matmul\"} ")) > 0);
    const char *st = strstr(r.body, "\nparley_decode_steps_total ");
    assert_non_null(st);
    assert_true(atoi(st + strlen("\nparley_decode_steps_total ")) >= 5); /* prefill + 4 more tokens at least */
    const char *th = strstr(r.body, "\nparley_process_threads ");
    assert_non_null(th);
    assert_true(atoi(th + strlen("\nparley_process_threads ")) >= 2); /* main + workers + scheduler */
    assert_non_null(strstr(r.body, "# TYPE parley_process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(r.body, "\nparley_process_peak_resident_memory_bytes "));
    http_resp_free(&r);
    char cmd[1400], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' top --once --api-key topkey http://127.0.0.1:%d", bin, c.port);
    FILE *f = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    assert_int_equal(pclose(f), 0);
    assert_non_null(strstr(out, "slots     0 busy of 2   queue 0\n"));
    assert_non_null(strstr(out, " of 512 tokens (")); /* 2 slots x 256 */
    assert_non_null(strstr(out, "   generated 5\n"));
    assert_non_null(strstr(out, "(1 requests)"));     /* one TTFT sample */
    assert_non_null(strstr(out, " 200 "));            /* the completion's status */
    assert_null(strstr(out, "RSS -"));
    assert_null(strstr(out, "unreadable"));
    /* without the key the metrics are refused: exit 1 */
    snprintf(cmd, sizeof cmd, "PARLEY_API_KEY= '%s' top --once http://127.0.0.1:%d >/dev/null 2>&1", bin, c.port);
    int rc = system(cmd);
    assert_int_equal(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, 1);
    assert_int_equal(stop(&c), 0);
}

/* `parley bench-serve` against the server: the counts it prints are the server's
 * (4 requests x 6 tokens), the warm-up request runs first and is not counted (the
 * server generated 6 more), and a wrong key makes every request an error: exit 1. */
static void test_bench_serve(void **state) {
    (void)state;
    const char *extra[] = { "--api-key", "bskey", NULL };
    child c;
    spawn(&c, extra);
    char cmd[1400], out[8192];
    snprintf(cmd, sizeof cmd,
             "'%s' bench-serve --url http://127.0.0.1:%d --api-key bskey -c 2 -n 4 --prompt-tokens 8 --max-tokens 6 "
             "2>/dev/null",
             bin, c.port);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    assert_int_equal(pclose(f), 0);
    if (!strstr(out, "clients 2  requests 4  ok 4  errors 0  wall ")) fail_msg("bench-serve said: %s", out);
    assert_non_null(strstr(out, "\ntokens  24 generated, aggregate "));
    assert_non_null(strstr(out, "\nTTFT    p50 "));
    http_resp r = { 0 };
    http_do(c.port, "GET", "/metrics", NULL, 0, "bskey", &r);
    assert_int_equal(r.status, 200);
    const char *g = strstr(r.body, "\nparley_generated_tokens_total ");
    assert_non_null(g);
    assert_int_equal(atoi(g + strlen("\nparley_generated_tokens_total ")), 30); /* 24 + the warm-up's 6 */
    http_resp_free(&r);
    /* one client runs its requests back to back: the client used to sit in a 100 ms
     * poll after each (nothing else running), so 20 one-token requests took >= 1.9 s;
     * the tiny model answers one in a few ms (tens under the sanitizers) */
    snprintf(cmd, sizeof cmd,
             "'%s' bench-serve --url http://127.0.0.1:%d --api-key bskey -c 1 -n 20 --prompt-tokens 4 --max-tokens 1 "
             "--warmup 0 2>/dev/null",
             bin, c.port);
    f = popen(cmd, "r");
    assert_non_null(f);
    n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    assert_int_equal(pclose(f), 0);
    const char *w = strstr(out, "errors 0  wall ");
    if (!w) fail_msg("bench-serve said: %s", out);
    double wall = atof(w + strlen("errors 0  wall "));
    if (wall >= 1.5) fail_msg("20 back-to-back requests took %.2f s: the client idles between requests", wall);
    snprintf(cmd, sizeof cmd,
             "'%s' bench-serve --url http://127.0.0.1:%d --api-key wrong -n 2 --max-tokens 4 --warmup 0 >/dev/null "
             "2>&1",
             bin, c.port);
    int rc = system(cmd);
    assert_int_equal(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, 1);
    /* with the warm-up, the wrong key stops it there with one line */
    snprintf(cmd, sizeof cmd,
             "'%s' bench-serve --url http://127.0.0.1:%d --api-key wrong -n 2 --max-tokens 4 2>&1 >/dev/null", bin,
             c.port);
    f = popen(cmd, "r");
    assert_non_null(f);
    n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    rc = pclose(f);
    assert_int_equal(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, 1);
    assert_non_null(strstr(out, "warm-up request to "));
    assert_int_equal(stop(&c), 0);
}

static bool have_node(void) {
    return system("node --version >/dev/null 2>&1") == 0;
}

static void test_openai_npm(void **state) {
    (void)state;
    const char *src = getenv("PL_SOURCE_DIR");
    assert_non_null(src);
    char mod[1200];
    snprintf(mod, sizeof mod, "%s/node_modules/openai/package.json", src);
    if (access(mod, R_OK) != 0) fail_msg("no %s: run scripts/install-deps.sh (npm ci)", mod);
    const char *extra[] = { "--api-key", "npm-key", NULL };
    child c;
    spawn(&c, extra);
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "node '%s/tests/server/openai_client.mjs' %d tiny npm-key", src, c.port);
    int rc = system(cmd);
    assert_int_equal(stop(&c), 0);
    assert_int_equal(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, 0);
}

int main(int argc, char **argv) {
    bin = getenv("PL_BIN");
    const char *dir = getenv("PL_FIXTURE_DIR");
    if (!bin || !dir) return 77;
    snprintf(model_path, sizeof model_path, "%s/tiny-qwen2-f32.gguf", dir);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc;
    if (argc > 1 && strcmp(argv[1], "npm") == 0) {
        if (!have_node()) {
            fprintf(stderr, "node is not installed: skipping the openai npm client test\n");
            return 77;
        }
        const struct CMUnitTest tests[] = { cmocka_unit_test(test_openai_npm) };
        rc = cmocka_run_group_tests_name("openai_npm", tests, NULL, NULL);
    } else {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_help),
            cmocka_unit_test(test_key_file_and_graceful_stop),
            cmocka_unit_test(test_graceful_stop_with_realtime),
            cmocka_unit_test(test_top_against_server),
            cmocka_unit_test(test_bench_serve),
        };
        rc = cmocka_run_group_tests_name("serve_cli", tests, NULL, NULL);
    }
    curl_global_cleanup();
    return rc;
}
