import { useEffect, useState } from "react";
import type { ParleyChatElement, RoomState } from "@parley/chat";
import { deleteMessage } from "./gateway.ts";

type Message = ReturnType<RoomState["messages"]>[number];

/** Everything the room's <parley-chat> shows change the list. */
const EVENTS = ["parley-history", "parley-message", "parley-edit", "parley-delete", "parley-ack"];

/**
 * The organizer's view of every message in the room, newest first, each
 * with a Delete button. The list is the element's own room state (no second
 * connection); a deletion goes through REST and comes back to every open
 * chat, this one included, as a live event.
 */
export function Moderation(props: {
  chat: ParleyChatElement | null;
  room: string;
  token: string;
  onError: (message: string) => void;
}) {
  const { chat, room, token, onError } = props;
  const [messages, setMessages] = useState<Message[]>([]);
  const [busy, setBusy] = useState<string | null>(null);

  useEffect(() => {
    if (!chat) return;
    const refresh = () => setMessages(chat.client?.room(room)?.messages() ?? []);
    for (const t of EVENTS) chat.addEventListener(t, refresh);
    refresh();
    return () => {
      for (const t of EVENTS) chat.removeEventListener(t, refresh);
    };
  }, [chat, room]);

  async function remove(m: Message) {
    setBusy(m.seq.toString());
    try {
      await deleteMessage(token, room, m.seq);
    } catch (e) {
      onError(`Could not delete message ${m.seq}: ${e instanceof Error ? e.message : e}`);
    } finally {
      setBusy(null);
    }
  }

  return (
    <aside className="moderation" aria-label="Moderation">
      <h2>Messages in #{room}</h2>
      {messages.length === 0 && <p className="muted">Nothing said yet.</p>}
      <ol reversed>
        {[...messages].reverse().map((m) => (
          <li key={m.seq.toString()} data-seq={m.seq.toString()} data-deleted={m.deleted ? "" : undefined}>
            <span className="author">{m.author?.displayName || m.author?.id}</span>{" "}
            <span className="body">{m.deleted ? "(deleted)" : m.body}</span>
            <button
              type="button"
              disabled={m.deleted || busy === m.seq.toString()}
              onClick={() => void remove(m)}
              aria-label={`Delete message ${m.seq} by ${m.author?.displayName || m.author?.id}`}
            >
              Delete
            </button>
          </li>
        ))}
      </ol>
    </aside>
  );
}
