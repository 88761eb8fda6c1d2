"""TLS (docs/security.md): parleyd's gRPC port with server credentials and
optional mutual TLS, the gateway's https/wss with a certificate chain,
both reloading certificates without dropping what is connected; plaintext
only on loopback and the unix socket. Certificates come from a test CA made
by `openssl` at test time (sechelp.make_pki). Run: test_tls.py CASE."""
import asyncio
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time

import grpc
import jwt
import websockets

import sechelp
from sechelp import PB, Stubs, clean_env, expect, gateway, http, make_pki, md, parleyd, peer_cn, rpc_error

SECRET = os.urandom(24).hex()
ENV = clean_env(PARLEY_JWT_SECRET=SECRET)
T = 10


def token(sub="ann", role="participant"):
    return jwt.encode({"sub": sub, "name": sub.title(), "role": role, "exp": int(time.time()) + 600},
                      SECRET, algorithm="HS256")


def tls_channel(addr, pki, client=False):
    creds = grpc.ssl_channel_credentials(
        root_certificates=open(pki["ca"], "rb").read(),
        private_key=open(pki["client_key"], "rb").read() if client else None,
        certificate_chain=open(pki["client"], "rb").read() if client else None)
    return grpc.secure_channel(addr, creds)


def case_grpc_tls(d):
    pki = make_pki(d)
    # beyond loopback without TLS: refused at start
    p = parleyd(d, ["--listen", "0.0.0.0:0"], ENV, ready=False)
    p.p.args  # noqa: B018
    rc = p.wait_exit()
    expect(rc != 0 and "beyond loopback" in p.err_text(), "parleyd refuses plaintext TCP beyond loopback (%s)" % rc)
    # a TLS key others can read: refused
    os.chmod(pki["server_key"], 0o644)
    p = parleyd(d, ["--tls-cert", pki["server_full"], "--tls-key", pki["server_key"]], ENV, ready=False)
    expect(p.wait_exit() != 0 and "chmod 600" in p.err_text(), "a TLS key others can read is refused")
    os.chmod(pki["server_key"], 0o600)
    cert = os.path.join(d, "live-cert.pem")
    key = os.path.join(d, "live-key.pem")
    shutil.copy(pki["server_full"], cert)
    shutil.copy(pki["server_key"], key)
    os.chmod(key, 0o600)
    pd = parleyd(d, ["--tls-cert", cert, "--tls-key", key], ENV)
    try:
        port = int(pd.match.group(1))
        addr = "127.0.0.1:%d" % port
        pb = PB(d)
        st = Stubs(tls_channel(addr, pki), pb)
        r = st.get_room(pb.H.GetRoomRequest(name="lobby"), metadata=md(token()))
        expect(r.room.name == "lobby", "grpcio over TLS, trusting the test CA (chain served by parleyd)")
        plain = Stubs(grpc.insecure_channel(addr), pb)
        e = rpc_error(lambda: plain.get_room(pb.H.GetRoomRequest(name="lobby"), metadata=md(token()), timeout=3))
        expect(e is not None and e[0] in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED),
               "a plaintext client gets nothing from the TLS port (%r)" % (e,))
        out = subprocess.run(["node", os.path.join(sechelp.HERE, "tls_grpcjs.mjs"), addr, pki["ca"], token()],
                             capture_output=True, text=True, timeout=60)
        expect(out.returncode == 0 and "ok room=lobby" in out.stdout, "grpc-js over TLS (%s%s)" % (out.stdout, out.stderr[-200:]))
        expect(peer_cn("127.0.0.1", port, pki["ca"]) == "parley test server 1", "the first certificate is served")
        # renewal: new files in place, no restart; the open channel goes on
        shutil.copy(pki["server2_full"], cert + ".new")
        os.replace(cert + ".new", cert)
        shutil.copy(pki["server2_key"], key + ".new")
        os.chmod(key + ".new", 0o600)
        os.replace(key + ".new", key)
        deadline = time.time() + 10
        cn = None
        while time.time() < deadline:
            cn = peer_cn("127.0.0.1", port, pki["ca"])
            if cn == "parley test server 2":
                break
            time.sleep(0.2)
        expect(cn == "parley test server 2", "a renewed certificate is served to new connections without a restart")
        r = st.get_room(pb.H.GetRoomRequest(name="lobby"), metadata=md(token()))
        expect(r.room.name == "lobby", "the channel opened before the renewal still works")
        sock = os.path.join(d, "parleyd.sock")
        r = Stubs(grpc.insecure_channel("unix:" + sock), pb).get_room(pb.H.GetRoomRequest(name="lobby"),
                                                                       metadata=md(token()))
        expect(r.room.name == "lobby", "the unix socket stays plaintext")
    finally:
        pd.stop()


