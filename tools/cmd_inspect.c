/*
 * cmd_inspect.c - `parley inspect FILE.gguf [--json] [--no-tensors] [--full]`
 *
 * Prints the header, the metadata (long arrays and strings summarized), the
 * tensor table, totals by type and an architecture summary. The file is only
 * mapped, so inspecting a multi-GB model costs the page-ins of its header.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "parley/store.h"
#include "parley/gguf.h"
#include "parley/tensor.h"

#define ARRAY_PREVIEW 8     /* elements shown of a long array */
#define STRING_PREVIEW 120  /* bytes shown of a long string value */

static const char usage_text[] =
    "usage: parley inspect [options] FILE.gguf|NAME\n"
    "\n"
    "Print a GGUF file's header, metadata, tensor table, totals and an\n"
    "architecture summary. The file is validated completely first: a truncated\n"
    "or crafted file gives a one-line error and exit code 1. NAME is a model in\n"
    "the store (see 'parley list').\n"
    "\n"
    "options:\n"
    "  --json         machine-readable output (one JSON object on stdout)\n"
    "  --no-tensors   leave out the per-tensor table\n"
    "  --full         print long strings and arrays in full\n"
    "  -h, --help     this text\n";

/* Print bytes of a metadata string: escaped, truncated unless full. */
static void print_escaped(FILE *f, pl_str s, bool full) {
    size_t n = s.len;
    if (!full && n > STRING_PREVIEW) n = STRING_PREVIEW;
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\r') fputs("\\r", f);
        else if (c < 0x20 || c == 0x7f) fprintf(f, "\\x%02x", c);
        else fputc(c, f);
    }
    fputc('"', f);
    if (n < s.len) fprintf(f, "... (%zu bytes)", s.len);
}

static void print_scalar_u64(FILE *f, const pl_gguf_arr *a, uint64_t i) {
    int64_t iv;
    uint64_t uv;
    double dv;
    switch (a->elem_type) {
    case PL_GGUF_TYPE_FLOAT32:
    case PL_GGUF_TYPE_FLOAT64:
        if (pl_gguf_arr_f64(a, i, &dv) == PL_OK) fprintf(f, "%g", dv);
        break;
    case PL_GGUF_TYPE_BOOL:
        if (pl_gguf_arr_u64(a, i, &uv) == PL_OK) fputs(uv ? "true" : "false", f);
        break;
    case PL_GGUF_TYPE_UINT64:
        if (pl_gguf_arr_u64(a, i, &uv) == PL_OK) fprintf(f, "%" PRIu64, uv);
        break;
    default:
        if (pl_gguf_arr_i64(a, i, &iv) == PL_OK) fprintf(f, "%" PRId64, iv);
        break;
    }
}

static void print_array(FILE *f, const pl_gguf_arr *a, bool full, int depth) {
    uint64_t n = a->count;
    uint64_t show = (!full && n > ARRAY_PREVIEW) ? ARRAY_PREVIEW : n;
    fprintf(f, "[%s x %" PRIu64 "]", pl_gguf_type_name(a->elem_type), n);
    if (n == 0) return;
    fputs(" ", f);
    for (uint64_t i = 0; i < show; i++) {
        if (i) fputs(", ", f);
        if (a->elem_type == PL_GGUF_TYPE_STRING) {
            pl_str s;
            if (pl_gguf_arr_str(a, i, &s) == PL_OK) print_escaped(f, s, full);
        } else if (a->elem_type == PL_GGUF_TYPE_ARRAY) {
            pl_gguf_arr sub;
            if (depth < 4 && pl_gguf_arr_arr(a, i, &sub) == PL_OK) {
                fputc('(', f);
                print_array(f, &sub, full, depth + 1);
                fputc(')', f);
            } else {
                fputs("(...)", f);
            }
        } else {
            print_scalar_u64(f, a, i);
        }
    }
    if (show < n) fprintf(f, ", ... (%" PRIu64 " more)", n - show);
}

