// outbox: messages this client sent that the server has not acknowledged yet,
// keyed by their clientMsgId. An entry stays (and is shown as pending) until
// its ack arrives or the message turns up stored (in history or the stream).
// After a reconnect every entry is sent again with the SAME clientMsgId: the
// server stores a client_msg_id once per author and room, so a publish whose
// ack was lost on a dead link is not stored twice.
import type { Message } from "./gen/parley/v1/message_pb.js";

export interface Pending {
  readonly clientMsgId: string;
  readonly room: string;
  readonly body: string;
  /** Milliseconds since the epoch when the user sent it. */
  readonly createdAtMs: number;
  /** How many times it was written to a socket. */
  attempts: number;
  /** requestId of the latest attempt, 0n when not sent yet. */
  requestId: bigint;
}

/**
 * A random id unique enough to be an idempotency key: 128 random bits as 32
 * hex digits. crypto.getRandomValues exists in every browser (secure
 * context or not, unlike randomUUID) and in Node.
 */
export function newClientMsgId(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Outbox {
  private readonly entries = new Map<string, Pending>();
  /** The entry each request id of the current connection was sent for. */
  private readonly byRequest = new Map<bigint, Pending>();

  get size(): number {
    return this.entries.size;
  }

  /** Queues a new message. */
  add(room: string, body: string, clientMsgId = newClientMsgId(), nowMs = Date.now()): Pending {
    if (this.entries.has(clientMsgId)) throw new Error(`outbox: duplicate clientMsgId ${clientMsgId}`);
    const p: Pending = { clientMsgId, room, body, createdAtMs: nowMs, attempts: 0, requestId: 0n };
    this.entries.set(clientMsgId, p);
    return p;
  }

  get(clientMsgId: string): Pending | undefined {
    return this.entries.get(clientMsgId);
  }

  /** Pending entries in the order they were added, optionally of one room. */
  pending(room?: string): Pending[] {
    const all = [...this.entries.values()];
    return room === undefined ? all : all.filter((p) => p.room === room);
  }

  /** Records that `p` was written to a socket as request `requestId` (its earlier id is forgotten). */
  sent(clientMsgId: string, requestId: bigint): void {
    const p = this.entries.get(clientMsgId);
    if (!p) return;
    this.byRequest.delete(p.requestId);
    p.attempts += 1;
    p.requestId = requestId;
    this.byRequest.set(requestId, p);
  }

  /** The pending entry a request id belongs to. */
  byRequestId(requestId: bigint): Pending | undefined {
    return this.byRequest.get(requestId);
  }

  /** Removes and returns the entry (ack received, or refused for good). */
  settle(clientMsgId: string): Pending | undefined {
    const p = this.entries.get(clientMsgId);
    if (!p) return undefined;
    this.entries.delete(clientMsgId);
    this.byRequest.delete(p.requestId);
    return p;
  }

  /**
   * A stored message arrived (history, stream): if it is one of ours, it was
   * stored even if its ack got lost, so it is no longer pending. Before the
   * user is known (myUserId null), the clientMsgId and room decide alone.
   */
  settleStored(message: Message, myUserId: string | null): Pending | undefined {
    const p = this.entries.get(message.clientMsgId);
    if (!p || p.room !== message.room) return undefined;
    const author = message.author?.id;
    if (myUserId !== null && author !== undefined && author !== myUserId) return undefined;
    return this.settle(message.clientMsgId);
  }

  /** Forgets request ids (the socket they were sent on is gone). */
  connectionLost(): void {
    this.byRequest.clear();
  }
}
