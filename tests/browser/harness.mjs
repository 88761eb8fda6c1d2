// harness: starts the real parleyd and parley-gateway for the browser tests
// (temp dir, temp database, a port the OS picks, shared JWT secret), builds
// the web bundle and demo page, the @parley/chat package and the example
// apps, serves pages from origins of their own, and provides bounded waits.
// Every child process is killed when the test process ends, however it ends.
import { spawn, execFileSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const repoRoot = resolve(fileURLToPath(new URL("../..", import.meta.url)));

const children = new Set();
function killAll() {
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch {
      /* gone */
    }
  }
}
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}
// A hard bound below ctest's TIMEOUT (600 s): a SIGKILL from ctest would
// leave the servers running, this exit does not.
const WATCHDOG_S = Number(process.env.PARLEY_E2E_WATCHDOG_S ?? 480);
setTimeout(() => {
  console.error(`e2e watchdog: still running after ${WATCHDOG_S} s, killing everything`);
  process.exit(1);
}, WATCHDOG_S * 1000).unref();

export function tempDir(prefix = "parley-e2e-") {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; throws after `timeoutMs`. */
export async function waitFor(fn, timeoutMs, what = "condition", everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    await sleep(everyMs);
  }
}

/** A started child process whose output goes to a log file. */
export function startProcess(name, bin, args, { cwd, env, logDir }) {
  const log = createWriteStream(join(logDir, `${name}.log`), { flags: "a" });
  const child = spawn(bin, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  // What it printed, for waitForOutput (a server reports the port it got).
  child.output = "";
  child.stdout.on("data", (d) => {
    child.output += d.toString();
  });
  children.add(child);
  child.exited = new Promise((r) =>
    child.once("exit", (code, signal) => {
      children.delete(child);
      r({ code, signal });
    }),
  );
  child.once("error", (e) => log.write(`spawn error: ${e.message}\n`));
  return child;
}

/** Waits until the child printed something matching `rx`; the match. */
export async function waitForOutput(child, rx, timeoutMs, what) {
  return waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`${what}: exited with ${child.exitCode}`);
      return child.output.match(rx);
    },
    timeoutMs,
    what,
    50,
  );
}

export async function stopProcess(child, signal = "SIGTERM", timeoutMs = 10_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const t = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  await child.exited;
  clearTimeout(t);
}

function canConnect(opts) {
  return new Promise((r) => {
    const s = net.connect(opts);
    const done = (ok) => {
      s.destroy();
      r(ok);
    };
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
    setTimeout(() => done(false), 1000);
  });
}

/** HS256 JWT with the team's claims (sub, name, role, exp). */
export function mintToken(secret, sub, name = sub, role = "participant", ttlS = 3600) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const head = b64({ alg: "HS256", typ: "JWT" });
  const body = b64({ sub, name, role, exp: Math.floor(Date.now() / 1000) + ttlS });
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

/**
 * Both processes run in development mode (the gateway serves
 * /v1/dev/token), which refuses a real secret: the test's secret becomes
 * their shared dev secret, `dir`/var/dev-secret (mode 600), where parleyd
 * --dev (database in `dir`/var) and the gateway (cwd `dir`) look for it.
 */
function writeDevSecret(dir, secret) {
  mkdirSync(join(dir, "var"), { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, "var", "dev-secret"), `${secret}\n`, { mode: 0o600 });
}

/** parleyd --dev on a unix socket in `dir`, with its database in `dir`/var. */
export class Core {
  constructor({ bin, dir, secret, logDir }) {
    Object.assign(this, { bin, dir, secret, logDir });
    this.sock = join(dir, "parleyd.sock");
    this.db = join(dir, "var", "parley.db");
  }

  async start() {
    rmSync(this.sock, { force: true });
    writeDevSecret(this.dir, this.secret);
    this.proc = startProcess(
      "parleyd",
      this.bin,
      ["--listen", "none", "--unix", this.sock, "--db", this.db, "--rooms", "lobby", "--dev"],
      { cwd: this.dir, env: {}, logDir: this.logDir },
    );
    await waitFor(
      async () => {
        if (this.proc.exitCode !== null) throw new Error(`parleyd exited with ${this.proc.exitCode}`);
        return existsSync(this.sock) && (await canConnect({ path: this.sock }));
      },
      20_000,
      "parleyd to listen",
    );
  }

  async kill() {
    this.proc.kill("SIGKILL");
    await this.proc.exited;
  }

  async stop() {
    await stopProcess(this.proc);
  }

  /** SIGTERM, then how it exited. */
  async stopped() {
    await stopProcess(this.proc);
    return this.proc.exited;
  }
}

/** parley-gateway in dev mode on a free port, serving `www`. */
export class Gateway {
  /** `args`: extra flags, e.g. ["--origin", "http://localhost:5173"]. */
  constructor({ bin, dir, secret, logDir, upstream, www, args = [] }) {
    Object.assign(this, { bin, dir, secret, logDir, upstream, www, args });
  }

