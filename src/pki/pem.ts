/**
 * The one PEM decoder, in three shapes: certificate bundles as text (`pemBlocks`,
 * `parseCertificateBundle`), one DER object given as PEM or bare base64 (`decodePemOrBase64`, a
 * CSR in a JSON body), and CRL files and downloads of any size as bytes (`decodeDerOrPem`).
 *
 * A million-entry CRL is ~63 MB of PEM. Decoding it in one `Buffer.from(text, 'base64')` (plus
 * turning the file into one string first) blocks the event loop for tens of ms, so
 * `decodeDerOrPem` decodes the base64 body straight from the Buffer in 64 KB pieces, yielding to
 * the event loop every few ms. Pieces stay under V8's large-object size so their temporary
 * strings die young (1 MB pieces caused old-space collections of 5-8 ms each).
 */
import { X509Certificate } from 'node:crypto';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { SidecarError } from '../errors.js';

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?\r?\n-----END \1-----/g;

/** Every PEM block of one label in a text, in order (e.g. all `CERTIFICATE`s of a bundle). */
export function pemBlocks(text: string, label: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) if (m[1] === label) out.push(`${m[0]}\n`);
  return out;
}

/**
 * Parses every certificate of a PEM bundle. Throws (Node's error, with the block's index in the
 * message) on a block that does not parse; returns [] for a text with no certificate block.
 */
export function parseCertificateBundle(text: string): X509Certificate[] {
  return pemBlocks(text, 'CERTIFICATE').map((pem, i) => {
    try {
      return new X509Certificate(pem);
    } catch (cause) {
      throw new Error(`certificate #${i + 1} does not parse: ${(cause as Error).message}`, { cause });
    }
  });
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * The DER of one object given as a PEM block whose label matches `labels` (the first such block;
 * the lines around it are ignored) or as bare base64, whitespace allowed either way; undefined if
 * it is neither or the result does not start like DER (a SEQUENCE). Sync; pure.
 */
export function decodePemOrBase64(text: string, labels: RegExp): Buffer | undefined {
  const pem = new RegExp(`-----BEGIN (?:${labels.source})-----([A-Za-z0-9+/=\\s]+)-----END (?:${labels.source})-----`).exec(text);
  const b64 = (pem ? pem[1]! : text).replace(/\s+/g, '');
  if (!b64 || !BASE64.test(b64)) return undefined;
  const der = Buffer.from(b64, 'base64');
  return der.length > 0 && der[0] === 0x30 ? der : undefined;
}

const PIECE = 64 * 1024;
const SLICE_MS = 5;

function pemError(message: string): SidecarError {
  return new SidecarError('ERR_PKI', 'pem', message);
}

/**
 * Decodes the base64 body starting at `start` up to the next '-' (where the END line begins; '-'
 * is not in the base64 alphabet), skipping whitespace, in slices. Searching for the END marker
 * up front would itself scan 60 MB in one go.
 */
async function decodeBody(bytes: Buffer, start: number): Promise<{ der: Buffer; stop: number }> {
  // Decoded into one buffer sized for the worst case (untouched pages cost nothing): no 47 MB
  // concat copy at the end.
  const out = Buffer.allocUnsafe(Math.ceil(((bytes.length - start) * 3) / 4));
  let written = 0;
  let carry = '';
  let pos = start;
  let sliceStart = performance.now();
  for (;;) {
    if (performance.now() - sliceStart >= SLICE_MS) {
      await yieldToEventLoop();
      sliceStart = performance.now();
    }
    const window = bytes.subarray(pos, Math.min(bytes.length, pos + PIECE));
    const dash = window.indexOf(0x2d);
    const sliceEnd = dash < 0 ? pos + window.length : pos + dash;
    const text = carry + bytes.toString('latin1', pos, sliceEnd).replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/=]*$/.test(text)) throw pemError('invalid characters in PEM body');
    // Decode whole 4-character groups only; the remainder joins the next slice.
    const whole = text.length - (text.length % 4);
    written += out.write(text.slice(0, whole), written, 'base64');
    carry = text.slice(whole);
    pos = sliceEnd;
    if (dash >= 0 || pos >= bytes.length) break;
  }
  if (carry !== '') throw pemError('truncated PEM body');
  return { der: out.subarray(0, written), stop: pos };
}

/**
 * Returns the DER blobs in `bytes`: the input itself if it is DER (starts with a SEQUENCE), else
 * every `-----BEGIN <label>-----` block of a PEM text, in order. Async (yields while decoding
 * large PEM); rejects with `SidecarError` (fault 'pem') if neither form is found or a block is
 * malformed or unterminated.
 */
export async function decodeDerOrPem(bytes: Buffer, label: string): Promise<Buffer[]> {
  if (bytes[0] === 0x30) return [bytes];
  const begin = Buffer.from(`-----BEGIN ${label}-----`, 'latin1');
  const end = Buffer.from(`-----END ${label}-----`, 'latin1');
  const blobs: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const b = bytes.indexOf(begin, pos);
    if (b < 0) break;
    const { der, stop } = await decodeBody(bytes, b + begin.length);
    if (!bytes.subarray(stop, stop + end.length).equals(end)) throw pemError(`unterminated PEM block "${label}"`);
    if (der[0] !== 0x30) throw pemError(`PEM block "${label}" is not DER`);
    blobs.push(der);
    pos = stop + end.length;
  }
  if (blobs.length === 0) throw pemError(`neither DER nor PEM "${label}"`);
  return blobs;
}
