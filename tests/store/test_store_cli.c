#include "test_store.h"
int test_store_cli_main(void) { return 0; }
