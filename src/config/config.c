/*
 * config.c - the key table, typed values with their sources, environment
 * variables, file lookup, cross-key checks and the two text outputs
 * (`config --print` and parley.example.yaml). The YAML reader is yaml.c.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_int.h"
#include "parley/store.h"

/* ---- the tables ---- */

typedef struct section_row {
    const char *name;
    const char *help;
} section_row;

static const section_row sections[] = {
    { "llm", "The language model and how it generates." },
    { "speech", "Voice: speech-to-text, text-to-speech and turn taking." },
    { "server", "`parley serve`: the OpenAI-compatible HTTP server." },
};
#define N_SECTIONS (sizeof sections / sizeof sections[0])

#define OFF(field) offsetof(pl_config_values, field)
#define INT_KEY    .type = PL_CONFIG_TYPE_INT
#define FLOAT_KEY  .type = PL_CONFIG_TYPE_FLOAT
#define BOOL_KEY   .type = PL_CONFIG_TYPE_BOOL
#define STR_KEY    .type = PL_CONFIG_TYPE_STRING
#define ENUM_KEY   .type = PL_CONFIG_TYPE_ENUM

static const pl_config_key keys[] = {
    /* ---- llm ---- */
    { .section = "llm", .name = "model", STR_KEY, .offset = OFF(llm.model), .def_str = PL_STORE_DEFAULT_MODEL,
      .help = "The model: a GGUF file path, a model in the store (`parley list`) or a catalog name\n"
              "(`parley pull --list`). `make run` pulls it when it is a catalog name not yet downloaded." },
    { .section = "llm", .name = "n_ctx", INT_KEY, .offset = OFF(llm.n_ctx), .def_int = 4096, .min = 0, .max = 1048576,
      .help = "Context window in tokens (prompt and answer together); 0 = the model's trained length." },
    { .section = "llm", .name = "n_batch", INT_KEY, .offset = OFF(llm.n_batch), .def_int = 512, .min = 1,
      .max = 65536, .help = "Prompt tokens processed per batch: larger prefills faster and needs more memory." },
    { .section = "llm", .name = "n_threads", INT_KEY, .offset = OFF(llm.n_threads), .def_int = 0, .min = 0,
      .max = 1024, .help = "Threads for generating tokens; 0 = the number of physical cores." },
    { .section = "llm", .name = "n_threads_batch", INT_KEY, .offset = OFF(llm.n_threads_batch), .def_int = 0,
      .min = 0, .max = 1024, .help = "Threads for prompt processing (prefill); 0 = the same as n_threads." },
    { .section = "llm", .name = "use_mmap", BOOL_KEY, .offset = OFF(llm.use_mmap), .def_bool = true,
      .help = "Map the model file instead of reading it into memory: fast start, pages shared with\n"
              "other processes through the page cache." },
    { .section = "llm", .name = "mlock", BOOL_KEY, .offset = OFF(llm.mlock), .def_bool = false,
      .help = "Lock the model in RAM so it is never paged out (needs RLIMIT_MEMLOCK, `ulimit -l`, large\n"
              "enough; parley warns when the limit refuses it)." },
    { .section = "llm", .name = "warmup", BOOL_KEY, .offset = OFF(llm.warmup), .def_bool = false,
      .help = "Decode one token while loading, so the first request does not pay for page faults and\n"
              "cold caches (costs about one token's time at start)." },
    { .section = "llm", .name = "n_gpu_layers", INT_KEY, .offset = OFF(llm.n_gpu_layers), .def_int = 0, .min = -1,
      .max = 4096,
      .help = "Layers to offload to a GPU (-1 = all). Accepted for compatibility with llama.cpp\n"
              "configurations; parley's engine runs on the CPU and ignores it." },
    { .section = "llm", .name = "max_tokens", INT_KEY, .offset = OFF(llm.max_tokens), .def_int = 512, .min = 1,
      .max = 1048576, .help = "Most tokens generated for one answer, unless a request asks for fewer." },
    { .section = "llm", .name = "temperature", FLOAT_KEY, .offset = OFF(llm.temperature), .def_float = 0.7,
      .min = 0, .max = 10, .help = "Sampling temperature; 0 = greedy (always the most likely token)." },
    { .section = "llm", .name = "top_p", FLOAT_KEY, .offset = OFF(llm.top_p), .def_float = 0.95, .min = 0, .max = 1,
      .help = "Nucleus sampling: sample from the smallest set of tokens whose probabilities add up\n"
              "to top_p; 1 = off." },
    { .section = "llm", .name = "top_k", INT_KEY, .offset = OFF(llm.top_k), .def_int = 40, .min = 0, .max = 1000000,
      .help = "Sample only from the k most likely tokens; 0 = off." },
    { .section = "llm", .name = "min_p", FLOAT_KEY, .offset = OFF(llm.min_p), .def_float = 0.05, .min = 0, .max = 1,
      .help = "Drop tokens less likely than min_p times the most likely one; 0 = off." },
    { .section = "llm", .name = "repeat_penalty", FLOAT_KEY, .offset = OFF(llm.repeat_penalty), .def_float = 1.0,
      .min = 0.1, .max = 10, .help = "Penalty on recently generated tokens; 1 = off, 1.1 is a mild setting." },
    { .section = "llm", .name = "history_budget", INT_KEY, .offset = OFF(llm.history_budget), .def_int = 0,
      .min = 0, .max = 1048576,
      .help = "Tokens of conversation history kept for the next turn; 0 = n_ctx - max_tokens. The\n"
              "system message stays; the oldest whole turns are dropped first." },
    { .section = "llm", .name = "reasoning", ENUM_KEY, .offset = OFF(llm.reasoning), .def_str = "separate",
      .choices = "separate|none|hidden",
      .help = "A thinking model's <think>...</think> text: separate (returned apart from the answer),\n"
              "none (left in the answer) or hidden (dropped)." },
    { .section = "llm", .name = "speed_mode", BOOL_KEY, .offset = OFF(llm.speed_mode), .def_bool = false,
      .help = "Latency first: greedy or low top-k sampling, no penalties and shorter limits." },

    /* ---- speech ---- */
    { .section = "speech", .name = "stt", ENUM_KEY, .offset = OFF(speech.stt), .def_str = "pocketsphinx",
      .choices = "pocketsphinx|whisper|none",
      .help = "Speech-to-text engine. whisper is far more accurate (about 8% word error rate for\n"
              "tiny.en against about 33% for pocketsphinx) once its model is pulled." },
    { .section = "speech", .name = "stt_model", STR_KEY, .offset = OFF(speech.stt_model),
      .def_str = "whisper-base.en",
      .help = "Whisper model for stt: whisper, a ggml file path or a store name (`parley pull whisper-base.en`)." },
    { .section = "speech", .name = "tts", ENUM_KEY, .offset = OFF(speech.tts), .def_str = "espeak",
      .choices = "espeak|none", .help = "Text-to-speech engine." },
    { .section = "speech", .name = "voice", STR_KEY, .offset = OFF(speech.voice), .def_str = "en-us",
      .help = "Text-to-speech voice, e.g. en-us, en-gb or de for espeak-ng." },
    { .section = "speech", .name = "vad_start_threshold", FLOAT_KEY, .offset = OFF(speech.vad_start_threshold),
      .def_float = 0.6, .min = 0, .max = 1,
      .help = "Voice activity detection: speech starts when its score rises above this." },
    { .section = "speech", .name = "vad_stop_threshold", FLOAT_KEY, .offset = OFF(speech.vad_stop_threshold),
      .def_float = 0.35, .min = 0, .max = 1,
      .help = "Speech stops when the score falls below this (at most vad_start_threshold: the gap\n"
              "keeps short dips from splitting a sentence)." },
    { .section = "speech", .name = "end_of_turn_ms", INT_KEY, .offset = OFF(speech.end_of_turn_ms),
      .def_int = 500, .min = 100, .max = 10000, .help = "Silence, in milliseconds, that ends the user's turn." },
    { .section = "speech", .name = "prefix_padding_ms", INT_KEY, .offset = OFF(speech.prefix_padding_ms),
      .def_int = 300, .min = 0, .max = 5000,
      .help = "Audio kept from before speech was detected, so the first syllable is not cut off." },

    /* ---- server ---- */
    { .section = "server", .name = "host", STR_KEY, .offset = OFF(server.host), .def_str = "127.0.0.1",
      .help = "Address to listen on; 0.0.0.0 accepts connections from other machines (set\n"
              "api_key_file then)." },
    { .section = "server", .name = "port", INT_KEY, .offset = OFF(server.port), .def_int = 8080, .min = 1,
      .max = 65535, .help = "TCP port to listen on." },
    { .section = "server", .name = "parallel", INT_KEY, .offset = OFF(server.parallel), .def_int = 4, .min = 1,
      .max = 256, .help = "Requests served at once (slots); each slot has its own KV cache." },
    { .section = "server", .name = "api_key_file", STR_KEY, .offset = OFF(server.api_key_file), .def_str = "",
      .help = "File holding the key clients must send as \"Authorization: Bearer KEY\"; empty = no key." },
    { .section = "server", .name = "timeout", INT_KEY, .offset = OFF(server.timeout), .def_int = 600, .min = 1,
      .max = 86400, .help = "Seconds one request may run before it is cancelled." },
};
#define N_KEYS (sizeof keys / sizeof keys[0])
_Static_assert(N_KEYS <= PL_CONFIG_MAX_KEYS, "raise PL_CONFIG_MAX_KEYS");

