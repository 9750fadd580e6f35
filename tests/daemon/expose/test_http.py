"""/metrics over HTTP: gzip when the scraper asks for it (Prometheus does), plain text otherwise."""

from __future__ import annotations

import gzip
import urllib.request

from prometheus_client import CollectorRegistry, Counter

from ecswatch.daemon.expose.http import HttpServer


def test_metrics_are_gzipped_for_a_scraper_that_accepts_gzip_and_plain_for_others() -> None:
    """Thousands of services' series go ~10x smaller on the wire; curl without gzip still reads."""
    registry = CollectorRegistry()
    counter = Counter("ecswatch_things", "Things.", ["service"], registry=registry)
    for n in range(500):
        counter.labels(service=f"service-{n}").inc()
    server = HttpServer("127.0.0.1", 0, registry, healthy=lambda: (True, ""),
                        ready=lambda: (True, ""))  # fmt: skip
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as plain:
            text = plain.read()
            assert plain.headers.get("Content-Encoding") is None
        request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=5) as zipped:
            assert zipped.headers["Content-Encoding"] == "gzip"
            body = zipped.read()
    finally:
        server.stop()
    assert b'ecswatch_things_total{service="service-499"} 1.0' in text
    assert len(body) * 5 < len(text)
    assert b'ecswatch_things_total{service="service-499"} 1.0' in gzip.decompress(body)
