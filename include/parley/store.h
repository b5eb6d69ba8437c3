/*
 * parley/store.h - the model store: a directory of downloaded model files, a
 * built-in catalog of well-known models, `pull` over HTTP(S) with resume and
 * SHA-256 verification, and name-or-path resolution for `-m`.
 *
 * Layout. The store is one flat directory: $PARLEY_HOME when set, else
 * ~/.local/share/parley/models. A model NAME (e.g. "qwen2.5-0.5b-instruct:q4_k_m")
 * lives in FILE = NAME with ':' turned into '-', plus the upstream extension
 * (.gguf or .bin). Beside it:
 *   FILE.json        manifest: name, url, size, sha256 and where the hash came
 *                    from ("published" in the catalog, or "download" when it
 *                    was computed at the first download - trust on first use;
 *                    later downloads of the same name are checked against it)
 *   FILE.part        an unfinished download (resumed with an HTTP Range request)
 *   FILE.part.json   what the .part belongs to (url, ETag, total size)
 * Files dropped into the directory by hand are found by their file name too.
 *
 * Names: 1..PL_STORE_NAME_MAX-1 bytes of [A-Za-z0-9._+:-], not starting with
 * '.' or '-'. A name never holds '/', so nothing derived from a URL or a user
 * argument can reach outside the store directory.
 *
 * Ownership: pl_store_open() makes a pl_store, pl_store_free() releases it.
 * Lists from pl_store_list() are freed with pl_store_list_free().
 *
 * Thread-safety: a pl_store is used by one thread at a time. Different
 * processes may pull into one store at once: a download holds an exclusive
 * flock() on its .part file, and a second pull of the same model gets
 * PL_ERR_BUSY. The catalog functions are thread-safe (read-only table).
 */
#ifndef PARLEY_STORE_H
#define PARLEY_STORE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "parley/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PL_STORE_NAME_MAX 128
#define PL_STORE_PATH_MAX 4096
#define PL_STORE_URL_MAX  2048

/* The model `make run` pulls when none is configured: small, instruction
 * tuned, published SHA-256 (see the catalog). */
#define PL_STORE_DEFAULT_MODEL "qwen2.5-0.5b-instruct:q4_k_m"
/* Hugging Face base URL, overridden by $PARLEY_HF_ENDPOINT (tests point it at
 * a local server) or pl_pull_opts.endpoint. */
#define PL_STORE_HF_ENDPOINT "https://huggingface.co"

/* ---- catalog of well-known models ---- */

typedef enum pl_model_kind {
    PL_MODEL_KIND_LLM = 0, /* GGUF language model */
    PL_MODEL_KIND_WHISPER, /* whisper.cpp ggml speech model */
    PL_MODEL_KIND_COUNT
} pl_model_kind;

const char *pl_model_kind_name(pl_model_kind k); /* "llm", "whisper" */

typedef struct pl_catalog_entry {
    const char   *name;      /* "qwen2.5-0.5b-instruct:q4_k_m", "whisper-base.en" */
    const char   *title;     /* "Qwen2.5 0.5B Instruct" */
    const char   *quant;     /* "Q4_K_M", "Q8_0", "F16" */
    pl_model_kind kind;
    const char   *repo;      /* Hugging Face "owner/name" */
    const char   *file;      /* file in the repo's main branch */
    uint64_t      size;      /* exact bytes when published, else 0 */
    const char   *sha256;    /* 64 lowercase hex when published, else NULL */
    const char   *sha1;      /* 40 hex where only SHA-1 is published (whisper.cpp), else NULL */
    uint32_t      approx_mb; /* display only (rows with an exact size use it instead) */
    bool          preferred; /* picked for the name without ":quant" */
} pl_catalog_entry;

size_t pl_catalog_count(void);
const pl_catalog_entry *pl_catalog_at(size_t i); /* NULL when i >= count */
/* Exact name, case-insensitive; or a family name without ":quant"
 * ("smollm2-360m-instruct") for its preferred row. NULL when unknown. */
const pl_catalog_entry *pl_catalog_find(const char *name);

/* ---- the store ---- */

typedef struct pl_store pl_store;

/* dir NULL: $PARLEY_HOME, else $HOME/.local/share/parley/models. The
 * directory need not exist yet (pull creates it). */
pl_status pl_store_open(pl_ctx *ctx, const char *dir, pl_store **out);
void pl_store_free(pl_store *s);
const char *pl_store_dir(const pl_store *s);
/* Text of the last failure on this store ("" when none). */
const char *pl_store_last_error(const pl_store *s);

/* True when name is a valid store name (see the top of this file). */
bool pl_store_name_valid(const char *name);

typedef struct pl_store_entry {
    char     name[PL_STORE_NAME_MAX];
    char     path[PL_STORE_PATH_MAX];
    char     quant[24];      /* "Q4_K_M", or "" when unknown */
    char     sha256[65];     /* from the manifest, "" when none */
    char     hash_source[16];/* "published", "download", "local" or "" */
    uint64_t size;           /* bytes on disk */
    bool     has_manifest;
    bool     partial;        /* only a .part exists (an interrupted download) */
    uint64_t partial_bytes;
} pl_store_entry;

