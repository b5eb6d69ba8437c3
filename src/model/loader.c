/*
 * loader.c - pl_model_load(): GGUF metadata and tensors -> an immutable pl_model.
 *
 * Every key and tensor the architecture needs is checked before the model is
 * returned: presence, shape and type, with an error naming the key or tensor.
 * Weights are not copied: pl_mat rows point into the file mapping.
 * Cost: O(n_kv + n_tensors) lookups plus an array of n_layer pl_layer.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model_int.h"

/* Sanity limits: larger values are treated as a malformed file rather than an
 * invitation to allocate (they are far past any released model). */
#define MAX_EMBD   (1 << 17)
#define MAX_LAYERS 4096
#define MAX_HEADS  4096
#define MAX_FF     (1 << 20)
#define MAX_HDIM   1024
#define MAX_CTX    (1 << 24)

typedef struct loader {
    pl_model   *m;
    const char *arch;
    char        key[160];
} loader;

static pl_status err(loader *L, pl_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static pl_status err(loader *L, pl_status st, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pl_ctx_err(L->m->ctx, st, "%s", msg);
}

static const char *akey(loader *L, const char *suffix) {
    snprintf(L->key, sizeof L->key, "%s.%s", L->arch, suffix);
    return L->key;
}

/* {arch}.suffix as an integer in [lo, hi]; absent: *out = def when !required. */
static pl_status get_int(loader *L, const char *suffix, bool required, int64_t lo, int64_t hi, int32_t def,
                         int32_t *out) {
    const char *k = akey(L, suffix);
    int64_t v;
    pl_status st = pl_gguf_get_i64(L->m->gguf, k, &v);
    if (st == PL_ERR_NOT_FOUND && !required) {
        *out = def;
        return PL_OK;
    }
    if (st == PL_ERR_NOT_FOUND) return err(L, PL_ERR_NOT_FOUND, "missing metadata key %s", k);
    if (st != PL_OK) return err(L, PL_ERR_FORMAT, "metadata key %s: %s", k, pl_status_str(st));
    if (v < lo || v > hi)
        return err(L, PL_ERR_FORMAT, "metadata key %s = %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]", k,
                   v, lo, hi);
    *out = (int32_t)v;
    return PL_OK;
}

static pl_status get_float(loader *L, const char *suffix, bool required, float def, float *out) {
    const char *k = akey(L, suffix);
    pl_status st = pl_gguf_get_f32(L->m->gguf, k, out);
    if (st == PL_ERR_NOT_FOUND && !required) {
        *out = def;
        return PL_OK;
    }
    if (st == PL_ERR_NOT_FOUND) return err(L, PL_ERR_NOT_FOUND, "missing metadata key %s", k);
    if (st != PL_OK) return err(L, PL_ERR_FORMAT, "metadata key %s: %s", k, pl_status_str(st));
    if (!isfinite(*out)) return err(L, PL_ERR_FORMAT, "metadata key %s is not finite", k);
    return PL_OK;
}

static bool find_tensor(loader *L, const char *name, pl_gguf_tensor *t) {
    int64_t i = pl_gguf_find_tensor(L->m->gguf, name);
    return i >= 0 && pl_gguf_tensor_at(L->m->gguf, i, t) == PL_OK;
}

static pl_status check_shape(loader *L, const char *name, const pl_gguf_tensor *t, int64_t ne0, int64_t ne1) {
    int64_t want[4] = { ne0, ne1, 1, 1 };
    for (int d = 0; d < 4; d++)
        if (t->ne[d] != want[d])
            return err(L, PL_ERR_FORMAT, "tensor %s has shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                       "], expected [%" PRId64 ", %" PRId64 "]",
                       name, t->ne[0], t->ne[1], t->ne[2], t->ne[3], ne0, ne1);
    /* block structs are read in place: their fields need 4-byte alignment at most */
    if ((uintptr_t)t->data % 4 != 0) return err(L, PL_ERR_FORMAT, "tensor %s data is not 4-byte aligned", name);
    return PL_OK;
}

