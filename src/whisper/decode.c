/*
 * decode.c - Whisper's decoding over a whole recording (OpenAI's transcribe()):
 *
 *  - the log-mel of the audio plus 30 s of zeros is computed once; windows of
 *    2T frames (T = audio ctx) are encoded in turn, each starting where the
 *    previous one's last complete segment ended (seek);
 *  - prompt: [<|startofprev|> initial prompt + previous windows' text (last
 *    n_text_ctx/2 - 1 tokens)] <|startoftranscript|> [language task] [<|notimestamps|>]
 *    (language and task only for multilingual files, as whisper.cpp);
 *  - no-speech probability: softmax of the logits at <|startoftranscript|>, at
 *    the <|nospeech|> id;
 *  - per token, the logit rules: special tokens suppressed; at the first token
 *    " " and eot (suppress_blank) and, with timestamps, every text token and
 *    timestamps above 1.0 s; timestamps come in pairs, never decrease, and a
 *    segment has non-zero length; text is suppressed when the timestamps' total
 *    probability beats the best text token; optionally Whisper's non-speech
 *    symbols. Greedy at temperature 0, else one sample at that temperature;
 *  - fallback: when the zlib compression ratio of a window's text is above its
 *    threshold (repetition loops) or the average log-prob below its own, the
 *    window is decoded again at the next temperature; a window whose no-speech
 *    probability is above its threshold with a low log-prob is skipped as silence;
 *  - segments from the timestamp tokens (consecutive pairs end a segment).
 * Memory: the mel of the whole recording ([n_mels][n/160 + 3000] f32) and the
 * result; all per-token work uses the state's buffers.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <zlib.h>

#include "whisper/whisper_int.h"

pl_whisper_params pl_whisper_default_params(void) {
    return (pl_whisper_params){
        .timestamps = true,
        .suppress_blank = true,
        .temperature_inc = 0.2f,
        .compression_ratio_thold = 2.4f,
        .logprob_thold = -1.0f,
        .no_speech_thold = 0.6f,
        .seed = 1,
    };
}

pl_whisper_params pl_whisper_partial_params(size_t n_samples, int state_ctx) {
    pl_whisper_params p = pl_whisper_default_params();
    p.timestamps = false;
    p.temperature_inc = 0.0f;
    size_t T = n_samples / (2 * PL_WHISPER_HOP) + (n_samples % (2 * PL_WHISPER_HOP) != 0);
    const size_t cap_ctx = state_ctx > 0 ? (size_t)state_ctx : PL_WHISPER_N_FRAMES / 2;
    p.audio_ctx = (int)(T > cap_ctx ? cap_ctx : T ? T : 1);
    size_t cap = 8 + 6 * (n_samples / PL_WHISPER_SAMPLE_RATE);
    p.max_tokens = cap < 4096 ? (int)cap : 4096;
    return p;
}

float pl_whisper_compression_ratio(const char *text, size_t len) {
    if (!text || len == 0) return 0.0f;
    uLongf cap = compressBound((uLong)len);
    Bytef stack[4096], *buf = stack;
    Bytef *heap = NULL;
    if (cap > sizeof stack) {
        heap = pl_malloc(NULL, cap);
        if (!heap) return 0.0f;
        buf = heap;
    }
    float r = 0.0f;
    if (compress2(buf, &cap, (const Bytef *)text, (uLong)len, 9) == Z_OK && cap > 0) r = (float)len / (float)cap;
    pl_free(NULL, heap);
    return r;
}

/* ---- the result, built with offsets (the arrays grow), pointers set at the end ---- */

typedef struct seg_rec {
    double start_s, end_s, seek_s;
    size_t text_off, text_len, tok_off, n_tok;
    float  avg_logprob, no_speech_prob, temperature, compression_ratio;
} seg_rec;

