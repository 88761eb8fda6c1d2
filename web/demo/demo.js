// @ts-check
// The demo page's sign-in: asks for a name, picks a random user id, gets a
// token from the gateway's dev endpoint and shows <parley-chat>. Query
// parameters name, user and room skip the form; format=json picks the JSON
// WebSocket subprotocol instead of binary protobuf.
const params = new URLSearchParams(location.search);
const room = params.get("room") || "lobby";
const form = /** @type {HTMLFormElement} */ (document.getElementById("join"));
const nameInput = /** @type {HTMLInputElement} */ (document.getElementById("name"));
const errorBox = /** @type {HTMLElement} */ (document.getElementById("error"));
const chatBox = /** @type {HTMLElement} */ (document.getElementById("chat"));

/** @param {string} user @param {string} name @returns {Promise<string>} */
async function devToken(user, name) {
  const q = new URLSearchParams({ user, name, role: "participant" });
  const res = await fetch(`/v1/dev/token?${q}`, { cache: "no-store" });
  if (!res.ok) throw new Error(`GET /v1/dev/token: HTTP ${res.status} (is the gateway in --dev mode?)`);
  const body = await res.json();
  if (typeof body.token !== "string") throw new Error("GET /v1/dev/token: no token in the answer");
  return body.token;
}

/** @param {string} name @param {string} user */
async function join(name, user) {
  errorBox.hidden = true;
  try {
    let token = await devToken(user, name);
    let fetchedAt = Date.now();
    const chat = document.createElement("parley-chat");
    chat.setAttribute("room", room);
    if (params.get("format") === "json") chat.setAttribute("format", "json");
    // Renew the dev token (they expire) at most every five minutes.
    chat.getToken = async () => {
      if (Date.now() - fetchedAt > 5 * 60_000) {
        token = await devToken(user, name);
        fetchedAt = Date.now();
      }
      return token;
    };
    chat.setAttribute("token", token);
    chatBox.replaceChildren(chat);
    form.hidden = true;
    document.title = `${name} · parley`;
  } catch (e) {
    errorBox.textContent = e instanceof Error ? e.message : String(e);
    errorBox.hidden = false;
  }
}

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const name = nameInput.value.trim();
  if (name) void join(name, `u-${crypto.randomUUID().slice(0, 8)}`);
});

const preset = params.get("name");
if (preset) void join(preset, params.get("user") || `u-${crypto.randomUUID().slice(0, 8)}`);
