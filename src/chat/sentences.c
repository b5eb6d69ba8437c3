/*
 * sentences.c - incremental sentence segmenter for speech (see parley/text.h).
 *
 * The current sentence accumulates in buf[] (max_bytes plus a few bytes of
 * lookahead, allocated at init). Input is cut into whole UTF-8 characters
 * (units) and run through three states:
 *
 *   S_TEXT   inside a sentence
 *   S_TERM   just after a terminal (. ! ? ... or a CJK mark) and any closing
 *            quotes/brackets; end_pos marks where the sentence would end. The
 *            next unit decides: whitespace ends a DEFINITE sentence, starts
 *            the S_AMBIG wait for an AMBIG one, and continues a NEVER one (a
 *            title such as "Dr."); anything else continues the sentence
 *            ("3.14", "e.g"), except after a CJK mark, which needs no space.
 *   S_AMBIG  after an ambiguous terminal and whitespace: the first character
 *            of the next word decides (upper case or uncased script: end).
 *
 * A newline always ends the sentence. When buf would pass max_bytes the
 * sentence is cut early (split()).
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "chat/text_int.h"

enum { S_TEXT, S_TERM, S_AMBIG };
enum { K_DEFINITE, K_AMBIG, K_NEVER, K_CJK };

struct pl_sentences {
    pl_ctx *ctx;
    size_t max;   /* max_bytes */
    char *buf;    /* [max + 4] */
    size_t len;
    int st, kind;
    bool bang;      /* the terminal run has a ! or ?: it ends for sure */
    size_t end_pos; /* S_TERM / S_AMBIG: where the sentence ends if it does */
    unsigned char u8[4];
    size_t u8_len, u8_need;
    pl_text_fn emit;
    void *ud;
};

/* ---- abbreviation tables (lower case, without the final dot) ---- */

/* Never end a sentence: titles and Latin abbreviations that precede more. */
static const char *const ABBR_NEVER[] = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "v", "e.g", "i.e", "cf",
    "approx", "fig", "figs", "eq", "vol", "al", "col", "capt", "lt", "sgt", "rev", "hon",
    "gov", "sen", "pres", "pp", "ca",
};
/* May end a sentence: end only when the next word starts a new one. */
static const char *const ABBR_AMBIG[] = {
    "etc", "inc", "ltd", "co", "corp", "jan", "feb", "aug", "sep", "sept", "oct", "nov", "dec",
    "u.s", "u.k", "e.u", "u.n", "a.m", "p.m", "ph.d", "b.c", "a.d", "esp", "min", "max",
};

static bool in_table(const char *const *t, size_t n, const char *w, size_t wl) {
    for (size_t i = 0; i < n; i++)
        if (strlen(t[i]) == wl && strncasecmp(t[i], w, wl) == 0) return true;
    return false;
}

/* ---- character classes (code points) ---- */

static bool is_closer(int32_t cp) {
    switch (cp) {
    case '"': case '\'': case ')': case ']': case '}':
    case 0x201D: case 0x2019: case 0x00BB: case 0x300D: case 0x300F: case 0xFF09: case 0x3011:
        return true;
    default:
        return false;
    }
}

static bool is_opener(unsigned char c) { return strchr("([{\"'", c) != NULL && c; }

static bool is_cjk_term(int32_t cp) {
    return cp == 0x3002 || cp == 0xFF01 || cp == 0xFF1F || cp == 0xFF61;
}

/* Does this character start a new sentence after an ambiguous end? Upper
 * case Latin/Greek/Cyrillic, an uncased script (CJK...), or an opening quote. */
static bool starts_sentence(int32_t cp) {
    if (cp < 0x80) return isupper(cp) || cp == '"' || cp == '\'' || cp == '(';
    if ((cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) || (cp >= 0x391 && cp <= 0x3A9) ||
        (cp >= 0x410 && cp <= 0x42F) || cp == 0x201C || cp == 0x2018 || cp == 0x00AB)
        return true;
    return cp >= 0x2E80; /* CJK and later scripts: no case to go by */
}

/* ---- emitting ---- */

