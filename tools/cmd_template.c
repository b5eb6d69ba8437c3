/*
 * cmd_template.c - `parley template`: render a chat template for a
 * conversation and print exactly the prompt (no added newline) on stdout.
 *
 * The conversation file is {"messages": [...]} and may also carry the fields
 * of the ../shared/templates JSON files: "template" (a file next to it, a built-in
 * name, or inline source), "bos_token", "eos_token", "strftime_now",
 * "add_generation_prompt" ("expected" is ignored). Any other top-level field
 * (tools, enable_thinking, ...) becomes a template variable. Flags win over
 * the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "parley/gguf.h"
#include "parley/template.h"

#define MAX_FILE ((size_t)64 << 20)

static const char usage_text[] =
    "usage: parley template (-m MODEL.gguf | --file F.jinja | --name NAME) --messages CONV.json\n"
    "                       [--add-generation-prompt] [--bos-token S] [--eos-token S] [--now STRING]\n"
    "\n"
    "Render a chat template (Jinja2 subset, as Hugging Face renders it) for the\n"
    "conversation in CONV.json ({\"messages\": [{\"role\", \"content\"}, ...]}; '-' reads\n"
    "stdin) and print exactly the prompt on stdout.\n"
    "\n"
    "options:\n"
    "  -m, --model FILE          use the GGUF's tokenizer.chat_template (chatml when it has none;\n"
    "                            --file/--name override it) and its BOS/EOS token text\n"
    "  --file FILE               template source file\n"
    "  --name NAME               a built-in: chatml, llama3, llama2, mistral, phi3, gemma, deepseek-r1\n"
    "  --messages FILE           the conversation JSON\n"
    "  --add-generation-prompt   end with the assistant turn's opening\n"
    "  --no-add-generation-prompt\n"
    "  --bos-token S, --eos-token S   the special tokens' text\n"
    "  --now STRING              what strftime_now() returns (default: the local time)\n"
    "  -h, --help                this text\n"
    "\n"
    "Without -m/--file/--name, the conversation file's \"template\" field is used.\n";

/* Whole file (or stdin for "-"), NUL-terminated; NULL with a message on failure. */
static char *read_all(pl_cli *cli, const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        pl_cli_fail(cli, "cannot open '%s'", path);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            if (cap >= MAX_FILE) {
                pl_cli_fail(cli, "'%s' is larger than %zu bytes", path, MAX_FILE);
                free(buf);
                buf = NULL;
                break;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - 1 - n, f);
        n += k;
        if (k == 0) {
            if (ferror(f)) {
                pl_cli_fail(cli, "error reading '%s'", path);
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    if (f != stdin) fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    *len = n;
    return buf;
}

static char *dup_str(pl_str s) {
    char *d = malloc(s.len + 1);
    if (d) {
        memcpy(d, s.ptr, s.len);
        d[s.len] = 0;
    }
    return d;
}

/* Token text for tokenizer.ggml.<which>_token_id, or NULL. */
static char *gguf_token_text(const pl_gguf *g, const char *which) {
    char key[64];
    uint32_t id;
    pl_gguf_arr toks;
    pl_str s;
    snprintf(key, sizeof key, "tokenizer.ggml.%s_token_id", which);
    if (pl_gguf_get_u32(g, key, &id) != PL_OK) return NULL;
    if (pl_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks) != PL_OK) return NULL;
    if (pl_gguf_arr_str(&toks, id, &s) != PL_OK) return NULL;
    return dup_str(s);
}

typedef struct opts {
    const char *model, *file, *name, *messages, *bos, *eos, *now;
    int         gen; /* -1 unset, 0, 1 */
} opts;

/* Template source from the "template" field: a file next to CONV.json, a
 * built-in name, or the source itself. */
static char *template_from_field(pl_cli *cli, const char *conv_path, const char *field, size_t *len) {
    const char *slash = strrchr(conv_path, '/');
    size_t dirlen = slash ? (size_t)(slash - conv_path) + 1 : 0;
    if (strcmp(conv_path, "-") == 0) dirlen = 0;
    size_t flen = strlen(field);
    char *path = malloc(dirlen + flen + 1);
    if (!path) return NULL;
    memcpy(path, conv_path, dirlen);
    memcpy(path + dirlen, field, flen + 1);
    FILE *f = field[0] && !strchr(field, '\n') && !strstr(field, "{%") && !strstr(field, "{{") ? fopen(path, "rb") : NULL;
    char *src = NULL;
    if (f) {
        fclose(f);
        src = read_all(cli, path, len);
    } else if (pl_template_builtin(field)) {
        src = strdup(pl_template_builtin(field));
        if (src) *len = strlen(src);
    } else {
        src = strdup(field);
        if (src) *len = flen;
    }
    free(path);
    return src;
}

static const char *json_str_field(const cJSON *root, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int cmd_template(pl_cli *cli, int argc, char **argv) {
    if (pl_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return 0;
    }
    opts o = { .gen = -1 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "-m") == 0 || pl_cli_is_opt(a, "--model")) slot = &o.model;
        else if (pl_cli_is_opt(a, "--file")) slot = &o.file;
        else if (pl_cli_is_opt(a, "--name")) slot = &o.name;
        else if (pl_cli_is_opt(a, "--messages")) slot = &o.messages;
        else if (pl_cli_is_opt(a, "--bos-token")) slot = &o.bos;
        else if (pl_cli_is_opt(a, "--eos-token")) slot = &o.eos;
        else if (pl_cli_is_opt(a, "--now")) slot = &o.now;
        else if (strcmp(a, "--add-generation-prompt") == 0) o.gen = 1;
        else if (strcmp(a, "--no-add-generation-prompt") == 0) o.gen = 0;
        else return pl_cli_usage_error(cli, "unknown argument '%s'", a);
        if (slot && !(*slot = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
    }
    if (!o.messages) return pl_cli_usage_error(cli, "--messages CONV.json is required");
    if (o.file && o.name) return pl_cli_usage_error(cli, "give only one of --file and --name");

    int rc = 1;
    char *conv_text = NULL, *src = NULL, *gguf_bos = NULL, *gguf_eos = NULL;
    cJSON *root = NULL;
    pl_gguf *g = NULL;
    pl_template *t = NULL;
    pl_template_buf out = { .ctx = cli->ctx };
    size_t conv_len = 0, src_len = 0;

    if (!(conv_text = read_all(cli, o.messages, &conv_len))) goto done;
    root = cJSON_ParseWithLength(conv_text, conv_len);
    if (!root) {
        pl_cli_fail(cli, "'%s' is not valid JSON", o.messages);
        goto done;
    }
    if (cJSON_IsArray(root)) { /* a bare list of messages */
        cJSON *obj = cJSON_CreateObject();
        if (!obj) goto oom;
        cJSON_AddItemToObject(obj, "messages", root);
        root = obj;
    }
    cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(msgs)) {
        pl_cli_fail(cli, "'%s' must hold {\"messages\": [...]}", o.messages);
        goto done;
    }

    if (o.model) { /* the model gives BOS/EOS; --file/--name override its template */
        if (pl_gguf_open(cli->ctx, o.model, &g) != PL_OK) {
            pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
            goto done;
        }
        gguf_bos = gguf_token_text(g, "bos");
        gguf_eos = gguf_token_text(g, "eos");
    }
    pl_str s;
    if (o.model && !o.file && !o.name) {
        if (pl_gguf_get_str(g, "tokenizer.chat_template", &s) == PL_OK) {
            if (!(src = dup_str(s))) goto oom;
            src_len = s.len;
        } else {
            fprintf(stderr, "parley template: %s has no chat template; using %s\n", o.model, PL_TEMPLATE_DEFAULT_NAME);
            if (!(src = strdup(pl_template_builtin(PL_TEMPLATE_DEFAULT_NAME)))) goto oom;
            src_len = strlen(src);
        }
    } else if (o.file) {
        if (!(src = read_all(cli, o.file, &src_len))) goto done;
    } else if (o.name) {
        const char *b = pl_template_builtin(o.name);
        if (!b) {
            rc = pl_cli_usage_error(cli, "no built-in template named '%s'", o.name);
            goto done;
        }
        if (!(src = strdup(b))) goto oom;
        src_len = strlen(src);
    } else if (json_str_field(root, "template")) {
        if (!(src = template_from_field(cli, o.messages, json_str_field(root, "template"), &src_len))) goto done;
    } else {
        rc = pl_cli_usage_error(cli, "no template: give -m, --file or --name");
        goto done;
    }

    if (pl_template_compile(cli->ctx, src, src_len, &t) != PL_OK) {
        pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
        goto done;
    }

    pl_template_params p = { 0 };
    p.bos_token = o.bos ? o.bos : json_str_field(root, "bos_token") ? json_str_field(root, "bos_token") : gguf_bos;
    p.eos_token = o.eos ? o.eos : json_str_field(root, "eos_token") ? json_str_field(root, "eos_token") : gguf_eos;
    p.now = o.now ? o.now : json_str_field(root, "strftime_now");
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(root, "add_generation_prompt");
    p.add_generation_prompt = o.gen >= 0 ? o.gen == 1 : cJSON_IsTrue(gen);
    /* every other top-level field is a template variable */
    static const char *const meta[] = { "template", "bos_token", "eos_token", "strftime_now",
                                        "add_generation_prompt", "expected" };
    cJSON *vars = cJSON_CreateObject();
    if (!vars) goto oom;
    for (cJSON *c = root->child; c; c = c->next) {
        bool skip = c->string == NULL || strcmp(c->string, "messages") == 0;
        for (size_t k = 0; k < sizeof meta / sizeof meta[0] && !skip; k++) skip = strcmp(c->string, meta[k]) == 0;
        if (!skip) cJSON_AddItemReferenceToObject(vars, c->string, c);
    }
    p.messages = msgs;
    p.vars = vars;
    pl_status st = pl_template_render(t, cli->ctx, &p, &out);
    cJSON_Delete(vars);
    if (st != PL_OK) {
        pl_cli_fail(cli, "%s", pl_ctx_last_error(cli->ctx));
        goto done;
    }
    if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len) {
        pl_cli_fail(cli, "error writing to stdout");
        goto done;
    }
    rc = 0;
    goto done;
oom:
    pl_cli_fail(cli, "out of memory");
done:
    pl_template_buf_free(&out);
    pl_template_free(t);
    pl_gguf_free(g);
    cJSON_Delete(root);
    free(conv_text);
    free(src);
    free(gguf_bos);
    free(gguf_eos);
    return rc;
}
