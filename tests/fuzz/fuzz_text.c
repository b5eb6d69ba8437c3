/*
 * fuzz_text.c - libFuzzer target for the streaming text stages, chained as
 * the engine runs them: stop -> think -> speakable -> sentences.
 *
 * Input: byte 0 flags (bit 0 start_in_reasoning, bits 1-2 think mode, bit 3
 * url_host, bits 4-7 chunking seed), byte 1 sentence bound (16 + 2 x b),
 * byte 2 stop-string count (0..3) then each as a length byte (0..16) and its
 * bytes, then the text. The text is run once in one feed and once cut into
 * pseudo-random chunks; invariants (abort on violation):
 *  - every stage gives the same output for both (chunking invariance);
 *  - the stop stage passes on an exact prefix of the text;
 *  - speakable text and sentences are valid UTF-8; sentences are non-empty,
 *    trimmed and within the bound.
 * With $PL_FUZZ_WRITE_SEEDS set to a directory, LLVMFuzzerInitialize first
 * writes a few seed inputs there.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/text.h"

#define FUZZ_NAME "fuzz_text"
#include "fuzz/fuzz_util.h"

typedef struct buf {
    char *s;
    size_t len, cap;
} buf;

static void buf_add(buf *b, const char *s, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 16;
        b->s = realloc(b->s, b->cap);
        CHECK(b->s != NULL);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
}

static bool utf8_ok(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t l = u[i] < 0x80 ? 1 : (u[i] & 0xE0) == 0xC0 ? 2 : (u[i] & 0xF0) == 0xE0 ? 3
                 : (u[i] & 0xF8) == 0xF0 ? 4 : 0;
        if (l == 0 || i + l > n) return false;
        for (size_t k = 1; k < l; k++)
            if ((u[i + k] & 0xC0) != 0x80) return false;
        i += l;
    }
    return true;
}

static bool is_ws(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

typedef struct run {
    pl_stop *stop;
    pl_think *think;
    pl_speakable *speak;
    pl_sentences *sent;
    size_t max;
    buf out[5]; /* stop, reasoning, content, speakable, sentences */
} run;

static void on_sent(void *ud, const char *s, size_t n) {
    run *r = ud;
    CHECK(n > 0 && n <= r->max);
    CHECK(!is_ws(s[0]) && !is_ws(s[n - 1]));
    buf_add(&r->out[4], s, n);
    buf_add(&r->out[4], "\x1e", 1);
}
static void on_speak(void *ud, const char *s, size_t n) {
    run *r = ud;
    CHECK(n > 0);
    buf_add(&r->out[3], s, n);
    pl_sentences_feed(r->sent, s, n, on_sent, r);
}
static void on_channel(void *ud, pl_channel ch, const char *s, size_t n) {
    run *r = ud;
    CHECK(n > 0 && (ch == PL_CHANNEL_CONTENT || ch == PL_CHANNEL_REASONING));
    buf_add(&r->out[ch == PL_CHANNEL_REASONING ? 1 : 2], s, n);
    if (ch == PL_CHANNEL_CONTENT) pl_speakable_feed(r->speak, s, n, on_speak, r);
}
static void on_stop(void *ud, const char *s, size_t n) {
    run *r = ud;
    CHECK(n > 0);
    buf_add(&r->out[0], s, n);
    pl_think_feed(r->think, s, n, on_channel, r);
}

