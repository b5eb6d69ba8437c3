/*
 * parley/model.h - GGUF transformer language models on the CPU: load a model,
 * make a context (KV cache + scratch), decode batches of tokens into logits.
 *
 * Architectures: llama (Llama 2/3.x, SmolLM2, TinyLlama, Mistral), qwen2, qwen3,
 * phi3. Weight types: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K,
 * Q4_K, Q5_K, Q6_K, and files mixing them (Q4_K_M, Q5_K_M).
 *
 * Ownership and threads
 *  - pl_model: made by pl_model_load(), freed by pl_model_free(). Weights stay in
 *    the file's read-only mapping in their own type (nothing is dequantized or
 *    copied). Immutable after load: any number of contexts, on any threads, may
 *    use one model at once. Free it after all its contexts.
 *  - pl_context: one per session. Holds the KV cache (f16), the scratch buffers
 *    and a thread pool, all sized at init: decoding allocates nothing. A context is
 *    a single-thread object (one call at a time); it runs its own worker threads.
 *  - Every pl_*_free(NULL) is a no-op.
 *
 * Sequences: a context holds up to n_seq_max sequences (ids 0..n_seq_max-1), each
 * a run of tokens at positions 0, 1, 2, ... The KV cache is a pool of fixed-size
 * blocks of token slots shared by all sequences: pl_context_kv_share() lets a
 * sequence reuse another's prefix without copying (a block is copied only when
 * a sequence appends into a block it shares).
 */
#ifndef PARLEY_MODEL_H
#define PARLEY_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"
#include "parley/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- model ---- */

typedef struct pl_model pl_model;

/* Load phases, in order, as the progress callback and the load stats name them. */
typedef enum pl_load_phase {
    PL_LOAD_PHASE_MAP = 0, /* open, validate the header and tensor table, mmap */
    PL_LOAD_PHASE_TOUCH,   /* prefault or mlock: bring every weight page into RAM */
    PL_LOAD_PHASE_WARMUP,  /* one-token decode on a scratch context */
    PL_LOAD_PHASE_COUNT
} pl_load_phase;

/* "map", "touch", "warm-up"; "unknown" outside the enum. */
const char *pl_load_phase_name(pl_load_phase ph);

/* Progress of a load, called on the loading thread for each phase that runs:
 * MAP once when done (done = total = file bytes); TOUCH at 0, after every 64 MiB
 * and at the end (bytes of the file); WARMUP at 0 and at 1 (of 1). Return false
 * to stop: pl_model_load then fails with PL_ERR_CANCELED (nothing is kept). */
typedef bool (*pl_load_progress_fn)(void *ud, pl_load_phase phase, uint64_t done, uint64_t total);

typedef struct pl_model_params {
    bool prefault; /* touch every weight page at load so the first decode pays no page
                      faults (costs a read of the whole file); default false */
    bool mlock;    /* lock the weights in RAM (mlock) so they are never paged out; this
                      also touches them. When RLIMIT_MEMLOCK (ulimit -l) or the system
                      refuses, a warning is logged on ctx with the figures and the load
                      goes on unlocked (pl_model_load_stats.locked says which). Default false */
    bool warmup;   /* decode one token on a scratch context at load, so the first request
                      pays no first-touch / page-fault / cold-code costs; default false */
    int  warmup_threads; /* threads for the warm-up decode; 0: physical cores */
    /* Memory check before anything is touched: refuse (PL_ERR_NOMEM, with the figures)
     * a model whose tensor bytes exceed MemAvailable + SwapFree. The mapping is of
     * clean file pages, which the kernel may drop and re-read, so a larger model would
     * "load"; but every token reads every weight, so it would re-read the file from
     * disk for each token. Default true; skipped when the meminfo file is unreadable. */
    bool check_memory;
    const char *meminfo_path; /* NULL: /proc/meminfo (tests give a file with set figures) */
    pl_load_progress_fn progress; /* NULL: none */
    void *progress_ud;
} pl_model_params;

pl_model_params pl_model_default_params(void);

