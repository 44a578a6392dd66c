#!/usr/bin/env python3
"""The chat page in headless Chromium: two browser sockets on one room
exchange messages through carrel-serve. The pages report what they received
in their titles, read through the DevTools HTTP endpoint (/json/list).

Usage: chat_page_test.py CARREL_SERVE_BINARY [CHROMIUM]   (exit 0 on success)"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request

from wsclient import TIMEOUT, http, start_server, stop_server, wait_until


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser(chromium, profile, url):
    port = free_port()
    proc = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                             "--no-first-run", "--disable-extensions",
                             f"--user-data-dir={profile}", f"--remote-debugging-port={port}", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


def title(devtools_port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", timeout=2) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        return pages[0]["title"] if pages else ""
    except OSError:
        return ""


def main():
    binary = sys.argv[1]
    chromium = sys.argv[2] if len(sys.argv) > 2 else (shutil.which("chromium") or "chromium")
    tmp = tempfile.mkdtemp(prefix="carrel-chat-page-")
    browsers = []
    proc, port = start_server(binary, tmp + "/data")
    try:
        base = f"http://127.0.0.1:{port}/chat?room=page-room"
        stats = lambda: json.loads(http(port, "GET", "/stats")[2])
        a = browser(chromium, tmp + "/a", base + "&user=ann&reply=hello-ben")
        browsers.append(a)
        assert wait_until(lambda: stats()["connections_accepted"] >= 1, 60), "page A never connected"
        b = browser(chromium, tmp + "/b", base + "&user=ben&say=hello-ann")
        browsers.append(b)
        ok = wait_until(lambda: "ben|hello-ann" in title(a[1]) and "ann|hello-ben" in title(b[1]), 60)
        assert ok, f"titles: A={title(a[1])!r} B={title(b[1])!r}"
        print(f"ok   two browser sockets exchanged messages: A={title(a[1])!r} B={title(b[1])!r}")
    finally:
        for p, _ in browsers:
            p.terminate()
            try:
                p.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
        rc = stop_server(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    assert rc == 0, rc
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
