/*
 * test_voice_mic.c - live audio without a sound card (parley/audio_dev.h and
 * `parley voice --mic`), and `parley voice` taking its settings from the
 * configuration.
 *
 * ALSA's software devices stand in for the hardware: "null" (capture gives
 * silence, playback discards) and a "file" PCM whose capture side reads a raw
 * file, defined in an .asoundrc under a HOME of the test's own (alsa.conf
 * loads ~/.asoundrc). ALSA reads its configuration once per process, so HOME
 * is set in main() before any device is opened.
 *
 * Needs the `models` fixtures (tiny-f32.gguf) for the CLI tests; the speech
 * test needs ../shared/audio/jfk.wav and skips without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "cli_run.h"
#include "parley/audio.h"
#include "parley/audio_dev.h"
#include "speech/speech_test.h"

static pl_ctx *ctx;
static char home[64];       /* the test's HOME: .asoundrc, parley.yaml */
static char ramp_path[128]; /* raw s16 capture input of the "plramp" device */

#define RAMP_N 4000

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- the device layer ---- */

static void test_null_capture(void **state) {
    (void)state;
    pl_audio_dev_params p = pl_audio_dev_default_params();
    p.device = "null";
    pl_audio_dev *d = NULL;
    assert_int_equal(pl_audio_dev_init(ctx, &p, &d), PL_OK);
    assert_int_equal(pl_audio_dev_rate(d), 16000);
    assert_int_equal(pl_audio_dev_period(d), 320); /* 20 ms */
    assert_string_equal(pl_audio_dev_name(d), "null");
    float x[320];
    size_t got = 0, total = 0;
    double t0 = now_s();
    for (int i = 0; i < 26; i++) {
        for (size_t k = 0; k < 320; k++) x[k] = 1.0f;
        assert_int_equal(pl_audio_dev_read(d, x, 320, &got), PL_OK);
        assert_true(got > 0 && got <= 320);
        for (size_t k = 0; k < got; k++) assert_true(x[k] == 0.0f); /* silence, not what was there */
        total += got;
    }
    /* the null device does not pace itself: the reads are held to the wall
     * clock (the first anchors), so 25 periods take at least 0.5 s less a
     * little for the clock's granularity */
    double el = now_s() - t0;
    assert_true(total == 26 * 320);
    assert_true(el >= 0.48);
    assert_int_equal(pl_audio_dev_write(d, x, 10), PL_ERR_STATE);
    pl_audio_dev_free(d);
}

static void test_file_capture(void **state) {
    (void)state;
    pl_audio_dev_params p = pl_audio_dev_default_params();
    p.device = "plramp";
    pl_audio_dev *d = NULL;
    assert_int_equal(pl_audio_dev_init(ctx, &p, &d), PL_OK);
    /* the file holds s16 value (i * 7) - 14000 at sample i: read back exactly */
    static float x[RAMP_N + 2000];
    size_t total = 0, got;
    while (total < RAMP_N + 1000) {
        assert_int_equal(pl_audio_dev_read(d, x + total, 320, &got), PL_OK);
        total += got;
    }
    for (size_t i = 0; i < RAMP_N; i++)
        if (x[i] != (float)((int)i * 7 - 14000) / 32768.0f) fail_msg("sample %zu: %g", i, (double)x[i]);
    for (size_t i = RAMP_N; i < total; i++) assert_true(x[i] == 0.0f); /* past the end: silence */
    assert_int_equal(pl_audio_dev_xruns(d), 0);
    pl_audio_dev_free(d);
}

