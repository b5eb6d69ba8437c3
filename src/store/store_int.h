/*
 * store_int.h - private pieces of the model store shared by store.c (layout,
 * manifests, list/resolve/remove) and pull.c (downloads).
 */
#ifndef PL_STORE_INT_H
#define PL_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/store.h"

struct pl_store {
    pl_ctx *ctx;
    char    dir[PL_STORE_PATH_MAX];
    char    err[1024];
};

/* Set the store's error text; returns st. */
pl_status pl_store_errf(pl_store *s, pl_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Manifests are small JSON files; anything bigger is not ours. */
#define PL_MANIFEST_MAX_BYTES (64 * 1024)

typedef struct pl_manifest {
    char     name[PL_STORE_NAME_MAX];
    char     url[PL_STORE_URL_MAX];
    char     sha256[65];
    char     sha1[41];
    char     hash_source[16]; /* "published", "download", "user", "local" */
    char     quant[24];
    char     kind[16];
    uint64_t size;
    /* partial-download metadata (FILE.part.json) */
    char     etag[256];
} pl_manifest;

/* Read/write a manifest (write is atomic: temp file, fsync, rename).
 * Read: PL_ERR_NOT_FOUND when absent, PL_ERR_FORMAT when malformed. */
pl_status pl_manifest_read(pl_store *s, const char *path, pl_manifest *m);
pl_status pl_manifest_write(pl_store *s, const char *path, const pl_manifest *m);

/* "a:b" + ".gguf" -> "<dir>/a-b.gguf"; false when it does not fit. */
bool pl_store_file_path(const pl_store *s, const char *name, const char *ext, char *out, size_t cap);

/* Split a file name into a store name and extension (".gguf"/".bin", else "").
 * Characters outside the name alphabet become '_'. False when nothing usable
 * remains or the name is too long. */
bool pl_store_name_from_file(const char *file, char *name, size_t name_cap, char *ext, size_t ext_cap);

/* What a pull spec points at. */
typedef struct pl_pull_target {
    char name[PL_STORE_NAME_MAX];
    char url[PL_STORE_URL_MAX];
    char ext[8];
    char path[PL_STORE_PATH_MAX];      /* final file */
    char part[PL_STORE_PATH_MAX];      /* FILE.part */
    char part_meta[PL_STORE_PATH_MAX]; /* FILE.part.json */
    char manifest[PL_STORE_PATH_MAX];  /* FILE.json */
    const pl_catalog_entry *cat;       /* NULL for URL pulls */
} pl_pull_target;

/* Resolve a pull spec (catalog name, hf://, http(s)://, or a store name with a
 * manifest that records its URL). endpoint is the HF base URL. */
pl_status pl_store_target(pl_store *s, const char *spec, const char *endpoint, const char *name_override,
                          pl_pull_target *t);

/* The GGUF general.file_type name ("Q4_K_M") of a file into out; out is left
 * unchanged when the file is not a readable GGUF or has no file type. Cost:
 * opening and validating the file's header and tensor table (mmap). */
void pl_store_gguf_quant(pl_ctx *ctx, const char *path, char *out, size_t cap);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void pl_hex(const unsigned char *b, size_t n, char *out);
/* True for exactly n lowercase-or-uppercase hex digits. */
bool pl_is_hex(const char *s, size_t n);

#endif
