/*
 * prompt.c - steps 1 and 2 of a turn: render the conversation through the
 * chat template, tokenize it, and fit it in the history budget by leaving out
 * the oldest whole turns (sticky, with a trim target) or, when the newest user
 * message alone is too long, by cutting that message's start.
 *
 * Each candidate costs a render and a tokenization of the whole prompt. The
 * token count only shrinks as more turns are left out (or more bytes cut), so
 * the search is a binary search: O(log messages) renders to trim, plus
 * O(log bytes) to cut.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/engine_int.h"

/* A message object for the view: role and content as references into the
 * conv (no copies). NULL when out of memory. */
static cJSON *view_message(const char *role, const char *content) {
    cJSON *m = cJSON_CreateObject();
    cJSON *r = cJSON_CreateStringReference(role), *c = cJSON_CreateStringReference(content);
    if (!m || !r || !c) {
        cJSON_Delete(m);
        cJSON_Delete(r);
        cJSON_Delete(c);
        return NULL;
    }
    cJSON_AddItemToObject(m, "role", r);
    cJSON_AddItemToObject(m, "content", c);
    return m;
}

/* The messages the template sees: system, then conv messages [first..] with
 * message cut_msg starting at byte cut. NULL when out of memory. */
static cJSON *make_view(const pl_session *s, size_t first, size_t cut_msg, size_t cut) {
    cJSON *v = cJSON_CreateArray();
    if (!v) return NULL;
    const pl_conv *c = s->conv;
    if (c->system) {
        cJSON *m = view_message("system", c->system);
        if (!m || !cJSON_AddItemToArray(v, m)) goto oom_item;
    }
    size_t i = 0;
    for (cJSON *m = c->messages->child; m; m = m->next, i++) {
        if (i < first) continue;
        bool ok;
        if (i == cut_msg) {
            const char *content = pl_conv_content(c, i);
            cJSON *t = view_message(pl_role_name(pl_conv_role(c, i)), content + cut);
            ok = t && cJSON_AddItemToArray(v, t);
            if (!ok) cJSON_Delete(t);
        } else {
            ok = cJSON_AddItemReferenceToArray(v, m);
        }
        if (!ok) goto oom;
    }
    return v;
oom_item:
oom:
    cJSON_Delete(v);
    return NULL;
}

pl_status pl_session_render(pl_session *s, size_t first, size_t cut_msg, size_t cut, int32_t *n) {
    const pl_engine *e = s->e;
    cJSON *view = make_view(s, first, cut_msg, cut);
    cJSON *vars = cJSON_CreateObject();
    if (!view || !vars || !cJSON_AddBoolToObject(vars, "enable_thinking", s->p.enable_thinking)) {
        cJSON_Delete(view);
        cJSON_Delete(vars);
        return pl_session_err(s, PL_ERR_NOMEM, "rendering the prompt: out of memory");
    }
    pl_template_params tp = {
        .messages = view,
        .vars = vars,
        .add_generation_prompt = true,
        .bos_token = e->bos_text,
        .eos_token = e->eos_text,
        .now = s->p.now,
    };
    s->text.len = 0;
    if (s->text.data) s->text.data[0] = 0;
    pl_status st = pl_template_render(e->tmpl, s->ctx, &tp, &s->text);
    cJSON_Delete(view);
    cJSON_Delete(vars);
    if (st != PL_OK) return pl_session_err(s, st, "chat template: %s", pl_ctx_last_error(s->ctx));
    /* Special-token text in the rendered prompt becomes control tokens, as the
     * template means it. */
    pl_encode_params ep = pl_encode_default_params();
    ep.parse_special = true;
    size_t count = 0;
    st = pl_tokenizer_encode(e->tok, s->scratch, s->text.data ? s->text.data : "", s->text.len, &ep, s->prompt,
                             (size_t)s->n_ctx, &count);
    if (st != PL_OK && st != PL_ERR_RANGE) return pl_session_err(s, st, "tokenizing the prompt: %s", pl_status_str(st));
    /* A template that prints bos_token and a vocabulary that adds BOS too:
     * keep one (the model saw one in training). */
    pl_token bos = pl_tokenizer_bos(e->tok);
    if (count >= 2 && st == PL_OK && bos >= 0 && s->prompt[0] == bos && s->prompt[1] == bos) {
        memmove(s->prompt, s->prompt + 1, (count - 1) * sizeof *s->prompt);
        count--;
    } else if (count >= 2 && st == PL_ERR_RANGE && bos >= 0 && s->prompt[0] == bos && s->prompt[1] == bos) {
        count--; /* too long anyway: only the count matters */
    }
    *n = count > (size_t)INT32_MAX ? INT32_MAX : (int32_t)count;
    return PL_OK;
}

