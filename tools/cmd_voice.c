/*
 * cmd_voice.c - `parley voice`: a spoken conversation through the voice
 * pipeline (parley/voice.h). From a recording (--in): the spoken answer out
 * as a WAV, and on stdout the transcript, the thoughts (if asked), the spoken
 * text and the per-stage latency table (or all of it as JSON). Live (--mic):
 * ALSA capture feeds the pipeline and the answer plays on the speaker
 * (parley/audio_dev.h); each turn is printed as it ends, and the p50/p90
 * summary when the session ends (Ctrl-C, SIGTERM or --duration).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parley/audio_dev.h"
#include "voice_cli.h"

static const char usage_text[] =
    "usage: parley voice [-m MODEL] --in QUESTION.wav [--out ANSWER.wav] [options]\n"
    "       parley voice [-m MODEL] --mic [--mic-device NAME] [--speaker-device NAME] [--duration S]\n"
    "\n"
    "Talk to a model by voice: the recording goes through voice activity detection,\n"
    "speech recognition, the model (reasoning is kept apart and never spoken), and\n"
    "each sentence of the answer is synthesized as soon as it is complete. Prints the\n"
    "transcript, the thoughts (--show-thoughts), the spoken text and the latency of\n"
    "every stage; writes the spoken answer to --out. With --mic it listens on an ALSA\n"
    "capture device and speaks on a playback device until Ctrl-C (or --duration),\n"
    "printing each turn as it ends and the p50/p90 of every stage at the end; speaking\n"
    "over the answer stops it (barge-in). Use headphones: without echo cancellation\n"
    "the speaker's sound reaches the microphone and interrupts the answer.\n"
    "\n"
    "options (defaults come from the configuration, see `parley config`):\n"
    "  -m, --model M        GGUF file or store name (default: llm.model)\n"
    "  --in FILE            the question (WAV, FLAC, OGG, MP3; resampled to 16 kHz mono)\n"
    "  --out FILE           the answer as a 16-bit WAV at the synthesizer's rate\n"
    "  --mic                live: ALSA microphone in, speaker out\n"
    "  --mic-device NAME    ALSA capture device (default \"default\"; `arecord -L` lists them)\n"
    "  --speaker-device NAME ALSA playback device (default \"default\"; `aplay -L`)\n"
    "  --duration S         --mic: end after S seconds (the answer in progress is finished)\n"
    "  --stt NAME           recognizer (default speech.stt: pocketsphinx)\n"
    "  --tts NAME           synthesizer (default speech.tts: espeak)\n"
    "  --voice NAME         synthesizer voice (default speech.voice; espeak: en-us, en-gb+klatt)\n"
    "  --speed S            speaking rate, 0.25..4 (default 1)\n"
    "  --show-thoughts      print the model's reasoning\n"
    "  --json               print one JSON object instead of text\n"
    "  --system TEXT        system message\n"
    "  --chat-template NAME a built-in chat template (default: the model's, else chatml)\n"
    "  --no-think           enable_thinking=false for the template\n"
    "  -n, --max-tokens N   most tokens per answer (default 256 unless llm.max_tokens is set)\n"
    "  -c, --ctx N          context tokens (default llm.n_ctx: 4096)\n"
    "  -t, --threads N      worker threads (0: physical cores)\n"
    "  --temp T, --top-k N, --top-p P, --min-p P, --repeat-penalty R, --reasoning MODE\n"
    "                       sampling and reasoning (llm.*)\n"
    "  --silence-ms MS      pause that ends a turn (default speech.end_of_turn_ms: 500)\n"
    "  --config FILE        configuration file\n"
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
    uint64_t turn;
    char *transcript, *thoughts, *spoken;
    size_t tl, hl, sl;
    pl_voice_metrics m;
    bool done;
} turn_out;

/* Turns kept for the output: a recording's first 64; a live session's last 64
 * (a ring; each turn is printed as it ends). */
#define MAX_TURNS 64