static const char *const type_names[PL_CONFIG_TYPE_COUNT] = {
    [PL_CONFIG_TYPE_INT] = "integer", [PL_CONFIG_TYPE_FLOAT] = "number", [PL_CONFIG_TYPE_BOOL] = "boolean",
    [PL_CONFIG_TYPE_STRING] = "string", [PL_CONFIG_TYPE_ENUM] = "one of",
};
static const char *const source_names[PL_CONFIG_SOURCE_COUNT] = {
    [PL_CONFIG_SOURCE_DEFAULT] = "default", [PL_CONFIG_SOURCE_FILE] = "file",
    [PL_CONFIG_SOURCE_ENV] = "env", [PL_CONFIG_SOURCE_FLAG] = "flag",
};

size_t pl_config_key_count(void) { return N_KEYS; }
const pl_config_key *pl_config_key_at(size_t i) { return i < N_KEYS ? &keys[i] : NULL; }
size_t pl_config_key_index(const pl_config_key *k) { return (size_t)(k - keys); }
const char *pl_config_type_name(pl_config_type t) {
    return (unsigned)t < PL_CONFIG_TYPE_COUNT ? type_names[t] : "unknown";
}
const char *pl_config_source_name(pl_config_source s) {
    return (unsigned)s < PL_CONFIG_SOURCE_COUNT ? source_names[s] : "unknown";
}

