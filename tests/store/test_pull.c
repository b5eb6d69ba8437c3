/*
 * test_pull.c - pl_store_pull against the local HTTP fixture server: success,
 * redirects, resume after a dropped connection (in one run and across runs),
 * a server that ignores Range, hash and size mismatches (published, user and
 * trust-on-first-use hashes), 404, a stalled server, TLS and connect errors,
 * a full disk (injected ENOSPC and a real RLIMIT_FSIZE), cancel, and a second
 * process holding the download lock.
 *
 * Expectations are independent of the code under test: the served bytes are
 * made here, compared byte for byte, and their SHA-256 is computed here with a
 * one-shot EVP_Digest (not the store's streaming hasher).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "http_server.h"
#include "parley/store.h"
#include "store/store_int.h"
#include "test_store.h"

#define BLOB_LEN (300 * 1000 + 17) /* several curl buffers, not a round number */

static http_server *hs;
static unsigned char *blob, *blob2;
static char blob_sha[65], base_url[64];

static void make_blob(unsigned char *b, size_t n, uint32_t seed) {
    uint32_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        b[i] = (unsigned char)(x >> 24);
    }
}

void ts_sha256_hex(const void *p, size_t n, char out[65]) {
    unsigned char d[32];
    unsigned int dl = 0;
    EVP_Digest(p, n, d, &dl, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

bool ts_file_equals(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    unsigned char *b = malloc(n + 1);
    size_t got = fread(b, 1, n + 1, f);
    fclose(f);
    bool eq = got == n && memcmp(b, data, n) == 0;
    free(b);
    return eq;
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static long long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

typedef struct fixture {
    pl_ctx   *ctx;
    pl_store *s;
    char      dir[256];
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/pl_pull_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_level = PL_LOG_LEVEL_ERROR;
    assert_int_equal(pl_ctx_init(&f->ctx, &cp), PL_OK);
    char store[300];
    snprintf(store, sizeof store, "%s/models", f->dir); /* pull creates it */
    assert_int_equal(pl_store_open(f->ctx, store, &f->s), PL_OK);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", f->dir);
    pl_store_free(f->s);
    pl_ctx_free(f->ctx);
    free(f);
    return 0;
}

static pl_pull_opts fast_opts(void) {
    pl_pull_opts o = pl_pull_default_opts();
    o.endpoint = base_url;
    o.retries = 0;
    o.retry_delay_ms = 10;
    o.connect_timeout_s = 5;
    o.stall_timeout_s = 5;
    return o;
}

static void url(char *buf, size_t cap, const char *path) { snprintf(buf, cap, "%s%s", base_url, path); }

/* ---- success, already present, list, resolve ---- */

static void test_pull_url_success(void **state) {
    fixture *f = *state;
    hs_route(hs, "/files/model-a.gguf", HS_OK, blob, BLOB_LEN, NULL, 0);
    char u[256];
    url(u, sizeof u, "/files/model-a.gguf");
    pl_pull_opts o = fast_opts();
    pl_pull_result r;
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_OK);
    char want_path[PL_STORE_PATH_MAX + 16];
    snprintf(want_path, sizeof want_path, "%s/model-a.gguf", pl_store_dir(f->s));
    assert_string_equal(r.path, want_path);
    assert_string_equal(r.name, "model-a");
    assert_true(ts_file_equals(r.path, blob, BLOB_LEN));
    assert_string_equal(r.sha256, blob_sha);
    assert_string_equal(r.hash_source, "download");
    assert_int_equal(r.size, BLOB_LEN);
    assert_int_equal(r.downloaded, BLOB_LEN);
    assert_int_equal(r.resumed_from, 0);
    assert_false(r.already_present);
    char part[PL_STORE_PATH_MAX + 16];
    snprintf(part, sizeof part, "%s.part", r.path);
    assert_false(exists(part));

    /* the manifest records the computed hash (trust on first use) */
    pl_manifest m;
    char mpath[PL_STORE_PATH_MAX + 16];
    snprintf(mpath, sizeof mpath, "%s.json", r.path);
    assert_int_equal(pl_manifest_read(f->s, mpath, &m), PL_OK);
    assert_string_equal(m.name, "model-a");
    assert_string_equal(m.url, u);
    assert_string_equal(m.sha256, blob_sha);
    assert_int_equal(m.size, BLOB_LEN);

    /* a second pull downloads nothing */
    int before = hs_requests(hs, "/files/model-a.gguf");
    pl_pull_result r2;
    assert_int_equal(pl_store_pull(f->s, u, &o, &r2), PL_OK);
    assert_true(r2.already_present);
    assert_int_equal(r2.downloaded, 0);
    assert_int_equal(hs_requests(hs, "/files/model-a.gguf"), before);
    /* --verify re-hashes the stored file */
    o.verify = true;
    assert_int_equal(pl_store_pull(f->s, "model-a", &o, &r2), PL_OK);
    assert_string_equal(r2.sha256, blob_sha);

    /* list and resolve */
    pl_store_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(pl_store_list(f->s, &list, &n), PL_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].name, "model-a");
    assert_string_equal(list[0].path, want_path);
    assert_int_equal(list[0].size, BLOB_LEN);
    assert_true(list[0].has_manifest);
    pl_store_list_free(f->s, list);
    char *p = NULL;
    assert_int_equal(pl_store_resolve(f->s, "model-a", &p), PL_OK);
    assert_string_equal(p, want_path);
    pl_free(f->ctx, p);
    assert_int_equal(pl_store_resolve(f->s, "model-a.gguf", &p), PL_OK); /* the file name works too */
    assert_string_equal(p, want_path);
    pl_free(f->ctx, p);
    assert_int_equal(pl_store_resolve(f->s, want_path, &p), PL_OK); /* a path stays a path */
    assert_string_equal(p, want_path);
    pl_free(f->ctx, p);
    assert_int_equal(pl_store_resolve(f->s, "model-b", &p), PL_ERR_NOT_FOUND);
    assert_null(p);
    assert_non_null(strstr(pl_store_last_error(f->s), "not a file"));
}

/* HF layout: ENDPOINT/OWNER/REPO/resolve/main/FILE, answered by a redirect as
 * Hugging Face does (to its CDN). */
static void test_pull_hf_redirect(void **state) {
    fixture *f = *state;
    hs_route(hs, "/owner/repo/resolve/main/sub/x-Q8_0.gguf", HS_REDIRECT, "", 0, "/cdn/x", 0);
    hs_route(hs, "/cdn/x", HS_OK, blob, BLOB_LEN, NULL, 0);
    pl_pull_opts o = fast_opts();
    pl_pull_result r;
    assert_int_equal(pl_store_pull(f->s, "hf://owner/repo/sub/x-Q8_0.gguf", &o, &r), PL_OK);
    assert_string_equal(r.name, "x-Q8_0");
    assert_true(ts_file_equals(r.path, blob, BLOB_LEN));
    assert_int_equal(hs_requests(hs, "/cdn/x"), 1);
    /* -m hf://... resolves to the pulled file */
    char *p = NULL;
    assert_int_equal(pl_store_resolve(f->s, "hf://owner/repo/sub/x-Q8_0.gguf", &p), PL_OK);
    assert_string_equal(p, r.path);
    pl_free(f->ctx, p);
    /* malformed hf:// specs */
    assert_int_equal(pl_store_pull(f->s, "hf://owner/repo", &o, &r), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_store_pull(f->s, "hf://owner/repo/../../etc/passwd", &o, &r), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_store_pull(f->s, "hf://own er/repo/f.gguf", &o, &r), PL_ERR_INVALID_ARG);
}

/* ---- resume ---- */

static void test_pull_resume_within_run(void **state) {
    fixture *f = *state;
    hs_route(hs, "/drop/a.gguf", HS_DROP_ONCE, blob, BLOB_LEN, NULL, 0);
    char u[256];
    url(u, sizeof u, "/drop/a.gguf");
    pl_pull_opts o = fast_opts();
    o.retries = 2;
    pl_pull_result r;
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_OK);
    assert_true(ts_file_equals(r.path, blob, BLOB_LEN));
    assert_string_equal(r.sha256, blob_sha);
    assert_int_equal(r.attempts, 2);
    assert_int_equal(hs_requests(hs, "/drop/a.gguf"), 2);
    /* the second request asked for exactly the bytes the first one lacked */
    char range[128], want[64];
    hs_last_range(hs, "/drop/a.gguf", range, sizeof range);
    snprintf(want, sizeof want, "bytes=%d-", BLOB_LEN / 2);
    assert_string_equal(range, want);
    assert_int_equal(r.downloaded, BLOB_LEN); /* half + the rest, nothing twice */
}

