/*
 * load.c - the second half of pl_model_load(): once the tensors are validated,
 * check that the model fits in memory, bring its pages in (prefault or mlock),
 * run the optional warm-up decode, and record how long each part took.
 *
 * Memory rule (why tensor bytes vs MemAvailable + SwapFree): the weights are a
 * read-only private file mapping, i.e. clean page-cache pages the kernel may
 * drop at any time and re-read later, so "loading" a model larger than RAM
 * succeeds. But a decode step reads every weight once, so such a model would
 * re-read (most of) the file from disk for every token: minutes per token
 * instead of milliseconds. So all tensor bytes count as needing RAM. They are
 * compared with MemAvailable (free RAM plus reclaimable cache, which includes
 * this file's pages when it is already cached, so a warm file is not counted
 * twice) plus SwapFree (swap does not hold file pages, but the kernel can move
 * other programs' anonymous memory there to make room). The KV cache and
 * scratch of the contexts come on top; pl_context_memory_usage reports them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "model_int.h"
#include "parley/profile.h"

#define TOUCH_CHUNK ((uint64_t)64 << 20) /* progress granularity: 64 MiB */
#define PAGE        4096u                /* touch stride; a larger real page size only repeats reads */

static const char *const phase_names[PL_LOAD_PHASE_COUNT] = {
    [PL_LOAD_PHASE_MAP] = "map",
    [PL_LOAD_PHASE_TOUCH] = "touch",
    [PL_LOAD_PHASE_WARMUP] = "warm-up",
};

const char *pl_load_phase_name(pl_load_phase ph) {
    return (unsigned)ph < PL_LOAD_PHASE_COUNT ? phase_names[ph] : "unknown";
}

static uint64_t major_faults_now(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (uint64_t)ru.ru_majflt : 0;
}

void pl_load_clock_start(pl_load_clock *clk) {
    clk->t0_ns = pl_time_ns();
    clk->major_faults = major_faults_now();
}

static double ms_since(uint64_t t) { return (double)(pl_time_ns() - t) / 1e6; }
static double gib(uint64_t b) { return (double)b / (1024.0 * 1024.0 * 1024.0); }

/* The progress callback, if any; false when it asked to stop. */
static bool report(const pl_model_params *p, pl_load_phase ph, uint64_t done, uint64_t total) {
    return !p->progress || p->progress(p->progress_ud, ph, done, total);
}

static pl_status canceled(pl_model *m, const char *path, pl_load_phase ph) {
    return pl_ctx_err(m->ctx, PL_ERR_CANCELED, "%s: load canceled during %s", path, pl_load_phase_name(ph));
}

/* "1.5 MiB" below 1 GiB, "4.25 GiB" from there on */
static const char *fmt_bytes(char *buf, size_t cap, uint64_t b) {
    if (b >= (1ull << 30)) snprintf(buf, cap, "%.2f GiB", gib(b));
    else snprintf(buf, cap, "%.1f MiB", (double)b / 1048576.0);
    return buf;
}

static pl_status check_memory(pl_model *m, const char *path, const pl_model_params *p) {
    pl_meminfo mi;
    pl_status st = pl_meminfo_read(p->meminfo_path, &mi);
    if (st != PL_OK) {
        if (p->meminfo_path)
            return pl_ctx_err(m->ctx, st, "%s: cannot read memory figures from %s", path, p->meminfo_path);
        pl_log(m->ctx, PL_LOG_LEVEL_DEBUG, "no /proc/meminfo: memory check skipped");
        return PL_OK;
    }
    uint64_t avail;
    if (!pl_u64_add(mi.available, mi.swap_free, &avail)) avail = UINT64_MAX;
    m->load.mem_available = avail;
    if (m->load.resident_bytes > avail) {
        char need[32], av[32], ma[32], sf[32], tot[32];
        return pl_ctx_err(m->ctx, PL_ERR_NOMEM,
                          "%s: the model needs %s of memory (its tensors; every token reads all of them) but only "
                          "%s is available (MemAvailable %s + SwapFree %s, of %s RAM); free memory or use a "
                          "smaller model or quantization",
                          path, fmt_bytes(need, sizeof need, m->load.resident_bytes), fmt_bytes(av, sizeof av, avail),
                          fmt_bytes(ma, sizeof ma, mi.available), fmt_bytes(sf, sizeof sf, mi.swap_free),
                          fmt_bytes(tot, sizeof tot, mi.total));
    }
    return PL_OK;
}

/* mlock the mapping in chunks (each chunk faults its pages in). False, with a
 * warning logged and nothing left locked, when the system refuses. */