const pl_config_key *pl_config_key_in(const char *section, const char *name) {
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0) return &keys[i];
    return NULL;
}

const pl_config_key *pl_config_key_find(const char *dotted) {
    if (!dotted) return NULL;
    const char *dot = strchr(dotted, '.');
    if (!dot || (size_t)(dot - dotted) >= 32) return NULL;
    char sec[32];
    memcpy(sec, dotted, (size_t)(dot - dotted));
    sec[dot - dotted] = '\0';
    return pl_config_key_in(sec, dot + 1);
}

bool pl_config_section_known(const char *section) {
    for (size_t i = 0; i < N_SECTIONS; i++)
        if (strcmp(sections[i].name, section) == 0) return true;
    return false;
}

const char *pl_config_section_list(void) { return "llm, speech, server"; }

void pl_config_key_env_name(const pl_config_key *k, char *buf, size_t cap) {
    snprintf(buf, cap, "PARLEY_%s_%s", k->section, k->name);
    for (char *p = buf; *p; p++) *p = (char)toupper((unsigned char)*p);
}

/* Edit distance of two short strings (names are < 32 bytes; longer: "far"). */
static size_t edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 31 || m > 31) return 99;
    size_t row[32];
    for (size_t j = 0; j <= m; j++) row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t cur = row[j];
            size_t sub = prev + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            size_t del = row[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            prev = cur;
        }
    }
    return row[m];
}

void pl_config_suggest(const char *section, const char *name, char *buf, size_t cap) {
    buf[0] = '\0';
    size_t best = 3;
    const char *pick = NULL;
    for (size_t i = 0; i < N_KEYS; i++) {
        if (section && strcmp(keys[i].section, section) != 0) continue;
        size_t d = edit_distance(keys[i].name, name);
        if (d < best) best = d, pick = keys[i].name;
    }
    if (!section) {
        for (size_t i = 0; i < N_SECTIONS; i++) {
            size_t d = edit_distance(sections[i].name, name);
            if (d < best) best = d, pick = sections[i].name;
        }
    }
    if (pick) snprintf(buf, cap, " (did you mean '%s'?)", pick);
}

/* ---- objects ---- */

pl_status pl_config_errf(pl_config *c, pl_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[sizeof c->err];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(c->err, tmp, sizeof tmp);
    return st;
}

static void *field(pl_config *c, const pl_config_key *k) { return (char *)&c->v + k->offset; }
static const void *cfield(const pl_config *c, const pl_config_key *k) { return (const char *)&c->v + k->offset; }

pl_status pl_config_init(pl_ctx *ctx, pl_config **out) {
    if (!out) return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "config: out is NULL");
    *out = NULL;
    pl_config *c = pl_calloc(ctx, 1, sizeof *c);
    if (!c) return pl_ctx_err(ctx, PL_ERR_NOMEM, "config: out of memory");
    c->ctx = ctx;
    for (size_t i = 0; i < N_KEYS; i++) {
        const pl_config_key *k = &keys[i];
        void *f = field(c, k);
        switch (k->type) {
        case PL_CONFIG_TYPE_INT: *(int64_t *)f = k->def_int; break;
        case PL_CONFIG_TYPE_FLOAT: *(double *)f = k->def_float; break;
        case PL_CONFIG_TYPE_BOOL: *(bool *)f = k->def_bool; break;
        default:
            if (!(*(char **)f = pl_strdup(ctx, k->def_str))) {
                pl_config_free(c);
                return pl_ctx_err(ctx, PL_ERR_NOMEM, "config: out of memory");
            }
        }
        c->file_idx[i] = -1;
    }
    *out = c;
    return PL_OK;
}