/* Index of the last user message, or the message count when there is none. */
static size_t last_user(const pl_conv *c) {
    for (size_t i = pl_conv_count(c); i-- > 0;)
        if (pl_conv_role(c, i) == PL_ROLE_USER) return i;
    return pl_conv_count(c);
}

/* The k-th (1-based) user message after index `after`. */
static size_t nth_user(const pl_conv *c, size_t after, size_t k) {
    size_t count = pl_conv_count(c);
    for (size_t i = after + 1; i < count; i++)
        if (pl_conv_role(c, i) == PL_ROLE_USER && --k == 0) return i;
    return count;
}

/* Start of the character at or after byte i of a UTF-8 string. */
static size_t char_start(const char *t, size_t len, size_t i) {
    while (i < len && ((unsigned char)t[i] & 0xc0) == 0x80) i++;
    return i;
}

pl_status pl_session_build_prompt(pl_session *s, pl_turn_stats *st) {
    pl_conv *c = s->conv;
    size_t count = pl_conv_count(c);
    if (s->conv_version != c->version || s->first > count) {
        s->first = 0;
        s->conv_version = c->version;
    }
    int32_t budget = st->budget, n = 0;
    pl_status rc;
    size_t first0 = s->first, keep = last_user(c);
    if (keep < s->first) keep = s->first; /* nothing left to drop before it */
    if ((rc = pl_session_render(s, s->first, SIZE_MAX, 0, &n)) != PL_OK) return rc;
    if (n > budget) {
        /* The candidate starts: user messages after the current start, up to the
         * newest one (never dropped). Binary search for the fewest dropped that
         * fit the target (the budget's trim_target percent). */
        int64_t target = (int64_t)budget * s->p.trim_target / 100;
        size_t ncand = 0;
        for (size_t i = s->first + 1; i <= keep && i < count; i++) ncand += pl_conv_role(c, i) == PL_ROLE_USER;
        size_t chosen = keep, lo = 1, hi = ncand;
        while (lo <= hi) { /* the smallest k whose prompt fits the target */
            size_t mid = lo + (hi - lo) / 2, idx = nth_user(c, s->first, mid);
            if ((rc = pl_session_render(s, idx, SIZE_MAX, 0, &n)) != PL_OK) return rc;
            if (n <= target) {
                chosen = idx;
                hi = mid - 1;
            } else {
                lo = mid + 1;
            }
        }
        s->first = chosen;
        if ((rc = pl_session_render(s, s->first, SIZE_MAX, 0, &n)) != PL_OK) return rc;
        if (n > budget && keep < count) {
            /* The newest user message (with the system message) alone is over
             * the budget: cut its start, the fewest bytes that fit. */
            const char *t = pl_conv_content(c, keep);
            size_t len = strlen(t);
            lo = 0;
            hi = len;
            if ((rc = pl_session_render(s, s->first, keep, len, &n)) != PL_OK) return rc;
            if (n > budget)
                return pl_session_err(s, PL_ERR_CONTEXT_FULL,
                                      "the prompt needs %d tokens without the user's message, over the budget of %d "
                                      "(n_ctx %d); shorten the system message or raise the context",
                                      n, budget, s->n_ctx);
            while (lo < hi) { /* smallest cut that fits: cut(hi) fits, cut(lo) does not */
                size_t mid = char_start(t, len, lo + (hi - lo) / 2);
                if (mid >= hi) break;
                if ((rc = pl_session_render(s, s->first, keep, mid, &n)) != PL_OK) return rc;
                if (n <= budget) hi = mid;
                else lo = mid + 1;
            }
            hi = char_start(t, len, hi);
            /* make the cut permanent: the history holds what the model saw */
            cJSON *m = cJSON_GetArrayItem(c->messages, (int)keep);
            if (!cJSON_ReplaceItemInObjectCaseSensitive(m, "content", cJSON_CreateString(t + hi)))
                return pl_session_err(s, PL_ERR_NOMEM, "out of memory");
            c->bytes -= hi;
            st->truncated_bytes = hi;
            if ((rc = pl_session_render(s, s->first, SIZE_MAX, 0, &n)) != PL_OK) return rc;
        }
    }
    if (n > budget)
        return pl_session_err(s, PL_ERR_CONTEXT_FULL, "the prompt needs %d tokens, over the budget of %d (n_ctx %d)", n,
                              budget, s->n_ctx);
    s->n_prompt = n;
    st->prompt_tokens = n;
    st->dropped_messages = (int32_t)s->first;
    st->dropped_now = (int32_t)(s->first - first0);
    st->prefix_broken = s->first != first0 || st->truncated_bytes > 0;
    return PL_OK;
}

pl_status pl_session_err(pl_session *s, pl_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    pl_ctx_err(s->ctx, st, "%s", s->err);
    return st;
}
