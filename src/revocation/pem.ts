/**
 * DER-or-PEM input handling for CRL files and downloads.
 *
 * A million-entry CRL is ~63 MB of PEM. Decoding it in one `Buffer.from(text, 'base64')` (plus
 * turning the file into one string first) blocks the event loop for tens of ms, so the base64 body
 * is decoded straight from the Buffer in 64 KB pieces, yielding to the event loop every few ms.
 * Pieces stay under V8's large-object size so their temporary strings die young (1 MB pieces
 * caused old-space collections of 5-8 ms each).
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { SidecarError } from '../errors.js';

const PIECE = 64 * 1024;
const SLICE_MS = 5;

function pemError(message: string): SidecarError {
  return new SidecarError('ERR_REVOCATION_SOURCE', 'pem', message);
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
