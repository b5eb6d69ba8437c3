/*
 * multipart.c - a multipart/form-data parser (RFC 7578 over RFC 2046) for
 * uploads (POST /v1/audio/transcriptions).
 *
 * The body is already in memory (read under the server's max_body), so the
 * parser is zero-copy: each part's data points into it. Every read is bounded
 * by the body length (the body is not NUL-terminated); the delimiter search is
 * memchr for '\r' plus a compare, linear in the body. Only what form uploads
 * use is accepted: CRLF line ends, a Content-Disposition of form-data with a
 * name, an optional filename and Content-Type; other headers are ignored. A
 * body that ends before its closing "--boundary--" is refused (a truncated
 * upload must not be transcribed as if it were whole).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server/server_int.h"

#define HEADER_BLOCK_MAX 8192
#define BOUNDARY_MAX 70 /* RFC 2046 */

/* First occurrence of needle (nlen > 0) in hay[0..hlen), or NULL. */
static const char *find_bytes(const char *hay, size_t hlen, const char *needle, size_t nlen) {
    const char *p = hay, *end = hay + hlen;
    while ((size_t)(end - p) >= nlen) {
        const char *q = memchr(p, needle[0], (size_t)(end - p) - nlen + 1);
        if (!q) return NULL;
        if (memcmp(q, needle, nlen) == 0) return q;
        p = q + 1;
    }
    return NULL;
}

static bool starts_icase(const char *s, size_t len, const char *prefix) {
    size_t pl = strlen(prefix);
    return len >= pl && strncasecmp(s, prefix, pl) == 0;
}

/* Read a parameter value at *p (< end): a quoted string (backslash escapes
 * the next byte) or a token up to ';' or whitespace. Copies at most cap-1
 * bytes into out; *trunc says whether it was cut. false: unterminated quote. */
static bool read_value(const char **p, const char *end, char *out, size_t cap, bool *trunc) {
    size_t n = 0;
    *trunc = false;
    const char *q = *p;
    if (q < end && *q == '"') {
        q++;
        while (q < end && *q != '"') {
            if (*q == '\\' && q + 1 < end) q++;
            if (n + 1 < cap) out[n++] = *q;
            else *trunc = true;
            q++;
        }
        if (q >= end) return false;
        q++; /* the closing quote */
    } else {
        while (q < end && *q != ';' && *q != ' ' && *q != '\t') {
            if (n + 1 < cap) out[n++] = *q;
            else *trunc = true;
            q++;
        }
    }
    out[n] = 0;
    *p = q;
    return true;
}

/* Content-Disposition: form-data; name="x"; filename="y" */
static pl_status parse_disposition(const char *v, const char *end, pl_srv_part *part, pl_srv_error *err) {
    if (!starts_icase(v, (size_t)(end - v), "form-data"))
        return pl_srv_err(err, 400, "invalid_request_error", NULL, "a multipart part is not form-data");
    const char *p = v + 9;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if (p >= end) break;
        if (*p != ';') return pl_srv_err(err, 400, "invalid_request_error", NULL, "malformed Content-Disposition");
        p++;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        const char *key = p;
        while (p < end && *p != '=' && *p != ';') p++;
        if (p >= end || *p != '=') continue; /* a parameter without a value: ignored */
        size_t klen = (size_t)(p - key);
        p++;
        char tmp[sizeof part->filename];
        bool trunc;
        bool is_name = klen == 4 && strncasecmp(key, "name", 4) == 0;
        bool is_file = klen == 8 && strncasecmp(key, "filename", 8) == 0;
        char *dst = is_name ? part->name : is_file ? part->filename : tmp;
        size_t cap = is_name ? sizeof part->name : is_file ? sizeof part->filename : sizeof tmp;
        if (!read_value(&p, end, dst, cap, &trunc))
            return pl_srv_err(err, 400, "invalid_request_error", NULL, "unterminated quote in Content-Disposition");
        if (is_name && trunc)
            return pl_srv_err(err, 400, "invalid_request_error", NULL, "a multipart field name is too long");
        if (is_file) part->has_filename = true;
    }
    return PL_OK;
}

static pl_status parse_headers(const char *h, size_t len, pl_srv_part *part, pl_srv_error *err) {
    const char *p = h, *end = h + len;
    bool disposition = false;
    while (p < end) {
        const char *eol = find_bytes(p, (size_t)(end - p), "\r\n", 2);
        const char *le = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (!colon || colon == p)
            return pl_srv_err(err, 400, "invalid_request_error", NULL, "malformed multipart part header");
        const char *v = colon + 1;
        while (v < le && (*v == ' ' || *v == '\t')) v++;
        size_t nlen = (size_t)(colon - p);
        if (nlen == 19 && strncasecmp(p, "content-disposition", 19) == 0) {
            if (disposition)
                return pl_srv_err(err, 400, "invalid_request_error", NULL, "a part has two Content-Disposition headers");
            disposition = true;
            pl_status st = parse_disposition(v, le, part, err);
            if (st != PL_OK) return st;
        } else if (nlen == 12 && strncasecmp(p, "content-type", 12) == 0) {
            size_t n = (size_t)(le - v);
            if (n >= sizeof part->content_type) n = sizeof part->content_type - 1;
            memcpy(part->content_type, v, n);
            part->content_type[n] = 0;
        }
        p = eol ? eol + 2 : end;
    }
    if (!disposition || !part->name[0])
        return pl_srv_err(err, 400, "invalid_request_error", NULL, "a multipart part has no Content-Disposition name");
    return PL_OK;
}

