// message-list: the rows of <parley-chat>'s log. Stored messages are kept in
// seq order (one row per seq, updated in place by later revs), with a day
// separator before the first message of each day; pending sends follow in
// their own list, which is hidden (out of the accessibility tree) while
// empty. It also runs the inline edit form and the two-click delete of a
// row; what an edit or a delete does is the element's business (hooks).
import type { Message } from "./gen/parley/v1/message_pb.js";
import {
  type EditForm,
  type RowContext,
  createDaySeparator,
  createEditForm,
  createMessageRow,
  createPendingRow,
  createUnreadDivider,
  fillMessageRow,
  setDeleteConfirm,
  setRemoveConfirm,
  setRowError,
} from "./message-view.js";
import type { Pending } from "./outbox.js";
import type { ParleyChatStrings } from "./strings.js";
import { dayKey, formatDay } from "./time-format.js";

export interface MessageListHooks {
  strings(): ParleyChatStrings;
  now(): Date;
  isMine(m: Message): boolean;
  canModify(m: Message): boolean;
  /** Why `body` cannot be saved (shown under the editor), or null. */
  check(body: string): string | null;
  /** Saves an edit; rejects with the reason to show. */
  edit(seq: bigint, body: string): Promise<void>;
  remove(seq: bigint): Promise<void>;
  /** Text for a failed edit or delete. */
  failure(err: unknown): string;
  /** The organizer's controls for the author of `m`, or null (see RowContext.moderate). */
  moderation(m: Message): { muted: boolean } | null;
  /** Runs an organizer's action on the author of a message; rejects with the reason to show. */
  moderate(action: ModerationRequest, authorId: string): Promise<void>;
  /** A row was added to the list, or is about to leave it (to watch what the reader sees). */
  rowAdded?(li: HTMLLIElement): void;
  rowRemoved?(li: HTMLLIElement): void;
}

/** What an organizer's button in a row asks for. */
export type ModerationRequest = "mute-timed" | "mute" | "unmute" | "remove-user";

interface Row {
  li: HTMLLIElement;
  message: Message;
  editor: EditForm | null;
}

export class MessageList {
  private readonly doc: Document;
  private readonly list: HTMLOListElement;
  private readonly pendingList: HTMLOListElement;
  private readonly hooks: MessageListHooks;
  private readonly rows = new Map<bigint, Row>();
  /** Rendered seqs, ascending. */
  private readonly order: bigint[] = [];
  private readonly pendingRows = new Map<string, HTMLLIElement>();

  constructor(list: HTMLOListElement, pendingList: HTMLOListElement, hooks: MessageListHooks) {
    this.doc = list.ownerDocument;
    this.list = list;
    this.pendingList = pendingList;
    this.hooks = hooks;
    this.pendingList.hidden = true;
    list.addEventListener("click", (ev) => this.onClick(ev));
  }

  /** Stored messages shown. */
  get size(): number {
    return this.rows.size;
  }

  get pendingCount(): number {
    return this.pendingRows.size;
  }

  /** Shows `m` (a new row in seq order, or the row of its seq updated). */
  upsert(m: Message): void {
    let row = this.rows.get(m.seq);
    if (!row) {
      const li = createMessageRow(this.doc, m.seq);
      row = { li, message: m, editor: null };
      this.rows.set(m.seq, row);
      const i = this.indexAfter(m.seq);
      const next = i < this.order.length ? this.rows.get(this.order[i] as bigint)?.li : undefined;
      this.order.splice(i, 0, m.seq);
      // Before the next message, or before the separator that heads its day.
      const anchor = next ? this.headOf(next) : null;
      this.list.insertBefore(li, anchor);
      this.hooks.rowAdded?.(li);
    }
    row.message = m;
    if (m.deleted && row.editor) this.closeEditor(row);
    fillMessageRow(row.li, m, this.context(m));
    if (row.editor) row.li.querySelector<HTMLElement>(":scope > .body")?.setAttribute("hidden", "");
  }

  /** Removes the rows of these seqs (forgotten by the client). */
  remove(seqs: readonly bigint[]): void {
    for (const seq of seqs) {
      const row = this.rows.get(seq);
      if (!row) continue;
      this.hooks.rowRemoved?.(row.li);
      row.li.remove();
      this.rows.delete(seq);
      const i = this.order.indexOf(seq);
      if (i >= 0) this.order.splice(i, 1);
    }
  }

  /** Writes every row again (new strings, the user became known, a new day). */
  refresh(): void {
    for (const row of this.rows.values()) this.upsert(row.message);
    const strings = this.hooks.strings();
    for (const li of this.pendingRows.values()) {
      const time = li.querySelector(":scope > .time");
      if (time) time.textContent = strings.sending;
    }
    this.renderDays();
  }

  /**
   * Puts one separator before the first message of each day and removes the
   * ones no longer needed. Call after a batch of upserts.
   */
  renderDays(): void {
    const strings = this.hooks.strings();
    const now = this.hooks.now();
    const keep = new Set<Element>();
    let previous: string | null = null;
    for (const seq of this.order) {
      const row = this.rows.get(seq) as Row;
      const at = new Date(Number(row.message.createdAtMs));
      const key = dayKey(at);
      if (key === previous) continue;
      previous = key;
      const text = formatDay(at, now, strings.locale, strings);
      const before = row.li.previousElementSibling as HTMLElement | null;
      if (before?.classList.contains("day") && before.dataset.day === key) {
        if (before.textContent !== text) before.textContent = text;
        keep.add(before);
      } else {
        const sep = createDaySeparator(this.doc, key, text);
        this.list.insertBefore(sep, row.li);
        keep.add(sep);
      }
    }
    for (const sep of [...this.list.querySelectorAll(":scope > li.day")]) {
      if (!keep.has(sep)) sep.remove();
    }
  }

