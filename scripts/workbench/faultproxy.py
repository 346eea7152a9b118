"""A TCP proxy on 127.0.0.1 that injects network faults between the real uploader and the
real central server. Written here because no ready-made fault proxy is installable from
the registries this project uses; it is only a byte pipe with a per-connection mode.

The client is expected to send ``Connection: close`` so that each request has its own
connection and so its own fault. Modes:

- ``pass``: forward both ways.
- ``reset``: close the client connection at once (connection refused/reset).
- ``error503``: answer 503 with Retry-After: 0 without forwarding.
- ``stall``: read the request, never answer (the client's timeout fires).
- ``drop_answer``: forward the request, let the server answer (it has stored the batch),
  then close the client connection without the answer.
- ``late_answer``: as drop_answer, but send the answer after the client gave up.
- ``tamper``: forward, and flip one character of the answer's bundle (its freshness payload).
- ``html400``, ``html403``, ``html404``, ``html413``, ``html502``: answer as a misconfigured
  proxy or captive portal would, with an HTML page and no protocol error code.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter


class FaultProxy:
    def __init__(
        self,
        upstream_port: int,
        *,
        faults: dict[str, float] | None = None,
        seed: int = 1,
        stall_s: float = 3.0,
    ):
        self.upstream_port = upstream_port
        self.faults = faults or {}
        self.rng = random.Random(seed)
        self.stall_s = stall_s
        self.counts: Counter = Counter()
        self.forced: list[str] = []  # modes to use next, before random ones
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._sock.close()

    def _mode(self) -> str:
        with self._lock:
            if self.forced:
                return self.forced.pop(0)
            r = self.rng.random()
            for mode, p in self.faults.items():
                if r < p:
                    return mode
                r -= p
            return "pass"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            mode = self._mode()
            with self._lock:
                self.counts[mode] += 1
            threading.Thread(target=self._handle, args=(client, mode), daemon=True).start()

    @staticmethod
    def _read_request(sock: socket.socket) -> bytes:
        """One HTTP request: headers, then Content-Length bytes of body."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body

    def _upstream(self, request: bytes) -> bytes | None:
        try:
            with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30) as up:
                up.sendall(request)
                chunks = []
                while chunk := up.recv(65536):
                    chunks.append(chunk)
                return b"".join(chunks)
        except OSError:  # the server is down (killed, restarting)
            return None

    def _handle(self, client: socket.socket, mode: str) -> None:
        try:
            client.settimeout(30)
            if mode == "reset":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                return
            request = self._read_request(client)
            if mode == "error503":
                client.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\n"
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                return
            if mode.startswith("html"):
                status = int(mode[4:])
                page = (f"<html><body><h1>{status} Bad Request</h1><hr>nginx</body></html>").encode()
                client.sendall(
                    f"HTTP/1.1 {status} Proxy Says No\r\nContent-Type: text/html\r\n"
                    f"Content-Length: {len(page)}\r\nConnection: close\r\n\r\n".encode()
                    + page
                )
                return
            if mode == "stall":
                time.sleep(self.stall_s)
                return
            answer = self._upstream(request)
            if answer is None or mode == "drop_answer":
                return
            if mode == "late_answer":
                time.sleep(self.stall_s)
            if mode == "tamper":
                answer = _tamper(answer)
            client.sendall(answer)
        except OSError:
            pass
        finally:
            client.close()


def _tamper(answer: bytes) -> bytes:
    """Flip one character of a bundle's last signed part (its freshness payload, escaped in
    the bundle's JSON), through a gzip body if there is one, as a meddler on the path would."""
    import gzip

    head, sep, body = answer.partition(b"\r\n\r\n")
    zipped = b"content-encoding: gzip" in head.lower()
    data = gzip.decompress(body) if zipped else body
    needle = b'\\"payload\\": \\"'
    i = data.rfind(needle)
    if i < 0:
        return answer
    j = i + len(needle) + 40
    data = data[:j] + (b"B" if data[j : j + 1] != b"B" else b"C") + data[j + 1 :]
    body = gzip.compress(data) if zipped else data
    lines = [x for x in head.split(b"\r\n") if not x.lower().startswith(b"content-length:")]
    return b"\r\n".join(lines) + f"\r\nContent-Length: {len(body)}".encode() + sep + body
