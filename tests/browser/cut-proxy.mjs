// cut-proxy: a TCP proxy between the browser and the gateway that the test
// controls, to break the network the way real networks break:
//   pass   forward both ways (default)
//   drop   black hole: bytes in both directions are discarded and nothing is
//          closed (as when Wi-Fi drops or a NAT forgets the flow); closes are
//          not passed on either, so neither side learns anything
//   deaf   only the gateway → browser direction is discarded (publishes still
//          arrive, acks and events are lost)
// heal() goes back to pass and resets every connection that lost bytes (its
// stream is corrupt: a real peer would have given up on it); reset() sends a
// TCP RST on every connection.
import net from "node:net";

export class CutProxy {
  constructor(targetPort, targetHost = "127.0.0.1") {
    this.target = { port: targetPort, host: targetHost };
    this.mode = "pass";
    this.conns = new Set();
    this.server = net.createServer((client) => this.accept(client));
  }

  async listen() {
    await new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", resolve);
    });
    this.port = this.server.address().port;
    return this.port;
  }

  accept(client) {
    const up = net.connect(this.target.port, this.target.host);
    const c = { client, up, tainted: this.mode !== "pass", ws: false, open: true };
    this.conns.add(c);
    const end = () => {
      if (!c.open) return;
      if (this.mode !== "pass") {
        // A dead link does not carry the close either; heal() cleans up.
        c.tainted = true;
        return;
      }
      c.open = false;
      client.destroy();
      up.destroy();
      this.conns.delete(c);
    };
    client.on("data", (d) => {
      if (!c.ws && /^GET [^\r\n]*\r\n/.test(d.toString("latin1", 0, 256)) && /\r\nupgrade: *websocket/i.test(d.toString("latin1"))) {
        c.ws = true;
      }
      if (this.mode === "pass" || this.mode === "deaf") up.write(d);
      else c.tainted = true;
    });
    up.on("data", (d) => {
      if (this.mode === "pass") client.write(d);
      else c.tainted = true;
    });
    client.on("error", () => {});
    up.on("error", () => {});
    client.on("close", end);
    up.on("close", end);
  }

  cut(mode = "drop") {
    if (mode !== "drop" && mode !== "deaf") throw new Error(`unknown mode ${mode}`);
    this.mode = mode;
    for (const c of this.conns) c.tainted = true;
  }

  heal() {
    this.mode = "pass";
    for (const c of [...this.conns]) if (c.tainted) this.kill(c);
  }

  reset() {
    for (const c of [...this.conns]) this.kill(c);
  }

  kill(c) {
    c.open = false;
    this.conns.delete(c);
    if (typeof c.client.resetAndDestroy === "function") c.client.resetAndDestroy();
    else c.client.destroy();
    c.up.destroy();
  }

  /** WebSocket connections currently open through the proxy. */
  get openWebSockets() {
    let n = 0;
    for (const c of this.conns) if (c.ws && c.open) n++;
    return n;
  }

  async close() {
    this.reset();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }
}
