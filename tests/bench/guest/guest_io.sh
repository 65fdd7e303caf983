#!/bin/sh
# Guest half of tests/bench/guest_io.sh, run by the test initramfs's /init
# (stratus_test_run=/tests/guest_io.sh). /dev/vda is a scratch raw image. Each measurement
# prints "STRATUS-TEST bench NAME bytes=N ns=T", timed in the guest; the host reads them.
g=/tests/vsock_guest
$g disk-seq write /dev/vda 16 || echo "STRATUS-TEST bench-fail disk-seq-write"
$g disk-seq read /dev/vda 16 || echo "STRATUS-TEST bench-fail disk-seq-read"
$g disk-rand /dev/vda 5 || echo "STRATUS-TEST bench-fail disk-rand-read"
# Guest → host: the host listens on <uds-path>_5000 before the guest boots.
$g bench-send 5000 8 || echo "STRATUS-TEST bench-fail vsock-send"
# Host → guest: the host connects once it sees vsock-listening.
$g bench-recv 1235 || echo "STRATUS-TEST bench-fail vsock-recv"
echo "STRATUS-TEST bench-done"
