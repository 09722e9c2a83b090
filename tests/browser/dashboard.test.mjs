// The dashboard in Chromium, walked as a person would: sign in, create a
// source from a preset, copy its postback URL, create a link, click it,
// fire the postback and see it turn up green without a reload, find the
// conversion in Reports, fix a wrong mapping and replay the refused
// postback; a viewer sees no secret and cannot change anything; a POST
// without the CSRF token is refused; no console error and no request to
// another origin on any page; every page under 300 KB. Run by run.sh
// (node --test, POSTBACKD_BIN set). With SCREENSHOTS=DIR it also writes
// the README's screenshots there.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { launchBrowser, startServer, stopAll, watch } from "./lib.mjs";

const BIN = process.env.POSTBACKD_BIN;
if (!BIN) throw new Error("set POSTBACKD_BIN to the postbackd binary (tests/browser/run.sh does)");
const SHOTS = process.env.SCREENSHOTS || "";

const ADMIN = { name: "ada", password: "correct horse battery" };
const VIEWER = { name: "vic", password: "viewer password 1" };
const MAX_PAGE_BYTES = 300 * 1024;

let pbd;
let browser;
/** Every page visited: {path, bytes, foreign: [urls]}. */
const visited = [];
const errors = [];

/** A page that records its weight, errors and any request leaving the origin. */
async function newPage(ctx = browser.context, allow = []) {
  const page = await ctx.newPage();
  const errs = watch(page, allow);
  page.on("close", () => errors.push(...errs));
  page._weights = { bytes: 0, foreign: [] };
  page.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith(pbd.base) && !u.startsWith("data:") && !u.startsWith("about:")) page._weights.foreign.push(u);
  });
  page.on("response", async (r) => {
    try {
      const b = await r.body();
      page._weights.bytes += b.length;
    } catch {
      /* redirects have no body */
    }
  });
  return page;
}

/** Open a path, measure what it loaded (document, CSS, JS, icon). */
async function open(page, path) {
  page._weights.bytes = 0;
  const resp = await page.goto(pbd.base + path, { waitUntil: "networkidle" });
  visited.push({ path, bytes: page._weights.bytes, foreign: [...page._weights.foreign] });
  return resp;
}

async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** More traffic for the screenshots: clicks over four zones, some converting. */
async function seed() {
  const link = await pbd.admin("PATCH", "/api/v1/links/spring", { subs: { sub1: "zoneid" } });
  assert.equal(link.status, 200, link.text);
  const key = source.key;
  const agents = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
  ];
  const p = (await pbd.admin("GET", `/api/v1/sources/${source.id}`)).json.effective_params;
  for (let i = 0; i < 60; i++) {
    const r = await fetch(`${pbd.base}/c/spring?zoneid=zone-${(i * 7) % 5}`, { redirect: "manual", headers: { "user-agent": agents[i % 2] } });
    const cid = new URL(r.headers.get("location")).searchParams.get("sub1");
    if (i % 6 === 0) {
      const u = new URL(`${pbd.base}/p/${key}`);
      u.searchParams.set(p.click_id, cid);
      u.searchParams.set(p.amount, String(20 + (i % 3) * 5) + ".00");
      u.searchParams.set(p.transaction_id, `seed-${i}`);
      await fetch(u);
    }
  }
  await fetch(`${pbd.base}/p/${key}?${p.click_id}=unknown-click&${p.amount}=9.00&${p.transaction_id}=seed-x`);
}

async function signIn(page, who) {
  // One profile, one cookie jar: start signed out.
  await page.context().clearCookies();
  await open(page, "/ui/overview");
  assert.match(page.url(), /\/login/, "an unsigned visitor is sent to the sign-in page");
  await page.getByLabel("Name", { exact: true }).fill(who.name);
  await page.getByLabel("Password", { exact: true }).fill(who.password);
  await Promise.all([page.waitForURL(/\/ui\/overview/), page.locator("form button[type=submit]").first().click()]);
}

before(async () => {
  pbd = await startServer(BIN, { env: { POSTBACKD_REPORT_TIMEZONE: "UTC" } });
  for (const [u, role] of [[ADMIN, "admin"], [VIEWER, "viewer"]]) {
    const r = await pbd.admin("POST", "/api/v1/users", { ...u, role });
    assert.equal(r.status, 201, r.text);
  }
  browser = await launchBrowser();
  await browser.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: pbd.base });
});

