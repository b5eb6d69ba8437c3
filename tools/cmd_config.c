/*
 * cmd_config.c - `parley config`: show the effective configuration and where
 * each value came from, one value for scripts, or the example file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "parley/config.h"

extern char **environ;

int cmd_config(pl_cli *cli, int argc, char **argv) {
    if (pl_cli_wants_help(argc, argv)) {
        printf("usage: parley config [--config FILE] [--set KEY=VALUE]... [--print | --get KEY | --example]\n"
               "\n"
               "  --print           the effective configuration as YAML, each value followed by where it\n"
               "                    came from: default, FILE:LINE, env NAME or flag (the default action)\n"
               "  --get KEY         one value as plain text, e.g. --get llm.model (for scripts)\n"
               "  --example         the documented example file with every key at its default\n"
               "                    (parley.example.yaml is this output)\n"
               "  --config FILE     read FILE instead of ./parley.yaml or ~/.config/parley/parley.yaml\n"
               "  --set KEY=VALUE   set a key as a command-line flag would (highest precedence)\n"
               "\n"
               "Precedence: flag > environment (PARLEY_<SECTION>_<KEY>, e.g. PARLEY_LLM_N_CTX) > file >\n"
               "default. Unknown keys, wrong types and out-of-range values are errors.\n");
        return 0;
    }
    const char *file = NULL, *get = NULL;
    bool example = false;
    int n_sets = 0;
    const char **sets = pl_calloc(cli->ctx, (size_t)argc, sizeof *sets);
    if (!sets) return pl_cli_fail(cli, "out of memory");
    int rc = 0;
    for (int i = 1; i < argc && rc == 0; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--print") == 0) {
        } else if (strcmp(a, "--example") == 0) {
            example = true;
        } else if (pl_cli_is_opt(a, "--config")) {
            if (!(file = pl_cli_opt_value(cli, argc, argv, &i))) rc = 2;
        } else if (pl_cli_is_opt(a, "--get")) {
            if (!(get = pl_cli_opt_value(cli, argc, argv, &i))) rc = 2;
        } else if (pl_cli_is_opt(a, "--set")) {
            const char *kv = pl_cli_opt_value(cli, argc, argv, &i);
            if (!kv) rc = 2;
            else if (!strchr(kv, '=')) rc = pl_cli_usage_error(cli, "--set needs KEY=VALUE, got '%s'", kv);
            else sets[n_sets++] = kv;
        } else {
            rc = pl_cli_usage_error(cli, "unknown argument '%s'", a);
        }
    }
    if (rc != 0) {
        pl_free(cli->ctx, sets);
        return rc;
    }
    if (example) {
        pl_free(cli->ctx, sets);
        char *text = NULL;
        if (pl_config_example(cli->ctx, &text) != PL_OK) return pl_cli_fail(cli, "out of memory");
        fputs(text, stdout);
        pl_free(cli->ctx, text);
        return 0;
    }
    pl_config *cfg = NULL;
    if (pl_config_init(cli->ctx, &cfg) != PL_OK) {
        pl_free(cli->ctx, sets);
        return pl_cli_fail(cli, "out of memory");
    }
    /* flags first: the lower-precedence sources loaded after cannot override them */
    for (int i = 0; i < n_sets; i++) {
        const char *kv = sets[i];
        char key[128];
        const char *eq = strchr(kv, '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - kv) < 127 ? (int)(eq - kv) : 127, kv);
        char origin[160];
        snprintf(origin, sizeof origin, "--set %s", key);
        if (pl_config_set(cfg, key, eq + 1, PL_CONFIG_SOURCE_FLAG, origin) != PL_OK) {
            rc = pl_cli_fail(cli, "%s", pl_config_last_error(cfg));
            goto out;
        }
    }
    if (pl_config_load(cfg, file, environ) != PL_OK) {
        rc = pl_cli_fail(cli, "%s", pl_config_last_error(cfg));
        goto out;
    }
    if (get) {
        const pl_config_key *k = pl_config_key_find(get);
        if (!k) {
            rc = pl_cli_fail(cli, "unknown key '%s' (see 'parley config --example')", get);
            goto out;
        }
        char buf[PL_CONFIG_MAX_STRING + 1];
        pl_config_value_text(cfg, k, buf, sizeof buf);
        printf("%s\n", buf);
    } else {
        char *text = NULL;
        if (pl_config_format(cfg, &text) != PL_OK) {
            rc = pl_cli_fail(cli, "out of memory");
            goto out;
        }
        fputs(text, stdout);
        pl_free(cli->ctx, text);
    }
out:
    pl_config_free(cfg);
    pl_free(cli->ctx, sets);
    return rc;
}
