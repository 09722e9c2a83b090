/* postbackd page tag (GET /t.js): records one click per visit without a
 * redirect and AutoTags the page's affiliate links with its click ID.
 *
 *   <script async src="https://TRACKER/t.js?v=VERSION" data-link="SLUG"></script>
 *
 * (or data-source="ID": a click of no link, through that source).
 * Optional attributes: data-cookie-days="30" (how long the click ID is
 * kept), data-hosts="track.example.net=sub1,other.example=s2" (more
 * network hosts and their tracking parameter).
 *
 * What it sends to the tracker, once per visit: the link slug, this page's
 * URL (its gclid, fbclid, UTM... parameters), document.referrer and Meta's
 * _fbp / _fbc cookies. It keeps the click ID in a first-party cookie of
 * this site (pbd_cid); it reads no other cookie, sets none on another
 * domain, and does no fingerprinting. Errors never reach the page.
 */
(function () {
  "use strict";
  try {
    var script = document.currentScript ||
      document.querySelector("script[src*='/t.js'][data-link], script[src*='/t.js'][data-source]");
    if (!script || window.postbackd) return;
    var tracker = new URL(script.src, location.href).origin;
    var link = script.getAttribute("data-link") || "";
    // Or a source: a click of no link, converting through that source.
    var source = script.getAttribute("data-source") || "";
    var days = parseInt(script.getAttribute("data-cookie-days") || "30", 10);
    if (!(days > 0 && days <= 400)) days = 30;
    // Known affiliate link hosts -> their tracking parameter (from the
    // server's network presets; filled in when the server serves this file).
    var hosts = __POSTBACKD_HOSTS__;
    (script.getAttribute("data-hosts") || "").split(",").forEach(function (kv) {
      var p = kv.split("=");
      if (p.length === 2 && p[0].trim() && p[1].trim()) {
        hosts[p[0].trim().toLowerCase()] = p[1].trim();
      }
    });
    var AD_IDS = ["gclid", "gbraid", "wbraid", "fbclid", "ttclid", "msclkid"];
    // postbackd's click IDs: 25 of [0-9a-z] (a landing page's own `cid`
    // parameter, a campaign ID say, is not taken for one).
    var ID = /^[0-9a-z]{25}$/;
    var here = new URL(location.href);
    var secure = location.protocol === "https:" ? "; Secure" : "";

    var getCookie = function (name) {
      var parts = document.cookie ? document.cookie.split("; ") : [];
      for (var i = 0; i < parts.length; i++) {
        var eq = parts[i].indexOf("=");
        if (parts[i].slice(0, eq) === name) {
          try { return decodeURIComponent(parts[i].slice(eq + 1)); } catch (e) { return ""; }
        }
      }
      return "";
    };
    var setCookie = function (name, value, maxDays) {
      document.cookie = name + "=" + encodeURIComponent(value) + "; Max-Age=" +
        Math.round(maxDays * 86400) + "; Path=/; SameSite=Lax" + secure;
    };

    // The ad click IDs of this visit: a new ad click is a new visit.
    var adIds = AD_IDS.map(function (k) { return here.searchParams.get(k) || ""; }).join("|");
    var hasAdIds = adIds.replace(/\|/g, "") !== "";

    // Meta's click cookie, as its pixel would set it, when fbclid is new.
    var fbclid = here.searchParams.get("fbclid");
    var fbc = getCookie("_fbc");
    if (fbclid && fbc.split(".").slice(3).join(".") !== fbclid) {
      fbc = "fb.1." + Date.now() + "." + fbclid;
      setCookie("_fbc", fbc, 90);
    }

    var tagHref = function (href, cid) {
      if (!href || /^(#|javascript:|mailto:|tel:)/i.test(href)) return href;
      var enc = encodeURIComponent(cid);
      var out = href.split("--CLICK-ID--").join(enc)
        .split("{click_id}").join(enc)
        .split("%7Bclick_id%7D").join(enc)
        .split("%7bclick_id%7d").join(enc);
      if (out !== href) return out;
      var u;
      try { u = new URL(href, location.href); } catch (e) { return href; }
      if (u.protocol !== "http:" && u.protocol !== "https:") return href;
      var host = u.hostname.toLowerCase();
      for (var h in hosts) {
        if (Object.prototype.hasOwnProperty.call(hosts, h) &&
            (host === h || host.slice(-h.length - 1) === "." + h)) {
          if (u.searchParams.get(hosts[h]) === cid) return href;
          u.searchParams.set(hosts[h], cid);
          return u.href;
        }
      }
      return href;
    };

    var apply = function (root, cid) {
      try {
        var links = root.querySelectorAll ? root.querySelectorAll("a[href], area[href]") : [];
        for (var i = 0; i < links.length; i++) {
          var before = links[i].getAttribute("href");
          var after = tagHref(before, cid);
          if (after !== before) links[i].setAttribute("href", after);
        }
        var fields = root.querySelectorAll ? root.querySelectorAll("input[name='click_id']") : [];
        for (var j = 0; j < fields.length; j++) {
          if (!fields[j].value) fields[j].value = cid;
        }
      } catch (e) { /* never into the page */ }
    };

    var start = function (cid) {
      window.postbackd = { clickId: cid };
      setCookie("pbd_cid", cid, days);
      setCookie("pbd_ad", adIds, days);
      var run = function () {
        apply(document, cid);
        if (window.MutationObserver) {
          new MutationObserver(function (muts) {
            for (var i = 0; i < muts.length; i++) {
              var t = muts[i].type === "attributes" ? muts[i].target.parentNode : muts[i].target;
              if (t) apply(t, cid);
            }
          }).observe(document.documentElement, {
            childList: true, subtree: true, attributes: true, attributeFilter: ["href"]
          });
        }
        try {
          document.dispatchEvent(new CustomEvent("postbackd:click", { detail: { clickId: cid } }));
        } catch (e) { /* old browsers */ }
      };
      if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", run);
      } else {
        run();
      }
    };

    // The click ID the visitor arrived with (after a /c/ redirect), or the
    // one of an earlier page of this visit.
    var fromUrl = (here.searchParams.get("cid") || "").toLowerCase();
    var fromCookie = getCookie("pbd_cid");
    if (ID.test(fromUrl)) {
      start(fromUrl);
    } else if (ID.test(fromCookie) && (!hasAdIds || getCookie("pbd_ad") === adIds)) {
      start(fromCookie);
    } else if ((link || source) && window.fetch) {
      fetch(tracker + "/e/click", {
        method: "POST",
        mode: "cors",
        credentials: "omit",
        // text/plain: a simple request, no preflight round trip.
        headers: { "Content-Type": "text/plain;charset=UTF-8" },
        body: JSON.stringify({
          link: link,
          source: source || null,
          url: location.href,
          referrer: document.referrer,
          fbp: getCookie("_fbp"),
          fbc: fbc
        })
      }).then(function (r) {
        return r.ok ? r.json() : null;
      }).then(function (j) {
        if (j && typeof j.click_id === "string" && ID.test(j.click_id)) start(j.click_id);
      }).catch(function () { /* tracker down or refused: the page goes on */ });
    }
  } catch (e) { /* never into the page */ }
})();
