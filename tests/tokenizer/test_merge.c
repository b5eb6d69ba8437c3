#include "test_tokenizer.h"
int test_merge_group(void) { return 0; }