void pl_config_free(pl_config *c) {
    if (!c) return;
    for (size_t i = 0; i < N_KEYS; i++)
        if (keys[i].type == PL_CONFIG_TYPE_STRING || keys[i].type == PL_CONFIG_TYPE_ENUM)
            pl_free(c->ctx, *(char **)field(c, &keys[i]));
    for (int i = 0; i < c->n_files; i++) pl_free(c->ctx, c->files[i]);
    pl_free(c->ctx, c);
}

const pl_config_values *pl_config_get(const pl_config *c) { return c ? &c->v : NULL; }
const char *pl_config_last_error(const pl_config *c) { return c ? c->err : ""; }
const char *pl_config_file(const pl_config *c) { return c ? c->loaded : ""; }

pl_config_source pl_config_source_of(const pl_config *c, const pl_config_key *k) {
    return c && k ? c->src[pl_config_key_index(k)] : PL_CONFIG_SOURCE_DEFAULT;
}

void pl_config_origin(const pl_config *c, const pl_config_key *k, char *buf, size_t cap) {
    size_t i = pl_config_key_index(k);
    switch (c->src[i]) {
    case PL_CONFIG_SOURCE_FILE:
        snprintf(buf, cap, "%s:%d", c->file_idx[i] >= 0 ? c->files[c->file_idx[i]] : "?", c->line[i]);
        break;
    case PL_CONFIG_SOURCE_ENV: snprintf(buf, cap, "env %s", c->origin[i]); break;
    case PL_CONFIG_SOURCE_FLAG: snprintf(buf, cap, "flag %s", c->origin[i]); break;
    default: snprintf(buf, cap, "default"); break;
    }
}

int pl_config_add_file(pl_config *c, const char *name) {
    for (int i = 0; i < c->n_files; i++)
        if (strcmp(c->files[i], name) == 0) return i;
    if (c->n_files == PL_CONFIG_MAX_FILES) return -1;
    char *d = pl_strdup(c->ctx, name);
    if (!d) return -1;
    c->files[c->n_files] = d;
    return c->n_files++;
}

/* ---- values ---- */

static bool parse_bool(const char *t, bool strict_yaml, bool *out) {
    static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(t, yes[i]) == 0) return *out = true, true;
        if (strcasecmp(t, no[i]) == 0) return *out = false, true;
    }
    if (!strict_yaml && (strcmp(t, "1") == 0 || strcmp(t, "0") == 0)) return *out = t[0] == '1', true;
    return false;
}

static void fmt_num(double v, char *buf, size_t cap) {
    snprintf(buf, cap, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, cap, "%.17g", v);
    if (!strpbrk(buf, ".eEn")) strncat(buf, ".0", cap - strlen(buf) - 1);
}

static void fmt_bound(const pl_config_key *k, double v, char *buf, size_t cap) {
    if (k->type == PL_CONFIG_TYPE_INT) snprintf(buf, cap, "%" PRId64, (int64_t)v);
    else snprintf(buf, cap, "%g", v);
}

pl_status pl_config_parse_value(pl_config *c, const pl_config_key *k, const char *t, bool strict_yaml,
                                pl_config_value *out, char *err, size_t cap) {
    memset(out, 0, sizeof *out);
    char lo[32], hi[32];
    fmt_bound(k, k->min, lo, sizeof lo);
    fmt_bound(k, k->max, hi, sizeof hi);
    switch (k->type) {
    case PL_CONFIG_TYPE_INT: {
        const char *p = t;
        if (*p == '+' || *p == '-') p++;
        bool digits = *p != '\0';
        for (; *p; p++) digits = digits && isdigit((unsigned char)*p);
        errno = 0;
        long long v = digits ? strtoll(t, NULL, 10) : 0;
        if (!digits) {
            snprintf(err, cap, "expected an integer, got '%.64s'", t);
            return PL_ERR_TYPE;
        }
        if (errno == ERANGE || (double)v < k->min || (double)v > k->max) {
            snprintf(err, cap, "%.64s is out of range [%s, %s]", t, lo, hi);
            return PL_ERR_RANGE;
        }
        out->i = v;
        return PL_OK;
    }
    case PL_CONFIG_TYPE_FLOAT: {
        char *end = NULL;
        errno = 0;
        double v = *t && !isspace((unsigned char)*t) ? strtod(t, &end) : 0;
        if (!end || *end || end == t || strpbrk(t, "xXpP")) {
            snprintf(err, cap, "expected a number, got '%.64s'", t);
            return PL_ERR_TYPE;
        }
        if (!isfinite(v) || v < k->min || v > k->max) {
            snprintf(err, cap, "%.64s is out of range [%s, %s]", t, lo, hi);
            return PL_ERR_RANGE;
        }
        out->f = v;
        return PL_OK;
    }
    case PL_CONFIG_TYPE_BOOL:
        if (!parse_bool(t, strict_yaml, &out->b)) {
            snprintf(err, cap, "expected true or false, got '%.64s'", t);
            return PL_ERR_TYPE;
        }
        return PL_OK;
    case PL_CONFIG_TYPE_ENUM: {
        size_t n = strlen(t);
        const char *ch = k->choices;
        while (*ch) {
            size_t len = strcspn(ch, "|");
            if (len == n && strncasecmp(ch, t, n) == 0) {
                out->s = pl_malloc(c->ctx, len + 1);
                if (!out->s) return PL_ERR_NOMEM;
                memcpy(out->s, ch, len); /* the canonical spelling */
                out->s[len] = '\0';
                return PL_OK;
            }
            ch += len + (ch[len] == '|');
        }
        snprintf(err, cap, "'%.64s' is not one of %s", t, k->choices);
        return PL_ERR_RANGE;
    }
    default:
        if (strlen(t) > PL_CONFIG_MAX_STRING) {
            snprintf(err, cap, "value is longer than %d bytes", PL_CONFIG_MAX_STRING);
            return PL_ERR_RANGE;
        }
        out->s = pl_strdup(c->ctx, t);
        return out->s ? PL_OK : PL_ERR_NOMEM;
    }
}

