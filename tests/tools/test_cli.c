/*
 * test_cli.c - the parley CLI as a user runs it: inspect, fixture, errors.
 *
 * Runs $PL_BIN through /bin/sh with stdout/stderr captured to temp files and
 * checks exit codes and output against values computed here from the preset
 * shapes (not read back from the tool).
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
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_run.h"
#include "parley/gguf.h"
#include "parley/tensor.h"

static const char *bin, *fixdir, *shared;
static char tmpdir[256];

/* Run "$PL_BIN <args>" (args is shell text) and capture everything. */
static cli_result run(const char *fmt, ...) {
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return cli_run(tmpdir, bin, NULL, NULL, args);
}

static void fixture_path(char *buf, size_t cap, const char *preset, const char *type) {
    snprintf(buf, cap, "%s/%s-%s.gguf", fixdir, preset, type);
}

static void test_help(void **state) {
    (void)state;
    cli_result r = run("--help");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "inspect"));
    assert_non_null(strstr(r.out, "fixture"));
    cli_result_free(&r);

    const char *cmds[] = { "inspect", "fixture", "version" };
    for (size_t i = 0; i < 3; i++) {
        r = run("%s --help", cmds[i]);
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, "usage: parley"));
        assert_string_equal(r.err, "");
        cli_result_free(&r);
    }
    r = run("no-such-command");
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "unknown command"));
    cli_result_free(&r);
    r = run("inspect");
    assert_int_equal(r.code, 2);
    cli_result_free(&r);
}

/* Expected tensor count of a tiny preset: embd + layers x per-layer + norm + output. */
static int tiny_tensor_count(const char *arch) {
    int per_layer = 9; /* attn_norm q k v o ffn_norm gate up down */
    if (strcmp(arch, "qwen2") == 0) per_layer += 3;       /* q/k/v bias */
    if (strcmp(arch, "qwen3") == 0) per_layer += 2;       /* q/k norm */
    if (strcmp(arch, "phi3") == 0) per_layer = 9 - 2 - 1; /* fused qkv, fused gate_up */
    return 1 + 2 * per_layer + 2;
}

static void test_inspect_tiny(void **state) {
    (void)state;
    static const struct { const char *preset, *arch; } rows[] = {
        { "tiny", "llama" }, { "tiny-qwen2", "qwen2" }, { "tiny-qwen3", "qwen3" }, { "tiny-phi3", "phi3" },
    };
    for (size_t i = 0; i < 4; i++) {
        char path[512];
        fixture_path(path, sizeof path, rows[i].preset, "f16");
        cli_result r = run("inspect '%s'", path);
        assert_int_equal(r.code, 0);
        char want[64];
        snprintf(want, sizeof want, "architecture: %s\n", rows[i].arch);
        assert_non_null(strstr(r.out, want));
        assert_non_null(strstr(r.out, "layers:       2\n"));
        assert_non_null(strstr(r.out, "embedding:    256\n"));
        assert_non_null(strstr(r.out, "file type:    F16 (1)\n"));
        assert_non_null(strstr(r.out, "tokenizer:    gpt2, 512 tokens\n"));
        assert_non_null(strstr(r.out, "output:       separate\n"));
        cli_result_free(&r);

        r = run("inspect --json '%s'", path);
        assert_int_equal(r.code, 0);
        cJSON *j = cJSON_Parse(r.out);
        assert_non_null(j);
        cJSON *sum = cJSON_GetObjectItem(j, "summary");
        assert_string_equal(cJSON_GetObjectItem(sum, "architecture")->valuestring, rows[i].arch);
        assert_int_equal(cJSON_GetObjectItem(sum, "n_layer")->valueint, 2);
        assert_int_equal(cJSON_GetObjectItem(sum, "n_head")->valueint, 4);
        assert_int_equal(cJSON_GetObjectItem(sum, "n_vocab")->valueint, 512);
        cJSON *ts = cJSON_GetObjectItem(j, "tensors");
        assert_int_equal(cJSON_GetArraySize(ts), tiny_tensor_count(rows[i].arch));
        /* bytes per tensor agree with shape x 2 (f16) or x 4 (f32 norms/biases) */
        cJSON *t;
        cJSON_ArrayForEach(t, ts) {
            const char *type = cJSON_GetObjectItem(t, "type")->valuestring;
            cJSON *shape = cJSON_GetObjectItem(t, "shape");
            double n = 1;
            cJSON *d;
            cJSON_ArrayForEach(d, shape) n *= d->valuedouble;
            double want_bytes = n * (strcmp(type, "f16") == 0 ? 2 : 4);
            assert_true(cJSON_GetObjectItem(t, "bytes")->valuedouble == want_bytes);
            assert_true(strcmp(type, cJSON_GetArraySize(shape) == 1 ? "f32" : "f16") == 0);
        }
        cJSON_Delete(j);
        cli_result_free(&r);
    }
}

