"""The benchmark's emulator: moto's app behind ecswatch's latency wrapper, served by gunicorn.

    python bench/keepalive.py --port 5000 --delay-ms 20

werkzeug's server (ecswatch.dev.emulator, used by the tests and the demo) closes every connection,
so every request would also pay a TCP handshake that real AWS clients do not pay: they keep
connections alive. gunicorn's threaded worker keeps them alive. One worker process only: moto's
state lives in the process. Falls back to ecswatch.dev.emulator when gunicorn is not installed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ecswatch.dev.emulator import FaultInjector
from ecswatch.dev.emulator import main as werkzeug_main


def serve(port: int, delay_ms: float, threads: int) -> None:
    from gunicorn.app.base import BaseApplication  # noqa: PLC0415 (the bench extra)

    class Emulator(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            settings = {
                "bind": f"127.0.0.1:{port}",
                "workers": 1,
                "worker_class": "gthread",
                "threads": threads,
                "keepalive": 30,
                "loglevel": "warning",
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from moto.moto_server.werkzeug_app import (  # noqa: PLC0415
                DomainDispatcherApplication,
                create_backend_app,
            )

            app = DomainDispatcherApplication(create_backend_app)
            return FaultInjector(app, delay_seconds=delay_ms / 1000)

    Emulator().run()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=96)
    args = parser.parse_args()
    try:
        import gunicorn  # noqa: F401, PLC0415
    except ImportError:
        print("gunicorn not installed: werkzeug without keep-alive", file=sys.stderr)
        return werkzeug_main(["--port", str(args.port), "--delay-ms", str(args.delay_ms)])
    serve(args.port, args.delay_ms, args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
