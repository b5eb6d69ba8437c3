/*
 * cmd_bench_stt.c - `parley bench-stt`: speed of the native Whisper pieces on a
 * recording: mel ms, encoder ms (one window), decoder ms per token, and the
 * real-time factor of a whole transcription.
 *
 * The model is a file (-m) or a random-weight model made in memory at a real
 * shape (--shape tiny|base|small --type f16|q8_0|...): speed does not depend on
 * the weights' values. Random weights decode arbitrary text, so the RTF run
 * caps each window at --max-tokens (default 32, about what 11 s of speech
 * takes) and turns the temperature fallback off; with a real model pass
 * --max-tokens 0 for an uncapped, normal transcription.
 * --partial 1,3,5 also times a partial transcript (pl_whisper_partial_params,
 * what the whisper STT backend runs for pl_stt_partial) over the first 1, 3
 * and 5 s: random weights never stop, so those decode up to the partial's
 * token cap (8 + 6 per second), above the ~3 tokens a second of real speech;
 * the decoder ms per token is given to scale it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "parley/audio.h"
#include "parley/tensor.h"
#include "parley/whisper.h"
#include "whisper/whisper_int.h"

static const char usage_text[] =
    "usage: parley bench-stt (-m MODEL | --shape S [--type T]) [options] AUDIO\n"
    "\n"
    "Time the native Whisper recognizer on a recording: log-mel (ms), encoder\n"
    "(ms per window), decoder (ms per token), and the real-time factor of a whole\n"
    "transcription (recognition time / audio duration), each the mean of -r runs.\n"
    "\n"
    "options:\n"
    "  -m, --model M     whisper.cpp ggml file or store name\n"
    "  --shape S         instead of -m: random weights at a Whisper shape: tiny,\n"
    "                    base, small (made in memory)\n"
    "  --type T          matrix type of --shape: f16 (default), q8_0, q5_0, q4_0, f32\n"
    "  --multilingual    --shape with the multilingual vocabulary\n"
    "  -t, --threads N   threads (default: physical cores)\n"
    "  --audio-ctx N     encoder frames (default: the model's, 1500 = 30 s)\n"
    "  -n N              decoder steps timed (default 32)\n"
    "  --max-tokens N    tokens per window in the RTF run (default 32; 0: no cap)\n"
    "  -r N              repetitions (default 3)\n"
    "  --partial LIST    also time a partial transcript over the first S seconds,\n"
    "                    for each S of a comma-separated list (e.g. 1,3,5)\n"
    "  --json            one JSON object instead of the table\n"
    "  -h, --help        this text\n";

/* process CPU time: on a shared machine wall time says more about the neighbours */
static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int cmd_bench_stt(pl_cli *cli, int argc, char **argv) {
    if (pl_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    const char *model = NULL, *audio_path = NULL;
    pl_whisper_fixture_params fp = { .type = PL_TYPE_F16, .seed = 1 };
    int64_t threads = 0, actx = 0, n_steps = 32, max_tokens = 32, reps = 3;
    bool json = false;
    enum { MAX_PARTIALS = 16 };
    double partial_s[MAX_PARTIALS];
    int n_partials = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (pl_cli_is_opt(a, "-m") || pl_cli_is_opt(a, "--model")) {
            if (!(model = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--shape")) {
            if (!(fp.shape = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--type")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            pl_type t;
            if (pl_type_from_name(v, &t) != PL_OK) return pl_cli_usage_error(cli, "unknown type '%s'", v);
            fp.type = t;
        } else if (strcmp(a, "--multilingual") == 0) {
            fp.multilingual = true;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (pl_cli_is_opt(a, "-t") || pl_cli_is_opt(a, "--threads")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, 1, 1024, &threads)) return pl_cli_usage_error(cli, "-t takes 1..1024");
        } else if (pl_cli_is_opt(a, "--audio-ctx")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, 0, 4096, &actx)) return pl_cli_usage_error(cli, "--audio-ctx takes 0..4096");
        } else if (pl_cli_is_opt(a, "-n")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, 1, 400, &n_steps)) return pl_cli_usage_error(cli, "-n takes 1..400");
        } else if (pl_cli_is_opt(a, "--max-tokens")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, 0, 4096, &max_tokens)) return pl_cli_usage_error(cli, "--max-tokens takes 0..4096");
        } else if (pl_cli_is_opt(a, "-r")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, 1, 100, &reps)) return pl_cli_usage_error(cli, "-r takes 1..100");
        } else if (pl_cli_is_opt(a, "--partial")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            for (const char *q = v; *q;) {
                char *end;
                double x = strtod(q, &end);
                if (end == q || !(x > 0.0 && x <= 3600.0) || n_partials == MAX_PARTIALS || (*end && *end != ','))
                    return pl_cli_usage_error(cli, "--partial takes up to %d durations in (0, 3600] s, "
                                              "comma-separated", MAX_PARTIALS);
                partial_s[n_partials++] = x;
                q = *end ? end + 1 : end;
            }
        } else if (a[0] == '-' && a[1]) {
            return pl_cli_usage_error(cli, "unknown option '%s'", a);
        } else if (!audio_path) {
            audio_path = a;
        } else {
            return pl_cli_usage_error(cli, "one AUDIO file only");
        }
    }
    if (!audio_path) return pl_cli_usage_error(cli, "no AUDIO file given");
    if (!model == !fp.shape) return pl_cli_usage_error(cli, "give one of -m MODEL or --shape S");

    pl_audio *audio = NULL;
    if (pl_audio_load_file(cli->ctx, audio_path, NULL, &audio) != PL_OK)
        return pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
    pl_whisper_model *m = NULL;
    pl_whisper_state *s = NULL;
    int rc = 0;
    uint64_t tl = pl_time_ns();
    if (model) {
        char *path = pl_cli_model_path(cli, model);
        if (!path) {
            pl_audio_free(audio);
            return 1;
        }
        if (pl_whisper_model_load(cli->ctx, path, &m) != PL_OK) rc = pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
        pl_free(cli->ctx, path);
    } else {
        uint8_t *data = NULL;
        size_t size = 0;
        if (pl_whisper_fixture_make(cli->ctx, &fp, &data, &size) != PL_OK ||
            pl_whisper_model_load_mem(cli->ctx, data, size, &m) != PL_OK)
            rc = pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
        pl_free(cli->ctx, data);
    }
    double load_ms = (double)(pl_time_ns() - tl) / 1e6;
    if (rc == 0 && pl_whisper_state_init(m, (int)threads, (int)actx, &s) != PL_OK)
        rc = pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
    if (rc != 0) {
        pl_whisper_model_free(m);
        pl_audio_free(audio);
        return rc;
    }
    const pl_whisper_hparams *h = pl_whisper_model_hparams(m);
    const pl_whisper_specials *sp = pl_whisper_model_specials(m);
    const double audio_s = (double)audio->n_frames / PL_WHISPER_SAMPLE_RATE;
    double mel_ms = 0, enc_ms = 0, dec_ms = 0, full_ms = 0, enc_cpu = 0, mel_cpu = 0, dec_cpu = 0, full_cpu = 0;
    int64_t full_tokens = 0;
    pl_status st = PL_OK;
    for (int64_t r = 0; r <= reps && st == PL_OK; r++) { /* run 0 warms up */
        uint64_t t0 = pl_time_ns();
        double c0 = cpu_ms();
        st = pl_whisper_set_audio(s, audio->samples, audio->n_frames);
        uint64_t t1 = pl_time_ns();
        double c1 = cpu_ms();
        if (st == PL_OK) st = pl_whisper_encode(s);
        double c2 = cpu_ms();
        uint64_t t2 = pl_time_ns();
        int32_t tok = sp->sot;
        const float *logits = NULL;
        if (st == PL_OK) st = pl_whisper_decode(s, &tok, 1, 0, &logits);
        uint64_t t3 = pl_time_ns();
        double c3 = cpu_ms();
        for (int64_t k = 0; k < n_steps && st == PL_OK; k++) {
            int32_t best = 0;
            for (int32_t v = 1; v < sp->eot; v++)
                if (logits[v] > logits[best]) best = v;
            st = pl_whisper_decode(s, &best, 1, (int)(k + 1), &logits);
        }
        uint64_t t4 = pl_time_ns();
        double c4 = cpu_ms();
        pl_whisper_params wp = pl_whisper_default_params();
        wp.temperature_inc = 0.0f;
        wp.max_tokens = (int)max_tokens;
        wp.language = "en";
        const pl_whisper_result *res = NULL;
        uint64_t t5 = pl_time_ns();
        double c5 = cpu_ms();
        if (st == PL_OK) st = pl_whisper_full(s, &wp, audio->samples, audio->n_frames, &res);
        uint64_t t6 = pl_time_ns();
        double c6 = cpu_ms();
        if (r == 0 || st != PL_OK) continue;
        mel_ms += (double)(t1 - t0) / 1e6;
        enc_ms += (double)(t2 - t1) / 1e6;
        enc_cpu += c2 - c1;
        mel_cpu += c1 - c0;
        dec_cpu += (c4 - c3) / (double)n_steps;
        full_cpu += c6 - c5;
        dec_ms += (double)(t4 - t3) / 1e6 / (double)n_steps;
        full_ms += (double)(t6 - t5) / 1e6;
        full_tokens = res->t.n_decoded;
    }
    /* partials: the mean of reps after a warm-up run, per duration */
    typedef struct part_run { double s, ms, cpu, mel, enc, dec; int64_t tokens; int actx; } part_run;
    part_run part[MAX_PARTIALS];
    int T_state = 0;
    if (st == PL_OK) pl_whisper_encoder_output(s, &T_state);
    for (int k = 0; k < n_partials && st == PL_OK; k++) {
        size_t np = (size_t)(partial_s[k] * PL_WHISPER_SAMPLE_RATE);
        if (np > audio->n_frames) {
            rc = pl_cli_fail(cli, "--partial %.2f s: the audio is %.2f s", partial_s[k], audio_s);
            break;
        }
        pl_whisper_params wp = pl_whisper_partial_params(np, T_state);
        wp.language = "en";
        part[k] = (part_run){ .s = partial_s[k], .actx = wp.audio_ctx };
        for (int64_t r = 0; r <= reps && st == PL_OK; r++) {
            const pl_whisper_result *res = NULL;
            uint64_t t0 = pl_time_ns();
            double c0 = cpu_ms();
            st = pl_whisper_full(s, &wp, audio->samples, np, &res);
            if (r == 0 || st != PL_OK) continue;
            part[k].ms += (double)(pl_time_ns() - t0) / 1e6 / (double)reps;
            part[k].cpu += (cpu_ms() - c0) / (double)reps;
            part[k].mel += res->t.mel_ms / (double)reps;
            part[k].enc += res->t.encode_ms / (double)reps;
            part[k].dec += res->t.decode_ms / (double)reps;
            part[k].tokens = res->t.n_decoded;
        }
    }
    if (rc == 0 && st != PL_OK) {
        rc = pl_cli_fail(cli, "%s", pl_whisper_state_error(s));
    } else if (rc == 0) {
        mel_ms /= (double)reps;
        enc_ms /= (double)reps;
        enc_cpu /= (double)reps;
        mel_cpu /= (double)reps;
        dec_cpu /= (double)reps;
        full_cpu /= (double)reps;
        dec_ms /= (double)reps;
        full_ms /= (double)reps;
        int T = T_state; /* the partials leave the state unencoded */
        char shape[64];
        snprintf(shape, sizeof shape, "%s", model ? model : fp.shape);
        int n_thr = threads ? (int)threads : pl_cpu_detect()->n_physical;
        if (json) {
            printf("{\"model\":\"%s\",\"type\":\"%s\",\"n_state\":%d,\"n_layer\":%d,\"audio_ctx\":%d,\"threads\":%d,"
                   "\"audio_s\":%.2f,\"load_ms\":%.1f,\"mel_ms\":%.2f,\"mel_cpu_ms\":%.2f,\"encoder_ms\":%.1f,"
                   "\"encoder_cpu_ms\":%.1f,\"decoder_ms_per_token\":%.2f,\"decoder_cpu_ms_per_token\":%.2f,"
                   "\"full_ms\":%.1f,\"full_cpu_ms\":%.1f,\"full_tokens\":%lld,\"rtf\":%.4f,\"rtf_cpu\":%.4f",
                   shape, pl_whisper_model_type_name(m), h->n_audio_state, h->n_audio_layer, T, n_thr, audio_s,
                   load_ms, mel_ms, mel_cpu, enc_ms, enc_cpu, dec_ms, dec_cpu, full_ms, full_cpu,
                   (long long)full_tokens, full_ms / 1000.0 / audio_s, full_cpu / 1000.0 / audio_s);
            if (n_partials) {
                printf(",\"partials\":[");
                for (int k = 0; k < n_partials; k++)
                    printf("%s{\"audio_s\":%.2f,\"audio_ctx\":%d,\"ms\":%.1f,\"cpu_ms\":%.1f,\"mel_ms\":%.2f,"
                           "\"encoder_ms\":%.1f,\"decoder_ms\":%.1f,\"tokens\":%lld,\"decoder_ms_per_token\":%.2f}",
                           k ? "," : "", part[k].s, part[k].actx, part[k].ms, part[k].cpu, part[k].mel, part[k].enc,
                           part[k].dec, (long long)part[k].tokens,
                           part[k].tokens ? part[k].dec / (double)part[k].tokens : 0.0);
                printf("]");
            }
            printf("}\n");
        } else {
            /* wall time, and the process CPU time in parentheses (equal when the cores are free) */
            printf("| model | type | threads | audio ctx | audio s | mel ms (cpu) | encoder ms (cpu) | "
                   "decoder ms/tok (cpu) | full ms (cpu, tokens) | RTF (cpu) |\n");
            printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            printf("| %s | %s | %d | %d | %.2f | %.1f (%.1f) | %.0f (%.0f) | %.2f (%.2f) | %.0f (%.0f, %lld) | "
                   "%.3f (%.3f) |\n", shape, pl_whisper_model_type_name(m), n_thr, T, audio_s, mel_ms, mel_cpu,
                   enc_ms, enc_cpu, dec_ms, dec_cpu, full_ms, full_cpu, (long long)full_tokens,
                   full_ms / 1000.0 / audio_s, full_cpu / 1000.0 / audio_s);
            if (n_partials) {
                printf("\n| partial over | audio ctx | ms (cpu) | mel ms | encoder ms | decoder ms (tokens) | "
                       "decoder ms/tok |\n|---:|---:|---:|---:|---:|---:|---:|\n");
                for (int k = 0; k < n_partials; k++)
                    printf("| %.1f s | %d | %.0f (%.0f) | %.1f | %.0f | %.0f (%lld) | %.2f |\n", part[k].s,
                           part[k].actx, part[k].ms, part[k].cpu, part[k].mel, part[k].enc, part[k].dec,
                           (long long)part[k].tokens, part[k].tokens ? part[k].dec / (double)part[k].tokens : 0.0);
            }
        }
    }
    pl_whisper_state_free(s);
    pl_whisper_model_free(m);
    pl_audio_free(audio);
    return rc;
}
