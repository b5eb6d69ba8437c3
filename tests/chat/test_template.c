/*
 * test_template.c - chat templates: the Jinja semantics case table, the
 * reference renderings in $PL_SHARED_DIR/templates, the named built-ins,
 * limits against hostile templates, allocation failures, concurrent renders,
 * the injectable clock and the `parley template` command.
 *
 * Exit status: failures -> 1; all passed but $PL_SHARED_DIR absent (golden
 * and CLI-golden tests skipped) -> 77; otherwise 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "parley/gguf.h"
#include "parley/template.h"
#include "template_cases.h"

static pl_ctx *ctx;

static const char *shared_dir(void) {
    const char *d = getenv("PL_SHARED_DIR");
    if (!d || !*d) return NULL;
    char p[1024];
    snprintf(p, sizeof p, "%s/templates", d);
    DIR *dir = opendir(p);
    if (!dir) return NULL;
    closedir(dir);
    return d;
}

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (b) b[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

/* Compile + render src with a JSON context (messages, add_generation_prompt
 * and every key as a variable). Returns the status; *out is malloc'd text
 * (the output, or the error message). */
static pl_status render_ctx(pl_ctx *c, const char *src, const char *ctx_json, const pl_template_limits *lim,
                            char **out) {
    cJSON *cj = ctx_json ? cJSON_Parse(ctx_json) : cJSON_CreateObject();
    assert_non_null(cj);
    pl_template *t = NULL;
    pl_status st = pl_template_compile(c, src, strlen(src), &t);
    if (st == PL_OK) {
        pl_template_params p = { .now = "26 Jul 2024" };
        p.messages = cJSON_GetObjectItemCaseSensitive(cj, "messages");
        p.vars = cj;
        p.add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cj, "add_generation_prompt"));
        if (lim) p.limits = *lim;
        pl_template_buf b = { .ctx = c };
        st = pl_template_render(t, c, &p, &b);
        if (st == PL_OK) *out = strdup(b.data ? b.data : "");
        pl_template_buf_free(&b);
    }
    if (st != PL_OK) *out = strdup(pl_ctx_last_error(c));
    pl_template_free(t);
    cJSON_Delete(cj);
    return st;
}

/* "... line L, column C ..." from an error message */
static void err_pos(const char *msg, int *line, int *col) {
    *line = *col = -1;
    const char *p = strstr(msg, "line ");
    if (p) sscanf(p, "line %d, column %d", line, col);
}

/* ---- the case table ---- */

static void test_cases(void **state) {
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < template_case_count; i++) {
        const template_case *tc = &template_cases[i];
        char *out = NULL;
        pl_status st = render_ctx(ctx, tc->tmpl, tc->ctx, NULL, &out);
        bool ok = st == tc->st;
        if (ok && st == PL_OK) ok = strcmp(out, tc->want) == 0;
        if (ok && st != PL_OK) {
            int line, col;
            err_pos(out, &line, &col);
            ok = strstr(out, tc->err) != NULL && (tc->line == 0 || tc->line == line) && (tc->col == 0 || tc->col == col);
        }
        if (!ok) {
            failures++;
            print_error("case %zu: %s\n  status %s (want %s)\n  got:  [%s]\n  want: [%s] line %d col %d\n", i,
                        tc->tmpl, pl_status_name(st), pl_status_name(tc->st), out,
                        tc->st == PL_OK ? tc->want : tc->err, tc->line, tc->col);
        }
        free(out);
    }
    assert_int_equal(failures, 0);
}

/* ---- $PL_SHARED_DIR/templates: byte-identical to the reference renders ---- */

