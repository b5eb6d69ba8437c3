/*
 * speak.c - markdown-ish model output to speakable plain text (see
 * parley/text.h for what is removed and what is kept).
 *
 * Input is cut into units (one ASCII byte or one whole UTF-8 character; the
 * bytes of a character split across feeds wait in u8[]). Emoji units are
 * dropped on arrival, invalid bytes too. Each unit then goes through a state
 * machine with two levels:
 *
 *   line level (mode M_LINE): the start of a line, where block markers live
 *     (# > - * + 1. | ``` ---). The few bytes of a marker are held in hold[]
 *     until it is decided; a line that turns out to be plain text is replayed.
 *   inline level (mode M_INLINE): emphasis markers are dropped, and short
 *     constructs are held in hold[] (h = H_*) until decided: a possible URL
 *     ("https://", "www."), a tag ("<|im_end|>", "<br>"), an entity ("&amp;"),
 *     "![", "](", "_" and "\". When one fails, its first byte is emitted as
 *     text and the rest is replayed.
 *
 * Replay: failed bytes go to the front of rp[], which the feed loop drains
 * before taking the next input unit. Every failure emits or drops at least one
 * byte, so replay always terminates; rp[] needs at most HOLD_CAP + a unit.
 *
 * Output: visible text goes through out_vis(), which first writes a pending
 * single space (runs of spaces collapse to one, and none is written at a line
 * start or end) or, in a table row, a pending ", " between cells. Newlines
 * collapse to at most one blank line. Output is staged in out[] and flushed
 * when full and at the end of each feed.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "chat/text_int.h"

#define HOLD_CAP 64    /* longest held construct (a tag, a host is capped too) */
#define HOST_CAP 253   /* longest host name kept */
#define SKIP_MAX 2048  /* longest link target / image text skipped */
#define OUT_CAP  256
#define RP_CAP   (HOLD_CAP + HOST_CAP + 8)

enum { M_LINE, M_INLINE, M_SKIPLINE };
enum { LS_BEGIN, LS_HASH, LS_MARK, LS_RULE, LS_NUM, LS_NUMDOT, LS_TABLE, LS_FENCE, LS_CFENCE };
enum {
    H_NONE, H_UNDERSCORE, H_BACKSLASH, H_RBRACKET, H_BANG, H_SKIP_ALT, H_ALT_END, H_SKIP_PAREN,
    H_TAG, H_ENTITY, H_URLCAND, H_URL_HOST, H_URL_PATH
};

struct pl_speakable {
    pl_ctx *ctx;
    char *phrase;
    size_t phrase_len;
    bool url_host;
    /* input */
    unsigned char u8[4];
    size_t u8_len, u8_need;
    char rp[RP_CAP];
    size_t rp_pos, rp_len;
    /* state */
    int mode, ls, h;
    char hold[HOST_CAP + 1]; /* HOLD_CAP for constructs, HOST_CAP for a host */
    size_t hold_len;
    char mark;        /* LS_MARK / LS_FENCE marker */
    int count;        /* marker repeat count, bracket/paren depth */
    size_t skip_n;    /* bytes skipped in H_SKIP_* */
    bool prev_alnum;  /* H_UNDERSCORE: the byte before '_' was a word byte */
    char punct[8];    /* H_URL_PATH: trailing . , ; : ! ? that may end a sentence */
    size_t punct_len;
    bool in_code, table, eof;
    char fence_ch;
    int fence_n, link_depth;
    unsigned char prev; /* last inline byte (a word byte stands for non-ASCII) */
    /* output */
    bool pend_space, pend_sep, cell_started;
    int nl_run; /* newlines just written (2 at the start: no leading blank lines) */
    char out[OUT_CAP];
    size_t out_len;
    pl_text_fn emit;
    void *ud;
};

/* ---- emoji: code point ranges dropped (one row per block) ---- */

