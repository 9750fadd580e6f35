"""The HTTP endpoints: /metrics, /healthz, /readyz, on their own threads."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, generate_latest

from ecswatch.daemon.expose import exposition


class HttpServer:
    """Starts before any AWS call so a slow start never fails the container health check."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        *,
        healthy: Callable[[], tuple[bool, str]],
        ready: Callable[[], tuple[bool, str]],
    ) -> None:
        routes: dict[str, Callable[[], tuple[bool, str]]] = {"/healthz": healthy, "/readyz": ready}

        class Handler(BaseHTTPRequestHandler):
            server_version = "ecswatch"

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._metrics()
                elif path in routes:
                    ok, text = routes[path]()
                    self._send(
                        200 if ok else 503, f"{text}\n".encode(), "text/plain; charset=utf-8"
                    )
                else:
                    self._send(404, b"not found: try /metrics, /healthz or /readyz\n", "text/plain")

            def _metrics(self) -> None:
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                parts: Iterable[bytes] = [encoder(registry)]
                if encoder is generate_latest:  # the same text, less CPU (exposition.py)
                    parts = exposition.chunks(registry.collect())
                if "gzip" not in self.headers.get("Accept-Encoding", ""):
                    self._send(200, b"".join(parts), content_type)
                    return
                # Prometheus asks for gzip: thousands of services' series are ~15x smaller on
                # the wire; compressed family by family (level 1: a few ms per MB), so the
                # whole text never sits in memory at once.
                gzipped = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: a gzip stream
                body = b"".join([*(gzipped.compress(part) for part in parts), gzipped.flush()])
                self._send(200, body, content_type, "gzip")

            def _send(
                self, status: int, body: bytes, content_type: str, encoding: str | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                if encoding:
                    self.send_header("Content-Encoding", encoding)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # scrapes and probes every few seconds would drown the logs

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ecswatch-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
