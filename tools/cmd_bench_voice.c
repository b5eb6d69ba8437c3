/*
 * cmd_bench_voice.c - `parley bench-voice`: the voice pipeline's latency,
 * stage by stage, over repeated runs of one recording (each run a fresh
 * conversation on the same loaded model, recognizer and synthesizer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "voice_cli.h"

static const char usage_text[] =
    "usage: parley bench-voice -m MODEL --in FILE.wav [-r N] [options]\n"
    "\n"
    "Run a recording through the voice pipeline N times (after --warmup runs) and\n"
    "report every stage's latency (p50, p90, min, max over the answered turns):\n"
    "end-of-speech detection, recognition, time to first token, first complete\n"
    "sentence, first synthesized sample, and voice-to-voice (end of user speech ->\n"
    "first output sample, the sum of those), plus the synthesizer's real-time factor.\n"
    "\n"
    "options: -r, --runs N (default 3), --warmup N (default 1), --json, and those of\n"
    "`parley voice` (-m, --in, --stt, --tts, --voice, --speed, -n, -c, -t, --system,\n"
    "--chat-template, --no-think, --silence-ms, --realtime, --fixture-words).\n";

typedef struct bench {
    pl_voice_metrics *m;
    size_t n, cap;
    char transcript[1024], spoken[2048];
    bool record_text;
    int errors;
    char last_error[512];
} bench;

static void on_event(void *ud, const pl_voice_event *e) {
    bench *b = ud;
    if (e->type == PL_VOICE_EVENT_RESPONSE_DONE && b->n < b->cap) b->m[b->n++] = *e->metrics;
    if (e->type == PL_VOICE_EVENT_ERROR) {
        b->errors++;
        snprintf(b->last_error, sizeof b->last_error, "%s", e->text);
    }
    if (!b->record_text) return;
    char *dst = e->type == PL_VOICE_EVENT_TRANSCRIPT ? b->transcript
                : e->type == PL_VOICE_EVENT_SENTENCE ? b->spoken
                                                     : NULL;
    size_t cap = dst == b->transcript ? sizeof b->transcript : sizeof b->spoken;
    if (dst && strlen(dst) + e->len + 2 < cap) {
        if (dst[0]) strcat(dst, " ");
        strncat(dst, e->text, e->len);
    }
}

int cmd_bench_voice(pl_cli *cli, int argc, char **argv) {
    if (pl_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    voice_opts o;
    voice_opts_defaults(&o);
    for (int i = 1; i < argc; i++) {
        int r = voice_opt(cli, argc, argv, &i, &o);
        if (r < 0) return 2;
        if (r) continue;
        const char *v;
        int64_t *num = NULL;
        if (strcmp(argv[i], "-r") == 0 || pl_cli_is_opt(argv[i], "--runs")) num = &o.runs;
        else if (pl_cli_is_opt(argv[i], "--warmup")) num = &o.warmup;
        else return pl_cli_usage_error(cli, "unexpected argument '%s'", argv[i]);
        if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        if (!pl_cli_parse_i64(v, num == &o.runs ? 1 : 0, 1000, num))
            return pl_cli_usage_error(cli, "bad value '%s' for %s", v, argv[i - 1]);
    }
    if (!o.model) return pl_cli_usage_error(cli, "no model: give -m MODEL");
    if (!o.in) return pl_cli_usage_error(cli, "no input: give --in FILE");

    pl_audio *a = NULL;
    if (pl_audio_load_file(cli->ctx, o.in, NULL, &a) != PL_OK) return pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
    voice_rig r;
    if (!voice_rig_open(cli, &o, &r)) {
        pl_audio_free(a);
        return 1;
    }
    bench b = { .cap = (size_t)(o.runs * 16) };
    b.m = calloc(b.cap, sizeof *b.m);
    double *vals = calloc(b.cap, sizeof *vals);
    int rc = 1;
    if (!b.m || !vals) {
        pl_cli_fail(cli, "out of memory");
        goto done;
    }
    const pl_model_info *mi = pl_model_get_info(r.model);
    if (!o.json)
        fprintf(stderr, "bench-voice: %s (%s), %s %.2f s, stt %s, tts %s, %lld runs after %lld warm-up\n",
                mi->name[0] ? mi->name : r.path, mi->arch, o.in, (double)a->n_frames / a->sample_rate, o.stt, o.tts,
                (long long)o.runs, (long long)o.warmup);
    for (int64_t run = -o.warmup; run < o.runs; run++) {
        pl_session_reset(r.session);
        r.picker.word_len = r.picker.words = r.picker.since_stop = 0;
        size_t before = b.n;
        b.record_text = run == 0;
        pl_voice_params vp = pl_voice_default_params();
        vp.session = r.session;
        vp.stt = r.stt;
        vp.tts = r.tts;
        vp.on_event = on_event;
        vp.ud = &b;
        vp.vad.silence_ms = (int)o.silence_ms;
        vp.playback = o.realtime ? PL_VOICE_PLAYBACK_CLOCK : PL_VOICE_PLAYBACK_INSTANT;
        pl_voice *v = NULL;
        if (pl_voice_init(cli->ctx, &vp, &v) != PL_OK) {
            pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
            goto done;
        }
        bool ok = voice_run_audio(v, a, o.realtime, o.silence_ms);
        pl_voice_free(v);
        if (!ok || b.errors) {
            pl_cli_fail(cli, "run failed: %s", b.errors ? b.last_error : "pushing audio");
            goto done;
        }
        if (run < 0) b.n = before; /* warm-up: not counted */
    }
    if (b.n == 0) {
        pl_cli_fail(cli, "no turn was answered (no speech found in %s?)", o.in);
        goto done;
    }
    if (o.json) {
        printf("{\"model\":");
        voice_json_str(stdout, r.path);
        printf(",\"audio\":");
        voice_json_str(stdout, o.in);
        printf(",\"runs\":%lld,\"transcript\":", (long long)o.runs);
        voice_json_str(stdout, b.transcript);
        printf(",\"spoken\":");
        voice_json_str(stdout, b.spoken);
        printf(",\"turns\":[");
        for (size_t i = 0; i < b.n; i++) {
            char mj[2048];
            pl_voice_metrics_json(&b.m[i], mj, sizeof mj);
            printf("%s%s", i ? "," : "", mj);
        }
        printf("],\"stages\":{");
    } else {
        printf("transcript: %s\nspoken: %s\n", b.transcript, b.spoken);
        printf("%-20s %9s %9s %9s %9s %5s\n", "stage (ms)", "p50", "p90", "min", "max", "n");
    }
    for (int s = 0; s < PL_VOICE_STAGE_COUNT; s++) {
        size_t k = 0;
        for (size_t i = 0; i < b.n; i++) {
            double x = pl_voice_stage_value(&b.m[i], (pl_voice_stage)s);
            if (x >= 0) vals[k++] = x;
        }
        double p50 = pl_voice_percentile(vals, k, 50), p90 = pl_voice_percentile(vals, k, 90);
        double mn = pl_voice_percentile(vals, k, 0), mx = pl_voice_percentile(vals, k, 100);
        const char *name = pl_voice_stage_name((pl_voice_stage)s);
        if (o.json) {
            printf("%s\"%s\":{\"n\":%zu,\"p50\":%.4f,\"p90\":%.4f,\"min\":%.4f,\"max\":%.4f}", s ? "," : "", name, k,
                   p50, p90, mn, mx);
        } else if (s == PL_VOICE_STAGE_TTS_RTF) {
            printf("%-20s %9.4f %9.4f %9.4f %9.4f %5zu\n", name, p50, p90, mn, mx, k);
        } else {
            printf("%-20s %9.1f %9.1f %9.1f %9.1f %5zu\n", name, p50, p90, mn, mx, k);
        }
    }
    double tok = 0, tps = 0, spk = 0, aud = 0;
    for (size_t i = 0; i < b.n; i++) {
        tok += b.m[i].generated_tokens;
        tps += b.m[i].gen_tok_s;
        spk += b.m[i].speech_ms;
        aud += b.m[i].tts_audio_ms;
    }
    if (o.json) {
        printf("}}\n");
    } else {
        printf("per turn (mean of %zu): speech %.0f ms, %.1f tokens at %.1f tok/s, %.0f ms of answer audio\n", b.n,
               spk / b.n, tok / b.n, tps / b.n, aud / b.n);
    }
    rc = 0;
done:
    free(b.m);
    free(vals);
    voice_rig_close(cli, &r);
    pl_audio_free(a);
    return rc;
}