static void test_inspect_shared_vocab(void **state) {
    (void)state;
    if (!shared || access(shared, R_OK) != 0) skip();
    static const struct { const char *file, *line; } rows[] = {
        { "ggml-vocab-llama-spm.gguf", "tokenizer:    llama, 32000 tokens\n" },
        { "ggml-vocab-gpt-2.gguf", "tokenizer:    gpt2, 50257 tokens\n" },
    };
    for (size_t i = 0; i < 2; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/vocab/%s", shared, rows[i].file);
        if (access(path, R_OK) != 0) skip();
        cli_result r = run("inspect '%s'", path);
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, rows[i].line));
        assert_non_null(strstr(r.out, "tensors:     0\n"));
        assert_non_null(strstr(r.out, "weights:      none (vocabulary-only file)\n"));
        assert_non_null(strstr(r.out, "tokenizer.ggml.tokens"));
        cli_result_free(&r);
    }
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void test_inspect_bad_files(void **state) {
    (void)state;
    char path[512], fx[512];
    snprintf(path, sizeof path, "%s/bad.gguf", tmpdir);

    write_bytes(path, "hello, world\n", 13); /* not GGUF */
    cli_result r = run("inspect '%s'", path);
    assert_int_equal(r.code, 1);
    assert_int_equal(cli_count_lines(r.err), 1);
    assert_non_null(strstr(r.err, "parley inspect: "));
    assert_string_equal(r.out, "");
    cli_result_free(&r);

    /* a real model cut short at several points: header, metadata, tensor infos, data */
    fixture_path(fx, sizeof fx, "tiny", "f32");
    size_t n = 0;
    char *data = cli_slurp(fx, &n);
    assert_non_null(data);
    size_t cuts[] = { 3, 20, 200, 5000, n / 2, n - 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_bytes(path, data, cuts[i]);
        r = run("inspect '%s'", path);
        assert_int_equal(r.code, 1);
        assert_int_equal(cli_count_lines(r.err), 1);
        assert_string_equal(r.out, "");
        cli_result_free(&r);
    }
    free(data);

    r = run("inspect '%s/does-not-exist.gguf'", tmpdir);
    assert_int_equal(r.code, 1);
    assert_int_equal(cli_count_lines(r.err), 1);
    cli_result_free(&r);
    r = run("inspect '%s'", tmpdir); /* a directory */
    assert_int_equal(r.code, 1);
    assert_int_equal(cli_count_lines(r.err), 1);
    cli_result_free(&r);
}

