/*
 * test_store_cli.c - `parley pull`, `list`, `rm` and `inspect NAME` run as a
 * user runs them ($PL_BIN through /bin/sh, stdout and stderr captured), with
 * PARLEY_HOME pointing at a temp store and PARLEY_HF_ENDPOINT at the local
 * HTTP fixture server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_run.h"
#include "http_server.h"
#include "parley/store.h"
#include "test_store.h"

static const char *bin;
static http_server *hs;
static char tmpdir[256], store[300], endpoint[64];
static unsigned char *blob;
static size_t blob_len = 300017;

/* Run "$PL_BIN args" against the test store and the local HTTP server. */
static cli_result run(const char *fmt, ...) {
    char args[2048], pre[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(pre, sizeof pre, "PARLEY_HOME='%s' PARLEY_HF_ENDPOINT='%s'", store, endpoint);
    return cli_run(tmpdir, bin, pre, NULL, args);
}

/* Line k (0 = header) of `parley list` has exactly these columns. */
static bool list_row_is(const char *out, int k, const char *name, const char *size, const char *quant,
                        const char *path) {
    const char *line = out;
    for (int i = 0; i < k && line; i++) {
        line = strchr(line, '\n');
        if (line) line++;
    }
    if (!line) return false;
    char buf[1024], want[1024];
    size_t n = strcspn(line, "\n");
    if (n >= sizeof buf) return false;
    memcpy(buf, line, n);
    buf[n] = '\0';
    /* collapse runs of spaces, then compare */
    char *w = buf;
    for (char *q = buf; *q; q++)
        if (!(*q == ' ' && w > buf && w[-1] == ' ')) *w++ = *q;
    *w = '\0';
    snprintf(want, sizeof want, "%s %s %s %s", name, size, quant, path);
    if (strcmp(buf, want) != 0) fprintf(stderr, "list row %d: '%s', want '%s'\n", k, buf, want);
    return strcmp(buf, want) == 0;
}

static void test_cli_pull_list_rm(void **state) {
    (void)state;
    hs_route(hs, "/files/cli-a.gguf", HS_OK, blob, blob_len, NULL, 0);
    cli_result r = run("pull %s/files/cli-a.gguf", endpoint);
    assert_int_equal(r.code, 0);
    char want[512];
    snprintf(want, sizeof want, "%s/cli-a.gguf\n", store);
    assert_string_equal(r.out, want); /* stdout: the path, nothing else */
    /* stderr is a file: plain progress lines, no carriage returns */
    assert_null(strchr(r.err, '\r'));
    assert_non_null(strstr(r.err, "cli-a.gguf: 100% 293.0 KiB / 293.0 KiB"));
    assert_non_null(strstr(r.err, "parley pull: cli-a: done, 293.0 KiB, sha256 "));
    want[strlen(want) - 1] = '\0';
    assert_true(ts_file_equals(want, blob, blob_len));
    cli_result_free(&r);

    /* again: nothing downloaded, same path */
    int before = hs_requests(hs, "/files/cli-a.gguf");
    r = run("pull -q cli-a");
    assert_int_equal(r.code, 0);
    assert_string_equal(r.err, "");
    assert_int_equal(hs_requests(hs, "/files/cli-a.gguf"), before);
    cli_result_free(&r);

    /* a catalog name, fetched through PARLEY_HF_ENDPOINT */
    const pl_catalog_entry *c = pl_catalog_find("qwen3-0.6b");
    char path[512];
    snprintf(path, sizeof path, "/%s/resolve/main/%s", c->repo, c->file);
    hs_route(hs, path, HS_OK, blob, 5000, NULL, 0);
    r = run("pull qwen3-0.6b");
    assert_int_equal(r.code, 0);
    snprintf(want, sizeof want, "%s/qwen3-0.6b-q4_k_m.gguf\n", store);
    assert_string_equal(r.out, want);
    assert_non_null(strstr(r.err, "recorded; later downloads must match"));
    cli_result_free(&r);

    r = run("list");
    assert_int_equal(r.code, 0);
    assert_int_equal(cli_count_lines(r.out), 3);
    assert_true(strncmp(r.out, "NAME", 4) == 0);
    char p1[600], p2[600];
    snprintf(p1, sizeof p1, "%s/cli-a.gguf", store);
    snprintf(p2, sizeof p2, "%s/qwen3-0.6b-q4_k_m.gguf", store);
    /* sorted by name; columns: name, size (value unit), quant, path */
    assert_true(list_row_is(r.out, 1, "cli-a", "293.0 KiB", "-", p1));          /* 300017 B / 1024 */
    assert_true(list_row_is(r.out, 2, "qwen3-0.6b:q4_k_m", "4.9 KiB", "Q4_K_M", p2)); /* 5000 B / 1024 */
    cli_result_free(&r);

    r = run("list --json");
    assert_int_equal(r.code, 0);
    cJSON *arr = cJSON_Parse(r.out);
    assert_true(cJSON_IsArray(arr));
    assert_int_equal(cJSON_GetArraySize(arr), 2);
    cJSON *e0 = cJSON_GetArrayItem(arr, 0);
    assert_string_equal(cJSON_GetObjectItem(e0, "name")->valuestring, "cli-a");
    assert_int_equal((int)cJSON_GetObjectItem(e0, "size")->valuedouble, (int)blob_len);
    char sha[65];
    ts_sha256_hex(blob, blob_len, sha);
    assert_string_equal(cJSON_GetObjectItem(e0, "sha256")->valuestring, sha);
    cJSON_Delete(arr);
    cli_result_free(&r);

    r = run("list --path qwen3-0.6b");
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, want);
    cli_result_free(&r);
    r = run("list --path qwen3-1.7b");
    assert_int_equal(r.code, 1);
    assert_string_equal(r.out, "");
    assert_int_equal(cli_count_lines(r.err), 1);
    assert_non_null(strstr(r.err, "parley list: model 'qwen3-1.7b:q4_k_m' is not downloaded yet"));
    assert_non_null(strstr(r.err, "run 'parley pull qwen3-1.7b:q4_k_m'"));
    cli_result_free(&r);

    r = run("rm qwen3-0.6b cli-a");
    assert_int_equal(r.code, 0);
    cli_result_free(&r);
    r = run("list");
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "no models in"));
    cli_result_free(&r);
    r = run("rm cli-a");
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "parley rm: 'cli-a' is not in the store"));
    cli_result_free(&r);
}

