"""A TLS context that follows certificate files rotated on disk.

cert-manager renews the serving certificate by rewriting the mounted Secret (an atomic
symlink swap). A worker wraps every connection with the one context it was given, so each
handshake checks the files' modification times (two stat calls; handshakes are rare under
keep-alive) and moves the connection to a context built from the new files. In-flight
connections keep the certificate they started with; nothing is restarted.
"""

import os
import ssl
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class _Loaded:
    stamp: tuple[int, int, int, int]
    context: ssl.SSLContext


class ReloadingTLS:
    """Owns the listener's context; `context` is what the server wraps sockets with."""

    def __init__(self, cert_file: str, key_file: str) -> None:
        self.cert_file, self.key_file = cert_file, key_file
        self._loaded = _Loaded(self._stamp(), self._build())
        self.context = self._build()
        self.context.sni_callback = self._on_hello

    def _stamp(self) -> tuple[int, int, int, int]:
        cert, key = os.stat(self.cert_file), os.stat(self.key_file)
        return cert.st_mtime_ns, cert.st_ino, key.st_mtime_ns, key.st_ino

    def _build(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])  # no h2: see docs/operate.md, "HTTP/1.1 only"
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def current(self) -> ssl.SSLContext:
        """The context for the files on disk now; the previous one if they do not load."""
        try:
            stamp = self._stamp()
            if stamp != self._loaded.stamp:
                self._loaded = _Loaded(stamp, self._build())
        except (OSError, ssl.SSLError, ValueError):
            pass  # half-written or mismatched pair: keep serving the last good one
        return self._loaded.context

    def _on_hello(self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None,
                  _listener: ssl.SSLContext) -> None:
        connection.context = self.current()
