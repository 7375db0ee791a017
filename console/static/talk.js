// Talk to the bot: a call from this browser over /ws, in Twilio's media-stream protocol.
// The microphone goes out as 8 kHz μ-law (talk-worklet.js); the bot's audio is played
// through the AudioContext, `clear` drops what is queued (barge-in), `mark`s are echoed
// once played. What was played is kept, so a test can listen to it (played()).
"use strict";
(() => {
  const LINE_RATE = 8000;
  const callButton = document.getElementById("call-button");
  const hangupButton = document.getElementById("hangup-button");
  const stateLine = document.getElementById("talk-state");
  const transcript = document.getElementById("transcript");
  const callLink = document.getElementById("talk-link");
  const form = document.getElementById("talk-form");
  const keypad = document.getElementById("keypad");
  const WHO = { user: "You", assistant: "Bot", dtmf: "Keys", tool: "Tool call" };

  const DECODE = new Int16Array(256);
  for (let i = 0; i < 256; i++) {
    const u = ~i & 0xff;
    const exponent = (u >> 4) & 0x07;
    const magnitude = ((((u & 0x0f) << 3) + 0x84) << exponent) - 0x84;
    DECODE[i] = u & 0x80 ? -magnitude : magnitude;
  }

  let call = null; // the call in progress
  let played = []; // {start, pcm: Int16Array} of everything played, in order
  let lastSid = null;

  function say(text) {
    stateLine.textContent = text;
  }

  function randomId(prefix) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function toBase64(bytes) {
    let text = "";
    for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text);
  }

  function fromBase64(text) {
    const raw = atob(text);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function send(message) {
    if (call && call.ws.readyState === WebSocket.OPEN) {
      call.ws.send(JSON.stringify({ ...message, streamSid: call.streamSid }));
    }
  }

  function play(payload) {
    const ctx = call.ctx;
    const ulaw = fromBase64(payload);
    const pcm = new Int16Array(ulaw.length);
    const buffer = ctx.createBuffer(1, ulaw.length, LINE_RATE);
    const samples = buffer.getChannelData(0);
    for (let i = 0; i < ulaw.length; i++) {
      pcm[i] = DECODE[ulaw[i]];
      samples[i] = pcm[i] / 32768;
    }
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(ctx.destination);
    const start = Math.max(ctx.currentTime + 0.04, call.playUntil);
    source.start(start);
    call.playUntil = start + buffer.duration;
    call.sources.add(source);
    source.onended = () => call && call.sources.delete(source);
    played.push({ start, pcm });
  }

  function clearPlayback() {
    // Barge-in: drop what has not played yet, keep the record of what did.
    const now = call.ctx.currentTime;
    for (const source of call.sources) source.stop();
    call.sources.clear();
    played = played
      .filter((chunk) => chunk.start < now)
      .map((chunk) => {
        const heard = Math.floor((now - chunk.start) * LINE_RATE);
        return heard < chunk.pcm.length ? { start: chunk.start, pcm: chunk.pcm.slice(0, heard) } : chunk;
      });
    call.playUntil = now;
    for (const timer of call.marks.splice(0)) {
      clearTimeout(timer.id);
      send({ event: "mark", mark: { name: timer.name } });
    }
  }

  function markWhenPlayed(name) {
    const wait = Math.max(0, call.playUntil - call.ctx.currentTime) * 1000;
    const timer = { name, id: 0 };
    timer.id = setTimeout(() => {
      call.marks = call.marks.filter((other) => other !== timer);
      send({ event: "mark", mark: { name } });
    }, wait);
    call.marks.push(timer);
  }

  function onMessage(event) {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (message.event === "media" && message.media) play(message.media.payload);
    else if (message.event === "clear") clearPlayback();
    else if (message.event === "mark" && message.mark) markWhenPlayed(message.mark.name);
  }

  function showTurn(turn) {
    const item = document.createElement("li");
    item.className = `entry turn role-${turn.role}`;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = WHO[turn.role] || turn.role;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = turn.text;
    item.append(who, " ", text);
    if (turn.reply_ms !== null && turn.reply_ms !== undefined) {
      const latency = document.createElement("span");
      latency.className = "latency";
      const ms = turn.reply_ms;
      latency.textContent = `replied in ${ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`}`;
      item.append(" ", latency);
    }
    transcript.append(item);
  }

  function follow(callSid) {
    const feed = new EventSource(`/console/calls/${encodeURIComponent(callSid)}/feed`);
    feed.addEventListener("turn", (event) => showTurn(JSON.parse(event.data)));
    feed.addEventListener("ended", () => feed.close());
    return feed;
  }

  function parameters() {
    const found = {};
    for (const name of ["greeting", "system_prompt"]) {
      const value = form.elements[name].value.trim();
      if (value) found[name] = value;
    }
    return found;
  }

  function ended(event) {
    if (!call) return;
    const current = call;
    call = null;
    current.microphone.getTracks().forEach((track) => track.stop());
    current.encoder.port.onmessage = null;
    current.encoder.disconnect();
    for (const timer of current.marks) clearTimeout(timer.id);
    if (current.hungUp) say("You hung up.");
    else if (event.code === 1000 || event.code === 1005) say("The call ended.");
    else say(`The server ended the call: ${event.reason || "code " + event.code}.`);
    callButton.disabled = false;
    hangupButton.disabled = true;
    keypad.disabled = true;
    document.body.dataset.call = "ended";
  }

  async function start() {
    callButton.disabled = true;
    say("Asking for the microphone…");
    let microphone;
    try {
      microphone = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (error) {
      say(`No microphone: ${error.message}`);
      callButton.disabled = false;
      return;
    }
    const ctx = new AudioContext({ latencyHint: "interactive" });
    await ctx.audioWorklet.addModule("/console/static/talk-worklet.js");
    const encoder = new AudioWorkletNode(ctx, "switchboard-line-encoder", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
    });
    const url = new URL("/ws", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url);
    call = {
      ws, ctx, microphone, encoder,
      callSid: randomId("BR"), streamSid: randomId("MZ"),
      playUntil: 0, sources: new Set(), marks: [], sent: 0, hungUp: false,
    };
    played = [];
    lastSid = call.callSid;
    transcript.replaceChildren();
    const current = call;
    say("Connecting…");
    ws.onopen = () => {
      send({ event: "connected", protocol: "Call", version: "1.0.0" });
      send({
        event: "start",
        sequenceNumber: "1",
        provider: "browser",
        start: {
          streamSid: current.streamSid,
          callSid: current.callSid,
          accountSid: "",
          tracks: ["inbound"],
          customParameters: parameters(),
          mediaFormat: { encoding: "audio/x-mulaw", sampleRate: LINE_RATE, channels: 1 },
        },
      });
      ctx.createMediaStreamSource(microphone).connect(encoder);
      encoder.port.onmessage = (event) => {
        current.sent += 1;
        send({
          event: "media",
          sequenceNumber: String(current.sent + 1),
          media: {
            track: "inbound",
            chunk: String(current.sent),
            timestamp: String(current.sent * 20),
            payload: toBase64(new Uint8Array(event.data)),
          },
        });
      };
      current.feed = follow(current.callSid);
      callLink.hidden = false;
      callLink.querySelector("a").href = `/console/calls/${current.callSid}`;
      hangupButton.disabled = false;
      keypad.disabled = false;
      document.body.dataset.call = "live";
      say("In a call. Speak when the bot has greeted you.");
    };
    ws.onmessage = onMessage;
    ws.onclose = ended;
  }

  function hangUp() {
    if (!call) return;
    call.hungUp = true;
    send({ event: "stop", stop: { callSid: call.callSid } });
    call.ws.close(1000, "hung up");
  }

  callButton.addEventListener("click", () => {
    start().catch((error) => {
      say(`The call could not start: ${error.message}`);
      callButton.disabled = false;
    });
  });
  hangupButton.addEventListener("click", hangUp);
  keypad.addEventListener("click", (event) => {
    const key = event.target.closest("button[data-key]");
    if (key) send({ event: "dtmf", dtmf: { track: "inbound_track", digit: key.dataset.key } });
  });
  form.addEventListener("submit", (event) => event.preventDefault());

  window.switchboardTalk = {
    // 8 kHz 16-bit PCM of everything the page played, back to back, base64.
    played() {
      const total = played.reduce((sum, chunk) => sum + chunk.pcm.length, 0);
      const all = new Int16Array(total);
      let at = 0;
      for (const chunk of played) {
        all.set(chunk.pcm, at);
        at += chunk.pcm.length;
      }
      return toBase64(new Uint8Array(all.buffer));
    },
    callSid: () => lastSid,
  };
})();
