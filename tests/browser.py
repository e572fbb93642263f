#!/usr/bin/env python3
"""The inbox page in a real browser: Debian's Chromium, headless, driven by Playwright.

Starts the release binary on a fresh database (twice: without and with a read token), seeds messages through
the signed webhooks, and drives the page as a person would: the list, search and filters reflected in the URL,
one message opened with its object as received, the WhatsApp statuses, the chart, the read token, the keyboard,
a phone's width, new arrivals without a reload, and hostile text that must stay text. Every failed check is
listed; the exit status says whether any failed.

SCREENSHOTS=dir also writes the inbox and one message as PNGs there (docs/screenshots for the README).
"""

import hashlib
import hmac
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = ROOT / os.environ.get("BIN", "target/release/webhook-ingest")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = os.environ.get("SCREENSHOTS")
SECRET = "browser-secret"
WHATSAPP_SECRET = "browser-whatsapp-secret"
TOKEN = "browser-read-token"
HOSTILE = ['<script>window.__pwned = "script"</script>', '<img src=x onerror="window.__pwned = \'img\'">']
# As an operator runs it: no network, no first-run work, no sandbox (the tests may run as root).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

failed = []
passed = 0


def check(name, condition, detail=""):
    global passed
    if condition:
        passed += 1
        print(f"browser: ok   {name}")
    else:
        failed.append(name)
        print(f"browser: FAIL {name} {detail}")


