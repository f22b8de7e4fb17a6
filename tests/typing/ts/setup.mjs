// Polyfills capnweb 0.12.0 needs on Node 20; load with `node --import ./setup.mjs client.js`.
// Node 20 may lack `Promise.withResolvers`, and has no global `WebSocket` (taken from `ws`).

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

globalThis.WebSocket ??= WebSocket;
