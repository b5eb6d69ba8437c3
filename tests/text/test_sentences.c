#include "test_text.h"
int test_sentences_group(void) { return 0; }
