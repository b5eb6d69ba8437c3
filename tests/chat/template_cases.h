/* template_cases.h - the case table of template_cases.c (see there). */
#ifndef PL_TEST_TEMPLATE_CASES_H
#define PL_TEST_TEMPLATE_CASES_H

#include <stddef.h>

#include "parley/core.h"

typedef struct template_case {
    const char *tmpl;
    const char *ctx;  /* JSON object or NULL */
    const char *want; /* expected output when st == PL_OK */
    pl_status   st;
    const char *err;  /* substring of the error text */
    int         line, col; /* position the error must name (0: not checked) */
} template_case;

extern const template_case template_cases[];
extern const size_t template_case_count;

#endif
