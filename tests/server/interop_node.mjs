// Interop test: a client parley did not write (@grpc/grpc-js with
// @grpc/proto-loader reading proto/ at test time) against a real parleyd.
// Exercises every RPC, replay then live on Connect, idempotent publish, bad
// tokens and malformed requests.
//
// usage: node interop_node.mjs PARLEYD_BINARY
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, readFileSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const require = createRequire(join(root, 'package.json'));
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const SECRET = 'interop-node-secret-0123456789abcdef!!';
const binary = process.argv[2];
const tmp = mkdtempSync(join(tmpdir(), 'parley-node-'));
let child = null;
let failures = 0;

function cleanup() {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(1));

function check(cond, what) {
  if (cond) console.log('ok:', what);
  else { failures++; console.log('FAIL:', what); }
}

const b64url = (b) => Buffer.from(b).toString('base64url');
function token(sub, role = 'participant', expIn = 3600, secret = SECRET) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ sub, name: 'User ' + sub, role, exp: Math.floor(Date.now() / 1000) + expIn }));
  const sig = createHmac('sha256', secret).update(head + '.' + body).digest('base64url');
  return `${head}.${body}.${sig}`;
}
function md(tok) {
  const m = new grpc.Metadata();
  if (tok) m.set('authorization', 'Bearer ' + tok);
  return m;
}

function startServer() {
  return new Promise((res, rej) => {
    const log = openSync(join(tmp, 'parleyd.log'), 'a');
    child = spawn(binary, ['--listen', '127.0.0.1:0', '--unix', join(tmp, 'p.sock'),
      '--db', join(tmp, 'parley.db'), '--rooms', 'lobby', '--user-rate', '0'],
    { env: { ...process.env, PARLEY_JWT_SECRET: SECRET }, stdio: ['ignore', 'pipe', log] });
    const timer = setTimeout(() => rej(new Error('parleyd not ready in time')), 20000);
    child.on('exit', (c) => rej(new Error('parleyd exited early: ' + c)));
    createInterface({ input: child.stdout }).on('line', (l) => {
      if (l.startsWith('parleyd listening on ')) { clearTimeout(timer); res(l.split(' ')[3]); }
    });
  });
}

function unary(client, method, req, meta) {
  return new Promise((res) => {
    client[method](req, meta, (err, resp) => res({ err, resp }));
  });
}

function expectError(r, code, parleyCode, what) {
  const got = r.err ? r.err.metadata.get('parley-error-code')[0] : undefined;
  check(r.err && r.err.code === code && (parleyCode === null || got === parleyCode),
    `${what} -> ${code}/${parleyCode} (got ${r.err ? r.err.code : 'OK'}/${got}: ${r.err ? r.err.details : ''})`);
}

// A Connect stream with an awaitable frame queue.
function openStream(client, tok) {
  const call = client.Connect(md(tok));
  const frames = [];
  let waiter = null, ended = null;
  call.on('data', (f) => { frames.push(f); if (waiter) { waiter(); waiter = null; } });
  call.on('error', (e) => { ended = e; if (waiter) { waiter(); waiter = null; } });
  call.on('end', () => { ended = ended || 'end'; if (waiter) { waiter(); waiter = null; } });
  return {
    call,
    async next(ms = 10000) {
      const t0 = Date.now();
      while (!frames.length) {
        if (ended) return null;
        if (Date.now() - t0 > ms) throw new Error('timeout waiting for a frame');
        await new Promise((r) => { waiter = r; setTimeout(r, 200); });
      }
      return frames.shift();
    },
    get ended() { return ended; },
  };
}

