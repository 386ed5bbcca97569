#!/usr/bin/python3
"""Opens attnlens HTML reports in headless Chromium (over the DevTools protocol) and checks that they render.

The C++ tests check the markup; only a browser tells whether the page's own Content-Security-Policy lets its data:
images and inline SVG/CSS through and whether every image decodes. Per file: no console errors, exceptions or error
log entries (CSP violations and failed loads land there); every <img> loaded; at least --min-images <img> and
--min-svg inline <svg>, each with a non-empty box; a non-empty title; a full-page screenshot of more than one colour.
  report_in_chromium.py [--min-images N] [--min-svg M] [--screenshot OUT.png] FILE.html...
  report_in_chromium.py --self-test   # proves the checks fail on a broken image, a CSP-blocked image, a blank page
Exit 0 when all pass, else 1. Needs Debian's chromium and python3-websocket; a missing one fails (CI must not skip).
"""
import argparse, base64, contextlib, json, os, pathlib, shutil, signal, struct, subprocess, sys, tempfile, threading, \
    time, zlib

CHROMIUM = "/usr/bin/chromium"
PER_FILE_S = 60.0  # everything for one file: open the tab, load, evaluate, screenshot
START_S = 30.0     # Chromium's start-up, until it prints its DevTools address
try:
    import websocket  # Debian package python3-websocket (websocket-client)
except ImportError:
    websocket = None


class Fail(Exception):
    pass


class Browser:
    """One headless Chromium for the whole run (a fresh tab per file), driven over one flat browser websocket."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="attnlens-chromium-")
        self.stderr, self.events, self.next_id, self.ws, self.proc, self.url = [], [], 0, None, None, None
        try:
            # A session of its own, so that close() can kill the renderer/GPU/zygote children with the browser.
            self.proc = subprocess.Popen(
                [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
                 "--user-data-dir=" + self.profile, "--no-first-run", "--hide-scrollbars", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
            done = threading.Event()

            def pump():  # drains stderr (a full pipe would stall Chromium) and spots the DevTools address
                for raw in self.proc.stderr:
                    self.stderr.append(raw.decode(errors="replace").rstrip())
                    if self.stderr[-1].startswith("DevTools listening on ws://"):
                        self.url = self.stderr[-1].split()[-1]
                        done.set()
                done.set()  # end of stderr: Chromium has exited
            threading.Thread(target=pump, daemon=True).start()
            if not done.wait(START_S) or not self.url:
                raise Fail("Chromium did not print 'DevTools listening on ws://...' within %g s; stderr:\n  %s"
                           % (START_S, "\n  ".join(self.stderr[-15:])))
            # Chromium refuses websocket handshakes with an Origin header unless --remote-allow-origins allows it.
            self.ws = websocket.create_connection(self.url, timeout=START_S, suppress_origin=True)
        except BaseException:
            self.close()
            raise

    def recv(self, deadline, what, message=None):
        """Sends MESSAGE if given, then returns the next message; events are also kept for the error scan."""
        try:
            if message:
                self.ws.send(json.dumps(message))
            self.ws.settimeout(max(0.001, deadline - time.monotonic()))
            msg = json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            raise Fail("timed out (%g s per file) waiting for %s" % (PER_FILE_S, what)) from None
        except (websocket.WebSocketException, OSError) as e:
            raise Fail("lost the DevTools connection (did Chromium crash?) waiting for %s: %s" % (what, e)) from None
        self.events += [msg] if "method" in msg else []
        return msg

    def send(self, method, params, deadline, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        reply = self.recv(deadline, "the reply to " + method, msg)
        while reply.get("id") != self.next_id:  # skips events and replies to earlier, timed-out commands
            reply = self.recv(deadline, "the reply to " + method)
        if "error" in reply:
            raise Fail("%s failed: %s" % (method, reply["error"].get("message")))
        return reply.get("result", {})

    def close(self):
        with contextlib.suppress(Exception):
            self.ws and self.ws.close()
        if self.proc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # the process group we started, nothing else
            self.proc.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)


def png_problem(data):
    """None when DATA is a PNG with a positive size and at least two colours, else what is wrong with it.
    Decodes for real (zlib + the five PNG row filters): comparing filtered rows would be fooled by filter choice."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return "the screenshot is not a PNG"
    pos, idat, hdr = 8, [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", data[pos + 8:pos + 21])
        elif kind == b"IDAT":
            idat.append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    w, h, depth, ctype, _, _, interlace = hdr or (0,) * 7
    if not (w and h):
        return "the screenshot has no IHDR or a zero size: %r" % (hdr,)
    if depth != 8 or interlace or ctype not in (0, 2, 4, 6):  # Chromium writes 8-bit, non-interlaced gray/RGB(A)
        return "unexpected PNG format (depth %d, colour type %d, interlace %d)" % (depth, ctype, interlace)
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    stride, raw = w * bpp, zlib.decompress(b"".join(idat))
    if len(raw) != h * (stride + 1):
        return "the screenshot's pixel data has %d bytes, not %d" % (len(raw), h * (stride + 1))
    prev, first = bytearray(stride), None
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 2 and not any(line):
            line = bytearray(prev)  # fast path: "same as the row above", common in flat areas
        elif f in (1, 2, 3, 4):  # Sub, Up, Average, Paeth: add the predictor from the left/upper bytes
            for i in range(stride):
                a, b, c = (line[i - bpp] if i >= bpp else 0), prev[i], (prev[i - bpp] if i >= bpp else 0)
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)  # Paeth: distances of a+b-c to a, b, c
                pred = (a, b, (a + b) >> 1, a if pa <= pb and pa <= pc else b if pb <= pc else c)[f - 1]
                line[i] = (line[i] + pred) & 255
        elif f != 0:
            return "bad PNG filter type %d in row %d" % (f, y)
        first = first or bytes(line[:bpp])
        if line != first * w:
            return None  # a second colour: something was drawn (stops early, so big pages stay fast)
        prev = line
    return "the %dx%d screenshot is a single colour (blank page)" % (w, h)


