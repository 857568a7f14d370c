/** `GET /v1/pins`: the signed pin set as a compact JWS (`application/jose`), if pins are configured. */
import type { ServerResponse } from 'node:http';
import { refusal } from '../refusals.js';
import { sendRefusal } from './http-io.js';

/** Where the current signed pin set comes from. */
export interface PinSetSource {
  /** The compact JWS; rejects only if signing failed. */
  current(): Promise<string>;
  /** How long clients may cache it, in seconds. */
  readonly maxAgeSeconds: number;
}

/** Answers with the JWS, 404 when no pins are configured, 500 if signing failed. Never throws. */
export function sendPins(res: ServerResponse, source: PinSetSource | undefined): void {
  if (!source) return void sendRefusal(res, refusal('not_found', 'no pin set is configured'));
  source.current().then(
    (jws) => res.writeHead(200, { 'content-type': 'application/jose', 'cache-control': `public, max-age=${source.maxAgeSeconds}` }).end(jws),
    () => sendRefusal(res, refusal('internal_error', 'the pin set could not be signed')),
  );
}
