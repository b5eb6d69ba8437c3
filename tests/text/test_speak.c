/* test_speak.c - speakable text: markdown case table (expected outputs
 * written by hand), each case fed at every split point. */
#include <stdio.h>
#include <stdlib.h>

#include "test_text.h"

typedef struct speak_case {
    const char *in, *out;
} speak_case;

static const speak_case CASES[] = {
    /* headers, emphasis, inline code */
    { "# Hello World\nThis is **bold** and *italic*.", "Hello World\nThis is bold and italic." },
    { "### Step 2: wait", "Step 2: wait" },
    { "#hashtag stays", "#hashtag stays" },
    { "Some `code` here", "Some code here" },
    { "Mixed **bold _italic_** text", "Mixed bold italic text" },
    { "~~old~~ new", "old new" },
    { "Heading\n===\nText", "Heading\n\nText" }, /* a rule is a paragraph break */
    /* lists and quotes */
    { "- one\n- two\n* three\n+ four", "one\ntwo\nthree\nfour" },
    { "1. First\n2) Second\n10. Tenth", "First\nSecond\nTenth" },
    { "1. **Step one**: do it", "Step one: do it" },
    { "  - nested item", "nested item" },
    { "> quoted text\n> - quoted item", "quoted text\nquoted item" },
    { "\xE2\x80\xA2 bullet dot", "bullet dot" },
    { "3.14 is pi\n2024 was a year", "3.14 is pi\n2024 was a year" },
    { "-5 degrees", "-5 degrees" },
    /* rules and blank lines */
    { "Above\n\n---\n\nBelow", "Above\n\nBelow" },
    { "A\n\n\n\n\nB", "A\n\nB" },
    { "\n\n\nLeading", "Leading" },
    /* links, images, URLs */
    { "See [the docs](https://example.com/docs) now.", "See the docs now." },
    { "![a cat](cat.png) A cat.", "A cat." },
    { "[not a link", "not a link" },
    { "Visit https://www.example.com/a/b?x=1. Then", "Visit example.com. Then" },
    { "See https://example.com.", "See example.com." },
    { "Go to www.python.org, then", "Go to python.org, then" },
    { "(https://x.org/a_(b)) and", "(x.org) and" },
    { "<https://github.com/x> ok", "github.com ok" },
    { "**https://docs.rs/foo**", "docs.rs" },
    { "http is a protocol, what? who", "http is a protocol, what? who" },
    { "mail bob@example.com", "mail bob@example.com" },
    /* control tokens, tags, entities */
    { "Done.<|im_end|>", "Done." },
    { "Hi<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "Hi" },
    { "line one<br>line two", "line one line two" },
    { "x < y and a > b", "x < y and a > b" },
    { "Tom &amp; Jerry &lt;3 &nbsp;x", "Tom & Jerry <3 x" },
    { "AT&T rocks &unknown; yes", "AT&T rocks &unknown; yes" },
    /* emoji */
    { "Great job! \xF0\x9F\x8E\x89\xF0\x9F\x91\x8D Keep going", "Great job! Keep going" },
    { "I \xE2\x9D\xA4\xEF\xB8\x8F it", "I it" },
    { "Flag \xF0\x9F\x87\xAB\xF0\x9F\x87\xB7 and family "
      "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7.", "Flag and family." },
    { "caf\xC3\xA9 na\xC3\xAFve \xE4\xBD\xA0\xE5\xA5\xBD", "caf\xC3\xA9 na\xC3\xAFve \xE4\xBD\xA0\xE5\xA5\xBD" },
    /* code blocks */
    { "Run this:\n```python\nprint('hi')\n# not a header\n```\nThen done.",
      "Run this:\n(code omitted)\nThen done." },
    { "Text\n   ```js\n   x = 1;\n   ```\nAfter", "Text\n(code omitted)\nAfter" },
    { "~~~\ncode\n~~~~\nafter", "(code omitted)\nafter" },
    { "```\ncode forever", "(code omitted)\n" },
    { "``` not closed by ``` inline\nstill code", "(code omitted)\n" },
    /* tables */
    { "| Name | Age |\n|------|:---:|\n| Bob | 42 |\n", "Name, Age\nBob, 42\n" },
    { "|a|b|c|", "a, b, c" },
    /* underscores and escapes */
    { "call my_function now", "call my function now" },
    { "__init__ and _emph_", "init and emph" },
    { "2 \\* 3 \\_x\\_ C:\\Users", "2 * 3 _x_ C:\\Users" },
    /* whitespace and junk */
    { "text with\ttabs   and    spaces", "text with tabs and spaces" },
    { "Line with trailing   \r\nNext", "Line with trailing\nNext" },
    { "a\x01" "b\x7f" "c", "ab\x7f" "c" },
    { "a\xFF" "b\xC3", "ab" },
    { "Price is $5!", "Price is $5!" },
    { "Wow!! [x]", "Wow!! x" },
};

typedef struct speak_run {
    const speak_case *c;
    size_t n;
    capture out;
} speak_run;

static void feed_speak(void *stage, const char *s, size_t n, void *out) {
    pl_speakable_feed(stage, s, n, cap_text_fn, out);
}

static void check_split(void *arg, const size_t *cuts, size_t n_cuts) {
    speak_run *r = arg;
    pl_speakable *sp;
    assert_int_equal(pl_speakable_init(g_ctx, NULL, &sp), PL_OK);
    cap_reset(&r->out);
    feed_split(feed_speak, sp, &r->out, r->c->in, r->n, cuts, n_cuts);
    pl_speakable_finish(sp, cap_text_fn, &r->out);
    if (strcmp(r->out.s, r->c->out) != 0)
        print_message("in [%s] (%zu cuts): got [%s] want [%s]\n", r->c->in, n_cuts, r->out.s, r->c->out);
    assert_string_equal(r->out.s, r->c->out);
    pl_speakable_free(sp);
}

static void test_speak_cases(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        speak_run r = { .c = &CASES[i], .n = strlen(CASES[i].in) };
        cap_add(&r.out, "", 0);
        for_each_split(r.n, 48, check_split, &r);
        cap_free(&r.out);
    }
}

