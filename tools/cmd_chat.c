/*
 * cmd_chat.c - `parley chat`: a conversation with a GGUF model in the
 * terminal. Interactive REPL on a terminal; one turn per line from a pipe;
 * one-shot with -p. stdout carries only the answers; thoughts (with
 * --show-thoughts), the per-turn stats line and diagnostics go to stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "parley/config.h"
#include "parley/engine.h"
#include "parley/template.h"
#include "verbose.h"

static const char usage_text[] =
    "usage: parley chat [-m MODEL] [options]\n"
    "\n"
    "Talk with a GGUF language model. On a terminal it is a REPL with streamed answers;\n"
    "from a pipe every non-empty line of stdin is one turn (commands work too); with\n"
    "-p it answers one prompt and exits (-p - takes the whole of stdin as the prompt).\n"
    "stdout gets only the answers, one per turn, each ending in a newline. stderr gets\n"
    "thoughts (--show-thoughts), errors, and after each turn a stats line: prompt tokens\n"
    "and how many came from the cache, time to first token, generated tokens and tok/s,\n"
    "and why it stopped (stop, length or cancel).\n"
    "\n"
    "options (defaults come from the configuration, see `parley config`):\n"
    "  -m, --model M             GGUF file or store name (default: llm.model)\n"
    "  --system TEXT             system message\n"
    "  -p, --prompt TEXT         answer TEXT and exit ('-': read it from stdin)\n"
    "  --show-thoughts           print the model's reasoning (dimmed on a terminal) on stderr\n"
    "  --reasoning MODE          separate (default): reasoning apart from the answer;\n"
    "                            none: no parsing, everything is the answer; hidden: dropped\n"
    "  --no-think                pass enable_thinking=false to the template\n"
    "  --chat-template NAME      a built-in template: chatml llama3 llama2 mistral phi3\n"
    "                            gemma deepseek-r1 (default: the model's, else chatml)\n"
    "  --chat-template-file F    a Jinja chat template file\n"
    "  -c, --ctx N               context tokens (0: the model's trained length)\n"
    "  -n, --max-tokens N        most tokens per answer\n"
    "  -t, --threads N           worker threads (0: physical cores)\n"
    "  --temp T                  temperature (0: greedy)\n"
    "  --top-k N, --top-p P, --min-p P, --repeat-penalty R\n"
    "  --seed S                  sampling seed (default: random)\n"
    "  --speed                   speed mode: top-k 20, no penalties, shorter answers\n"
    "  --stop S                  stop string (repeatable)\n"
    "  --config FILE             configuration file\n"
    "  --no-stats                no stats line after each turn\n"
    "  --mlock                   lock the model in RAM (llm.mlock)\n"
    "  --warmup                  decode one token at load (llm.warmup)\n"
    "  -v, --verbose             load time in parts; after each turn the request profile\n"
    "                            (template+tokenize, prefill, ttft, decode, time per phase)\n"
    "                            and process / GPU figures\n"
    "  -h, --help                this text\n"
    "\n"
    "commands: /reset  /save FILE  /load FILE  /stats  /help  /quit\n"
    "Ctrl-C stops the answer being written; at the prompt it quits.\n";

static const char help_text[] =
    "/reset       forget the conversation (the system message stays)\n"
    "/save FILE   write the conversation as JSON ({\"messages\": [...]})\n"
    "/load FILE   replace the conversation from such a file\n"
    "/stats       context use, the last turn's figures and session totals\n"
    "/help        this text\n"
    "/quit        leave (also /exit, Ctrl-D)\n";

/* Ctrl-C: cancels the turn being generated; at the prompt it ends the program. */
static volatile _Atomic int g_cancel;
static volatile sig_atomic_t g_in_turn;

static void on_sigint(int sig) {
    (void)sig;
    if (g_in_turn) {
        g_cancel = 1;
    } else {
        ssize_t w = write(STDERR_FILENO, "\n", 1);
        (void)w;
        _exit(130);
    }
}

