/*
 * template_int.h - private to the chat-template engine (src/chat/template_*.c).
 *
 * Pipeline: template_lex.c turns the (newline-normalized) source into tokens,
 * applying Jinja's whitespace rules (trim_blocks, lstrip_blocks, -/+ markers)
 * to the data between tags; template_parse.c builds an AST in the template's
 * arena; template_eval.c walks it with values (below) allocated in a
 * per-render arena; template_value.c holds value helpers (equality, ordering,
 * str()/repr()/json.dumps formatting, UTF-8); template_builtins.c the tables of
 * filters, tests, methods and global functions.
 *
 * Values are 24-byte tagged unions passed by value. Strings, lists and dicts
 * are immutable after construction (the Jinja sandbox forbids mutation), so
 * they are shared freely; only namespaces (and the loop object) mutate.
 */
#ifndef PL_CHAT_TEMPLATE_INT_H
#define PL_CHAT_TEMPLATE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"
#include "parley/template.h"

#define TMPL_MAX_SOURCE      (1u << 20) /* bytes of template source */
#define TMPL_MAX_PARSE_DEPTH 200        /* nesting of statements + expressions */
#define TMPL_MAX_VALUE_DEPTH 500        /* nesting walked by ==, repr, tojson */
#define TMPL_MAX_ARGS        8          /* named parameters of one builtin */
#define TMPL_ERR_CAP         400

/* ---- strings ---- */

typedef struct tstr {
    const char *p;
    size_t      n;
} tstr;

#define TSTR_LIT(s) ((tstr){ (s), sizeof(s) - 1 })

bool tstr_eq(tstr a, tstr b);
bool tstr_eqc(tstr a, const char *c);

/* ---- values ---- */

typedef enum jt {
    JT_UNDEF = 0, /* u.s: the missing name (for messages); flags: UNDEF_ATTR when an attribute */
    JT_NONE,
    JT_BOOL,
    JT_INT,
    JT_FLOAT,
    JT_STR,
    JT_LIST,   /* flags: LIST_TUPLE renders as a tuple; LIST_GEN is a one-shot generator */
    JT_DICT,
    JT_NS,     /* namespace(): mutable attributes */
    JT_LOOP,   /* the `loop` object of a for */
    JT_MACRO,
    JT_FUNC,   /* a global builtin function: id = index in the globals table */
    JT_METHOD, /* a builtin method bound to a value */
    JT_COUNT
} jt;

enum { UNDEF_ATTR = 1, LIST_TUPLE = 1, LIST_GEN = 2 };

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jns jns;
typedef struct jloop jloop;
typedef struct jmacro jmacro;
typedef struct jmethod jmethod;

typedef struct jv {
    uint8_t  t;     /* jt */
    uint8_t  flags;
    uint16_t id;    /* JT_FUNC: global id */
    union {
        bool     b;
        int64_t  i;
        double   f;
        tstr     s;
        jlist   *l;
        jdict   *d;
        jns     *ns;
        jloop   *loop;
        jmacro  *m;
        jmethod *bm;
    } u;
} jv;

/* A generator (what jinja's map/select/... return) is a list with LIST_GEN:
 * always true, no len(), no indexing, and iterating consumes it (pos). */
struct jlist {
    size_t      n;
    jv         *v;
    size_t      pos; /* generators: items already consumed */
    const char *err; /* generators: the error iterating raises (jinja's filters are lazy) */
};
struct jdict { size_t n; jv *k; jv *v; };            /* insertion order kept */
struct jns   { size_t n, cap; tstr *k; jv *v; };
struct jloop { const jv *items; size_t n, i; int depth0; };

typedef struct node node;
typedef struct frame frame;

struct jmacro {
    const node   *def;     /* S_MACRO or the S_CALLBLOCK (its body is the caller) */
    frame        *closure; /* the frame the macro was defined in */
    const jv     *caller;  /* NULL, or the caller macro for {% call %} */
    bool          is_caller;
};
struct jmethod { jv self; uint16_t id; };

