/* ref_model.h - the naive reference transformer for tests (tests/model only). */
#ifndef PL_TEST_REF_MODEL_H
#define PL_TEST_REF_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "parley/gguf.h"

typedef struct ref_model ref_model;

/* Build from an opened GGUF: reads the metadata itself and dequantizes every weight
 * to f32 with the type table's to_f32. emulate: also round what the engine rounds
 * (activations entering a matmul through the weight's vec_dot_type, K/V through
 * f16), so the only difference left is summation order. NULL on failure. */
ref_model *ref_model_init(const pl_gguf *g, int32_t n_ctx, bool emulate);
void ref_model_free(ref_model *r);
int32_t ref_model_n_vocab(const ref_model *r);
/* Forget all tokens. */
void ref_model_reset(ref_model *r);
/* Feed the next token (at position = tokens fed so far); writes n_vocab logits. */
void ref_model_eval(ref_model *r, int32_t token, float *logits);

#endif
