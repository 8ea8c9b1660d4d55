// The operator console: find a seat, type its votes, check them, send. The server checks
// everything again (schema, nominations, role) and answers each refusal by field.
"use strict";

const election = document.body.dataset.election;
const isAdmin = document.body.dataset.role === "admin";
const $ = (id) => document.getElementById(id);
let seat = null; // the seat being entered: nominees, held result, alerts (GET /console/api/seat/..)

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (response.status === 401) { location.reload(); throw new Error("signed out"); }
  return response.json();
}

// --- finding a seat ---------------------------------------------------------------------------

let searchTimer = null;
$("seat-search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(findSeats, 150);
});

async function findSeats() {
  const text = $("seat-search").value;
  const list = $("seat-matches");
  const { seats } = await getJSON(`/console/api/seats?q=${encodeURIComponent(text)}`);
  list.replaceChildren(...seats.map((s) => {
    const item = element("li");
    const button = element("button", s.constituency);
    button.type = "button";
    button.dataset.onsId = s.ons_id;
    button.addEventListener("click", () => openSeat(s.ons_id));
    item.append(button);
    return item;
  }));
}

async function openSeat(onsId) {
  seat = await getJSON(`/console/api/seat/${encodeURIComponent(onsId)}`);
  $("seat-matches").replaceChildren();
  $("seat").hidden = false;
  $("seat-name").textContent = seat.constituency;
  $("seat-held").textContent = seat.held_by ? `held before the night by ${seat.held_by}` : "no baseline";
  renderState();
  renderNominees();
  renderAlerts();
  $("sent").replaceChildren();
  preview();
}

function renderState() {
  const held = seat.held;
  let text = "Not declared yet.";
  if (held && held.status === "declared") {
    text = `Declared: ${held.winner.name} (${held.winner.party}), majority ${held.majority}, revision ${held.revision}. ` +
      "A correction is the next revision, prefilled below.";
  } else if (held && held.status === "rush") {
    text = `Rushed: ${held.winner.party} won, figures to follow.`;
  } else if (held && held.status === "withdrawn") {
    text = `Withdrawn (revision ${held.revision}): ${held.withdrawn_reason}. A later revision declares it again.`;
  }
  $("seat-state").textContent = text;
  $("revision").value = held ? held.revision + 1 : 1;
  $("revision").min = held ? held.revision + 1 : 1;
  if (held && held.electorate) $("electorate").value = held.electorate;
}

function renderNominees() {
  const body = $("nominees").querySelector("tbody");
  const held = seat.held && seat.held.status === "declared" ? seat.held : null;
  const typed = new Map((held ? held.candidates : []).map((c) => [c.name.toLowerCase(), c.votes]));
  const rows = seat.nominees.length ? seat.nominees : [];
  body.replaceChildren(...rows.map((n, index) => {
    const row = element("tr");
    row.dataset.name = n.name;
    row.dataset.party = n.party;
    row.dataset.sittingMp = n.sitting_mp ? "1" : "";
    row.dataset.formerMp = n.former_mp ? "1" : "";
    const votes = element("input");
    votes.type = "number";
    votes.min = "0";
    votes.inputMode = "numeric";
    votes.className = "votes";
    votes.id = `votes-${index}`;
    votes.setAttribute("aria-label", `votes for ${n.name}`);
    if (typed.has(n.name.toLowerCase())) votes.value = typed.get(n.name.toLowerCase());
    votes.addEventListener("input", preview);
    const cell = element("td");
    cell.append(votes);
    row.append(element("td", n.name + (n.sitting_mp ? " (MP)" : "")), element("td", n.party), cell);
    return row;
  }));
  if (!rows.length) body.replaceChildren(element("tr", "No nominations for this seat: the server was started without them."));
  $("rush-winner").replaceChildren(...rows.map((n) => {
    const option = element("option", `${n.name} (${n.party})`);
    option.value = JSON.stringify({ name: n.name, party: n.party });
    return option;
  }));
}

function renderAlerts() {
  $("seat-alerts").replaceChildren(...seat.alerts.map((a) => {
    const item = element("li", `${a.kind}: ${a.headline}`);
    item.dataset.kind = a.kind;
    return item;
  }));
}

// --- the preview: what the typed votes say, and what is wrong with them -------------------------

function typedCandidates() {
  return [...$("nominees").querySelectorAll("tbody tr[data-name]")].map((row) => ({
    name: row.dataset.name,
    party: row.dataset.party,
    sitting_mp: row.dataset.sittingMp === "1",
    former_mp: row.dataset.formerMp === "1",
    text: row.querySelector("input.votes").value.trim(),
  }));
}

function numberOrNull(id) {
  const text = $(id).value.trim();
  return text === "" ? null : Number(text);
}

