/*
 * transcript.c - whole-recording transcription (VAD segments -> STT) and the
 * output formats: text, json, verbose_json (OpenAI's shapes), SRT, WebVTT.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "parley/vad.h"
#include "speech/speech_int.h"

#define TAIL_MS 100          /* audio kept after a segment's end edge */
#define DEFAULT_MAX_SPEECH_MS 30000

typedef struct span { uint64_t from, start, end; } span;

typedef struct collect {
    pl_ctx  *ctx;
    span    *v;
    size_t   n, cap;
    uint64_t open_from, open_start;
    bool     open, nomem;
} collect;

static void on_vad(void *ud, const pl_vad_event *ev) {
    collect *c = ud;
    if (ev->type == PL_VAD_EVENT_SPEECH_STARTED) {
        c->open = true;
        c->open_from = ev->pad_start;
        c->open_start = ev->edge;
        return;
    }
    if (!c->open) return;
    c->open = false;
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16, bytes;
        span *p = pl_size_mul(cap, sizeof *p, &bytes) ? pl_realloc(c->ctx, c->v, bytes) : NULL;
        if (!p) {
            c->nomem = true;
            return;
        }
        c->v = p;
        c->cap = cap;
    }
    c->v[c->n++] = (span){ .from = c->open_from, .start = c->open_start, .end = ev->edge };
}

typedef struct tbuf {
    pl_ctx *ctx;
    char   *p;
    size_t  len, cap;
} tbuf;

