/* PID-1 set-up of stratus-agent (init.c): used by main.c only, never by the tested core. */
#ifndef STRATUS_AGENT_INIT_H
#define STRATUS_AGENT_INIT_H

/*
 * Mount the API filesystems, take the console, bring lo up: 0, or the last failure's
 * negative errno (each failure is logged; the agent carries on with what works).
 */
int agent_init_pid1(void);

/* A line on stderr (the console for PID 1) prefixed with "stratus-agent: ". */
void agent_init_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The guest's vsock CID (from /dev/vsock), or -ENODEV when the VM has no vsock device: a
 * listener binds without one, but no host could ever connect to it.
 */
int agent_init_vsock_cid(void);

/* Sync and power the VM off (the exit port reports it to the VMM); never returns. */
void agent_init_poweroff(void) __attribute__((noreturn));

#endif
