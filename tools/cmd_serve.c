/*
 * cmd_serve.c - `parley serve`: the OpenAI-compatible HTTP server
 * (parley/server.h) on a model. Runs until SIGINT or SIGTERM, then stops
 * gracefully (drains running requests for a bounded time) and exits 0.
 */
#include <errno.h>
#include <limits.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "parley/config.h"
#include "parley/server.h"
#include "parley/stt.h"
#include "parley/tts.h"
#include "parley/template.h"

static const char usage_text[] =
    "usage: parley serve -m MODEL [options]\n"
    "\n"
    "Serve a GGUF model over an OpenAI-compatible HTTP API: POST /v1/chat/completions,\n"
    "/v1/completions, /tokenize, /detokenize; GET /v1/models, /health, /metrics, /props;\n"
    "and the web page at /. Requests share the model through N slots decoded together\n"
    "(continuous batching); a conversation's next turn reuses its cached prefix.\n"
    "Stops on Ctrl-C or SIGTERM after letting running requests finish (a few seconds).\n"
    "\n"
    "options (defaults come from the configuration, see `parley config`):\n"
    "  -m, --model M            GGUF file or store name (default: llm.model)\n"
    "  --alias NAME             model id reported by /v1/models (default: the file name)\n"
    "  --host ADDR              bind address (default 127.0.0.1: this machine only)\n"
    "  --port N                 port (default 8080; 0: any free port, printed at start)\n"
    "  -np, --parallel N        slots: requests decoded at once (default 4)\n"
    "  -c, --ctx N              context tokens per slot (default min(trained, 4096))\n"
    "  -b, --batch N            tokens per decode step (default 512)\n"
    "  -t, --threads N          worker threads (0: physical cores)\n"
    "  --api-key KEY            require 'Authorization: Bearer KEY'\n"
    "  --api-key-file F         the same, with the key read from F (first line)\n"
    "  --timeout S              per-request limit in seconds, queueing included (default 600)\n"
    "  --max-queue N            requests that may wait for a slot (default 64; then 503)\n"
    "  --cors ORIGIN            allow browser requests from ORIGIN ('*' for any); off by default\n"
    "  --web-dir DIR            static files for / (default: web/ next to the binary)\n"
    "  --max-body BYTES         largest request body (default 8 MiB; 413 past it)\n"
    "  --stt NAME               recognizer for /v1/audio/transcriptions (default pocketsphinx)\n"
    "  --tts-voice VOICE        voice for /v1/audio/speech and OpenAI's voice names (default en-us)\n"
    "  --chat-template NAME     a built-in template (default: the model's)\n"
    "  --reasoning MODE         separate (default): reasoning_content apart; none; hidden\n"
    "  --temp T, --top-k N, --top-p P, --min-p P   sampling defaults for requests\n"
    "  --config FILE            configuration file\n"
    "  -h, --help               this text\n";

static const pl_cli_flag_key flag_keys[] = {
    { "--model", "-m", "llm.model" },        { "--ctx", "-c", "llm.n_ctx" },
    { "--threads", "-t", "llm.n_threads" },  { "--batch", "-b", "llm.n_batch" },
    { "--temp", NULL, "llm.temperature" },   { "--top-k", NULL, "llm.top_k" },
    { "--top-p", NULL, "llm.top_p" },        { "--min-p", NULL, "llm.min_p" },
    { "--reasoning", NULL, "llm.reasoning" }, { "--host", NULL, "server.host" },
    { "--parallel", "-np", "server.parallel" },
    { "--api-key-file", NULL, "server.api_key_file" }, { "--timeout", NULL, "server.timeout" },
};

/* First line of a key file, trimmed; NULL on error. */
static char *read_key_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char buf[1024];
    char *line = fgets(buf, sizeof buf, f);
    fclose(f);
    if (!line) return NULL;
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t')) buf[--n] = 0;
    return n ? strdup(buf) : NULL;
}

/* web/ next to the binary, or ../web (the binary in a build directory of the
 * source tree). Into out; false when neither exists. */
