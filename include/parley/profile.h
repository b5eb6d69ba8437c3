/*
 * parley/profile.h - what the machine is doing: memory figures from
 * /proc/meminfo, this process's RSS / peak / CPU time / threads, NVIDIA GPUs
 * through NVML (loaded with dlopen at run time; no driver is not an error), and
 * a parser for the Prometheus text exposition format (what `parley top` reads
 * from a server's GET /metrics).
 *
 * Ownership and threads
 *  - pl_meminfo_*, pl_proc_stats_* and pl_prom_* are plain functions on caller
 *    memory: thread-safe, no allocation.
 *  - pl_gpu: made by pl_gpu_open(), freed by pl_gpu_free() (NULL: no-op).
 *    NVML itself is thread-safe; a pl_gpu may be read from several threads.
 * Nothing here prints. Linux only (/proc); elsewhere the readers return
 * PL_ERR_UNSUPPORTED or PL_ERR_IO.
 */
#ifndef PARLEY_PROFILE_H
#define PARLEY_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- system memory (/proc/meminfo) ---- */

typedef struct pl_meminfo {
    uint64_t total;      /* MemTotal, bytes */
    uint64_t available;  /* MemAvailable (kernel's estimate of RAM a new workload can get without
                            swapping: free + reclaimable page cache); MemFree + Cached on kernels
                            without it */
    uint64_t swap_total; /* SwapTotal */
    uint64_t swap_free;  /* SwapFree */
} pl_meminfo;

/* Parse /proc/meminfo text ("Key:   123 kB" lines; unknown keys ignored).
 * PL_ERR_FORMAT when MemTotal or both MemAvailable and MemFree are missing. */
pl_status pl_meminfo_parse(const char *text, size_t len, pl_meminfo *out);
/* Read and parse a meminfo file; path NULL: /proc/meminfo. PL_ERR_IO when it
 * cannot be read. Cost: one small file read (~10 us). */
pl_status pl_meminfo_read(const char *path, pl_meminfo *out);

/* ---- this process ---- */

typedef struct pl_proc_stats {
    uint64_t rss_bytes;      /* VmRSS: resident now (anonymous + mapped file pages) */
    uint64_t peak_rss_bytes; /* VmHWM: high-water mark of VmRSS */
    int32_t  threads;        /* Threads */
    double   cpu_user_s;     /* getrusage(RUSAGE_SELF): all threads */
    double   cpu_sys_s;
    uint64_t minor_faults;   /* page faults served without I/O */
    uint64_t major_faults;   /* page faults that read from disk (cold model pages) */
} pl_proc_stats;

/* VmRSS, VmHWM and Threads from /proc/self/status text (the other fields are
 * left as they are). PL_ERR_FORMAT when VmRSS is missing. */
pl_status pl_proc_status_parse(const char *text, size_t len, pl_proc_stats *out);
/* Everything above for the calling process. Cost: one /proc read plus one
 * getrusage (~20 us): per request or per second, not per token. */
pl_status pl_proc_stats_read(pl_proc_stats *out);

/* ---- NVIDIA GPUs (NVML) ---- */

typedef struct pl_gpu pl_gpu;

typedef struct pl_gpu_info {
    char     name[96];
    int32_t  util_gpu_pct; /* % of the last sample period a kernel ran; -1 unknown */
    int32_t  util_mem_pct; /* % of it memory was read or written; -1 unknown */
    uint64_t mem_total;    /* bytes; 0 unknown */
    uint64_t mem_used;
    int32_t  temp_c;       /* GPU core temperature; -1 unknown */
} pl_gpu_info;

#define PL_GPU_NVML_LIB "libnvidia-ml.so.1"

/* dlopen lib (NULL: PL_GPU_NVML_LIB), resolve the NVML entry points and
 * initialise it. PL_ERR_NOT_FOUND when the library is absent (no NVIDIA
 * driver: the usual case, not worth a warning), PL_ERR_UNSUPPORTED when it
 * lacks an entry point, PL_ERR_IO when nvmlInit fails (driver not loaded);
 * the reason is in pl_ctx_last_error(ctx). Cost: the dlopen (~1-50 ms with a
 * driver). */
pl_status pl_gpu_open(pl_ctx *ctx, const char *lib, pl_gpu **out);
void pl_gpu_free(pl_gpu *g);
int pl_gpu_count(const pl_gpu *g);
/* Figures of GPU i in [0, count). A figure NVML does not give stays "unknown"
 * (see pl_gpu_info); PL_ERR_INVALID_ARG for a bad index, PL_ERR_IO when the
 * device cannot be reached at all. Cost: a few NVML calls (~100 us). */
pl_status pl_gpu_read(pl_gpu *g, int i, pl_gpu_info *out);

/* ---- Prometheus text exposition format (version 0.0.4) ----
 * One sample per line: name{label="value",...} value [timestamp]. Comment
 * lines (# HELP, # TYPE, others) and blank lines are skipped. */

typedef struct pl_prom_sample {
    const char *name;    /* metric name (not NUL-terminated), inside the parsed text */
    size_t      name_len;
    const char *labels;  /* between the braces, escapes as written; "" (len 0) when none */
    size_t      labels_len;
    double      value;   /* NaN, +Inf and -Inf as written */
    bool        has_timestamp;
    int64_t     timestamp_ms;
} pl_prom_sample;

/* Return false to stop parsing (pl_prom_parse then returns PL_ERR_CANCELED). */
typedef bool (*pl_prom_fn)(void *ud, const pl_prom_sample *s);

/* Call fn for each well-formed sample line of text[0..len). A malformed line
 * is skipped; then PL_ERR_FORMAT is returned at the end and *bad_line (when
 * not NULL) holds the first such line's number (1-based; 0 when all were
 * good). Lines longer than PL_PROM_MAX_LINE are malformed. No allocation. */
#define PL_PROM_MAX_LINE 65536
pl_status pl_prom_parse(const char *text, size_t len, pl_prom_fn fn, void *ud, size_t *bad_line);

/* True when s's name equals name. */
bool pl_prom_is(const pl_prom_sample *s, const char *name);
/* The value of label key, unescaped into buf (NUL-terminated, cut at cap - 1).
 * False when s has no such label. */
bool pl_prom_label(const pl_prom_sample *s, const char *key, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* PARLEY_PROFILE_H */
