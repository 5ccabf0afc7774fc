// Windows and labels in a chosen IANA time zone, with nothing but Intl.
// The report API buckets by the wall clock of `tz`; these functions compute the same
// bucket edges in the browser so that the window asked for is aligned to them.

const HOUR_MS = 3600 * 1000;
const DAY_MS = 24 * HOUR_MS;
const HOURLY_UP_TO_DAYS = 2; // the issue: hours for ranges up to 2 days, days beyond

const wallFormatters = new Map();

function wallFormatter(tz) {
  if (!wallFormatters.has(tz)) {
    wallFormatters.set(tz, new Intl.DateTimeFormat("en-US", {
      timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }));
  }
  return wallFormatters.get(tz);
}

// The wall-clock date and time in `tz` at the instant `ms`.
export function wallClock(ms, tz) {
  const parts = {};
  for (const { type, value } of wallFormatter(tz).formatToParts(new Date(ms))) parts[type] = Number(value);
  return parts;
}

// How far the wall clock of `tz` is ahead of UTC at the instant `ms`.
function offsetMs(ms, tz) {
  const w = wallClock(ms, tz);
  const wall = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return wall - Math.floor(ms / 1000) * 1000;
}

// The instant at which the civil day (year, month, day) starts in `tz`. Two passes,
// because the offset at the first guess may differ from the one at midnight (DST).
function startOfDay(year, month, day, tz) {
  const wall = Date.UTC(year, month - 1, day);
  const guess = wall - offsetMs(wall, tz);
  return wall - offsetMs(guess, tz);
}

// The civil date `days` after (year, month, day), as [year, month, day].
function addDays([year, month, day], days) {
  const moved = new Date(Date.UTC(year, month - 1, day + days));
  return [moved.getUTCFullYear(), moved.getUTCMonth() + 1, moved.getUTCDate()];
}

const civil = ([year, month, day]) => [year, month - 1, day]; // for Date.UTC

export function today(now, tz) {
  const w = wallClock(now, tz);
  return [w.year, w.month, w.day];
}

export function isoDate([year, month, day]) {
  return `${year}-${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
}

function parseIsoDate(text) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text || "");
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : null;
}

// {from, to, granularity} (instants in ms) for a range choice at `now` in `tz`. Every
// window ends with the bucket that contains `now`, which is shown as still counting.
// Throws an Error with a message for the page when a custom range is not usable.
export function windowFor(range, tz, now, custom = {}) {
  if (range === "24h") {
    const hour = Math.floor(now / HOUR_MS) * HOUR_MS; // the API refuses zones with a part-hour offset
    return { from: hour - 23 * HOUR_MS, to: hour + HOUR_MS, granularity: "hour" };
  }
  if (range === "7d" || range === "30d") {
    const days = range === "7d" ? 7 : 30;
    const day = today(now, tz);
    return { from: startOfDay(...addDays(day, 1 - days), tz), to: startOfDay(...addDays(day, 1), tz), granularity: "day" };
  }
  const first = parseIsoDate(custom.from);
  const last = parseIsoDate(custom.to);
  if (!first || !last) throw new Error("Choose both a From and a To date.");
  const days = (Date.UTC(...civil(last)) - Date.UTC(...civil(first))) / DAY_MS + 1;
  if (days < 1) throw new Error("From must be on or before To.");
  const from = startOfDay(...first, tz);
  const to = startOfDay(...addDays(last, 1), tz);
  // Counted in calendar days, not hours: two days that include a 25-hour day are still two.
  return { from, to, granularity: days <= HOURLY_UP_TO_DAYS ? "hour" : "day" };
}

export function isoInstant(ms) {
  return new Date(ms).toISOString().replace(".000Z", "Z");
}

// "Tue 2 Dec, 14:00" for hours, "Tue 2 Dec" for days, on the wall clock of `tz`.
export function bucketLabel(ms, tz, granularity) {
  const options = { timeZone: tz, weekday: "short", day: "numeric", month: "short" };
  if (granularity === "hour") Object.assign(options, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  return new Intl.DateTimeFormat(undefined, options).format(new Date(ms));
}

export function clockLabel(ms, tz) {
  return new Intl.DateTimeFormat(undefined, { timeZone: tz, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" })
    .format(new Date(ms));
}

// Every zone the browser knows, with the browser's own and UTC always present.
export function zones() {
  const own = browserZone();
  const known = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  return [...new Set([own, "UTC", ...known])].sort();
}

export function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}
