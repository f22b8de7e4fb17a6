// Polyfills that capnweb 0.12.0 needs on Node 20. Load with `node --import ./setup.mjs ...`.
//
// - `Promise.withResolvers` (ES2024) is used throughout capnweb's session code; Node 20.x only
//   gained it behind a flag in early releases, so install it when missing.
// - `globalThis.WebSocket` is used by capnweb's WebSocket transport (`WebSocket.CONNECTING`) and by
//   `newWebSocketRpcSession(url)`; Node 20 has no global WebSocket, so take the one from `ws`.

import { WebSocket } from "ws";

if (typeof Promise.withResolvers !== "function") {
  Object.defineProperty(Promise, "withResolvers", {
    configurable: true,
    writable: true,
    value: function withResolvers() {
      let resolve, reject;
      const promise = new this((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}

if (typeof globalThis.WebSocket === "undefined") {
  globalThis.WebSocket = WebSocket;
}
