// The dashboard: controls -> one window -> /report, /pages and /sites -> totals, chart, tables.
// Refreshes itself every minute (or ?refresh=SECONDS) without reloading the page.
import { ApiFailure, Unauthorized, getJson, token } from "./api.js";
import { Chart, cell, formatCount } from "./chart.js";
import { browserZone, bucketLabel, clockLabel, isoDate, isoInstant, today, windowFor, zones } from "./time.js";

const $ = (id) => document.getElementById(id);
const SITES_WINDOW_MS = 30 * 24 * 3600 * 1000;

const state = { site: "*", range: "24h", tz: browserZone(), page: null, custom: {}, generation: 0, loads: 0, busy: false, lastGood: 0 };
const chart = new Chart($("chart"), $("readout"), document.querySelector("#points tbody"));

function refreshSeconds() {
  const asked = Number(new URLSearchParams(window.location.search).get("refresh"));
  return Number.isFinite(asked) && asked >= 1 ? Math.min(asked, 3600) : 60;
}

function setUpControls() {
  const tz = $("tz");
  tz.replaceChildren(...zones().map((zone) => new Option(zone, zone, false, zone === state.tz)));
  $("site").addEventListener("change", (e) => updateSoon({ site: e.target.value, page: null }));
  $("range").addEventListener("change", (e) => {
    $("custom").hidden = e.target.value !== "custom";
    if (e.target.value === "custom") {
      const day = today(Date.now(), state.tz);
      if (!$("to").value) $("to").value = isoDate(day);
      if (!$("from").value) $("from").value = isoDate(day).slice(0, 8) + "01";
      $("from").focus();
      return; // applied with the Show button
    }
    update({ range: e.target.value });
  });
  $("controls").addEventListener("submit", (e) => {
    e.preventDefault();
    if ($("range").value === "custom") update({ range: "custom", custom: { from: $("from").value, to: $("to").value } });
  });
  tz.addEventListener("change", (e) => updateSoon({ tz: e.target.value }));
  $("back").addEventListener("click", () => update({ page: null }));
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    token.set($("token").value.trim());
    $("token").value = "";
    $("token-form").hidden = true;
    load();
  });
}

function update(changes) {
  Object.assign(state, changes);
  load();
}

// Arrow keys on a closed <select> change it once per press: ask once they stop.
let soon = null;
function updateSoon(changes) {
  Object.assign(state, changes);
  clearTimeout(soon);
  soon = setTimeout(load, 250);
}

// One load of everything the page shows. A newer load (a click while this one runs)
// wins: answers of an older generation are dropped.
async function load() {
  const generation = ++state.generation;
  try {
    await loadEverything(generation);
  } finally {
    // How many loads have finished: tests (and curious people) wait on it instead of sleeping.
    if (generation === state.generation) document.body.dataset.loads = String(++state.loads);
  }
}

async function loadEverything(generation) {
  const now = Date.now();
  let window_;
  try {
    window_ = windowFor(state.range, state.tz, now, state.custom);
  } catch (problem) {
    showErrors([problem], "Check the range: nothing was asked for.");
    return;
  }
  const span = { from: isoInstant(window_.from), to: isoInstant(window_.to) };
  const subject = state.page === null ? { site: state.site } : { page: state.page };
  const results = await Promise.allSettled([
    getJson("/report", { ...subject, tz: state.tz, granularity: window_.granularity, ...span }),
    getJson("/pages", { site: state.site === "*" ? undefined : state.site, ...span }),
    getJson("/sites", { from: isoInstant(window_.to - SITES_WINDOW_MS), to: span.to, limit: 1000 }),
  ]);
  if (generation !== state.generation) return;
  const failures = results.filter((r) => r.status === "rejected").map((r) => r.reason);
  if (failures.some((f) => f instanceof Unauthorized)) {
    askForToken();
    return;
  }
  const [report, pages, sites] = results.map((r) => (r.status === "fulfilled" ? r.value : null));
  if (report) showReport(report, window_, now);
  if (pages) showPages(pages.data);
  if (sites) showSites(sites.data);
  showErrors(failures);
  if (!failures.length) state.lastGood = now;
  showFreshness(now, failures.length > 0);
}

