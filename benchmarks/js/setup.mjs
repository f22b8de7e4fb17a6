// Node 20 lacks two things capnweb 0.12.0 relies on; load with `node --import ./setup.mjs ...`.
//   Promise.withResolvers   (ES2024), used by capnweb's session code
//   globalThis.WebSocket    used by newWebSocketRpcSession(url); taken from `ws`

import { WebSocket } from "ws";

if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve, reject;
    const promise = new this((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}

if (typeof globalThis.WebSocket === "undefined") {
  globalThis.WebSocket = WebSocket;
}
