/*
 * template_lex.c - Jinja tokenizer with the whitespace rules HF renders with.
 *
 * The data between tags is trimmed here, exactly as jinja2's lexer does:
 *  - `{%-` / `{{-` / `{#-` strip all whitespace before the tag;
 *  - `-%}` / `-}}` / `-#}` strip all whitespace after it;
 *  - trim_blocks: one "\n" right after `%}` or `#}` is dropped (not after `}}`,
 *    not after `+%}`, and not after `{% raw %}`);
 *  - lstrip_blocks: spaces and tabs between the start of a line and `{%` / `{#`
 *    are dropped, unless the tag says `{%+`. "Start of a line" also holds at
 *    the start of the template and right after a tag end that ended in "\n".
 * Inside tags, `%}` / `}}` only end the tag when (), [] and {} are balanced.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template_int.h"

typedef struct lexer {
    pl_ctx     *ctx;
    pl_arena   *arena;
    const char *s;
    size_t      n, pos;
    int         line, col;    /* of pos */
    token      *toks;
    size_t      ntoks, cap;
    tmpl_err   *err;
    bool        line_starting;
} lexer;

static bool lex_fail(lexer *L, int line, int col, pl_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static bool lex_fail(lexer *L, int line, int col, pl_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->err->msg, sizeof L->err->msg, fmt, ap);
    va_end(ap);
    L->err->st = st;
    L->err->line = line;
    L->err->col = col;
    return false;
}

/* Move pos to `to`, keeping line/column (columns count code points). */
static void advance(lexer *L, size_t to) {
    for (size_t i = L->pos; i < to; i++) {
        unsigned char c = (unsigned char)L->s[i];
        if (c == '\n') {
            L->line++;
            L->col = 1;
        } else if ((c & 0xC0) != 0x80) {
            L->col++;
        }
    }
    L->pos = to;
}

static token *push(lexer *L, tk kind, int line, int col) {
    if (L->ntoks == L->cap) {
        size_t nc = L->cap ? L->cap * 2 : 256, bytes;
        if (!pl_size_mul(nc, sizeof(token), &bytes)) return NULL;
        token *t = pl_realloc(L->ctx, L->toks, bytes);
        if (!t) {
            lex_fail(L, line, col, PL_ERR_NOMEM, "out of memory");
            return NULL;
        }
        L->toks = t;
        L->cap = nc;
    }
    token *t = &L->toks[L->ntoks++];
    memset(t, 0, sizeof *t);
    t->kind = (uint8_t)kind;
    t->line = line;
    t->col = col;
    return t;
}

static bool push_data(lexer *L, size_t from, size_t to, int line, int col) {
    if (to <= from) return true;
    token *t = push(L, TK_DATA, line, col);
    if (!t) return false;
    t->s = (tstr){ L->s + from, to - from };
    return true;
}

/* Whitespace skip inside tags and after `-%}`: Python's \s. */
static size_t skip_ws(const char *s, size_t n, size_t i) {
    size_t k;
    while (i < n && (k = py_space_at(s + i, n - i)) > 0) i += k;
    return i;
}

/* The data text [from, to) before a tag with strip sign `sign`, trimmed per
 * the rules above; lstrip applies to block and comment tags only. */
