/*
 * stt_pocketsphinx.c - the PocketSphinx row of the STT table (libpocketsphinx3
 * 5prealpha, Debian's pocketsphinx-en-us model).
 *
 * Batch mode (default) keeps the utterance as int16 and decodes it in one
 * ps_process_raw(full_utt = TRUE) at finalize: the whole-utterance cepstral
 * mean is known, which the en-us model was trained with ("-cmn batch" in its
 * feat.params). Partials mode decodes as audio arrives (live mean estimate)
 * and reads the running hypothesis with ps_get_hyp().
 *
 * PocketSphinx's log is a process global: creating decoders is serialized by
 * a lock here, and the log goes to /dev/null.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <pocketsphinx.h>

#include "speech/speech_int.h"

#ifndef PL_POCKETSPHINX_MODELDIR
#define PL_POCKETSPHINX_MODELDIR "/usr/share/pocketsphinx/model"
#endif

#define FRAME_RATE 100 /* the model's -frate: 10 ms frames */

/* Serializes decoder creation and destruction (global log, global cmd_ln
 * defaults inside sphinxbase). Decoding itself runs unlocked. */
static pthread_mutex_t ps_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct ps_state {
    pl_ctx            *ctx;
    const atomic_bool *cancel;
    cmd_ln_t          *config;
    ps_decoder_t      *ps;
    bool               partials, in_utt;
    int16_t           *pcm;       /* batch mode: the utterance */
    size_t             n, cap;
    char              *text;      /* last hypothesis (finalize or partial) */
    size_t             text_cap;
    pl_stt_word       *words;
    char              *word_text; /* the words' strings, NUL-separated */
    size_t             words_cap, word_text_cap;
    char               err[200];
} ps_state;

static bool is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static bool is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static void ps_free_state(void *vs) {
    ps_state *s = vs;
    if (!s) return;
    pthread_mutex_lock(&ps_lock);
    if (s->ps) ps_free(s->ps);
    if (s->config) cmd_ln_free_r(s->config);
    pthread_mutex_unlock(&ps_lock);
    pl_free(s->ctx, s->pcm);
    pl_free(s->ctx, s->text);
    pl_free(s->ctx, s->words);
    pl_free(s->ctx, s->word_text);
    pl_free(s->ctx, s);
}

static pl_status ps_create(pl_ctx *ctx, const pl_stt_params *p, const atomic_bool *cancel,
                           void **out) {
    *out = NULL;
    const char *lang = p->language ? p->language : "en";
    if (strncasecmp(lang, "en", 2) != 0 || (lang[2] && lang[2] != '-' && lang[2] != '_'))
        return pl_ctx_err(ctx, PL_ERR_UNSUPPORTED, "stt: pocketsphinx: language '%s' (the "
                          "installed model is en-us only)", lang);
    /* The model directory holds en-us/ (acoustic model), en-us.lm.bin and
     * cmudict-en-us.dict, as pocketsphinx-en-us installs them. */
    char dir[512], hmm[600], lm[600], dict[600];
    if (p->model && *p->model) snprintf(dir, sizeof dir, "%s", p->model);
    else snprintf(dir, sizeof dir, "%s/en-us", PL_POCKETSPHINX_MODELDIR);
    snprintf(hmm, sizeof hmm, "%s/en-us", dir);
    snprintf(lm, sizeof lm, "%s/en-us.lm.bin", dir);
    snprintf(dict, sizeof dict, "%s/cmudict-en-us.dict", dir);
    if (!is_dir(hmm) || !is_file(lm) || !is_file(dict))
        return pl_ctx_err(ctx, PL_ERR_NOT_FOUND, "stt: pocketsphinx: no en-us model in %s "
                          "(install pocketsphinx-en-us, or pass the directory holding en-us/, "
                          "en-us.lm.bin and cmudict-en-us.dict)", dir);
    ps_state *s = pl_calloc(ctx, 1, sizeof *s);
    if (!s) return pl_ctx_err(ctx, PL_ERR_NOMEM, "stt: pocketsphinx: out of memory");
    s->ctx = ctx;
    s->cancel = cancel;
    s->partials = p->partials;
    pthread_mutex_lock(&ps_lock);
    /* Both modes keep the second (flat lexicon) pass and the lattice best
     * path, which run at ps_end_utt(): without them live finalize drops from
     * ~15% of the utterance to ~50 ms, but jfk's WER goes 0.23 -> 0.50. */
    s->config = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", hmm, "-lm", lm, "-dict", dict,
                            "-logfn", "/dev/null", NULL);
    if (s->config) s->ps = ps_init(s->config);
    pthread_mutex_unlock(&ps_lock);
    if (!s->ps) {
        ps_free_state(s);
        return pl_ctx_err(ctx, PL_ERR_FORMAT, "stt: pocketsphinx: cannot load the model in %s", dir);
    }
    *out = s;
    return PL_OK;
}

