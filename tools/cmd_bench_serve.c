/* cmd_bench_serve.c - placeholder, replaced below */
#include "cli.h"
int cmd_bench_serve(pl_cli *cli, int argc, char **argv) { (void)argc; (void)argv; return pl_cli_fail(cli, "todo"); }
