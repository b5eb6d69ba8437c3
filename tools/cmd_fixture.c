/*
 * cmd_fixture.c - `parley fixture`: random-weight GGUF models at real shapes.
 *
 * Tests and benchmarks never use committed model files: they make them with
 * this tool. Weights are a counter-based hash of (seed, tensor, index), so any
 * byte range of any tensor can be produced on its own: the writer streams a
 * multi-GB file through a small buffer, and the output is identical for a
 * given seed whatever the chunking. Cost: one hash and one type conversion per
 * value (about 1-2 s per 100 M values for f16; the quantized types cost what
 * their reference quantizer costs).
 *
 * Quant mixes follow the community's rules (shared formats.md, "Standard
 * K-quant mixes") so file sizes match the published ones.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"

int cmd_fixture_whisper(pl_cli *cli, int argc, char **argv); /* cmd_fixture_whisper.c */
#include "parley/gguf.h"
#include "parley/tensor.h"

/* ---- presets: one row per shape ---- */

typedef enum fx_arch { FX_LLAMA, FX_QWEN2, FX_QWEN3, FX_PHI3, FX_ARCH_COUNT } fx_arch;

static const char *const fx_arch_names[FX_ARCH_COUNT] = {
    [FX_LLAMA] = "llama", [FX_QWEN2] = "qwen2", [FX_QWEN3] = "qwen3", [FX_PHI3] = "phi3",
};

typedef struct fx_preset {
    const char *name, *model_name;
    fx_arch     arch;
    uint32_t    n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx;
    float       rope_base, eps;
    bool        tied;       /* no output.weight: logits use token_embd */
    bool        llama3_rope; /* rope_freqs tensor, llama3-style scaling (factor 32, orig ctx 8192) */
} fx_preset;

static const fx_preset presets[] = {
    { .name = "tiny", .model_name = "tiny-llama", .arch = FX_LLAMA, .n_embd = 256, .n_layer = 2,
      .n_head = 4, .n_head_kv = 2, .head_dim = 64, .n_ff = 512, .n_vocab = 512, .n_ctx = 512,
      .rope_base = 10000.0f, .eps = 1e-5f },
    { .name = "tiny-qwen2", .model_name = "tiny-qwen2", .arch = FX_QWEN2, .n_embd = 256, .n_layer = 2,
      .n_head = 4, .n_head_kv = 2, .head_dim = 64, .n_ff = 512, .n_vocab = 512, .n_ctx = 512,
      .rope_base = 1000000.0f, .eps = 1e-6f },
    { .name = "tiny-qwen3", .model_name = "tiny-qwen3", .arch = FX_QWEN3, .n_embd = 256, .n_layer = 2,
      .n_head = 4, .n_head_kv = 2, .head_dim = 64, .n_ff = 512, .n_vocab = 512, .n_ctx = 512,
      .rope_base = 1000000.0f, .eps = 1e-6f },
    { .name = "tiny-phi3", .model_name = "tiny-phi3", .arch = FX_PHI3, .n_embd = 256, .n_layer = 2,
      .n_head = 4, .n_head_kv = 4, .head_dim = 64, .n_ff = 512, .n_vocab = 512, .n_ctx = 512,
      .rope_base = 10000.0f, .eps = 1e-5f },
    { .name = "smollm2-135m", .model_name = "SmolLM2-135M (random weights)", .arch = FX_LLAMA,
      .n_embd = 576, .n_layer = 30, .n_head = 9, .n_head_kv = 3, .head_dim = 64, .n_ff = 1536,
      .n_vocab = 49152, .n_ctx = 8192, .rope_base = 100000.0f, .eps = 1e-5f, .tied = true },
    { .name = "qwen2.5-0.5b", .model_name = "Qwen2.5-0.5B (random weights)", .arch = FX_QWEN2,
      .n_embd = 896, .n_layer = 24, .n_head = 14, .n_head_kv = 2, .head_dim = 64, .n_ff = 4864,
      .n_vocab = 151936, .n_ctx = 32768, .rope_base = 1000000.0f, .eps = 1e-6f, .tied = true },
    { .name = "llama-3.2-1b", .model_name = "Llama-3.2-1B (random weights)", .arch = FX_LLAMA,
      .n_embd = 2048, .n_layer = 16, .n_head = 32, .n_head_kv = 8, .head_dim = 64, .n_ff = 8192,
      .n_vocab = 128256, .n_ctx = 131072, .rope_base = 500000.0f, .eps = 1e-5f, .tied = true,
      .llama3_rope = true },
};
#define N_PRESETS (sizeof presets / sizeof presets[0])

