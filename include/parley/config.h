/*
 * parley/config.h - settings from parley.yaml, PARLEY_* environment variables
 * and command-line flags, defined once in a table of keys.
 *
 * Every setting is a row in the key table: section, name, type, default,
 * range (or choices), the offset of its field in pl_config_values, and help
 * text. The YAML parser, the environment variable names, `parley config
 * --print` and the shipped parley.example.yaml all come from that table.
 *
 * Precedence, highest first: command-line flag > environment variable >
 * file > built-in default. Each value remembers where it came from. Setting a
 * value from a lower-precedence source than the one that set it is a no-op,
 * so the order of the load calls does not matter.
 *
 * Environment variables: PARLEY_<SECTION>_<KEY> in upper case, e.g.
 * PARLEY_LLM_N_CTX or PARLEY_SERVER_PORT. A PARLEY_LLM_*, PARLEY_SPEECH_* or
 * PARLEY_SERVER_* variable that names no key is an error (a typo must not be
 * ignored silently); other PARLEY_* variables (PARLEY_HOME, PARLEY_LOG, ...)
 * are not configuration keys and are left alone.
 *
 * Files: parley.yaml in the current directory, else
 * $XDG_CONFIG_HOME/parley/parley.yaml (default ~/.config/parley/parley.yaml),
 * or the file given by --config. One YAML document whose top level is a
 * mapping of sections, each a mapping of keys to scalars. Scalar anchors and
 * aliases work; aliases of whole sections, merge keys (<<), lists, nested
 * mappings, several documents, files over PL_CONFIG_MAX_FILE_BYTES and
 * unknown keys are rejected as "FILE:LINE: message".
 *
 * Ownership: pl_config_init() makes a pl_config, pl_config_free() releases
 * it (and every string in its values). Text from pl_config_format() and
 * pl_config_example() is allocated on the ctx; free it with pl_free().
 *
 * Thread-safety: a pl_config is used by one thread at a time; a finished
 * config may be read (pl_config_get) by many threads. The key table
 * functions are thread-safe.
 */
#ifndef PARLEY_CONFIG_H
#define PARLEY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bigger config files are refused (a config is a few KiB). */
#define PL_CONFIG_MAX_FILE_BYTES (1024 * 1024)
/* Longest string value. */
#define PL_CONFIG_MAX_STRING 4096

/* ---- the values ---- */

typedef struct pl_config_llm {
    char   *model;           /* file path, store name or catalog name */
    int64_t n_ctx;           /* 0: the model's trained context */
    int64_t n_batch;
    int64_t n_threads;       /* 0: physical cores */
    int64_t n_threads_batch; /* 0: n_threads */
    bool    use_mmap;
    bool    mlock;
    bool    warmup;          /* one-token decode at load */
    int64_t n_gpu_layers;    /* -1: all */
    int64_t max_tokens;
    double  temperature;
    double  top_p;
    int64_t top_k;           /* 0: off */
    double  min_p;
    double  repeat_penalty;
    int64_t history_budget;  /* 0: n_ctx - max_tokens */
    char   *reasoning;       /* "separate", "none" or "hidden" */
    bool    speed_mode;
} pl_config_llm;

typedef struct pl_config_speech {
    char   *stt;                 /* "pocketsphinx", "whisper" or "none" */
    char   *stt_model;
    char   *tts;                 /* "espeak" or "none" */
    char   *voice;
    double  vad_start_threshold;
    double  vad_stop_threshold;
    int64_t end_of_turn_ms;
    int64_t prefix_padding_ms;
} pl_config_speech;

typedef struct pl_config_server {
    char   *host;
    int64_t port;
    int64_t parallel;
    char   *api_key_file;        /* "" when none */
    int64_t timeout;             /* seconds */
} pl_config_server;

typedef struct pl_config_values {
    pl_config_llm    llm;
    pl_config_speech speech;
    pl_config_server server;
} pl_config_values;

/* ---- the key table ---- */

typedef enum pl_config_type {
    PL_CONFIG_TYPE_INT = 0, /* int64_t */
    PL_CONFIG_TYPE_FLOAT,   /* double */
    PL_CONFIG_TYPE_BOOL,    /* bool */
    PL_CONFIG_TYPE_STRING,  /* char * */
    PL_CONFIG_TYPE_ENUM,    /* char *, one of the key's choices */
    PL_CONFIG_TYPE_COUNT
} pl_config_type;

