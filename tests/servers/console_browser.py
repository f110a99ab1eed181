#!/usr/bin/python3
"""Drives the officer console in headless Chromium (Debian chromium-driver +
python3-selenium) for tests/console.rs.

    /usr/bin/python3 tests/servers/console_browser.py SCENARIO ARGS.json

ARGS.json: {"base": "http://127.0.0.1:PORT", "user", "password",
"bad_password", "alert" (approvals), "out": artifacts dir, and for live the
hand-shake files "ready_file", "alert_file", "go_file"}. Prints one JSON
document on stdout with what the browser saw; the Rust test judges it.

Scenarios:
  live      bad login, good login, the alert page sampled while the send
            runs (counts read from the DOM, no reload), then the not-reached
            list, the report printed to PDF, and every page at 390 px.
  approvals log in, press approve or reject (ARGS "action") on the alert
            (ARGS "alert"), report the answer page.
"""

import base64
import json
import os
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync",
        "--user-data-dir=" + tempfile.mkdtemp(prefix="allerta-chromium-"),
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--window-size=1200,900",
    ]:
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def login(d, base, user, password):
    d.get(base + "/console/login")
    d.find_element(By.ID, "user").clear()
    d.find_element(By.ID, "user").send_keys(user)
    d.find_element(By.ID, "password").send_keys(password)
    # Keyboard only: Enter submits the form.
    d.find_element(By.ID, "password").send_keys("\n")
    time.sleep(0.3)


def no_horizontal_scroll(d):
    return d.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
        " && document.body.scrollWidth <= window.innerWidth")


# WCAG 2.1 AA: every text's colour against its background, 4.5:1 (3:1
# for large text). Backgrounds are taken from the nearest ancestor that has
# one (the console uses opaque colours only); SVG text is not checked.
CONTRAST_JS = """
function rgb(c) { var m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
  var p = m[1].split(',').map(parseFloat); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; }
function lum(c) { var f = function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); }
function bg(el) { for (; el; el = el.parentElement) { var c = rgb(getComputedStyle(el).backgroundColor);
  if (c && c.a > 0) return c; } return {r: 255, g: 255, b: 255, a: 1}; }
var bad = [];
document.querySelectorAll('body *').forEach(function (el) {
  if (el.closest('svg')) return;
  var text = Array.prototype.some.call(el.childNodes, function (n) { return n.nodeType === 3 && n.textContent.trim(); });
  if (!text || !el.getClientRects().length) return;
  var st = getComputedStyle(el); if (st.visibility === 'hidden') return;
  var fg = rgb(st.color), b = bg(el), l1 = lum(fg), l2 = lum(b);
  var ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
  var size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight, 10) >= 700;
  var need = (size >= 24 || (size >= 18.66 && bold)) ? 3 : 4.5;
  if (ratio < need) bad.push(el.tagName + ' "' + el.textContent.trim().slice(0, 30) + '" ' + ratio.toFixed(2));
});
return bad;
"""


def contrast_failures(d):
    return d.execute_script(CONTRAST_JS)


def counts(d):
    cells = d.find_elements(By.CSS_SELECTOR, "[data-live]")
    return {c.get_attribute("data-live"): int(c.text) for c in cells if c.text.strip().isdigit()}


def wait_for(path, seconds=120):
    until = time.time() + seconds
    while not os.path.exists(path) and time.time() < until:
        time.sleep(0.1)
    return os.path.exists(path)