typedef struct wh_res {
    pl_whisper_result   pub;
    seg_rec            *recs;
    pl_whisper_segment *segs;
    size_t              n_segs, segs_cap;
    int32_t            *toks;     /* every sampled token */
    size_t              n_toks, toks_cap;
    int32_t            *stoks;    /* segment text tokens */
    size_t              n_stoks, stoks_cap;
    char               *text;     /* segment texts, then the joined text */
    size_t              text_len, text_cap;
    char                lang[8];
    double              seek_s;   /* start of the window being decoded */
} wh_res;

void wh_result_free(pl_whisper_state *s) {
    wh_res *r = s->res;
    if (!r) return;
    pl_free(s->ctx, r->recs);
    pl_free(s->ctx, r->segs);
    pl_free(s->ctx, r->toks);
    pl_free(s->ctx, r->stoks);
    pl_free(s->ctx, r->text);
    pl_free(s->ctx, r);
    s->res = NULL;
}

/* grow *p (elements of sz) to hold n + add */
static bool grow(pl_ctx *ctx, void **p, size_t *cap, size_t n, size_t add, size_t sz) {
    size_t need;
    if (!pl_size_add(n, add, &need)) return false;
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64, bytes;
    while (c < need)
        if (!pl_size_mul(c, 2, &c)) return false;
    if (!pl_size_mul(c, sz, &bytes)) return false;
    void *q = pl_realloc(ctx, *p, bytes);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

static bool add_text(pl_ctx *ctx, wh_res *r, const char *t, size_t n) {
    if (!grow(ctx, (void **)&r->text, &r->text_cap, r->text_len, n + 1, 1)) return false;
    memcpy(r->text + r->text_len, t, n);
    r->text_len += n;
    r->text[r->text_len] = '\0';
    return true;
}

/* ---- one window's decoding ---- */

typedef struct wh_run {
    pl_whisper_state        *s;
    const pl_whisper_params *p;
    const pl_whisper_specials *sp;
    int32_t  n_vocab, n_ctx;
    int32_t  space_tok;      /* " " or -1 */
    int32_t *non_speech;     /* ids of Whisper's non-speech symbols */
    size_t   n_non_speech;
    int32_t *prompt;         /* initial prompt + previous text tokens */
    size_t   n_prompt, prompt_cap;
    int32_t *seq;            /* this window's sampled tokens */
    int      n_seq, seq_cap;
    float   *lp;             /* log-softmax scratch [n_vocab] */
    uint64_t rng;
    int      max_ts;         /* timestamps above this index are outside the window */
} wh_run;

static uint64_t rng_next(uint64_t *x) { /* splitmix64 */
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void log_softmax(const float *x, float *y, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > mx) mx = x[i];
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += x[i] == -INFINITY ? 0.0 : exp((double)(x[i] - mx));
    float lse = mx + (float)log(sum);
    for (int i = 0; i < n; i++) y[i] = x[i] - lse;
}

static void suppress(float *l, int32_t from, int32_t to) { /* [from, to) */
    for (int32_t i = from; i < to; i++) l[i] = -INFINITY;
}

/* Whisper's logit filters for the next token after seq[0..n). */
static void apply_rules(wh_run *w, float *l) {
    const pl_whisper_specials *sp = w->sp;
    const int32_t V = w->n_vocab, tb = sp->ts_begin;
    const int32_t *seq = w->seq;
    const int n = w->n_seq;
    suppress(l, sp->eot + 1, tb); /* every special but eot: sot, languages, tasks, prev, nosp, notimestamps */
    if (w->p->suppress_blank && n == 0) {
        l[sp->eot] = -INFINITY;
        if (w->space_tok >= 0) l[w->space_tok] = -INFINITY;
    }
    for (size_t i = 0; i < w->n_non_speech; i++) l[w->non_speech[i]] = -INFINITY;
    if (!w->p->timestamps) {
        suppress(l, tb, V);
        return;
    }
    suppress(l, tb + w->max_ts + 1 < V ? tb + w->max_ts + 1 : V, V);
    bool last = n >= 1 && seq[n - 1] >= tb, penult = n < 2 || seq[n - 2] >= tb;
    if (last) {
        if (penult) suppress(l, tb, V);     /* a pair just closed: text or eot next */
        else suppress(l, 0, sp->eot);       /* a lone timestamp: its pair or eot next */
    }
    for (int i = n - 1; i >= 0; i--)
        if (seq[i] >= tb) {
            int32_t bound = (last && !penult) ? seq[i] : seq[i] + 1;
            suppress(l, tb, bound < V ? bound : V);
            break;
        }
    if (n == 0) {
        suppress(l, 0, tb);                                   /* start with a timestamp */
        suppress(l, tb + 50 + 1 < V ? tb + 50 + 1 : V, V);    /* at most 1.0 s */
    }
    /* text is suppressed when the timestamps together are more likely than any text token */
    log_softmax(l, w->lp, V);
    double mx = -INFINITY, sum = 0.0;
    for (int32_t i = tb; i < V; i++)
        if (w->lp[i] > mx) mx = w->lp[i];
    if (mx > -INFINITY)
        for (int32_t i = tb; i < V; i++) sum += exp((double)w->lp[i] - mx);
    double ts_lp = mx > -INFINITY ? mx + log(sum) : -INFINITY, text_max = -INFINITY;
    for (int32_t i = 0; i < tb; i++)
        if (w->lp[i] > text_max) text_max = w->lp[i];
    if (ts_lp > text_max) suppress(l, 0, tb);
}

typedef struct win_out {
    double sum_logprob;
    int    n_sampled;
    float  no_speech;
} win_out;

static int32_t argmax(const float *l, int n) {
    int32_t b = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[b]) b = i;
    return b;
}