static void test_pull_resume_across_runs(void **state) {
    fixture *f = *state;
    hs_route(hs, "/drop/b.gguf", HS_DROP_ONCE, blob, BLOB_LEN, NULL, 0);
    char u[256];
    url(u, sizeof u, "/drop/b.gguf");
    pl_pull_opts o = fast_opts();
    pl_pull_result r;
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_ERR_IO);
    assert_non_null(strstr(pl_store_last_error(f->s), "dropped"));
    char part[PL_STORE_PATH_MAX + 16];
    snprintf(part, sizeof part, "%s.part", r.path);
    assert_int_equal(file_size(part), BLOB_LEN / 2);
    assert_false(exists(r.path));
    /* list shows the interrupted download */
    pl_store_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(pl_store_list(f->s, &list, &n), PL_OK);
    assert_int_equal(n, 1);
    assert_true(list[0].partial);
    assert_int_equal(list[0].partial_bytes, BLOB_LEN / 2);
    assert_string_equal(list[0].name, "b");
    pl_store_list_free(f->s, list);
    /* the next run resumes where the last one stopped */
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_OK);
    assert_int_equal(r.resumed_from, BLOB_LEN / 2);
    assert_int_equal(r.downloaded, BLOB_LEN - BLOB_LEN / 2);
    char range[128], want[64];
    hs_last_range(hs, "/drop/b.gguf", range, sizeof range);
    snprintf(want, sizeof want, "bytes=%d-", BLOB_LEN / 2);
    assert_string_equal(range, want);
    assert_true(ts_file_equals(r.path, blob, BLOB_LEN));
    assert_string_equal(r.sha256, blob_sha); /* the hash spans both runs */
    assert_false(exists(part));
}

