/*
 * test_config.c - the config key table, precedence (flag > env > file >
 * default, in any load order), every error kind with its FILE:LINE, YAML edge
 * cases (anchors and aliases, several documents, non-mapping roots, huge and
 * deeply nested input), the --print and example outputs, and allocation
 * failures. Expected values are written out by hand here, not read from the
 * table under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "parley/config.h"

static pl_config *fresh(void) {
    pl_config *c = NULL;
    assert_int_equal(pl_config_init(NULL, &c), PL_OK);
    return c;
}

static pl_status load(pl_config *c, const char *text) { return pl_config_load_yaml(c, "t.yaml", text, strlen(text)); }

static void expect_error(const char *text, pl_status want_st, const char *want_msg) {
    pl_config *c = fresh();
    pl_status st = load(c, text);
    if (st != want_st || !strstr(pl_config_last_error(c), want_msg))
        fail_msg("for:\n%s\ngot %d '%s', want %d containing '%s'", text, st, pl_config_last_error(c), want_st,
                 want_msg);
    /* nothing from a bad file is applied */
    assert_int_equal(pl_config_get(c)->llm.n_ctx, 4096);
    assert_int_equal(pl_config_source_of(c, pl_config_key_find("llm.n_ctx")), PL_CONFIG_SOURCE_DEFAULT);
    pl_config_free(c);
}

static void origin_is(pl_config *c, const char *key, const char *want) {
    char buf[256];
    pl_config_origin(c, pl_config_key_find(key), buf, sizeof buf);
    assert_string_equal(buf, want);
}

/* ---- the table and defaults ---- */

static void test_defaults_and_table(void **state) {
    (void)state;
    pl_config *c = fresh();
    const pl_config_values *v = pl_config_get(c);
    assert_string_equal(v->llm.model, "qwen2.5-0.5b-instruct:q4_k_m");
    assert_int_equal(v->llm.n_ctx, 4096);
    assert_int_equal(v->llm.n_batch, 512);
    assert_int_equal(v->llm.n_threads, 0);
    assert_true(v->llm.use_mmap);
    assert_false(v->llm.mlock);
    assert_int_equal(v->llm.max_tokens, 512);
    assert_true(v->llm.temperature == 0.7);
    assert_true(v->llm.top_p == 0.95);
    assert_int_equal(v->llm.top_k, 40);
    assert_string_equal(v->llm.reasoning, "separate");
    assert_false(v->llm.speed_mode);
    assert_string_equal(v->speech.stt, "pocketsphinx");
    assert_string_equal(v->speech.stt_model, "whisper-base.en");
    assert_int_equal(v->speech.end_of_turn_ms, 500);
    assert_string_equal(v->server.host, "127.0.0.1");
    assert_int_equal(v->server.port, 8080);
    assert_string_equal(v->server.api_key_file, "");
    assert_int_equal(v->server.timeout, 600);

    /* every key the issue names exists */
    static const char *const want[] = {
        "llm.model", "llm.n_ctx", "llm.n_batch", "llm.n_threads", "llm.n_threads_batch", "llm.use_mmap", "llm.mlock",
        "llm.n_gpu_layers", "llm.max_tokens", "llm.temperature", "llm.top_p", "llm.top_k", "llm.min_p",
        "llm.repeat_penalty", "llm.history_budget", "llm.reasoning", "llm.speed_mode", "speech.stt",
        "speech.stt_model", "speech.tts", "speech.voice", "speech.vad_start_threshold", "speech.vad_stop_threshold",
        "speech.end_of_turn_ms", "server.host", "server.port", "server.parallel", "server.api_key_file",
        "server.timeout",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) assert_non_null(pl_config_key_find(want[i]));
    assert_null(pl_config_key_find("llm"));
    assert_null(pl_config_key_find("llm.nope"));
    assert_null(pl_config_key_find(NULL));
    char env[128];
    pl_config_key_env_name(pl_config_key_find("llm.n_threads_batch"), env, sizeof env);
    assert_string_equal(env, "PARLEY_LLM_N_THREADS_BATCH");
    pl_config_key_env_name(pl_config_key_find("server.api_key_file"), env, sizeof env);
    assert_string_equal(env, "PARLEY_SERVER_API_KEY_FILE");

    /* each row: default in range, enum default among its choices, help, a unique name and env name */
    for (size_t i = 0; i < pl_config_key_count(); i++) {
        const pl_config_key *k = pl_config_key_at(i);
        assert_non_null(k->help);
        assert_true(strlen(k->help) > 10);
        assert_int_equal(pl_config_source_of(c, k), PL_CONFIG_SOURCE_DEFAULT);
        if (k->type == PL_CONFIG_TYPE_INT) assert_true(k->def_int >= k->min && k->def_int <= k->max && k->min < k->max);
        if (k->type == PL_CONFIG_TYPE_FLOAT)
            assert_true(k->def_float >= k->min && k->def_float <= k->max && k->min < k->max);
        if (k->type == PL_CONFIG_TYPE_ENUM) {
            char pat[64];
            snprintf(pat, sizeof pat, "|%s|", k->def_str);
            char all[128];
            snprintf(all, sizeof all, "|%s|", k->choices);
            assert_non_null(strstr(all, pat));
        }
        for (size_t j = 0; j < i; j++) {
            const pl_config_key *o = pl_config_key_at(j);
            assert_false(strcmp(o->section, k->section) == 0 && strcmp(o->name, k->name) == 0);
            char e1[128], e2[128];
            pl_config_key_env_name(k, e1, sizeof e1);
            pl_config_key_env_name(o, e2, sizeof e2);
            assert_string_not_equal(e1, e2);
        }
    }
    assert_null(pl_config_key_at(pl_config_key_count()));
    assert_int_equal(pl_config_validate(c), PL_OK);
    pl_config_free(c);
    pl_config_free(NULL);
}

