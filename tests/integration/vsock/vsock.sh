#!/bin/sh
# Guest half of test_virtio_vsock.sh, run by /init (stratus_test_run=/tests/vsock.sh): an
# echo server on vsock port 1234 for the host's connections, then guest → host transfers:
# 8 MiB to host port 5000 (a listener on <uds-path>_5000) and a connection to port 5001,
# where nobody listens. The host waits for "vsock-ready" before it connects.
/tests/vsock_guest serve 1234 &
/tests/vsock_guest send 5000 8388608
/tests/vsock_guest send 5001 10
echo "STRATUS-TEST vsock-ready"
