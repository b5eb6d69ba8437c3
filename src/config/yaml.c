/*
 * yaml.c - read parley.yaml with libyaml's event parser.
 *
 * The accepted shape is fixed (a mapping of sections, each a mapping of keys
 * to scalars), so the reader walks parser events with a small state machine
 * and stops at the first event that does not fit: a list, a nested mapping, a
 * second document, an alias of a collection. Nothing deeper than two levels
 * is ever built, so a deeply nested or alias-heavy input costs one event
 * before it is refused. Values are checked into a staging list first and
 * applied only when the whole file is good.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include "config_int.h"

#define MAX_ANCHORS 64

typedef struct anchor {
    char  name[64];
    char *value;     /* NULL for a mapping or list */
    bool  literal;   /* quoted or !!str: a string, not a number */
    bool  is_null;
} anchor;

typedef struct staged {
    size_t          ki;
    pl_config_value v;
    int             line;
} staged;

typedef enum state {
    S_DOC = 0,     /* expecting a document or the end of the stream */
    S_ROOT,        /* expecting the root node */
    S_ROOT_KEY,
    S_ROOT_VALUE,
    S_SEC_KEY,
    S_SEC_VALUE,
    S_DOC_END,     /* the root is complete */
} state;

typedef struct reader {
    pl_config  *c;
    const char *name;
    anchor      anchors[MAX_ANCHORS];
    int         n_anchors;
    staged      vals[PL_CONFIG_MAX_KEYS];
    size_t      n_vals;
    int         key_line[PL_CONFIG_MAX_KEYS];     /* where each key was set (0: not yet) */
    int         section_line[8];
    const char *section;                          /* current section (static name) */
    const pl_config_key *key;                     /* key whose value comes next */
    int         docs;
} reader;

