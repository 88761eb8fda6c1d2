// test_ws_node.mjs: end-to-end checks of parley-gateway with the Node `ws`
// client (root devDependency) and Node's fetch. Started by test_node.py,
// which runs parleyd + the gateway and passes GW_WS, GW_HTTP and tokens
// (TOKEN_ANN, TOKEN_BOB, TOKEN_BAD) in the environment. Exits 1 on failure.
import assert from 'node:assert/strict';
import WebSocket from 'ws';

const WS = process.env.GW_WS;
const HTTP = process.env.GW_HTTP;
const T = 10000;

function open(opts = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(WS, opts.protocol ?? 'parley.v1.json', opts);
    const inbox = [];
    const waiters = [];
    ws.log = []; // every frame, in arrival order
    ws.on('message', (data, isBinary) => {
      const f = isBinary ? data : JSON.parse(data.toString());
      ws.log.push(f);
      const w = waiters.findIndex((x) => x.match(f));
      if (w >= 0) waiters.splice(w, 1)[0].resolve(f);
      else inbox.push(f);
    });
    ws.closed = new Promise((res) => ws.on('close', (code) => res(code)));
    ws.next = (match = () => true) => {
      const i = inbox.findIndex(match);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
      return new Promise((res, rej) => {
        const t = setTimeout(() => rej(new Error('timeout waiting for a frame')), T);
        waiters.push({ match, resolve: (f) => { clearTimeout(t); res(f); } });
      });
    };
    let rid = 0;
    ws.call = (frame) => {
      const id = String(++rid);
      ws.send(JSON.stringify({ requestId: id, ...frame }));
      return ws.next((f) => f.requestId === id);
    };
    ws.on('open', () => resolve(ws));
    ws.on('unexpected-response', (req, res) => reject(Object.assign(new Error('http ' + res.statusCode), { status: res.statusCode })));
    ws.on('error', reject);
  });
}

async function authed(token) {
  const ws = await open();
  const f = await ws.call({ authenticate: { token } });
  assert.ok(f.authenticated, JSON.stringify(f));
  return ws;
}

async function subscribe(ws, room, after = '0') {
  const f = await ws.call({ subscribe: { room, resumeAfterRev: after } });
  return f;
}