after(async () => {
  await stopAll();
});

let page;
let source;
let postbackUrl;
let trackingUrl;
let clickId;

test("sign in and land on the overview", async () => {
  // This page walks the refusals on purpose (a form error's 400, the
  // CSRF test's 403), which Chromium logs; every other page must log nothing.
  page = await newPage(browser.context, [/status of 40[03] \((Bad Request|Forbidden)\)/]);
  await signIn(page, ADMIN);
  assert.equal(await page.locator("h1").first().textContent(), "Overview");
  const cookies = await browser.context.cookies(pbd.base);
  const s = cookies.find((c) => c.name === "postbackd_session");
  assert.ok(s, "a session cookie is set");
  assert.equal(s.httpOnly, true);
  assert.equal(s.sameSite, "Strict");
});

test("create a source from a preset and copy its postback URL", async () => {
  await open(page, "/ui/sources");
  await page.getByLabel("Name", { exact: true }).fill("Everflow main");
  await page.getByLabel("Network", { exact: true }).selectOption("everflow");
  await page.getByRole("button", { name: "Create source" }).click();
  await page.waitForSelector("h1:has-text('Everflow main')");
  const code = page.locator(".copy code").first();
  postbackUrl = (await code.textContent()).trim();
  assert.match(postbackUrl, /\/p\/[0-9a-f]{32}\?/, postbackUrl);
  await page.locator(".copy button").first().click();
  await page.waitForFunction(() => document.querySelector(".copy button").textContent === "Copied");
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, postbackUrl);
  const list = await pbd.admin("GET", "/api/v1/sources");
  source = list.json.items.find((s) => s.name === "Everflow main");
  assert.ok(source);
  await shot(page, "source");
});

test("a form error is shown next to its field", async () => {
  await open(page, "/ui/links");
  await page.getByLabel("Offer URL", { exact: true }).fill("ftp://nope.example/");
  // The browser's own URL check would stop an invalid URL before the
  // server sees it; the server's sentence is what this checks.
  await page.locator("#destination").evaluate((el) => (el.type = "text"));
  await page.getByRole("button", { name: "Create link" }).click();
  const err = page.locator("#destination-err");
  await err.waitFor();
  const api = await pbd.admin("POST", "/api/v1/links", { destination: "ftp://nope.example/" });
  assert.equal(api.status, 400);
  assert.equal((await err.textContent()).trim(), api.json.message, "the page shows the API's sentence");
});

test("create a link with a cost and click it", async () => {
  await open(page, "/ui/links");
  await page.getByLabel("Offer URL", { exact: true }).fill("https://offer.example/lp?sub1={click_id}");
  await page.getByLabel("Slug (optional)", { exact: true }).fill("spring");
  await page.getByLabel("Source", { exact: true }).selectOption(String(source.id));
  await page.getByLabel("Campaign", { exact: true }).fill("spring-sale");
  await page.getByLabel("Model", { exact: true }).selectOption("cpc");
  await page.getByLabel("Amount, percent or parameter", { exact: true }).fill("0.05");
  await page.getByRole("button", { name: "Create link" }).click();
  await page.waitForSelector("h1:has-text('spring')");
  trackingUrl = (await page.locator(".copy code").first().textContent()).trim();
  assert.equal(trackingUrl, `${pbd.base}/c/spring`);
  const r = await fetch(trackingUrl, { redirect: "manual", headers: { "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36" } });
  assert.equal(r.status, 302);
  clickId = new URL(r.headers.get("location")).searchParams.get("sub1");
  assert.ok(clickId);
});