static bool lock_pages(pl_model *m, const pl_model_params *p, bool *stop) {
    uint8_t *base = (uint8_t *)pl_gguf_base(m->gguf);
    uint64_t n = pl_gguf_file_size(m->gguf);
    for (uint64_t o = 0; o < n; o += TOUCH_CHUNK) {
        uint64_t k = n - o < TOUCH_CHUNK ? n - o : TOUCH_CHUNK;
        if (mlock(base + o, (size_t)k) != 0) {
            int e = errno;
            munlock(base, (size_t)(o + k)); /* a failed mlock may have locked part of its range */
            struct rlimit rl;
            char lim[64] = "unknown";
            if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
                if (rl.rlim_cur == RLIM_INFINITY) snprintf(lim, sizeof lim, "unlimited");
                else snprintf(lim, sizeof lim, "%.1f MiB", (double)rl.rlim_cur / 1048576.0);
            }
            pl_log(m->ctx, PL_LOG_LEVEL_WARN,
                   "mlock of the model's %.2f GiB refused (%s; RLIMIT_MEMLOCK is %s): the weights stay "
                   "unlocked and may be paged out; raise the limit (ulimit -l, systemd LimitMEMLOCK=, "
                   "/etc/security/limits.conf) or drop mlock",
                   gib(n), strerror(e), lim);
            return false;
        }
        if (!report(p, PL_LOAD_PHASE_TOUCH, o + k, n)) {
            munlock(base, (size_t)(o + k));
            *stop = true;
            return false;
        }
    }
    return true;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

/* Bring every page in and map it, so the first decode pays no page faults.
 * MADV_POPULATE_READ does a chunk in one call (reads the file where it is not
 * cached and fills the page tables) instead of one fault per 4 KiB page, each a
 * trap into the kernel (~1-7 us where faults are slow, as in VMs). Older kernels
 * refuse it (EINVAL): then one read per page. */
static bool prefault(pl_model *m, const pl_model_params *p) {
    const volatile uint8_t *b = pl_gguf_base(m->gguf);
    uint64_t n = pl_gguf_file_size(m->gguf);
    uint8_t acc = 0;
    bool populate = true;
    for (uint64_t o = 0; o < n; o += TOUCH_CHUNK) {
        uint64_t k = n - o < TOUCH_CHUNK ? n - o : TOUCH_CHUNK;
        void *chunk = (void *)(uintptr_t)(b + o);
        if (populate && madvise(chunk, (size_t)k, MADV_POPULATE_READ) != 0) populate = false;
        if (!populate) {
            madvise(chunk, (size_t)k, MADV_WILLNEED); /* read-ahead for the loop below */
            for (uint64_t i = 0; i < k; i += PAGE) acc ^= b[o + i];
        }
        if (!report(p, PL_LOAD_PHASE_TOUCH, o + k, n)) return false;
    }
    (void)acc;
    return true;
}

/* One token through a one-block scratch context: reads every weight matrix in
 * decode order and runs each kernel once. */
static pl_status warmup(pl_model *m, const char *path, const pl_model_params *p) {
    pl_context_params cp = pl_context_default_params();
    cp.n_ctx = PL_KV_BLOCK;
    cp.n_batch = 1;
    cp.n_threads = p->warmup_threads;
    pl_context *c = NULL;
    pl_status st = pl_context_init(m, &cp, &c);
    if (st != PL_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", pl_ctx_last_error(m->ctx));
        return pl_ctx_err(m->ctx, st, "%s: warm-up: %s", path, msg);
    }
    int32_t tok = 0;
    pl_batch b = { .n_tokens = 1, .tokens = &tok };
    st = pl_context_decode(c, &b);
    if (st != PL_OK) pl_ctx_err(m->ctx, st, "%s: warm-up decode: %s", path, pl_context_last_error(c));
    pl_context_free(c);
    return st;
}

pl_status pl_model_load_finish(pl_model *m, const char *path, const pl_model_params *p, const pl_load_clock *clk) {
    pl_model_load_stats *ls = &m->load;
    ls->resident_bytes = m->info.weight_bytes;
    ls->ms[PL_LOAD_PHASE_MAP] = ms_since(clk->t0_ns);
    if (!report(p, PL_LOAD_PHASE_MAP, m->info.file_bytes, m->info.file_bytes))
        return canceled(m, path, PL_LOAD_PHASE_MAP);
    pl_status st;
    if (p->check_memory && (st = check_memory(m, path, p)) != PL_OK) return st;

    if (p->mlock || p->prefault) {
        uint64_t t = pl_time_ns();
        bool stop = false;
        if (!report(p, PL_LOAD_PHASE_TOUCH, 0, m->info.file_bytes)) return canceled(m, path, PL_LOAD_PHASE_TOUCH);
        if (p->mlock) ls->locked = ls->touched = lock_pages(m, p, &stop);
        if (stop) return canceled(m, path, PL_LOAD_PHASE_TOUCH);
        if (!ls->touched && p->prefault) {
            if (!prefault(m, p)) return canceled(m, path, PL_LOAD_PHASE_TOUCH);
            ls->touched = true;
        }
        ls->ms[PL_LOAD_PHASE_TOUCH] = ms_since(t);
    }
    if (p->warmup) {
        uint64_t t = pl_time_ns();
        if (!report(p, PL_LOAD_PHASE_WARMUP, 0, 1)) return canceled(m, path, PL_LOAD_PHASE_WARMUP);
        if ((st = warmup(m, path, p)) != PL_OK) return st;
        ls->ms[PL_LOAD_PHASE_WARMUP] = ms_since(t);
        if (!report(p, PL_LOAD_PHASE_WARMUP, 1, 1)) return canceled(m, path, PL_LOAD_PHASE_WARMUP);
    }
    uint64_t mf = major_faults_now();
    ls->major_faults = mf > clk->major_faults ? mf - clk->major_faults : 0;
    ls->total_ms = ms_since(clk->t0_ns);
    return PL_OK;
}