static const char *ps_error(void *vs) { return ((ps_state *)vs)->err; }

static pl_status seterr(ps_state *s, pl_status st, const char *msg) {
    snprintf(s->err, sizeof s->err, "%s", msg);
    return st;
}

static pl_status ensure(ps_state *s, void **buf, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return PL_OK;
    size_t n = *cap ? *cap : 256, bytes;
    while (n < need)
        if (!pl_size_mul(n, 2, &n)) return seterr(s, PL_ERR_OVERFLOW, "size overflow");
    if (!pl_size_mul(n, elem, &bytes)) return seterr(s, PL_ERR_OVERFLOW, "size overflow");
    void *p = pl_realloc(s->ctx, *buf, bytes);
    if (!p) return seterr(s, PL_ERR_NOMEM, "out of memory");
    *buf = p;
    *cap = n;
    return PL_OK;
}

static void to_s16(const float *in, size_t n, int16_t *out) {
    for (size_t i = 0; i < n; i++) {
        float v = in[i] * 32768.0f;
        v = v > 32767.0f ? 32767.0f : v < -32768.0f ? -32768.0f : v;
        out[i] = (int16_t)(v >= 0 ? v + 0.5f : v - 0.5f);
    }
}

static pl_status start_utt(ps_state *s) {
    if (s->in_utt) return PL_OK;
    if (ps_start_utt(s->ps) < 0) return seterr(s, PL_ERR_INTERNAL, "ps_start_utt failed");
    s->in_utt = true;
    return PL_OK;
}

static pl_status ps_feed(void *vs, const float *pcm, size_t n) {
    ps_state *s = vs;
    if (!s->partials) {
        size_t need;
        if (!pl_size_add(s->n, n, &need)) return seterr(s, PL_ERR_OVERFLOW, "size overflow");
        pl_status st = ensure(s, (void **)&s->pcm, &s->cap, need, sizeof(int16_t));
        if (st != PL_OK) return st;
        to_s16(pcm, n, s->pcm + s->n);
        s->n = need;
        return PL_OK;
    }
    pl_status st = start_utt(s);
    if (st != PL_OK) return st;
    int16_t buf[1024];
    for (size_t i = 0; i < n;) {
        size_t k = n - i < 1024 ? n - i : 1024;
        to_s16(pcm + i, k, buf);
        if (ps_process_raw(s->ps, buf, k, FALSE, FALSE) < 0)
            return seterr(s, PL_ERR_INTERNAL, "ps_process_raw failed");
        i += k;
    }
    s->n += n;
    return PL_OK;
}

/* Copy the decoder's hypothesis into s->text ("" when none). */
static pl_status take_hyp(ps_state *s) {
    int32 score = 0;
    const char *h = ps_get_hyp(s->ps, &score);
    if (!h) h = "";
    size_t len = strlen(h);
    pl_status st = ensure(s, (void **)&s->text, &s->text_cap, len + 1, 1);
    if (st != PL_OK) return st;
    memcpy(s->text, h, len + 1);
    return PL_OK;
}

