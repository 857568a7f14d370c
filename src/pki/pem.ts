/** PEM bundles: pure functions over text. */
import { X509Certificate } from 'node:crypto';

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