static bool tbuf_add(tbuf *b, const char *s, size_t n) {
    size_t need;
    if (!pl_size_add(b->len, n, &need) || !pl_size_add(need, 1, &need)) return false;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            if (!pl_size_mul(cap, 2, &cap)) return false;
        char *p = pl_realloc(b->ctx, b->p, cap);
        if (!p) return false;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

/* The transcript: the struct, the segment array, the text buffer (each
 * segment's text, NUL-separated, then the joined text) and the segments' tokens. */
typedef struct transcript_impl {
    pl_transcript          pub;
    pl_transcript_segment *segs;
    char                   *strings;
    int32_t                *toks;
} transcript_impl;

void pl_transcript_free(pl_transcript *t) {
    if (!t) return;
    transcript_impl *ti = (transcript_impl *)t;
    pl_ctx *ctx = t->ctx;
    pl_free(ctx, ti->segs);
    pl_free(ctx, ti->strings);
    pl_free(ctx, ti->toks);
    pl_free(ctx, ti);
}

pl_transcribe_params pl_transcribe_default_params(void) {
    return (pl_transcribe_params){
        .use_vad = true,
        .vad = pl_vad_default_params(),
        .max_segment_s = 15.0,
    };
}

void pl_transcript_place(double c0, double c1, double *prev_end_s, double *start_s, double *end_s) {
    double a = *start_s == *start_s ? *start_s : 0.0, b = *end_s == *end_s ? *end_s : 0.0;
    if (!(c1 >= c0)) c1 = c0;
    a = fmin(fmax(a + c0, c0), c1);
    b = fmin(fmax(b + c0, c0), c1);
    if (a < *prev_end_s) a = *prev_end_s;
    if (b < a) b = a;
    *start_s = a;
    *end_s = b;
    *prev_end_s = b;
}

/* grow *p (elements of sz) to hold n */
static bool grow(pl_ctx *ctx, void **p, size_t *cap, size_t n, size_t sz) {
    if (n <= *cap) return true;
    size_t c = *cap ? *cap : 16, bytes;
    while (c < n)
        if (!pl_size_mul(c, 2, &c)) return false;
    void *q = pl_size_mul(c, sz, &bytes) ? pl_realloc(ctx, *p, bytes) : NULL;
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

/* Merge neighbouring spans while the merged one stays within max samples. */
static void merge_spans(collect *c, uint64_t max) {
    if (c->n == 0 || max == 0) return;
    size_t w = 0;
    for (size_t i = 1; i < c->n; i++) {
        if (c->v[i].end - c->v[w].from <= max) c->v[w].end = c->v[i].end;
        else c->v[++w] = c->v[i];
    }
    c->n = w + 1;
}

pl_status pl_transcribe(pl_stt *stt, const pl_transcribe_params *params, const float *pcm,
                        size_t n, pl_transcript_segment_fn on_segment, void *ud,
                        pl_transcript **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    if (!stt || (!pcm && n)) return PL_ERR_INVALID_ARG;
    pl_ctx *ctx = pl_stt_ctx(stt);
    pl_transcribe_params tp = params ? *params : pl_transcribe_default_params();
    if (!(tp.max_segment_s >= 0.0) || tp.max_segment_s > 3600.0)
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "transcribe: max_segment_s outside 0..3600");
    uint64_t t0 = pl_time_ns();
    collect c = { .ctx = ctx };
    pl_status st = PL_OK;
    uint64_t vad_ns = 0;
    if (tp.use_vad) {
        pl_vad_params vp = tp.vad;
        vp.sample_rate = PL_AUDIO_STT_RATE;
        if (vp.max_speech_ms == 0) vp.max_speech_ms = DEFAULT_MAX_SPEECH_MS;
        vp.on_event = on_vad;
        vp.ud = &c;
        pl_vad *v = NULL;
        st = pl_vad_init(ctx, &vp, &v);
        if (st != PL_OK) return st;
        uint64_t tv = pl_time_ns();
        pl_vad_feed(v, pcm, n);
        pl_vad_flush(v);
        vad_ns = pl_time_ns() - tv;
        pl_vad_free(v);
        if (c.nomem) {
            pl_free(ctx, c.v);
            return pl_ctx_err(ctx, PL_ERR_NOMEM, "transcribe: out of memory");
        }
        merge_spans(&c, (uint64_t)(tp.max_segment_s * PL_AUDIO_STT_RATE));
    } else if (n > 0) {
        c.v = pl_malloc(ctx, sizeof *c.v);
        if (!c.v) return pl_ctx_err(ctx, PL_ERR_NOMEM, "transcribe: out of memory");
        c.v[0] = (span){ .from = 0, .start = 0, .end = n };
        c.n = 1;
    }
    transcript_impl *ti = pl_calloc(ctx, 1, sizeof *ti);
    if (!ti) {
        pl_free(ctx, c.v);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "transcribe: out of memory");
    }
    ti->pub.ctx = ctx;
    /* while the buffers grow, segment i's text and tokens are at offsets offs[i] */
    typedef struct seg_off { size_t text, tok; } seg_off;
    tbuf texts = { .ctx = ctx };
    seg_off *offs = NULL;
    size_t offs_cap = 0, segs_cap = 0, n_toks = 0, toks_cap = 0;
    double stt_ms = 0.0, prev_end = 0.0;
    size_t nseg = 0;
    const uint64_t tail = (uint64_t)TAIL_MS * PL_AUDIO_STT_RATE / 1000;
    for (size_t i = 0; st == PL_OK && i < c.n; i++) {
        uint64_t from = c.v[i].from, to = c.v[i].end + tail;
        if (to > n) to = n;
        if (to <= from) continue;
        pl_stt_result r;
        st = pl_stt_transcribe(stt, pcm + from, (size_t)(to - from), &r);
        if (st != PL_OK) {
            pl_ctx_err(ctx, st, "transcribe: %s", pl_stt_last_error(stt));
            break;
        }
        stt_ms += r.feed_ms + r.finalize_ms;
        if (!r.text[0]) continue;
        const double c0 = (double)from / PL_AUDIO_STT_RATE, c1 = (double)to / PL_AUDIO_STT_RATE;
        /* the recognizer's own segments, or the whole result at the VAD's edges */
        const size_t k = r.n_segments ? r.n_segments : 1;
        for (size_t j = 0; st == PL_OK && j < k; j++) {
            const pl_stt_segment *g = r.n_segments ? &r.segments[j] : NULL;
            pl_transcript_segment seg = { .seek_s = c0 };
            const char *txt = r.text;
            if (g) {
                seg.start_s = g->start_s;
                seg.end_s = g->end_s;
                pl_transcript_place(c0, c1, &prev_end, &seg.start_s, &seg.end_s);
                seg.seek_s = c0 + g->seek_s;
                seg.n_tokens = g->tokens ? g->n_tokens : 0;
                seg.has_stats = g->has_stats;
                seg.temperature = g->temperature;
                seg.avg_logprob = g->avg_logprob;
                seg.compression_ratio = g->compression_ratio;
                seg.no_speech_prob = g->no_speech_prob;
                txt = g->text;
            } else {
                seg.start_s = (double)c.v[i].start / PL_AUDIO_STT_RATE;
                seg.end_s = (double)c.v[i].end / PL_AUDIO_STT_RATE;
                prev_end = fmax(prev_end, seg.end_s);
            }
            if (!txt || !txt[0]) continue;
            size_t need_toks;
            if (!grow(ctx, (void **)&ti->segs, &segs_cap, nseg + 1, sizeof *ti->segs) ||
                !grow(ctx, (void **)&offs, &offs_cap, nseg + 1, sizeof *offs) ||
                !pl_size_add(n_toks, seg.n_tokens, &need_toks) ||
                !grow(ctx, (void **)&ti->toks, &toks_cap, need_toks, sizeof *ti->toks)) {
                st = PL_ERR_NOMEM;
                break;
            }
            offs[nseg] = (seg_off){ .text = texts.len, .tok = n_toks };
            if (!tbuf_add(&texts, txt, strlen(txt) + 1)) {
                st = PL_ERR_NOMEM;
                break;
            }
            if (seg.n_tokens) memcpy(ti->toks + n_toks, g->tokens, seg.n_tokens * sizeof *ti->toks);
            n_toks = need_toks;
            ti->segs[nseg] = seg;
            if (on_segment) {
                ti->segs[nseg].text = texts.p + offs[nseg].text;
                ti->segs[nseg].tokens = seg.n_tokens ? ti->toks + offs[nseg].tok : NULL;
                if (on_segment(ud, &ti->segs[nseg]) != 0) {
                    st = pl_ctx_err(ctx, PL_ERR_CANCELED, "transcribe: stopped by the caller");
                    nseg++;
                    break;
                }
            }
            nseg++;
        }
    }
    /* The joined text goes after the segment strings. */
    size_t joined = texts.len;
    for (size_t i = 0; st == PL_OK && i < nseg; i++) {
        const char *s = texts.p + offs[i].text;
        if ((i && !tbuf_add(&texts, " ", 1)) || !tbuf_add(&texts, s, strlen(s))) st = PL_ERR_NOMEM;
    }
    if (st == PL_OK && !tbuf_add(&texts, "", 1)) st = PL_ERR_NOMEM;
    pl_free(ctx, c.v);
    if (st != PL_OK) {
        pl_free(ctx, offs);
        pl_free(ctx, texts.p);
        pl_transcript_free(&ti->pub);
        if (st == PL_ERR_NOMEM) pl_ctx_err(ctx, st, "transcribe: out of memory");
        return st;
    }
    for (size_t i = 0; i < nseg; i++) {
        ti->segs[i].text = texts.p + offs[i].text;
        ti->segs[i].tokens = ti->segs[i].n_tokens ? ti->toks + offs[i].tok : NULL;
    }
    pl_free(ctx, offs);
    ti->strings = texts.p;
    ti->pub.segments = ti->segs;
    ti->pub.n_segments = nseg;
    ti->pub.text = texts.p + joined;
    ti->pub.duration_s = (double)n / PL_AUDIO_STT_RATE;
    ti->pub.stt_ms = stt_ms;
    ti->pub.vad_ms = (double)vad_ns / 1e6;
    ti->pub.total_ms = (double)(pl_time_ns() - t0) / 1e6;
    *out = &ti->pub;
    return PL_OK;
}

