import { useEffect, useState } from "react";
import type { ParleyChatElement } from "@parley/chat";
import { GATEWAY, GatewayError, devToken, openOrCreateRoom, tokenUser } from "./gateway.ts";
import { Moderation } from "./Moderation.tsx";
import { RoomPicker } from "./RoomPicker.tsx";
import { SignIn } from "./SignIn.tsx";

const params = new URLSearchParams(location.search);

export function App() {
  const [token, setToken] = useState<string | null>(null);
  const [room, setRoom] = useState<string | null>(null);
  const [notice, setNotice] = useState<string>("");
  const [error, setError] = useState<string>("");
  const [chat, setChat] = useState<ParleyChatElement | null>(null);
  const user = token ? tokenUser(token) : null;

  async function signIn(get: () => Promise<string>) {
    setError("");
    try {
      setToken(await get());
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  }

  async function open(name: string) {
    if (!token) return;
    setError("");
    try {
      const r = await openOrCreateRoom(token, name);
      setRoom(r.room.name);
      setNotice(r.created ? `Created #${r.room.name}` : `Opened #${r.room.name}`);
    } catch (e) {
      setError(e instanceof GatewayError && e.code === "PERMISSION_DENIED"
        ? "Only organizers can open rooms here: sign in with an organizer token."
        : e instanceof Error ? e.message : String(e));
    }
  }

  // ?name=…&user=… signs in with a development token; ?room=… opens a room.
  useEffect(() => {
    const name = params.get("name");
    if (name && !token) void signIn(() => devToken(params.get("user") || name.toLowerCase(), name));
  }, []);
  useEffect(() => {
    const r = params.get("room");
    if (token && r && !room) void open(r);
  }, [token]);

  if (!token) {
    return (
      <main className="app">
        <h1>Organizer</h1>
        <SignIn onDevSignIn={(u, n) => signIn(() => devToken(u, n))} onToken={(t) => signIn(async () => t)} />
        {error && <p className="error" role="alert">{error}</p>}
      </main>
    );
  }
  return (
    <main className="app">
      <header className="top">
        <h1>Organizer</h1>
        <span className="who" data-testid="who">
          {user?.name || "?"} <small>({user?.role || "unknown role"})</small>
        </span>
        <button type="button" onClick={() => { setToken(null); setRoom(null); }}>
          Sign out
        </button>
      </header>
      <RoomPicker current={room} onOpen={open} />
      {notice && <p className="notice" role="status">{notice}</p>}
      {error && <p className="error" role="alert">{error}</p>}
      {room && (
        <section className="room">
          {/* mode="organizer": the room mode switch and mute / remove on each
              message, shown when the server says this user organizes the room. */}
          <parley-chat ref={setChat} room={room} gateway={GATEWAY} token={token} mode="organizer" />
          <Moderation chat={chat} room={room} token={token} onError={setError} />
        </section>
      )}
    </main>
  );
}