static void test_dev_errors(void **state) {
    (void)state;
    pl_audio_dev_params p = pl_audio_dev_default_params();
    p.device = "pl-no-such-device";
    pl_audio_dev *d = (pl_audio_dev *)1;
    assert_int_equal(pl_audio_dev_init(ctx, &p, &d), PL_ERR_NOT_FOUND);
    assert_null(d);
    assert_string_equal(pl_ctx_last_error(ctx), "capture device 'pl-no-such-device': No such file or directory "
                                                "(`arecord -L` lists the devices)");
    p.dir = PL_AUDIO_DEV_PLAYBACK;
    assert_int_equal(pl_audio_dev_init(ctx, &p, &d), PL_ERR_NOT_FOUND);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "playback device 'pl-no-such-device': "));
    p.device = "null";
    p.sample_rate = 4000;
    assert_int_equal(pl_audio_dev_init(ctx, &p, &d), PL_ERR_INVALID_ARG);
    p.sample_rate = 16000;
    p.period_ms = 100;
    p.buffer_ms = 150; /* less than two periods */
    assert_int_equal(pl_audio_dev_init(ctx, &p, &d), PL_ERR_INVALID_ARG);
    p.dir = (pl_audio_dev_dir)7;
    p.buffer_ms = 400;
    assert_int_equal(pl_audio_dev_init(ctx, &p, &d), PL_ERR_INVALID_ARG);

    /* playback on null: writes are taken, nothing stays pending, drop works */
    p = pl_audio_dev_default_params();
    p.device = "null";
    p.dir = PL_AUDIO_DEV_PLAYBACK;
    p.sample_rate = 22050;
    assert_int_equal(pl_audio_dev_init(ctx, &p, &d), PL_OK);
    static float y[8000];
    for (size_t i = 0; i < 8000; i++) y[i] = 2.0f * sinf((float)i * 0.05f); /* clipped, not wrapped */
    assert_int_equal(pl_audio_dev_write(d, y, 8000), PL_OK);
    uint64_t pend = 99;
    assert_int_equal(pl_audio_dev_pending(d, &pend), PL_OK);
    assert_true(pend <= pl_audio_dev_buffer(d));
    assert_int_equal(pl_audio_dev_drop(d), PL_OK);
    assert_int_equal(pl_audio_dev_write(d, y, 100), PL_OK);
    size_t got;
    assert_int_equal(pl_audio_dev_read(d, y, 10, &got), PL_ERR_STATE);
    pl_audio_dev_free(d);
    pl_audio_dev_free(NULL);
}

typedef struct played_sum {
    uint64_t played, dropped, calls;
} played_sum;

static void count_played(void *ud, uint64_t played, uint64_t dropped) {
    played_sum *s = ud;
    s->played += played;
    s->dropped += dropped;
    s->calls++;
}

static void test_player(void **state) {
    (void)state;
    played_sum sum = { 0 };
    pl_audio_player_params p = pl_audio_player_default_params();
    p.device = "null";
    p.sample_rate = 22050;
    p.queue_s = 2;
    p.on_played = count_played;
    p.ud = &sum;
    pl_audio_player *pl = NULL;
    assert_int_equal(pl_audio_player_init(ctx, &p, &pl), PL_OK);
    static float x[22050];
    for (size_t i = 0; i < 22050; i++) x[i] = 0.25f * sinf((float)i * 0.1f);
    /* 1 s in 441-sample chunks (as a synthesizer delivers): all of it played */
    for (size_t o = 0; o < 22050; o += 441) assert_int_equal(pl_audio_player_write(pl, x + o, 441), PL_OK);
    assert_true(pl_audio_player_wait(pl, 10000));
    pl_audio_player_stats st;
    pl_audio_player_stats_get(pl, &st);
    assert_true(st.written == 22050);
    assert_true(st.played + st.dropped == 22050);
    assert_true(sum.played == st.played && sum.dropped == st.dropped);
    /* 5 s through a 2 s queue (the writer waits for room), dropped midway:
     * every sample is accounted for exactly once, played or dropped */
    for (int k = 0; k < 5; k++) {
        assert_int_equal(pl_audio_player_write(pl, x, 22050), PL_OK);
        if (k == 2) pl_audio_player_drop(pl);
    }
    pl_audio_player_drop(pl);
    assert_true(pl_audio_player_wait(pl, 10000));
    pl_audio_player_stats_get(pl, &st);
    assert_true(st.written == 6 * 22050);
    assert_true(st.played + st.dropped == st.written);
    assert_true(sum.played == st.played && sum.dropped == st.dropped);
    /* written after a drop plays */
    uint64_t before = st.played + st.dropped;
    assert_int_equal(pl_audio_player_write(pl, x, 1000), PL_OK);
    assert_true(pl_audio_player_wait(pl, 10000));
    pl_audio_player_stats_get(pl, &st);
    assert_true(st.played + st.dropped == before + 1000);
    assert_string_equal(pl_audio_player_last_error(pl), "");
    pl_audio_player_free(pl);
    pl_audio_player_free(NULL);

    p.device = "pl-no-such-device";
    assert_int_equal(pl_audio_player_init(ctx, &p, &pl), PL_ERR_NOT_FOUND);
    assert_null(pl);
    p.device = "null";
    p.sample_rate = 0;
    assert_int_equal(pl_audio_player_init(ctx, &p, &pl), PL_ERR_INVALID_ARG);
}

