/*
 * test_model.c - the engine (src/model) against the naive reference (ref_model.c)
 * on fixture models of every architecture x every supported weight type.
 *
 * Models: `parley fixture` writes the f32 tiny presets and the q4_k_m / q5_k_m mixes
 * (CTest fixtures). For each other type this test derives a model from the f32 one
 * by converting every 2-D weight with the type table's quantizer, so each type is
 * checked on its own. Bad-input models are derived the same way (a tensor dropped,
 * a shape or key changed).
 *
 * Per model:
 *  1. batch prefill (all logits) vs the reference with the engine's roundings
 *     emulated: max |diff| <= 2e-3 of max |logit| (only summation order differs);
 *  2. the same vs the plain-f32 reference, within the per-type bound below;
 *  3. token-by-token decode gives the prefill's logits (<= 1e-5 relative);
 *  4. greedy continuations of 32 tokens: engine == emulated reference;
 *  5. KV truncate-and-continue and prefix sharing == a fresh run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include "model/model_int.h"
#include "parley/gguf.h"
#include "parley/model.h"
#include "parley/tensor.h"
#include "parley/tokenizer.h"
#include "ref_model.h"

static const char *fixdir;
static pl_ctx *ctx;

#define N_PROMPT 12
#define N_GREEDY 32
static const int32_t prompt[N_PROMPT] = { 256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 400 };


/* Bounds on max |engine - reference| / max |logit| over a 12-token prefill.
 *  - em: vs the reference with the engine's roundings emulated. What is left is
 *    summation order (the engine sums in f32, blocks in int32; the reference in
 *    double): about 1e-7 for the Q types, 1e-5 for f32. But that noise now and then
 *    moves an activation across a rounding boundary of the activation type, and one
 *    such step moves the logits by about 2^-11 (f16), 2^-8 (bf16) or absmax/127
 *    (Q8_0 / Q8_K: about 1e-2 of max |logit| here), so the bound allows a few of them.
 *    Without a flip the Q types agree to about 1e-7 (the test prints the figures).
 *  - f32: vs the plain-f32 reference: the engine rounds activations to the weight type's
 *    vec_dot_type (Q8_0 / Q8_K: steps of absmax/127; F16: 2^-11 relative; BF16: 2^-8)
 *    and K/V to f16; the error grows through the 2 layers.
 * Set at 2-3x the measured maxima over the four architectures. */
typedef struct type_case {
    const char *name;     /* fixture mix name, or a type name for derived models */
    pl_type     type;     /* derived: every 2-D weight in this type; PL_TYPE_COUNT: fixture mix */
    double      em, f32;  /* bounds, see above */
} type_case;

static const type_case type_cases[] = {
    { "f32",    PL_TYPE_F32,   3e-4, 2e-3 }, /* f16 K/V only */
    { "f16",    PL_TYPE_F16,   3e-3, 4e-3 },
    { "bf16",   PL_TYPE_BF16,  1e-2, 2e-2 },
    { "q8_0",   PL_TYPE_Q8_0,  5e-2, 6e-2 },
    { "q4_0",   PL_TYPE_Q4_0,  5e-2, 6e-2 },
    { "q4_1",   PL_TYPE_Q4_1,  5e-2, 6e-2 },
    { "q5_0",   PL_TYPE_Q5_0,  5e-2, 6e-2 },
    { "q5_1",   PL_TYPE_Q5_1,  5e-2, 6e-2 },
    { "q2_k",   PL_TYPE_Q2_K,  5e-2, 6e-2 },
    { "q3_k",   PL_TYPE_Q3_K,  5e-2, 6e-2 },
    { "q4_k",   PL_TYPE_Q4_K,  5e-2, 6e-2 },
    { "q5_k",   PL_TYPE_Q5_K,  5e-2, 6e-2 },
    { "q6_k",   PL_TYPE_Q6_K,  5e-2, 6e-2 },
    { "q4_k_m", PL_TYPE_COUNT, 5e-2, 6e-2 }, /* fixture mixes: Q4_K, Q5_0, Q6_K, ... */
    { "q5_k_m", PL_TYPE_COUNT, 5e-2, 6e-2 },
};
#define N_TYPES (sizeof type_cases / sizeof type_cases[0])

/* ---- deriving models from a fixture ---- */

typedef struct derive_opts {
    pl_type     type;          /* PL_TYPE_COUNT: keep each tensor's type */
    const char *drop;          /* tensor to leave out */
    const char *reshape;       /* tensor written with its first dim halved */
    const char *retype;        /* tensor written in retype_to */
    pl_type     retype_to;
    const char *key_u32;       /* metadata key to set (u32) */
    uint32_t    key_u32_val;
    const char *key_str;       /* metadata key to set (string) */
    const char *key_str_val;
    const char *key_f32;       /* metadata key to set (f32) */
    float       key_f32_val;
    bool        add_rope_freqs; /* add rope_freqs.weight [n_rot/2] = 1 + i/8 */
} derive_opts;

static void fixture_path(char *buf, size_t n, const char *preset, const char *type) {
    snprintf(buf, n, "%s/%s-%s.gguf", fixdir, preset, type);
}

