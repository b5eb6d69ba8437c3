/*
 * tts_espeak.c - the eSpeak NG row of the TTS table.
 *
 * eSpeak NG keeps everything (voice, parameters, the synth callback, its
 * buffers) in process globals. So: one lock for every use, the library is
 * initialized by the first pl_tts and kept for the life of the process (never
 * espeak_ng_Terminate(): in 1.51 it can hang forever joining its internal
 * thread), and each synthesis re-applies its own voice and parameters under
 * the lock before it starts. The per-call user_data pointer carries the sink, so
 * concurrent pl_tts objects never see each other's audio.
 *
 * Synchronous mode: espeak_ng_Synthesize() runs on the caller's thread and
 * calls the synth callback per buffer of audio; returning 1 from it
 * aborts, which is how cancel takes effect within one buffer.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <espeak-ng/espeak_ng.h>
#include <espeak-ng/speak_lib.h>

#include "speech/speech_int.h"

#define BUFFER_MS 20      /* asked for; eSpeak NG 1.51 hands 1081 samples (49 ms) per
                           * callback regardless: the cancel granularity */
#define DEFAULT_VOICE "en-us"
#define BASE_WPM 175.0f   /* eSpeak's default rate */

static pthread_mutex_t es_lock = PTHREAD_MUTEX_INITIALIZER;
static bool es_ready;     /* guarded by es_lock */
static int es_rate;       /* native sample rate, set at first init */

typedef struct es_state {
    pl_ctx *ctx;
    char    voice[64];
    int     wpm, pitch;   /* espeakRATE, espeakPITCH (0..100) */
    char    err[200];
} es_state;

typedef struct es_call {
    pl_tts_sink_fn sink;
    void          *ud;
    bool           stopped;
} es_call;

static void status_text(espeak_ng_STATUS st, char *buf, size_t cap) {
    espeak_ng_GetStatusCodeMessage(st, buf, cap);
}

/* The global synth callback: find this call's sink through user_data. */
static int es_callback(short *wav, int n, espeak_EVENT *events) {
    es_call *c = events ? events->user_data : NULL;
    if (!c || c->stopped) return 1;
    if (wav && n > 0 && c->sink(c->ud, (const int16_t *)wav, (size_t)n) != 0) {
        c->stopped = true;
        return 1;
    }
    return 0;
}

/* Under es_lock: initialize once. */
static espeak_ng_STATUS es_ref(void) {
    if (es_ready) return ENS_OK;
    espeak_ng_InitializePath(NULL);
    espeak_ng_ERROR_CONTEXT ectx = NULL;
    espeak_ng_STATUS st = espeak_ng_Initialize(&ectx);
    if (ectx) espeak_ng_ClearErrorContext(&ectx);
    if (st != ENS_OK) return st;
    st = espeak_ng_InitializeOutput(ENOUTPUT_MODE_SYNCHRONOUS, BUFFER_MS, NULL);
    if (st != ENS_OK) return st;
    espeak_SetSynthCallback(es_callback);
    es_rate = espeak_ng_GetSampleRate();
    es_ready = true;
    return ENS_OK;
}

static int to_wpm(float speed) {
    float w = BASE_WPM * speed;
    return w < 80.0f ? 80 : w > 450.0f ? 450 : (int)(w + 0.5f);
}

static int to_pitch(float pitch) {
    float p = 50.0f * pitch;
    return p < 0.0f ? 0 : p > 100.0f ? 100 : (int)(p + 0.5f);
}

/* Under es_lock. espeak_ng_SetVoiceByName() takes a voice file ("gmw/en"), a
 * voice name ("English (Great Britain)") or a file's language code, but not
 * every language a voice lists ("en-gb" is in gmw/en, which is called "en").
 * So when it fails, find the voice that lists the language with the best
 * priority and use its file, keeping a "+variant" suffix. */
static espeak_ng_STATUS set_voice(const char *name) {
    espeak_ng_STATUS st = espeak_ng_SetVoiceByName(name);
    if (st != ENS_VOICE_NOT_FOUND) return st;
    char lang[64];
    const char *plus = strchr(name, '+');
    size_t n = plus ? (size_t)(plus - name) : strlen(name);
    if (n == 0 || n >= sizeof lang) return st;
    memcpy(lang, name, n);
    lang[n] = '\0';
    const espeak_VOICE **v = espeak_ListVoices(NULL);
    const char *best = NULL;
    int best_prio = 1000;
    for (size_t i = 0; v && v[i]; i++) {
        /* languages: (priority byte, tag, NUL)*, then a NUL */
        for (const char *l = v[i]->languages; l && *l; l += strlen(l + 1) + 2) {
            if (strcasecmp(l + 1, lang) == 0 && (unsigned char)l[0] < best_prio) {
                best_prio = (unsigned char)l[0];
                best = v[i]->identifier;
            }
        }
    }
    if (!best) return st;
    char full[160];
    if (snprintf(full, sizeof full, "%s%s", best, plus ? plus : "") >= (int)sizeof full) return st;
    return espeak_ng_SetVoiceByName(full);
}