/* ---- the CLI ---- */

/* Run "$PL_BIN args" in dir (cwd) with HOME=home and env_extra
 * ("NAME=value ..." or ""), stdout and stderr to files. */
static cli_result run_cli(const char *dir, const char *env_extra, const char *fmt, ...) {
    char args[4096], pre[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(pre, sizeof pre, "cd '%s' && env HOME='%s' %s", dir, home, env_extra);
    return cli_run(home, getenv("PL_BIN"), pre, NULL, args);
}

static const char *fixture(char *buf, size_t cap) {
    const char *fx = getenv("PL_FIXTURE_DIR");
    if (!fx || !getenv("PL_BIN")) return NULL;
    snprintf(buf, cap, "%s/tiny-f32.gguf", fx);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

static void test_cli_mic_null(void **state) {
    (void)state;
    char fx[512];
    if (!fixture(fx, sizeof fx)) skip();
    cli_result r = run_cli(home, "",
                           "voice -m '%s' --mic --mic-device null --speaker-device null --duration 2 --json -t 1", fx);
    if (r.code != 0) print_message("stderr: %s\n", r.err);
    assert_int_equal(r.code, 0);
    /* silence for 2 s: no turn, the summary says so */
    const char *head = "{\"turns\":[],\"summary\":{\"turns\":0,\"eos_delay_ms\":{\"p50\":null,";
    assert_true(strncmp(r.out, head, strlen(head)) == 0);
    assert_non_null(strstr(r.out, ",\"xruns\":{\"capture\":0,\"playback\":0}}\n"));
    assert_true(r.secs >= 2.0); /* --duration is wall time: the null device is paced */
    assert_non_null(strstr(r.err, "listening on 'null', speaking on 'null'"));
    cli_result_free(&r);

    /* text output: the summary line, and the stderr note */
    r = run_cli(home, "", "voice -m '%s' --mic --mic-device null --speaker-device null --duration 0.5 -t 1", fx);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "== summary: 0 turns ==\n");
    assert_non_null(strstr(r.err, "parley voice: no speech heard\n"));
    cli_result_free(&r);
}

static void test_cli_mic_sigint(void **state) {
    (void)state;
    char fx[512], cmd[2048];
    if (!fixture(fx, sizeof fx)) skip();
    /* Ctrl-C ends the session cleanly: exit 0 and the summary */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && (HOME='%s' '%s' voice -m '%s' --mic --mic-device null --speaker-device null -t 1 "
             ">out 2>err </dev/null & p=$!; i=0; while [ $i -lt 300 ] && ! grep -q listening err 2>/dev/null; "
             "do sleep 0.1; i=$((i+1)); done; kill -INT $p; wait $p)",
             home, home, getenv("PL_BIN"), fx);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    char path[256];
    size_t n;
    snprintf(path, sizeof path, "%s/out", home);
    char *out = test_read_file(path, &n);
    assert_non_null(out);
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_non_null(strstr(out, "== summary: 0 turns ==\n"));
    free(out);
}

static void test_cli_mic_errors(void **state) {
    (void)state;
    char fx[512];
    if (!fixture(fx, sizeof fx)) skip();
    /* a capture device that does not exist: one line naming it and ALSA's reason */
    cli_result r = run_cli(home, "", "voice -m '%s' --mic --mic-device pl-no-such-mic --speaker-device null", fx);
    assert_int_equal(r.code, 1);
    assert_int_equal(cli_count_lines(r.err), 1);
    assert_string_equal(r.err, "parley voice: --mic: capture device 'pl-no-such-mic': No such file or directory "
                               "(`arecord -L` lists the devices)\n");
    assert_string_equal(r.out, "");
    cli_result_free(&r);
    /* the same for the speaker (found after the model is loaded) */
    r = run_cli(home, "", "voice -m '%s' --mic --mic-device null --speaker-device pl-no-such-speaker -t 1", fx);
    assert_int_equal(r.code, 1);
    assert_int_equal(cli_count_lines(r.err), 1);
    assert_non_null(strstr(r.err, "playback device 'pl-no-such-speaker': No such file or directory"));
    cli_result_free(&r);
    /* usage */
    r = run_cli(home, "", "voice -m '%s' --in x.wav --duration 2", fx);
    assert_int_equal(r.code, 2);
    cli_result_free(&r);
    r = run_cli(home, "", "voice -m '%s' --mic --duration -1", fx);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "bad --duration '-1'"));
    cli_result_free(&r);
}

