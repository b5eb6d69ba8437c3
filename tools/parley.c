/*
 * parley.c - the `parley` CLI entry point: git-style dispatch over the
 * command table in commands.h. The only code allowed to exit().
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct pl_command {
    const char *name;
    int (*fn)(pl_cli *, int, char **);
    const char *summary;
} pl_command;

static const pl_command commands[] = {
#define X(name, fn, summary) { #name, fn, summary },
    PL_COMMAND_LIST(X)
#undef X
};

/* Table names are C tokens: '_' in one is spelled '-' on the command line
 * (bench_stt -> bench-stt). */
static bool cmd_name_eq(const char *table, const char *arg) {
    for (; *table && *arg; table++, arg++)
        if (*table != *arg && !(*table == '_' && *arg == '-')) return false;
    return *table == *arg;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: parley [--log-level debug|info|warn|error|none] [--log-json] <command> [args]\n"
            "\n"
            "parley is a local, private, real-time voice and chat assistant engine.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    {
        char nm[32];
        snprintf(nm, sizeof nm, "%s", commands[i].name);
        for (char *c = nm; *c; c++)
            if (*c == '_') *c = '-';
        fprintf(f, "  %-10s %s\n", nm, commands[i].summary);
    }
    fprintf(f,
            "\n"
            "Run 'parley <command> --help' for a command's options.\n"
            "Environment: PARLEY_LOG=level, PARLEY_LOG_FORMAT=json, PL_CPU=scalar|avx2|avx512.\n");
}

int pl_cli_fail(pl_cli *cli, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "parley %s: ", cli->cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int pl_cli_usage_error(pl_cli *cli, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "parley %s: ", cli->cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (try 'parley %s --help')\n", cli->cmd);
    va_end(ap);
    return 2;
}

bool pl_cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return true;
    }
    return false;
}

bool pl_cli_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    if (!s || !*s) return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = (int64_t)v;
    return true;
}

bool pl_cli_parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s || *s == '-') return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end) return false;
    *out = (uint64_t)v;
    return true;
}

bool pl_cli_is_opt(const char *arg, const char *name) {
    size_t n = strlen(name);
    return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

const char *pl_cli_opt_value(pl_cli *cli, int argc, char **argv, int *i) {
    const char *eq = strchr(argv[*i], '=');
    if (eq && argv[*i][0] == '-' && argv[*i][1] == '-') return eq + 1;
    if (*i + 1 >= argc) {
        pl_cli_usage_error(cli, "option %s needs a value", argv[*i]);
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

int cmd_version(pl_cli *cli, int argc, char **argv) {
    (void)cli;
    if (pl_cli_wants_help(argc, argv)) {
        printf("usage: parley version\n\nPrint parley's version, the detected CPU features and the kernel level.\n");
        return 0;
    }
    const pl_cpu_features *f = pl_cpu_detect();
    char buf[256];
    pl_cpu_features_str(f, buf, sizeof buf);
    printf("parley %s\n", PL_VERSION);
    printf("cpu: %d physical cores, %d logical; features: %s\n", f->n_physical, f->n_logical, buf);
    printf("kernel level: %s\n", pl_cpu_level_name(pl_cpu_best_level()));
    return 0;
}

int main(int argc, char **argv) {
    pl_ctx_params cp = pl_ctx_default_params();
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("parley %s\n", PL_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--log-json") == 0) {
            cp.log_format = PL_LOG_FORMAT_JSON;
        } else if (pl_cli_is_opt(argv[i], "--log-level")) {
            pl_cli tmp = { .cmd = "" };
            const char *v = pl_cli_opt_value(&tmp, argc, argv, &i);
            if (!v || pl_log_level_parse(v, &cp.log_level) != PL_OK) {
                fprintf(stderr, "parley: bad --log-level (use debug, info, warn, error or none)\n");
                return 2;
            }
        } else {
            fprintf(stderr, "parley: unknown option '%s' (try 'parley --help')\n", argv[i]);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[i];
    if (strcmp(name, "help") == 0) {
        if (i + 1 < argc) {
            /* "parley help CMD" == "parley CMD --help" */
            char *hargv[] = { argv[i + 1], "--help", NULL };
            for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
                if (cmd_name_eq(commands[k].name, argv[i + 1])) {
                    pl_cli cli = { .ctx = NULL, .cmd = argv[i + 1] };
                    return commands[k].fn(&cli, 2, hargv);
                }
        }
        usage(stdout);
        return 0;
    }
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++) {
        if (!cmd_name_eq(commands[k].name, name)) continue;
        pl_ctx *ctx = NULL;
        if (pl_ctx_init(&ctx, &cp) != PL_OK) {
            fprintf(stderr, "parley: out of memory\n");
            return 1;
        }
        pl_cli cli = { .ctx = ctx, .cmd = name };
        int rc = commands[k].fn(&cli, argc - i, argv + i);
        pl_ctx_free(ctx);
        fflush(stdout);
        if (ferror(stdout)) {
            fprintf(stderr, "parley %s: error writing to stdout\n", name);
            return 1;
        }
        return rc;
    }
    fprintf(stderr, "parley: unknown command '%s' (try 'parley --help')\n", name);
    return 2;
}