static int render_file_case(const char *dir, const char *name) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = slurp(path, NULL);
    assert_non_null(text);
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(j, "expected");
    const char *tname = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "template"));
    assert_non_null(tname);
    snprintf(path, sizeof path, "%s/%s", dir, tname);
    size_t len;
    char *src = slurp(path, &len);
    assert_non_null(src);
    pl_template *t = NULL;
    assert_int_equal(pl_template_compile(ctx, src, len, &t), PL_OK);
    pl_template_params p = {
        .messages = cJSON_GetObjectItemCaseSensitive(j, "messages"),
        .add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "add_generation_prompt")),
        .bos_token = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "bos_token")),
        .eos_token = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "eos_token")),
        .now = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "strftime_now")),
    };
    pl_template_buf b = { .ctx = ctx };
    pl_status st = pl_template_render(t, ctx, &p, &b);
    int bad = 0;
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(exp, "ok"))) {
        const char *want = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(exp, "text"));
        if (st != PL_OK || strcmp(b.data ? b.data : "", want) != 0) {
            print_error("%s: got [%s] (%s), want [%s]\n", name, st == PL_OK ? b.data : pl_ctx_last_error(ctx),
                        pl_status_name(st), want);
            bad = 1;
        }
    } else {
        /* the template raised: we must refuse, and say why */
        const char *err = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(exp, "error"));
        const char *why = err && strchr(err, ':') ? strchr(err, ':') + 2 : err;
        if (st != PL_ERR_INVALID_ARG || !why || !strstr(pl_ctx_last_error(ctx), why)) {
            print_error("%s: expected a refusal (%s), got %s [%s]\n", name, err ? err : "?", pl_status_name(st),
                        pl_ctx_last_error(ctx));
            bad = 1;
        }
        assert_int_equal(b.len, 0);
    }
    pl_template_buf_free(&b);
    pl_template_free(t);
    free(src);
    free(text);
    cJSON_Delete(j);
    return bad;
}

static void test_golden(void **state) {
    (void)state;
    const char *sd = shared_dir();
    if (!sd) skip();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/templates", sd);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0, bad = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0) continue;
        bad += render_file_case(dir, e->d_name);
        n++;
    }
    closedir(d);
    assert_true(n > 0);
    assert_int_equal(bad, 0);
}

/* ---- named built-ins ---- */

#define CONV "{\"messages\": [{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", \"content\": \"U1\"}," \
             " {\"role\": \"assistant\", \"content\": \"<think>r</think>A1\"}, {\"role\": \"user\", \"content\": \"U2\"}]," \
             " \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}"

static void test_builtins(void **state) {
    (void)state;
    /* expected renders, written from each format's public description */
    static const struct { const char *name, *want; } rows[] = {
        { "chatml", "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\n"
                    "<think>r</think>A1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n" },
        { "llama3", "<s><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
                    "U1<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<think>r</think>A1<|eot_id|>"
                    "<|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n" },
        { "llama2", "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST] <think>r</think>A1 </s><s>[INST] U2 [/INST]" },
        { "mistral", "<s>[INST] S\n\nU1 [/INST] <think>r</think>A1</s>[INST] U2 [/INST]" },
        { "phi3", "<|system|>\nS<|end|>\n<|user|>\nU1<|end|>\n<|assistant|>\n<think>r</think>A1<|end|>\n<|user|>\nU2<|end|>\n"
                  "<|assistant|>\n" },
        { "gemma", "<s><start_of_turn>user\nS\n\nU1<end_of_turn>\n<start_of_turn>model\n<think>r</think>A1<end_of_turn>\n"
                   "<start_of_turn>user\nU2<end_of_turn>\n<start_of_turn>model\n" },
        { "deepseek-r1", "<s>S<｜User｜>U1<｜Assistant｜>A1<｜end▁of▁sentence｜><｜User｜>U2<｜Assistant｜><think>\n" },
    };
    size_t n = sizeof rows / sizeof rows[0];
    for (size_t i = 0; i < n; i++) {
        const char *src = pl_template_builtin(rows[i].name);
        assert_non_null(src);
        char *out = NULL;
        pl_status st = render_ctx(ctx, src, CONV, NULL, &out);
        if (st != PL_OK || strcmp(out, rows[i].want) != 0) print_error("%s: [%s]\n", rows[i].name, out);
        assert_int_equal(st, PL_OK);
        assert_string_equal(out, rows[i].want);
        free(out);
        assert_string_equal(pl_template_builtin_name(i), rows[i].name);
    }
    assert_null(pl_template_builtin_name(n));
    assert_ptr_equal(pl_template_builtin("ChatML"), pl_template_builtin("chatml"));
    assert_ptr_equal(pl_template_builtin(PL_TEMPLATE_DEFAULT_NAME), pl_template_builtin("chatml"));
    assert_null(pl_template_builtin("nope"));
    assert_null(pl_template_builtin(NULL));
    /* formats that need alternating turns refuse two user turns in a row */
    static const char *alternating[] = { "llama2", "mistral", "gemma" };
    for (size_t i = 0; i < 3; i++) {
        char *out = NULL;
        pl_status st = render_ctx(ctx, pl_template_builtin(alternating[i]),
                                  "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": \"b\"}]}",
                                  NULL, &out);
        assert_int_equal(st, PL_ERR_INVALID_ARG);
        assert_non_null(strstr(out, "must alternate"));
        free(out);
    }
    /* content as a list of parts; no bos/eos given: renders as empty */
    char *out = NULL;
    assert_int_equal(render_ctx(ctx, pl_template_builtin("llama3"),
                                "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"a \"},"
                                " {\"type\": \"image\"}, {\"type\": \"text\", \"text\": \"b\"}]}]}",
                                NULL, &out),
                     PL_OK);
    assert_string_equal(out, "<|start_header_id|>user<|end_header_id|>\n\na b<|eot_id|>");
    free(out);
}