static void print_kv_value(FILE *f, const pl_gguf *g, int64_t i, bool full) {
    uint32_t t = pl_gguf_kv_type(g, i);
    int64_t iv;
    uint64_t uv;
    double dv;
    pl_str s;
    pl_gguf_arr a;
    switch (t) {
    case PL_GGUF_TYPE_STRING:
        if (pl_gguf_kv_str(g, i, &s) == PL_OK) print_escaped(f, s, full);
        break;
    case PL_GGUF_TYPE_ARRAY:
        if (pl_gguf_kv_arr(g, i, &a) == PL_OK) print_array(f, &a, full, 0);
        break;
    case PL_GGUF_TYPE_FLOAT32:
    case PL_GGUF_TYPE_FLOAT64:
        if (pl_gguf_kv_f64(g, i, &dv) == PL_OK) fprintf(f, "%g", dv);
        break;
    case PL_GGUF_TYPE_BOOL:
        if (pl_gguf_kv_u64(g, i, &uv) == PL_OK) fputs(uv ? "true" : "false", f);
        break;
    case PL_GGUF_TYPE_UINT64:
        if (pl_gguf_kv_u64(g, i, &uv) == PL_OK) fprintf(f, "%" PRIu64, uv);
        break;
    default:
        if (pl_gguf_kv_i64(g, i, &iv) == PL_OK) fprintf(f, "%" PRId64, iv);
        break;
    }
}

static void fmt_bytes(uint64_t b, char *buf, size_t cap) {
    if (b >= (1ull << 30)) snprintf(buf, cap, "%.2f GiB", (double)b / (double)(1ull << 30));
    else if (b >= (1ull << 20)) snprintf(buf, cap, "%.2f MiB", (double)b / (double)(1ull << 20));
    else if (b >= (1ull << 10)) snprintf(buf, cap, "%.2f KiB", (double)b / 1024.0);
    else snprintf(buf, cap, "%" PRIu64 " B", b);
}

static void fmt_shape(const pl_gguf_tensor *t, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = 0;
    for (int d = 0; d < t->n_dims && o < cap; d++)
        o += (size_t)snprintf(buf + o, cap - o, d ? " x %" PRId64 : "%" PRId64, t->ne[d]);
}

/* Architecture summary: the keys every LLM file carries, read through the
 * typed getters so a wrong type reads as absent. */
typedef struct arch_summary {
    char     arch[64], name[128], tok_model[32];
    uint32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx, key_len, rope_dims, ftype;
    bool     has_ftype;
    float    rope_base, eps;
    uint64_t n_vocab;
} arch_summary;

static uint32_t get_arch_u32(const pl_gguf *g, const char *arch, const char *suffix) {
    char key[160];
    uint32_t v = 0;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (pl_gguf_get_u32(g, key, &v) != PL_OK) v = 0;
    return v;
}

static void read_summary(const pl_gguf *g, arch_summary *s) {
    memset(s, 0, sizeof *s);
    pl_str str;
    if (pl_gguf_get_str(g, "general.architecture", &str) == PL_OK) pl_str_copy(str, s->arch, sizeof s->arch);
    if (pl_gguf_get_str(g, "general.name", &str) == PL_OK) pl_str_copy(str, s->name, sizeof s->name);
    if (pl_gguf_get_str(g, "tokenizer.ggml.model", &str) == PL_OK) pl_str_copy(str, s->tok_model, sizeof s->tok_model);
    s->has_ftype = pl_gguf_get_u32(g, "general.file_type", &s->ftype) == PL_OK;
    pl_gguf_arr a;
    if (pl_gguf_get_arr(g, "tokenizer.ggml.tokens", &a) == PL_OK) s->n_vocab = a.count;
    if (!s->arch[0]) return;
    s->n_embd = get_arch_u32(g, s->arch, "embedding_length");
    s->n_layer = get_arch_u32(g, s->arch, "block_count");
    s->n_head = get_arch_u32(g, s->arch, "attention.head_count");
    s->n_head_kv = get_arch_u32(g, s->arch, "attention.head_count_kv");
    s->n_ff = get_arch_u32(g, s->arch, "feed_forward_length");
    s->n_ctx = get_arch_u32(g, s->arch, "context_length");
    s->key_len = get_arch_u32(g, s->arch, "attention.key_length");
    s->rope_dims = get_arch_u32(g, s->arch, "rope.dimension_count");
    char key[160];
    snprintf(key, sizeof key, "%s.rope.freq_base", s->arch);
    if (pl_gguf_get_f32(g, key, &s->rope_base) != PL_OK) s->rope_base = 0;
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", s->arch);
    if (pl_gguf_get_f32(g, key, &s->eps) != PL_OK) s->eps = 0;
}

