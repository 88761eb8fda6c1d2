// browser_tls: the chat component in Chromium over https and wss, the way
// users get it. The gateway serves a certificate from a test CA made by
// openssl at test time (tests/security/sechelp.py make_pki); Chromium trusts
// that CA because it is imported into the NSS database of the profile's
// HOME ($HOME/.pki/nssdb, where Chromium on Linux looks), not because
// certificate errors are ignored: a control run without the import must
// fail with a certificate error.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import {
  CHROMIUM_ARGS,
  buildWeb,
  newSecret,
  removeDir,
  repoRoot,
  startProcess,
  stopProcess,
  tempDir,
  waitFor,
  waitForOutput,
} from "../browser/harness.mjs";
import { items, say } from "../browser/pages.mjs";

const PARLEYD = process.env.PARLEYD;
const GATEWAY = process.env.PARLEY_GATEWAY;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ROOM = "lobby";

let dir, pki, core, gw, port, ctx, www;

function makePki(d) {
  const out = execFileSync(
    "/usr/bin/python3",
    ["-c", `import json, sys; sys.path.insert(0, ${JSON.stringify(join(repoRoot, "tests/security"))}); import sechelp; print(json.dumps(sechelp.make_pki(${JSON.stringify(d)})))`],
    { encoding: "utf8" },
  );
  return JSON.parse(out.trim().split("\n").pop());
}

/** A HOME whose NSS database trusts the test CA for TLS servers. */
function trustingHome(d, caPem) {
  const home = join(d, "home");
  const db = join(home, ".pki", "nssdb");
  mkdirSync(db, { recursive: true });
  execFileSync("certutil", ["-N", "-d", `sql:${db}`, "--empty-password"]);
  execFileSync("certutil", ["-A", "-d", `sql:${db}`, "-n", "parley-test-ca", "-t", "C,,", "-i", caPem]);
  return home;
}

describe("parley-chat over https and wss with a test CA", { timeout: 300_000 }, () => {
  before(async () => {
    dir = tempDir("parley-tls-e2e-");
    pki = makePki(dir);
    www = join(dir, "www");
    buildWeb(www);
    // development mode for the demo page's /v1/dev/token (loopback only);
    // the shared dev secret is made by parleyd in dir/var
    core = startProcess(
      "parleyd",
      PARLEYD,
      ["--listen", "none", "--unix", join(dir, "parleyd.sock"), "--db", join(dir, "var", "parley.db"), "--dev", "--rooms", ROOM],
      { cwd: dir, env: {}, logDir: dir },
    );
    await waitForOutput(core, /parleyd listening on/, 30_000, "parleyd");
    gw = startProcess(
      "parley-gateway",
      GATEWAY,
      ["--listen", "127.0.0.1:0", "--upstream", `unix:${join(dir, "parleyd.sock")}`, "--static", www, "--dev",
        "--tls-cert", pki.server, "--tls-key", pki.server_key, "--tls-chain", pki.inter],
      { cwd: dir, env: {}, logDir: dir },
    );
    const m = await waitForOutput(gw, /parley-gateway listening on https:\/\/127\.0\.0\.1:(\d+)\//, 30_000, "gateway");
    port = Number(m[1]);
  });

  after(async () => {
    await ctx?.close().catch(() => {});
    if (gw) await stopProcess(gw).catch(() => {});
    if (core) await stopProcess(core).catch(() => {});
    if (dir) removeDir(dir);
  });

  test("without the test CA, Chromium refuses the certificate (the control)", async () => {
    const plainHome = join(dir, "plain-home");
    mkdirSync(plainHome, { recursive: true });
    const c = await chromium.launchPersistentContext(join(dir, "profile-untrusting"), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      env: { ...process.env, HOME: plainHome },
    });
    try {
      const page = await c.newPage();
      await assert.rejects(page.goto(`https://127.0.0.1:${port}/`), /ERR_CERT_AUTHORITY_INVALID/);
    } finally {
      await c.close();
    }
  });

  test("with the test CA trusted: history, live and send over https + wss", async () => {
    const home = trustingHome(dir, pki.ca);
    ctx = await chromium.launchPersistentContext(join(dir, "profile"), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      env: { ...process.env, HOME: home },
    });
    ctx.setDefaultTimeout(30_000);
    const page = await ctx.newPage();
    const sockets = [];
    page.on("websocket", (ws) => sockets.push(ws.url()));
    await page.goto(`https://127.0.0.1:${port}/?name=Tess&user=tess&room=${ROOM}`);
    await page.waitForSelector("parley-chat[data-ready]", { timeout: 30_000 });
    assert.ok(await say(page, "sent over wss"));
    await waitFor(
      async () => (await items(page)).some((i) => i.body === "sent over wss" && i.pending !== "true"),
      20_000,
      "the message stored and shown",
    );
    assert.ok(sockets.length > 0 && sockets.every((u) => u.startsWith(`wss://127.0.0.1:${port}/`)), `sockets: ${sockets}`);
    const security = await page.evaluate(() => window.isSecureContext);
    assert.equal(security, true);
  });
});
