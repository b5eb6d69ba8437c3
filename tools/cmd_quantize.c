/*
 * cmd_quantize.c - `parley quantize IN.gguf OUT.gguf TYPE`: rewrite a model's weights in
 * a quant mix (q8_0, q4_0, q4_1, q5_0, q5_1, q6_k, q4_k_m, q5_k_m, f16, bf16, f32).
 *
 * Metadata is copied as is (general.file_type set to the mix's). Each tensor's type comes
 * from the mix rules (pl_quant_mix_type: output/attn_v/ffn_down/attn_qkv, row-length
 * fallbacks, 1-D stays F32); tensors already in their target type, and types with no
 * converter, are copied byte for byte. Otherwise rows are dequantized to f32 and
 * quantized with the type table's reference quantizer, a chunk of rows at a time split
 * over the thread pool, streamed into the writer (no whole-model buffer).
 * Progress and a size / bits-per-weight summary go to stderr.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "parley/gguf.h"
#include "parley/tensor.h"

static const char usage_text[] =
    "usage: parley quantize IN.gguf OUT.gguf TYPE [-t N]\n"
    "\n"
    "Write IN's model with its weights in the quant mix TYPE: q8_0, q4_0, q4_1, q5_0,\n"
    "q5_1, q6_k, q4_k_m, q5_k_m, f16, bf16, f32. K mixes follow the standard rules\n"
    "(output and some attn_v / ffn_down layers get more bits). Norms and biases stay f32.\n"
    "\n"
    "options:\n"
    "  -t, --threads N   worker threads (default: physical cores)\n"
    "  -h, --help        this text\n";

#define QZ_CHUNK_ROWS 64

typedef struct qz_state qz_state;

typedef struct qz_tensor {
    qz_state           *s;           /* shared conversion state (the fill callback's ud is the tensor) */
    pl_gguf_tensor      src;
    uint32_t            dst_type;
    int64_t             k, rows;     /* row length, rows (all dims past the first) */
    size_t              src_rb, dst_rb;
    bool                copy;        /* bytes as they are */
} qz_tensor;

struct qz_state {
    pl_cli    *cli;
    pl_pool   *pool;
    qz_tensor *cur;
    float     *f32;      /* [QZ_CHUNK_ROWS][k] */
    uint8_t   *out;      /* [QZ_CHUNK_ROWS][dst_rb] */
    size_t     f32_cap, out_cap;
    int64_t    chunk_row; /* first row in out */
    int64_t    chunk_n;   /* rows in out (0: none yet) */
    uint64_t   produced;  /* bytes of this tensor handed to the writer */
    uint64_t   done_bytes, total_bytes;
    int        last_pct;
    bool       tty;
};

static void qz_rows(void *ud, int64_t begin, int64_t end, int ith) {
    qz_state *s = ud;
    (void)ith;
    const qz_tensor *t = s->cur;
    const pl_type_info *si = pl_type_get(t->src.type), *di = pl_type_get(t->dst_type);
    for (int64_t i = begin; i < end; i++) {
        int64_t r = s->chunk_row + i;
        float *f = s->f32 + (size_t)i * (size_t)t->k;
        si->to_f32((const uint8_t *)t->src.data + (size_t)r * t->src_rb, f, t->k);
        di->from_f32(f, s->out + (size_t)i * t->dst_rb, t->k);
    }
}

