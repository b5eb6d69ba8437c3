/*
 * voice_cli.c - shared by `parley voice` and `parley bench-voice`: options,
 * loading, the word-only picker for random-weight fixtures, pushing a file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "voice_cli.h"

void voice_opts_defaults(voice_opts *o) {
    memset(o, 0, sizeof *o);
    o->stt = "pocketsphinx";
    o->tts = "espeak";
    o->max_tokens = 256;
    o->n_ctx = 4096;
    o->silence_ms = 500;
    o->prefix_pad_ms = 300;
    o->runs = 3;
    o->warmup = 1;
    o->speed = 1.0f;
}

int voice_opt(pl_cli *cli, int argc, char **argv, int *i, voice_opts *o) {
    const char *a = argv[*i], *v;
    const char **s = NULL;
    int64_t *num = NULL, lo = 0, hi = 0;
    if (strcmp(a, "-m") == 0 || pl_cli_is_opt(a, "--model")) s = &o->model;
    else if (pl_cli_is_opt(a, "--in")) s = &o->in;
    else if (pl_cli_is_opt(a, "--stt")) s = &o->stt;
    else if (pl_cli_is_opt(a, "--tts")) s = &o->tts;
    else if (pl_cli_is_opt(a, "--voice")) s = &o->voice;
    else if (pl_cli_is_opt(a, "--system")) s = &o->system;
    else if (pl_cli_is_opt(a, "--chat-template")) s = &o->tmpl;
    else if (strcmp(a, "-n") == 0 || pl_cli_is_opt(a, "--max-tokens")) num = &o->max_tokens, lo = 1, hi = 1 << 20;
    else if (strcmp(a, "-c") == 0 || pl_cli_is_opt(a, "--ctx")) num = &o->n_ctx, lo = 64, hi = 1 << 20;
    else if (strcmp(a, "-t") == 0 || pl_cli_is_opt(a, "--threads")) num = &o->threads, lo = 0, hi = 1024;
    else if (pl_cli_is_opt(a, "--silence-ms")) num = &o->silence_ms, lo = 100, hi = 5000;
    else if (strcmp(a, "--show-thoughts") == 0) o->show_thoughts = true;
    else if (strcmp(a, "--json") == 0) o->json = true;
    else if (strcmp(a, "--realtime") == 0) o->realtime = true;
    else if (strcmp(a, "--fixture-words") == 0) o->fixture_words = true;
    else if (strcmp(a, "--no-think") == 0) o->no_think = true;
    else if (pl_cli_is_opt(a, "--speed")) {
        if (!(v = pl_cli_opt_value(cli, argc, argv, i))) return -1;
        char *end;
        double d = strtod(v, &end);
        if (*end || !(d >= 0.25 && d <= 4.0)) {
            pl_cli_usage_error(cli, "bad --speed '%s' (0.25..4)", v);
            return -1;
        }
        o->speed = (float)d;
    } else return 0;
    if (s && !(*s = pl_cli_opt_value(cli, argc, argv, i))) return -1;
    if (num) {
        if (!(v = pl_cli_opt_value(cli, argc, argv, i))) return -1;
        if (!pl_cli_parse_i64(v, lo, hi, num)) {
            pl_cli_usage_error(cli, "bad value '%s' for %s (%lld..%lld)", v, a, (long long)lo, (long long)hi);
            return -1;
        }
    }
    return 1;
}

/* ---- the word-only picker ---- */

static int32_t single_byte_token(const pl_tokenizer *tok, char c) {
    int32_t n = pl_tokenizer_n_vocab(tok);
    char buf[8];
    for (int32_t id = 0; id < n; id++) {
        if (pl_tokenizer_token_type(tok, id) != PL_TOKEN_TYPE_NORMAL &&
            pl_tokenizer_token_type(tok, id) != PL_TOKEN_TYPE_BYTE)
            continue;
        size_t k = pl_tokenizer_piece(tok, id, false, buf, sizeof buf);
        if (k == 1 && buf[0] == c) return id;
    }
    return -1;
}

static void picker_init(word_picker *p, const pl_tokenizer *tok) {
    memset(p, 0, sizeof *p);
    p->ok = true;
    for (int i = 0; i < 26 && p->ok; i++) p->ok = (p->letters[i] = single_byte_token(tok, (char)('a' + i))) >= 0;
    if (p->ok) p->ok = (p->space = single_byte_token(tok, ' ')) >= 0 && (p->stop = single_byte_token(tok, '.')) >= 0;
}

static int32_t best_letter(const word_picker *p, const float *logits) {
    int32_t best = p->letters[0];
    for (int i = 1; i < 26; i++)
        if (logits[p->letters[i]] > logits[best]) best = p->letters[i];
    return best;
}

