// The chat page: plain HTML and JavaScript over GET /objects/Chat/ROOM/ws.
//
// Query: room (default "lobby"), user (default "guest"); for scripted runs
// (tests/serve/chat_page_test.py) say=TEXT posts TEXT once the socket is
// open, reply=TEXT posts TEXT once after the first message of another user,
// and the page title lists every message it received.
#include "tools/serve/server.h"

namespace carrel::serve {

const char kChatPage[] = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>carrel chat</title>
<style>
body { font: 15px/1.4 system-ui, sans-serif; max-width: 40em; margin: 2em auto; }
#log { border: 1px solid #ccc; height: 20em; overflow-y: auto; padding: .5em; }
#log div { margin: .1em 0; } .user { font-weight: bold; } .error { color: #b00; }
form { display: flex; gap: .5em; margin-top: .5em; } #text { flex: 1; }
</style>
</head>
<body>
<h1>carrel chat: <span id="room"></span></h1>
<div id="status">connecting</div>
<div id="log"></div>
<form id="form"><input id="user" size="10"><input id="text" autocomplete="off">
<button id="send">Send</button></form>
<script>
"use strict";
const q = new URLSearchParams(location.search);
const room = q.get("room") || "lobby";
const say = q.get("say");
let reply = q.get("reply");
const seen = [];
document.getElementById("room").textContent = room;
document.getElementById("user").value = q.get("user") || "guest";
const log = document.getElementById("log");
function show(line, cls) {
  const div = document.createElement("div");
  if (cls) div.className = cls;
  const [n, user, ...rest] = line.split("|");
  if (cls === "error") { div.textContent = rest.length ? user + "|" + rest.join("|") : user; }
  else {
    const u = document.createElement("span"); u.className = "user"; u.textContent = user + ": ";
    div.appendChild(u); div.appendChild(document.createTextNode(rest.join("|")));
    div.title = "#" + n;
  }
  log.appendChild(div); log.scrollTop = log.scrollHeight;
}
const path = "/objects/Chat/" + encodeURIComponent(room);
fetch(path + "/recent", {method: "POST"}).then(r => r.ok ? r.text() : "").then(t => {
  t.split("\n").filter(Boolean).reverse().forEach(l => show(l));
});
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + path + "/ws");
ws.onopen = () => {
  document.getElementById("status").textContent = "connected";
  if (say) ws.send(document.getElementById("user").value + "|" + say);
};
ws.onmessage = (e) => {
  const error = e.data.startsWith("error|");
  show(error ? e.data.slice(6) : e.data, error ? "error" : "");
  seen.push(e.data);
  document.title = "seen:" + seen.join(";");
  const me = document.getElementById("user").value;
  if (reply && !error && e.data.split("|")[1] !== me) { ws.send(me + "|" + reply); reply = null; }
};
ws.onclose = (e) => { document.getElementById("status").textContent = "closed " + e.code; };
document.getElementById("form").onsubmit = (e) => {
  e.preventDefault();
  const text = document.getElementById("text");
  if (text.value && ws.readyState === 1) ws.send(document.getElementById("user").value + "|" + text.value);
  text.value = "";
};
</script>
</body>
</html>
)HTML";

}  // namespace carrel::serve