  /**
   * Puts the "new messages" divider before the row of `seq` (and its day
   * separator), or removes it (null, or a seq not shown).
   */
  setUnreadFrom(seq: bigint | null): void {
    this.list.querySelector(":scope > li.unread")?.remove();
    const row = seq === null ? undefined : this.rows.get(seq);
    if (!row) return;
    this.list.insertBefore(createUnreadDivider(this.doc, this.hooks.strings().newMessages), this.headOf(row.li));
  }

  clear(): void {
    for (const row of this.rows.values()) this.hooks.rowRemoved?.(row.li);
    this.rows.clear();
    this.order.length = 0;
    this.pendingRows.clear();
    this.list.replaceChildren();
    this.pendingList.replaceChildren();
    this.pendingList.hidden = true;
  }

  addPending(p: Pending, author: string): void {
    if (this.pendingRows.has(p.clientMsgId)) return;
    const li = createPendingRow(this.doc, p, author, this.hooks.strings());
    this.pendingRows.set(p.clientMsgId, li);
    this.pendingList.append(li);
    this.pendingList.hidden = false;
  }

  removePending(clientMsgId: string): void {
    const li = this.pendingRows.get(clientMsgId);
    if (!li) return;
    li.remove();
    this.pendingRows.delete(clientMsgId);
    this.pendingList.hidden = this.pendingRows.size === 0;
  }

  /** The row an li of the list belongs to, headed by its day separator if it has one. */
  private headOf(li: HTMLLIElement): Element {
    const before = li.previousElementSibling;
    return before?.classList.contains("day") ? before : li;
  }

  private context(m: Message): RowContext {
    return {
      doc: this.doc,
      strings: this.hooks.strings(),
      now: this.hooks.now(),
      mine: this.hooks.isMine(m),
      canModify: this.hooks.canModify(m),
      moderate: this.hooks.moderation(m),
    };
  }

  private indexAfter(seq: bigint): number {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.order[mid] as bigint) < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private rowOf(target: EventTarget | null): Row | undefined {
    const li = (target as Element | null)?.closest?.("li[data-seq]") as HTMLElement | null;
    return li?.dataset.seq ? this.rows.get(BigInt(li.dataset.seq)) : undefined;
  }

  private onClick(ev: Event): void {
    const target = ev.target as HTMLElement | null;
    const action = target?.closest?.("button[data-action]")?.getAttribute("data-action");
    const row = this.rowOf(target);
    if (!action || !row) return;
    if (action === "edit") this.openEditor(row);
    else if (action === "cancel-edit") this.closeEditor(row);
    else if (action === "delete") void this.delete(row, target?.closest("button") as HTMLButtonElement);
    else if (action === "mute-timed" || action === "mute" || action === "unmute" || action === "remove-user") {
      void this.moderate(row, action, target?.closest("button") as HTMLButtonElement);
    }
  }

  private async moderate(row: Row, action: ModerationRequest, b: HTMLButtonElement): Promise<void> {
    const author = row.message.author?.id;
    if (!author) return;
    const strings = this.hooks.strings();
    if (action === "remove-user" && !b.hasAttribute("data-confirm")) {
      setRemoveConfirm(b, true, strings);
      return;
    }
    if (action === "remove-user") setRemoveConfirm(b, false, strings);
    setRowError(row.li, null);
    b.disabled = true;
    try {
      await this.hooks.moderate(action, author);
    } catch (err) {
      setRowError(row.li, this.hooks.failure(err));
    } finally {
      b.disabled = false;
    }
  }

  private openEditor(row: Row): void {
    if (row.editor || row.message.deleted) return;
    const ed = createEditForm(this.doc, row.message.body, this.hooks.strings());
    row.editor = ed;
    row.li.querySelector<HTMLElement>(":scope > .body")?.setAttribute("hidden", "");
    row.li.append(ed.form);
    ed.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.saveEdit(row, ed);
    });
    ed.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") this.closeEditor(row);
    });
    ed.input.focus();
  }

  private closeEditor(row: Row): void {
    row.editor?.form.remove();
    row.editor = null;
    row.li.querySelector<HTMLElement>(":scope > .body")?.removeAttribute("hidden");
  }

  private showEditError(ed: EditForm, text: string | null): void {
    ed.error.hidden = text === null;
    ed.error.textContent = text ?? "";
    if (text === null) ed.input.removeAttribute("aria-invalid");
    else ed.input.setAttribute("aria-invalid", "true");
  }

  private async saveEdit(row: Row, ed: EditForm): Promise<void> {
    const body = ed.input.value;
    const problem = this.hooks.check(body);
    if (problem !== null) {
      this.showEditError(ed, problem);
      return;
    }
    if (body === row.message.body) {
      this.closeEditor(row);
      return;
    }
    this.showEditError(ed, null);
    try {
      await this.hooks.edit(row.message.seq, body);
      if (row.editor === ed) this.closeEditor(row);
    } catch (err) {
      if (row.editor === ed) this.showEditError(ed, this.hooks.failure(err));
    }
  }

  private async delete(row: Row, del: HTMLButtonElement): Promise<void> {
    const strings = this.hooks.strings();
    if (!del.hasAttribute("data-confirm")) {
      setDeleteConfirm(del, true, strings);
      return;
    }
    setDeleteConfirm(del, false, strings);
    setRowError(row.li, null);
    try {
      await this.hooks.remove(row.message.seq);
    } catch (err) {
      setRowError(row.li, this.hooks.failure(err));
    }
  }
}
