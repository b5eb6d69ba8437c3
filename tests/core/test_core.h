/* test_core.h - the core unit test groups (one executable, test_core). */
#ifndef PL_TEST_CORE_H
#define PL_TEST_CORE_H

#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "parley/core.h"
#include "core/core_int.h"

int test_ctx_group(void);
int test_mem_group(void);
int test_sys_group(void);
int test_pool_group(void);

#endif