/* The boundary parameter of a multipart/form-data Content-Type into b. */
static pl_status get_boundary(const char *ct, char b[BOUNDARY_MAX + 1], size_t *blen, pl_srv_error *err) {
    if (!ct || !starts_icase(ct, strlen(ct), "multipart/form-data"))
        return pl_srv_err(err, 400, "invalid_request_error", NULL,
                          "the request must be multipart/form-data (Content-Type)");
    const char *p = ct + 19, *end = ct + strlen(ct);
    while (p < end) {
        while (p < end && (*p == ';' || *p == ' ' || *p == '\t')) p++;
        const char *key = p;
        while (p < end && *p != '=' && *p != ';') p++;
        if (p >= end || *p != '=') continue;
        bool is_b = (size_t)(p - key) == 8 && strncasecmp(key, "boundary", 8) == 0;
        p++;
        char tmp[BOUNDARY_MAX + 2];
        bool trunc;
        if (!read_value(&p, end, tmp, sizeof tmp, &trunc))
            return pl_srv_err(err, 400, "invalid_request_error", NULL, "unterminated quote in Content-Type");
        if (!is_b) continue;
        size_t n = strlen(tmp);
        if (trunc || n == 0 || n > BOUNDARY_MAX)
            return pl_srv_err(err, 400, "invalid_request_error", NULL, "the multipart boundary must be 1-70 bytes");
        memcpy(b, tmp, n + 1);
        *blen = n;
        return PL_OK;
    }
    return pl_srv_err(err, 400, "invalid_request_error", NULL, "multipart/form-data without a boundary");
}

pl_status pl_srv_multipart_parse(const char *content_type, const char *body, size_t len, pl_srv_part *parts,
                                 size_t cap, size_t *n_parts, pl_srv_error *err) {
    *n_parts = 0;
    char b[BOUNDARY_MAX + 1];
    size_t blen = 0;
    pl_status st = get_boundary(content_type, b, &blen, err);
    if (st != PL_OK) return st;
    /* delim = "\r\n--" boundary; the first one may lack the CRLF */
    char delim[BOUNDARY_MAX + 5];
    size_t dlen = 4 + blen;
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, b, blen);
    size_t pos;
    if (!body) len = 0;
    if (len >= dlen - 2 && memcmp(body, delim + 2, dlen - 2) == 0) {
        pos = dlen - 2;
    } else {
        const char *d = len ? find_bytes(body, len, delim, dlen) : NULL;
        if (!d) return pl_srv_err(err, 400, "invalid_request_error", NULL, "the multipart body has no boundary");
        pos = (size_t)(d - body) + dlen;
    }
    for (;;) {
        /* just after a delimiter: "--" ends the body, else CRLF starts a part */
        if (len - pos >= 2 && body[pos] == '-' && body[pos + 1] == '-') return PL_OK;
        while (pos < len && (body[pos] == ' ' || body[pos] == '\t')) pos++;
        if (len - pos < 2 || body[pos] != '\r' || body[pos + 1] != '\n')
            return pl_srv_err(err, 400, "invalid_request_error", NULL,
                              len - pos < 2 ? "the multipart body ends without its closing boundary"
                                            : "malformed multipart boundary line");
        pos += 2;
        if (*n_parts == cap)
            return pl_srv_err(err, 400, "invalid_request_error", NULL, "too many multipart parts (at most %zu)", cap);
        pl_srv_part *part = &parts[*n_parts];
        memset(part, 0, sizeof *part);
        size_t hstart = pos, hlen;
        if (len - pos >= 2 && body[pos] == '\r' && body[pos + 1] == '\n') {
            hlen = 0; /* no headers */
            pos += 2;
        } else {
            size_t window = len - pos < HEADER_BLOCK_MAX ? len - pos : HEADER_BLOCK_MAX;
            const char *he = find_bytes(body + pos, window, "\r\n\r\n", 4);
            if (!he)
                return pl_srv_err(err, 400, "invalid_request_error", NULL,
                                  window == HEADER_BLOCK_MAX ? "a multipart part header is too long"
                                                             : "the multipart body ends without its closing boundary");
            hlen = (size_t)(he - (body + pos));
            pos += hlen + 4;
        }
        st = parse_headers(body + hstart, hlen, part, err);
        if (st != PL_OK) return st;
        const char *d = find_bytes(body + pos, len - pos, delim, dlen);
        if (!d)
            return pl_srv_err(err, 400, "invalid_request_error", NULL,
                              "the multipart body ends without its closing boundary");
        part->data = body + pos;
        part->len = (size_t)(d - (body + pos));
        pos = (size_t)(d - body) + dlen;
        (*n_parts)++;
    }
}

const pl_srv_part *pl_srv_multipart_find(const pl_srv_part *parts, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(parts[i].name, name) == 0) return &parts[i];
    return NULL;
}