function showReport(report, window_, now) {
  const items = report.data;
  const buckets = items.map((item, i) => {
    const start = Date.parse(item.t);
    const end = i + 1 < items.length ? Date.parse(items[i + 1].t) : window_.to;
    return { t: item.t, start, views: item.v, visitors: item.u ?? null, incomplete: start <= now && now < end };
  });
  const title = state.page ?? (state.site === "*" ? "All sites" : state.site);
  $("chart-heading").textContent = title;
  $("back").hidden = state.page === null;
  const last = window_.granularity === "hour" ? window_.to - 3600 * 1000 : window_.to - 1;
  $("chart-range").textContent = `Per ${window_.granularity}, ${bucketLabel(window_.from, state.tz, window_.granularity)} to `
    + `${bucketLabel(last, state.tz, window_.granularity)} (${state.tz})`;
  const totals = report.totals || {};
  $("total-views").textContent = formatCount(totals.views);
  $("total-visitors").textContent = formatCount(totals.visitors);
  chart.show(buckets, window_.to, state.tz, window_.granularity, title);
}

function showPages(rows) {
  const body = document.querySelector("#top-pages tbody");
  body.replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    const name = document.createElement("th");
    name.scope = "row";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link page";
    button.append(...breakableAtSlashes(row.page));
    button.title = `Show the chart of ${row.page}`;
    button.setAttribute("aria-pressed", String(row.page === state.page));
    button.addEventListener("click", () => update({ page: row.page }));
    name.append(button);
    tr.append(name, cell(row.v), cell(row.u ?? null));
    return tr;
  }));
  $("no-pages").hidden = rows.length > 0;
}

// A long page name wraps after a '/' rather than anywhere: text with <wbr> after each one.
function breakableAtSlashes(text) {
  return text.split(/(?<=\/)/).flatMap((part, i) => (i ? [document.createElement("wbr"), part] : [part]));
}

function showSites(rows) {
  const select = $("site");
  const names = rows.map((row) => row.site).filter((site) => site !== "");
  if (state.site !== "*" && !names.includes(state.site)) names.push(state.site); // keep the chosen one
  names.sort();
  const wanted = ["*", ...names];
  const have = [...select.options].map((o) => o.value);
  if (wanted.join("\n") === have.join("\n")) return; // no change: leave the open list alone
  select.replaceChildren(new Option("All sites", "*"), ...names.map((site) => new Option(site, site)));
  select.value = state.site;
}

function showErrors(errors, title = "Some numbers could not be shown; those on the page may be older.") {
  const box = $("error");
  if (!errors.length) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const lines = errors.map((error) => {
    const item = document.createElement("li");
    item.textContent = error.message;
    const problems = error instanceof ApiFailure ? error.problems : [];
    if (problems.length) {
      const list = document.createElement("ul");
      list.append(...problems.map((p) => Object.assign(document.createElement("li"), { textContent: `${p.at}: ${p.problem}` })));
      item.append(list);
    }
    return item;
  });
  const list = document.createElement("ul");
  list.append(...lines);
  box.replaceChildren(Object.assign(document.createElement("strong"), { textContent: title }), list);
  box.hidden = false;
}

function showFreshness(now, failed) {
  const every = refreshSeconds() === 60 ? "every minute" : `every ${refreshSeconds()} s`;
  const when = state.lastGood ? `Updated ${clockLabel(state.lastGood, state.tz)}` : "Not loaded yet";
  $("freshness").textContent = `${when}${failed ? " (the last refresh failed)" : ""}; refreshes ${every}. The shaded period is still counting.`;
  $("freshness").dataset.updated = String(now);
}

function askForToken() {
  const form = $("token-form");
  const hadToken = Boolean(token.get());
  token.clear();
  $("token-why").textContent = hadToken
    ? "That token was not accepted. Enter another report token."
    : "Its numbers are shown only with a report token. It is kept in this tab until you close it.";
  showErrors([]);
  $("freshness").textContent = "Waiting for a report token.";
  if (form.hidden) {
    form.hidden = false;
    $("token").focus();
  }
}

// The minute timer: no overlap with a slow load, and nothing while a token is asked for.
async function tick() {
  if (state.busy || !$("token-form").hidden) return;
  state.busy = true;
  try {
    await load();
  } finally {
    state.busy = false;
  }
}

setUpControls();
load();
setInterval(tick, refreshSeconds() * 1000);
document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && tick());
