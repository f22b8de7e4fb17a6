// Per-scenario sessions: every scenario gets a ScenarioContext that opens sessions against the
// server under test (official capnweb client, or raw `ws` sockets) and closes them afterwards.

import { WebSocket } from "ws";
import { RpcSession, WebSocketTransport, newHttpBatchRpcSession } from "capnweb";
import { CheckFailure } from "./compare.mjs";

export const BOTH = Object.freeze(["ws", "batch"]);
export const WS = Object.freeze(["ws"]);
export const BATCH = Object.freeze(["batch"]);

/**
 * A scenario: `run(ctx)` throws (usually a CheckFailure) when the server misbehaves and may return
 * a short detail string. `timeout` bounds the whole scenario in milliseconds. An `exclusive`
 * scenario (one that measures throughput) runs alone, after the others.
 */
export function scenario(name, transports, run, { timeout = 5000, exclusive = false } = {}) {
  return { name, transports, run, timeout, exclusive };
}

export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

/** Retries `check` (sync or async) until it stops throwing, or rethrows its last failure. */
export async function eventually(check, { timeout = 2500, interval = 50 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
    }
    await sleep(interval);
  }
}

export class ScenarioContext {
  #cleanups = [];
  #closed = false;

  /** @param {{httpUrl: string, wsUrl: string, transport: "ws" | "batch"}} options */
  constructor({ httpUrl, wsUrl, transport }) {
    this.httpUrl = httpUrl;
    this.wsUrl = wsUrl;
    this.transport = transport;
  }

  /** Registers `cleanup` for close(); refuses new sessions once the scenario is over. */
  #track(cleanup) {
    if (this.#closed) {
      cleanup();
      throw new Error("scenario already finished (timed out?)");
    }
    this.#cleanups.push(cleanup);
  }

  /** A new session on the scenario's transport; returns the server's main stub. */
  open() {
    return this.transport === "ws" ? this.openWs().api : this.openBatch();
  }

  /** A new HTTP batch session (sent one macrotask after this call). */
  openBatch() {
    const api = newHttpBatchRpcSession(this.httpUrl);
    this.#track(() => api[Symbol.dispose]());
    return api;
  }

  /**
   * A new WebSocket session, optionally exposing `localMain` to the server; returns the server's
   * main stub, the client RpcSession (for getStats) and the socket.
   */
  openWs(localMain = undefined) {
    const ws = new WebSocket(this.wsUrl);
    const session = new RpcSession(new WebSocketTransport(ws), localMain);
    const api = session.getRemoteMain();
    // Disposing the main stub shuts the session down and closes the socket (code 3000).
    const close = () => {
      api[Symbol.dispose]();
      ws.close();
    };
    this.#track(close);
    return { api, session, ws, close };
  }

  /** A raw WebSocket to the endpoint, for hand-written frames. */
  async raw() {
    const socket = await RawSocket.open(this.wsUrl);
    this.#track(() => socket.terminate());
    return socket;
  }

  /** Closes everything this scenario opened. */
  close() {
    this.#closed = true;
    for (const cleanup of this.#cleanups.splice(0).reverse()) {
      try {
        cleanup();
      } catch {
        // Already closed or broken: nothing to do.
      }
    }
  }
}

/** A WebSocket speaking hand-written frames; received frames are queued as events. */
export class RawSocket {
  #ws;
  #events = [];
  #waiter = null;

  constructor(ws) {
    this.#ws = ws;
    ws.on("message", (data, isBinary) => {
      const text = isBinary ? null : data.toString("utf8");
      let json;
      try {
        json = text === null ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      this.#push({ type: "message", text, json });
    });
    ws.on("close", (code, reason) => {
      this.#push({ type: "close", code, reason: reason.toString("utf8") });
    });
    ws.on("error", err => this.#push({ type: "error", message: err.message }));
  }

  static open(url, timeout = 3000) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new CheckFailure(`raw WebSocket to ${url} did not open within ${timeout} ms`));
      }, timeout);
      ws.once("open", () => {
        clearTimeout(timer);
        resolve(new RawSocket(ws));
      });
      ws.once("error", err => {
        clearTimeout(timer);
        reject(new CheckFailure(`raw WebSocket to ${url} failed: ${err.message}`));
      });
    });
  }

  #push(event) {
    this.#events.push(event);
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.();
  }

  /** Sends a frame: strings verbatim, anything else as JSON. */
  send(frame) {
    this.#ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** The next event ({type: "message", text, json} or {type: "close", code, reason}), or null. */
  async next(timeout = 2000) {
    const deadline = Date.now() + timeout;
    while (this.#events.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise(resolve => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.#events.shift();
  }

  /** Reads frames until one satisfies `predicate(json)`; fails on close or timeout. */
  async expect(predicate, what, timeout = 2000) {
    const deadline = Date.now() + timeout;
    const seen = [];
    for (;;) {
      const event = await this.next(Math.max(0, deadline - Date.now()));
      if (event === null) {
        throw new CheckFailure(`no ${what} within ${timeout} ms; got ${JSON.stringify(seen)}`);
      }
      if (event.type !== "message") {
        throw new CheckFailure(`socket ended (${JSON.stringify(event)}) ` +
            `while waiting for ${what}; got ${JSON.stringify(seen)}`);
      }
      if (predicate(event.json)) return event.json;
      seen.push(event.text);
    }
  }

  /**
   * Waits for the server to end the session: an `abort` frame and/or the socket closing.
   * Returns a description; fails if neither happens within `timeout`.
   */
  async expectEnd(timeout = 3000) {
    const deadline = Date.now() + timeout;
    const seen = [];
    for (;;) {
      const event = await this.next(Math.max(0, deadline - Date.now()));
      if (event === null) {
        throw new CheckFailure(
            `server neither aborted nor closed within ${timeout} ms; got ${JSON.stringify(seen)}`);
      }
      if (event.type === "message" && Array.isArray(event.json) && event.json[0] === "abort") {
        return `abort frame ${event.text}`;
      }
      if (event.type === "close") return `closed ${event.code} ${JSON.stringify(event.reason)}`;
      if (event.type === "error") return `socket error ${event.message}`;
      seen.push(event.text);
    }
  }

  close() {
    this.#ws.close();
  }

  terminate() {
    this.#ws.terminate();
  }
}
