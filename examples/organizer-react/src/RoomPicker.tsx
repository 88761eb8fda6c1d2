import { useEffect, useState } from "react";

const RECENT_KEY = "parley-organizer-rooms";

function recentRooms(): string[] {
  try {
    const v = JSON.parse(localStorage.getItem(RECENT_KEY) ?? "[]") as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}

/** Open a room by name (created if it does not exist) or pick a recent one. */
export function RoomPicker(props: { current: string | null; onOpen: (room: string) => void }) {
  const [name, setName] = useState("");
  const [recent, setRecent] = useState<string[]>(() => recentRooms());
  // The room shown (however it was opened) heads the recent list.
  useEffect(() => {
    const room = props.current;
    if (!room) return;
    setRecent((old) => {
      const next = [room, ...old.filter((r) => r !== room)].slice(0, 8);
      localStorage.setItem(RECENT_KEY, JSON.stringify(next));
      return next;
    });
  }, [props.current]);
  return (
    <nav className="rooms" aria-label="Rooms">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (name.trim()) props.onOpen(name.trim());
          setName("");
        }}
      >
        <input value={name} onChange={(e) => setName(e.target.value)} placeholder="room name" aria-label="Room name" />
        <button type="submit">Open or create</button>
      </form>
      <ul>
        {recent.map((r) => (
          <li key={r}>
            <button type="button" aria-current={r === props.current ? "true" : undefined} onClick={() => props.onOpen(r)}>
              #{r}
            </button>
          </li>
        ))}
      </ul>
    </nav>
  );
}
