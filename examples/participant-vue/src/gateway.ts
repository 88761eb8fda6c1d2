// The REST calls the Participation app makes itself, besides <parley-chat>:
// a development sign-in and a look at the room before joining it. The
// gateway is on another origin: these are CORS requests, allowed when this
// page's origin is in the gateway's --origin list.

/** Where parley-gateway is: ?gateway=… on the page, else the build's
 * VITE_PARLEY_GATEWAY, else the address `scripts/run` uses. */
export const GATEWAY: string =
  new URLSearchParams(location.search).get("gateway") ??
  (import.meta.env.VITE_PARLEY_GATEWAY as string | undefined) ??
  "http://127.0.0.1:7480";

async function call<T>(path: string, token?: string): Promise<T> {
  let res: Response;
  try {
    res = await fetch(new URL(path, GATEWAY), {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      cache: "no-store",
    });
  } catch (e) {
    throw new Error(`Cannot reach the chat gateway at ${GATEWAY}: is it running, and is this page's origin (${location.origin}) in its --origin list? (${e instanceof Error ? e.message : e})`);
  }
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (res.status === 404 && json.code === "ROOM_NOT_FOUND") throw new Error("There is no such room (organizers create rooms).");
  if (!res.ok) throw new Error(`${json.code ?? res.status}: ${json.detail ?? ""}`);
  return json as T;
}

/** A participant token from the gateway's development endpoint (--dev). */
export async function devToken(user: string, name: string): Promise<string> {
  const q = new URLSearchParams({ user, name, role: "participant" });
  const { token } = await call<{ token?: string }>(`/v1/dev/token?${q}`);
  if (!token) throw new Error("the gateway sent no token");
  return token;
}

/** Checks that the room exists before showing it. */
export async function roomExists(token: string, room: string): Promise<void> {
  await call(`/v1/rooms/${encodeURIComponent(room)}`, token);
}