/* quant mixes and their per-tensor rules: pl_quant_mix_* (src/tensor/mix.c) */
typedef pl_quant_mix fx_mix;

/* ---- deterministic values ---- */

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static inline float unit_at(uint64_t key, uint64_t i) {
    uint64_t h = mix64(key + 0x9e3779b97f4a7c15ull * (i + 1));
    return (float)((double)(h >> 11) * 0x1p-52 - 1.0);
}

typedef enum fx_kind { FX_WEIGHT, FX_NORM, FX_BIAS, FX_EMBD, FX_ROPE_FREQS } fx_kind;

/* Progress on stderr: a rewritten line on a terminal, a line per 10% otherwise. */
typedef struct fx_progress {
    uint64_t total, done;
    int      last_pct;
    bool     tty;
    uint64_t t0_ns;
} fx_progress;

static void progress_add(fx_progress *p, uint64_t n) {
    p->done += n;
    int pct = p->total ? (int)(100 * p->done / p->total) : 100;
    if (pct == p->last_pct || (!p->tty && pct / 10 == p->last_pct / 10 && pct != 100)) return;
    p->last_pct = pct;
    double s = (double)(pl_time_ns() - p->t0_ns) / 1e9;
    double mib = (double)p->done / (1024.0 * 1024.0);
    fprintf(stderr, "%sparley fixture: %3d%% %8.1f MiB %6.1f MiB/s%s", p->tty ? "\r" : "", pct, mib,
            s > 0 ? mib / s : 0.0, p->tty && pct < 100 ? "" : "\n");
}

typedef struct fx_tensor {
    char     name[64];
    pl_type  type;
    int      n_dims;
    int64_t  ne[2];
    fx_kind  kind;
    float    scale;  /* weights: uniform(-scale, scale) */
    uint64_t key;    /* hash key: seed and tensor index */
    const fx_preset *p;
    fx_progress *progress;
    /* scratch for fills, grown on demand (tool code, not a hot path) */
    float   **fbuf;
    size_t   *fcap;
    pl_status *err;
} fx_tensor;

/* llama3-style rope scaling factors: rope_freqs[i] divides frequency i. */
static float llama3_freq_factor(const fx_preset *p, int64_t i) {
    const double factor = 32.0, low = 1.0, high = 4.0, orig_ctx = 8192.0;
    double freq = pow((double)p->rope_base, -2.0 * (double)i / (double)p->head_dim);
    double wavelen = 2.0 * M_PI / freq;
    if (wavelen < orig_ctx / high) return 1.0f;
    if (wavelen > orig_ctx / low) return (float)factor;
    double smooth = (orig_ctx / wavelen - low) / (high - low);
    return (float)(1.0 / ((1.0 - smooth) / factor + smooth));
}

static float value_at(const fx_tensor *t, int64_t i) {
    switch (t->kind) {
    case FX_NORM: return 1.0f + 0.1f * unit_at(t->key, (uint64_t)i);
    case FX_BIAS: return 0.1f * unit_at(t->key, (uint64_t)i);
    case FX_ROPE_FREQS: return llama3_freq_factor(t->p, i);
    default: return t->scale * unit_at(t->key, (uint64_t)i);
    }
}

/* Writer callback: produce bytes [offset, offset+n) of the tensor in its type.
 * Blocks are independent in every ggml type, so we generate and convert just
 * the blocks that cover the range. */
static pl_status fx_fill(void *ud, void *buf, uint64_t offset, size_t n) {
    fx_tensor *t = ud;
    const pl_type_info *ti = pl_type_get(t->type);
    uint64_t b0 = offset / ti->type_size;
    uint64_t b1 = (offset + n + ti->type_size - 1) / ti->type_size;
    size_t nvals = (size_t)(b1 - b0) * ti->block_size;
    size_t nbytes = (size_t)(b1 - b0) * ti->type_size;
    size_t need = nvals * sizeof(float) + nbytes;
    if (need > *t->fcap) {
        float *nb = realloc(*t->fbuf, need);
        if (!nb) return *t->err = PL_ERR_NOMEM;
        *t->fbuf = nb;
        *t->fcap = need;
    }
    float *vals = *t->fbuf;
    uint8_t *q = (uint8_t *)(vals + nvals);
    int64_t first = (int64_t)(b0 * ti->block_size);
    for (size_t k = 0; k < nvals; k++) vals[k] = value_at(t, first + (int64_t)k);
    pl_status st = pl_type_from_f32(t->type, vals, q, (int64_t)nvals);
    if (st != PL_OK) return *t->err = st;
    memcpy(buf, q + (offset - b0 * ti->type_size), n);
    progress_add(t->progress, n);
    return PL_OK;
}

