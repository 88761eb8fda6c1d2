"""Tokens from the platform's identity provider (docs/security.md), end to
end: parleyd and parley-gateway hold only the provider's public keys (a
JWKS file) and the service secret, never a key that can mint a user. Keys
are made at test time with python3-cryptography, tokens signed by PyJWT.
Run: /usr/bin/python3 test_tokens.py CASE."""
import asyncio
import base64
import json
import os
import queue
import shutil
import sys
import tempfile
import time

import grpc
import jwt
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import sechelp
from sechelp import PB, Stubs, clean_env, expect, gateway, http, md, parleyd, rpc_error, write_private

ISS = "https://idp.example.test"
AUD = "parley"
T = 10


def b64u(n, length=None):
    b = n.to_bytes(length or (n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Key:
    def __init__(self, kind, kid):
        self.kind, self.kid = kind, kid
        self.priv = rsa.generate_private_key(65537, 2048) if kind == "RSA" else ec.generate_private_key(ec.SECP256R1())
        self.pem = self.priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
        self.pub_pem = self.priv.public_key().public_bytes(serialization.Encoding.PEM,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo)
        self.alg = "RS256" if kind == "RSA" else "ES256"

    def jwk(self):
        n = self.priv.public_key().public_numbers()
        if self.kind == "RSA":
            return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": b64u(n.n), "e": b64u(n.e)}
        return {"kty": "EC", "kid": self.kid, "crv": "P-256", "x": b64u(n.x, 32), "y": b64u(n.y, 32)}

    def token(self, sub="ann", name="Ann", role="participant", exp_in=600, iss=ISS, aud=AUD, life=None, **extra):
        now = int(time.time())
        claims = {"sub": sub, "name": name, "role": role, "iat": now, "exp": now + exp_in}
        if iss:
            claims["iss"] = iss
        if aud:
            claims["aud"] = aud
        if life is not None:
            claims["iat"] = claims["exp"] - life
        claims.update(extra)
        return jwt.encode(claims, self.pem, algorithm=self.alg, headers={"kid": self.kid})


def write_jwks(path, keys):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        json.dump({"keys": [k.jwk() for k in keys]}, f)
    os.replace(tmp, path)  # atomic, as a key-rotation job would


class IdpStack:
    """parleyd + gateway with --jwt-keys, the claims policy and a service
    secret; no user secret anywhere."""

    def __init__(self, d, keys, extra_pd=(), extra_gw=()):
        self.d = d
        self.jwks = os.path.join(d, "jwks.json")
        write_jwks(self.jwks, keys)
        self.svc_secret = os.urandom(32).hex()
        svc = write_private(os.path.join(d, "svc-secret"), self.svc_secret)
        common = ["--jwt-keys", self.jwks, "--jwt-issuer", ISS, "--jwt-audience", AUD,
                  "--jwt-max-ttl", "3600", "--service-secret-file", svc]
        self.pd = parleyd(d, common + list(extra_pd))
        self.grpc = "127.0.0.1:%s" % self.pd.match.group(1)
        self.gw = gateway(d, common + list(extra_gw))
        self.http = "http://127.0.0.1:%s" % self.gw.match.group(1)
        self.ws = "ws://127.0.0.1:%s/v1/stream" % self.gw.match.group(1)
        deadline = time.time() + 20
        while http("GET", self.http + "/healthz")[0] != 200:
            if time.time() > deadline:
                raise RuntimeError("gateway never healthy")
            time.sleep(0.05)

    def close(self):
        rc_gw = self.gw.stop()
        rc_pd = self.pd.stop()
        expect(rc_gw == 0 and rc_pd == 0, "both exit 0 on SIGTERM (gateway %s, parleyd %s)" % (rc_gw, rc_pd))


async def ws_auth(url, token):
    ws = await websockets.connect(url, subprotocols=["parley.v1.json"], open_timeout=T)
    await ws.send(json.dumps({"requestId": "1", "authenticate": {"token": token}}))
    try:
        f = json.loads(await asyncio.wait_for(ws.recv(), T))
    except websockets.ConnectionClosed:
        f = {}
    return ws, f


def case_idp_tokens(d):
    r1, e1, other = Key("RSA", "r1"), Key("EC", "e1"), Key("RSA", "intruder")
    s = IdpStack(d, [r1, e1])
    try:
        pb = PB(d)
        st = Stubs(grpc.insecure_channel(s.grpc), pb)
        H, S = pb.H, pb.S
        # RS256 and ES256 users, over REST (gateway) and gRPC (core)
        for k in (r1, e1):
            code, body, _ = http("GET", s.http + "/v1/rooms/lobby", k.token())
            expect(code == 200 and body["name"] == "lobby", "%s token over REST: 200" % k.alg)
            room = st.get_room(H.GetRoomRequest(name="lobby"), metadata=md(k.token()))
            expect(room.room.name == "lobby", "%s token over gRPC: ok" % k.alg)
        org = r1.token("olga", "Olga", "organizer")
        r = st.publish(S.PublishRequest(room="lobby", client_msg_id="a1", body="hi"), metadata=md(org))
        expect(r.message.author.id == "olga", "an organizer's RS256 token publishes on gRPC")

        def refused(tok, what, code="UNAUTHENTICATED"):
            st_, body, _ = http("GET", s.http + "/v1/rooms/lobby", tok)
            expect(st_ == 401 and body.get("code") == code, "%s: REST 401 %s (got %s %s)" % (what, code, st_, body))
            e = rpc_error(lambda: st.get_room(H.GetRoomRequest(name="lobby"), metadata=md(tok)))
            expect(e is not None and e[0] == grpc.StatusCode.UNAUTHENTICATED and e[1] == code,
                   "%s: gRPC UNAUTHENTICATED/%s (got %r)" % (what, code, e))

        refused(other.token(), "a key the provider does not list")
        refused(r1.token(iss="https://evil.example"), "another issuer")
        refused(r1.token(iss=None), "no issuer")
        refused(r1.token(aud="other-app"), "another audience")
        refused(r1.token(exp_in=7200, life=7200), "a lifetime over --jwt-max-ttl")
        refused(r1.token(exp_in=-5), "an expired token", "TOKEN_EXPIRED")
        refused(r1.token(svc="gateway"), "a user token claiming svc")
        # algorithm confusion: HS256 with the RSA public key as the secret
        forged = jwt.encode({"sub": "mallory", "name": "M", "role": "organizer", "iss": ISS, "aud": AUD,
                             "exp": int(time.time()) + 600},
                            "not-the-real-key", algorithm="HS256", headers={"kid": "r1"})
        hmac_with_pub = forged.rsplit(".", 1)[0]
        import hashlib
        import hmac
        sig = hmac.new(r1.pub_pem, hmac_with_pub.encode(), hashlib.sha256).digest()
        forged = hmac_with_pub + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
        refused(forged, "HS256 signed with the RSA public key (algorithm confusion)")
        # the service secret signs no user, and a service token writes nothing
        svc_user = jwt.encode({"sub": "mallory", "name": "M", "role": "organizer", "iss": ISS, "aud": AUD,
                               "exp": int(time.time()) + 600}, s.svc_secret, algorithm="HS256")
        refused(svc_user, "a user token signed with the service secret")
        svc = jwt.encode({"svc": "gateway", "exp": int(time.time()) + 600}, s.svc_secret, algorithm="HS256")
        for name, fn in [("Publish", lambda: st.publish(S.PublishRequest(room="lobby", client_msg_id="s1", body="x"),
                                                        metadata=md(svc))),
                         ("CreateRoom", lambda: st.create_room(H.CreateRoomRequest(name="svcroom"), metadata=md(svc))),
                         ("EditMessage", lambda: st.edit_message(H.EditMessageRequest(room="lobby", seq=1, body="y"),
                                                                 metadata=md(svc))),
                         ("DeleteMessage", lambda: st.delete_message(H.DeleteMessageRequest(room="lobby", seq=1),
                                                                     metadata=md(svc)))]:
            e = rpc_error(fn)
            expect(e is not None and e[0] == grpc.StatusCode.PERMISSION_DENIED,
                   "a service token cannot %s (got %r)" % (name, e))
        page = st.list_messages(H.ListMessagesRequest(room="lobby"), metadata=md(svc))
        expect([m.body for m in page.messages] == ["hi"], "a service token reads; nothing it tried was stored")
        q = queue.Queue()
        q.put(S.ClientFrame(request_id=1, publish=S.PublishRequest(room="lobby", client_msg_id="s2", body="x")))
        call = st.connect(iter(q.get, None), metadata=md(svc))
        f = next(call)
        q.put(None)
        call.cancel()
        expect(f.WhichOneof("kind") == "error" and f.error.code == pb.M.ERROR_CODE_PERMISSION_DENIED,
               "a service token's Connect publish is refused PERMISSION_DENIED")
        # the gateway holds no user secret: no dev token, nothing to mint with
        code, _, _ = http("GET", s.http + "/v1/dev/token?user=x")
        expect(code == 404, "no /v1/dev/token outside --dev")
        expect("warning" not in s.gw.err_text() and "user secret" not in s.gw.err_text(),
               "the gateway does not warn about holding a user secret (it has none)")

        # WebSocket: live delivery through the gateway's service credential
        async def ws_flow():
            ws, f = await ws_auth(s.ws, e1.token("bea", "Bea"))
            expect("authenticated" in f and f["authenticated"]["user"]["id"] == "bea", "ES256 user authenticates on WS")
            await ws.send(json.dumps({"requestId": "2", "subscribe": {"room": "lobby", "resumeAfterRev": "0"}}))
            # Published once subscribed, as a client does: before that (the
            # gateway asks the core first whether bea may read) the message
            # could come as part of the replay instead of live.
            got = set()
            deadline = time.time() + T
            while time.time() < deadline and "subscribed" not in got:
                if "subscribed" in json.loads(await asyncio.wait_for(ws.recv(), T)):
                    got.add("subscribed")
            await ws.send(json.dumps({"requestId": "3", "publish": {"room": "lobby", "clientMsgId": "w1", "body": "ws"}}))
            while time.time() < deadline and not {"subscribed", "ack", "live"} <= got:
                f = json.loads(await asyncio.wait_for(ws.recv(), T))
                if "ack" in f:
                    got.add("ack")
                if "event" in f and not f["event"].get("replay") and f["event"]["message"]["body"] == "ws":
                    got.add("live")
            expect({"subscribed", "ack", "live"} <= got, "subscribe (upstream with the service token), publish, live event")
            await ws.close()
            ws, f = await ws_auth(s.ws, r1.token(exp_in=-5))
            expect(f.get("error", {}).get("code") in ("ERROR_CODE_TOKEN_EXPIRED",), "an expired token on WS: TOKEN_EXPIRED (%s)" % f)
            await ws.close()
        asyncio.run(asyncio.wait_for(ws_flow(), 60))

        # rotation: the provider replaces r1 by r2; no restart
        r2 = Key("RSA", "r2")
        old = r1.token()
        write_jwks(s.jwks, [r2, e1])
        deadline = time.time() + 10
        while time.time() < deadline:
            a = http("GET", s.http + "/v1/rooms/lobby", r2.token())[0]
            b = rpc_error(lambda: st.get_room(H.GetRoomRequest(name="lobby"), metadata=md(r2.token())))
            if a == 200 and b is None:
                break
            time.sleep(0.2)
        expect(a == 200 and b is None, "after rotation a new kid is accepted by gateway and core without a restart")
        refused(old, "after rotation a token of the removed key")
        # a broken file keeps the last good keys
        with open(s.jwks, "w") as f:
            f.write("{ not json")
        time.sleep(2.5)
        expect(http("GET", s.http + "/v1/rooms/lobby", r2.token())[0] == 200, "a broken keys file keeps the old keys")
        expect("old keys kept" in s.pd.err_text() and "old keys kept" in s.gw.err_text(),
               "both say the new file was refused")
    finally:
        s.close()


def case_session_expiry(d):
    """A Connect stream ends at its token's expiry with TOKEN_EXPIRED,
    unless renewed by an Authenticate frame of the same user."""
    k = Key("EC", "e1")
    s = IdpStack(d, [k])
    try:
        pb = PB(d)
        st = Stubs(grpc.insecure_channel(s.grpc), pb)
        S = pb.S

        def stream(tok, renew_with=None):
            q = queue.Queue()
            q.put(S.ClientFrame(request_id=1, subscribe=S.Subscribe(room="lobby")))
            if renew_with:
                q.put(S.ClientFrame(request_id=2, authenticate=S.Authenticate(token=renew_with)))
            call = st.connect(iter(q.get, None), metadata=md(tok))
            return q, call
        t0 = time.time()
        q, call = stream(k.token(exp_in=3))
        e = rpc_error(lambda: list(call))
        took = time.time() - t0
        expect(e is not None and e[0] == grpc.StatusCode.UNAUTHENTICATED and e[1] == "TOKEN_EXPIRED",
               "the stream ends UNAUTHENTICATED/TOKEN_EXPIRED (got %r)" % (e,))
        expect(2 <= took <= 8, "at the token's expiry, not before (%.1fs for exp in 3 s)" % took)
        q, call = stream(k.token(exp_in=3), renew_with=k.token(exp_in=600))
        kinds = []
        deadline = time.time() + 6
        try:
            for f in call:
                kinds.append(f.WhichOneof("kind"))
                if time.time() > deadline:
                    break
                if "authenticated" in kinds and "subscribed" in kinds and time.time() - t0 > 0:
                    # wait past the first token's expiry, then stop
                    time.sleep(max(0, deadline - time.time()))
                    q.put(S.ClientFrame(request_id=3, ping=S.Ping(nonce=5)))
                    f = next(call)
                    kinds.append(f.WhichOneof("kind"))
                    break
        finally:
            q.put(None)
            call.cancel()
        expect(kinds[-1] == "pong" and "authenticated" in kinds,
               "renewed with a fresh token, the stream outlives the first token (%s)" % kinds)
    finally:
        s.close()


CASES = {"idp_tokens": case_idp_tokens, "session_expiry": case_session_expiry}


def main():
    for name in sys.argv[1:] or list(CASES):
        d = tempfile.mkdtemp(prefix="parley-sec-")
        t0 = time.time()
        try:
            CASES[name](d)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        print("ok   %-20s %.1fs" % (name, time.time() - t0), flush=True)


if __name__ == "__main__":
    main()