/* ---- precedence ---- */

static void test_precedence(void **state) {
    (void)state;
    const char *file = "# comment\nllm:\n  n_ctx: 1000\n  n_batch: 64\n  top_k: 7\nserver:\n  port: 9000\n";
    char *envp[] = { "PARLEY_LLM_N_CTX=2000", "PARLEY_LLM_N_BATCH=128", "PARLEY_HOME=/ignored",
                     "PARLEY_LOG=debug", "OTHER=1", NULL };
    /* the usual order: file, env, flag */
    pl_config *c = fresh();
    assert_int_equal(load(c, file), PL_OK);
    assert_int_equal(pl_config_apply_env(c, envp), PL_OK);
    assert_int_equal(pl_config_set(c, "llm.n_ctx", "3000", PL_CONFIG_SOURCE_FLAG, "--ctx-size"), PL_OK);
    const pl_config_values *v = pl_config_get(c);
    assert_int_equal(v->llm.n_ctx, 3000);   /* flag > env > file */
    assert_int_equal(v->llm.n_batch, 128);  /* env > file */
    assert_int_equal(v->llm.top_k, 7);      /* file > default */
    assert_int_equal(v->server.port, 9000);
    assert_int_equal(v->llm.max_tokens, 512);
    origin_is(c, "llm.n_ctx", "flag --ctx-size");
    origin_is(c, "llm.n_batch", "env PARLEY_LLM_N_BATCH");
    origin_is(c, "llm.top_k", "t.yaml:5");
    origin_is(c, "server.port", "t.yaml:7");
    origin_is(c, "llm.max_tokens", "default");
    pl_config_free(c);

    /* the reverse order gives the same result: lower sources never override */
    c = fresh();
    assert_int_equal(pl_config_set(c, "llm.n_ctx", "3000", PL_CONFIG_SOURCE_FLAG, "--ctx-size"), PL_OK);
    assert_int_equal(pl_config_apply_env(c, envp), PL_OK);
    assert_int_equal(load(c, file), PL_OK);
    v = pl_config_get(c);
    assert_int_equal(v->llm.n_ctx, 3000);
    assert_int_equal(v->llm.n_batch, 128);
    assert_int_equal(v->llm.top_k, 7);
    origin_is(c, "llm.n_batch", "env PARLEY_LLM_N_BATCH");
    /* a later flag replaces an earlier one */
    assert_int_equal(pl_config_set(c, "llm.n_ctx", "4000", PL_CONFIG_SOURCE_FLAG, "-c"), PL_OK);
    assert_int_equal(v->llm.n_ctx, 4000);
    pl_config_free(c);

    /* env and flag values: 1/0 are booleans there, enums are case-insensitive */
    c = fresh();
    char *envb[] = { "PARLEY_LLM_MLOCK=1", "PARLEY_LLM_REASONING=Hidden", "PARLEY_SPEECH_VOICE=", NULL };
    assert_int_equal(pl_config_apply_env(c, envb), PL_OK);
    assert_true(pl_config_get(c)->llm.mlock);
    assert_string_equal(pl_config_get(c)->llm.reasoning, "hidden");
    assert_string_equal(pl_config_get(c)->speech.voice, "");
    pl_config_free(c);
}