/* Write dst from src: metadata copied (with the overrides), tensors converted. */
static void derive(const char *src, const char *dst, const derive_opts *o) {
    pl_gguf *g = NULL;
    assert_int_equal(pl_gguf_open(ctx, src, &g), PL_OK);
    pl_gguf_writer *w = NULL;
    assert_int_equal(pl_gguf_writer_init(ctx, &w), PL_OK);
    for (int64_t i = 0; i < pl_gguf_n_kv(g); i++) {
        pl_str k = pl_gguf_kv_key(g, i);
        if ((o->key_u32 && pl_str_eq(k, o->key_u32)) || (o->key_str && pl_str_eq(k, o->key_str)) ||
            (o->key_f32 && pl_str_eq(k, o->key_f32)))
            continue;
        assert_int_equal(pl_gguf_writer_copy_kv(w, g, i), PL_OK);
    }
    if (o->key_u32) assert_int_equal(pl_gguf_writer_set_u32(w, o->key_u32, o->key_u32_val), PL_OK);
    if (o->key_str) assert_int_equal(pl_gguf_writer_set_str(w, o->key_str, o->key_str_val), PL_OK);
    if (o->key_f32) assert_int_equal(pl_gguf_writer_set_f32(w, o->key_f32, o->key_f32_val), PL_OK);
    int64_t nt = pl_gguf_n_tensors(g);
    void **bufs = calloc((size_t)nt + 1, sizeof *bufs);
    for (int64_t i = 0; i < nt; i++) {
        pl_gguf_tensor t;
        assert_int_equal(pl_gguf_tensor_at(g, i, &t), PL_OK);
        char name[96];
        pl_str_copy(t.name, name, sizeof name);
        if (o->drop && strcmp(name, o->drop) == 0) continue;
        pl_type type = t.type;
        if (t.n_dims == 2 && o->type != PL_TYPE_COUNT) type = o->type;
        if (o->retype && strcmp(name, o->retype) == 0) type = o->retype_to;
        int64_t ne[2] = { t.ne[0], t.ne[1] };
        if (o->reshape && strcmp(name, o->reshape) == 0) ne[0] /= 2;
        int64_t n = t.ne[0] * t.ne[1];
        float *f = malloc((size_t)n * sizeof(float));
        assert_int_equal(pl_type_to_f32(t.type, t.data, f, n), PL_OK);
        uint64_t bytes;
        assert_int_equal(pl_type_tensor_bytes(type, t.n_dims, ne, &bytes), PL_OK);
        bufs[i] = malloc((size_t)bytes);
        if (type == PL_TYPE_Q8_1) memset(bufs[i], 0, (size_t)bytes); /* no quantizer: bytes don't matter */
        else assert_int_equal(pl_type_from_f32(type, f, bufs[i], ne[0] * ne[1]), PL_OK);
        free(f);
        assert_int_equal(pl_gguf_writer_add_tensor(w, name, type, t.n_dims, ne, bufs[i]), PL_OK);
    }
    float freqs[32];
    if (o->add_rope_freqs) {
        for (int i = 0; i < 32; i++) freqs[i] = 1.0f + (float)i / 8.0f;
        int64_t ne[1] = { 32 };
        assert_int_equal(pl_gguf_writer_add_tensor(w, "rope_freqs.weight", PL_TYPE_F32, 1, ne, freqs), PL_OK);
    }
    assert_int_equal(pl_gguf_writer_write_file(w, dst), PL_OK);
    for (int64_t i = 0; i < nt; i++) free(bufs[i]);
    free(bufs);
    pl_gguf_writer_free(w);
    pl_gguf_free(g);
}

/* Path of the model for (preset, type case), deriving it when needed. */
static void model_for(char *buf, size_t n, const char *preset, const type_case *tc) {
    if (tc->type == PL_TYPE_COUNT || tc->type == PL_TYPE_F32) {
        fixture_path(buf, n, preset, tc->name);
        return;
    }
    char src[512];
    fixture_path(src, sizeof src, preset, "f32");
    snprintf(buf, n, "%s/test_model-%d-%s-%s.gguf", fixdir, (int)getpid(), preset, tc->name);
    derive_opts o = { .type = tc->type };
    derive(src, buf, &o);
}

/* ---- engine helpers ---- */

typedef struct engine {
    pl_model   *m;
    pl_context *c;
    int32_t     V;
} engine;

static engine engine_open(const char *path, int n_threads, int32_t n_seq) {
    engine e = { 0 };
    pl_status st = pl_model_load(ctx, path, NULL, &e.m);
    if (st != PL_OK) fail_msg("load %s: %s", path, pl_ctx_last_error(ctx));
    pl_context_params cp = pl_context_default_params();
    cp.n_ctx = 128;
    cp.n_batch = 16; /* smaller than prompt + continuation: decode splits steps */
    cp.n_seq_max = n_seq;
    cp.n_outputs_max = 64;
    cp.n_threads = n_threads;
    assert_int_equal(pl_context_init(e.m, &cp, &e.c), PL_OK);
    e.V = pl_model_get_info(e.m)->n_vocab;
    return e;
}

