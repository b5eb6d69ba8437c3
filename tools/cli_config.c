/*
 * cli_config.c - the configuration pass the configurable commands share
 * (chat, serve, voice): --config FILE first, the file and PARLEY_* variables,
 * then the flags that set keys (parley/config.h gives the precedence).
 */
#include <string.h>

#include "cli.h"

extern char **environ;

int pl_cli_config_load(pl_cli *cli, int argc, char **argv, pl_config **out) {
    *out = NULL;
    if (pl_config_init(cli->ctx, out) != PL_OK) return pl_cli_fail(cli, "out of memory");
    const char *file = NULL;
    /* the file loads before any flag is applied, wherever --config stands */
    for (int i = 1; i < argc; i++)
        if (pl_cli_is_opt(argv[i], "--config") && !(file = pl_cli_opt_value(cli, argc, argv, &i))) return 2;
    if (pl_config_load(*out, file, environ) != PL_OK) return pl_cli_fail(cli, "%s", pl_config_last_error(*out));
    return 0;
}

int pl_cli_config_flag(pl_cli *cli, pl_config *cfg, const pl_cli_flag_key *keys, size_t n, int argc, char **argv,
                       int *i) {
    const char *a = argv[*i], *v;
    if (pl_cli_is_opt(a, "--config")) return pl_cli_opt_value(cli, argc, argv, i) ? 1 : -1; /* loaded already */
    const pl_cli_flag_key *fk = NULL;
    for (size_t k = 0; k < n && !fk; k++)
        if (pl_cli_is_opt(a, keys[k].flag) || (keys[k].alt && strcmp(a, keys[k].alt) == 0)) fk = &keys[k];
    if (!fk) return 0;
    if (!(v = pl_cli_opt_value(cli, argc, argv, i))) return -1;
    if (pl_config_set(cfg, fk->key, v, PL_CONFIG_SOURCE_FLAG, fk->flag) != PL_OK) {
        pl_cli_usage_error(cli, "%s", pl_config_last_error(cfg));
        return -1;
    }
    return 1;
}
