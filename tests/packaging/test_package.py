#!/usr/bin/python3
"""Install rules and the Debian package, for real:

1. `cmake --install BUILD --prefix P` places the binaries, the protos, the
   web bundle, the example units and configs, the docs.
2. `cpack -G DEB` builds the package: its control fields (dependencies
   from dpkg-shlibdeps, conffiles, maintainer scripts) and contents.
3. The package is installed into a scratch root with dpkg (--root, its
   maintainer scripts run against $DPKG_ROOT); the postinst makes a
   root-only signing secret.
4. Its units pass `systemd-analyze verify` in that root, and `systemd-analyze
   security --offline` rates their exposure (this machine runs no systemd,
   so the units cannot be started by it; a deliberately broken unit is
   checked to fail, so the verification can fail).
5. Both services start from their units' ExecStart lines, with systemd's
   specifiers (%S state, %t runtime, %d credentials) resolved into the
   scratch root the way systemd would, as an unprivileged user with
   no_new_privs and the unit's UMask: parleyd answers /healthz, /metrics and the installed
   `parley` CLI; the gateway serves the installed web bundle and reaches
   parleyd through its unix socket.
6. dpkg -r removes the files and keeps the configuration; dpkg -P purges
   it and the secret.

usage: test_package.py BUILD_DIR
"""
import glob
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import jwt

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "server"))
from opsharness import check, finish, wait_for  # noqa: E402

BUILD = None


