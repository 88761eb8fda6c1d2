// Moderation in the browser, as an event runs it: an organizer's page and a
// participant's page, each on an origin of its own, embed <parley-chat>
// (the gateway's module script) in the same room; the real parley-gateway
// and parleyd are on a third origin. Tokens grant per-room roles with the
// `rooms` claim (docs/api.md, "Example tokens"). While the participant
// watches, the organizer uses the element's own controls:
//
//   mute the participant  → their composer goes off with the reason, and a
//                           send through the element's API is refused
//   unmute                → it comes back on, and they post again
//   room → announcements  → read-only for them, live; the organizer still
//                           posts and they see it
//   room → open           → they post again
//
// Everything is asserted on what each user sees.
//
//   PARLEYD=path/to/parleyd PARLEY_GATEWAY=path/to/parley-gateway \
//     node --test tests/browser/rooms.e2e.test.mjs
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS, Core, Gateway, buildWeb, newSecret, removeDir, serveStatic, tempDir, waitFor } from "./harness.mjs";
import { items, recorder, say, waitReady } from "./pages.mjs";

const PARLEYD = process.env.PARLEYD;
const GATEWAY = process.env.PARLEY_GATEWAY;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ROOM = "lobby";
// A room event reaches a watching page well within this (it is one frame).
const LIVE_MS = 10_000;

if (!PARLEYD || !GATEWAY) {
  console.error("set PARLEYD and PARLEY_GATEWAY to the built binaries");
  process.exit(2);
}

/** HS256 JWT with a `rooms` claim: a role per room pattern. */
function roomsToken(secret, sub, name, rooms, ttlS = 3600) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const head = b64({ alg: "HS256", typ: "JWT" });
  const body = b64({ sub, name, rooms, exp: Math.floor(Date.now() / 1000) + ttlS });
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

let dir, secret, core, gw, ctx, olga, pat, patToken, participantUrl;
let sites = [];

