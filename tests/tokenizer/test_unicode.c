#include "test_tokenizer.h"
int test_unicode_group(void) { return 0; }
