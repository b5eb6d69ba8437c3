/*
 * status.c - pl_status text and names, generated from PL_STATUS_LIST.
 *
 * A switch (rather than an array indexed by -value) makes a duplicated value
 * in the list a compile error ("duplicate case value").
 */
#include "parley/core.h"

const char *pl_status_str(pl_status st) {
    switch (st) {
#define PL_X_(name, val, msg) case PL_##name: return msg;
        PL_STATUS_LIST(PL_X_)
#undef PL_X_
    }
    return "unknown status";
}

const char *pl_status_name(pl_status st) {
    switch (st) {
#define PL_X_(name, val, msg) case PL_##name: return #name;
        PL_STATUS_LIST(PL_X_)
#undef PL_X_
    }
    return "ERR_UNKNOWN";
}
