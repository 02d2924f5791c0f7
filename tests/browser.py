"""A tiny headless-Chromium driver for tests, speaking the Chrome DevTools Protocol over `--remote-debugging-pipe`.

No selenium, no websocket library: Chromium reads NUL-terminated JSON commands on fd 3 and writes replies and events
on fd 4. Only the standard library is used.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM_PACKAGE = "chromium"  # Debian package providing /usr/bin/chromium
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe",
]


class CDPError(RuntimeError):
    """A CDP command failed, timed out, or the browser went away."""


def find_chromium() -> str | None:
    """Path of a Chromium binary: $REPSCOPE_CHROMIUM, /usr/bin/chromium, or chromium/chromium-browser on PATH."""
    env = os.environ.get("REPSCOPE_CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for cand in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


class Chromium:
    """One headless Chromium process driven over a CDP pipe. Use as a context manager."""

    def __init__(self, binary: str, user_data_dir: str | os.PathLike, width: int = 1280, height: int = 900):
        self.events: list[dict[str, Any]] = []
        self._next_id = 0
        self._buf = b""
        cmd_r, self._cmd_w = os.pipe()  # we write commands → Chromium's fd 3
        self._out_r, out_w = os.pipe()  # Chromium's fd 4 → we read

        def _child_fds() -> None:  # move the pipe ends to fds 3 and 4 without clobbering each other
            a = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(out_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.log_path = Path(user_data_dir) / "chromium-stderr.log"
        Path(user_data_dir).mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in close()
        args = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", f"--window-size={width},{height}",
                "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=_child_fds, close_fds=False)
        os.close(cmd_r)
        os.close(out_w)

    # -- transport -------------------------------------------------------------------------------------------------
    def _read_message(self, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._out_r], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._out_r, 1 << 20)
            if not chunk:
                raise CDPError(f"chromium closed the DevTools pipe (exit {self.proc.poll()}); see {self.log_path}")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile go to `self.events`."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(max(0.0, deadline - time.monotonic()))
            if reply is None:
                raise CDPError(f"no reply to {method} within {timeout:.0f} s")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CDPError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def pump(self, seconds: float) -> None:
        """Collect events for `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            msg = self._read_message(left)
            if msg is not None:
                self.events.append(msg)

    def wait_event(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait for (or find an already received) event named `method`."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for ev in self.events[seen:]:
                if ev.get("method") == method:
                    return ev
            seen = len(self.events)
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError(f"event {method} did not arrive within {timeout:.0f} s")
            msg = self._read_message(left)
            if msg is not None:
                self.events.append(msg)

    def new_page(self) -> str:
        """Open a blank tab and attach to it; returns the CDP session id."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        return self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def evaluate(self, expression: str, session: str, timeout: float = 30.0) -> Any:
        """Evaluate a JS expression in the page and return its JSON value."""
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True},
                        session=session, timeout=timeout)
        if "exceptionDetails" in res:
            raise CDPError(f"JS error evaluating {expression!r}: {res['exceptionDetails'].get('text')}")
        return res["result"].get("value")

    # -- lifetime --------------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Ask the browser to exit, then make sure it did."""
        try:
            if self.proc.poll() is None:
                self.call("Browser.close", timeout=5)
        except (CDPError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for fd in (self._cmd_w, self._out_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; raises ValueError if `data` is not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    return struct.unpack(">II", data[16:24])
