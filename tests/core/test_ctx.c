/*
 * test_ctx.c - status list, ctx error text, logging (levels, sinks, JSON lines,
 * stderr output), UTF-8 trimming and JSON escaping.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_core.h"

/* ---- status ---- */

static const struct {
    int         value;
    const char *name, *msg;
} status_rows[] = {
#define X(name, val, msg) { val, #name, msg },
    PL_STATUS_LIST(X)
#undef X
};
#define N_STATUS (sizeof status_rows / sizeof status_rows[0])

static void test_status_list(void **state) {
    (void)state;
    assert_true(N_STATUS >= 17);
    for (size_t i = 0; i < N_STATUS; i++) {
        /* values are 0, -1, -2, ... in list order: appended, never renumbered */
        assert_int_equal(status_rows[i].value, -(int)i);
        pl_status st = (pl_status)status_rows[i].value;
        assert_string_equal(pl_status_name(st), status_rows[i].name);
        assert_string_equal(pl_status_str(st), status_rows[i].msg);
        assert_true(strlen(status_rows[i].msg) > 0);
        if (i > 0) assert_memory_equal(pl_status_name(st), "ERR_", 4);
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(status_rows[i].name, status_rows[j].name);
            assert_string_not_equal(status_rows[i].msg, status_rows[j].msg);
        }
    }
    assert_int_equal(PL_OK, 0);
    assert_string_equal(pl_status_name(PL_OK), "OK");
    assert_string_equal(pl_status_str(PL_ERR_NOMEM), "out of memory");
    assert_string_equal(pl_status_name(PL_ERR_CONTEXT_FULL), "ERR_CONTEXT_FULL");
    assert_string_equal(pl_status_str((pl_status)1), "unknown status");
    assert_string_equal(pl_status_str((pl_status)-(int)N_STATUS), "unknown status");
    assert_string_equal(pl_status_name((pl_status)-1000), "ERR_UNKNOWN");
}

/* ---- ctx and error text ---- */