/* Emit buf[0 .. n) trimmed (if anything is left) and drop it from buf. */
static void emit_head(pl_sentences *se, size_t n) {
    size_t a = 0, b = n;
    while (a < b && pl_text_is_space((unsigned char)se->buf[a])) a++;
    while (b > a && pl_text_is_space((unsigned char)se->buf[b - 1])) b--;
    if (b > a) se->emit(se->ud, se->buf + a, b - a);
    memmove(se->buf, se->buf + n, se->len - n);
    se->len -= n;
    se->st = S_TEXT;
}

/* The sentence is too long: cut it at the last clause mark + space in the
 * back two thirds, else the last space there, else all of it (buf holds whole
 * characters only, so that is a character boundary). */
static void split(pl_sentences *se) {
    if (se->st != S_TEXT) { /* a pending end is as good a cut as any */
        emit_head(se, se->end_pos);
        return;
    }
    size_t floor = se->max / 3, cut = 0;
    for (size_t i = se->len; i > floor && !cut; i--)
        if (se->buf[i - 1] == ' ' && i >= 2 && se->buf[i - 2] && strchr(",;:-", se->buf[i - 2])) cut = i;
    for (size_t i = se->len; i > floor && !cut; i--)
        if (pl_text_is_space((unsigned char)se->buf[i - 1])) cut = i;
    emit_head(se, cut ? cut : se->len);
}

/* Classify a '.' just appended at buf[len - 1] by the word before it. */
static int classify_dot(const pl_sentences *se) {
    size_t end = se->len - 1, start = end;
    if (end > 0 && se->buf[end - 1] == '.') return K_AMBIG; /* an ellipsis */
    while (start > 0 && !pl_text_is_space((unsigned char)se->buf[start - 1]) &&
           !is_opener((unsigned char)se->buf[start - 1]))
        start--;
    const char *w = se->buf + start;
    size_t wl = end - start;
    if (wl == 0) return K_DEFINITE;
    if (in_table(ABBR_NEVER, sizeof ABBR_NEVER / sizeof *ABBR_NEVER, w, wl)) return K_NEVER;
    if (in_table(ABBR_AMBIG, sizeof ABBR_AMBIG / sizeof *ABBR_AMBIG, w, wl)) return K_AMBIG;
    if (wl == 1 && isupper((unsigned char)w[0])) return K_NEVER; /* an initial: "J. Smith" */
    /* Dotted initialisms (U.S.A, Ph.D, i.e): short letter groups between dots. */
    bool dotted = memchr(w, '.', wl) != NULL, short_groups = true;
    for (size_t i = 0, run = 0; i <= wl; i++) {
        if (i == wl || w[i] == '.') {
            if (run == 0 || run > 2) short_groups = false;
            run = 0;
        } else if (isalpha((unsigned char)w[i])) {
            run++;
        } else {
            short_groups = false;
        }
    }
    return dotted && short_groups ? K_AMBIG : K_DEFINITE;
}

/* ---- the unit machine ---- */

static void append(pl_sentences *se, const char *u, size_t n) {
    if (se->len + n > se->max) split(se);
    if (se->len + n > se->max) split(se); /* a pending end, then a cut */
    memcpy(se->buf + se->len, u, n);
    se->len += n;
}

