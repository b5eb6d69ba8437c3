#include "test_text.h"
int test_speak_group(void) { return 0; }
