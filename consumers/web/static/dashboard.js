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

  // As view.points: a share change as signed percentage points ("+4.5", "−4.5"); "" when unknown.
  function points(change) {
    if (change === null || change === undefined) return "";
    const text = (change * 100).toFixed(1);
    return (change >= 0 ? "+" + text : text).replace("-", "−");
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
                  shareChange: p.share_change === undefined ? null : p.share_change,
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
    fill(node, "party", partyName(row.party));
    const bar = node.querySelector('[data-field="fill"]');
    bar.style.width = row.width.toFixed(3) + "%";
    bar.style.background = colour(row.party);
    fill(node, "seats", row.seats);
    netClass(fill(node, "net", row.net ? signed(row.net) : "0"), row.net);
    fill(node, "share", (row.share * 100).toFixed(1) + "%");
    netClass(fill(node, "chg", points(row.shareChange)), row.shareChange || 0);
    return node;
  }

  function changeRow(row) {
    const node = cloneTemplate("change-template");
    node.dataset.party = row.party;
    node.dataset.gains = row.gains;
    node.dataset.losses = row.losses;
    node.querySelector('[data-field="swatch"]').style.background = colour(row.party);
    fill(node, "party", partyName(row.party));
    fill(node, "gains", row.gains);
    fill(node, "losses", row.losses);
    netClass(fill(node, "net", row.net ? signed(row.net) : "0"), row.net);
    return node;
  }

  // As view.swing_in_full: the size, in the direction the swing ran, between full party names.
  function swingText(swing) {
    const [from, to] = swing.swing < 0 ? [swing.to_party, swing.from_party] : [swing.from_party, swing.to_party];
    return (Math.abs(swing.swing) * 100).toFixed(1) + "% from " + partyName(from) + " to " + partyName(to);
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
    night.tally(state);
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

  const shownIds = new Set([...$("feed").children].map((li) => li.dataset.streamId));
  // Alerts are put on the page in batches (one change to the page per FEED_MS, not one per alert:
  // a busy night raises dozens a second, and each insertion made the whole page lay out again).
  const FEED_MS = 250;
  let arriving = [];
  function addAlert(streamId, alert) {
    if (shownIds.has(streamId)) return;  // already shown
    shownIds.add(streamId);
    if (!arriving.length) setTimeout(() => requestAnimationFrame(showArrivals), FEED_MS);
    arriving.push([streamId, alert]);
  }

  function showArrivals() {
    const feed = $("feed");
    const batch = document.createDocumentFragment();
    arriving.reverse().forEach(([streamId, alert]) => {  // newest first
      const item = alertItem(streamId, alert);
      item.classList.add("fresh");
      item.classList.toggle("filtered-out", !shown(item));
      batch.append(item);
    });
    arriving = [];
    feed.prepend(batch);
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

  // --- the night: map, seat list, seats to come, banner ------------------------------------

  const night = (function () {
    const seats = new Map();  // ons_id -> {ons_id, name, expected_at, result: SeatSummary JSON | null}
    config.seats.forEach((row) => seats.set(row.ons_id, row));
    let version = config.seatsVersion;
    const hexes = new Map();
    function findHexes() {
      hexes.clear();
      document.querySelectorAll("#hexmap [data-seat]").forEach((a) => hexes.set(a.dataset.seat, a));
    }
    findHexes();
    const rows = new Map();  // ons_id -> <li>, made once per seat
    const dirty = new Set(seats.keys());
    let drawPending = false;
    let fetching = false;

    const seatHref = (ons) => "/e/" + encodeURIComponent(config.election) + "/seat/" + encodeURIComponent(ons);
    const won = (row) => row.result && row.result.status !== "withdrawn" && row.result.party ? row.result : null;

    // As view.seat_verdict_short: keep the wording of the two in step.
    function seatText(result) {
      if (!result) return "not declared yet";
      if (result.status === "withdrawn" || !result.party) return "result withdrawn";
      const party = partyName(result.party);
      const verdict = result.held_by === null || result.held_by === undefined ? party + " win"
        : result.gain ? party + " gain from " + partyName(result.held_by) : party + " hold";
      if (result.status === "rush") return verdict + ", figures to follow";
      return result.majority === null || result.majority === undefined ? verdict
        : verdict + ", majority " + result.majority.toLocaleString("en-GB");
    }

    // A seat's summary replaces the one held only when it is newer: deltas and a full fetch may cross.
    function merge(ons, result) {
      const row = seats.get(ons) || { ons_id: ons, name: result.constituency, expected_at: null, result: null };
      if (row.result && row.result.weight >= result.weight) return;
      row.result = result;
      seats.set(ons, row);
      dirty.add(ons);
    }

    function paintHex(row) {
      const hex = hexes.get(row.ons_id);
      if (!hex) return;
      const result = won(row);
      hex.firstElementChild.setAttribute("fill", result ? colour(result.party) : config.undeclaredColour);
      hex.classList.toggle("gain", Boolean(result && result.gain));
      hex.lastElementChild.textContent = row.name + ": " + seatText(row.result);
    }

    function figures(result) {
      if (!result || result.status !== "declared") return "";
      const parts = [];
      if (result.swing) parts.push("swing " + swingText(result.swing));
      parts.push(nightClock(result.declared_at));
      return parts.join(" · ");
    }

    function paintRow(row) {
      let li = rows.get(row.ons_id);
      if (!li) {
        li = cloneTemplate("seat-template");
        li.dataset.seat = row.ons_id;
        li.querySelector('[data-field="link"]').href = seatHref(row.ons_id);
        fill(li, "name", row.name);
        rows.set(row.ons_id, li);
      }
      const result = won(row);
      li.dataset.status = result ? "declared" : "to-declare";
      li.classList.toggle("gain", Boolean(result && result.gain));
      li.classList.toggle("marginal", Boolean(result && result.marginal));
      li.querySelector('[data-field="swatch"]').style.background = result ? colour(result.party) : config.undeclaredColour;
      fill(li, "verdict", seatText(row.result));
      fill(li, "figures", figures(row.result));
    }

    // "Ynys Môn" and "ynys mon", "Brighton & Hove" and "brighton and hove": as hexmap.match_key.
    const matchKey = (text) => text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/&/g, " and ").replace(/[^a-z0-9]+/g, " ").trim();
    const searchKeys = new Map();

    function keep(row, filter, query) {
      const result = won(row);
      if (filter === "declared" && !result) return false;
      if (filter === "to-declare" && result) return false;
      if (filter === "gain" && !(result && result.gain)) return false;
      if (filter === "marginal" && !(result && result.marginal)) return false;
      if (!query) return true;
      if (!searchKeys.has(row.ons_id)) searchKeys.set(row.ons_id, matchKey(row.name));
      return searchKeys.get(row.ons_id).includes(query);
    }

    // One collator: localeCompare with a locale builds one per call, which made each redraw of
    // 650 rows take a noticeable part of a second.
    const collator = new Intl.Collator("en-GB");
    const byName = (a, b) => collator.compare(a.name, b.name);
    // Seats without the figure a sort needs go last, by name.
    function keyed(value) {
      return (a, b) => {
        const x = value(a), y = value(b);
        if (x === null && y === null) return byName(a, b);
        if (x === null) return 1;
        if (y === null) return -1;
        return x - y || byName(a, b);
      };
    }
    const SORTS = {
      name: byName,
      declared: keyed((r) => (won(r) ? -Date.parse(r.result.declared_at) : null)),
      majority: keyed((r) => (won(r) && r.result.majority !== null ? r.result.majority : null)),
      "majority-desc": keyed((r) => (won(r) && r.result.majority !== null ? -r.result.majority : null)),
      swing: keyed((r) => (won(r) && r.result.swing ? -Math.abs(r.result.swing.swing) : null)),
    };

    let listed = [];  // the ONS ids the list shows, in order: the DOM is touched only when they change
    function showList() {
      const filter = $("seat-filter").value;
      const query = matchKey($("seat-search").value);
      const shown = [...seats.values()].filter((row) => keep(row, filter, query)).sort(SORTS[$("seat-sort").value] || byName)
        .map((row) => row.ons_id);
      if (shown.length !== listed.length || shown.some((ons, i) => ons !== listed[i])) {
        $("seat-list").replaceChildren(...shown.map((ons) => rows.get(ons)));
        listed = shown;
      }
      $("no-seats").classList.toggle("hidden", shown.length > 0);
      $("list-count").textContent = shown.length + " of " + seats.size;
    }

    function showToCome() {
      if (!config.hasNight) return;
      const waiting = [...seats.values()].filter((row) => !won(row));
      $("to-come").textContent = waiting.length;
      const list = $("next-seats");
      if (!list) return;  // no timetable for this night
      const next = waiting.filter((row) => row.expected_at)
        .sort((a, b) => Date.parse(a.expected_at) - Date.parse(b.expected_at)).slice(0, config.nextSeats);
      list.replaceChildren(...next.map((row) => {
        const li = document.createElement("li");
        const when = document.createElement("time");
        when.textContent = nightClock(row.expected_at);
        const link = document.createElement("a");
        link.href = seatHref(row.ons_id);
        link.textContent = row.name;
        li.append(when, " ", link);
        return li;
      }));
    }

    // Only what changed is repainted; the list is re-filtered once per frame at most.
    function draw() {
      drawPending = false;
      dirty.forEach((ons) => {
        const row = seats.get(ons);
        paintHex(row);
        paintRow(row);
      });
      dirty.clear();
      showList();
      showToCome();
    }

    // At most one redraw every DRAW_MS: a night at --max changes seats hundreds of times a second,
    // and a phone (or a loaded machine) must not spend every frame re-sorting the list.
    const DRAW_MS = 250;
    function schedule() {
      if (!drawPending) {
        drawPending = true;
        setTimeout(() => requestAnimationFrame(draw), DRAW_MS);
      }
    }

    function changed(body) {
      Object.entries(body.seats).forEach(([ons, result]) => merge(ons, result));
      version = Math.max(version, body.version);
      schedule();
    }

    // The page came with the seats as of config.seatsVersion; a stream (re)joined later starts
    // with a newer tally, and sends only what changes from then on: fetch the gap once.
    let synced = false;
    function fetchSeats() {
      fetching = true;
      return fetch(config.seatsApi, { headers: { Accept: "application/json" } })
        .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
        .then((body) => {
          body.seats.forEach((row) => {
            if (!seats.has(row.ons_id)) { seats.set(row.ons_id, { ...row, result: null }); dirty.add(row.ons_id); }
            if (row.result) merge(row.ons_id, row.result);
          });
          version = Math.max(version, body.version);
          synced = true;
          schedule();
        })
        .catch(() => {})  // the next tally tries again
        .finally(() => { fetching = false; });
    }

    // The night opened while the page was waiting for it: draw its map (one small fetch, not a
    // reload of the whole page), then take every seat.
    let awaiting = config.awaitingNight;
    function drawMap() {
      fetching = true;
      fetch(config.mapFragment, { headers: { Accept: "text/html" } })
        .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
        .then((html) => {
          $("map-body").innerHTML = html;
          findHexes();
          awaiting = !hexes.size && !$("no-map");
          config.hasNight = !awaiting;
          fetching = false;
          return fetchSeats();
        })
        .catch(() => { fetching = false; });  // the next tally tries again
    }

    function tally(state) {
      if (awaiting) {
        if (state.total > 0 && !fetching) drawMap();
        return;
      }
      const now = state.tally ? state.tally.version : -1;
      if (synced || now <= version || fetching) {
        synced = true;
        return;
      }
      fetchSeats();
    }

    function reconnected() {
      synced = false;
    }

    // Hover (or a first tap) shows the result; a click (or a second tap) opens the seat.
    let tipped = null;
    function showTip(hex, event) {
      const tip = $("hex-tip");
      const row = seats.get(hex.dataset.seat);
      if (!row) return;
      fill(tip, "name", row.name);
      fill(tip, "verdict", seatText(row.result));
      tip.querySelector('[data-field="open"]').href = seatHref(row.ons_id);
      tip.classList.remove("hidden");
      const box = $("map-wrap").getBoundingClientRect();
      const x = Math.min(Math.max(event.clientX - box.left, 0), box.width);
      const y = event.clientY - box.top;
      tip.style.left = Math.min(x + 12, Math.max(box.width - tip.offsetWidth, 0)) + "px";
      tip.style.top = (y > box.height / 2 ? y - tip.offsetHeight - 12 : y + 16) + "px";
      tipped = hex;
    }
    // On the map's panel, so that a map drawn later (drawMap) answers too.
    const map = $("map-body");
    const hexOf = (event) => event.target.closest && event.target.closest("#hexmap [data-seat]");
    map.addEventListener("pointermove", (event) => {
      const hex = hexOf(event);
      if (hex && event.pointerType === "mouse") showTip(hex, event);
    });
    map.addEventListener("pointerout", (event) => {
      if (event.pointerType === "mouse" && !map.contains(event.relatedTarget)) $("hex-tip").classList.add("hidden");
    });
    map.addEventListener("click", (event) => {
      const hex = hexOf(event);
      if (!hex) return;
      if (event.pointerType !== "mouse" && tipped !== hex) {
        event.preventDefault();  // a first tap shows the result; tapping it again opens the seat
        showTip(hex, event);
      }
    });

    ["input", "change"].forEach((type) => $("seat-search").addEventListener(type, showList));
    $("seat-filter").addEventListener("change", showList);
    $("seat-sort").addEventListener("change", showList);
    draw();
    return { changed, tally, reconnected };
  })();

  // The story of the night: a party past the majority line, or a hung parliament.
  // As view.banner_of: keep the wording of the two in step.
  function bannerOf(kind, facts) {
    if (kind === "majority_reached") {
      return { text: partyName(facts.party) + " wins a majority: " + facts.seats + " seats, " + facts.majority_line + " needed",
               colour: colour(facts.party) };
    }
    return { text: "Hung parliament: no party can reach " + facts.majority_line + " seats; " + partyName(facts.largest_party) +
                   " is the largest party with " + facts.largest_party_seats,
             colour: (config.kinds.hung_parliament || {}).colour || config.unknownColour };
  }

  function showBanner(alert) {
    if (alert.kind !== "majority_reached" && alert.kind !== "hung_parliament") return;
    const banner = $("banner");
    const { text, colour: accentColour } = bannerOf(alert.kind, alert.facts || {});
    banner.dataset.kind = alert.kind;
    banner.style.borderLeftColor = accentColour;
    $("banner-text").textContent = text;
    banner.classList.remove("hidden");
  }

  // --- the connection ---------------------------------------------------------------------

  // "live" only while something arrives: an alert, a tally, a seat or the server's heartbeat
  // (every few seconds on every stream). A stream that is open but silent is "stalled".
  let lastHeard = 0;
  function heard() {
    lastHeard = Date.now();
    showLive();
  }

  function setLive(state, text) {
    const el = $("live");
    if (el.dataset.state === state && el.textContent === text) return;
    el.dataset.state = state;
    el.textContent = text;
  }

  function showLive() {
    if (source.readyState === EventSource.CLOSED) return setLive("offline", "offline");
    if (source.readyState === EventSource.CONNECTING) return setLive("connecting", "reconnecting…");
    const quiet = (Date.now() - lastHeard) / 1000;
    if (quiet < config.liveSeconds) return setLive("live", "live");
    setLive("stalled", "no news for " + Math.round(quiet) + "s");
  }

  // The page already shows the alerts up to config.after; a reconnect sends Last-Event-ID instead.
  const source = new EventSource(config.events + "?after=" + encodeURIComponent(config.after));
  source.onopen = () => {
    night.reconnected();
    heard();
  };
  source.onerror = () => showLive();
  source.onmessage = (event) => {
    heard();
    const alert = JSON.parse(event.data);
    addAlert(event.lastEventId, alert);
    showBanner(alert);
  };
  source.addEventListener("tally", (event) => {
    heard();
    showTally(JSON.parse(event.data));
  });
  source.addEventListener("seats", (event) => {
    heard();
    night.changed(JSON.parse(event.data));
  });
  source.addEventListener("heartbeat", heard);
  setInterval(showLive, 1000);
})();
