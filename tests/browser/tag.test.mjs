// The page tag in Chromium: a landing page on another loopback origin
// (allowed through tag_origins) with the tag and a dozen links, opened as
// an ad click would open it. Run by run.sh: node --test, POSTBACKD_BIN set.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { launchBrowser, serve, startServer, stopAll, watch } from "./lib.mjs";

const BIN = process.env.POSTBACKD_BIN;
if (!BIN) throw new Error("set POSTBACKD_BIN to the postbackd binary (tests/browser/run.sh does)");

// Links: [id, href as written, what the tag should make of it (CID = the
// click ID; null = untouched)].
const LINKS = [
  ["braces", "https://offer.example/go?sub={click_id}", "https://offer.example/go?sub=CID"],
  ["dashes", "https://offer.example/go?s=--CLICK-ID--&x=1", "https://offer.example/go?s=CID&x=1"],
  ["encoded", "https://offer.example/go?s=%7Bclick_id%7D", "https://offer.example/go?s=CID"],
  ["clickbank", "https://vendor.hop.clickbank.net/?affiliate=me", "https://vendor.hop.clickbank.net/?affiliate=me&tid=CID"],
  ["impact", "https://brand.sjv.io/c/1/2/3", "https://brand.sjv.io/c/1/2/3?subId1=CID"],
  ["cj", "https://www.anrdoezrs.net/click-1-2", "https://www.anrdoezrs.net/click-1-2?sid=CID"],
  ["adtraction", "https://track.adtraction.com/t/t?a=1&as=2", "https://track.adtraction.com/t/t?a=1&as=2&epi=CID"],
  ["hasoffers", "https://net.go2cloud.org/aff_c?offer_id=1&aff_id=2", "https://net.go2cloud.org/aff_c?offer_id=1&aff_id=2&aff_sub=CID"],
  ["digistore", "https://www.digistore24.com/redir/1/me/", "https://www.digistore24.com/redir/1/me/?cid=CID"],
  ["jvzoo", "https://www.jvzoo.com/c/1/2", "https://www.jvzoo.com/c/1/2?tid=CID"],
  ["own-host", "https://track.mynet.example/click?o=1", "https://track.mynet.example/click?o=1&s2=CID"],
  ["unrelated", "https://unrelated.example/page?x=1", null],
  ["lookalike", "https://xhop.clickbank.net/?a=1", null],
  ["anchor", "#top", null],
];

function landing(scriptSrc, slug) {
  const links = LINKS.map(([id, href]) => `<a id="${id}" href="${href.replace(/&/g, "&amp;")}">${id}</a>`).join("\n");
  return `<!doctype html><html><head><meta charset="utf-8"><title>Landing</title>
<script async src="${scriptSrc}" data-link="${slug}" data-hosts="track.mynet.example=s2"></script>
</head><body>
${links}
<form id="lead"><input name="click_id" type="hidden"><input name="email"></form>
<script>
  // The page's own code goes on whatever the tag does.
  document.body.setAttribute("data-page-ok", "1");
  setTimeout(function () {
    var a = document.createElement("a");
    a.id = "late";
    a.href = "https://offer.example/late?c={click_id}";
    a.textContent = "late";
    document.body.appendChild(a);
  }, 400);
</script>
</body></html>`;
}

let pbd;
let lp;
let browser;
let scriptSrc;
// The script text, for the landing server's own copy (a tracker that
// answers errors).
let scriptText;

before(async () => {
  lp = await serve((req, res) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname === "/own/t.js") {
      res.setHeader("content-type", "text/javascript");
      return res.end(scriptText);
    }
    if (url.pathname === "/e/click") {
      // This "tracker" is broken: the tag must do nothing.
      res.statusCode = 500;
      res.setHeader("access-control-allow-origin", "*");
      return res.end("{\"error\":\"boom\"}");
    }
    res.setHeader("content-type", "text/html; charset=utf-8");
    const src = url.pathname === "/broken" ? "/own/t.js" : url.pathname === "/down" ? url.searchParams.get("src") : scriptSrc;
    res.end(landing(src, "spring"));
  });
  pbd = await startServer(BIN, { env: { POSTBACKD_TAG_ORIGINS: lp.base } });
  const link = await pbd.admin("POST", "/api/v1/links", {
    slug: "spring",
    destination: "https://offer.example/lp?sub={click_id}",
  });
  assert.equal(link.status, 201, link.text);
  const snippet = link.json.tag_snippet;
  scriptSrc = snippet.match(/src="([^"]+)"/)[1];
  assert.match(scriptSrc, new RegExp(`^${pbd.base}/t\\.js\\?v=[0-9a-f]{12}$`));
  scriptText = await (await fetch(scriptSrc)).text();
  // A visitor's browser: headless Chromium's own user agent says
  // "HeadlessChrome", which the click-quality classifier rightly calls a bot.
  browser = await launchBrowser({
    userAgent:
      "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  });
});

after(stopAll);

async function clickId(page) {
  await page.waitForFunction(() => window.postbackd && window.postbackd.clickId, null, { timeout: 10000 });
  return page.evaluate(() => window.postbackd.clickId);
}

