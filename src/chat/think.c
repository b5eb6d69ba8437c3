/*
 * think.c - incremental reasoning/content splitter (see parley/text.h).
 *
 * A byte-at-a-time state machine with three states:
 *
 *   LEAD     nothing decided yet: leading whitespace is dropped and a prefix
 *            of the open tag is held (q bytes). The first byte that breaks
 *            the tag decides: the held bytes and it go to the fallback state
 *            (CONTENT, or REASON when the prompt opened the block).
 *   REASON   inside the block: KMP on the close tag (q bytes held), trailing
 *            whitespace held in ws[] so it can be trimmed at the close tag.
 *   CONTENT  after the block: leading whitespace dropped, then everything
 *            passes through (no more tag parsing).
 *
 * Output is staged in out[] per channel and flushed on a channel change, when
 * full, and at the end of each feed: the byte loop never calls back per byte.
 * Everything lives in the one struct; nothing is allocated after init.
 */
#include <string.h>
#include <strings.h>

#include "chat/text_int.h"

enum { T_LEAD, T_REASON, T_CONTENT };
#define WS_CAP  64
#define OUT_CAP 256

typedef struct tag {
    char s[PL_THINK_MAX_TAG];
    uint8_t fail[PL_THINK_MAX_TAG];
    size_t len;
} tag;

struct pl_think {
    pl_ctx *ctx;
    pl_think_mode mode;
    tag open, close;
    int state;
    bool implied; /* LEAD falls back to REASON (the prompt opened the block) */
    bool at_start; /* the current channel has emitted nothing yet: drop spaces */
    size_t q;     /* bytes of the open (LEAD) or close (REASON) tag matched */
    char ws[WS_CAP];
    size_t ws_len;
    bool ws_long; /* this whitespace run outgrew ws[]: it passes on whole */
    char out[OUT_CAP];
    size_t out_len;
    pl_channel out_ch;
    pl_channel_fn emit; /* valid during a feed/finish call */
    void *ud;
};

/* ---- mode names: one row per mode ---- */

static const char *const MODE_NAMES[PL_THINK_MODE_COUNT] = {
    [PL_THINK_MODE_SEPARATE] = "separate",
    [PL_THINK_MODE_NONE]     = "none",
    [PL_THINK_MODE_HIDDEN]   = "hidden",
};

const char *pl_think_mode_name(pl_think_mode m) {
    return (unsigned)m < PL_THINK_MODE_COUNT ? MODE_NAMES[m] : "unknown";
}

pl_status pl_think_mode_parse(const char *s, pl_think_mode *out) {
    if (!s || !out) return PL_ERR_INVALID_ARG;
    for (int m = 0; m < PL_THINK_MODE_COUNT; m++) {
        if (strcasecmp(s, MODE_NAMES[m]) == 0) {
            *out = (pl_think_mode)m;
            return PL_OK;
        }
    }
    return PL_ERR_INVALID_ARG;
}

pl_think_params pl_think_default_params(void) {
    return (pl_think_params){ .mode = PL_THINK_MODE_SEPARATE };
}

/* ---- lifecycle ---- */

static pl_status tag_set(pl_ctx *ctx, tag *t, const char *s, const char *what) {
    size_t l = strnlen(s, PL_THINK_MAX_TAG + 1);
    if (l == 0 || l > PL_THINK_MAX_TAG)
        return pl_ctx_err(ctx, PL_ERR_RANGE, "think: %s tag must be 1..%d bytes", what,
                          PL_THINK_MAX_TAG);
    memcpy(t->s, s, l);
    t->len = l;
    t->fail[0] = 0;
    for (size_t k = 1, b = 0; k < l; k++) {
        while (b > 0 && t->s[k] != t->s[b]) b = t->fail[b - 1];
        if (t->s[k] == t->s[b]) b++;
        t->fail[k] = (uint8_t)b;
    }
    return PL_OK;
}

