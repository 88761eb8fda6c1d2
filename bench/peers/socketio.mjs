// socketio.mjs: the Socket.IO peer of the benchmark (socket.io 4.8 from
// npm), with connection state recovery: a client that comes back within
// two minutes with the session id and the offset of the last event it got
// is put back in its rooms and sent what it missed (from this process's
// memory; nothing is written anywhere). WebSocket transport only, no
// compression, as for the other peers.
//
// A client names its room in the handshake (auth: {room}); it emits
// ("pub", room, body) and every other connection of the room receives
// ("msg", body, offset). bench/lg_proto_socketio.c speaks this over the
// Engine.IO v4 / Socket.IO v5 wire protocol.
// Usage: node bench/peers/socketio.mjs PORT  (listens on 127.0.0.1; 0 picks)
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const port = Number(process.argv[2] || 8080);
const http = createServer();
const io = new Server(http, {
  transports: ['websocket'],
  perMessageDeflate: false,
  serveClient: false,
  connectionStateRecovery: { maxDisconnectionDuration: 2 * 60 * 1000, skipMiddlewares: true },
});
io.on('connection', (socket) => {
  // A recovered session is back in its rooms already.
  const room = socket.handshake.auth && socket.handshake.auth.room;
  if (!socket.recovered && typeof room === 'string' && room) socket.join(room);
  socket.on('pub', (to, body) => {
    if (typeof to === 'string') socket.to(to).emit('msg', body);
  });
});
// Port 0 picks one; the line says which (bench/run reads it).
http.listen(port, '127.0.0.1', () => console.log(`listening ${http.address().port}`));