/* A partial whose server ignores Range: the bytes are fetched again from 0. */
static void test_pull_server_without_range(void **state) {
    fixture *f = *state;
    hs_route(hs, "/nr/c.gguf", HS_DROP_ONCE, blob, BLOB_LEN, NULL, 0);
    char u[256];
    url(u, sizeof u, "/nr/c.gguf");
    pl_pull_opts o = fast_opts();
    pl_pull_result r;
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_ERR_IO);
    hs_route(hs, "/nr/c.gguf", HS_NORANGE, blob, BLOB_LEN, NULL, 0);
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_OK);
    assert_true(ts_file_equals(r.path, blob, BLOB_LEN));
    assert_string_equal(r.sha256, blob_sha);
    /* the server changed the file between runs (new ETag): If-Range makes it send all of it */
    hs_route(hs, "/drop/d.gguf", HS_DROP_ONCE, blob2, BLOB_LEN, NULL, 0);
    url(u, sizeof u, "/drop/d.gguf");
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_ERR_IO);
    hs_route(hs, "/drop/d.gguf", HS_OK, blob, BLOB_LEN, NULL, 0);
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_OK);
    assert_true(ts_file_equals(r.path, blob, BLOB_LEN)); /* not half of blob2 + half of blob */
}

/* ---- hash and size checks ---- */

static void test_pull_sha256_mismatch(void **state) {
    fixture *f = *state;
    hs_route(hs, "/files/e.gguf", HS_OK, blob, BLOB_LEN, NULL, 0);
    char u[256];
    url(u, sizeof u, "/files/e.gguf");
    pl_pull_opts o = fast_opts();
    const char *wrong = "0000000000000000000000000000000000000000000000000000000000000001";
    o.sha256 = wrong;
    pl_pull_result r;
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_ERR_FORMAT);
    const char *e = pl_store_last_error(f->s);
    assert_non_null(strstr(e, "sha256 mismatch"));
    assert_non_null(strstr(e, wrong));
    assert_non_null(strstr(e, blob_sha));
    assert_non_null(strstr(e, "removed"));
    char part[PL_STORE_PATH_MAX + 16];
    snprintf(part, sizeof part, "%s.part", r.path);
    assert_false(exists(part));
    assert_false(exists(r.path));
    /* the right hash passes and is recorded as the user's */
    o.sha256 = blob_sha;
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_OK);
    assert_string_equal(r.hash_source, "user");
    o.sha256 = "xyz";
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_ERR_INVALID_ARG);
}