/** The user's own view of the room, from the server (GET /v1/rooms/{room}: Room.me). */
async function me(token) {
  const r = await fetch(`${gw.url}/v1/rooms/${ROOM}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
  if (r.status !== 200) throw new Error(`GET room: HTTP ${r.status} ${await r.text()}`);
  return (await r.json()).me ?? {};
}

/** What a page's element shows: composer state and its notice, presence, host attributes. */
function view(page) {
  return page.evaluate(() => {
    const el = document.querySelector("parley-chat");
    const r = el.shadowRoot;
    const notice = r.querySelector("[part=composer-notice]");
    const moderation = r.querySelector("[part=moderation]");
    return {
      inputDisabled: r.querySelector("[part=input]").disabled,
      sendDisabled: r.querySelector("[part=send]").disabled,
      notice: notice.hidden ? null : notice.textContent,
      postRule: el.dataset.postRule ?? null,
      moderationShown: !moderation.hidden,
      roomMode: r.querySelector("[part=room-mode]").value,
      presence: r.querySelector("[part=presence]").textContent,
    };
  });
}

/** Clicks an organizer button on the newest message by `authorId` in the organizer's page. */
async function moderateLatest(authorId, part) {
  // The front tab: a background one gets no animation frames to settle in.
  await olga.bringToFront();
  const row = olga.locator(`parley-chat li[data-seq][data-author-id="${authorId}"]`).last();
  await row.hover();
  await row.locator(`[part=${part}]`).click({ timeout: 5000 });
}

async function setRoomMode(value) {
  await olga.bringToFront();
  await olga.locator("parley-chat [part=room-mode]").selectOption(value);
}

describe("an organizer moderates a room while a participant watches", { timeout: 300_000 }, () => {
  before(async () => {
    dir = tempDir("parley-rooms-");
    const logDir = join(dir, "logs");
    mkdirSync(logDir);
    secret = newSecret();
    const www = join(dir, "www");
    buildWeb(www);

    // Two pages on origins of their own (localhost and 127.0.0.1 are
    // different sites), the gateway on a third.
    mkdirSync(join(dir, "organizer"));
    mkdirSync(join(dir, "participant"));
    const organizerSite = await serveStatic(join(dir, "organizer"));
    const participantSite = await serveStatic(join(dir, "participant"));
    sites = [organizerSite, participantSite];
    const origins = {
      organizer: `http://localhost:${organizerSite.port}`,
      participant: `http://127.0.0.1:${participantSite.port}`,
    };

    core = new Core({ bin: PARLEYD, dir, secret, logDir });
    await core.start();
    gw = new Gateway({
      bin: GATEWAY,
      dir,
      secret,
      logDir,
      upstream: core.sock,
      www,
      args: ["--origin", origins.organizer, "--origin", origins.participant],
    });
    await gw.start();

    // Olga organizes this event's rooms; Pat attends them.
    const olgaToken = roomsToken(secret, "olga", "Olga", { [ROOM]: "organizer" });
    patToken = roomsToken(secret, "pat", "Pat", { [ROOM]: "participant" });
    const page = (token, mode) => `<!doctype html><html><head><meta charset="utf-8">
<script type="module" src="${gw.url}/parley-chat.js"></script></head>
<body><parley-chat room="${ROOM}" gateway="${gw.url}" token="${token}" mode="${mode}"></parley-chat></body></html>`;
    writeFileSync(join(dir, "organizer", "index.html"), page(olgaToken, "organizer"));
    // Pat's page asks for the organizer's face too: the server's role decides.
    writeFileSync(join(dir, "participant", "index.html"), page(patToken, "organizer"));

    ctx = await chromium.launchPersistentContext(join(dir, "chromium-profile"), {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 60_000,
      args: CHROMIUM_ARGS,
      viewport: { width: 900, height: 700 },
    });
    ctx.setDefaultTimeout(30_000);
    await ctx.addInitScript(recorder);
    olga = await ctx.newPage();
    pat = await ctx.newPage();
    await olga.goto(`${origins.organizer}/`);
    participantUrl = `${origins.participant}/`;
    await pat.goto(participantUrl);
    await waitReady(olga, 30_000);
    await waitReady(pat, 30_000);
  });

  after(async () => {
    await ctx?.close().catch(() => {});
    for (const s of sites) await s.close().catch(() => {});
    await gw?.stop();
    await core?.stop();
    if (dir) removeDir(dir);
  });

  test("the organizer's controls follow the server's role, not the mode attribute", async () => {
    const o = await view(olga);
    const p = await view(pat);
    assert.equal(o.moderationShown, true, "the organizer sees the room mode switch");
    assert.equal(o.roomMode, "open");
    assert.equal(p.moderationShown, false, "a participant asking for mode=organizer gets no controls");
    // Both are here: presence counts them on both pages.
    for (const page of [olga, pat]) {
      await waitFor(async () => (await view(page)).presence.startsWith("2 here"), LIVE_MS, "presence to show both users");
    }
    assert.match((await view(pat)).presence, /Olga/);
    assert.match((await view(pat)).presence, /Pat/);
  });

  test("muted: the participant's composer goes off with the reason, live; unmuted: back on", async () => {
    assert.ok(await say(pat, "hello from Pat"));
    await waitFor(async () => (await items(olga)).some((m) => m.body === "hello from Pat"), LIVE_MS, "olga to see Pat's message");
    assert.equal(await pat.locator("parley-chat [part=mute]").count(), 0, "no mute buttons for a participant");

    await moderateLatest("pat", "mute");
    const muted = await waitFor(async () => {
      const v = await view(pat);
      return v.inputDisabled && v.notice ? v : null;
    }, LIVE_MS, "Pat's composer to go off");
    assert.equal(muted.sendDisabled, true);
    assert.equal(muted.postRule, "MUTED");
    assert.match(muted.notice, /muted you/);
    // The element refuses to send while muted; the server would refuse it too.
    assert.equal(await pat.evaluate(() => document.querySelector("parley-chat").send("sneaking in")), null);
    const refused = await pat.evaluate(async () => {
      const c = document.querySelector("parley-chat").client;
      return new Promise((resolve) => {
        const off = c.on("send-error", (e) => {
          off();
          resolve({ code: e.code, rule: e.rule ?? "" });
        });
        c.send("lobby", "sent past the disabled composer");
      });
    });
    assert.deepEqual(refused, { code: "PERMISSION_DENIED", rule: "MUTED" });
    // The organizer is still writing; Pat still reads.
    assert.ok(await say(olga, "Olga while Pat is muted"));
    await waitFor(async () => (await items(pat)).some((m) => m.body === "Olga while Pat is muted"), LIVE_MS, "Pat to read Olga");

    await moderateLatest("pat", "unmute");
    await waitFor(async () => {
      const v = await view(pat);
      return !v.inputDisabled && v.notice === null && v.postRule === null;
    }, LIVE_MS, "Pat's composer to come back");
    assert.ok(await say(pat, "Pat after the unmute"));
    await waitFor(async () => (await items(olga)).some((m) => m.body === "Pat after the unmute"), LIVE_MS, "olga to see it");
    const stored = (await gw.messages(ROOM, roomsToken(secret, "olga", "Olga", { [ROOM]: "organizer" }))).map((m) => m.body);
    assert.ok(!stored.includes("sent past the disabled composer"), "the refused send was not stored");
  });

  test("announcements: read-only for the participant while watching, the organizer still posts", async () => {
    await setRoomMode("announcements");
    const ro = await waitFor(async () => {
      const v = await view(pat);
      return v.inputDisabled && v.postRule === "ANNOUNCEMENTS" ? v : null;
    }, LIVE_MS, "Pat's room to turn read-only");
    assert.match(ro.notice, /read-only/);
    const o = await view(olga);
    assert.equal(o.inputDisabled, false, "the organizer may still write");
    assert.equal(o.roomMode, "announcements");
    assert.ok(await say(olga, "Keynote starts in 5 minutes"));
    await waitFor(async () => (await items(pat)).some((m) => m.body === "Keynote starts in 5 minutes"), LIVE_MS, "Pat to receive the announcement");
    assert.equal((await view(pat)).inputDisabled, true, "still read-only after the announcement");

    await setRoomMode("open");
    await waitFor(async () => {
      const v = await view(pat);
      return !v.inputDisabled && v.notice === null;
    }, LIVE_MS, "Pat's room to open again");
    assert.ok(await say(pat, "Pat in the open room again"));
    await waitFor(async () => (await items(olga)).some((m) => m.body === "Pat in the open room again"), LIVE_MS, "olga to see it");
  });

  test("typing shows on the other page, and goes away", async () => {
    await pat.bringToFront();
    // Typed as a person types: a signal goes out at most every 2 s.
    await pat.locator("parley-chat [part=input]").pressSequentially("I am writing", { delay: 250 });
    const line = () => olga.evaluate(() => document.querySelector("parley-chat").shadowRoot.querySelector("[part=typing]").textContent);
    await waitFor(async () => (await line()) === "Pat is typing…", LIVE_MS, "Olga to see Pat typing");
    await pat.locator("parley-chat [part=input]").fill("");
    await waitFor(async () => (await line()) === "", LIVE_MS, "the typing line to clear");
  });

  test("read state: what Pat saw is marked read; what came while away is under a new-messages divider", async () => {
    await pat.bringToFront();
    const last = (await items(pat)).at(-1);
    await waitFor(async () => Number((await me(patToken)).lastReadSeq ?? 0) >= last.seq, LIVE_MS, "Pat's page to mark what it shows read");
    await pat.close();
    assert.ok(await say(olga, "while Pat was away 1"));
    assert.ok(await say(olga, "while Pat was away 2"));
    const away = await me(patToken);
    assert.equal(away.unreadCount, 2, "two unread for Pat on the server");
    pat = await ctx.newPage();
    await pat.goto(participantUrl);
    await waitReady(pat, 30_000);
    const rows = await pat.evaluate(() =>
      [...document.querySelector("parley-chat").shadowRoot.querySelectorAll("[part=messages] > li")]
        .filter((li) => li.getAttribute("part") !== "day")
        .map((li) => (li.getAttribute("part") === "unread-divider" ? "--" + li.textContent : li.querySelector("[part=body]").textContent)),
    );
    const at = rows.indexOf("--New messages");
    assert.ok(at > 0, `a divider in ${JSON.stringify(rows)}`);
    assert.deepEqual(rows.slice(at + 1), ["while Pat was away 1", "while Pat was away 2"]);
    // Shown on screen now: marked read on the server.
    await waitFor(async () => ((await me(patToken)).unreadCount ?? 0) === 0, LIVE_MS, "the two to be marked read");
  });
});
