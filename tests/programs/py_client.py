"""py_client: Python socket-level probes for the e2e tests (stdlib only).

  py_client.py get URL             urllib GET; prints the body
  py_client.py resolve HOST PORT   socket.getaddrinfo; sorted unique addresses
  py_client.py peer HOST PORT      TCP connect; prints getpeername() "ADDR PORT"
  py_client.py connect HOST PORT   TCP connect; prints "connected" or the errno
                                   name (e.g. ECONNREFUSED), exit 1 on error
  py_client.py nbconnect HOST PORT non-blocking connect + select; prints the
                                   connect_ex errno name, then SO_ERROR's name
  py_client.py udp HOST PORT MSG   unconnected sendto/recvfrom; prints
                                   "reply MSG from ADDR PORT"
  py_client.py udpc HOST PORT MSG  connect + send/recv; prints "reply MSG from
                                   ADDR PORT" with getpeername()
  py_client.py cat PATH            PATH's content
  py_client.py ls DIR              DIR's entries (os.scandir), sorted, one a line;
                                   "/" after a directory, "@" after a symlink
  py_client.py stat PATH           "SIZE MTIME" (os.stat)
HOST is resolved with getaddrinfo (AF_UNSPEC; the first result is used, which
follows the system's address order).
"""
import errno
import os
import select
import socket
import sys
import urllib.request


def addr_of(host, port, kind):
    ai = socket.getaddrinfo(host, port, 0, kind)
    return ai[0][0], ai[0][4]


def ename(e):
    return errno.errorcode.get(e, str(e)) if e else "0"


def main(argv):
    mode = argv[1] if len(argv) > 1 else ""
    if mode == "get" and len(argv) == 3:
        with urllib.request.urlopen(argv[2], timeout=20) as r:
            sys.stdout.write(r.read().decode())
        return 0
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    host, port = argv[2], int(argv[3])
    if mode == "resolve":
        ai = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        for a in sorted({x[4][0] for x in ai}):
            print(a)
        return 0
    if mode in ("peer", "connect", "nbconnect"):
        fam, sa = addr_of(host, port, socket.SOCK_STREAM)
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(20)
        if mode == "nbconnect":
            s.setblocking(False)
            print(ename(s.connect_ex(sa)))
            _, w, _ = select.select([], [s], [], 20)
            print(ename(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)) if w else "timeout")
            return 0
        try:
            s.connect(sa)
        except OSError as e:
            print(ename(e.errno))
            return 1
        if mode == "connect":
            print("connected")
        else:
            p = s.getpeername()
            print(p[0], p[1])
        return 0
    if mode in ("udp", "udpc") and len(argv) == 5:
        fam, sa = addr_of(host, port, socket.SOCK_DGRAM)
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.settimeout(1)
        if mode == "udpc":
            s.connect(sa)
        for _ in range(5):  # UDP may drop a datagram: bounded retries
            if mode == "udpc":
                s.send(argv[4].encode())
            else:
                s.sendto(argv[4].encode(), sa)
            try:
                if mode == "udpc":
                    data, src = s.recv(2048), s.getpeername()
                else:
                    data, src = s.recvfrom(2048)
            except socket.timeout:
                continue
            print("reply %s from %s %d" % (data.decode(), src[0], src[1]))
            return 0
        print("no reply")
        return 1
    sys.stderr.write(__doc__)
    return 2


def fs_probe(op, path):
    if op == "cat":
        with open(path, "rb") as f:
            sys.stdout.buffer.write(f.read())
    elif op == "ls":
        for e in sorted(os.scandir(path), key=lambda e: e.name):
            kind = "/" if e.is_dir(follow_symlinks=False) else "@" if e.is_symlink() else ""
            print(e.name + kind)
    else:
        st = os.stat(path)
        print(st.st_size, int(st.st_mtime))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in ("cat", "ls", "stat"):
        try:
            sys.exit(fs_probe(sys.argv[1], sys.argv[2]))
        except OSError as e:
            sys.stderr.write("%s: %s\n" % (sys.argv[1], e))
            sys.exit(1)
    sys.exit(main(sys.argv))
