"""tests/cluster/wsclient.py: chat clients that behave like the component
(web/): a WebSocket session on a gateway (JSON subprotocol), subscribed to
its rooms from the last rev it applied, publishing with client message ids
it retries until acked, a heartbeat, and on any loss of the session a
reconnect (to the next gateway of its list) that resumes every room. Every
event applied is checked on the spot: a rev at or below the last one is a
duplicate, one past last + 1 a gap (the rooms of these tests hold only new
messages, so their revs are dense).

All clients of a Fleet run on one asyncio loop in a background thread; the
test drives them from its own thread (start, stop, snapshot).
"""
import asyncio
import json
import threading
import time

import websockets

JSON = "parley.v1.json"


class ChatClient:
    def __init__(self, name, gateways, rooms, token, publish_every=0.05, publish=True):
        self.name = name
        self.gateways = list(gateways)
        self.rooms = list(rooms)
        self.token = token
        self.publish_every = publish_every
        self.publishing = publish
        self.last = {r: 0 for r in rooms}
        self.count = {r: 0 for r in rooms}
        self.dups, self.gaps = [], []
        self.acked = {}          # cid -> (room, seq)
        self.sent = 0            # publishes begun (each acked in the end, or still pending)
        self.pending = None      # (room, cid, body) waiting for its ack
        self.sessions = 0        # sessions opened
        self.closes = []         # (time, why) of every session lost
        self.last_event_t = None
        self.max_event_gap = 0.0  # longest wait between two events while publishing runs
        self.event_times = []    # time of each applied event (pause measurement)
        self.ack_times = []      # time of each ack
        self.errors = []         # publish errors answered by the gateway
        self.stop = False
        self.heartbeat_lost = False
        self.gw_index = 0

    # -- one session ------------------------------------------------------

    async def _session(self, url):
        async with websockets.connect(url, subprotocols=[JSON], open_timeout=5, close_timeout=1,
                                      ping_interval=None, max_size=None) as ws:
            rid = 0
            waiters = {}

            async def call(frame, timeout=10):
                nonlocal rid
                rid += 1
                frame = dict(frame, requestId=str(rid))
                fut = asyncio.get_running_loop().create_future()
                waiters[str(rid)] = fut
                await ws.send(json.dumps(frame))
                try:
                    return await asyncio.wait_for(fut, timeout)
                finally:
                    waiters.pop(str(rid), None)

            last_pong = [time.time()]

            async def reader():
                try:
                    await read_all()
                finally:
                    # The session is over: whoever waits for an answer
                    # learns it now, not at its timeout.
                    for fut in waiters.values():
                        if not fut.done():
                            fut.set_exception(ConnectionError("session ended"))

            async def read_all():
                async for raw in ws:
                    f = json.loads(raw)
                    if "batch" in f:
                        frames = f["batch"].get("frames", [])
                    else:
                        frames = [f]
                    for g in frames:
                        if "event" in g:
                            self._apply(g["event"])
                        elif "pong" in g:
                            last_pong[0] = time.time()
                        rq = g.get("requestId")
                        if rq and rq in waiters and not waiters[rq].done():
                            waiters[rq].set_result(g)

            async def pinger():
                # The component's heartbeat, beside everything else: a ping
                # a second; a gateway that answers none for 3 s is dead,
                # the session ends and the client moves on.
                n = 0
                while True:
                    await asyncio.sleep(1)
                    if time.time() - last_pong[0] > 3:
                        self.heartbeat_lost = True
                        await ws.close()
                        return
                    n += 1
                    await ws.send(json.dumps({"requestId": "0", "ping": {"nonce": str(n)}}))

            rtask = asyncio.ensure_future(reader())
            ptask = asyncio.ensure_future(pinger())
            self.heartbeat_lost = False
            try:
                f = await call({"authenticate": {"token": self.token}})
                if "authenticated" not in f:
                    raise RuntimeError("not authenticated: %s" % f)
                self.sessions += 1
                for r in self.rooms:
                    f = await call({"subscribe": {"room": r, "resumeAfterRev": str(self.last[r])}})
                    if "subscribed" not in f:
                        raise RuntimeError("subscribe %s: %s" % (r, f))
                while not self.stop:
                    if rtask.done():
                        if self.heartbeat_lost:
                            raise RuntimeError("no pong for 3 s")
                        rtask.result()
                        raise RuntimeError("session ended")
                    if self.publishing and self.pending is None:
                        room = self.rooms[self.sent % len(self.rooms)]
                        cid = "%s-%d" % (self.name, self.sent)
                        self.pending = (room, cid, "%s says %d" % (self.name, self.sent))
                        self.sent += 1
                    if self.pending is not None:
                        room, cid, body = self.pending
                        try:
                            f = await call({"publish": {"room": room, "clientMsgId": cid, "body": body}}, timeout=10)
                        except asyncio.TimeoutError:
                            raise RuntimeError("no ack in 10 s")
                        except ConnectionError:
                            if self.heartbeat_lost:
                                raise RuntimeError("no pong for 3 s")
                            raise
                        if "ack" in f:
                            self.acked[cid] = (room, int(f["ack"]["message"]["seq"]))
                            self.ack_times.append(time.time())
                            self.pending = None
                        else:
                            self.errors.append((time.time(), f.get("error", {}).get("detail")))
                            await asyncio.sleep(0.2)  # retried with the same id
                    await asyncio.sleep(self.publish_every)
            finally:
                rtask.cancel()
                ptask.cancel()

    def _apply(self, ev):
        m = ev["message"]
        room, rev = m["room"], int(m["rev"])
        if room not in self.last:
            return
        now = time.time()
        if rev <= self.last[room]:
            self.dups.append((room, rev))
            return
        if rev != self.last[room] + 1:
            self.gaps.append((room, self.last[room], rev))
        self.last[room] = rev
        self.count[room] += 1
        self.event_times.append(now)

    async def run(self):
        backoff = 0.05
        while not self.stop:
            url = self.gateways[self.gw_index % len(self.gateways)]
            try:
                await self._session(url)
            except Exception as e:  # noqa: BLE001: any loss of the session
                if self.stop:
                    break
                self.closes.append((time.time(), "%s: %r" % (url, e)))
                self.gw_index += 1  # the next gateway
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            backoff = 0.05


class Fleet:
    """Clients on one asyncio loop in a thread of its own."""

    def __init__(self, clients):
        self.clients = clients
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.done = threading.Event()

    def _main(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(asyncio.gather(*(c.run() for c in self.clients)))
        self.done.set()

    def start(self):
        self.thread.start()

    def set_publishing(self, on):
        def f():
            for c in self.clients:
                c.publishing = on
        self.loop.call_soon_threadsafe(f)

    def quiet(self, timeout=30):
        """Stops new publishes and waits until none is pending; True if so."""
        self.set_publishing(False)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(c.pending is None for c in self.clients):
                return True
            time.sleep(0.1)
        return False

    def stop(self, timeout=10):
        def f():
            for c in self.clients:
                c.stop = True
        self.loop.call_soon_threadsafe(f)
        self.done.wait(timeout)
