// Reference TestTarget server for the interop suite, built on the official `capnweb` package.
//
// Usage: node --import ./setup.mjs server.mjs --port N     (or PORT=N in the environment;
//        port 0 picks a free one). Prints `listening <port>` once ready; exits on SIGTERM/SIGINT.
//
// Serves INTEROP-CONTRACT.md (sections 2, 5 and 6) on 127.0.0.1:PORT:
//   GET  /rpc with `Upgrade: websocket`  one WebSocket session per connection
//   POST /rpc                            one HTTP batch session per request
//   any other method on /rpc             405;  any other path: 404
//
// Contract v2 methods (section 6.3), on capnweb's own stream, Blob and Request/Response support:
//   streamNumbers(n), streamBytes(total, chunk)
//                              pull-based ReadableStreams (highWaterMark 0): a chunk is generated
//                              only when capnweb's pipe reads one, i.e. when its flow-control
//                              window has room; byte i of streamBytes is i % 251
//   streamStatus(sessionId?)   {produced, state, reason} of the session's latest streamNumbers/
//                              streamBytes stream, kept after the session ends; "cancelled" with
//                              the cancel reason's message (a rejected write, a disposal unread,
//                              the end of the session)
//   failingStream(n, message)  0..n-1, then Error(message) 1 s after the last number (the
//                              reference waits 100 ms; a loaded machine can stall a reader longer)
//   sumStream(readable), digestStream(readable, delayMs = 0)
//                              read a client stream to its end ({bytes, sum, adler32} for the
//                              digest, after waiting delayMs without reading); its error rejects
//   echoStream(readable)       a pull-based stream reading the input as it is read; cancelling it
//                              cancels the input
//   writeNumbers(writable, n), abortWritable(writable, reason)
//                              write 0..n-1 and close / abort with Error(reason) a client
//                              WritableStream
//   echoBlob(blob), blobInfo(blob), echoRequest(request), makeRequest(method, url, headers,
//   body), describeResponse(response), makeResponse(status, body, headers)
//                              header pairs sorted by name then value; string bodies are sent as
//                              UTF-8 bytes, so no content-type is added; `null`: no body
// `echo` returns URL and Headers values as they are (capnweb encodes both).
//
// Test-only extras on TestTarget, beyond the contract (for Python client <-> TS server tests):
//   getStats()                 this session's capnweb `{imports, exports}` table sizes; the
//                              call's own push is not counted yet (a call without promise
//                              arguments runs while its push is read), so a fresh session
//                              reads {imports: 1, exports: 1}
//   callTwice(func, x)         [await func(x), await func(x + 1)]: one callback used twice
//   callMethod(cap, name, args)  await cap[name](...args): call any method of a client capability
//   getProperty(cap, name)     await cap[name]: read a property of a client capability
//   throwValue(v)              rejects with `v` itself (any value, not necessarily an Error)
//   returnNestedPromise(ms, x) {value: <promise of x after ms>}: sent as ["promise", -n] and
//                              resolved later, like callSquare's result
//
// Batch sessions: unlike `nodeHttpBatchRpcResponse` (which never ends its server-side session,
// so everything a batch exported stays alive forever), the batch session here is ended once its
// response is written, which disposes its exports: "session end releases everything" then holds
// for batches too. A batch that aborts (malformed input) is answered 200 with the frames the
// session sent, ending with its `["abort", ...]` frame, instead of crashing the process.

import http from "node:http";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { WebSocketServer } from "ws";
import { RpcPromise, RpcSession, RpcTarget, WebSocketTransport } from "capnweb";
import { Digest, patternBytes } from "./lib/bytes.mjs";

const MAX_DELAY_MS = 10_000;
const MAX_STREAM_NUMBERS = 1e9;
const MAX_STREAM_BYTES = 2 ** 31;
const MAX_STREAM_CHUNK = 1 << 20;
const FAILING_STREAM_DELAY_MS = 1000;

/**
 * Bookkeeping for every session this process has served, kept after the session ends:
 * sessionId -> {live, stream}. `live` counts live Counters; `stream` is the status record
 * `{produced, state, reason}` of the session's most recent streamNumbers/streamBytes stream.
 */