/* Ordered by precedence: a higher source overrides a lower one. */
typedef enum pl_config_source {
    PL_CONFIG_SOURCE_DEFAULT = 0,
    PL_CONFIG_SOURCE_FILE,
    PL_CONFIG_SOURCE_ENV,
    PL_CONFIG_SOURCE_FLAG,
    PL_CONFIG_SOURCE_COUNT
} pl_config_source;

typedef struct pl_config_key {
    const char    *section;   /* "llm" */
    const char    *name;      /* "n_ctx" */
    pl_config_type type;
    size_t         offset;    /* of the field in pl_config_values */
    int64_t        def_int;
    double         def_float;
    bool           def_bool;
    const char    *def_str;   /* STRING and ENUM */
    double         min, max;  /* INT and FLOAT, inclusive */
    const char    *choices;   /* ENUM: "separate|none|hidden" */
    const char    *help;
} pl_config_key;

size_t pl_config_key_count(void);
const pl_config_key *pl_config_key_at(size_t i);                /* NULL past the end */
const pl_config_key *pl_config_key_find(const char *dotted);     /* "llm.n_ctx"; NULL when unknown */
/* "PARLEY_LLM_N_CTX" into buf (always NUL-terminated). */
void pl_config_key_env_name(const pl_config_key *k, char *buf, size_t cap);
const char *pl_config_type_name(pl_config_type t);              /* "integer", "number", ... */
const char *pl_config_source_name(pl_config_source s);          /* "default", "file", "env", "flag" */

/* ---- a configuration ---- */

typedef struct pl_config pl_config;

/* Every key at its default. */
pl_status pl_config_init(pl_ctx *ctx, pl_config **out);
void pl_config_free(pl_config *c);
const pl_config_values *pl_config_get(const pl_config *c);
/* "FILE:LINE: message" (or "env NAME: ...", "flag --x: ...") of the last failure. */
const char *pl_config_last_error(const pl_config *c);

/* Where the key's value came from: its source, and a human description
 * ("default", "parley.yaml:12", "env PARLEY_LLM_N_CTX", "flag --ctx-size"). */
pl_config_source pl_config_source_of(const pl_config *c, const pl_config_key *k);
void pl_config_origin(const pl_config *c, const pl_config_key *k, char *buf, size_t cap);

/* Set one key from text, as a flag or env value would be given ("8192",
 * "true", "0.7", "hidden"). origin names it in messages and --print ("--ctx",
 * "PARLEY_LLM_N_CTX"). A lower source than the current one is ignored. */
pl_status pl_config_set(pl_config *c, const char *dotted_key, const char *value, pl_config_source src,
                        const char *origin);

/* Parse YAML text (name is used in messages, e.g. the file path). On error
 * nothing from this text is applied. */
pl_status pl_config_load_yaml(pl_config *c, const char *name, const char *text, size_t len);
/* Read and parse a file (at most PL_CONFIG_MAX_FILE_BYTES). */
pl_status pl_config_load_file(pl_config *c, const char *path);
/* Apply PARLEY_<SECTION>_<KEY> variables from envp (a NULL-terminated
 * "NAME=value" array such as environ). */
pl_status pl_config_apply_env(pl_config *c, char *const *envp);

/* The config file to use: ./parley.yaml if it exists, else
 * $XDG_CONFIG_HOME/parley/parley.yaml or $HOME/.config/parley/parley.yaml.
 * cwd, home and xdg may be NULL (skipped). PL_ERR_NOT_FOUND when none exists. */
pl_status pl_config_find_file(const char *cwd, const char *home, const char *xdg, char *out, size_t cap);

/* The usual sequence: the file (explicit_path, or pl_config_find_file from
 * the process's cwd, $HOME and $XDG_CONFIG_HOME), then envp, then the
 * cross-key checks. An explicit path that does not exist is an error. */
pl_status pl_config_load(pl_config *c, const char *explicit_path, char *const *envp);
/* Path of the file that was loaded, or "" when none. */
const char *pl_config_file(const pl_config *c);

/* Checks between keys (e.g. the VAD stop threshold must not exceed the start
 * threshold). pl_config_load calls it; call it again after pl_config_set. */
pl_status pl_config_validate(pl_config *c);

/* The effective config as YAML, each value followed by "# origin". */
pl_status pl_config_format(const pl_config *c, char **out);
/* The documented example file (every key at its default), as shipped in
 * parley.example.yaml. */
pl_status pl_config_example(pl_ctx *ctx, char **out);
/* One value as plain text ("8192", "true", "qwen2.5..."), for scripts. */
pl_status pl_config_value_text(const pl_config *c, const pl_config_key *k, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_CONFIG_H */
