import { describe, expect, it } from "vitest";
import { appendRichText, safeHref } from "../src/rich-text.js";

function render(text: string) {
  const div = document.createElement("div");
  appendRichText(div, text, document);
  return {
    text: div.textContent,
    links: [...div.querySelectorAll("a")].map((a) => [a.textContent, a.getAttribute("href")]),
    nodes: [...div.childNodes].map((n) => (n.nodeType === Node.TEXT_NODE ? `t:${n.textContent}` : `a:${n.textContent}`)),
  };
}

describe("rich text", () => {
  it("links only parseable http(s) URLs", () => {
    expect(safeHref("https://example.org/x")).toBe("https://example.org/x");
    expect(safeHref("HTTP://EXAMPLE.org")).toBe("http://example.org/");
    expect(safeHref("javascript:alert(1)")).toBeNull();
    expect(safeHref("data:text/html,hi")).toBeNull();
    expect(safeHref("https://")).toBeNull();
  });

  it("splits text around links and keeps every character", () => {
    expect(render("a https://example.org/1 b http://example.org/2").nodes).toEqual([
      "t:a ",
      "a:https://example.org/1",
      "t: b ",
      "a:http://example.org/2",
    ]);
    expect(render("https://example.org").nodes).toEqual(["a:https://example.org"]);
    expect(render("no links here").nodes).toEqual(["t:no links here"]);
    expect(render("").nodes).toEqual([]);
  });

  it("leaves sentence punctuation and unbalanced brackets out of the link", () => {
    expect(render("see https://example.org/a.").links).toEqual([["https://example.org/a", "https://example.org/a"]]);
    expect(render("really?! https://example.org/q?x=1!?").links[0]?.[0]).toBe("https://example.org/q?x=1");
    expect(render("(https://example.org/b)").links[0]?.[0]).toBe("https://example.org/b");
    expect(render("(https://example.org/c).").links[0]?.[0]).toBe("https://example.org/c");
    expect(render("https://example.org/wiki/A_(b)").links[0]?.[0]).toBe("https://example.org/wiki/A_(b)");
    expect(render("x https://example.org/d) y").text).toBe("x https://example.org/d) y");
    expect(render('"https://example.org/e"').links[0]?.[0]).toBe("https://example.org/e");
    // A bracket closed inside the URL is part of it; punctuation before a closing one is not.
    expect(render("https://example.org/a)b").links[0]?.[0]).toBe("https://example.org/a)b");
    expect(render("(see https://example.org/f.)").links[0]?.[0]).toBe("https://example.org/f");
    expect(render("(see https://example.org/g.)").text).toBe("(see https://example.org/g.)");
  });

  it("does not link a URL that does not parse, and keeps its text", () => {
    const r = render("bad http://[::1 here");
    expect(r.links).toEqual([]);
    expect(r.text).toBe("bad http://[::1 here");
  });
});
