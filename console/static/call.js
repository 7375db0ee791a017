// A call's page: "play from here" on each turn, and new turns while the call goes on.
"use strict";
(() => {
  const audio = document.getElementById("recording");
  for (const button of document.querySelectorAll("button.seek")) {
    button.addEventListener("click", () => {
      if (!audio) return;
      audio.currentTime = Number(button.dataset.offset);
      audio.play().catch(() => {});
    });
  }
  const timeline = document.getElementById("timeline");
  if (!timeline || timeline.dataset.live !== "yes") return;
  const sid = timeline.dataset.sid;
  const feed = new EventSource(
    `/console/calls/${encodeURIComponent(sid)}/feed?after=${timeline.dataset.turns}`,
  );
  const who = { user: "Caller", assistant: "Bot", dtmf: "Keys", tool: "Tool call" };
  feed.addEventListener("turn", (event) => {
    const turn = JSON.parse(event.data);
    const item = document.createElement("li");
    item.className = `entry turn role-${turn.role}`;
    const time = document.createElement("time");
    time.dateTime = turn.at;
    time.textContent = new Date(turn.at).toISOString().replace("T", " ").slice(0, 19) + " UTC";
    const name = document.createElement("span");
    name.className = "who";
    name.textContent = who[turn.role] || turn.role;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = turn.text;
    item.append(time, " ", name, " ", text);
    timeline.append(item);
  });
  feed.addEventListener("ended", () => {
    feed.close();
    window.location.reload();
  });
})();
