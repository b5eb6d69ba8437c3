/*
 * fuzz_conv.c - libFuzzer target for conversation files (`parley chat /load`,
 * API requests): pl_conv_from_json on arbitrary bytes.
 *
 * Invariants (abort on violation):
 *  - a rejected input leaves the conversation as it was (one message);
 *  - an accepted input saves (pl_conv_to_json) to JSON that loads again and
 *    saves to the same text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/engine.h"

#define FUZZ_NAME "fuzz_conv"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (!dir) return 0;
    fuzz_write_text(dir, "basic.json",
               "{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"hi\"},"
               "{\"role\":\"assistant\",\"content\":\"h\\u00e9llo\"}]}");
    fuzz_write_text(dir, "bare.json", "[{\"role\":\"user\",\"content\":null},{\"role\":\"tool\",\"content\":\"42\"}]");
    fuzz_write_text(dir, "bad.json", "[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"system\",\"content\":\"late\"}]");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_level = PL_LOG_LEVEL_NONE;
    pl_ctx *ctx = NULL;
    pl_conv *c = NULL, *d = NULL;
    if (pl_ctx_init(&ctx, &cp) != PL_OK) return 0;
    CHECK(pl_conv_init(ctx, &c) == PL_OK && pl_conv_init(ctx, &d) == PL_OK);
    CHECK(pl_conv_add(c, PL_ROLE_USER, "before", 6) == PL_OK);
    if (pl_conv_from_json(c, (const char *)data, size) != PL_OK) {
        CHECK(pl_conv_count(c) == 1 && strcmp(pl_conv_content(c, 0), "before") == 0 && !pl_conv_system(c));
    } else {
        char *a = NULL, *b = NULL;
        CHECK(pl_conv_to_json(c, &a) == PL_OK);
        CHECK(pl_conv_from_json(d, a, strlen(a)) == PL_OK);
        CHECK(pl_conv_count(d) == pl_conv_count(c));
        CHECK(pl_conv_to_json(d, &b) == PL_OK);
        CHECK(strcmp(a, b) == 0);
        pl_free(ctx, a);
        pl_free(ctx, b);
    }
    pl_conv_free(c);
    pl_conv_free(d);
    pl_ctx_free(ctx);
    return 0;
}