static void test_speak_params(void **state) {
    (void)state;
    pl_speakable_params p = pl_speakable_default_params();
    p.code_phrase = "There is some code on screen.";
    p.url_host = false;
    pl_speakable *sp;
    assert_int_equal(pl_speakable_init(g_ctx, &p, &sp), PL_OK);
    capture c = { 0 };
    const char *in = "See https://example.com/x. Code:\n```\nx\n```\n";
    pl_speakable_feed(sp, in, strlen(in), cap_text_fn, &c);
    pl_speakable_finish(sp, cap_text_fn, &c);
    assert_string_equal(c.s, "See. Code:\nThere is some code on screen.\n");
    /* finish resets: the next stream starts clean, outside the code block */
    cap_reset(&c);
    pl_speakable_feed(sp, "```\nx", 5, cap_text_fn, &c);
    pl_speakable_finish(sp, cap_text_fn, &c);
    pl_speakable_feed(sp, "plain", 5, cap_text_fn, &c);
    pl_speakable_finish(sp, cap_text_fn, &c);
    assert_string_equal(c.s, "There is some code on screen.\nplain");
    pl_speakable_free(sp);
    pl_speakable_free(NULL);
    cap_free(&c);

    char big[1100];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    p.code_phrase = big;
    sp = (pl_speakable *)1;
    assert_int_equal(pl_speakable_init(g_ctx, &p, &sp), PL_ERR_RANGE);
    assert_null(sp);
}

/* Bounded holds: a tag that never closes, a huge host, a link target with no
 * end. Output stays sane and nothing grows. */
static void test_speak_bounds(void **state) {
    (void)state;
    pl_speakable *sp;
    assert_int_equal(pl_speakable_init(g_ctx, NULL, &sp), PL_OK);
    capture c = { 0 };
    char in[6000];
    /* "<" then 100 letters: past the tag bound it is text */
    size_t n = 0;
    in[n++] = '<';
    for (int i = 0; i < 100; i++) in[n++] = 'a';
    pl_speakable_feed(sp, in, n, cap_text_fn, &c);
    pl_speakable_finish(sp, cap_text_fn, &c);
    assert_int_equal(c.len, 101);
    assert_true(c.s[0] == '<');
    /* a 400-letter host is cut to 253 bytes */
    cap_reset(&c);
    n = (size_t)snprintf(in, sizeof in, "https://");
    for (int i = 0; i < 400; i++) in[n++] = 'h';
    in[n++] = ' ';
    in[n++] = 'z';
    pl_speakable_feed(sp, in, n, cap_text_fn, &c);
    pl_speakable_finish(sp, cap_text_fn, &c);
    assert_int_equal(c.len, 253 + 2);
    /* "](" with no ")" for 3000 bytes: skipping stops at 2048, the rest is text */
    cap_reset(&c);
    n = (size_t)snprintf(in, sizeof in, "[a](");
    for (int i = 0; i < 3000; i++) in[n++] = 'q';
    pl_speakable_feed(sp, in, n, cap_text_fn, &c);
    pl_speakable_finish(sp, cap_text_fn, &c);
    assert_true(c.len > 900 && c.len < 1000);
    assert_true(c.s[0] == 'a');
    pl_speakable_free(sp);
    cap_free(&c);
}

int test_speak_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_speak_cases),
        cmocka_unit_test(test_speak_params),
        cmocka_unit_test(test_speak_bounds),
    };
    return cmocka_run_group_tests_name("speak", tests, NULL, NULL);
}