static void run_text(pl_ctx *ctx, run *r, uint8_t flags, size_t max, const char *const *stops,
                     size_t ns, const char *text, size_t n, bool chunked) {
    pl_think_params tp = pl_think_default_params();
    tp.start_in_reasoning = flags & 1;
    tp.mode = (pl_think_mode)(((flags >> 1) & 3) % PL_THINK_MODE_COUNT);
    pl_speakable_params sp = pl_speakable_default_params();
    sp.url_host = (flags >> 3) & 1;
    memset(r, 0, sizeof *r);
    r->max = max;
    CHECK(pl_stop_init(ctx, stops, ns, &r->stop) == PL_OK);
    CHECK(pl_think_init(ctx, &tp, &r->think) == PL_OK);
    CHECK(pl_speakable_init(ctx, &sp, &r->speak) == PL_OK);
    CHECK(pl_sentences_init(ctx, max, &r->sent) == PL_OK);
    uint32_t x = 0x9E3779B9u * (uint32_t)((flags >> 4) + 1);
    for (size_t at = 0; at < n;) {
        size_t k = n - at;
        if (chunked) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            k = 1 + x % 7;
            if (k > n - at) k = n - at;
        }
        if (pl_stop_feed(r->stop, text + at, k, on_stop, r)) break;
        at += k;
    }
    pl_stop_finish(r->stop, on_stop, r);
    pl_think_finish(r->think, on_channel, r);
    pl_speakable_finish(r->speak, on_speak, r);
    pl_sentences_finish(r->sent, on_sent, r);
    pl_stop_free(r->stop);
    pl_think_free(r->think);
    pl_speakable_free(r->speak);
    pl_sentences_free(r->sent);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    uint8_t flags = data[0];
    size_t max = 16 + 2 * (size_t)data[1];
    size_t ns = data[2] % 4, at = 3;
    char stop_buf[3][17];
    const char *stops[3];
    for (size_t i = 0; i < ns; i++) {
        size_t l = at < size ? data[at++] % 17 : 0;
        if (l > size - at) l = size - at;
        memcpy(stop_buf[i], data + at, l);
        stop_buf[i][l] = 0; /* a NUL inside just shortens it */
        stops[i] = stop_buf[i];
        at += l;
    }
    const char *text = (const char *)data + at;
    size_t n = size - at;

    pl_ctx *ctx;
    CHECK(pl_ctx_init(&ctx, NULL) == PL_OK);
    run a, b;
    run_text(ctx, &a, flags, max, stops, ns, text, n, false);
    run_text(ctx, &b, flags, max, stops, ns, text, n, true);
    for (int i = 0; i < 5; i++) {
        CHECK(a.out[i].len == b.out[i].len);
        CHECK(a.out[i].len == 0 || memcmp(a.out[i].s, b.out[i].s, a.out[i].len) == 0);
    }
    CHECK(a.out[0].len <= n && (a.out[0].len == 0 || memcmp(a.out[0].s, text, a.out[0].len) == 0));
    CHECK(utf8_ok(a.out[3].s, a.out[3].len));
    CHECK(utf8_ok(a.out[4].s, a.out[4].len));
    for (int i = 0; i < 5; i++) free(a.out[i].s), free(b.out[i].s);
    pl_ctx_free(ctx);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (!dir || !*dir) return 0;
    static const char s1[] = "\x01\x40\x01\x0a<|im_end|>"
        "Let me think.\n</think>\n\n## Title \xF0\x9F\x8E\x89\n1. **Bold** step, e.g. this.\n"
        "```py\nx = 1\n```\n| a | b |\n|---|---|\n| 1 | 2 |\n"
        "See [docs](https://www.example.com/a_(b)) &amp; <br> more... Dr. Who? U.S. It\xE2\x80\xA6"
        "<|im_end|>tail";
    static const char s2[] = "\x00\x00\x02\x03\x61\x61\x62\x02\x62\x63"
        "<think>aab abc</think> text_with_underscores \\* www.python.org. \xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82";
    static const char s3[] = "\x0a\x10\x00> quote\n- item\n---\n<https://x.org/y> ![img](p.png) ok";
    fuzz_write_bytes(dir, "chain", s1, sizeof s1 - 1);
    fuzz_write_bytes(dir, "kmp", s2, sizeof s2 - 1);
    fuzz_write_bytes(dir, "markdown", s3, sizeof s3 - 1);
    return 0;
}