static pl_status decode_window(wh_run *w, int lang, float temp, win_out *o) {
    pl_whisper_state *s = w->s;
    const pl_whisper_specials *sp = w->sp;
    const pl_whisper_params *p = w->p;
    int32_t head[8];
    int nh = 0;
    memset(o, 0, sizeof *o);
    w->n_seq = 0;
    /* part 1: [prev + prompt] sot; part 2: language, task, notimestamps */
    int32_t *buf = w->prompt; /* the prompt area holds prev + tokens at [0] with room for sot */
    size_t keep = w->n_prompt, maxp = (size_t)w->n_ctx / 2 - 1;
    size_t from = keep > maxp ? keep - maxp : 0;
    int n1 = 0;
    int32_t *part1 = w->seq + w->seq_cap - (int)(keep - from) - 2; /* tail of the seq area as scratch */
    if (keep > from) {
        part1[n1++] = sp->prev;
        for (size_t i = from; i < keep; i++) part1[n1++] = buf[i];
    }
    part1[n1++] = sp->sot;
    if (sp->multilingual) {
        head[nh++] = sp->sot + 1 + lang;
        head[nh++] = p->translate ? sp->translate : sp->transcribe;
    }
    if (!p->timestamps) head[nh++] = sp->not_ts;
    const float *logits;
    pl_status st = pl_whisper_decode(s, part1, n1, 0, &logits);
    if (st != PL_OK) return st;
    log_softmax(logits, w->lp, w->n_vocab);
    o->no_speech = expf(w->lp[sp->nosp]);
    int n_past = n1;
    if (nh) {
        if ((st = pl_whisper_decode(s, head, nh, n_past, &logits)) != PL_OK) return st;
        n_past += nh;
    }
    int max_tok = p->max_tokens > 0 ? p->max_tokens : w->n_ctx / 2;
    float *l = s->logits;
    for (int i = 0; i < max_tok && n_past < w->n_ctx; i++) {
        if (p->cancel && atomic_load(p->cancel)) return wh_state_err(s, PL_ERR_CANCELED, "canceled");
        int32_t tok;
        if (p->greedy_raw) {
            tok = argmax(l, w->n_vocab);
            log_softmax(l, w->lp, w->n_vocab);
        } else {
            apply_rules(w, l);
            log_softmax(l, w->lp, w->n_vocab);
            if (temp <= 0.0f) {
                tok = argmax(l, w->n_vocab);
            } else {
                double sum = 0.0, mx = w->lp[argmax(w->lp, w->n_vocab)];
                for (int32_t k = 0; k < w->n_vocab; k++) sum += exp(((double)w->lp[k] - mx) / temp);
                double u = (double)(rng_next(&w->rng) >> 11) / 9007199254740992.0 * sum, c = 0.0;
                tok = w->n_vocab - 1;
                for (int32_t k = 0; k < w->n_vocab; k++) {
                    c += exp(((double)w->lp[k] - mx) / temp);
                    if (c > u) {
                        tok = k;
                        break;
                    }
                }
            }
        }
        o->sum_logprob += w->lp[tok];
        o->n_sampled++;
        if (tok == sp->eot) break;
        w->seq[w->n_seq++] = tok;
        if ((st = pl_whisper_decode(s, &tok, 1, n_past, &logits)) != PL_OK) return st;
        n_past++;
    }
    return PL_OK;
}

