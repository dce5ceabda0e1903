"""Serve the static OHIF Viewer build (npm ``@ohif/app`` dist/) with the shipped ``ohif/app-config.js``."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OHIF_VERSION = "3.13.2"
OHIF_DIST = ROOT / "tools" / "node" / "ohif-app" / OHIF_VERSION / "dist"
APP_CONFIG = ROOT / "ohif" / "app-config.js"
SHIPPED_URL = "http://localhost:8080/v2"


class _Handler(SimpleHTTPRequestHandler):
    """Files of dist/, the emulator's app-config.js, and index.html for the app's own routes (/viewer...)."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm", ".js": "text/javascript"}

    def __init__(self, *args: Any, app_config: bytes, **kwargs: Any) -> None:
        self.app_config = app_config
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/app-config.js":
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript")
            self.send_header("Content-Length", str(len(self.app_config)))
            self.end_headers()
            self.wfile.write(self.app_config)
            return
        if not Path(self.translate_path(path)).is_file():
            self.path = "/index.html"  # a client-side route of the single-page app
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@contextmanager
def serve_ohif(emulator_url: str) -> Iterator[str]:
    """Serve OHIF on a free port, configured for the emulator at ``emulator_url``; yields OHIF's URL."""
    config = APP_CONFIG.read_text().replace(SHIPPED_URL, f"{emulator_url}/v2").encode()
    handler = functools.partial(_Handler, directory=str(OHIF_DIST), app_config=config)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
