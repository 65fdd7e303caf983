#!/usr/bin/env python3
"""Host side of test_virtio_net.sh, run inside a private network namespace (unshare --net).

Makes two taps: stnet0 (persistent, 10.99.0.1/24, MTU 9000), which stratus-vmm opens itself
(-netdev tap,ifname=stnet0), and stnet1 (10.98.0.1/24), opened here with TUNSETIFF and handed
to stratus-vmm as fd 5 (-netdev tap,fd=5). Runs stratus-vmm with the arguments given after
"--" (the NIC options are added here), waits for it, prints the taps' packet counters as
"HOST stnetN rx=... tx=..." and exits with its status.
usage: launch.py -- STRATUS-VMM ARGS...
"""
import fcntl
import os
import struct
import subprocess
import sys

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000


def ip(*args):
    subprocess.run(["ip", *args], check=True)


def counters(name):
    """From /proc/net/dev: /sys/class/net is the namespace that mounted /sys."""
    with open("/proc/net/dev") as dev:
        for line in dev:
            ifname, _, fields = line.partition(":")
            if ifname.strip() == name:
                f = fields.split()
                return f"HOST {name} rx={f[1]} tx={f[9]}"
    return f"HOST {name} missing"


def main():
    argv = sys.argv[sys.argv.index("--") + 1:]
    ip("link", "set", "lo", "up")
    ip("tuntap", "add", "dev", "stnet0", "mode", "tap")
    ip("addr", "add", "10.99.0.1/24", "dev", "stnet0")
    ip("link", "set", "stnet0", "mtu", "9000", "up")
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", b"stnet1", IFF_TAP | IFF_NO_PI))
    ip("addr", "add", "10.98.0.1/24", "dev", "stnet1")
    ip("link", "set", "stnet1", "up")
    os.dup2(fd, 5)
    os.close(fd)
    argv += ["-netdev", "tap,id=n0,ifname=stnet0",
             "-device", "virtio-net-device,netdev=n0,id=net0,mac=52:54:00:00:00:01,mtu=9000",
             "-netdev", "tap,id=n1,fd=5",
             "-device", "virtio-net-device,netdev=n1,id=net1"]
    status = subprocess.run(argv, pass_fds=[5], check=False).returncode
    print(counters("stnet0"))
    print(counters("stnet1"))
    sys.stdout.flush()
    sys.exit(status)


main()