typedef struct chat {
    pl_cli        *cli;
    pl_session    *s;
    bool           show_thoughts, stats_line, dim, in_thought, wrote;
    pl_turn_stats  last;
    int            turns;
    int64_t        total_prompt, total_cached, total_gen;
    /* --verbose: the context's counters before the turn and at its first token */
    bool           verbose, first_seen;
    pl_context    *lc;
    uint64_t       kv_bytes;
    pl_decode_perf perf_before, perf_first;
} chat;

static void on_token(void *ud, pl_token id) {
    chat *c = ud;
    (void)id;
    if (c->first_seen) return;
    c->first_seen = true;
    pl_context_perf(c->lc, &c->perf_first); /* the prompt's decode is done by now */
}

/* The request profile from the session's stats and the context's counters. The
 * session does not time tokenizing alone: its prefill_ms covers rendering,
 * tokenizing, trimming and the decode, so the decode (the context's counter) is
 * taken out and the rest shown as template+tokenize. */
static void print_verbose(chat *c, const pl_turn_stats *st) {
    pl_decode_perf now;
    pl_context_perf(c->lc, &now);
    if (!c->first_seen) c->perf_first = now;
    double prefill_decode = (double)(c->perf_first.decode_ns - c->perf_before.decode_ns) / 1e6;
    double gen_decode = (double)(now.decode_ns - c->perf_first.decode_ns) / 1e6;
    pl_cli_request rq = { .tokenize_ms = st->prefill_ms > prefill_decode ? st->prefill_ms - prefill_decode : 0,
                          .tokenize_label = "template+tokenize", .prompt_tokens = st->prefill_tokens,
                          .prefill_ms = prefill_decode, .ttft_ms = st->ttft_ms, .gen_tokens = st->generated_tokens,
                          .gen_ms = st->gen_ms, .sample_ms = st->gen_ms > gen_decode ? st->gen_ms - gen_decode : 0,
                          .sample_label = "sampling+text", .perf = pl_cli_perf_diff(&now, &c->perf_before) };
    pl_cli_print_request(c->cli->cmd, &rq);
    pl_cli_print_process(c->cli->cmd, c->kv_bytes);
}

static void on_text(void *ud, pl_channel ch, const char *text, size_t len) {
    chat *c = ud;
    if (ch == PL_CHANNEL_REASONING) {
        if (!c->show_thoughts) return;
        if (!c->in_thought) {
            fputs(c->dim ? "\033[2m" : "thinking: ", stderr);
            c->in_thought = true;
        }
        fwrite(text, 1, len, stderr);
        fflush(stderr);
        return;
    }
    if (c->in_thought) { /* the thoughts end before the answer starts */
        fputs(c->dim ? "\033[0m\n" : "\n", stderr);
        c->in_thought = false;
    }
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    c->wrote = true;
}

static void print_stats_line(const pl_turn_stats *st) {
    fprintf(stderr, "[prompt %d tokens, %d cached | ttft %.0f ms | %d tokens, %.1f tok/s | %s", st->prompt_tokens,
            st->cached_tokens, st->ttft_ms, st->generated_tokens, st->gen_tok_s, pl_finish_name(st->finish));
    if (st->dropped_now) fprintf(stderr, " | dropped %d old messages", st->dropped_now);
    if (st->truncated_bytes) fprintf(stderr, " | cut %zu bytes from the start of your message", st->truncated_bytes);
    if (st->prefix_broken) fprintf(stderr, " (cache prefix rebuilt)");
    fprintf(stderr, "]\n");
}

/* One turn; false when it failed (the message is on stderr). */
static bool do_turn(chat *c, const char *text, size_t len) {
    pl_turn_callbacks cb = { .on_text = on_text, .on_token = c->verbose ? on_token : NULL, .cancel = &g_cancel,
                             .ud = c };
    c->first_seen = false;
    if (c->verbose) pl_context_perf(c->lc, &c->perf_before);
    pl_turn_stats st;
    c->in_thought = c->wrote = false;
    g_cancel = 0;
    g_in_turn = 1;
    pl_status rc = pl_session_turn(c->s, text, len, &cb, &st);
    g_in_turn = 0;
    if (c->in_thought) fputs(c->dim ? "\033[0m\n" : "\n", stderr);
    if (rc != PL_OK) {
        if (c->wrote) fputc('\n', stdout);
        fflush(stdout);
        pl_cli_fail(c->cli, "%s", pl_session_last_error(c->s));
        return false;
    }
    fputc('\n', stdout);
    fflush(stdout);
    c->last = st;
    c->turns++;
    c->total_prompt += st.prompt_tokens;
    c->total_cached += st.cached_tokens;
    c->total_gen += st.generated_tokens;
    if (c->stats_line) print_stats_line(&st);
    if (c->verbose) print_verbose(c, &st);
    return true;
}