static void engine_close(engine *e) {
    pl_context_free(e->c);
    pl_model_free(e->m);
}

static void decode_seq(engine *e, const int32_t *toks, int32_t n, int32_t seq, bool all) {
    pl_batch b = { .n_tokens = n, .tokens = toks, .seq = seq, .all = all };
    pl_status st = pl_context_decode(e->c, &b);
    if (st != PL_OK) fail_msg("decode: %s", pl_context_last_error(e->c));
}

static int32_t argmax(const float *x, int32_t n) {
    int32_t b = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* max |a - b| / max |b| over n values */
static double rel_diff(const float *a, const float *b, int64_t n) {
    double d = 0, mx = 1e-30;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        mx = fmax(mx, fabs((double)b[i]));
    }
    return d / mx;
}

/* ---- the per-model checks ---- */

static void check_model(const char *path, const char *label, double em_bound, double bound) {
    engine e = engine_open(path, 1, 2);
    const int32_t V = e.V;
    float *eng = malloc((size_t)(N_PROMPT + N_GREEDY) * (size_t)V * sizeof(float));
    float *ref = malloc((size_t)(N_PROMPT + N_GREEDY) * (size_t)V * sizeof(float));
    float *ref32 = malloc((size_t)N_PROMPT * (size_t)V * sizeof(float));

    /* 1-2: prefill with every row's logits vs both references */
    decode_seq(&e, prompt, N_PROMPT, 0, true);
    assert_int_equal(pl_context_n_outputs(e.c), N_PROMPT);
    for (int i = 0; i < N_PROMPT; i++) memcpy(eng + (size_t)i * V, pl_context_logits(e.c, i), (size_t)V * sizeof(float));
    pl_gguf *g = NULL;
    assert_int_equal(pl_gguf_open(ctx, path, &g), PL_OK);
    ref_model *re = ref_model_init(g, 128, true), *rf = ref_model_init(g, 128, false);
    assert_non_null(re);
    assert_non_null(rf);
    for (int i = 0; i < N_PROMPT; i++) {
        ref_model_eval(re, prompt[i], ref + (size_t)i * V);
        ref_model_eval(rf, prompt[i], ref32 + (size_t)i * V);
    }
    double d_em = rel_diff(eng, ref, (int64_t)N_PROMPT * V), d_32 = rel_diff(eng, ref32, (int64_t)N_PROMPT * V);

    print_message("  %-26s vs emulated ref %.2e (bound %.0e), vs f32 ref %.2e (bound %.0e)", label, d_em, em_bound,
                  d_32, bound);
    assert_true(d_em <= em_bound);
    assert_true(d_32 <= bound);

    /* 3: token by token on a second sequence == the prefill rows */
    for (int i = 0; i < N_PROMPT; i++) {
        decode_seq(&e, &prompt[i], 1, 1, false);
        assert_true(rel_diff(pl_context_logits(e.c, 0), eng + (size_t)i * V, V) <= 1e-5);
    }

    /* 4: greedy 32 tokens, engine (sequence 0, one token per decode) vs emulated reference.
     * The reference follows the engine's tokens, and every step's choice must agree -
     * except where the engine's pick is within em_bound of the reference's best (a tie
     * within the noise allowed above), which may happen at most 3 times in 32. */
    int32_t ge[N_GREEDY];
    int32_t t = argmax(eng + (size_t)(N_PROMPT - 1) * V, V);
    for (int i = 0; i < N_GREEDY; i++) {
        ge[i] = t;
        decode_seq(&e, &t, 1, 0, false);
        t = argmax(pl_context_logits(e.c, 0), V);
    }
    float *lr = ref + (size_t)N_PROMPT * V;
    int ties = 0;
    memcpy(lr, ref + (size_t)(N_PROMPT - 1) * V, (size_t)V * sizeof(float));
    for (int i = 0; i < N_GREEDY; i++) {
        int32_t want = argmax(lr, V);
        if (want != ge[i]) {
            double mx = 0;
            for (int32_t k = 0; k < V; k++) mx = fmax(mx, fabs(lr[k]));
            double gap = ((double)lr[want] - lr[ge[i]]) / mx;
            print_message(" [step %d: engine %d, ref %d, gap %.1e]", i, ge[i], want, gap);
            assert_true(gap <= em_bound);
            ties++;
        }
        ref_model_eval(re, ge[i], lr);
    }
    print_message(", greedy 32: %d near-ties\n", ties);
    assert_true(ties <= 3);

    /* 5: truncate-and-continue == fresh: sequence 0 holds prompt + 32; cut back to the
     * prompt + 3 and continue with other tokens, compare with a fresh context */
    const int32_t cont[5] = { 7, 300, 12, 99, 257 };
    assert_int_equal(pl_context_kv_truncate(e.c, 0, N_PROMPT + 3), PL_OK);
    assert_int_equal(pl_context_kv_len(e.c, 0), N_PROMPT + 3);
    decode_seq(&e, cont, 5, 0, true);
    float *trunc = malloc((size_t)5 * V * sizeof(float));
    for (int i = 0; i < 5; i++) memcpy(trunc + (size_t)i * V, pl_context_logits(e.c, i), (size_t)V * sizeof(float));
    /* prefix sharing: sequence 1 takes sequence 0's first N_PROMPT+3 tokens, continues the same way */
    assert_int_equal(pl_context_kv_share(e.c, 0, 1, N_PROMPT + 3), PL_OK);
    decode_seq(&e, cont, 5, 1, true);
    for (int i = 0; i < 5; i++) assert_true(rel_diff(pl_context_logits(e.c, i), trunc + (size_t)i * V, V) <= 1e-6);
    engine_close(&e);

    engine f = engine_open(path, 1, 1);
    int32_t fresh[N_PROMPT + 3 + 5];
    memcpy(fresh, prompt, sizeof prompt);
    memcpy(fresh + N_PROMPT, ge, 3 * sizeof(int32_t));
    memcpy(fresh + N_PROMPT + 3, cont, sizeof cont);
    decode_seq(&f, fresh, N_PROMPT + 8, 0, true);
    for (int i = 0; i < 5; i++)
        assert_true(rel_diff(pl_context_logits(f.c, N_PROMPT + 3 + i), trunc + (size_t)i * V, V) <= 1e-5);
    engine_close(&f);

    free(trunc);
    ref_model_free(re);
    ref_model_free(rf);
    pl_gguf_free(g);
    free(eng);
    free(ref);
    free(ref32);
}