/* ---- tokenizer ---- */

/* GPT-2 byte <-> unicode map: printable bytes map to themselves, the rest to
 * U+0100 upward, so every byte is one visible character. */
static int byte_to_cp(int b) {
    if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)) return b;
    int n = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || (c >= 0xae && c <= 0xff))) n++;
    return 256 + n;
}

static size_t put_utf8(char *o, int cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    o[0] = (char)(0xc0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3f));
    return 2; /* cp < 0x800 here */
}

static const char chatml_template[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/* A small byte-level BPE vocabulary: 256 byte tokens, three control tokens,
 * then padding. Enough for the engine to turn any text into ids. */
static pl_status write_generated_vocab(pl_gguf_writer *w, uint32_t n_vocab) {
    enum { N_SPECIAL = 3 };
    static const char *const specials[N_SPECIAL] = { "<|endoftext|>", "<|im_start|>", "<|im_end|>" };
    if (n_vocab < 256 + N_SPECIAL) return PL_ERR_INVALID_ARG;
    char **toks = calloc(n_vocab, sizeof *toks);
    int32_t *types = calloc(n_vocab, sizeof *types);
    pl_status st = (toks && types) ? PL_OK : PL_ERR_NOMEM;
    for (uint32_t i = 0; st == PL_OK && i < n_vocab; i++) {
        char buf[32];
        if (i < 256) {
            buf[put_utf8(buf, byte_to_cp((int)i))] = 0;
            types[i] = 1; /* normal */
        } else if (i < 256 + N_SPECIAL) {
            snprintf(buf, sizeof buf, "%s", specials[i - 256]);
            types[i] = 3; /* control */
        } else {
            snprintf(buf, sizeof buf, "[PAD%u]", i);
            types[i] = 5; /* unused */
        }
        if (!(toks[i] = strdup(buf))) st = PL_ERR_NOMEM;
    }
    if (st == PL_OK) st = pl_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    if (st == PL_OK) st = pl_gguf_writer_set_str(w, "tokenizer.ggml.pre", "default");
    if (st == PL_OK) st = pl_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, NULL, n_vocab);
    if (st == PL_OK) st = pl_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", PL_GGUF_TYPE_INT32, types, n_vocab);
    if (st == PL_OK) st = pl_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", NULL, NULL, 0);
    if (st == PL_OK) st = pl_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 256);
    if (st == PL_OK) st = pl_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 258);
    if (st == PL_OK) st = pl_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false);
    if (st == PL_OK) st = pl_gguf_writer_set_str(w, "tokenizer.chat_template", chatml_template);
    for (uint32_t i = 0; toks && i < n_vocab; i++) free(toks[i]);
    free(toks);
    free(types);
    return st;
}

/* Copy tokenizer.* from a vocab GGUF, padding tokens (and scores/types) to
 * n_vocab with "[PADn]" unused tokens. *n_vocab is raised to the file's count
 * when allow_grow (tiny presets follow the vocabulary). */
