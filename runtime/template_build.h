/*
 * Building a template (template.h): a short-lived child process boots the template VM with
 * libvmm (the monitor's machine and sandbox, template_layout()'s devices), waits for the
 * agent to answer, and snapshots the VM into <dir>/snapshot with QMP `migrate` on its own
 * event loop's QMP server. Internal to template.c.
 */
#ifndef STRATUS_RUNTIME_TEMPLATE_BUILD_H
#define STRATUS_RUNTIME_TEMPLATE_BUILD_H

#include <stdint.h>

#include "common/error.h"
#include "guest_assets.h"

/* Build into the empty directory dir: 0 once dir/snapshot is complete, else one line. */
int template_build(const char *dir, const struct guest_assets *assets, unsigned int vcpus,
		   uint64_t mem_mib, struct error *err);

/* Remove what the build left besides the snapshot (sockets, console, log). */
void template_build_tidy(const char *dir);

#endif
