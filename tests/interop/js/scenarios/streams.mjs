// Contract section 6: streams, Blobs, Request/Response, URL and Headers.
//
// Reading anything the server sends (a stream, a Blob, a Request/Response body) needs the client
// to answer while the call runs, so those scenarios are WebSocket only (6.4); over HTTP batch only
// what 6.5 lists as checked runs. Every WebSocket scenario ends with a leak check: once the
// streams are done, the client's tables must return to the bootstrap entries (6.2 "Release").

import { CheckFailure, assert, assertEqual, assertRejects, show } from "../lib/compare.mjs";
import { BOTH, WS, eventually, scenario, sleep } from "../lib/context.mjs";
import { Digest, patternBytes } from "../lib/bytes.mjs";

const KiB = 1024;
const MiB = 1024 * KiB;
/** The most chunk data a producer may be ahead of what its consumer has read (6.2). */
const MAX_AHEAD = 4 * MiB;
/** Throughput every large transfer must reach (6.2), in MiB/s. */
const MIN_RATE = 4;
/** A "bounded" count of number chunks produced after a cancel (the window is far smaller). */
const MAX_NUMBERS_AFTER_CANCEL = 1_000_000;
/** Large transfers whose rate is checked: they run alone, not beside other scenarios. */
const LARGE = { timeout: 30_000, exclusive: true };
const BASELINE = { imports: 1, exports: 1 };

/**
 * A scenario on a session of its own: `run(api, ctx)`. On WebSocket it ends by checking that the
 * client session's import/export tables are back to the bootstrap entries.
 */
function streamScenario(name, transports, run, options = undefined) {
  return scenario(name, transports, async ctx => {
    if (ctx.transport !== "ws") return await run(ctx.openBatch(), ctx);
    const { api, session } = ctx.openWs();
    const detail = await run(api, ctx);
    await eventually(() => assertEqual(session.getStats(), BASELINE,
        "client tables after the scenario (a stream, Blob or body was not released)"),
    { timeout: 3000 });
    return detail;
  }, options);
}

