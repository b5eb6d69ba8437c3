/*
 * cmd_speak.c - `parley speak "text" -o out.wav [--voice V] [--speed S]`
 *
 * Synthesizes with the TTS backend and streams the chunks into the output as
 * they come (so `-o -` with --format pcm can feed a player while it speaks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "parley/audio.h"
#include "parley/tts.h"

static const char usage_text[] =
    "usage: parley speak [options] TEXT -o OUT\n"
    "       parley speak --list-voices\n"
    "\n"
    "Speak TEXT (\"-\" reads it from stdin) into OUT, a 16-bit WAV file, or raw\n"
    "s16le PCM with --format pcm (or an OUT ending in .pcm or .raw). OUT \"-\" is stdout.\n"
    "\n"
    "options:\n"
    "  -o, --output OUT  where the audio goes\n"
    "  --format F        wav or pcm (default: from OUT's extension, else wav)\n"
    "  --voice V         voice name (see --list-voices; default en-us)\n"
    "  --speed S         0.25..4 (default 1)\n"
    "  --pitch P         0..2 (default 1: the voice's own)\n"
    "  --rate HZ         resample the output to HZ (default: the voice's rate)\n"
    "  --tts NAME        synthesizer backend (default espeak)\n"
    "  --list-voices     print the voices (name, gender, description) and variants\n"
    "  --stats           print timing (first chunk, real-time factor) to stderr\n"
    "  -h, --help        this text\n";

typedef struct sink_ctx {
    pl_audio_writer *w;
    pl_status        st;
} sink_ctx;

static int on_chunk(void *ud, const float *pcm, size_t n) {
    sink_ctx *s = ud;
    s->st = pl_audio_writer_write(s->w, pcm, n);
    return s->st != PL_OK;
}

static bool parse_float(const char *s, float lo, float hi, float *out) {
    char *end = NULL;
    double v = strtod(s, &end);
    if (!s[0] || *end || !(v >= lo && v <= hi)) return false;
    *out = (float)v;
    return true;
}

static int list_voices(pl_cli *cli, const char *backend) {
    pl_tts_voice *v = NULL;
    size_t n = 0;
    if (pl_tts_list_voices(cli->ctx, backend, &v, &n) != PL_OK)
        return pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
    for (size_t i = 0; i < n; i++)
        if (!v[i].is_variant)
            printf("%-16s %-7s %s\n", v[i].name, v[i].gender[0] ? v[i].gender : "-", v[i].display);
    /* Variants go after a voice's name: en-us+klatt. */
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        if (!v[i].is_variant) continue;
        if (col == 0) {
            printf("\nvariants (add to a voice, e.g. en-us+klatt):\n ");
            col = 1;
        }
        if (col + strlen(v[i].name) + 1 > 78) col = (size_t)printf("\n ") - 1;
        col += (size_t)printf(" %s", v[i].name);
    }
    if (col) putchar('\n');
    pl_tts_voices_free(cli->ctx, v);
    return 0;
}

static char *read_stdin(pl_cli *cli) {
    size_t cap = 4096, len = 0;
    char *buf = pl_malloc(cli->ctx, cap);
    while (buf) {
        if (len + 1 >= cap) {
            if (cap > PL_TTS_MAX_TEXT) break;
            char *p = pl_realloc(cli->ctx, buf, cap * 2);
            if (!p) break;
            buf = p;
            cap *= 2;
        }
        size_t k = fread(buf + len, 1, cap - 1 - len, stdin);
        len += k;
        if (k == 0) {
            buf[len] = '\0';
            return buf;
        }
    }
    pl_free(cli->ctx, buf);
    return NULL;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

int cmd_speak(pl_cli *cli, int argc, char **argv) {
    if (pl_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    const char *text = NULL, *out = NULL, *fmt_s = NULL;
    pl_tts_params tp = pl_tts_default_params();
    bool list = false, stats = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "-o") == 0 || pl_cli_is_opt(a, "--output")) {
            if (!(out = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--format")) {
            if (!(fmt_s = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--voice")) {
            if (!(tp.voice = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--tts")) {
            if (!(tp.backend = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--speed")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!parse_float(v, 0.25f, 4.0f, &tp.speed))
                return pl_cli_usage_error(cli, "--speed takes 0.25..4");
        } else if (pl_cli_is_opt(a, "--pitch")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!parse_float(v, 0.0f, 2.0f, &tp.pitch))
                return pl_cli_usage_error(cli, "--pitch takes 0..2");
        } else if (pl_cli_is_opt(a, "--rate")) {
            int64_t r;
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, 8000, 192000, &r))
                return pl_cli_usage_error(cli, "--rate takes 8000..192000");
            tp.sample_rate = (int)r;
        } else if (strcmp(a, "--list-voices") == 0) {
            list = true;
        } else if (strcmp(a, "--stats") == 0) {
            stats = true;
        } else if (a[0] == '-' && a[1]) {
            return pl_cli_usage_error(cli, "unknown option '%s'", a);
        } else if (!text) {
            text = a;
        } else {
            return pl_cli_usage_error(cli, "one TEXT only (quote it)");
        }
    }
    if (list) return list_voices(cli, tp.backend);
    if (!text) return pl_cli_usage_error(cli, "no TEXT given");
    if (!out) return pl_cli_usage_error(cli, "no output given (-o FILE, or -o - for stdout)");
    pl_audio_format fmt = PL_AUDIO_FORMAT_WAV;
    if (fmt_s) {
        if (pl_audio_format_parse(fmt_s, &fmt) != PL_OK)
            return pl_cli_usage_error(cli, "--format takes wav or pcm");
    } else if (ends_with(out, ".pcm") || ends_with(out, ".raw")) {
        fmt = PL_AUDIO_FORMAT_PCM;
    }
    char *owned = NULL;
    if (strcmp(text, "-") == 0) {
        owned = read_stdin(cli);
        if (!owned) return pl_cli_fail(cli, "cannot read the text from stdin (at most %u bytes)",
                                       PL_TTS_MAX_TEXT);
        text = owned;
    }
    pl_tts *tts = NULL;
    if (pl_tts_init(cli->ctx, &tp, &tts) != PL_OK) {
        pl_free(cli->ctx, owned);
        return pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
    }
    sink_ctx sk = { .st = PL_OK };
    if (pl_audio_writer_open(cli->ctx, out, fmt, pl_tts_sample_rate(tts), 1, &sk.w) != PL_OK) {
        pl_tts_free(tts);
        pl_free(cli->ctx, owned);
        return pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
    }
    pl_tts_stats ts;
    pl_status st = pl_tts_synthesize(tts, text, on_chunk, &sk, &ts);
    int rc = 0;
    if (sk.st != PL_OK) rc = pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
    else if (st != PL_OK) rc = pl_cli_fail(cli, "%s", pl_tts_last_error(tts));
    uint64_t frames = pl_audio_writer_frames(sk.w);
    if (pl_audio_writer_close(sk.w) != PL_OK && rc == 0)
        rc = pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
    if (stats && rc == 0)
        fprintf(stderr, "tts: %s, %d Hz, %llu samples (%.2f s), first chunk %.1f ms, total %.1f ms, "
                        "RTF %.3f, %zu chunks\n",
                pl_tts_backend_of(tts)->name, pl_tts_sample_rate(tts), (unsigned long long)frames,
                ts.audio_ms / 1000.0, ts.first_chunk_ms, ts.total_ms, ts.rtf, ts.n_chunks);
    pl_tts_free(tts);
    pl_free(cli->ctx, owned);
    return rc;
}
