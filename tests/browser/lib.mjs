// Shared helpers of postbackd's browser tests (node --test, playwright-core
// driving the system's Chromium; never a downloaded browser):
//   startServer(binary, {env})  the postbackd binary on a free loopback port
//                               with a temporary data dir and admin token
//   serve(handler)              a small node http server on loopback (a
//                               landing page, a mock platform...)
//   launchBrowser()             Chromium with a fresh profile
//   watch(page)                 collects page errors and console errors
//   stopAll()                   stops everything started here
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const TOKEN = "browser-test-admin-token-0123456789";
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

const cleanups = [];

/** Stop everything this module started, newest first. */
export async function stopAll() {
  while (cleanups.length) {
    const f = cleanups.pop();
    try {
      await f();
    } catch {
      /* keep stopping the rest */
    }
  }
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Start `binary serve` on a free port. `env` adds POSTBACKD_* settings.
 * Returns {base, port, admin(method, path, body), stop(), output()}.
 */
export async function startServer(binary, { env = {} } = {}) {
  const port = await freePort();
  const dataDir = tempDir("postbackd-browser-");
  const child = spawn(binary, ["serve"], {
    env: {
      PATH: process.env.PATH,
      POSTBACKD_LISTEN: `127.0.0.1:${port}`,
      POSTBACKD_DATA_DIR: dataDir,
      POSTBACKD_ADMIN_TOKEN: TOKEN,
      RUST_LOG: "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  let running = true;
  exited.then(() => (running = false));
  const stop = async () => {
    if (running) {
      child.kill("SIGTERM");
      await exited;
    }
  };
  cleanups.push(stop);
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15000;
  for (;;) {
    if (!running) throw new Error(`postbackd exited at start:\n${out}`);
    try {
      const r = await fetch(`${base}/healthz`);
      if (r.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`postbackd did not answer /healthz:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const admin = async (method, path, body) => {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: r.status, json, text };
  };
  return { base, port, admin, stop, output: () => out };
}

/**
 * A node http server on a free loopback port; `handler(req, res, body)`
 * gets the request body read. Returns {base, port, close()}.
 */
export async function serve(handler) {
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      Promise.resolve(handler(req, res, Buffer.concat(chunks))).catch((e) => {
        res.statusCode = 500;
        res.end(String(e));
      });
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  const close = () =>
    new Promise((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    });
  cleanups.push(close);
  return { base: `http://127.0.0.1:${port}`, port, close };
}

/**
 * Chromium with a fresh profile: {context, newPage(), close()}. `options`
 * go to launchPersistentContext (userAgent, viewport...).
 */
export async function launchBrowser(options = {}) {
  const profile = tempDir("postbackd-chromium-");
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
    ],
    ...options,
  });
  const close = () => context.close();
  cleanups.push(close);
  return { context, newPage: () => context.newPage(), close };
}

/**
 * Collect a page's uncaught errors and console errors. `allow` lists
 * patterns of console errors a test expects (a refused connection...).
 * Returns the array the errors go into.
 */
export function watch(page, allow = []) {
  const errors = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !allow.some((re) => re.test(m.text()))) {
      errors.push(`console.error: ${m.text()}`);
    }
  });
  return errors;
}