/* ---- segments of a window ---- */

static bool add_segment(wh_run *w, wh_res *r, double t0, double t1, const int32_t *tok, int n, const win_out *o,
                        float temp, float cr) {
    pl_ctx *ctx = w->s->ctx;
    if (!grow(ctx, (void **)&r->recs, &r->segs_cap, r->n_segs, 1, sizeof *r->recs)) return false;
    seg_rec *g = &r->recs[r->n_segs];
    *g = (seg_rec){ .start_s = t0, .end_s = t1 > t0 ? t1 : t0, .seek_s = r->seek_s, .text_off = r->text_len, .tok_off = r->n_stoks,
                    .avg_logprob = o->n_sampled ? (float)(o->sum_logprob / o->n_sampled) : 0.0f,
                    .no_speech_prob = o->no_speech, .temperature = temp, .compression_ratio = cr };
    for (int i = 0; i < n; i++) {
        if (tok[i] >= w->sp->eot) continue;
        size_t len;
        const char *t = pl_whisper_token_text(w->s->m, tok[i], &len);
        if (!add_text(ctx, r, t, len)) return false;
        if (!grow(ctx, (void **)&r->stoks, &r->stoks_cap, r->n_stoks, 1, sizeof *r->stoks)) return false;
        r->stoks[r->n_stoks++] = tok[i];
    }
    g->text_len = r->text_len - g->text_off;
    g->n_tok = r->n_stoks - g->tok_off;
    if (g->text_len == 0) return true; /* nothing said: no segment */
    if (!add_text(ctx, r, "", 0)) return false; /* NUL between segment texts */
    r->text_len++;
    r->n_segs++;
    return true;
}

/* Segments of seq at window offset t_off (seconds); returns the frames consumed. */
static bool window_segments(wh_run *w, wh_res *r, double t_off, size_t seg_frames, const win_out *o, float temp,
                            float cr, size_t *advance) {
    const int32_t tb = w->sp->ts_begin, *seq = w->seq;
    const int n = w->n_seq;
    *advance = seg_frames;
    if (!w->p->timestamps) {
        return add_segment(w, r, t_off, t_off + (double)seg_frames * 0.01, seq, n, o, temp, cr);
    }
    bool single_end = n >= 2 && seq[n - 1] >= tb && seq[n - 2] < tb;
    int last_slice = 0;
    bool any = false;
    for (int i = 1; i < n; i++) {
        if (seq[i] >= tb && seq[i - 1] >= tb) { /* a pair: the segment [last_slice, i) ends */
            const int32_t *sl = seq + last_slice;
            int len = i - last_slice;
            double a = (sl[0] - tb) * PL_WHISPER_TS_STEP, b = (sl[len - 1] - tb) * PL_WHISPER_TS_STEP;
            if (!add_segment(w, r, t_off + a, t_off + b, sl, len, o, temp, cr)) return false;
            last_slice = i;
            any = true;
        }
    }
    if (any) {
        if (single_end) {
            const int32_t *sl = seq + last_slice;
            int len = n - last_slice;
            double a = (sl[0] - tb) * PL_WHISPER_TS_STEP, b = (sl[len - 1] - tb) * PL_WHISPER_TS_STEP;
            if (!add_segment(w, r, t_off + a, t_off + b, sl, len, o, temp, cr)) return false;
        } else {
            /* the text after the last pair is unfinished: the next window starts at that pair */
            size_t frames = (size_t)(seq[last_slice - 1] - tb) * 2;
            if (frames > 0 && frames < seg_frames) *advance = frames;
        }
        return true;
    }
    double dur = (double)seg_frames * 0.01;
    for (int i = n - 1; i >= 0; i--)
        if (seq[i] >= tb) {
            if (seq[i] != tb) dur = (seq[i] - tb) * PL_WHISPER_TS_STEP;
            break;
        }
    double a = n > 0 && seq[0] >= tb ? (seq[0] - tb) * PL_WHISPER_TS_STEP : 0.0;
    return add_segment(w, r, t_off + a, t_off + dur, seq, n, o, temp, cr);
}

