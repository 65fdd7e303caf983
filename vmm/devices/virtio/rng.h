/*
 * virtio-rng's rate limit (rng.c, docs/vmm.md "virtio-rng"): a token bucket of bytes.
 * virtio_rng_new() (virtio.h) starts with the default; the VMM wires the bucket's timer
 * into its main loop, the unit tests poll virtio_rng_timer_fd() themselves.
 */
#ifndef STRATUS_VMM_VIRTIO_RNG_H
#define STRATUS_VMM_VIRTIO_RNG_H

#include <stdint.h>

#include "virtio.h"

/* Default: 1 MiB/s, a burst of one second's worth (QEMU's max-bytes per period=1000). */
#define VIRTIO_RNG_DEFAULT_BYTES_PER_SEC (1024 * 1024ULL)
#define VIRTIO_RNG_MIN_BYTES_PER_SEC	 64ULL	      /* StratoVirt's lower bound */
#define VIRTIO_RNG_MAX_BYTES_PER_SEC	 (1ULL << 40) /* 1 TiB/s: no limit in practice */

/*
 * Set the rate (bytes per second, within the bounds above) and the burst (bytes the guest
 * may take at once after a pause, >= 1); the bucket starts full. -EINVAL if out of range.
 */
int virtio_rng_set_rate(struct virtio_device *dev, uint64_t bytes_per_sec, uint64_t burst);

/* The timerfd that becomes readable when a guest waiting on an empty bucket may go on. */
int virtio_rng_timer_fd(struct virtio_device *dev);
/* Its handler: consume the expiry and look at the queue again (main-loop thread). */
void virtio_rng_timer_expired(struct virtio_device *dev);

#endif
