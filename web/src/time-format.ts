// time-format: how <parley-chat> writes when a message was sent. Today's
// messages show the time only; older ones the day and month too (and the
// year when it is not this year); the full date and time is the hover text;
// day separators name the day. Everything is in the reader's local time.

export interface DayNames {
  today: string;
  yesterday: string;
}

/** A key that is equal for two instants on the same local day. */
export function dayKey(at: Date): string {
  return `${at.getFullYear()}-${at.getMonth() + 1}-${at.getDate()}`;
}

function sameDay(a: Date, b: Date): boolean {
  return dayKey(a) === dayKey(b);
}

/** The short stamp beside a message. */
export function formatStamp(at: Date, now: Date, locale: string | undefined): string {
  const time: Intl.DateTimeFormatOptions = { hour: "2-digit", minute: "2-digit" };
  if (sameDay(at, now)) return at.toLocaleTimeString(locale, time);
  const date: Intl.DateTimeFormatOptions = { day: "numeric", month: "short", ...time };
  if (at.getFullYear() !== now.getFullYear()) date.year = "numeric";
  return at.toLocaleString(locale, date);
}

/** The full date and time, for the hover text. */
export function formatFull(at: Date, locale: string | undefined): string {
  return at.toLocaleString(locale, { dateStyle: "full", timeStyle: "medium" });
}

/** The text of a day separator. */
export function formatDay(at: Date, now: Date, locale: string | undefined, names: DayNames): string {
  if (sameDay(at, now)) return names.today;
  const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
  if (sameDay(at, yesterday)) return names.yesterday;
  const opts: Intl.DateTimeFormatOptions = { weekday: "long", day: "numeric", month: "long" };
  if (at.getFullYear() !== now.getFullYear()) opts.year = "numeric";
  return at.toLocaleDateString(locale, opts);
}
