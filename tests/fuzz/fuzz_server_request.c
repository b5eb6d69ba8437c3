/*
 * fuzz_server_request.c - libFuzzer target for the HTTP server's request
 * parser (POST /v1/chat/completions and /v1/completions bodies):
 * pl_srv_parse_request on arbitrary bytes, as both kinds.
 *
 * Invariants (abort on violation):
 *  - an accepted chat request has at least one message besides the system
 *    one; an accepted completion has its prompt;
 *  - accepted values are in the documented ranges (temperature 0..2, top_p
 *    and min_p 0..1, penalties -2..2, at most PL_STOP_MAX_STRINGS stops);
 *  - a rejection is a 400 (or 500 for memory) with a message, and its
 *    param, when set, names a field of the request.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

#define FUZZ_NAME "fuzz_server_request"
#include "fuzz/fuzz_util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (!dir) return 0;
    fuzz_write_text(dir, "chat.json",
               "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\","
               "\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}],\"temperature\":0.5,\"top_p\":0.9,\"top_k\":20,"
               "\"min_p\":0.1,\"max_tokens\":16,\"stop\":[\"\\n\",\"END\"],\"seed\":7,\"presence_penalty\":0.5,"
               "\"frequency_penalty\":-0.5,\"logit_bias\":{\"42\":-100,\"7\":2.5},\"stream\":true,"
               "\"stream_options\":{\"include_usage\":true}}");
    fuzz_write_text(dir, "completion.json", "{\"prompt\":[\"once upon\"],\"max_completion_tokens\":3,\"stop\":\"x\"}");
    fuzz_write_text(dir, "unsupported.json", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2,\"tools\":[{}]}");
    fuzz_write_text(dir, "bad_types.json", "{\"messages\":[{\"role\":\"user\",\"content\":null}],\"temperature\":\"hot\"}");
    return 0;
}

static const char *const fields[] = { "",      "messages", "prompt", "temperature", "top_p", "top_k", "min_p",
                                      "seed",  "max_tokens", "max_completion_tokens", "stop", "stream",
                                      "stream_options", "logit_bias", "n", "tools", "functions", "tool_choice",
                                      "function_call", "response_format", "logprobs", "presence_penalty",
                                      "frequency_penalty", "repeat_penalty", "ignore_eos", "chat_template_kwargs",
                                      "model", "include_usage", "enable_thinking", "n_probs", "top_logprobs" };

static void one(pl_ctx *ctx, pl_srv_kind kind, const uint8_t *data, size_t size) {
    pl_conv *conv = NULL;
    CHECK(pl_conv_init(ctx, &conv) == PL_OK);
    pl_srv_opts o;
    pl_srv_error e;
    memset(&e, 0, sizeof e);
    pl_sampler_params def = pl_sampler_default_params();
    pl_status st = pl_srv_parse_request(ctx, kind, (const char *)data, size, &def, conv, &o, &e);
    if (st == PL_OK) {
        if (kind == PL_SRV_KIND_CHAT) CHECK(pl_conv_count(conv) >= 1);
        else CHECK(o.prompt && strlen(o.prompt) == o.prompt_len);
        CHECK(o.sampling.temperature >= 0 && o.sampling.temperature <= 2);
        CHECK(o.sampling.top_p >= 0 && o.sampling.top_p <= 1);
        CHECK(o.sampling.min_p >= 0 && o.sampling.min_p <= 1);
        CHECK(o.sampling.presence_penalty >= -2 && o.sampling.presence_penalty <= 2);
        CHECK(o.sampling.frequency_penalty >= -2 && o.sampling.frequency_penalty <= 2);
        CHECK(o.n_stops <= PL_STOP_MAX_STRINGS);
        CHECK(o.max_tokens >= 0);
        CHECK(o.sampling.n_logit_bias == o.n_bias && (o.n_bias == 0 || o.sampling.logit_bias == o.bias));
    } else {
        CHECK(e.http == 400 || e.http == 500);
        CHECK(e.message[0] != 0 && e.type);
        bool known = false;
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) known = known || strcmp(e.param, fields[i]) == 0;
        CHECK(known);
    }
    pl_srv_opts_free(ctx, &o);
    pl_conv_free(conv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_level = PL_LOG_LEVEL_NONE;
    pl_ctx *ctx = NULL;
    if (pl_ctx_init(&ctx, &cp) != PL_OK) return 0;
    one(ctx, PL_SRV_KIND_CHAT, data, size);
    one(ctx, PL_SRV_KIND_COMPLETION, data, size);
    pl_ctx_free(ctx);
    return 0;
}
