// clock: the time source every timer in the package goes through, so tests
// can drive heartbeats, backoff and timeouts with fake time.

/** Opaque handle returned by {@link Clock.setTimeout}. */
export type TimerHandle = unknown;

/** Time source and timers. The default uses the global timer functions. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/**
 * The real clock. It looks the global functions up on every call (instead of
 * binding them once) so test frameworks that replace them still apply.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof setTimeout>),
};
