// strings: every text <parley-chat> shows or announces, with the English
// defaults. An app replaces any of them (another language, other words)
// through the element's `strings` property; what it leaves out stays English.
// Texts with values in them are functions.

export interface ParleyChatStrings {
  /** BCP 47 locale for dates and times; undefined: the browser's. */
  locale: string | undefined;

  statusIdle: string;
  statusConnecting: string;
  statusReconnecting: string;
  statusCatchingUp: string;
  statusLive: string;
  /** Followed by retryingIn(...) or reconnectingSoon. */
  statusOffline: string;
  statusClosed: string;
  /** The token was refused and no fresh one came: the user must sign in again. */
  statusUnauthenticated: string;
  statusRoomNotFound: string;
  /** Another reason the room cannot be shown (code: an ErrorCode name such as PERMISSION_DENIED). */
  statusRoomError: (code: string) => string;
  /** The room refused or ended the user's subscription by an access rule. */
  statusRoomRemoved: string;
  statusRoomMembersOnly: string;
  statusRoomNotGranted: string;
  retryingIn: (seconds: number) => string;
  reconnectingSoon: string;

  loadOlder: string;
  noMessages: string;
  messagesLabel: string;
  /** A day separator for today, yesterday; other days use the locale's date. */
  today: string;
  yesterday: string;
  unknownAuthor: string;
  /** The author shown on one's own pending messages before the server named the user. */
  me: string;
  sending: string;
  edited: string;
  deleted: string;
  /** What the live region says for a new message. */
  announce: (author: string, body: string) => string;

  inputLabel: string;
  inputPlaceholder: string;
  send: string;
  bodyTooLong: (sizeBytes: number, limitBytes: number) => string;
  bodyEmpty: string;
  /** A send or an edit the server refused (code: an ErrorCode name). */
  sendFailed: (code: string, detail: string) => string;

  edit: string;
  editLabel: string;
  save: string;
  cancel: string;
  delete: string;
  /** The delete button's text once clicked, waiting for a second click. */
  confirmDelete: string;
  actionFailed: (code: string, detail: string) => string;

  /** Who is here: `count` users in all, `names` the first few of them. */
  presence: (count: number, names: string[]) => string;
  /** Who is typing (one or more names). */
  typing: (names: string[]) => string;
  /** The divider above the first message not read yet. */
  newMessages: string;

  /** Why the composer is off (the server's access rules, docs/api.md "Access"). */
  cannotPostMuted: string;
  /** Muted until `time` (a time of day in the locale). */
  cannotPostMutedUntil: (time: string) => string;
  cannotPostAnnouncements: string;
  cannotPostClosed: string;
  /** Another rule (a Rule name such as NOT_GRANTED). */
  cannotPost: (rule: string) => string;

  /** The organizer's controls (mode="organizer"). */
  moderationLabel: string;
  roomModeLabel: string;
  modeOpen: string;
  modeAnnouncements: string;
  modeClosed: string;
  /** Per message: mute its author for DEFAULT_MUTE_MS (15 min), until lifted, lift, remove. */
  muteTimed: string;
  muteIndefinitely: string;
  unmute: string;
  removeUser: string;
  /** The remove button's text once clicked, waiting for a second click. */
  confirmRemove: string;
  /** What the live region says when an organizer acted (kind: an ActionKind name). */
  roomAction: (actor: string, kind: string, target: string) => string;
}

export const DEFAULT_STRINGS: Readonly<ParleyChatStrings> = Object.freeze({
  locale: undefined,

  statusIdle: "Not connected",
  statusConnecting: "Connecting…",
  statusReconnecting: "Offline — reconnecting…",
  statusCatchingUp: "Catching up…",
  statusLive: "Connected",
  statusOffline: "Offline",
  statusClosed: "Disconnected",
  statusUnauthenticated: "Please sign in again: your session has expired or is not valid",
  statusRoomNotFound: "Room not found",
  statusRoomError: (code: string) => `Error: ${code}`,
  statusRoomRemoved: "An organizer removed you from this room",
  statusRoomMembersOnly: "This room is for its members only",
  statusRoomNotGranted: "You have no access to this room",
  retryingIn: (seconds: number) => ` — retrying in ${seconds} s`,
  reconnectingSoon: " — reconnecting…",

  loadOlder: "Load earlier messages",
  noMessages: "No messages yet.",
  messagesLabel: "Messages",
  today: "Today",
  yesterday: "Yesterday",
  unknownAuthor: "unknown",
  me: "me",
  sending: "sending…",
  edited: "(edited)",
  deleted: "message deleted",
  announce: (author: string, body: string) => `${author}: ${body}`,

  inputLabel: "Message",
  inputPlaceholder: "Write a message…",
  send: "Send",
  bodyTooLong: (size: number, limit: number) =>
    `This message is too long: ${size} bytes, the limit is ${limit}. Shorten it to send it.`,
  bodyEmpty: "The message is empty.",
  sendFailed: (code: string, detail: string) => `Not sent (${code})${detail ? `: ${detail}` : ""}. Your text is back in the box.`,

  edit: "Edit",
  editLabel: "Edit message",
  save: "Save",
  cancel: "Cancel",
  delete: "Delete",
  confirmDelete: "Delete?",
  actionFailed: (code: string, detail: string) => `That did not work (${code})${detail ? `: ${detail}` : ""}.`,

  presence: (count: number, names: string[]) =>
    `${count} here${names.length > 0 ? `: ${names.join(", ")}${count > names.length ? ` and ${count - names.length} more` : ""}` : ""}`,
  typing: (names: string[]) =>
    names.length === 1
      ? `${names[0]} is typing…`
      : names.length === 2
        ? `${names[0]} and ${names[1]} are typing…`
        : "Several people are typing…",
  newMessages: "New messages",

  cannotPostMuted: "An organizer muted you in this room: you can read but not write.",
  cannotPostMutedUntil: (time: string) => `An organizer muted you in this room until ${time}: you can read but not write.`,
  cannotPostAnnouncements: "This room is read-only: only organizers post announcements here.",
  cannotPostClosed: "This room is closed: it is read-only.",
  cannotPost: (rule: string) => `You cannot write in this room (${rule}).`,

  moderationLabel: "Moderation",
  roomModeLabel: "Room mode",
  modeOpen: "Open",
  modeAnnouncements: "Announcements (read-only)",
  modeClosed: "Closed",
  muteTimed: "Mute 15 min",
  muteIndefinitely: "Mute",
  unmute: "Unmute",
  removeUser: "Remove",
  confirmRemove: "Remove?",
  roomAction: (actor: string, kind: string, target: string) => `${actor}: ${kind.toLowerCase().replace(/_/g, " ")}${target ? ` ${target}` : ""}`,
});

/** The defaults with `overrides` on top (undefined values keep the default). */
export function mergeStrings(overrides: Partial<ParleyChatStrings>): ParleyChatStrings {
  const out: ParleyChatStrings = { ...DEFAULT_STRINGS };
  for (const key of Object.keys(overrides) as Array<keyof ParleyChatStrings>) {
    const v = overrides[key];
    if (v !== undefined) (out as unknown as Record<string, unknown>)[key] = v;
  }
  return out;
}
