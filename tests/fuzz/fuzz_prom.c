/*
 * fuzz_prom.c - libFuzzer target for the Prometheus text reader (what
 * `parley top` parses from a remote server's /metrics).
 *
 * Invariants (abort on violation):
 *  - every sample lies inside the input: name and labels point into it;
 *  - a name is non-empty and starts with [a-zA-Z_:];
 *  - label lookups on a sample never fail to terminate their buffer, and the
 *    unescaped value is no longer than the raw labels;
 *  - the status is OK exactly when no bad line was reported.
 * With $PL_FUZZ_WRITE_SEEDS set, LLVMFuzzerInitialize writes a few seeds there.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/profile.h"

#define FUZZ_NAME "fuzz_prom"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (!dir) return 0;
    fuzz_write_text(dir, "basic.prom",
               "# HELP parley_requests_total Requests.\n# TYPE parley_requests_total counter\n"
               "parley_requests_total{status=\"ok\"} 40\nparley_slots_busy 3\n");
    fuzz_write_text(dir, "histogram.prom",
               "parley_ttft_seconds_bucket{le=\"0.1\"} 3\nparley_ttft_seconds_bucket{le=\"+Inf\"} 4\n"
               "parley_ttft_seconds_sum 0.5\nparley_ttft_seconds_count 4 1700000000000\n");
    fuzz_write_text(dir, "escapes.prom", "m{a=\"x\\\\y\\\"z\\n\",b=\"\",} -Inf\nn NaN\r\n");
    return 0;
}

typedef struct span {
    const uint8_t *lo, *hi;
    size_t         n;
} span;

static bool check_sample(void *ud, const pl_prom_sample *s) {
    span *sp = ud;
    const uint8_t *name = (const uint8_t *)s->name, *lab = (const uint8_t *)s->labels;
    CHECK(s->name_len > 0 && name >= sp->lo && name + s->name_len <= sp->hi);
    char c = s->name[0];
    CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':');
    CHECK(lab >= sp->lo && lab + s->labels_len <= sp->hi);
    static const char *const keys[] = { "le", "status", "a", "slot" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char buf[32];
        memset(buf, 'X', sizeof buf);
        if (pl_prom_label(s, keys[i], buf, sizeof buf)) {
            size_t n = strnlen(buf, sizeof buf);
            CHECK(n < sizeof buf);
            CHECK(n <= s->labels_len);
        }
    }
    (void)pl_prom_is(s, "parley_slots_busy");
    sp->n++;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    span sp = { data, data + size, 0 };
    size_t bad = 0;
    pl_status st = pl_prom_parse((const char *)data, size, check_sample, &sp, &bad);
    CHECK((st == PL_OK) == (bad == 0));
    CHECK(st == PL_OK || st == PL_ERR_FORMAT);
    return 0;
}
