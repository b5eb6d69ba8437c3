/*
 * cmd_generate.c - `parley generate`: load a model, run a prompt, stream the
 * continuation to stdout. stderr gets the memory report at load and one timing
 * line at the end; stdout gets only the generated text (or ids).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "parley/gguf.h"
#include "parley/model.h"
#include "parley/sample.h"
#include "parley/tokenizer.h"
#include "verbose.h"

static const char usage_text[] =
    "usage: parley generate -m MODEL.gguf (-p TEXT | --ids \"1 2 3\") [options]\n"
    "\n"
    "Continue a prompt with a GGUF language model and stream the result to stdout.\n"
    "stderr gets the memory used at load and a final timing line (load ms, prompt\n"
    "tokens and tok/s, generated tokens and tok/s).\n"
    "\n"
    "options:\n"
    "  -m, --model F     GGUF model file, or the name of a model in the store\n"
    "  -p, --prompt T    prompt text, tokenized with the model's vocabulary\n"
    "  --ids \"1 2 3\"     prompt as token ids (space or comma separated)\n"
    "  -n N              tokens to generate (default 32); stops early at end of generation\n"
    "  --temp T          sampling temperature (top_k 40, top_p 0.95, min_p 0.05);\n"
    "                    0 (default) is greedy\n"
    "  --seed S          random seed for temp > 0 (default 1)\n"
    "  -t, --threads N   worker threads (default: physical cores)\n"
    "  -c, --ctx N       context length (default: min(model's, 4096))\n"
    "  --no-bos          never add the BOS token (by default it is added when the\n"
    "                    model asks for it and the prompt doesn't start with it)\n"
    "  --ignore-eos      keep going past end-of-generation tokens\n"
    "  --print-ids       print the generated token ids on one line instead of text\n"
    "  --no-prefault     let weight pages fault in on first use instead of reading\n"
    "                    them all at load\n"
    "  --mlock           lock the weights in RAM (warns when RLIMIT_MEMLOCK refuses)\n"
    "  --warmup          decode one token at load (the first request runs warm)\n"
    "  -v, --verbose     load time in parts, per-request profile (tokenize, prefill,\n"
    "                    ttft, decode, time per phase), process and GPU figures\n"
    "  -h, --help        this text\n";

#define MAX_PROMPT (1 << 20)

/* Parse "1 2 3" / "1,2,3" into ids (caller frees). */
static bool parse_ids(const char *s, int32_t **out, int32_t *n) {
    size_t cap = 16, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    if (!v) return false;
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || errno || x < 0 || x > INT32_MAX || k >= MAX_PROMPT) {
            free(v);
            return false;
        }
        if (k == cap) {
            int32_t *nv = realloc(v, 2 * cap * sizeof *v);
            if (!nv) { free(v); return false; }
            v = nv;
            cap *= 2;
        }
        v[k++] = (int32_t)x;
        p = end;
    }
    *out = v;
    *n = (int32_t)k;
    return true;
}