static const char *const fmt_names[PL_TRANSCRIPT_FORMAT_COUNT] = {
    [PL_TRANSCRIPT_FORMAT_TEXT] = "text",
    [PL_TRANSCRIPT_FORMAT_JSON] = "json",
    [PL_TRANSCRIPT_FORMAT_VERBOSE_JSON] = "verbose_json",
    [PL_TRANSCRIPT_FORMAT_SRT] = "srt",
    [PL_TRANSCRIPT_FORMAT_VTT] = "vtt",
};

pl_status pl_transcript_format_parse(const char *s, pl_transcript_format *out) {
    for (int i = 0; s && i < PL_TRANSCRIPT_FORMAT_COUNT; i++) {
        if (strcmp(s, fmt_names[i]) == 0) {
            *out = (pl_transcript_format)i;
            return PL_OK;
        }
    }
    return PL_ERR_INVALID_ARG;
}

const char *pl_transcript_format_name(pl_transcript_format f) {
    return (unsigned)f < PL_TRANSCRIPT_FORMAT_COUNT ? fmt_names[f] : "unknown";
}

/* "HH:MM:SS,mmm" (SRT) or "HH:MM:SS.mmm" (VTT). */
static void stamp(char *buf, size_t cap, double s, char sep) {
    if (!(s >= 0.0)) s = 0.0;
    uint64_t ms = (uint64_t)llround(s * 1000.0);
    snprintf(buf, cap, "%02llu:%02llu:%02llu%c%03llu", (unsigned long long)(ms / 3600000),
             (unsigned long long)(ms / 60000 % 60), (unsigned long long)(ms / 1000 % 60), sep,
             (unsigned long long)(ms % 1000));
}

/* x rounded to 1/scale (floats print as 0.2, not 0.20000000298023224); non-finite as 0 */
static double round_to(double x, double scale) {
    return isfinite(x) ? (double)llround(x * scale) / scale : 0.0;
}