static inline jv jv_undef(void) { jv v = { .t = JT_UNDEF }; return v; }
static inline jv jv_none(void) { jv v = { .t = JT_NONE }; return v; }
static inline jv jv_bool(bool b) { jv v = { .t = JT_BOOL, .u.b = b }; return v; }
static inline jv jv_int(int64_t i) { jv v = { .t = JT_INT, .u.i = i }; return v; }
static inline jv jv_float(double f) { jv v = { .t = JT_FLOAT, .u.f = f }; return v; }
static inline jv jv_str(const char *p, size_t n) { jv v = { .t = JT_STR, .u.s = { p, n } }; return v; }
static inline bool jv_is_num(const jv *v) { return v->t == JT_INT || v->t == JT_FLOAT || v->t == JT_BOOL; }
static inline bool jv_is_gen(const jv *v) { return v->t == JT_LIST && (v->flags & LIST_GEN); }

/* ---- tokens ---- */

typedef enum tk {
    TK_EOF = 0, TK_DATA, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN, TK_BLOCK_END,
    TK_NAME, TK_STRING, TK_INT, TK_FLOAT, TK_OP
} tk;

typedef enum top {
    OP_NONE = 0, OP_ADD, OP_SUB, OP_DIV, OP_FLOORDIV, OP_MUL, OP_MOD, OP_POW, OP_TILDE,
    OP_LBRACKET, OP_RBRACKET, OP_LPAREN, OP_RPAREN, OP_LBRACE, OP_RBRACE,
    OP_EQ, OP_NE, OP_GT, OP_GE, OP_LT, OP_LE, OP_ASSIGN, OP_DOT, OP_COLON, OP_PIPE,
    OP_COMMA, OP_SEMI,
    /* not lexed; used in the AST */
    OP_IN, OP_NOTIN, OP_AND, OP_OR, OP_NOT, OP_NEG, OP_POS,
    OP_COUNT
} top;

typedef struct token {
    uint8_t kind; /* tk */
    uint8_t op;   /* top for TK_OP */
    int     line, col;
    tstr    s;    /* TK_NAME, TK_DATA, TK_STRING (decoded) */
    int64_t i;
    double  f;
} token;

/* ---- AST ---- */

typedef enum nk {
    /* expressions */
    E_CONST = 0, E_NAME, E_LIST, E_TUPLE, E_DICT, E_ATTR, E_ITEM, E_SLICE, E_CALL,
    E_FILTER, E_TEST, E_UNARY, E_BIN, E_CONCAT, E_CMP, E_COND,
    /* statements */
    S_DATA, S_OUT, S_IF, S_FOR, S_SET, S_SET_NS, S_SETBLOCK, S_MACRO, S_CALLBLOCK,
    S_FILTERBLOCK, S_BREAK, S_CONTINUE, S_WITH, S_BLOCK,
    NK_COUNT
} nk;

enum { MACRO_CALLER = 1, MACRO_VARARGS = 2, MACRO_KWARGS = 4 };

/* One generic node; which fields mean what per kind:
 *  E_CONST val | E_NAME sym, val.u.s=name | E_LIST/E_TUPLE list[n]
 *  E_DICT list[n]=keys list2[n]=values | E_ATTR a.val.u.s | E_ITEM a[b]
 *  E_SLICE a[b:c:d] (NULL parts) | E_CALL a(list[n], names[n2]=list2[n2], *c, **d)
 *  E_FILTER op=filter id, a=value (NULL in filter blocks), args as E_CALL
 *  E_TEST op=test id, flags=negated, args as E_CALL | E_UNARY op a | E_BIN op a b
 *  E_CONCAT list[n] | E_CMP a, ops[n], list[n] | E_COND b if a else c
 *  S_DATA val | S_OUT a | S_IF a, list[n] body, list2[n2] else
 *  S_FOR syms[nnames] targets, a iter, b filter, list body, list2 else
 *  S_SET syms[nnames] = a | S_SET_NS sym.val.u.s = a | S_SETBLOCK sym, list body
 *  S_MACRO sym, names/syms[nnames] params, list2[nnames] defaults (NULL: none),
 *          list body, flags MACRO_* | S_CALLBLOCK a call, params as S_MACRO, list body
 *  S_FILTERBLOCK list2[n2] filters (E_FILTER, a NULL), list body
 *  S_WITH syms[nnames] = list2[nnames], list body | S_BLOCK list body */