static void test_env_and_flag_errors(void **state) {
    (void)state;
    pl_config *c = fresh();
    char *e1[] = { "PARLEY_LLM_N_CTXX=5", NULL };
    assert_int_equal(pl_config_apply_env(c, e1), PL_ERR_NOT_FOUND);
    assert_string_equal(pl_config_last_error(c), "env PARLEY_LLM_N_CTXX: unknown setting (did you mean PARLEY_LLM_N_CTX?)");
    char *e2[] = { "PARLEY_SERVER_PORT=http", NULL };
    assert_int_equal(pl_config_apply_env(c, e2), PL_ERR_TYPE);
    assert_string_equal(pl_config_last_error(c), "env PARLEY_SERVER_PORT: expected an integer, got 'http'");
    char *e3[] = { "PARLEY_SERVER_PORT=70000", NULL };
    assert_int_equal(pl_config_apply_env(c, e3), PL_ERR_RANGE);
    assert_string_equal(pl_config_last_error(c), "env PARLEY_SERVER_PORT: 70000 is out of range [1, 65535]");
    char *e4[] = { "PARLEY_LLM_N_CTX=", NULL };
    assert_int_equal(pl_config_apply_env(c, e4), PL_ERR_TYPE);
    assert_int_equal(pl_config_set(c, "llm.temprature", "1", PL_CONFIG_SOURCE_FLAG, NULL), PL_ERR_NOT_FOUND);
    assert_string_equal(pl_config_last_error(c), "llm.temprature: unknown setting 'llm.temprature' (did you mean 'temperature'?)");
    assert_int_equal(pl_config_set(c, "lm.n_ctx", "1", PL_CONFIG_SOURCE_FLAG, NULL), PL_ERR_NOT_FOUND);
    assert_non_null(strstr(pl_config_last_error(c), "(did you mean 'llm'?)"));
    assert_int_equal(pl_config_set(c, "llm.temperature", "hot", PL_CONFIG_SOURCE_FLAG, "--temp"), PL_ERR_TYPE);
    assert_string_equal(pl_config_last_error(c), "--temp: llm.temperature: expected a number, got 'hot'");
    assert_int_equal(pl_config_set(c, "llm.temperature", "nan", PL_CONFIG_SOURCE_FLAG, "--temp"), PL_ERR_RANGE);
    assert_int_equal(pl_config_set(c, "llm.temperature", "0x1p3", PL_CONFIG_SOURCE_FLAG, "--temp"), PL_ERR_TYPE);
    assert_int_equal(pl_config_set(c, "llm.n_ctx", "99999999999999999999", PL_CONFIG_SOURCE_FLAG, "-c"), PL_ERR_RANGE);
    assert_int_equal(pl_config_set(c, "llm.n_ctx", " 5", PL_CONFIG_SOURCE_FLAG, "-c"), PL_ERR_TYPE);
    assert_int_equal(pl_config_set(c, "llm.reasoning", "loud", PL_CONFIG_SOURCE_FLAG, NULL), PL_ERR_RANGE);
    assert_non_null(strstr(pl_config_last_error(c), "'loud' is not one of separate|none|hidden"));
    /* nothing above changed a value */
    assert_int_equal(pl_config_get(c)->llm.n_ctx, 4096);
    assert_int_equal(pl_config_get(c)->server.port, 8080);
    pl_config_free(c);
}

/* ---- every YAML error kind, with its line ---- */

