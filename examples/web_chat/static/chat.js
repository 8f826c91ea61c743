// The page's script: post a message, read the answer's server-sent events from the
// response body (fetch streaming, so a message is sent once, never re-sent by a reconnect).
"use strict";

const form = document.getElementById("chat");
const userInput = document.getElementById("user");
const messageInput = document.getElementById("message");
const sendButton = document.getElementById("send");
const statusLine = document.getElementById("status");
const log = document.getElementById("log");
const sessionList = document.getElementById("sessions");

function bubble(kind, text) {
  const el = document.createElement("div");
  el.className = `msg ${kind}`;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  el.append(body);
  log.append(el);
  return el;
}

function note(el, cls, text) {
  const span = document.createElement("span");
  span.className = cls;
  span.textContent = text;
  el.append(span);
}

// Parse a text/event-stream body into {event, data} objects (data is JSON).
async function* serverSentEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const raw = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      let data = "";
      for (const line of raw.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      yield { event, data: data ? JSON.parse(data) : null };
    }
  }
}

async function refreshSessions(user) {
  try {
    const all = await (await fetch("/api/sessions")).json();
    sessionList.replaceChildren(...all.sessions.map((s) => {
      const li = document.createElement("li");
      li.textContent = s.session
        ? `${s.user}: session ${s.session}, CLI os pid ${s.os_pid ?? "(not started)"}, ` +
          `${s.turns} turn(s)`
        : `${s.user}: restarting`;
      return li;
    }));
    const mine = all.sessions.find((s) => s.user === user);
    if (mine && mine.session) {
      statusLine.textContent = `Your session ${mine.session} (CLI os pid ` +
        `${mine.os_pid ?? "-"}), served by otpy process ${all.served_by}.`;
    }
  } catch (err) {
    statusLine.textContent = `Could not list the sessions: ${err}`;
  }
}

async function send(user, message) {
  bubble("question", message);
  const answer = bubble("answer streaming", "");
  const text = answer.querySelector(".text");
  let outcome = null;
  try {
    const response = await fetch("/api/chat", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user, message }),
    });
    if (!response.ok) {
      outcome = { event: "error", data: await response.json() };
    } else {
      for await (const ev of serverSentEvents(response.body)) {
        if (ev.event === "session") answer.dataset.session = ev.data.session;
        else if (ev.event === "delta") text.textContent += ev.data.text;
        else if (ev.event === "done" || ev.event === "error") outcome = ev;
      }
    }
  } catch (err) {
    outcome = { event: "error", data: { error: "NetworkError", message: String(err) } };
  }
  if (outcome === null) {
    outcome = { event: "error", data: { error: "Incomplete", message: "the answer was cut off" } };
  }
  answer.classList.remove("streaming");
  answer.classList.add(outcome.event);
  if (outcome.event === "error") {
    note(answer, "error-text", `${outcome.data.error}: ${outcome.data.message}`);
  } else {
    note(answer, "meta", `session ${answer.dataset.session} · ${outcome.data.duration_ms} ms`);
  }
  log.lastElementChild.scrollIntoView({ block: "end" });
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const user = userInput.value.trim();
  const message = messageInput.value.trim();
  if (!user || !message) return;
  messageInput.value = "";
  sendButton.disabled = true;
  try {
    await send(user, message);
  } finally {
    sendButton.disabled = false;
    messageInput.focus();
  }
  await refreshSessions(user);
});