/** Every chunk of `stream`, read to its end. */
async function readAll(stream) {
  assert(stream instanceof ReadableStream, `expected a ReadableStream, got ${show(stream)}`);
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

/**
 * Reads `stream` until it fails; returns `{chunks, error}`. Fails if the stream ends normally.
 */
async function readUntilError(stream) {
  const reader = stream.getReader();
  const chunks = [];
  for (;;) {
    let result;
    try {
      result = await reader.read();
    } catch (error) {
      return { chunks, error };
    }
    if (result.done) throw new CheckFailure(`stream ended without an error after ${show(chunks)}`);
    chunks.push(result.value);
  }
}

/** Fails unless `error` is exactly an `ErrorClass` with `message`. */
function assertError(error, ErrorClass, message, what) {
  const ok = error instanceof Error && Object.getPrototypeOf(error) === ErrorClass.prototype &&
      error.message === message;
  if (!ok) {
    throw new CheckFailure(`${what}: expected ${ErrorClass.name}(${JSON.stringify(message)}), ` +
        `got ${show(error)}`);
  }
}

/** Fails unless `chunks` is a prefix of `expected` (a reader may drop unread chunks on abort). */
function assertPrefix(chunks, expected, what) {
  assert(chunks.length <= expected.length, `${what}: too many chunks ${show(chunks)}`);
  assertEqual(chunks, expected.slice(0, chunks.length), what);
}

/**
 * Polls `read()` until it returns the same value for `quiet` ms, and returns that value; fails if
 * it keeps changing until `timeout`. Observes that a producer has stopped.
 */
async function settled(read, { quiet = 300, interval = 50, timeout = 3000, what = "value" } = {}) {
  const deadline = Date.now() + timeout;
  let last = await read();
  let since = Date.now();
  for (;;) {
    await sleep(interval);
    const value = await read();
    if (value !== last) {
      last = value;
      since = Date.now();
    } else if (Date.now() - since >= quiet) {
      return value;
    }
    if (Date.now() >= deadline) {
      throw new CheckFailure(`${what} still changing after ${timeout} ms (last ${show(value)})`);
    }
  }
}

/**
 * A client ReadableStream that makes `chunkAt(i)` for i = 0 .. count-1 on demand (count may be
 * Infinity), then closes, or fails with `error` when given. `source.produced` counts the chunks
 * made, `source.cancelled` is the cancel reason once the consumer cancelled (else undefined).
 */
function clientSource(count, chunkAt, error = undefined) {
  const source = { produced: 0, cancelled: undefined, stream: undefined };
  source.stream = new ReadableStream({
    pull(controller) {
      if (source.produced < count) {
        controller.enqueue(chunkAt(source.produced++));
      } else if (error !== undefined) {
        controller.error(error);
      } else {
        controller.close();
      }
    },
    cancel(reason) {
      source.cancelled = reason ?? null;
    },
  }, { highWaterMark: 0 });
  return source;
}

/** A client stream of the given chunks, made on demand. */
function streamOf(chunks, error = undefined) {
  return clientSource(chunks.length, i => chunks[i], error).stream;
}

const range = (n, from = 0) => Array.from({ length: n }, (_, i) => from + i);

/** `{produced, state, reason}` of the session's latest server stream. */
const statusOf = (api, sessionId = undefined) => api.streamStatus(sessionId);

/** Fails unless the server stream's status reaches `state` within ~3 s; returns the status. */
function statusReaches(api, state, sessionId = undefined) {
  return eventually(async () => {
    const status = await statusOf(api, sessionId);
    assertEqual(status.state, state, `streamStatus().state (status ${show(status)})`);
    return status;
  }, { timeout: 3000 });
}

/** Fails unless the server stream's status becomes exactly `expected` within ~3 s. */
function statusBecomes(api, expected, what = "streamStatus()") {
  return eventually(async () => assertEqual(await statusOf(api), expected, what),
      { timeout: 3000 });
}

/** Checks a cancelled stream's status: a string reason, and a producer that stopped. */
async function checkCancelled(api, maxProduced, sessionId = undefined) {
  const status = await statusReaches(api, "cancelled", sessionId);
  assert(typeof status.reason === "string", `cancelled stream's reason: ${show(status.reason)}`);
  const produced = await settled(async () => (await statusOf(api, sessionId)).produced,
      { what: "produced after the cancel" });
  assert(produced <= maxProduced,
      `the server produced ${produced} chunks, more than ${maxProduced}, after the cancel`);
  return produced;
}

/** MiB/s of `bytes` moved since `start`, and a failure if below MIN_RATE. */
function checkRate(bytes, start, what) {
  const ms = Math.max(1, performance.now() - start);
  const rate = bytes / MiB / (ms / 1000);
  const detail = `${what}: ${bytes / MiB} MiB in ${Math.round(ms)} ms (${rate.toFixed(1)} MiB/s)`;
  assert(rate >= MIN_RATE, `${detail}, below ${MIN_RATE} MiB/s`);
  return detail;
}

/**
 * Checks `chunk` (number `index`) of a `streamBytes(total, size)` stream: exactly `size` bytes
 * (the last one shorter), byte i of the stream being i % 251.
 */
function checkPatternChunk(chunk, index, total, size) {
  const offset = index * size;
  const length = Math.min(size, total - offset);
  assert(chunk instanceof Uint8Array, `chunk ${index}: expected a Uint8Array, got ${show(chunk)}`);
  assert(chunk.length === length, `chunk ${index}: expected ${length} bytes, got ${chunk.length}`);
  const view = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
  assert(view.equals(patternBytes(offset, length)), `chunk ${index}: wrong bytes`);
}

/** Reads a whole `streamBytes(total, size)` stream, checking every chunk; returns the count. */
async function readPattern(stream, total, size) {
  const chunks = Math.ceil(total / size);
  let index = 0;
  for await (const chunk of stream) {
    assert(index < chunks, `more than the ${chunks} expected chunks`);
    checkPatternChunk(chunk, index++, total, size);
  }
  assert(index === chunks, `expected ${chunks} chunks, got ${index}`);
  return index;
}

/** Downloads `streamBytes(total, size)`, checking content and rate. */
function download(name, total, size) {
  return streamScenario(name, WS, async api => {
    const start = performance.now();
    await readPattern(await api.streamBytes(total, size), total, size);
    const detail = checkRate(total, start, `streamBytes(${total}, ${size})`);
    await statusBecomes(api, { produced: Math.ceil(total / size), state: "closed", reason: null },
        "streamStatus() after the download");
    return detail;
  }, LARGE);
}

/** A client byte stream of `total` bytes in `size` chunks, and its expected digest. */
function bytesSource(total, size) {
  const count = Math.ceil(total / size);
  // Shifted by 7 so that it is not the server's pattern: nothing can be echoed by accident.
  const chunkAt = i => new Uint8Array(patternBytes(i * size + 7, Math.min(size, total - i * size)));
  const digest = new Digest();
  for (let i = 0; i < count; i++) digest.update(chunkAt(i));
  return { source: clientSource(count, chunkAt), digest: digest.result() };
}

/** Uploads `total` bytes in `size` chunks to `digestStream`, checking the digest and rate. */
function upload(name, total, size) {
  return streamScenario(name, WS, async api => {
    const { source, digest } = bytesSource(total, size);
    const start = performance.now();
    assertEqual(await api.digestStream(source.stream), digest, "digestStream result");
    return checkRate(total, start, `digestStream of ${total} bytes in ${size}-byte chunks`);
  }, LARGE);
}

/** The bytes of `blob`. */
async function blobBytes(blob) {
  return new Uint8Array(await blob.arrayBuffer());
}

/** A Blob of `size` bytes made of 256 KiB parts (one part per message: each stays < 1 MiB). */
function bigBlob(size, type = undefined) {
  const part = 256 * KiB;
  const parts = range(Math.ceil(size / part)).map(i =>
    new Uint8Array(patternBytes(i * part + 3, Math.min(part, size - i * part))));
  return { blob: new Blob(parts, type === undefined ? {} : { type }), parts };
}

/** Fails unless `blob` is a Blob with exactly `bytes` and `type`. */
async function checkBlob(blob, bytes, type, what) {
  assert(blob instanceof Blob, `${what}: expected a Blob, got ${show(blob)}`);
  assertEqual(blob.type, type, `${what}: type`);
  assertEqual(blob.size, bytes.length, `${what}: size`);
  const view = Buffer.from(await blobBytes(blob));
  assert(view.equals(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)),
      `${what}: different bytes`);
}

