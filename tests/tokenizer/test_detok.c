#include "test_tokenizer.h"
int test_detok_group(void) { return 0; }
