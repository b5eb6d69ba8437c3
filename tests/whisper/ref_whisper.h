/* ref_whisper.h - tests only: an independent walker over whisper.cpp ggml files
 * and a naive f32 Whisper (encoder, decoder without a KV cache), written from
 * the model definition with plain loops. */
#ifndef PL_TEST_REF_WHISPER_H
#define PL_TEST_REF_WHISPER_H

#include <stddef.h>
#include <stdint.h>

/* ---- walker ---- */
typedef struct ref_tensor {
    char     name[128];
    int32_t  n_dims, type, ne[3];
    size_t   hdr_off;   /* offset of its n_dims field */
    size_t   data_off, data_bytes;
} ref_tensor;

typedef struct ref_file {
    const uint8_t *p;
    size_t         size;
    int32_t        hp[11];
    size_t         filt_off;      /* n_mel field */
    size_t         vocab_off;     /* count field */
    size_t         tensors_off;   /* first tensor header */
    int32_t        n_vocab_stored;
    ref_tensor    *t;
    size_t         n_t;
} ref_file;

/* 0 on success (the file must be well formed). */
int ref_file_walk(const uint8_t *p, size_t size, ref_file *f);
void ref_file_free(ref_file *f);
/* f32 copy of a tensor's values (malloc); NULL when absent. */
float *ref_tensor_f32(const ref_file *f, const char *name, size_t *n);

/* ---- naive model ---- */
typedef struct ref_model ref_model;

ref_model *ref_model_load(const ref_file *f);
void ref_model_free(ref_model *m);
/* mel [n_mels][2T] -> out [T][E] */
void ref_encode(const ref_model *m, const float *mel, int T, float *out);
/* logits [n_vocab] of the last of n tokens, recomputing every position, over enc [T][E] */
void ref_decode(const ref_model *m, const float *enc, int T, const int32_t *tokens, int n, float *logits);

#endif
