// Nerve devserver dashboard: live refresh of [data-refresh] regions and the JSON editors.
// Plain JS, vendored with the package: nothing is fetched from the internet.
(function () {
  "use strict";

  function refreshMs() {
    var ms = parseInt(document.body.getAttribute("data-refresh-ms") || "1500", 10);
    return isNaN(ms) || ms < 250 ? 1500 : ms;
  }

  function autoRefreshOn() {
    var box = document.getElementById("auto-refresh");
    return !box || box.checked;
  }

  function startLiveRegion(region) {
    var url = region.getAttribute("data-refresh");
    var busy = false;
    function finished() {
      return region.querySelector("[data-final]") !== null;
    }
    function tick() {
      if (busy || finished() || !autoRefreshOn() || document.hidden) return;
      var open = Array.prototype.map.call(region.querySelectorAll("details[open]"), function (d) {
        return d.querySelector("summary") ? d.querySelector("summary").textContent : "";
      });
      busy = true;
      fetch(url, { headers: { "X-Requested-With": "dashboard" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html !== null) {
            region.innerHTML = html;
            region.querySelectorAll("details").forEach(function (d) {
              var s = d.querySelector("summary");
              if (s && open.indexOf(s.textContent) >= 0) d.open = true;
            });
            region.setAttribute("data-refreshed-at", String(Date.now()));
          }
        })
        .catch(function () { /* engine restarting: try again next tick */ })
        .then(function () { busy = false; });
    }
    setInterval(tick, refreshMs());
  }

  function validateJson(textarea, status, mustHaveName) {
    function check() {
      try {
        var value = JSON.parse(textarea.value);
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
          throw new Error("must be a JSON object");
        }
        if (mustHaveName && !value.name) throw new Error('needs a "name"');
        status.textContent = "valid JSON";
        status.className = "json-status ok";
        return true;
      } catch (e) {
        status.textContent = e.message;
        status.className = "json-status err";
        return false;
      }
    }
    textarea.addEventListener("input", check);
    textarea.addEventListener("keydown", function (ev) {
      if (ev.key === "Tab") {
        ev.preventDefault();
        var start = textarea.selectionStart;
        textarea.setRangeText("  ", start, textarea.selectionEnd, "end");
      }
    });
    check();
    return check;
  }

  function setupSendForm() {
    var form = document.getElementById("send-form");
    if (!form) return;
    var textarea = document.getElementById("event-json");
    var status = document.getElementById("event-json-status");
    var select = document.getElementById("event-template");
    var templates = JSON.parse(document.getElementById("event-templates").textContent || "[]");
    function apply() {
      var t = templates[parseInt(select.value, 10)];
      var event = t ? { name: t.name, data: t.data } : { name: "", data: {} };
      textarea.value = JSON.stringify(event, null, 2);
      textarea.dispatchEvent(new Event("input"));
    }
    select.addEventListener("change", apply);
    if (select.value) apply();
    var check = validateJson(textarea, status, true);
    form.addEventListener("submit", function (ev) { if (!check()) ev.preventDefault(); });
  }

  function setupInvokeForm() {
    var form = document.getElementById("invoke-form");
    if (!form) return;
    var check = validateJson(
      document.getElementById("invoke-data"), document.getElementById("invoke-data-status"), false);
    form.addEventListener("submit", function (ev) { if (!check()) ev.preventDefault(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(startLiveRegion);
    setupSendForm();
    setupInvokeForm();
  });
})();