static pl_status copy_vocab(pl_cli *cli, pl_gguf_writer *w, const char *path, uint32_t *n_vocab, bool allow_grow) {
    pl_gguf *v = NULL;
    pl_status st = pl_gguf_open(cli->ctx, path, &v);
    if (st != PL_OK) {
        pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
        return st;
    }
    pl_gguf_arr toks;
    if (pl_gguf_get_arr(v, "tokenizer.ggml.tokens", &toks) != PL_OK || toks.elem_type != PL_GGUF_TYPE_STRING) {
        pl_cli_fail(cli, "%s: no tokenizer.ggml.tokens string array", path);
        pl_gguf_free(v);
        return PL_ERR_FORMAT;
    }
    if (toks.count > *n_vocab) {
        if (!allow_grow || toks.count > UINT32_MAX / 2) {
            pl_cli_fail(cli, "%s has %" PRIu64 " tokens, more than the preset's vocabulary of %u", path,
                        toks.count, *n_vocab);
            pl_gguf_free(v);
            return PL_ERR_RANGE;
        }
        *n_vocab = (uint32_t)toks.count;
    }
    uint32_t n = *n_vocab, have = (uint32_t)toks.count;
    for (int64_t i = 0; st == PL_OK && i < pl_gguf_n_kv(v); i++) {
        pl_str key = pl_gguf_kv_key(v, i);
        if (key.len < 10 || memcmp(key.ptr, "tokenizer.", 10) != 0) continue;
        bool per_token = pl_str_eq(key, "tokenizer.ggml.tokens") || pl_str_eq(key, "tokenizer.ggml.scores") ||
                         pl_str_eq(key, "tokenizer.ggml.token_type");
        if (!per_token || n == have) {
            st = pl_gguf_writer_copy_kv(w, v, i);
            continue;
        }
        char kbuf[64];
        pl_str_copy(key, kbuf, sizeof kbuf);
        pl_gguf_arr a;
        if ((st = pl_gguf_kv_arr(v, i, &a)) != PL_OK) break;
        if (a.count != have) {
            pl_cli_fail(cli, "%s: %s has %" PRIu64 " entries, tokens has %u", path, kbuf, a.count, have);
            st = PL_ERR_FORMAT;
            break;
        }
        if (a.elem_type == PL_GGUF_TYPE_STRING) {
            char **s = calloc(n, sizeof *s);
            size_t *lens = calloc(n, sizeof *lens);
            if (!s || !lens) st = PL_ERR_NOMEM;
            for (uint32_t k = 0; st == PL_OK && k < n; k++) {
                if (k < have) {
                    pl_str e;
                    pl_gguf_arr_str(&a, k, &e);
                    s[k] = (char *)e.ptr; /* borrowed from the mapping */
                    lens[k] = e.len;
                } else {
                    char pad[32];
                    int len = snprintf(pad, sizeof pad, "[PAD%u]", k);
                    if (!(s[k] = strdup(pad))) st = PL_ERR_NOMEM;
                    lens[k] = (size_t)len;
                }
            }
            if (st == PL_OK) st = pl_gguf_writer_set_arr_str(w, kbuf, (const char *const *)s, lens, n);
            for (uint32_t k = have; s && k < n; k++) free(s[k]);
            free(s);
            free(lens);
        } else if (a.elem_type == PL_GGUF_TYPE_FLOAT32) {
            float *f = calloc(n, sizeof *f);
            if (!f) st = PL_ERR_NOMEM;
            for (uint32_t k = 0; st == PL_OK && k < have; k++) st = pl_gguf_arr_f32(&a, k, &f[k]);
            for (uint32_t k = have; st == PL_OK && k < n; k++) f[k] = -1000.0f;
            if (st == PL_OK) st = pl_gguf_writer_set_arr(w, kbuf, PL_GGUF_TYPE_FLOAT32, f, n);
            free(f);
        } else {
            int32_t *t = calloc(n, sizeof *t);
            if (!t) st = PL_ERR_NOMEM;
            for (uint32_t k = 0; st == PL_OK && k < have; k++) {
                int64_t x;
                st = pl_gguf_arr_i64(&a, k, &x);
                t[k] = (int32_t)x;
            }
            for (uint32_t k = have; st == PL_OK && k < n; k++) t[k] = 5; /* unused */
            if (st == PL_OK) st = pl_gguf_writer_set_arr(w, kbuf, PL_GGUF_TYPE_INT32, t, n);
            free(t);
        }
    }
    if (st != PL_OK && st != PL_ERR_FORMAT) pl_cli_fail(cli, "copying the vocabulary: %s", pl_status_str(st));
    /* The writer copied every value it keeps; the mapping can go. */
    pl_gguf_free(v);
    return st;
}

/* ---- the model ---- */