static bool default_web_dir(char *out, size_t cap) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return false;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return false;
    *slash = 0;
    static const char *const rel[] = { "/web", "/../web" };
    for (size_t i = 0; i < 2; i++) {
        struct stat st;
        snprintf(out, cap, "%s%s/index.html", exe, rel[i]);
        if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
            snprintf(out, cap, "%s%s", exe, rel[i]);
            return true;
        }
    }
    return false;
}

/* glibc's malloc, tuned for a process that runs for weeks (measured in
 * docs/robustness.md, "Load and soak"). By default glibc raises its mmap
 * threshold to the size of every mmap'd block freed (up to 32 MiB): after the
 * first large block is freed, later ones (request bodies up to --max-body,
 * decoded uploads, speech buffers; per-request samplers did this before they
 * became per slot) come from the malloc heaps, where, freed between smaller
 * long-lived blocks, they stay resident, and each arena (8 per core by
 * default, shared by 64 HTTP threads) grows to its own worst case: +12.6% RSS
 * in a 10-minute soak. A fixed 256 KiB threshold keeps such blocks mmap'd and
 * returns them on free (cost: a page fault per 4 KiB touched, paid by large
 * requests only); two arenas bound the fragmentation of the small ones (the
 * HTTP threads mostly wait on sockets; the scheduler allocates nothing per
 * token). */
static void tune_malloc(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 256 << 10);
    mallopt(M_ARENA_MAX, 2);
#endif
}

