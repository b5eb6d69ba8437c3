/*
 * core_int.h - private helpers of the core module, shared by the src/core sources and
 * tests/core (which checks them against hand-made expectations).
 */
#ifndef PL_CORE_INT_H
#define PL_CORE_INT_H

#include <stddef.h>

#include "parley/core.h"

/* Escape n bytes of s as the inside of a JSON string (no quotes) into dst,
 * which has room for cap bytes including the terminating NUL (cap >= 1).
 *  - '"' and '\\' get a backslash; \b \f \n \r \t their short forms; other bytes
 *    below 0x20 and DEL become \u00XX;
 *  - valid UTF-8 is copied as is; each maximal invalid subpart (a bad lead
 *    byte, a truncated or overlong sequence, a surrogate, > U+10FFFF) becomes
 *    one \ufffd, as the Unicode standard recommends.
 * Stops before an escape or character that would not fit, so dst is always a
 * valid JSON string body. Returns the bytes written (excluding the NUL); when
 * consumed is not NULL it gets the number of input bytes escaped (n when all). */
size_t pl_json_escape(char *dst, size_t cap, const char *s, size_t n, size_t *consumed);

/* Length of the longest prefix of s[0..n) that does not end inside a UTF-8
 * sequence (used to truncate text without splitting a character). */
size_t pl_utf8_trim(const char *s, size_t n);

/* The level pl_cpu_best_level() picks for features f and a $PL_CPU value
 * (request NULL or invalid: the best f supports; a level f lacks: also best). */
pl_cpu_level pl_cpu_level_select(const pl_cpu_features *f, const char *request);
/* True when f can run kernels at level lv. */
bool pl_cpu_level_supported(const pl_cpu_features *f, pl_cpu_level lv);

/* Count physical cores from a sysfs-style tree: unique (physical_package_id,
 * core_id) pairs over root/cpuN/topology/. Only cpus for which want(N) is true
 * are counted (want NULL: all). Returns 0 when nothing could be read. */
int pl_cpu_count_physical_at(const char *root, bool (*want)(void *ud, int cpu), void *ud);

/* Thread ith's span [*begin, *end) of pl_pool_for(n, grain) over nth threads;
 * false when that thread gets no span. Requires n > 0, grain > 0, 0 <= ith < nth. */
bool pl_pool_span(int64_t n, int64_t grain, int ith, int nth, int64_t *begin, int64_t *end);

#endif