static pl_status render_json(const pl_transcript *t, bool verbose, const char *language,
                             char **out, size_t *len) {
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;
    if (ok && verbose) {
        ok = cJSON_AddStringToObject(o, "task", "transcribe") &&
             cJSON_AddStringToObject(o, "language", language ? language : "en") &&
             cJSON_AddNumberToObject(o, "duration", t->duration_s);
    }
    ok = ok && cJSON_AddStringToObject(o, "text", t->text);
    if (ok && verbose) {
        cJSON *a = cJSON_AddArrayToObject(o, "segments");
        ok = a != NULL;
        for (size_t i = 0; ok && i < t->n_segments; i++) {
            cJSON *g = cJSON_CreateObject();
            ok = g && cJSON_AddItemToArray(a, g);
            if (!ok) {
                cJSON_Delete(g);
                break;
            }
            const pl_transcript_segment *sg = &t->segments[i];
            ok = cJSON_AddNumberToObject(g, "id", (double)i) &&
                 cJSON_AddNumberToObject(g, "seek", (double)llround(fmax(sg->seek_s, 0.0) * 100.0)) &&
                 cJSON_AddNumberToObject(g, "start", round_to(sg->start_s, 1e3)) &&
                 cJSON_AddNumberToObject(g, "end", round_to(sg->end_s, 1e3)) &&
                 cJSON_AddStringToObject(g, "text", sg->text);
            cJSON *tk = ok ? cJSON_AddArrayToObject(g, "tokens") : NULL;
            ok = tk != NULL;
            for (size_t k = 0; ok && k < sg->n_tokens; k++) {
                cJSON *v = cJSON_CreateNumber((double)sg->tokens[k]);
                ok = v && cJSON_AddItemToArray(tk, v);
                if (!ok) cJSON_Delete(v);
            }
            if (ok && sg->has_stats)
                ok = cJSON_AddNumberToObject(g, "temperature", round_to(sg->temperature, 1e6)) &&
                     cJSON_AddNumberToObject(g, "avg_logprob", round_to(sg->avg_logprob, 1e6)) &&
                     cJSON_AddNumberToObject(g, "compression_ratio", round_to(sg->compression_ratio, 1e6)) &&
                     cJSON_AddNumberToObject(g, "no_speech_prob", round_to(sg->no_speech_prob, 1e6));
        }
    }
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s) return PL_ERR_NOMEM;
    size_t n = strlen(s);
    *out = pl_malloc(t->ctx, n + 2);
    if (*out) {
        memcpy(*out, s, n);
        (*out)[n] = '\n';
        (*out)[n + 1] = '\0';
        *len = n + 1;
    }
    cJSON_free(s);
    return *out ? PL_OK : PL_ERR_NOMEM;
}

pl_status pl_transcript_render(const pl_transcript *t, pl_transcript_format f,
                               const char *language, char **out, size_t *len) {
    if (!t || !out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    size_t dummy;
    if (!len) len = &dummy;
    *len = 0;
    if (f == PL_TRANSCRIPT_FORMAT_JSON || f == PL_TRANSCRIPT_FORMAT_VERBOSE_JSON)
        return render_json(t, f == PL_TRANSCRIPT_FORMAT_VERBOSE_JSON, language, out, len);
    tbuf b = { .ctx = t->ctx };
    bool ok = true;
    if (f == PL_TRANSCRIPT_FORMAT_TEXT) {
        ok = tbuf_add(&b, t->text, strlen(t->text)) && tbuf_add(&b, "\n", 1);
    } else if (f == PL_TRANSCRIPT_FORMAT_SRT || f == PL_TRANSCRIPT_FORMAT_VTT) {
        bool srt = f == PL_TRANSCRIPT_FORMAT_SRT;
        if (!srt) ok = tbuf_add(&b, "WEBVTT\n\n", 8);
        for (size_t i = 0; ok && i < t->n_segments; i++) {
            char a[32], z[32], line[96];
            stamp(a, sizeof a, t->segments[i].start_s, srt ? ',' : '.');
            stamp(z, sizeof z, t->segments[i].end_s, srt ? ',' : '.');
            int k = srt ? snprintf(line, sizeof line, "%zu\n%s --> %s\n", i + 1, a, z)
                        : snprintf(line, sizeof line, "%s --> %s\n", a, z);
            const char *txt = t->segments[i].text;
            ok = tbuf_add(&b, line, (size_t)k) && tbuf_add(&b, txt, strlen(txt)) &&
                 tbuf_add(&b, "\n\n", 2);
        }
        if (ok && !b.p) ok = tbuf_add(&b, "", 0);
    } else {
        return PL_ERR_INVALID_ARG;
    }
    if (!ok) {
        pl_free(t->ctx, b.p);
        return PL_ERR_NOMEM;
    }
    *out = b.p;
    *len = b.len;
    return PL_OK;
}