static void check_preset(const char *preset) {
    for (size_t i = 0; i < N_TYPES; i++) {
        char path[512], label[64];
        model_for(path, sizeof path, preset, &type_cases[i]);
        snprintf(label, sizeof label, "%s %s", preset, type_cases[i].name);
        check_model(path, label, type_cases[i].em, type_cases[i].f32);
    }
}

static void test_llama(void **s) { (void)s; check_preset("tiny"); }
static void test_qwen2(void **s) { (void)s; check_preset("tiny-qwen2"); }
static void test_qwen3(void **s) { (void)s; check_preset("tiny-qwen3"); }
static void test_phi3(void **s) { (void)s; check_preset("tiny-phi3"); }

/* rope_freqs (llama3-style) and linear scaling: both divide the frequencies */
static void test_rope_scaling(void **s) {
    (void)s;
    char src[512], dst[512];
    fixture_path(src, sizeof src, "tiny", "f32");
    snprintf(dst, sizeof dst, "%s/test_model-%d-rope.gguf", fixdir, (int)getpid());
    derive_opts o = { .type = PL_TYPE_COUNT, .add_rope_freqs = true, .key_f32 = "llama.rope.scaling.factor",
                      .key_f32_val = 2.0f, .key_str = "llama.rope.scaling.type", .key_str_val = "linear" };
    derive(src, dst, &o);
    check_model(dst, "tiny rope_freqs+linear x2", 3e-4, 2e-3);
    /* and the scaling matters: the unscaled model's logits differ */
    engine a = engine_open(dst, 1, 1), b = engine_open(src, 1, 1);
    decode_seq(&a, prompt, N_PROMPT, 0, false);
    decode_seq(&b, prompt, N_PROMPT, 0, false);
    assert_true(rel_diff(pl_context_logits(a.c, 0), pl_context_logits(b.c, 0), a.V) > 1e-2);
    engine_close(&a);
    engine_close(&b);
}

/* Two sequences in one batch, tokens interleaved, == each run alone; threads don't matter. */
static void test_multi_sequence_batch(void **s) {
    (void)s;
    char path[512];
    fixture_path(path, sizeof path, "tiny-qwen2", "f32");
    engine e = engine_open(path, 2, 2);
    int32_t toks[16], seqs[16], pos[16];
    for (int i = 0; i < 16; i++) {
        seqs[i] = i % 2;
        toks[i] = prompt[(i / 2) % N_PROMPT] + (i % 2) * 3;
        pos[i] = i / 2;
    }
    pl_batch b = { .n_tokens = 16, .tokens = toks, .seq_id = seqs, .pos = pos, .all = true };
    assert_int_equal(pl_context_decode(e.c, &b), PL_OK);
    assert_int_equal(pl_context_kv_len(e.c, 0), 8);
    assert_int_equal(pl_context_kv_len(e.c, 1), 8);
    engine one = engine_open(path, 1, 1);
    for (int sq = 0; sq < 2; sq++) {
        pl_context_kv_clear(one.c);
        int32_t mine[8];
        for (int i = 0; i < 8; i++) mine[i] = toks[2 * i + sq];
        decode_seq(&one, mine, 8, 0, true);
        for (int i = 0; i < 8; i++)
            assert_true(rel_diff(pl_context_logits(e.c, 2 * i + sq), pl_context_logits(one.c, i), e.V) <= 1e-5);
    }
    /* explicit output flags pick rows in batch order */
    int8_t out[4] = { 0, 1, 0, 1 };
    int32_t t4[4] = { 1, 2, 3, 4 }, s4[4] = { 0, 1, 0, 1 };
    pl_batch b2 = { .n_tokens = 4, .tokens = t4, .seq_id = s4, .output = out };
    assert_int_equal(pl_context_decode(e.c, &b2), PL_OK);
    assert_int_equal(pl_context_n_outputs(e.c), 2);
    assert_null(pl_context_logits(e.c, 2));
    engine_close(&one);
    engine_close(&e);
}