static void test_yaml_errors(void **state) {
    (void)state;
    expect_error("llm:\n  n_ctx: 1\n  n_ctxx: 2\n", PL_ERR_NOT_FOUND,
                 "t.yaml:3: unknown key 'n_ctxx' in section 'llm' (did you mean 'n_ctx'?)");
    expect_error("\n\nlmm:\n  n_ctx: 1\n", PL_ERR_NOT_FOUND,
                 "t.yaml:3: unknown section 'lmm' (did you mean 'llm'?); the sections are llm, speech, server");
    expect_error("llm:\n  n_ctx: abc\n", PL_ERR_TYPE, "t.yaml:2: llm.n_ctx: expected an integer, got 'abc'");
    expect_error("llm:\n  n_ctx: 1.5\n", PL_ERR_TYPE, "t.yaml:2: llm.n_ctx: expected an integer, got '1.5'");
    expect_error("llm:\n  n_ctx: \"4096\"\n", PL_ERR_TYPE,
                 "t.yaml:2: llm.n_ctx: expected an integer, got the string \"4096\"");
    expect_error("llm:\n  n_ctx: !!str 4096\n", PL_ERR_TYPE, "t.yaml:2: llm.n_ctx: expected an integer");
    expect_error("llm:\n  use_mmap: 1\n", PL_ERR_TYPE, "t.yaml:2: llm.use_mmap: expected true or false, got '1'");
    expect_error("llm:\n  use_mmap: 'yes'\n", PL_ERR_TYPE, "t.yaml:2: llm.use_mmap: expected a boolean");
    expect_error("llm:\n  temperature: warm\n", PL_ERR_TYPE, "t.yaml:2: llm.temperature: expected a number");
    expect_error("llm:\n  n_ctx: -1\n", PL_ERR_RANGE, "t.yaml:2: llm.n_ctx: -1 is out of range [0, 1048576]");
    expect_error("llm:\n  top_p: 1.01\n", PL_ERR_RANGE, "t.yaml:2: llm.top_p: 1.01 is out of range [0, 1]");
    expect_error("llm:\n  temperature: .inf\n", PL_ERR_TYPE, "t.yaml:2: llm.temperature: expected a number");
    expect_error("server:\n  port: 0\n", PL_ERR_RANGE, "t.yaml:2: server.port: 0 is out of range [1, 65535]");
    expect_error("llm:\n  reasoning: maybe\n", PL_ERR_RANGE,
                 "t.yaml:2: llm.reasoning: 'maybe' is not one of separate|none|hidden");
    expect_error("llm:\n  n_ctx:\n", PL_ERR_TYPE, "t.yaml:2: llm.n_ctx needs a value (integer)");
    expect_error("llm:\n  reasoning: ~\n", PL_ERR_TYPE, "t.yaml:2: llm.reasoning needs a value");
    expect_error("llm:\n  n_ctx: {a: 1}\n", PL_ERR_TYPE,
                 "t.yaml:2: llm.n_ctx: expected a single value (integer), not a mapping");
    expect_error("llm:\n  model:\n    - a\n", PL_ERR_TYPE,
                 "t.yaml:3: llm.model: expected a single value (string), not a list");
    expect_error("llm:\n  n_ctx: 1\n  n_ctx: 2\n", PL_ERR_EXISTS, "t.yaml:3: duplicate key llm.n_ctx (first at line 2)");
    expect_error("llm: {}\nserver: {}\nllm: {}\n", PL_ERR_EXISTS, "t.yaml:3: duplicate section 'llm' (first at line 1)");
    expect_error("llm: 5\n", PL_ERR_TYPE, "t.yaml:1: section 'llm' must be a mapping of keys, not a scalar");
    expect_error("server:\n  port: 8080\n  host: [\n", PL_ERR_TYPE, "t.yaml:3: server.host: expected a single value");
    expect_error("llm:\n  n_ctx: 1\n bad indent: 2\n", PL_ERR_FORMAT, "t.yaml:3: YAML syntax error");
    expect_error("llm:\n  model: \"unterminated\n", PL_ERR_FORMAT, "YAML syntax error");
    expect_error("llm:\n  model: \"\\xff\xfe\"\n", PL_ERR_FORMAT, "t.yaml:2:");
    expect_error("llm:\n  n_ctx: !custom 5\n", PL_ERR_FORMAT, "t.yaml:2: unsupported tag '!custom'");
    expect_error("llm:\n  ? [a, b]\n  : 1\n", PL_ERR_FORMAT, "t.yaml:2: a key in 'llm' must be a plain name");
    /* a NUL byte: the line where it is */
    pl_config *c = fresh();
    const char nul[] = "llm:\n  n_ctx: 1\n\0junk\n";
    assert_int_equal(pl_config_load_yaml(c, "n.yaml", nul, sizeof nul - 1), PL_ERR_FORMAT);
    assert_string_equal(pl_config_last_error(c), "n.yaml:3: the file contains a NUL byte (not a text file?)");
    pl_config_free(c);
    /* an error after good keys applies none of them */
    c = fresh();
    assert_int_equal(load(c, "llm:\n  n_ctx: 1000\n  top_k: 5\n  n_batch: x\n"), PL_ERR_TYPE);
    assert_int_equal(pl_config_get(c)->llm.n_ctx, 4096);
    assert_int_equal(pl_config_get(c)->llm.top_k, 40);
    pl_config_free(c);
}

/* ---- YAML edge cases ---- */

