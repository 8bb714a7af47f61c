#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ws-client.py — a small RFC 6455 client for the console tests (Python's standard library only).

    ws-client.py ENDPOINT PATH [options]

ENDPOINT is "unix:/PATH", "http://HOST:PORT" or "https://HOST:PORT" (TLS, the server's
certificate checked against --cacert FILE, default $GPUVIRT_CA). It opens the WebSocket (checking the 101 and its
Sec-WebSocket-Accept), then, in order: --expect-prefix (the first bytes received must be these),
--send (one message per option; \\n and \\r are unescaped), --expect (a regular expression the
received bytes must match), and closes (code 1000), waiting for the server's close. With
--expect-status N the handshake must be refused with HTTP status N instead (the body is printed).
--expect-close CODE waits for the server to close with that code. Exit 0 when every check holds;
1 with the reason on stderr.
"""
import argparse
import base64
import hashlib
import os
import re
import select
import socket
import ssl
import struct
import sys
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def fail(msg):
    sys.stderr.write("ws-client: " + msg + "\n")
    sys.exit(1)


def connect(endpoint, timeout, cafile=None):
    if endpoint.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(endpoint[5:])
        return s, "localhost"
    m = re.fullmatch(r"(https?)://(\[[^\]]+\]|[^:/]+):(\d+)/?", endpoint)
    if not m:
        fail("endpoint '%s' is neither unix:/PATH nor http(s)://HOST:PORT" % endpoint)
    host = m.group(2).strip("[]")
    s = socket.create_connection((host, int(m.group(3))), timeout=timeout)
    if m.group(1) == "https":
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        s = ctx.wrap_socket(s, server_hostname=host)
    return s, "%s:%s" % (m.group(2), m.group(3))


class Conn:
    def __init__(self, sock, extra):
        self.sock = sock
        self.buf = extra
        self.closed_code = None

    def send(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n <= 0xFFFF:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def _need(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            # TLS: bytes already decrypted wait in the socket object, where select cannot see
            pending = self.sock.pending() if isinstance(self.sock, ssl.SSLSocket) else 0
            r, _, _ = select.select([self.sock], [], [], 0 if pending else left)
            if not r and not pending:
                return False
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the server closed the connection without a close frame")
            self.buf += chunk
        return True

    def frame(self, deadline):
        """(opcode, payload) of the next frame, or None at the deadline."""
        if not self._need(2, deadline):
            return None
        b0, b1 = self.buf[0], self.buf[1]
        if b1 & 0x80:
            fail("the server sent a masked frame")
        n = b1 & 0x7F
        off = 2
        if n == 126:
            if not self._need(4, deadline):
                return None
            n = struct.unpack("!H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            if not self._need(10, deadline):
                return None
            n = struct.unpack("!Q", self.buf[2:10])[0]
            off = 10
        if not self._need(off + n, deadline):
            return None
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return b0 & 0x0F, payload


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("endpoint")
    ap.add_argument("path")
    ap.add_argument("--protocol", action="append", default=[])
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--send", action="append", default=[])
    ap.add_argument("--expect")
    ap.add_argument("--expect-prefix")
    ap.add_argument("--expect-status", type=int)
    ap.add_argument("--expect-protocol")
    ap.add_argument("--expect-close", type=int)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--cacert", default=os.environ.get("GPUVIRT_CA") or None)
    ap.add_argument("--output", help="write every byte received here")
    a = ap.parse_args()

    def unescape(s):
        return s.replace("\\n", "\n").replace("\\r", "\r").encode()

    sock, host = connect(a.endpoint, a.timeout, a.cacert)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET %s HTTP/1.1" % a.path, "Host: " + host, "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
    if a.protocol:
        lines.append("Sec-WebSocket-Protocol: " + ", ".join(a.protocol))
    lines += a.header
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    deadline = time.monotonic() + a.timeout
    while b"\r\n\r\n" not in head:
        if time.monotonic() > deadline:
            fail("no answer to the upgrade request")
        chunk = sock.recv(65536)
        if not chunk:
            break
        head += chunk
    if b"\r\n\r\n" not in head:
        fail("the server closed before answering: %r" % head[:200])
    head, extra = head.split(b"\r\n\r\n", 1)
    status_line, *hdrs = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    headers = {}
    for h in hdrs:
        k, _, v = h.partition(":")
        headers[k.strip().lower()] = v.strip()
    if a.expect_status is not None:
        body = extra
        n = int(headers.get("content-length", "0"))
        sock.settimeout(a.timeout)
        while len(body) < n:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        sys.stdout.write(body.decode("utf-8", "replace") + "\n")
        if status != a.expect_status:
            fail("status %d, want %d" % (status, a.expect_status))
        return
    if status != 101:
        fail("status %d, not 101: %s" % (status, extra.decode("utf-8", "replace")[:500]))
    want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
    if headers.get("sec-websocket-accept") != want:
        fail("Sec-WebSocket-Accept %r, want %r" % (headers.get("sec-websocket-accept"), want))
    if a.expect_protocol is not None and headers.get("sec-websocket-protocol") != a.expect_protocol:
        fail("subprotocol %r, want %r" % (headers.get("sec-websocket-protocol"),
                                          a.expect_protocol))

    c = Conn(sock, extra)
    got = b""
    out = open(a.output, "wb") if a.output else None

    def receive_until(pred, what):
        nonlocal got
        end = time.monotonic() + a.timeout
        while not pred():
            f = c.frame(end)
            if f is None:
                fail("timed out waiting for %s; received %d bytes, last: %r"
                     % (what, len(got), got[-300:]))
            op, payload = f
            if op in (1, 2):
                got += payload
                if out:
                    out.write(payload)
                    out.flush()
            elif op == 8:
                c.closed_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                if not pred():
                    fail("the server closed (%d %r) before %s; received: %r"
                         % (c.closed_code, payload[2:].decode("utf-8", "replace"), what,
                            got[-300:]))
                return
            elif op == 9:
                c.send(10, payload)

    if a.expect_prefix is not None:
        prefix = unescape(a.expect_prefix)
        receive_until(lambda: len(got) >= len(prefix), "%r" % prefix)
        if not got.startswith(prefix):
            fail("the first bytes are %r, want %r" % (got[:len(prefix)], prefix))
    for s in a.send:
        c.send(1, unescape(s))
    if a.expect is not None:
        rx = re.compile(a.expect.encode(), re.M)
        receive_until(lambda: rx.search(got.replace(b"\r", b"")) is not None,
                      "/%s/" % a.expect)
    if a.expect_close is not None:
        receive_until(lambda: c.closed_code is not None, "the server's close")
        if c.closed_code != a.expect_close:
            fail("close code %d, want %d" % (c.closed_code, a.expect_close))
        return
    if c.closed_code is None:
        c.send(8, struct.pack("!H", 1000))
        receive_until(lambda: c.closed_code is not None, "the answer to our close")
    print("ok: %d bytes received, close %s" % (len(got), c.closed_code))


if __name__ == "__main__":
    main()