static const struct { int32_t lo, hi; } EMOJI[] = {
    { 0x200D, 0x200D },   /* zero width joiner */
    { 0x20E3, 0x20E3 },   /* combining keycap */
    { 0x2300, 0x23FF },   /* misc technical: watch, hourglass, alarm clock */
    { 0x2600, 0x27BF },   /* misc symbols, dingbats */
    { 0x2B00, 0x2BFF },   /* misc symbols and arrows: star, circle */
    { 0x3030, 0x3030 },   /* wavy dash */
    { 0x303D, 0x303D },   /* part alternation mark */
    { 0x3297, 0x3299 },   /* circled ideographs */
    { 0xFE00, 0xFE0F },   /* variation selectors */
    { 0x1F000, 0x1FAFF }, /* mahjong .. symbols and pictographs ext-A, flags, tones */
    { 0xE0000, 0xE007F }, /* tag characters (subdivision flags) */
};

static bool is_emoji(int32_t cp) {
    for (size_t i = 0; i < sizeof EMOJI / sizeof *EMOJI; i++)
        if (cp >= EMOJI[i].lo && cp <= EMOJI[i].hi) return true;
    return false;
}

/* ---- output ---- */

static void flush(pl_speakable *sp) {
    if (sp->out_len) sp->emit(sp->ud, sp->out, sp->out_len);
    sp->out_len = 0;
}

static void emit_raw(pl_speakable *sp, const char *s, size_t n) {
    if (n > OUT_CAP - sp->out_len) flush(sp);
    if (n > OUT_CAP) {
        sp->emit(sp->ud, s, n);
        return;
    }
    memcpy(sp->out + sp->out_len, s, n);
    sp->out_len += n;
}

static void out_vis(pl_speakable *sp, const char *s, size_t n) {
    if (n == 0) return;
    /* No space before closing punctuation: "family <emoji>." says "family." */
    bool closing = strchr(".,;:!?", s[0]) != NULL;
    if (sp->pend_sep && sp->cell_started) emit_raw(sp, ", ", 2);
    else if (sp->pend_space && sp->nl_run == 0 && !closing) emit_raw(sp, " ", 1);
    sp->pend_sep = sp->pend_space = false;
    emit_raw(sp, s, n);
    sp->nl_run = 0;
    sp->cell_started = true;
}

static void out_space(pl_speakable *sp) {
    if (sp->nl_run == 0) sp->pend_space = true;
}

static void out_newline(pl_speakable *sp) {
    sp->pend_space = sp->pend_sep = sp->cell_started = false;
    if (sp->nl_run < 2 && !sp->eof) {
        emit_raw(sp, "\n", 1);
        sp->nl_run++;
    }
}

static void out_phrase(pl_speakable *sp) {
    if (sp->phrase_len == 0) return;
    if (sp->nl_run == 0) out_newline(sp);
    sp->pend_space = false;
    out_vis(sp, sp->phrase, sp->phrase_len);
    out_newline(sp);
}

/* ---- replay ---- */

static void replay_front(pl_speakable *sp, const char *s, size_t n) {
    if (n == 0) return;
    if (sp->rp_pos < n) { /* slide the pending bytes right to make room */
        size_t pend = sp->rp_len - sp->rp_pos;
        memmove(sp->rp + RP_CAP - pend, sp->rp + sp->rp_pos, pend);
        sp->rp_pos = RP_CAP - pend;
        sp->rp_len = RP_CAP;
    }
    sp->rp_pos -= n;
    memcpy(sp->rp + sp->rp_pos, s, n);
}

/* ---- inline level ---- */

static bool word_byte(unsigned char c) { return isalnum(c) || c >= 0x80; }

/* An inline unit written as text. */
static void literal(pl_speakable *sp, const char *u, size_t n) {
    out_vis(sp, u, n);
    sp->prev = (unsigned char)u[0];
}

/* The held construct failed at unit u (NULL at the end of the stream): its
 * first byte is text, the rest and u are replayed. */
static void hold_fail(pl_speakable *sp, const char *u, size_t n) {
    char tmp[HOST_CAP + 1];
    size_t hl = sp->hold_len;
    memcpy(tmp, sp->hold, hl);
    sp->h = H_NONE;
    sp->hold_len = 0;
    if (u) replay_front(sp, u, n);
    if (hl > 1) replay_front(sp, tmp + 1, hl - 1);
    if (hl) literal(sp, tmp, 1);
}

