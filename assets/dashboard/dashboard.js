// runledger's dashboard: reads the public GraphQL API (/graphql) with the user's key, kept in
// this tab's session storage only, and draws the answers with uPlot. No other origin is used.
(function () {
  "use strict";

  var KEY = "runledger.key";
  var COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#6b7280", "#92400e", "#1e3a8a"];
  var charts = {};
  var $ = function (id) { return document.getElementById(id); };

  function key() { return sessionStorage.getItem(KEY); }

  /** One GraphQL request; resolves to {data, errors} (errors: the response's, or a transport one). */
  function gql(query, variables) {
    return fetch("/graphql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/graphql-response+json, application/json",
        "Authorization": "Bearer " + key()
      },
      body: JSON.stringify({ query: query, variables: variables || {} })
    }).then(function (resp) {
      return resp.json().catch(function () {
        return { errors: [{ message: "HTTP " + resp.status + " without a JSON body" }] };
      });
    }, function (err) {
      return { errors: [{ message: "the server could not be reached (" + err.message + ")" }] };
    });
  }

  function errorText(errors) {
    return errors.map(function (e) {
      var code = e.extensions && e.extensions.code;
      return (code ? code + ": " : "") + e.message;
    }).join("; ");
  }

  function errorsAt(result, field) {
    return (result.errors || []).filter(function (e) {
      return !e.path || e.path[0] === field;
    });
  }

  // ---- number formats --------------------------------------------------------------------
  var integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  function dollars(cents) { return "$" + (cents / 100).toFixed(2); }
  function percent(rate) { return rate == null ? "–" : (rate * 100).toFixed(1) + " %"; }
  function seconds(ms) { return ms == null ? "–" : (ms / 1000).toFixed(1) + " s"; }

  function setTile(id, raw, text) {
    var el = $(id);
    el.dataset.value = raw == null ? "" : String(raw);
    el.textContent = text;
  }

  // ---- the range -------------------------------------------------------------------------
  var DAY = 86400e3;

  function localInput(date, zone) {
    // The wall-clock time of `date` in `zone`, as a datetime-local value.
    var parts = new Intl.DateTimeFormat("en-CA", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"
    }).formatToParts(date).reduce(function (m, p) { m[p.type] = p.value; return m; }, {});
    return parts.year + "-" + parts.month + "-" + parts.day + "T" + parts.hour + ":" + parts.minute + ":" + parts.second;
  }

  function fromLocalInput(value, zone) {
    // The instant whose wall-clock time in `zone` is `value` (two passes settle the offset).
    var guess = new Date(value + "Z");
    for (var i = 0; i < 2; i++) {
      var shown = new Date(localInput(guess, zone) + "Z");
      guess = new Date(guess.getTime() - (shown.getTime() - new Date(value + "Z").getTime()));
    }
    return guess;
  }

  function bucketFor(from, to) {
    var span = to - from;
    if (span <= 2 * DAY) return "HOUR";
    if (span <= 120 * DAY) return "DAY";
    return "WEEK";
  }

  /** The range the controls (or the URL) ask for: {from, to, zone, bucket}. */
  function range() {
    var zone = $("tz").value || "UTC";
    var preset = $("preset").value;
    var now = new Date();
    var span = { "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY }[preset];
    var p;
    if (span) {
      p = Promise.resolve({ from: new Date(now - span), to: now });
    } else if (preset === "newest7d") {
      p = gql("{ llmRuns(first: 1) { nodes { startedAt } } }").then(function (r) {
        var newest = r.data && r.data.llmRuns.nodes[0];
        var end = newest ? new Date(Math.ceil((Date.parse(newest.startedAt) + 1) / 3600e3) * 3600e3) : now;
        return { from: new Date(end - 7 * DAY), to: end };
      });
    } else {
      p = Promise.resolve({ from: fromLocalInput($("from").value, zone), to: fromLocalInput($("to").value, zone) });
    }
    return p.then(function (r) {
      r.zone = zone;
      r.bucket = bucketFor(r.from, r.to);
      $("from").value = localInput(r.from, zone);
      $("to").value = localInput(r.to, zone);
      return r;
    });
  }

  // ---- charts ----------------------------------------------------------------------------
  function setState(el, state, text) {
    el.dataset.state = state;
    if (text != null) {
      if (charts[el.id]) { charts[el.id].destroy(); delete charts[el.id]; }
      el.textContent = text;
    }
  }

  /** Draws series [{label, values}] over the bucket starts `xs` (seconds) into `el`. */
  function draw(el, xs, series, zone, format, counts) {
    if (charts[el.id]) { charts[el.id].destroy(); delete charts[el.id]; }
    el.textContent = "";
    var total = 0;
    series.forEach(function (s) { s.values.forEach(function (v) { if (v != null) total += v; }); });
    el.dataset.total = String(total);
    el.dataset.series = series.map(function (s) { return s.label; }).join("|");
    if (series.length === 0) {
      el.textContent = "No data in this range.";
      el.dataset.state = "ready";
      return;
    }
    var opts = {
      width: Math.max(320, el.clientWidth || 520),
      height: 220,
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), zone); },
      scales: { x: { time: true } },
      axes: [{}, counts
        ? { values: function (u, vals) { return vals.map(format); }, size: 70, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 1e4, 2e4, 5e4, 1e5, 1e6] }
        : { values: function (u, vals) { return vals.map(format); }, size: 70 }],
      series: [{}].concat(series.map(function (s, i) {
        return {
          label: s.label,
          stroke: COLORS[i % COLORS.length],
          width: 2,
          points: { show: xs.length < 60 },
          value: function (u, v) { return v == null ? "–" : format(v); }
        };
      }))
    };
    charts[el.id] = new uPlot(opts, [xs].concat(series.map(function (s) { return s.values; })), el);
    el.dataset.state = "ready";
  }

  function groupLabel(g) {
    if (g.other) return "other (" + g.groupsFolded + ")";
    return g.key.map(function (k) { return k.value == null ? "(none)" : k.value; }).join(" / ");
  }

  var STATS = "query Dashboard($from: DateTime!, $to: DateTime!, $bucket: StatsBucketUnit!, $tz: String!) {\n" +
    "  viewer { tenantId role }\n" +
    "  byModel: llmRunStats(from: $from, to: $to, bucket: $bucket, timeZone: $tz, groupBy: [MODEL], groupLimit: 6) {\n" +
    "    buckets { start }\n" +
    "    total { runs costCents totalTokens errorRate durationP90Ms }\n" +
    "    groups { key { value } other groupsFolded series { runs costCents totalTokens errorRate } }\n" +
    "    asOf { treeSize checkpoint { treeSize recordedAt } }\n" +
    "  }\n" +
    "  byStatus: llmRunStats(from: $from, to: $to, bucket: $bucket, timeZone: $tz, groupBy: [STATUS], groupLimit: 10) {\n" +
    "    buckets { start }\n" +
    "    groups { key { value } other groupsFolded series { runs } }\n" +
    "  }\n" +
    "  failed: llmRuns(first: 10, filter: {executionStatus: [FAILED, TIMED_OUT, ABORTED], startedAfter: $from, startedBefore: $to}) {\n" +
    "    nodes { runId model executionStatus startedAt source }\n" +
    "  }\n" +
    "}";

  var LEDGER = "query Ledger($from: DateTime!, $to: DateTime!, $bucket: StatsBucketUnit!, $tz: String!) {\n" +
    "  audit { integrity { status hashChainValid entriesChecked latestCheckpoint { treeSize recordedAt signatureValid } } }\n" +
    "  denied: auditStats(from: $from, to: $to, bucket: $bucket, timeZone: $tz, filter: {decision: DENY}) {\n" +
    "    buckets { start } series { count } total { count }\n" +
    "  }\n" +
    "}";

  function xsOf(stats) {
    return stats.buckets.map(function (b) { return Date.parse(b.start) / 1000; });
  }

  function renderStats(result, zone) {
    var failedField = errorsAt(result, "byModel");
    var d = result.data || {};
    if (!d.byModel) {
      var text = "Could not load: " + errorText(failedField.length ? failedField : result.errors || []);
      ["chart-cost", "chart-tokens", "chart-errors", "chart-status"].forEach(function (id) { setState($(id), "error", text); });
      renderFailed(null, result.errors || []);
      return;
    }
    var m = d.byModel;
    setTile("kpi-runs", m.total.runs, integer.format(m.total.runs));
    setTile("kpi-cost", m.total.costCents, dollars(m.total.costCents));
    setTile("kpi-tokens", m.total.totalTokens, integer.format(m.total.totalTokens));
    setTile("kpi-error-rate", m.total.errorRate, percent(m.total.errorRate));
    setTile("kpi-p90", m.total.durationP90Ms, seconds(m.total.durationP90Ms));
    var xs = xsOf(m);
    var of = function (field) {
      return m.groups.map(function (g) {
        return { label: groupLabel(g), values: g.series.map(function (s) { return s[field]; }) };
      });
    };
    draw($("chart-cost"), xs, of("costCents"), zone, dollars);
    draw($("chart-tokens"), xs, of("totalTokens"), zone, function (v) { return integer.format(v); });
    draw($("chart-errors"), xs, of("errorRate"), zone, percent);
    var s = d.byStatus;
    draw($("chart-status"), xsOf(s), s.groups.map(function (g) {
      return { label: groupLabel(g), values: g.series.map(function (p) { return p.runs; }) };
    }), zone, function (v) { return integer.format(v); }, true);
    var cp = m.asOf.checkpoint;
    $("as-of").textContent = "Figures reflect the ledger at tree size " + m.asOf.treeSize +
      (cp ? "; the newest signed checkpoint at or before it covers " + cp.treeSize + " entries (" + cp.recordedAt + ")." : "; no checkpoint is signed yet.");
    $("as-of").dataset.treeSize = String(m.asOf.treeSize);
    $("viewer").textContent = d.viewer ? "tenant " + d.viewer.tenantId + " · " + d.viewer.role.toLowerCase() : "";
    renderFailed(d.failed, errorsAt(result, "failed"));
  }

  function renderFailed(list, errors) {
    var body = $("failed-rows");
    body.textContent = "";
    var panel = $("failed");
    if (!list) {
      panel.dataset.state = "error";
      body.innerHTML = "";
      var tr = body.insertRow(); var td = tr.insertCell(); td.colSpan = 5;
      td.textContent = "Could not load: " + errorText(errors);
      return;
    }
    if (list.nodes.length === 0) {
      var row = body.insertRow(); var cell = row.insertCell(); cell.colSpan = 5;
      cell.textContent = "No failed runs in this range.";
    }
    list.nodes.forEach(function (r) {
      var tr = body.insertRow();
      tr.className = "run";
      tr.dataset.runId = r.runId;
      [r.startedAt, r.runId, r.model, r.executionStatus, r.source].forEach(function (v) {
        tr.insertCell().textContent = v;
      });
      tr.addEventListener("click", function () { openReplay(r.runId); });
    });
    panel.dataset.state = "ready";
  }

  function openReplay(runId) {
    var panel = $("replay");
    panel.hidden = false;
    panel.dataset.state = "loading";
    $("replay-run").textContent = runId;
    $("replay-inflection").textContent = "Loading…";
    $("replay-events").textContent = "";
    gql("query Replay($id: String!) { llmRun(runId: $id) { replay { inflection { reason timestamp stepIndex } " +
        "windowStart windowEnd events { source timestamp stepIndex action outcome } } } }", { id: runId })
      .then(function (r) {
        if (!r.data || !r.data.llmRun) {
          panel.dataset.state = "error";
          $("replay-inflection").textContent = "Could not load: " + errorText(r.errors || []);
          return;
        }
        var rep = r.data.llmRun.replay;
        $("replay-inflection").textContent = "Inflection: " + rep.inflection.reason + " at " + rep.inflection.timestamp +
          " (window " + rep.windowStart + " – " + rep.windowEnd + ")";
        rep.events.forEach(function (e) {
          var li = document.createElement("li");
          li.textContent = e.timestamp + " · " + e.source + (e.stepIndex != null ? " #" + e.stepIndex : "") + " · " + e.action + " → " + e.outcome;
          $("replay-events").appendChild(li);
        });
        panel.dataset.state = "ready";
        panel.scrollIntoView();
      });
  }

  function renderLedger(result, zone) {
    var d = result.data || {};
    var body = $("ledger-body");
    var panel = $("ledger");
    if (d.audit) {
      var i = d.audit.integrity;
      var cp = i.latestCheckpoint;
      body.innerHTML = "";
      var status = document.createElement("p");
      status.innerHTML = "Status: <span></span>";
      status.firstElementChild.textContent = i.status;
      status.firstElementChild.className = i.status.indexOf("VERIFIED") === 0 ? "ok" : "bad";
      status.firstElementChild.id = "ledger-status";
      body.appendChild(status);
      var facts = document.createElement("p");
      facts.textContent = "Hash chain " + (i.hashChainValid ? "valid" : "BROKEN") + " (this check read " + i.entriesChecked +
        " entries not verified before). " + (i.status === "VERIFIED_UNANCHORED_TAIL" ? "The newest entries are not yet covered by a signed checkpoint. " : "") +
        (cp ? "Latest signed checkpoint: tree size " + cp.treeSize + ", " + cp.recordedAt +
          (cp.signatureValid === true ? ", signature valid." : cp.signatureValid === false ? ", signature INVALID." : ".")
          : "No signed checkpoint yet.");
      body.appendChild(facts);
      panel.dataset.state = "ready";
    } else {
      panel.dataset.state = "error";
      body.textContent = "Could not load: " + errorText(errorsAt(result, "audit"));
    }
    var chart = $("chart-denied");
    if (d.denied) {
      draw(chart, xsOf(d.denied), [{ label: "denied", values: d.denied.series.map(function (s) { return s.count; }) }], zone,
        function (v) { return integer.format(v); }, true);
    } else {
      setState(chart, "error", "Could not load: " + errorText(errorsAt(result, "denied")));
    }
  }

  // ---- live updates ----------------------------------------------------------------------
  // New runs arrive over graphql-transport-ws on /graphql (the key in connection_init's
  // payload, since a browser cannot set headers on a websocket). Each one schedules a refresh
  // of the figures; a dropped connection comes back with the last cursor, so no run is missed.
  var LIVE_RUNS = "subscription($after: String) { llmRunAdded(after: $after) { cursor run { runId } } }";
  var live = { socket: null, cursor: null, retry: 0, timer: null, pending: false, running: false, arrived: 0 };

  function setLive(state, text) {
    var el = $("live");
    el.dataset.state = state;
    el.textContent = text;
  }

  /** Runs refresh() now, or once more after the one in flight; at most once a second. */
  function refreshSoon() {
    if (live.running) { live.pending = true; return; }
    if (live.timer) return;
    live.timer = setTimeout(function () {
      live.timer = null;
      live.running = true;
      var done = function () {
        live.running = false;
        if (live.pending) { live.pending = false; refreshSoon(); }
      };
      refresh().then(done, done);
    }, 1000);
  }

  function stopLive() {
    if (live.socket) { live.socket.onclose = null; live.socket.close(1000); live.socket = null; }
    clearTimeout(live.reconnect);
    setLive("off", "");
  }

  function reconnectLive(reason) {
    live.socket = null;
    var wait = Math.min(30000, 1000 * Math.pow(2, live.retry++));
    setLive("reconnecting", "Live: reconnecting (" + reason + ")");
    live.reconnect = setTimeout(startLive, wait);
  }

  function startLive() {
    if (!key() || live.socket) return;
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + "/graphql", "graphql-transport-ws");
    live.socket = socket;
    setLive("connecting", "Live: connecting…");
    socket.onopen = function () {
      socket.send(JSON.stringify({ type: "connection_init", payload: { Authorization: "Bearer " + key() } }));
    };
    socket.onmessage = function (ev) {
      var m = JSON.parse(ev.data);
      if (m.type === "connection_ack") {
        live.retry = 0;
        socket.send(JSON.stringify({ id: "runs", type: "subscribe", payload: { query: LIVE_RUNS, variables: { after: live.cursor } } }));
        setLive("live", "Live");
      } else if (m.type === "ping") {
        socket.send(JSON.stringify({ type: "pong" }));
      } else if (m.type === "next" && m.id === "runs") {
        var errors = m.payload.errors || [];
        if (errors.length) {
          var e = errors[0], code = e.extensions && e.extensions.code;
          if (e.extensions && e.extensions.resumeAfter) live.cursor = e.extensions.resumeAfter;
          if (code === "UNAUTHENTICATED") { stopLive(); isUnauthenticated({ errors: errors }); }
          return;
        }
        live.cursor = m.payload.data.llmRunAdded.cursor;
        live.arrived += 1;
        $("live").dataset.arrived = String(live.arrived);
        refreshSoon();
      } else if (m.type === "error" || m.type === "complete") {
        // Refused or ended by the server: start again after a pause (with the cursor kept).
        socket.close(1000);
      }
    };
    socket.onclose = function (ev) {
      if (live.socket !== socket) return;
      if (ev.code === 4403) { live.socket = null; setLive("off", "Live: the key was refused"); return; }
      reconnectLive(ev.reason || "connection closed");
    };
  }

  /** Starts following new runs from the ledger's position now (before the first load). */
  function followLive() {
    return gql("{ liveCursor }").then(function (r) {
      if (r.data && r.data.liveCursor) live.cursor = r.data.liveCursor;
      startLive();
    });
  }

  function refresh() {
    $("status").textContent = "Loading…";
    $("status").className = "muted";
    ["chart-cost", "chart-tokens", "chart-errors", "chart-status", "chart-denied"].forEach(function (id) {
      $(id).dataset.state = "loading";
    });
    $("failed").dataset.state = "loading";
    $("ledger").dataset.state = "loading";
    return range().then(function (r) {
      var vars = { from: r.from.toISOString(), to: r.to.toISOString(), bucket: r.bucket, tz: r.zone };
      return Promise.all([gql(STATS, vars), gql(LEDGER, vars)]).then(function (results) {
        if (isUnauthenticated(results[0])) return;
        renderStats(results[0], r.zone);
        renderLedger(results[1], r.zone);
        var problems = [results[0], results[1]].filter(function (x) { return x.errors; });
        $("status").textContent = problems.length
          ? "Loaded with errors at " + new Date().toLocaleTimeString() + "."
          : "Updated " + new Date().toLocaleTimeString() + " · " + r.bucket.toLowerCase() + " buckets in " + r.zone + ".";
        document.body.dataset.state = "ready";
      });
    });
  }

  function isUnauthenticated(result) {
    var e = (result.errors || []).find(function (x) { return x.extensions && x.extensions.code === "UNAUTHENTICATED"; });
    if (!e) return false;
    sessionStorage.removeItem(KEY);
    showLogin("The key was refused: " + e.message);
    return true;
  }

  function showLogin(message) {
    stopLive();
    $("board").hidden = true;
    $("range").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    document.body.dataset.state = "login";
  }

  function showBoard() {
    $("login").hidden = true;
    $("board").hidden = false;
    $("range").hidden = false;
    followLive().then(refresh);
  }

  function init() {
    var params = new URLSearchParams(location.search);
    $("tz").value = params.get("tz") || Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    if (params.get("from") && params.get("to")) {
      $("preset").value = "custom";
      $("from").value = localInput(new Date(params.get("from")), $("tz").value);
      $("to").value = localInput(new Date(params.get("to")), $("tz").value);
    }
    $("key-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      sessionStorage.setItem(KEY, $("key").value.trim());
      $("key").value = "";
      showBoard();
    });
    $("range").addEventListener("submit", function (ev) { ev.preventDefault(); refresh(); });
    $("preset").addEventListener("change", function () { if ($("preset").value !== "custom") refresh(); });
    $("forget").addEventListener("click", function () { stopLive(); sessionStorage.removeItem(KEY); showLogin(""); });
    window.addEventListener("resize", function () {
      Object.keys(charts).forEach(function (id) { charts[id].setSize({ width: Math.max(320, $(id).clientWidth), height: 220 }); });
    });
    if (key()) showBoard(); else showLogin("");
  }

  init();
})();
