#!/bin/sh
# Guest side of tests/integration/test_snapshot.sh: a console shell for the host to drive.
# It says "SNAP ready" and then runs each line that arrives on the console; the VM is
# snapshotted while this waits for input, and every restored clone carries on reading.
echo "SNAP ready"
while read -r line; do
	eval "$line"
done
