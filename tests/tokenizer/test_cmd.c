/* test_cmd.c - `parley tokenize` end to end on the real vocabularies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_tokenizer.h"
#include "cli_run.h"

static char tmpdir[64];

/* Run `parley ARGS` with stdin from the given bytes. */
static cli_result run(const char *in, size_t in_len, const char *args) {
    char i[128];
    snprintf(i, sizeof i, "%s/in", tmpdir);
    FILE *f = fopen(i, "wb");
    assert_non_null(f);
    if (in_len) fwrite(in, 1, in_len, f);
    fclose(f);
    return cli_run(tmpdir, getenv("PL_BIN"), NULL, i, args);
}

static void test_cmd_tokenize(void **state) {
    (void)state;
    if (!getenv("PL_BIN")) skip();
    const char *p = tt_shared_vocab("ggml-vocab-gpt-2.gguf");
    if (!p) skip();
    char gpt2[1100], spm[1100], args[3000];
    snprintf(gpt2, sizeof gpt2, "%s", p);
    p = tt_shared_vocab("ggml-vocab-llama-spm.gguf");
    if (!p) skip();
    snprintf(spm, sizeof spm, "%s", p);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pl_test_tok.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));

    /* --ids: the ids on one line and nothing else (reference ids, no BOS for gpt-2) */
    snprintf(args, sizeof args, "tokenize -m '%s' --ids 'Hello world'", gpt2);
    cli_result r = run(NULL, 0, args);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "15496 995\n");
    cli_result_free(&r);

    /* --stdin is raw: the trailing newline is a token (198) */
    snprintf(args, sizeof args, "tokenize -m '%s' --ids --stdin", gpt2);
    r = run(" Hello\n", 7, args);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "18435 198\n");
    cli_result_free(&r);
    r = run("", 0, args);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "\n");
    cli_result_free(&r);

    /* specials parsed by default, plain text with --no-parse-special */
    snprintf(args, sizeof args, "tokenize -m '%s' --ids 'a<|endoftext|>'", gpt2);
    r = run(NULL, 0, args);
    assert_string_equal(r.out, "64 50256\n");
    cli_result_free(&r);
    snprintf(args, sizeof args, "tokenize -m '%s' --ids --no-parse-special 'a<|endoftext|>'", gpt2);
    r = run(NULL, 0, args);
    assert_string_equal(r.out, "64 27 91 437 1659 5239 91 29\n");
    cli_result_free(&r);

    /* SPM: BOS unless --no-bos */
    snprintf(args, sizeof args, "tokenize -m '%s' --ids 'Hello world'", spm);
    r = run(NULL, 0, args);
    assert_string_equal(r.out, "1 15043 3186\n");
    cli_result_free(&r);
    snprintf(args, sizeof args, "tokenize -m '%s' --ids --no-bos 'Hello world'", spm);
    r = run(NULL, 0, args);
    assert_string_equal(r.out, "15043 3186\n");
    cli_result_free(&r);

    /* --pieces and the default table */
    snprintf(args, sizeof args, "tokenize -m '%s' --pieces --no-bos 'Hi\tthere'", spm);
    r = run(NULL, 0, args);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "' Hi'\n'\\t'\n'there'\n"); /* pieces as they decode mid-stream */
    cli_result_free(&r);
    snprintf(args, sizeof args, "tokenize -m '%s' 'Hello'", gpt2);
    r = run(NULL, 0, args);
    assert_string_equal(r.out, " 15496 'Hello'\n");
    cli_result_free(&r);

    /* errors: usage (2) and a bad file (1), one line each on stderr */
    r = run(NULL, 0, "tokenize --ids x");
    assert_int_equal(r.code, 2);
    assert_string_equal(r.out, "");
    cli_result_free(&r);
    snprintf(args, sizeof args, "tokenize -m '%s' --stdin extra", gpt2);
    r = run(NULL, 0, args);
    assert_int_equal(r.code, 2);
    cli_result_free(&r);
    r = run(NULL, 0, "tokenize -m /nonexistent.gguf x");
    assert_int_equal(r.code, 1);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "parley tokenize: /nonexistent.gguf"));
    assert_non_null(strchr(r.err, '\n'));
    assert_null(strchr(strchr(r.err, '\n') + 1, '\n'));
    cli_result_free(&r);
    r = run(NULL, 0, "tokenize --help");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "--no-parse-special"));
    cli_result_free(&r);

    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf '%s'", tmpdir);
    assert_int_equal(system(rm), 0);
}

int test_cmd_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmd_tokenize),
    };
    return cmocka_run_group_tests_name("cmd", tests, NULL, NULL);
}