struct node {
    uint8_t   kind;  /* nk */
    uint8_t   op;
    uint8_t   flags;
    uint32_t  sym;
    int       line, col;
    jv        val;
    node     *a, *b, *c, *d;
    node    **list, **list2;
    uint32_t  n, n2;
    tstr     *names;
    uint32_t *syms;
    uint8_t  *ops;
    uint32_t  nnames;
};

#define SYM_NONE UINT32_MAX

struct pl_template {
    pl_ctx    *ctx;
    pl_arena  *arena;
    node     **body;
    uint32_t   n;
    tstr      *syms;       /* symbol names, by id */
    int16_t   *sym_global; /* per symbol: global builtin id or -1 */
    uint32_t   nsyms, cap_syms;
    uint32_t   sym_loop, sym_caller, sym_varargs, sym_kwargs;
};

/* ---- compile side ---- */

typedef struct tmpl_err {
    pl_status st;
    int       line, col;
    char      msg[TMPL_ERR_CAP];
} tmpl_err;

/* Tokenize src (already newline-normalized) into *toks (pl_realloc'd on ctx;
 * the caller frees). Strings are decoded into arena. */
bool tmpl_lex(pl_ctx *ctx, pl_arena *arena, const char *src, size_t len, token **toks,
              size_t *ntoks, tmpl_err *err);
bool tmpl_parse(pl_template *t, const token *toks, size_t ntoks, tmpl_err *err);
uint32_t tmpl_sym(pl_template *t, tstr name); /* intern; SYM_NONE on OOM */
uint32_t tmpl_sym_find(const pl_template *t, tstr name);

/* ---- render side ---- */

typedef struct sink {
    char  *p;
    size_t n, cap;
} sink;

struct frame {
    frame    *parent;
    uint32_t  n, cap;
    uint32_t *syms;
    jv       *vals;
};

typedef struct rt {
    pl_ctx                   *ctx;
    const pl_template        *t;
    const pl_template_params *p;
    pl_arena                 *arena;
    size_t                    mem, max_mem;
    sink                     *out;       /* current sink (main or a capture) */
    pl_template_buf          *buf;       /* main output */
    size_t                    out_base, max_out;
    uint64_t                  steps, max_steps;
    int                       depth, max_depth;
    int                       loop_ctl;  /* 0, 1 break, 2 continue */
    const node               *at;        /* node of the current call, for positions */
    pl_status                 st;        /* first error */
    bool                      raised;
    int                       line, col;
    char                      msg[TMPL_ERR_CAP];
} rt;

