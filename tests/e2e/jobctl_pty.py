#!/usr/bin/python3
"""Drive an interactive bash on a pseudo-terminal, as a user at a terminal
does, and print what the user sees, one observation a line:

    jobctl_pty.py PREFIX_INT PREFIX_TSTP

PREFIX_* is put before each job's command line ('' runs it bare; e.g.
'/x/mirrord-trace --agent-addr 127.0.0.1:N --'); one per job, since an
agent serves one run.

1. Ctrl-C: a job waits in time.sleep(); the terminal's ^C sends SIGINT to the
   whole foreground process group; the shell reports the job's status.
2. Ctrl-Z, fg: a job waits for a line from the terminal; ^Z stops the whole
   foreground process group and the shell reports it stopped; `fg`
   continues it in the foreground, it reads a line typed after that, and
   ends normally.

Markers that the job prints are written split in the command ('re' + 'ady'),
so the terminal's echo of the typed command never matches them. Every wait
is bounded (a failure, never a condition the test relies on)."""
import os
import pty
import re
import select
import sys
import time

WAIT = 30  # seconds: an upper bound for each expected output
PROMPT = "PROMPT-7f3e> "
PY = "/usr/bin/python3"


class Term:
    def __init__(self):
        pid, fd = pty.fork()
        if pid == 0:
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "dumb",
                   "PS1": PROMPT, "HOME": "/", "MT_E2E_RUN": os.environ.get("MT_E2E_RUN", "")}
            os.execve("/bin/bash", ["bash", "--norc", "--noprofile", "-i"], env)
        self.pid, self.fd, self.buf = pid, fd, ""

    def send(self, s):
        os.write(self.fd, s.encode())

    def expect(self, pattern, what):
        """Read until pattern matches what came since the last match."""
        rx = re.compile(pattern)
        end = time.monotonic() + WAIT
        while True:
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = end - time.monotonic()
            if left <= 0:
                print(f"timed out waiting for {what}; the terminal showed: {self.buf[-600:]!r}")
                sys.stdout.flush()
                self.close()
                sys.exit(1)
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    print(f"the terminal closed while waiting for {what}: {self.buf[-600:]!r}")
                    sys.exit(1)
                self.buf += data.decode(errors="replace").replace("\r", "")

    def job_in_foreground(self, what):
        """Wait until the terminal's foreground process group is no longer
        the shell's: the job has the terminal, so ^C/^Z reach it. (A job
        can print before the shell hands it the terminal.)"""
        end = time.monotonic() + WAIT
        while os.tcgetpgrp(self.fd) == self.pid:
            if time.monotonic() > end:
                print(f"timed out waiting for {what} to get the terminal")
                self.close()
                sys.exit(1)
            time.sleep(0.01)

    def prompt(self):
        self.expect(re.escape(PROMPT), "the shell's prompt")

    def status(self):
        self.send('echo "st""atus=$?"\n')
        return self.expect(r"status=(\d+)", "the job's status").group(1)

    def close(self):
        try:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        except OSError:
            pass


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: jobctl_pty.py PREFIX_INT PREFIX_TSTP")
    t = Term()
    t.prompt()

    # 1. Ctrl-C
    # One process, default SIGINT action before it says ready: a shell
    # (dash catches SIGINT with -c) could take ^C between its builtins
    # and then wait for a child that never got it.
    t.send(f"{sys.argv[1]} {PY} -c \"import signal, time; signal.signal(signal.SIGINT, "
           "signal.SIG_DFL); print('re' + 'ady-int', flush=True); time.sleep(60)\"\n")
    t.expect(r"ready-int\n", "the first job to start")
    t.job_in_foreground("the first job")
    t.send("\x03")
    t.prompt()
    print(f"ctrl-c: the job ended, status {t.status()}")
    t.prompt()

    # 2. Ctrl-Z, jobs, fg
    t.send(f"{sys.argv[2]} {PY} -c \"import sys; print('re' + 'ady-tstp', flush=True); "
           "x = sys.stdin.readline().strip(); print('g' + 'ot', x, flush=True); sys.exit(5)\"\n")
    t.expect(r"ready-tstp\n", "the second job to start")
    t.job_in_foreground("the second job")
    t.send("\x1a")
    m = t.expect(r"\[1\]\+\s+(Stopped)", "the shell to report the job stopped")
    print(f"ctrl-z: the shell says '{m.group(1)}'")
    t.prompt()
    t.send("jobs\n")
    m = t.expect(r"\[1\]\+\s+(\w+)", "the job table")
    print(f"jobs: '{m.group(1)}'")
    t.prompt()
    t.send("fg\n")
    t.send("hello-after-fg\n")
    t.expect(r"got hello-after-fg\n", "the job to read the line typed after fg")
    print("fg: the job continued in the foreground and read the terminal")
    t.prompt()
    print(f"fg: the job ended, status {t.status()}")
    t.prompt()
    t.send("jobs; echo jo''bs-done\n")
    m = t.expect(r"([^\n]*)jobs-done", "the empty job table")
    print(f"jobs at the end: '{m.group(1).strip()}'")
    t.send("exit\n")
    t.close()


if __name__ == "__main__":
    main()
