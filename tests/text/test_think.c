/* test_think.c - reasoning/content separation: recorded streams with their
 * channel texts written out by hand, fed at every split point. */
#include <stdio.h>
#include <stdlib.h>

#include "test_text.h"

typedef struct think_case {
    const char *name;
    pl_think_mode mode;
    bool start_in_reasoning;
    const char *open_tag, *close_tag; /* NULL: defaults */
    const char *in;
    const char *reasoning, *content;
    bool ends_in_reasoning;
} think_case;

#define SKY "<think>\nThe user asks why the sky is blue. Rayleigh.\n</think>\n\nBecause of Rayleigh scattering."

static const think_case CASES[] = {
    { "qwq-style", PL_THINK_MODE_SEPARATE, false, NULL, NULL, SKY,
      "The user asks why the sky is blue. Rayleigh.", "Because of Rayleigh scattering.", false },
    { "hidden", PL_THINK_MODE_HIDDEN, false, NULL, NULL, SKY, "", "Because of Rayleigh scattering.", false },
    { "none", PL_THINK_MODE_NONE, false, NULL, NULL, SKY, "", SKY, false },
    /* DeepSeek-R1: the generation prompt ends in "<think>\n" */
    { "prompt-opened", PL_THINK_MODE_SEPARATE, true, NULL, NULL,
      "Okay, let me think.\n</think>\n\nHello!", "Okay, let me think.", "Hello!", false },
    { "prompt-opened, tag repeated", PL_THINK_MODE_SEPARATE, true, NULL, NULL,
      "\n<think>\nHmm.</think>Hi", "Hmm.", "Hi", false },
    { "prompt-opened, empty", PL_THINK_MODE_SEPARATE, true, NULL, NULL, "</think>Hi", "", "Hi", false },
    { "prompt-opened, unclosed", PL_THINK_MODE_SEPARATE, true, NULL, NULL, "<thin ", "<thin", "", true },
    { "no reasoning", PL_THINK_MODE_SEPARATE, false, NULL, NULL,
      "Just an answer with <think> inside.", "", "Just an answer with <think> inside.", false },
    { "leading space", PL_THINK_MODE_SEPARATE, false, NULL, NULL, "\n \n<think>x</think>y", "x", "y", false },
    { "false start", PL_THINK_MODE_SEPARATE, false, NULL, NULL,
      "<thinking is fun>", "", "<thinking is fun>", false },
    { "false start <<", PL_THINK_MODE_SEPARATE, false, NULL, NULL, "<<think>", "", "<<think>", false },
    { "close near miss", PL_THINK_MODE_SEPARATE, false, NULL, NULL,
      "<think>a </thinx> b <</think>c", "a </thinx> b <", "c", false },
    { "unclosed", PL_THINK_MODE_SEPARATE, false, NULL, NULL, "<think>still thinking  \n ",
      "still thinking", "", true },
    { "unclosed partial tag", PL_THINK_MODE_SEPARATE, false, NULL, NULL, "<think>abc</thi",
      "abc</thi", "", true },
    { "empty block", PL_THINK_MODE_SEPARATE, false, NULL, NULL, "<think>\n\n</think>\n\nHello",
      "", "Hello", false },
    { "content keeps inner space", PL_THINK_MODE_SEPARATE, false, NULL, NULL,
      "<think>r</think>  c  <think>d</think> ", "r", "c  <think>d</think> ", false },
    { "utf-8", PL_THINK_MODE_SEPARATE, false, NULL, NULL,
      "<think>\xE6\x80\x9D\xE8\x80\x83</think>\xE7\xAD\x94\xE6\xA1\x88",
      "\xE6\x80\x9D\xE8\x80\x83", "\xE7\xAD\x94\xE6\xA1\x88", false },
    /* custom tags whose close tag overlaps itself: KMP releases the right bytes */
    { "custom tags", PL_THINK_MODE_SEPARATE, false, "<<", "aab", "<<xaaabyz", "xa", "yz", false },
    { "custom tags 2", PL_THINK_MODE_SEPARATE, false, "[R]", "abab!", "[R]ababab!ok", "ab", "ok", false },
    { "only content, hidden", PL_THINK_MODE_HIDDEN, false, NULL, NULL, "  plain", "", "plain", false },
};

typedef struct think_run {
    const think_case *c;
    size_t n;
    capture ch[PL_CHANNEL_COUNT];
} think_run;

static void chan_fn(void *ud, pl_channel ch, const char *s, size_t n) {
    capture *c = ud;
    assert_true(ch == PL_CHANNEL_CONTENT || ch == PL_CHANNEL_REASONING);
    assert_true(n > 0);
    cap_add(&c[ch], s, n);
}

static void feed_think(void *stage, const char *s, size_t n, void *out) {
    pl_think_feed(stage, s, n, chan_fn, out);
}

static pl_think *make(const think_case *c) {
    pl_think_params p = pl_think_default_params();
    p.mode = c->mode;
    p.start_in_reasoning = c->start_in_reasoning;
    p.open_tag = c->open_tag;
    p.close_tag = c->close_tag;
    pl_think *t;
    assert_int_equal(pl_think_init(g_ctx, &p, &t), PL_OK);
    return t;
}