/* Under es_lock: make the library speak with s's settings. */
static espeak_ng_STATUS es_apply(es_state *s) {
    espeak_ng_STATUS st = set_voice(s->voice);
    if (st == ENS_OK) st = espeak_ng_SetParameter(espeakRATE, s->wpm, 0);
    if (st == ENS_OK) st = espeak_ng_SetParameter(espeakPITCH, s->pitch, 0);
    return st;
}

static pl_status es_create(pl_ctx *ctx, const pl_tts_params *p, void **out) {
    *out = NULL;
    const char *voice = p->voice && *p->voice ? p->voice : DEFAULT_VOICE;
    if (strlen(voice) >= sizeof ((es_state *)0)->voice)
        return pl_ctx_err(ctx, PL_ERR_NOT_FOUND, "tts: espeak: voice name too long");
    es_state *s = pl_calloc(ctx, 1, sizeof *s);
    if (!s) return pl_ctx_err(ctx, PL_ERR_NOMEM, "tts: espeak: out of memory");
    s->ctx = ctx;
    snprintf(s->voice, sizeof s->voice, "%s", voice);
    s->wpm = to_wpm(p->speed > 0 ? p->speed : 1.0f);
    s->pitch = to_pitch(p->pitch);
    pthread_mutex_lock(&es_lock);
    espeak_ng_STATUS st = es_ref();
    if (st != ENS_OK) {
        pthread_mutex_unlock(&es_lock);
        char m[160];
        status_text(st, m, sizeof m);
        pl_free(ctx, s);
        return pl_ctx_err(ctx, PL_ERR_IO, "tts: espeak: cannot initialize (is espeak-ng-data "
                          "installed?): %s", m);
    }
    st = es_apply(s);
    pthread_mutex_unlock(&es_lock);
    if (st != ENS_OK) {
        pl_free(ctx, s);
        if (st == ENS_VOICE_NOT_FOUND)
            return pl_ctx_err(ctx, PL_ERR_NOT_FOUND, "tts: espeak: no voice '%s' (see "
                              "'parley speak --list-voices')", voice);
        char m[160];
        status_text(st, m, sizeof m);
        return pl_ctx_err(ctx, PL_ERR_INVALID_ARG, "tts: espeak: voice '%s': %s", voice, m);
    }
    *out = s;
    return PL_OK;
}

static void es_free(void *vs) {
    es_state *s = vs;
    if (s) pl_free(s->ctx, s);
}

static int es_sample_rate(void *vs) {
    (void)vs;
    pthread_mutex_lock(&es_lock);
    int r = es_rate;
    pthread_mutex_unlock(&es_lock);
    return r;
}

static const char *es_error(void *vs) { return ((es_state *)vs)->err; }

static pl_status es_configure(void *vs, const char *voice, float speed, float pitch) {
    es_state *s = vs;
    es_state next = *s;
    if (voice) {
        if (strlen(voice) >= sizeof next.voice || !*voice) {
            snprintf(s->err, sizeof s->err, "no voice '%s'", voice);
            return PL_ERR_NOT_FOUND;
        }
        snprintf(next.voice, sizeof next.voice, "%s", voice);
    }
    if (speed > 0.0f) next.wpm = to_wpm(speed);
    if (pitch >= 0.0f) next.pitch = to_pitch(pitch);
    pthread_mutex_lock(&es_lock);
    espeak_ng_STATUS st = es_apply(&next);
    pthread_mutex_unlock(&es_lock);
    if (st != ENS_OK) {
        if (st == ENS_VOICE_NOT_FOUND) {
            snprintf(s->err, sizeof s->err, "no voice '%s'", next.voice);
            return PL_ERR_NOT_FOUND;
        }
        status_text(st, s->err, sizeof s->err);
        return PL_ERR_INVALID_ARG;
    }
    memcpy(s->voice, next.voice, sizeof s->voice);
    s->wpm = next.wpm;
    s->pitch = next.pitch;
    return PL_OK;
}

