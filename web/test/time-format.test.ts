// @vitest-environment node
import { describe, expect, it } from "vitest";
import { dayKey, formatDay, formatFull, formatStamp } from "../src/time-format.js";

const names = { today: "Today", yesterday: "Yesterday" };
const now = new Date(2024, 2, 10, 12, 0);

describe("time format", () => {
  it("keys instants by local day", () => {
    expect(dayKey(new Date(2024, 2, 10, 0, 0))).toBe(dayKey(new Date(2024, 2, 10, 23, 59)));
    expect(dayKey(new Date(2024, 2, 10))).not.toBe(dayKey(new Date(2024, 2, 11)));
    expect(dayKey(new Date(2024, 2, 10))).not.toBe(dayKey(new Date(2023, 2, 10)));
    expect(dayKey(new Date(2024, 0, 11))).not.toBe(dayKey(new Date(2024, 1, 1)));
    expect(dayKey(new Date(2024, 2, 10))).toBe("2024-3-10");
  });

  it("shows the time today, the date before, the year before this year", () => {
    expect(formatStamp(new Date(2024, 2, 10, 9, 5), now, "en-GB")).toBe("09:05");
    expect(formatStamp(new Date(2024, 2, 9, 9, 5), now, "en-GB")).toBe("9 Mar, 09:05");
    expect(formatStamp(new Date(2023, 2, 10, 9, 5), now, "en-GB")).toBe("10 Mar 2023, 09:05");
    expect(formatFull(new Date(2024, 2, 9, 9, 5, 7), "en-GB")).toMatch(/^Saturday,? 9 March 2024(,| at) 09:05:07$/);
  });

  it("names today and yesterday, and dates the other days", () => {
    expect(formatDay(new Date(2024, 2, 10, 1, 0), now, "en-GB", names)).toBe("Today");
    expect(formatDay(new Date(2024, 2, 9, 23, 0), now, "en-GB", names)).toBe("Yesterday");
    expect(formatDay(new Date(2024, 2, 8), now, "en-GB", names).replace(",", "")).toBe("Friday 8 March");
    expect(formatDay(new Date(2023, 2, 10), now, "en-GB", names).replace(",", "")).toBe("Friday 10 March 2023");
    // Yesterday across a month boundary.
    expect(formatDay(new Date(2024, 1, 29), new Date(2024, 2, 1, 8), "en-GB", names)).toBe("Yesterday");
  });
});