/* ---- bad input ---- */

static void expect_load_error(const char *path, pl_status want, const char *needle) {
    pl_model *m = NULL;
    pl_status st = pl_model_load(ctx, path, NULL, &m);
    const char *msg = pl_ctx_last_error(ctx);
    print_message("  %s -> %s: %s\n", needle, pl_status_name(st), msg);
    assert_int_equal(st, want);
    assert_null(m);
    assert_non_null(strstr(msg, needle));
}

static void test_bad_models(void **s) {
    (void)s;
    char src[512], dst[512];
    fixture_path(src, sizeof src, "tiny", "f32");
    snprintf(dst, sizeof dst, "%s/test_model-%d-bad.gguf", fixdir, (int)getpid());
    derive_opts o;

    o = (derive_opts){ .type = PL_TYPE_COUNT, .drop = "blk.1.ffn_down.weight" };
    derive(src, dst, &o);
    expect_load_error(dst, PL_ERR_NOT_FOUND, "blk.1.ffn_down.weight");

    o = (derive_opts){ .type = PL_TYPE_COUNT, .drop = "output_norm.weight" };
    derive(src, dst, &o);
    expect_load_error(dst, PL_ERR_NOT_FOUND, "output_norm.weight");

    o = (derive_opts){ .type = PL_TYPE_COUNT, .reshape = "blk.0.attn_k.weight" };
    derive(src, dst, &o);
    expect_load_error(dst, PL_ERR_FORMAT, "blk.0.attn_k.weight");

    o = (derive_opts){ .type = PL_TYPE_COUNT, .key_u32 = "llama.attention.head_count_kv", .key_u32_val = 3 };
    derive(src, dst, &o);
    expect_load_error(dst, PL_ERR_FORMAT, "llama.attention.head_count_kv");

    o = (derive_opts){ .type = PL_TYPE_COUNT, .key_u32 = "llama.attention.head_count", .key_u32_val = 8 };
    derive(src, dst, &o); /* head dim 32 now: attn_q's shape no longer matches... */
    pl_model *m = NULL;
    assert_int_not_equal(pl_model_load(ctx, dst, NULL, &m), PL_OK);
    assert_null(m);

    o = (derive_opts){ .type = PL_TYPE_COUNT, .key_str = "general.architecture", .key_str_val = "gemma2" };
    derive(src, dst, &o);
    expect_load_error(dst, PL_ERR_UNSUPPORTED, "gemma2");

    o = (derive_opts){ .type = PL_TYPE_COUNT, .retype = "blk.0.attn_q.weight", .retype_to = PL_TYPE_Q8_1 };
    derive(src, dst, &o);
    expect_load_error(dst, PL_ERR_UNSUPPORTED, "blk.0.attn_q.weight has unsupported type q8_1");

    o = (derive_opts){ .type = PL_TYPE_COUNT, .retype = "blk.0.attn_norm.weight", .retype_to = PL_TYPE_F16 };
    derive(src, dst, &o);
    expect_load_error(dst, PL_ERR_UNSUPPORTED, "blk.0.attn_norm.weight");

    o = (derive_opts){ .type = PL_TYPE_COUNT, .key_f32 = "llama.attention.layer_norm_rms_epsilon", .key_f32_val = -1 };
    derive(src, dst, &o);
    expect_load_error(dst, PL_ERR_FORMAT, "llama.attention.layer_norm_rms_epsilon");

    /* an IQ type: patch the type id of attn_q (written as Q4_0, which has IQ4_NL's block
     * size) in the tensor info; the file or the model must be refused naming it */
    o = (derive_opts){ .type = PL_TYPE_COUNT, .retype = "blk.0.attn_q.weight", .retype_to = PL_TYPE_Q4_0 };
    derive(src, dst, &o);
    FILE *f = fopen(dst, "r+b");
    assert_non_null(f);
    static uint8_t head[1 << 16];
    size_t got = fread(head, 1, sizeof head, f);
    const char *nm = "blk.0.attn_q.weight";
    size_t nl = strlen(nm), at = 0;
    for (size_t i = 8; i + nl < got; i++)
        if (memcmp(head + i, nm, nl) == 0 && head[i - 8] == nl) { at = i + nl; break; }
    assert_true(at > 0);
    uint32_t nd;
    memcpy(&nd, head + at, 4);
    size_t type_off = at + 4 + 8 * nd;
    uint32_t ty;
    memcpy(&ty, head + type_off, 4);
    assert_int_equal(ty, PL_TYPE_Q4_0);
    ty = PL_TYPE_IQ4_NL;
    fseek(f, (long)type_off, SEEK_SET);
    fwrite(&ty, 4, 1, f);
    fclose(f);
    m = NULL;
    pl_status st = pl_model_load(ctx, dst, NULL, &m);
    print_message("  iq4_nl -> %s: %s\n", pl_status_name(st), pl_ctx_last_error(ctx));
    assert_int_equal(st, PL_ERR_UNSUPPORTED);
    assert_true(strstr(pl_ctx_last_error(ctx), "iq4_nl") || strstr(pl_ctx_last_error(ctx), nm));

    m = NULL;
    assert_int_not_equal(pl_model_load(ctx, "/nonexistent/model.gguf", NULL, &m), PL_OK); /* gguf's status */
    assert_null(m);
    assert_non_null(strstr(pl_ctx_last_error(ctx), "/nonexistent/model.gguf"));
}

