"""A client that behaves like Go's net/http Transport, as the API server calls a webhook.

It reuses idle keep-alive connections, most recent first; drops one the server closed
while it was idle (Go's read loop sees that EOF before reuse); closes a connection after an
answer that says `Connection: close`; opens a new connection when none is idle; and never
retries a POST once written: an EOF after the request was sent is an admission lost (the
API server would admit that Pod unmutated under failurePolicy Ignore).
"""

import http.client
import select
import socket
import ssl
from collections import Counter


class GoLikeClient:
    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.port, self.context = port, context
        self.idle: list[ssl.SSLSocket] = []
        self.outcomes: Counter[str] = Counter()

    def post(self, body: bytes) -> str:
        """Send one admission; the outcome is answered, lost, or refused (no connection
        could be made, nothing written: another replica's turn in a cluster)."""
        try:
            sock = self._take()
        except OSError:
            return self._count("refused")
        request = (b"POST /mutate?timeout=10s HTTP/1.1\r\nHost: castslice\r\n"
                   b"Content-Type: application/json\r\nContent-Length: "
                   + str(len(body)).encode() + b"\r\n\r\n" + body)
        try:
            sock.sendall(request)
        except OSError:
            sock.close()
            return self._count("refused")  # not written: Go retries on a new connection
        try:
            response = http.client.HTTPResponse(sock)
            response.begin()
            response.read()
        except (OSError, http.client.HTTPException):
            sock.close()
            return self._count("lost")
        if response.status != 200:
            sock.close()
            return self._count(f"http-{response.status}")
        if (response.getheader("Connection") or "").lower() == "close":
            sock.close()
        else:
            self.idle.append(sock)
        return self._count("answered")

    def _take(self) -> ssl.SSLSocket:
        while self.idle:
            sock = self.idle.pop()
            if not select.select([sock], [], [], 0)[0]:
                return sock
            sock.close()  # readable while idle: the server closed it
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return self.context.wrap_socket(raw, server_hostname="127.0.0.1")

    def _count(self, outcome: str) -> str:
        self.outcomes[outcome] += 1
        return outcome

    def close(self) -> None:
        for sock in self.idle:
            sock.close()
