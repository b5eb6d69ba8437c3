/*
 * fuzz_config.c - libFuzzer target for the parley.yaml reader.
 *
 * Each input is loaded with pl_config_load_yaml(). Invariants (abort on
 * violation):
 *  - a rejected input leaves every key at its default, and its message starts
 *    with "f.yaml:<line>: " where line is within the input;
 *  - an accepted input prints (pl_config_format) to YAML that loads again to
 *    the same values.
 * With $PL_FUZZ_WRITE_SEEDS set to a directory, LLVMFuzzerInitialize writes the
 * example file and a few edge cases there.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/config.h"

#define FUZZ_NAME "fuzz_config"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (!dir) return 0;
    char *ex = NULL;
    if (pl_config_example(NULL, &ex) == PL_OK) fuzz_write_text(dir, "example.yaml", ex);
    free(ex);
    fuzz_write_text(dir, "anchors.yaml", "llm: {n_threads: &t 4, n_threads_batch: *t, model: &m 'x'}\nspeech:\n  voice: *m\n");
    fuzz_write_text(dir, "flow.yaml", "server: {host: \"::1\", port: 9000, api_key_file: |\n    /k\n}\n");
    fuzz_write_text(dir, "docs.yaml", "---\nllm: {}\n...\n---\n");
    fuzz_write_text(dir, "types.yaml", "llm:\n  use_mmap: off\n  top_p: 1e-1\n  reasoning: HIDDEN\n  n_ctx: +0\n");
    return 0;
}

/* An upper bound on the lines libyaml can count: it also breaks lines at a
 * lone CR and at NEL, LS and PS (whose UTF-8 forms end in 0x85, 0xa8, 0xa9). */
static int count_lines(const uint8_t *d, size_t n) {
    int lines = 1;
    for (size_t i = 0; i < n; i++) lines += d[i] == '\n' || d[i] == '\r' || d[i] == 0x85 || d[i] == 0xa8 || d[i] == 0xa9;
    return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pl_config *c = NULL, *d = NULL;
    if (pl_config_init(NULL, &c) != PL_OK) return 0;
    pl_status st = pl_config_load_yaml(c, "f.yaml", (const char *)data, size);
    if (st != PL_OK) {
        const char *e = pl_config_last_error(c);
        CHECK(strncmp(e, "f.yaml:", 7) == 0);
        char *end = NULL;
        long line = strtol(e + 7, &end, 10);
        CHECK(end && end[0] == ':' && line >= 1 && line <= count_lines(data, size) + 1);
        for (size_t i = 0; i < pl_config_key_count(); i++)
            CHECK(pl_config_source_of(c, pl_config_key_at(i)) == PL_CONFIG_SOURCE_DEFAULT);
    } else {
        char *text = NULL;
        CHECK(pl_config_format(c, &text) == PL_OK);
        CHECK(pl_config_init(NULL, &d) == PL_OK);
        if (pl_config_load_yaml(d, "print.yaml", text, strlen(text)) != PL_OK) {
            fprintf(stderr, "reprint failed: %s\n%s\n", pl_config_last_error(d), text);
            abort();
        }
        for (size_t i = 0; i < pl_config_key_count(); i++) {
            char a[PL_CONFIG_MAX_STRING + 1], b[PL_CONFIG_MAX_STRING + 1];
            pl_config_value_text(c, pl_config_key_at(i), a, sizeof a);
            pl_config_value_text(d, pl_config_key_at(i), b, sizeof b);
            CHECK(strcmp(a, b) == 0);
        }
        free(text);
    }
    pl_config_free(c);
    pl_config_free(d);
    return 0;
}
