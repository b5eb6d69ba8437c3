/*
 * proc.c - memory and process figures from /proc and getrusage (Linux).
 *
 * Both /proc files are "Key:  <number> [kB]" lines. They are read whole into a
 * stack buffer (meminfo is ~1.5 KiB, status ~1.5 KiB; 16 KiB leaves room) so
 * nothing is allocated. Cost: one open/read/close plus the parse, ~10-20 us.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "parley/profile.h"

#define PROC_BUF 16384

/* Read up to cap-1 bytes of path into buf, NUL-terminated; -1 on error. */
static ssize_t read_small(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            close(fd);
            return -1;
        }
        if (k == 0) break;
        n += (size_t)k;
    }
    close(fd);
    buf[n] = 0;
    return (ssize_t)n;
}

/* The value of "key:" at the start of a line in text[0..len): the number
 * times 1024 when the unit is kB, else as is. False when absent or not a number. */
static bool field(const char *text, size_t len, const char *key, uint64_t *out) {
    size_t kl = strlen(key);
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if ((size_t)(le - p) > kl && memcmp(p, key, kl) == 0 && p[kl] == ':') {
            const char *q = p + kl + 1;
            while (q < le && (*q == ' ' || *q == '\t')) q++;
            uint64_t v = 0;
            const char *d = q;
            while (q < le && *q >= '0' && *q <= '9') {
                if (!pl_u64_mul(v, 10, &v) || !pl_u64_add(v, (uint64_t)(*q - '0'), &v)) return false;
                q++;
            }
            if (q == d) return false;
            while (q < le && *q == ' ') q++;
            if (le - q >= 2 && q[0] == 'k' && q[1] == 'B' && !pl_u64_mul(v, 1024, &v)) return false;
            *out = v;
            return true;
        }
        p = le + 1;
    }
    return false;
}

pl_status pl_meminfo_parse(const char *text, size_t len, pl_meminfo *out) {
    if (!text || !out) return PL_ERR_INVALID_ARG;
    pl_meminfo m = { 0 };
    if (!field(text, len, "MemTotal", &m.total)) return PL_ERR_FORMAT;
    if (!field(text, len, "MemAvailable", &m.available)) {
        /* kernels before 3.14: free plus page cache is the nearest estimate */
        uint64_t fr, cached = 0;
        if (!field(text, len, "MemFree", &fr)) return PL_ERR_FORMAT;
        field(text, len, "Cached", &cached);
        if (!pl_u64_add(fr, cached, &m.available)) return PL_ERR_FORMAT;
    }
    field(text, len, "SwapTotal", &m.swap_total);
    field(text, len, "SwapFree", &m.swap_free);
    *out = m;
    return PL_OK;
}

pl_status pl_meminfo_read(const char *path, pl_meminfo *out) {
    if (!out) return PL_ERR_INVALID_ARG;
    char buf[PROC_BUF];
    ssize_t n = read_small(path ? path : "/proc/meminfo", buf, sizeof buf);
    if (n < 0) return PL_ERR_IO;
    return pl_meminfo_parse(buf, (size_t)n, out);
}

pl_status pl_proc_status_parse(const char *text, size_t len, pl_proc_stats *out) {
    if (!text || !out) return PL_ERR_INVALID_ARG;
    uint64_t rss, hwm = 0, thr = 0;
    if (!field(text, len, "VmRSS", &rss)) return PL_ERR_FORMAT;
    field(text, len, "VmHWM", &hwm);
    field(text, len, "Threads", &thr);
    out->rss_bytes = rss;
    out->peak_rss_bytes = hwm > rss ? hwm : rss;
    out->threads = thr > INT32_MAX ? INT32_MAX : (int32_t)thr;
    return PL_OK;
}

pl_status pl_proc_stats_read(pl_proc_stats *out) {
    if (!out) return PL_ERR_INVALID_ARG;
    memset(out, 0, sizeof *out);
    char buf[PROC_BUF];
    ssize_t n = read_small("/proc/self/status", buf, sizeof buf);
    if (n < 0) return PL_ERR_IO;
    pl_status st = pl_proc_status_parse(buf, (size_t)n, out);
    if (st != PL_OK) return st;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        out->cpu_user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
        out->cpu_sys_s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        out->minor_faults = (uint64_t)ru.ru_minflt;
        out->major_faults = (uint64_t)ru.ru_majflt;
    }
    return PL_OK;
}
