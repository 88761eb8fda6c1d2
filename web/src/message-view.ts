// message-view: the DOM of one row of <parley-chat>'s message list. A stored
// message is an li[part~=message] with data-seq, data-rev and friends (the
// test hooks of docs/web.md), its author, a <time>, its body as text and
// safe links (rich-text.ts), an "(edited)" mark, and, when the user may
// change it, edit and delete buttons. A pending send, a day separator and
// the inline edit form are built here too. No state is kept here: the list
// (message-list.ts) decides what is shown where.
import type { Message } from "./gen/parley/v1/message_pb.js";
import type { Pending } from "./outbox.js";
import { appendRichText } from "./rich-text.js";
import type { ParleyChatStrings } from "./strings.js";
import { formatFull, formatStamp } from "./time-format.js";

/** What a row needs to know besides the message. */
export interface RowContext {
  doc: Document;
  strings: ParleyChatStrings;
  now: Date;
  /** Written by the signed-in user. */
  mine: boolean;
  /** The user may edit and delete it. */
  canModify: boolean;
  /**
   * Organizer controls for the message's author (mode="organizer" and the
   * server's role allow it; never on one's own): null for none, else
   * whether the author is muted now (an Unmute button instead of the mutes).
   */
  moderate: { muted: boolean } | null;
}

function span(doc: Document, cls: string, part = cls): HTMLElement {
  const e = doc.createElement("span");
  e.className = cls;
  e.setAttribute("part", part);
  return e;
}

function button(doc: Document, part: string, text: string): HTMLButtonElement {
  const b = doc.createElement("button");
  b.type = "button";
  b.setAttribute("part", part);
  b.textContent = text;
  return b;
}

/** An empty row for the message `seq`; fillMessageRow() writes its content. */
export function createMessageRow(doc: Document, seq: bigint): HTMLLIElement {
  const li = doc.createElement("li");
  li.setAttribute("part", "message");
  li.dataset.seq = seq.toString();
  li.dataset.pending = "false";
  const time = doc.createElement("time");
  time.className = "time";
  time.setAttribute("part", "time");
  li.append(span(doc, "author"), time, span(doc, "body"));
  return li;
}

function child<T extends HTMLElement>(li: HTMLElement, cls: string): T {
  return li.querySelector(`:scope > .${cls}`) as T;
}

/** Writes `m` into its row (again after every change). */
export function fillMessageRow(li: HTMLLIElement, m: Message, ctx: RowContext): void {
  const { doc, strings } = ctx;
  li.dataset.rev = m.rev.toString();
  li.dataset.authorId = m.author?.id ?? "";
  li.dataset.clientMsgId = m.clientMsgId;
  toggle(li, "mine", ctx.mine);
  child<HTMLElement>(li, "author").textContent = m.author?.displayName || m.author?.id || strings.unknownAuthor;
  const time = child<HTMLTimeElement>(li, "time");
  const at = new Date(Number(m.createdAtMs));
  time.dateTime = at.toISOString();
  time.textContent = formatStamp(at, ctx.now, strings.locale);
  time.title = formatFull(at, strings.locale);
  const body = child<HTMLElement>(li, "body");
  body.replaceChildren();
  toggle(li, "deleted", m.deleted);
  if (m.deleted) body.textContent = strings.deleted;
  else appendRichText(body, m.body, doc);

  child<HTMLElement>(li, "edited")?.remove();
  const edited = m.editedAtMs > 0n && !m.deleted;
  toggle(li, "edited", edited);
  const actions = child<HTMLElement>(li, "actions");
  if (edited) {
    const mark = span(doc, "edited");
    mark.textContent = strings.edited;
    body.after(mark);
  }
  if (ctx.canModify && !m.deleted) {
    if (!actions) li.append(createActions(doc, strings));
    else relabelActions(actions, strings);
  } else {
    actions?.remove();
  }
  fillModeration(li, ctx);
}

/** The organizer's buttons for the author of a row: mute 15 min, mute, or unmute; remove. */
function fillModeration(li: HTMLLIElement, ctx: RowContext): void {
  const { doc, strings } = ctx;
  const old = child<HTMLElement>(li, "moderate-actions");
  const armed = Boolean(old?.querySelector("[data-confirm]"));
  old?.remove();
  if (!ctx.moderate) return;
  const box = span(doc, "moderate-actions", "moderate");
  box.setAttribute("role", "group");
  box.setAttribute("aria-label", strings.moderationLabel);
  if (ctx.moderate.muted) {
    const b = button(doc, "unmute", strings.unmute);
    b.dataset.action = "unmute";
    box.append(b);
  } else {
    const timed = button(doc, "mute-timed", strings.muteTimed);
    timed.dataset.action = "mute-timed";
    const always = button(doc, "mute", strings.muteIndefinitely);
    always.dataset.action = "mute";
    box.append(timed, always);
  }
  const remove = button(doc, "remove-user", strings.removeUser);
  remove.dataset.action = "remove-user";
  setRemoveConfirm(remove, armed, strings);
  box.append(remove);
  li.append(box);
}

