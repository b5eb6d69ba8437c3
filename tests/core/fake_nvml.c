/*
 * fake_nvml.c - a stand-in libnvidia-ml for test_profile: the NVML entry
 * points pl_gpu_open resolves, answering fixed figures for two devices.
 * Built twice: as is, and with FAKE_NVML_NO_TEMPERATURE (one entry point
 * missing, as in a driver too old). FAKE_NVML_INIT_FAIL=1 in the environment
 * makes nvmlInit_v2 fail.
 */
#include <stdlib.h>
#include <string.h>

typedef struct fake_util { unsigned int gpu, memory; } fake_util;
typedef struct fake_mem { unsigned long long total, free, used; } fake_mem;

static int devices[2];

int nvmlInit_v2(void) {
    const char *f = getenv("FAKE_NVML_INIT_FAIL");
    return f && *f == '1' ? 9 /* NVML_ERROR_DRIVER_NOT_LOADED */ : 0;
}
int nvmlShutdown(void) { return 0; }
const char *nvmlErrorString(int r) { return r == 9 ? "Driver Not Loaded" : "Unknown Error"; }
int nvmlDeviceGetCount_v2(unsigned int *n) {
    *n = 2;
    return 0;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **d) {
    if (i >= 2) return 2; /* NVML_ERROR_INVALID_ARGUMENT */
    *d = &devices[i];
    return 0;
}
static int index_of(void *d) { return (int *)d == &devices[0] ? 0 : 1; }
int nvmlDeviceGetName(void *d, char *name, unsigned int len) {
    const char *n = index_of(d) == 0 ? "Fake GPU Zero" : "Fake GPU One";
    if (len < strlen(n) + 1) return 7; /* NVML_ERROR_INSUFFICIENT_SIZE */
    strcpy(name, n);
    return 0;
}
int nvmlDeviceGetUtilizationRates(void *d, fake_util *u) {
    u->gpu = 37u + (unsigned)index_of(d);
    u->memory = 12;
    return 0;
}
int nvmlDeviceGetMemoryInfo(void *d, fake_mem *m) {
    m->total = 80ull << 30;
    m->used = (unsigned long long)(index_of(d) + 1) << 30;
    m->free = m->total - m->used;
    return 0;
}
#ifndef FAKE_NVML_NO_TEMPERATURE
int nvmlDeviceGetTemperature(void *d, int sensor, unsigned int *t) {
    if (sensor != 0 || index_of(d) == 1) return 3; /* NVML_ERROR_NOT_SUPPORTED */
    *t = 45;
    return 0;
}
#endif