def live(args):
    base, out = args["base"], args["out"]
    d = browser()
    res = {}
    try:
        login(d, base, args["user"], args["bad_password"])
        err = d.find_elements(By.ID, "login-error")
        res["bad_login_error"] = err[0].text if err else None
        res["bad_login_url"] = d.current_url
        res["contrast"] = {"login": contrast_failures(d)}
        d.save_screenshot(os.path.join(out, "console-login-failed.png"))

        login(d, base, args["user"], args["password"])
        res["after_login_url"] = d.current_url
        # Logged in and waiting: the test starts the send now and names
        # the alert in alert_file, so the page is open while it runs.
        open(args["ready_file"], "w").close()
        if not wait_for(args["alert_file"]):
            raise SystemExit("the test never named the alert")
        with open(args["alert_file"]) as f:
            alert = f.read().strip()

        d.get(base + "/console/alerts/" + alert)
        # A marker that a reload would wipe: the counts must move without one.
        d.execute_script("window.__notReloaded = true;")
        samples = []
        deadline = time.time() + float(args.get("watch_seconds", 90))
        while time.time() < deadline:
            # One script: a snapshot the page's own updates cannot split.
            snap = d.execute_script("""
                var c = {};
                document.querySelectorAll('[data-live]').forEach(function (el) {
                  c[el.getAttribute('data-live')] = parseInt(el.textContent, 10); });
                return {state: document.getElementById('alert-state').textContent,
                        out: document.querySelector("[data-sum='out']").textContent, counts: c};""")
            state = snap["state"]
            samples.append({"t": time.time(), "state": state, "counts": snap["counts"], "out": snap["out"]})
            if len(samples) == 4:
                d.save_screenshot(os.path.join(out, "console-alert-live.png"))
            if state == "settled" and samples[-1]["counts"].get("sms.pending", 1) == 0 \
                    and samples[-1]["counts"].get("sms.sending", 1) == 0:
                break
            time.sleep(0.5)
        res["samples"] = samples
        res["not_reloaded"] = d.execute_script("return window.__notReloaded === true;")
        res["map_polygons"] = len(d.find_elements(By.CSS_SELECTOR, "svg.map polygon"))
        # The test creates go_file once the ledger holds the last delivery
        # reports (delivered / undelivered): what follows is compared with it.
        wait_for(args["go_file"])
        d.refresh()
        res["final_counts"] = counts(d)
        res["zones"] = {el.get_attribute("data-live-zone"): el.text
                        for el in d.find_elements(By.CSS_SELECTOR, "[data-live-zone]")}
        d.save_screenshot(os.path.join(out, "console-alert.png"))

        d.get(base + "/console/")
        res["alerts_listed"] = [a.get_attribute("href") for a in d.find_elements(By.CSS_SELECTOR, "table.alerts a")]
        d.save_screenshot(os.path.join(out, "console-alerts.png"))

        d.get(base + "/console/alerts/" + alert + "/not-reached")
        rows = d.find_elements(By.CSS_SELECTOR, "#not-reached tbody tr")
        res["not_reached"] = [{
            "recipient": r.get_attribute("data-recipient"),
            "phones": [a.text for a in r.find_elements(By.CSS_SELECTOR, "a[href^='tel:']")],
            "text": r.text,
        } for r in rows]
        d.save_screenshot(os.path.join(out, "console-not-reached.png"))

        d.get(base + "/console/alerts/" + alert + "/report")
        res["report_has_chart"] = len(d.find_elements(By.CSS_SELECTOR, "svg.chart path")) > 0
        res["report_failures"] = [r.text for r in d.find_elements(By.CSS_SELECTOR, "#failures tbody tr")]
        res["report_audit_rows"] = len(d.find_elements(By.CSS_SELECTOR, "#audit tbody tr"))
        d.save_screenshot(os.path.join(out, "console-report.png"))
        pdf = d.execute_cdp_cmd("Page.printToPDF", {"printBackground": True, "preferCSSPageSize": True})
        path = os.path.join(out, "console-report.pdf")
        with open(path, "wb") as f:
            f.write(base64.b64decode(pdf["data"]))
        res["pdf"] = path

        d.set_window_size(390, 844)
        res["narrow_width"] = d.execute_script("return window.innerWidth")
        res["narrow"] = {}
        for name, path in [("alerts", "/console/"), ("alert", "/console/alerts/" + alert),
                           ("not-reached", "/console/alerts/" + alert + "/not-reached"),
                           ("report", "/console/alerts/" + alert + "/report"),
                           ("approvals", "/console/approvals")]:
            d.get(base + path)
            time.sleep(0.2)
            res["narrow"][name] = no_horizontal_scroll(d)
            res["contrast"][name] = contrast_failures(d)
            d.save_screenshot(os.path.join(out, "console-390-" + name + ".png"))
        # No request left the machine: every resource came from the console.
        res["external_resources"] = d.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(n => !n.startsWith(location.origin))")
    finally:
        d.quit()
    return res


def approvals(args):
    base, out = args["base"], args["out"]
    d = browser()
    res = {}
    try:
        login(d, base, args["user"], args["password"])
        d.get(base + "/console/approvals")
        section = d.find_element(By.CSS_SELECTOR, "section[data-alert='%s']" % args["alert"])
        d.save_screenshot(os.path.join(out, "console-approvals-%s.png" % args["user"]))
        section.find_element(By.CSS_SELECTOR, "button." + args["action"]).click()
        time.sleep(0.3)
        res["title"] = d.find_element(By.TAG_NAME, "h1").text
        res["message"] = d.find_element(By.ID, "message").text
        d.save_screenshot(os.path.join(out, "console-%s-%s.png" % (args["action"], args["user"])))
    finally:
        d.quit()
    return res


if __name__ == "__main__":
    scenario, args_file = sys.argv[1], sys.argv[2]
    with open(args_file) as f:
        args = json.load(f)
    os.makedirs(args["out"], exist_ok=True)
    result = {"live": live, "approvals": approvals}[scenario](args)
    print(json.dumps(result))