static pl_status es_synthesize(void *vs, const char *text, pl_tts_sink_fn sink, void *ud) {
    es_state *s = vs;
    es_call call = { .sink = sink, .ud = ud };
    pthread_mutex_lock(&es_lock);
    espeak_ng_STATUS st = es_apply(s);
    if (st == ENS_OK) {
        st = espeak_ng_Synthesize(text, strlen(text) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8,
                                  NULL, &call);
        /* The final callback (wav NULL) has run; nothing is left queued in
         * synchronous mode. */
    }
    pthread_mutex_unlock(&es_lock);
    if (call.stopped) return PL_ERR_CANCELED;
    if (st != ENS_OK) {
        status_text(st, s->err, sizeof s->err);
        return PL_ERR_INTERNAL;
    }
    return PL_OK;
}

/* One block: the array, then every string. Voices are listed by their main
 * language; the variants ("!v/klatt") as "+klatt". */
static pl_status es_list_voices(pl_ctx *ctx, pl_tts_voice **out, size_t *n_out) {
    pthread_mutex_lock(&es_lock);
    espeak_ng_STATUS st = es_ref();
    if (st != ENS_OK) {
        pthread_mutex_unlock(&es_lock);
        return pl_ctx_err(ctx, PL_ERR_IO, "tts: espeak: cannot initialize");
    }
    /* espeak_ListVoices returns a static array that the next call rewrites:
     * count and size both lists first, then copy each. */
    espeak_VOICE vspec = { .languages = "variant" };
    size_t n = 0, chars = 0;
    for (int pass = 0; pass < 2; pass++) {
        const espeak_VOICE **v = espeak_ListVoices(pass ? &vspec : NULL);
        for (size_t i = 0; v && v[i]; i++, n++) {
            const char *lang = v[i]->languages ? v[i]->languages + 1 : "";
            const char *id = v[i]->identifier ? v[i]->identifier : "";
            chars += 2 * strlen(lang) + strlen(id) + 2 + strlen(v[i]->name ? v[i]->name : "") + 7 + 4;
        }
    }
    size_t bytes = 0, arr = 0;
    bool ok = pl_size_mul(n ? n : 1, sizeof(pl_tts_voice), &arr) && pl_size_add(arr, chars, &bytes);
    pl_tts_voice *list = ok ? pl_malloc(ctx, bytes) : NULL;
    if (!list) {
        pthread_mutex_unlock(&es_lock);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "tts: espeak: out of memory");
    }
    char *p = (char *)list + arr, *end = (char *)list + bytes;
    size_t k = 0;
    for (int pass = 0; pass < 2; pass++) {
        const espeak_VOICE **v = espeak_ListVoices(pass ? &vspec : NULL);
        for (size_t i = 0; v && v[i] && k < n; i++, k++) {
            const char *lang = v[i]->languages ? v[i]->languages + 1 : "";
            const char *id = v[i]->identifier ? v[i]->identifier : "";
            const char *base = strrchr(id, '/') ? strrchr(id, '/') + 1 : id;
            const char *g = v[i]->gender == ENGENDER_MALE ? "male"
                          : v[i]->gender == ENGENDER_FEMALE ? "female" : "";
            const char *fields[4] = { lang, pass ? "" : lang, v[i]->name ? v[i]->name : "", g };
            const char **dst[4] = { &list[k].name, &list[k].language, &list[k].display, &list[k].gender };
            for (int f = 0; f < 4; f++) {
                const char *src = fields[f];
                char tmp[80];
                if (f == 0 && pass) {
                    snprintf(tmp, sizeof tmp, "+%s", base);
                    src = tmp;
                }
                size_t l = strlen(src);
                if ((size_t)(end - p) < l + 1) l = 0; /* cannot happen: sized above */
                memcpy(p, src, l);
                p[l] = '\0';
                *dst[f] = p;
                p += l + 1;
            }
            list[k].is_variant = pass == 1;
        }
    }
    pthread_mutex_unlock(&es_lock);
    *out = list;
    *n_out = k;
    return PL_OK;
}

const pl_tts_backend pl_tts_backend_espeak = {
    .name = "espeak",
    .description = "eSpeak NG formant synthesizer (many languages, 22050 Hz)",
    .create = es_create,
    .free = es_free,
    .sample_rate = es_sample_rate,
    .configure = es_configure,
    .synthesize = es_synthesize,
    .list_voices = es_list_voices,
    .error = es_error,
};
