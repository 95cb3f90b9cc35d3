"""HTML to PDF with headless Chromium (Debian's `chromium` package).

Why Chromium: the PDF is the very HTML the browser shows (one template, one set of
charts), it runs offline on the edge box, it draws Chinese with the fonts Debian installs
(`fonts-noto-cjk`), and it prints CSS page margin boxes — the station and month at the
top of every page.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from gateway.core.errors import GatewayError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class PdfError(GatewayError):
    """The PDF could not be made: no Chromium, or Chromium failed."""


def find_chromium() -> str:
    override = os.environ.get("STATIONGW_CHROMIUM")
    if override:
        if shutil.which(override) is None:
            raise PdfError(f"STATIONGW_CHROMIUM={override!r} is not an executable")
        return override
    for name in CANDIDATES:
        path = shutil.which(name)
        if path is not None:
            return path
    raise PdfError(
        "PDF output needs headless Chromium, which is not installed: "
        "apt-get install chromium fonts-noto-cjk (or use --format html)"
    )


def html_to_pdf(html: str, timeout_s: float = 120.0) -> bytes:
    """Print `html` to PDF; the page size and margins come from its CSS `@page`."""
    chromium = find_chromium()
    with tempfile.TemporaryDirectory(prefix="stationgw-pdf-") as tmp:
        folder = Path(tmp)
        page = folder / "report.html"
        out = folder / "report.pdf"
        page.write_text(html, encoding="utf-8")
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",  # root on the edge box and in CI; the page is our own file
            "--disable-gpu",
            "--disable-dev-shm-usage",  # containers often give /dev/shm only 64 MB
            "--no-first-run",
            "--disable-extensions",
            "--no-pdf-header-footer",  # our own header is in the page's CSS
            f"--user-data-dir={folder / 'profile'}",
            f"--print-to-pdf={out}",
            page.as_uri(),
        ]
        try:
            done = subprocess.run(
                cmd, capture_output=True, timeout=timeout_s, check=False, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as e:
            raise PdfError(f"{chromium} did not print the PDF within {timeout_s:g} s") from e
        except OSError as e:
            raise PdfError(f"{chromium} could not be started: {e}") from e
        if done.returncode != 0 or not out.exists() or out.stat().st_size == 0:
            tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
            raise PdfError(
                f"{chromium} exited {done.returncode} without a PDF: " + " | ".join(tail)
            )
        return out.read_bytes()