static void test_yaml_edge_cases(void **state) {
    (void)state;
    pl_config *c = fresh();
    /* empty file, only comments, an explicit empty document, empty sections */
    assert_int_equal(load(c, ""), PL_OK);
    assert_int_equal(load(c, "# nothing here\n\n"), PL_OK);
    assert_int_equal(load(c, "---\n...\n"), PL_OK);
    assert_int_equal(load(c, "llm:\nspeech: {}\nserver: ~\n"), PL_OK);
    assert_int_equal(pl_config_get(c)->llm.n_ctx, 4096);
    /* scalar anchors and aliases, flow mappings, a BOM, quoting and null strings */
    assert_int_equal(load(c, "\xef\xbb\xbfllm: {n_threads: &t 6, n_threads_batch: *t, model: &m 'a b: c'}\n"
                             "speech:\n  voice: *m\n  stt_model: ~\n  vad_start_threshold: &v 0.5\n"
                             "  vad_stop_threshold: *v\n  tts: NONE\n"
                             "server:\n  host: \"::1\"\n  api_key_file: |\n    /etc/key\n"),
                     PL_OK);
    const pl_config_values *v = pl_config_get(c);
    assert_int_equal(v->llm.n_threads, 6);
    assert_int_equal(v->llm.n_threads_batch, 6);
    assert_string_equal(v->llm.model, "a b: c");
    assert_string_equal(v->speech.voice, "a b: c");
    assert_string_equal(v->speech.stt_model, "");
    assert_true(v->speech.vad_stop_threshold == 0.5);
    assert_string_equal(v->speech.tts, "none");
    assert_string_equal(v->server.host, "::1");
    assert_string_equal(v->server.api_key_file, "/etc/key\n");
    origin_is(c, "llm.n_threads_batch", "t.yaml:1");
    origin_is(c, "speech.vad_stop_threshold", "t.yaml:6");
    /* an alias keeps its anchor's quoting: a quoted anchor is a string */
    expect_error("llm:\n  model: &q '5'\n  n_ctx: *q\n", PL_ERR_TYPE, "t.yaml:3: llm.n_ctx: expected an integer, got the string \"5\"");
    /* bools in YAML spelling */
    assert_int_equal(load(c, "llm: {mlock: yes, use_mmap: Off, speed_mode: TRUE}\n"), PL_OK);
    assert_true(v->llm.mlock && !v->llm.use_mmap && v->llm.speed_mode);
    pl_config_free(c);

    /* collections behind aliases, merge keys, undefined aliases */
    expect_error("base: &b {n_ctx: 1}\n", PL_ERR_NOT_FOUND, "t.yaml:1: unknown section 'base'");
    expect_error("llm: &b {n_ctx: 1}\nspeech: *b\n", PL_ERR_UNSUPPORTED,
                 "t.yaml:2: section 'speech': aliases of whole sections are not supported");
    expect_error("llm: {model: &l [1, 2]}\n", PL_ERR_TYPE, "t.yaml:1: llm.model: expected a single value (string), not a list");
    expect_error("server: &s {port: 1}\nllm:\n  model: *s\n", PL_ERR_TYPE,
                 "t.yaml:3: llm.model: alias *s refers to a mapping or list, not a value");
    expect_error("llm:\n  <<: {n_ctx: 1}\n", PL_ERR_UNSUPPORTED, "t.yaml:2: merge keys (<<) are not supported");
    expect_error("llm:\n  n_ctx: *nowhere\n", PL_ERR_FORMAT, "t.yaml:2: alias *nowhere is not defined");
    /* several documents */
    expect_error("llm: {n_ctx: 1}\n---\nllm: {n_ctx: 2}\n", PL_ERR_FORMAT,
                 "t.yaml:2: only one YAML document is allowed (a second begins here)");
    expect_error("---\n---\n", PL_ERR_FORMAT, "t.yaml:2: only one YAML document is allowed");
    /* roots that are not a mapping */
    expect_error("- llm\n- speech\n", PL_ERR_FORMAT,
                 "t.yaml:1: the top level must be a mapping of sections (llm, speech, server), not a list");
    expect_error("just text\n", PL_ERR_FORMAT, "t.yaml:1: the top level must be a mapping of sections (llm, speech, server), not a scalar");
    expect_error("*x\n", PL_ERR_FORMAT, "t.yaml:1:");
}

/* A root mapping with the standard !!map tag is fine. */
static void test_yaml_tagged_root(void **state) {
    (void)state;
    pl_config *c = fresh();
    assert_int_equal(load(c, "!!map {llm: {n_ctx: 77}}\n"), PL_OK);
    assert_int_equal(pl_config_get(c)->llm.n_ctx, 77);
    pl_config_free(c);
}

static char *repeat(const char *head, char ch, size_t n, const char *tail) {
    size_t hl = strlen(head), tl = strlen(tail);
    char *s = malloc(hl + n + tl + 1);
    memcpy(s, head, hl);
    memset(s + hl, ch, n);
    memcpy(s + hl + n, tail, tl + 1);
    return s;
}

static void test_yaml_huge_and_deep(void **state) {
    (void)state;
    /* deeply nested flow collections: refused at the first level that does not fit */
    size_t depth = 200000;
    char *deep = repeat("llm:\n  n_ctx: ", '[', depth, "\n");
    pl_config *c = fresh();
    uint64_t t0 = pl_time_ns();
    assert_int_equal(load(c, deep), PL_ERR_TYPE);
    assert_non_null(strstr(pl_config_last_error(c), "t.yaml:2: llm.n_ctx: expected a single value"));
    free(deep);
    deep = repeat("", '{', depth, "");
    assert_int_equal(load(c, deep), PL_ERR_FORMAT);
    assert_non_null(strstr(pl_config_last_error(c), "t.yaml:1:"));
    free(deep);
    /* block nesting */
    size_t levels = 1200; /* ~730 KiB, under the size cap */
    char *block = malloc(levels * (levels + 1) / 2 + levels * 16 + 64);
    size_t n = 0;
    n += (size_t)sprintf(block + n, "llm:\n");
    for (size_t i = 0; i < levels; i++) {
        for (size_t j = 0; j < i + 1; j++) block[n++] = ' ';
        n += (size_t)sprintf(block + n, "k%zu:\n", i);
    }
    block[n] = '\0';
    assert_int_equal(load(c, block), PL_ERR_NOT_FOUND);
    assert_non_null(strstr(pl_config_last_error(c), "t.yaml:2: unknown key 'k0'"));
    free(block);
    /* alias-heavy input (the "billion laughs" shape): refused at the first alias of a collection */
    const char *laughs = "llm: &a {n_ctx: 1}\nspeech: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nserver: [*b, *b, *b, *b]\n";
    assert_int_equal(load(c, laughs), PL_ERR_TYPE);
    assert_non_null(strstr(pl_config_last_error(c), "t.yaml:2: section 'speech' must be a mapping of keys, not a list"));

    /* a file over the cap is refused before parsing; one just under it parses */
    size_t big = PL_CONFIG_MAX_FILE_BYTES + 1;
    char *huge = malloc(big + 1);
    memset(huge, '#', big);
    for (size_t i = 80; i < big; i += 81) huge[i] = '\n';
    huge[big] = '\0';
    assert_int_equal(pl_config_load_yaml(c, "h.yaml", huge, big), PL_ERR_RANGE);
    assert_string_equal(pl_config_last_error(c), "h.yaml:1: the file is over 1024 KiB; a config file is a few KiB");
    const char *tailcfg = "\nllm:\n  n_ctx: 123\n";
    size_t under = PL_CONFIG_MAX_FILE_BYTES - strlen(tailcfg);
    memcpy(huge + under, tailcfg, strlen(tailcfg) + 1);
    huge[under - 1] = '\n';
    assert_int_equal(pl_config_load_yaml(c, "h.yaml", huge, strlen(huge)), PL_OK);
    assert_int_equal(pl_config_get(c)->llm.n_ctx, 123);
    free(huge);
    /* reading a device that never ends stops at the cap */
    assert_int_equal(pl_config_load_file(c, "/dev/zero"), PL_ERR_RANGE);
    assert_true((double)(pl_time_ns() - t0) / 1e9 < 5.0);
    pl_config_free(c);
}