test("the tag records the click and AutoTags every link that should carry it", async () => {
  const page = await browser.newPage();
  const errors = watch(page);
  await page.goto(`${lp.base}/landing?gclid=GCLID-123&utm_source=google&utm_campaign=spring-sale&fbclid=FB-9`);
  const cid = await clickId(page);
  assert.match(cid, /^[0-9a-z]{25}$/);
  await page.waitForFunction(
    (c) => document.getElementById("late") && document.getElementById("late").getAttribute("href").includes(c),
    cid,
    { timeout: 5000 },
  );
  for (const [id, written, want] of LINKS) {
    const href = await page.getAttribute(`#${id}`, "href");
    assert.equal(href, want === null ? written : want.replace("CID", cid), id);
  }
  assert.equal(await page.getAttribute("#late", "href"), `https://offer.example/late?c=${cid}`);
  assert.equal(await page.inputValue("#lead input[name=click_id]"), cid);
  assert.equal(await page.getAttribute("body", "data-page-ok"), "1");

  // The click stored on the server, with the landing URL's parameters.
  const c = await pbd.admin("GET", `/api/v1/clicks/${cid}`);
  assert.equal(c.status, 200, c.text);
  assert.equal(c.json.via, "tag");
  assert.equal(c.json.link, "spring");
  assert.equal(c.json.gclid, "GCLID-123");
  assert.equal(c.json.utm_source, "google");
  assert.equal(c.json.utm_campaign, "spring-sale");
  assert.equal(c.json.bot, false);
  assert.ok(c.json.landing_url.startsWith(`${lp.base}/landing?gclid=GCLID-123`), c.json.landing_url);
  assert.match(c.json.fbc, /^fb\.1\.\d{13}\.FB-9$/);
  // The tag set Meta's _fbc first-party cookie as the pixel would.
  const cookies = await browser.context.cookies(lp.base);
  assert.equal(cookies.find((k) => k.name === "_fbc")?.value, encodeURIComponent(c.json.fbc));
  const kept = cookies.find((k) => k.name === "pbd_cid");
  assert.equal(kept?.value, cid);
  assert.equal(kept.sameSite, "Lax");
  assert.ok(kept.expires > Date.now() / 1000 + 29 * 86400, "kept for cookie_days (30)");

  // A second page view of the visit reuses the click: no new click.
  const page2 = await browser.newPage();
  const errors2 = watch(page2);
  await page2.goto(`${lp.base}/pricing`);
  assert.equal(await clickId(page2), cid);
  await page2.waitForFunction((c) => document.getElementById("braces").getAttribute("href").includes(c), cid);
  const stats = await pbd.admin("GET", "/api/v1/stats");
  assert.equal(stats.json.clicks, 1, "one click for the visit");

  // A visitor arriving from a /c/ redirect brings its click ID: adopted.
  const redirected = await browser.newPage();
  const errors3 = watch(redirected);
  await redirected.goto(`${lp.base}/landing?cid=0abcdefghijklmnopqrstuvwx`);
  assert.equal(await clickId(redirected), "0abcdefghijklmnopqrstuvwx");
  assert.equal((await pbd.admin("GET", "/api/v1/stats")).json.clicks, 1);

  // A new ad click (another gclid) is a new visit: a new click, not the
  // cookie's. A landing page's own short `cid` is not a click ID.
  const again = await browser.newPage();
  const errors4 = watch(again);
  await again.goto(`${lp.base}/landing?gclid=GCLID-456&cid=summer26`);
  const second = await clickId(again);
  assert.notEqual(second, cid);
  assert.notEqual(second, "0abcdefghijklmnopqrstuvwx");
  const c2 = await pbd.admin("GET", `/api/v1/clicks/${second}`);
  assert.equal(c2.json.gclid, "GCLID-456");
  assert.equal((await pbd.admin("GET", "/api/v1/stats")).json.clicks, 2);

  assert.deepEqual([...errors, ...errors2, ...errors3, ...errors4], []);
  await Promise.all([page.close(), page2.close(), redirected.close(), again.close()]);
});

test("a page whose tracker answers errors or is down still works", async () => {
  await browser.context.clearCookies();
  // The tag loads, but its /e/click answers 500: no click ID, links untouched.
  const broken = await browser.newPage();
  const errors = watch(broken, [/Failed to load resource/]);
  await broken.goto(`${lp.base}/broken?gclid=G2`);
  await broken.waitForFunction(() => document.getElementById("late"), null, { timeout: 5000 });
  await broken.waitForTimeout(300);
  assert.equal(await broken.evaluate(() => window.postbackd === undefined), true);
  assert.equal(await broken.getAttribute("#braces", "href"), LINKS[0][1]);
  assert.equal(await broken.getAttribute("body", "data-page-ok"), "1");

  // postbackd stopped: the script cannot even load; the page is unharmed.
  await pbd.stop();
  const down = await browser.newPage();
  const errors2 = watch(down, [/Failed to load resource/, /ERR_CONNECTION_REFUSED/]);
  await down.goto(`${lp.base}/down?gclid=G3&src=${encodeURIComponent(scriptSrc)}`);
  await down.waitForFunction(() => document.getElementById("late"), null, { timeout: 5000 });
  assert.equal(await down.getAttribute("#dashes", "href"), LINKS[1][1]);
  assert.equal(await down.getAttribute("body", "data-page-ok"), "1");
  assert.deepEqual([...errors, ...errors2], []);
  await Promise.all([broken.close(), down.close()]);
});