typedef struct totals {
    uint64_t n_params, n_bytes;
    uint64_t params_by_type[PL_TYPE_COUNT], bytes_by_type[PL_TYPE_COUNT];
    int64_t  count_by_type[PL_TYPE_COUNT];
} totals;

static void sum_tensors(const pl_gguf *g, totals *t) {
    memset(t, 0, sizeof *t);
    for (int64_t i = 0; i < pl_gguf_n_tensors(g); i++) {
        pl_gguf_tensor ti;
        if (pl_gguf_tensor_at(g, i, &ti) != PL_OK) continue;
        uint64_t n = 1;
        for (int d = 0; d < ti.n_dims; d++) n *= (uint64_t)ti.ne[d]; /* validated by the reader */
        t->n_params += n;
        t->n_bytes += ti.nbytes;
        if (ti.type < PL_TYPE_COUNT) {
            t->params_by_type[ti.type] += n;
            t->bytes_by_type[ti.type] += ti.nbytes;
            t->count_by_type[ti.type]++;
        }
    }
}

static void print_text(const char *path, const pl_gguf *g, bool tensors, bool full) {
    char b1[32], b2[32];
    fmt_bytes(pl_gguf_file_size(g), b1, sizeof b1);
    printf("file:        %s\n", path);
    printf("size:        %s (%" PRIu64 " bytes)\n", b1, pl_gguf_file_size(g));
    printf("gguf:        version %u, alignment %u, data at offset %" PRIu64 "\n", pl_gguf_version(g),
           pl_gguf_alignment(g), pl_gguf_data_offset(g));
    printf("metadata:    %" PRId64 " keys\n", pl_gguf_n_kv(g));
    printf("tensors:     %" PRId64 "\n", pl_gguf_n_tensors(g));

    printf("\n== metadata ==\n");
    for (int64_t i = 0; i < pl_gguf_n_kv(g); i++) {
        pl_str key = pl_gguf_kv_key(g, i);
        printf("%-44.*s %-7s ", (int)key.len, key.ptr, pl_gguf_type_name(pl_gguf_kv_type(g, i)));
        print_kv_value(stdout, g, i, full);
        putchar('\n');
    }

    if (tensors && pl_gguf_n_tensors(g) > 0) {
        printf("\n== tensors ==\n");
        printf("%5s  %-36s %-8s %-24s %12s %14s\n", "#", "name", "type", "shape", "bytes", "offset");
        for (int64_t i = 0; i < pl_gguf_n_tensors(g); i++) {
            pl_gguf_tensor t;
            if (pl_gguf_tensor_at(g, i, &t) != PL_OK) continue;
            char shape[96];
            fmt_shape(&t, shape, sizeof shape);
            printf("%5" PRId64 "  %-36.*s %-8s %-24s %12" PRIu64 " %14" PRIu64 "\n", i, (int)t.name.len,
                   t.name.ptr, pl_type_name(t.type), shape, t.nbytes, t.offset);
        }
    }

    totals tt;
    sum_tensors(g, &tt);
    printf("\n== totals ==\n");
    fmt_bytes(tt.n_bytes, b1, sizeof b1);
    printf("parameters:  %" PRIu64 " (%.1f M)\n", tt.n_params, (double)tt.n_params / 1e6);
    printf("tensor data: %s", b1);
    if (tt.n_params) printf(", %.2f bits per weight", 8.0 * (double)tt.n_bytes / (double)tt.n_params);
    putchar('\n');
    for (uint32_t k = 0; k < PL_TYPE_COUNT; k++) {
        if (!tt.count_by_type[k]) continue;
        fmt_bytes(tt.bytes_by_type[k], b2, sizeof b2);
        printf("  %-8s %4" PRId64 " tensors %14" PRIu64 " params %12s\n", pl_type_name(k), tt.count_by_type[k],
               tt.params_by_type[k], b2);
    }

    arch_summary s;
    read_summary(g, &s);
    printf("\n== summary ==\n");
    printf("architecture: %s\n", s.arch[0] ? s.arch : "(none: general.architecture missing)");
    if (s.name[0]) printf("name:         %s\n", s.name);
    if (s.has_ftype) {
        const char *fn = pl_ftype_name(s.ftype);
        printf("file type:    %s (%u)\n", fn ? fn : "unknown", s.ftype);
    }
    if (s.n_layer) {
        uint32_t head_dim = s.key_len ? s.key_len : (s.n_head ? s.n_embd / s.n_head : 0);
        printf("layers:       %u\n", s.n_layer);
        printf("embedding:    %u\n", s.n_embd);
        printf("heads:        %u (kv %u, head dim %u)\n", s.n_head, s.n_head_kv ? s.n_head_kv : s.n_head, head_dim);
        printf("ffn:          %u\n", s.n_ff);
        printf("context:      %u\n", s.n_ctx);
        if (s.rope_base > 0) printf("rope:         base %g, dims %u\n", (double)s.rope_base, s.rope_dims ? s.rope_dims : head_dim);
        if (s.eps > 0) printf("rms eps:      %g\n", (double)s.eps);
        if (pl_gguf_n_tensors(g) > 0)
            printf("output:       %s\n", pl_gguf_find_tensor(g, "output.weight") >= 0 ? "separate" : "tied to token_embd");
    }
    if (s.tok_model[0] || s.n_vocab)
        printf("tokenizer:    %s, %" PRIu64 " tokens\n", s.tok_model[0] ? s.tok_model : "?", s.n_vocab);
    if (tt.n_params) printf("weights:      %.1f M parameters in %s\n", (double)tt.n_params / 1e6, b1);
    else if (pl_gguf_n_tensors(g) == 0) printf("weights:      none (vocabulary-only file)\n");
}

