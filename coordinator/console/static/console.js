// Beluga console: the only script. It refreshes live regions — elements
// with data-live="URL" — by fetching the server-rendered fragment at URL
// (same origin only; the Content-Security-Policy allows nothing else)
// every second or two, until the fragment marks itself final
// (data-final). Without JavaScript the pages work; they just do not move.
(function () {
  "use strict";
  var regions = document.querySelectorAll("[data-live]");
  regions.forEach(function (el) {
    var url = el.getAttribute("data-live");
    if (!url || url.charAt(0) !== "/" || url.charAt(1) === "/") return;
    var period = el.id === "network" ? 2000 : 1000;
    var timer = null;
    function final() { return el.querySelector("[data-final]") !== null; }
    function tick() {
      if (final()) return;
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html !== null) {
            // Keep focus inside the region where it was (a link, say).
            var active = document.activeElement && el.contains(document.activeElement) ? document.activeElement.id : "";
            el.innerHTML = html;
            if (active && document.getElementById(active)) document.getElementById(active).focus();
          }
        })
        .catch(function () {})
        .then(function () { if (!final()) timer = setTimeout(tick, period); });
    }
    timer = setTimeout(tick, period);
  });
  // A spec file over the limit is refused before it is sent.
  var spec = document.getElementById("spec");
  if (spec) {
    spec.addEventListener("change", function () {
      var f = spec.files && spec.files[0];
      var upload = document.getElementById("src-upload");
      if (f && upload) upload.checked = true;
      spec.setCustomValidity(f && f.size > 65536 ? "A job spec is at most 64 KiB." : "");
    });
  }
})();
