"""TEST-ONLY: InfluxDB 1.8+'s v2 write endpoint in front of an older 1.x server.

InfluxDB 1.8 and later answer `/api/v2/write?bucket=B&org=O&precision=P` natively, as a
compatibility endpoint: the bucket is "database" or "database/retention-policy", the org is
ignored, the token is "username:password", and the precision names ns/us/ms/s stand for
1.x's n/u/ms/s. Debian bookworm ships InfluxDB 1.6, which has no such endpoint, so the
tests of the influxdb-client path put this proxy in front of it and it maps each request
exactly that way to `/write?db=B&rp=…&precision=…`, and passes `/ping` on. It is not part
of the gateway.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PRECISION = {"ns": "n", "us": "u", "ms": "ms", "s": "s"}


class V2Proxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.requests = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                """Quiet: a line per request would bury the test's own output."""

            def do_GET(self) -> None:  # /ping, which 1.x has too
                if urllib.parse.urlsplit(self.path).path != "/ping":
                    self.send_error(404, "only /ping and /api/v2/write here")
                    return
                try:
                    with urllib.request.urlopen(f"{proxy.upstream}/ping", timeout=5) as resp:
                        status = resp.status
                except urllib.error.HTTPError as e:
                    status = e.code
                except OSError:
                    status = 503
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path != "/api/v2/write":
                    self.send_error(404, "only /api/v2/write here")
                    return
                q = urllib.parse.parse_qs(url.query)
                bucket = q.get("bucket", [""])[0]
                db, _, rp = bucket.partition("/")
                params = {"db": db, "precision": PRECISION.get(q.get("precision", ["ns"])[0], "n")}
                if rp:
                    params["rp"] = rp
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Token ") and ":" in auth:
                    user, _, password = auth[6:].partition(":")
                    params |= {"u": user, "p": password}
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    import gzip

                    body = gzip.decompress(body)
                target = f"{proxy.upstream}/write?{urllib.parse.urlencode(params)}"
                proxy.requests += 1
                try:
                    with urllib.request.urlopen(target, body, timeout=30) as resp:
                        status, answer = resp.status, resp.read()
                except urllib.error.HTTPError as e:
                    status, answer = e.code, e.read()
                except OSError as e:  # the 1.x server is down: what a down server looks like
                    status, answer = 503, str(e).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