/* Open, validate and map a GGUF model. Every metadata key and tensor the
 * architecture needs is checked (presence, shape, type); a failure returns
 * PL_ERR_FORMAT / PL_ERR_UNSUPPORTED / PL_ERR_NOT_FOUND with a message naming the
 * key or tensor in pl_ctx_last_error(ctx). params NULL: defaults. The model keeps
 * ctx for allocation: ctx must outlive it. */
pl_status pl_model_load(pl_ctx *ctx, const char *path, const pl_model_params *params, pl_model **out);
void pl_model_free(pl_model *m);

typedef struct pl_model_info {
    const char *arch;          /* "llama", "qwen2", ... (static string) */
    char        name[128];     /* general.name, or "" */
    uint32_t    file_type;     /* general.file_type, or UINT32_MAX when absent */
    int32_t     n_vocab;       /* rows of token_embd */
    int32_t     n_ctx_train;   /* {arch}.context_length */
    int32_t     n_embd;
    int32_t     n_layer;
    int32_t     n_head;
    int32_t     n_head_kv;
    int32_t     head_dim_k;    /* attention.key_length, or n_embd / n_head */
    int32_t     head_dim_v;    /* attention.value_length, or n_embd / n_head */
    int32_t     n_ff;
    int32_t     n_rot;         /* rope.dimension_count, or head_dim_k */
    float       rms_eps;
    float       rope_base;
    bool        tied_output;   /* no output.weight: logits use token_embd */
    uint64_t    weight_bytes;  /* bytes of all tensors (in the mapping) */
    uint64_t    file_bytes;
} pl_model_info;

const pl_model_info *pl_model_get_info(const pl_model *m);

/* How the load went: wall time of each phase (0 when it did not run). */
typedef struct pl_model_load_stats {
    double   ms[PL_LOAD_PHASE_COUNT]; /* map (open + validate + mmap), touch, warm-up */
    double   total_ms;
    uint64_t resident_bytes;  /* tensor bytes that must be in RAM to decode at full speed */
    uint64_t mem_available;   /* MemAvailable + SwapFree at load (0: not checked) */
    bool     touched;         /* every weight page was read (prefault) or locked */
    bool     locked;          /* mlock succeeded (the weights stay in RAM) */
    uint64_t major_faults;    /* page faults that read the disk during the load */
} pl_model_load_stats;

const pl_model_load_stats *pl_model_get_load_stats(const pl_model *m);
/* The model's opened file (for pl_tokenizer_load and the chat template). Owned by the model. */
const pl_gguf *pl_model_gguf(const pl_model *m);

/* ---- context ---- */

typedef struct pl_context pl_context;

typedef struct pl_context_params {
    int32_t  n_ctx;         /* max tokens per sequence; 0: min(n_ctx_train, 4096) */
    int32_t  n_batch;       /* tokens per forward step (larger decodes are split);
                               0: 512 (at most n_ctx) */
    int32_t  n_seq_max;     /* sequences; 0: 1 */
    int32_t  n_kv;          /* KV slots over all sequences; 0: n_ctx * n_seq_max */
    int32_t  n_outputs_max; /* most logit rows one decode may return; 0: n_seq_max */
    int      n_threads;     /* worker threads when pool is NULL; 0: physical cores */
    pl_pool *pool;          /* borrowed pool to run on, or NULL. It must outlive the context,
                               and nothing else may run on it during this context's calls
                               (pl_pool_run is single-caller) */
} pl_context_params;

pl_context_params pl_context_default_params(void);

/* Make a context for a model. Sizes the KV cache and scratch now (reported by
 * pl_context_memory_usage()). The model must outlive the context. The message for a failure
 * is in pl_ctx_last_error() of the model's ctx. */
pl_status pl_context_init(const pl_model *model, const pl_context_params *params, pl_context **out);
void pl_context_free(pl_context *c);

typedef struct pl_context_memory {
    uint64_t kv_bytes;      /* KV cache (f16 K and V, all layers) */
    uint64_t scratch_bytes; /* activations, logits, per-thread buffers */
} pl_context_memory;