/* ---- API contract ---- */

static void test_api(void **state) {
    (void)state;
    pl_template *t = NULL;
    pl_template_free(NULL);
    pl_template_buf_free(NULL);
    assert_int_equal(pl_template_compile(ctx, NULL, 3, &t), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_template_compile(ctx, "x", 1, NULL), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_template_compile(ctx, "{{ a }}|{% if b %}", 8, &t), PL_OK); /* len, not NUL, ends it */
    pl_template_buf b = { .ctx = ctx };
    pl_template_params p = { 0 };
    assert_int_equal(pl_template_render(t, ctx, NULL, &b), PL_ERR_INVALID_ARG);
    /* vars; the named fields win over a var of the same name */
    cJSON *vars = cJSON_Parse("{\"a\": \"va\", \"bos_token\": \"vb\"}");
    p.vars = vars;
    assert_int_equal(pl_template_render(t, ctx, &p, &b), PL_OK);
    assert_string_equal(b.data, "va|");
    /* render appends */
    assert_int_equal(pl_template_render(t, ctx, &p, &b), PL_OK);
    assert_string_equal(b.data, "va|va|");
    pl_template_free(t);
    assert_int_equal(pl_template_compile(ctx, "{{ bos_token }}{{ messages | length }}", 38, &t), PL_OK);
    p.bos_token = "pb";
    b.len = 0;
    assert_int_equal(pl_template_render(t, ctx, &p, &b), PL_OK);
    assert_string_equal(b.data, "pb0");
    /* messages must be an array, vars an object */
    cJSON *obj = cJSON_CreateObject();
    p.messages = obj;
    assert_int_equal(pl_template_render(t, ctx, &p, &b), PL_ERR_INVALID_ARG);
    p.messages = NULL;
    p.vars = cJSON_GetObjectItemCaseSensitive(vars, "a");
    assert_int_equal(pl_template_render(t, ctx, &p, &b), PL_ERR_INVALID_ARG);
    pl_template_free(t);
    /* a failed render leaves the buffer as it was */
    p.vars = NULL;
    assert_int_equal(pl_template_compile(ctx, "partial{{ raise_exception('no') }}", 34, &t), PL_OK);
    b.len = 0;
    pl_template_buf_free(&b);
    b = (pl_template_buf){ .ctx = ctx };
    assert_int_equal(pl_template_render(t, ctx, &p, &b), PL_ERR_INVALID_ARG);
    assert_int_equal(b.len, 0);
    assert_string_equal(pl_ctx_last_error(ctx), "template refused: no (line 1, column 11)");
    pl_template_free(t);
    pl_template_buf_free(&b);
    cJSON_Delete(obj);
    cJSON_Delete(vars);
}

