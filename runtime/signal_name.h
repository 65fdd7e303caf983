/*
 * Signals as `stratus kill` and the state of an exit name them: "KILL", "SIGKILL", "kill",
 * "9", "SIGRTMIN+3", "RTMAX-1". Linux numbering (x86-64 and every other arch we run on).
 */
#ifndef STRATUS_RUNTIME_SIGNAL_NAME_H
#define STRATUS_RUNTIME_SIGNAL_NAME_H

#include "common/error.h"

/* 0 and *signal (1 .. SIGRTMAX), or -EINVAL with the flag named in err. */
int signal_parse(const char *text, int *signal, struct error *err);

#endif
