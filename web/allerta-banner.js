/*! allerta-banner.js - alert banner of `allerta`, no dependencies. Usage:
 * <script src="https://COMUNE/allerta/allerta-banner.js" defer></script>
 * [data-src="drill-banner.json" (relative to this script)] [data-lang="it"]
 * Shows the most severe active alert in #allerta-banner if present, else atop
 * <body>; nothing if none. Re-reads every 60 s, keeps it if a fetch fails,
 * removes it when it expires. banner.json, most severe first: {"generated_at",
 * "alerts": [{"id", "status": Actual|Exercise, "msg_type": Alert|Update,
 * "severity": Extreme|Severe|Moderate|Minor|Unknown, "event", "headline",
 * "text", "instruction"|null, "area", "effective", "expires"|null (RFC 3339),
 * "link" (CAP URL), "language"}]}. Alert data is only ever set as text. */
(function () {
  'use strict';
  var doc = document, me = doc.currentScript, i; // captured while this script runs
  if (!me || !window.fetch) { return; }
  var src = me.src, ds = me.getAttribute('data-src');
  var url = src.replace(/[?#].*$/, '').replace(/[^\/]*$/, '') + 'banner.json';
  if (ds) { try { url = new URL(ds, src).href; } catch (e) { url = ds; } }
  var lang = (me.getAttribute('data-lang') || 'it').toLowerCase().split('-')[0];
  var SEV = { // rank, label, colours (contrast: 7.9, 9.8, 14.9, 8.0 : 1)
    Extreme: [4, 'Allerta rossa', '#A50E0E;color:#fff'], Severe: [3, 'Allerta arancione', '#F59E0B;color:#000'],
    Moderate: [2, 'Allerta gialla', '#FFD54F;color:#000'], Minor: [1, 'Avviso', '#0B4F9C;color:#fff'] };
  var CSS = '.allerta-banner{box-sizing:border-box;width:100%;max-width:100%;margin:0;padding:.75em 1em;' +
    'font-size:100%;font-size:max(1em,1rem,16px);line-height:1.45;overflow-wrap:break-word}' +
    '.allerta-banner *{color:inherit!important}.allerta-inner{max-width:60em;margin:0 auto}' +
    '.allerta-banner p{margin:.3em 0;font-size:1em}' +
    '.allerta-top{font-weight:700;text-transform:uppercase}' +
    '.allerta-banner .allerta-headline{font-size:1.2em;font-weight:700}' +
    '.allerta-text,.allerta-instruction{white-space:pre-line}' +
    '.allerta-tag{display:inline-block;border:2px solid;padding:0 .35em;margin-right:.4em}' +
    '.allerta-banner a{text-decoration:underline;font-weight:700}' +
    '.allerta-banner a:focus{outline:3px solid;outline-offset:2px}.allerta-exercise{border:.3em dashed}';
  for (i in SEV) { CSS += '.allerta-sev-' + i.toLowerCase() + '{background:' + SEV[i][2] + '}'; }
  var data = null, node = null, shown = null, timer = null;

  function time(s) { var t = Date.parse(s); return isNaN(t) ? null : t; }
  function str(v) { return v == null ? '' : String(v); }
  function langOk(a) { var l = str(a.language).toLowerCase(); return !l || l.split('-')[0] === lang; }

  // Most severe active alert (first in file order on ties), in `lang` if any is.
  function pick(now) {
    var list = data.alerts.filter(function (a) { return a && langOk(a); }), best = null, br = -1, a, r, x;
    if (!list.length) { list = data.alerts; }
    for (i = 0; i < list.length; i++) {
      a = list[i];
      if (!a || !/^(Actual|Exercise)$/.test(a.status)) { continue; }
      x = time(a.expires);
      if (x !== null && x <= now) { continue; }
      r = SEV[a.severity] ? SEV[a.severity][0] : 0;
      if (r > br) { best = a; br = r; }
    }
    return best;
  }

  function el(tag, cls, text, parent) {
    var e = doc.createElement(tag);
    if (cls) { e.className = cls; }
    if (text) { e.textContent = text; }
    if (parent) { parent.appendChild(e); }
    return e;
  }

  function fmt(ms) {
    return new Date(ms).toLocaleString('it-IT', { timeZone: 'Europe/Rome', weekday: 'long',
      day: 'numeric', month: 'long', hour: '2-digit', minute: '2-digit' });
  }

  function build(a) {
    var sev = SEV[a.severity] ? a.severity : 'Minor', drill = a.status === 'Exercise';
    var b = el('div', 'allerta-banner allerta-sev-' + sev.toLowerCase() + (drill ? ' allerta-exercise' : ''));
    b.setAttribute('role', 'alert');
    b.setAttribute('aria-live', 'assertive');
    if (a.language) { b.lang = a.language; }
    var box = el('div', 'allerta-inner', '', b), top = el('p', 'allerta-top', '', box);
    if (drill) { el('span', 'allerta-tag allerta-drill', 'ESERCITAZIONE', top); }
    if (a.msg_type === 'Update') { el('span', 'allerta-tag', 'Aggiornamento', top); }
    el('span', 'allerta-level', SEV[sev][1], top);
    if (a.event) { top.appendChild(doc.createTextNode(' \u2014 ' + a.event)); }
    if (drill) { el('p', 'allerta-drill-note', "Esercitazione: non \u00e8 un'emergenza reale.", box); }
    el('strong', '', str(a.headline), el('p', 'allerta-headline', '', box));
    if (a.text) { el('p', 'allerta-text', str(a.text), box); }
    if (a.instruction) { el('p', 'allerta-instruction', str(a.instruction), box); }
    var x = time(a.expires), link = str(a.link);
    var meta = el('p', 'allerta-meta', (a.area ? 'Zona: ' + a.area + ' \u00b7 ' : '') +
      (x === null ? 'Valida fino a nuovo avviso' : 'Valida fino a ' + fmt(x)), box);
    if (/^https?:\/\//i.test(link)) {
      meta.appendChild(doc.createTextNode(' \u00b7 '));
      el('a', '', 'Dettagli', meta).href = link;
    }
    return b;
  }

  function render() {
    clearTimeout(timer);
    var a = data && pick(Date.now()), key = a && JSON.stringify(a), d;
    if (!a) {
      if (node && node.parentNode) { node.parentNode.removeChild(node); }
      node = shown = null;
      return;
    }
    if (key !== shown) { // rebuild only on change, so screen readers announce once
      if (!doc.getElementById('allerta-style')) { el('style', '', CSS, doc.head || doc.body).id = 'allerta-style'; }
      var n = build(a), host = doc.getElementById('allerta-banner');
      if (node && node.parentNode) { node.parentNode.replaceChild(n, node); }
      else if (host) { host.appendChild(n); } else { doc.body.insertBefore(n, doc.body.firstChild); }
      node = n;
      shown = key;
    }
    d = time(a.expires);
    if (d !== null && (d -= Date.now() - 50) < 2147483647) { timer = setTimeout(render, d); }
  }

  // Any failure keeps the last good data: a network error never hides a live alert.
  function load() {
    fetch(url, { cache: 'no-store', credentials: 'omit' }).then(function (r) {
      if (!r.ok) { throw new Error('HTTP ' + r.status); }
      return r.json();
    }).then(function (j) {
      if (!j || !Array.isArray(j.alerts)) { throw new Error('bad JSON'); }
      data = j;
      render();
    }).catch(render);
  }

  function start() {
    load();
    setInterval(load, 60000);
    doc.addEventListener('visibilitychange', function () { if (!doc.hidden) { load(); } });
  }
  if (doc.body) { start(); } else { doc.addEventListener('DOMContentLoaded', start); }
}());