/* Record the first error (later ones are ignored); returns false. */
bool rt_err(rt *r, const node *at, pl_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
bool rt_undef_err(rt *r, const node *at, const jv *u);
void *rt_alloc(rt *r, size_t size);                       /* arena, counted; error on failure */
void *rt_alloc_n(rt *r, size_t n, size_t size);           /* overflow-checked */
char *rt_strdup(rt *r, const char *p, size_t n);
bool rt_step(rt *r, uint64_t n);                          /* count work; error past the cap */

/* string builder in the render arena */
typedef struct sbuf {
    rt    *r;
    char  *p;
    size_t n, cap;
    bool   ok;
} sbuf;
void sb_init(sbuf *b, rt *r);
void sb_put(sbuf *b, const char *p, size_t n);
void sb_putc(sbuf *b, char c);
void sb_puts(sbuf *b, const char *s);
jv sb_value(sbuf *b); /* the string so far (undefined on failure) */

/* ---- value helpers (template_value.c) ---- */

const char *jv_type_name(const jv *v);
bool jv_truthy(const jv *v);
/* Python ==. depth guards recursion. */
bool jv_eq(rt *r, const jv *a, const jv *b, bool *out);
/* Python <: -1, 0, 1 into *out; error (TypeError) when unordered. */
bool jv_cmp(rt *r, const jv *a, const jv *b, int *out);
/* str(v) appended to b; repr when repr is true. */
bool jv_write(rt *r, sbuf *b, const jv *v, bool repr);
/* str(v) as a string value (strings themselves are returned as is). */
bool jv_to_str(rt *r, const jv *v, jv *out);
/* Python float repr into buf (>= 32 bytes). */
void fmt_pyfloat(double d, char *buf, size_t cap);

typedef struct json_opts {
    const char *indent;   /* NULL: no newlines */
    tstr        item_sep, key_sep;
    bool        sort_keys, ensure_ascii;
} json_opts;
bool jv_json(rt *r, sbuf *b, const jv *v, const json_opts *o);

/* lists and dicts */
jlist *jl_new(rt *r, size_t n);
jdict *jd_new(rt *r, size_t cap);
bool jd_get(rt *r, const jdict *d, const jv *key, jv *out, bool *found);
bool jd_getc(const jdict *d, tstr key, jv *out); /* string key fast path */
bool jns_get(const jns *ns, tstr key, jv *out);
bool jns_set(rt *r, jns *ns, tstr key, jv val);

/* Materialize iteration (list items, dict keys, string characters;
 * undefined is empty). Error for non-iterables. */
bool jv_iter(rt *r, const jv *v, const jv **items, size_t *n);

/* UTF-8 and Python's whitespace */
size_t u8_len(const char *p, size_t n);                 /* code points */
size_t u8_next(const char *p, size_t n, size_t i);      /* index after the code point at i */
size_t u8_offset(const char *p, size_t n, size_t cp);   /* byte offset of code point cp (n if past) */
uint32_t u8_decode(const char *p, size_t n, size_t *adv);
size_t u8_encode(uint32_t cp, char out[4]);
size_t py_space_at(const char *p, size_t n);            /* bytes of the whitespace char at p, or 0 */
size_t py_space_before(const char *p, size_t n);        /* bytes of a whitespace char ending at p+n, or 0 */
tstr py_strip(tstr s, bool left, bool right, const tstr *chars);
uint32_t py_upper(uint32_t c);
uint32_t py_lower(uint32_t c);
bool py_isalpha(uint32_t c);

/* ---- builtins (template_builtins.c) ---- */

/* A call's arguments as written: positionals, then keywords. */
typedef struct tcall {
    const jv   *pos;
    size_t      npos;
    const tstr *kwn;
    const jv   *kwv;
    size_t      nkw;
} tcall;

typedef bool (*tmpl_fn)(rt *r, const jv *self, const tcall *c, jv *out);

typedef struct tmpl_builtin {
    const char *name;
    tmpl_fn     fn;
} tmpl_builtin;

int tmpl_filter_find(tstr name);
int tmpl_test_find(tstr name);
int tmpl_global_find(tstr name);
int tmpl_method_find(const jv *self, tstr name);
const char *tmpl_global_name(int id);
bool tmpl_call_filter(rt *r, int id, const jv *v, const tcall *c, jv *out);
bool tmpl_call_test(rt *r, int id, const jv *v, const tcall *c, bool *out);
bool tmpl_call_global(rt *r, int id, const tcall *c, jv *out);
bool tmpl_call_method(rt *r, int id, const jv *self, const tcall *c, jv *out);

/* Python getattr / getitem as Jinja's sandbox does them. */
bool tmpl_getattr(rt *r, const jv *obj, tstr name, jv *out);
bool tmpl_getitem(rt *r, const jv *obj, const jv *key, jv *out);

/* Bind a call's arguments to named parameters the way a Python signature
 * would; has[i] tells which were given. Errors on unknown/extra arguments.
 * TMPL_BIND("fname", "p1", "p2") declares jv a[2] and bool h[2] from `c`. */
#define TMPL_BIND(fname, ...)                                                              \
    static const char *const params_[] = { __VA_ARGS__ };                                  \
    enum { NP_ = sizeof params_ / sizeof params_[0] };                                     \
    jv a[NP_];                                                                             \
    bool h[NP_];                                                                           \
    if (!tmpl_bind(r, fname, c, params_, NP_, a, h)) return false

bool tmpl_bind(rt *r, const char *fname, const tcall *c, const char *const *params, size_t np, jv *vals,
               bool *has);
/* Case mapping over a string. mode: 0 lower, 1 upper, 2 capitalize,
 * 3 jinja's title filter, 4 str.title(), 5 swapcase. */
bool tmpl_map_case(rt *r, tstr s, int mode, jv *out);
/* Python str methods by name (template_strings.c). */
bool tmpl_str_method(rt *r, tstr name, const jv *self, const tcall *c, jv *out);
bool tmpl_binop(rt *r, const node *at, int op, const jv *a, const jv *b, jv *out);
/* Python's fmt % args (a subset of printf conversions). `mapping` is set when
 * the right operand was a list or dict: then unused arguments are no error. */
bool tmpl_percent_format(rt *r, tstr fmt, const jv *args, size_t nargs, bool mapping, jv *out);
/* A 2-tuple (key, value) */
jv tmpl_pair(rt *r, jv a, jv b);

static inline bool tmpl_no_args(rt *r, const char *fname, const tcall *c) {
    if (c->npos || c->nkw) return rt_err(r, NULL, PL_ERR_FORMAT, "%s() takes no arguments", fname);
    return true;
}
static inline bool tmpl_want_str(rt *r, const char *fname, const jv *v, tstr *out) {
    *out = (tstr){ "", 0 };
    if (v->t == JT_STR) { *out = v->u.s; return true; }
    if (v->t == JT_UNDEF) return rt_undef_err(r, NULL, v);
    return rt_err(r, NULL, PL_ERR_FORMAT, "%s: expected a string, got '%s'", fname, jv_type_name(v));
}
static inline bool tmpl_want_int(rt *r, const char *fname, const jv *v, int64_t *out) {
    *out = 0;
    if (v->t == JT_INT || v->t == JT_BOOL) { *out = v->t == JT_BOOL ? v->u.b : v->u.i; return true; }
    if (v->t == JT_UNDEF) return rt_undef_err(r, NULL, v);
    return rt_err(r, NULL, PL_ERR_FORMAT, "%s: expected an integer, got '%s'", fname, jv_type_name(v));
}
static inline jv jv_list(jlist *l, bool tuple) { return (jv){ .t = JT_LIST, .flags = tuple ? LIST_TUPLE : 0, .u.l = l }; }
static inline jv jv_gen(jlist *l) { return (jv){ .t = JT_LIST, .flags = LIST_GEN, .u.l = l }; }
bool tmpl_contains(rt *r, const node *at, const jv *hay, const jv *needle, bool *out);

/* ---- evaluator (template_eval.c) ---- */

frame *tmpl_frame_new(rt *r, frame *parent);
bool tmpl_frame_set(rt *r, frame *f, uint32_t sym, jv v);
bool tmpl_exec(rt *r, node *const *body, uint32_t n, frame *f);
bool tmpl_call_macro(rt *r, const jv *m, const tcall *c, jv *out);

#endif /* PL_CHAT_TEMPLATE_INT_H */