static void hold_add(pl_speakable *sp, const char *u, size_t n) {
    memcpy(sp->hold + sp->hold_len, u, n);
    sp->hold_len += n;
}

/* Host of a URL: "www." is dropped; trailing dots are sentence punctuation. */
static void out_host(pl_speakable *sp, const char *h, size_t n) {
    if (n >= 4 && strncasecmp(h, "www.", 4) == 0) h += 4, n -= 4;
    size_t dots = 0;
    while (dots < n && h[n - 1 - dots] == '.') dots++;
    if (sp->url_host) out_vis(sp, h, n - dots);
    else sp->pend_space = false; /* nothing said: no space before what follows */
    out_vis(sp, h + n - dots, dots);
    sp->prev = 'a';
}

static void line_end(pl_speakable *sp) {
    out_newline(sp);
    sp->mode = M_LINE;
    sp->ls = LS_BEGIN;
    sp->table = false;
    sp->link_depth = 0;
    sp->hold_len = 0;
    sp->prev = ' ';
}

static const struct { const char *name, *text; } ENTITIES[] = {
    { "&amp;", "&" }, { "&lt;", "<" }, { "&gt;", ">" }, { "&quot;", "\"" },
    { "&#39;", "'" }, { "&apos;", "'" }, { "&nbsp;", " " },
};

static const char *const URL_STARTS[] = { "https://", "http://", "www." };

/* <...> complete (hold has it all, '>' included): drop it, speak a host, or
 * fail when it is neither a control token, a tag nor an autolink. */
static void tag_done(pl_speakable *sp) {
    const char *t = sp->hold;
    size_t n = sp->hold_len;
    sp->hold[n] = 0; /* for the string functions below; hold has room */
    static const char FW_BAR[] = "\xEF\xBD\x9C"; /* U+FF5C, DeepSeek's control tokens */
    bool drop = false, html = false;
    if (n >= 4 && t[1] == '|' && t[n - 2] == '|') drop = true;
    else if (n >= 8 && memcmp(t + 1, FW_BAR, 3) == 0 && memcmp(t + n - 4, FW_BAR, 3) == 0) drop = true;
    else if (n > 8 && (strncasecmp(t + 1, "http://", 7) == 0 || strncasecmp(t + 1, "https://", 8) == 0)) {
        const char *h = strstr(t, "//") + 2;
        size_t hn = strcspn(h, "/?#:>");
        sp->h = H_NONE;
        sp->hold_len = 0;
        char host[HOLD_CAP];
        memcpy(host, h, hn);
        out_host(sp, host, hn);
        return;
    } else if (isalpha((unsigned char)t[1]) || t[1] == '/' || t[1] == '!') {
        html = true; /* an HTML tag or comment: <br> separates words */
    }
    if (!drop && !html) {
        hold_fail(sp, NULL, 0);
        return;
    }
    sp->h = H_NONE;
    sp->hold_len = 0;
    if (html) out_space(sp);
}

