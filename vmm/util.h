/* libvmm's helpers are the project's common ones (common/util.h). */
#ifndef STRATUS_VMM_UTIL_H
#define STRATUS_VMM_UTIL_H

#include "../common/util.h"

#endif
