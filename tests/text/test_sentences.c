/* test_sentences.c - the sentence segmenter: a case table (sentences written
 * out by hand, joined with '|'), fed at every split point; promptness; and
 * the whole chain stop -> think -> speakable -> sentences on a recorded
 * answer. */
#include <stdio.h>
#include <stdlib.h>

#include "test_text.h"

typedef struct sent_case {
    size_t max; /* 0: default */
    const char *in;
    const char *out; /* sentences joined with '|' */
} sent_case;

static const sent_case CASES[] = {
    { 0, "Hello world. How are you? I'm fine!", "Hello world.|How are you?|I'm fine!" },
    { 0, "Dr. Smith went to Washington. He arrived at 3.15 p.m. on Monday.",
      "Dr. Smith went to Washington.|He arrived at 3.15 p.m. on Monday." },
    { 0, "I live in the U.S. It is big.", "I live in the U.S.|It is big." },
    { 0, "The U.S. Army is large.", "The U.S.|Army is large." }, /* the known cost of the rule */
    { 0, "Fruits, e.g. apples, i.e. red ones. Next.", "Fruits, e.g. apples, i.e. red ones.|Next." },
    { 0, "Pi is 3.14159. Euler is 2.718.", "Pi is 3.14159.|Euler is 2.718." },
    { 0, "Wait... what? Hmm... OK then.", "Wait... what?|Hmm...|OK then." },
    { 0, "He said \"Stop.\" Then he left.", "He said \"Stop.\"|Then he left." },
    { 0, "(See the appendix.) More text.", "(See the appendix.)|More text." },
    { 0, "John F. Kennedy was president. Yes.", "John F. Kennedy was president.|Yes." },
    { 0, "Apples, pears, etc. are fruit. Etc. Done", "Apples, pears, etc. are fruit.|Etc.|Done" },
    { 0, "Line one\nLine two\n\nLine three", "Line one|Line two|Line three" },
    { 0, "\xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82\xE6\x88\x91\xE5\xBE\x88\xE5\xA5\xBD\xEF\xBC\x81"
         "\xE4\xBD\xA0\xE5\x91\xA2\xEF\xBC\x9F",
      "\xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82|\xE6\x88\x91\xE5\xBE\x88\xE5\xA5\xBD\xEF\xBC\x81|"
      "\xE4\xBD\xA0\xE5\x91\xA2\xEF\xBC\x9F" },
    { 0, "He said: \xE3\x80\x8C\xE5\xA5\xBD\xE3\x80\x82\xE3\x80\x8D\xE7\x84\xB6\xE5\x90\x8E",
      "He said: \xE3\x80\x8C\xE5\xA5\xBD\xE3\x80\x82\xE3\x80\x8D|\xE7\x84\xB6\xE5\x90\x8E" },
    { 0, "Really?! Yes.", "Really?!|Yes." },
    { 0, "Why?.. Because.", "Why?..|Because." },
    { 0, "Visit example.com. It's great.", "Visit example.com.|It's great." },
    { 0, "Version 2.0 is out. Update now", "Version 2.0 is out.|Update now" },
    { 0, "The end\xE2\x80\xA6 Next one. the end\xE2\x80\xA6 and more",
      "The end\xE2\x80\xA6|Next one.|the end\xE2\x80\xA6 and more" },
    { 0, "   leading spaces.    trailing   ", "leading spaces.|trailing" },
    { 0, "Mr. and Mrs. Smith arrived. I said no. Then left.",
      "Mr. and Mrs. Smith arrived.|I said no.|Then left." },
    { 0, "It costs $5.99. Cheap!", "It costs $5.99.|Cheap!" },
    { 0, "Ends with etc.", "Ends with etc." },
    { 0, "Caf\xC3\xA9 time. \xC3\x89t\xC3\xA9 arrive. \xCE\x91 then.",
      "Caf\xC3\xA9 time.|\xC3\x89t\xC3\xA9 arrive.|\xCE\x91 then." },
    { 0, " \n\n \t ", "" },
    /* length bound: the clause mark, then a space, then a hard cut */
    { 40, "aaaa bbbb cccc dddd eeee, ffff gggg hhhh iiii jjjj kkkk llll mmmm.",
      "aaaa bbbb cccc dddd eeee,|ffff gggg hhhh iiii jjjj kkkk llll mmmm." },
    { 20, "one two three four five six seven eight", "one two three four|five six seven eight" },
    { 16, "abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnop|qrstuvwxyz" },
    { 16, "a\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9",
      "a\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9|\xC3\xA9\xC3\xA9\xC3\xA9" },
    /* a pending end is where an over-long sentence is cut */
    { 16, "Hi. a b c d e f g h", "Hi.|a b c d e f g h" },
};