const sessions = new Map();

/** `value` as an integer in [min, max], or a RangeError naming `what`. */
function integerArg(value, min, max, what) {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${what} must be an integer in [${min}, ${max}], got ${value}`);
  }
  return value;
}

/** `ms` clamped to [0, MAX_DELAY_MS]. */
function delayOf(ms) {
  return Math.min(Math.max(Number(ms) || 0, 0), MAX_DELAY_MS);
}

/** A cancel reason as a string: an Error's message, else the reason itself in text. */
function reasonText(reason) {
  return reason instanceof Error ? reason.message : String(reason);
}

/** A Headers' pairs sorted by name, then by value. */
function sortedPairs(headers) {
  const compare = (x, y) => (x < y ? -1 : x > y ? 1 : 0);
  return [...headers].sort(([an, av], [bn, bv]) => compare(an, bn) || compare(av, bv));
}

/** A string body as UTF-8 bytes (no implicit content-type), or no body for null. */
function bodyOf(text) {
  return text === null || text === undefined ? null : new TextEncoder().encode(text);
}

/**
 * A pull-based stream of `count` chunks made by `chunkAt(i)` on demand (nothing is generated
 * ahead of the consumer's reads), reporting into the status record `status`.
 */
function generatedStream(count, chunkAt, status) {
  return new ReadableStream({
    pull(controller) {
      if (status.produced < count) controller.enqueue(chunkAt(status.produced++));
      if (status.produced >= count) {
        status.state = "closed";
        controller.close();
      }
    },
    cancel(reason) {
      if (status.state !== "open") return;
      status.state = "cancelled";
      status.reason = reasonText(reason);
    },
  }, { highWaterMark: 0 });
}

/** Reads `readable` to its end, handing each chunk to `onChunk`; rethrows its error. */
async function readAll(readable, onChunk) {
  const reader = readable.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      onChunk(value);
    }
  } finally {
    reader.releaseLock();
  }
}

/** A Counter capability; reports its release (all stubs for its export gone) exactly once. */
class Counter extends RpcTarget {
  #value;
  #onRelease;

  constructor(value, onRelease) {
    super();
    this.#value = value;
    this.#onRelease = onRelease;
  }

  increment(amount = 1) {
    this.#value += amount;
    return this.#value;
  }

  get value() {
    return this.#value;
  }

  [Symbol.dispose]() {
    const onRelease = this.#onRelease;
    this.#onRelease = undefined;
    onRelease?.();
  }
}

/** Keeps a client function alive after makeCallbackHolder returns; releases it on dispose. */
class CallbackHolder extends RpcTarget {
  #func;

  constructor(func) {
    super();
    // Stubs received as parameters are disposed when the call returns: keep our own duplicate.
    this.#func = func.dup();
  }

  async invoke(x) {
    return await this.#func(x);
  }

  [Symbol.dispose]() {
    this.#func[Symbol.dispose]();
  }
}

const ERROR_TYPES = { Error, TypeError, RangeError };

/** The main capability; one instance per session. */
class TestTarget extends RpcTarget {
  #id = randomUUID();
  #state = { live: 0, stream: null };
  #session = undefined;

  constructor() {
    super();
    sessions.set(this.#id, this.#state);
  }

  /** Called once the RpcSession serving this target exists (for getStats). */
  attach(session) {
    this.#session = session;
  }

  #newCounter(value) {
    const state = this.#state;
    state.live += 1;
    return new Counter(value, () => { state.live -= 1; });
  }

  // --- Contract methods (INTEROP-CONTRACT.md section 5) ---

  square(i) {
    return i * i;
  }

  callSquare(self, i) {
    // Deliberately not awaited: the result carries a promise, sent as ["promise", -n].
    return { result: self.square(i) };
  }

  async callFunction(func, i) {
    return { result: await func(i) };
  }

  throwError() {
    throw new RangeError("test error");
  }

  throwTypedError(name, message) {
    const ErrorType = Object.hasOwn(ERROR_TYPES, name) ? ERROR_TYPES[name] : Error;
    throw new ErrorType(message);
  }

  makeCounter(i = 0) {
    return this.#newCounter(i);
  }

  makeCounters(values) {
    return { counters: values.map(v => this.#newCounter(v)), count: values.length };
  }

  incrementCounter(counter, i = 1) {
    return counter.increment(i);
  }

  generateFibonacci(n) {
    const result = [];
    for (let a = 0, b = 1; result.length < n; [a, b] = [b, a + b]) result.push(a);
    return result;
  }

  returnNull() {
    return null;
  }

  returnUndefined() {
    return undefined;
  }

  returnNumber(i) {
    return i;
  }

  echo(x) {
    return x;
  }

  async delayedEcho(ms, x) {
    await sleep(delayOf(ms));
    return x;
  }

  makeCallbackHolder(func) {
    return new CallbackHolder(func);
  }

  getSessionId() {
    return this.#id;
  }

  getLiveCounters(sessionId = undefined) {
    return this.#sessionState(sessionId).live;
  }

  #sessionState(sessionId) {
    const id = sessionId ?? this.#id;
    const state = sessions.get(id);
    if (state === undefined) throw new Error(`unknown session id: ${id}`);
    return state;
  }

  #newStreamStatus() {
    const status = { produced: 0, state: "open", reason: null };
    this.#state.stream = status;
    return status;
  }

  // --- Streams, blobs, Request/Response (INTEROP-CONTRACT.md section 6.3) ---

  streamNumbers(n) {
    const count = integerArg(n, 0, MAX_STREAM_NUMBERS, "n");
    return generatedStream(count, i => i, this.#newStreamStatus());
  }

  streamBytes(total, chunk) {
    const size = integerArg(total, 0, MAX_STREAM_BYTES, "total");
    const chunkSize = integerArg(chunk, 1, MAX_STREAM_CHUNK, "chunk");
    const count = Math.ceil(size / chunkSize);
    return generatedStream(count, i => {
      const offset = i * chunkSize;
      return new Uint8Array(patternBytes(offset, Math.min(chunkSize, size - offset)));
    }, this.#newStreamStatus());
  }

  streamStatus(sessionId = undefined) {
    const status = this.#sessionState(sessionId).stream;
    return status === null ? { produced: 0, state: "none", reason: null } : { ...status };
  }

  failingStream(n, message) {
    const count = integerArg(n, 0, MAX_STREAM_NUMBERS, "n");
    let next = 0;
    return new ReadableStream({
      async pull(controller) {
        if (next < count) {
          controller.enqueue(next++);
          return;
        }
        await sleep(FAILING_STREAM_DELAY_MS);
        controller.error(new Error(message));
      },
    }, { highWaterMark: 0 });
  }

  async sumStream(readable) {
    let sum = 0;
    await readAll(readable, chunk => { sum += chunk; });
    return sum;
  }

  async digestStream(readable, delayMs = 0) {
    await sleep(delayOf(delayMs));
    const digest = new Digest();
    await readAll(readable, chunk => digest.update(chunk));
    return digest.result();
  }

  echoStream(readable) {
    // Take the reader now: a stream parameter still unlocked when the call returns is cancelled.
    const reader = readable.getReader();
    return new ReadableStream({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    }, { highWaterMark: 0 });
  }

  async writeNumbers(writable, n) {
    const count = integerArg(n, 0, MAX_STREAM_NUMBERS, "n");
    const writer = writable.getWriter();
    for (let i = 0; i < count; i++) {
      await writer.ready;  // flow control: wait while the window is full
      writer.write(i).catch(() => {});  // a failure also fails close() below
    }
    await writer.close();
    return count;
  }

  async abortWritable(writable, reason) {
    await writable.abort(new Error(reason));
    return null;
  }

  echoBlob(blob) {
    return blob;
  }

  blobInfo(blob) {
    return { size: blob.size, type: blob.type };
  }

  async echoRequest(request) {
    return {
      method: request.method,
      url: request.url,
      headers: sortedPairs(request.headers),
      body: request.body === null ? null : await request.text(),
    };
  }

  makeRequest(method, url, headers, body) {
    // Bytes rather than a string: a string body would add a default content-type header.
    return new Request(url, { method, headers, body: bodyOf(body) });
  }

  async describeResponse(response) {
    return {
      status: response.status,
      statusText: response.statusText,
      headers: sortedPairs(response.headers),
      body: response.body === null ? null : await response.text(),
    };
  }

  makeResponse(status, body, headers) {
    return new Response(bodyOf(body), { status, headers });
  }

  // --- Test-only extras (see the header comment) ---

  getStats() {
    return this.#session?.getStats() ?? null;
  }

  async callTwice(func, x) {
    return [await func(x), await func(x + 1)];
  }

  async callMethod(cap, name, args = []) {
    return await cap[name](...args);
  }

  async getProperty(cap, name) {
    return await cap[name];
  }

  throwValue(v) {
    throw v;
  }

  returnNestedPromise(ms, x) {
    return { value: new RpcPromise(this.delayedEcho(ms, x)) };
  }
}

/** A new RpcSession with its own TestTarget. */
function newSession(transport) {
  const target = new TestTarget();
  const session = new RpcSession(transport, target);
  target.attach(session);
  return session;
}

/**
 * Server end of one HTTP batch: feeds the request's messages in order, collects what the session
 * sends, and ends the session (receive() rejects) once `end()` is called.
 */
class BatchServerTransport {
  #incoming;
  #outgoing = [];
  #open = true;
  #allReceived = Promise.withResolvers();
  #ended = Promise.withResolvers();

  constructor(messages) {
    this.#incoming = messages;
    // Either may reject with nobody listening (an aborted session no longer reads).
    this.#allReceived.promise.catch(() => {});
    this.#ended.promise.catch(() => {});
  }

  send(message) {
    if (this.#open) this.#outgoing.push(message);
  }

  receive() {
    const next = this.#incoming.shift();
    if (next !== undefined) return Promise.resolve(next);
    this.#allReceived.resolve();
    return this.#ended.promise;
  }

  abort(reason) {
    this.#allReceived.reject(reason);
  }

  /** Settles once every request message was read (rejects if the session aborted first). */
  get allReceived() {
    return this.#allReceived.promise;
  }

  /** The response body: everything sent so far; later sends are dropped. */
  close() {
    this.#open = false;
    return this.#outgoing.join("\n");
  }

  /** Ends the session: its read loop fails, which disposes every export. */
  end() {
    this.#ended.reject(new Error("HTTP batch session ended."));
  }
}

async function readBody(request) {
  const chunks = [];
  for await (const chunk of request) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

async function serveBatch(request, response) {
  const body = await readBody(request);
  const transport = new BatchServerTransport(body === "" ? [] : body.split("\n"));
  const session = newSession(transport);
  try {
    await transport.allReceived;
    await session.drain();
  } catch (err) {
    // The session aborted; its abort frame is already among the outgoing messages.
    console.error(`batch session aborted: ${err?.message ?? err}`);
  }
  response.writeHead(200, { "Content-Type": "text/plain;charset=UTF-8" });
  response.end(transport.close());
  transport.end();
}

function pathOf(request) {
  return new URL(request.url ?? "/", "http://localhost").pathname;
}

const wss = new WebSocketServer({ noServer: true });
wss.on("connection", socket => {
  newSession(new WebSocketTransport(socket));
});

const server = http.createServer((request, response) => {
  if (pathOf(request) !== "/rpc") {
    response.writeHead(404).end();
  } else if (request.method !== "POST") {
    response.writeHead(405, { Allow: "POST" }).end("This endpoint only accepts POST requests.");
  } else {
    serveBatch(request, response).catch(err => {
      console.error("batch request failed:", err);
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  }
});

server.on("upgrade", (request, socket, head) => {
  if (pathOf(request) !== "/rpc") {
    socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    return;
  }
  wss.handleUpgrade(request, socket, head, ws => wss.emit("connection", ws, request));
});

function parsePort(argv) {
  const i = argv.indexOf("--port");
  const raw = i >= 0 ? argv[i + 1] : process.env.PORT;
  const port = Number(raw ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`invalid port: ${raw}`);
    process.exit(2);
  }
  return port;
}

// Keep serving other sessions whatever one session does, but say so loudly.
process.on("unhandledRejection", reason => {
  console.error("unhandled rejection:", reason);
});

function shutdown() {
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

server.listen(parsePort(process.argv.slice(2)), "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});
