// ws-broadcast.mjs: the "plain Node ws" peer of the benchmark. Rooms by URL
// path; every message is sent to the other connections of the same room.
// Usage: node bench/peers/ws-broadcast.mjs PORT  (listens on 127.0.0.1; port
// 0 picks one; prints "listening PORT" with the port it got)
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2] ?? 8080);
const rooms = new Map();
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
wss.on('connection', (ws, req) => {
  const room = req.url || '/';
  if (!rooms.has(room)) rooms.set(room, new Set());
  const peers = rooms.get(room);
  peers.add(ws);
  ws.on('message', (data, isBinary) => {
    for (const p of peers) if (p !== ws && p.readyState === 1) p.send(data, { binary: isBinary });
  });
  ws.on('close', () => { peers.delete(ws); if (!peers.size) rooms.delete(room); });
  ws.on('error', () => {});
});
wss.on('listening', () => console.log(`listening ${wss.address().port}`));