typedef struct sent_run {
    const sent_case *c;
    size_t n;
    capture out;
} sent_run;

static bool is_space_t(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Collect sentences joined with '|', checking each is trimmed, non-empty and
 * whole characters. */
static void sent_fn(void *ud, const char *s, size_t n) {
    capture *c = ud;
    assert_true(n > 0);
    assert_false(is_space_t((unsigned char)s[0]));
    assert_false(is_space_t((unsigned char)s[n - 1]));
    assert_true(utf8_whole(s, n));
    if (c->pieces++) cap_add(c, "|", 1);
    cap_add(c, s, n);
}

static void feed_sent(void *stage, const char *s, size_t n, void *out) {
    pl_sentences_feed(stage, s, n, sent_fn, out);
}

static void check_split(void *arg, const size_t *cuts, size_t n_cuts) {
    sent_run *r = arg;
    pl_sentences *se;
    assert_int_equal(pl_sentences_init(g_ctx, r->c->max, &se), PL_OK);
    cap_reset(&r->out);
    feed_split(feed_sent, se, &r->out, r->c->in, r->n, cuts, n_cuts);
    pl_sentences_finish(se, sent_fn, &r->out);
    if (strcmp(r->out.s, r->c->out) != 0)
        print_message("in [%s] (%zu cuts): got [%s] want [%s]\n", r->c->in, n_cuts, r->out.s, r->c->out);
    assert_string_equal(r->out.s, r->c->out);
    pl_sentences_free(se);
}

static void test_sentences_cases(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        sent_run r = { .c = &CASES[i], .n = strlen(CASES[i].in) };
        cap_add(&r.out, "", 0);
        for_each_split(r.n, 40, check_split, &r);
        cap_free(&r.out);
    }
}

/* Sentences come out as soon as they are decided, not at the end. */
static void test_sentences_prompt(void **state) {
    (void)state;
    pl_sentences *se;
    assert_int_equal(pl_sentences_init(g_ctx, 0, &se), PL_OK);
    capture c = { 0 };
    cap_add(&c, "", 0);
    pl_sentences_feed(se, "Hello world.", 12, sent_fn, &c);
    assert_int_equal(c.pieces, 0); /* "world.com"? not decided yet */
    pl_sentences_feed(se, " How", 4, sent_fn, &c);
    assert_int_equal(c.pieces, 1);
    assert_string_equal(c.s, "Hello world.");
    pl_sentences_feed(se, " are you in the U.S. ", 21, sent_fn, &c);
    assert_int_equal(c.pieces, 1); /* ambiguous: waits for the next word */
    pl_sentences_feed(se, "I", 1, sent_fn, &c);
    assert_int_equal(c.pieces, 2);
    assert_string_equal(c.s, "Hello world.|How are you in the U.S.");
    pl_sentences_feed(se, " see\nok", 7, sent_fn, &c);
    assert_int_equal(c.pieces, 3); /* a newline ends it at once */
    pl_sentences_finish(se, sent_fn, &c);
    assert_string_equal(c.s, "Hello world.|How are you in the U.S.|I see|ok");
    pl_sentences_free(se);
    pl_sentences_free(NULL);
    cap_free(&c);

    assert_int_equal(pl_sentences_init(g_ctx, PL_SENTENCES_MIN_BYTES - 1, &se), PL_ERR_RANGE);
    assert_null(se);
    assert_int_equal(pl_sentences_init(g_ctx, PL_SENTENCES_MAX_BYTES + 1, &se), PL_ERR_RANGE);
}

/* ---- the whole chain, as the voice pipeline runs it ---- */

typedef struct chain {
    pl_stop *stop;
    pl_think *think;
    pl_speakable *speak;
    pl_sentences *sent;
    capture reasoning, content, sentences;
} chain;

