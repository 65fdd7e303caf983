/*
 * The main thread's event loop: epoll over file descriptors (sockets, eventfds, signalfd,
 * timers), one callback per descriptor. Only event_loop_stop() may be called from other
 * threads (vCPUs, I/O threads).
 */
#ifndef STRATUS_VMM_EVENT_LOOP_H
#define STRATUS_VMM_EVENT_LOOP_H

#include <stdint.h>
#include <sys/epoll.h>

#include "util.h"

struct event_loop;

/* events is the epoll event mask that fired. */
typedef void (*event_fn)(void *opaque, uint32_t events);

int event_loop_create(struct event_loop **out);
void event_loop_destroy(struct event_loop *loop);

int event_loop_add(struct event_loop *loop, int fd, uint32_t events, event_fn fn, void *opaque);
int event_loop_modify(struct event_loop *loop, int fd, uint32_t events);
int event_loop_remove(struct event_loop *loop, int fd);

/* Dispatch events until event_loop_stop(); returns 0, or a negative errno if epoll fails. */
int event_loop_run(struct event_loop *loop);

/* Thread-safe and async-signal-safe. */
void event_loop_stop(struct event_loop *loop);

#endif