/* ---- files, output, checks ---- */

static char tmp[256];

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_files_and_lookup(void **state) {
    (void)state;
    char cwd[300], home[300], xdg[300], p[400], out[512];
    snprintf(cwd, sizeof cwd, "%s/cwd", tmp);
    snprintf(home, sizeof home, "%s/home", tmp);
    snprintf(xdg, sizeof xdg, "%s/xdg", tmp);
    mkdir(cwd, 0755);
    mkdir(home, 0755);
    snprintf(p, sizeof p, "%s/.config", home);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/.config/parley", home);
    mkdir(p, 0755);
    mkdir(xdg, 0755);
    snprintf(p, sizeof p, "%s/parley", xdg);
    mkdir(p, 0755);
    assert_int_equal(pl_config_find_file(cwd, home, NULL, out, sizeof out), PL_ERR_NOT_FOUND);
    snprintf(p, sizeof p, "%s/.config/parley/parley.yaml", home);
    write_file(p, "llm: {n_ctx: 2}\n");
    assert_int_equal(pl_config_find_file(cwd, home, NULL, out, sizeof out), PL_OK);
    assert_string_equal(out, p);
    /* $XDG_CONFIG_HOME replaces ~/.config */
    assert_int_equal(pl_config_find_file(cwd, home, xdg, out, sizeof out), PL_ERR_NOT_FOUND);
    snprintf(p, sizeof p, "%s/parley/parley.yaml", xdg);
    write_file(p, "llm: {n_ctx: 3}\n");
    assert_int_equal(pl_config_find_file(cwd, home, xdg, out, sizeof out), PL_OK);
    assert_string_equal(out, p);
    /* the current directory comes first */
    snprintf(p, sizeof p, "%s/parley.yaml", cwd);
    write_file(p, "# here\nllm: {n_ctx: 1}\n");
    assert_int_equal(pl_config_find_file(cwd, home, xdg, out, sizeof out), PL_OK);
    assert_string_equal(out, p);

    pl_config *c = fresh();
    assert_int_equal(pl_config_load_file(c, p), PL_OK);
    assert_int_equal(pl_config_get(c)->llm.n_ctx, 1);
    char want[512];
    snprintf(want, sizeof want, "%s:2", p);
    origin_is(c, "llm.n_ctx", want);
    assert_string_equal(pl_config_file(c), p);
    snprintf(p, sizeof p, "%s/missing.yaml", tmp);
    assert_int_equal(pl_config_load(c, p, NULL), PL_ERR_NOT_FOUND);
    assert_non_null(strstr(pl_config_last_error(c), "missing.yaml: No such file"));
    assert_int_equal(pl_config_load_file(c, tmp), PL_ERR_IO); /* a directory */
    pl_config_free(c);
}

static void test_cross_key_check(void **state) {
    (void)state;
    pl_config *c = fresh();
    assert_int_equal(load(c, "speech:\n  vad_start_threshold: 0.5\n  vad_stop_threshold: 0.7\n"), PL_OK);
    assert_int_equal(pl_config_validate(c), PL_ERR_RANGE);
    assert_string_equal(pl_config_last_error(c),
                        "t.yaml:3: speech.vad_stop_threshold (0.7) must not exceed speech.vad_start_threshold (0.5, "
                        "t.yaml:2)");
    assert_int_equal(pl_config_set(c, "speech.vad_stop_threshold", "0.5", PL_CONFIG_SOURCE_FLAG, "--vad-stop"), PL_OK);
    assert_int_equal(pl_config_validate(c), PL_OK);
    pl_config_free(c);
}

