/*
 * test_chat_cli.c - `parley chat` end to end on the tiny fixture: -p, piped
 * stdin (one turn per line, commands), -p - (all of stdin), /save and /load,
 * exit codes, and that stdout carries exactly the answers.
 *
 * The expected answers come from the library (pl_session, greedy) with the
 * same settings the CLI derives: n_ctx 512 (the model's trained length caps
 * the default 4096), -n max tokens, one thread.
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
#include "parley/engine.h"
#include "parley/model.h"

static const char *bin;
static char model_path[512], tmpdir[256];
static pl_ctx *ctx;
static pl_model *model;
static pl_engine *engine;

/* Run `parley chat ARGS` with STDIN's text on stdin in an empty environment (no
 * user config: HOME and XDG_CONFIG_HOME point at the temp dir). stdin NULL:
 * /dev/null. */
static cli_result run(const char *stdin_text, const char *fmt, ...) {
    char args[2048], chat_args[2100], pre[900], in[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(chat_args, sizeof chat_args, "chat %s", args);
    snprintf(in, sizeof in, "%s/in", tmpdir);
    FILE *f = fopen(in, "wb");
    assert_non_null(f);
    if (stdin_text) fputs(stdin_text, f);
    fclose(f);
    snprintf(pre, sizeof pre, "cd '%s' && env -i HOME='%s' XDG_CONFIG_HOME='%s'", tmpdir, tmpdir, tmpdir);
    return cli_run(tmpdir, bin, pre, stdin_text ? in : NULL, chat_args);
}

typedef struct collect {
    char text[4096];
    size_t len;
} collect;

static void on_text(void *ud, pl_channel ch, const char *t, size_t len) {
    collect *c = ud;
    if (ch != PL_CHANNEL_CONTENT) return;
    assert_true(c->len + len < sizeof c->text);
    memcpy(c->text + c->len, t, len);
    c->len += len;
    c->text[c->len] = 0;
}

/* The greedy answers of the library to the given turns, each followed by "\n". */
static void expected(const char *system, const char *const *turns, size_t n, int32_t max_tokens, char *out,
                     size_t cap) {
    pl_session_params p = pl_session_default_params();
    p.n_ctx = 512;
    p.n_threads = 1;
    p.sampling.temperature = 0;
    p.sampling.max_tokens = max_tokens;
    pl_session *s = NULL;
    assert_int_equal(pl_session_init(ctx, engine, &p, &s), PL_OK);
    if (system) assert_int_equal(pl_conv_set_system(pl_session_conv(s), system), PL_OK);
    size_t len = 0;
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        collect c = { .len = 0 };
        pl_turn_callbacks cb = { .on_text = on_text, .ud = &c };
        assert_int_equal(pl_session_turn(s, turns[i], strlen(turns[i]), &cb, NULL), PL_OK);
        assert_true(len + c.len + 2 < cap);
        memcpy(out + len, c.text, c.len);
        len += c.len;
        out[len++] = '\n';
        out[len] = 0;
    }
    pl_session_free(s);
}

#define COMMON "-m '%s' --temp 0 -n 8 -t 1"

static void test_one_shot(void **state) {
    (void)state;
    char want[8192];
    const char *turns[] = { "hello" };
    expected(NULL, turns, 1, 8, want, sizeof want);
    cli_result r = run(NULL, COMMON " -p hello", model_path);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, want);
    /* one stats line: 24 prompt tokens, nothing cached */
    assert_non_null(strstr(r.err, "[prompt 24 tokens, 0 cached | ttft "));
    cli_result_free(&r);
    /* --no-stats: stderr stays empty */
    r = run(NULL, COMMON " --no-stats -p hello", model_path);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, want);
    assert_string_equal(r.err, "");
    cli_result_free(&r);
    /* -p -: all of stdin is the prompt (its final newline dropped) */
    const char *multi[] = { "hello\nthere" };
    expected("be brief", multi, 1, 8, want, sizeof want);
    r = run("hello\nthere\n", COMMON " --system 'be brief' -p -", model_path);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, want);
    cli_result_free(&r);
}

