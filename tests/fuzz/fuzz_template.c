/*
 * fuzz_template.c - libFuzzer target for the chat-template engine.
 *
 * Input: template source, then optionally a NUL byte and a JSON context
 * ({"messages": [...], other keys become variables}); without a usable
 * context a fixed three-message conversation with tools is used. Each input
 * is compiled and, when accepted, rendered under small limits (so hostile
 * loops stay fast). Invariants (abort on violation):
 *  - compile and render return a defined status and a non-empty message on
 *    failure, naming a line and column;
 *  - a failed render leaves the output buffer as it was; a successful one is
 *    NUL-terminated at len and within the output limit;
 *  - rendering twice gives the same bytes (no state leaks between renders).
 * With $PL_FUZZ_WRITE_SEEDS set to a directory, LLVMFuzzerInitialize writes the
 * named built-in templates and a few feature-dense templates there as seeds
 * (and the templates under $PL_SHARED_DIR/templates when present).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "parley/template.h"

#define FUZZ_NAME "fuzz_template"
#include "fuzz/fuzz_util.h"

static const char default_ctx[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"sys\"}, {\"role\": \"user\", \"content\": \" hi é \"},"
    " {\"role\": \"assistant\", \"content\": \"<think>r</think>ok\", \"tool_calls\": [{\"id\": \"abcdefghi\","
    " \"function\": {\"name\": \"f\", \"arguments\": {\"x\": 1, \"y\": [1.5, null, true]}}}]},"
    " {\"role\": \"tool\", \"content\": \"res\"}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\","
    " \"parameters\": {\"type\": \"object\"}}}], \"bos_token\": \"<s>\", \"eos_token\": \"</s>\","
    " \"add_generation_prompt\": true, \"enable_thinking\": false}";

static const char *const seeds[] = {
    "{% set ns = namespace(n=0, s='') %}{% for m in messages if m.role != 'tool' %}{% set ns.n = ns.n + 1 %}"
    "{{ loop.index }}/{{ loop.length }} {{ m.role | upper }}: {{ m.content | trim }}{% if not loop.last %}\n{% endif %}"
    "{% else %}none{% endfor %}{{ ns.n }}",
    "{%- macro t(c) -%}{%- if c is string -%}{{ c }}{%- else -%}{{ c | tojson(indent=2) }}{%- endif -%}{%- endmacro -%}"
    "{{ t(messages[-1].content) }}{{ t(tools) }}{% call(x) t(1) %}{{ x }}{% endcall %}",
    "{{ messages[1:] | map(attribute='role') | join(',') }}{{ messages | selectattr('role', 'equalto', 'user') | list }}"
    "{{ 'a,b'.split(',')[::-1] }}{{ '%s-%d' % ('x', 2) }}{{ {'k': [1, 2]} | dictsort }}{{ range(3) | sum }}",
    "{% if messages[0].role == 'system' %}{{ raise_exception('no system') }}{% endif %}",
    "  {%- for i in range(3) -%}\n  {{ i }}{#- c -#}\n  {%+ if i %}x{% endif +%}\n{% endfor %}{% raw %}{{ r }}{% endraw %}",
    "{{ strftime_now('%Y-%m-%d') }}{{ (messages | first).content[1:3] }}{{ 'x' * 3 }}{{ 2 ** 8 // 3 % 5 }}",
};

static void write_seed(const char *dir, const char *name, const char *tmpl, const char *ctx) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(tmpl, 1, strlen(tmpl), f);
    if (ctx) {
        fputc(0, f);
        fwrite(ctx, 1, strlen(ctx), f);
    }
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (!dir || !*dir) return 0;
    char name[256];
    for (size_t i = 0; pl_template_builtin_name(i); i++) {
        snprintf(name, sizeof name, "builtin-%s", pl_template_builtin_name(i));
        write_seed(dir, name, pl_template_builtin(pl_template_builtin_name(i)), default_ctx);
    }
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        snprintf(name, sizeof name, "seed-%zu", i);
        write_seed(dir, name, seeds[i], i % 2 ? NULL : default_ctx);
    }
    const char *sd = getenv("PL_SHARED_DIR");
    char tdir[2048];
#ifdef PL_FUZZ_SHARED_DIR
    if (!sd) sd = PL_FUZZ_SHARED_DIR;
#endif
    snprintf(tdir, sizeof tdir, "%s/templates", sd ? sd : "../shared");
    DIR *d = opendir(tdir);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 7 || strcmp(e->d_name + l - 6, ".jinja") != 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", tdir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        char *buf = calloc(1, 1 << 16);
        size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
        fclose(f);
        if (n) {
            snprintf(name, sizeof name, "shared-%s", e->d_name);
            write_seed(dir, name, buf, default_ctx);
        }
        free(buf);
    }
    closedir(d);
    return 0;
}

static bool names_position(const char *msg) { return strstr(msg, "line ") && strstr(msg, "column "); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *src = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t src_len = nul ? (size_t)(nul - data) : size;
    cJSON *cj = nul ? cJSON_ParseWithLength((const char *)nul + 1, size - src_len - 1) : NULL;
    if (!cJSON_IsObject(cj)) {
        cJSON_Delete(cj);
        cj = cJSON_Parse(default_ctx);
        CHECK(cj);
    }
    pl_ctx_params cp = pl_ctx_default_params();
    cp.log_level = PL_LOG_LEVEL_NONE;
    pl_ctx *ctx = NULL;
    CHECK(pl_ctx_init(&ctx, &cp) == PL_OK);
    pl_template *t = NULL;
    pl_status st = pl_template_compile(ctx, src, src_len, &t);
    if (st != PL_OK) {
        CHECK(t == NULL);
        CHECK(st == PL_ERR_FORMAT || st == PL_ERR_UNSUPPORTED || st == PL_ERR_RANGE);
        CHECK(names_position(pl_ctx_last_error(ctx)));
    } else {
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(cj, "messages");
        pl_template_params p = {
            .messages = cJSON_IsArray(msgs) ? msgs : NULL,
            .vars = cj,
            .add_generation_prompt = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cj, "add_generation_prompt")),
            .now = "26 Jul 2024",
            .limits = { .max_output = 1 << 16, .max_memory = 16 << 20, .max_steps = 200000, .max_depth = 200 },
        };
        pl_template_buf a = { .ctx = ctx }, b = { .ctx = ctx };
        pl_status first = pl_template_render(t, ctx, &p, &a);
        st = pl_template_render(t, ctx, &p, &b);
        CHECK(st == first);
        if (st == PL_OK) {
            CHECK(b.len <= p.limits.max_output);
            CHECK(b.data == NULL || b.data[b.len] == 0);
            CHECK(a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0));
        } else {
            CHECK(st == PL_ERR_FORMAT || st == PL_ERR_INVALID_ARG || st == PL_ERR_RANGE || st == PL_ERR_UNSUPPORTED);
            CHECK(b.len == 0);
            CHECK(names_position(pl_ctx_last_error(ctx)));
        }
        pl_template_buf_free(&a);
        pl_template_buf_free(&b);
        pl_template_free(t);
    }
    pl_ctx_free(ctx);
    cJSON_Delete(cj);
    return 0;
}