int cmd_generate(pl_cli *cli, int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *ids_text = NULL, *v;
    int64_t n_gen = 32, n_threads = 0, n_ctx = 0;
    double temp = 0.0;
    uint64_t seed = 1;
    bool no_bos = false, print_ids = false, ignore_eos = false, verbose = false, prefault = true, mlock = false,
         warmup = false;
    if (pl_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-m") == 0 || pl_cli_is_opt(a, "--model")) {
            if (!(model_path = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (strcmp(a, "-p") == 0 || pl_cli_is_opt(a, "--prompt")) {
            if (!(prompt = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--ids")) {
            if (!(ids_text = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (strcmp(a, "-n") == 0 || pl_cli_is_opt(a, "--n-predict")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, 0, 1 << 24, &n_gen)) return pl_cli_usage_error(cli, "bad -n '%s'", v);
        } else if (strcmp(a, "-t") == 0 || pl_cli_is_opt(a, "--threads")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, 1, 1024, &n_threads)) return pl_cli_usage_error(cli, "bad -t '%s'", v);
        } else if (strcmp(a, "-c") == 0 || pl_cli_is_opt(a, "--ctx")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, 1, 1 << 24, &n_ctx)) return pl_cli_usage_error(cli, "bad -c '%s'", v);
        } else if (pl_cli_is_opt(a, "--temp")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            char *end;
            temp = strtod(v, &end);
            if (*end || !(temp >= 0.0 && temp <= 100.0)) return pl_cli_usage_error(cli, "bad --temp '%s'", v);
        } else if (pl_cli_is_opt(a, "--seed")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_u64(v, &seed)) return pl_cli_usage_error(cli, "bad --seed '%s'", v);
        } else if (strcmp(a, "--no-bos") == 0) {
            no_bos = true;
        } else if (strcmp(a, "--print-ids") == 0) {
            print_ids = true;
        } else if (strcmp(a, "--ignore-eos") == 0) {
            ignore_eos = true;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            verbose = true;
        } else if (strcmp(a, "--no-prefault") == 0) {
            prefault = false;
        } else if (strcmp(a, "--mlock") == 0) {
            mlock = true;
        } else if (strcmp(a, "--warmup") == 0) {
            warmup = true;
        } else {
            return pl_cli_usage_error(cli, "unexpected argument '%s'", a);
        }
    }
    if (!model_path) return pl_cli_usage_error(cli, "missing -m MODEL.gguf");
    if (!prompt == !ids_text) return pl_cli_usage_error(cli, "give exactly one of -p TEXT or --ids \"...\"");
    int32_t *ids = NULL, n_ids = 0;
    if (ids_text && !parse_ids(ids_text, &ids, &n_ids)) return pl_cli_usage_error(cli, "bad --ids '%s'", ids_text);

    int rc = 1;
    char *path = NULL;
    pl_model *model = NULL;
    pl_context *lc = NULL;
    pl_tokenizer *tok = NULL;
    pl_detok *detok = NULL;
    int32_t *prompt_ids = NULL;
    pl_sampler *sampler = NULL;
    path = pl_cli_model_path(cli, model_path); /* a file, or a model in the store */
    if (!path) goto done;
    uint64_t t0 = pl_time_ns();
    pl_model_params mp = pl_model_default_params();
    mp.prefault = prefault;
    mp.mlock = mlock;
    mp.warmup = warmup;
    mp.warmup_threads = (int)n_threads;
    mp.meminfo_path = getenv("PARLEY_MEMINFO"); /* tests: a meminfo file with set figures */
    pl_cli_progress prog;
    pl_cli_progress_init(&prog, cli->cmd, verbose);
    mp.progress = pl_cli_load_progress;
    mp.progress_ud = &prog;
    pl_status st = pl_model_load(cli->ctx, path, &mp, &model);
    pl_cli_progress_end(&prog);
    if (st != PL_OK) {
        pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
        goto done;
    }
    if (verbose) pl_cli_print_load(cli->cmd, pl_model_get_load_stats(model));
    const pl_model_info *mi = pl_model_get_info(model);
    pl_context_params cp = pl_context_default_params();
    cp.n_ctx = (int32_t)n_ctx;
    cp.n_threads = (int)n_threads;
    st = pl_context_init(model, &cp, &lc);
    if (st != PL_OK) {
        pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
        goto done;
    }
    double load_ms = (double)(pl_time_ns() - t0) / 1e6;
    pl_context_memory mem = pl_context_memory_usage(lc);
    fprintf(stderr,
            "parley generate: %s (%s, %d layers, vocab %d): weights mapped %.1f MiB, KV cache %.1f MiB "
            "(%d tokens), scratch %.1f MiB\n",
            mi->name[0] ? mi->name : path, mi->arch, mi->n_layer, mi->n_vocab,
            (double)mi->weight_bytes / 1048576.0, (double)mem.kv_bytes / 1048576.0,
            cp.n_ctx ? cp.n_ctx : (mi->n_ctx_train < 4096 ? mi->n_ctx_train : 4096),
            (double)mem.scratch_bytes / 1048576.0);

    /* the tokenizer: BOS and end-of-generation ids, text in and out. Only --ids with
     * --print-ids can do without one (no BOS added, no stop token then). */
    st = pl_tokenizer_load(cli->ctx, pl_model_gguf(model), &tok);
    if (st == PL_OK) st = pl_detok_init(tok, NULL, &detok);
    if (st != PL_OK) {
        if (prompt || !print_ids) {
            pl_cli_fail(cli, "tokenizer: %s", pl_ctx_last_error(cli->ctx));
            goto done;
        }
        pl_log(cli->ctx, PL_LOG_LEVEL_WARN, "no usable tokenizer (%s): no BOS, no stop token",
               pl_ctx_last_error(cli->ctx));
        pl_tokenizer_free(tok);
        tok = NULL;
    }
    uint64_t t_req = pl_time_ns(); /* the request: tokenize, prefill, generate */
    double tokenize_ms = -1;
    if (prompt) {
        size_t n = 0, len = strlen(prompt);
        pl_encode_params ep = pl_encode_default_params();
        ep.add_bos = !no_bos;
        st = pl_tokenizer_encode(tok, NULL, prompt, len, &ep, NULL, 0, &n);
        if ((st != PL_OK && st != PL_ERR_RANGE) || n > MAX_PROMPT) {
            pl_cli_fail(cli, "tokenizing the prompt: %s", n > MAX_PROMPT ? "too long" : pl_ctx_last_error(cli->ctx));
            goto done;
        }
        ids = malloc((n + 1) * sizeof *ids);
        if (!ids || pl_tokenizer_encode(tok, NULL, prompt, len, &ep, ids, n, &n) != PL_OK) {
            pl_cli_fail(cli, "tokenizing the prompt failed");
            goto done;
        }
        n_ids = (int32_t)n;
        tokenize_ms = (double)(pl_time_ns() - t_req) / 1e6;
    }
    /* --ids: BOS when the vocabulary asks for it (or the prompt is empty) and the
     * prompt doesn't start with it, unless --no-bos. Text prompts got it from encode. */
    prompt_ids = malloc(((size_t)n_ids + 1) * sizeof *prompt_ids);
    /* the sampler chain's defaults (top_k 40, top_p 0.95, min_p 0.05) at --temp; 0 is greedy */
    pl_sampler_params sp = pl_sampler_default_params();
    sp.temperature = (float)temp;
    sp.seed = seed;
    if (pl_sampler_init(cli->ctx, &sp, mi->n_vocab, &sampler) != PL_OK) {
        pl_cli_fail(cli, "sampler: %s", pl_ctx_last_error(cli->ctx));
        goto done;
    }
    if (!prompt_ids) {
        pl_cli_fail(cli, "out of memory");
        goto done;
    }
    int32_t bos = tok ? pl_tokenizer_bos(tok) : PL_TOKEN_NULL;
    bool add_bos = tok && pl_tokenizer_add_bos(tok);
    int32_t n_prompt = 0;
    bool want_bos = !no_bos && bos >= 0 &&
                    (n_ids == 0 || (!prompt && add_bos && ids[0] != bos));
    if (want_bos) prompt_ids[n_prompt++] = bos;
    if (n_ids) memcpy(prompt_ids + n_prompt, ids, (size_t)n_ids * sizeof *ids);
    n_prompt += n_ids;
    if (n_prompt == 0) {
        pl_cli_fail(cli, "empty prompt and no BOS token to start from");
        goto done;
    }

    uint64_t t1 = pl_time_ns();
    pl_batch b = { .n_tokens = n_prompt, .tokens = prompt_ids };
    st = pl_context_decode(lc, &b);
    if (st != PL_OK) {
        pl_cli_fail(cli, "prompt: %s", pl_context_last_error(lc));
        goto done;
    }
    uint64_t t2 = pl_time_ns(), t_first = 0, sample_ns = 0;
    int32_t n_done = 0;
    bool first = true;
    for (; n_done < n_gen; n_done++) {
        const float *lg = pl_context_logits(lc, 0);
        uint64_t ts = pl_time_ns();
        int32_t id = pl_sampler_sample(sampler, lg);
        uint64_t te = pl_time_ns();
        sample_ns += te - ts;
        if (!t_first) t_first = te;
        if (id < 0) {
            pl_cli_fail(cli, "sampling: %s", pl_status_str((pl_status)id));
            goto done;
        }
        pl_sampler_accept(sampler, id);
        if (!ignore_eos && tok && pl_tokenizer_is_eog(tok, id)) break;
        if (print_ids) {
            printf(first ? "%d" : " %d", id);
        } else {
            const char *text;
            size_t len;
            if (pl_detok_push(detok, id, &text, &len) == PL_OK) fwrite(text, 1, len, stdout);
        }
        first = false;
        fflush(stdout);
        if (n_done + 1 == n_gen) { n_done++; break; }
        pl_batch nb = { .n_tokens = 1, .tokens = &id };
        st = pl_context_decode(lc, &nb);
        if (st == PL_ERR_CONTEXT_FULL) {
            n_done++;
            fprintf(stderr, "\nparley generate: context full after %d tokens\n", pl_context_kv_len(lc, 0));
            break;
        }
        if (st != PL_OK) {
            pl_cli_fail(cli, "decode: %s", pl_context_last_error(lc));
            goto done;
        }
    }
    uint64_t t3 = pl_time_ns();
    if (detok) {
        const char *text;
        size_t len;
        pl_detok_flush(detok, &text, &len);
        fwrite(text, 1, len, stdout);
    }
    if (print_ids || !first) printf("\n");
    if (verbose) {
        /* the load's warm-up ran on its own context: these counters are this request's */
        pl_cli_request rq = { .tokenize_ms = tokenize_ms, .tokenize_label = "tokenize", .prompt_tokens = n_prompt,
                              .prefill_ms = (double)(t2 - t1) / 1e6,
                              .ttft_ms = t_first ? (double)(t_first - t_req) / 1e6 : 0,
                              .gen_tokens = n_done, .gen_ms = t_first ? (double)(t3 - t_first) / 1e6 : 0,
                              .sample_ms = (double)sample_ns / 1e6, .sample_label = "sampling" };
        pl_context_perf(lc, &rq.perf);
        pl_cli_print_request(cli->cmd, &rq);
        pl_cli_print_process(cli->cmd, mem.kv_bytes);
    }
    double pp_s = (double)(t2 - t1) / 1e9, tg_s = (double)(t3 - t2) / 1e9;
    /* generated tokens after the first are the decode steps (the first came from the prompt) */
    fprintf(stderr,
            "parley generate: load %.0f ms | prompt %d tokens, %.2f tok/s | generated %d tokens, %.2f tok/s\n",
            load_ms, n_prompt, pp_s > 0 ? n_prompt / pp_s : 0.0, n_done,
            tg_s > 0 && n_done > 1 ? (n_done - 1) / tg_s : 0.0);
    rc = 0;
done:
    free(ids);
    free(prompt_ids);
    pl_sampler_free(sampler);
    pl_detok_free(detok);
    pl_tokenizer_free(tok);
    pl_context_free(lc);
    pl_model_free(model);
    pl_free(cli->ctx, path);
    return rc;
}
