#include "test_tokenizer.h"
int test_load_group(void) { return 0; }