/** Echoes a Blob of `bytes` (with `type`, or none) and checks what comes back. */
function echoBlob(name, bytes, type = undefined, options = undefined) {
  return streamScenario(`blobs.${name}`, WS, async api => {
    const blob = new Blob([bytes], type === undefined ? {} : { type });
    await checkBlob(await api.echoBlob(blob), bytes, type ?? "", "echoBlob");
  }, options);
}

const utf8 = text => new TextEncoder().encode(text);

/** `[...headers]`: a Request's or Response's header pairs as a client sees them. */
const pairs = headers => [...headers];

const URL_1 = "https://example.com/a/b?q=1&r=%C3%A9";
const URL_2 = "http://127.0.0.1:8080/upload";

/** Stream chunks of every kind of value (section 4). */
const ANY_VALUES = [
  1, -0.5, "two", "", null, undefined, true, 5n, -(2n ** 70n), new Date(-3), Infinity, NaN,
  new Uint8Array([0, 1, 255]), new Uint8Array(0), [], [1, [2, []]], {}, { a: { b: [undefined] } },
  ["import", 0], new RangeError("a value, not a failure"),
];

export const scenarios = [
  // --- Server streams read by the client (WebSocket only) ---

  streamScenario("streams.numbers", WS, async api => {
    assertEqual(await readAll(await api.streamNumbers(5)), range(5), "streamNumbers(5)");
    await statusBecomes(api, { produced: 5, state: "closed", reason: null });
  }),

  streamScenario("streams.numbers_empty", WS, async api => {
    assertEqual(await readAll(await api.streamNumbers(0)), [], "streamNumbers(0)");
    await statusBecomes(api, { produced: 0, state: "closed", reason: null });
  }),

  streamScenario("streams.numbers_many", WS, async api => {
    assertEqual(await readAll(await api.streamNumbers(20_000)), range(20_000),
        "streamNumbers(20000)");
  }, { timeout: 10_000 }),

  streamScenario("streams.two_at_once", WS, async api => {
    // Two streams of one session, read one after the other.
    const [a, b] = await Promise.all([api.streamNumbers(3), api.streamNumbers(2)]);
    assertEqual(await readAll(b), range(2), "second stream");
    assertEqual(await readAll(a), range(3), "first stream");
  }),

  streamScenario("streams.bytes", WS, async api => {
    assertEqual(await readPattern(await api.streamBytes(1000, 64), 1000, 64), 16, "chunks");
  }),

  streamScenario("streams.bytes_exact_chunks", WS, async api => {
    assertEqual(await readPattern(await api.streamBytes(4096, 1024), 4096, 1024), 4, "chunks");
  }),

  streamScenario("streams.bytes_empty", WS, async api => {
    assertEqual(await readAll(await api.streamBytes(0, 16)), [], "streamBytes(0, 16)");
  }),

  streamScenario("streams.bytes_one_byte_chunks", WS, async api => {
    assertEqual(await readPattern(await api.streamBytes(600, 1), 600, 1), 600, "chunks");
  }),

  streamScenario("streams.status_none", WS, async api => {
    assertEqual(await statusOf(api), { produced: 0, state: "none", reason: null },
        "streamStatus() before any stream");
  }),

  streamScenario("streams.status_unknown_session", WS, async api => {
    await assertRejects(api.streamStatus("no-such-session"), undefined, undefined,
        "streamStatus(unknown id)");
  }),

  streamScenario("streams.status_most_recent", WS, async api => {
    await readAll(await api.streamNumbers(3));
    const pending = await api.streamNumbers(1_000_000_000);
    const reader = pending.getReader();
    assertEqual((await reader.read()).value, 0, "first chunk of the second stream");
    const status = await statusOf(api);
    assertEqual(status.state, "open", `streamStatus() of the open stream (${show(status)})`);
    assert(status.produced >= 1 && status.reason === null, `streamStatus(): ${show(status)}`);
    await reader.cancel(new Error("done"));
    await statusReaches(api, "cancelled");
  }),

  download("streams.download_16mib_64kib", 16 * MiB, 64 * KiB),
  download("streams.download_64mib_1mib", 64 * MiB, MiB),

  // --- Server stream errors ---

  streamScenario("streams.failing", WS, async api => {
    const { chunks, error } = await readUntilError(await api.failingStream(3, "stream broke"));
    assertEqual(chunks, range(3), "chunks before the error");
    assertError(error, Error, "stream broke", "read error");
  }),

  streamScenario("streams.failing_at_once", WS, async api => {
    const { chunks, error } = await readUntilError(await api.failingStream(0, "nothing ü 😀"));
    assertEqual(chunks, [], "chunks before the error");
    assertError(error, Error, "nothing ü 😀", "read error");
  }),

  // --- Cancellation of server streams by the client ---

  streamScenario("streams.cancel_numbers", WS, async api => {
    const reader = (await api.streamNumbers(1_000_000_000)).getReader();
    for (const i of range(5)) assertEqual((await reader.read()).value, i, `chunk ${i}`);
    await reader.cancel(new Error("enough"));
    return `produced ${await checkCancelled(api, MAX_NUMBERS_AFTER_CANCEL)}`;
  }),

  streamScenario("streams.cancel_bytes", WS, async api => {
    const size = 64 * KiB;
    const total = 2 ** 31;
    const reader = (await api.streamBytes(total, size)).getReader();
    for (const i of range(3)) checkPatternChunk((await reader.read()).value, i, total, size);
    await reader.cancel(new Error("enough bytes"));
    const produced = await checkCancelled(api, 3 + (MAX_AHEAD + size) / size);
    return `produced ${produced} chunks of 64 KiB`;
  }),

  streamScenario("streams.cancel_by_dispose", WS, async api => {
    const stream = await api.streamNumbers(1_000_000_000);
    stream[Symbol.dispose]();  // dropped unread
    return `produced ${await checkCancelled(api, MAX_NUMBERS_AFTER_CANCEL)}`;
  }),

  scenario("streams.cancel_by_session_end", WS, async ctx => {
    const first = ctx.openWs();
    const id = await first.api.getSessionId();
    const reader = (await first.api.streamNumbers(1_000_000_000)).getReader();
    assertEqual((await reader.read()).value, 0, "first chunk");
    first.close();
    const other = ctx.open();
    return `produced ${await checkCancelled(other, MAX_NUMBERS_AFTER_CANCEL, id)}`;
  }, { timeout: 8000 }),

  // --- Flow control of server streams ---

  streamScenario("streams.slow_reader", WS, async api => {
    const size = 64 * KiB;
    const total = 64 * MiB;
    const reader = (await api.streamBytes(total, size)).getReader();
    let read = 0;
    let maxAhead = 0;
    for (; read < 20; read++) {
      checkPatternChunk((await reader.read()).value, read, total, size);
      await sleep(25);  // a slow consumer
      const { produced } = await statusOf(api);
      maxAhead = Math.max(maxAhead, (produced - read - 1) * size);
      assert(maxAhead <= MAX_AHEAD + size,
          `after ${read + 1} chunks read the server had produced ${produced} chunks of 64 KiB`);
    }
    // A consumer that stops reading stops the producer.
    const produced = await settled(async () => (await statusOf(api)).produced,
        { what: "produced while the client does not read" });
    const ahead = (produced - read) * size;
    assert(ahead <= MAX_AHEAD + size,
        `the server is ${ahead} bytes ahead of the ${read} chunks read (limit ${MAX_AHEAD})`);
    assertEqual((await statusOf(api)).state, "open", "streamStatus().state while paused");
    await reader.cancel(new Error("slow reader done"));
    await statusReaches(api, "cancelled");
    return `at most ${Math.max(maxAhead, ahead) / KiB} KiB ahead of the reader`;
  }, { timeout: 15_000 }),

  // --- Client streams read by the server ---

  streamScenario("streams.sum", BOTH, async api => {
    assertEqual(await api.sumStream(streamOf(range(10, 1))), 55, "sumStream(1..10)");
  }),

  streamScenario("streams.sum_empty", BOTH, async api => {
    assertEqual(await api.sumStream(streamOf([])), 0, "sumStream(empty)");
  }),

  streamScenario("streams.sum_many", WS, async api => {
    assertEqual(await api.sumStream(streamOf(range(20_000))), 199_990_000, "sumStream(0..19999)");
  }, { timeout: 10_000 }),

  streamScenario("streams.sum_failing", WS, async api => {
    const stream = streamOf([1, 2, 3], new TypeError("bad chunk"));
    await assertRejects(api.sumStream(stream), TypeError, "bad chunk", "sumStream(failing)");
  }),

  streamScenario("streams.sum_failing_at_once", WS, async api => {
    const stream = streamOf([], new RangeError("no chunks at all"));
    await assertRejects(api.sumStream(stream), RangeError, "no chunks at all",
        "sumStream(failing at once)");
  }),

  streamScenario("streams.digest", BOTH, async api => {
    // Small enough to travel whole in one batch (6.5).
    const chunks = [utf8("hello"), new Uint8Array(0), Uint8Array.from(range(256)),
      new Uint8Array(100_000).fill(0xff), new Uint8Array([0, 1, 2])];
    const expected = new Digest();
    for (const chunk of chunks) expected.update(chunk);
    assertEqual(await api.digestStream(streamOf(chunks)), expected.result(), "digestStream");
  }),

  streamScenario("streams.digest_empty", BOTH, async api => {
    assertEqual(await api.digestStream(streamOf([])), { bytes: 0, sum: 0, adler32: 1 },
        "digestStream(empty)");
  }),

  streamScenario("streams.digest_known_value", BOTH, async api => {
    // zlib.adler32(b"Wikipedia") == 0x11E60398
    assertEqual(await api.digestStream(streamOf([utf8("Wiki"), utf8("pedia")])),
        { bytes: 9, sum: 919, adler32: 0x11e60398 }, "digestStream(Wikipedia)");
  }),

  streamScenario("streams.digest_failing", WS, async api => {
    const stream = streamOf([new Uint8Array(1000)], new TypeError("disk on fire"));
    await assertRejects(api.digestStream(stream), TypeError, "disk on fire",
        "digestStream(failing)");
  }),

  upload("streams.upload_16mib_64kib", 16 * MiB, 64 * KiB),
  upload("streams.upload_64mib_512kib", 64 * MiB, 512 * KiB),

  // The server waits before reading: the client producer must be held back by the window.
  streamScenario("streams.upload_backpressure", WS, async api => {
    const size = 64 * KiB;
    const delay = 3000;
    const { source, digest } = bytesSource(32 * MiB, size);
    const start = Date.now();
    const result = api.digestStream(source.stream, delay);
    const produced = await settled(() => source.produced,
        { what: "chunks the client produced while the server was not reading",
          timeout: delay - 500 });
    assert(produced * size <= MAX_AHEAD + size,
        `the client produced ${produced * size} bytes while the server was not reading ` +
        `(limit ${MAX_AHEAD})`);
    assertEqual(await result, digest, "digestStream result");
    const waited = Date.now() - start;
    assert(waited >= delay - 50, `digestStream returned after ${waited} ms, before its delay`);
    return `the client was ${produced * size / KiB} KiB ahead while the server waited`;
  }, { timeout: 20_000 }),

  // --- Streams that stay on the server (also in a batch, 6.5) ---

  streamScenario("streams.sum_of_stream_numbers", BOTH, async api => {
    const numbers = api.streamNumbers(100);
    assertEqual(await api.sumStream(numbers), 4950, "sumStream(streamNumbers(100)), pipelined");
    numbers[Symbol.dispose]();  // the pipelined push, never pulled
  }),

  streamScenario("streams.sum_of_echo_stream", BOTH, async api => {
    const echoed = api.echoStream(streamOf(range(10, 1)));
    assertEqual(await api.sumStream(echoed), 55, "sumStream(echoStream(1..10)), pipelined");
    echoed[Symbol.dispose]();  // the pipelined push, never pulled
  }),

  // --- echoStream: a client stream back through the server ---

  streamScenario("streams.echo_numbers", WS, async api => {
    assertEqual(await readAll(await api.echoStream(streamOf(range(100)))), range(100),
        "echoStream(0..99)");
  }),

  streamScenario("streams.echo_any_values", WS, async api => {
    assertEqual(await readAll(await api.echoStream(streamOf(ANY_VALUES))), ANY_VALUES,
        "echoStream(values)");
  }),

  streamScenario("streams.echo_empty", WS, async api => {
    assertEqual(await readAll(await api.echoStream(streamOf([]))), [], "echoStream(empty)");
  }),

  streamScenario("streams.echo_bytes_8mib", WS, async api => {
    const size = 256 * KiB;
    const total = 8 * MiB;
    const chunkAt = i => new Uint8Array(patternBytes(i * size, size));
    const start = performance.now();
    const echoed = await api.echoStream(clientSource(total / size, chunkAt).stream);
    assertEqual(await readPattern(echoed, total, size), total / size, "chunks");
    return checkRate(total, start, "echoStream of 8 MiB");
  }, LARGE),

  streamScenario("streams.echo_failing", WS, async api => {
    const input = streamOf([1, 2, 3], new RangeError("input failed"));
    const { chunks, error } = await readUntilError(await api.echoStream(input));
    assertPrefix(chunks, [1, 2, 3], "chunks before the error");
    assertError(error, RangeError, "input failed", "read error");
  }),

  streamScenario("streams.echo_cancel", WS, async api => {
    const source = clientSource(Infinity, i => i);
    const reader = (await api.echoStream(source.stream)).getReader();
    for (const i of range(3)) assertEqual((await reader.read()).value, i, `chunk ${i}`);
    await reader.cancel(new Error("echo no more"));
    await eventually(() => assert(source.cancelled !== undefined,
        `the client source was not cancelled (produced ${source.produced})`), { timeout: 3000 });
    const produced = await settled(() => source.produced, { what: "client chunks produced" });
    assert(produced <= MAX_NUMBERS_AFTER_CANCEL, `the client produced ${produced} chunks`);
    return `the client produced ${produced} chunks`;
  }),

  // --- WritableStreams the client passes to the server (WebSocket only) ---

  streamScenario("writable.write_numbers", WS, async api => {
    const sink = recordingSink();
    assertEqual(await api.writeNumbers(sink.stream, 5), 5, "writeNumbers(w, 5)");
    assertEqual(sink.events, [["write", 0], ["write", 1], ["write", 2], ["write", 3],
      ["write", 4], ["close"]], "what the client WritableStream saw");
  }),

  streamScenario("writable.write_numbers_empty", WS, async api => {
    const sink = recordingSink();
    assertEqual(await api.writeNumbers(sink.stream, 0), 0, "writeNumbers(w, 0)");
    assertEqual(sink.events, [["close"]], "what the client WritableStream saw");
  }),

  streamScenario("writable.write_numbers_slow_sink", WS, async api => {
    const sink = recordingSink(async i => {
      if (i % 500 === 0) await sleep(20);
    });
    assertEqual(await api.writeNumbers(sink.stream, 5000), 5000, "writeNumbers(w, 5000)");
    assertEqual(sink.events, [...range(5000).map(i => ["write", i]), ["close"]],
        "what the client WritableStream saw");
  }, { timeout: 10_000 }),

  streamScenario("writable.abort", WS, async api => {
    const sink = recordingSink();
    assertEqual(await api.abortWritable(sink.stream, "giving up"), null, "abortWritable");
    await eventually(() => assertEqual(sink.events.map(e => e[0]), ["abort"], "sink events"));
    assertError(sink.events[0][1], Error, "giving up", "abort reason");
  }),

  // --- Blobs ---

  streamScenario("blobs.info_empty", BOTH, async api => {
    assertEqual(await api.blobInfo(new Blob([])), { size: 0, type: "" }, "blobInfo(empty)");
  }),

  streamScenario("blobs.info_typed", BOTH, async api => {
    assertEqual(await api.blobInfo(new Blob(["héllo"], { type: "text/plain;charset=utf-8" })),
        { size: 6, type: "text/plain;charset=utf-8" }, "blobInfo(text)");
  }),

  streamScenario("blobs.info_16kib", BOTH, async api => {
    const blob = new Blob([patternBytes(0, 16 * KiB)], { type: "application/octet-stream" });
    assertEqual(await api.blobInfo(blob), { size: 16 * KiB, type: "application/octet-stream" },
        "blobInfo(16 KiB)");
  }),

  streamScenario("blobs.info_large", WS, async api => {
    const { blob } = bigBlob(6 * MiB + 5);
    assertEqual(await api.blobInfo(blob), { size: 6 * MiB + 5, type: "" }, "blobInfo(6 MiB)");
  }, { timeout: 15_000 }),

  echoBlob("echo_empty", new Uint8Array(0)),
  echoBlob("echo_empty_typed", new Uint8Array(0), "application/x-empty"),
  echoBlob("echo_small", Uint8Array.from(range(256))),
  echoBlob("echo_small_typed", utf8("<p>héllo</p>"), "text/html"),

  streamScenario("blobs.echo_large", WS, async api => {
    const { blob, parts } = bigBlob(5 * MiB + 1);
    await checkBlob(await api.echoBlob(blob), Buffer.concat(parts), "", "echoBlob(5 MiB)");
  }, { timeout: 15_000 }),

  streamScenario("blobs.echo_large_typed", WS, async api => {
    const { blob, parts } = bigBlob(3 * MiB, "image/png");
    await checkBlob(await api.echoBlob(blob), Buffer.concat(parts), "image/png",
        "echoBlob(3 MiB, image/png)");
  }, { timeout: 15_000 }),

  // --- Request / Response ---

  streamScenario("requests.request_with_body", BOTH, async api => {
    const request = new Request(URL_1, {
      method: "POST",
      headers: [["x-b", "2"], ["Content-Type", "text/plain;charset=utf-8"], ["x-a", "1"]],
      body: "héllo, wörld 😀",
    });
    assertEqual(await api.echoRequest(request), {
      method: "POST",
      url: URL_1,
      headers: [["content-type", "text/plain;charset=utf-8"], ["x-a", "1"], ["x-b", "2"]],
      body: "héllo, wörld 😀",
    }, "echoRequest(POST with body)");
  }),

  streamScenario("requests.request_without_body", WS, async api => {
    const request = new Request(URL_2, { headers: { "x-token": "abc", accept: "*/*" } });
    assertEqual(await api.echoRequest(request), {
      method: "GET", url: URL_2, headers: [["accept", "*/*"], ["x-token", "abc"]], body: null,
    }, "echoRequest(GET)");
  }),

  streamScenario("requests.request_delete_no_headers", WS, async api => {
    assertEqual(await api.echoRequest(new Request(URL_1, { method: "DELETE" })),
        { method: "DELETE", url: URL_1, headers: [], body: null }, "echoRequest(DELETE)");
  }),

  streamScenario("requests.make_request_with_body", WS, async api => {
    const headers = [["content-type", "application/json"], ["x-k", "v"]];
    const request = await api.makeRequest("PUT", URL_2, headers, '{"a": "ü"}');
    assert(request instanceof Request, `expected a Request, got ${show(request)}`);
    assertEqual([request.method, request.url, pairs(request.headers)], ["PUT", URL_2, headers],
        "method, url, headers");
    assertEqual(await request.text(), '{"a": "ü"}', "body");
  }),

  streamScenario("requests.make_request_without_body", BOTH, async api => {
    const request = await api.makeRequest("GET", URL_1, [["x-a", "1"], ["x-b", "2"]], null);
    assert(request instanceof Request, `expected a Request, got ${show(request)}`);
    assertEqual([request.method, request.url, pairs(request.headers), request.body],
        ["GET", URL_1, [["x-a", "1"], ["x-b", "2"]], null], "method, url, headers, body");
  }),

  streamScenario("requests.response_with_body", BOTH, async api => {
    const response = new Response("créé", {
      status: 201, statusText: "Created", headers: { "content-type": "text/plain", etag: "x" },
    });
    assertEqual(await api.describeResponse(response), {
      status: 201, statusText: "Created",
      headers: [["content-type", "text/plain"], ["etag", "x"]], body: "créé",
    }, "describeResponse(201 with body)");
  }),

  streamScenario("requests.response_without_body", WS, async api => {
    assertEqual(await api.describeResponse(new Response(null, { status: 204 })),
        { status: 204, statusText: "", headers: [], body: null }, "describeResponse(204)");
  }),

  streamScenario("requests.make_response_with_body", WS, async api => {
    const headers = [["content-type", "text/plain;charset=utf-8"], ["x-b", "2"]];
    const response = await api.makeResponse(202, "accepté", headers);
    assert(response instanceof Response, `expected a Response, got ${show(response)}`);
    assertEqual([response.status, response.statusText, pairs(response.headers)],
        [202, "", headers], "status, statusText, headers");
    assertEqual(await response.text(), "accepté", "body");
  }),

  streamScenario("requests.make_response_without_body", BOTH, async api => {
    const response = await api.makeResponse(404, null, [["x-reason", "missing"]]);
    assert(response instanceof Response, `expected a Response, got ${show(response)}`);
    assertEqual([response.status, response.statusText, pairs(response.headers), response.body],
        [404, "", [["x-reason", "missing"]], null], "status, statusText, headers, body");
  }),

  // --- URL and Headers through echo (section 4, contract v2) ---

  echoValue("url", new URL("https://user:pw@example.com:8443/p/a%20th?q=1&r=%C3%A9#frag")),
  echoValue("url_simple", new URL("http://127.0.0.1/")),
  echoValue("headers", new Headers([["X-B", "2"], ["content-type", "text/plain"], ["x-a", "1"]])),
  echoValue("headers_empty", new Headers()),
  echoValue("headers_repeated_set_cookie",
      new Headers([["set-cookie", "a=1"], ["set-cookie", "b=2"], ["x-v", "ü"]])),
  echoValue("url_headers_nested", {
    list: [new URL("https://example.com/x"), new Headers({ a: "b" })],
    nested: { url: new URL("wss://example.com/rpc"), headers: [new Headers([["k", "v"]])] },
  }),
];

/** `echo(value)` of a contract v2 value, over both transports. */
function echoValue(name, value) {
  return streamScenario(`values.${name}`, BOTH, async api => {
    assertEqual(await api.echo(value), value, `echo(${name})`);
  });
}

/**
 * A client WritableStream recording `["write", chunk]`, `["close"]` and `["abort", reason]` in
 * `events`; `onWrite(chunk)` may delay a write.
 */
function recordingSink(onWrite = undefined) {
  const sink = { events: [], stream: undefined };
  sink.stream = new WritableStream({
    async write(chunk) {
      sink.events.push(["write", chunk]);
      await onWrite?.(chunk);
    },
    close() {
      sink.events.push(["close"]);
    },
    abort(reason) {
      sink.events.push(["abort", reason]);
    },
  });
  return sink;
}
