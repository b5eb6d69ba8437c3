/* test_store.h - shared helpers of the store test executable. */
#ifndef PL_TEST_STORE_H
#define PL_TEST_STORE_H

#include <stdbool.h>
#include <stddef.h>

/* SHA-256 of a buffer, one-shot EVP_Digest (independent of the store's streaming hash). */
void ts_sha256_hex(const void *p, size_t n, char out[65]);
/* True when the file holds exactly these bytes. */
bool ts_file_equals(const char *path, const void *data, size_t n);

int test_catalog_main(void);
int test_pull_main(void);
int test_store_cli_main(void);

#endif
