/* test_main.c - runs every core test group; non-zero when any test failed. */
#include "test_core.h"

int main(void) {
    int failed = 0;
    failed += test_ctx_group();
    failed += test_mem_group();
    failed += test_sys_group();
    failed += test_pool_group();
    return failed ? 1 : 0;
}
