/* libvmm reports errors as the rest of the project does (common/error.h). */
#ifndef STRATUS_VMM_ERROR_H
#define STRATUS_VMM_ERROR_H

#include "../common/error.h"

#endif