static void test_fixture_deterministic(void **state) {
    (void)state;
    char a[512], b[512], c[512];
    snprintf(a, sizeof a, "%s/a.gguf", tmpdir);
    snprintf(b, sizeof b, "%s/b.gguf", tmpdir);
    snprintf(c, sizeof c, "%s/c.gguf", tmpdir);
    cli_result r = run("fixture --preset tiny-qwen2 --type f32 --seed 7 -o '%s'", a);
    assert_int_equal(r.code, 0);
    cli_result_free(&r);
    r = run("fixture --preset tiny-qwen2 --type f32 --seed 7 -o '%s'", b);
    assert_int_equal(r.code, 0);
    cli_result_free(&r);
    r = run("fixture --preset tiny-qwen2 --type f32 --seed 8 -o '%s'", c);
    assert_int_equal(r.code, 0);
    cli_result_free(&r);
    size_t na, nb, nc;
    char *da = cli_slurp(a, &na), *db = cli_slurp(b, &nb), *dc = cli_slurp(c, &nc);
    assert_true(na == nb && memcmp(da, db, na) == 0);
    assert_true(na == nc && memcmp(da, dc, na) != 0);
    free(da);
    free(db);
    free(dc);
}

/* Weights are uniform(-s, s) with s = sqrt(3/n_in): std 1/sqrt(n_in), mean 0.
 * Norm weights are 1 +- 0.1. Checked on the file through the GGUF reader. */
static void test_fixture_values(void **state) {
    (void)state;
    char path[512];
    fixture_path(path, sizeof path, "tiny", "f32");
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    pl_gguf *g = NULL;
    assert_int_equal(pl_gguf_open(ctx, path, &g), PL_OK);
    int64_t i = pl_gguf_find_tensor(g, "blk.1.ffn_down.weight");
    assert_true(i >= 0);
    pl_gguf_tensor t;
    assert_int_equal(pl_gguf_tensor_at(g, i, &t), PL_OK);
    assert_int_equal(t.ne[0], 512);
    assert_int_equal(t.ne[1], 256);
    assert_int_equal(t.type, PL_TYPE_F32);
    const float *w = t.data;
    double sum = 0, sq = 0, lim = sqrt(3.0 / 512.0);
    int64_t n = t.ne[0] * t.ne[1];
    for (int64_t k = 0; k < n; k++) {
        assert_true(fabs(w[k]) <= lim);
        sum += w[k];
        sq += (double)w[k] * w[k];
    }
    double mean = sum / (double)n, sd = sqrt(sq / (double)n - mean * mean);
    assert_true(fabs(mean) < 0.002);
    assert_true(fabs(sd - 1.0 / sqrt(512.0)) < 0.001);

    i = pl_gguf_find_tensor(g, "output_norm.weight");
    assert_int_equal(pl_gguf_tensor_at(g, i, &t), PL_OK);
    w = t.data;
    for (int64_t k = 0; k < t.ne[0]; k++) assert_true(w[k] >= 0.9f && w[k] <= 1.1f);

    /* the f16 fixture holds the same values, rounded */
    pl_gguf *h = NULL;
    char p16[512];
    fixture_path(p16, sizeof p16, "tiny", "f16");
    assert_int_equal(pl_gguf_open(ctx, p16, &h), PL_OK);
    pl_gguf_tensor t16, t32;
    assert_int_equal(pl_gguf_tensor_at(h, pl_gguf_find_tensor(h, "blk.0.attn_q.weight"), &t16), PL_OK);
    assert_int_equal(pl_gguf_tensor_at(g, pl_gguf_find_tensor(g, "blk.0.attn_q.weight"), &t32), PL_OK);
    assert_int_equal(t16.type, PL_TYPE_F16);
    const uint16_t *hv = t16.data;
    const float *fv = t32.data;
    for (int64_t k = 0; k < 256 * 256; k++) {
        float back = pl_f16_to_f32(hv[k]);
        assert_true(fabsf(back - fv[k]) <= fabsf(fv[k]) * 0x1p-11f + 0x1p-24f);
    }
    pl_gguf_free(h);
    pl_gguf_free(g);
    pl_ctx_free(ctx);
}

/* The real-shape presets, one layer each so the test stays quick: shapes and
 * tied output as published for the models (shared reference.md). */
