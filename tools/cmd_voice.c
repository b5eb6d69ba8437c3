/*
 * cmd_voice.c - `parley voice`: one spoken exchange through the voice
 * pipeline (parley/voice.h): a recording in, the spoken answer out as a WAV,
 * and on stdout the transcript, the thoughts (if asked), the spoken text and
 * the per-stage latency table (or all of it as JSON).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "voice_cli.h"

static const char usage_text[] =
    "usage: parley voice -m MODEL --in QUESTION.wav [--out ANSWER.wav] [options]\n"
    "       parley voice -m MODEL --mic\n"
    "\n"
    "Talk to a model by voice: the recording goes through voice activity detection,\n"
    "speech recognition, the model (reasoning is kept apart and never spoken), and\n"
    "each sentence of the answer is synthesized as soon as it is complete. Prints the\n"
    "transcript, the thoughts (--show-thoughts), the spoken text and the latency of\n"
    "every stage; writes the spoken answer to --out.\n"
    "\n"
    "options:\n"
    "  -m, --model M        GGUF file or store name\n"
    "  --in FILE            the question (WAV, FLAC, OGG, MP3; resampled to 16 kHz mono)\n"
    "  --out FILE           the answer as a 16-bit WAV at the synthesizer's rate\n"
    "  --mic                live from the microphone (ALSA capture)\n"
    "  --stt NAME           recognizer (default pocketsphinx)\n"
    "  --tts NAME           synthesizer (default espeak)\n"
    "  --voice NAME         synthesizer voice (espeak: en-us, en-gb+klatt, ...)\n"
    "  --speed S            speaking rate, 0.25..4 (default 1)\n"
    "  --show-thoughts      print the model's reasoning\n"
    "  --json               print one JSON object instead of text\n"
    "  --system TEXT        system message\n"
    "  --chat-template NAME a built-in chat template (default: the model's, else chatml)\n"
    "  --no-think           enable_thinking=false for the template\n"
    "  -n, --max-tokens N   most tokens per answer (default 256)\n"
    "  -c, --ctx N          context tokens (default 4096)\n"
    "  -t, --threads N      worker threads (0: physical cores)\n"
    "  --silence-ms MS      pause that ends a turn (default 500)\n"
    "  --realtime           push the recording at real-time pace (as a microphone would)\n"
    "  --fixture-words      pick only letters, spaces and full stops (argmax among them):\n"
    "                       makes random-weight fixtures say sentences; for benchmarks\n"
    "  -h, --help           this text\n"
    "\n"
    "Latency stages (ms): eos_delay (end of speech -> the VAD's decision), stt (-> final\n"
    "transcript), llm_ttft (-> first token), first_sentence (-> first complete sentence),\n"
    "tts_first_chunk (-> first output sample); v2v is their sum: end of user speech ->\n"
    "first output sample. tts_rtf is synthesis time / audio time.\n";

typedef struct turn_out {
    char *transcript, *thoughts, *spoken;
    size_t tl, hl, sl;
    pl_voice_metrics m;
    bool done;
} turn_out;

#define MAX_TURNS 64

typedef struct voice_cmd {
    turn_out         turns[MAX_TURNS];
    pl_audio_writer *w;
    pl_status        werr;
    int              errors;
    char             last_error[512];
} voice_cmd;

static void append(char **buf, size_t *len, const char *s, size_t n, const char *sep) {
    size_t sn = (*len && sep) ? strlen(sep) : 0;
    char *nb = realloc(*buf, *len + sn + n + 1);
    if (!nb) return;
    memcpy(nb + *len, sep ? sep : "", sn);
    memcpy(nb + *len + sn, s, n);
    *len += sn + n;
    nb[*len] = 0;
    *buf = nb;
}

static void on_event(void *ud, const pl_voice_event *e) {
    voice_cmd *c = ud;
    turn_out *t = e->turn >= 1 && e->turn <= MAX_TURNS ? &c->turns[e->turn - 1] : NULL;
    switch (e->type) {
    case PL_VOICE_EVENT_TRANSCRIPT:
        if (t) append(&t->transcript, &t->tl, e->text, e->len, " ");
        break;
    case PL_VOICE_EVENT_REASONING_DELTA:
        if (t) append(&t->thoughts, &t->hl, e->text, e->len, NULL);
        break;
    case PL_VOICE_EVENT_SENTENCE:
        if (t) append(&t->spoken, &t->sl, e->text, e->len, " ");
        break;
    case PL_VOICE_EVENT_AUDIO:
        if (c->w && c->werr == PL_OK) c->werr = pl_audio_writer_write(c->w, e->pcm, e->n_pcm);
        break;
    case PL_VOICE_EVENT_RESPONSE_DONE:
        if (t) {
            t->m = *e->metrics;
            t->done = true;
        }
        break;
    case PL_VOICE_EVENT_ERROR:
        c->errors++;
        snprintf(c->last_error, sizeof c->last_error, "%s", e->text);
        break;
    default:
        break;
    }
}

static void print_table(const turn_out *t) {
    const pl_voice_metrics *m = &t->m;
    printf("%-20s %10s\n", "stage", "ms");
    for (int s = 0; s < PL_VOICE_STAGE_COUNT; s++) {
        double x = pl_voice_stage_value(m, (pl_voice_stage)s);
        if (x < 0) printf("%-20s %10s\n", pl_voice_stage_name((pl_voice_stage)s), "-");
        else if (s == PL_VOICE_STAGE_TTS_RTF) printf("%-20s %10.4f\n", pl_voice_stage_name((pl_voice_stage)s), x);
        else printf("%-20s %10.1f\n", pl_voice_stage_name((pl_voice_stage)s), x);
    }
    printf("speech %.0f ms | prompt %d tokens (%d cached) | %d tokens (%d reasoning), %.1f tok/s | %d sentences, "
           "%.0f ms of audio | finish %s%s\n",
           m->speech_ms, m->prompt_tokens, m->cached_tokens, m->generated_tokens, m->reasoning_tokens, m->gen_tok_s,
           m->sentences, m->tts_audio_ms, pl_finish_name(m->finish), m->interrupted ? " (interrupted)" : "");
}

int cmd_voice(pl_cli *cli, int argc, char **argv) {
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
        if (pl_cli_is_opt(argv[i], "--out")) {
            if (!(o.out = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (strcmp(argv[i], "--mic") == 0) {
            o.mic = true;
        } else {
            return pl_cli_usage_error(cli, "unexpected argument '%s'", argv[i]);
        }
    }
    if (!o.model) return pl_cli_usage_error(cli, "no model: give -m MODEL");
    if (o.mic && o.in) return pl_cli_usage_error(cli, "give --in FILE or --mic, not both");
    if (o.mic) return voice_mic_unavailable(cli);
    if (!o.in) return pl_cli_usage_error(cli, "no input: give --in FILE (or --mic)");

    pl_audio *a = NULL;
    if (pl_audio_load_file(cli->ctx, o.in, NULL, &a) != PL_OK) return pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
    voice_rig r;
    if (!voice_rig_open(cli, &o, &r)) {
        pl_audio_free(a);
        return 1;
    }
    voice_cmd *c = calloc(1, sizeof *c);
    int rc = 1;
    pl_voice *v = NULL;
    if (!c) {
        pl_cli_fail(cli, "out of memory");
        goto done;
    }
    if (o.out && pl_audio_writer_open(cli->ctx, o.out, PL_AUDIO_FORMAT_WAV, pl_tts_sample_rate(r.tts), 1, &c->w) != PL_OK) {
        pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
        goto done;
    }
    pl_voice_params vp = pl_voice_default_params();
    vp.session = r.session;
    vp.stt = r.stt;
    vp.tts = r.tts;
    vp.on_event = on_event;
    vp.ud = c;
    vp.vad.silence_ms = (int)o.silence_ms;
    vp.playback = o.realtime ? PL_VOICE_PLAYBACK_CLOCK : PL_VOICE_PLAYBACK_INSTANT;
    if (pl_voice_init(cli->ctx, &vp, &v) != PL_OK) {
        pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
        goto done;
    }
    if (!voice_run_audio(v, a, o.realtime, o.silence_ms)) {
        pl_cli_fail(cli, "pushing the audio failed");
        goto done;
    }
    pl_voice_free(v);
    v = NULL;
    if (c->w) {
        pl_status ws = pl_audio_writer_close(c->w);
        c->w = NULL;
        if (ws != PL_OK || c->werr != PL_OK) {
            pl_cli_fail(cli, "writing %s: %s", o.out, pl_ctx_last_error(cli->ctx));
            goto done;
        }
    }
    int n_turns = 0;
    for (int i = 0; i < MAX_TURNS; i++)
        if (c->turns[i].tl || c->turns[i].done) n_turns = i + 1;
    if (o.json) {
        printf("{\"turns\":[");
        for (int i = 0; i < n_turns; i++) {
            turn_out *t = &c->turns[i];
            char mj[2048];
            pl_voice_metrics_json(&t->m, mj, sizeof mj);
            printf("%s{\"transcript\":", i ? "," : "");
            voice_json_str(stdout, t->transcript ? t->transcript : "");
            if (o.show_thoughts) {
                printf(",\"thoughts\":");
                voice_json_str(stdout, t->thoughts ? t->thoughts : "");
            }
            printf(",\"spoken\":");
            voice_json_str(stdout, t->spoken ? t->spoken : "");
            printf(",\"metrics\":%s}", t->done ? mj : "null");
        }
        printf("]}\n");
    } else {
        for (int i = 0; i < n_turns; i++) {
            turn_out *t = &c->turns[i];
            if (n_turns > 1) printf("== turn %d ==\n", i + 1);
            printf("transcript: %s\n", t->transcript ? t->transcript : "");
            if (o.show_thoughts) printf("thoughts: %s\n", t->thoughts ? t->thoughts : "");
            if (!t->done) {
                printf("(no answer: the next utterance continued this one)\n");
                continue;
            }
            printf("spoken: %s\n", t->spoken ? t->spoken : "");
            print_table(t);
        }
        if (n_turns == 0) fprintf(stderr, "parley voice: no speech found in %s\n", o.in);
    }
    rc = c->errors ? pl_cli_fail(cli, "%s", c->last_error) : (n_turns ? 0 : 1);
done:
    pl_voice_free(v);
    if (c) {
        if (c->w) pl_audio_writer_close(c->w);
        for (int i = 0; i < MAX_TURNS; i++) {
            free(c->turns[i].transcript);
            free(c->turns[i].thoughts);
            free(c->turns[i].spoken);
        }
        free(c);
    }
    voice_rig_close(cli, &r);
    pl_audio_free(a);
    return rc;
}