test("the postback appears green on the Postbacks page without a reload", async () => {
  await open(page, "/ui/postbacks");
  await page.evaluate(() => (window.__notReloaded = true));
  const url = new URL(postbackUrl);
  const q = new URLSearchParams();
  for (const [k] of url.searchParams) q.set(k, "");
  // Fill the preset's parameters the way Everflow would.
  const fire = new URL(`${pbd.base}${url.pathname}`);
  const mapping = await pbd.admin("GET", `/api/v1/sources/${source.id}`);
  const p = mapping.json.effective_params;
  fire.searchParams.set(p.click_id, clickId);
  fire.searchParams.set(p.amount, "12.50");
  fire.searchParams.set(p.transaction_id, "tx-1");
  const r = await fetch(fire);
  assert.equal(r.status, 200, await r.text());
  await page.waitForSelector("tbody#log tr .badge.ok", { timeout: 10000 });
  assert.equal(await page.evaluate(() => window.__notReloaded), true, "the row came without a reload");
  assert.match(await page.locator("tbody#log tr").first().textContent(), /matched/);
});

test("the conversion is in Reports", async () => {
  await open(page, "/ui/reports?range=today&g1=campaign");
  const row = page.locator("#report tbody tr", { hasText: "spring-sale" });
  await row.waitFor();
  const cells = await row.locator("td").allTextContents();
  // campaign, clicks, unique, bots, conversions, pending, revenue, cost, profit
  assert.equal(cells[0].trim(), "spring-sale");
  assert.equal(cells[1].trim(), "1");
  assert.equal(cells[4].trim(), "1");
  assert.equal(cells[6].trim(), "12.50");
  assert.equal(cells[7].trim(), "0.05");
  assert.match(await page.locator("#report thead").textContent(), /Revenue USD/);
  // Drill down: the row's value becomes a filter.
  await row.locator("a").first().click();
  await page.waitForSelector(".badge:has-text('campaign = spring-sale')");
  // CSV download.
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByText("Download CSV").click()]);
  assert.match(download.suggestedFilename(), /\.csv$/);
});

test("test-fire from the source page shows the verdict", async () => {
  await open(page, `/ui/sources/${source.id}`);
  await page.getByLabel("Amount", { exact: true }).fill("2.00");
  await page.getByRole("button", { name: "Fire a test postback" }).click();
  await page.waitForSelector("h2:has-text('Test-fire') .badge.ok");
  assert.match(await page.locator(".panel[role=status]").first().textContent(), /It works: the postback matched click/);
  // It is in the log like any postback.
  const events = (await pbd.admin("GET", `/api/v1/events?source=${source.id}&limit=1`)).json.items;
  assert.equal(events[0].result, "matched");
  assert.equal(events[0].user_agent, "postbackd test-fire (dashboard)");
});

test("a refused postback is replayed after fixing the mapping", async () => {
  // The network sends the click ID as `subid`, which the mapping does not read.
  const r = await fetch(`${new URL(postbackUrl).origin}${new URL(postbackUrl).pathname}?subid=${clickId}&payout=3.00&transaction_id=tx-2`);
  assert.equal(r.status, 400);
  await open(page, `/ui/sources/${source.id}`);
  await page.getByLabel("click_id", { exact: true }).fill("subid");
  await page.getByRole("button", { name: "Save mapping" }).click();
  await page.waitForURL(new RegExp(`/ui/sources/${source.id}$`));
  await open(page, "/ui/postbacks?result=refused");
  await page.locator("tbody#log tr a").first().click();
  await page.waitForSelector("h1:has-text('Postback')");
  page.once("dialog", (d) => d.accept());
  await page.getByRole("button", { name: "Replay with the current mapping" }).click();
  await page.waitForSelector("h1 .badge.ok");
  assert.match(await page.locator("h1").textContent(), /matched/);
  await shot(page, "postback");
});

test("the doctor checks a pasted URL and an alert is set up from the page", async () => {
  await open(page, `/ui/sources/${source.id}`);
  assert.match(await page.locator(".panel:has(h2:text('Health'))").textContent(), /Match rate, 1h/);
  await page.getByLabel("Postback URL", { exact: true }).fill(postbackUrl);
  await page.getByRole("button", { name: "Check" }).click();
  await page.waitForSelector("#doctor-result .badge.ok");
  // A URL cut short where the network's form ended.
  await page.getByLabel("Postback URL", { exact: true }).fill(postbackUrl.split("&")[0] + "&");
  await page.getByRole("button", { name: "Check" }).click();
  await page.waitForSelector("#doctor-result li .badge.warn");
  await open(page, "/ui/alerts");
  await page.getByLabel("Rule", { exact: true }).selectOption("match_rate_below");
  await page.getByLabel("Source", { exact: true }).selectOption(String(source.id));
  await page.getByLabel("Threshold", { exact: true }).fill("80");
  await page.getByLabel("URL (Slack, webhook)", { exact: true }).fill("https://hooks.slack.com/services/T000/B000/XXXXXXXX");
  await page.getByRole("button", { name: "Create alert" }).click();
  await page.waitForSelector("td:has-text('match_rate_below')");
  const api = (await pbd.admin("GET", "/api/v1/alerts")).json;
  assert.equal((api.items ?? api).length, 1);
});