/* A weight matrix [ne0 -> ne1] in any type the table can dot. */
static pl_status get_mat(loader *L, const char *name, int64_t ne0, int64_t ne1, bool required, pl_mat *out) {
    pl_gguf_tensor t;
    memset(out, 0, sizeof *out);
    if (!find_tensor(L, name, &t)) {
        if (!required) return PL_OK;
        return err(L, PL_ERR_NOT_FOUND, "missing tensor %s", name);
    }
    pl_status st = check_shape(L, name, &t, ne0, ne1);
    if (st != PL_OK) return st;
    const pl_type_info *ti = pl_type_get(t.type);
    if (!ti || !ti->vec_dot || !ti->to_f32)
        return err(L, PL_ERR_UNSUPPORTED, "tensor %s has unsupported type %s (id %u)", name, pl_type_name(t.type),
                   t.type);
    st = pl_mat_init(out, t.type, ne0, ne1, t.data);
    if (st != PL_OK) return err(L, st, "tensor %s: %s", name, pl_status_str(st));
    return PL_OK;
}

/* A 1-D f32 vector of n values (norm weights, biases, rope factors). */
static pl_status get_vec(loader *L, const char *name, int64_t n, bool required, const float **out) {
    pl_gguf_tensor t;
    *out = NULL;
    if (!find_tensor(L, name, &t)) {
        if (!required) return PL_OK;
        return err(L, PL_ERR_NOT_FOUND, "missing tensor %s", name);
    }
    pl_status st = check_shape(L, name, &t, n, 1);
    if (st != PL_OK) return st;
    if (t.type != PL_TYPE_F32)
        return err(L, PL_ERR_UNSUPPORTED, "tensor %s has type %s, expected f32", name, pl_type_name(t.type));
    *out = t.data;
    return PL_OK;
}