static int32_t word_pick(void *ud, const float *logits, int32_t n_vocab) {
    (void)n_vocab;
    word_picker *p = ud;
    int32_t id;
    if (p->since_stop) { /* ". " */
        p->since_stop = 0;
        id = p->space;
    } else if (p->word_len == 0) {
        id = best_letter(p, logits);
    } else if (p->word_len >= 2 && p->words >= 2 && (p->words >= 4 || logits[p->stop] > logits[p->space])) {
        id = p->stop;
    } else if (p->word_len >= 5 || (p->word_len >= 2 && logits[p->space] > logits[best_letter(p, logits)])) {
        id = p->space;
    } else {
        id = best_letter(p, logits);
    }
    if (id == p->stop) {
        p->words = p->word_len = 0;
        p->since_stop = 1;
    } else if (id == p->space) {
        p->words++;
        p->word_len = 0;
    } else {
        p->word_len++;
    }
    return id;
}

/* ---- loading ---- */

bool voice_rig_open(pl_cli *cli, const voice_opts *o, voice_rig *r) {
    memset(r, 0, sizeof *r);
    if (!(r->path = pl_cli_model_path(cli, o->model))) return false;
    pl_model_params mp = pl_model_default_params();
    if (pl_model_load(cli->ctx, r->path, &mp, &r->model) != PL_OK) goto fail;
    pl_engine_params ep = pl_engine_default_params();
    ep.template_name = o->tmpl;
    if (pl_engine_init(cli->ctx, r->model, &ep, &r->engine) != PL_OK) goto fail;
    pl_session_params sp = pl_session_default_params();
    int32_t train = pl_model_get_info(r->model)->n_ctx_train;
    int32_t want = o->n_ctx > 0 ? (int32_t)o->n_ctx : (train > 0 ? train : 4096); /* 0: the trained length */
    sp.n_ctx = want < train || train <= 0 ? want : train;
    sp.n_threads = (int)o->threads;
    sp.sampling.max_tokens = (int32_t)o->max_tokens;
    if (sp.sampling.max_tokens > sp.n_ctx / 2) sp.sampling.max_tokens = sp.n_ctx / 2;
    sp.enable_thinking = !o->no_think;
    if (o->cfg) {
        const pl_config_llm *L = &o->cfg->llm;
        sp.sampling.temperature = (float)L->temperature;
        sp.sampling.top_k = (int32_t)L->top_k;
        sp.sampling.top_p = (float)L->top_p;
        sp.sampling.min_p = (float)L->min_p;
        sp.sampling.repeat_penalty = (float)L->repeat_penalty;
        sp.n_batch = (int32_t)L->n_batch;
        sp.history_budget = (int32_t)L->history_budget;
        if (pl_think_mode_parse(L->reasoning, &sp.reasoning) != PL_OK) sp.reasoning = PL_THINK_MODE_SEPARATE;
    }
    if (o->fixture_words) {
        picker_init(&r->picker, pl_engine_tokenizer(r->engine));
        if (!r->picker.ok) {
            pl_cli_fail(cli, "--fixture-words: the vocabulary lacks single-byte tokens for a-z, ' ' and '.'");
            voice_rig_close(cli, r);
            return false;
        }
        sp.pick = word_pick;
        sp.pick_ud = &r->picker;
    }
    if (pl_session_init(cli->ctx, r->engine, &sp, &r->session) != PL_OK) goto fail;
    if (o->system && pl_conv_set_system(pl_session_conv(r->session), o->system) != PL_OK) goto fail;
    pl_stt_params stp = pl_stt_default_params();
    stp.backend = o->stt;
    stp.model = o->stt_model;
    if (pl_stt_init(cli->ctx, &stp, &r->stt) != PL_OK) goto fail;
    pl_tts_params tp = pl_tts_default_params();
    tp.backend = o->tts;
    tp.voice = o->voice;
    tp.speed = o->speed;
    if (pl_tts_init(cli->ctx, &tp, &r->tts) != PL_OK) goto fail;
    return true;
fail:
    pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
    voice_rig_close(cli, r);
    return false;
}

void voice_rig_close(pl_cli *cli, voice_rig *r) {
    pl_tts_free(r->tts);
    pl_stt_free(r->stt);
    pl_session_free(r->session);
    pl_engine_free(r->engine);
    pl_model_free(r->model);
    pl_free(cli->ctx, r->path);
    memset(r, 0, sizeof *r);
}

bool voice_run_audio(pl_voice *v, const pl_audio *a, bool realtime, int64_t silence_ms) {
    const size_t frame = PL_AUDIO_STT_RATE / 50; /* 20 ms */
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (size_t o = 0; o < a->n_frames; o += frame) {
        size_t k = a->n_frames - o < frame ? a->n_frames - o : frame;
        if (pl_voice_push(v, a->samples + o, k) != PL_OK) return false;
        if (realtime) {
            pl_timespec_add_ms(&next, 20);
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        }
    }
    /* a recording that stops right after the speech: trailing silence lets
     * the VAD end the turn as it would live, instead of a forced stop */
    static const float zeros[PL_AUDIO_STT_RATE / 50];
    for (int64_t ms = 0; ms < silence_ms + 300; ms += 20)
        if (pl_voice_push(v, zeros, frame) != PL_OK) return false;
    if (pl_voice_flush(v) != PL_OK) return false;
    return pl_voice_wait_idle(v, -1);
}

void voice_json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}