static void test_cli_errors(void **state) {
    (void)state;
    cli_result r = run("pull %s/nowhere/x.gguf", endpoint);
    assert_int_equal(r.code, 1);
    assert_string_equal(r.out, "");
    assert_int_equal(cli_count_lines(r.err), 1);
    assert_non_null(strstr(r.err, "parley pull: x: HTTP 404 Not Found"));
    cli_result_free(&r);

    hs_route(hs, "/files/cli-b.gguf", HS_OK, blob, blob_len, NULL, 0);
    r = run("pull --sha256 %064d %s/files/cli-b.gguf", 7, endpoint);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "sha256 mismatch for cli-b"));
    assert_non_null(strstr(r.err, "the download was removed"));
    char p[600];
    snprintf(p, sizeof p, "%s/cli-b.gguf", store);
    assert_int_equal(access(p, F_OK), -1);
    cli_result_free(&r);

    r = run("pull");
    assert_int_equal(r.code, 2);
    cli_result_free(&r);
    r = run("pull --retries x qwen3-0.6b");
    assert_int_equal(r.code, 2);
    cli_result_free(&r);
    r = run("pull --help");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "PARLEY_HF_ENDPOINT"));
    cli_result_free(&r);
    r = run("pull --list");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "whisper-base.en"));
    assert_non_null(strstr(r.out, PL_STORE_DEFAULT_MODEL));
    cli_result_free(&r);
    r = run("rm /etc/passwd");
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "is not a store name"));
    assert_int_equal(access("/etc/passwd", F_OK), 0);
    cli_result_free(&r);
}

/* Ctrl-C during a download: exit 1 quickly, the partial is kept, and the
 * next pull resumes it. */
static void test_cli_interrupt(void **state) {
    (void)state;
    hs_route(hs, "/slow/cli-c.gguf", HS_SLOW, blob, blob_len, NULL, 0);
    char url[256], errf[300], part[600];
    snprintf(url, sizeof url, "%s/slow/cli-c.gguf", endpoint);
    snprintf(errf, sizeof errf, "%s/int-err", tmpdir);
    snprintf(part, sizeof part, "%s/cli-c.gguf.part", store);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        int dn = open("/dev/null", O_WRONLY);
        dup2(dn, 1);
        setenv("PARLEY_HOME", store, 1);
        execl(bin, bin, "pull", url, (char *)NULL);
        _exit(127);
    }
    struct stat st;
    for (int i = 0; i < 1000 && !(stat(part, &st) == 0 && st.st_size == 16); i++) {
        struct timespec ts = { 0, 10000000 };
        nanosleep(&ts, NULL);
    }
    assert_int_equal(st.st_size, 16);
    uint64_t t0 = pl_time_ns();
    kill(pid, SIGINT);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true((double)(pl_time_ns() - t0) / 1e9 < 3.0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    char *err = cli_slurp(errf, NULL);
    assert_non_null(err);
    assert_non_null(strstr(err, "interrupted"));
    free(err);
    assert_int_equal(stat(part, &st), 0);
    hs_route(hs, "/slow/cli-c.gguf", HS_OK, blob, blob_len, NULL, 0);
    cli_result r = run("pull %s", url);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.err, "resuming at 16 B"));
    char range[64];
    hs_last_range(hs, "/slow/cli-c.gguf", range, sizeof range);
    assert_string_equal(range, "bytes=16-");
    cli_result_free(&r);
}

