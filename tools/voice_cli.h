/*
 * voice_cli.h - what `parley voice` and `parley bench-voice` share: their
 * options, loading the model / session / recognizer / synthesizer, the
 * word-only token picker for random-weight fixtures, and pushing a file.
 */
#ifndef PL_TOOLS_VOICE_CLI_H
#define PL_TOOLS_VOICE_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "parley/audio.h"
#include "parley/engine.h"
#include "parley/model.h"
#include "parley/voice.h"

typedef struct voice_opts {
    const char *model, *in, *out, *stt, *tts, *voice, *system, *tmpl;
    const char *stt_model;            /* NULL: the backend's default */
    const char *mic_device, *speaker_device; /* --mic: ALSA names */
    bool    show_thoughts, json, mic, realtime, fixture_words, no_think;
    int64_t max_tokens, n_ctx, threads, silence_ms, runs, warmup;
    int64_t prefix_pad_ms;            /* VAD audio kept before speech; default 300 */
    float   speed;
    double  duration;                 /* --mic: stop after this many seconds; 0: until Ctrl-C */
    /* `parley voice`: the settings (sampling, reasoning, batch, history
     * budget) come from here; NULL (bench-voice): the session's defaults */
    const pl_config_values *cfg;
} voice_opts;

/* The word-only picker: argmax over the single-byte tokens a-z, ' ' and '.',
 * shaped into words of 1-5 letters and sentences of 3-5 words, so a model
 * with random weights still says sentences (the whole forward pass runs as
 * usual; only the choice among its logits is constrained). */
typedef struct word_picker {
    int32_t letters[26], space, stop;
    int     word_len, words, since_stop;
    bool    ok;
} word_picker;

typedef struct voice_rig {
    pl_model   *model;
    pl_engine  *engine;
    pl_session *session;
    pl_stt     *stt;
    pl_tts     *tts;
    word_picker picker;
    char       *path;
} voice_rig;

void voice_opts_defaults(voice_opts *o);
/* One option at argv[*i] that both commands take; 1: taken, 0: not ours,
 * -1: bad value (the usage error is printed). */
int voice_opt(pl_cli *cli, int argc, char **argv, int *i, voice_opts *o);
/* Load everything; prints the failure and returns false. */
bool voice_rig_open(pl_cli *cli, const voice_opts *o, voice_rig *r);
void voice_rig_close(pl_cli *cli, voice_rig *r);
/* Push audio through the pipeline in 20 ms frames (at real-time pace when
 * realtime), then silence_ms + 300 ms of silence, flush, and wait for the
 * answer. */
bool voice_run_audio(pl_voice *v, const pl_audio *a, bool realtime, int64_t silence_ms);
/* JSON string (quoted, escaped) to f. */
void voice_json_str(FILE *f, const char *s);

#endif