/* Catalog rows without a published hash: the first download's hash is
 * recorded, and a later download of different bytes is refused. */
static void test_pull_catalog_trust_on_first_use(void **state) {
    fixture *f = *state;
    const pl_catalog_entry *c = pl_catalog_find("smollm2-135m-instruct:q8_0");
    assert_non_null(c);
    assert_null(c->sha256);
    char path[512];
    snprintf(path, sizeof path, "/%s/resolve/main/%s", c->repo, c->file);
    hs_route(hs, path, HS_OK, blob, BLOB_LEN, NULL, 0);
    pl_pull_opts o = fast_opts();
    pl_pull_result r;
    assert_int_equal(pl_store_pull(f->s, "smollm2-135m-instruct:q8_0", &o, &r), PL_OK);
    char want[PL_STORE_PATH_MAX + 16];
    snprintf(want, sizeof want, "%s/smollm2-135m-instruct-q8_0.gguf", pl_store_dir(f->s));
    assert_string_equal(r.path, want);
    assert_string_equal(r.hash_source, "download");
    pl_store_entry *list = NULL;
    size_t n = 0;
    assert_int_equal(pl_store_list(f->s, &list, &n), PL_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].name, "smollm2-135m-instruct:q8_0");
    assert_string_equal(list[0].quant, "Q8_0");
    pl_store_list_free(f->s, list);
    char *p = NULL;
    assert_int_equal(pl_store_resolve(f->s, "SmolLM2-135M-Instruct:Q8_0", &p), PL_OK);
    assert_string_equal(p, want);
    pl_free(f->ctx, p);

    /* upstream bytes change: --force refuses them, and keeps the good file */
    hs_route(hs, path, HS_OK, blob2, BLOB_LEN, NULL, 0);
    o.force = true;
    assert_int_equal(pl_store_pull(f->s, "smollm2-135m-instruct:q8_0", &o, &r), PL_ERR_FORMAT);
    assert_non_null(strstr(pl_store_last_error(f->s), "sha256 mismatch"));
    assert_non_null(strstr(pl_store_last_error(f->s), "(download)"));
    assert_true(ts_file_equals(want, blob, BLOB_LEN));
    /* a corrupted stored file is caught by --verify */
    FILE *fp = fopen(want, "r+b");
    fseek(fp, 1000, SEEK_SET);
    fputc(blob[1000] ^ 1, fp);
    fclose(fp);
    o.force = false;
    o.verify = true;
    assert_int_equal(pl_store_pull(f->s, "smollm2-135m-instruct:q8_0", &o, &r), PL_ERR_FORMAT);
    assert_non_null(strstr(pl_store_last_error(f->s), "corrupt"));
}

/* Catalog rows with a published size and hash: a different file is refused
 * as soon as the server announces its size. */
