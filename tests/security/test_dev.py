"""Development mode cannot leak into production, and secrets stay secret
(docs/security.md): --dev next to a real secret or key is refused by both
binaries; secrets on the command line are refused; secret and config files
others can read are refused; the database is created private; dev mode says
so loudly and its token endpoint answers loopback only.
Run: /usr/bin/python3 test_dev.py CASE."""
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time

import sechelp
from sechelp import clean_env, expect, gateway, http, parleyd, write_private

SECRET = "s" * 40


def refused(proc, what, needle):
    rc = proc.wait_exit(30)
    err = proc.err_text()
    expect(rc == 2 and needle in err, "%s: exit 2 saying %r (got %s: %s)" % (what, needle, rc, err.strip()[-300:]))


def case_dev_refused(d):
    keys = os.path.join(d, "k.pem")
    write_private(keys, "")
    for name, args, env in [
        ("parleyd --dev with PARLEY_JWT_SECRET", ["--dev"], clean_env(PARLEY_JWT_SECRET=SECRET)),
        ("parleyd --dev with PARLEY_SERVICE_SECRET", ["--dev"], clean_env(PARLEY_SERVICE_SECRET=SECRET)),
        ("parleyd --dev with --jwt-keys", ["--dev", "--jwt-keys", keys], clean_env()),
        ("parleyd PARLEY_DEV=1 with a secret file", [],
         clean_env(PARLEY_DEV="1", PARLEY_JWT_SECRET_FILE=write_private(os.path.join(d, "sf"), SECRET))),
    ]:
        refused(parleyd(d, args, env, ready=False, name="pd"), name, "--dev refused")
    for name, args, env in [
        ("gateway --dev with PARLEY_JWT_SECRET", ["--dev"], clean_env(PARLEY_JWT_SECRET=SECRET)),
        ("gateway --dev with a service secret file",
         ["--dev", "--service-secret-file", os.path.join(d, "sf")], clean_env()),
        ("gateway --dev with --jwt-keys", ["--dev", "--jwt-keys", keys], clean_env()),
    ]:
        p = gateway(d, args, env, ready=False, name="gw")
        rc = p.wait_exit(30)
        expect(rc != 0 and "--dev refused" in p.err_text(), "%s: refused (got %s)" % (name, rc))
    expect(not os.path.exists(os.path.join(d, "db", "parley.db")), "no database was created by a refused start")


def case_secrets_cli(d):
    refused(parleyd(d, ["--jwt-secret", SECRET], ready=False), "parleyd --jwt-secret VALUE", "process list")
    refused(parleyd(d, ["--jwt-secret=" + SECRET], ready=False), "parleyd --jwt-secret=VALUE", "process list")
    refused(parleyd(d, ["--service-secret", SECRET], ready=False), "parleyd --service-secret VALUE", "process list")
    p = gateway(d, ["--jwt-secret", SECRET], ready=False)
    expect(p.wait_exit() == 2 and "process list" in p.err_text(), "gateway --jwt-secret VALUE refused")
    p = gateway(d, ["--service-secret", SECRET], ready=False)
    expect(p.wait_exit() == 2 and "process list" in p.err_text(), "gateway --service-secret VALUE refused")