static void test_ctx_init_args(void **state) {
    (void)state;
    assert_int_equal(pl_ctx_init(NULL, NULL), PL_ERR_INVALID_ARG);
    pl_ctx *ctx = (pl_ctx *)1;
    pl_ctx_params p = pl_ctx_default_params();
    p.log_level = (pl_log_level)99;
    assert_int_equal(pl_ctx_init(&ctx, &p), PL_ERR_INVALID_ARG);
    assert_null(ctx);
    p = pl_ctx_default_params();
    p.log_format = PL_LOG_FORMAT_COUNT;
    assert_int_equal(pl_ctx_init(&ctx, &p), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    assert_non_null(ctx);
    pl_ctx_free(ctx);
    pl_ctx_free(NULL);
}

static void test_ctx_error_text(void **state) {
    (void)state;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    assert_string_equal(pl_ctx_last_error(ctx), "");
    assert_string_equal(pl_ctx_last_error(NULL), "");
    assert_int_equal(pl_ctx_err(ctx, PL_ERR_IO, "open %s: %s (code %d)", "a.gguf", "no such file", 2),
                     PL_ERR_IO);
    assert_string_equal(pl_ctx_last_error(ctx), "open a.gguf: no such file (code 2)");
    /* the previous text as an argument (wrapping an inner error) */
    assert_int_equal(pl_ctx_err(ctx, PL_ERR_FORMAT, "model: %s", pl_ctx_last_error(ctx)), PL_ERR_FORMAT);
    assert_string_equal(pl_ctx_last_error(ctx), "model: open a.gguf: no such file (code 2)");
    assert_int_equal(pl_ctx_err(NULL, PL_ERR_RANGE, "x"), PL_ERR_RANGE);
    pl_ctx_clear_error(ctx);
    assert_string_equal(pl_ctx_last_error(ctx), "");

    /* truncation: 600 ASCII bytes -> 508 kept + "..." = 511 */
    char big[700];
    memset(big, 'a', 600);
    big[600] = '\0';
    pl_ctx_err(ctx, PL_ERR_RANGE, "%s", big);
    const char *e = pl_ctx_last_error(ctx);
    assert_int_equal(strlen(e), PL_CTX_ERR_CAP - 1);
    assert_string_equal(e + PL_CTX_ERR_CAP - 4, "...");
    for (int i = 0; i < PL_CTX_ERR_CAP - 4; i++) assert_int_equal(e[i], 'a');

    /* "x" + 300 x U+00E9 (2 bytes each): 508 bytes would end in the middle of
     * a character, so 507 are kept (the x and 253 whole characters). */
    big[0] = 'x';
    for (int i = 0; i < 300; i++) memcpy(big + 1 + 2 * i, "\xc3\xa9", 2);
    big[601] = '\0';
    pl_ctx_err(ctx, PL_ERR_RANGE, "%s", big);
    e = pl_ctx_last_error(ctx);
    assert_int_equal(strlen(e), 507 + 3);
    assert_int_equal((unsigned char)e[505], 0xc3);
    assert_int_equal((unsigned char)e[506], 0xa9);
    assert_string_equal(e + 507, "...");

    /* exactly full (511 bytes) is not truncated */
    memset(big, 'b', 511);
    big[511] = '\0';
    pl_ctx_err(ctx, PL_ERR_RANGE, "%s", big);
    assert_string_equal(pl_ctx_last_error(ctx), big);
    /* NULL format: the status text */
    pl_ctx_err(ctx, PL_ERR_TIMEOUT, NULL);
    assert_string_equal(pl_ctx_last_error(ctx), "timed out");
    pl_ctx_free(ctx);
}

static void test_log_level_parse(void **state) {
    (void)state;
    static const char *names[] = { "debug", "info", "warn", "error", "none" };
    for (int i = 0; i < 5; i++) {
        pl_log_level lv = (pl_log_level)-1;
        assert_int_equal(pl_log_level_parse(names[i], &lv), PL_OK);
        assert_int_equal(lv, i);
    }
    pl_log_level lv = PL_LOG_LEVEL_INFO;
    assert_int_equal(pl_log_level_parse("WARN", &lv), PL_OK);
    assert_int_equal(lv, PL_LOG_LEVEL_WARN);
    assert_int_equal(pl_log_level_parse("verbose", &lv), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_log_level_parse("", &lv), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_log_level_parse("warnx", &lv), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_log_level_parse(NULL, &lv), PL_ERR_INVALID_ARG);
    assert_int_equal(lv, PL_LOG_LEVEL_WARN);
}

static void test_default_params_env(void **state) {
    (void)state;
    char *old_log = getenv("PARLEY_LOG") ? strdup(getenv("PARLEY_LOG")) : NULL;
    char *old_fmt = getenv("PARLEY_LOG_FORMAT") ? strdup(getenv("PARLEY_LOG_FORMAT")) : NULL;
    unsetenv("PARLEY_LOG");
    unsetenv("PARLEY_LOG_FORMAT");
    pl_ctx_params p = pl_ctx_default_params();
    assert_int_equal(p.log_level, PL_LOG_LEVEL_INFO);
    assert_int_equal(p.log_format, PL_LOG_FORMAT_TEXT);
    assert_null(p.alloc);
    assert_null(p.log_fn);
    setenv("PARLEY_LOG", "debug", 1);
    setenv("PARLEY_LOG_FORMAT", "json", 1);
    p = pl_ctx_default_params();
    assert_int_equal(p.log_level, PL_LOG_LEVEL_DEBUG);
    assert_int_equal(p.log_format, PL_LOG_FORMAT_JSON);
    setenv("PARLEY_LOG", "loud", 1);
    setenv("PARLEY_LOG_FORMAT", "xml", 1);
    p = pl_ctx_default_params();
    assert_int_equal(p.log_level, PL_LOG_LEVEL_INFO);
    assert_int_equal(p.log_format, PL_LOG_FORMAT_TEXT);
    setenv("PARLEY_LOG", "none", 1);
    p = pl_ctx_default_params();
    assert_int_equal(p.log_level, PL_LOG_LEVEL_NONE);
    if (old_log) setenv("PARLEY_LOG", old_log, 1); else unsetenv("PARLEY_LOG");
    if (old_fmt) setenv("PARLEY_LOG_FORMAT", old_fmt, 1); else unsetenv("PARLEY_LOG_FORMAT");
    free(old_log);
    free(old_fmt);
}

/* ---- a capturing sink ---- */

typedef struct capture {
    int          n;
    pl_log_level levels[16];
    char         msgs[16][2 * PL_LOG_MSG_MAX];
} capture;

static void capture_fn(void *ud, pl_log_level level, const char *msg) {
    capture *c = ud;
    if (c->n >= 16) return;
    c->levels[c->n] = level;
    snprintf(c->msgs[c->n], sizeof c->msgs[0], "%s", msg);
    c->n++;
}

static pl_ctx *capture_ctx(capture *c, pl_log_format fmt, pl_log_level lv) {
    memset(c, 0, sizeof *c);
    pl_ctx_params p = pl_ctx_default_params();
    p.log_fn = capture_fn;
    p.log_ud = c;
    p.log_format = fmt;
    p.log_level = lv;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, &p), PL_OK);
    return ctx;
}

