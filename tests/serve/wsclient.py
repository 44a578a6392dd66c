"""A minimal HTTP/1.1 and WebSocket (RFC 6455) client over raw sockets, for
carrel-serve's end-to-end tests and benchmarks. It can also send what a real
client never would (unmasked or oversized frames, broken requests)."""
import base64
import os
import re
import select
import signal
import socket
import struct
import subprocess
import time

TIMEOUT = 20.0  # every socket wait is bounded


def start_server(binary, data_dir, *extra):
    """Starts carrel-serve on a free loopback port; returns (process, port)."""
    proc = subprocess.Popen([binary, "--dir", data_dir, "--listen", "127.0.0.1:0", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
    if not ready:
        proc.kill()
        raise RuntimeError("carrel-serve did not start")
    line = proc.stdout.readline()
    m = re.search(r"127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise RuntimeError("carrel-serve said: " + line + proc.stderr.read())
    return proc, int(m.group(1))


def stop_server(proc):
    """SIGTERM, then the exit code (bounded)."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def http(port, method, path, body=b"", headers=None, raw=None):
    """One request on a fresh connection; returns (status, headers, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        if raw is None:
            if isinstance(body, str):
                body = body.encode()
            h = {"Host": "127.0.0.1", "Content-Length": str(len(body)), "Connection": "close"}
            h.update(headers or {})
            raw = (f"{method} {path} HTTP/1.1\r\n" +
                   "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode() + body
        try:
            s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading it all: read its answer
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, rest


class WebSocket:
    def __init__(self, port, path, connect=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""
        self.status = 0
        if connect:
            self.handshake(path)

    def handshake(self, path):
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.status = int(head.split()[1])
        if self.status != 101:
            raise ConnectionRefusedError(f"status {self.status}: {head.decode(errors='replace')}")

    def send_frame(self, opcode, payload, mask=True, fin=True):
        if isinstance(payload, str):
            payload = payload.encode()
        head = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            head += bytes([mbit | n])
        elif n < 65536:
            head += bytes([mbit | 126]) + struct.pack("!H", n)
        else:
            head += bytes([mbit | 127]) + struct.pack("!Q", n)
        if mask:
            key = os.urandom(4)
            head += key
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + payload)

    def send_text(self, text):
        self.send_frame(0x1, text)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def recv(self):
        """The next data or close frame: (opcode, payload); pings are answered."""
        while True:
            self._need(2)
            b0, b1 = self.buf[0], self.buf[1]
            n, at = b1 & 0x7F, 2
            if n == 126:
                self._need(4)
                n, at = struct.unpack("!H", self.buf[2:4])[0], 4
            elif n == 127:
                self._need(10)
                n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
            self._need(at + n)
            payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
            opcode = b0 & 0x0F
            if opcode == 0x9:
                self.send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            return opcode, payload

    def recv_text(self):
        op, payload = self.recv()
        if op != 0x1:
            raise AssertionError(f"expected a text frame, got opcode {op}: {payload!r}")
        return payload.decode()

    def recv_close(self):
        """The close code the server sent (reading past data frames)."""
        while True:
            op, payload = self.recv()
            if op == 0x8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005

    def close(self, code=1000):
        try:
            self.send_frame(0x8, struct.pack("!H", code))
        except OSError:
            pass
        self.sock.close()


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def wait_until(pred, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False
