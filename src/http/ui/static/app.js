// postbackd dashboard: the little the pages need beyond HTML. Every page
// works without this file; it adds copy buttons, confirmation dialogs and
// the live postback log. No dependencies, no inline script (the CSP has
// script-src 'self').
(function () {
  "use strict";

  // <button data-copy="text">: copy to the clipboard, say so on the button.
  function copyButtons(root) {
    root.querySelectorAll("button[data-copy]").forEach(function (b) {
      if (b.dataset.bound) return;
      b.dataset.bound = "1";
      b.hidden = false;
      b.addEventListener("click", function () {
        var text = b.getAttribute("data-copy");
        var done = function () {
          var was = b.textContent;
          b.textContent = "Copied";
          setTimeout(function () { b.textContent = was; }, 1500);
        };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
        } else { fallback(text); done(); }
      });
    });
  }
  function fallback(text) {
    var t = document.createElement("textarea");
    t.value = text; document.body.appendChild(t); t.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing more to try */ }
    t.remove();
  }

  // <form data-confirm="sentence">: ask before a destructive change.
  document.addEventListener("submit", function (e) {
    var f = e.target;
    if (f && f.dataset && f.dataset.confirm && !window.confirm(f.dataset.confirm)) {
      e.preventDefault();
    }
  });

  // <select data-autosubmit>: submit its form on change (the form has a
  // submit button for keyboard and no-JS use).
  document.addEventListener("change", function (e) {
    var s = e.target;
    if (s && s.dataset && s.dataset.autosubmit !== undefined && s.form) s.form.submit();
  });

  // <tbody data-live="/ui/postbacks/rows?..." data-after="ID">: poll for
  // newer rows every few seconds and put them on top.
  function live(tbody) {
    var url = tbody.getAttribute("data-live");
    var busy = false;
    setInterval(function () {
      if (busy || document.hidden) return;
      busy = true;
      var after = tbody.getAttribute("data-after") || "";
      fetch(url + (url.indexOf("?") < 0 ? "?" : "&") + "after=" + encodeURIComponent(after),
            { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : ""; })
        .then(function (html) {
          if (!html) return;
          var tpl = document.createElement("template");
          tpl.innerHTML = html;
          var rows = tpl.content.querySelectorAll("tr[data-id]");
          if (!rows.length) return;
          tbody.setAttribute("data-after", rows[0].getAttribute("data-id"));
          var empty = document.querySelector("[data-empty-for='" + tbody.id + "']");
          if (empty) empty.remove();
          for (var i = rows.length - 1; i >= 0; i--) tbody.insertBefore(rows[i], tbody.firstChild);
          copyButtons(tbody);
        })
        .catch(function () { /* offline for a moment: the next tick retries */ })
        .then(function () { busy = false; });
    }, 2000);
  }

  copyButtons(document);
  document.querySelectorAll("tbody[data-live]").forEach(live);
})();