static void test_log_levels(void **state) {
    (void)state;
    static capture c;
    pl_ctx *ctx = capture_ctx(&c, PL_LOG_FORMAT_TEXT, PL_LOG_LEVEL_WARN);
    assert_int_equal(pl_ctx_log_level(ctx), PL_LOG_LEVEL_WARN);
    pl_log(ctx, PL_LOG_LEVEL_DEBUG, "d %d", 1);
    pl_log(ctx, PL_LOG_LEVEL_INFO, "i %d", 2);
    pl_log(ctx, PL_LOG_LEVEL_WARN, "w %d", 3);
    pl_log(ctx, PL_LOG_LEVEL_ERROR, "e %s", "4");
    pl_log(ctx, PL_LOG_LEVEL_NONE, "never");
    pl_log(ctx, (pl_log_level)42, "never");
    assert_int_equal(c.n, 2);
    assert_int_equal(c.levels[0], PL_LOG_LEVEL_WARN);
    assert_string_equal(c.msgs[0], "w 3"); /* TEXT: the bare message */
    assert_int_equal(c.levels[1], PL_LOG_LEVEL_ERROR);
    assert_string_equal(c.msgs[1], "e 4");

    pl_ctx_set_log_level(ctx, PL_LOG_LEVEL_DEBUG);
    assert_int_equal(pl_ctx_log_level(ctx), PL_LOG_LEVEL_DEBUG);
    pl_log(ctx, PL_LOG_LEVEL_DEBUG, "d");
    assert_int_equal(c.n, 3);
    assert_int_equal(c.levels[2], PL_LOG_LEVEL_DEBUG);
    pl_ctx_set_log_level(ctx, PL_LOG_LEVEL_NONE);
    pl_log(ctx, PL_LOG_LEVEL_ERROR, "e");
    assert_int_equal(c.n, 3);
    pl_ctx_set_log_level(ctx, (pl_log_level)77); /* ignored */
    assert_int_equal(pl_ctx_log_level(ctx), PL_LOG_LEVEL_NONE);

    /* a long message is cut to PL_LOG_MSG_MAX - 1 bytes ending in "..." */
    pl_ctx_set_log_level(ctx, PL_LOG_LEVEL_INFO);
    static char big[5001];
    memset(big, 'x', 5000);
    pl_log(ctx, PL_LOG_LEVEL_INFO, "%s", big);
    assert_int_equal(c.n, 4);
    assert_int_equal(strlen(c.msgs[3]), PL_LOG_MSG_MAX - 1);
    assert_string_equal(c.msgs[3] + PL_LOG_MSG_MAX - 4, "...");
    pl_ctx_free(ctx);
}

/* ---- JSON checking, independent of the escaper ---- */

