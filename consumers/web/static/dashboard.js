// Live updates for the Tallyroom dashboard. The server renders the first state; from then on
// alerts (SSE "message" events, id = Redis stream id) are prepended to the feed and each
// "tally" event redraws the bars. Rows are cloned from the <template>s the server renders,
// so the markup lives in one place (templates/_macros.html).
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const $ = (id) => document.getElementById(id);

  // Party colours and names and each alert kind's label and colour come from the server
  // (schemas/parties.py and the kind registry in schemas/alerts.py), never from here.
  function colour(party) {
    const known = config.parties[party];
    return known ? known.colour : config.unknownColour;
  }

  function partyName(party) {
    const known = config.parties[party];
    return known ? known.name : party;
  }

  function accent(alert) {
    const kind = config.kinds[alert.kind] || {};
    const party = kind.partyFact && (alert.facts || {})[kind.partyFact];
    return typeof party === "string" ? colour(party) : kind.colour || config.unknownColour;
  }

  function signed(n) {
    return n > 0 ? "+" + n : String(n);
  }

  function fill(node, field, text) {
    const el = node.querySelector('[data-field="' + field + '"]');
    if (el) el.textContent = text;
    return el;
  }

  function cloneTemplate(id) {
    return $(id).content.firstElementChild.cloneNode(true);
  }

  // "2024-07-05T04:12:00+01:00" -> "Fri 5 Jul 04:12", in the night's own offset (not the reader's).
  function nightClock(iso) {
    if (!iso) return "—";
    const [y, m, d] = iso.slice(0, 10).split("-").map(Number);
    const day = new Date(Date.UTC(y, m - 1, d));
    const weekday = day.toLocaleDateString("en-GB", { weekday: "short", timeZone: "UTC" });
    const month = day.toLocaleDateString("en-GB", { month: "short", timeZone: "UTC" });
    return weekday + " " + d + " " + month + " " + iso.slice(11, 16);
  }

  // "2024-07-05T04:12:00+01:00" -> "Fri 04:12", as FeedItem.clock on the server.
  function alertClock(iso) {
    if (!iso) return "";
    return nightClock(iso).split(" ")[0] + " " + iso.slice(11, 16);
  }

  // --- the tally --------------------------------------------------------------------------

  function partyRows(state) {
    const parties = (state.tally && state.tally.parties) || {};
    const total = state.total || (state.tally && state.tally.total) || 0;
    const names = new Set(Object.keys(parties).concat(Object.keys(state.seats || {})));
    const rows = [];
    names.forEach((party) => {
      const p = parties[party] || {};
      const seats = (state.seats || {})[party] || 0;
      const gains = p.gains || 0, losses = p.losses || 0;
      if (!seats && !gains && !losses) return;
      rows.push({ party, seats, gains, losses, net: gains - losses, share: p.share || 0,
                  votes: (state.votes || {})[party] || 0, width: total ? (100 * seats) / total : 0 });
    });
    return rows.sort((a, b) => b.seats - a.seats || b.votes - a.votes || a.party.localeCompare(b.party));
  }

  function netClass(node, net) {
    node.classList.toggle("up", net > 0);
    node.classList.toggle("down", net < 0);
  }

  function barRow(row) {
    const node = cloneTemplate("bar-template");
    node.dataset.party = row.party;
    node.dataset.seats = row.seats;
    fill(node, "party", row.party).title = partyName(row.party);
    const bar = node.querySelector('[data-field="fill"]');
    bar.style.width = row.width.toFixed(3) + "%";
    bar.style.background = colour(row.party);
    fill(node, "seats", row.seats);
    netClass(fill(node, "net", row.net ? signed(row.net) : "0"), row.net);
    fill(node, "share", (row.share * 100).toFixed(1) + "%");
    return node;
  }

  function changeRow(row) {
    const node = cloneTemplate("change-template");
    node.dataset.party = row.party;
    node.dataset.gains = row.gains;
    node.dataset.losses = row.losses;
    node.querySelector('[data-field="swatch"]').style.background = colour(row.party);
    fill(node, "party", row.party).title = partyName(row.party);
    fill(node, "gains", row.gains);
    fill(node, "losses", row.losses);
    netClass(fill(node, "net", row.net ? signed(row.net) : "0"), row.net);
    return node;
  }

  // As streams/change.py's swing_phrase: the size, in the direction the swing ran.
  function swingText(swing) {
    const [from, to] = swing.swing < 0 ? [swing.to_party, swing.from_party] : [swing.from_party, swing.to_party];
    return (Math.abs(swing.swing) * 100).toFixed(1) + "% from " + from + " to " + to;
  }

  function showTally(state) {
    const declared = $("declared");
    declared.dataset.declared = state.declared;
    declared.dataset.total = state.total;
    declared.textContent = state.declared + "/" + state.total;
    $("progress-fill").style.width = (state.total ? (100 * state.declared) / state.total : 0) + "%";
    $("refused-count").textContent = state.refused || 0;
    $("refused").classList.toggle("hidden", !state.refused);
    document.title = config.election + ": " + state.declared + " of " + state.total + " declared · Tallyroom";
    const tally = state.tally;
    $("clock").textContent = nightClock(tally && tally.as_of);
    $("swing").textContent = tally && tally.swing ? "swing " + swingText(tally.swing) : "";
    if (tally && tally.total) {
      $("bars").style.setProperty("--majority", ((100 * tally.majority_line) / tally.total).toFixed(3) + "%");
      $("majority-line").textContent = tally.majority_line;
      $("majority-label").classList.remove("hidden");
    }
    const rows = partyRows(state);
    $("bar-rows").replaceChildren(...rows.filter((r) => r.seats > 0).map(barRow));
    const moved = rows.filter((r) => r.gains || r.losses)
      .sort((a, b) => b.net - a.net || b.gains - a.gains || a.party.localeCompare(b.party));
    $("change-rows").replaceChildren(...moved.map(changeRow));
  }

  // --- the feed ---------------------------------------------------------------------------

  function alertItem(streamId, alert) {
    const node = cloneTemplate("alert-template");
    node.className = "alert kind-" + alert.kind;
    node.dataset.kind = alert.kind;
    node.dataset.streamId = streamId;
    node.style.borderLeftColor = accent(alert);
    fill(node, "clock", alertClock(alert.occurred_at));
    fill(node, "label", (config.kinds[alert.kind] || {}).label || alert.kind);
    const link = fill(node, "headline", alert.headline);
    if (alert.ons_id) link.href = "/e/" + encodeURIComponent(config.election) + "/seat/" + encodeURIComponent(alert.ons_id);
    return node;
  }

  function addAlert(streamId, alert) {
    const feed = $("feed");
    if (feed.querySelector('[data-stream-id="' + CSS.escape(streamId) + '"]')) return;  // already shown
    const item = alertItem(streamId, alert);
    item.classList.add("fresh");
    item.classList.toggle("filtered-out", !shown(item));
    feed.prepend(item);
    while (feed.children.length > config.feedMax) feed.lastElementChild.remove();
    $("no-alerts").classList.add("hidden");
  }

  // The kind filter hides the other kinds' alerts, whichever kinds the registry has.
  function shown(item) {
    const filter = $("feed").dataset.filter;
    return !filter || item.dataset.kind === filter;
  }

  $("kind-filter").addEventListener("change", (event) => {
    $("feed").dataset.filter = event.target.value;
    for (const item of $("feed").children) item.classList.toggle("filtered-out", !shown(item));
  });

  // --- the connection ---------------------------------------------------------------------

  function setLive(state, text) {
    const el = $("live");
    el.dataset.state = state;
    el.textContent = text;
  }

  // The page already shows the alerts up to config.after; a reconnect sends Last-Event-ID instead.
  const source = new EventSource(config.events + "?after=" + encodeURIComponent(config.after));
  source.onopen = () => setLive("live", "live");
  source.onerror = () => setLive("offline", source.readyState === EventSource.CLOSED ? "offline" : "reconnecting…");
  source.onmessage = (event) => addAlert(event.lastEventId, JSON.parse(event.data));
  source.addEventListener("tally", (event) => showTally(JSON.parse(event.data)));
})();
