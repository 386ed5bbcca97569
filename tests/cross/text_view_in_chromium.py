#!/usr/bin/python3
"""Opens the text page of `attnlens explain --text` (index.html) in headless Chromium and checks that every method
row of every sentence with at least --min-tokens word tokens visibly shades (background alpha >= --alpha) at least
--min-words word tokens (letters; special tokens such as [CLS] and punctuation do not count). What the browser
computes is what a reader sees: before the fix, chefer and grad-rollout shaded [CLS] alone, every word at a few
percent.
  text_view_in_chromium.py [--min-words 2] [--min-tokens 4] [--alpha 0.1] [--expect-rows N] INDEX.html
Exit 0 when every row passes, else 1. Uses report_in_chromium.py's browser (Debian's chromium, python3-websocket)."""
import argparse, json, os, pathlib, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report_in_chromium as rc  # noqa: E402

# Rows are the divs whose first child is the bold method name; each further span is one token.
PROBE = r"""(() => {
  const rows = [];
  for (const div of document.querySelectorAll('div')) {
    const spans = [...div.children].filter(e => e.tagName === 'SPAN');
    if (spans.length < 2 || Number(getComputedStyle(spans[0]).fontWeight) < 600) continue;
    const tokens = spans.slice(1).map(s => {
      const m = getComputedStyle(s).backgroundColor.match(/rgba?\(([^)]*)\)/);
      const p = m ? m[1].split(',').map(Number) : [0, 0, 0, 0];
      return [s.textContent, p.length === 4 ? p[3] : 1];
    });
    rows.push([spans[0].textContent, tokens]);
  }
  return rows;
})()"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("page")
    ap.add_argument("--min-words", type=int, default=2)
    ap.add_argument("--min-tokens", type=int, default=4, help="only sentences with this many word tokens")
    ap.add_argument("--alpha", type=float, default=0.1)
    ap.add_argument("--expect-rows", type=int, default=0, help="fail unless this many method rows are found")
    args = ap.parse_args()
    if rc.websocket is None or not os.access(rc.CHROMIUM, os.X_OK):
        print("FAIL: needs Debian's chromium and python3-websocket", file=sys.stderr)
        return 1
    browser = rc.Browser()
    try:
        deadline = time.monotonic() + rc.PER_FILE_S
        target = browser.send("Target.createTarget", {"url": "about:blank"}, deadline)["targetId"]
        sid = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True}, deadline)["sessionId"]
        browser.send("Page.enable", {}, deadline, sid)
        start = len(browser.events)
        browser.send("Page.navigate", {"url": pathlib.Path(args.page).resolve().as_uri()}, deadline, sid)
        while not any(e.get("sessionId") == sid and e["method"] == "Page.loadEventFired"
                      for e in browser.events[start:]):
            browser.recv(deadline, "Page.loadEventFired")
        res = browser.send("Runtime.evaluate", {"expression": PROBE, "returnByValue": True}, deadline, sid)
        rows = res["result"]["value"]
    finally:
        browser.close()
    failed, checked = 0, 0
    for name, tokens in rows:
        words = [(t, a) for t, a in tokens
                 if any(c.isalpha() for c in t) and not (t.startswith("[") and t.endswith("]"))]
        if len(words) < args.min_tokens:
            continue
        checked += 1
        shaded = [t for t, a in words if a >= args.alpha]
        ok = len(shaded) >= args.min_words
        failed += not ok
        print("%s %-16s shades %d of %d words: %s" % ("ok  " if ok else "FAIL", name, len(shaded), len(words),
                                                       json.dumps([[t, round(a, 3)] for t, a in tokens])[:300]))
    if args.expect_rows and checked != args.expect_rows:
        print("FAIL: %d method rows checked, expected %d" % (checked, args.expect_rows))
        return 1
    if checked == 0:
        print("FAIL: no method rows found")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