static void check_split(void *arg, const size_t *cuts, size_t n_cuts) {
    think_run *r = arg;
    pl_think *t = make(r->c);
    for (int i = 0; i < PL_CHANNEL_COUNT; i++) cap_reset(&r->ch[i]);
    feed_split(feed_think, t, r->ch, r->c->in, r->n, cuts, n_cuts);
    assert_int_equal(pl_think_in_reasoning(t), r->c->ends_in_reasoning);
    pl_think_finish(t, chan_fn, r->ch);
    const char *got_r = r->ch[PL_CHANNEL_REASONING].s, *got_c = r->ch[PL_CHANNEL_CONTENT].s;
    if (strcmp(got_r, r->c->reasoning) || strcmp(got_c, r->c->content))
        print_message("%s (%zu cuts): reasoning [%s] content [%s]\n", r->c->name, n_cuts, got_r, got_c);
    assert_string_equal(got_r, r->c->reasoning);
    assert_string_equal(got_c, r->c->content);
    pl_think_free(t);
}

static void test_think_cases(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        think_run r = { .c = &CASES[i], .n = strlen(CASES[i].in) };
        for (int k = 0; k < PL_CHANNEL_COUNT; k++) cap_add(&r.ch[k], "", 0);
        for_each_split(r.n, 80, check_split, &r);
        for (int k = 0; k < PL_CHANNEL_COUNT; k++) cap_free(&r.ch[k]);
    }
}

/* Long runs: trailing whitespace past the 64-byte trim window is passed on,
 * and a long content run goes out in pieces larger than the staging buffer. */
static void test_think_long(void **state) {
    (void)state;
    char in[2000], want_r[200];
    int n = snprintf(in, sizeof in, "<think>a%100sb</think>", "");
    snprintf(want_r, sizeof want_r, "a%100sb", "");
    for (int i = 0; i < 1000; i++) in[n + i] = (char)('a' + i % 26);
    in[n + 1000] = 0;
    think_case c = { .name = "long", .in = in, .reasoning = want_r, .content = in + n };
    think_run r = { .c = &c, .n = strlen(in) };
    for (int k = 0; k < PL_CHANNEL_COUNT; k++) cap_add(&r.ch[k], "", 0);
    for_each_split(r.n, 0, check_split, &r);
    /* trailing whitespace longer than the trim window passes on whole */
    snprintf(in, sizeof in, "<think>x%80s</think>", "");
    char want[100];
    snprintf(want, sizeof want, "x%80s", "");
    c.in = in, c.reasoning = want, c.content = "";
    r.n = strlen(in);
    for_each_split(r.n, 0, check_split, &r);
    for (int k = 0; k < PL_CHANNEL_COUNT; k++) cap_free(&r.ch[k]);
}

static void test_think_api(void **state) {
    (void)state;
    pl_think_mode m;
    for (int i = 0; i < PL_THINK_MODE_COUNT; i++) {
        assert_int_equal(pl_think_mode_parse(pl_think_mode_name((pl_think_mode)i), &m), PL_OK);
        assert_int_equal(m, i);
    }
    assert_int_equal(pl_think_mode_parse("HIDDEN", &m), PL_OK);
    assert_int_equal(m, PL_THINK_MODE_HIDDEN);
    assert_int_equal(pl_think_mode_parse("shown", &m), PL_ERR_INVALID_ARG);
    assert_string_equal(pl_think_mode_name(PL_THINK_MODE_COUNT), "unknown");

    pl_think_params p = pl_think_default_params();
    pl_think *t = (pl_think *)1;
    p.close_tag = "";
    assert_int_equal(pl_think_init(g_ctx, &p, &t), PL_ERR_RANGE);
    assert_null(t);
    char big[PL_THINK_MAX_TAG + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    p.close_tag = big;
    assert_int_equal(pl_think_init(g_ctx, &p, &t), PL_ERR_RANGE);
    p.mode = PL_THINK_MODE_COUNT;
    p.close_tag = NULL;
    assert_int_equal(pl_think_init(g_ctx, &p, &t), PL_ERR_RANGE);

    /* reset: a second stream, this time opened by the prompt */
    assert_int_equal(pl_think_init(g_ctx, NULL, &t), PL_OK);
    capture ch[PL_CHANNEL_COUNT] = { 0 };
    for (int k = 0; k < PL_CHANNEL_COUNT; k++) cap_add(&ch[k], "", 0);
    pl_think_feed(t, "<think>a", 8, chan_fn, ch);
    assert_true(pl_think_in_reasoning(t));
    pl_think_reset(t, true);
    assert_true(pl_think_in_reasoning(t));
    pl_think_feed(t, "b</think>c", 10, chan_fn, ch);
    assert_false(pl_think_in_reasoning(t));
    pl_think_finish(t, chan_fn, ch);
    assert_string_equal(ch[PL_CHANNEL_REASONING].s, "ab");
    assert_string_equal(ch[PL_CHANNEL_CONTENT].s, "c");
    pl_think_free(t);
    pl_think_free(NULL);
    for (int k = 0; k < PL_CHANNEL_COUNT; k++) cap_free(&ch[k]);

    /* prompts: DeepSeek-R1's generation prompt opens the block, Qwen3's
     * enable_thinking=false prompt closes it */
    const char *r1 = "<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C><think>\n";
    assert_true(pl_think_prompt_opens(r1, strlen(r1), NULL));
    const char *q3 = "<|im_start|>assistant\n<think>\n\n</think>\n\n";
    assert_false(pl_think_prompt_opens(q3, strlen(q3), NULL));
    assert_false(pl_think_prompt_opens("", 0, NULL));
    assert_false(pl_think_prompt_opens("think>", 6, NULL));
    assert_true(pl_think_prompt_opens("x[R] \n", 6, "[R]"));
}

int test_think_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_think_cases),
        cmocka_unit_test(test_think_long),
        cmocka_unit_test(test_think_api),
    };
    return cmocka_run_group_tests_name("think", tests, NULL, NULL);
}