/* ---- limits against hostile templates ---- */

static void expect_limit(const char *src, const pl_template_limits *lim, const char *what) {
    char *out = NULL;
    pl_status st = render_ctx(ctx, src, NULL, lim, &out);
    if (st != PL_ERR_RANGE || !strstr(out, what)) print_error("%s -> %s [%s]\n", src, pl_status_name(st), out);
    assert_int_equal(st, PL_ERR_RANGE);
    assert_non_null(strstr(out, what));
    free(out);
}

static void test_limits(void **state) {
    (void)state;
    pl_template_limits lim = { .max_output = 100 };
    expect_limit("{% for i in range(1000) %}xx{% endfor %}", &lim, "output exceeds");
    lim = (pl_template_limits){ .max_steps = 5000 };
    expect_limit("{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}", &lim, "work limit");
    expect_limit("{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}", NULL, "nested too deeply");
    lim = (pl_template_limits){ .max_memory = 1 << 20 };
    expect_limit("{% set ns = namespace(s='x') %}{% for i in range(30) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
                 &lim, "memory");
    expect_limit("{{ 'x' * 9000000000000000000 }}", NULL, "too large");
    expect_limit("{{ range(100000000000) | length }}", NULL, "too large");
    /* deeply nested source is refused at compile time, with a position */
    char src[4096];
    size_t k = 0;
    k += (size_t)snprintf(src, sizeof src, "{{ ");
    for (int i = 0; i < 1000; i++) src[k++] = '(';
    src[k] = 0;
    pl_template *t = NULL;
    assert_int_equal(pl_template_compile(ctx, src, k, &t), PL_ERR_RANGE);
    assert_null(t);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "nested too deeply"));
    /* so is an oversized source */
    size_t big = (1u << 20) + 1;
    char *huge = malloc(big);
    memset(huge, 'a', big);
    assert_int_equal(pl_template_compile(ctx, huge, big, &t), PL_ERR_RANGE);
    free(huge);
    /* values nested deeper than the printer walks are refused, not a stack overflow */
    expect_limit("{% set ns = namespace(v=1) %}{% for i in range(2000) %}{% set ns.v = [ns.v] %}{% endfor %}{{ ns.v }}",
                 NULL, "nested too deeply");
}

/* ---- allocation failures: every failure point gives an error, never a crash or leak ---- */

static void test_alloc_failures(void **state) {
    (void)state;
    static const char src[] = "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
                              "{{ m.role | upper ~ ': ' ~ m.content | trim }}{% endfor %}{{ messages | tojson }}";
    cJSON *msgs = cJSON_Parse("[{\"role\": \"user\", \"content\": \" hi \"}, {\"role\": \"assistant\", \"content\": \"yo\"}]");
    for (int64_t fail = 1;; fail++) {
        pl_alloc_tracker tr;
        pl_alloc_tracker_reset(&tr);
        pl_ctx_params cp = pl_ctx_default_params();
        cp.alloc = pl_track_alloc;
        cp.alloc_ud = &tr;
        cp.log_level = PL_LOG_LEVEL_NONE;
        pl_ctx *c = NULL;
        assert_int_equal(pl_ctx_init(&c, &cp), PL_OK);
        tr.fail_at = tr.n_calls + fail;
        pl_template *t = NULL;
        pl_status st = pl_template_compile(c, src, sizeof src - 1, &t);
        pl_template_buf b = { .ctx = c };
        if (st == PL_OK) {
            pl_template_params p = { .messages = msgs };
            st = pl_template_render(t, c, &p, &b);
            if (st == PL_OK) assert_string_equal(b.data, "USER: hiASSISTANT: yo[{\"role\": \"user\", \"content\": \" hi \"}, "
                                                         "{\"role\": \"assistant\", \"content\": \"yo\"}]");
        }
        if (st != PL_OK) assert_int_equal(st, PL_ERR_NOMEM);
        pl_template_buf_free(&b);
        pl_template_free(t);
        int64_t calls = tr.n_calls;
        pl_ctx_free(c);
        assert_int_equal(tr.in_use, 0);
        if (st == PL_OK && calls < tr.fail_at) break; /* no allocation failed: every point covered */
        assert_true(fail < 10000);
    }
    cJSON_Delete(msgs);
}