static const char usage_text[] =
    "usage: parley fixture --preset NAME [options] -o OUT.gguf\n"
    "\n"
    "Write a GGUF model with random weights at a real architecture's shape, for\n"
    "tests and benchmarks. The same seed gives the same file, byte for byte.\n"
    "\n"
    "options:\n"
    "  --preset NAME   shape to write (see --list)\n"
    "  --type T        weight type or quant mix: f32, f16 (default), bf16, q8_0, q4_0,\n"
    "                  q4_1, q5_0, q5_1, q6_k, q4_k_m, q5_k_m (quantized types need\n"
    "                  the type table's quantizer)\n"
    "  --seed N        random seed (default 1)\n"
    "  --vocab FILE    take the tokenizer from a GGUF (padded to the preset's vocabulary\n"
    "                  size; tiny presets take the file's size). Default: a small\n"
    "                  generated byte-level vocabulary\n"
    "  --layers N      override the layer count (smaller files for quick runs)\n"
    "  -o, --output F  output path (written to F.tmp, then renamed)\n"
    "  --list          list the presets and types\n"
    "  --whisper       write a whisper.cpp ggml speech model instead (see\n"
    "                  'parley fixture --whisper --help')\n"
    "  -h, --help      this text\n";

static void list_presets(void) {
    printf("%-14s %-6s %6s %6s %5s %4s %6s %7s %s\n", "preset", "arch", "embd", "layers", "heads", "kv", "ffn",
           "vocab", "output");
    for (size_t i = 0; i < N_PRESETS; i++) {
        const fx_preset *p = &presets[i];
        printf("%-14s %-6s %6u %6u %5u %4u %6u %7u %s\n", p->name, fx_arch_names[p->arch], p->n_embd, p->n_layer,
               p->n_head, p->n_head_kv, p->n_ff, p->n_vocab, p->tied ? "tied" : "separate");
    }
    printf("\ntypes:");
    for (size_t i = 0; i < pl_quant_mix_count(); i++) printf(" %s", pl_quant_mix_at(i)->name);
    printf("\n");
}

typedef struct fx_state {
    fx_tensor *t;
    int        n, cap;
    float     *fbuf;
    size_t     fcap;
    pl_status  err;
    fx_progress progress;
    const fx_mix *mix; /* the quant mix: types of 2-D tensors by name */
} fx_state;

static fx_tensor *add_tensor(fx_state *s, const fx_preset *p, uint64_t seed, const char *name, fx_kind kind,
                             pl_type type, int n_dims, int64_t ne0, int64_t ne1) {
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 64;
        fx_tensor *nt = realloc(s->t, (size_t)nc * sizeof *nt);
        if (!nt) return NULL;
        s->t = nt;
        s->cap = nc;
    }
    fx_tensor *t = &s->t[s->n];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = kind;
    t->type = n_dims == 1 ? PL_TYPE_F32
              : s->mix ? pl_quant_mix_type(s->mix, name, n_dims, ne0, (int32_t)p->n_layer, p->tied)
                       : type;
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->scale = kind == FX_EMBD ? 1.0f : (float)(sqrt(3.0) / sqrt((double)ne0));
    t->key = mix64(seed * 0x100000001b3ull + (uint64_t)s->n);
    t->p = p;
    s->n++;
    return t;
}

/* Build the tensor list for a preset and mix, in the file order real
 * converters use: token_embd, rope_freqs, blocks, output_norm, output. */