static pl_status fail(reader *r, int line, pl_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static pl_status fail(reader *r, int line, pl_status st, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pl_config_errf(r->c, st, "%s:%d: %s", r->name, line, msg);
}

static int line_of(const yaml_event_t *e) { return (int)e->start_mark.line + 1; }

static bool tag_is(const yaml_char_t *tag, const char *what) {
    static const char prefix[] = "tag:yaml.org,2002:";
    return tag && strncmp((const char *)tag, prefix, sizeof prefix - 1) == 0 &&
           strcmp((const char *)tag + sizeof prefix - 1, what) == 0;
}

static bool scalar_is_null(const yaml_event_t *e) {
    if (e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || (e->data.scalar.tag && !tag_is(e->data.scalar.tag, "null")))
        return false;
    const char *v = (const char *)e->data.scalar.value;
    return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* Tags: only the standard scalar ones; !!str makes a string. */
static pl_status check_tag(reader *r, const yaml_event_t *e, const yaml_char_t *tag) {
    static const char *const ok[] = { "str", "int", "float", "bool", "null" };
    if (!tag) return PL_OK;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (tag_is(tag, ok[i])) return PL_OK;
    return fail(r, line_of(e), PL_ERR_FORMAT, "unsupported tag '%.64s'", (const char *)tag);
}

static pl_status remember_anchor(reader *r, const yaml_event_t *e, const yaml_char_t *name, const char *value,
                                 bool literal, bool is_null) {
    if (!name) return PL_OK;
    if (r->n_anchors == MAX_ANCHORS) return fail(r, line_of(e), PL_ERR_RANGE, "more than %d anchors", MAX_ANCHORS);
    anchor *a = &r->anchors[r->n_anchors];
    snprintf(a->name, sizeof a->name, "%s", (const char *)name);
    a->value = NULL;
    if (value && !(a->value = pl_strdup(r->c->ctx, value))) return pl_config_errf(r->c, PL_ERR_NOMEM, "out of memory");
    a->literal = literal;
    a->is_null = is_null;
    r->n_anchors++;
    return PL_OK;
}

static const anchor *find_anchor(const reader *r, const char *name) {
    for (int i = r->n_anchors - 1; i >= 0; i--) /* the latest definition wins */
        if (strcmp(r->anchors[i].name, name) == 0) return &r->anchors[i];
    return NULL;
}

/* A scalar value for r->key: type-check and stage it. */
static pl_status stage_value(reader *r, int line, const char *text, bool literal, bool is_null) {
    const pl_config_key *k = r->key;
    char err[256];
    pl_config_value v;
    bool numeric = k->type == PL_CONFIG_TYPE_INT || k->type == PL_CONFIG_TYPE_FLOAT || k->type == PL_CONFIG_TYPE_BOOL;
    if (is_null && k->type != PL_CONFIG_TYPE_STRING)
        return fail(r, line, PL_ERR_TYPE, "%s.%s needs a value (%s%s%s)", k->section, k->name,
                    pl_config_type_name(k->type), k->choices ? " " : "", k->choices ? k->choices : "");
    if (numeric && literal)
        return fail(r, line, PL_ERR_TYPE, "%s.%s: expected %s %s, got the string \"%.64s\"", k->section, k->name,
                    k->type == PL_CONFIG_TYPE_INT ? "an" : "a", pl_config_type_name(k->type), text);
    pl_status st = pl_config_parse_value(r->c, k, is_null ? "" : text, true, &v, err, sizeof err);
    if (st == PL_ERR_NOMEM) return pl_config_errf(r->c, st, "out of memory");
    if (st != PL_OK) return fail(r, line, st, "%s.%s: %s", k->section, k->name, err);
    staged *s = &r->vals[r->n_vals++];
    s->ki = pl_config_key_index(k);
    s->v = v;
    s->line = line;
    return PL_OK;
}

static const char *node_kind(yaml_event_type_t t) {
    return t == YAML_SEQUENCE_START_EVENT ? "a list" : t == YAML_MAPPING_START_EVENT ? "a mapping" : "an alias";
}

static int section_index(const char *s) {
    return strcmp(s, "llm") == 0 ? 0 : strcmp(s, "speech") == 0 ? 1 : 2;
}

static const char *section_name(int i) { return i == 0 ? "llm" : i == 1 ? "speech" : "server"; }

static pl_status on_event(reader *r, state *s, yaml_event_t *e) {
    int line = line_of(e);
    yaml_event_type_t t = e->type;
    if (t == YAML_STREAM_START_EVENT || t == YAML_STREAM_END_EVENT) return PL_OK;
    if (t == YAML_DOCUMENT_START_EVENT) {
        if (++r->docs > 1) return fail(r, line, PL_ERR_FORMAT, "only one YAML document is allowed (a second begins here)");
        *s = S_ROOT;
        return PL_OK;
    }
    if (t == YAML_DOCUMENT_END_EVENT) {
        *s = S_DOC;
        return PL_OK;
    }
    if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT) {
        const yaml_char_t *a = t == YAML_MAPPING_START_EVENT ? e->data.mapping_start.anchor : e->data.sequence_start.anchor;
        const yaml_char_t *tag = t == YAML_MAPPING_START_EVENT ? e->data.mapping_start.tag : e->data.sequence_start.tag;
        if (tag && !tag_is(tag, "map") && !tag_is(tag, "seq"))
            return fail(r, line, PL_ERR_FORMAT, "unsupported tag '%.64s'", (const char *)tag);
        pl_status st = remember_anchor(r, e, a, NULL, false, false);
        if (st != PL_OK) return st;
    }
    if (t == YAML_SCALAR_EVENT) {
        pl_status st = check_tag(r, e, e->data.scalar.tag);
        if (st != PL_OK) return st;
    }

    switch (*s) {
    case S_ROOT:
        if (t == YAML_MAPPING_START_EVENT) {
            *s = S_ROOT_KEY;
            return PL_OK;
        }
        if (t == YAML_SCALAR_EVENT && scalar_is_null(e)) {
            *s = S_DOC_END; /* an empty document: all defaults */
            return PL_OK;
        }
        return fail(r, line, PL_ERR_FORMAT, "the top level must be a mapping of sections (%s), not %s",
                    pl_config_section_list(), t == YAML_SCALAR_EVENT ? "a scalar" : node_kind(t));
    case S_ROOT_KEY:
        if (t == YAML_MAPPING_END_EVENT) {
            *s = S_DOC_END;
            return PL_OK;
        }
        if (t != YAML_SCALAR_EVENT) return fail(r, line, PL_ERR_FORMAT, "a section name must be a plain word");
        {
            const char *name = (const char *)e->data.scalar.value;
            if (strcmp(name, "<<") == 0) return fail(r, line, PL_ERR_UNSUPPORTED, "merge keys (<<) are not supported");
            if (!pl_config_section_known(name)) {
                char hint[96];
                pl_config_suggest(NULL, name, hint, sizeof hint);
                return fail(r, line, PL_ERR_NOT_FOUND, "unknown section '%.64s'%s; the sections are %s", name, hint,
                            pl_config_section_list());
            }
            int si = section_index(name);
            if (r->section_line[si])
                return fail(r, line, PL_ERR_EXISTS, "duplicate section '%s' (first at line %d)", name,
                            r->section_line[si]);
            r->section_line[si] = line;
            r->section = section_name(si);
            *s = S_ROOT_VALUE;
            return PL_OK;
        }
    case S_ROOT_VALUE:
        if (t == YAML_MAPPING_START_EVENT) {
            *s = S_SEC_KEY;
            return PL_OK;
        }
        if (t == YAML_SCALAR_EVENT && scalar_is_null(e)) {
            *s = S_ROOT_KEY; /* "llm:" with nothing under it */
            return PL_OK;
        }
        if (t == YAML_ALIAS_EVENT)
            return fail(r, line, PL_ERR_UNSUPPORTED, "section '%s': aliases of whole sections are not supported",
                        r->section);
        return fail(r, line, PL_ERR_TYPE, "section '%s' must be a mapping of keys, not %s", r->section,
                    t == YAML_SCALAR_EVENT ? "a scalar" : node_kind(t));
    case S_SEC_KEY:
        if (t == YAML_MAPPING_END_EVENT) {
            *s = S_ROOT_KEY;
            return PL_OK;
        }
        if (t != YAML_SCALAR_EVENT) return fail(r, line, PL_ERR_FORMAT, "a key in '%s' must be a plain name", r->section);
        {
            const char *name = (const char *)e->data.scalar.value;
            if (strcmp(name, "<<") == 0) return fail(r, line, PL_ERR_UNSUPPORTED, "merge keys (<<) are not supported");
            const pl_config_key *k = pl_config_key_in(r->section, name);
            if (!k) {
                char hint[96];
                pl_config_suggest(r->section, name, hint, sizeof hint);
                return fail(r, line, PL_ERR_NOT_FOUND, "unknown key '%.64s' in section '%s'%s", name, r->section, hint);
            }
            size_t ki = pl_config_key_index(k);
            if (r->key_line[ki])
                return fail(r, line, PL_ERR_EXISTS, "duplicate key %s.%s (first at line %d)", k->section, k->name,
                            r->key_line[ki]);
            r->key_line[ki] = line;
            r->key = k;
            *s = S_SEC_VALUE;
            return PL_OK;
        }
    case S_SEC_VALUE: {
        const pl_config_key *k = r->key;
        *s = S_SEC_KEY;
        if (t == YAML_SCALAR_EVENT) {
            const char *v = (const char *)e->data.scalar.value;
            bool literal = e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || tag_is(e->data.scalar.tag, "str");
            bool is_null = scalar_is_null(e);
            if (strlen(v) != e->data.scalar.length)
                return fail(r, line, PL_ERR_FORMAT, "%s.%s: the value contains a NUL character", k->section, k->name);
            pl_status st = remember_anchor(r, e, e->data.scalar.anchor, v, literal, is_null);
            if (st != PL_OK) return st;
            return stage_value(r, line, v, literal, is_null);
        }
        if (t == YAML_ALIAS_EVENT) {
            const char *an = (const char *)e->data.alias.anchor;
            const anchor *a = find_anchor(r, an);
            if (!a) return fail(r, line, PL_ERR_FORMAT, "alias *%.64s is not defined before this line", an);
            if (!a->value)
                return fail(r, line, PL_ERR_TYPE, "%s.%s: alias *%.64s refers to a mapping or list, not a value",
                            k->section, k->name, an);
            return stage_value(r, line, a->value, a->literal, a->is_null);
        }
        return fail(r, line, PL_ERR_TYPE, "%s.%s: expected a single value (%s), not %s", k->section, k->name,
                    pl_config_type_name(k->type), node_kind(t));
    }
    case S_DOC_END:
    case S_DOC:
    default:
        return fail(r, line, PL_ERR_FORMAT, "unexpected content after the document");
    }
}

pl_status pl_config_load_yaml(pl_config *c, const char *name, const char *text, size_t len) {
    if (!c || (!text && len)) return PL_ERR_INVALID_ARG;
    if (!name) name = "<config>";
    if (len > PL_CONFIG_MAX_FILE_BYTES)
        return pl_config_errf(c, PL_ERR_RANGE, "%s:1: the file is over %d KiB; a config file is a few KiB", name,
                              PL_CONFIG_MAX_FILE_BYTES / 1024);
    const char *nul = len ? memchr(text, '\0', len) : NULL;
    if (nul) {
        int line = 1;
        for (const char *p = text; p < nul; p++) line += *p == '\n';
        return pl_config_errf(c, PL_ERR_FORMAT, "%s:%d: the file contains a NUL byte (not a text file?)", name, line);
    }
    reader *r = pl_calloc(c->ctx, 1, sizeof *r);
    if (!r) return pl_config_errf(c, PL_ERR_NOMEM, "out of memory");
    r->c = c;
    r->name = name;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        pl_free(c->ctx, r);
        return pl_config_errf(c, PL_ERR_NOMEM, "out of memory");
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)(text ? text : ""), len);
    state s = S_DOC;
    pl_status st = PL_OK;
    for (;;) {
        yaml_event_t e;
        if (!yaml_parser_parse(&p, &e)) {
            size_t line = p.problem_mark.line + 1;
            if (p.error == YAML_READER_ERROR) {
                /* encoding errors carry a byte offset, not a mark */
                line = 1;
                for (size_t i = 0; i < p.problem_offset && i < len; i++) line += text[i] == '\n';
            }
            st = pl_config_errf(c, PL_ERR_FORMAT, "%s:%zu: %s%s%s%s", name, line,
                                p.error == YAML_READER_ERROR ? "not valid UTF-8 text: " : "YAML syntax error: ",
                                p.problem ? p.problem : "unknown", p.context ? " " : "", p.context ? p.context : "");
            break;
        }
        bool end = e.type == YAML_STREAM_END_EVENT;
        st = on_event(r, &s, &e);
        yaml_event_delete(&e);
        if (st != PL_OK || end) break;
    }
    yaml_parser_delete(&p);
    int fi = -1;
    if (st == PL_OK && r->n_vals && (fi = pl_config_add_file(c, name)) < 0)
        st = c->n_files == PL_CONFIG_MAX_FILES ? pl_config_errf(c, PL_ERR_RANGE, "%s: too many config files", name)
                                               : pl_config_errf(c, PL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < r->n_vals; i++) {
        if (st == PL_OK) pl_config_apply(c, r->vals[i].ki, &r->vals[i].v, PL_CONFIG_SOURCE_FILE, fi, r->vals[i].line, NULL);
        else pl_free(c->ctx, r->vals[i].v.s);
    }
    for (int i = 0; i < r->n_anchors; i++) pl_free(c->ctx, r->anchors[i].value);
    pl_free(c->ctx, r);
    return st;
}
