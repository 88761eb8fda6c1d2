// typing: who is shown typing, and for how long.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TYPING_SHOWN_MS } from "../src/constants.js";
import { create } from "@bufbuild/protobuf";
import { AuthorSchema } from "../src/protocol.js";
import { TypingTracker } from "../src/typing.js";

const who = (id: string) => create(AuthorSchema, { id, displayName: id.toUpperCase() });

describe("TypingTracker", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("shows a user from their typing frame until TYPING_SHOWN_MS after the last one", () => {
    const seen: string[][] = [];
    const t = new TypingTracker((users) => seen.push(users.map((u) => u.id)));
    t.typed(who("ann"));
    expect(t.users().map((u) => u.displayName)).toEqual(["ANN"]);
    vi.advanceTimersByTime(TYPING_SHOWN_MS - 1000);
    t.typed(who("ann")); // still typing: no change reported, the end moves
    vi.advanceTimersByTime(TYPING_SHOWN_MS - 1);
    expect(t.users().map((u) => u.id)).toEqual(["ann"]);
    vi.advanceTimersByTime(1);
    expect(t.users()).toEqual([]);
    expect(seen).toEqual([["ann"], []]);
    // Nobody left: no timer keeps running.
    expect(vi.getTimerCount()).toBe(0);
  });

  it("expires each user on their own time, in the order they started", () => {
    const seen: string[][] = [];
    const t = new TypingTracker((users) => seen.push(users.map((u) => u.id)), undefined, 1000);
    t.typed(who("ann"));
    vi.advanceTimersByTime(400);
    t.typed(who("bob"));
    expect(t.users().map((u) => u.id)).toEqual(["ann", "bob"]);
    vi.advanceTimersByTime(600);
    expect(t.users().map((u) => u.id)).toEqual(["bob"]);
    vi.advanceTimersByTime(400);
    expect(seen).toEqual([["ann"], ["ann", "bob"], ["bob"], []]);
  });

  it("stops showing a user whose message arrived, and clear() forgets everyone at once", () => {
    const seen: string[][] = [];
    const t = new TypingTracker((users) => seen.push(users.map((u) => u.id)));
    t.typed(who("ann"));
    t.typed(who("bob"));
    t.stopped("ann");
    t.stopped("nobody"); // not typing: nothing reported
    expect(t.users().map((u) => u.id)).toEqual(["bob"]);
    t.clear();
    t.clear(); // nobody left: nothing reported
    expect(seen).toEqual([["ann"], ["ann", "bob"], ["bob"], []]);
    vi.advanceTimersByTime(TYPING_SHOWN_MS * 2);
    expect(seen).toHaveLength(4);
  });
});
