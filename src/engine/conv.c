/*
 * conv.c - pl_conv: a system message plus a list of messages, kept as a cJSON
 * array so rendering hands the template the objects themselves.
 *
 * cJSON allocates with the C library (its hooks are process-wide, so they
 * cannot follow a pl_ctx); this is per message, never per token.
 */
#include <string.h>

#include "engine/engine_int.h"

pl_status pl_conv_init(pl_ctx *ctx, pl_conv **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    pl_conv *c = pl_calloc(ctx, 1, sizeof *c);
    if (!c) return pl_ctx_err(ctx, PL_ERR_NOMEM, "conversation: out of memory");
    c->ctx = ctx;
    if (!(c->messages = cJSON_CreateArray())) {
        pl_free(ctx, c);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "conversation: out of memory");
    }
    *out = c;
    return PL_OK;
}

void pl_conv_free(pl_conv *c) {
    if (!c) return;
    cJSON_Delete(c->messages);
    pl_free(c->ctx, c->system);
    pl_free(c->ctx, c);
}

pl_status pl_conv_set_system(pl_conv *c, const char *text) {
    if (!c) return PL_ERR_INVALID_ARG;
    char *s = NULL;
    size_t len = text ? strlen(text) : 0;
    if (c->bytes - (c->system ? strlen(c->system) : 0) + len > PL_CONV_MAX_BYTES)
        return pl_ctx_err(c->ctx, PL_ERR_RANGE, "conversation: over %zu bytes", PL_CONV_MAX_BYTES);
    if (len && !(s = pl_strdup(c->ctx, text))) return pl_ctx_err(c->ctx, PL_ERR_NOMEM, "conversation: out of memory");
    if (c->system) c->bytes -= strlen(c->system);
    pl_free(c->ctx, c->system);
    c->system = s;
    c->bytes += len;
    c->version++;
    return PL_OK;
}

const char *pl_conv_system(const pl_conv *c) { return c ? c->system : NULL; }

/* A new {"role","content"} object; NULL when out of memory. */
static cJSON *make_message(pl_role role, const char *content) {
    cJSON *m = cJSON_CreateObject();
    if (!m) return NULL;
    if (!cJSON_AddStringToObject(m, "role", pl_role_name(role)) || !cJSON_AddStringToObject(m, "content", content)) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

pl_status pl_conv_add(pl_conv *c, pl_role role, const char *content, size_t len) {
    if (!c || (!content && len) || role == PL_ROLE_SYSTEM || (unsigned)role >= PL_ROLE_COUNT)
        return pl_ctx_err(c ? c->ctx : NULL, PL_ERR_INVALID_ARG, "conversation: bad message");
    if (len && memchr(content, 0, len))
        return pl_ctx_err(c->ctx, PL_ERR_INVALID_ARG, "conversation: a message holds a NUL byte");
    if ((size_t)cJSON_GetArraySize(c->messages) >= PL_CONV_MAX_MESSAGES || c->bytes + len > PL_CONV_MAX_BYTES)
        return pl_ctx_err(c->ctx, PL_ERR_RANGE, "conversation: over %d messages or %zu bytes", PL_CONV_MAX_MESSAGES,
                          PL_CONV_MAX_BYTES);
    char *tmp = pl_malloc(c->ctx, len + 1);
    if (!tmp) return pl_ctx_err(c->ctx, PL_ERR_NOMEM, "conversation: out of memory");
    if (len) memcpy(tmp, content, len);
    tmp[len] = 0;
    cJSON *m = make_message(role, tmp);
    pl_free(c->ctx, tmp);
    if (!m || !cJSON_AddItemToArray(c->messages, m)) {
        cJSON_Delete(m);
        return pl_ctx_err(c->ctx, PL_ERR_NOMEM, "conversation: out of memory");
    }
    c->bytes += len;
    return PL_OK;
}

size_t pl_conv_count(const pl_conv *c) { return c ? (size_t)cJSON_GetArraySize(c->messages) : 0; }

static const cJSON *msg_at(const pl_conv *c, size_t i) {
    return c && i < pl_conv_count(c) ? cJSON_GetArrayItem(c->messages, (int)i) : NULL;
}

pl_role pl_conv_role(const pl_conv *c, size_t i) {
    const cJSON *m = msg_at(c, i);
    pl_role r;
    if (!m || pl_role_parse(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "role")), &r) != PL_OK)
        return PL_ROLE_COUNT;
    return r;
}