/** Arms or disarms a remove button (the first click asks, the second removes). */
export function setRemoveConfirm(b: HTMLButtonElement, armed: boolean, strings: ParleyChatStrings): void {
  toggle(b, "confirm", armed);
  b.textContent = armed ? strings.confirmRemove : strings.removeUser;
}

function createActions(doc: Document, strings: ParleyChatStrings): HTMLElement {
  const actions = span(doc, "actions");
  const edit = button(doc, "edit", strings.edit);
  edit.dataset.action = "edit";
  const del = button(doc, "delete", strings.delete);
  del.dataset.action = "delete";
  actions.append(edit, del);
  return actions;
}

function relabelActions(actions: HTMLElement, strings: ParleyChatStrings): void {
  const [edit, del] = actions.children as unknown as [HTMLButtonElement, HTMLButtonElement];
  edit.textContent = strings.edit;
  del.textContent = del.hasAttribute("data-confirm") ? strings.confirmDelete : strings.delete;
}

/** Arms or disarms a delete button (the first click asks, the second deletes). */
export function setDeleteConfirm(del: HTMLButtonElement, armed: boolean, strings: ParleyChatStrings): void {
  toggle(del, "confirm", armed);
  del.textContent = armed ? strings.confirmDelete : strings.delete;
}

/** Shows (or, with null, removes) an error under a row, e.g. a refused delete. */
export function setRowError(li: HTMLElement, text: string | null): void {
  let err = child<HTMLElement>(li, "action-error");
  if (text === null) {
    err?.remove();
    return;
  }
  if (!err) {
    err = span(li.ownerDocument, "error action-error", "action-error");
    err.setAttribute("role", "alert");
    li.append(err);
  }
  err.textContent = text;
}

/** The inline editor of a message: a textarea with the body, Save and Cancel. */
export interface EditForm {
  form: HTMLFormElement;
  input: HTMLTextAreaElement;
  error: HTMLElement;
}

export function createEditForm(doc: Document, text: string, strings: ParleyChatStrings): EditForm {
  const form = doc.createElement("form");
  form.className = "edit-form";
  form.setAttribute("part", "edit-form");
  const input = doc.createElement("textarea");
  input.setAttribute("part", "edit-input");
  input.setAttribute("aria-label", strings.editLabel);
  input.rows = 2;
  input.value = text;
  const save = button(doc, "edit-save", strings.save);
  save.type = "submit";
  const cancel = button(doc, "edit-cancel", strings.cancel);
  cancel.dataset.action = "cancel-edit";
  const error = doc.createElement("p");
  error.className = "error";
  error.setAttribute("part", "edit-error");
  error.setAttribute("role", "alert");
  error.hidden = true;
  form.append(input, save, cancel, error);
  return { form, input, error };
}

/** A send not acknowledged yet, shown dimmed under the stored messages. */
export function createPendingRow(doc: Document, p: Pending, author: string, strings: ParleyChatStrings): HTMLLIElement {
  const li = doc.createElement("li");
  li.setAttribute("part", "message pending");
  li.dataset.pending = "true";
  li.dataset.clientMsgId = p.clientMsgId;
  li.dataset.mine = "";
  const who = span(doc, "author");
  who.textContent = author;
  const time = span(doc, "time");
  time.textContent = strings.sending;
  const body = span(doc, "body");
  appendRichText(body, p.body, doc);
  li.append(who, time, body);
  return li;
}

/** The "new messages" divider above the first message not read yet. */
export function createUnreadDivider(doc: Document, text: string): HTMLLIElement {
  const li = doc.createElement("li");
  li.className = "unread";
  li.setAttribute("part", "unread-divider");
  li.setAttribute("role", "separator");
  li.textContent = text;
  return li;
}

/** A day separator row. */
export function createDaySeparator(doc: Document, key: string, text: string): HTMLLIElement {
  const li = doc.createElement("li");
  li.className = "day";
  li.setAttribute("part", "day");
  li.setAttribute("role", "separator");
  li.dataset.day = key;
  li.textContent = text;
  return li;
}

function toggle(el: HTMLElement, name: string, on: boolean): void {
  if (on) el.dataset[name] = "";
  else delete el.dataset[name];
}
