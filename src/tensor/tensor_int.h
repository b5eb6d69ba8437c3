/* tensor_int.h - private: the row converters referenced by the type table. */
#ifndef PL_TENSOR_INT_H
#define PL_TENSOR_INT_H

#include "parley/tensor.h"

void pl_f32_to_f32_row(const void *x, float *y, int64_t n);
void pl_f32_from_f32_row(const float *x, void *y, int64_t n);
void pl_f16_to_f32_row(const void *x, float *y, int64_t n);
void pl_f16_from_f32_row(const float *x, void *y, int64_t n);
void pl_bf16_to_f32_row(const void *x, float *y, int64_t n);
void pl_bf16_from_f32_row(const float *x, void *y, int64_t n);

#endif
