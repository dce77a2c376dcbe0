"""Drives the live view in headless Chromium through the Chrome DevTools Protocol.

Usage: python live_view.py CHROMIUM URL SCREENSHOT.png [MIN_STATIONS]

Starts CHROMIUM headless with --remote-debugging-port=0 and a temporary profile, reads
the port from DevToolsActivePort, opens URL in a new target and waits (at most 90 s)
until the page lists MIN_STATIONS station rows, has received packets, has drawn
trace samples and the helicorder has bins. Then it samples the page's own frame rate
for a few seconds, counts the traces canvas's non-blank pixels, saves a screenshot,
selects every station's traces and samples the frame rate again, and prints one JSON
object with what it saw on stdout. It asserts nothing: the Rust test
(tests/tests/webview.rs) does. The only dependency is the `websockets` package.
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from websockets.sync.client import connect

DEADLINE_S = 90


class Cdp:
    """A browser-level DevTools connection with one flattened page session."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.session = None

    def call(self, method, params=None, session=True, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(method)
            reply = json.loads(self.ws.recv(timeout=left))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def eval(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")


STATE = """(() => {
  const b = document.body;
  const c = document.getElementById('traces');
  let ink = 0;
  if (c && c.width && c.height) {
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) ink++;
  }
  return {
    packets: Number(b.dataset.packets),
    fps: Number(b.dataset.fps),
    draw_ms: Number(b.dataset.drawMs),
    drawn: Number(b.dataset.drawn),
    heli_bins: Number(b.dataset.heliBins),
    stations: [...document.querySelectorAll('tr[data-station]')].map(r => r.dataset.station),
    health: [...document.querySelectorAll('tr[data-station]')].map(r => r.dataset.health || ''),
    rms: [...document.querySelectorAll('tr[data-station] td.rms')].map(td => td.textContent),
    ink_pixels: ink,
    canvas_pixels: c ? c.width * c.height : 0,
    status: document.getElementById('status').textContent,
  };
})()"""


def main():
    chromium, url, shot = sys.argv[1:4]
    min_stations = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    profile = tempfile.mkdtemp(prefix="orb-chromium-")
    proc = subprocess.Popen(
        [
            chromium,
            "--headless=new",
            "--no-sandbox",  # CI containers run as root
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--window-size=1400,1100",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        end = time.monotonic() + 30
        while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
            if time.monotonic() > end or proc.poll() is not None:
                raise RuntimeError("chromium did not write DevToolsActivePort")
            time.sleep(0.05)
        time.sleep(0.1)
        with open(port_file) as f:
            port, path = f.read().split("\n")[:2]
        url_ws = f"ws://127.0.0.1:{port}{path}"
        with connect(url_ws, max_size=64 * 1024 * 1024, open_timeout=30) as ws:
            cdp = Cdp(ws)
            target = cdp.call("Target.createTarget", {"url": "about:blank"}, session=False)
            att = cdp.call(
                "Target.attachToTarget",
                {"targetId": target["targetId"], "flatten": True},
                session=False,
            )
            cdp.session = att["sessionId"]
            cdp.call("Page.enable")
            cdp.call("Runtime.enable")
            cdp.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": 1400, "height": 1100, "deviceScaleFactor": 1, "mobile": False},
            )
            cdp.call("Page.navigate", {"url": url})
            end = time.monotonic() + DEADLINE_S
            state = None
            while time.monotonic() < end:
                try:
                    state = cdp.eval(STATE)
                except RuntimeError:
                    state = None  # the page is still loading
                if (
                    state
                    and len(state["stations"]) >= min_stations
                    and state["packets"] > 0
                    and state["drawn"] > 0
                    and state["heli_bins"] > 0
                    and state["ink_pixels"] > 0
                ):
                    break
                time.sleep(0.25)
            ready = time.monotonic() - (end - DEADLINE_S)
            # The page's own frame rate, sampled while data streams in.
            fps = []
            for _ in range(8):
                time.sleep(0.5)
                fps.append(cdp.eval("Number(document.body.dataset.fps)"))
            state = cdp.eval(STATE)
            png = cdp.call("Page.captureScreenshot", {"format": "png"})
            with open(shot, "wb") as f:
                f.write(base64.b64decode(png["data"]))
            state["fps_samples"] = fps
            # Then every station's traces at once (90 strips), for the worst case.
            cdp.eval(
                "document.querySelectorAll('tr[data-station]:not(.selected)')"
                ".forEach(r => r.click())"
            )
            fps_all = []
            for _ in range(8):
                time.sleep(0.5)
                fps_all.append(cdp.eval("Number(document.body.dataset.fps)"))
            state["fps_all_samples"] = fps_all
            state["drawn_all"] = cdp.eval("Number(document.body.dataset.drawn)")
            state["draw_ms_all"] = cdp.eval("Number(document.body.dataset.drawMs)")
            state["ready_after_s"] = round(ready, 2)
            print(json.dumps(state))
            try:
                cdp.call("Browser.close", session=False, timeout=5)
            except Exception:
                pass
    finally:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