/* JSON: values through cJSON so escaping is right; long arrays summarized the same way. */
static cJSON *json_value(const pl_gguf *g, int64_t i, bool full) {
    uint32_t t = pl_gguf_kv_type(g, i);
    int64_t iv;
    uint64_t uv;
    double dv;
    pl_str s;
    pl_gguf_arr a;
    switch (t) {
    case PL_GGUF_TYPE_STRING: {
        if (pl_gguf_kv_str(g, i, &s) != PL_OK) return cJSON_CreateNull();
        size_t n = (!full && s.len > 4096) ? 4096 : s.len;
        char *tmp = malloc(n + 1);
        if (!tmp) return cJSON_CreateNull();
        memcpy(tmp, s.ptr, n);
        tmp[n] = 0;
        cJSON *v = cJSON_CreateString(tmp); /* an embedded NUL ends it: fine for display */
        free(tmp);
        return v;
    }
    case PL_GGUF_TYPE_ARRAY: {
        if (pl_gguf_kv_arr(g, i, &a) != PL_OK) return cJSON_CreateNull();
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", pl_gguf_type_name(a.elem_type));
        cJSON_AddNumberToObject(o, "count", (double)a.count);
        cJSON *items = cJSON_AddArrayToObject(o, "head");
        uint64_t show = (!full && a.count > ARRAY_PREVIEW) ? ARRAY_PREVIEW : a.count;
        for (uint64_t k = 0; k < show; k++) {
            if (a.elem_type == PL_GGUF_TYPE_STRING) {
                pl_str e;
                if (pl_gguf_arr_str(&a, k, &e) != PL_OK) break;
                char buf[512];
                pl_str_copy(e, buf, sizeof buf);
                cJSON_AddItemToArray(items, cJSON_CreateString(buf));
            } else if (a.elem_type == PL_GGUF_TYPE_ARRAY) {
                pl_gguf_arr sub;
                if (pl_gguf_arr_arr(&a, k, &sub) != PL_OK) break;
                cJSON_AddItemToArray(items, cJSON_CreateNumber((double)sub.count));
            } else if (pl_gguf_arr_f64(&a, k, &dv) == PL_OK) {
                cJSON_AddItemToArray(items, cJSON_CreateNumber(dv));
            } else if (pl_gguf_arr_i64(&a, k, &iv) == PL_OK) {
                cJSON_AddItemToArray(items, cJSON_CreateNumber((double)iv));
            } else if (pl_gguf_arr_u64(&a, k, &uv) == PL_OK) {
                cJSON_AddItemToArray(items, cJSON_CreateNumber((double)uv));
            }
        }
        return o;
    }
    case PL_GGUF_TYPE_FLOAT32:
    case PL_GGUF_TYPE_FLOAT64:
        return pl_gguf_kv_f64(g, i, &dv) == PL_OK ? cJSON_CreateNumber(dv) : cJSON_CreateNull();
    case PL_GGUF_TYPE_BOOL:
        return pl_gguf_kv_u64(g, i, &uv) == PL_OK ? cJSON_CreateBool(uv != 0) : cJSON_CreateNull();
    case PL_GGUF_TYPE_UINT64:
        return pl_gguf_kv_u64(g, i, &uv) == PL_OK ? cJSON_CreateNumber((double)uv) : cJSON_CreateNull();
    default:
        return pl_gguf_kv_i64(g, i, &iv) == PL_OK ? cJSON_CreateNumber((double)iv) : cJSON_CreateNull();
    }
}