static void chain_sent(void *ud, const char *s, size_t n) { sent_fn(&((chain *)ud)->sentences, s, n); }
static void chain_speak(void *ud, const char *s, size_t n) {
    chain *c = ud;
    pl_sentences_feed(c->sent, s, n, chain_sent, c);
}
static void chain_channel(void *ud, pl_channel ch, const char *s, size_t n) {
    chain *c = ud;
    if (ch == PL_CHANNEL_REASONING) {
        cap_add(&c->reasoning, s, n);
        return;
    }
    cap_add(&c->content, s, n);
    pl_speakable_feed(c->speak, s, n, chain_speak, c);
}
static void chain_stop(void *ud, const char *s, size_t n) {
    chain *c = ud;
    pl_think_feed(c->think, s, n, chain_channel, c);
}
static void feed_chain(void *stage, const char *s, size_t n, void *out) {
    (void)out;
    chain *c = stage;
    pl_stop_feed(c->stop, s, n, chain_stop, c);
}

static const char ANSWER[] =
    "Okay, the user wants a quick recipe.\n</think>\n\n"
    "## Pancakes \xF0\x9F\xA5\x9E\n\n"
    "1. Mix **2 cups** of flour with 1.5 cups of milk.\n"
    "2. Cook on a hot pan, e.g. cast iron, for approx. 2 min. per side.\n\n"
    "```\nbatter = flour + milk\n```\n"
    "See [this guide](https://www.example.com/pancakes) for more. Enjoy!"
    "<|im_end|>\nignored after the stop";

static void check_chain(void *arg, const size_t *cuts, size_t n_cuts) {
    chain *c = arg;
    const char *stops[] = { "<|im_end|>" };
    pl_think_params tp = pl_think_default_params();
    tp.start_in_reasoning = true;
    assert_int_equal(pl_stop_init(g_ctx, stops, 1, &c->stop), PL_OK);
    assert_int_equal(pl_think_init(g_ctx, &tp, &c->think), PL_OK);
    assert_int_equal(pl_speakable_init(g_ctx, NULL, &c->speak), PL_OK);
    assert_int_equal(pl_sentences_init(g_ctx, 0, &c->sent), PL_OK);
    cap_reset(&c->reasoning);
    cap_reset(&c->content);
    cap_reset(&c->sentences);
    feed_split(feed_chain, c, NULL, ANSWER, sizeof ANSWER - 1, cuts, n_cuts);
    pl_stop_finish(c->stop, chain_stop, c);
    pl_think_finish(c->think, chain_channel, c);
    pl_speakable_finish(c->speak, chain_speak, c);
    pl_sentences_finish(c->sent, chain_sent, c);
    assert_string_equal(c->reasoning.s, "Okay, the user wants a quick recipe.");
    assert_string_equal(c->content.s,
        "## Pancakes \xF0\x9F\xA5\x9E\n\n"
        "1. Mix **2 cups** of flour with 1.5 cups of milk.\n"
        "2. Cook on a hot pan, e.g. cast iron, for approx. 2 min. per side.\n\n"
        "```\nbatter = flour + milk\n```\n"
        "See [this guide](https://www.example.com/pancakes) for more. Enjoy!");
    assert_string_equal(c->sentences.s,
        "Pancakes|Mix 2 cups of flour with 1.5 cups of milk.|"
        "Cook on a hot pan, e.g. cast iron, for approx. 2 min. per side.|(code omitted)|"
        "See this guide for more.|Enjoy!");
    assert_int_equal(pl_stop_hit(c->stop), 0);
    pl_stop_free(c->stop);
    pl_think_free(c->think);
    pl_speakable_free(c->speak);
    pl_sentences_free(c->sent);
}

static void test_chain(void **state) {
    (void)state;
    chain c = { 0 };
    cap_add(&c.reasoning, "", 0);
    cap_add(&c.content, "", 0);
    cap_add(&c.sentences, "", 0);
    for_each_split(sizeof ANSWER - 1, 0, check_chain, &c);
    cap_free(&c.reasoning);
    cap_free(&c.content);
    cap_free(&c.sentences);
}

int test_sentences_group(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sentences_cases),
        cmocka_unit_test(test_sentences_prompt),
        cmocka_unit_test(test_chain),
    };
    return cmocka_run_group_tests_name("sentences", tests, NULL, NULL);
}
