"""tests/cluster/netns.py: a private network for the cluster test.

One network namespace per node, each with one veth whose peer sits on a
bridge in a switch namespace of its own (PREFIX-sw): the host's own
network is never touched. Every node has an address of 10.77.0.0/24 and
reaches every other one through the bridge.

A partition of a node takes its veth peer off the bridge: the node's link
stays up (no error, no reset, nothing tells either side), its packets go
nowhere and nothing reaches it, exactly as a cut cable or a dead switch
port would behave. Healing puts the peer back; TCP's retransmissions then
get through.

Needs root (ip netns). Namespaces are named PREFIX-NODE, so several runs
never meet.
"""
import subprocess

SUBNET = "10.77.0.0/24"


def sh(*argv, check=True):
    r = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stderr.strip()))
    return r


class Net:
    def __init__(self, prefix):
        self.prefix = prefix
        self.sw = prefix + "-sw"
        self.nodes = {}  # name -> address

    def ns(self, node):
        return "%s-%s" % (self.prefix, node)

    def exec_prefix(self, node):
        return ["ip", "netns", "exec", self.ns(node)]

    def _peer(self, node):
        return "p%d" % list(self.nodes).index(node)

    def create(self, nodes):
        """nodes: {name: "10.77.0.X"}."""
        sh("ip", "netns", "add", self.sw)
        sh("ip", "-n", self.sw, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.sw, "link", "set", "br0", "up")
        for name, addr in nodes.items():
            self.nodes[name] = addr
            ns = self.ns(name)
            peer = self._peer(name)
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", peer, "netns", self.sw)
            sh("ip", "-n", self.sw, "link", "set", peer, "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", addr + "/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

    def partition(self, node):
        sh("ip", "-n", self.sw, "link", "set", self._peer(node), "nomaster")

    def heal(self, node):
        sh("ip", "-n", self.sw, "link", "set", self._peer(node), "master", "br0")

    def destroy(self):
        """Kills whatever still runs in the namespaces, then removes them."""
        for name in list(self.nodes) + ["sw"]:
            ns = self.ns(name) if name != "sw" else self.sw
            r = sh("ip", "netns", "pids", ns, check=False)
            for pid in r.stdout.split():
                sh("kill", "-9", pid, check=False)
        for name in list(self.nodes):
            sh("ip", "netns", "del", self.ns(name), check=False)
        sh("ip", "netns", "del", self.sw, check=False)
