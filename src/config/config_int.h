/*
 * config_int.h - private pieces of the config module shared by config.c
 * (table, values, env, output) and yaml.c (the YAML reader).
 */
#ifndef PL_CONFIG_INT_H
#define PL_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/config.h"

#define PL_CONFIG_MAX_KEYS  64
#define PL_CONFIG_MAX_FILES 8

struct pl_config {
    pl_ctx          *ctx;
    pl_config_values v;
    pl_config_source src[PL_CONFIG_MAX_KEYS];
    int              file_idx[PL_CONFIG_MAX_KEYS]; /* into files[] for FILE values */
    int              line[PL_CONFIG_MAX_KEYS];
    char             origin[PL_CONFIG_MAX_KEYS][96]; /* env var or flag name */
    char            *files[PL_CONFIG_MAX_FILES];
    int              n_files;
    char             loaded[4096];
    char             err[1024];
};

/* A parsed value of a key's type (s is owned by the ctx when set). */
typedef struct pl_config_value {
    int64_t i;
    double  f;
    bool    b;
    char   *s;
} pl_config_value;

pl_status pl_config_errf(pl_config *c, pl_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Parse text as k's type into out. strict_yaml: a YAML plain scalar (bools are
 * true/false/yes/no/on/off only; an env or flag value may also be 1/0). On
 * failure writes a message without location ("expected an integer, got 'x'")
 * into err and returns the status; out->s is allocated only on success. */
pl_status pl_config_parse_value(pl_config *c, const pl_config_key *k, const char *text, bool strict_yaml,
                                pl_config_value *out, char *err, size_t cap);
/* Store v for key index ki if src is not below the current source. Takes
 * ownership of v->s. */
void pl_config_apply(pl_config *c, size_t ki, pl_config_value *v, pl_config_source src, int file_idx, int line,
                     const char *origin);

size_t pl_config_key_index(const pl_config_key *k);
const pl_config_key *pl_config_key_in(const char *section, const char *name);
bool pl_config_section_known(const char *section);
/* "llm, speech, server" */
const char *pl_config_section_list(void);
/* " (did you mean X?)" for the nearest key name in section, or "". */
void pl_config_suggest(const char *section, const char *name, char *buf, size_t cap);
/* Register a file name for origins; -1 when the table is full. */
int pl_config_add_file(pl_config *c, const char *name);

#endif
