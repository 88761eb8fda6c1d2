// @vitest-environment node
import { afterEach, describe, expect, it, vi } from "vitest";
import { Emitter } from "../src/emitter.js";

class Source extends Emitter<{ a: number; b: string }> {
  fire<K extends "a" | "b">(k: K, v: { a: number; b: string }[K]): void {
    this.emit(k, v);
  }
}

describe("emitter", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("calls listeners of a type in order; the function on() returns removes one", () => {
    const s = new Source();
    const got: string[] = [];
    const off1 = s.on("a", (n) => got.push(`1:${n}`));
    s.on("a", (n) => got.push(`2:${n}`));
    s.on("b", (t) => got.push(`b:${t}`));
    s.fire("a", 1);
    off1();
    s.fire("a", 2);
    s.fire("b", "x");
    expect(got).toEqual(["1:1", "2:1", "2:2", "b:x"]);
    s.off("b", () => {}); // unknown listener
    new Source().off("a", () => {}); // no listener of that type at all
    new Source().fire("a", 3); // nobody listening
  });

  it("a throwing listener neither stops the others nor the emitter; its error surfaces later", () => {
    const queued: Array<() => void> = [];
    vi.spyOn(globalThis, "queueMicrotask").mockImplementation((fn) => {
      queued.push(fn);
    });
    const s = new Source();
    const got: number[] = [];
    s.on("a", () => {
      throw new Error("listener bug");
    });
    s.on("a", (n) => got.push(n));
    s.fire("a", 7);
    expect(got).toEqual([7]);
    expect(queued).toHaveLength(1);
    expect(() => queued[0]?.()).toThrow("listener bug");
  });
});