/* Whisper's non-speech symbols: single-token spellings (with and without a
 * leading space) are suppressed; for the music signs, their first token. */
static pl_status non_speech_ids(wh_run *w) {
    static const char *const sym[] = {
        "\"", "#", "(", ")", "*", "+", "/", ":", ";", "<", "=", ">", "@", "[", "\\", "]", "^", "_", "`", "{", "|",
        "}", "~", "\xe3\x80\x8c", "\xe3\x80\x8d", "\xe3\x80\x8e", "\xe3\x80\x8f", "<<", ">>", "<<<", ">>>", "--",
        "---", "-(", "-[", "('", "(\"", "((", "))", "(((", ")))", "[[", "]]", "{{", "}}", "\xe2\x99\xaa\xe2\x99\xaa",
        "\xe2\x99\xaa\xe2\x99\xaa\xe2\x99\xaa",
        /* the music signs (first token only) */
        "\xe2\x99\xa9", "\xe2\x99\xaa", "\xe2\x99\xab", "\xe2\x99\xac", "\xe2\x99\xad", "\xe2\x99\xae",
        "\xe2\x99\xaf",
    };
    const size_t n_sym = sizeof sym / sizeof sym[0], first_music = n_sym - 7;
    size_t cap = 2 * n_sym + 2;
    w->non_speech = pl_malloc(w->s->ctx, cap * sizeof *w->non_speech);
    if (!w->non_speech) return PL_ERR_NOMEM;
    for (size_t i = 0; i < n_sym + 1; i++) {
        for (int sp = 0; sp < 2; sp++) {
            char txt[32];
            snprintf(txt, sizeof txt, "%s%s", sp ? " " : "", i < n_sym ? sym[i] : "-");
            int32_t ids[16];
            size_t n;
            if (pl_whisper_tokenize(w->s->m, txt, ids, 16, &n) != PL_OK || n == 0) continue;
            bool single = n == 1, first = i >= first_music || (i == n_sym && sp);
            if ((single || first) && w->n_non_speech < cap) w->non_speech[w->n_non_speech++] = ids[0];
        }
    }
    /* " '" as well (the first token) */
    int32_t ids[4];
    size_t n;
    if (pl_whisper_tokenize(w->s->m, " '", ids, 4, &n) == PL_OK && n >= 1 && w->n_non_speech < cap)
        w->non_speech[w->n_non_speech++] = ids[0];
    return PL_OK;
}

/* ---- the whole recording ---- */

static int detect_language(wh_run *w) {
    const pl_whisper_specials *sp = w->sp;
    const float *logits;
    int32_t sot = sp->sot;
    if (pl_whisper_decode(w->s, &sot, 1, 0, &logits) != PL_OK) return 0;
    int best = 0;
    for (int i = 1; i < sp->n_languages; i++)
        if (logits[sp->sot + 1 + i] > logits[sp->sot + 1 + best]) best = i;
    return best;
}