void pl_config_apply(pl_config *c, size_t ki, pl_config_value *v, pl_config_source src, int file_idx, int line,
                     const char *origin) {
    const pl_config_key *k = &keys[ki];
    if (src < c->src[ki]) {
        pl_free(c->ctx, v->s);
        v->s = NULL;
        return;
    }
    void *f = field(c, k);
    switch (k->type) {
    case PL_CONFIG_TYPE_INT: *(int64_t *)f = v->i; break;
    case PL_CONFIG_TYPE_FLOAT: *(double *)f = v->f; break;
    case PL_CONFIG_TYPE_BOOL: *(bool *)f = v->b; break;
    default:
        pl_free(c->ctx, *(char **)f);
        *(char **)f = v->s;
        v->s = NULL;
    }
    c->src[ki] = src;
    c->file_idx[ki] = file_idx;
    c->line[ki] = line;
    snprintf(c->origin[ki], sizeof c->origin[ki], "%s", origin ? origin : "");
}

pl_status pl_config_set(pl_config *c, const char *dotted, const char *value, pl_config_source src,
                        const char *origin) {
    if (!c || !dotted || !value || (unsigned)src >= PL_CONFIG_SOURCE_COUNT)
        return c ? pl_config_errf(c, PL_ERR_INVALID_ARG, "config: bad argument") : PL_ERR_INVALID_ARG;
    const char *who = origin && *origin ? origin : dotted;
    const pl_config_key *k = pl_config_key_find(dotted);
    if (!k) {
        char hint[96] = "";
        const char *dot = strchr(dotted, '.');
        if (dot) {
            char sec[32];
            snprintf(sec, sizeof sec, "%.*s", (int)(dot - dotted) < 31 ? (int)(dot - dotted) : 31, dotted);
            pl_config_suggest(pl_config_section_known(sec) ? sec : NULL, pl_config_section_known(sec) ? dot + 1 : sec,
                              hint, sizeof hint);
        }
        return pl_config_errf(c, PL_ERR_NOT_FOUND, "%s: unknown setting '%s'%s", who, dotted, hint);
    }
    pl_config_value v;
    char err[256];
    pl_status st = pl_config_parse_value(c, k, value, false, &v, err, sizeof err);
    if (st == PL_ERR_NOMEM) return pl_config_errf(c, st, "out of memory");
    if (st != PL_OK) return pl_config_errf(c, st, "%s: %s.%s: %s", who, k->section, k->name, err);
    pl_config_apply(c, pl_config_key_index(k), &v, src, -1, 0, who);
    return PL_OK;
}

/* ---- environment ---- */