static void test_pull_catalog_published_checks(void **state) {
    fixture *f = *state;
    const pl_catalog_entry *c = pl_catalog_find(PL_STORE_DEFAULT_MODEL);
    assert_non_null(c);
    assert_non_null(c->sha256);
    char path[512];
    snprintf(path, sizeof path, "/%s/resolve/main/%s", c->repo, c->file);
    hs_route(hs, path, HS_OK, blob, BLOB_LEN, NULL, 0);
    pl_pull_opts o = fast_opts();
    pl_pull_result r;
    assert_int_equal(pl_store_pull(f->s, PL_STORE_DEFAULT_MODEL, &o, &r), PL_ERR_FORMAT);
    assert_non_null(strstr(pl_store_last_error(f->s), "size mismatch"));
    char part[PL_STORE_PATH_MAX + 16];
    snprintf(part, sizeof part, "%s.part", r.path);
    assert_false(exists(part));
    assert_false(exists(r.path));
    /* whisper rows carry whisper.cpp's published SHA-1 */
    c = pl_catalog_find("whisper-tiny.en");
    assert_non_null(c);
    snprintf(path, sizeof path, "/%s/resolve/main/%s", c->repo, c->file);
    hs_route(hs, path, HS_OK, blob, BLOB_LEN, NULL, 0);
    assert_int_equal(pl_store_pull(f->s, "whisper-tiny.en", &o, &r), PL_ERR_FORMAT);
    assert_non_null(strstr(pl_store_last_error(f->s), "sha1 mismatch"));
    assert_non_null(strstr(pl_store_last_error(f->s), c->sha1));
    assert_false(exists(r.path));
}

/* ---- errors ---- */

static void test_pull_404(void **state) {
    fixture *f = *state;
    char u[256];
    url(u, sizeof u, "/missing/model.gguf");
    pl_pull_opts o = fast_opts();
    o.retries = 3; /* a 404 is final: no retries */
    pl_pull_result r;
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_ERR_NOT_FOUND);
    assert_non_null(strstr(pl_store_last_error(f->s), "HTTP 404"));
    assert_int_equal(r.attempts, 1);
    char part[PL_STORE_PATH_MAX + 16];
    snprintf(part, sizeof part, "%s.part", r.path);
    assert_false(exists(part));
    assert_int_equal(pl_store_pull(f->s, "no-such-model:q4", &o, &r), PL_ERR_NOT_FOUND);
    assert_non_null(strstr(pl_store_last_error(f->s), "unknown model"));
    /* 503 is retried, then reported */
    hs_route(hs, "/busy/m.gguf", HS_STATUS, "", 0, NULL, 503);
    url(u, sizeof u, "/busy/m.gguf");
    o.retries = 1;
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_ERR_IO);
    assert_non_null(strstr(pl_store_last_error(f->s), "HTTP 503"));
    assert_int_equal(hs_requests(hs, "/busy/m.gguf"), 2);
    hs_route(hs, "/gated/m.gguf", HS_STATUS, "", 0, NULL, 401);
    url(u, sizeof u, "/gated/m.gguf");
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_ERR_IO);
    assert_non_null(strstr(pl_store_last_error(f->s), "HF_TOKEN"));
}

static void test_pull_stalled_server_times_out(void **state) {
    fixture *f = *state;
    hs_route(hs, "/slow/s.gguf", HS_SLOW, blob, BLOB_LEN, NULL, 0);
    char u[256];
    url(u, sizeof u, "/slow/s.gguf");
    pl_pull_opts o = fast_opts();
    o.stall_timeout_s = 1;
    pl_pull_result r;
    uint64_t t0 = pl_time_ns();
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_ERR_TIMEOUT);
    double s = (double)(pl_time_ns() - t0) / 1e9;
    assert_true(s >= 0.9 && s < 5.0);
    assert_non_null(strstr(pl_store_last_error(f->s), "stalled"));
    char part[PL_STORE_PATH_MAX + 16];
    snprintf(part, sizeof part, "%s.part", r.path);
    assert_int_equal(file_size(part), 16); /* what arrived is kept for a resume */
}

static void test_pull_connect_tls_dns_errors(void **state) {
    fixture *f = *state;
    pl_pull_opts o = fast_opts();
    pl_pull_result r;
    /* TLS: our server speaks plain HTTP */
    hs_route(hs, "/files/t.gguf", HS_OK, blob, BLOB_LEN, NULL, 0);
    char u[256];
    snprintf(u, sizeof u, "https://127.0.0.1:%d/files/t.gguf", hs_port(hs));
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_ERR_IO);
    assert_non_null(strstr(pl_store_last_error(f->s), "TLS error"));
    /* nothing listens on a port we bound and closed */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    snprintf(u, sizeof u, "http://127.0.0.1:%d/x.gguf", ntohs(a.sin_port));
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_ERR_IO);
    assert_non_null(strstr(pl_store_last_error(f->s), "cannot connect"));
    /* .invalid never resolves (RFC 6761); a resolver that never answers times out instead */
    o.connect_timeout_s = 3;
    pl_status st = pl_store_pull(f->s, "http://parley-test.invalid/x.gguf", &o, &r);
    if (st == PL_ERR_IO) assert_non_null(strstr(pl_store_last_error(f->s), "cannot resolve host 'parley-test.invalid'"));
    else assert_int_equal(st, PL_ERR_TIMEOUT);
    /* unsupported scheme and junk */
    assert_int_equal(pl_store_pull(f->s, "ftp://x/y.gguf", &o, &r), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_store_pull(f->s, "http://h/a b.gguf", &o, &r), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_store_pull(f->s, "http://h/", &o, &r), PL_ERR_INVALID_ARG);
}