static void unit(pl_sentences *se, const char *u, size_t n, int32_t cp) {
    if (cp == '\n') {
        emit_head(se, se->len);
        return;
    }
    if (se->len == 0 && n == 1 && pl_text_is_space((unsigned char)u[0])) return;
    bool space = n == 1 && pl_text_is_space((unsigned char)u[0]);
    bool term = cp == '.' || cp == '!' || cp == '?' || cp == 0x2026 || is_cjk_term(cp);

    if (se->st == S_AMBIG) {
        if (space) {
            append(se, u, n);
            return;
        }
        if (starts_sentence(cp)) emit_head(se, se->end_pos);
        se->st = S_TEXT;
    } else if (se->st == S_TERM) {
        if (is_closer(cp) || term) {
            append(se, u, n);
            if (se->st != S_TERM) return; /* split() decided it */
            if (term) {
                se->bang |= cp == '!' || cp == '?';
                int k = cp == '.' ? classify_dot(se) : cp == 0x2026 ? K_AMBIG
                      : is_cjk_term(cp) ? K_CJK : K_DEFINITE;
                se->kind = se->bang && k != K_CJK ? K_DEFINITE : k; /* "?..." */
            }
            se->end_pos = se->len;
            return;
        }
        if (space) {
            if (se->kind == K_DEFINITE || se->kind == K_CJK) {
                emit_head(se, se->end_pos);
                return; /* the space is leading whitespace of nothing */
            }
            if (se->kind == K_AMBIG) {
                se->st = S_AMBIG;
                append(se, u, n);
                return;
            }
            se->st = S_TEXT; /* K_NEVER: "Dr. Smith" goes on */
        } else if (se->kind == K_CJK) {
            emit_head(se, se->end_pos);
        } else {
            se->st = S_TEXT; /* "3.14", "e.g", "Yahoo!Inc" */
        }
    }

    append(se, u, n);
    if (term && se->st == S_TEXT) {
        se->st = S_TERM;
        se->bang = cp == '!' || cp == '?';
        se->kind = cp == '.' ? classify_dot(se) : cp == 0x2026 ? K_AMBIG
                 : is_cjk_term(cp) ? K_CJK : K_DEFINITE;
        se->end_pos = se->len;
    }
}

static void byte_in(pl_sentences *se, unsigned char b) {
    if (se->u8_len) {
        if ((b & 0xC0) == 0x80) {
            se->u8[se->u8_len++] = b;
            if (se->u8_len < se->u8_need) return;
            size_t l = se->u8_len;
            se->u8_len = 0;
            unit(se, (const char *)se->u8, l, pl_utf8_decode(se->u8, l));
            return;
        }
        /* truncated character: pass its bytes on as they are */
        size_t l = se->u8_len;
        se->u8_len = 0;
        for (size_t i = 0; i < l; i++) unit(se, (const char *)se->u8 + i, 1, -1);
    }
    size_t need = pl_utf8_lead_len(b);
    if (need == 1) {
        unit(se, (const char *)&b, 1, b < 0x80 ? b : -1);
        return;
    }
    se->u8[0] = b;
    se->u8_len = 1;
    se->u8_need = need;
}

/* ---- API ---- */

pl_status pl_sentences_init(pl_ctx *ctx, size_t max_bytes, pl_sentences **out) {
    if (!ctx || !out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    if (max_bytes == 0) max_bytes = 400;
    if (max_bytes < PL_SENTENCES_MIN_BYTES || max_bytes > PL_SENTENCES_MAX_BYTES)
        return pl_ctx_err(ctx, PL_ERR_RANGE, "sentences: max_bytes %zu outside [%d, %d]", max_bytes,
                          PL_SENTENCES_MIN_BYTES, PL_SENTENCES_MAX_BYTES);
    pl_sentences *se = pl_calloc(ctx, 1, sizeof *se);
    if (!se) return pl_ctx_err(ctx, PL_ERR_NOMEM, "sentences: out of memory");
    se->buf = pl_malloc(ctx, max_bytes + 4);
    if (!se->buf) {
        pl_free(ctx, se);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "sentences: out of memory");
    }
    se->ctx = ctx;
    se->max = max_bytes;
    pl_sentences_reset(se);
    *out = se;
    return PL_OK;
}

void pl_sentences_free(pl_sentences *se) {
    if (!se) return;
    pl_free(se->ctx, se->buf);
    pl_free(se->ctx, se);
}

void pl_sentences_reset(pl_sentences *se) {
    if (!se) return;
    se->len = se->u8_len = se->end_pos = 0;
    se->st = S_TEXT;
}

void pl_sentences_feed(pl_sentences *se, const char *text, size_t len, pl_text_fn emit, void *ud) {
    if (!se || !text) return;
    se->emit = emit;
    se->ud = ud;
    for (size_t i = 0; i < len; i++) byte_in(se, (unsigned char)text[i]);
}

void pl_sentences_finish(pl_sentences *se, pl_text_fn emit, void *ud) {
    if (!se) return;
    se->emit = emit;
    se->ud = ud;
    for (size_t i = 0; i < se->u8_len; i++) unit(se, (const char *)se->u8 + i, 1, -1);
    se->u8_len = 0;
    emit_head(se, se->len);
    pl_sentences_reset(se);
}
