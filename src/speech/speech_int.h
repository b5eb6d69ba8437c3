/*
 * speech_int.h - private declarations of the speech module (audio, VAD, STT,
 * TTS), shared by src/speech and tests/speech.
 */
#ifndef PL_SPEECH_INT_H
#define PL_SPEECH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/audio.h"
#include "parley/stt.h"
#include "parley/tts.h"

/* The backend rows (defined in stt_<name>.c / tts_<name>.c). */
extern const pl_stt_backend pl_stt_backend_pocketsphinx;
extern const pl_tts_backend pl_tts_backend_espeak;

/* The ctx a pl_stt was made with. */
pl_ctx *pl_stt_ctx(const pl_stt *stt);

/* Recording times of a segment the recognizer timed from the start of the
 * audio chunk it was given, the chunk being [chunk_start_s, chunk_end_s] of
 * the recording: *start_s and *end_s are offset by chunk_start_s, clamped into
 * the chunk, then kept in order after the previous segment (start >=
 * *prev_end_s, end >= start; order wins over the chunk's end when chunks
 * overlap). *prev_end_s becomes the end. NaNs count as the chunk's start. */
void pl_transcript_place(double chunk_start_s, double chunk_end_s, double *prev_end_s, double *start_s,
                         double *end_s);

/* Word error rate pieces: the word-level Levenshtein distance between two
 * texts after normalization (lowercase ASCII letters, digits and apostrophes;
 * everything else separates words). *n_ref gets the reference word count.
 * Returns SIZE_MAX when out of memory or a text has more than 4096 words. */
size_t pl_speech_word_distance(pl_ctx *ctx, const char *ref, const char *hyp, size_t *n_ref);

/* Copy text into dst (cap bytes, NUL-terminated), cutting at a UTF-8
 * character boundary. Returns the bytes copied. */
size_t pl_speech_copy_text(char *dst, size_t cap, const char *src, size_t n);

/* Voice pipeline: how many bytes of text[0..len) count as played when a
 * fraction (0..1) of its audio was: the longest prefix that ends at a word end
 * (before a space, or the whole text) and is at most fraction * len bytes
 * long; trailing spaces are not counted. */
size_t pl_voice_played_bytes(const char *text, size_t len, double fraction);

#endif