# Outermost <svg> only: a nested one may legitimately have no box of its own.
PROBE = """(() => ({
  title: document.title,
  images: Array.from(document.images).map(i => [i.complete, i.naturalWidth, (i.src || '').slice(0, 40)]),
  svgs: Array.from(document.querySelectorAll('svg')).filter(s => !s.parentElement.closest('svg'))
        .map(s => { const r = s.getBoundingClientRect(); return [r.width, r.height, s.outerHTML.slice(0, 40)]; })
}))()"""


def check_file(browser, path, min_images=0, min_svg=0, screenshot=None):
    """The failures ("kind: message") of one HTML file; empty when it passes."""
    if not os.path.isfile(path):
        return ["file: %s does not exist" % path]
    deadline, fails, b = time.monotonic() + PER_FILE_S, [], browser
    target = b.send("Target.createTarget", {"url": "about:blank"}, deadline)["targetId"]
    try:
        sid = b.send("Target.attachToTarget", {"targetId": target, "flatten": True}, deadline)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            b.send(domain + ".enable", {}, deadline, sid)
        # A fixed desktop width, so that layout and screenshot do not depend on Chromium's default window.
        b.send("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 800, "deviceScaleFactor": 1,
                                                      "mobile": False}, deadline, sid)
        start = len(b.events)
        nav = b.send("Page.navigate", {"url": pathlib.Path(path).resolve().as_uri()}, deadline, sid)
        if nav.get("errorText"):
            return ["load: navigation failed: " + nav["errorText"]]
        while not any(e.get("sessionId") == sid and e["method"] == "Page.loadEventFired" for e in b.events[start:]):
            b.recv(deadline, "Page.loadEventFired")
        # Two animation frames: layout and paint are done and late console/log events have come in.
        b.send("Runtime.evaluate", {"expression": "new Promise(r => requestAnimationFrame(() => "
                                    "requestAnimationFrame(r)))", "awaitPromise": True}, deadline, sid)
        res = b.send("Runtime.evaluate", {"expression": PROBE, "returnByValue": True}, deadline, sid)
        if "exceptionDetails" in res:
            return ["probe: " + json.dumps(res["exceptionDetails"])[:300]]
        page = res["result"]["value"]
        fails += ["title: document.title is empty"] if not page["title"].strip() else []
        fails += ["img: image %d not loaded (complete=%s, naturalWidth=%d, src=%s...)" % (i, done, w, src)
                  for i, (done, w, src) in enumerate(page["images"]) if not (done and w > 0)]
        fails += ["svg: inline svg %d has an empty box %gx%g (%s...)" % (i, w, h, head)
                  for i, (w, h, head) in enumerate(page["svgs"]) if not (w > 0 and h > 0)]
        fails += ["%s: %d <%s> elements, expected at least %d" % (kind, n, kind, least) for kind, n, least in
                  (("img", len(page["images"]), min_images), ("svg", len(page["svgs"]), min_svg)) if n < least]
        # Full page: clip to the CSS content size (at most 16000 px tall) and render beyond the 1280x800 viewport.
        size = b.send("Page.getLayoutMetrics", {}, deadline, sid)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": max(1, size["width"]), "height": max(1, min(size["height"], 16000)),
                "scale": 1}
        shot = base64.b64decode(b.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                                "clip": clip}, deadline, sid)["data"])
        if screenshot:
            pathlib.Path(screenshot).write_bytes(shot)
        problem = png_problem(shot)
        fails += ["screenshot: " + problem] if problem else []
        for e in (e for e in b.events[start:] if e.get("sessionId") == sid):  # each error fails the page
            p, m = e.get("params", {}), e["method"]
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                fails.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
            elif m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                fails.append("exception: " + d.get("exception", {}).get("description", d.get("text", "")))
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":  # CSP violations, failed loads
                fails.append("console: [%(source)s] %(text)s " % p["entry"] + p["entry"].get("url", ""))
    finally:
        with contextlib.suppress(Fail):  # a deadline of its own: the tab must go even when the file timed out
            b.send("Target.closeTarget", {"targetId": target}, time.monotonic() + 5)
    return fails