/* ---- one compiled template, many threads ---- */

typedef struct thread_arg {
    const pl_template *t;
    const cJSON       *msgs;
    char               out[512];
    int                bad;
} thread_arg;

static void *render_thread(void *ud) {
    thread_arg *a = ud;
    pl_ctx *c = NULL;
    if (pl_ctx_init(&c, NULL) != PL_OK) { a->bad = 1; return NULL; }
    for (int i = 0; i < 200; i++) {
        pl_template_buf b = { .ctx = c };
        pl_template_params p = { .messages = a->msgs, .add_generation_prompt = true };
        if (pl_template_render(a->t, c, &p, &b) != PL_OK) a->bad = 1;
        else if (i == 0) snprintf(a->out, sizeof a->out, "%s", b.data);
        else if (strcmp(a->out, b.data) != 0) a->bad = 1;
        pl_template_buf_free(&b);
    }
    pl_ctx_free(c);
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    const char *src = pl_template_builtin("chatml");
    pl_template *t = NULL;
    assert_int_equal(pl_template_compile(ctx, src, strlen(src), &t), PL_OK);
    cJSON *msgs = cJSON_Parse("[{\"role\": \"user\", \"content\": \"hi\"}]");
    thread_arg args[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){ .t = t, .msgs = msgs };
        assert_int_equal(pthread_create(&th[i], NULL, render_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].bad, 0);
        assert_string_equal(args[i].out, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    }
    cJSON_Delete(msgs);
    pl_template_free(t);
}

/* ---- strftime_now with an injected clock ---- */

static int64_t fixed_clock(void *ud) { return *(const int64_t *)ud; }

static void test_clock(void **state) {
    (void)state;
    setenv("TZ", "UTC", 1);
    static const char src[] = "{{ strftime_now('%Y-%m-%d %H:%M|%d %b %Y|%Q|%%') }}";
    pl_template *t = NULL;
    assert_int_equal(pl_template_compile(ctx, src, sizeof src - 1, &t), PL_OK);
    int64_t when = 1721995200; /* 2024-07-26 12:00:00 UTC */
    pl_template_params p = { .clock = fixed_clock, .clock_ud = &when };
    pl_template_buf b = { .ctx = ctx };
    assert_int_equal(pl_template_render(t, ctx, &p, &b), PL_OK);
    assert_string_equal(b.data, "2024-07-26 12:00|26 Jul 2024|%Q|%");
    p.now = "fixed";
    b.len = 0;
    assert_int_equal(pl_template_render(t, ctx, &p, &b), PL_OK);
    assert_string_equal(b.data, "fixed");
    pl_template_buf_free(&b);
    pl_template_free(t);
}

/* ---- the CLI ---- */

