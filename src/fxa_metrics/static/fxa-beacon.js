/*! fxa-beacon.js: the front-end performance beacon of fxa_metrics (docs/frontend.md).
 *
 *   <script src="/__beacon__" data-page="settings" defer></script>
 *
 * data-page      the page name the server allow-lists; without it, the path is sent
 *                and the server maps it to one of the app's route templates
 * data-endpoint  where to POST (default: the URL this script was loaded from)
 * data-flush-ms  also send this many ms after the load event (default: send only
 *                when the page is hidden, when LCP, CLS and INP are final)
 *
 * One beacon per page load: navigator.sendBeacon, JSON as text/plain, no cookies
 * read, no identifiers sent. Values are ms since navigation start, to 0.1 ms.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var perf = window.performance;
  if (!script || !perf || !perf.getEntriesByType || !navigator.sendBeacon) return;
  var endpoint = script.getAttribute("data-endpoint") || script.src;
  var page = script.getAttribute("data-page") || location.pathname;
  var flushMs = parseInt(script.getAttribute("data-flush-ms") || "", 10);
  var MARKS = [
    "redirectStart", "redirectEnd", "fetchStart", "domainLookupStart", "domainLookupEnd",
    "connectStart", "secureConnectionStart", "connectEnd", "requestStart", "responseStart",
    "responseEnd", "domInteractive", "domContentLoadedEventStart", "domContentLoadedEventEnd",
    "domComplete", "loadEventStart", "loadEventEnd"
  ];
  var TYPES = { navigate: 1, reload: 1, back_forward: 1, prerender: 1 };
  var paint = {};
  var vitals = {};
  var sent = false;

  function round(x) { return Math.round(x * 10) / 10; }

  // Returns whether the browser supports this entry type (a missing one is left out).
  function observe(type, onEntry, extra) {
    try {
      var init = { type: type, buffered: true };
      for (var k in extra || {}) init[k] = extra[k];
      new PerformanceObserver(function (list) { list.getEntries().forEach(onEntry); })
        .observe(init);
      return true;
    } catch (e) {
      return false;
    }
  }

  observe("paint", function (e) { paint[e.name] = round(e.startTime); });
  observe("largest-contentful-paint", function (e) { vitals.lcp = round(e.startTime); });

  // CLS: the largest session window of unexpected layout shifts (gaps < 1 s, window < 5 s).
  var win = 0, first = 0, last = 0, cls = 0;
  if (observe("layout-shift", function (e) {
    if (e.hadRecentInput) return;
    if (win && e.startTime - last < 1000 && e.startTime - first < 5000) {
      win += e.value;
    } else {
      win = e.value;
      first = e.startTime;
    }
    last = e.startTime;
    cls = Math.max(cls, win);
    vitals.cls = Math.round(cls * 10000) / 10000;
  })) vitals.cls = 0;

  // INP: the slowest interaction (exact below 50 interactions, a slight overestimate above).
  observe("event", function (e) {
    if (e.interactionId && !(vitals.inp >= e.duration)) vitals.inp = round(e.duration);
  }, { durationThreshold: 40 });

  function device() {
    var ua = navigator.userAgent || "";
    if (/iPad|Tablet|PlayBook|Silk|Android(?!.*Mobile)/i.test(ua)) return "tablet";
    var data = navigator.userAgentData;
    if ((data && data.mobile) || /Mobi|iPhone|Android/i.test(ua)) return "mobile";
    return "desktop";
  }

  function send() {
    var n = perf.getEntriesByType("navigation")[0];
    if (sent || !n) return;
    sent = true;
    var nav = {};
    for (var i = 0; i < MARKS.length; i++) nav[MARKS[i]] = round(Math.max(n[MARKS[i]] || 0, 0));
    vitals.ttfb = round(Math.max(n.responseStart - (n.activationStart || 0), 0));
    if (paint["first-contentful-paint"] !== undefined) {
      vitals.fcp = paint["first-contentful-paint"];
    }
    navigator.sendBeacon(endpoint, JSON.stringify({
      v: 1,
      page: page,
      type: TYPES[n.type] ? n.type : "navigate",
      device: device(),
      nav: nav,
      paint: paint,
      vitals: vitals
    }));
  }

  addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") send();
  }, true);
  addEventListener("pagehide", send, true);
  if (flushMs >= 0) {
    // After the load event's handlers have run, so loadEventEnd is set.
    var later = function () { setTimeout(send, flushMs); };
    if (document.readyState === "complete") later(); else addEventListener("load", later);
  }
})();
