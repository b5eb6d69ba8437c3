/*
 * cmd_transcribe.c - `parley transcribe FILE [--format text|json|verbose_json|srt|vtt]`
 *
 * Decode (WAV/FLAC/OGG/MP3, or raw s16le with --raw), resample to 16 kHz mono,
 * cut into utterances with the VAD, transcribe each with the STT backend and
 * print the transcript in the asked format on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "parley/audio.h"
#include "parley/stt.h"
#include "parley/vad.h"

static const char usage_text[] =
    "usage: parley transcribe [options] FILE\n"
    "\n"
    "Transcribe a recording (WAV, FLAC, OGG, MP3; or headerless s16le with --raw).\n"
    "It is resampled to 16 kHz mono, cut into utterances where the speaker pauses,\n"
    "and each utterance is recognized. Audio over the duration limit, with 0 or more\n"
    "than 8 channels, or a sample rate outside 8-192 kHz is refused.\n"
    "\n"
    "options:\n"
    "  --format F        text (default), json, verbose_json, srt or vtt\n"
    "  --stt NAME        recognizer backend: pocketsphinx (default) or whisper\n"
    "  --stt-model M     backend model (pocketsphinx: the en-us model directory;\n"
    "                    whisper: a ggml-*.bin file or a store name such as\n"
    "                    whisper-base.en, default whisper-base.en); --model is the same\n"
    "  --audio-ctx N     whisper: encode N frames of 20 ms instead of 1500 (30 s);\n"
    "                    faster on short utterances, less accurate\n"
    "  --threads N       whisper: threads (default: physical cores)\n"
    "  --language TAG    spoken language (default en)\n"
    "  --partials        decode while reading (pocketsphinx live mode; less accurate)\n"
    "  --no-vad          recognize the whole file as one utterance\n"
    "  --silence MS      pause that separates utterances (default 500)\n"
    "  --segment S       merge utterances into segments up to S seconds (default 15;\n"
    "                    0: one segment per utterance)\n"
    "  --max-seconds N   refuse longer audio (default 600)\n"
    "  --raw RATE[:CH]   the input is headerless s16le at RATE Hz with CH channels\n"
    "  --stats           print timing (decode, recognition, real-time factor) to stderr\n"
    "  -h, --help        this text\n";

static int parse_raw(const char *v, int *rate, int *ch) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", v);
    char *colon = strchr(buf, ':');
    int64_t r, c = 1;
    if (colon) {
        *colon = '\0';
        if (!pl_cli_parse_i64(colon + 1, 1, 64, &c)) return 0;
    }
    if (!pl_cli_parse_i64(buf, 1, 10000000, &r)) return 0;
    *rate = (int)r;
    *ch = (int)c;
    return 1;
}

int cmd_transcribe(pl_cli *cli, int argc, char **argv) {
    if (pl_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    const char *path = NULL, *fmt_s = "text";
    pl_stt_params sp = pl_stt_default_params();
    pl_audio_load_params lp = pl_audio_default_load_params();
    pl_transcribe_params tp = pl_transcribe_default_params();
    bool stats = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int64_t n;
        if (pl_cli_is_opt(a, "--format")) {
            if (!(fmt_s = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--stt")) {
            if (!(sp.backend = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--model") || pl_cli_is_opt(a, "--stt-model")) {
            if (!(sp.model = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--audio-ctx") || pl_cli_is_opt(a, "--threads")) {
            /* the whisper row reads these at create (its params have no fields for them) */
            bool actx = pl_cli_is_opt(a, "--audio-ctx");
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, actx ? 0 : 1, actx ? 4096 : 1024, &n))
                return pl_cli_usage_error(cli, "%s takes %s", actx ? "--audio-ctx" : "--threads",
                                          actx ? "0..4096" : "1..1024");
            setenv(actx ? "PARLEY_WHISPER_AUDIO_CTX" : "PARLEY_WHISPER_THREADS", v, 1);
        } else if (pl_cli_is_opt(a, "--language")) {
            if (!(sp.language = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (strcmp(a, "--partials") == 0) {
            sp.partials = true;
        } else if (strcmp(a, "--no-vad") == 0) {
            tp.use_vad = false;
        } else if (strcmp(a, "--stats") == 0) {
            stats = true;
        } else if (pl_cli_is_opt(a, "--silence")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, 10, 60000, &n))
                return pl_cli_usage_error(cli, "--silence takes 10..60000 ms");
            tp.vad.silence_ms = (int)n;
        } else if (pl_cli_is_opt(a, "--segment")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, 0, 3600, &n))
                return pl_cli_usage_error(cli, "--segment takes 0..3600 s");
            tp.max_segment_s = (double)n;
        } else if (pl_cli_is_opt(a, "--max-seconds")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, 1, 86400, &n))
                return pl_cli_usage_error(cli, "--max-seconds takes 1..86400");
            lp.max_seconds = (double)n;
        } else if (pl_cli_is_opt(a, "--raw")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!parse_raw(v, &lp.raw_rate, &lp.raw_channels))
                return pl_cli_usage_error(cli, "--raw takes RATE or RATE:CHANNELS");
        } else if (a[0] == '-' && a[1]) {
            return pl_cli_usage_error(cli, "unknown option '%s'", a);
        } else if (!path) {
            path = a;
        } else {
            return pl_cli_usage_error(cli, "one FILE only");
        }
    }
    if (!path) return pl_cli_usage_error(cli, "no FILE given");
    pl_transcript_format fmt;
    if (pl_transcript_format_parse(fmt_s, &fmt) != PL_OK)
        return pl_cli_usage_error(cli, "--format takes text, json, verbose_json, srt or vtt");
    sp.max_utterance_s = lp.max_seconds;

    uint64_t t0 = pl_time_ns();
    pl_audio *audio = NULL;
    if (pl_audio_load_file(cli->ctx, path, &lp, &audio) != PL_OK)
        return pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
    uint64_t t1 = pl_time_ns();
    pl_stt *stt = NULL;
    if (pl_stt_init(cli->ctx, &sp, &stt) != PL_OK) {
        pl_audio_free(audio);
        return pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
    }
    uint64_t t2 = pl_time_ns();
    pl_transcript *tr = NULL;
    pl_status st = pl_transcribe(stt, &tp, audio->samples, audio->n_frames,
                                 NULL, NULL, &tr);
    int rc = 0;
    if (st != PL_OK) {
        rc = pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
    } else {
        char *s = NULL;
        size_t len = 0;
        if (pl_transcript_render(tr, fmt, sp.language, &s, &len) != PL_OK) {
            rc = pl_cli_fail(cli, "out of memory");
        } else {
            if (fwrite(s, 1, len, stdout) != len || fflush(stdout) != 0)
                rc = pl_cli_fail(cli, "cannot write the transcript");
            pl_free(cli->ctx, s);
        }
        if (stats && rc == 0) {
            fprintf(stderr,
                    "audio: %s, %d Hz, %d ch, %.2f s; decode+resample %.1f ms\n"
                    "vad: %.1f ms (%.4f ms per 30 ms of audio)\n"
                    "stt: %s, model load %.0f ms, %zu segment(s), recognition %.1f ms, "
                    "RTF %.3f\n",
                    audio->src_format, audio->src_rate, audio->src_channels, audio->src_seconds,
                    (double)(t1 - t0) / 1e6, tr->vad_ms,
                    tr->duration_s > 0 ? tr->vad_ms * 0.030 / tr->duration_s : 0.0,
                    pl_stt_backend_of(stt)->name,
                    (double)(t2 - t1) / 1e6, tr->n_segments, tr->stt_ms,
                    tr->duration_s > 0 ? tr->stt_ms / 1000.0 / tr->duration_s : 0.0);
        }
    }
    pl_transcript_free(tr);
    pl_stt_free(stt);
    pl_audio_free(audio);
    return rc;
}
