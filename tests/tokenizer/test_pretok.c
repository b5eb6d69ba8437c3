#include "test_tokenizer.h"
int test_pretok_group(void) { return 0; }