/* Whole file (or stdin for "-"), NUL-terminated, at most max bytes; NULL on failure. */
static char *read_all(FILE *f, size_t max, size_t *len) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            if (cap > max) {
                free(buf);
                return NULL;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - 1 - n, f);
        n += k;
        if (k == 0) {
            if (ferror(f)) {
                free(buf);
                return NULL;
            }
            break;
        }
    }
    if (!buf) return NULL;
    buf[n] = 0;
    *len = n;
    return buf;
}

static void show_stats(chat *c) {
    const pl_session *s = c->s;
    const pl_conv *conv = pl_session_conv(c->s);
    fprintf(stderr, "context: %d of %d tokens in the cache; %zu messages%s\n", pl_session_kv_tokens(s, NULL),
            pl_session_n_ctx(s), pl_conv_count(conv), pl_conv_system(conv) ? " and a system message" : "");
    if (c->turns) {
        const pl_turn_stats *t = &c->last;
        fprintf(stderr,
                "last turn: prompt %d tokens (%d cached, %d prefilled in %.1f ms, %.1f tok/s), budget %d, "
                "%d messages left out\n"
                "           ttft %.1f ms, %d tokens (%d reasoning) in %.1f ms, %.1f tok/s, finish %s\n",
                t->prompt_tokens, t->cached_tokens, t->prefill_tokens, t->prefill_ms, t->prefill_tok_s, t->budget,
                t->dropped_messages, t->ttft_ms, t->generated_tokens, t->reasoning_tokens, t->gen_ms, t->gen_tok_s,
                pl_finish_name(t->finish));
        fprintf(stderr, "session: %d turns, %" PRId64 " prompt tokens (%" PRId64 " from the cache), %" PRId64
                        " generated\n",
                c->turns, c->total_prompt, c->total_cached, c->total_gen);
    }
}

/* A /command line. Returns 1 to go on, 0 to quit, -1 after a failed command. */
static int do_command(chat *c, char *line) {
    char *arg = line + strcspn(line, " \t");
    if (*arg) *arg++ = 0;
    arg += strspn(arg, " \t");
    pl_conv *conv = pl_session_conv(c->s);
    if (strcmp(line, "/quit") == 0 || strcmp(line, "/exit") == 0) return 0;
    if (strcmp(line, "/help") == 0) {
        fputs(help_text, stderr);
    } else if (strcmp(line, "/reset") == 0) {
        pl_session_reset(c->s);
        fprintf(stderr, "conversation cleared\n");
    } else if (strcmp(line, "/stats") == 0) {
        show_stats(c);
    } else if (strcmp(line, "/save") == 0 || strcmp(line, "/load") == 0) {
        if (!*arg) {
            pl_cli_fail(c->cli, "%s needs a FILE", line);
            return -1;
        }
        if (line[1] == 's') {
            char *json = NULL;
            if (pl_conv_to_json(conv, &json) != PL_OK) {
                pl_cli_fail(c->cli, "%s", pl_ctx_last_error(c->cli->ctx));
                return -1;
            }
            FILE *f = fopen(arg, "wb");
            bool ok = f && fputs(json, f) >= 0;
            if (f && fclose(f) != 0) ok = false;
            pl_free(c->cli->ctx, json);
            if (!ok) {
                pl_cli_fail(c->cli, "cannot write '%s': %s", arg, strerror(errno));
                return -1;
            }
            fprintf(stderr, "saved %zu messages to %s\n", pl_conv_count(conv) + (pl_conv_system(conv) ? 1 : 0), arg);
        } else {
            FILE *f = fopen(arg, "rb");
            size_t len = 0;
            char *text = f ? read_all(f, PL_CONV_MAX_BYTES * 2, &len) : NULL;
            if (f) fclose(f);
            if (!text) {
                pl_cli_fail(c->cli, "cannot read '%s'%s", arg, f ? " (too large?)" : "");
                return -1;
            }
            pl_status rc = pl_conv_from_json(conv, text, len);
            free(text);
            if (rc != PL_OK) {
                pl_cli_fail(c->cli, "%s: %s", arg, pl_ctx_last_error(c->cli->ctx));
                return -1;
            }
            fprintf(stderr, "loaded %zu messages from %s\n", pl_conv_count(conv), arg);
        }
    } else {
        pl_cli_fail(c->cli, "unknown command '%s' (try /help)", line);
        return -1;
    }
    return 1;
}