function check() {
  const candidates = typedCandidates();
  const problems = [];
  const blank = candidates.filter((c) => c.text === "");
  if (blank.length) problems.push(`no votes typed for ${blank.map((c) => c.name).join(", ")}`);
  const bad = candidates.filter((c) => c.text !== "" && !/^\d+$/.test(c.text));
  if (bad.length) problems.push(`not a whole number of votes: ${bad.map((c) => c.name).join(", ")}`);
  const counted = candidates.map((c) => ({ ...c, votes: Number(c.text || 0) }));
  const total = counted.reduce((sum, c) => sum + c.votes, 0);
  const ranked = [...counted].sort((a, b) => b.votes - a.votes || a.name.localeCompare(b.name));
  const electorate = numberOrNull("electorate");
  const announced = numberOrNull("announced-total");
  if (electorate !== null && total > electorate) problems.push(`${total} votes is more than the electorate of ${electorate}`);
  if (announced !== null && announced !== total) problems.push(`the candidates' votes add up to ${total}, not the ${announced} announced`);
  if (ranked.length > 1 && ranked[0].votes === ranked[1].votes && total > 0) problems.push(`a tie for first: ${ranked[0].name} and ${ranked[1].name}`);
  const revision = numberOrNull("revision");
  const heldRevision = seat.held ? seat.held.revision : 0;
  if (revision === null || revision <= heldRevision) problems.push(`the revision must be above ${heldRevision}`);
  if (!candidates.length) problems.push("no candidates to enter");
  return { counted, ranked, total, electorate, problems };
}

function preview() {
  if (!seat) return;
  const { ranked, total, electorate, problems } = check();
  const winner = ranked[0];
  const runnerUp = ranked[1];
  $("preview-winner").textContent = winner && total ? `${winner.name} (${winner.party})` +
    (seat.held_by && winner.party !== seat.held_by ? ` · ${winner.party} GAIN from ${seat.held_by}` : " · hold") : "–";
  $("preview-majority").textContent = winner && total ? (winner.votes - (runnerUp ? runnerUp.votes : 0)).toLocaleString() : "–";
  $("preview-turnout").textContent = electorate && total ? `${(100 * total / electorate).toFixed(1)}% (${total.toLocaleString()} valid votes)` : `${total.toLocaleString()} valid votes`;
  $("warnings").replaceChildren(...problems.map((p) => element("li", p)));
  $("send-result").disabled = problems.length > 0;
}

["electorate", "announced-total", "revision"].forEach((id) => $(id).addEventListener("input", preview));

// --- sending ------------------------------------------------------------------------------------

async function send(event, what) {
  const line = element("li", `${what}: sending…`);
  $("sent").prepend(line);
  let response;
  try {
    response = await fetch("/console/api/send", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(event),
    });
  } catch (error) {
    line.textContent = `${what}: not sent (${error}); it is safe to send again`;
    line.className = "bad";
    return;
  }
  const answer = await response.json().catch(() => ({ errors: [] }));
  if (response.status === 202) {
    line.textContent = `${what}: sent and acknowledged by the broker`;
    line.className = "ok";
    followSeat();
  } else if (response.status === 503) {
    line.textContent = `${what}: the broker did not acknowledge it; it is safe to send again`;
    line.className = "bad";
  } else {
    const reasons = (answer.errors || []).map((e) => `${e.field}: ${e.message}`).join("; ");
    line.textContent = `${what}: refused (${response.status}) ${reasons}`;
    line.className = "bad";
  }
}

async function followSeat() {
  // What the worker raised: the seat's alerts and state as they reach Redis.
  const onsId = seat.ons_id;
  for (let i = 0; i < 20; i++) {
    await new Promise((resolve) => setTimeout(resolve, 750));
    if (!seat || seat.ons_id !== onsId) return;
    const fresh = await getJSON(`/console/api/seat/${encodeURIComponent(onsId)}`);
    const changed = JSON.stringify(fresh.held) !== JSON.stringify(seat.held) || fresh.alerts.length !== seat.alerts.length;
    seat = fresh;
    renderAlerts();
    if (changed) { renderState(); preview(); }
  }
}

const now = () => new Date().toISOString();

$("result-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const { counted, problems } = check();
  if (problems.length) return;
  const event = {
    kind: "declaration",
    election,
    ons_id: seat.ons_id,
    revision: Number($("revision").value),
    constituency: seat.constituency,
    declared_at: now(),
    candidates: counted.map(({ name, party, votes, sitting_mp, former_mp }) => ({ name, party, votes, sitting_mp, former_mp })),
  };
  const electorate = numberOrNull("electorate");
  if (electorate !== null) event.electorate = electorate;
  const revision = event.revision > 1 ? ` (revision ${event.revision})` : "";
  send(event, `result${revision}`);
});

$("rush-form").addEventListener("submit", (e) => {
  e.preventDefault();
  if (!$("rush-winner").value) return;
  const winner = JSON.parse($("rush-winner").value);
  send({ kind: "rush", election, ons_id: seat.ons_id, party: winner.party, candidate: winner.name, announced_at: now() },
    `rush for ${winner.party}`);
});

$("recount-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const reason = $("recount-reason").value.trim();
  const event = { kind: "recount", election, ons_id: seat.ons_id, constituency: seat.constituency, announced_at: now() };
  if (reason) event.reason = reason;
  send(event, "recount");
});

if (isAdmin) {
  $("withdraw-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const revision = (seat.held ? seat.held.revision : 1) + 1;
    send({ kind: "withdrawal", election, ons_id: seat.ons_id, revision, reason: $("withdraw-reason").value.trim(), withdrawn_at: now() },
      `withdrawal (revision ${revision})`);
  });
}