static pl_status plan_tensors(fx_state *s, const fx_preset *p, const fx_mix *m, uint64_t seed) {
    const int64_t E = p->n_embd, F = p->n_ff, V = p->n_vocab;
    const int64_t Q = (int64_t)p->n_head * p->head_dim, KV = (int64_t)p->n_head_kv * p->head_dim;
    char nm[64];
    /* 2-D types come from the mix rules by tensor name (add_tensor) */
    s->mix = m;
#define BY_MIX PL_TYPE_F32
#define ADD(name_, kind_, type_, nd_, a_, b_) \
    do { if (!add_tensor(s, p, seed, name_, kind_, type_, nd_, a_, b_)) return PL_ERR_NOMEM; } while (0)
    ADD("token_embd.weight", FX_EMBD, BY_MIX, 2, E, V);
    if (p->llama3_rope) ADD("rope_freqs.weight", FX_ROPE_FREQS, PL_TYPE_F32, 1, p->head_dim / 2, 1);
    for (uint32_t i = 0; i < p->n_layer; i++) {
#define BLK(suffix) (snprintf(nm, sizeof nm, "blk.%u." suffix, i), nm)
        ADD(BLK("attn_norm.weight"), FX_NORM, PL_TYPE_F32, 1, E, 1);
        if (p->arch == FX_PHI3) {
            ADD(BLK("attn_qkv.weight"), FX_WEIGHT, BY_MIX, 2, E, Q + 2 * KV);
        } else {
            ADD(BLK("attn_q.weight"), FX_WEIGHT, BY_MIX, 2, E, Q);
            ADD(BLK("attn_k.weight"), FX_WEIGHT, BY_MIX, 2, E, KV);
            ADD(BLK("attn_v.weight"), FX_WEIGHT, BY_MIX, 2, E, KV);
            if (p->arch == FX_QWEN2) {
                ADD(BLK("attn_q.bias"), FX_BIAS, PL_TYPE_F32, 1, Q, 1);
                ADD(BLK("attn_k.bias"), FX_BIAS, PL_TYPE_F32, 1, KV, 1);
                ADD(BLK("attn_v.bias"), FX_BIAS, PL_TYPE_F32, 1, KV, 1);
            }
            if (p->arch == FX_QWEN3) {
                ADD(BLK("attn_q_norm.weight"), FX_NORM, PL_TYPE_F32, 1, p->head_dim, 1);
                ADD(BLK("attn_k_norm.weight"), FX_NORM, PL_TYPE_F32, 1, p->head_dim, 1);
            }
        }
        ADD(BLK("attn_output.weight"), FX_WEIGHT, BY_MIX, 2, Q, E);
        ADD(BLK("ffn_norm.weight"), FX_NORM, PL_TYPE_F32, 1, E, 1);
        if (p->arch == FX_PHI3) {
            ADD(BLK("ffn_up.weight"), FX_WEIGHT, BY_MIX, 2, E, 2 * F);
        } else {
            ADD(BLK("ffn_gate.weight"), FX_WEIGHT, BY_MIX, 2, E, F);
            ADD(BLK("ffn_up.weight"), FX_WEIGHT, BY_MIX, 2, E, F);
        }
        ADD(BLK("ffn_down.weight"), FX_WEIGHT, BY_MIX, 2, F, E);
#undef BLK
    }
    ADD("output_norm.weight", FX_NORM, PL_TYPE_F32, 1, E, 1);
    if (!p->tied) ADD("output.weight", FX_WEIGHT, BY_MIX, 2, E, V);
#undef ADD
#undef BY_MIX
    return PL_OK;
}

static pl_status write_metadata(pl_gguf_writer *w, const fx_preset *p, const fx_mix *m, uint32_t n_vocab) {
    const char *a = fx_arch_names[p->arch];
    char k[128];
    pl_status st = PL_OK;
#define SET(fn, suffix, v) \
    if (st == PL_OK) { snprintf(k, sizeof k, "%s." suffix, a); st = fn(w, k, v); }
    st = pl_gguf_writer_set_str(w, "general.architecture", a);
    if (st == PL_OK) st = pl_gguf_writer_set_str(w, "general.name", p->model_name);
    if (st == PL_OK) st = pl_gguf_writer_set_u32(w, "general.file_type", m->ftype);
    if (st == PL_OK) st = pl_gguf_writer_set_u32(w, "general.quantization_version", 2);
    SET(pl_gguf_writer_set_u32, "context_length", p->n_ctx);
    SET(pl_gguf_writer_set_u32, "embedding_length", p->n_embd);
    SET(pl_gguf_writer_set_u32, "block_count", p->n_layer);
    SET(pl_gguf_writer_set_u32, "feed_forward_length", p->n_ff);
    SET(pl_gguf_writer_set_u32, "attention.head_count", p->n_head);
    SET(pl_gguf_writer_set_u32, "attention.head_count_kv", p->n_head_kv);
    SET(pl_gguf_writer_set_f32, "attention.layer_norm_rms_epsilon", p->eps);
    SET(pl_gguf_writer_set_f32, "rope.freq_base", p->rope_base);
    SET(pl_gguf_writer_set_u32, "rope.dimension_count", p->head_dim);
    SET(pl_gguf_writer_set_u32, "vocab_size", n_vocab);
    if (p->head_dim * p->n_head != p->n_embd || p->arch == FX_QWEN3) {
        SET(pl_gguf_writer_set_u32, "attention.key_length", p->head_dim);
        SET(pl_gguf_writer_set_u32, "attention.value_length", p->head_dim);
    }
#undef SET
    return st;
}

