"""Runs test_ws_node.mjs (Node `ws` client) against a fresh parleyd +
parley-gateway started by gwharness; passes the addresses and tokens in the
environment. Exits with node's status."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwharness  # noqa: E402

with gwharness.Stack() as s:
    env = dict(os.environ)
    env.update(GW_WS=s.ws, GW_HTTP=s.http,
               TOKEN_ANN=s.token("ann", "Ann"), TOKEN_BOB=s.token("bob", "Bob"),
               TOKEN_BAD=s.token("ann", "Ann", secret="w" * 40))
    here = os.path.dirname(os.path.abspath(__file__))
    rc = subprocess.call([os.environ.get("NODE", "node"), os.path.join(here, "test_ws_node.mjs")]
                         + sys.argv[1:], env=env, cwd=here, timeout=120)
sys.exit(rc)
