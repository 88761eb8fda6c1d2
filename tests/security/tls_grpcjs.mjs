// tls_grpcjs: a client parley did not write (@grpc/grpc-js) calls parleyd
// over TLS, trusting only the test CA. usage: node tls_grpcjs.mjs ADDR CA TOKEN
// Prints "ok room=<name>" or exits 1.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const require = createRequire(join(root, "package.json"));
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const [addr, ca, token] = process.argv.slice(2);
const def = protoLoader.loadSync(["parley/v1/history.proto"], { includeDirs: [join(root, "proto")] });
const pkg = grpc.loadPackageDefinition(def).parley.v1;
const client = new pkg.History(addr, grpc.credentials.createSsl(readFileSync(ca)));
const md = new grpc.Metadata();
md.set("authorization", `Bearer ${token}`);
client.GetRoom({ name: "lobby" }, md, { deadline: Date.now() + 10000 }, (err, resp) => {
  if (err) {
    console.log("error", err.code, err.details);
    process.exit(1);
  }
  console.log(`ok room=${resp.room.name}`);
  process.exit(0);
});