/* pl_gguf_fill_fn: the converted tensor's bytes, in order. */
static pl_status qz_fill(void *ud, void *buf, uint64_t offset, size_t n) {
    qz_tensor *t = ud;
    qz_state *s = t->s;
    if (s->cur != t) { /* the next tensor */
        s->cur = t;
        s->chunk_n = 0;
        s->produced = 0;
    }
    if (offset != s->produced) return PL_ERR_INVALID_ARG; /* the writer asks in order */
    s->done_bytes += n;
    int pct = s->total_bytes ? (int)(100 * s->done_bytes / s->total_bytes) : 100;
    if (pct / 10 != s->last_pct / 10 || (s->tty && pct != s->last_pct)) {
        fprintf(stderr, s->tty ? "\rparley quantize: %3d%%" : "parley quantize: %3d%%\n", pct);
        s->last_pct = pct;
    }
    uint8_t *o = buf;
    while (n > 0) {
        uint64_t row = s->produced / t->dst_rb, in_row = s->produced % t->dst_rb;
        if (s->chunk_n == 0 || (int64_t)row >= s->chunk_row + s->chunk_n) {
            s->chunk_row = (int64_t)row;
            s->chunk_n = t->rows - (int64_t)row < QZ_CHUNK_ROWS ? t->rows - (int64_t)row : QZ_CHUNK_ROWS;
            pl_pool_for(s->pool, s->chunk_n, 1, qz_rows, s);
        }
        size_t at = (size_t)(row - (uint64_t)s->chunk_row) * t->dst_rb + (size_t)in_row;
        size_t avail = (size_t)s->chunk_n * t->dst_rb - at, take = n < avail ? n : avail;
        memcpy(o, s->out + at, take);
        o += take;
        n -= take;
        s->produced += take;
    }
    return PL_OK;
}