def case_secret_files(d):
    sf = write_private(os.path.join(d, "secret"), SECRET, 0o644)
    refused(parleyd(d, [], clean_env(PARLEY_JWT_SECRET_FILE=sf), ready=False),
            "a secret file others can read", "chmod 600")
    p = gateway(d, ["--jwt-secret-file", sf], ready=False)
    expect(p.wait_exit() != 0 and "chmod 600" in p.err_text(), "the gateway refuses it too")
    conf = write_private(os.path.join(d, "parleyd.conf"), "jwt-secret = %s\n" % SECRET, 0o644)
    refused(parleyd(d, ["--config", conf], ready=False), "a config file holding a secret, readable by others",
            "chmod 600")
    conf2 = write_private(os.path.join(d, "open.conf"), "rooms = a,b\n", 0o666)
    refused(parleyd(d, ["--config", conf2], clean_env(PARLEY_JWT_SECRET=SECRET), ready=False),
            "a config file others can change", "chmod go-w")
    os.chmod(sf, 0o600)
    os.chmod(conf, 0o600)
    p = parleyd(d, ["--config", conf])
    expect(p.stop() == 0, "the same config file at mode 600 is accepted")
    conf3 = write_private(os.path.join(d, "plain.conf"), "rooms = a,b\n", 0o644)
    p = parleyd(d, ["--config", conf3], clean_env(PARLEY_JWT_SECRET=SECRET))
    expect(p.stop() == 0, "a config file without secrets may be readable by others")


def case_private_db(d):
    p = parleyd(d, [], clean_env(PARLEY_JWT_SECRET=SECRET))
    try:
        import grpc
        import jwt as pyjwt
        pb = sechelp.PB(d)
        st = sechelp.Stubs(grpc.insecure_channel("127.0.0.1:" + p.match.group(1)), pb)
        tok = pyjwt.encode({"sub": "a", "name": "A", "role": "participant", "exp": int(time.time()) + 60},
                           SECRET, algorithm="HS256")
        st.publish(pb.S.PublishRequest(room="lobby", client_msg_id="x", body="y"), metadata=sechelp.md(tok))
        dbdir = os.path.join(d, "db")
        mode = lambda f: stat.S_IMODE(os.stat(os.path.join(dbdir, f)).st_mode)  # noqa: E731
        expect(stat.S_IMODE(os.stat(dbdir).st_mode) == 0o700, "the database folder is created 0700")
        for f in ("parley.db", "parley.db-wal", "parley.db-shm"):
            expect(os.path.exists(os.path.join(dbdir, f)) and mode(f) == 0o600, "%s is 0600 (got %o)" % (f, mode(f)))
    finally:
        p.stop()


def non_loopback_ipv4():
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    for a in out:
        if "." in a and not a.startswith("127."):
            return a
    return None


def case_dev_mode(d):
    env = clean_env()
    pd = parleyd(d, ["--dev", "--db", os.path.join("var", "parley.db")], env)
    gw = None
    try:
        gw = sechelp.Proc([sechelp.GATEWAY, "--dev", "--listen", "0.0.0.0:0", "--upstream",
                           "unix:" + os.path.join(d, "parleyd.sock"), "--static", d], env, d,
                          r"parley-gateway listening on http://0\.0\.0\.0:(\d+)/", name="gw")
        port = gw.match.group(1)
        expect("DEVELOPMENT MODE" in pd.err_text(), "parleyd --dev says DEVELOPMENT MODE on stderr")
        expect("DEVELOPMENT MODE" in gw.err_text(), "the gateway --dev says DEVELOPMENT MODE on stderr")
        expect("reachable from other machines" in gw.err_text(), "and warns when it listens beyond loopback")
        st, body, _ = http("GET", "http://127.0.0.1:%s/v1/dev/token?user=ann" % port)
        expect(st == 200 and body.get("token"), "a dev token from loopback")
        ip = non_loopback_ipv4()
        if ip is None:
            print("SKIP: no non-loopback IPv4 address on this machine to call from", flush=True)
        else:
            st, body, _ = http("GET", "http://%s:%s/v1/dev/token?user=ann" % (ip, port))
            expect(st == 403 and "loopback" in body.get("detail", ""),
                   "no dev token for a peer at %s (got %s %s)" % (ip, st, body))
    finally:
        if gw:
            gw.stop()
        pd.stop()


CASES = {"dev_refused": case_dev_refused, "secrets_cli": case_secrets_cli,
         "secret_files": case_secret_files, "private_db": case_private_db, "dev_mode": case_dev_mode}


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