/* Length of one valid UTF-8 character at s, 0 if invalid (a plain decoder). */
static int utf8_char(const unsigned char *s) {
    unsigned cp;
    int len;
    if (s[0] < 0x80) return 1;
    if ((s[0] & 0xe0) == 0xc0) { cp = s[0] & 0x1f; len = 2; }
    else if ((s[0] & 0xf0) == 0xe0) { cp = s[0] & 0x0f; len = 3; }
    else if ((s[0] & 0xf8) == 0xf0) { cp = s[0] & 0x07; len = 4; }
    else return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    static const unsigned min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

/* Parse a JSON string at *p (at the opening quote); decoded bytes go to out
 * (UTF-8). Returns false on anything invalid. */
static bool json_string(const char **p, char *out, size_t cap) {
    const unsigned char *s = (const unsigned char *)*p;
    size_t o = 0;
    if (*s++ != '"') return false;
    for (;;) {
        if (o + 5 >= cap) return false;
        if (*s == '"') break;
        if (*s < 0x20) return false;
        if (*s == '\\') {
            s++;
            const char *simple = strchr("\"\\/bfnrt", *s);
            if (*s && simple) {
                static const char dec[] = "\"\\/\b\f\n\r\t";
                out[o++] = dec[simple - "\"\\/bfnrt"];
                s++;
            } else if (*s == 'u') {
                unsigned cp = 0;
                for (int i = 1; i <= 4; i++) {
                    int c = s[i];
                    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                    if (v < 0) return false;
                    cp = cp << 4 | (unsigned)v;
                }
                s += 5;
                if (cp >= 0xd800 && cp <= 0xdfff) return false; /* we never emit surrogates */
                if (cp < 0x80) out[o++] = (char)cp;
                else if (cp < 0x800) {
                    out[o++] = (char)(0xc0 | cp >> 6);
                    out[o++] = (char)(0x80 | (cp & 0x3f));
                } else {
                    out[o++] = (char)(0xe0 | cp >> 12);
                    out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    out[o++] = (char)(0x80 | (cp & 0x3f));
                }
            } else {
                return false;
            }
            continue;
        }
        int len = utf8_char(s);
        if (len == 0) return false;
        memcpy(out + o, s, (size_t)len);
        o += (size_t)len;
        s += len;
    }
    out[o] = '\0';
    *p = (const char *)s + 1;
    return true;
}

/* A log line: {"ts":<digits>.<6 digits>,"level":"<name>","msg":"..."} exactly.
 * Returns the decoded msg in msg_out and the timestamp in *ts_us. */
static bool json_log_line(const char *line, uint64_t *ts_us, char *level_out, char *msg_out, size_t cap) {
    const char *p = line;
    if (strncmp(p, "{\"ts\":", 6) != 0) return false;
    p += 6;
    uint64_t sec = 0, frac = 0;
    int nd = 0;
    while (*p >= '0' && *p <= '9') { sec = sec * 10 + (uint64_t)(*p++ - '0'); nd++; }
    if (nd == 0 || *p++ != '.') return false;
    for (int i = 0; i < 6; i++) {
        if (*p < '0' || *p > '9') return false;
        frac = frac * 10 + (uint64_t)(*p++ - '0');
    }
    *ts_us = sec * 1000000u + frac;
    if (strncmp(p, ",\"level\":", 9) != 0) return false;
    p += 9;
    if (!json_string(&p, level_out, 32)) return false;
    if (strncmp(p, ",\"msg\":", 7) != 0) return false;
    p += 7;
    if (!json_string(&p, msg_out, cap)) return false;
    return strcmp(p, "}") == 0;
}

/* The part of a JSON log line after the timestamp. */
static const char *after_ts(const char *line) {
    const char *p = strstr(line, ",\"level\"");
    return p ? p : "";
}

static void test_log_json(void **state) {
    (void)state;
    static capture c;
    static const struct { const char *in, *out; } cases[] = {
        { "plain text 123", "plain text 123" },
        { "say \"hi\"\n", "say \\\"hi\\\"\\n" },
        { "C:\\dir\\", "C:\\\\dir\\\\" },
        { "a\x01" "b\x1f\x7f\t\r\b\f/", "a\\u0001b\\u001f\\u007f\\t\\r\\b\\f/" },
        { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
        /* invalid UTF-8: one U+FFFD per maximal invalid subpart */
        { "ok \xff \xc3\xa9 \xe2\x82 z", "ok \\ufffd \xc3\xa9 \\ufffd z" },
        { "\xed\xa0\x80|\xf4\x90\x80\x80|\xc0\xaf|\xf0\x9f\x98",
          "\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd|\\ufffd" },
    };
    pl_ctx *ctx = capture_ctx(&c, PL_LOG_FORMAT_JSON, PL_LOG_LEVEL_DEBUG);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        c.n = 0;
        uint64_t t0 = pl_time_wall_us();
        pl_log(ctx, PL_LOG_LEVEL_WARN, "%s", cases[i].in);
        uint64_t t1 = pl_time_wall_us();
        assert_int_equal(c.n, 1);
        char expect[256];
        snprintf(expect, sizeof expect, ",\"level\":\"warn\",\"msg\":\"%s\"}", cases[i].out);
        assert_string_equal(after_ts(c.msgs[0]), expect);
        uint64_t ts;
        char level[32], msg[512];
        assert_true(json_log_line(c.msgs[0], &ts, level, msg, sizeof msg));
        assert_string_equal(level, "warn");
        assert_true(ts >= t0 && ts <= t1);
        if (i < 5) assert_string_equal(msg, cases[i].in); /* valid input round-trips */
    }
    /* each level's name */
    static const char *names[] = { "debug", "info", "warn", "error" };
    for (int lv = 0; lv < 4; lv++) {
        c.n = 0;
        pl_log(ctx, (pl_log_level)lv, "x");
        char expect[64];
        snprintf(expect, sizeof expect, ",\"level\":\"%s\",\"msg\":\"x\"}", names[lv]);
        assert_string_equal(after_ts(c.msgs[0]), expect);
    }
    /* 4000 control bytes escape to 24000 chars: cut, still valid, ends in ... */
    static char ctl[4001];
    memset(ctl, 1, 4000);
    c.n = 0;
    pl_log(ctx, PL_LOG_LEVEL_INFO, "%s", ctl);
    size_t len = strlen(c.msgs[0]);
    assert_true(len < 2 * PL_LOG_MSG_MAX && len > PL_LOG_MSG_MAX);
    assert_string_equal(c.msgs[0] + len - 5, "...\"}");
    uint64_t ts;
    char level[32];
    static char msg[2 * PL_LOG_MSG_MAX];
    assert_true(json_log_line(c.msgs[0], &ts, level, msg, sizeof msg));
    pl_ctx_free(ctx);
}

/* Random bytes: every line is valid JSON; random valid UTF-8 round-trips. */
static void test_json_escape_random(void **state) {
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char in[128], esc[1024], dec[1024];
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 0, want = (size_t)(seed % 100);
        bool valid_only = iter & 1;
        while (n < want) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            unsigned r = (unsigned)(seed >> 33);
            if (!valid_only) {
                in[n++] = (char)(r & 0xff ? r & 0xff : 1);
            } else {
                /* a random code point, UTF-8 encoded by hand */
                unsigned cp = r % 4 == 0 ? r % 0x80 : r % 4 == 1 ? r % 0x800
                            : r % 4 == 2 ? r % 0x10000 : 0x10000 + r % 0x100000;
                if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff)) cp = 'q';
                if (n + 4 > want) break;
                if (cp < 0x80) in[n++] = (char)cp;
                else if (cp < 0x800) { in[n++] = (char)(0xc0 | cp >> 6); in[n++] = (char)(0x80 | (cp & 0x3f)); }
                else if (cp < 0x10000) {
                    in[n++] = (char)(0xe0 | cp >> 12); in[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    in[n++] = (char)(0x80 | (cp & 0x3f));
                } else {
                    in[n++] = (char)(0xf0 | cp >> 18); in[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
                    in[n++] = (char)(0x80 | ((cp >> 6) & 0x3f)); in[n++] = (char)(0x80 | (cp & 0x3f));
                }
            }
        }
        esc[0] = '"';
        size_t used = 0;
        size_t o = pl_json_escape(esc + 1, sizeof esc - 3, in, n, &used);
        assert_int_equal(used, n);
        assert_int_equal(strlen(esc + 1), o);
        memcpy(esc + 1 + o, "\"", 2);
        const char *p = esc;
        assert_true(json_string(&p, dec, sizeof dec));
        assert_int_equal(*p, '\0');
        if (valid_only) {
            assert_int_equal(strlen(dec), n);
            assert_memory_equal(dec, in, n);
        }
        /* a small buffer cuts at an escape boundary and stays valid */
        size_t cap = 1 + (size_t)(seed >> 20) % 40;
        o = pl_json_escape(esc + 1, cap, in, n, &used);
        assert_true(o < cap && used <= n);
        memcpy(esc + 1 + o, "\"", 2);
        p = esc;
        assert_true(json_string(&p, dec, sizeof dec));
    }
}

