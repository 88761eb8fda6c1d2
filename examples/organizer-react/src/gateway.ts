// The few REST calls the Organizer app makes itself, next to what
// <parley-chat> does: a development sign-in, rooms, and deleting a message.
// The gateway is on another origin: these are CORS requests, allowed when
// this page's origin is in the gateway's --origin list.

/** Where parley-gateway is: ?gateway=… on the page, else the build's
 * VITE_PARLEY_GATEWAY, else the address `scripts/run` uses. */
export const GATEWAY: string =
  new URLSearchParams(location.search).get("gateway") ??
  (import.meta.env.VITE_PARLEY_GATEWAY as string | undefined) ??
  "http://127.0.0.1:7480";

export interface Room {
  name: string;
  headSeq?: string;
  headRev?: string;
}

/** A refused call, with the gateway's error code (ROOM_NOT_FOUND, ...). */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
  ) {
    super(detail ? `${code}: ${detail}` : code);
  }
}

async function call<T>(method: string, path: string, token?: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(new URL(path, GATEWAY), {
      method,
      headers,
      cache: "no-store",
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (e) {
    throw new GatewayError(0, "NETWORK", `Cannot reach the chat gateway at ${GATEWAY}: is it running, and is this page's origin (${location.origin}) in its --origin list? (${e instanceof Error ? e.message : e})`);
  }
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) throw new GatewayError(res.status, String(json.code ?? res.status), String(json.detail ?? ""));
  return json as T;
}

/** A token from the gateway's development endpoint (parley-gateway --dev). */
export async function devToken(user: string, name: string): Promise<string> {
  const q = new URLSearchParams({ user, name, role: "organizer" });
  const { token } = await call<{ token?: string }>("GET", `/v1/dev/token?${q}`);
  if (!token) throw new GatewayError(500, "NO_TOKEN", "the gateway sent no token");
  return token;
}

/** Creates the room, or opens it if it exists (organizers only). */
export async function openOrCreateRoom(token: string, name: string): Promise<{ room: Room; created: boolean }> {
  const r = await call<{ room: Room; created?: boolean }>("POST", "/v1/rooms", token, { name });
  return { room: r.room, created: r.created === true };
}

/** Deletes any message of the room (organizers); authors only their own. */
export async function deleteMessage(token: string, room: string, seq: bigint): Promise<void> {
  await call("DELETE", `/v1/rooms/${encodeURIComponent(room)}/messages/${seq}`, token);
}

/** The user in a JWT's payload, to greet them (the gateway verifies it). */
export function tokenUser(token: string): { id: string; name: string; role: string } | null {
  try {
    const part = token.split(".")[1] ?? "";
    const claims = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))) as Record<string, unknown>;
    return { id: String(claims.sub ?? ""), name: String(claims.name ?? claims.sub ?? ""), role: String(claims.role ?? "") };
  } catch {
    return null;
  }
}
