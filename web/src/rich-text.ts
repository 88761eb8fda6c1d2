// rich-text: a message body as DOM nodes. The body is always text (text
// nodes, never parsed as HTML); the only element made from it is a link, for
// an http(s) URL written in it, opening in a new tab with
// rel="noopener noreferrer" so the page it opens gets no handle on ours.

/** URL-looking runs: a scheme and everything up to white space or a quote/bracket. */
const URL_RUN = /\bhttps?:\/\/[^\s<>"'`]+/gi;
/** Punctuation that ends a sentence rather than a URL. */
const TRAILING = /[.,;:!?'"]+$/;
const SAFE_PROTOCOLS = new Set(["http:", "https:"]);

function count(text: string, ch: string): number {
  return text.split(ch).length - 1;
}

/** Cuts what most likely is not part of the URL off its end. */
function trimUrl(run: string): string {
  let url = run.replace(TRAILING, "");
  // "(see http://x/y)": the closing bracket belongs to the sentence, unless
  // the URL opened one itself (as in wiki links).
  while (url.endsWith(")") && count(url, "(") < count(url, ")")) {
    url = url.slice(0, -1).replace(TRAILING, "");
  }
  return url;
}

/** The URL if it is safe to link to (http or https, parseable), else null. */
export function safeHref(text: string): string | null {
  try {
    const u = new URL(text);
    return SAFE_PROTOCOLS.has(u.protocol) ? u.href : null;
  } catch {
    return null;
  }
}

/** Appends `text` to `parent` as text nodes and links. */
export function appendRichText(parent: Node, text: string, doc: Document): void {
  let at = 0;
  for (const m of text.matchAll(URL_RUN)) {
    const start = m.index;
    const url = trimUrl(m[0]);
    const href = safeHref(url);
    if (href === null) continue;
    if (start > at) parent.appendChild(doc.createTextNode(text.slice(at, start)));
    const a = doc.createElement("a");
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.setAttribute("part", "link");
    a.textContent = url;
    parent.appendChild(a);
    at = start + url.length;
  }
  if (at < text.length) parent.appendChild(doc.createTextNode(text.slice(at)));
}