pl_status pl_config_apply_env(pl_config *c, char *const *envp) {
    if (!c) return PL_ERR_INVALID_ARG;
    if (!envp) return PL_OK;
    static const char *const prefixes[] = { "PARLEY_LLM_", "PARLEY_SPEECH_", "PARLEY_SERVER_" };
    for (char *const *e = envp; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        size_t nl = (size_t)(eq - *e);
        bool ours = false;
        for (size_t p = 0; p < 3; p++) ours = ours || (nl > strlen(prefixes[p]) && strncmp(*e, prefixes[p], strlen(prefixes[p])) == 0);
        if (!ours) continue;
        char name[128];
        if (nl >= sizeof name) return pl_config_errf(c, PL_ERR_NOT_FOUND, "env %.40s...: unknown setting", *e);
        memcpy(name, *e, nl);
        name[nl] = '\0';
        const pl_config_key *k = NULL;
        char env[128];
        for (size_t i = 0; i < N_KEYS && !k; i++) {
            pl_config_key_env_name(&keys[i], env, sizeof env);
            if (strcmp(env, name) == 0) k = &keys[i];
        }
        if (!k) {
            /* suggest the nearest variable name */
            size_t best = 3;
            const char *pick = NULL;
            char near[128], cand[128];
            for (size_t i = 0; i < N_KEYS; i++) {
                pl_config_key_env_name(&keys[i], cand, sizeof cand);
                size_t d = edit_distance(cand + 7, name + 7);
                if (d < best) {
                    best = d;
                    snprintf(near, sizeof near, "%s", cand);
                    pick = near;
                }
            }
            return pl_config_errf(c, PL_ERR_NOT_FOUND, "env %s: unknown setting%s%s%s", name,
                                  pick ? " (did you mean " : "", pick ? pick : "", pick ? "?)" : "");
        }
        char dotted[96];
        snprintf(dotted, sizeof dotted, "%s.%s", k->section, k->name);
        char who[140];
        snprintf(who, sizeof who, "env %s", name);
        pl_config_value v;
        char err[256];
        pl_status st = pl_config_parse_value(c, k, eq + 1, false, &v, err, sizeof err);
        if (st == PL_ERR_NOMEM) return pl_config_errf(c, st, "out of memory");
        if (st != PL_OK) return pl_config_errf(c, st, "%s: %s", who, err);
        pl_config_apply(c, pl_config_key_index(k), &v, PL_CONFIG_SOURCE_ENV, -1, 0, name);
    }
    return PL_OK;
}

/* ---- files ---- */

static bool is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

pl_status pl_config_find_file(const char *cwd, const char *home, const char *xdg, char *out, size_t cap) {
    char p[4096];
    if (cwd && snprintf(p, sizeof p, "%s/parley.yaml", cwd) < (int)sizeof p && is_file(p)) {
        snprintf(out, cap, "%s", strcmp(cwd, ".") == 0 ? "parley.yaml" : p);
        return PL_OK;
    }
    if (xdg && *xdg) {
        if (snprintf(p, sizeof p, "%s/parley/parley.yaml", xdg) < (int)sizeof p && is_file(p)) {
            snprintf(out, cap, "%s", p);
            return PL_OK;
        }
    } else if (home && *home && snprintf(p, sizeof p, "%s/.config/parley/parley.yaml", home) < (int)sizeof p &&
               is_file(p)) {
        snprintf(out, cap, "%s", p);
        return PL_OK;
    }
    return PL_ERR_NOT_FOUND;
}

pl_status pl_config_load_file(pl_config *c, const char *path) {
    if (!c || !path) return PL_ERR_INVALID_ARG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pl_config_errf(c, errno == ENOENT ? PL_ERR_NOT_FOUND : PL_ERR_IO, "%s: %s", path, strerror(errno));
    /* read at most one byte past the cap: works for pipes and /dev/zero too */
    size_t cap = PL_CONFIG_MAX_FILE_BYTES + 1, len = 0;
    char *buf = pl_malloc(c->ctx, cap);
    pl_status st = buf ? PL_OK : pl_config_errf(c, PL_ERR_NOMEM, "out of memory");
    while (st == PL_OK && len < cap) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) st = pl_config_errf(c, PL_ERR_IO, "%s: %s", path, strerror(errno));
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(fd);
    if (st == PL_OK && len > PL_CONFIG_MAX_FILE_BYTES)
        st = pl_config_errf(c, PL_ERR_RANGE, "%s:1: the file is over %d KiB; a config file is a few KiB", path,
                            PL_CONFIG_MAX_FILE_BYTES / 1024);
    if (st == PL_OK) st = pl_config_load_yaml(c, path, buf, len);
    if (st == PL_OK) snprintf(c->loaded, sizeof c->loaded, "%s", path);
    pl_free(c->ctx, buf);
    return st;
}

pl_status pl_config_validate(pl_config *c) {
    if (!c) return PL_ERR_INVALID_ARG;
    if (c->v.speech.vad_stop_threshold > c->v.speech.vad_start_threshold) {
        const pl_config_key *a = pl_config_key_find("speech.vad_stop_threshold");
        const pl_config_key *b = pl_config_key_find("speech.vad_start_threshold");
        char oa[256], ob[256];
        pl_config_origin(c, a, oa, sizeof oa);
        pl_config_origin(c, b, ob, sizeof ob);
        /* blame the value that was set explicitly (the later source) */
        bool blame_a = pl_config_source_of(c, a) >= pl_config_source_of(c, b);
        return pl_config_errf(c, PL_ERR_RANGE,
                              "%s: speech.vad_stop_threshold (%g) must not exceed speech.vad_start_threshold (%g, %s)",
                              blame_a ? oa : ob, c->v.speech.vad_stop_threshold, c->v.speech.vad_start_threshold,
                              blame_a ? ob : oa);
    }
    return PL_OK;
}