static pl_status load_hparams(loader *L) {
    pl_model *m = L->m;
    pl_model_info *mi = &m->info;
    pl_status st;
#define TRY(x) do { if ((st = (x)) != PL_OK) return st; } while (0)
    TRY(get_int(L, "embedding_length", true, 1, MAX_EMBD, 0, &mi->n_embd));
    TRY(get_int(L, "block_count", true, 1, MAX_LAYERS, 0, &mi->n_layer));
    TRY(get_int(L, "feed_forward_length", true, 1, MAX_FF, 0, &mi->n_ff));
    TRY(get_int(L, "attention.head_count", true, 1, MAX_HEADS, 0, &mi->n_head));
    TRY(get_int(L, "attention.head_count_kv", false, 1, MAX_HEADS, mi->n_head, &mi->n_head_kv));
    TRY(get_int(L, "context_length", true, 1, MAX_CTX, 0, &mi->n_ctx_train));
    if (mi->n_head % mi->n_head_kv != 0)
        return err(L, PL_ERR_FORMAT,
                   "inconsistent head counts: %s.attention.head_count = %d is not a multiple of "
                   "%s.attention.head_count_kv = %d",
                   L->arch, mi->n_head, L->arch, mi->n_head_kv);
    int32_t hd = mi->n_embd % mi->n_head == 0 ? mi->n_embd / mi->n_head : 0;
    TRY(get_int(L, "attention.key_length", false, 1, MAX_HDIM, hd, &mi->head_dim_k));
    TRY(get_int(L, "attention.value_length", false, 1, MAX_HDIM, hd, &mi->head_dim_v));
    if (mi->head_dim_k == 0 || mi->head_dim_v == 0)
        return err(L, PL_ERR_FORMAT,
                   "inconsistent head counts: %s.embedding_length = %d is not a multiple of "
                   "%s.attention.head_count = %d (and no %s.attention.key_length)",
                   L->arch, mi->n_embd, L->arch, mi->n_head, L->arch);
    if (mi->head_dim_k > MAX_HDIM || mi->head_dim_v > MAX_HDIM)
        return err(L, PL_ERR_FORMAT, "head size %d is larger than %d", mi->head_dim_k, MAX_HDIM);
    TRY(get_int(L, "rope.dimension_count", false, 2, mi->head_dim_k, mi->head_dim_k, &mi->n_rot));
    if (mi->n_rot % 2) return err(L, PL_ERR_FORMAT, "%s.rope.dimension_count = %d is odd", L->arch, mi->n_rot);
    if (m->arch->has_qk_norm && mi->head_dim_k != mi->head_dim_v)
        return err(L, PL_ERR_UNSUPPORTED, "%s: key_length != value_length with q/k norms", L->arch);
    TRY(get_float(L, "attention.layer_norm_rms_epsilon", true, 0, &mi->rms_eps));
    if (!(mi->rms_eps > 0.0f && mi->rms_eps < 1.0f))
        return err(L, PL_ERR_FORMAT, "metadata key %s = %g is out of range (0, 1)", akey(L, "attention.layer_norm_rms_epsilon"),
                   (double)mi->rms_eps);
    TRY(get_float(L, "rope.freq_base", false, 10000.0f, &mi->rope_base));
    if (!(mi->rope_base > 1.0f)) return err(L, PL_ERR_FORMAT, "metadata key %s must be > 1", akey(L, "rope.freq_base"));

    /* rope scaling: rope.scaling.type (none | linear | yarn | longrope) + factor,
     * or the older rope.scale_linear */
    float factor = 1.0f;
    m->rope_freq_scale = 1.0f;
    m->rope_attn_factor = 1.0f;
    m->yarn_beta_fast = 32.0f;
    m->yarn_beta_slow = 1.0f;
    pl_str type = { 0 };
    const char *tk = akey(L, "rope.scaling.type");
    bool have_type = pl_gguf_get_str(m->gguf, tk, &type) == PL_OK;
    TRY(get_float(L, "rope.scaling.factor", false, 0.0f, &factor));
    if (!have_type) {
        float lin;
        TRY(get_float(L, "rope.scale_linear", false, 0.0f, &lin));
        if (lin > 0.0f) factor = lin;
    }
    TRY(get_int(L, "rope.scaling.original_context_length", false, 0, MAX_CTX, 0, &m->rope_orig_ctx));
    TRY(get_float(L, "rope.scaling.attn_factor", false, 1.0f, &m->rope_attn_factor));
    TRY(get_float(L, "rope.scaling.yarn_beta_fast", false, 32.0f, &m->yarn_beta_fast));
    TRY(get_float(L, "rope.scaling.yarn_beta_slow", false, 1.0f, &m->yarn_beta_slow));
    if (have_type && pl_str_eq(type, "yarn")) m->rope_yarn = true;
    else if (have_type && !pl_str_eq(type, "none") && !pl_str_eq(type, "linear") && !pl_str_eq(type, "longrope"))
        return err(L, PL_ERR_UNSUPPORTED, "unsupported %s '%.*s'", tk, (int)type.len, type.ptr);
    bool scaled = !have_type || !pl_str_eq(type, "none");
    if (scaled && factor > 0.0f && factor != 1.0f && !(have_type && pl_str_eq(type, "longrope"))) {
        if (!(factor >= 1e-3f && factor <= 1e6f))
            return err(L, PL_ERR_FORMAT, "metadata key %s = %g is out of range", akey(L, "rope.scaling.factor"),
                       (double)factor);
        m->rope_freq_scale = 1.0f / factor;
    }
    if (m->rope_yarn && m->rope_freq_scale == 1.0f) m->rope_yarn = false; /* nothing to scale */
    if (!(m->rope_attn_factor > 0.0f && m->rope_attn_factor < 100.0f))
        return err(L, PL_ERR_FORMAT, "metadata key %s is out of range", akey(L, "rope.scaling.attn_factor"));
    return PL_OK;
#undef TRY
}