static void run_free(wh_run *w) {
    pl_ctx *ctx = w->s->ctx;
    pl_free(ctx, w->non_speech);
    pl_free(ctx, w->prompt);
    pl_free(ctx, w->seq);
    pl_free(ctx, w->lp);
}

static pl_status finish(pl_whisper_state *s, wh_res *r) {
    /* the joined text (one growth first: the copies read from the same buffer), then the pointers */
    size_t need = 1;
    for (size_t i = 0; i < r->n_segs; i++) need += r->recs[i].text_len;
    if (!grow(s->ctx, (void **)&r->text, &r->text_cap, r->text_len, need, 1)) return PL_ERR_NOMEM;
    size_t joined = r->text_len;
    bool first = true;
    for (size_t i = 0; i < r->n_segs; i++) {
        size_t off = r->recs[i].text_off, len = r->recs[i].text_len;
        while (first && len && r->text[off] == ' ') {
            off++;
            len--;
        }
        memcpy(r->text + r->text_len, r->text + off, len);
        r->text_len += len;
        if (len) first = false;
    }
    r->text[r->text_len] = '\0';
    if (r->n_segs) {
        r->segs = pl_calloc(s->ctx, r->n_segs, sizeof *r->segs);
        if (!r->segs) return PL_ERR_NOMEM;
    }
    for (size_t i = 0; i < r->n_segs; i++) {
        const seg_rec *g = &r->recs[i];
        r->segs[i] = (pl_whisper_segment){ .start_s = g->start_s, .end_s = g->end_s, .seek_s = g->seek_s, .text = r->text + g->text_off,
                                           .tokens = r->stoks + g->tok_off, .n_tokens = g->n_tok,
                                           .avg_logprob = g->avg_logprob, .no_speech_prob = g->no_speech_prob,
                                           .temperature = g->temperature, .compression_ratio = g->compression_ratio };
    }
    r->pub.segments = r->segs;
    r->pub.n_segments = r->n_segs;
    r->pub.text = r->text + joined;
    r->pub.tokens = r->toks;
    r->pub.n_tokens = r->n_toks;
    r->pub.language = r->lang;
    return PL_OK;
}