/* The REPL / pipe loop. Returns the exit code. */
static int loop(chat *c, bool interactive) {
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    for (;;) {
        if (interactive) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            if (interactive) fputc('\n', stdout);
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n == 0) continue;
        if (line[0] == '/') {
            int r = do_command(c, line);
            if (r == 0) break;
            if (r < 0 && !interactive) rc = 1;
            continue;
        }
        if (!do_turn(c, line, (size_t)n) && !interactive) rc = 1;
    }
    free(line);
    return rc;
}

/* Flags that set a configuration key (validated by the key table). */
static const pl_cli_flag_key flag_keys[] = {
    { "--model", "-m", "llm.model" },        { "--ctx", "-c", "llm.n_ctx" },
    { "--max-tokens", "-n", "llm.max_tokens" }, { "--threads", "-t", "llm.n_threads" },
    { "--temp", NULL, "llm.temperature" },   { "--top-k", NULL, "llm.top_k" },
    { "--top-p", NULL, "llm.top_p" },        { "--min-p", NULL, "llm.min_p" },
    { "--repeat-penalty", NULL, "llm.repeat_penalty" }, { "--reasoning", NULL, "llm.reasoning" },
};

/* The config value unless speed mode is on and the key was left at its default. */
static bool explicit_key(const pl_config *cfg, const char *key) {
    return pl_config_source_of(cfg, pl_config_key_find(key)) != PL_CONFIG_SOURCE_DEFAULT;
}