static pl_status load_tensors(loader *L) {
    pl_model *m = L->m;
    pl_model_info *mi = &m->info;
    const pl_arch_info *a = m->arch;
    const int64_t E = mi->n_embd, F = mi->n_ff;
    const int64_t QD = (int64_t)mi->n_head * mi->head_dim_k, KD = (int64_t)mi->n_head_kv * mi->head_dim_k,
                  VD = (int64_t)mi->n_head_kv * mi->head_dim_v, OD = (int64_t)mi->n_head * mi->head_dim_v;
    pl_status st;
#define TRY(x) do { if ((st = (x)) != PL_OK) return st; } while (0)
    /* token_embd gives n_vocab: its second dimension */
    pl_gguf_tensor te;
    if (!find_tensor(L, "token_embd.weight", &te)) return err(L, PL_ERR_NOT_FOUND, "missing tensor token_embd.weight");
    if (te.ne[1] < 1 || te.ne[1] > INT32_MAX / 2)
        return err(L, PL_ERR_FORMAT, "tensor token_embd.weight has %" PRId64 " rows", te.ne[1]);
    mi->n_vocab = (int32_t)te.ne[1];
    TRY(get_mat(L, "token_embd.weight", E, mi->n_vocab, true, &m->tok_embd));
    TRY(get_vec(L, "output_norm.weight", E, true, &m->output_norm));
    TRY(get_mat(L, "output.weight", E, mi->n_vocab, false, &m->output));
    mi->tied_output = m->output.data == NULL;
    if (mi->tied_output) m->output = m->tok_embd;
    int64_t pairs = mi->n_rot / 2;
    TRY(get_vec(L, "rope_freqs.weight", pairs, false, &m->rope_factors));
    if (!m->rope_factors) {
        TRY(get_vec(L, "rope_factors_short.weight", pairs, false, &m->rope_factors));
        TRY(get_vec(L, "rope_factors_long.weight", pairs, false, &m->rope_factors_long));
    }

    m->layers = pl_calloc(m->ctx, (size_t)mi->n_layer, sizeof *m->layers);
    if (!m->layers) return err(L, PL_ERR_NOMEM, "out of memory for %d layers", mi->n_layer);
    char nm[96];
#define T(suffix) (snprintf(nm, sizeof nm, "blk.%d." suffix, i), nm)
    for (int i = 0; i < mi->n_layer; i++) {
        pl_layer *ly = &m->layers[i];
        TRY(get_vec(L, T("attn_norm.weight"), E, true, &ly->attn_norm));
        if (a->fused_qkv) {
            TRY(get_mat(L, T("attn_qkv.weight"), E, QD + KD + VD, true, &ly->wqkv));
        } else {
            TRY(get_mat(L, T("attn_q.weight"), E, QD, true, &ly->wq));
            TRY(get_mat(L, T("attn_k.weight"), E, KD, true, &ly->wk));
            TRY(get_mat(L, T("attn_v.weight"), E, VD, true, &ly->wv));
        }
        if (a->has_qkv_bias) {
            TRY(get_vec(L, T("attn_q.bias"), QD, true, &ly->bq));
            TRY(get_vec(L, T("attn_k.bias"), KD, true, &ly->bk));
            TRY(get_vec(L, T("attn_v.bias"), VD, true, &ly->bv));
        }
        if (a->has_qk_norm) {
            TRY(get_vec(L, T("attn_q_norm.weight"), mi->head_dim_k, true, &ly->q_norm));
            TRY(get_vec(L, T("attn_k_norm.weight"), mi->head_dim_k, true, &ly->k_norm));
        }
        TRY(get_mat(L, T("attn_output.weight"), OD, E, true, &ly->wo));
        TRY(get_vec(L, T("ffn_norm.weight"), E, true, &ly->ffn_norm));
        if (a->fused_gate_up) {
            TRY(get_mat(L, T("ffn_up.weight"), E, 2 * F, true, &ly->w_gate_up));
        } else {
            TRY(get_mat(L, T("ffn_gate.weight"), E, F, true, &ly->w_gate));
            TRY(get_mat(L, T("ffn_up.weight"), E, F, true, &ly->w_up));
        }
        TRY(get_mat(L, T("ffn_down.weight"), F, E, true, &ly->w_down));
    }
#undef T
#undef TRY
    return PL_OK;
}

