/*
 * Host terminals for process.terminal (docs/runtime.md "Terminals"): a pty pair whose
 * master goes to the caller's --console-socket (runc's protocol: one message over a Unix
 * stream socket carrying the master with SCM_RIGHTS and the pty's name as data) and whose
 * slave, in raw mode, the relay joins to the agent's pty stream. The guest's pty does the
 * line discipline; the host's only passes bytes and window sizes.
 */
#ifndef STRATUS_RUNTIME_CONSOLE_H
#define STRATUS_RUNTIME_CONSOLE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

/*
 * A new pty pair: master and slave fds (close-on-exec), the slave raw. rows/cols 0: leave
 * the size unset. ctty: make the slave our controlling terminal (after setsid), so window
 * changes on the master reach us as SIGWINCH.
 */
int console_open_pty(uint32_t rows, uint32_t cols, bool ctty, int *master, int *slave,
		     struct error *err);

/* Send fd to the Unix socket at path (--console-socket). */
int console_send_fd(const char *path, int fd, struct error *err);

/* The window size of a tty, 0 or a negative errno. */
int console_get_size(int fd, uint32_t *rows, uint32_t *cols);

/* Put a tty in raw mode, saving its settings into *saved (size of struct termios). */
struct termios;
int console_set_raw(int fd, struct termios *saved);

#endif
