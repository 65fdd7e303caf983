/*
 * Where `stratus run` spends its time (docs/runtime.md "Phases"): with --debug and --log, the
 * CLI and the monitor it forks each write one log line per phase of a container's life,
 * "phase NAME MS SIDE": MS is CLOCK_MONOTONIC milliseconds since the CLI started, SIDE says
 * what the interval that ends there was spent on: "host" (our own code, the target of the
 * host-side budget) or "guest" (the host waiting for the guest: its kernel booting, the agent
 * working, the container's process running). tests/bench/oci_run.sh reads them.
 */
#ifndef STRATUS_RUNTIME_PHASE_H
#define STRATUS_RUNTIME_PHASE_H

#include <stdbool.h>

/* Start the clock; phases go to log_path (appended, JSON lines when json), NULL: nowhere. */
void phase_init(const char *log_path, bool json);

/* One line for the phase that ends now; nothing unless phase_init was given a log. */
void phase_mark(const char *name, const char *side);

#endif