static void test_fixture_real_presets(void **state) {
    (void)state;
    static const struct {
        const char *preset, *arch;
        int64_t     embd, vocab, ffn, kv;
        bool        bias, rope_freqs;
    } rows[] = {
        { "smollm2-135m", "llama", 576, 49152, 1536, 3 * 64, false, false },
        { "qwen2.5-0.5b", "qwen2", 896, 151936, 4864, 2 * 64, true, false },
        { "llama-3.2-1b", "llama", 2048, 128256, 8192, 8 * 64, false, true },
    };
    char path[512];
    snprintf(path, sizeof path, "%s/real.gguf", tmpdir);
    pl_ctx *ctx = NULL;
    assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
    for (size_t i = 0; i < 3; i++) {
        cli_result r = run("fixture --preset %s --type f16 --layers 1 -o '%s'", rows[i].preset, path);
        assert_int_equal(r.code, 0);
        cli_result_free(&r);
        r = run("inspect --no-tensors '%s'", path);
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, "output:       tied to token_embd\n"));
        cli_result_free(&r);
        pl_gguf *g = NULL;
        assert_int_equal(pl_gguf_open(ctx, path, &g), PL_OK);
        pl_gguf_tensor t;
        assert_int_equal(pl_gguf_tensor_at(g, pl_gguf_find_tensor(g, "token_embd.weight"), &t), PL_OK);
        assert_int_equal(t.ne[0], rows[i].embd);
        assert_int_equal(t.ne[1], rows[i].vocab);
        assert_int_equal(pl_gguf_tensor_at(g, pl_gguf_find_tensor(g, "blk.0.ffn_up.weight"), &t), PL_OK);
        assert_int_equal(t.ne[1], rows[i].ffn);
        assert_int_equal(pl_gguf_tensor_at(g, pl_gguf_find_tensor(g, "blk.0.attn_k.weight"), &t), PL_OK);
        assert_int_equal(t.ne[1], rows[i].kv);
        assert_true(pl_gguf_find_tensor(g, "output.weight") < 0);
        assert_int_equal(pl_gguf_find_tensor(g, "blk.0.attn_q.bias") >= 0, rows[i].bias);
        int64_t rf = pl_gguf_find_tensor(g, "rope_freqs.weight");
        assert_int_equal(rf >= 0, rows[i].rope_freqs);
        if (rf >= 0) {
            /* llama3 scaling: high frequencies unscaled, low ones divided by 32 */
            assert_int_equal(pl_gguf_tensor_at(g, rf, &t), PL_OK);
            assert_int_equal(t.ne[0], 32);
            const float *f = t.data;
            assert_true(f[0] == 1.0f);
            assert_true(f[31] == 32.0f);
            for (int k = 1; k < 32; k++) assert_true(f[k] >= f[k - 1]);
        }
        pl_str s;
        assert_int_equal(pl_gguf_get_str(g, "general.architecture", &s), PL_OK);
        assert_true(pl_str_eq(s, rows[i].arch));
        pl_gguf_free(g);
    }
    pl_ctx_free(ctx);
}

static void test_fixture_vocab(void **state) {
    (void)state;
    if (!shared) skip();
    char spm[512], gpt2[512], path[512];
    snprintf(spm, sizeof spm, "%s/vocab/ggml-vocab-llama-spm.gguf", shared);
    snprintf(gpt2, sizeof gpt2, "%s/vocab/ggml-vocab-gpt-2.gguf", shared);
    if (access(spm, R_OK) != 0 || access(gpt2, R_OK) != 0) skip();
    snprintf(path, sizeof path, "%s/voc.gguf", tmpdir);
    /* real shape: 32000 tokens padded to the preset's 49152 */
    cli_result r = run("fixture --preset smollm2-135m --layers 1 --vocab '%s' -o '%s'", spm, path);
    assert_int_equal(r.code, 0);
    cli_result_free(&r);
    r = run("inspect --no-tensors '%s'", path);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "tokenizer:    llama, 49152 tokens\n"));
    cli_result_free(&r);
    /* gpt-2's 50257 tokens do not fit a 49152 vocabulary: a clear error */
    r = run("fixture --preset smollm2-135m --layers 1 --vocab '%s' -o '%s'", gpt2, path);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "more than the preset's vocabulary"));
    cli_result_free(&r);
    /* tiny presets take the vocabulary's size */
    r = run("fixture --preset tiny --vocab '%s' -o '%s'", gpt2, path);
    assert_int_equal(r.code, 0);
    cli_result_free(&r);
    r = run("inspect --no-tensors '%s'", path);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "tokenizer:    gpt2, 50257 tokens\n"));
    cli_result_free(&r);
}