test("a POST without the CSRF token is refused and changes nothing", async () => {
  const before = (await pbd.admin("GET", "/api/v1/sources")).json.items.length;
  const status = await page.evaluate(async () => {
    const r = await fetch("/ui/sources", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "name=sneaky" });
    return r.status;
  });
  assert.equal(status, 403);
  assert.equal((await pbd.admin("GET", "/api/v1/sources")).json.items.length, before);
});

test("a viewer sees no secret and gets 403 on a change", async () => {
  // A persistent context has one cookie jar: sign the admin out first.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/login/);
  const v = await newPage();
  await signIn(v, VIEWER);
  for (const path of ["/ui/sources", `/ui/sources/${source.id}`, "/ui/destinations", "/ui/postbacks"]) {
    await open(v, path);
    const html = await v.content();
    assert.ok(!html.includes(source.key), `${path} shows the source key to a viewer`);
  }
  assert.equal(await v.locator("form[action='/ui/sources']").count(), 0, "no create form for a viewer");
  const status = await v.evaluate(async () => {
    const csrf = document.querySelector("input[name=csrf]").value;
    const r = await fetch("/ui/sources", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `name=viewer-made&csrf=${encodeURIComponent(csrf)}` });
    return r.status;
  });
  assert.equal(status, 403);
  const names = (await pbd.admin("GET", "/api/v1/sources")).json.items.map((s) => s.name);
  assert.ok(!names.includes("viewer-made"));
  await v.getByRole("button", { name: "Sign out" }).click();
  await v.waitForURL(/\/login/);
});

test("every page: no console error, no other origin, under 300 KB, usable at 375 px", async () => {
  const p = await newPage();
  await signIn(p, ADMIN);
  const pages = ["/ui/overview", "/ui/reports", "/ui/postbacks", "/ui/conversions", "/ui/clicks", `/ui/clicks?id=${clickId}`,
    "/ui/sources", `/ui/sources/${source.id}`, "/ui/links", "/ui/links/spring", "/ui/destinations", "/ui/destinations/new?type=meta", "/ui/alerts", "/ui/users"];
  for (const path of pages) {
    const resp = await open(p, path);
    assert.equal(resp.status(), 200, path);
  }
  if (SHOTS) await seed();
  await p.setViewportSize({ width: 375, height: 800 });
  for (const path of ["/ui/overview", "/ui/reports", "/ui/postbacks", "/ui/sources"]) {
    await open(p, path);
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${path} scrolls sideways at 375 px by ${overflow} px`);
    await shot(p, `${path.split("/").pop()}-375`);
  }
  await p.setViewportSize({ width: 1280, height: 800 });
  for (const [path, name] of [["/ui/overview", "overview"], ["/ui/postbacks", "postbacks"], ["/ui/reports?range=today&g1=campaign&g2=sub1", "reports"]]) {
    await open(p, path);
    await shot(p, name);
  }
  // Keyboard: the first Tab reaches the skip link, and focus is visible.
  await open(p, "/ui/overview");
  await p.keyboard.press("Tab");
  const focused = await p.evaluate(() => ({ text: document.activeElement.textContent, outline: getComputedStyle(document.activeElement).outlineStyle }));
  assert.equal(focused.text, "Skip to content");
  assert.notEqual(focused.outline, "none");
  await p.close();
  for (const v of visited) {
    assert.ok(v.bytes <= MAX_PAGE_BYTES, `${v.path} loaded ${v.bytes} bytes`);
    assert.deepEqual(v.foreign, [], `${v.path} made requests to another origin`);
  }
  const heaviest = visited.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  console.log(`heaviest page: ${heaviest.path}, ${heaviest.bytes} bytes`);
  await page.close();
  assert.deepEqual(errors, []);
});
