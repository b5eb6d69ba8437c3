/*
 * cmd_fixture_whisper.c - `parley fixture --whisper`: a random-weight Whisper
 * model in the whisper.cpp ggml layout at a real shape (tests, bench-stt).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "parley/tensor.h"
#include "whisper/whisper_int.h"

int cmd_fixture_whisper(pl_cli *cli, int argc, char **argv);

static const char usage_text[] =
    "usage: parley fixture --whisper [options] -o OUT.bin\n"
    "\n"
    "Write a whisper.cpp ggml model file with random weights at a real Whisper\n"
    "shape (the same seed gives the same file). Never a real model: for tests and\n"
    "speed measurements.\n"
    "\n"
    "options:\n"
    "  --shape S        tiny (default), base, small, medium\n"
    "  --multilingual   n_vocab 51865 (default: English-only, 51864)\n"
    "  --type T         matrix type: f32, f16 (default), q8_0, q5_0, q5_1, q4_0, q4_1\n"
    "  --audio-ctx N    n_audio_ctx (default 1500)\n"
    "  --text-ctx N     n_text_ctx (default 448)\n"
    "  --seed N         random seed (default 1)\n"
    "  -o, --output F   output path\n"
    "  -h, --help       this text\n";

int cmd_fixture_whisper(pl_cli *cli, int argc, char **argv) {
    if (pl_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    pl_whisper_fixture_params p = { .shape = "tiny", .type = PL_TYPE_F16, .seed = 1 };
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int64_t n;
        if (strcmp(a, "--whisper") == 0) {
            continue;
        } else if (strcmp(a, "--multilingual") == 0) {
            p.multilingual = true;
        } else if (pl_cli_is_opt(a, "--shape")) {
            if (!(p.shape = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--type")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            pl_type t;
            if (pl_type_from_name(v, &t) != PL_OK) return pl_cli_usage_error(cli, "unknown type '%s'", v);
            p.type = t;
        } else if (pl_cli_is_opt(a, "--audio-ctx")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, 1, 4096, &n)) return pl_cli_usage_error(cli, "--audio-ctx takes 1..4096");
            p.n_audio_ctx = (int)n;
        } else if (pl_cli_is_opt(a, "--text-ctx")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, 4, 4096, &n)) return pl_cli_usage_error(cli, "--text-ctx takes 4..4096");
            p.n_text_ctx = (int)n;
        } else if (pl_cli_is_opt(a, "--seed")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_u64(v, &p.seed)) return pl_cli_usage_error(cli, "bad --seed");
        } else if (pl_cli_is_opt(a, "-o") || pl_cli_is_opt(a, "--output")) {
            if (!(out = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else {
            return pl_cli_usage_error(cli, "unknown option '%s'", a);
        }
    }
    if (!out) return pl_cli_usage_error(cli, "missing -o OUT.bin");
    if (pl_whisper_fixture_write(cli->ctx, &p, out) != PL_OK)
        return pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
    return 0;
}