pl_status pl_think_init(pl_ctx *ctx, const pl_think_params *params, pl_think **out) {
    if (!ctx || !out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    pl_think_params p = params ? *params : pl_think_default_params();
    if ((unsigned)p.mode >= PL_THINK_MODE_COUNT)
        return pl_ctx_err(ctx, PL_ERR_RANGE, "think: unknown mode %d", (int)p.mode);
    pl_think *t = pl_calloc(ctx, 1, sizeof *t);
    if (!t) return pl_ctx_err(ctx, PL_ERR_NOMEM, "think: out of memory");
    t->ctx = ctx;
    t->mode = p.mode;
    pl_status st = tag_set(ctx, &t->open, p.open_tag ? p.open_tag : "<think>", "open");
    if (st == PL_OK) st = tag_set(ctx, &t->close, p.close_tag ? p.close_tag : "</think>", "close");
    if (st != PL_OK) {
        pl_free(ctx, t);
        return st;
    }
    pl_think_reset(t, p.start_in_reasoning);
    *out = t;
    return PL_OK;
}

void pl_think_free(pl_think *t) {
    if (t) pl_free(t->ctx, t);
}

void pl_think_reset(pl_think *t, bool start_in_reasoning) {
    if (!t) return;
    t->state = T_LEAD;
    t->implied = start_in_reasoning;
    t->at_start = true;
    t->q = t->ws_len = t->out_len = 0;
    t->ws_long = false;
}

bool pl_think_in_reasoning(const pl_think *t) {
    return t && (t->state == T_REASON || (t->state == T_LEAD && t->implied));
}

/* ---- output staging ---- */

static void flush(pl_think *t) {
    if (t->out_len) t->emit(t->ud, t->out_ch, t->out, t->out_len);
    t->out_len = 0;
}

static void put(pl_think *t, pl_channel ch, const char *s, size_t n) {
    if (n == 0 || (ch == PL_CHANNEL_REASONING && t->mode == PL_THINK_MODE_HIDDEN)) return;
    if (t->out_len && (ch != t->out_ch || n > OUT_CAP - t->out_len)) flush(t);
    if (n > OUT_CAP) {
        t->emit(t->ud, ch, s, n);
        return;
    }
    memcpy(t->out + t->out_len, s, n);
    t->out_len += n;
    t->out_ch = ch;
}

/* ---- the byte machine ---- */

/* A reasoning byte that is not part of a tag. */
static void reason_text(pl_think *t, char c) {
    if (pl_text_is_space((unsigned char)c)) {
        if (t->at_start) return;
        if (t->ws_len == WS_CAP) { /* too long to trim: the run passes on */
            put(t, PL_CHANNEL_REASONING, t->ws, t->ws_len);
            t->ws_len = 0;
            t->ws_long = true;
        }
        if (t->ws_long) put(t, PL_CHANNEL_REASONING, &c, 1);
        else t->ws[t->ws_len++] = c;
        return;
    }
    put(t, PL_CHANNEL_REASONING, t->ws, t->ws_len);
    t->ws_len = 0;
    t->ws_long = false;
    put(t, PL_CHANNEL_REASONING, &c, 1);
    t->at_start = false;
}

static void reason_byte(pl_think *t, char c) {
    const tag *tg = &t->close;
    while (t->q > 0 && tg->s[t->q] != c) { /* the held prefix fails: release its head */
        size_t nq = tg->fail[t->q - 1];
        for (size_t i = 0; i < t->q - nq; i++) reason_text(t, tg->s[i]);
        t->q = nq;
    }
    if (tg->s[t->q] == c) {
        if (++t->q == tg->len) { /* closed: trailing whitespace is trimmed */
            t->q = t->ws_len = 0;
            t->state = T_CONTENT;
            t->at_start = true;
        }
        return;
    }
    reason_text(t, c);
}

static void content_byte(pl_think *t, char c) {
    if (t->at_start && pl_text_is_space((unsigned char)c)) return;
    t->at_start = false;
    put(t, PL_CHANNEL_CONTENT, &c, 1);
}

/* LEAD decided against a tag: the held tag prefix (and c, if any) go to the
 * fallback state. */
static void lead_resolve(pl_think *t, const char *c) {
    size_t held = t->q;
    t->q = 0;
    t->state = t->implied ? T_REASON : T_CONTENT;
    t->at_start = true;
    for (size_t i = 0; i < held + (c != NULL); i++) {
        char b = i < held ? t->open.s[i] : *c;
        if (t->state == T_REASON) reason_byte(t, b);
        else content_byte(t, b);
    }
}

static void lead_byte(pl_think *t, char c) {
    if (t->q == 0 && pl_text_is_space((unsigned char)c)) return;
    if (t->open.s[t->q] == c) {
        if (++t->q == t->open.len) {
            t->q = 0;
            t->state = T_REASON;
            t->at_start = true;
        }
        return;
    }
    lead_resolve(t, &c);
}

void pl_think_feed(pl_think *t, const char *text, size_t len, pl_channel_fn emit, void *ud) {
    if (!t || !text || !len) return;
    if (t->mode == PL_THINK_MODE_NONE) {
        emit(ud, PL_CHANNEL_CONTENT, text, len);
        return;
    }
    t->emit = emit;
    t->ud = ud;
    for (size_t i = 0; i < len; i++) {
        if (t->state == T_CONTENT && !t->at_start) { /* the rest passes through */
            put(t, PL_CHANNEL_CONTENT, text + i, len - i);
            break;
        }
        if (t->state == T_LEAD) lead_byte(t, text[i]);
        else if (t->state == T_REASON) reason_byte(t, text[i]);
        else content_byte(t, text[i]);
    }
    flush(t);
}

void pl_think_finish(pl_think *t, pl_channel_fn emit, void *ud) {
    if (!t || t->mode == PL_THINK_MODE_NONE) return;
    t->emit = emit;
    t->ud = ud;
    if (t->state == T_LEAD && t->q) lead_resolve(t, NULL);
    if (t->state == T_REASON && t->q) { /* an unfinished close tag is text */
        size_t held = t->q;
        t->q = 0;
        for (size_t i = 0; i < held; i++) reason_text(t, t->close.s[i]);
    }
    t->ws_len = 0; /* trailing whitespace of an unclosed block: trimmed */
    flush(t);
}

bool pl_think_prompt_opens(const char *prompt, size_t len, const char *open_tag) {
    if (!prompt) return false;
    const char *tg = open_tag ? open_tag : "<think>";
    size_t tl = strlen(tg);
    while (len > 0 && pl_text_is_space((unsigned char)prompt[len - 1])) len--;
    return tl > 0 && len >= tl && memcmp(prompt + len - tl, tg, tl) == 0;
}
