#!/usr/bin/env python3
"""Chat posts over WebSocket against carrel-serve, closed loop: C sockets, each
in its own Chat room, send "user|text" and wait for the room's broadcast of it.
Prints req/s, p50 and p99 (ms). Also measures idle-socket memory: RSS of the
server before and after N idle sockets on one room, after the room hibernated.

Usage: ws_chat.py PORT SERVER_PID [seconds] [conns] [idle_sockets]"""
import os
import select
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "serve"))
from wsclient import WebSocket, rss_bytes  # noqa: E402

port, pid = int(sys.argv[1]), int(sys.argv[2])
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 10
conns = int(sys.argv[4]) if len(sys.argv) > 4 else 64
idle = int(sys.argv[5]) if len(sys.argv) > 5 else 1000

socks = [WebSocket(port, f"/objects/Chat/bench{i}/ws") for i in range(conns)]
by_fd = {s.sock.fileno(): s for s in socks}
sent_at = {}
lat = []
end = time.monotonic() + seconds
for s in socks:
    sent_at[s] = time.perf_counter()
    s.send_text("u|hello")
while time.monotonic() < end:
    ready, _, _ = select.select(list(by_fd), [], [], 1.0)
    for fd in ready:
        s = by_fd[fd]
        s.recv_text()
        now = time.perf_counter()
        lat.append(now - sent_at[s])
        sent_at[s] = now
        s.send_text("u|hello")
for s in socks:
    s.close()
lat.sort()
n = len(lat)
print(f"chat post over WebSocket, {conns} sockets: {n / seconds:.0f} req/s, "
      f"p50 {lat[n // 2] * 1000:.2f} ms, p99 {lat[int(n * 0.99)] * 1000:.2f} ms")

time.sleep(1.0)
before = rss_bytes(pid)
idle_socks = [WebSocket(port, "/objects/Chat/idle-room/ws") for _ in range(idle)]
time.sleep(2.0)  # the room hibernates (carrel-serve --idle-timeout-ms)
after = rss_bytes(pid)
print(f"idle sockets: {idle} on one hibernated room, RSS {before / 1e6:.1f} MB -> "
      f"{after / 1e6:.1f} MB, {(after - before) / idle:.0f} bytes per idle socket")
for s in idle_socks:
    s.close()
