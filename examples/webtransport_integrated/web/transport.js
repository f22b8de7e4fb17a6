// A capnweb RpcTransport over WebTransport, as docs/guide.md ("The framing") shows it: one
// bidirectional stream, each message its JSON text followed by "\n".

export class WebTransportRpc {
  #reader;
  #writer;
  #lines = [];
  #rest = "";

  constructor(wt, stream) {
    this.wt = wt;
    this.#reader = stream.readable.pipeThrough(new TextDecoderStream()).getReader();
    this.#writer = stream.writable.getWriter();
  }

  async send(message) {
    await this.#writer.write(new TextEncoder().encode(message + "\n"));
  }

  async receive() {
    while (this.#lines.length === 0) {
      const { value, done } = await this.#reader.read();
      if (done) throw new Error("WebTransport stream closed");
      const parts = (this.#rest + value).split("\n");
      this.#rest = parts.pop();
      this.#lines.push(...parts.filter((line) => line !== ""));
    }
    return this.#lines.shift();
  }

  abort(reason) {
    // what was written goes first (the last message is often an abort)
    const close = () => this.wt.close({ closeCode: 1, reason: String(reason).slice(0, 200) });
    this.#writer.close().then(close, close);
  }
}

// A WebTransport session to `url`, trusting the certificate of SHA-256 `hashHex` (none: the
// browser's CAs), and the RpcTransport on its stream.
export async function openWebTransport(url, hashHex) {
  const options = {};
  if (hashHex) {
    const value = Uint8Array.from(hashHex.match(/../g).map((h) => parseInt(h, 16)));
    options.serverCertificateHashes = [{ algorithm: "sha-256", value }];
  }
  const wt = new WebTransport(url, options);
  await wt.ready;
  const stream = await wt.createBidirectionalStream();
  return new WebTransportRpc(wt, stream);
}
