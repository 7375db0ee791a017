// The Live page: keeps the table of calls in progress current from the server's feed.
"use strict";
(() => {
  const body = document.querySelector("#live tbody");
  const count = document.getElementById("live-count");
  const empty = document.getElementById("live-empty");
  const capacity = document.getElementById("capacity");
  const draining = document.getElementById("draining");
  const problem = document.getElementById("live-error");
  const feedState = document.getElementById("feed-state");

  function since(iso) {
    if (!iso) return "–";
    const secs = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    const m = Math.floor(secs / 60), s = secs % 60;
    return m ? `${m} min ${String(s).padStart(2, "0")} s` : `${s} s`;
  }

  function cell(row, text, className) {
    const td = row.insertCell();
    if (className) td.className = className;
    if (text !== undefined) td.textContent = text;
    return td;
  }

  function render(data) {
    const rows = data.calls.map((call) => {
      const tr = document.createElement("tr");
      tr.dataset.sid = call.sid;
      const first = cell(tr);
      const link = document.createElement("a");
      link.href = `/console/calls/${encodeURIComponent(call.sid)}`;
      link.textContent = call.sid;
      first.append(link);
      if (!call.here) {
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = "other replica";
        first.append(" ", tag);
      }
      const duration = cell(tr, since(call.answered_at), "duration");
      duration.dataset.since = call.answered_at || "";
      cell(tr, call.assistant || "default");
      cell(tr, `${call.direction || "–"} (${call.provider})`);
      cell(tr, `${call.from || "?"} → ${call.to || "?"}`);
      const said = cell(tr, undefined, "said");
      if (call.last_text) {
        const role = document.createElement("span");
        role.className = `role role-${call.last_role}`;
        role.textContent = call.last_role;
        said.append(role, " ", call.last_text);
      } else {
        const none = document.createElement("span");
        none.className = "muted";
        none.textContent = "nothing yet";
        said.append(none);
      }
      return tr;
    });
    body.replaceChildren(...rows);
    count.textContent = String(data.calls.length);
    empty.hidden = data.calls.length > 0;
    capacity.textContent = `${data.capacity.live} of ${data.capacity.max}`;
    draining.hidden = !data.capacity.draining;
    problem.hidden = !data.error;
    problem.textContent = data.error || "";
  }

  function tick() {
    for (const td of body.querySelectorAll("td.duration")) td.textContent = since(td.dataset.since);
  }

  tick();
  setInterval(tick, 1000);
  const feed = new EventSource("/console/live/feed");
  feed.addEventListener("calls", (event) => {
    feedState.textContent = "";
    render(JSON.parse(event.data));
  });
  feed.addEventListener("error", () => {
    // A refused feed (the session ended) is not retried by the browser: say so.
    feedState.textContent =
      feed.readyState === EventSource.CLOSED
        ? "· not updating: reload the page (you may need to log in again)"
        : "· reconnecting…";
  });
})();