typedef struct voice_cmd {
    turn_out         turns[MAX_TURNS];
    pl_audio_writer *w;
    pl_status        werr;
    int              errors;
    char             last_error[512];
    /* --mic */
    bool             live, json, show_thoughts;
    pl_audio_player *player;
    pl_status        player_st;
    pthread_mutex_t  v_mu;   /* guards v for the player's thread (on_played) */
    pl_voice        *v;
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

static void turn_clear(turn_out *t) {
    free(t->transcript);
    free(t->thoughts);
    free(t->spoken);
    memset(t, 0, sizeof *t);
}

static turn_out *turn_slot(voice_cmd *c, uint64_t turn) {
    if (turn < 1) return NULL;
    if (!c->live) return turn <= MAX_TURNS ? &c->turns[turn - 1] : NULL;
    turn_out *t = &c->turns[(turn - 1) % MAX_TURNS];
    if (t->turn != turn) turn_clear(t); /* a turn 64 back: its slot is reused */
    t->turn = turn;
    return t;
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

/* The answer part of a turn (after its transcript). */
static void print_answer(const turn_out *t, bool show_thoughts) {
    if (show_thoughts) printf("thoughts: %s\n", t->thoughts ? t->thoughts : "");
    printf("spoken: %s\n", t->spoken ? t->spoken : "");
    print_table(t);
}

static void on_event(void *ud, const pl_voice_event *e) {
    voice_cmd *c = ud;
    turn_out *t = e->type == PL_VOICE_EVENT_AUDIO || e->type == PL_VOICE_EVENT_SPEECH_STARTED ||
                          e->type == PL_VOICE_EVENT_SPEECH_STOPPED
                      ? NULL
                      : turn_slot(c, e->turn);
    switch (e->type) {
    case PL_VOICE_EVENT_SPEECH_STARTED:
        /* the pipeline has just stopped the answer (barge-in); what is queued
         * for the speaker goes too (a no-op when nothing plays) */
        if (c->player) pl_audio_player_drop(c->player);
        break;
    case PL_VOICE_EVENT_TRANSCRIPT:
        if (t) append(&t->transcript, &t->tl, e->text, e->len, " ");
        if (c->live && !c->json) {
            printf("== turn %llu ==\ntranscript: %s\n", (unsigned long long)e->turn, e->text);
            fflush(stdout);
        }
        break;
    case PL_VOICE_EVENT_REASONING_DELTA:
        if (t) append(&t->thoughts, &t->hl, e->text, e->len, NULL);
        break;
    case PL_VOICE_EVENT_SENTENCE:
        if (t) append(&t->spoken, &t->sl, e->text, e->len, " ");
        break;
    case PL_VOICE_EVENT_AUDIO:
        if (c->w && c->werr == PL_OK) c->werr = pl_audio_writer_write(c->w, e->pcm, e->n_pcm);
        if (c->player && c->player_st == PL_OK) c->player_st = pl_audio_player_write(c->player, e->pcm, e->n_pcm);
        break;
    case PL_VOICE_EVENT_RESPONSE_DONE:
        if (t) {
            t->m = *e->metrics;
            t->done = true;
            if (c->live && !c->json) {
                print_answer(t, c->show_thoughts);
                fflush(stdout);
            }
        }
        break;
    case PL_VOICE_EVENT_ERROR:
        c->errors++;
        snprintf(c->last_error, sizeof c->last_error, "%s", e->text);
        if (c->live) fprintf(stderr, "parley voice: turn %llu: %s\n", (unsigned long long)e->turn, e->text);
        break;
    default:
        break;
    }
}

/* The player's thread: samples played or dropped; the pipeline counts both
 * (see pl_audio_played_fn). */
static void on_played(void *ud, uint64_t played, uint64_t dropped) {
    voice_cmd *c = ud;
    pthread_mutex_lock(&c->v_mu);
    if (c->v) pl_voice_played(c->v, played + dropped);
    pthread_mutex_unlock(&c->v_mu);
}

/* The stored turns in order: a recording's from 1, a live session's oldest
 * first. */
static size_t stored_turns(voice_cmd *c, turn_out **out) {
    size_t n = 0;
    if (!c->live) {
        int last = 0;
        for (int i = 0; i < MAX_TURNS; i++)
            if (c->turns[i].tl || c->turns[i].done) last = i + 1;
        for (int i = 0; i < last; i++) out[n++] = &c->turns[i];
        return n;
    }
    for (int i = 0; i < MAX_TURNS; i++)
        if (c->turns[i].turn) out[n++] = &c->turns[i];
    for (size_t i = 1; i < n; i++) /* insertion sort by turn number: at most 64 */
        for (size_t j = i; j > 0 && out[j - 1]->turn > out[j]->turn; j--) {
            turn_out *x = out[j];
            out[j] = out[j - 1];
            out[j - 1] = x;
        }
    return n;
}

static void print_turns_json(turn_out **turns, size_t n, bool show_thoughts) {
    printf("\"turns\":[");
    for (size_t i = 0; i < n; i++) {
        turn_out *t = turns[i];
        char mj[2048];
        pl_voice_metrics_json(&t->m, mj, sizeof mj);
        printf("%s{\"transcript\":", i ? "," : "");
        voice_json_str(stdout, t->transcript ? t->transcript : "");
        if (show_thoughts) {
            printf(",\"thoughts\":");
            voice_json_str(stdout, t->thoughts ? t->thoughts : "");
        }
        printf(",\"spoken\":");
        voice_json_str(stdout, t->spoken ? t->spoken : "");
        printf(",\"metrics\":%s}", t->done ? mj : "null");
    }
    printf("]");
}

static void print_summary(const pl_voice_summary *s) {
    printf("== summary: %zu turn%s ==\n", s->n_turns, s->n_turns == 1 ? "" : "s");
    if (!s->n_turns) return;
    printf("%-20s %10s %10s\n", "stage", "p50", "p90");
    for (int k = 0; k < PL_VOICE_STAGE_COUNT; k++) {
        const char *name = pl_voice_stage_name((pl_voice_stage)k);
        if (!s->n[k]) printf("%-20s %10s %10s\n", name, "-", "-");
        else if (k == PL_VOICE_STAGE_TTS_RTF) printf("%-20s %10.4f %10.4f\n", name, s->p50[k], s->p90[k]);
        else printf("%-20s %10.1f %10.1f\n", name, s->p50[k], s->p90[k]);
    }
}

/* ---- --mic ---- */

typedef struct mic_loop {
    pl_audio_dev *dev;
    pl_voice     *v;
    atomic_bool   stop, failed;
    char          err[384];
} mic_loop;

/* Capture thread: 20 ms frames from the device into the pipeline (VAD and
 * barge-in run inside pl_voice_push). */
static void *capture_main(void *arg) {
    mic_loop *m = arg;
    float frame[PL_AUDIO_STT_RATE / 50];
    while (!atomic_load(&m->stop)) {
        size_t got = 0;
        if (pl_audio_dev_read(m->dev, frame, sizeof frame / sizeof frame[0], &got) != PL_OK) {
            snprintf(m->err, sizeof m->err, "%s", pl_audio_dev_last_error(m->dev));
            atomic_store(&m->failed, true);
            break;
        }
        if (got && pl_voice_push(m->v, frame, got) != PL_OK) {
            snprintf(m->err, sizeof m->err, "the pipeline refused the audio");
            atomic_store(&m->failed, true);
            break;
        }
    }
    return NULL;
}

/* A signal taken, waiting at most ms (0: a look). */
static bool took_signal(const sigset_t *set, int ms) {
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    return sigtimedwait(set, NULL, &ts) > 0;
}

/* The live session on an open capture device; SIGINT and SIGTERM are blocked
 * (taken here with sigtimedwait). Returns the exit code. */
static int run_mic(pl_cli *cli, const voice_opts *o, voice_cmd *c, voice_rig *r, pl_audio_dev *cap,
                   const sigset_t *sigs) {
    pl_audio_player_params pp = pl_audio_player_default_params();
    pp.device = o->speaker_device;
    pp.sample_rate = pl_tts_sample_rate(r->tts);
    pp.on_played = on_played;
    pp.ud = c;
    if (pl_audio_player_init(cli->ctx, &pp, &c->player) != PL_OK)
        return pl_cli_fail(cli, "--mic: %s", pl_ctx_last_error(cli->ctx));
    pl_voice_params vp = pl_voice_default_params();
    vp.session = r->session;
    vp.stt = r->stt;
    vp.tts = r->tts;
    vp.on_event = on_event;
    vp.ud = c;
    vp.vad.silence_ms = (int)o->silence_ms;
    vp.vad.prefix_pad_ms = (int)o->prefix_pad_ms;
    vp.playback = PL_VOICE_PLAYBACK_ACK; /* the player reports what the speaker played */
    pl_voice *v = NULL;
    if (pl_voice_init(cli->ctx, &vp, &v) != PL_OK) return pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
    pthread_mutex_lock(&c->v_mu);
    c->v = v;
    pthread_mutex_unlock(&c->v_mu);

    fprintf(stderr, "parley voice: listening on '%s', speaking on '%s' (%s); %s\n", pl_audio_dev_name(cap),
            o->speaker_device ? o->speaker_device : "default", r->path,
            o->duration > 0 ? "ends after --duration or on Ctrl-C" : "Ctrl-C ends");
    mic_loop m = { .dev = cap, .v = v };
    atomic_init(&m.stop, false);
    atomic_init(&m.failed, false);
    pthread_t th;
    int rc = 0;
    bool have_th = pthread_create(&th, NULL, capture_main, &m) == 0, interrupted = false;
    if (!have_th) rc = pl_cli_fail(cli, "cannot start the capture thread");
    uint64_t t0 = pl_time_ns();
    while (have_th && !atomic_load(&m.failed)) {
        if (took_signal(sigs, 100)) {
            interrupted = true;
            break;
        }
        if (o->duration > 0 && (double)(pl_time_ns() - t0) / 1e9 >= o->duration) break;
    }
    atomic_store(&m.stop, true);
    if (have_th) pthread_join(th, NULL);
    if (atomic_load(&m.failed)) rc = pl_cli_fail(cli, "--mic: %s", m.err);
    if (!interrupted && rc == 0) {
        /* --duration: an utterance in progress ends now; its answer is made
         * and played out (a signal still ends it at once) */
        pl_voice_flush(v);
        while (!interrupted && !pl_voice_wait_idle(v, 100)) interrupted = took_signal(sigs, 0);
        while (!interrupted && !pl_audio_player_wait(c->player, 100)) interrupted = took_signal(sigs, 0);
    }
    if (interrupted || rc) {
        pl_voice_cancel(v);
        pl_audio_player_drop(c->player);
        pl_voice_wait_idle(v, 10000);
    }
    pl_voice_summary sum;
    pl_voice_summary_get(v, &sum);
    pthread_mutex_lock(&c->v_mu);
    c->v = NULL;
    pthread_mutex_unlock(&c->v_mu);
    pl_voice_free(v);
    pl_audio_player_stats ps;
    pl_audio_player_stats_get(c->player, &ps);
    uint64_t cap_xruns = pl_audio_dev_xruns(cap);
    if (c->json) {
        turn_out *turns[MAX_TURNS];
        size_t n = stored_turns(c, turns);
        char sj[4096];
        pl_voice_summary_json(&sum, sj, sizeof sj);
        printf("{");
        print_turns_json(turns, n, o->show_thoughts);
        printf(",\"summary\":%s,\"xruns\":{\"capture\":%llu,\"playback\":%llu}}\n", sj,
               (unsigned long long)cap_xruns, (unsigned long long)ps.xruns);
    } else {
        if (interrupted) printf("\n");
        print_summary(&sum);
        if (cap_xruns || ps.xruns)
            fprintf(stderr, "parley voice: %llu capture overrun(s), %llu playback underrun(s)\n",
                    (unsigned long long)cap_xruns, (unsigned long long)ps.xruns);
        if (!sum.n_turns) fprintf(stderr, "parley voice: no speech heard\n");
    }
    if (c->player_st != PL_OK && rc == 0)
        rc = pl_cli_fail(cli, "--mic: %s", pl_audio_player_last_error(c->player));
    return rc;
}

/* ---- the command ---- */

/* Flags that set a configuration key (validated by the key table). The
 * recognizer, synthesizer and voice flags stay the command's own (any
 * backend row may be named); their defaults come from speech.*. */
static const pl_cli_flag_key flag_keys[] = {
    { "--model", "-m", "llm.model" },        { "--ctx", "-c", "llm.n_ctx" },
    { "--max-tokens", "-n", "llm.max_tokens" }, { "--threads", "-t", "llm.n_threads" },
    { "--temp", NULL, "llm.temperature" },   { "--top-k", NULL, "llm.top_k" },
    { "--top-p", NULL, "llm.top_p" },        { "--min-p", NULL, "llm.min_p" },
    { "--repeat-penalty", NULL, "llm.repeat_penalty" }, { "--reasoning", NULL, "llm.reasoning" },
    { "--silence-ms", NULL, "speech.end_of_turn_ms" },
};

/* Spoken answers stay short unless llm.max_tokens was set somewhere. */
#define VOICE_MAX_TOKENS 256

int cmd_voice(pl_cli *cli, int argc, char **argv) {
    if (pl_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    voice_opts o;
    voice_opts_defaults(&o);
    o.stt = o.tts = NULL; /* given, or speech.stt / speech.tts */
    pl_config *cfg = NULL;
    int rc = pl_cli_config_load(cli, argc, argv, &cfg);
    if (rc) goto out;
    rc = 2;
    const char *v;
    for (int i = 1; i < argc; i++) {
        int r = pl_cli_config_flag(cli, cfg, flag_keys, sizeof flag_keys / sizeof flag_keys[0], argc, argv, &i);
        if (r < 0) goto out;
        if (r) continue;
        if ((r = voice_opt(cli, argc, argv, &i, &o)) < 0) goto out;
        if (r) continue;
        if (pl_cli_is_opt(argv[i], "--out")) {
            if (!(o.out = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
        } else if (strcmp(argv[i], "--mic") == 0) {
            o.mic = true;
        } else if (pl_cli_is_opt(argv[i], "--mic-device")) {
            if (!(o.mic_device = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
        } else if (pl_cli_is_opt(argv[i], "--speaker-device")) {
            if (!(o.speaker_device = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
        } else if (pl_cli_is_opt(argv[i], "--duration")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
            char *end;
            double d = strtod(v, &end);
            if (*end || !(d > 0 && d <= 86400)) {
                pl_cli_usage_error(cli, "bad --duration '%s' (seconds, above 0, at most 86400)", v);
                goto out;
            }
            o.duration = d;
        } else {
            pl_cli_usage_error(cli, "unexpected argument '%s'", argv[i]);
            goto out;
        }
    }
    if (pl_config_validate(cfg) != PL_OK) {
        pl_cli_usage_error(cli, "%s", pl_config_last_error(cfg));
        goto out;
    }
    const pl_config_values *cv = pl_config_get(cfg);
    if (!cv->llm.model || !cv->llm.model[0]) {
        pl_cli_usage_error(cli, "no model: give -m MODEL (or set llm.model)");
        goto out;
    }
    if (o.mic && o.in) {
        pl_cli_usage_error(cli, "give --in FILE or --mic, not both");
        goto out;
    }
    if (!o.mic && !o.in) {
        pl_cli_usage_error(cli, "no input: give --in FILE (or --mic)");
        goto out;
    }
    if (!o.mic && (o.mic_device || o.speaker_device || o.duration > 0)) {
        pl_cli_usage_error(cli, "--mic-device, --speaker-device and --duration go with --mic");
        goto out;
    }
    o.model = cv->llm.model;
    o.n_ctx = cv->llm.n_ctx;
    o.threads = cv->llm.n_threads;
    o.max_tokens = pl_config_source_of(cfg, pl_config_key_find("llm.max_tokens")) != PL_CONFIG_SOURCE_DEFAULT
                       ? cv->llm.max_tokens
                       : VOICE_MAX_TOKENS;
    o.silence_ms = cv->speech.end_of_turn_ms;
    o.prefix_pad_ms = cv->speech.prefix_padding_ms;
    if (!o.stt) o.stt = cv->speech.stt;
    if (!o.tts) o.tts = cv->speech.tts;
    if (!o.voice) o.voice = cv->speech.voice;
    if (strcmp(o.stt, "none") == 0 || strcmp(o.tts, "none") == 0) {
        pl_cli_usage_error(cli, "parley voice needs a recognizer and a synthesizer (speech.stt / speech.tts is none)");
        goto out;
    }
    if (strcmp(o.stt, "whisper") == 0) o.stt_model = cv->speech.stt_model;
    o.cfg = cv;
    rc = o.mic ? 1 : 0;
    if (o.mic) {
        /* Signals are taken by sigtimedwait in run_mic: blocked before any
         * thread starts (the model's pool, the pipeline's, the player's) so
         * none of them gets one. The capture device opens first: a wrong name
         * is reported before the model loads. */
        sigset_t sigs;
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGINT);
        sigaddset(&sigs, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);
        pl_audio_dev_params dp = pl_audio_dev_default_params();
        dp.device = o.mic_device;
        dp.dir = PL_AUDIO_DEV_CAPTURE;
        pl_audio_dev *cap = NULL;
        if (pl_audio_dev_init(cli->ctx, &dp, &cap) != PL_OK) {
            rc = pl_cli_fail(cli, "--mic: %s", pl_ctx_last_error(cli->ctx));
            goto out;
        }
        voice_rig r;
        voice_cmd *c = calloc(1, sizeof *c);
        if (!c) {
            rc = pl_cli_fail(cli, "out of memory");
        } else if (voice_rig_open(cli, &o, &r)) {
            c->live = true;
            c->json = o.json;
            c->show_thoughts = o.show_thoughts;
            pthread_mutex_init(&c->v_mu, NULL);
            rc = run_mic(cli, &o, c, &r, cap, &sigs);
            pl_audio_player_free(c->player);
            pthread_mutex_destroy(&c->v_mu);
            voice_rig_close(cli, &r);
        }
        if (c)
            for (int i = 0; i < MAX_TURNS; i++) turn_clear(&c->turns[i]);
        free(c);
        pl_audio_dev_free(cap);
        goto out;
    }
    rc = 1;

    pl_audio *a = NULL;
    if (pl_audio_load_file(cli->ctx, o.in, NULL, &a) != PL_OK) {
        pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
        goto out;
    }
    voice_rig r;
    if (!voice_rig_open(cli, &o, &r)) {
        pl_audio_free(a);
        goto out;
    }
    voice_cmd *c = calloc(1, sizeof *c);
    pl_voice *vo = NULL;
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
    vp.vad.prefix_pad_ms = (int)o.prefix_pad_ms;
    vp.playback = o.realtime ? PL_VOICE_PLAYBACK_CLOCK : PL_VOICE_PLAYBACK_INSTANT;
    if (pl_voice_init(cli->ctx, &vp, &vo) != PL_OK) {
        pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
        goto done;
    }
    if (!voice_run_audio(vo, a, o.realtime, o.silence_ms)) {
        pl_cli_fail(cli, "pushing the audio failed");
        goto done;
    }
    pl_voice_free(vo);
    vo = NULL;
    if (c->w) {
        pl_status ws = pl_audio_writer_close(c->w);
        c->w = NULL;
        if (ws != PL_OK || c->werr != PL_OK) {
            pl_cli_fail(cli, "writing %s: %s", o.out, pl_ctx_last_error(cli->ctx));
            goto done;
        }
    }
    turn_out *turns[MAX_TURNS];
    size_t n_turns = stored_turns(c, turns);
    if (o.json) {
        printf("{");
        print_turns_json(turns, n_turns, o.show_thoughts);
        printf("}\n");
    } else {
        for (size_t i = 0; i < n_turns; i++) {
            turn_out *t = turns[i];
            if (n_turns > 1) printf("== turn %zu ==\n", i + 1);
            printf("transcript: %s\n", t->transcript ? t->transcript : "");
            if (!t->done) {
                if (o.show_thoughts) printf("thoughts: %s\n", t->thoughts ? t->thoughts : "");
                printf("(no answer: the next utterance continued this one)\n");
                continue;
            }
            print_answer(t, o.show_thoughts);
        }
        if (n_turns == 0) fprintf(stderr, "parley voice: no speech found in %s\n", o.in);
    }
    rc = c->errors ? pl_cli_fail(cli, "%s", c->last_error) : (n_turns ? 0 : 1);
done:
    pl_voice_free(vo);
    if (c) {
        if (c->w) pl_audio_writer_close(c->w);
        for (int i = 0; i < MAX_TURNS; i++) turn_clear(&c->turns[i]);
        free(c);
    }
    voice_rig_close(cli, &r);
    pl_audio_free(a);
out:
    pl_config_free(cfg);
    return rc;
}