/* ---- full disk ---- */

typedef struct enospc_hook { size_t budget; } enospc_hook;

static ssize_t write_until_full(void *ud, int fd, const void *buf, size_t n) {
    enospc_hook *h = ud;
    if (h->budget == 0) {
        errno = ENOSPC;
        return -1;
    }
    if (n > h->budget) n = h->budget;
    ssize_t w = write(fd, buf, n);
    if (w > 0) h->budget -= (size_t)w;
    return w;
}

static void test_pull_disk_full_injected(void **state) {
    fixture *f = *state;
    hs_route(hs, "/files/full.gguf", HS_OK, blob, BLOB_LEN, NULL, 0);
    char u[256];
    url(u, sizeof u, "/files/full.gguf");
    pl_pull_opts o = fast_opts();
    o.retries = 2; /* a full disk is not retried */
    enospc_hook h = { .budget = 100000 };
    o.write_fn = write_until_full;
    o.write_ud = &h;
    pl_pull_result r;
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_ERR_IO);
    const char *e = pl_store_last_error(f->s);
    assert_non_null(strstr(e, "disk full"));
    assert_non_null(strstr(e, "resume"));
    assert_int_equal(r.attempts, 1);
    char part[PL_STORE_PATH_MAX + 16];
    snprintf(part, sizeof part, "%s.part", r.path);
    assert_int_equal(file_size(part), 100000);
    assert_false(exists(r.path));
    /* space freed: the same pull finishes the file */
    o.write_fn = NULL;
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_OK);
    assert_int_equal(r.resumed_from, 100000);
    assert_true(ts_file_equals(r.path, blob, BLOB_LEN));
    assert_string_equal(r.sha256, blob_sha);
}

/* A real write failure: the process file-size limit (SIGXFSZ ignored, so
 * write() fails with EFBIG), in a child so the limit stays there. */
static void test_pull_disk_full_rlimit(void **state) {
    fixture *f = *state;
    hs_route(hs, "/files/big.gguf", HS_OK, blob, BLOB_LEN, NULL, 0);
    char u[256];
    url(u, sizeof u, "/files/big.gguf");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = { .rlim_cur = 65536, .rlim_max = 65536 };
        setrlimit(RLIMIT_FSIZE, &rl);
        pl_pull_opts o = fast_opts();
        pl_pull_result r;
        pl_status st = pl_store_pull(f->s, u, &o, &r);
        const char *e = pl_store_last_error(f->s);
        if (write(fds[1], e, strlen(e)) < 0) _exit(99);
        _exit(st == PL_ERR_IO ? 0 : 1);
    }
    close(fds[1]);
    char msg[1024] = "";
    ssize_t n = read(fds[0], msg, sizeof msg - 1);
    close(fds[0]);
    if (n > 0) msg[n] = '\0';
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_non_null(strstr(msg, "file too large"));
    char part[PL_STORE_PATH_MAX + 16];
    snprintf(part, sizeof part, "%s/big.gguf.part", pl_store_dir(f->s));
    assert_int_equal(file_size(part), 65536);
}

/* ---- cancel and locking ---- */

static volatile sig_atomic_t cancel_flag;

static void cancel_when_started(void *ud, const pl_pull_progress *p) {
    int *calls = ud;
    (*calls)++;
    if (p->done > 0) cancel_flag = 1;
}