static void test_decode_errors(void **s) {
    (void)s;
    char path[512];
    fixture_path(path, sizeof path, "tiny-qwen3", "f32");
    pl_model *m = NULL;
    assert_int_equal(pl_model_load(ctx, path, NULL, &m), PL_OK);
    pl_context *c = NULL;
    pl_context_params cp = pl_context_default_params();
    cp.n_ctx = 40; /* blocks of 32: the second block is partly past n_ctx */
    cp.n_batch = 8;
    assert_int_equal(pl_context_init(m, &cp, &c), PL_OK);

    /* zero tokens: nothing happens */
    pl_batch z = { .n_tokens = 0, .tokens = prompt };
    assert_int_equal(pl_context_decode(c, &z), PL_OK);
    assert_int_equal(pl_context_n_outputs(c), 0);
    assert_int_equal(pl_context_kv_len(c, 0), 0);
    assert_null(pl_context_logits(c, 0));

    int32_t toks[48];
    for (int i = 0; i < 48; i++) toks[i] = (i * 37) % 512;
    pl_batch b = { .n_tokens = 3, .tokens = toks };
    int32_t bad[3] = { 1, 512, 2 };
    b.tokens = bad;
    assert_int_equal(pl_context_decode(c, &b), PL_ERR_INVALID_ARG);
    assert_non_null(strstr(pl_context_last_error(c), "512"));
    int32_t neg[1] = { -1 };
    b = (pl_batch){ .n_tokens = 1, .tokens = neg };
    assert_int_equal(pl_context_decode(c, &b), PL_ERR_INVALID_ARG);
    b = (pl_batch){ .n_tokens = 3, .tokens = toks, .seq = 1 };
    assert_int_equal(pl_context_decode(c, &b), PL_ERR_INVALID_ARG); /* one sequence only */
    int32_t pos[3] = { 0, 2, 3 };
    b = (pl_batch){ .n_tokens = 3, .tokens = toks, .pos = pos };
    assert_int_equal(pl_context_decode(c, &b), PL_ERR_INVALID_ARG);
    b = (pl_batch){ .n_tokens = 3, .tokens = toks, .all = true }; /* 3 rows > n_outputs_max 1 */
    assert_int_equal(pl_context_decode(c, &b), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_context_kv_len(c, 0), 0); /* nothing changed */

    /* fill to exactly n_ctx, then one more is refused and changes nothing */
    b = (pl_batch){ .n_tokens = 40, .tokens = toks };
    assert_int_equal(pl_context_decode(c, &b), PL_OK);
    assert_int_equal(pl_context_kv_len(c, 0), 40);
    float last[512];
    memcpy(last, pl_context_logits(c, 0), sizeof last);
    b = (pl_batch){ .n_tokens = 1, .tokens = toks + 40 };
    assert_int_equal(pl_context_decode(c, &b), PL_ERR_CONTEXT_FULL);
    assert_int_equal(pl_context_kv_len(c, 0), 40);
    b = (pl_batch){ .n_tokens = 8, .tokens = toks + 40 };
    assert_int_equal(pl_context_decode(c, &b), PL_ERR_CONTEXT_FULL);
    /* after truncating, the same token continues as it would have */
    assert_int_equal(pl_context_kv_truncate(c, 0, 39), PL_OK);
    b = (pl_batch){ .n_tokens = 1, .tokens = toks + 39 };
    assert_int_equal(pl_context_decode(c, &b), PL_OK);
    assert_true(rel_diff(pl_context_logits(c, 0), last, 512) <= 1e-6);
    /* KV ops on bad ids */
    assert_int_equal(pl_context_kv_len(c, 5), -1);
    assert_int_equal(pl_context_kv_truncate(c, 5, 0), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_context_kv_share(c, 0, 0, 41), PL_ERR_INVALID_ARG);
    pl_context_free(c);

    /* a KV pool smaller than the sequences' contexts: CONTEXT_FULL when blocks run out */
    cp = pl_context_default_params();
    cp.n_ctx = 64;
    cp.n_seq_max = 2;
    cp.n_kv = 64; /* 2 blocks in all */
    assert_int_equal(pl_context_init(m, &cp, &c), PL_OK);
    b = (pl_batch){ .n_tokens = 40, .tokens = toks, .seq = 0 };
    assert_int_equal(pl_context_decode(c, &b), PL_OK);
    b = (pl_batch){ .n_tokens = 1, .tokens = toks, .seq = 1 };
    assert_int_equal(pl_context_decode(c, &b), PL_ERR_CONTEXT_FULL);
    assert_int_equal(pl_context_kv_len(c, 1), 0);
    /* sharing needs no new block until the shared partial block is written */
    assert_int_equal(pl_context_kv_share(c, 0, 1, 32), PL_OK);
    b = (pl_batch){ .n_tokens = 1, .tokens = toks, .seq = 1 };
    assert_int_equal(pl_context_decode(c, &b), PL_ERR_CONTEXT_FULL); /* needs a block for slot 32 */
    assert_int_equal(pl_context_kv_truncate(c, 0, 20), PL_OK);       /* frees sequence 0's 2nd block */
    assert_int_equal(pl_context_decode(c, &b), PL_OK);
    pl_context_free(c);

    pl_context_free(NULL);
    pl_model_free(NULL);
    assert_int_equal(pl_context_init(NULL, NULL, &c), PL_ERR_INVALID_ARG);
    cp = pl_context_default_params();
    cp.n_ctx = -1;
    assert_int_equal(pl_context_init(m, &cp, &c), PL_ERR_INVALID_ARG);
    pl_model_free(m);
}