int cmd_chat(pl_cli *cli, int argc, char **argv) {
    if (pl_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    const char *system = NULL, *prompt = NULL, *tmpl_name = NULL, *tmpl_file = NULL, *v;
    bool show_thoughts = false, no_think = false, speed = false, stats_line = true, have_seed = false,
         verbose = false;
    uint64_t seed = 0;
    const char **stops = calloc((size_t)argc, sizeof *stops);
    size_t n_stops = 0;
    pl_config *cfg = NULL;
    if (!stops) return pl_cli_fail(cli, "out of memory");
    int rc = pl_cli_config_load(cli, argc, argv, &cfg);
    if (rc) goto out;
    rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int taken = pl_cli_config_flag(cli, cfg, flag_keys, sizeof flag_keys / sizeof flag_keys[0], argc, argv, &i);
        if (taken < 0) goto out;
        if (taken) {
            continue;
        } else if (pl_cli_is_opt(a, "--system")) {
            if (!(system = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
        } else if (strcmp(a, "-p") == 0 || pl_cli_is_opt(a, "--prompt")) {
            if (!(prompt = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
        } else if (pl_cli_is_opt(a, "--chat-template")) {
            if (!(tmpl_name = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
            if (!pl_template_builtin(tmpl_name)) {
                rc = pl_cli_usage_error(cli, "no built-in template named '%s'", tmpl_name);
                goto out;
            }
        } else if (pl_cli_is_opt(a, "--chat-template-file")) {
            if (!(tmpl_file = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
        } else if (pl_cli_is_opt(a, "--seed")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
            if (!pl_cli_parse_u64(v, &seed) || seed == PL_SAMPLER_SEED_RANDOM) {
                rc = pl_cli_usage_error(cli, "bad --seed '%s'", v);
                goto out;
            }
            have_seed = true;
        } else if (pl_cli_is_opt(a, "--stop")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) goto out;
            if (n_stops >= PL_STOP_MAX_STRINGS || strlen(v) > PL_STOP_MAX_LEN) {
                rc = pl_cli_usage_error(cli, "at most %d stop strings of %d bytes", PL_STOP_MAX_STRINGS, PL_STOP_MAX_LEN);
                goto out;
            }
            stops[n_stops++] = v;
        } else if (strcmp(a, "--show-thoughts") == 0) {
            show_thoughts = true;
        } else if (strcmp(a, "--no-think") == 0) {
            no_think = true;
        } else if (strcmp(a, "--speed") == 0) {
            speed = true;
        } else if (strcmp(a, "--no-stats") == 0) {
            stats_line = false;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            verbose = true;
        } else if (strcmp(a, "--mlock") == 0 || strcmp(a, "--warmup") == 0) {
            if (pl_config_set(cfg, a[2] == 'm' ? "llm.mlock" : "llm.warmup", "true", PL_CONFIG_SOURCE_FLAG, a) != PL_OK) {
                rc = pl_cli_usage_error(cli, "%s", pl_config_last_error(cfg));
                goto out;
            }
        } else {
            rc = pl_cli_usage_error(cli, "unexpected argument '%s'", a);
            goto out;
        }
    }
    if (tmpl_name && tmpl_file) {
        rc = pl_cli_usage_error(cli, "give only one of --chat-template and --chat-template-file");
        goto out;
    }
    if (pl_config_validate(cfg) != PL_OK) {
        rc = pl_cli_usage_error(cli, "%s", pl_config_last_error(cfg));
        goto out;
    }
    rc = 1;
    const pl_config_llm *L = &pl_config_get(cfg)->llm;
    speed = speed || L->speed_mode;
    pl_think_mode mode;
    if (pl_think_mode_parse(L->reasoning, &mode) != PL_OK) mode = PL_THINK_MODE_SEPARATE;

    char *path = NULL, *tmpl_src = NULL, *prompt_buf = NULL;
    pl_model *model = NULL;
    pl_engine *engine = NULL;
    pl_session *session = NULL;
    pl_context *lc = NULL;
    if (!L->model || !L->model[0]) {
        rc = pl_cli_usage_error(cli, "no model: give -m MODEL (or set llm.model)");
        goto out;
    }
    if (!(path = pl_cli_model_path(cli, L->model))) goto done;
    if (tmpl_file) {
        FILE *f = fopen(tmpl_file, "rb");
        size_t len;
        if (!f || !(tmpl_src = read_all(f, 4u << 20, &len))) {
            if (f) fclose(f);
            pl_cli_fail(cli, "cannot read --chat-template-file '%s'", tmpl_file);
            goto done;
        }
        fclose(f);
    }
    if (prompt && strcmp(prompt, "-") == 0) {
        size_t len;
        if (!(prompt_buf = read_all(stdin, PL_CONV_MAX_BYTES, &len))) {
            pl_cli_fail(cli, "cannot read the prompt from stdin (too large?)");
            goto done;
        }
        while (len > 0 && (prompt_buf[len - 1] == '\n' || prompt_buf[len - 1] == '\r')) prompt_buf[--len] = 0;
        prompt = prompt_buf;
    }

    pl_model_params mp = pl_model_default_params();
    mp.mlock = L->mlock;
    mp.warmup = L->warmup;
    mp.warmup_threads = (int)L->n_threads;
    mp.meminfo_path = getenv("PARLEY_MEMINFO"); /* tests: a meminfo file with set figures */
    pl_cli_progress prog;
    pl_cli_progress_init(&prog, cli->cmd, verbose);
    mp.progress = pl_cli_load_progress;
    mp.progress_ud = &prog;
    pl_status lst = pl_model_load(cli->ctx, path, &mp, &model);
    pl_cli_progress_end(&prog);
    if (lst != PL_OK) {
        pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
        goto done;
    }
    if (verbose) pl_cli_print_load(cli->cmd, pl_model_get_load_stats(model));
    pl_engine_params ep = pl_engine_default_params();
    ep.template_source = tmpl_src;
    ep.template_name = tmpl_name;
    if (pl_engine_init(cli->ctx, model, &ep, &engine) != PL_OK) {
        pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
        goto done;
    }

    const pl_model_info *mi = pl_model_get_info(model);
    pl_session_params sp = pl_session_default_params();
    /* n_ctx: 0 is the trained length; the default (not a flag or setting)
     * never goes past it */
    int64_t n_ctx = L->n_ctx;
    if (n_ctx == 0 || (!explicit_key(cfg, "llm.n_ctx") && n_ctx > mi->n_ctx_train)) n_ctx = mi->n_ctx_train;
    sp.n_ctx = (int32_t)n_ctx;
    sp.n_batch = (int32_t)L->n_batch;
    sp.n_threads = (int)L->n_threads;
    pl_sampler_params smp = speed ? pl_sampler_speed_params() : pl_sampler_default_params();
    if (!speed || explicit_key(cfg, "llm.temperature")) smp.temperature = (float)L->temperature;
    if (!speed || explicit_key(cfg, "llm.top_k")) smp.top_k = (int32_t)L->top_k;
    if (!speed || explicit_key(cfg, "llm.top_p")) smp.top_p = (float)L->top_p;
    if (!speed || explicit_key(cfg, "llm.min_p")) smp.min_p = (float)L->min_p;
    if (!speed || explicit_key(cfg, "llm.repeat_penalty")) smp.repeat_penalty = (float)L->repeat_penalty;
    if (!speed || explicit_key(cfg, "llm.max_tokens")) smp.max_tokens = (int32_t)L->max_tokens;
    smp.seed = have_seed ? seed : PL_SAMPLER_SEED_RANDOM;
    /* a default max_tokens larger than a small context: leave half for the prompt */
    if (!explicit_key(cfg, "llm.max_tokens") && smp.max_tokens > sp.n_ctx / 2) smp.max_tokens = sp.n_ctx / 2;
    sp.sampling = smp;
    sp.history_budget = (int32_t)L->history_budget;
    sp.reasoning = mode;
    sp.enable_thinking = !no_think;
    sp.stops = stops;
    sp.n_stops = n_stops;
    if (verbose) {
        /* the session borrows our context so its counters can be read */
        pl_context_params cp = pl_context_default_params();
        cp.n_ctx = sp.n_ctx;
        cp.n_batch = sp.n_batch;
        cp.n_threads = sp.n_threads;
        if (pl_context_init(model, &cp, &lc) != PL_OK) {
            pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
            goto done;
        }
        sp.context = lc;
        sp.seq = 0;
    }
    if (pl_session_init(cli->ctx, engine, &sp, &session) != PL_OK) {
        pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
        goto done;
    }
    if (system && pl_conv_set_system(pl_session_conv(session), system) != PL_OK) {
        pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
        goto done;
    }

    chat c = { .cli = cli, .s = session, .show_thoughts = show_thoughts, .stats_line = stats_line,
               .dim = isatty(STDERR_FILENO), .verbose = verbose, .lc = lc,
               .kv_bytes = pl_context_memory_usage(lc).kv_bytes };
    struct sigaction sa = { .sa_handler = on_sigint };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    bool interactive = !prompt && isatty(STDIN_FILENO);
    if (interactive) {
        fprintf(stderr, "parley chat: %s (%s), context %d tokens, template: %s. /help for commands.\n",
                mi->name[0] ? mi->name : path, mi->arch, pl_session_n_ctx(session), pl_engine_template_origin(engine));
    }
    if (prompt) rc = do_turn(&c, prompt, strlen(prompt)) ? 0 : 1;
    else rc = loop(&c, interactive);
    signal(SIGINT, SIG_DFL);
done:
    pl_session_free(session);
    pl_context_free(lc);
    pl_engine_free(engine);
    pl_model_free(model);
    pl_free(cli->ctx, path);
    free(tmpl_src);
    free(prompt_buf);
out:
    pl_config_free(cfg);
    free(stops);
    return rc;
}
