#!/usr/bin/env python3
"""carrel-serve end to end over loopback: HTTP calls, WebSocket chat, hibernated
rooms waking on one message, malformed input, limits, SIGTERM draining.

Usage: serve_test.py CARREL_SERVE_BINARY   (exit 0 when every check passes)"""
import json
import shutil
import socket
import sys
import tempfile
import time
import traceback

from wsclient import (TIMEOUT, WebSocket, http, start_server, stop_server, wait_until)

BINARY = sys.argv[1]
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def healthy(port):
    """Whether GET /healthz answers 200 (a refused socket is just not yet)."""
    try:
        return http(port, "GET", "/healthz")[0] == 200
    except OSError:
        return False


def stats(port):
    return json.loads(http(port, "GET", "/stats")[2])


@test
def post_returns_the_reply_after_the_commit(port):
    status, _, body = http(port, "POST", "/objects/Chat/http-room/post", "alice|hello")
    assert status == 200 and body == b"1", (status, body)
    status, _, body = http(port, "POST", "/objects/Chat/http-room/recent")
    assert status == 200 and body == b"1|alice|hello\n", (status, body)


@test
def errors_are_json_with_code_and_message(port):
    cases = [("POST", "/objects/Chat/r/nope", 400, "InvalidArgument"),
             ("POST", "/objects/NoSuchClass/x/m", 404, "NotFound"),
             ("GET", "/objects/Chat/r/post", 405, "InvalidArgument"),
             ("POST", "/objects/Chat/r", 400, "InvalidArgument"),
             ("POST", "/objects/Chat/%zz/post", 400, "InvalidArgument"),
             ("GET", "/elsewhere", 404, "NotFound"),
             ("GET", "/objects/Chat/r/ws", 426, "InvalidArgument")]
    for method, path, want, code in cases:
        status, hdrs, body = http(port, method, path)
        assert status == want, (path, status, body)
        err = json.loads(body)["error"]
        assert err["code"] == code and err["message"], (path, err)