int cmd_quantize(pl_cli *cli, int argc, char **argv) {
    const char *pos[3] = { 0 }, *v;
    int n_pos = 0;
    int64_t n_threads = 0;
    if (pl_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-t") == 0 || pl_cli_is_opt(a, "--threads")) {
            if (!(v = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
            if (!pl_cli_parse_i64(v, 1, 1024, &n_threads)) return pl_cli_usage_error(cli, "bad -t '%s'", v);
        } else if (a[0] == '-' && a[1]) {
            return pl_cli_usage_error(cli, "unknown option '%s'", a);
        } else if (n_pos < 3) {
            pos[n_pos++] = a;
        } else {
            return pl_cli_usage_error(cli, "unexpected argument '%s'", a);
        }
    }
    if (n_pos != 3) return pl_cli_usage_error(cli, "need IN.gguf OUT.gguf TYPE");
    const pl_quant_mix *mix = pl_quant_mix_find(pos[2]);
    if (!mix) return pl_cli_usage_error(cli, "unknown type '%s'", pos[2]);

    int rc = 1;
    pl_gguf *g = NULL;
    pl_gguf_writer *w = NULL;
    qz_tensor *ts = NULL;
    qz_state s = { .cli = cli, .last_pct = -1 };
    if (pl_gguf_open(cli->ctx, pos[0], &g) != PL_OK) {
        pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
        goto done;
    }
    if (pl_pool_init(cli->ctx, (int)n_threads, &s.pool) != PL_OK || pl_gguf_writer_init(cli->ctx, &w) != PL_OK) {
        pl_cli_fail(cli, "out of memory");
        goto done;
    }
    /* layer count for the more-bits rule: {arch}.block_count */
    uint32_t n_layer = 0;
    pl_str arch;
    char key[160], archz[64] = "";
    if (pl_gguf_get_str(g, "general.architecture", &arch) == PL_OK) pl_str_copy(arch, archz, sizeof archz);
    snprintf(key, sizeof key, "%s.block_count", archz);
    if (pl_gguf_get_u32(g, key, &n_layer) != PL_OK) n_layer = 0;
    bool tied = pl_gguf_find_tensor(g, "output.weight") < 0;

    for (int64_t i = 0; i < pl_gguf_n_kv(g); i++) {
        if (pl_str_eq(pl_gguf_kv_key(g, i), "general.file_type")) continue;
        if (pl_gguf_writer_copy_kv(w, g, i) != PL_OK) {
            pl_cli_fail(cli, "%s", pl_gguf_writer_last_error(w));
            goto done;
        }
    }
    pl_gguf_writer_set_u32(w, "general.file_type", mix->ftype);

    int64_t nt = pl_gguf_n_tensors(g);
    ts = calloc(nt > 0 ? (size_t)nt : 1, sizeof *ts);
    if (!ts) {
        pl_cli_fail(cli, "out of memory");
        goto done;
    }
    uint64_t in_bytes = 0, out_bytes = 0, n_weights = 0;
    size_t max_k = 0, max_rb = 0;
    for (int64_t i = 0; i < nt; i++) {
        qz_tensor *t = &ts[i];
        t->s = &s;
        pl_gguf_tensor_at(g, i, &t->src);
        char name[256];
        pl_str_copy(t->src.name, name, sizeof name);
        t->k = t->src.ne[0];
        t->rows = 1;
        for (int d = 1; d < t->src.n_dims; d++) t->rows *= t->src.ne[d];
        const pl_type_info *si = pl_type_get(t->src.type);
        bool matrix = t->src.n_dims >= 2 && si && si->to_f32 &&
                      (t->src.type == PL_TYPE_F32 || t->src.type == PL_TYPE_F16 || t->src.type == PL_TYPE_BF16 ||
                       si->quantized);
        t->dst_type = matrix ? pl_quant_mix_type(mix, name, t->src.n_dims, t->k, (int32_t)n_layer, tied) : t->src.type;
        const pl_type_info *di = pl_type_get(t->dst_type);
        t->copy = t->dst_type == t->src.type || !di || !di->from_f32;
        if (t->copy) t->dst_type = t->src.type;
        uint64_t srb, drb;
        if (pl_type_row_bytes(t->src.type, (uint64_t)t->k, &srb) != PL_OK ||
            pl_type_row_bytes(t->dst_type, (uint64_t)t->k, &drb) != PL_OK) {
            pl_cli_fail(cli, "tensor %s: bad row length %" PRId64 " for its type", name, t->k);
            goto done;
        }
        t->src_rb = (size_t)srb;
        t->dst_rb = (size_t)drb;
        in_bytes += t->src.nbytes;
        out_bytes += drb * (uint64_t)t->rows;
        n_weights += (uint64_t)t->k * (uint64_t)t->rows;
        if (!t->copy && (size_t)t->k > max_k) max_k = (size_t)t->k;
        if (!t->copy && t->dst_rb > max_rb) max_rb = t->dst_rb;
        pl_status st = t->copy ? pl_gguf_writer_add_tensor(w, name, t->src.type, t->src.n_dims, t->src.ne, t->src.data)
                               : pl_gguf_writer_add_tensor_fill(w, name, t->dst_type, t->src.n_dims, t->src.ne,
                                                                qz_fill, t);
        if (st != PL_OK) {
            pl_cli_fail(cli, "%s", pl_gguf_writer_last_error(w));
            goto done;
        }
    }
    s.f32 = malloc(QZ_CHUNK_ROWS * (max_k ? max_k : 1) * sizeof(float));
    s.out = malloc(QZ_CHUNK_ROWS * (max_rb ? max_rb : 1));
    if (!s.f32 || !s.out) {
        pl_cli_fail(cli, "out of memory");
        goto done;
    }
    s.total_bytes = out_bytes;
    fprintf(stderr, "parley quantize: %s -> %s (%s), %" PRId64 " tensors, %.1f MiB in\n", pos[0], pos[1], mix->name,
            nt, (double)in_bytes / 1048576.0);
    uint64_t t0 = pl_time_ns();
    s.tty = isatty(2);
    pl_status st = pl_gguf_writer_write_file(w, pos[1]);
    if (st != PL_OK) {
        pl_cli_fail(cli, "%s", pl_gguf_writer_last_error(w));
        goto done;
    }
    if (s.tty) fputc('\n', stderr);
    fprintf(stderr, "parley quantize: wrote %.1f MiB (%.2f bits per weight) in %.1f s\n",
            (double)out_bytes / 1048576.0, n_weights ? 8.0 * (double)out_bytes / (double)n_weights : 0.0,
            (double)(pl_time_ns() - t0) / 1e9);
    rc = 0;
done:
    free(s.f32);
    free(s.out);
    free(ts);
    pl_gguf_writer_free(w);
    pl_pool_free(s.pool);
    pl_gguf_free(g);
    return rc;
}
