/*
 * time.c - monotonic and wall clocks, interval timers.
 * Cost: one clock_gettime() (a vDSO call, ~20 ns) per reading.
 */
#include <time.h>

#include "parley/core.h"

static uint64_t clock_ns(clockid_t id) {
    struct timespec ts;
    if (clock_gettime(id, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t pl_time_ns(void) {
    return clock_ns(CLOCK_MONOTONIC);
}

uint64_t pl_time_wall_us(void) {
    return clock_ns(CLOCK_REALTIME) / 1000u;
}

void pl_timespec_add_ms(struct timespec *ts, int64_t ms) {
    if (!ts || ms <= 0) return;
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void pl_timer_start(pl_timer *t) {
    if (!t) return;
    uint64_t now = pl_time_ns();
    t->start_ns = now ? now : 1; /* 0 means "stopped" */
}

uint64_t pl_timer_stop(pl_timer *t) {
    if (!t || t->start_ns == 0) return 0;
    uint64_t now = pl_time_ns();
    uint64_t d = now > t->start_ns ? now - t->start_ns : 0;
    t->total_ns += d;
    t->count++;
    t->start_ns = 0;
    return d;
}

double pl_timer_ms(const pl_timer *t) {
    return t ? (double)t->total_ns / 1e6 : 0.0;
}