pl_context_memory pl_context_memory_usage(const pl_context *c);
const pl_model *pl_context_model(const pl_context *c);
/* Tokens a sequence may hold (n_ctx after defaults were applied). */
int32_t pl_context_n_ctx(const pl_context *c);
/* ---- profiling: where decode time goes ----
 * Every forward step reads the monotonic clock around each matmul and the attention
 * of each layer and adds the intervals to per-phase counters: 10 clock reads per
 * layer (a vDSO call: ~20 ns on bare metal, ~45 ns measured in a VM), so ~14 us per
 * step for a 30-layer model against ~10 ms of compute (0.1%). Counters only grow
 * until reset. Sampling is not the context's: callers time it around
 * pl_sampler_sample(). */
typedef enum pl_perf_phase {
    PL_PERF_PHASE_MATMUL = 0, /* weight x activation products (pl_matmul*), logits included */
    PL_PERF_PHASE_ATTENTION,  /* q.k scores, softmax and the weighted sum over the KV cache */
    PL_PERF_PHASE_OTHER,      /* embeddings, norms, RoPE, biases, SwiGLU, K/V stores, residuals */
    PL_PERF_PHASE_COUNT
} pl_perf_phase;

/* "matmul", "attention", "other"; "unknown" outside the enum. */
const char *pl_perf_phase_name(pl_perf_phase ph);

typedef struct pl_decode_perf {
    uint64_t phase_ns[PL_PERF_PHASE_COUNT]; /* inside forward steps, by phase */
    uint64_t decode_ns; /* wall time inside pl_context_decode (validation and KV bookkeeping too) */
    uint64_t n_decode;  /* pl_context_decode calls that ran tokens */
    uint64_t n_tokens;  /* tokens they ran */
} pl_decode_perf;

/* The counters since init or the last reset (c NULL: zeros). For one request, take
 * the difference of two readings or reset before it. */
void pl_context_perf(const pl_context *c, pl_decode_perf *out);
void pl_context_perf_reset(pl_context *c);

/* Last error text of this context's failing call ("" when none). */
const char *pl_context_last_error(const pl_context *c);

/* ---- decoding ----
 * A batch of tokens. Tokens of one sequence must be in position order and continue
 * it: the first at the sequence's current length, then +1 each. */
typedef struct pl_batch {
    int32_t        n_tokens;
    const int32_t *tokens;     /* [n_tokens] ids in [0, n_vocab) */
    const int32_t *pos;        /* [n_tokens] positions, or NULL: each token continues its sequence */
    const int32_t *seq_id;     /* [n_tokens] sequence ids, or NULL: all in `seq` */
    int32_t        seq;        /* the sequence when seq_id is NULL */
    const int8_t  *output;     /* [n_tokens] non-zero: return this token's logits; NULL: see all */
    bool           all;        /* with output NULL: true = every token's logits, false = the last's */
} pl_batch;

/* Run the batch: append its tokens' K/V to their sequences and compute the logits
 * asked for. Errors, with nothing changed: PL_ERR_INVALID_ARG (a token id, sequence
 * id or position out of range or out of order, more outputs than n_outputs_max),
 * PL_ERR_CONTEXT_FULL (a sequence would pass n_ctx, or no free KV blocks).
 * n_tokens 0 is a no-op that returns PL_OK with no outputs. */
pl_status pl_context_decode(pl_context *c, const pl_batch *batch);

/* Logit rows of the last decode, in batch order of the tokens that asked for them. */
int32_t pl_context_n_outputs(const pl_context *c);
/* Row i (< n_outputs): n_vocab floats, valid until the next decode. NULL when out of range. */
const float *pl_context_logits(const pl_context *c, int32_t i);

/* ---- KV cache operations ---- */

/* Tokens currently held for a sequence (-1 for a bad id). */
int32_t pl_context_kv_len(const pl_context *c, int32_t seq);
/* Keep the first n tokens of a sequence (n >= its length: no change; 0: clear). */
pl_status pl_context_kv_truncate(pl_context *c, int32_t seq, int32_t n);
/* Make dst hold the first n tokens of src (dst's old contents are dropped), sharing
 * src's KV blocks instead of copying them. n > src's length: PL_ERR_INVALID_ARG. */
pl_status pl_context_kv_share(pl_context *c, int32_t src, int32_t dst, int32_t n);
/* Drop every sequence. */
void pl_context_kv_clear(pl_context *c);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_MODEL_H */