class Service:
    """The release binary on a fresh database, its stdout's JSON lines kept."""

    def __init__(self, work, **env):
        self.lines = []
        environment = {"PATH": os.environ["PATH"], "DATABASE_URL": f"sqlite:///{work}/app.db",
                       "LISTEN_ADDR": "127.0.0.1:0", "WEBHOOK_SECRET": SECRET,
                       "WHATSAPP_APP_SECRET": WHATSAPP_SECRET, **env}
        self.process = subprocess.Popen([BIN], env=environment, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True)
        for line in self.process.stdout:
            if json.loads(line).get("msg") == "listening":
                self.url = "http://" + json.loads(line)["addr"]
                break
        else:
            raise RuntimeError("the server exited before listening")
        # Drained all along, or a full pipe would stop the server.
        threading.Thread(target=lambda: self.lines.extend(map(json.loads, self.process.stdout)), daemon=True).start()

    def post(self, path, body, header, signature):
        request = urllib.request.Request(self.url + path, data=body, method="POST",
                                         headers={"Content-Type": "application/json", header: signature})
        with urllib.request.urlopen(request) as response:
            return response.status

    def deliver(self, message):
        body = json.dumps(message).encode()
        return self.post("/webhook", body, "X-Signature", hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest())

    def deliver_whatsapp(self, body):
        signature = "sha256=" + hmac.new(WHATSAPP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return self.post("/webhook/whatsapp", body, "X-Hub-Signature-256", signature)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


def message(n, sender, text, ts=None):
    return {"message_id": f"m{n:03d}", "from": sender, "to": "+14155550100",
            "ts": ts or f"2025-01-15T{9 + n // 60:02d}:{n % 60:02d}:00Z", "text": text}


def seed(service):
    senders = ["+919876543210", "+447700900123", "+15550001111"]
    for n in range(1, 61):
        service.deliver(message(n, senders[n % 3], f"Order {n} is ready" if n % 10 else f"Invoice {n} paid"))
    for n, text in enumerate(HOSTILE, start=61):
        service.deliver(message(n, "+15550009999", text, ts="2025-01-15T08:00:00Z"))
    sample = (ROOT / "scripts/whatsapp-sample.json").read_text().rstrip("\n").encode()
    return service.deliver_whatsapp(sample)


def wait_for(page, expression, timeout=10):
    """Polls `expression` in the page until it is true. (Playwright's own wait_for_function evaluates strings
    inside the page, which the page's Content-Security-Policy rightly refuses.)"""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.evaluate(expression):
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {expression}")


def rows(page):
    return page.locator("#messages a.row")


def without_a_token(browser, service):
    page = browser.new_page()
    problems = []
    # The browser reports every answer that is no 2xx; the page asks for a 404 and a 422 on purpose here.
    expected = ("Failed to load resource: the server responded with a status of 404",
                "Failed to load resource: the server responded with a status of 422")
    page.on("console", lambda m: problems.append(m.text)
            if m.type == "error" and not m.text.startswith(expected) else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: (problems.append(f"dialog {d.message}"), d.dismiss()))
    asked = []
    page.on("request", lambda r: asked.append(r.url))

    response = page.goto(service.url + "/")
    headers = response.headers
    check("GET / is the page, as HTML, revalidated on every load",
          response.status == 200 and headers["content-type"].startswith("text/html")
          and headers["cache-control"] == "no-cache", headers)
    csp = headers.get("content-security-policy", "")
    check("a strict Content-Security-Policy: this host only, no inline code",
          "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp, csp)
    page.wait_for_selector("#messages a.row")
    check("the newest 50 messages are listed, newest first", rows(page).count() == 50
          and rows(page).first.get_attribute("data-id") == "wamid.LOC1", rows(page).first.get_attribute("data-id"))
    check("the total is said", "64 messages" in page.text_content("#summary"), page.text_content("#summary"))
    first_time = page.locator("#messages a.row time").first
    check("times show in the browser's zone with the stored UTC value on hover",
          "2025-01-15T10:01:00Z" in first_time.get_attribute("title"), first_time.get_attribute("title"))

    page.click("text=Older")
    wait_for(page, "document.querySelector('#page-of').textContent.startsWith('Page 2')")
    check("older messages page by page", rows(page).count() == 14 and "page=1" in page.url, page.url)
    for text in HOSTILE:
        check(f"hostile text is shown as text: {text[:20]}…",
              page.locator("#messages .text", has_text=text).count() == 1)
    check("hostile text ran nothing", page.evaluate("window.__pwned === undefined"))
    page.click("text=Newer")
    wait_for(page, "document.querySelector('#page-of').textContent.startsWith('Page 1')")

    page.fill("#q", "invoice")
    page.press("#q", "Enter")
    wait_for(page, "document.querySelector('#summary').textContent.includes('match')")
    check("a search is in the URL under the API's name", "q=invoice" in page.url, page.url)
    check("a search lists its matches and their number", rows(page).count() == 6
          and "6 messages match" in page.text_content("#summary"), page.text_content("#summary"))
    page.goto(service.url + "/?q=invoice&from=%2B919876543210")
    page.wait_for_selector("#messages a.row")
    check("a shared view reloads with its filters", page.input_value("#from") == "+919876543210"
          and rows(page).count() == 2, rows(page).count())
    page.goto(service.url + "/?since=2025-01-15T09:55:00Z")
    page.wait_for_selector("#messages a.row")
    check("since filters by time", rows(page).count() == 8, rows(page).count())
    page.goto(service.url + "/?q=nothing-like-this")
    page.wait_for_selector("#messages .empty")
    check("no match is said in words", "No message matches" in page.text_content("#messages"))
    page.goto(service.url + "/?since=yesterday")
    page.wait_for_selector("#error:not([hidden])")
    check("a refused filter is said in words", "since" in page.text_content("#error"), page.text_content("#error"))

    # The keyboard alone: / to search, arrows through the list, Enter to open, Escape to go back.
    page.goto(service.url + "/")
    page.wait_for_selector("#messages a.row")
    page.keyboard.press("/")
    check("/ focuses the search", page.evaluate("document.activeElement.id") == "q")
    page.keyboard.press("Escape")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    check("arrows move through the list", page.evaluate("document.activeElement.dataset.id") == "wamid.IMG1")
    page.keyboard.press("Enter")
    page.wait_for_selector("#message:not([hidden]) #raw:not(:empty)")
    raw = json.loads(page.text_content("#raw"))
    check("a message opens with its object as received, pretty-printed",
          raw["image"]["caption"] == "The new shop front" and "\n  " in page.text_content("#raw"), raw)
    fields = page.text_content("#fields")
    check("every field and the type are shown", all(v in fields for v in
          ["wamid.IMG1", "+16315551234", "+15550001234", "image", "The new shop front"]), fields)
    check("WhatsApp's contact and metadata are shown", "Kerry Fisher" in page.text_content("#received-parts"))
    check("the URL names the message", "message=wamid.IMG1" in page.url, page.url)
    page.click("#copy-raw")
    wait_for(page, "document.querySelector('#copied').textContent !== ''")
    check("the object as received can be copied", page.text_content("#copied") in
          ("Copied.", "Selected: press Ctrl+C (or Cmd+C) to copy."), page.text_content("#copied"))
    page.keyboard.press("Escape")
    page.wait_for_selector("#inbox:not([hidden])")
    check("Escape goes back to the list", "message=" not in page.url, page.url)

    if SCREENSHOTS:
        page.set_viewport_size({"width": 1100, "height": 820})
        page.screenshot(path=f"{SCREENSHOTS}/inbox.png")
        page.goto(service.url + "/?message=wamid.IMG1")
        page.wait_for_selector("#raw:not(:empty)")
        page.screenshot(path=f"{SCREENSHOTS}/message.png", full_page=True)

    page.goto(service.url + "/?message=" + "m062")
    page.wait_for_selector("#raw:not(:empty)")
    check("a hostile message opened is text too", HOSTILE[1] in page.text_content("#fields")
          and page.evaluate("window.__pwned === undefined"))
    page.goto(service.url + "/?message=unknown-id")
    page.wait_for_selector("#fields dd")
    check("an unknown id is said in words", "No message is stored" in page.text_content("#fields"))

    page.click("nav >> text=Statuses")
    page.wait_for_selector("#timelines .timeline")
    timelines = page.text_content("#timelines")
    check("statuses in a timeline per sent message", page.locator("#timelines .timeline").count() == 2
          and page.locator(".timeline", has_text="wamid.OUT1").locator(".step").count() == 2, timelines)
    check("sent before delivered", timelines.index("sent") < timelines.index("delivered"), timelines)
    check("a failure with its code and title", "131047 Re-engagement message" in timelines, timelines)

    page.click("nav >> text=Stats")
    page.wait_for_selector("#chart svg")
    check("the stats' totals", "64" in page.text_content("#totals") and "5" in page.text_content("#totals"))
    check("messages per sender drawn as bars", page.locator("#chart svg rect").count() == 5)
    check("statuses counted by status", "failed" in page.text_content("#status-counts"))

    # New arrivals appear without a reload.
    page.goto(service.url + "/")
    page.wait_for_selector("#messages a.row")
    service.deliver(message(99, "+15550002222", "Arrived while watching", ts="2026-01-01T00:00:00Z"))
    wait_for(page, "document.querySelector('#messages a.row').dataset.id === 'm099'", timeout=15)
    check("a new message appears without a reload", True)

    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(service.url + "/")
    page.wait_for_selector("#messages a.row")
    width = page.evaluate("document.documentElement.scrollWidth")
    check("it fits a phone's width", width <= 360, f"{width} px wide")

    reads = [u for u in asked if "/messages?" in u or "/statuses?" in u]
    limits = [int(u.split("limit=")[1].split("&")[0]) for u in reads if "limit=" in u]
    check("it never asks for more than a page at a time", reads and len(limits) == len(reads) and max(limits) <= 50,
          reads[:5])
    check("no script error, no CSP violation, no dialog", not problems, problems)
    page_lines = [l for l in service.lines if l.get("msg") == "request" and l.get("path") in ("/", "/ui/inbox.js")]
    check("the page's requests are logged like any other", len(page_lines) >= 2)


def with_a_token(browser, service):
    page = browser.new_page()
    page.goto(service.url + "/")
    page.wait_for_selector("#token-form:not([hidden])")
    check("with a read token set, the page asks for it", "read token" in page.text_content("#token-reason"))
    page.fill("#token", "wrong")
    page.press("#token", "Enter")
    wait_for(page, "document.querySelector('#token-reason').textContent.includes('refused')")
    check("a wrong token is said to be wrong", not page.is_hidden("#token-form"))
    page.fill("#token", TOKEN)
    page.press("#token", "Enter")
    page.wait_for_selector("#messages a.row")
    check("the right token shows the messages", rows(page).count() == 50)
    page.goto(service.url + "/?q=order")
    page.wait_for_selector("#messages a.row")
    check("the token is asked once per tab", page.is_hidden("#token-form"))
    check("the token is in no URL and not in localStorage", TOKEN not in page.url
          and page.evaluate("localStorage.length") == 0 and page.evaluate("sessionStorage.length") == 1)
    other_tab = browser.new_context().new_page()
    other_tab.goto(service.url + "/")
    other_tab.wait_for_selector("#token-form:not([hidden])")
    check("another tab asks again", True)


def main():
    if SCREENSHOTS:
        pathlib.Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as open_work, tempfile.TemporaryDirectory() as guarded_work, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        print(f"browser: {CHROMIUM} {browser.version}")
        service = Service(open_work)
        try:
            check("seeding 64 messages and a WhatsApp delivery", seed(service) == 200)
            without_a_token(browser, service)
        finally:
            service.stop()
        guarded = Service(guarded_work, READ_API_TOKEN=TOKEN)
        try:
            seed(guarded)
            with_a_token(browser, guarded)
        finally:
            guarded.stop()
        browser.close()
    print(f"browser: {passed} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