/* jfk.wav through a file-backed ALSA capture device: a live turn with what
 * was said in its transcript. */
static void test_cli_mic_speech(void **state) {
    (void)state;
    char fx[512], wav[512], raw[256], rc[256];
    if (!fixture(fx, sizeof fx) || !shared_audio("jfk.wav", wav, sizeof wav)) skip();
    pl_audio *a = NULL;
    assert_int_equal(pl_audio_load_file(ctx, wav, NULL, &a), PL_OK);
    snprintf(raw, sizeof raw, "%s/jfk.raw", home);
    assert_int_equal(pl_audio_save(ctx, raw, PL_AUDIO_FORMAT_PCM, a->samples, a->n_frames, 16000, 1), PL_OK);
    pl_audio_free(a);
    /* 4 s: "And so, my fellow Americans," and the pause after it; the rest is
     * cut by --duration (the utterance in progress ends there) */
    cli_result r = run_cli(home, "",
                           "voice -m '%s' --mic --mic-device pljfk --speaker-device null --duration 4 --fixture-words "
                           "-n 12 -t 1 --json",
                           fx);
    if (r.code != 0) print_message("stderr: %s\n", r.err);
    assert_int_equal(r.code, 0);
    const char *tr = strstr(r.out, "{\"transcript\":\"");
    assert_non_null(tr);
    assert_true(tr[15] != '"'); /* not empty */
    assert_non_null(strstr(r.out, "americans"));
    assert_non_null(strstr(r.out, "\"metrics\":{\"turn\":"));   /* a turn was answered */
    assert_null(strstr(r.out, "\"summary\":{\"turns\":0,"));
    assert_non_null(strstr(r.out, "\"spoken\":\""));
    cli_result_free(&r);
    snprintf(rc, sizeof rc, "%s", raw);
    unlink(rc);
}

/* ---- settings from the configuration ---- */