static void test_info(void **s) {
    (void)s;
    char path[512];
    fixture_path(path, sizeof path, "tiny-phi3", "f32");
    pl_model *m = NULL;
    assert_int_equal(pl_model_load(ctx, path, NULL, &m), PL_OK);
    const pl_model_info *mi = pl_model_get_info(m);
    assert_string_equal(mi->arch, "phi3");
    assert_int_equal(mi->n_embd, 256);
    assert_int_equal(mi->n_layer, 2);
    assert_int_equal(mi->n_head, 4);
    assert_int_equal(mi->head_dim_k, 64);
    assert_int_equal(mi->n_ff, 512);
    assert_int_equal(mi->n_vocab, 512);
    assert_false(mi->tied_output);
    assert_non_null(pl_model_gguf(m));
    pl_context *c = NULL;
    pl_context_params cp = pl_context_default_params();
    cp.n_ctx = 100;
    assert_int_equal(pl_context_init(m, &cp, &c), PL_OK);
    /* 100 tokens -> 4 blocks of 32; 2 layers x (K + V) x n_head_kv x 64 x 2 bytes per slot */
    pl_context_memory mem = pl_context_memory_usage(c);
    assert_int_equal(mem.kv_bytes, (uint64_t)2 * 2 * mi->n_head_kv * 64 * 2 * 128);
    assert_true(mem.scratch_bytes > 0);
    pl_context_free(c);
    pl_model_free(m);
}

/* YaRN frequencies, worked out by hand for n_rot 64, base 10000, original context 512,
 * factor 4, betas 32 / 1: the ramp runs from pair floor(3.25) = 3 to ceil(15.3) = 16
 * (n_rot ln(512 / (beta 2 pi)) / (2 ln 10000)); pairs up to 3 keep their frequency,
 * pairs from 16 on are divided by 4, pair 8 mixes 5/13 of the scaled one. */
static void test_rope_yarn(void **s) {
    (void)s;
    pl_model m = { 0 };
    pl_arch_info a = { .name = "llama" };
    m.arch = &a;
    m.info.n_rot = 64;
    m.info.rope_base = 10000.0f;
    m.info.n_ctx_train = 512;
    m.rope_orig_ctx = 512;
    m.rope_freq_scale = 0.25f;
    m.rope_yarn = true;
    m.rope_attn_factor = 1.0f;
    m.yarn_beta_fast = 32.0f;
    m.yarn_beta_slow = 1.0f;
    pl_rope r;
    pl_rope_init(&m, 2048, &r);
    for (int i = 0; i < 32; i++) {
        double f = pow(10000.0, -2.0 * i / 64.0), want;
        if (i <= 3) want = f;
        else if (i >= 16) want = f / 4;
        else want = f * (0.25 * (i - 3) / 13.0 + (1.0 - (i - 3) / 13.0));
        assert_true(fabs(r.freq[i] - want) <= 1e-12 * f);
    }
    assert_true(fabs(r.mscale - (1.0 + 0.1 * log(4.0))) < 1e-6); /* 1.1386 */
    /* linear: every frequency divided by the factor, no attention factor */
    m.rope_yarn = false;
    pl_rope_init(&m, 2048, &r);
    for (int i = 0; i < 32; i++) assert_true(fabs(r.freq[i] - pow(10000.0, -2.0 * i / 64.0) / 4) <= 1e-12);
    assert_true(r.mscale == 1.0f);
}

/* ---- parley generate, as a user runs it ---- */

typedef struct run_out {
    int  code;
    char out[8192], err[8192];
} run_out;

static void slurp(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
}