const char *pl_conv_content(const pl_conv *c, size_t i) {
    const cJSON *m = msg_at(c, i);
    return m ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "content")) : NULL;
}

void pl_conv_pop(pl_conv *c) {
    size_t n = pl_conv_count(c);
    if (!n) return;
    const char *t = pl_conv_content(c, n - 1);
    c->bytes -= t ? strlen(t) : 0;
    cJSON_DeleteItemFromArray(c->messages, (int)(n - 1));
    c->version++;
}

void pl_conv_clear(pl_conv *c) {
    if (!c) return;
    while (pl_conv_count(c)) pl_conv_pop(c);
    c->version++;
}

pl_status pl_conv_to_json(const pl_conv *c, char **out) {
    if (!c || !out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    pl_status st = PL_ERR_NOMEM;
    if (!root || !arr || !cJSON_AddItemToObject(root, "messages", arr)) {
        cJSON_Delete(arr);
        goto done;
    }
    if (c->system) {
        cJSON *m = make_message(PL_ROLE_SYSTEM, c->system);
        if (!m || !cJSON_AddItemToArray(arr, m)) {
            cJSON_Delete(m);
            goto done;
        }
    }
    for (const cJSON *m = c->messages->child; m; m = m->next) {
        cJSON *d = cJSON_Duplicate(m, true);
        if (!d || !cJSON_AddItemToArray(arr, d)) {
            cJSON_Delete(d);
            goto done;
        }
    }
    char *text = cJSON_Print(root);
    if (!text) goto done;
    size_t len = strlen(text);
    if ((*out = pl_malloc(c->ctx, len + 2))) {
        memcpy(*out, text, len);
        (*out)[len] = '\n';
        (*out)[len + 1] = 0;
        st = PL_OK;
    }
    cJSON_free(text);
done:
    cJSON_Delete(root);
    return st == PL_OK ? PL_OK : pl_ctx_err(c->ctx, st, "conversation: out of memory");
}

pl_status pl_conv_from_json(pl_conv *c, const char *text, size_t len) {
    if (!c || (!text && len)) return PL_ERR_INVALID_ARG;
    cJSON *root = cJSON_ParseWithLength(text ? text : "", len);
    if (!root) return pl_ctx_err(c->ctx, PL_ERR_FORMAT, "conversation: not valid JSON");
    const cJSON *arr = cJSON_IsArray(root) ? root : cJSON_GetObjectItemCaseSensitive(root, "messages");
    pl_conv *n = NULL;
    pl_status st = PL_OK;
    if (!cJSON_IsArray(arr)) {
        st = pl_ctx_err(c->ctx, PL_ERR_FORMAT, "conversation: expected {\"messages\": [...]}");
        goto done;
    }
    if ((st = pl_conv_init(c->ctx, &n)) != PL_OK) goto done;
    size_t i = 0;
    for (const cJSON *m = arr->child; m; m = m->next, i++) {
        const char *role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "role"));
        const cJSON *cv = cJSON_GetObjectItemCaseSensitive(m, "content");
        const char *content = cJSON_IsNull(cv) ? "" : cJSON_GetStringValue(cv);
        pl_role r;
        if (!cJSON_IsObject(m) || pl_role_parse(role, &r) != PL_OK || !content) {
            st = pl_ctx_err(c->ctx, PL_ERR_FORMAT,
                            "conversation: message %zu needs a role (system, user, assistant, tool) and a "
                            "string content", i);
            goto done;
        }
        if (r == PL_ROLE_SYSTEM) {
            if (i != 0) {
                st = pl_ctx_err(c->ctx, PL_ERR_FORMAT, "conversation: message %zu: a system message must come first", i);
                goto done;
            }
            st = pl_conv_set_system(n, content);
        } else {
            st = pl_conv_add(n, r, content, strlen(content));
        }
        if (st != PL_OK) {
            pl_ctx_err(c->ctx, st == PL_ERR_NOMEM ? st : PL_ERR_FORMAT, "message %zu: %s", i,
                       pl_ctx_last_error(c->ctx));
            if (st != PL_ERR_NOMEM) st = PL_ERR_FORMAT;
            goto done;
        }
    }
    /* swap the new contents in; the version moves past both */
    cJSON *tm = c->messages;
    char *ts = c->system;
    c->messages = n->messages;
    c->system = n->system;
    c->bytes = n->bytes;
    n->messages = tm;
    n->system = ts;
    c->version++;
done:
    pl_conv_free(n);
    cJSON_Delete(root);
    return st;
}