static void test_fixture_errors(void **state) {
    (void)state;
    cli_result r = run("fixture --preset nope -o x.gguf");
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "unknown preset"));
    cli_result_free(&r);
    r = run("fixture --preset tiny --type q9_9 -o x.gguf");
    assert_int_equal(r.code, 2);
    cli_result_free(&r);
    r = run("fixture --preset tiny");
    assert_int_equal(r.code, 2);
    cli_result_free(&r);
    r = run("fixture --preset tiny -o '%s/no/such/dir/x.gguf'", tmpdir);
    assert_int_equal(r.code, 1);
    assert_int_equal(cli_count_lines(r.err), 2); /* the "writing" progress line, then the error */
    cli_result_free(&r);
}

/* parley quantize f32 -> MIX gives, tensor for tensor, the types and bytes that the
 * fixture tool writes when it quantizes the same f32 values itself (same seed). */
static void test_quantize_matches_fixture(void **state) {
    (void)state;
    const char *mixes[] = { "q4_k_m", "q4_0", "q8_0" };
    for (size_t mi = 0; mi < 3; mi++) {
        char f32[512], want[512], got[512];
        snprintf(f32, sizeof f32, "%s/qz-f32.gguf", tmpdir);
        snprintf(want, sizeof want, "%s/qz-want.gguf", tmpdir);
        snprintf(got, sizeof got, "%s/qz-got.gguf", tmpdir);
        cli_result r = run("fixture --preset tiny-qwen2 --type f32 --seed 5 -o '%s'", f32);
        assert_int_equal(r.code, 0);
        cli_result_free(&r);
        r = run("fixture --preset tiny-qwen2 --type %s --seed 5 -o '%s'", mixes[mi], want);
        assert_int_equal(r.code, 0);
        cli_result_free(&r);
        r = run("quantize '%s' '%s' %s -t 2", f32, got, mixes[mi]);
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.err, "bits per weight"));
        cli_result_free(&r);
        pl_ctx *ctx = NULL;
        pl_gguf *gw = NULL, *gg = NULL;
        assert_int_equal(pl_ctx_init(&ctx, NULL), PL_OK);
        assert_int_equal(pl_gguf_open(ctx, want, &gw), PL_OK);
        assert_int_equal(pl_gguf_open(ctx, got, &gg), PL_OK);
        assert_int_equal(pl_gguf_n_tensors(gw), pl_gguf_n_tensors(gg));
        int n_k = 0;
        for (int64_t i = 0; i < pl_gguf_n_tensors(gw); i++) {
            pl_gguf_tensor a, b;
            assert_int_equal(pl_gguf_tensor_at(gw, i, &a), PL_OK);
            assert_int_equal(pl_gguf_tensor_at(gg, i, &b), PL_OK);
            assert_true(a.name.len == b.name.len && memcmp(a.name.ptr, b.name.ptr, a.name.len) == 0);
            assert_int_equal(a.type, b.type);
            assert_true(a.nbytes == b.nbytes && memcmp(a.data, b.data, a.nbytes) == 0);
            n_k += a.type == PL_TYPE_Q4_K || a.type == PL_TYPE_Q6_K;
        }
        /* hand-checked rule: tiny-qwen2 (2 layers, rows of 256) q4_k_m has K types */
        if (mi == 0) assert_true(n_k > 0);
        uint32_t ft;
        assert_int_equal(pl_gguf_get_u32(gg, "general.file_type", &ft), PL_OK);
        assert_int_equal(ft, mi == 0 ? 15u : mi == 1 ? 2u : 7u);
        pl_gguf_free(gw);
        pl_gguf_free(gg);
        pl_ctx_free(ctx);
    }
    cli_result r = run("quantize a b q9_9");
    assert_int_equal(r.code, 2);
    cli_result_free(&r);
}