static pl_status full_run(pl_whisper_state *s, const pl_whisper_params *params, const float *pcm, size_t n,
                          const pl_whisper_result **out) {
    const pl_whisper_model *m = s->m;
    const pl_whisper_params p = params ? *params : pl_whisper_default_params();
    const pl_whisper_specials *sp = &m->sp;
    int lang = 0;
    if (p.language && *p.language && strcmp(p.language, "auto") != 0) {
        char code[8];
        snprintf(code, sizeof code, "%.*s", (int)strcspn(p.language, "-_"), p.language);
        lang = pl_whisper_lang_index(code);
        if (lang < 0 || lang >= sp->n_languages || (!sp->multilingual && lang != 0))
            return wh_state_err(s, PL_ERR_UNSUPPORTED, "language '%s' is not in this model%s", p.language,
                                sp->multilingual ? "" : " (English-only)");
    } else if (!sp->multilingual) {
        lang = 0;
    } else {
        lang = -1; /* detect */
    }
    if (p.translate && !sp->multilingual)
        return wh_state_err(s, PL_ERR_UNSUPPORTED, "translate needs a multilingual model");
    wh_res *r = pl_calloc(s->ctx, 1, sizeof *r);
    if (!r) return wh_state_err(s, PL_ERR_NOMEM, "out of memory");
    s->res = r;
    wh_run w = { .s = s, .p = &p, .sp = sp, .n_vocab = m->hp.n_vocab, .n_ctx = m->hp.n_text_ctx,
                 .rng = p.seed, .max_ts = s->T };
    const int C = w.n_ctx;
    w.seq_cap = 2 * C + 8;
    w.seq = pl_malloc(s->ctx, (size_t)w.seq_cap * sizeof *w.seq);
    w.lp = pl_malloc(s->ctx, (size_t)w.n_vocab * sizeof *w.lp);
    pl_status st = PL_OK;
    if (!w.seq || !w.lp) st = PL_ERR_NOMEM;
    if (st == PL_OK && !p.greedy_raw) {
        int32_t ids[4];
        size_t k;
        w.space_tok = pl_whisper_tokenize(m, " ", ids, 4, &k) == PL_OK && k == 1 ? ids[0] : -1;
        if (p.suppress_non_speech) st = non_speech_ids(&w);
    }
    if (st == PL_OK && p.initial_prompt && *p.initial_prompt) {
        /* Whisper encodes " " + the prompt (a word after <|startofprev|> starts with a space) */
        size_t k = 0, len = strlen(p.initial_prompt);
        char *txt = pl_malloc(s->ctx, len + 2);
        if (!txt) {
            st = PL_ERR_NOMEM;
        } else {
            txt[0] = ' ';
            memcpy(txt + 1, p.initial_prompt, len + 1);
            pl_whisper_tokenize(m, txt, NULL, 0, &k);
            if (!grow(s->ctx, (void **)&w.prompt, &w.prompt_cap, 0, k + 1, sizeof *w.prompt)) st = PL_ERR_NOMEM;
            else if (pl_whisper_tokenize(m, txt, w.prompt, w.prompt_cap, &k) == PL_OK) w.n_prompt = k;
            pl_free(s->ctx, txt);
        }
    }
    /* the mel of the whole recording + 30 s of padding */
    const size_t win = 2 * (size_t)s->T, pad = (size_t)PL_WHISPER_CHUNK_S * PL_WHISPER_SAMPLE_RATE;
    const size_t content = pl_whisper_mel_frames(n), total = content + win;
    const int NM = m->hp.n_mels;
    float *mel = NULL;
    uint64_t t0 = pl_time_ns();
    if (st == PL_OK) {
        size_t cells;
        if (!pl_size_mul(total, (size_t)NM, &cells) || !(mel = pl_malloc(s->ctx, cells * sizeof(float)))) {
            st = PL_ERR_NOMEM;
        } else {
            st = pl_whisper_log_mel(s->ctx, m->filters, NM, pcm, n, pad, total, mel);
        }
    }
    r->pub.t.mel_ms = (double)(pl_time_ns() - t0) / 1e6;
    if (st != PL_OK) {
        pl_free(s->ctx, mel);
        run_free(&w);
        return wh_state_err(s, st, "%s", st == PL_ERR_NOMEM ? "out of memory" : "mel failed");
    }
    size_t seek = 0;
    while (st == PL_OK && seek < content) {
        size_t seg_frames = content - seek < win ? content - seek : win;
        if (seg_frames < 10 && seek > 0) break; /* under 0.1 s left */
        for (int b = 0; b < NM; b++) memcpy(s->mel + (size_t)b * win, mel + (size_t)b * total + seek, win * sizeof(float));
        uint64_t te = pl_time_ns();
        s->encoded = false;
        pl_whisper_encode(s);
        r->pub.t.encode_ms += (double)(pl_time_ns() - te) / 1e6;
        r->pub.t.n_windows++;
        uint64_t td = pl_time_ns();
        if (lang < 0) lang = detect_language(&w);
        snprintf(r->lang, sizeof r->lang, "%s", pl_whisper_lang_code(lang));
        win_out o = { 0 };
        float temp = 0.0f, cr = 0.0f;
        for (;;) {
            st = decode_window(&w, lang, temp, &o);
            if (st != PL_OK) break;
            r->pub.t.n_decoded += o.n_sampled;
            /* text of the window for the compression ratio */
            size_t mark = r->text_len;
            for (int i = 0; i < w.n_seq; i++)
                if (w.seq[i] < sp->eot) {
                    size_t len;
                    const char *t = pl_whisper_token_text(m, w.seq[i], &len);
                    if (!add_text(s->ctx, r, t, len)) st = PL_ERR_NOMEM;
                }
            cr = pl_whisper_compression_ratio(r->text ? r->text + mark : "", r->text_len - mark);
            r->text_len = mark;
            if (st != PL_OK || p.greedy_raw) break;
            float avg = o.n_sampled ? (float)(o.sum_logprob / o.n_sampled) : 0.0f;
            bool fallback = cr > p.compression_ratio_thold || avg < p.logprob_thold;
            if (o.no_speech > p.no_speech_thold && avg < p.logprob_thold) fallback = false; /* silence */
            if (!fallback || p.temperature_inc <= 0.0f || temp + p.temperature_inc > 1.0f + 1e-6f) break;
            temp += p.temperature_inc;
            r->pub.t.n_fallbacks++;
        }
        r->pub.t.decode_ms += (double)(pl_time_ns() - td) / 1e6;
        if (st != PL_OK) break;
        float avg = o.n_sampled ? (float)(o.sum_logprob / o.n_sampled) : 0.0f;
        /* every sampled token, for callers and tests */
        if (!grow(s->ctx, (void **)&r->toks, &r->toks_cap, r->n_toks, (size_t)w.n_seq, sizeof *r->toks)) {
            st = PL_ERR_NOMEM;
            break;
        }
        memcpy(r->toks + r->n_toks, w.seq, (size_t)w.n_seq * sizeof *w.seq);
        r->n_toks += (size_t)w.n_seq;
        if (o.no_speech > p.no_speech_thold && avg < p.logprob_thold && !p.greedy_raw) {
            seek += seg_frames; /* silence */
            continue;
        }
        size_t adv;
        r->seek_s = (double)seek * 0.01;
        if (!window_segments(&w, r, (double)seek * 0.01, seg_frames, &o, temp, cr, &adv)) {
            st = PL_ERR_NOMEM;
            break;
        }
        /* the window's text conditions the next one (not after a high-temperature fallback) */
        if (temp <= 0.5f) {
            if (!grow(s->ctx, (void **)&w.prompt, &w.prompt_cap, w.n_prompt, (size_t)w.n_seq, sizeof *w.prompt)) {
                st = PL_ERR_NOMEM;
                break;
            }
            for (int i = 0; i < w.n_seq; i++)
                if (w.seq[i] < sp->eot) w.prompt[w.n_prompt++] = w.seq[i];
        }
        seek += adv ? adv : seg_frames;
    }
    pl_free(s->ctx, mel);
    run_free(&w);
    if (st == PL_OK && !r->lang[0]) snprintf(r->lang, sizeof r->lang, "%s", pl_whisper_lang_code(lang < 0 ? 0 : lang));
    if (st == PL_OK) st = finish(s, r);
    if (st != PL_OK) {
        if (!s->err[0]) wh_state_err(s, st, "%s", pl_status_str(st));
        return st;
    }
    *out = &r->pub;
    return PL_OK;
}

pl_status pl_whisper_full(pl_whisper_state *s, const pl_whisper_params *params, const float *pcm, size_t n,
                          const pl_whisper_result **out) {
    if (!s || (!pcm && n) || !out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    s->err[0] = '\0';
    wh_result_free(s);
    const int actx = params ? params->audio_ctx : 0;
    if (actx < 0 || actx > s->T_cap)
        return wh_state_err(s, PL_ERR_RANGE, "audio_ctx %d outside 0..%d (the state's)", actx, s->T_cap);
    /* a smaller context for this call only: the buffers are laid out by s->T, and
     * are big enough for any T <= T_cap */
    s->T = actx ? actx : s->T_cap;
    pl_status st = full_run(s, params, pcm, n, out);
    if (s->T != s->T_cap) {
        s->T = s->T_cap;
        s->encoded = false; /* the cross K/V were laid out for the smaller T */
    }
    return st;
}