/* One line of `config --print`: "  key: value", padded to column 40, then "  # origin". */
static const char *printed(const char *kv, const char *origin) {
    static char buf[1200];
    char left[300];
    snprintf(left, sizeof left, "  %s", kv);
    snprintf(buf, sizeof buf, "%-40s  # %s\n", left, origin);
    return buf;
}

static void test_print_round_trip(void **state) {
    (void)state;
    pl_config *c = fresh();
    assert_int_equal(load(c, "llm:\n  model: \"we\\\"ird\\\\ \\t name\"\n  temperature: 0.1\n  n_ctx: 9\n"), PL_OK);
    char *envp[] = { "PARLEY_SERVER_HOST=0.0.0.0", NULL };
    assert_int_equal(pl_config_apply_env(c, envp), PL_OK);
    assert_int_equal(pl_config_set(c, "llm.top_p", "0.5", PL_CONFIG_SOURCE_FLAG, "--top-p"), PL_OK);
    char *text = NULL;
    assert_int_equal(pl_config_format(c, &text), PL_OK);
    assert_non_null(strstr(text, printed("n_ctx: 9", "t.yaml:4")));
    assert_non_null(strstr(text, printed("temperature: 0.1", "t.yaml:3")));
    assert_non_null(strstr(text, printed("top_p: 0.5", "flag --top-p")));
    assert_non_null(strstr(text, printed("host: \"0.0.0.0\"", "env PARLEY_SERVER_HOST")));
    assert_non_null(strstr(text, printed("port: 8080", "default")));
    assert_non_null(strstr(text, printed("model: \"we\\\"ird\\\\ \\t name\"", "t.yaml:2")));
    /* the output is itself a valid config with the same values */
    pl_config *d = fresh();
    assert_int_equal(pl_config_load_yaml(d, "print.yaml", text, strlen(text)), PL_OK);
    for (size_t i = 0; i < pl_config_key_count(); i++) {
        const pl_config_key *k = pl_config_key_at(i);
        char a[256], b[256];
        pl_config_value_text(c, k, a, sizeof a);
        pl_config_value_text(d, k, b, sizeof b);
        assert_string_equal(a, b);
        assert_int_equal(pl_config_source_of(d, k), PL_CONFIG_SOURCE_FILE);
    }
    assert_string_equal(pl_config_get(d)->llm.model, "we\"ird\\ \t name");
    pl_config_free(d);
    pl_free(NULL, text);
    /* characters YAML would fold or refuse survive the round trip */
    pl_config *e = fresh();
    const char *odd = "speech:\n  voice: \"a\\x01b\\x7f\\u0085c\\u2028d\\ufeffe \\u00e9\\U0001F600\\x9f\"\n";
    assert_int_equal(load(e, odd), PL_OK);
    assert_string_equal(pl_config_get(e)->speech.voice,
                        "a\x01" "b\x7f" "\xc2\x85" "c\xe2\x80\xa8" "d\xef\xbb\xbf" "e \xc3\xa9\xf0\x9f\x98\x80\xc2\x9f");
    assert_int_equal(pl_config_format(e, &text), PL_OK);
    pl_config *f2 = fresh();
    assert_int_equal(pl_config_load_yaml(f2, "p.yaml", text, strlen(text)), PL_OK);
    assert_string_equal(pl_config_get(f2)->speech.voice, pl_config_get(e)->speech.voice);
    pl_free(NULL, text);
    pl_config_free(f2);
    pl_config_free(e);
    expect_error("llm:\n  model: \"a\\0b\"\n", PL_ERR_FORMAT, "t.yaml:2: llm.model: the value contains a NUL character");
    char buf[64];
    pl_config_value_text(c, pl_config_key_find("llm.repeat_penalty"), buf, sizeof buf);
    assert_string_equal(buf, "1.0");
    pl_config_value_text(c, pl_config_key_find("llm.use_mmap"), buf, sizeof buf);
    assert_string_equal(buf, "true");
    pl_config_free(c);
}

/* The shipped parley.example.yaml is exactly the generated example, and it
 * loads with every key at its default. */