static void inline_unit(pl_speakable *sp, const char *u, size_t n) {
    unsigned char c = (unsigned char)u[0]; /* >= 0x80: a non-ASCII character */
    switch (sp->h) {
    case H_NONE:
        break;
    case H_UNDERSCORE: /* inside a word it is a space (snake_case), else emphasis */
        sp->h = H_NONE;
        if (sp->prev_alnum && word_byte(c)) out_space(sp);
        sp->prev = '_';
        replay_front(sp, u, n);
        return;
    case H_BACKSLASH:
        sp->h = H_NONE;
        if (n == 1 && ispunct(c)) {
            literal(sp, u, 1);
            return;
        }
        literal(sp, "\\", 1);
        replay_front(sp, u, n);
        return;
    case H_RBRACKET: /* "](" starts a link target */
        sp->h = H_NONE;
        if (sp->link_depth > 0) sp->link_depth--;
        if (c == '(') {
            sp->h = H_SKIP_PAREN;
            sp->count = 1;
            sp->skip_n = 0;
            return;
        }
        replay_front(sp, u, n);
        return;
    case H_BANG: /* "![" starts an image */
        sp->h = H_NONE;
        if (c == '[') {
            sp->h = H_SKIP_ALT;
            sp->count = 1;
            sp->skip_n = 0;
            return;
        }
        literal(sp, "!", 1);
        replay_front(sp, u, n);
        return;
    case H_SKIP_ALT:
    case H_SKIP_PAREN:
        if (c == '\n' || (sp->skip_n += n) > SKIP_MAX) { /* not a link after all */
            sp->h = H_NONE;
            replay_front(sp, u, n);
            return;
        }
        if (c == (sp->h == H_SKIP_ALT ? '[' : '(')) sp->count++;
        else if (c == (sp->h == H_SKIP_ALT ? ']' : ')') && --sp->count == 0)
            sp->h = sp->h == H_SKIP_ALT ? H_ALT_END : H_NONE;
        return;
    case H_ALT_END:
        sp->h = H_NONE;
        if (c == '(') {
            sp->h = H_SKIP_PAREN;
            sp->count = 1;
            sp->skip_n = 0;
            return;
        }
        replay_front(sp, u, n);
        return;
    case H_TAG: {
        bool ok2 = sp->hold_len > 1 || c == '|' || c == '/' || c == '!' || isalpha(c) ||
                   (n == 3 && memcmp(u, "\xEF\xBD\x9C", 3) == 0);
        if (!ok2 || c == '\n' || c == '<' || sp->hold_len + n > HOLD_CAP) {
            hold_fail(sp, u, n);
            return;
        }
        hold_add(sp, u, n);
        if (c == '>') tag_done(sp);
        return;
    }
    case H_ENTITY:
        if (n != 1 || !(isalnum(c) || c == '#' || c == ';') || sp->hold_len >= 8) {
            hold_fail(sp, u, n);
            return;
        }
        hold_add(sp, u, 1);
        if (c == ';') {
            for (size_t i = 0; i < sizeof ENTITIES / sizeof *ENTITIES; i++) {
                if (strlen(ENTITIES[i].name) == sp->hold_len &&
                    memcmp(ENTITIES[i].name, sp->hold, sp->hold_len) == 0) {
                    sp->h = H_NONE;
                    sp->hold_len = 0;
                    if (ENTITIES[i].text[0] == ' ') out_space(sp);
                    else literal(sp, ENTITIES[i].text, 1);
                    return;
                }
            }
            hold_fail(sp, NULL, 0);
        }
        return;
    case H_URLCAND: {
        if (n != 1) {
            hold_fail(sp, u, n);
            return;
        }
        hold_add(sp, u, 1);
        bool prefix = false;
        for (size_t i = 0; i < sizeof URL_STARTS / sizeof *URL_STARTS; i++) {
            size_t l = strlen(URL_STARTS[i]);
            if (sp->hold_len > l || strncasecmp(sp->hold, URL_STARTS[i], sp->hold_len) != 0) continue;
            if (sp->hold_len == l) { /* a URL: collect its host */
                sp->h = H_URL_HOST;
                sp->hold_len = 0;
                return;
            }
            prefix = true;
        }
        if (!prefix) {
            sp->hold_len--; /* u is replayed by hold_fail, not kept in the hold */
            hold_fail(sp, u, n);
        }
        return;
    }
    case H_URL_HOST:
        if (n == 1 && (isalnum(c) || c == '-' || c == '.' || c == '_')) {
            if (sp->hold_len < HOST_CAP) hold_add(sp, u, 1);
            return;
        }
        if (c == '@') { /* user@host: what came before was not the host */
            sp->hold_len = 0;
            return;
        }
        {
            char host[HOST_CAP];
            size_t hn = sp->hold_len;
            memcpy(host, sp->hold, hn);
            sp->hold_len = 0;
            out_host(sp, host, hn);
        }
        if (c == '/' || c == '?' || c == '#' || c == ':') {
            sp->h = H_URL_PATH;
            sp->punct_len = 0;
            sp->count = 0; /* parentheses open inside the path */
            return;
        }
        sp->h = H_NONE;
        replay_front(sp, u, n);
        return;
    case H_URL_PATH:
        if (c == '(' || (c == ')' && sp->count > 0)) { /* wiki/Foo_(bar) */
            sp->count += c == '(' ? 1 : -1;
            sp->punct_len = 0;
            return;
        }
        if (n == 1 && strchr(".,;:!?", c) && c) {
            if (sp->punct_len < sizeof sp->punct) sp->punct[sp->punct_len++] = (char)c;
            return;
        }
        if (n == 1 && (pl_text_is_space(c) || c == 0 || strchr("\"'<>)]`*", c))) {
            out_vis(sp, sp->punct, sp->punct_len);
            sp->h = H_NONE;
            replay_front(sp, u, n);
            return;
        }
        sp->punct_len = 0; /* that punctuation was inside the URL */
        return;
    }

    /* no construct held */
    if (n > 1) {
        if (pl_utf8_decode((const unsigned char *)u, n) == 0x2022) return; /* bullet */
        literal(sp, u, n);
        return;
    }
    switch (c) {
    case '\n':
        line_end(sp);
        return;
    case ' ':
    case '\t':
        out_space(sp);
        sp->prev = ' ';
        return;
    case '*':
    case '`':
    case '~':
        sp->prev = c;
        return;
    case '_':
        sp->h = H_UNDERSCORE;
        sp->prev_alnum = word_byte(sp->prev);
        return;
    case '\\':
        sp->h = H_BACKSLASH;
        return;
    case '[':
        if (sp->link_depth < 16) sp->link_depth++;
        sp->prev = c;
        return;
    case ']':
        sp->h = H_RBRACKET;
        return;
    case '!':
        sp->h = H_BANG;
        return;
    case '<':
    case '&':
        sp->h = c == '<' ? H_TAG : H_ENTITY;
        hold_add(sp, u, 1);
        return;
    case '|':
        if (sp->table) {
            sp->pend_space = false;
            sp->pend_sep = true;
            sp->prev = ' ';
            return;
        }
        break;
    case 'h':
    case 'H':
    case 'w':
    case 'W':
        if (!word_byte(sp->prev) && !strchr("./@-_:", sp->prev)) {
            sp->h = H_URLCAND;
            hold_add(sp, u, 1);
            return;
        }
        break;
    default:
        if (c < 0x20) return; /* control characters */
        break;
    }
    literal(sp, u, 1);
}