pl_status pl_config_load(pl_config *c, const char *explicit_path, char *const *envp) {
    if (!c) return PL_ERR_INVALID_ARG;
    pl_status st;
    if (explicit_path) {
        st = pl_config_load_file(c, explicit_path);
        if (st != PL_OK) return st;
    } else {
        char path[4096];
        if (pl_config_find_file(".", getenv("HOME"), getenv("XDG_CONFIG_HOME"), path, sizeof path) == PL_OK &&
            (st = pl_config_load_file(c, path)) != PL_OK)
            return st;
    }
    st = pl_config_apply_env(c, envp);
    if (st != PL_OK) return st;
    return pl_config_validate(c);
}

/* ---- text output ---- */

typedef struct sbuf {
    pl_ctx *ctx;
    char   *p;
    size_t  len, cap;
    bool    oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) { b->oom = true; return; }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = b->cap ? b->cap * 2 : 4096;
        while (nc < b->len + (size_t)n + 1) nc *= 2;
        char *np = pl_realloc(b->ctx, b->p, nc);
        if (!np) { b->oom = true; return; }
        b->p = np;
        b->cap = nc;
    }
}

/* Code point of the UTF-8 sequence at p (n bytes left) and its length; -1 when invalid. */
static int32_t utf8_next(const unsigned char *p, size_t n, size_t *len) {
    int32_t cp;
    size_t need;
    if (p[0] < 0x80) { *len = 1; return p[0]; }
    if ((p[0] & 0xe0) == 0xc0) cp = p[0] & 0x1f, need = 2;
    else if ((p[0] & 0xf0) == 0xe0) cp = p[0] & 0x0f, need = 3;
    else if ((p[0] & 0xf8) == 0xf0) cp = p[0] & 0x07, need = 4;
    else return -1;
    if (n < need) return -1;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80) return -1;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    static const int32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (cp < min_cp[need] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
    *len = need;
    return cp;
}

/* A YAML double-quoted string that reads back to the same bytes: escapes the
 * quote and backslash, and every character YAML would not keep as is (C0 and
 * C1 controls, DEL, the line breaks NEL/LS/PS that flow scalars fold, BOM,
 * U+FFFE/FFFF). Bytes that are not UTF-8 (possible from env or flags only)
 * come out as \xNN. */
static void sb_quoted(sbuf *b, const char *s) {
    sb_printf(b, "\"");
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n > 0) {
        size_t len = 1;
        int32_t cp = utf8_next(p, n, &len);
        if (cp < 0) sb_printf(b, "\\x%02x", p[0]);
        else if (cp == '"' || cp == '\\') sb_printf(b, "\\%c", (char)cp);
        else if (cp == '\n') sb_printf(b, "\\n");
        else if (cp == '\t') sb_printf(b, "\\t");
        else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) sb_printf(b, "\\x%02x", (unsigned)cp);
        else if (cp == 0x2028 || cp == 0x2029 || cp == 0xfeff || cp == 0xfffe || cp == 0xffff)
            sb_printf(b, "\\u%04x", (unsigned)cp);
        else sb_printf(b, "%.*s", (int)len, (const char *)p);
        p += len;
        n -= len;
    }
    sb_printf(b, "\"");
}

static void value_yaml(sbuf *b, const pl_config_key *k, const void *f) {
    char num[40];
    switch (k->type) {
    case PL_CONFIG_TYPE_INT: sb_printf(b, "%" PRId64, *(const int64_t *)f); break;
    case PL_CONFIG_TYPE_FLOAT: fmt_num(*(const double *)f, num, sizeof num); sb_printf(b, "%s", num); break;
    case PL_CONFIG_TYPE_BOOL: sb_printf(b, "%s", *(const bool *)f ? "true" : "false"); break;
    case PL_CONFIG_TYPE_ENUM: sb_printf(b, "%s", *(char *const *)f); break;
    default: sb_quoted(b, *(char *const *)f); break;
    }
}

pl_status pl_config_value_text(const pl_config *c, const pl_config_key *k, char *buf, size_t cap) {
    if (!c || !k || !buf || cap == 0) return PL_ERR_INVALID_ARG;
    const void *f = cfield(c, k);
    char num[40];
    switch (k->type) {
    case PL_CONFIG_TYPE_INT: snprintf(buf, cap, "%" PRId64, *(const int64_t *)f); break;
    case PL_CONFIG_TYPE_FLOAT: fmt_num(*(const double *)f, num, sizeof num); snprintf(buf, cap, "%s", num); break;
    case PL_CONFIG_TYPE_BOOL: snprintf(buf, cap, "%s", *(const bool *)f ? "true" : "false"); break;
    default: snprintf(buf, cap, "%s", *(char *const *)f); break;
    }
    return PL_OK;
}

static pl_status sb_finish(sbuf *b, char **out) {
    if (b->oom || !b->p) {
        pl_free(b->ctx, b->p);
        *out = NULL;
        return PL_ERR_NOMEM;
    }
    *out = b->p;
    return PL_OK;
}