static void test_utf8_trim(void **state) {
    (void)state;
    assert_int_equal(pl_utf8_trim("abc", 3), 3);
    assert_int_equal(pl_utf8_trim("ab\xc3\xa9", 4), 4);
    assert_int_equal(pl_utf8_trim("ab\xc3\xa9", 3), 2);
    assert_int_equal(pl_utf8_trim("a\xf0\x9f\x98\x80", 4), 1);
    assert_int_equal(pl_utf8_trim("a\xf0\x9f\x98\x80", 5), 5);
    assert_int_equal(pl_utf8_trim("a\xff", 2), 2);     /* invalid, not cut-off: kept */
    assert_int_equal(pl_utf8_trim("a\xe2\x82z", 4), 4); /* broken in the middle: kept */
    assert_int_equal(pl_utf8_trim("", 0), 0);
}

/* ---- stderr output ---- */

typedef struct stderr_redirect {
    int saved, fd;
    char path[64];
} stderr_redirect;

static void redirect_stderr(stderr_redirect *r) {
    snprintf(r->path, sizeof r->path, "/tmp/pl_test_core_XXXXXX");
    r->fd = mkstemp(r->path);
    assert_true(r->fd >= 0);
    fflush(stderr);
    r->saved = dup(2);
    assert_true(r->saved >= 0);
    assert_int_equal(dup2(r->fd, 2), 2);
}