async function main() {
  const addr = await startServer();
  const def = protoLoader.loadSync(['parley/v1/history.proto', 'parley/v1/stream.proto'], {
    includeDirs: [join(root, 'proto')], longs: String, enums: String, defaults: true, oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def).parley.v1;
  const creds = grpc.credentials.createInsecure();
  const history = new pkg.History(addr, creds);
  const stream = new pkg.Stream(addr, creds);
  const raw = new grpc.Client(addr, creds);
  const S = grpc.status;
  const org = token('olga', 'organizer'), pat = token('pat'), quinn = token('quinn');

  // Rooms
  let r = await unary(history, 'CreateRoom', { name: 'node-room' }, md(org));
  check(!r.err && r.resp.created && r.resp.room.name === 'node-room', 'CreateRoom');
  r = await unary(history, 'CreateRoom', { name: 'node-room' }, md(org));
  check(!r.err && !r.resp.created, 'CreateRoom of an existing room');
  expectError(await unary(history, 'CreateRoom', { name: 'x' }, md(pat)), S.PERMISSION_DENIED, 'PERMISSION_DENIED', 'participant CreateRoom');
  r = await unary(history, 'GetRoom', { name: 'node-room' }, md(pat));
  check(!r.err && r.resp.room.headRev === '0', 'GetRoom');
  expectError(await unary(history, 'GetRoom', { name: 'nope' }, md(pat)), S.NOT_FOUND, 'ROOM_NOT_FOUND', 'GetRoom unknown room');

  // Publish and idempotency
  r = await unary(stream, 'Publish', { room: 'node-room', clientMsgId: 'n1', body: 'hi from node' }, md(pat));
  check(!r.err && r.resp.message.seq === '1' && !r.resp.duplicate && r.resp.message.author.id === 'pat', 'Publish');
  r = await unary(stream, 'Publish', { room: 'node-room', clientMsgId: 'n1', body: 'retry' }, md(pat));
  check(!r.err && r.resp.duplicate && r.resp.message.seq === '1' && r.resp.message.body === 'hi from node', 'Publish repeat is a duplicate');
  for (let i = 2; i <= 4; i++) await unary(stream, 'Publish', { room: 'node-room', clientMsgId: 'n' + i, body: 'm' + i }, md(quinn));
  expectError(await unary(stream, 'Publish', { room: 'nope', clientMsgId: 'z', body: 'b' }, md(pat)), S.NOT_FOUND, 'ROOM_NOT_FOUND', 'Publish to unknown room');

  // History
  r = await unary(history, 'GetMessage', { room: 'node-room', seq: 3 }, md(pat));
  check(!r.err && r.resp.message.body === 'm3', 'GetMessage');
  r = await unary(history, 'EditMessage', { room: 'node-room', seq: 1, body: 'edited' }, md(pat));
  check(!r.err && r.resp.message.rev === '5' && r.resp.message.body === 'edited', 'EditMessage');
  expectError(await unary(history, 'EditMessage', { room: 'node-room', seq: 2, body: 'no' }, md(pat)), S.PERMISSION_DENIED, 'PERMISSION_DENIED', "EditMessage of another's message");
  r = await unary(history, 'DeleteMessage', { room: 'node-room', seq: 2 }, md(quinn));
  check(!r.err && r.resp.message.deleted && r.resp.message.rev === '6', 'DeleteMessage');
  r = await unary(history, 'ListMessages', { room: 'node-room', limit: 2 }, md(pat));
  check(!r.err && r.resp.messages.map((m) => m.seq).join() === '3,4' && r.resp.hasMore && r.resp.room.headRev === '6', 'ListMessages latest');
  r = await unary(history, 'ListMessages', { room: 'node-room', beforeSeq: 3 }, md(pat));
  check(!r.err && r.resp.messages.map((m) => m.seq).join() === '1,2', 'ListMessages beforeSeq');
  r = await unary(history, 'ListMessages', { room: 'node-room', afterRev: 3 }, md(pat));
  check(!r.err && r.resp.messages.map((m) => m.rev).join() === '4,5,6', 'ListMessages afterRev');

  // Tokens and malformed requests
  expectError(await unary(history, 'GetRoom', { name: 'node-room' }, md(null)), S.UNAUTHENTICATED, 'UNAUTHENTICATED', 'no token');
  expectError(await unary(history, 'GetRoom', { name: 'node-room' }, md(token('pat', 'participant', 3600, 'wrong-secret-wrong-secret-wrong-secret'))), S.UNAUTHENTICATED, 'UNAUTHENTICATED', 'wrong secret');
  expectError(await unary(history, 'GetRoom', { name: 'node-room' }, md(token('pat', 'participant', -10))), S.UNAUTHENTICATED, 'TOKEN_EXPIRED', 'expired token');
  const rawCall = (path, bytes) => new Promise((res) => raw.makeUnaryRequest(path, (b) => b, (b) => b, bytes, md(pat), (err, resp) => res({ err, resp })));
  expectError(await rawCall('/parley.v1.History/GetMessage', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])), S.INVALID_ARGUMENT, 'MALFORMED', 'malformed bytes');
  r = await unary(history, 'GetRoom', { name: 'node-room' }, md(pat));
  check(!r.err, 'server answers after malformed bytes');

  // Connect: replay then live
  const st = openStream(stream, pat);
  st.call.write({ requestId: 1, subscribe: { room: 'node-room', resumeAfterRev: 2 } });
  const revs = [];
  let f;
  while ((f = await st.next()) && f.kind === 'event') { check(f.event.replay, 'replay event flagged'); revs.push(f.event.message.rev); }
  check(revs.join() === '3,4,5,6', 'replay after rev 2 -> 3..6 (got ' + revs.join() + ')');
  check(f && f.kind === 'subscribed' && f.requestId === '1' && f.subscribed.room.headRev === '6', 'Subscribed after the replay');
  await unary(stream, 'Publish', { room: 'node-room', clientMsgId: 'live', body: 'live one' }, md(quinn));
  f = await st.next();
  check(f && f.kind === 'event' && !f.event.replay && f.event.message.rev === '7' && f.event.type === 'EVENT_TYPE_CREATED', 'live event');
  st.call.write({ requestId: 2, publish: { room: 'node-room', clientMsgId: 'sn1', body: 'on the stream' } });
  const got = [await st.next(), await st.next()];
  const ack = got.find((x) => x && x.kind === 'ack');
  check(ack && ack.requestId === '2' && ack.ack.message.seq === '6' && !ack.ack.duplicate, 'Connect publish acked');
  check(got.some((x) => x && x.kind === 'event' && x.event.message.rev === '8'), 'own publish as event');
  st.call.write({ requestId: 3, publish: { room: 'node-room', clientMsgId: 'sn1', body: 'again' } });
  f = await st.next();
  check(f && f.kind === 'ack' && f.ack.duplicate && f.requestId === '3', 'Connect duplicate ack');
  st.call.write({ requestId: 4, ping: { nonce: 12345 } });
  f = await st.next();
  check(f && f.kind === 'pong' && f.pong.nonce === '12345', 'Ping -> Pong');
  st.call.write({ requestId: 5, subscribe: { room: 'nope' } });
  f = await st.next();
  check(f && f.kind === 'error' && f.error.code === 'ERROR_CODE_ROOM_NOT_FOUND' && f.requestId === '5', 'unknown room -> error frame');
  st.call.cancel();

  const bad = openStream(stream, null);
  bad.call.write({ requestId: 1, ping: { nonce: 1 } });
  f = await bad.next();
  check(f === null && bad.ended && bad.ended.code === S.UNAUTHENTICATED, 'Connect without token -> UNAUTHENTICATED');

  history.close(); stream.close(); raw.close();
  const code = await new Promise((res) => { child.on('exit', (c) => res(c)); child.kill('SIGTERM'); });
  check(code === 0, 'parleyd exits 0 on SIGTERM (got ' + code + ')');
}

main().catch((e) => { failures++; console.log('FAIL:', e.stack || e); }).finally(() => {
  if (failures) {
    try { console.log(readFileSync(join(tmp, 'parleyd.log'), 'utf8')); } catch {}
    console.log(failures + ' failure(s)');
    process.exit(1);
  }
  console.log('all node interop checks passed');
  process.exit(0);
});
