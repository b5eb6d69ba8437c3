/*
 * test_catalog.c - the catalog table's invariants, name rules, and how pull
 * specs map to URLs and store files (no network).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parley/store.h"
#include "store/store_int.h"
#include "test_store.h"

static bool lower_hex(const char *s, size_t n) {
    if (strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f')) return false;
    return true;
}

static void test_catalog_rows(void **state) {
    (void)state;
    size_t n = pl_catalog_count();
    assert_true(n >= 28);
    assert_null(pl_catalog_at(n));
    for (size_t i = 0; i < n; i++) {
        const pl_catalog_entry *c = pl_catalog_at(i);
        assert_true(pl_store_name_valid(c->name));
        for (const char *p = c->name; *p; p++) assert_false(isupper((unsigned char)*p));
        assert_non_null(c->title);
        assert_non_null(c->quant);
        const char *slash = strchr(c->repo, '/');
        assert_non_null(slash);
        assert_null(strchr(slash + 1, '/'));
        size_t fl = strlen(c->file);
        bool gguf = fl > 5 && strcmp(c->file + fl - 5, ".gguf") == 0;
        bool bin = fl > 4 && strcmp(c->file + fl - 4, ".bin") == 0;
        assert_true(c->kind == PL_MODEL_KIND_LLM ? gguf : bin);
        /* a published hash always comes with its exact size, and vice versa */
        if (c->sha256) assert_true(lower_hex(c->sha256, 64));
        assert_int_equal(c->sha256 != NULL, c->size != 0);
        if (c->sha1) assert_true(lower_hex(c->sha1, 40));
        assert_true(c->size || c->approx_mb);
        /* the quant in the name matches the quant column */
        const char *colon = strchr(c->name, ':');
        if (colon) assert_int_equal(strcasecmp(colon + 1, c->quant), 0);
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(pl_catalog_at(j)->name, c->name);
            /* two rows never share a store file */
            char a[PL_STORE_NAME_MAX], b[PL_STORE_NAME_MAX];
            for (size_t k = 0; k <= strlen(c->name); k++) a[k] = c->name[k] == ':' ? '-' : c->name[k];
            for (size_t k = 0; k <= strlen(pl_catalog_at(j)->name); k++)
                b[k] = pl_catalog_at(j)->name[k] == ':' ? '-' : pl_catalog_at(j)->name[k];
            assert_string_not_equal(a, b);
        }
    }
    /* each family has exactly one preferred row */
    for (size_t i = 0; i < n; i++) {
        const pl_catalog_entry *c = pl_catalog_at(i);
        size_t fam = strcspn(c->name, ":");
        int preferred = 0;
        for (size_t j = 0; j < n; j++) {
            const pl_catalog_entry *d = pl_catalog_at(j);
            if (strncmp(d->name, c->name, fam) == 0 && strcspn(d->name, ":") == fam) preferred += d->preferred;
        }
        assert_int_equal(preferred, 1);
    }
    /* the families the issue asks for */
    static const char *const wanted[] = {
        "smollm2-135m-instruct", "smollm2-360m-instruct", "smollm2-1.7b-instruct", "qwen2.5-0.5b-instruct",
        "qwen2.5-1.5b-instruct", "qwen2.5-3b-instruct",   "qwen3-0.6b",            "qwen3-1.7b",
        "llama-3.2-1b-instruct", "llama-3.2-3b-instruct", "phi-3.5-mini-instruct", "whisper-tiny.en",
        "whisper-base.en",       "whisper-small.en",
    };
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        const pl_catalog_entry *c = pl_catalog_find(wanted[i]);
        assert_non_null(c);
        if (c->kind == PL_MODEL_KIND_LLM) {
            char q4[160], q8[160];
            snprintf(q4, sizeof q4, "%s:q4_k_m", wanted[i]);
            snprintf(q8, sizeof q8, "%s:q8_0", wanted[i]);
            assert_non_null(pl_catalog_find(q4));
            assert_non_null(pl_catalog_find(q8));
            assert_ptr_equal(c, pl_catalog_find(q4)); /* family name -> Q4_K_M */
        }
    }
    const pl_catalog_entry *d = pl_catalog_find(PL_STORE_DEFAULT_MODEL);
    assert_non_null(d);
    assert_non_null(d->sha256);
    assert_int_equal(d->kind, PL_MODEL_KIND_LLM);
    assert_ptr_equal(pl_catalog_find("QWEN2.5-0.5B-Instruct:Q4_K_M"), d);
    assert_null(pl_catalog_find("qwen2.5-0.5b-instruct:q2_k"));
    assert_null(pl_catalog_find("qwen2.5"));
    assert_null(pl_catalog_find(""));
    assert_null(pl_catalog_find(NULL));
    assert_string_equal(pl_model_kind_name(PL_MODEL_KIND_WHISPER), "whisper");
    assert_string_equal(pl_model_kind_name(PL_MODEL_KIND_COUNT), "unknown");
}

