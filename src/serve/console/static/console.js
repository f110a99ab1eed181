// allerta console: refreshes one alert's counts every second from
// live.json (no reload, no library). Pages without [data-live] do nothing.
(function () {
  "use strict";
  var cells = document.querySelectorAll("[data-live], [data-live-zone], [data-live-state]");
  if (!cells.length) { return; }
  var url = window.location.pathname.replace(/\/$/, "") + "/live.json";
  var status = document.getElementById("live-status");
  function pick(obj, path) {
    var parts = path.split(".");
    for (var i = 0; i < parts.length; i++) {
      if (obj === null || typeof obj !== "object" || !(parts[i] in obj)) { return undefined; }
      obj = obj[parts[i]];
    }
    return obj;
  }
  function apply(live) {
    cells.forEach(function (el) {
      var v;
      if (el.hasAttribute("data-live")) { v = pick(live.channels, el.getAttribute("data-live")); }
      else if (el.hasAttribute("data-live-zone")) { v = pick(live.zones, el.getAttribute("data-live-zone")); }
      else { v = live.state; }
      if (v !== undefined && el.textContent !== String(v)) { el.textContent = String(v); }
    });
    var sum = { out: 0, total: 0, failed: 0, unsettled: 0 };
    Object.keys(live.channels).forEach(function (k) {
      var c = live.channels[k];
      sum.out += c.sent + c.delivered; sum.total += c.total;
      sum.failed += c.failed; sum.unsettled += c.pending + c.sending;
    });
    document.querySelectorAll("[data-sum]").forEach(function (el) {
      var v = String(sum[el.getAttribute("data-sum")]);
      if (el.textContent !== v) { el.textContent = v; }
    });
    document.querySelectorAll("[data-live-map]").forEach(function (el) {
      var z = live.zones[el.getAttribute("data-live-map")];
      if (z) { el.textContent = z.reached + " / " + z.recipients + " reached"; }
    });
  }
  function tick() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (live) {
        apply(live);
        if (status) { status.textContent = "live · " + new Date().toLocaleTimeString(); status.className = "live"; }
      })
      .catch(function () {
        if (status) { status.textContent = "not updating"; status.className = "live stale"; }
      })
      .then(function () { window.setTimeout(tick, 1000); });
  }
  window.setTimeout(tick, 1000);
}());