static int run_cli(const char *args, char **out) {
    const char *bin = getenv("PL_BIN");
    char cmd[4096], path[] = "/tmp/pl_tmpl_outXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    snprintf(cmd, sizeof cmd, "'%s' template %s >'%s' 2>&1 </dev/null", bin, args, path);
    int st = system(cmd);
    *out = slurp(path, NULL);
    unlink(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_cli(void **state) {
    (void)state;
    if (!getenv("PL_BIN")) skip();
    char conv[] = "/tmp/pl_tmpl_convXXXXXX";
    int fd = mkstemp(conv);
    assert_true(fd >= 0);
    static const char text[] = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"bos_token\": \"<B>\","
                               " \"greeting\": \"hello\"}";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    char args[2048], *out = NULL;
    snprintf(args, sizeof args, "--name chatml --messages %s --add-generation-prompt", conv);
    assert_int_equal(run_cli(args, &out), 0);
    assert_string_equal(out, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"); /* no added newline */
    free(out);
    snprintf(args, sizeof args, "--name llama3 --messages %s --bos-token '<F>'", conv);
    assert_int_equal(run_cli(args, &out), 0);
    assert_string_equal(out, "<F><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>");
    free(out);
    /* --file, and extra JSON fields become variables */
    char tf[] = "/tmp/pl_tmpl_fileXXXXXX";
    fd = mkstemp(tf);
    static const char tsrc[] = "{{ bos_token }}{{ greeting }} {{ messages[0].content }}\n";
    assert_int_equal(write(fd, tsrc, sizeof tsrc - 1), (ssize_t)(sizeof tsrc - 1));
    close(fd);
    snprintf(args, sizeof args, "--file %s --messages %s", tf, conv);
    assert_int_equal(run_cli(args, &out), 0);
    assert_string_equal(out, "<B>hello hi");
    free(out);
    /* a refusal is exit 1 with the template's message */
    snprintf(args, sizeof args, "--name gemma --messages %s", conv);
    static const char bad[] = "[{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": \"b\"}]";
    fd = open(conv, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, bad, sizeof bad - 1), (ssize_t)(sizeof bad - 1));
    close(fd);
    assert_int_equal(run_cli(args, &out), 1);
    assert_non_null(strstr(out, "parley template: template refused: Conversation roles must alternate"));
    free(out);
    /* usage errors */
    assert_int_equal(run_cli("--name chatml", &out), 2);
    free(out);
    snprintf(args, sizeof args, "--name nosuch --messages %s", conv);
    assert_int_equal(run_cli(args, &out), 2);
    free(out);
    unlink(tf);
    /* -m: the GGUF's chat template and BOS/EOS token text; --name overrides the template */
    char model[] = "/tmp/pl_tmpl_modelXXXXXX";
    fd = mkstemp(model);
    close(fd);
    pl_gguf_writer *w = NULL;
    static const char *const toks[] = { "<unk>", "<B>", "<E>" };
    assert_int_equal(pl_gguf_writer_init(ctx, &w), PL_OK);
    assert_int_equal(pl_gguf_writer_set_str(w, "tokenizer.chat_template", "{{ bos_token }}|{{ messages | length }}|{{ eos_token }}"), PL_OK);
    assert_int_equal(pl_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 3), PL_OK);
    assert_int_equal(pl_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1), PL_OK);
    assert_int_equal(pl_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2), PL_OK);
    assert_int_equal(pl_gguf_writer_write_file(w, model), PL_OK);
    pl_gguf_writer_free(w);
    static const char one[] = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}";
    fd = open(conv, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, one, sizeof one - 1), (ssize_t)(sizeof one - 1));
    close(fd);
    snprintf(args, sizeof args, "-m %s --messages %s", model, conv);
    assert_int_equal(run_cli(args, &out), 0);
    assert_string_equal(out, "<B>|1|<E>");
    free(out);
    snprintf(args, sizeof args, "-m %s --name llama3 --messages %s --eos-token X", model, conv);
    assert_int_equal(run_cli(args, &out), 0);
    assert_string_equal(out, "<B><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>");
    free(out);
    unlink(model);
    unlink(conv);
    /* a reference file through the CLI: byte-identical stdout */
    const char *sd = shared_dir();
    if (!sd) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/templates/meta-llama-Llama-3.2-3B-Instruct.basic.json", sd);
    char *ref = slurp(path, NULL);
    assert_non_null(ref);
    cJSON *j = cJSON_Parse(ref);
    const char *want = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "expected"), "text"));
    snprintf(args, sizeof args, "--messages '%s'", path);
    assert_int_equal(run_cli(args, &out), 0);
    assert_string_equal(out, want);
    free(out);
    cJSON_Delete(j);
    free(ref);
}

int main(void) {
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_level = PL_LOG_LEVEL_NONE;
    if (pl_ctx_init(&ctx, &cp) != PL_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),      cmocka_unit_test(test_golden),         cmocka_unit_test(test_builtins),
        cmocka_unit_test(test_api),        cmocka_unit_test(test_limits),         cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_threads),    cmocka_unit_test(test_clock),          cmocka_unit_test(test_cli),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    pl_ctx_free(ctx);
    if (failed) return 1;
    return shared_dir() ? 0 : 77;
}