static int print_json(const char *path, const pl_gguf *g, bool tensors, bool full) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return 1;
    cJSON_AddStringToObject(root, "file", path);
    cJSON_AddNumberToObject(root, "size", (double)pl_gguf_file_size(g));
    cJSON_AddNumberToObject(root, "version", pl_gguf_version(g));
    cJSON_AddNumberToObject(root, "alignment", pl_gguf_alignment(g));
    cJSON_AddNumberToObject(root, "data_offset", (double)pl_gguf_data_offset(g));
    cJSON *md = cJSON_AddObjectToObject(root, "metadata");
    for (int64_t i = 0; i < pl_gguf_n_kv(g); i++) {
        char key[1024];
        pl_str_copy(pl_gguf_kv_key(g, i), key, sizeof key);
        cJSON_AddItemToObject(md, key, json_value(g, i, full));
    }
    if (tensors) {
        cJSON *ta = cJSON_AddArrayToObject(root, "tensors");
        for (int64_t i = 0; i < pl_gguf_n_tensors(g); i++) {
            pl_gguf_tensor t;
            if (pl_gguf_tensor_at(g, i, &t) != PL_OK) continue;
            cJSON *o = cJSON_CreateObject();
            char name[1024];
            pl_str_copy(t.name, name, sizeof name);
            cJSON_AddStringToObject(o, "name", name);
            cJSON_AddStringToObject(o, "type", pl_type_name(t.type));
            cJSON *shape = cJSON_AddArrayToObject(o, "shape");
            for (int d = 0; d < t.n_dims; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t.ne[d]));
            cJSON_AddNumberToObject(o, "bytes", (double)t.nbytes);
            cJSON_AddNumberToObject(o, "offset", (double)t.offset);
            cJSON_AddItemToArray(ta, o);
        }
    }
    totals tt;
    sum_tensors(g, &tt);
    cJSON *to = cJSON_AddObjectToObject(root, "totals");
    cJSON_AddNumberToObject(to, "tensors", (double)pl_gguf_n_tensors(g));
    cJSON_AddNumberToObject(to, "parameters", (double)tt.n_params);
    cJSON_AddNumberToObject(to, "bytes", (double)tt.n_bytes);
    arch_summary s;
    read_summary(g, &s);
    cJSON *so = cJSON_AddObjectToObject(root, "summary");
    if (s.arch[0]) cJSON_AddStringToObject(so, "architecture", s.arch);
    if (s.name[0]) cJSON_AddStringToObject(so, "name", s.name);
    if (s.has_ftype && pl_ftype_name(s.ftype)) cJSON_AddStringToObject(so, "file_type", pl_ftype_name(s.ftype));
    if (s.n_layer) {
        cJSON_AddNumberToObject(so, "n_layer", s.n_layer);
        cJSON_AddNumberToObject(so, "n_embd", s.n_embd);
        cJSON_AddNumberToObject(so, "n_head", s.n_head);
        cJSON_AddNumberToObject(so, "n_head_kv", s.n_head_kv ? s.n_head_kv : s.n_head);
        cJSON_AddNumberToObject(so, "n_ff", s.n_ff);
        cJSON_AddNumberToObject(so, "n_ctx", s.n_ctx);
        if (pl_gguf_n_tensors(g) > 0)
            cJSON_AddBoolToObject(so, "tied_output", pl_gguf_find_tensor(g, "output.weight") < 0);
    }
    if (s.tok_model[0]) cJSON_AddStringToObject(so, "tokenizer", s.tok_model);
    if (s.n_vocab) cJSON_AddNumberToObject(so, "n_vocab", (double)s.n_vocab);
    cJSON_AddBoolToObject(so, "vocab_only", pl_gguf_n_tensors(g) == 0);
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    if (!txt) return 1;
    puts(txt);
    free(txt);
    return 0;
}