  /** Binds port 0: the OS picks a free port and the gateway prints it. */
  async start() {
    writeDevSecret(this.dir, this.secret);
    this.proc = startProcess(
      "parley-gateway",
      this.bin,
      [
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        `unix:${this.upstream}`,
        "--static",
        this.www,
        "--dev",
        ...(this.args ?? []),
      ],
      { cwd: this.dir, env: {}, logDir: this.logDir },
    );
    const m = await waitForOutput(
      this.proc,
      /parley-gateway listening on http:\/\/127\.0\.0\.1:(\d+)\//,
      20_000,
      "parley-gateway to print its port",
    );
    this.port = Number(m[1]);
    this.url = `http://127.0.0.1:${this.port}`;
    await this.healthy(20_000);
  }

  async healthy(timeoutMs) {
    await waitFor(
      async () => {
        if (this.proc.exitCode !== null) throw new Error(`gateway exited with ${this.proc.exitCode}`);
        const r = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(2000) });
        return r.status === 200;
      },
      timeoutMs,
      "gateway /healthz to answer 200",
    );
  }

  /** Every stored message of a room, straight from the gateway's REST API. */
  async messages(room, token) {
    const r = await fetch(`${this.url}/v1/rooms/${room}/messages?limit=1000`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(5000),
    });
    if (r.status !== 200) throw new Error(`GET messages: HTTP ${r.status} ${await r.text()}`);
    const body = await r.json();
    if (body.hasMore) throw new Error("more than 1000 messages: the test expects fewer");
    return (body.messages ?? []).map((m) => ({
      seq: Number(m.seq),
      body: m.body ?? "",
      clientMsgId: m.clientMsgId ?? "",
      author: m.author?.id ?? "",
      deleted: m.deleted === true,
    }));
  }

  async stop() {
    await stopProcess(this.proc);
  }

  /** SIGTERM, then how it exited. */
  async stopped() {
    await stopProcess(this.proc);
    return this.proc.exited;
  }
}

/** Builds the script-tag bundle and the demo page into `outDir` (like web/dist). */
export function buildWeb(outDir) {
  execFileSync("npx", ["--no-install", "vite", "build", "--outDir", outDir, "--emptyOutDir", "--logLevel", "warn"], {
    cwd: join(repoRoot, "web"),
    stdio: ["ignore", "inherit", "inherit"],
    timeout: 120_000,
  });
  for (const f of ["index.html", "demo.js", "parley-chat.js"]) {
    if (!existsSync(join(outDir, f))) throw new Error(`web build did not produce ${f}`);
  }
}

export function newSecret() {
  return randomBytes(32).toString("hex");
}

/**
 * Builds the @parley/chat package into web/dist (tsc modules + bundles), the
 * way `npm run build -w web` does: the example apps install the package from
 * the workspace and import its dist like any npm consumer.
 */
export function buildPackage() {
  execFileSync("npm", ["run", "--silent", "build", "-w", "web"], {
    cwd: repoRoot,
    stdio: ["ignore", "ignore", "inherit"],
    timeout: 180_000,
  });
  if (!existsSync(join(repoRoot, "web/dist/index.js"))) throw new Error("web build did not produce dist/index.js");
}

/** Builds examples/<name> (its own `npm run build`) into `outDir`. */
export function buildExample(name, outDir) {
  execFileSync("npm", ["run", "--silent", "build", "-w", `examples/${name}`, "--", "--outDir", outDir, "--logLevel", "warn"], {
    cwd: repoRoot,
    stdio: ["ignore", "ignore", "inherit"],
    timeout: 180_000,
  });
  if (!existsSync(join(outDir, "index.html"))) throw new Error(`examples/${name} build did not produce index.html`);
}

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
  ".svg": "image/svg+xml",
  ".json": "application/json",
};

/**
 * Serves `dir` over HTTP on 127.0.0.1 with a port the OS picks, in this
 * process: a web app's own origin. Unknown paths get index.html (as a
 * single-page app host does). `close()` stops it.
 */
export async function serveStatic(dir) {
  const root = resolve(dir);
  const server = http.createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    let file = normalize(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) {
      res.writeHead(403).end();
      return;
    }
    if (!existsSync(file) || statSync(file).isDirectory()) {
      const index = join(file, "index.html");
      file = existsSync(index) ? index : join(root, "index.html");
    }
    res.writeHead(200, { "content-type": MIME[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" });
    res.end(readFileSync(file));
  });
  server.keepAliveTimeout = 1000;
  await new Promise((r, j) => {
    server.once("error", j);
    server.listen(0, "127.0.0.1", r);
  });
  const { port } = server.address();
  return {
    port,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };
}

/**
 * Messages written before the pages open, by another user through the
 * package's headless client running in Node (the bundle built into `www`,
 * with `ws` as its WebSocket, from the gateway's own origin).
 */
export async function postAs({ www, gatewayUrl, token, room, bodies }) {
  const { default: WebSocket } = await import("ws");
  const lib = await import(pathToFileURL(join(www, "parley-chat.js")).href);
  class OriginWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, { origin: gatewayUrl });
    }
  }
  const client = lib.connect({ url: gatewayUrl, token, WebSocket: OriginWebSocket, network: null });
  try {
    client.subscribe(room);
    await waitFor(() => client.state === "live", 15_000, "the headless client to go live");
    for (const body of bodies) {
      client.send(room, body);
      await waitFor(() => client.pending().length === 0, 10_000, `"${body}" to be acked`);
    }
  } finally {
    client.close();
  }
}

/** Chromium flags for a quiet, unthrottled headless run. */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding",
  "--disable-backgrounding-occluded-windows",
];
