/*
 * cli_run.h - run the parley CLI from a test: "PRE 'BIN' ARGS" through the shell,
 * stdin from a file (or /dev/null), stdout and stderr captured through files in
 * a scratch directory, the exit status and the wall time. Header-only (static
 * inline), shared by the tests of every module that drive the CLI; include it
 * after cmocka.h.
 */
#ifndef PL_TEST_CLI_RUN_H
#define PL_TEST_CLI_RUN_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

typedef struct cli_result {
    int    code;    /* exit status; 128 when killed */
    char  *out;     /* stdout, NUL-terminated */
    char  *err;     /* stderr, NUL-terminated */
    size_t out_len; /* stdout's bytes (it may hold NULs) */
    double secs;    /* wall time of the command */
} cli_result;

/* The whole file, NUL-terminated (its length in *len when not NULL, 0 on failure);
 * NULL when it cannot be read. */
static inline char *cli_slurp(const char *path, size_t *len) {
    if (len) *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    size_t got = b ? fread(b, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!b) return NULL;
    b[got] = 0;
    if (len) *len = got;
    return b;
}

/* Run "pre 'bin' args <in >scratch/out 2>scratch/err" (pre: NULL or shell words
 * before the binary, e.g. "cd 'D' && env HOME='D'"; in: NULL for /dev/null). The
 * output files must be readable afterwards (asserted). */
static inline cli_result cli_run(const char *scratch, const char *bin, const char *pre, const char *in,
                                 const char *args) {
    char cmd[12288], o[1024], e[1024];
    snprintf(o, sizeof o, "%s/out", scratch);
    snprintf(e, sizeof e, "%s/err", scratch);
    snprintf(cmd, sizeof cmd, "%s '%s' %s <'%s' >'%s' 2>'%s'", pre ? pre : "", bin, args, in ? in : "/dev/null", o,
             e);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int st = system(cmd);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cli_result r = { .code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 };
    r.secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    r.out = cli_slurp(o, &r.out_len);
    r.err = cli_slurp(e, NULL);
    assert_non_null(r.out);
    assert_non_null(r.err);
    return r;
}

static inline void cli_result_free(cli_result *r) {
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

static inline int cli_count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

#endif /* PL_TEST_CLI_RUN_H */