int cmd_serve(pl_cli *cli, int argc, char **argv) {
    if (pl_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    const char *api_key = NULL, *cors = NULL, *web_dir = NULL, *alias = NULL, *tmpl = NULL, *v;
    const char *stt = NULL, *tts_voice = NULL;
    int64_t max_queue = -1, max_body = -1, port = -1;
    pl_config *cfg = NULL;
    char *path = NULL, *key_buf = NULL;
    pl_server *srv = NULL;
    int rc = pl_cli_config_load(cli, argc, argv, &cfg);
    if (rc) goto out;
    rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int taken = pl_cli_config_flag(cli, cfg, flag_keys, sizeof flag_keys / sizeof flag_keys[0], argc, argv, &i);
        if (taken < 0) goto out;
        if (taken) {
            continue;
        } else if (pl_cli_is_opt(a, "--api-key")) {
            if (!(api_key = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
        } else if (pl_cli_is_opt(a, "--cors")) {
            if (!(cors = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
        } else if (pl_cli_is_opt(a, "--web-dir")) {
            if (!(web_dir = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
        } else if (pl_cli_is_opt(a, "--stt")) {
            if (!(stt = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
            if (!pl_stt_backend_find(stt)) {
                rc = pl_cli_usage_error(cli, "no speech recognizer named '%s'", stt);
                goto out;
            }
        } else if (pl_cli_is_opt(a, "--tts-voice") || pl_cli_is_opt(a, "--voice")) {
            if (!(tts_voice = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
            pl_tts_params tp = pl_tts_default_params();
            tp.voice = tts_voice;
            pl_tts *t = NULL;
            if (pl_tts_init(cli->ctx, &tp, &t) != PL_OK) { /* refuse a bad voice now, not per request */
                rc = pl_cli_usage_error(cli, "--tts-voice: %s", pl_ctx_last_error(cli->ctx));
                goto out;
            }
            pl_tts_free(t);
        } else if (pl_cli_is_opt(a, "--alias")) {
            if (!(alias = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
        } else if (pl_cli_is_opt(a, "--chat-template")) {
            if (!(tmpl = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
            if (!pl_template_builtin(tmpl)) {
                rc = pl_cli_usage_error(cli, "no built-in template named '%s'", tmpl);
                goto out;
            }
        } else if (pl_cli_is_opt(a, "--port")) { /* not via server.port: 0 (any free port) is allowed here */
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
            if (!pl_cli_parse_i64(v, 0, 65535, &port)) {
                rc = pl_cli_usage_error(cli, "bad --port '%s'", v);
                goto out;
            }
        } else if (pl_cli_is_opt(a, "--max-queue") || pl_cli_is_opt(a, "--max-body")) {
            bool q = pl_cli_is_opt(a, "--max-queue");
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
            if (!pl_cli_parse_i64(v, q ? 0 : 1, q ? 100000 : (int64_t)1 << 32, q ? &max_queue : &max_body)) {
                rc = pl_cli_usage_error(cli, "bad %s '%s'", q ? "--max-queue" : "--max-body", v);
                goto out;
            }
        } else {
            rc = pl_cli_usage_error(cli, "unexpected argument '%s'", a);
            goto out;
        }
    }
    if (pl_config_validate(cfg) != PL_OK) {
        rc = pl_cli_usage_error(cli, "%s", pl_config_last_error(cfg));
        goto out;
    }
    const pl_config_values *cv = pl_config_get(cfg);
    const pl_config_llm *L = &cv->llm;
    const pl_config_server *S = &cv->server;
    if (api_key && S->api_key_file && S->api_key_file[0] &&
        pl_config_source_of(cfg, pl_config_key_find("server.api_key_file")) == PL_CONFIG_SOURCE_FLAG) {
        rc = pl_cli_usage_error(cli, "give only one of --api-key and --api-key-file");
        goto out;
    }
    if (!L->model || !L->model[0]) {
        rc = pl_cli_usage_error(cli, "no model: give -m MODEL (or set llm.model)");
        goto out;
    }
    rc = 1;
    if (!api_key && S->api_key_file && S->api_key_file[0]) {
        if (!(key_buf = read_key_file(S->api_key_file))) {
            pl_cli_fail(cli, "cannot read an API key from '%s'", S->api_key_file);
            goto out;
        }
        api_key = key_buf;
    }
    if (!(path = pl_cli_model_path(cli, L->model))) goto out;
    char web_buf[PATH_MAX + 32];
    if (!web_dir && default_web_dir(web_buf, sizeof web_buf)) web_dir = web_buf;

    pl_server_params p = pl_server_default_params();
    p.model_path = path;
    p.model_alias = alias;
    p.template_name = tmpl;
    p.host = S->host;
    p.port = port >= 0 ? (int)port : (int)S->port;
    p.n_slots = (int)S->parallel;
    p.n_ctx = (int32_t)L->n_ctx;
    if (L->n_batch > 0) p.n_batch = (int32_t)L->n_batch;
    p.n_threads = (int)L->n_threads;
    p.api_key = api_key;
    p.timeout_s = (int)S->timeout;
    if (max_queue >= 0) p.max_queue = (int)max_queue;
    if (max_body > 0) p.max_body = (size_t)max_body;
    p.cors_origin = cors;
    p.web_dir = web_dir;
    p.stt_backend = stt;
    p.tts_voice = tts_voice;
    if (pl_think_mode_parse(L->reasoning, &p.reasoning) != PL_OK) p.reasoning = PL_THINK_MODE_SEPARATE;
    p.sampling.temperature = (float)L->temperature;
    p.sampling.top_k = (int32_t)L->top_k;
    p.sampling.top_p = (float)L->top_p;
    p.sampling.min_p = (float)L->min_p;
    p.sampling.repeat_penalty = (float)L->repeat_penalty;

    /* SIGINT/SIGTERM are taken by sigwait below: block them before any
     * thread starts so no server thread receives them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    tune_malloc(); /* before the server's threads make their arenas */
    signal(SIGPIPE, SIG_IGN); /* a client that went away is a failed write, not a signal */
    if (pl_server_start(cli->ctx, &p, &srv) != PL_OK) {
        pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
        goto out;
    }
    fprintf(stderr, "parley serve: listening on http://%s:%d (model %s loading)%s\n", S->host, pl_server_port(srv),
            path, api_key ? ", API key required" : "");
    if (pl_server_wait_loaded(srv) != PL_OK) {
        pl_cli_fail(cli, "%s", pl_server_last_error(srv));
        goto out;
    }
    fprintf(stderr, "parley serve: ready: %d slots; web page: %s\n", p.n_slots, web_dir ? web_dir : "built-in");
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    fprintf(stderr, "parley serve: %s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    pl_server_stop(srv);
    rc = 0;
out:
    pl_server_free(srv);
    pl_free(cli->ctx, path);
    free(key_buf);
    pl_config_free(cfg);
    return rc;
}