def case_mtls(d):
    pki = make_pki(d)
    pd = parleyd(d, ["--tls-cert", pki["server_full"], "--tls-key", pki["server_key"],
                     "--tls-client-ca", pki["ca"], "--unix", "none"], ENV)
    gw = None
    try:
        port = int(pd.match.group(1))
        addr = "127.0.0.1:%d" % port
        pb = PB(d)
        e = rpc_error(lambda: Stubs(tls_channel(addr, pki), pb).get_room(pb.H.GetRoomRequest(name="lobby"),
                                                                          metadata=md(token()), timeout=5))
        expect(e is not None, "without a client certificate the call fails (%r)" % (e[0] if e else None,))
        r = Stubs(tls_channel(addr, pki, client=True), pb).get_room(pb.H.GetRoomRequest(name="lobby"),
                                                                     metadata=md(token()))
        expect(r.room.name == "lobby", "with a certificate the client CA signed: ok")
        # the gateway reaches the core over mutual TLS
        gw = gateway(d, ["--upstream", addr, "--upstream-tls-ca", pki["ca"], "--upstream-tls-cert", pki["client"],
                         "--upstream-tls-key", pki["client_key"]], ENV)
        url = "http://127.0.0.1:%s" % gw.match.group(1)
        deadline = time.time() + 20
        while http("GET", url + "/healthz")[0] != 200 and time.time() < deadline:
            time.sleep(0.1)
        st, body, _ = http("GET", url + "/v1/rooms/lobby", token())
        expect(st == 200 and body["name"] == "lobby", "gateway -> core over mutual TLS: REST works")
        # without its certificate the gateway cannot reach the core
        g2 = gateway(d, ["--upstream", addr, "--upstream-tls-ca", pki["ca"]], ENV, name="gw2")
        url2 = "http://127.0.0.1:%s" % g2.match.group(1)
        st, body, _ = http("GET", url2 + "/v1/rooms/lobby", token())
        g2.stop()
        expect(st == 503, "a gateway without a client certificate gets 503 (got %s)" % st)
        g3 = gateway(d, ["--upstream", "10.0.0.1:7400"], ENV, ready=False, name="gw3")
        expect(g3.wait_exit() != 0 and "beyond loopback" in g3.err_text(),
               "the gateway refuses a plaintext upstream beyond loopback")
    finally:
        if gw:
            gw.stop()
        pd.stop()