/* ---- line level ---- */

/* The line start is plain text after all: replay what was held, inline. */
static void ls_fail(pl_speakable *sp, const char *u, size_t n) {
    sp->mode = M_INLINE;
    if (u) replay_front(sp, u, n);
    replay_front(sp, sp->hold, sp->hold_len);
    sp->hold_len = 0;
}

static void line_unit(pl_speakable *sp, const char *u, size_t n) {
    unsigned char c = n == 1 ? (unsigned char)u[0] : 0x80;
    bool blank = c == ' ' || c == '\t';
    if (sp->in_code) {
        if (sp->ls == LS_BEGIN && blank) return;
        if (c == (unsigned char)sp->fence_ch && (sp->ls == LS_BEGIN || sp->ls == LS_CFENCE)) {
            sp->count = sp->ls == LS_CFENCE ? sp->count + 1 : 1;
            sp->ls = LS_CFENCE;
            return;
        }
        if (sp->ls == LS_CFENCE && sp->count >= sp->fence_n && (blank || c == '\n'))
            sp->in_code = false; /* the closing fence: its line says nothing */
        sp->ls = LS_BEGIN;
        sp->count = 0;
        if (c != '\n') sp->mode = M_SKIPLINE;
        return;
    }
    switch (sp->ls) {
    case LS_BEGIN:
        if (blank || c == '>') return; /* indentation, block quotes */
        if (c == '\n') {
            out_newline(sp);
            return;
        }
        if (c == '|') {
            sp->table = true;
            sp->ls = LS_TABLE;
            return;
        }
        sp->count = 1;
        sp->mark = (char)c;
        if (c == '#') sp->ls = LS_HASH;
        else if (c == '-' || c == '*' || c == '+' || c == '_' || c == '=') sp->ls = LS_MARK;
        else if (isdigit(c)) sp->ls = LS_NUM;
        else if (c == '`' || c == '~') sp->ls = LS_FENCE;
        else {
            ls_fail(sp, u, n);
            return;
        }
        hold_add(sp, u, 1);
        return;
    case LS_HASH:
        if (c == '#' && sp->count < 6) {
            sp->count++;
            hold_add(sp, u, 1);
        } else if (blank) {
            sp->mode = M_INLINE; /* a header: the marker goes */
            sp->hold_len = 0;
        } else if (c == '\n') {
            sp->hold_len = 0;
            sp->ls = LS_BEGIN;
            out_newline(sp);
        } else {
            ls_fail(sp, u, n);
        }
        return;
    case LS_MARK:
        if (c == (unsigned char)sp->mark) {
            sp->count++;
            if (sp->hold_len < HOLD_CAP) hold_add(sp, u, 1);
        } else if (blank && sp->count == 1 && sp->mark != '_' && sp->mark != '=') {
            sp->mode = M_INLINE; /* a bullet */
            sp->hold_len = 0;
        } else if ((blank || c == '\n') && sp->count >= 3) {
            sp->ls = LS_RULE;
            line_unit(sp, u, n);
        } else {
            ls_fail(sp, u, n);
        }
        return;
    case LS_RULE: /* "---", "* * *", a setext "===" underline: the line goes */
        if (c == (unsigned char)sp->mark || blank) return;
        if (c == '\n') {
            sp->hold_len = 0;
            sp->ls = LS_BEGIN;
            out_newline(sp);
            return;
        }
        ls_fail(sp, u, n);
        return;
    case LS_NUM:
        if (isdigit(c) && sp->count < 9) {
            sp->count++;
            hold_add(sp, u, 1);
        } else if (c == '.' || c == ')') {
            sp->ls = LS_NUMDOT;
            hold_add(sp, u, 1);
        } else {
            ls_fail(sp, u, n);
        }
        return;
    case LS_NUMDOT:
        if (blank) {
            sp->mode = M_INLINE; /* "1. " list item */
            sp->hold_len = 0;
        } else {
            ls_fail(sp, u, n);
        }
        return;
    case LS_TABLE: /* rule rows (|---|:--:|) say nothing */
        if (c == '|' || c == '-' || c == ':' || blank) return;
        if (c == '\n') {
            sp->table = false;
            sp->ls = LS_BEGIN;
            return;
        }
        sp->mode = M_INLINE;
        replay_front(sp, u, n);
        return;
    case LS_FENCE:
        if (c == (unsigned char)sp->mark) {
            sp->count++;
            if (sp->hold_len < HOLD_CAP) hold_add(sp, u, 1);
            return;
        }
        if (sp->count < 3) {
            ls_fail(sp, u, n);
            return;
        }
        sp->in_code = true; /* the info string ("python") is skipped too */
        sp->fence_ch = sp->mark;
        sp->fence_n = sp->count;
        sp->hold_len = 0;
        sp->ls = LS_BEGIN;
        sp->count = 0;
        out_phrase(sp);
        if (c != '\n') sp->mode = M_SKIPLINE;
        return;
    }
}