/* `inspect NAME` loads a GGUF from the store; `list` reads its quant from the file. */
static void test_cli_inspect_by_name(void **state) {
    (void)state;
    const char *fixdir = getenv("PL_FIXTURE_DIR");
    char fpath[512];
    snprintf(fpath, sizeof fpath, "%s/tiny-f16.gguf", fixdir ? fixdir : "");
    FILE *f = fopen(fpath, "rb");
    if (!f) {
        skip();
        return;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    hs_route(hs, "/m/tiny-model.gguf", HS_OK, b, (size_t)n, NULL, 0);
    free(b);
    cli_result r = run("pull -q %s/m/tiny-model.gguf", endpoint);
    assert_int_equal(r.code, 0);
    cli_result_free(&r);
    r = run("inspect --no-tensors tiny-model");
    assert_int_equal(r.code, 0);
    char want[600];
    snprintf(want, sizeof want, "file:        %s/tiny-model.gguf\n", store);
    assert_non_null(strstr(r.out, want));
    cli_result_free(&r);
    r = run("list");
    assert_non_null(strstr(r.out, "F16"));
    cli_result_free(&r);
    /* the same ids by name as by path */
    cli_result by_path = run("tokenize --ids -m '%s/tiny-model.gguf' 'hello world'", store);
    r = run("tokenize --ids -m tiny-model 'hello world'");
    assert_int_equal(by_path.code, 0);
    assert_int_equal(r.code, 0);
    assert_true(strlen(r.out) > 1);
    assert_string_equal(r.out, by_path.out);
    cli_result_free(&r);
    cli_result_free(&by_path);
    r = run("inspect no-such-model");
    assert_int_equal(r.code, 1);
    cli_result_free(&r);
}

/* `make run` (scripts/run.sh) when the model cannot be had: pull is tried,
 * its error shown, then the paragraph on how to get a model, exit 1. */
static void test_make_run_without_model(void **state) {
    (void)state;
    const char *src = getenv("PL_SOURCE_DIR");
    if (!src) skip();
    char build[512];
    snprintf(build, sizeof build, "%s", bin);
    *strrchr(build, '/') = '\0';
    char cmd[2048], errf[300];
    snprintf(errf, sizeof errf, "%s/run-err", tmpdir);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && MODEL=hf://nobody/none/missing.gguf BUILD='%s' PARLEY_HOME='%s' PARLEY_HF_ENDPOINT='%s' "
             "'%s/scripts/run.sh' >/dev/null 2>'%s' </dev/null",
             tmpdir, build, store, endpoint, src, errf);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    char *err = cli_slurp(errf, NULL);
    assert_non_null(err);
    assert_non_null(strstr(err, "make run: model 'hf://nobody/none/missing.gguf' is not in the store; pulling it."));
    assert_non_null(strstr(err, "HTTP 404"));
    assert_non_null(strstr(err, "make run: no model."));
    assert_non_null(strstr(err, "pull --list"));
    free(err);
}

int test_store_cli_main(void) {
    bin = getenv("PL_BIN");
    if (!bin) {
        fprintf(stderr, "PL_BIN not set; skipping the CLI tests\n");
        return 0;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pl_store_cli_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    snprintf(store, sizeof store, "%s/models", tmpdir);
    hs = hs_start();
    if (!hs) return 1;
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", hs_port(hs));
    blob = malloc(blob_len);
    for (size_t i = 0; i < blob_len; i++) blob[i] = (unsigned char)(i * 2654435761u >> 13);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_pull_list_rm),
        cmocka_unit_test(test_cli_errors),
        cmocka_unit_test(test_cli_interrupt),
        cmocka_unit_test(test_cli_inspect_by_name),
        cmocka_unit_test(test_make_run_without_model),
    };
    int rc = cmocka_run_group_tests_name("store_cli", tests, NULL, NULL);
    hs_stop(hs);
    free(blob);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return rc;
}
