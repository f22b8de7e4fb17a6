// Byte helpers shared by the reference server and the stream scenarios: the `streamBytes`
// pattern (byte i of the stream is i % 251) and the `digestStream` digest (length, byte sum
// mod 2^32, Adler-32 as in RFC 1950 / Python's zlib.adler32).

const ADLER_MOD = 65521;
// Largest run of bytes whose sums cannot exceed 2^32 before a modulo (zlib's NMAX).
const ADLER_RUN = 5552;
const PATTERN_PERIOD = 251;
const MAX_PATTERN_CHUNK = 1 << 20;

/** Bytes i % 251 for i in 0 .. 1 MiB + 250: any slice of the pattern is a subarray of it. */
const PATTERN = Buffer.from(
    Uint8Array.from({ length: MAX_PATTERN_CHUNK + PATTERN_PERIOD }, (_, i) => i % PATTERN_PERIOD));

/**
 * Bytes `offset .. offset + length - 1` of the `streamBytes` pattern (`length` at most 1 MiB), as a
 * read-only view: copy it before changing it.
 */
export function patternBytes(offset, length) {
  if (length > MAX_PATTERN_CHUNK) throw new RangeError(`pattern slices are at most 1 MiB`);
  const start = offset % PATTERN_PERIOD;
  return PATTERN.subarray(start, start + length);
}

/** Incremental `{bytes, sum, adler32}` of a byte sequence fed in pieces. */
export class Digest {
  #bytes = 0;
  #sum = 0;
  #a = 1;
  #b = 0;

  /** Adds `chunk` (a Uint8Array) to the digest. */
  update(chunk) {
    let a = this.#a;
    let b = this.#b;
    let sum = 0;
    for (let i = 0; i < chunk.length;) {
      const end = Math.min(i + ADLER_RUN, chunk.length);
      for (; i < end; i++) {
        const byte = chunk[i];
        sum += byte;
        a += byte;
        b += a;
      }
      a %= ADLER_MOD;
      b %= ADLER_MOD;
    }
    this.#a = a;
    this.#b = b;
    this.#sum = (this.#sum + sum) % 2 ** 32;
    this.#bytes += chunk.length;
    return this;
  }

  /** The digest of everything fed so far, as `digestStream` returns it. */
  result() {
    return { bytes: this.#bytes, sum: this.#sum, adler32: this.#b * 65536 + this.#a };
  }
}
