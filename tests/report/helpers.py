"""Checks shared by the report tests: external URLs in HTML, headless Chromium screenshots."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

EXTERNAL = re.compile(r"https?://|//cdn|src=\"http|src='http|url\(\s*['\"]?(?:https?:)?//", re.IGNORECASE)


def external_urls(html: str) -> list[str]:
    """Every external-URL-looking string in a page (must be empty for a self-contained report)."""
    return [m.group(0) for m in EXTERNAL.finditer(html)]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def screenshot(html: Path, png: Path, cwd: Path) -> np.ndarray:
    """Render ``html`` in headless Chromium (1280x2000) and return the screenshot as an RGB(A) array."""
    import matplotlib.image as mpimg

    exe = chromium()
    assert exe, "chromium not installed: run scripts/test.sh as root or `apt-get install -y chromium`"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--screenshot={png}",
           "--window-size=1280,2000", html.resolve().as_uri()]
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and png.is_file(), f"chromium failed ({done.returncode}): {done.stderr[-2000:]}"
    return mpimg.imread(png)