static void test_example_file(void **state) {
    (void)state;
    char *gen = NULL;
    assert_int_equal(pl_config_example(NULL, &gen), PL_OK);
    pl_config *c = fresh();
    assert_int_equal(pl_config_load_yaml(c, "example", gen, strlen(gen)), PL_OK);
    pl_config *d = fresh();
    for (size_t i = 0; i < pl_config_key_count(); i++) {
        const pl_config_key *k = pl_config_key_at(i);
        char a[256], b[256], env[128];
        pl_config_value_text(c, k, a, sizeof a);
        pl_config_value_text(d, k, b, sizeof b);
        assert_string_equal(a, b);
        assert_int_equal(pl_config_source_of(c, k), PL_CONFIG_SOURCE_FILE); /* every key is in it */
        pl_config_key_env_name(k, env, sizeof env);
        assert_non_null(strstr(gen, env)); /* and documents its variable */
    }
    pl_config_free(c);
    pl_config_free(d);
    const char *src = getenv("PL_SOURCE_DIR");
    if (src) {
        char path[512];
        snprintf(path, sizeof path, "%s/parley.example.yaml", src);
        FILE *f = fopen(path, "rb");
        if (!f) fail_msg("%s is missing: run `build/parley config --example > parley.example.yaml`", path);
        static char buf[256 * 1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        if (strcmp(buf, gen) != 0)
            fail_msg("%s is stale: run `build/parley config --example > parley.example.yaml`", path);
    }
    pl_free(NULL, gen);
}

/* Every allocation failure on the load path is reported, never a crash or leak. */
static void test_alloc_failures(void **state) {
    (void)state;
    const char *text = "llm:\n  model: &m \"x\"\n  n_ctx: 5\n  reasoning: hidden\nspeech:\n  voice: *m\n";
    int ok_at = 0;
    for (int64_t fail_at = 1; fail_at < 200 && !ok_at; fail_at++) {
        pl_alloc_tracker t;
        pl_alloc_tracker_reset(&t);
        pl_ctx_params p = pl_ctx_default_params();
        p.alloc = pl_track_alloc;
        p.alloc_ud = &t;
        pl_ctx *ctx = NULL;
        assert_int_equal(pl_ctx_init(&ctx, &p), PL_OK);
        t.fail_at = (int64_t)t.n_calls + fail_at;
        pl_config *c = NULL;
        pl_status st = pl_config_init(ctx, &c);
        if (st == PL_OK) {
            st = pl_config_load_yaml(c, "a.yaml", text, strlen(text));
            char *out = NULL;
            if (st == PL_OK) st = pl_config_format(c, &out);
            if (st == PL_OK) {
                ok_at = (int)fail_at;
                assert_string_equal(pl_config_get(c)->speech.voice, "x");
            } else {
                assert_int_equal(st, PL_ERR_NOMEM);
            }
            pl_free(ctx, out);
        } else {
            assert_int_equal(st, PL_ERR_NOMEM);
            assert_null(c);
        }
        pl_config_free(c);
        pl_ctx_free(ctx);
        assert_int_equal(t.in_use, 0);
    }
    assert_true(ok_at > 3);
}

/* `parley config` as a user runs it. */
static void test_cli(void **state) {
    (void)state;
    const char *bin = getenv("PL_BIN");
    if (!bin) skip();
    char cfg[300], cmd[1200], out[320];
    snprintf(cfg, sizeof cfg, "%s/cli.yaml", tmp);
    snprintf(out, sizeof out, "%s/cli.out", tmp);
    write_file(cfg, "llm:\n  n_ctx: 1234\n  top_k: 3\n");
    snprintf(cmd, sizeof cmd,
             "cd '%s' && PARLEY_LLM_TOP_K=9 '%s' config --config '%s' --set llm.max_tokens=77 >'%s' 2>&1", tmp, bin,
             cfg, out);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(out, "r");
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    char want[400];
    snprintf(want, sizeof want, "%s:2", cfg);
    assert_non_null(strstr(text, printed("n_ctx: 1234", want)));
    assert_non_null(strstr(text, printed("top_k: 9", "env PARLEY_LLM_TOP_K")));
    assert_non_null(strstr(text, printed("max_tokens: 77", "flag --set llm.max_tokens")));
    snprintf(cmd, sizeof cmd, "'%s' config --config '%s' --get llm.n_ctx >'%s' 2>&1", bin, cfg, out);
    assert_int_equal(system(cmd), 0);
    f = fopen(out, "r");
    n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    assert_string_equal(text, "1234\n");
    write_file(cfg, "llm:\n  n_ctx: big\n");
    snprintf(cmd, sizeof cmd, "'%s' config --config '%s' >'%s' 2>&1", bin, cfg, out);
    int st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    f = fopen(out, "r");
    n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    snprintf(want, sizeof want, "parley config: %s:2: llm.n_ctx: expected an integer, got 'big'\n", cfg);
    assert_string_equal(text, want);
}

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/pl_config_XXXXXX");
    if (!mkdtemp(tmp)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_table),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_env_and_flag_errors),
        cmocka_unit_test(test_yaml_errors),
        cmocka_unit_test(test_yaml_edge_cases),
        cmocka_unit_test(test_yaml_tagged_root),
        cmocka_unit_test(test_yaml_huge_and_deep),
        cmocka_unit_test(test_files_and_lookup),
        cmocka_unit_test(test_cross_key_check),
        cmocka_unit_test(test_print_round_trip),
        cmocka_unit_test(test_example_file),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_cli),
    };
    int rc = cmocka_run_group_tests_name("config", tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return rc;
}