/* ---- units ---- */

static void unit(pl_speakable *sp, const char *u, size_t n) {
    if (sp->mode == M_SKIPLINE) {
        if (n == 1 && u[0] == '\n') {
            sp->mode = M_LINE;
            sp->ls = LS_BEGIN;
        }
        return;
    }
    if (n == 1 && u[0] == '\r') return;
    if (sp->mode == M_LINE) line_unit(sp, u, n);
    else inline_unit(sp, u, n);
}

/* Run a unit, then everything it made the machine replay. */
static void run(pl_speakable *sp, const char *u, size_t n) {
    unit(sp, u, n);
    while (sp->rp_pos < sp->rp_len) {
        const unsigned char *r = (const unsigned char *)sp->rp + sp->rp_pos;
        size_t l = pl_utf8_lead_len(r[0]); /* replayed bytes are whole units */
        if (l > sp->rp_len - sp->rp_pos) l = 1;
        char tmp[4];
        memcpy(tmp, r, l);
        sp->rp_pos += l;
        if (sp->rp_pos == sp->rp_len) sp->rp_pos = sp->rp_len = 0;
        unit(sp, tmp, l);
    }
}

static void byte_in(pl_speakable *sp, unsigned char b) {
    if (sp->u8_len) { /* inside a multi-byte character */
        if ((b & 0xC0) != 0x80) { /* truncated: drop it, b starts afresh */
            sp->u8_len = 0;
        } else {
            sp->u8[sp->u8_len++] = b;
            if (sp->u8_len < sp->u8_need) return;
            size_t l = sp->u8_len;
            sp->u8_len = 0;
            int32_t cp = pl_utf8_decode(sp->u8, l);
            if (cp < 0 || is_emoji(cp) || cp == 0xFEFF) return;
            run(sp, (const char *)sp->u8, l);
            return;
        }
    }
    if (b < 0x80) {
        run(sp, (const char *)&b, 1);
        return;
    }
    size_t need = pl_utf8_lead_len(b);
    if (need == 1) return; /* a stray continuation or invalid lead byte */
    sp->u8[0] = b;
    sp->u8_len = 1;
    sp->u8_need = need;
}

