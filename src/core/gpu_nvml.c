/*
 * gpu_nvml.c - NVIDIA GPU figures through NVML, loaded at run time.
 *
 * libnvidia-ml.so.1 ships with the NVIDIA driver, not with a toolkit, so it is
 * dlopen'ed rather than linked: the same binary runs on machines without a GPU
 * (pl_gpu_open says PL_ERR_NOT_FOUND there). The types below are the NVML C
 * API's (nvml.h, "NVML API Reference"): nvmlReturn_t is an int (0 = success),
 * a device handle is an opaque pointer, and the two structs are written by the
 * library. Only the _v2 entry points that exist since driver r325 are used.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "parley/profile.h"

typedef int nvml_ret;
typedef void *nvml_device;
typedef struct nvml_utilization {
    unsigned int gpu, memory; /* percent */
} nvml_utilization;
typedef struct nvml_memory {
    unsigned long long total, free, used; /* bytes */
} nvml_memory;
#define NVML_SUCCESS 0
#define NVML_TEMPERATURE_GPU 0

typedef struct nvml_api {
    nvml_ret (*init)(void);
    nvml_ret (*shutdown)(void);
    nvml_ret (*count)(unsigned int *);
    nvml_ret (*handle)(unsigned int, nvml_device *);
    nvml_ret (*name)(nvml_device, char *, unsigned int);
    nvml_ret (*util)(nvml_device, nvml_utilization *);
    nvml_ret (*mem)(nvml_device, nvml_memory *);
    nvml_ret (*temp)(nvml_device, int, unsigned int *);
    const char *(*error_string)(nvml_ret); /* optional */
} nvml_api;

struct pl_gpu {
    pl_ctx  *ctx;
    void    *lib;
    nvml_api api;
    int      count;
};

/* Symbol table: name and where the pointer goes (offset into nvml_api). */
static const struct {
    const char *name;
    size_t      off;
    bool        required;
} syms[] = {
    { "nvmlInit_v2", offsetof(nvml_api, init), true },
    { "nvmlShutdown", offsetof(nvml_api, shutdown), true },
    { "nvmlDeviceGetCount_v2", offsetof(nvml_api, count), true },
    { "nvmlDeviceGetHandleByIndex_v2", offsetof(nvml_api, handle), true },
    { "nvmlDeviceGetName", offsetof(nvml_api, name), true },
    { "nvmlDeviceGetUtilizationRates", offsetof(nvml_api, util), true },
    { "nvmlDeviceGetMemoryInfo", offsetof(nvml_api, mem), true },
    { "nvmlDeviceGetTemperature", offsetof(nvml_api, temp), true },
    { "nvmlErrorString", offsetof(nvml_api, error_string), false },
};

static const char *nvml_err(const pl_gpu *g, nvml_ret r) {
    const char *s = g->api.error_string ? g->api.error_string(r) : NULL;
    return s ? s : "unknown NVML error";
}

pl_status pl_gpu_open(pl_ctx *ctx, const char *lib, pl_gpu **out) {
    if (!out) return PL_ERR_INVALID_ARG;
    *out = NULL;
    const char *path = lib ? lib : PL_GPU_NVML_LIB;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        return pl_ctx_err(ctx, PL_ERR_NOT_FOUND, "no NVIDIA GPU library: %s", why ? why : path);
    }
    pl_gpu *g = pl_calloc(ctx, 1, sizeof *g);
    if (!g) {
        dlclose(h);
        return pl_ctx_err(ctx, PL_ERR_NOMEM, "out of memory");
    }
    g->ctx = ctx;
    g->lib = h;
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *f = dlsym(h, syms[i].name);
        if (!f && syms[i].required) {
            dlclose(h);
            pl_free(ctx, g);
            return pl_ctx_err(ctx, PL_ERR_UNSUPPORTED, "%s has no %s (driver too old?)", path, syms[i].name);
        }
        /* object pointer -> function pointer: POSIX guarantees the representation */
        memcpy((char *)&g->api + syms[i].off, &f, sizeof f);
    }
    nvml_ret r = g->api.init();
    if (r != NVML_SUCCESS) {
        pl_status st = pl_ctx_err(ctx, PL_ERR_IO, "nvmlInit: %s (error %d)", nvml_err(g, r), r);
        dlclose(h);
        pl_free(ctx, g);
        return st;
    }
    unsigned int n = 0;
    r = g->api.count(&n);
    g->count = r == NVML_SUCCESS && n <= 1024 ? (int)n : 0;
    *out = g;
    return PL_OK;
}

void pl_gpu_free(pl_gpu *g) {
    if (!g) return;
    g->api.shutdown();
    dlclose(g->lib);
    pl_free(g->ctx, g);
}

int pl_gpu_count(const pl_gpu *g) { return g ? g->count : 0; }

pl_status pl_gpu_read(pl_gpu *g, int i, pl_gpu_info *out) {
    if (!g || !out || i < 0 || i >= g->count) return PL_ERR_INVALID_ARG;
    *out = (pl_gpu_info){ .util_gpu_pct = -1, .util_mem_pct = -1, .temp_c = -1 };
    nvml_device d = NULL;
    nvml_ret r = g->api.handle((unsigned int)i, &d);
    if (r != NVML_SUCCESS) return pl_ctx_err(g->ctx, PL_ERR_IO, "GPU %d: %s", i, nvml_err(g, r));
    if (g->api.name(d, out->name, sizeof out->name) != NVML_SUCCESS) snprintf(out->name, sizeof out->name, "GPU %d", i);
    out->name[sizeof out->name - 1] = 0;
    nvml_utilization u;
    if (g->api.util(d, &u) == NVML_SUCCESS && u.gpu <= 100 && u.memory <= 100) {
        out->util_gpu_pct = (int32_t)u.gpu;
        out->util_mem_pct = (int32_t)u.memory;
    }
    nvml_memory m;
    if (g->api.mem(d, &m) == NVML_SUCCESS && m.used <= m.total) {
        out->mem_total = m.total;
        out->mem_used = m.used;
    }
    unsigned int t;
    if (g->api.temp(d, NVML_TEMPERATURE_GPU, &t) == NVML_SUCCESS && t < 1000) out->temp_c = (int32_t)t;
    return PL_OK;
}