pl_model_params pl_model_default_params(void) {
    return (pl_model_params){ .check_memory = true };
}

pl_status pl_model_load(pl_ctx *ctx, const char *path, const pl_model_params *params, pl_model **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    if (!ctx || !path) return PL_ERR_INVALID_ARG;
    pl_model_params p = params ? *params : pl_model_default_params();
    pl_load_clock clk;
    pl_load_clock_start(&clk);
    pl_model *m = pl_calloc(ctx, 1, sizeof *m);
    if (!m) return pl_ctx_err(ctx, PL_ERR_NOMEM, "out of memory");
    m->ctx = ctx;
    pl_status st = pl_gguf_open(ctx, path, &m->gguf);
    if (st != PL_OK) {
        pl_free(ctx, m);
        return st; /* the gguf reader named the problem */
    }
    loader L = { .m = m };
    pl_str an;
    st = pl_gguf_get_str(m->gguf, "general.architecture", &an);
    if (st != PL_OK) {
        st = err(&L, st == PL_ERR_NOT_FOUND ? PL_ERR_NOT_FOUND : PL_ERR_FORMAT,
                 "%s: missing or non-string metadata key general.architecture", path);
        goto fail;
    }
    m->arch = pl_arch_find(an.ptr, an.len);
    if (!m->arch) {
        st = err(&L, PL_ERR_UNSUPPORTED, "%s: unsupported architecture '%.*s' (general.architecture)", path,
                 (int)(an.len > 64 ? 64 : an.len), an.ptr);
        goto fail;
    }
    L.arch = m->arch->name;
    m->info.arch = m->arch->name;
    if ((st = load_hparams(&L)) != PL_OK || (st = load_tensors(&L)) != PL_OK) {
        /* prefix the file name to the message the checks left */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", pl_ctx_last_error(ctx));
        pl_ctx_err(ctx, st, "%s: %s", path, msg);
        goto fail;
    }
    pl_str name;
    if (pl_gguf_get_str(m->gguf, "general.name", &name) == PL_OK) pl_str_copy(name, m->info.name, sizeof m->info.name);
    uint32_t ft;
    m->info.file_type = pl_gguf_get_u32(m->gguf, "general.file_type", &ft) == PL_OK ? ft : UINT32_MAX;
    m->info.file_bytes = pl_gguf_file_size(m->gguf);
    for (int64_t i = 0; i < pl_gguf_n_tensors(m->gguf); i++) {
        pl_gguf_tensor t;
        if (pl_gguf_tensor_at(m->gguf, i, &t) == PL_OK) m->info.weight_bytes += t.nbytes;
    }
    /* the rest (memory check, touch, warm-up) is in load.c */
    if ((st = pl_model_load_finish(m, path, &p, &clk)) != PL_OK) goto fail;
    *out = m;
    return PL_OK;
fail:
    pl_model_free(m);
    return st;
}

void pl_model_free(pl_model *m) {
    if (!m) return;
    pl_free(m->ctx, m->layers);
    pl_gguf_free(m->gguf);
    pl_free(m->ctx, m);
}

const pl_model_info *pl_model_get_info(const pl_model *m) { return m ? &m->info : NULL; }
const pl_model_load_stats *pl_model_get_load_stats(const pl_model *m) { return m ? &m->load : NULL; }
const pl_gguf *pl_model_gguf(const pl_model *m) { return m ? m->gguf : NULL; }