/* A Q4_0 file made by parley quantize: the same greedy tokens under the scalar and the
 * SIMD kernels (PL_CPU is read by the child process). */
static void test_quantize_greedy_levels(void **state) {
    (void)state;
    char f32[512], q[512];
    snprintf(f32, sizeof f32, "%s/gl-f32.gguf", tmpdir);
    snprintf(q, sizeof q, "%s/gl-q4_0.gguf", tmpdir);
    cli_result r = run("fixture --preset tiny --type f32 --seed 3 -o '%s'", f32);
    assert_int_equal(r.code, 0);
    cli_result_free(&r);
    r = run("quantize '%s' '%s' q4_0", f32, q);
    assert_int_equal(r.code, 0);
    cli_result_free(&r);
    char *outs[3] = { 0 };
    const char *levels[3] = { "scalar", "avx2", "avx512" };
    for (int i = 0; i < 3; i++) {
        setenv("PL_CPU", levels[i], 1);
        r = run("generate -m '%s' --ids '1 2 3 4 5 6 7 8' -n 24 --print-ids --ignore-eos -t 2", q);
        unsetenv("PL_CPU");
        assert_int_equal(r.code, 0);
        assert_true(cli_count_lines(r.out) <= 1 && strlen(r.out) > 10);
        outs[i] = r.out;
        free(r.err);
    }
    /* a level this CPU lacks runs the best it has: still must agree */
    assert_string_equal(outs[0], outs[1]);
    assert_string_equal(outs[0], outs[2]);
    for (int i = 0; i < 3; i++) free(outs[i]);
}

/* parley bench: one JSON line per (pp, tg) pair, the counts asked for, positive rates, the
 * phase split summing to 100%; a table row per test in markdown; clear errors. */
static void test_bench(void **state) {
    (void)state;
    char model[512];
    snprintf(model, sizeof model, "%s/tiny-qwen2-f32.gguf", getenv("PL_FIXTURE_DIR"));
    cli_result r = run("bench -m '%s' -p 16 -n 4 -r 2 -t 1 --json", model);
    assert_int_equal(r.code, 0);
    assert_int_equal(cli_count_lines(r.out), 1); /* one object per (pp, tg) pair */
    cJSON *j = cJSON_Parse(r.out);
    assert_non_null(j);
    assert_int_equal((int)cJSON_GetObjectItem(j, "n_prompt")->valuedouble, 16);
    assert_int_equal((int)cJSON_GetObjectItem(j, "n_gen")->valuedouble, 4);
    assert_true(cJSON_GetObjectItem(j, "pp_tps")->valuedouble > 0);
    assert_true(cJSON_GetObjectItem(j, "tg_tps")->valuedouble > 0);
    assert_int_equal((int)cJSON_GetObjectItem(j, "threads")->valuedouble, 1);
    const cJSON *ph = cJSON_GetObjectItem(j, "phase_pct");
    double sum = cJSON_GetObjectItem(ph, "matmul")->valuedouble + cJSON_GetObjectItem(ph, "attention")->valuedouble +
                 cJSON_GetObjectItem(ph, "other")->valuedouble;
    assert_true(sum > 99.5 && sum < 100.5);
    assert_true(cJSON_GetObjectItem(ph, "matmul")->valuedouble > 10); /* the weights dominate */
    cJSON_Delete(j);
    cli_result_free(&r);
    r = run("bench -m '%s' -p 8 -n 2 -r 1 -t 1", model);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "| model | type | MiB | threads |"));
    assert_non_null(strstr(r.out, " | pp8 | "));
    assert_non_null(strstr(r.out, " | tg2 | "));
    cli_result_free(&r);
    r = run("bench -m /nonexistent.gguf -p 8 -n 0");
    assert_int_equal(r.code, 1);
    cli_result_free(&r);
    r = run("bench -m '%s' -p x", model);
    assert_int_equal(r.code, 2);
    cli_result_free(&r);
}