static void test_piped(void **state) {
    (void)state;
    char want[8192];
    const char *turns[] = { "hello", "again" };
    expected("sys", turns, 2, 8, want, sizeof want);
    /* empty lines are skipped; /stats and /save go to stderr and a file */
    cli_result r = run("hello\n\n/stats\nagain\n/save conv.json\n", COMMON " --system sys", model_path);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, want);
    assert_non_null(strstr(r.err, "[prompt 37 tokens, 0 cached")); /* 13 for the system message */
    assert_non_null(strstr(r.err, "context: "));
    assert_non_null(strstr(r.err, "saved 5 messages to conv.json"));
    /* the second turn reused the first turn's prompt: "cached N" with N >= 24 */
    const char *second = strstr(strstr(r.err, "[prompt ") + 1, "[prompt ");
    assert_non_null(second);
    int prompt = 0, cached = 0;
    assert_int_equal(sscanf(second, "[prompt %d tokens, %d cached", &prompt, &cached), 2);
    assert_true(cached >= 13 + 24 && cached < prompt);
    cli_result_free(&r);

    char path[512];
    snprintf(path, sizeof path, "%s/conv.json", tmpdir);
    char *json = cli_slurp(path, NULL);
    assert_non_null(json);
    pl_conv *c = NULL;
    assert_int_equal(pl_conv_init(ctx, &c), PL_OK);
    assert_int_equal(pl_conv_from_json(c, json, strlen(json)), PL_OK);
    assert_string_equal(pl_conv_system(c), "sys");
    assert_int_equal(pl_conv_count(c), 4);
    assert_string_equal(pl_conv_content(c, 0), "hello");
    assert_string_equal(pl_conv_content(c, 2), "again");
    free(json);

    /* /load it into a new run and continue: the same as three turns in one run */
    const char *three[] = { "hello", "again", "third" };
    char want3[8192];
    expected("sys", three, 3, 8, want3, sizeof want3);
    r = run("/load conv.json\nthird\n", COMMON, model_path);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, want3 + strlen(want));
    assert_non_null(strstr(r.err, "loaded 4 messages"));
    cli_result_free(&r);
    pl_conv_free(c);

    /* /reset, then the first turn again gives the first answer again */
    const char *one[] = { "hello" };
    char want1[4096];
    expected(NULL, one, 1, 8, want1, sizeof want1);
    r = run("hello\n/reset\nhello\n/quit\nnever\n", COMMON, model_path);
    assert_int_equal(r.code, 0);
    char both[8192];
    snprintf(both, sizeof both, "%s%s", want1, want1);
    assert_string_equal(r.out, both);
    cli_result_free(&r);
}

static void test_errors(void **state) {
    (void)state;
    cli_result r = run(NULL, "--help");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "usage: parley chat"));
    cli_result_free(&r);
    r = run(NULL, "-m '%s/none.gguf' -p hi", tmpdir);
    assert_int_equal(r.code, 1);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "parley chat: "));
    cli_result_free(&r);
    r = run(NULL, COMMON " --bogus", model_path);
    assert_int_equal(r.code, 2);
    cli_result_free(&r);
    r = run(NULL, COMMON " --reasoning loud -p hi", model_path);
    assert_int_equal(r.code, 2);
    cli_result_free(&r);
    r = run(NULL, COMMON " --chat-template nosuch -p hi", model_path);
    assert_int_equal(r.code, 2);
    cli_result_free(&r);
    r = run(NULL, COMMON " -c 600000000 -p hi", model_path);
    assert_int_equal(r.code, 2);
    cli_result_free(&r);
    /* a bad command or an unreadable file in a pipe: the turns still run, exit 1 */
    char want[4096];
    const char *one[] = { "hello" };
    expected(NULL, one, 1, 8, want, sizeof want);
    r = run("/bogus\n/load nosuch.json\nhello\n", COMMON, model_path);
    assert_int_equal(r.code, 1);
    assert_string_equal(r.out, want);
    assert_non_null(strstr(r.err, "unknown command '/bogus'"));
    assert_non_null(strstr(r.err, "nosuch.json"));
    cli_result_free(&r);
    /* a context too small for max_tokens */
    r = run(NULL, "-m '%s' -c 16 -n 16 -p hi", model_path);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "no room"));
    cli_result_free(&r);
    /* a template file, and one that does not compile */
    char tpath[512];
    snprintf(tpath, sizeof tpath, "%s/t.jinja", tmpdir);
    FILE *f = fopen(tpath, "w");
    assert_non_null(f);
    fputs("{% for m in messages %}{{ m.content }}{% endfor %}{% if %}", f);
    fclose(f);
    r = run(NULL, COMMON " --chat-template-file t.jinja -p hi", model_path);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "line 1"));
    cli_result_free(&r);
}

int main(void) {
    bin = getenv("PL_BIN");
    const char *fixdir = getenv("PL_FIXTURE_DIR");
    if (!bin || !fixdir) {
        fprintf(stderr, "test_chat_cli: PL_BIN and PL_FIXTURE_DIR must be set (run through ctest)\n");
        return 1;
    }
    snprintf(model_path, sizeof model_path, "%s/tiny-f32.gguf", fixdir);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pl_test_chat.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_level = PL_LOG_LEVEL_WARN;
    if (pl_ctx_init(&ctx, &cp) != PL_OK || pl_model_load(ctx, model_path, NULL, &model) != PL_OK ||
        pl_engine_init(ctx, model, NULL, &engine) != PL_OK) {
        fprintf(stderr, "test_chat_cli: %s\n", pl_ctx_last_error(ctx));
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_shot),
        cmocka_unit_test(test_piped),
        cmocka_unit_test(test_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    pl_engine_free(engine);
    pl_model_free(model);
    pl_ctx_free(ctx);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "test_chat_cli: could not remove %s\n", tmpdir);
    return rc;
}