static pl_status ps_partial(void *vs, pl_stt_partial_result *out) {
    ps_state *s = vs;
    if (!s->partials) return PL_ERR_UNSUPPORTED;
    out->text = "";
    if (!s->in_utt) return PL_OK;
    pl_status st = take_hyp(s); /* the live decoder has seen everything fed */
    if (st == PL_OK) out->text = s->text;
    return st;
}

/* Fillers (<s>, </s>, <sil>, [NOISE], ...) are not words; "(2)" marks an
 * alternative pronunciation of the same word. */
static bool filler(const char *w) { return w[0] == '<' || w[0] == '[' || w[0] == '+'; }

static pl_status take_words(ps_state *s, pl_stt_result *out) {
    size_t n = 0, chars = 0;
    for (ps_seg_t *g = ps_seg_iter(s->ps); g; g = ps_seg_next(g)) {
        const char *w = ps_seg_word(g);
        if (!w || filler(w)) continue;
        n++;
        chars += strlen(w) + 1;
    }
    pl_status st = ensure(s, (void **)&s->words, &s->words_cap, n ? n : 1, sizeof(pl_stt_word));
    if (st == PL_OK) st = ensure(s, (void **)&s->word_text, &s->word_text_cap, chars + 1, 1);
    if (st != PL_OK) return st;
    size_t i = 0, off = 0;
    for (ps_seg_t *g = ps_seg_iter(s->ps); g; g = ps_seg_next(g)) {
        const char *w = ps_seg_word(g);
        if (!w || filler(w)) continue;
        if (i == n) {
            ps_seg_free(g);
            break;
        }
        size_t len = strcspn(w, "(");
        if (len > chars - off) len = chars - off;
        memcpy(s->word_text + off, w, len);
        s->word_text[off + len] = '\0';
        int sf = 0, ef = 0;
        ps_seg_frames(g, &sf, &ef);
        s->words[i] = (pl_stt_word){ .text = s->word_text + off,
                                     .start_s = (double)sf / FRAME_RATE,
                                     .end_s = (double)(ef + 1) / FRAME_RATE };
        off += len + 1;
        i++;
    }
    out->words = i ? s->words : NULL;
    out->n_words = i;
    return PL_OK;
}

static pl_status ps_finalize(void *vs, pl_stt_result *out) {
    ps_state *s = vs;
    out->text = "";
    if (!s->partials) {
        if (s->n == 0) return PL_OK;
        if (atomic_load(s->cancel)) {
            s->n = 0;
            return PL_ERR_CANCELED;
        }
        pl_status st = start_utt(s);
        if (st != PL_OK) return st;
        int rc = ps_process_raw(s->ps, s->pcm, s->n, FALSE, TRUE);
        s->n = 0;
        if (rc < 0) {
            ps_end_utt(s->ps);
            s->in_utt = false;
            return seterr(s, PL_ERR_INTERNAL, "ps_process_raw failed");
        }
    }
    if (!s->in_utt) return PL_OK;
    ps_end_utt(s->ps);
    s->in_utt = false;
    s->n = 0;
    pl_status st = take_hyp(s);
    if (st == PL_OK) st = take_words(s, out);
    if (st != PL_OK) return st;
    out->text = s->text;
    return PL_OK;
}

static void ps_reset(void *vs) {
    ps_state *s = vs;
    if (s->in_utt) ps_end_utt(s->ps);
    s->in_utt = false;
    s->n = 0;
}

const pl_stt_backend pl_stt_backend_pocketsphinx = {
    .name = "pocketsphinx",
    .description = "CMU PocketSphinx 5prealpha, en-us model (English)",
    .has_partials = true,
    .create = ps_create,
    .free = ps_free_state,
    .feed = ps_feed,
    .partial = ps_partial,
    .finalize = ps_finalize,
    .reset = ps_reset,
    .error = ps_error,
};