static void test_store_names(void **state) {
    (void)state;
    assert_true(pl_store_name_valid("qwen2.5-0.5b-instruct:q4_k_m"));
    assert_true(pl_store_name_valid("A_b+c"));
    assert_false(pl_store_name_valid(""));
    assert_false(pl_store_name_valid(NULL));
    assert_false(pl_store_name_valid(".hidden"));
    assert_false(pl_store_name_valid("-rf"));
    assert_false(pl_store_name_valid("a/b"));
    assert_false(pl_store_name_valid("../x"));
    assert_false(pl_store_name_valid("a b"));
    assert_false(pl_store_name_valid("caf\xc3\xa9"));
    char longname[PL_STORE_NAME_MAX + 1];
    memset(longname, 'a', sizeof longname - 1);
    longname[PL_STORE_NAME_MAX] = '\0';
    assert_false(pl_store_name_valid(longname));
    longname[PL_STORE_NAME_MAX - 1] = '\0';
    assert_true(pl_store_name_valid(longname));

    char name[PL_STORE_NAME_MAX], ext[8];
    assert_true(pl_store_name_from_file("dir/Model-Q4_K_M.GGUF", name, sizeof name, ext, sizeof ext));
    assert_string_equal(name, "Model-Q4_K_M");
    assert_string_equal(ext, ".gguf");
    assert_true(pl_store_name_from_file("ggml-base.en.bin", name, sizeof name, ext, sizeof ext));
    assert_string_equal(name, "ggml-base.en");
    assert_string_equal(ext, ".bin");
    assert_true(pl_store_name_from_file("we ird:na%me.gguf", name, sizeof name, ext, sizeof ext));
    assert_string_equal(name, "we_ird_na_me"); /* ':' is kept for catalog names only */
    assert_true(pl_store_name_from_file(".x.gguf", name, sizeof name, ext, sizeof ext));
    assert_string_equal(name, "_x");
    assert_true(pl_store_name_from_file("README", name, sizeof name, ext, sizeof ext));
    assert_string_equal(ext, "");
    assert_true(pl_store_name_from_file(".gguf", name, sizeof name, ext, sizeof ext));
    assert_string_equal(name, "_gguf");
    assert_false(pl_store_name_from_file("dir/", name, sizeof name, ext, sizeof ext));
    assert_false(pl_store_name_from_file("", name, sizeof name, ext, sizeof ext));
}