const cases = {
  async flow() {
    const ann = await authed(process.env.TOKEN_ANN);
    const bob = await authed(process.env.TOKEN_BOB);
    const s = await bob.call({ subscribe: { room: 'lobby' } });
    assert.equal(s.subscribed.room.name, 'lobby');
    const ack = await ann.call({ publish: { room: 'lobby', clientMsgId: 'n1', body: 'from node' } });
    assert.equal(ack.ack.message.author.id, 'ann');
    const ev = await bob.next((f) => f.event);
    assert.equal(ev.event.message.body, 'from node');
    assert.equal(ev.event.type, 'EVENT_TYPE_CREATED');
    // resume after a cut: exactly the missed events, once, in order
    const last = ev.event.message.rev;
    bob.close();
    await bob.closed;
    const missed = [];
    for (let i = 0; i < 4; i++) {
      const a = await ann.call({ publish: { room: 'lobby', clientMsgId: 'n2-' + i, body: 'missed ' + i } });
      missed.push(a.ack.message.rev);
    }
    const bob2 = await authed(process.env.TOKEN_BOB);
    const from = bob2.log.length;
    const s2 = await bob2.call({ subscribe: { room: 'lobby', resumeAfterRev: last } });
    // Every replayed event arrived before Subscribed, in order, flagged
    // replay; Subscribed carries the last of them.
    const before = bob2.log.slice(from, bob2.log.indexOf(s2));
    assert.ok(before.every((f) => f.event), JSON.stringify(before));
    assert.deepEqual(before.map((f) => f.event.message.rev), missed);
    assert.ok(before.every((f) => f.event.replay === true));
    assert.equal(s2.subscribed.room.headRev, missed[missed.length - 1]);
    // None after it: the Pong to a Ping sent after Subscribed is the next
    // frame (a late replayed event would have been queued before it).
    const at = bob2.log.length;
    const pong = await bob2.call({ ping: { nonce: '9' } });
    assert.equal(pong.pong.nonce, '9');
    assert.deepEqual(bob2.log.slice(at), [pong]);
    assert.equal(bob2.log.indexOf(s2), at - 1);
    // and then live
    const a = await ann.call({ publish: { room: 'lobby', clientMsgId: 'n3', body: 'live' } });
    const live = await bob2.next((f) => f.event && f.event.message.rev === a.ack.message.rev);
    assert.ok(!live.event.replay);
    assert.deepEqual(bob2.log.slice(at), [pong, live]);
    ann.close();
    bob2.close();
  },

  async badFrames() {
    const ws = await authed(process.env.TOKEN_ANN);
    const e = await ws.call({ subscribe: { room: 'no-such-room' } });
    assert.equal(e.error.code, 'ERROR_CODE_ROOM_NOT_FOUND');
    ws.send('{"requestId":"77","publish":');
    const m = await ws.next((f) => f.error);
    assert.equal(m.error.code, 'ERROR_CODE_MALFORMED');
    const p = await ws.call({ ping: { nonce: '5' } });
    assert.equal(p.pong.nonce, '5');
    ws.send('x'.repeat(100 * 1024));
    assert.equal(await ws.closed, 1009);

    const u = await authed(process.env.TOKEN_ANN);
    u.send(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]), { binary: false });
    assert.equal(await u.closed, 1007);
  },

  async auth() {
    const ws = await open();
    ws.send(JSON.stringify({ requestId: '1', authenticate: { token: process.env.TOKEN_BAD } }));
    const f = await ws.next();
    assert.equal(f.error.code, 'ERROR_CODE_UNAUTHENTICATED');
    assert.equal(f.error.fatal, true);
    assert.equal(await ws.closed, 4401);
    const ws2 = await open();
    ws2.send(JSON.stringify({ requestId: '1', ping: { nonce: '1' } }));
    assert.equal(await ws2.closed, 4401);
  },

  async origin() {
    await assert.rejects(open({ origin: 'https://attacker.example' }), (e) => e.status === 403);
    await assert.rejects(open({ protocol: [] }), (e) => e.status === 400);
    const ok = await open({ origin: 'http://localhost:3000' });
    ok.close();
  },

  async rest() {
    const h = { authorization: 'Bearer ' + process.env.TOKEN_ANN };
    let r = await fetch(HTTP + '/v1/rooms/lobby/messages?limit=2', { headers: h });
    assert.equal(r.status, 200);
    const body = await r.json();
    assert.ok(Array.isArray(body.messages) && body.messages.length === 2, JSON.stringify(body));
    assert.equal(body.messages[1].seq, body.room.headSeq);
    r = await fetch(HTTP + '/v1/rooms/lobby/messages');
    assert.equal(r.status, 401);
    assert.deepEqual(await r.json(), { code: 'UNAUTHENTICATED', detail: 'Authorization: Bearer <token> required' });
    r = await fetch(HTTP + '/v1/rooms/lobby/messages', { headers: { authorization: 'Bearer ' + process.env.TOKEN_BAD } });
    assert.equal(r.status, 401);
    assert.deepEqual(await r.json(), { code: 'UNAUTHENTICATED', detail: 'token invalid or expired' });
    r = await fetch(HTTP + '/v1/rooms/nope', { headers: h });
    assert.equal(r.status, 404);
    assert.equal((await r.json()).code, 'ROOM_NOT_FOUND');
  },
};

const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(cases);
let failed = 0;
for (const n of names) {
  try {
    await cases[n]();
    console.log('ok   node', n);
  } catch (e) {
    failed++;
    console.log('FAIL node', n, e);
  }
}
process.exit(failed ? 1 : 0);