static void run_cli(run_out *r, const char *fmt, ...) {
    char args[2048], cmd[4096], o[600], e[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(o, sizeof o, "%s/test_model-%d-cli.out", fixdir, (int)getpid());
    snprintf(e, sizeof e, "%s/test_model-%d-cli.err", fixdir, (int)getpid());
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s' </dev/null", getenv("PL_BIN"), args, o, e);
    int st = system(cmd);
    r->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    slurp(o, r->out, sizeof r->out);
    slurp(e, r->err, sizeof r->err);
}

static void test_generate_cli(void **s) {
    (void)s;
    if (!getenv("PL_BIN")) skip();
    char path[512];
    fixture_path(path, sizeof path, "tiny-qwen2", "f32");
    static run_out r;
    /* greedy ids: the same as the API's greedy continuation */
    run_cli(&r, "generate -m '%s' --ids '72 101 108 108 111' -n 16 --print-ids --ignore-eos -t 1", path);
    assert_int_equal(r.code, 0);
    engine e = engine_open(path, 1, 1);
    int32_t p[5] = { 72, 101, 108, 108, 111 }, want[16];
    decode_seq(&e, p, 5, 0, false); /* the generated vocab asks for no BOS */
    for (int i = 0; i < 16; i++) {
        want[i] = argmax(pl_context_logits(e.c, 0), e.V);
        decode_seq(&e, &want[i], 1, 0, false);
    }
    engine_close(&e);
    char expect[256] = "";
    for (int i = 0; i < 16; i++)
        snprintf(expect + strlen(expect), sizeof expect - strlen(expect), i ? " %d" : "%d", want[i]);
    strcat(expect, "\n");
    assert_string_equal(r.out, expect); /* stdout: the ids only */
    assert_non_null(strstr(r.err, "weights mapped"));
    assert_non_null(strstr(r.err, "KV cache"));
    assert_non_null(strstr(r.err, "scratch"));
    assert_non_null(strstr(r.err, "prompt 5 tokens"));
    assert_non_null(strstr(r.err, "generated 16 tokens"));

    /* a text prompt goes through the vocabulary: "Hello" is these byte tokens here */
    static run_out r2;
    run_cli(&r2, "generate -m '%s' -p 'Hello' -n 16 --print-ids --ignore-eos -t 1", path);
    assert_int_equal(r2.code, 0);
    assert_string_equal(r2.out, expect);
    /* text output is the tokenizer's decoding of those ids */
    run_cli(&r2, "generate -m '%s' -p 'Hello' -n 16 --ignore-eos", path);
    assert_int_equal(r2.code, 0);
    pl_tokenizer *tk = NULL;
    assert_int_equal(pl_tokenizer_load_file(ctx, path, &tk), PL_OK);
    char text[1024];
    size_t tn = 0;
    assert_int_equal(pl_tokenizer_decode(tk, want, 16, NULL, text, sizeof text - 2, &tn), PL_OK);
    text[tn] = '\n';
    text[tn + 1] = 0;
    assert_string_equal(r2.out, text);
    pl_tokenizer_free(tk);

    /* sampling is seeded: same seed, same ids */
    run_cli(&r, "generate -m '%s' --ids '1 2 3' -n 12 --temp 1.5 --seed 9 --print-ids --ignore-eos", path);
    run_cli(&r2, "generate -m '%s' --ids '1 2 3' -n 12 --temp 1.5 --seed 9 --print-ids --ignore-eos", path);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, r2.out);

    /* a context too small ends generation early, cleanly */
    run_cli(&r, "generate -m '%s' --ids '1 2 3' -n 40 -c 8 --print-ids --ignore-eos", path);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.err, "context full"));

    /* bad input */
    run_cli(&r, "generate -m '%s' --ids '1 99999'", path);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "99999"));
    run_cli(&r, "generate -m '%s' --ids '' --no-bos", path);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "empty prompt"));
    run_cli(&r, "generate -m '%s' --ids 'x y'", path);
    assert_int_equal(r.code, 2);
    run_cli(&r, "generate --ids '1 2'");
    assert_int_equal(r.code, 2);
    run_cli(&r, "generate -m /nonexistent.gguf --ids '1 2'");
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "/nonexistent.gguf"));
    run_cli(&r, "generate --help");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "usage: parley generate"));
}

static int setup(void **s) {
    (void)s;
    fixdir = getenv("PL_FIXTURE_DIR");
    if (!fixdir) return -1;
    pl_ctx_params p = pl_ctx_default_params();
    p.log_level = PL_LOG_LEVEL_WARN;
    return pl_ctx_init(&ctx, &p) == PL_OK ? 0 : -1;
}

/* Scratch files carry this process's id (ctest runs the executable at several kernel
 * levels at once in one fixture dir); remove ours. */
static void remove_scratch(void) {
    char prefix[64], path[1024];
    snprintf(prefix, sizeof prefix, "test_model-%d-", (int)getpid());
    DIR *d = opendir(fixdir);
    if (!d) return;
    for (struct dirent *de; (de = readdir(d));) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0) continue;
        snprintf(path, sizeof path, "%s/%s", fixdir, de->d_name);
        remove(path);
    }
    closedir(d);
}

static int teardown(void **s) {
    (void)s;
    remove_scratch();
    pl_ctx_free(ctx);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_bad_models),
        cmocka_unit_test(test_multi_sequence_batch),
        cmocka_unit_test(test_rope_scaling),
        cmocka_unit_test(test_rope_yarn),
        cmocka_unit_test(test_generate_cli),
        cmocka_unit_test(test_llama),
        cmocka_unit_test(test_qwen2),
        cmocka_unit_test(test_qwen3),
        cmocka_unit_test(test_phi3),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