static size_t trim_data_end(lexer *L, size_t from, size_t to, char sign, bool lstrip_ok) {
    const char *s = L->s;
    if (sign == '-') {
        size_t k;
        while (to > from && (k = py_space_before(s + from, to - from)) > 0) to -= k;
        return to;
    }
    if (sign == '+' || !lstrip_ok) return to;
    size_t lpos = to;
    while (lpos > from && s[lpos - 1] != '\n') lpos--;
    if (lpos == from && !L->line_starting) return to;
    if (lpos == to) return to;
    for (size_t i = lpos; i < to;) {
        size_t k = py_space_at(s + i, to - i);
        if (k == 0 || s[i] == '\n') return to;
        i += k;
    }
    return lpos;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Python's unicode-escape decoding of a string literal body [p, p+n). */
static bool decode_string(lexer *L, const char *p, size_t n, int line, int col, tstr *out) {
    char *o = pl_arena_alloc(L->arena, n + 1, 1);
    if (!o) return lex_fail(L, line, col, PL_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        char c = p[i];
        if (c != '\\' || i + 1 >= n) {
            o[k++] = c;
            i++;
            continue;
        }
        char e = p[i + 1];
        i += 2;
        uint32_t cp;
        int digits = 0;
        switch (e) {
        case '\n': continue;
        case '\\': o[k++] = '\\'; continue;
        case '\'': o[k++] = '\''; continue;
        case '"': o[k++] = '"'; continue;
        case 'a': o[k++] = '\a'; continue;
        case 'b': o[k++] = '\b'; continue;
        case 'f': o[k++] = '\f'; continue;
        case 'n': o[k++] = '\n'; continue;
        case 'r': o[k++] = '\r'; continue;
        case 't': o[k++] = '\t'; continue;
        case 'v': o[k++] = '\v'; continue;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        case 'N':
            return lex_fail(L, line, col, PL_ERR_UNSUPPORTED, "\\N{...} escapes are not supported");
        default:
            if (e >= '0' && e <= '7') {
                cp = (uint32_t)(e - '0');
                for (int d = 0; d < 2 && i < n && p[i] >= '0' && p[i] <= '7'; d++, i++)
                    cp = cp * 8 + (uint32_t)(p[i] - '0');
                char u[4];
                size_t m = u8_encode(cp, u);
                memcpy(o + k, u, m);
                k += m;
                continue;
            }
            o[k++] = '\\';
            o[k++] = e;
            continue;
        }
        cp = 0;
        for (int d = 0; d < digits; d++) {
            int h = i + (size_t)d < n ? hexval(p[i + (size_t)d]) : -1;
            if (h < 0)
                return lex_fail(L, line, col, PL_ERR_FORMAT, "truncated \\%c escape in a string", e);
            cp = cp * 16 + (uint32_t)h;
        }
        i += (size_t)digits;
        if (cp > 0x10FFFF)
            return lex_fail(L, line, col, PL_ERR_FORMAT, "illegal Unicode character in a string escape");
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
        char u[4];
        size_t m = u8_encode(cp, u);
        /* an escape never produces more bytes than it took (\x: 4 chars -> <= 2 bytes) */
        memcpy(o + k, u, m);
        k += m;
    }
    o[k] = 0;
    *out = (tstr){ o, k };
    return true;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

/* digits with single underscores between them ("1_000"); returns the end or i. */
static size_t scan_digits(const char *s, size_t n, size_t i) {
    if (i >= n || !is_digit(s[i])) return i;
    i++;
    for (;;) {
        if (i < n && is_digit(s[i])) i++;
        else if (i + 1 < n && s[i] == '_' && is_digit(s[i + 1])) i += 2;
        else return i;
    }
}

/* Number at i: float per jinja's float_re, else integer per integer_re. */
static bool lex_number(lexer *L, size_t *ip, int line, int col) {
    const char *s = L->s;
    size_t n = L->n, i = *ip;
    bool after_dot = i > 0 && s[i - 1] == '.';
    size_t e = scan_digits(s, n, i), fend = 0;
    if (!after_dot) {
        size_t j = e;
        bool frac = false;
        if (j + 1 < n && s[j] == '.' && is_digit(s[j + 1])) {
            j = scan_digits(s, n, j + 1);
            frac = true;
        }
        size_t x = j;
        if (x < n && (s[x] == 'e' || s[x] == 'E')) {
            x++;
            if (x < n && (s[x] == '+' || s[x] == '-')) x++;
            size_t y = scan_digits(s, n, x);
            if (y > x) fend = y;
        }
        if (!fend && frac) fend = j;
    }
    if (fend) {
        char buf[128];
        size_t k = 0;
        for (size_t q = i; q < fend && k + 1 < sizeof buf; q++)
            if (s[q] != '_') buf[k++] = s[q];
        buf[k] = 0;
        token *t = push(L, TK_FLOAT, line, col);
        if (!t) return false;
        t->f = strtod(buf, NULL);
        *ip = fend;
        return true;
    }
    /* integers: 0b / 0o / 0x, [1-9](_?\d)*, 0(_?0)* */
    int base = 10;
    size_t j = i;
    if (s[i] == '0' && i + 1 < n && strchr("bBoOxX", s[i + 1]) && s[i + 1]) {
        char b = (char)(s[i + 1] | 0x20);
        base = b == 'b' ? 2 : b == 'o' ? 8 : 16;
        j = i + 2;
        size_t start = j;
        for (;;) {
            size_t q = j < n && s[j] == '_' ? j + 1 : j;
            int h = q < n ? hexval(s[q]) : -1;
            if (h < 0 || h >= base) break;
            j = q + 1;
        }
        if (j == start) { base = 10; j = i; }
    }
    if (base == 10) {
        if (s[i] == '0') {
            j = i + 1;
            for (;;) {
                if (j < n && s[j] == '0') j++;
                else if (j + 1 < n && s[j] == '_' && s[j + 1] == '0') j += 2;
                else break;
            }
        } else {
            j = e;
        }
    }
    uint64_t v = 0;
    size_t from = base == 10 ? i : i + 2;
    for (size_t q = from; q < j; q++) {
        if (s[q] == '_') continue;
        uint64_t d = (uint64_t)hexval(s[q]);
        if (v > (UINT64_MAX - d) / (uint64_t)base || v * (uint64_t)base + d > (uint64_t)INT64_MAX)
            return lex_fail(L, line, col, PL_ERR_RANGE, "integer literal too large");
        v = v * (uint64_t)base + d;
    }
    token *t = push(L, TK_INT, line, col);
    if (!t) return false;
    t->i = (int64_t)v;
    *ip = j;
    return true;
}

static const struct { const char *s; uint8_t op; } ops2[] = {
    { "//", OP_FLOORDIV }, { "**", OP_POW }, { "==", OP_EQ }, { "!=", OP_NE },
    { ">=", OP_GE },       { "<=", OP_LE },
};
static const char ops1_chars[] = "+-/*%~[](){}><=.:|,;";
static const uint8_t ops1_codes[] = {
    OP_ADD, OP_SUB, OP_DIV, OP_MUL, OP_MOD, OP_TILDE, OP_LBRACKET, OP_RBRACKET, OP_LPAREN,
    OP_RPAREN, OP_LBRACE, OP_RBRACE, OP_GT, OP_LT, OP_ASSIGN, OP_DOT, OP_COLON, OP_PIPE,
    OP_COMMA, OP_SEMI,
};

/* Tokens of one {{ }} or {% %} tag, up to and including its end. */
static bool lex_tag(lexer *L, bool block, int tag_line, int tag_col) {
    const char *s = L->s;
    size_t n = L->n;
    char stack[64];
    size_t depth = 0;
    for (;;) {
        size_t i = skip_ws(s, n, L->pos);
        advance(L, i);
        if (i >= n)
            return lex_fail(L, tag_line, tag_col, PL_ERR_FORMAT, "unexpected end of template inside a %s",
                            block ? "block tag '{%'" : "print tag '{{'");
        int line = L->line, col = L->col;
        if (depth == 0) {
            /* end rules first, as jinja tries them before the operator rules */
            size_t end = 0;
            bool found = false;
            if (block) {
                if (n - i >= 3 && s[i] == '+' && s[i + 1] == '%' && s[i + 2] == '}') {
                    end = i + 3;
                    found = true;
                } else if (n - i >= 3 && s[i] == '-' && s[i + 1] == '%' && s[i + 2] == '}') {
                    end = skip_ws(s, n, i + 3);
                    found = true;
                } else if (n - i >= 2 && s[i] == '%' && s[i + 1] == '}') {
                    end = i + 2;
                    if (end < n && s[end] == '\n') end++;
                    found = true;
                }
            } else {
                if (n - i >= 3 && s[i] == '-' && s[i + 1] == '}' && s[i + 2] == '}') {
                    end = skip_ws(s, n, i + 3);
                    found = true;
                } else if (n - i >= 2 && s[i] == '}' && s[i + 1] == '}') {
                    end = i + 2;
                    found = true;
                }
            }
            if (found) {
                if (!push(L, block ? TK_BLOCK_END : TK_VAR_END, line, col)) return false;
                L->line_starting = s[end - 1] == '\n';
                advance(L, end);
                return true;
            }
        }
        char c = s[i];
        if (is_digit(c)) {
            size_t j = i;
            if (!lex_number(L, &j, line, col)) return false;
            advance(L, j);
            continue;
        }
        if (is_name_start(c)) {
            size_t j = i + 1;
            while (j < n && is_name_char(s[j])) j++;
            token *t = push(L, TK_NAME, line, col);
            if (!t) return false;
            t->s = (tstr){ s + i, j - i };
            advance(L, j);
            continue;
        }
        if (c == '\'' || c == '"') {
            size_t j = i + 1;
            while (j < n && s[j] != c) j += s[j] == '\\' ? 2 : 1;
            if (j >= n) return lex_fail(L, line, col, PL_ERR_FORMAT, "unterminated string literal");
            token *t = push(L, TK_STRING, line, col);
            if (!t) return false;
            tstr v;
            if (!decode_string(L, s + i + 1, j - i - 1, line, col, &v)) return false;
            L->toks[L->ntoks - 1].s = v;
            advance(L, j + 1);
            continue;
        }
        uint8_t op = OP_NONE;
        size_t len = 0;
        for (size_t k = 0; k < sizeof ops2 / sizeof ops2[0]; k++)
            if (n - i >= 2 && s[i] == ops2[k].s[0] && s[i + 1] == ops2[k].s[1]) {
                op = ops2[k].op;
                len = 2;
                break;
            }
        if (!op) {
            const char *q = c ? strchr(ops1_chars, c) : NULL;
            if (q) {
                op = ops1_codes[q - ops1_chars];
                len = 1;
            }
        }
        if (!op) {
            if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
                return lex_fail(L, line, col, PL_ERR_FORMAT, "unexpected character 0x%02x in a tag",
                                (unsigned char)c);
            return lex_fail(L, line, col, PL_ERR_FORMAT, "unexpected character '%c' in a tag", c);
        }
        if (op == OP_LPAREN || op == OP_LBRACKET || op == OP_LBRACE) {
            if (depth == sizeof stack)
                return lex_fail(L, line, col, PL_ERR_RANGE, "brackets nested too deeply");
            stack[depth++] = op == OP_LPAREN ? ')' : op == OP_LBRACKET ? ']' : '}';
        } else if (op == OP_RPAREN || op == OP_RBRACKET || op == OP_RBRACE) {
            if (depth == 0) return lex_fail(L, line, col, PL_ERR_FORMAT, "unexpected '%c'", c);
            if (stack[depth - 1] != c)
                return lex_fail(L, line, col, PL_ERR_FORMAT, "unexpected '%c', expected '%c'", c,
                                stack[depth - 1]);
            depth--;
        }
        token *t = push(L, TK_OP, line, col);
        if (!t) return false;
        t->op = op;
        advance(L, i + len);
    }
}

/* `{% raw %}` at i (with sign already known)? Sets *body_start past the tag. */
static bool match_raw_begin(const char *s, size_t n, size_t i, size_t *body_start) {
    size_t j = i + 2;
    if (j < n && (s[j] == '-' || s[j] == '+')) j++;
    j = skip_ws(s, n, j);
    if (n - j < 3 || memcmp(s + j, "raw", 3) != 0) return false;
    j = skip_ws(s, n, j + 3);
    if (n - j >= 3 && s[j] == '-' && s[j + 1] == '%' && s[j + 2] == '}') {
        *body_start = skip_ws(s, n, j + 3);
        return true;
    }
    if (n - j >= 2 && s[j] == '%' && s[j + 1] == '}') {
        *body_start = j + 2;
        return true;
    }
    return false;
}

/* Find `{%[-+]? endraw [-+]?%}` from i: start of the tag, its sign and end. */
static bool find_endraw(const char *s, size_t n, size_t i, size_t *tag, char *sign, size_t *end) {
    for (; i + 1 < n; i++) {
        if (s[i] != '{' || s[i + 1] != '%') continue;
        size_t j = i + 2;
        char sg = 0;
        if (j < n && (s[j] == '-' || s[j] == '+')) sg = s[j++];
        j = skip_ws(s, n, j);
        if (n - j < 6 || memcmp(s + j, "endraw", 6) != 0) continue;
        j = skip_ws(s, n, j + 6);
        if (n - j >= 3 && s[j] == '+' && s[j + 1] == '%' && s[j + 2] == '}') {
            *end = j + 3;
        } else if (n - j >= 3 && s[j] == '-' && s[j + 1] == '%' && s[j + 2] == '}') {
            *end = skip_ws(s, n, j + 3);
        } else if (n - j >= 2 && s[j] == '%' && s[j + 1] == '}') {
            *end = j + 2;
            if (*end < n && s[*end] == '\n') (*end)++;
        } else {
            continue;
        }
        *tag = i;
        *sign = sg;
        return true;
    }
    return false;
}

bool tmpl_lex(pl_ctx *ctx, pl_arena *arena, const char *src, size_t len, token **toks,
              size_t *ntoks, tmpl_err *err) {
    lexer L = { .ctx = ctx, .arena = arena, .s = src, .n = len, .line = 1, .col = 1,
                .err = err, .line_starting = true };
    *toks = NULL;
    *ntoks = 0;
    for (;;) {
        /* next tag start */
        size_t i = L.pos, at = len;
        char kind = 0;
        while (i + 1 < len) {
            const char *q = memchr(src + i, '{', len - i - 1);
            if (!q) break;
            i = (size_t)(q - src);
            char k = src[i + 1];
            if (k == '{' || k == '%' || k == '#') {
                at = i;
                kind = k;
                break;
            }
            i++;
        }
        int dline = L.line, dcol = L.col;
        if (!kind) {
            if (!push_data(&L, L.pos, len, dline, dcol)) goto fail;
            break;
        }
        char sign = at + 2 < len && (src[at + 2] == '-' || src[at + 2] == '+') ? src[at + 2] : 0;
        size_t raw_body = 0;
        bool raw = kind == '%' && match_raw_begin(src, len, at, &raw_body);
        size_t dend = trim_data_end(&L, L.pos, at, sign, kind != '{');
        if (!push_data(&L, L.pos, dend, dline, dcol)) goto fail;
        advance(&L, at);
        int tline = L.line, tcol = L.col;
        if (raw) {
            size_t tag, end;
            char esign;
            L.line_starting = src[raw_body - 1] == '\n';
            advance(&L, raw_body);
            if (!find_endraw(src, len, raw_body, &tag, &esign, &end)) {
                lex_fail(&L, tline, tcol, PL_ERR_FORMAT, "missing end of raw directive");
                goto fail;
            }
            int bline = L.line, bcol = L.col;
            size_t bend = trim_data_end(&L, raw_body, tag, esign, true);
            if (!push_data(&L, raw_body, bend, bline, bcol)) goto fail;
            L.line_starting = src[end - 1] == '\n';
            advance(&L, end);
            continue;
        }
        advance(&L, at + 2 + (sign ? 1 : 0));
        if (kind == '#') {
            size_t j = L.pos;
            const char *q = NULL;
            while (j + 1 < len) {
                q = memchr(src + j, '#', len - j - 1);
                if (!q) break;
                if (q[1] == '}') break;
                j = (size_t)(q - src) + 1;
                q = NULL;
            }
            if (!q || (size_t)(q - src) + 1 >= len) {
                lex_fail(&L, tline, tcol, PL_ERR_FORMAT, "missing end of comment tag");
                goto fail;
            }
            size_t close = (size_t)(q - src), end = close + 2;
            char esign = close > L.pos && (src[close - 1] == '-' || src[close - 1] == '+') ? src[close - 1] : 0;
            if (esign == '-') end = skip_ws(src, len, end);
            else if (!esign && end < len && src[end] == '\n') end++;
            L.line_starting = src[end - 1] == '\n';
            advance(&L, end);
            continue;
        }
        bool block = kind == '%';
        if (!push(&L, block ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, tline, tcol)) goto fail;
        if (!lex_tag(&L, block, tline, tcol)) goto fail;
    }
    if (!push(&L, TK_EOF, L.line, L.col)) goto fail;
    *toks = L.toks;
    *ntoks = L.ntoks;
    return true;
fail:
    pl_free(ctx, L.toks);
    return false;
}
