// The chat page: one capnweb WebSocket session to the server that served this page.
// `chat.join(room, name, subscriber)` gives a Room stub (this member's capability); the server
// calls `subscriber.onMessage(message)` for every message of the room. Closing the page closes
// the session, and the server releases the member: the others see it leave.
import { newWebSocketRpcSession, RpcTarget } from "/capnweb.js";

const $ = (id) => document.getElementById(id);
const scheme = location.protocol === "https:" ? "wss" : "ws";
const chat = newWebSocketRpcSession(`${scheme}://${location.host}/rpc`);

let room = null; // the Room stub while this page is in a room
let subscriber = null; // the subscriber passed with the current join
let me = "";

function status(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function showChat(joined) {
  $("join-form").hidden = joined;
  $("chat").hidden = !joined;
  (joined ? $("text") : $("name")).focus();
}

function show(message) {
  const item = document.createElement("li");
  const time = document.createElement("time");
  time.dateTime = message.at.toISOString();
  time.textContent = message.at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const line = document.createElement("span");
  line.className = "line";
  if (message.kind === "message") {
    const sender = document.createElement("span");
    sender.className = "sender";
    sender.textContent = message.sender;
    line.append(sender, `: ${message.text}`); // text nodes: never parsed as HTML
    item.className = message.sender === me ? "message mine" : "message";
  } else {
    line.textContent = `${message.sender} ${message.kind}`;
    item.className = "notice";
  }
  item.append(time, line);
  const list = $("messages");
  list.append(item);
  list.scrollTop = list.scrollHeight;
}

async function showMembers() {
  if (room === null) return;
  const names = await room.members();
  $("members").replaceChildren(
    ...names.map((name) => Object.assign(document.createElement("li"), { textContent: name })),
  );
}

// What the server calls: one instance per join, passed by reference.
class Subscriber extends RpcTarget {
  onMessage(message) {
    if (this !== subscriber) return; // a room this page has left
    show(message);
    if (message.kind !== "message") showMembers().catch((error) => status(error.message, true));
  }
}

$("join-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("name").value.trim();
  const roomName = $("room").value.trim();
  $("messages").replaceChildren();
  me = name;
  subscriber = new Subscriber();
  try {
    room = await chat.join(roomName, name, subscriber);
  } catch (error) {
    subscriber = null;
    status(`cannot join: ${error.message}`, true);
    return;
  }
  $("title").textContent = `#${roomName} as ${name}`;
  status(`in ${roomName}`);
  showChat(true);
  await showMembers();
});

$("send-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("text").value;
  if (room === null || !text.trim()) return;
  $("text").value = "";
  try {
    await room.send(text);
  } catch (error) {
    status(`not sent: ${error.message}`, true);
  }
});

$("leave").addEventListener("click", async () => {
  const left = room;
  room = null;
  subscriber = null;
  showChat(false);
  $("members").replaceChildren();
  status("left the room");
  try {
    await left.leave();
  } finally {
    left[Symbol.dispose](); // the server has released the member already; this frees our end
  }
});

chat.onRpcBroken((error) => {
  room = null;
  for (const input of document.querySelectorAll("input, button")) input.disabled = true;
  status(`disconnected (${error.message ?? error}): reload the page to connect again`, true);
});

chat.rooms().then(
  (rooms) => {
    const busy = rooms.map((r) => `${r.room} (${r.members.length})`).join(", ");
    status(busy ? `connected; rooms: ${busy}` : "connected; no one here yet");
  },
  (error) => status(`cannot connect: ${error.message}`, true),
);