/* Every model in the store, sorted by name. Missing directory: 0 entries.
 * Quant comes from the manifest, else the catalog, else the GGUF
 * general.file_type (which costs opening the file's header). */
pl_status pl_store_list(pl_store *s, pl_store_entry **out, size_t *n);
void pl_store_list_free(pl_store *s, pl_store_entry *list);

/* Resolve what a user gave to -m: an existing file path is returned as is;
 * otherwise NAME (a store name, a catalog name or family, hf://OWNER/REPO/FILE
 * or a URL that was pulled) is looked up in the store. *path_out is allocated
 * with pl_malloc on the store's ctx; free it with pl_free. PL_ERR_NOT_FOUND
 * with a message that says what to do ("run 'parley pull NAME'"). */
pl_status pl_store_resolve(pl_store *s, const char *spec, char **path_out);

/* One-call form for commands: opens the default store, resolves, frees it.
 * The error text goes to pl_ctx_last_error(ctx). */
pl_status pl_model_resolve(pl_ctx *ctx, const char *spec, char **path_out);

/* Remove a model (file, manifest and any partial download) by its store name
 * (or catalog name, or file name in the store). Never touches paths outside
 * the store. PL_ERR_NOT_FOUND when nothing was there. */
pl_status pl_store_remove(pl_store *s, const char *name);

/* ---- pull ---- */

typedef struct pl_pull_progress {
    uint64_t done;         /* bytes of the file on disk so far (resumed bytes included) */
    uint64_t total;        /* expected total, 0 when unknown */
    uint64_t resumed_from; /* bytes that were already there when this attempt started */
    double   rate_bps;     /* recent download rate, bytes/s */
    double   eta_s;        /* seconds left, < 0 when unknown */
    int      attempt;      /* 1 for the first try */
    bool     finished;     /* the last call for this attempt */
} pl_pull_progress;

typedef void (*pl_pull_progress_fn)(void *ud, const pl_pull_progress *p);
/* Test hook: replaces write(2) for the downloaded bytes. Return the bytes
 * written, or -1 with errno set (ENOSPC simulates a full disk). */
typedef ssize_t (*pl_pull_write_fn)(void *ud, int fd, const void *buf, size_t n);

typedef struct pl_pull_opts {
    const char *endpoint;        /* NULL: $PARLEY_HF_ENDPOINT, else PL_STORE_HF_ENDPOINT */
    const char *name;            /* store name for a URL pull (default: the file name) */
    const char *sha256;          /* expected hash; overrides the catalog and manifest */
    const char *token;           /* Hugging Face token (NULL: $HF_TOKEN); sent only to the first host */
    bool        force;           /* download again even when present */
    bool        verify;          /* when present: re-hash it and compare with the manifest */
    int         connect_timeout_s; /* default 15 */
    int         stall_timeout_s;   /* abort an attempt after this long below 1 KiB/s; default 30 */
    int         retries;           /* extra attempts after a dropped connection, stall or 5xx; default 3 */
    int         retry_delay_ms;    /* before retry k: k * this; default 1000 */
    pl_pull_progress_fn progress;  /* called at most ~10 times a second, and at the end */
    void       *progress_ud;
    volatile sig_atomic_t *cancel; /* non-zero stops the download (partial kept) */
    pl_pull_write_fn write_fn;     /* NULL: write(2) */
    void       *write_ud;
} pl_pull_opts;

pl_pull_opts pl_pull_default_opts(void);

typedef struct pl_pull_result {
    char     name[PL_STORE_NAME_MAX];
    char     path[PL_STORE_PATH_MAX];
    char     url[PL_STORE_URL_MAX];
    char     sha256[65];
    char     hash_source[16];  /* "published", "download", "user" */
    uint64_t size;
    uint64_t downloaded;       /* bytes fetched by this call */
    uint64_t resumed_from;     /* bytes reused from an earlier partial download */
    int      attempts;
    bool     already_present;  /* nothing was downloaded */
} pl_pull_result;

/* Download spec into the store. spec is a catalog name (or family), a store
 * name already present, hf://OWNER/REPO/FILE (also hf://OWNER/REPO/PATH/FILE)
 * or an http(s):// URL. On success the file is complete, verified and renamed
 * into place, and the manifest is written. res may be NULL.
 *
 * Errors (text on the store): PL_ERR_NOT_FOUND (unknown name, HTTP 404),
 * PL_ERR_IO (DNS, connect, TLS, HTTP errors, disk full - the .part is kept so
 * the next pull resumes), PL_ERR_FORMAT (hash or size mismatch - the .part is
 * removed), PL_ERR_TIMEOUT, PL_ERR_CANCELED (partial kept), PL_ERR_BUSY
 * (another process is pulling the same file), PL_ERR_INVALID_ARG. */
pl_status pl_store_pull(pl_store *s, const char *spec, const pl_pull_opts *opts, pl_pull_result *res);

/* SHA-256 of a whole file as 64 lowercase hex digits (OpenSSL EVP). */
pl_status pl_sha256_file(pl_ctx *ctx, const char *path, char hex[65]);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_STORE_H */
