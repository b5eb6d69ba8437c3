/*
 * pipeline_metrics.c - the voice pipeline's per-turn metrics: the stage
 * table, JSON, percentiles, and the played-text cut used by barge-in.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/voice.h"
#include "speech/speech_int.h"

typedef struct stage_row {
    const char *name;
    size_t      off; /* offsetof a double in pl_voice_metrics */
} stage_row;

static const stage_row stages[PL_VOICE_STAGE_COUNT] = {
    [PL_VOICE_STAGE_EOS_DELAY] = { "eos_delay_ms", offsetof(pl_voice_metrics, eos_delay_ms) },
    [PL_VOICE_STAGE_STT] = { "stt_ms", offsetof(pl_voice_metrics, stt_ms) },
    [PL_VOICE_STAGE_LLM_TTFT] = { "llm_ttft_ms", offsetof(pl_voice_metrics, llm_ttft_ms) },
    [PL_VOICE_STAGE_FIRST_SENTENCE] = { "first_sentence_ms", offsetof(pl_voice_metrics, first_sentence_ms) },
    [PL_VOICE_STAGE_TTS_FIRST_CHUNK] = { "tts_first_chunk_ms", offsetof(pl_voice_metrics, tts_first_chunk_ms) },
    [PL_VOICE_STAGE_V2V] = { "v2v_ms", offsetof(pl_voice_metrics, v2v_ms) },
    [PL_VOICE_STAGE_TTS_RTF] = { "tts_rtf", offsetof(pl_voice_metrics, tts_rtf) },
};

const char *pl_voice_stage_name(pl_voice_stage s) {
    return (unsigned)s < PL_VOICE_STAGE_COUNT ? stages[s].name : "unknown";
}

double pl_voice_stage_value(const pl_voice_metrics *m, pl_voice_stage s) {
    if ((unsigned)s >= PL_VOICE_STAGE_COUNT) return -1.0;
    double v;
    memcpy(&v, (const char *)m + stages[s].off, sizeof v);
    return v;
}

/* snprintf into buf at *len, keeping the total needed in *len. */
static void put(char *buf, size_t cap, size_t *len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *at = *len < cap ? buf + *len : NULL;
    int k = vsnprintf(at, at ? cap - *len : 0, fmt, ap);
    va_end(ap);
    if (k > 0) *len += (size_t)k;
}

/* A number, or null for an absent (negative) or non-finite value. */
static void put_num(char *buf, size_t cap, size_t *len, const char *key, double v, bool last) {
    if (v < 0 || !isfinite(v)) put(buf, cap, len, "\"%s\":null%s", key, last ? "" : ",");
    else put(buf, cap, len, "\"%s\":%.3f%s", key, v, last ? "" : ",");
}

size_t pl_voice_metrics_json(const pl_voice_metrics *m, char *buf, size_t cap) {
    size_t len = 0;
    if (cap) buf[0] = 0;
    put(buf, cap, &len, "{\"turn\":%llu,", (unsigned long long)m->turn);
    put_num(buf, cap, &len, "speech_ms", m->speech_ms, false);
    for (int s = 0; s < PL_VOICE_STAGE_COUNT; s++)
        put_num(buf, cap, &len, stages[s].name, pl_voice_stage_value(m, (pl_voice_stage)s), false);
    put_num(buf, cap, &len, "tts_ms", m->tts_ms, false);
    put_num(buf, cap, &len, "tts_audio_ms", m->tts_audio_ms, false);
    put_num(buf, cap, &len, "llm_ms", m->llm_ms, false);
    put_num(buf, cap, &len, "gen_tok_s", m->gen_tok_s, false);
    put(buf, cap, &len,
        "\"prompt_tokens\":%d,\"cached_tokens\":%d,\"generated_tokens\":%d,\"reasoning_tokens\":%d,"
        "\"sentences\":%d,\"finish\":\"%s\",\"interrupted\":%s,",
        m->prompt_tokens, m->cached_tokens, m->generated_tokens, m->reasoning_tokens, m->sentences,
        pl_finish_name(m->finish), m->interrupted ? "true" : "false");
    put_num(buf, cap, &len, "cancel_ms", m->interrupted ? m->cancel_ms : -1, false);
    put_num(buf, cap, &len, "played_ms", m->interrupted ? m->played_ms : -1, true);
    put(buf, cap, &len, "}");
    return len;
}

size_t pl_voice_summary_json(const pl_voice_summary *s, char *buf, size_t cap) {
    size_t len = 0;
    if (cap) buf[0] = 0;
    put(buf, cap, &len, "{\"turns\":%zu", s->n_turns);
    for (int k = 0; k < PL_VOICE_STAGE_COUNT; k++) {
        put(buf, cap, &len, ",\"%s\":{", stages[k].name);
        put_num(buf, cap, &len, "p50", s->n[k] ? s->p50[k] : -1, false);
        put_num(buf, cap, &len, "p90", s->n[k] ? s->p90[k] : -1, true);
        put(buf, cap, &len, "}");
    }
    put(buf, cap, &len, "}");
    return len;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double pl_voice_percentile(double *v, size_t n, double p) {
    /* absent values (< 0) to the end, then sort the present ones */
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] >= 0 && isfinite(v[i])) {
            double t = v[k];
            v[k++] = v[i];
            v[i] = t;
        }
    if (k == 0) return -1.0;
    qsort(v, k, sizeof *v, cmp_double);
    /* nearest rank: the smallest value with at least p% of the values <= it */
    double r = ceil(p / 100.0 * (double)k);
    size_t idx = r < 1 ? 0 : (size_t)r - 1;
    if (idx >= k) idx = k - 1;
    return v[idx];
}

size_t pl_voice_played_bytes(const char *text, size_t len, double fraction) {
    if (!(fraction > 0)) return 0;
    if (fraction >= 1) {
        while (len > 0 && text[len - 1] == ' ') len--;
        return len;
    }
    size_t limit = (size_t)floor(fraction * (double)len), best = 0;
    /* a word ends at i when text[i-1] is not a space and text[i] is a space or the end */
    for (size_t i = 1; i <= limit && i <= len; i++)
        if (text[i - 1] != ' ' && (i == len || text[i] == ' ')) best = i;
    return best;
}
