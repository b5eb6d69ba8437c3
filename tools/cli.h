/*
 * cli.h - shared helpers for the parley subcommands (tools/ only).
 *
 * Conventions for every command:
 *  - `parley CMD --help` prints usage to stdout and exits 0;
 *  - stdout carries only the command's product; diagnostics go to stderr;
 *  - a bad argument or input prints one line "parley CMD: ..." and exits 1
 *    (2 for usage errors).
 */
#ifndef PL_TOOLS_CLI_H
#define PL_TOOLS_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "parley/config.h"
#include "parley/core.h"

typedef struct pl_cli {
    pl_ctx     *ctx;  /* logging to stderr, allocation */
    const char *cmd;  /* current command name, for messages */
} pl_cli;

#define X(name, fn, summary) int fn(pl_cli *cli, int argc, char **argv);
#include "commands.h"
PL_COMMAND_LIST(X)
#undef X

/* Print "parley CMD: msg" to stderr; returns 1 so callers can `return pl_cli_fail(...)`. */
int pl_cli_fail(pl_cli *cli, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Usage error: message plus "try 'parley CMD --help'"; returns 2. */
int pl_cli_usage_error(pl_cli *cli, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* True if argv has --help or -h. */
bool pl_cli_wants_help(int argc, char **argv);
/* Strict number parsing (whole string, range-checked); false on error. */
bool pl_cli_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
bool pl_cli_parse_u64(const char *s, uint64_t *out);
/* Value of an option at argv[*i] ("--opt VALUE" or "--opt=VALUE"); advances *i.
 * Returns NULL (and prints a usage error) when the value is missing. */
const char *pl_cli_opt_value(pl_cli *cli, int argc, char **argv, int *i);
/* True when argv[i] is `name` or starts with `name=`. */
bool pl_cli_is_opt(const char *arg, const char *name);
/* What `-m NAME-or-PATH` means (an existing file, else a model in the store,
 * see parley/store.h). Returns a path to pl_free on cli->ctx, or NULL after
 * printing "parley CMD: <why, and the pull command to run>". */
char *pl_cli_model_path(pl_cli *cli, const char *spec);

/* ---- configuration (parley/config.h) for chat, serve and voice ---- */

/* A flag that sets a configuration key: "--ctx" (alt "-c") -> "llm.n_ctx". */
typedef struct pl_cli_flag_key {
    const char *flag, *alt, *key;
} pl_cli_flag_key;

/* The first pass: --config FILE (anywhere in argv), then pl_config_load (that
 * file or the one found, then PARLEY_* variables). *out gets the config, to
 * pl_config_free also after a failure (it may be NULL). Returns 0, or the
 * exit code after printing: 1 (out of memory, a bad file or variable), 2
 * (--config without a value). */
int pl_cli_config_load(pl_cli *cli, int argc, char **argv, pl_config **out);
/* The second pass, one argument: argv[*i] is a flag of keys[0..n) (set as a
 * flag-sourced value, checked against the key table) or --config (skipped with
 * its value). 1: taken (*i advanced past the value), 0: not ours, -1: usage
 * error printed (exit 2). Call pl_config_validate after the last flag. */
int pl_cli_config_flag(pl_cli *cli, pl_config *cfg, const pl_cli_flag_key *keys, size_t n, int argc, char **argv,
                       int *i);

#endif