def case_gateway_tls(d):
    pki = make_pki(d)
    pd = parleyd(d, [], ENV)
    cert = os.path.join(d, "gw-cert.pem")
    key = os.path.join(d, "gw-key.pem")
    shutil.copy(pki["server"], cert)
    shutil.copy(pki["server_key"], key)
    os.chmod(key, 0o600)
    p = gateway(d, ["--listen", "0.0.0.0:0"], ENV, ready=False, name="gwplain")
    expect(p.wait_exit() != 0 and "beyond loopback" in p.err_text(), "the gateway refuses plain HTTP beyond loopback")
    gw = gateway(d, ["--tls-cert", cert, "--tls-key", key, "--tls-chain", pki["inter"]], ENV, scheme="https")
    try:
        port = int(gw.match.group(1))
        ctx = ssl.create_default_context(cafile=pki["ca"])
        base = "https://127.0.0.1:%d" % port
        deadline = time.time() + 20
        while http("GET", base + "/healthz", context=ctx)[0] != 200 and time.time() < deadline:
            time.sleep(0.1)
        st, body, _ = http("GET", base + "/v1/rooms/lobby", token(), context=ctx)
        expect(st == 200 and body["name"] == "lobby", "https REST, trusting only the root (chain from --tls-chain)")
        expect(peer_cn("127.0.0.1", port, pki["ca"], alpn=("http/1.1",)) == "parley test server 1", "leaf 1 served")

        async def flow():
            wss = "wss://127.0.0.1:%d/v1/stream" % port
            ws = await websockets.connect(wss, subprotocols=["parley.v1.json"], ssl=ctx, open_timeout=T,
                                          origin="https://127.0.0.1:%d" % port)
            await ws.send(json.dumps({"requestId": "1", "authenticate": {"token": token()}}))
            f = json.loads(await asyncio.wait_for(ws.recv(), T))
            expect("authenticated" in f, "wss session authenticated (own https origin allowed)")
            # SIGHUP with a new certificate: this session stays, new ones see it
            shutil.copy(pki["server2"], cert)
            shutil.copy(pki["server2_key"], key)
            gw.p.send_signal(signal.SIGHUP)
            cn = None
            for _ in range(50):
                await asyncio.sleep(0.2)
                cn = peer_cn("127.0.0.1", port, pki["ca"], alpn=("http/1.1",))
                if cn == "parley test server 2":
                    break
            expect(cn == "parley test server 2", "after SIGHUP new connections get the new certificate")
            await ws.send(json.dumps({"requestId": "2", "ping": {"nonce": "7"}}))
            f = json.loads(await asyncio.wait_for(ws.recv(), T))
            expect(f.get("pong", {}).get("nonce") == "7", "the wss session opened before the reload goes on")
            await ws.close()
        asyncio.run(asyncio.wait_for(flow(), 60))
        expect("TLS certificate reloaded" in gw.err_text(), "the gateway says it reloaded")
    finally:
        gw.stop()
        pd.stop()


def case_admin_listener(d):
    pd = parleyd(d, [], ENV)
    gw = gateway(d, ["--admin-listen", "127.0.0.1:0"], ENV)
    try:
        main = "http://127.0.0.1:%s" % gw.match.group(1)
        st, _, _ = http("GET", main + "/metrics")
        expect(st == 404, "with --admin-listen, /metrics is not on the main listener")
        st, _, _ = http("GET", main + "/healthz")
        expect(st == 404, "nor /healthz")
        import re
        ports = [m.group(1) for m in (re.search(r"admin on http://127\.0\.0\.1:(\d+)/", ln) for ln in gw.lines) if m]
        expect(len(ports) == 1 and ports[0] != gw.match.group(1), "the admin listener has a port of its own (%s)" % ports)
        admin = "http://127.0.0.1:%s" % ports[0]
        deadline = time.time() + 20
        while http("GET", admin + "/healthz")[0] != 200 and time.time() < deadline:
            time.sleep(0.1)
        st, body, _ = http("GET", admin + "/metrics")
        expect(st == 200 and b"parley_gateway_connections" in body, "/metrics on the admin listener")
        st, _, _ = http("GET", admin + "/v1/rooms/lobby", token())
        expect(st == 404, "the admin listener answers nothing else")
        st, body, _ = http("GET", main + "/v1/rooms/lobby", token())
        expect(st == 200, "REST stays on the main listener")

        async def ws_on_admin():
            try:
                await websockets.connect("ws://127.0.0.1:%s/v1/stream" % ports[0],
                                         subprotocols=["parley.v1.json"], open_timeout=T)
                return None
            except websockets.InvalidStatusCode as e:
                return e.status_code
        code = asyncio.run(ws_on_admin())
        expect(code == 404, "no WebSocket on the admin listener (got %s)" % code)
    finally:
        gw.stop()
        pd.stop()


CASES = {"grpc_tls": case_grpc_tls, "mtls": case_mtls, "gateway_tls": case_gateway_tls,
         "admin_listener": case_admin_listener}


def main():
    for name in sys.argv[1:] or list(CASES):
        d = tempfile.mkdtemp(prefix="parley-tls-")
        t0 = time.time()
        try:
            CASES[name](d)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        print("ok   %-20s %.1fs" % (name, time.time() - t0), flush=True)


if __name__ == "__main__":
    main()