@test
def oversized_body_and_headers_are_refused(port):
    # Content-Length over the 1 MiB limit is refused from the header, before the
    # body is read (sending all 2 MiB races the server's close of the socket).
    raw = (b"POST /objects/Chat/r/post HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (2 << 20)) + b"x" * 1024
    status, _, _ = http(port, None, None, raw=raw)
    assert status == 413, status
    status, _, _ = http(port, "GET", "/", headers={"X-Big": "y" * 20000})
    assert status == 431, status


@test
def malformed_requests_get_400_not_a_crash(port):
    for raw in [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x00\xff\x00\xff\r\n\r\n",
                b"POST /objects/Chat/r/post HTTP/1.1\r\nContent-Length: -5\r\n\r\n"]:
        status, _, _ = http(port, None, None, raw=raw)
        assert status == 400, (raw, status)
    assert http(port, "GET", "/healthz")[0] == 200


@test
def chat_frame_reaches_every_socket_of_the_room(port):
    a = WebSocket(port, "/objects/Chat/ws-room/ws")
    b = WebSocket(port, "/objects/Chat/ws-room/ws")
    other = WebSocket(port, "/objects/Chat/elsewhere/ws")
    a.send_text("bob|hi there")
    assert a.recv_text() == "1|bob|hi there"
    assert b.recv_text() == "1|bob|hi there"
    # A post by HTTP reaches the sockets too; the other room hears nothing.
    assert http(port, "POST", "/objects/Chat/ws-room/post", "carol|by http")[0] == 200
    assert b.recv_text() == "2|carol|by http"
    other.sock.settimeout(0.3)
    try:
        other.recv()
        raise AssertionError("a socket of another room got a frame")
    except socket.timeout:
        pass
    for s in (a, b, other):
        s.close()


@test
def malformed_chat_frame_gets_an_error_frame(port):
    a = WebSocket(port, "/objects/Chat/bad-room/ws")
    a.send_text("no separator")
    assert a.recv_text().startswith("error|")
    a.send_frame(0x2, b"\x00\x01")
    assert a.recv_text().startswith("error|")
    a.close()


@test
def protocol_violations_get_a_close_frame(port):
    unmasked = WebSocket(port, "/objects/Chat/proto/ws")
    unmasked.send_frame(0x1, "x|y", mask=False)
    assert unmasked.recv_close() == 1002
    big = WebSocket(port, "/objects/Chat/proto/ws")
    big.send_frame(0x1, "x|" + "y" * (70 * 1024))
    assert big.recv_close() == 1009
    bad_opcode = WebSocket(port, "/objects/Chat/proto/ws")
    bad_opcode.send_frame(0x3, "?")
    assert bad_opcode.recv_close() == 1002
    assert http(port, "GET", "/healthz")[0] == 200


@test
def refused_connection_gets_an_http_error(port):
    try:
        WebSocket(port, "/objects/NoSuchClass/x/ws")
        raise AssertionError("upgrade accepted for an unknown class")
    except ConnectionRefusedError as e:
        assert "404" in str(e), e


@test
def hibernated_room_wakes_on_one_message_and_reaches_idle_sockets(port):
    sockets = [WebSocket(port, "/objects/Chat/sleepy/ws") for _ in range(300)]
    before = stats(port)["evictions"]
    # The room goes idle and is evicted; its sockets stay open.
    assert wait_until(lambda: stats(port)["evictions"] > before), "the room was never evicted"
    sockets[0].send_text("dave|wake up")
    for s in sockets:
        assert s.recv_text() == "1|dave|wake up"
    for s in sockets:
        s.close()


@test
def closed_sockets_leave_the_room(port):
    a = WebSocket(port, "/objects/Chat/leaving/ws")
    b = WebSocket(port, "/objects/Chat/leaving/ws")
    closed_before = stats(port)["connections_closed"]
    b.close()
    assert wait_until(lambda: stats(port)["connections_closed"] > closed_before)
    a.send_text("erin|still here")
    assert a.recv_text() == "1|erin|still here"
    a.close()


def run_limited(tmp):
    """Past --max-connections a socket is closed at once; the server lives on."""
    proc, port = start_server(BINARY, tmp + "/limited", "--max-connections", "4")
    try:
        held = [WebSocket(port, "/objects/Chat/full/ws") for _ in range(4)]
        extra = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            assert extra.recv(100) == b"", "a socket past the limit was served"
        except ConnectionResetError:
            pass  # closed at once, before the request was read
        held[0].close()
        assert wait_until(lambda: healthy(port)), "the server never served again"
        for s in held[1:]:
            s.close()
    finally:
        assert stop_server(proc) == 0


def run_drain(tmp):
    """SIGTERM closes sockets with 1001 after in-flight turns and exits 0;
    a restart reports the lost connections closed to their objects."""
    proc, port = start_server(BINARY, tmp + "/drain")
    a = WebSocket(port, "/objects/Chat/drain/ws")
    a.send_text("fay|before shutdown")
    assert a.recv_text() == "1|fay|before shutdown"
    rc = stop_server(proc)
    assert a.recv_close() == 1001
    assert rc == 0, rc
    proc, port = start_server(BINARY, tmp + "/drain")
    try:
        status, _, body = http(port, "POST", "/objects/Chat/drain/recent")
        assert status == 200 and body == b"1|fay|before shutdown\n", (status, body)
    finally:
        assert stop_server(proc) == 0


def main():
    tmp = tempfile.mkdtemp(prefix="carrel-serve-test-")
    failures = 0
    try:
        proc, port = start_server(BINARY, tmp + "/main", "--idle-timeout-ms", "200")
        try:
            for fn in TESTS:
                t0 = time.monotonic()
                try:
                    fn(port)
                    print(f"ok   {fn.__name__} ({time.monotonic() - t0:.2f} s)")
                except Exception:
                    failures += 1
                    print(f"FAIL {fn.__name__}")
                    traceback.print_exc()
            assert proc.poll() is None, "carrel-serve died"
        finally:
            rc = stop_server(proc)
            if rc != 0:
                failures += 1
                print(f"FAIL carrel-serve exited {rc}: {proc.stderr.read()}")
        for fn in (run_limited, run_drain):
            try:
                fn(tmp)
                print(f"ok   {fn.__name__}")
            except Exception:
                failures += 1
                print(f"FAIL {fn.__name__}")
                traceback.print_exc()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS" if failures == 0 else f"FAILED: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