/* The configuration pass chat and serve share (tools/cli_config.c): the
 * model from --config, flags over the file, and its errors. */
static void test_config_pass(void **state) {
    (void)state;
    char model[512], yaml[400];
    fixture_path(model, sizeof model, "tiny", "f32");
    snprintf(yaml, sizeof yaml, "%s/pass.yaml", tmpdir);
    FILE *f = fopen(yaml, "w");
    assert_non_null(f);
    fprintf(f, "llm:\n  model: %s\n  max_tokens: 3\n", model);
    fclose(f);
    cli_result r = run("chat --config '%s' -p Hi -t 1 --seed 1 --temp 0", yaml);
    if (r.code != 0) print_message("stderr: %s\n", r.err);
    assert_int_equal(r.code, 0);
    cli_result_free(&r);
    /* --config=FILE works as well, anywhere on the line */
    r = run("chat -p Hi -t 1 --seed 1 --temp 0 --config='%s'", yaml);
    assert_int_equal(r.code, 0);
    cli_result_free(&r);
    /* a flag beats the file */
    r = run("chat --config '%s' -m '%s/pl-no-such.gguf' -p Hi", yaml, tmpdir);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "pl-no-such.gguf"));
    cli_result_free(&r);
    /* --config without its value: a usage error; a missing file: exit 1 naming it */
    r = run("chat -p Hi --config");
    assert_int_equal(r.code, 2);
    cli_result_free(&r);
    r = run("serve --config '%s/pl-none.yaml'", tmpdir);
    assert_int_equal(r.code, 1);
    assert_int_equal(cli_count_lines(r.err), 1);
    assert_non_null(strstr(r.err, "pl-none.yaml"));
    cli_result_free(&r);
    /* a flag value the key table refuses: a usage error naming the flag (no
     * server is started) */
    r = run("serve --config '%s' -np 0", yaml);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "--parallel: server.parallel"));
    cli_result_free(&r);
    r = run("chat --config '%s' --temp 99 -p Hi", yaml);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "--temp"));
    cli_result_free(&r);
    remove(yaml);
}

int main(void) {
    bin = getenv("PL_BIN");
    fixdir = getenv("PL_FIXTURE_DIR");
    shared = getenv("PL_SHARED_DIR");
    if (!bin || !fixdir) {
        fprintf(stderr, "test_cli: PL_BIN and PL_FIXTURE_DIR must be set (run through ctest)\n");
        return 1;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pl_test_cli.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_inspect_tiny),
        cmocka_unit_test(test_inspect_shared_vocab),
        cmocka_unit_test(test_inspect_bad_files),
        cmocka_unit_test(test_fixture_deterministic),
        cmocka_unit_test(test_fixture_values),
        cmocka_unit_test(test_fixture_real_presets),
        cmocka_unit_test(test_fixture_vocab),
        cmocka_unit_test(test_fixture_errors),
        cmocka_unit_test(test_quantize_matches_fixture),
        cmocka_unit_test(test_quantize_greedy_levels),
        cmocka_unit_test(test_bench),
        cmocka_unit_test(test_config_pass),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "test_cli: could not remove %s\n", tmpdir);
    return rc;
}