int cmd_inspect(pl_cli *cli, int argc, char **argv) {
    bool json = false, tensors = true, full = false;
    const char *path = NULL;
    if (pl_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--no-tensors") == 0) tensors = false;
        else if (strcmp(argv[i], "--full") == 0) full = true;
        else if (argv[i][0] == '-' && argv[i][1]) return pl_cli_usage_error(cli, "unknown option '%s'", argv[i]);
        else if (path) return pl_cli_usage_error(cli, "one FILE only");
        else path = argv[i];
    }
    if (!path) return pl_cli_usage_error(cli, "missing FILE.gguf");
    /* not a file: maybe a model in the store */
    char *resolved = NULL;
    if (access(path, F_OK) != 0 && !strchr(path, '/') && pl_model_resolve(cli->ctx, path, &resolved) == PL_OK)
        path = resolved;
    pl_ctx_clear_error(cli->ctx);
    pl_gguf *g = NULL;
    pl_status st = pl_gguf_open(cli->ctx, path, &g);
    if (st != PL_OK) {
        const char *msg = pl_ctx_last_error(cli->ctx);
        int rc = pl_cli_fail(cli, "%s", msg && *msg ? msg : pl_status_str(st));
        pl_free(cli->ctx, resolved);
        return rc;
    }
    int rc = json ? print_json(path, g, tensors, full) : (print_text(path, g, tensors, full), 0);
    pl_gguf_free(g);
    pl_free(cli->ctx, resolved);
    return rc;
}
