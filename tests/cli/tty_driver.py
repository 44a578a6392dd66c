#!/usr/bin/env python3
"""Runs carrel on a pseudo-terminal, as a person at a terminal would.

Usage:
  tty_driver.py repl CARREL DIR OBJ HISTORY_FILE
    `carrel sql OBJ`: the REPL starts; Ctrl-C drops a statement being typed
    and the REPL goes on; a statement runs; Ctrl-C stops a running statement
    and the REPL goes on; .quit leaves with exit code 0; the
    statement (and not the dropped one) is in the history file afterwards.
  tty_driver.py pager CARREL DIR MARKER [ARGS...]
    `carrel objects ARGS` on a terminal 5 rows high, with CARREL_PAGER a
    command that copies its input to MARKER; prints what reached the terminal.
Exits 1 (SystemExit with a message) on a failed check. Every wait is bounded
(kWaitSeconds).
"""
import fcntl
import os
import struct
import termios
import pty
import select
import signal
import sys
import time

kWaitSeconds = 30


def pager(carrel, directory, marker, args):
    env = dict(os.environ, CARREL_PAGER="cat > '%s'" % marker)
    pid, fd = pty.fork()
    if pid == 0:
        # The size is set before exec: set from the parent, it raced the
        # child's first look at the terminal on a loaded machine.
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 5, 80, 0, 0))
        os.execve(carrel, [carrel, "--dir", directory, "objects"] + args, env)
    seen = b""
    deadline = time.monotonic() + kWaitSeconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            seen += chunk
    else:
        os.kill(pid, signal.SIGKILL)
        raise SystemExit("FAIL: carrel objects did not end")
    _, status = os.waitpid(pid, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        raise SystemExit("FAIL: carrel objects ended with status %d" % status)
    sys.stdout.write(seen.decode(errors="replace"))


def main():
    if sys.argv[1] == "pager":
        return pager(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    carrel, directory, obj, history = sys.argv[2:6]
    env = dict(os.environ, CARREL_HISTORY=history, TERM="dumb", PAGER="cat")
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(carrel, [carrel, "--dir", directory, "sql", obj], env)
    seen = b""

    def wait_for(text):
        nonlocal seen
        deadline = time.monotonic() + kWaitSeconds
        while text.encode() not in seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemExit("FAIL: no %r within %d s; saw %r" % (text, kWaitSeconds, seen))
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise SystemExit("FAIL: the REPL ended waiting for %r; saw %r" % (text, seen))
                seen += chunk

    def send(text):
        os.write(fd, text.encode())

    wait_for("carrel> ")
    send("SELECT 'dropped\n")  # an open string: the statement goes on
    wait_for("...> ")
    send("\x03")  # Ctrl-C drops it
    wait_for("^C")
    # The terminal echoes ^C at once; the REPL has dropped the statement when
    # it prompts afresh, so the next statement is typed after that prompt.
    seen = seen.split(b"^C", 1)[1]
    wait_for("carrel> ")
    seen = b""
    send("SELECT 6 * 7 AS answer;\n")
    wait_for("42")
    wait_for("carrel> ")
    # Ctrl-C stops a running statement (an endless recursive CTE) and the
    # REPL goes on. Sent once the line has been read (its echo is back); the
    # statement has then started or is about to, and stops either way.
    seen = b""
    send("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;\n")
    wait_for("FROM c;")
    time.sleep(0.3)
    send("\x03")
    wait_for("stopped on request")  # well before sql_turn_ms_max (30 s) would stop it
    wait_for("carrel> ")
    seen = b""
    send("SELECT 'after' AS still;\n")
    wait_for("after")
    wait_for("carrel> ")
    send(".quit\n")
    deadline = time.monotonic() + kWaitSeconds
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            raise SystemExit("FAIL: .quit did not end the REPL")
        try:
            os.read(fd, 4096)
        except OSError:
            pass
        time.sleep(0.05)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        raise SystemExit("FAIL: the REPL ended with status %d" % status)
    with open(history) as f:
        saved = f.read().replace("\\040", " ")  # libedit's history file escapes spaces
    if "SELECT 6 * 7 AS answer;" not in saved:
        raise SystemExit("FAIL: the history file lacks the statement: %r" % saved)
    if "dropped" in saved:
        raise SystemExit("FAIL: the dropped statement is in the history: %r" % saved)
    print("repl ok")


if __name__ == "__main__":
    main()
