#!/usr/bin/env python3
# A --console-socket receiver for test_cli.sh, as conmon or containerd's shim would be:
# listen on SOCKET, take the pty master that arrives with SCM_RIGHTS, type INPUT (a line)
# into it, and copy everything the terminal prints to OUT until it closes (EIO/EOF) or
# 300 s pass.
# usage: console-socket.py SOCKET OUT INPUT
import array
import os
import select
import socket
import sys
import time

path, out, line = sys.argv[1], sys.argv[2], sys.argv[3]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
srv.settimeout(300)
conn, _ = srv.accept()
fds = array.array("i")
msg, anc, _, _ = conn.recvmsg(256, socket.CMSG_SPACE(fds.itemsize))
for level, kind, data in anc:
    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
        fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
if not fds:
    sys.exit("no fd received")
master = fds[0]
os.write(master, (line + "\n").encode())
deadline = time.time() + 300
with open(out, "wb") as f:
    while time.time() < deadline:
        r, _, _ = select.select([master], [], [], 1)
        if not r:
            continue
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        f.write(data.replace(b"\r\n", b"\n"))
        f.flush()
