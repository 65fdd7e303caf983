/* PID-1 set-up of stratus-agent (init.c): used by main.c only, never by the tested core. */
#ifndef STRATUS_AGENT_INIT_H
#define STRATUS_AGENT_INIT_H

/* Mount the API filesystems and take the console: 0, or the last mount's negative errno. */
int agent_init_pid1(void);

#endif