int cmd_fixture(pl_cli *cli, int argc, char **argv) {
    const char *preset_name = NULL, *type_name = "f16", *vocab = NULL, *out = NULL;
    uint64_t seed = 1;
    int64_t layers = -1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--whisper") == 0) return cmd_fixture_whisper(cli, argc, argv);
    if (pl_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--list") == 0) {
            list_presets();
            return 0;
        } else if (pl_cli_is_opt(a, "--preset")) {
            if (!(preset_name = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--type")) {
            if (!(type_name = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--vocab")) {
            if (!(vocab = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--output") || strcmp(a, "-o") == 0) {
            if (!(out = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
        } else if (pl_cli_is_opt(a, "--seed")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_u64(v, &seed)) return pl_cli_usage_error(cli, "bad --seed '%s'", v);
        } else if (pl_cli_is_opt(a, "--layers")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, 1, 1024, &layers)) return pl_cli_usage_error(cli, "bad --layers '%s' (1..1024)", v);
        } else {
            return pl_cli_usage_error(cli, "unexpected argument '%s'", a);
        }
    }
    if (!preset_name) return pl_cli_usage_error(cli, "missing --preset (see --list)");
    if (!out) return pl_cli_usage_error(cli, "missing -o OUT.gguf");
    const fx_preset *pp = NULL;
    for (size_t i = 0; i < N_PRESETS; i++)
        if (strcmp(presets[i].name, preset_name) == 0) pp = &presets[i];
    if (!pp) return pl_cli_usage_error(cli, "unknown preset '%s' (see --list)", preset_name);
    const fx_mix *m = NULL;
    m = pl_quant_mix_find(type_name);
    if (!m) return pl_cli_usage_error(cli, "unknown --type '%s' (see --list)", type_name);

    fx_preset p = *pp;
    if (layers > 0) p.n_layer = (uint32_t)layers;
    bool tiny = strncmp(p.name, "tiny", 4) == 0;

    pl_gguf_writer *w = NULL;
    fx_state s = { 0 };
    int rc = 1;
    pl_status st = pl_gguf_writer_init(cli->ctx, &w);
    if (st != PL_OK) return pl_cli_fail(cli, "%s", pl_status_str(st));
    uint32_t n_vocab = p.n_vocab;
    if (vocab) {
        if (copy_vocab(cli, w, vocab, &n_vocab, tiny) != PL_OK) goto done;
    } else if ((st = write_generated_vocab(w, n_vocab)) != PL_OK) {
        pl_cli_fail(cli, "vocabulary: %s", pl_status_str(st));
        goto done;
    }
    p.n_vocab = n_vocab;
    if ((st = write_metadata(w, &p, m, n_vocab)) != PL_OK || (st = plan_tensors(&s, &p, m, seed)) != PL_OK) {
        pl_cli_fail(cli, "%s", pl_status_str(st));
        goto done;
    }
    uint64_t total = 0;
    for (int i = 0; i < s.n; i++) {
        fx_tensor *t = &s.t[i];
        const pl_type_info *ti = pl_type_get(t->type);
        if (!ti || !ti->from_f32) {
            pl_cli_fail(cli, "type %s has no quantizer yet (tensor %s)", pl_type_name(t->type), t->name);
            goto done;
        }
        t->fbuf = &s.fbuf;
        t->fcap = &s.fcap;
        t->err = &s.err;
        t->progress = &s.progress;
        uint64_t nb = 0;
        pl_type_tensor_bytes(t->type, t->n_dims, t->ne, &nb);
        total += nb;
        st = pl_gguf_writer_add_tensor_fill(w, t->name, t->type, t->n_dims, t->ne, fx_fill, t);
        if (st != PL_OK) {
            pl_cli_fail(cli, "tensor %s: %s", t->name, pl_gguf_writer_last_error(w));
            goto done;
        }
    }
    fprintf(stderr, "parley fixture: writing %s: %s x %u layers, %s, %d tensors, %.1f MiB of weights\n", out, p.name,
            p.n_layer, m->name, s.n, (double)total / (1024.0 * 1024.0));
    s.progress = (fx_progress){ .total = total, .last_pct = -1, .tty = isatty(2), .t0_ns = pl_time_ns() };
    st = pl_gguf_writer_write_file(w, out);
    if (st != PL_OK) {
        pl_cli_fail(cli, "writing %s: %s", out, pl_gguf_writer_last_error(w));
        goto done;
    }
    rc = 0;
done:
    pl_gguf_writer_free(w);
    free(s.t);
    free(s.fbuf);
    return rc;
}