static void test_cli_config(void **state) {
    (void)state;
    char fx[512], dir[128], yaml[256];
    if (!fixture(fx, sizeof fx)) skip();
    snprintf(dir, sizeof dir, "%s/cfg", home);
    mkdir(dir, 0700);
    snprintf(yaml, sizeof yaml, "%s/parley.yaml", dir);
    FILE *f = fopen(yaml, "w");
    assert_non_null(f);
    fprintf(f, "llm:\n  model: %s\n  max_tokens: 5\nspeech:\n  end_of_turn_ms: 700\n", fx);
    fclose(f);
    /* no -m: the model comes from --config */
    cli_result r = run_cli(home, "", "voice --config '%s' --mic --mic-device null --speaker-device null --duration 0.3 -t 1",
                           yaml);
    if (r.code != 0) print_message("stderr: %s\n", r.err);
    assert_int_equal(r.code, 0);
    char want[700];
    snprintf(want, sizeof want, "speaking on 'null' (%s)", fx);
    assert_non_null(strstr(r.err, want));
    cli_result_free(&r);
    /* ... or from ./parley.yaml, found in the working directory */
    r = run_cli(dir, "", "voice --mic --mic-device null --speaker-device null --duration 0.3 -t 1");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.err, want));
    cli_result_free(&r);
    /* ... or from PARLEY_LLM_MODEL */
    r = run_cli(home, "PARLEY_LLM_MODEL='" "'", "voice --mic --mic-device null --speaker-device null --duration 0.3");
    assert_int_equal(r.code, 2); /* an empty model: the usage error */
    assert_non_null(strstr(r.err, "no model"));
    cli_result_free(&r);
    char env[700];
    snprintf(env, sizeof env, "PARLEY_LLM_MODEL='%s'", fx);
    r = run_cli(home, env, "voice --mic --mic-device null --speaker-device null --duration 0.3 -t 1");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.err, want));
    cli_result_free(&r);
    /* a flag wins over the file */
    r = run_cli(dir, "", "voice -m '%s/pl-no-such-model.gguf' --mic --mic-device null --speaker-device null --duration 0.3",
                home);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "pl-no-such-model.gguf"));
    cli_result_free(&r);
    /* a bad value in the file is the file's error, with its line */
    f = fopen(yaml, "w");
    assert_non_null(f);
    fprintf(f, "speech:\n  end_of_turn_ms: 5\n");
    fclose(f);
    r = run_cli(dir, "", "voice --mic --mic-device null --duration 0.3");
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "parley.yaml:2"));
    cli_result_free(&r);
    /* a bad flag value: the key table's range, a usage error */
    r = run_cli(home, "", "voice -m '%s' --silence-ms 5 --mic --mic-device null --duration 0.3", fx);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "--silence-ms"));
    cli_result_free(&r);
    unlink(yaml);
    rmdir(dir);
}

/* ---- setup ---- */

/* HOME with an .asoundrc of two file-backed capture devices. */
static int make_home(void) {
    snprintf(home, sizeof home, "/tmp/pl_mic_XXXXXX");
    if (!mkdtemp(home)) return -1;
    snprintf(ramp_path, sizeof ramp_path, "%s/ramp.raw", home);
    FILE *f = fopen(ramp_path, "wb");
    if (!f) return -1;
    for (int i = 0; i < RAMP_N; i++) {
        int16_t v = (int16_t)(i * 7 - 14000);
        fwrite(&v, sizeof v, 1, f); /* the machine's byte order: what S16 means to ALSA here */
    }
    fclose(f);
    char rc[256];
    snprintf(rc, sizeof rc, "%s/.asoundrc", home);
    if (!(f = fopen(rc, "w"))) return -1;
    fprintf(f,
            "pcm.plramp { type file slave.pcm null file \"/dev/null\" infile \"%s\" format raw }\n"
            "pcm.pljfk { type file slave.pcm null file \"/dev/null\" infile \"%s/jfk.raw\" format raw }\n",
            ramp_path, home);
    fclose(f);
    return setenv("HOME", home, 1);
}

int main(void) {
    if (make_home() != 0 || pl_ctx_init(&ctx, NULL) != PL_OK) {
        fprintf(stderr, "test_voice_mic: cannot set up %s\n", home);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dev_errors),   cmocka_unit_test(test_null_capture),
        cmocka_unit_test(test_file_capture), cmocka_unit_test(test_player),
        cmocka_unit_test(test_cli_mic_null), cmocka_unit_test(test_cli_mic_sigint),
        cmocka_unit_test(test_cli_mic_errors), cmocka_unit_test(test_cli_mic_speech),
        cmocka_unit_test(test_cli_config),
    };
    int failed = cmocka_run_group_tests_name("voice mic", tests, NULL, NULL);
    pl_ctx_free(ctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
    if (system(cmd) != 0) fprintf(stderr, "test_voice_mic: could not remove %s\n", home);
    return failed ? 1 : 0;
}
