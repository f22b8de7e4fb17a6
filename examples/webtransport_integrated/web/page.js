// The page: WebTransport when the browser has it (and the session opens), else a WebSocket;
// then the same calls either way. The server says where it listens: GET /config.json.

import { newWebSocketRpcSession, RpcSession, RpcTarget } from "/capnweb.js";
import { openWebTransport } from "/transport.js";

class Listener extends RpcTarget {
  constructor(ticks) {
    super();
    this.ticks = ticks;
  }
  onTick(n) {
    this.ticks.push(n);
  }
}

function show(id, text) {
  document.getElementById(id).textContent = text;
}

async function connect(config) {
  if ("WebTransport" in window) {
    try {
      const transport = await openWebTransport(config.webtransport, config.certificateHash);
      return { api: new RpcSession(transport).getRemoteMain(), used: "webtransport" };
    } catch (error) {
      console.warn(`WebTransport failed, falling back to WebSocket: ${error}`);
    }
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const api = newWebSocketRpcSession(`${scheme}://${location.host}${config.path}`);
  return { api, used: "websocket" };
}

async function run() {
  const config = await (await fetch("/config.json")).json();
  const { api, used } = await connect(config);
  show("transport", used);
  const result = { transport: used };
  result.greet = await api.greet("browser").text;
  result.square = await api.square(api.square(3)); // pipelined: one round trip
  result.counter = await api.makeCounter(10).increment(5);
  const ticks = [];
  result.countdown = await api.countdown(3, new Listener(ticks));
  result.ticks = ticks;
  try {
    await api.fail("no luck");
  } catch (error) {
    result.fail = `${error.name}: ${error.message}`;
  }
  for (const key of ["greet", "square", "counter", "ticks", "fail"]) {
    show(key, JSON.stringify(result[key]));
  }
  return result;
}

window.result = run().catch((error) => {
  show("transport", `failed: ${error}`);
  throw error;
});
