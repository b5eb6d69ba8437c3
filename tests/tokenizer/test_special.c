#include "test_tokenizer.h"
int test_special_group(void) { return 0; }