/* Restore stderr and return what was written (malloc'd). */
static char *restore_stderr(stderr_redirect *r) {
    fflush(stderr);
    dup2(r->saved, 2);
    close(r->saved);
    off_t len = lseek(r->fd, 0, SEEK_END);
    char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(pread(r->fd, buf, (size_t)len, 0), len);
    buf[len] = '\0';
    close(r->fd);
    unlink(r->path);
    return buf;
}

static void test_log_stderr_text(void **state) {
    (void)state;
    pl_ctx_params p = pl_ctx_default_params();
    p.log_level = PL_LOG_LEVEL_INFO;
    p.log_format = PL_LOG_FORMAT_TEXT;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, &p), PL_OK);
    stderr_redirect r;
    redirect_stderr(&r);
    pl_log(ctx, PL_LOG_LEVEL_WARN, "hello %d", 42);
    pl_log(ctx, PL_LOG_LEVEL_DEBUG, "hidden");
    pl_log(ctx, PL_LOG_LEVEL_ERROR, "bad \"%s\"", "thing");
    pl_log(NULL, PL_LOG_LEVEL_INFO, "no ctx");
    pl_log(NULL, PL_LOG_LEVEL_DEBUG, "no ctx hidden");
    char *out = restore_stderr(&r);
    assert_string_equal(out, "parley: warn: hello 42\nparley: error: bad \"thing\"\nparley: info: no ctx\n");
    free(out);
    pl_ctx_free(ctx);
}

typedef struct log_thread_arg {
    pl_ctx *ctx;
    int     id;
} log_thread_arg;

enum { LOG_THREADS = 4, LOG_LINES = 300 };

static void *log_thread(void *ud) {
    log_thread_arg *a = ud;
    char pad[200];
    memset(pad, 'a' + a->id, sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < LOG_LINES; i++) pl_log(a->ctx, PL_LOG_LEVEL_INFO, "t%d #%d %s", a->id, i, pad);
    return NULL;
}

/* Concurrent JSON lines reach stderr whole: every line parses and each
 * thread's lines are all there, in its order. */
static void test_log_stderr_json_threads(void **state) {
    (void)state;
    pl_ctx_params p = pl_ctx_default_params();
    p.log_level = PL_LOG_LEVEL_INFO;
    p.log_format = PL_LOG_FORMAT_JSON;
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, &p), PL_OK);
    stderr_redirect r;
    redirect_stderr(&r);
    pthread_t th[LOG_THREADS];
    log_thread_arg args[LOG_THREADS];
    for (int i = 0; i < LOG_THREADS; i++) {
        args[i] = (log_thread_arg){ ctx, i };
        pthread_create(&th[i], NULL, log_thread, &args[i]);
    }
    for (int i = 0; i < LOG_THREADS; i++) pthread_join(th[i], NULL);
    char *out = restore_stderr(&r);
    int next[LOG_THREADS] = { 0 };
    int lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        uint64_t ts;
        char level[32], msg[512];
        assert_true(json_log_line(line, &ts, level, msg, sizeof msg));
        assert_string_equal(level, "info");
        int id = -1, k = -1;
        assert_int_equal(sscanf(msg, "t%d #%d", &id, &k), 2);
        assert_true(id >= 0 && id < LOG_THREADS);
        assert_int_equal(k, next[id]);
        next[id]++;
        const char *pad = strchr(strchr(msg, '#'), ' ') + 1;
        assert_int_equal(strlen(pad), 199);
        for (int j = 0; j < 199; j++) assert_int_equal(pad[j], 'a' + id);
        lines++;
    }
    assert_int_equal(lines, LOG_THREADS * LOG_LINES);
    free(out);
    pl_ctx_free(ctx);
}

int test_ctx_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_list),
        cmocka_unit_test(test_ctx_init_args),
        cmocka_unit_test(test_ctx_error_text),
        cmocka_unit_test(test_log_level_parse),
        cmocka_unit_test(test_default_params_env),
        cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_log_json),
        cmocka_unit_test(test_json_escape_random),
        cmocka_unit_test(test_utf8_trim),
        cmocka_unit_test(test_log_stderr_text),
        cmocka_unit_test(test_log_stderr_json_threads),
    };
    return cmocka_run_group_tests_name("core/ctx", tests, NULL, NULL);
}