static void test_pull_cancel_and_busy(void **state) {
    fixture *f = *state;
    hs_route(hs, "/slow/c.gguf", HS_SLOW, blob, BLOB_LEN, NULL, 0);
    char u[256];
    url(u, sizeof u, "/slow/c.gguf");
    pl_pull_opts o = fast_opts();
    int calls = 0;
    cancel_flag = 0;
    o.cancel = &cancel_flag;
    o.progress = cancel_when_started;
    o.progress_ud = &calls;
    pl_pull_result r;
    uint64_t t0 = pl_time_ns();
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_ERR_CANCELED);
    assert_true((double)(pl_time_ns() - t0) / 1e9 < 4.0); /* before the 5 s stall timeout */
    assert_true(calls > 0);
    assert_non_null(strstr(pl_store_last_error(f->s), "resume"));

    /* another process holds the download lock */
    hs_route(hs, "/files/l.gguf", HS_OK, blob, BLOB_LEN, NULL, 0);
    url(u, sizeof u, "/files/l.gguf");
    assert_int_equal(mkdir(pl_store_dir(f->s), 0755) == 0 || errno == EEXIST, 1);
    char part[PL_STORE_PATH_MAX + 16];
    snprintf(part, sizeof part, "%s/l.gguf.part", pl_store_dir(f->s));
    int fd = open(part, O_RDWR | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX), 0);
    pl_pull_opts o2 = fast_opts();
    assert_int_equal(pl_store_pull(f->s, u, &o2, &r), PL_ERR_BUSY);
    close(fd);
    assert_int_equal(pl_store_pull(f->s, u, &o2, &r), PL_OK);
}

/* ---- remove ---- */

static void test_store_remove(void **state) {
    fixture *f = *state;
    hs_route(hs, "/files/rm-me.gguf", HS_OK, blob, 1000, NULL, 0);
    char u[256];
    url(u, sizeof u, "/files/rm-me.gguf");
    pl_pull_opts o = fast_opts();
    pl_pull_result r;
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_OK);
    char man[PL_STORE_PATH_MAX + 16];
    snprintf(man, sizeof man, "%s.json", r.path);
    assert_true(exists(man));
    assert_int_equal(pl_store_remove(f->s, "rm-me"), PL_OK);
    assert_false(exists(r.path));
    assert_false(exists(man));
    assert_int_equal(pl_store_remove(f->s, "rm-me"), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_store_remove(f->s, "../etc/passwd"), PL_ERR_INVALID_ARG);
    assert_int_equal(pl_store_remove(f->s, "/etc/passwd"), PL_ERR_INVALID_ARG);
    /* a partial download alone can be removed */
    hs_route(hs, "/drop/p.gguf", HS_DROP_ONCE, blob, BLOB_LEN, NULL, 0);
    url(u, sizeof u, "/drop/p.gguf");
    assert_int_equal(pl_store_pull(f->s, u, &o, &r), PL_ERR_IO);
    assert_int_equal(pl_store_remove(f->s, "p"), PL_OK);
    char part[PL_STORE_PATH_MAX + 16];
    snprintf(part, sizeof part, "%s.part", r.path);
    assert_false(exists(part));
}

int test_pull_main(void) {
    hs = hs_start();
    if (!hs) {
        fprintf(stderr, "cannot start the HTTP fixture server\n");
        return 1;
    }
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d", hs_port(hs));
    blob = malloc(BLOB_LEN);
    blob2 = malloc(BLOB_LEN);
    make_blob(blob, BLOB_LEN, 12345);
    make_blob(blob2, BLOB_LEN, 777);
    ts_sha256_hex(blob, BLOB_LEN, blob_sha);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pull_url_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_hf_redirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_resume_within_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_resume_across_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_server_without_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_sha256_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_catalog_trust_on_first_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_catalog_published_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_404, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_stalled_server_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_connect_tls_dns_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_disk_full_injected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_disk_full_rlimit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_cancel_and_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_remove, setup, teardown),
    };
    int rc = cmocka_run_group_tests_name("pull", tests, NULL, NULL);
    hs_stop(hs);
    free(blob);
    free(blob2);
    return rc;
}