def self_test(browser):
    """Good page must pass; broken image, CSP-blocked image and blank page must fail the matching check."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    # A valid 2x2 RGB PNG made here, so that the good page's image is known to decode.
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)) +
           chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00\x00\x00\xff" * 2)) + chunk(b"IEND", b""))
    img = '<img src="data:image/png;base64,%s" width="40">'
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="60"><rect width="120" height="60"/></svg>'
    csp = "<meta http-equiv=\"Content-Security-Policy\" content=\"%s\">"
    page_csp = csp % "default-src 'none'; img-src data:; style-src 'unsafe-inline'"  # what viz/html.cpp writes
    page = "<!DOCTYPE html><html><head>%s<title>%s</title></head><body><h1>%s</h1>%s</body></html>"
    cases = [  # name, markup, the failure kinds of which one must show up (none: the page must pass)
        ("good", page % (page_csp, "good", "good", img % base64.b64encode(png).decode() + svg), ()),
        ("broken-image", page % (page_csp, "broken", "broken", img % base64.b64encode(b"garbage!" * 8).decode()),
         ("img",)),
        ("csp-blocked-image", page % (csp % "default-src 'none'", "csp", "csp",
                                      '<img src="http://127.0.0.1:9/x.png">'), ("console", "img")),
        ("blank-page", page % (page_csp, "blank", "", ""), ("screenshot",)),
    ]
    tmp, ok = tempfile.mkdtemp(prefix="attnlens-selftest-"), True
    try:
        for name, markup, expect in cases:
            path = os.path.join(tmp, name + ".html")
            pathlib.Path(path).write_text(markup)
            fails = check_file(browser, path, *((1, 1) if name == "good" else (0, 0)))
            right = bool({f.split(":")[0] for f in fails} & set(expect)) if expect else not fails
            ok &= right
            print("self-test %-18s %s: %s" % (name, "ok" if right else "WRONG", "; ".join(fails) or "passed"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", metavar="FILE.html")
    ap.add_argument("--min-images", type=int, default=0, help="fail with fewer <img> elements")
    ap.add_argument("--min-svg", type=int, default=0, help="fail with fewer inline <svg> elements")
    ap.add_argument("--screenshot", metavar="OUT.png", help="save the screenshot (OUT-<n>.png for several files)")
    ap.add_argument("--self-test", action="store_true", help="prove that the checks can fail")
    args = ap.parse_args()
    if not args.self_test and not args.files:
        ap.error("give FILE.html arguments or --self-test")
    missing = [p for p, ok in (("python3-websocket", websocket), ("chromium", os.access(CHROMIUM, os.X_OK))) if not ok]
    if missing:  # a failure, not a skip: the project's set-up installs both
        print("FAIL: missing Debian package(s): apt-get install " + " ".join(missing), file=sys.stderr)
        return 1
    browser, failed = None, 0
    try:
        browser = Browser()
        if args.self_test:
            ok = self_test(browser)
            print("self-test: " + ("PASS" if ok else "FAIL"))
            return 0 if ok else 1
        for n, path in enumerate(args.files, 1):
            stem, ext = os.path.splitext(args.screenshot or "")  # OUT-<n>.png when there are several files
            shot = args.screenshot if len(args.files) == 1 else args.screenshot and "%s-%d%s" % (stem, n, ext)
            t0 = time.monotonic()
            try:
                fails = check_file(browser, path, args.min_images, args.min_svg, shot)
            except Fail as e:  # a timeout or protocol error fails this file; the others still get checked
                fails = ["devtools: %s" % e]
            failed += bool(fails)
            print("%s %s (%.1f s)" % ("FAIL" if fails else "ok  ", path, time.monotonic() - t0))
            for f in fails:
                print("    " + f)
    except Fail as e:
        print("FAIL: %s" % e, file=sys.stderr)
        return 1
    finally:
        if browser:
            browser.close()  # always: kills Chromium and removes the temporary profile
    print("%d of %d file(s) failed" % (failed, len(args.files)) if failed else "all %d file(s) pass" % len(args.files))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