def sh(*args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(list(args), **kw)


def test_cmake_install():
    p = tempfile.mkdtemp(prefix="parley-install-")
    r = sh("cmake", "--install", BUILD, "--prefix", p)
    check(r.returncode == 0, "cmake --install exits 0 (%s)" % r.stderr[-300:])
    want = ["bin/parleyd", "bin/parley-gateway", "bin/parley",
            "share/parley/proto/parley/v1/history.proto", "share/parley/proto/grpc/health/v1/health.proto",
            "share/parley/web/index.html", "share/parley/web/parley-chat.js",
            "share/parley/web/parley-chat.iife.js",
            "share/parley/examples/parleyd.service", "share/parley/examples/parley-gateway.service",
            "share/parley/examples/parleyd.conf", "share/doc/parley/operations.md",
            "share/doc/parley/grafana-parley.json"]
    missing = [w for w in want if not os.path.exists(os.path.join(p, w))]
    check(not missing, "cmake --install places binaries, protos, web bundle, units, docs (missing %s)" % missing)
    check(not os.path.exists(os.path.join(p, "etc")) and not os.path.exists("/etc/parley/parleyd.conf.dpkg-new"),
          "a plain install writes nothing outside its prefix")
    r = sh(os.path.join(p, "bin", "parley"), "--help")
    check(r.returncode == 0 and "usage: parley" in r.stdout, "the installed parley runs")
    shutil.rmtree(p)


def build_deb():
    out = tempfile.mkdtemp(prefix="parley-deb-")
    r = sh("cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", out)
    debs = glob.glob(os.path.join(out, "*.deb"))
    check(r.returncode == 0 and len(debs) == 1, "cpack -G DEB builds one package (%s)" % r.stdout[-300:])
    deb = debs[0]
    info = sh("dpkg-deb", "-I", deb).stdout
    for dep in ("libgrpc", "libsqlite3", "libwebsockets", "libprotobuf-c", "libjwt", "libjansson"):
        check(re.search(r"Depends:.*%s" % dep, info) is not None, "Depends names %s" % dep)
    check(re.search(r"^ Package: parley$", info, re.M) and re.search(r"^ Version: \d+\.\d+\.\d+", info, re.M),
          "package name and version")
    for script in ("postinst", "prerm", "postrm", "conffiles"):
        check(script in info, "control has %s" % script)
    files = sh("dpkg-deb", "-c", deb).stdout
    for f in ("./usr/bin/parleyd", "./usr/bin/parley-gateway", "./usr/bin/parley",
              "./lib/systemd/system/parleyd.service", "./lib/systemd/system/parley-gateway.service",
              "./etc/parley/parleyd.conf", "./etc/parley/gateway.conf",
              "./usr/share/parley/web/parley-chat.js", "./usr/share/parley/proto/parley/v1/stream.proto"):
        check(f in files, "the package holds %s" % f)
    return deb


def dpkg(root, *args):
    return sh("dpkg", "--root=" + root, "--force-script-chrootless", "--force-depends", *args)


def install(deb):
    root = tempfile.mkdtemp(prefix="parley-root-")
    os.chmod(root, 0o755)  # a root file system: the service user walks it
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"):
        os.makedirs(os.path.join(root, d))
    open(os.path.join(root, "var/lib/dpkg/status"), "w").close()
    r = dpkg(root, "-i", deb)
    check(r.returncode == 0, "dpkg --root installs the package (%s)" % (r.stdout + r.stderr)[-500:])
    st = dpkg(root, "-s", "parley").stdout
    check("Status: install ok installed" in st, "dpkg says it is installed")
    secret = os.path.join(root, "etc/parley/jwt-secret")
    ok = os.path.exists(secret)
    check(ok and (os.stat(secret).st_mode & 0o777) == 0o600 and len(open(secret).read().strip()) >= 32,
          "postinst made a root-only signing secret of 32+ bytes")
    return root


def verify_units(root):
    # The scratch root has parley's units only; systemd-analyze also wants
    # the targets and slices they hang from, which the OS provides.
    unitdir = os.path.join(root, "lib/systemd/system")
    base = []
    for f in glob.glob("/lib/systemd/system/*.target") + glob.glob("/lib/systemd/system/*.slice"):
        dst = os.path.join(unitdir, os.path.basename(f))
        if not os.path.exists(dst):
            shutil.copy(f, dst)
            base.append(dst)
    units = ["/lib/systemd/system/parleyd.service", "/lib/systemd/system/parley-gateway.service"]
    r = sh("systemd-analyze", "verify", "--root=" + root, *units)
    check(r.returncode == 0 and not r.stderr.strip(), "systemd-analyze verify: both units (%s)" % r.stderr.strip())
    broken = os.path.join(unitdir, "parley-broken.service")
    text = open(os.path.join(unitdir, "parleyd.service")).read()
    open(broken, "w").write(text.replace("ExecStart=/usr/bin/parleyd", "ExecStart=usr/bin/parleyd"))
    r = sh("systemd-analyze", "verify", "--root=" + root, "/lib/systemd/system/parley-broken.service")
    check(r.returncode != 0, "systemd-analyze verify fails a broken unit (the check can fail)")
    os.unlink(broken)
    for u in ("parleyd.service", "parley-gateway.service"):
        r = sh("systemd-analyze", "security", "--offline=yes", "--root=" + root, u)
        m = re.search(r"Overall exposure level for %s: ([0-9.]+)" % re.escape(u), r.stdout)
        score = float(m.group(1)) if m else 99
        print("%s exposure %s" % (u, score))
        check(score <= 2.0, "%s: systemd-analyze security exposure %.1f <= 2.0 (hardened)" % (u, score))
    for f in base:
        os.unlink(f)


def exec_start(root, unit, cred_dir):
    """The unit's ExecStart with specifiers and paths moved into root."""
    text = open(os.path.join(root, "lib/systemd/system", unit)).read()
    line = [ln for ln in text.splitlines() if ln.startswith("ExecStart=")][0][len("ExecStart="):]
    line = (line.replace("%S", os.path.join(root, "var/lib")).replace("%t", os.path.join(root, "run"))
            .replace("%d", cred_dir))
    args = shlex.split(line)
    out = []
    for a in args:
        for pre in ("/usr/", "/etc/"):
            if a.startswith(pre):
                a = root + a
            elif a.startswith("unix:" + pre):
                a = "unix:" + root + a[5:]
        out.append(a)
    return out, text


def start(args, env, user, ready, umask):
    e = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY")}
    e.update(env)
    pre = []
    if user is not None:
        pre = ["setpriv", "--reuid=%d" % user.pw_uid, "--regid=%d" % user.pw_gid, "--clear-groups",
               "--no-new-privs", "--"]
    p = subprocess.Popen(pre + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e,
                         preexec_fn=lambda: os.umask(umask))
    deadline = time.time() + 30
    while time.time() < deadline:
        ln = p.stdout.readline()
        if not ln:
            break
        m = re.search(ready, ln)
        if m:
            return p, m
    p.kill()
    raise RuntimeError("%s did not start: %s" % (args[0], p.stderr.read()[-800:]))


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, ""


def run_services(root):
    user = pwd.getpwnam("nobody") if os.geteuid() == 0 else None
    # What systemd makes before ExecStart: StateDirectory, RuntimeDirectory
    # (owned by the service's user), the credential (LoadCredential).
    state, run = os.path.join(root, "var/lib/parley"), os.path.join(root, "run/parley")
    creds = os.path.join(root, "run/credentials/parley")
    for d in (state, run, creds):
        os.makedirs(d, mode=0o700, exist_ok=True)
    shutil.copy(os.path.join(root, "etc/parley/jwt-secret"), os.path.join(creds, "jwt-secret"))
    if user:
        for d in (state, run, creds):
            os.chown(d, user.pw_uid, user.pw_gid)
        os.chown(os.path.join(creds, "jwt-secret"), user.pw_uid, user.pw_gid)
    args, unit = exec_start(root, "parleyd.service", creds)
    check(args[0] == os.path.join(root, "usr/bin/parleyd") and "--config" in args, "parleyd's ExecStart: %s" % args)
    # Ports: the config's 7400/7401 may be taken on a shared machine; the
    # environment overrides the config file (and not the unit's flags).
    umask = int(re.search(r"^UMask=(\d+)$", unit, re.M).group(1), 8)
    pd, m = start(args, {"PARLEY_ADDR": "127.0.0.1:0", "PARLEY_METRICS_LISTEN": "127.0.0.1:0"}, user,
                  r"parleyd listening on (\S+) .*metrics on (http://\S+)/metrics", umask)
    gw = None
    try:
        http = m.group(2)
        check(get(http + "/healthz") == (200, "ok\n"), "installed parleyd: /healthz 200")
        st, text = get(http + "/metrics")
        check(st == 200 and re.search(r'parley_core_build_info\{version="\d+\.\d+\.\d+"\} 1', text),
              "installed parleyd: /metrics with its version")
        check(os.path.exists(os.path.join(state, "parley.db")), "the database is in the state directory")
        if user:
            check(os.stat(os.path.join(state, "parley.db")).st_uid == user.pw_uid,
                  "it ran as the unprivileged user")
            check((os.stat(os.path.join(state, "parley.db")).st_mode & 0o077) == 0,
                  "the database is private to that user")
        secret = open(os.path.join(root, "etc/parley/jwt-secret")).read().strip()
        tok = jwt.encode({"sub": "ops", "name": "Ops", "role": "organizer", "exp": int(time.time()) + 600},
                         secret, algorithm="HS256")
        cli = [os.path.join(root, "usr/bin/parley"), "--server", "unix:" + os.path.join(run, "parleyd.sock")]
        e = dict(os.environ, PARLEY_TOKEN=tok)
        r = sh(*cli, "send", "lobby", "installed", env=e)
        r2 = sh(*cli, "rooms", env=e)
        check(r.returncode == 0 and r2.stdout == "lobby\t1\t1\n",
              "the installed parley CLI talks to it through the unit's socket (%s %s)" % (r.stderr, r2.stdout))

        gargs, gunit = exec_start(root, "parley-gateway.service", creds)
        check("--static" in gargs and gargs[gargs.index("--static") + 1] == os.path.join(root, "usr/share/parley/web"),
              "the gateway's ExecStart serves the installed web bundle")
        gw, gm = start(gargs, {"PARLEY_GW_LISTEN": "127.0.0.1:0"}, user,
                       r"parley-gateway listening on (http://\S+)/",
                       int(re.search(r"^UMask=(\d+)$", gunit, re.M).group(1), 8))
        base = gm.group(1)
        st, page = get(base + "/")
        check(st == 200 and "<title>parley demo" in page, "the installed gateway serves the web bundle's page")
        check(get(base + "/parley-chat.js")[0] == 200, "and the bundle")
        check(wait_for(lambda: get(base + "/healthz")[0] == 200, 10), "the gateway reaches parleyd (/healthz 200)")
    finally:
        for p in (gw, pd):
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
    check(pd.returncode == 0 and (gw is None or gw.returncode == 0),
          "both exit 0 on SIGTERM (%s, %s)" % (pd.returncode, gw and gw.returncode))


def remove(root):
    r = dpkg(root, "-r", "parley")
    check(r.returncode == 0, "dpkg -r (%s)" % (r.stdout + r.stderr)[-300:])
    check(not os.path.exists(os.path.join(root, "usr/bin/parleyd"))
          and not os.path.exists(os.path.join(root, "lib/systemd/system/parleyd.service")),
          "removed: binaries and units are gone")
    check(os.path.exists(os.path.join(root, "etc/parley/parleyd.conf"))
          and os.path.exists(os.path.join(root, "etc/parley/jwt-secret")),
          "removed: configuration and secret stay until purge")
    r = dpkg(root, "-P", "parley")
    check(r.returncode == 0, "dpkg -P (%s)" % (r.stdout + r.stderr)[-300:])
    check(not os.path.exists(os.path.join(root, "etc/parley")), "purged: /etc/parley is gone")
    check(os.path.exists(os.path.join(root, "var/lib/parley/parley.db")), "purged: the chat history is kept")


def main():
    global BUILD
    BUILD = os.path.abspath(sys.argv[1])
    if os.geteuid() != 0:
        print("needs root: dpkg --root installs files owned by root and runs the services as nobody")
        check(False, "the packaging test runs as root (CI does)")
        return finish()
    test_cmake_install()
    deb = build_deb()
    root = install(deb)
    verify_units(root)
    run_services(root)
    remove(root)
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(os.path.dirname(deb), ignore_errors=True)
    return finish()


if __name__ == "__main__":
    sys.exit(main())