static void test_pull_targets(void **state) {
    (void)state;
    pl_store *s = NULL;
    assert_int_equal(pl_store_open(NULL, "/tmp/pl-store-targets/", &s), PL_OK);
    assert_string_equal(pl_store_dir(s), "/tmp/pl-store-targets"); /* trailing '/' dropped */
    pl_pull_target t;
    assert_int_equal(pl_store_target(s, "qwen2.5-0.5b-instruct", "https://hf.example/", NULL, &t), PL_OK);
    assert_string_equal(t.name, "qwen2.5-0.5b-instruct:q4_k_m");
    assert_string_equal(t.url,
                        "https://hf.example/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/"
                        "qwen2.5-0.5b-instruct-q4_k_m.gguf");
    assert_string_equal(t.path, "/tmp/pl-store-targets/qwen2.5-0.5b-instruct-q4_k_m.gguf");
    assert_string_equal(t.part, "/tmp/pl-store-targets/qwen2.5-0.5b-instruct-q4_k_m.gguf.part");
    assert_string_equal(t.manifest, "/tmp/pl-store-targets/qwen2.5-0.5b-instruct-q4_k_m.gguf.json");
    assert_int_equal(pl_store_target(s, "whisper-base.en", "https://huggingface.co", NULL, &t), PL_OK);
    assert_string_equal(t.url, "https://huggingface.co/ggerganov/whisper.cpp/resolve/main/ggml-base.en.bin");
    assert_string_equal(t.path, "/tmp/pl-store-targets/whisper-base.en.bin");
    assert_int_equal(pl_store_target(s, "hf://a/b-GGUF/dir/M-Q8_0.gguf", "http://h:1", NULL, &t), PL_OK);
    assert_string_equal(t.url, "http://h:1/a/b-GGUF/resolve/main/dir/M-Q8_0.gguf");
    assert_string_equal(t.name, "M-Q8_0");
    assert_int_equal(pl_store_target(s, "https://x.org/p/q.gguf?download=true#frag", "", NULL, &t), PL_OK);
    assert_string_equal(t.name, "q");
    assert_string_equal(t.url, "https://x.org/p/q.gguf?download=true#frag");
    assert_int_equal(pl_store_target(s, "https://x.org/p/q.gguf", "", "mine:v1", &t), PL_OK);
    assert_string_equal(t.name, "mine:v1");
    assert_string_equal(t.path, "/tmp/pl-store-targets/mine-v1.gguf");
    assert_int_equal(pl_store_target(s, "https://x.org/p/q.gguf", "", "../evil", &t), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_store_target(s, "https://x.org/", "", NULL, &t), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_store_target(s, "https://x.org/", "", "named", &t), PL_OK);
    assert_int_equal(pl_store_target(s, "hf://a/b", "", NULL, &t), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_store_target(s, "hf://a/b/", "", NULL, &t), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_store_target(s, "hf://a/b/c/../../x.gguf", "", NULL, &t), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_store_target(s, "nope", "", NULL, &t), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_store_target(s, "", "", NULL, &t), PL_ERR_INVALID_ARG);
    pl_store_free(s);
    pl_store_free(NULL);
}

/* $PARLEY_HOME picks the store directory. */
static void test_store_dir_env(void **state) {
    (void)state;
    char *old = getenv("PARLEY_HOME") ? strdup(getenv("PARLEY_HOME")) : NULL;
    setenv("PARLEY_HOME", "/tmp/pl-home-test", 1);
    pl_store *s = NULL;
    assert_int_equal(pl_store_open(NULL, NULL, &s), PL_OK);
    assert_string_equal(pl_store_dir(s), "/tmp/pl-home-test");
    pl_store_free(s);
    unsetenv("PARLEY_HOME");
    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("HOME", "/home/u", 1);
    assert_int_equal(pl_store_open(NULL, NULL, &s), PL_OK);
    assert_string_equal(pl_store_dir(s), "/home/u/.local/share/parley/models");
    pl_store_free(s);
    if (home) setenv("HOME", home, 1), free(home);
    if (old) setenv("PARLEY_HOME", old, 1), free(old);
}

int test_catalog_main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalog_rows),
        cmocka_unit_test(test_store_names),
        cmocka_unit_test(test_pull_targets),
        cmocka_unit_test(test_store_dir_env),
    };
    return cmocka_run_group_tests_name("catalog", tests, NULL, NULL);
}