/* ---- API ---- */

pl_speakable_params pl_speakable_default_params(void) {
    return (pl_speakable_params){ .code_phrase = NULL, .url_host = true };
}

pl_status pl_speakable_init(pl_ctx *ctx, const pl_speakable_params *params, pl_speakable **out) {
    if (!ctx || !out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    pl_speakable_params p = params ? *params : pl_speakable_default_params();
    const char *phrase = p.code_phrase ? p.code_phrase : "(code omitted)";
    size_t pl = strnlen(phrase, 1025);
    if (pl > 1024) return pl_ctx_err(ctx, PL_ERR_RANGE, "speakable: code_phrase over 1024 bytes");
    pl_speakable *sp = pl_calloc(ctx, 1, sizeof *sp);
    if (!sp) return pl_ctx_err(ctx, PL_ERR_NOMEM, "speakable: out of memory");
    sp->phrase = pl_malloc(ctx, pl + 1);
    if (!sp->phrase) {
        pl_free(ctx, sp);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "speakable: out of memory");
    }
    memcpy(sp->phrase, phrase, pl + 1);
    sp->phrase_len = pl;
    sp->ctx = ctx;
    sp->url_host = p.url_host;
    pl_speakable_reset(sp);
    *out = sp;
    return PL_OK;
}

void pl_speakable_free(pl_speakable *sp) {
    if (!sp) return;
    pl_free(sp->ctx, sp->phrase);
    pl_free(sp->ctx, sp);
}

void pl_speakable_reset(pl_speakable *sp) {
    if (!sp) return;
    sp->u8_len = sp->rp_pos = sp->rp_len = sp->hold_len = sp->out_len = sp->punct_len = 0;
    sp->mode = M_LINE;
    sp->ls = LS_BEGIN;
    sp->h = H_NONE;
    sp->in_code = sp->table = sp->eof = false;
    sp->pend_space = sp->pend_sep = sp->cell_started = false;
    sp->link_depth = sp->count = 0;
    sp->prev = ' ';
    sp->nl_run = 2;
}

void pl_speakable_feed(pl_speakable *sp, const char *text, size_t len, pl_text_fn emit, void *ud) {
    if (!sp || !text) return;
    sp->emit = emit;
    sp->ud = ud;
    for (size_t i = 0; i < len; i++) byte_in(sp, (unsigned char)text[i]);
    flush(sp);
}

void pl_speakable_finish(pl_speakable *sp, pl_text_fn emit, void *ud) {
    if (!sp) return;
    sp->emit = emit;
    sp->ud = ud;
    sp->u8_len = 0;
    /* The end of the stream ends the line: a newline that is not written
     * resolves every held construct the way a real one would. */
    sp->eof = true;
    run(sp, "\n", 1);
    flush(sp);
    pl_speakable_reset(sp);
}
