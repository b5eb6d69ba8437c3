/* test_main.c - the store test executable: catalog and names (unit), pull
 * against a local HTTP server (integration), and the CLI commands. */
#include "test_store.h"

int main(void) {
    int rc = 0;
    rc |= test_catalog_main();
    rc |= test_pull_main();
    rc |= test_store_cli_main();
    return rc ? 1 : 0;
}
