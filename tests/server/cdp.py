"""A headless Chromium driven over the Chrome DevTools protocol, on a pipe.

``--remote-debugging-pipe`` makes Chromium read protocol messages from file
descriptor 3 and write to 4, each a JSON document ended by a NUL byte
(https://chromedevtools.github.io/devtools-protocol/): no port, no websocket
library, nothing another local process can connect to.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["Browser", "BrowserError"]

BASH = shutil.which("bash") or "/bin/bash"


class BrowserError(RuntimeError):
    """The browser failed, or answered a command with an error."""


class Browser:
    """One headless Chromium with one page (a flattened target session)."""

    def __init__(self, chromium: str, profile: Path, *, width: int = 1280,
                 height: int = 900) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-dev-shm-usage", "--disable-extensions", "--mute-audio",
                "--disable-background-networking", "--disable-sync", "--no-default-browser-check",
                f"--user-data-dir={profile}", f"--window-size={width},{height}",
                "--remote-debugging-pipe", "about:blank"]
        profile.mkdir(parents=True, exist_ok=True)
        self._log_path = profile / "chromium.log"
        log = open(self._log_path, "wb")  # noqa: SIM115 - closed once the child has it
        # bash (dash takes one-digit descriptors only) puts our pipe ends at the descriptors
        # Chromium expects, then becomes it.
        self.process = subprocess.Popen(
            [BASH, "-c", f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w} '
                              f"{to_browser_r}<&- {from_browser_w}>&-", *args],
            pass_fds=(to_browser_r, from_browser_w), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=log)
        log.close()
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.command("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.command("Target.attachToTarget",
                                    {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime"):
            self.command(f"{domain}.enable", session=True)
        self.command("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": height, "deviceScaleFactor": 1,
                      "mobile": False}, session=True)

    # ------------------------------------------------------------------ the protocol

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("the browser did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise BrowserError("the browser exited: " + self._stderr())
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        document: dict[str, Any] = json.loads(message)
        return document

    def command(self, method: str, params: dict[str, Any] | None = None, *,
                session: bool = False, timeout: float = 30) -> dict[str, Any]:
        """Send one command and wait for its answer (events meanwhile are kept)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method,
                                   "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            if "method" in answer:
                self.events.append(answer)

    # ------------------------------------------------------------------ the page

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.command("Runtime.evaluate", {"expression": expression,
                                                   "returnByValue": True,
                                                   "awaitPromise": True}, session=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def goto(self, url: str, *, ready: str, timeout: float = 20) -> None:
        """Navigate and wait until ``ready`` (a JavaScript expression) is true."""
        self.evaluate("document.body && document.body.setAttribute('data-state', 'stale')")
        self.command("Page.navigate", {"url": url}, session=True)
        self.wait(ready, timeout=timeout)

    def wait(self, condition: str, *, timeout: float = 20) -> None:
        """Poll a JavaScript condition until it holds."""
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"!!({condition})"):
            if time.monotonic() > deadline:
                text = self.evaluate("document.body ? document.body.innerText.slice(0, 500) : ''")
                raise BrowserError(f"timed out waiting for {condition}; the page says: {text}")
            time.sleep(0.05)

    def text(self, selector: str = "body") -> str:
        """The rendered text of the first element ``selector`` matches."""
        value = self.evaluate(f"((e) => e ? (e.innerText ?? e.textContent) : '')"
                              f"(document.querySelector({json.dumps(selector)}))")
        return str(value)

    def count(self, selector: str) -> int:
        """How many elements ``selector`` matches."""
        return int(self.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length"))

    def screenshot(self, path: Path) -> None:
        """Save the whole page (up to 10,000 px tall) as a PNG."""
        metrics = self.command("Page.getLayoutMetrics", session=True)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": max(1, int(size["width"])),
                "height": max(1, min(int(size["height"]), 10000)), "scale": 1}
        shot = self.command("Page.captureScreenshot", {"format": "png", "clip": clip,
                                                       "captureBeyondViewport": True},
                            session=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    # ------------------------------------------------------------------ end

    def _stderr(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def close(self) -> None:
        """Ask the browser to quit; kill it if it does not."""
        with contextlib.suppress(BrowserError, OSError):
            self.command("Browser.close", timeout=5)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