pl_status pl_config_format(const pl_config *c, char **out) {
    if (!c || !out) return PL_ERR_INVALID_ARG;
    sbuf b = { .ctx = c->ctx };
    sb_printf(&b, "# effective parley configuration; after each value, where it came from\n");
    sb_printf(&b, "# (precedence: flag > env > file > default); file: %s\n", c->loaded[0] ? c->loaded : "none");
    for (size_t s = 0; s < N_SECTIONS; s++) {
        sb_printf(&b, "%s:\n", sections[s].name);
        for (size_t i = 0; i < N_KEYS; i++) {
            if (strcmp(keys[i].section, sections[s].name) != 0) continue;
            size_t start = b.len;
            sb_printf(&b, "  %s: ", keys[i].name);
            value_yaml(&b, &keys[i], cfield(c, &keys[i]));
            size_t w = b.oom ? 0 : b.len - start;
            char origin[4200];
            pl_config_origin(c, &keys[i], origin, sizeof origin);
            sb_printf(&b, "%*s  # %s\n", w < 40 ? (int)(40 - w) : 0, "", origin);
        }
    }
    return sb_finish(&b, out);
}

/* Help text: each line as a "  # " comment. */
static void sb_comment(sbuf *b, const char *indent, const char *text) {
    while (*text) {
        size_t n = strcspn(text, "\n");
        if (n) sb_printf(b, "%s# %.*s\n", indent, (int)n, text);
        else sb_printf(b, "%s#\n", indent);
        text += n + (text[n] == '\n');
    }
}

pl_status pl_config_example(pl_ctx *ctx, char **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    sbuf b = { .ctx = ctx };
    sb_comment(&b, "",
               "parley.example.yaml - every setting parley reads, at its default.\n"
               "Generated by `parley config --example` from the key table in src/config/config.c;\n"
               "a test checks that this file matches it.\n"
               "\n"
               "parley reads parley.yaml from the current directory, else\n"
               "~/.config/parley/parley.yaml ($XDG_CONFIG_HOME/parley/ when that is set), or the\n"
               "file named by `--config FILE`. Copy this file there and change what you need;\n"
               "keys you leave out keep their defaults.\n"
               "\n"
               "Precedence, highest first: command-line flag, environment variable, this file,\n"
               "the built-in default. Every key has an environment variable named\n"
               "PARLEY_<SECTION>_<KEY> in upper case, e.g. PARLEY_LLM_N_CTX=8192 or\n"
               "PARLEY_SERVER_PORT=9000. `parley config --print` shows the effective values and\n"
               "where each one came from.\n"
               "\n"
               "Unknown keys, wrong types and out-of-range values are errors (FILE:LINE: message).");
    for (size_t s = 0; s < N_SECTIONS; s++) {
        sb_printf(&b, "\n");
        sb_comment(&b, "", sections[s].help);
        sb_printf(&b, "%s:\n", sections[s].name);
        bool first = true;
        for (size_t i = 0; i < N_KEYS; i++) {
            const pl_config_key *k = &keys[i];
            if (strcmp(k->section, sections[s].name) != 0) continue;
            if (!first) sb_printf(&b, "\n");
            first = false;
            sb_comment(&b, "  ", k->help);
            char env[128], lo[32], hi[32];
            pl_config_key_env_name(k, env, sizeof env);
            if (k->type == PL_CONFIG_TYPE_INT || k->type == PL_CONFIG_TYPE_FLOAT) {
                fmt_bound(k, k->min, lo, sizeof lo);
                fmt_bound(k, k->max, hi, sizeof hi);
                sb_printf(&b, "  # %s, %s..%s; env %s\n", type_names[k->type], lo, hi, env);
            } else if (k->type == PL_CONFIG_TYPE_ENUM) {
                sb_printf(&b, "  # one of: ");
                for (const char *ch = k->choices; *ch;) {
                    size_t len = strcspn(ch, "|");
                    sb_printf(&b, "%.*s%s", (int)len, ch, ch[len] ? ", " : "");
                    ch += len + (ch[len] == '|');
                }
                sb_printf(&b, "; env %s\n", env);
            } else {
                sb_printf(&b, "  # %s; env %s\n", type_names[k->type], env);
            }
            sb_printf(&b, "  %s: ", k->name);
            switch (k->type) {
            case PL_CONFIG_TYPE_INT: sb_printf(&b, "%" PRId64, k->def_int); break;
            case PL_CONFIG_TYPE_FLOAT: {
                char num[40];
                fmt_num(k->def_float, num, sizeof num);
                sb_printf(&b, "%s", num);
                break;
            }
            case PL_CONFIG_TYPE_BOOL: sb_printf(&b, "%s", k->def_bool ? "true" : "false"); break;
            case PL_CONFIG_TYPE_ENUM: sb_printf(&b, "%s", k->def_str); break;
            default: sb_quoted(&b, k->def_str); break;
            }
            sb_printf(&b, "\n");
        }
    }
    return sb_finish(&b, out);
}
