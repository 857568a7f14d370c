/**
 * Identity headers: which inbound headers to strip, and the values to set, compiled once from
 * config. Rendering happens once per verified certificate; per request, proxy/upstream-headers.ts
 * applies the plan in its single pass over the client's headers (strip, then append these).
 */
import { encodeHeaderToken, quoteXfccValue, sfBinary, toPem } from '../pki/index.js';
import type { CertIdentity } from './extract.js';

/** Header names (any case) of the identity surface, as configured. */
export interface IdentityHeaderNames {
  readonly verified: string;
  readonly deviceId: string;
  readonly subject: string;
  readonly issuer: string;
  readonly serial: string;
  readonly fingerprint: string;
  readonly notAfter: string;
  readonly sanUri: string;
  readonly sanDns: string;
  readonly certPem: string;
}

/** The identity slice of the config. */
export interface IdentityHeaderOptions {
  readonly headers: IdentityHeaderNames;
  readonly includeCertPem: boolean;
  readonly xfcc: { readonly enabled: boolean; readonly includeCert: boolean; readonly by?: string | undefined };
  readonly rfc9440: { readonly enabled: boolean; readonly includeChain: boolean };
  readonly stripHeaders: readonly string[];
}

/**
 * Lower-case name/value pairs, rendered once per verified certificate: proxy/upstream-headers.ts
 * appends them to the upstream head after the client's headers of these names were dropped.
 * `req.headers` is never written.
 */
export type RenderedHeaders = ReadonlyArray<readonly [name: string, value: string]>;

/** The compiled plan. Immutable. */
export interface HeaderPlan {
  /** Normalised names (lower case, `_` as `-`) that no client may send. */
  readonly strip: ReadonlySet<string>;
  render(identity: CertIdentity): RenderedHeaders;
}

const XFCC = 'x-forwarded-client-cert';
const RFC9440_CERT = 'client-cert';
const RFC9440_CHAIN = 'client-cert-chain';

/**
 * Why normalise `_` to `-`: WSGI/CGI upstreams map both to `HTTP_X_DEVICE_ID`, so a client-sent
 * `X_Device_Id` would shadow ours there. Every configured name is stripped whether or not its
 * header is enabled, because an upstream may read it either way.
 */
export function normalizeHeaderName(name: string): string {
  return name.toLowerCase().replace(/_/g, '-');
}

/** Compiles the plan. Pure; throws nothing (the schema validated the names). */
export function compileHeaderPlan(options: IdentityHeaderOptions): HeaderPlan {
  const n = Object.fromEntries(Object.entries(options.headers).map(([k, v]) => [k, v.toLowerCase()])) as unknown as IdentityHeaderNames;
  const strip = new Set<string>(
    [...Object.values(n), XFCC, RFC9440_CERT, RFC9440_CHAIN, ...options.stripHeaders].map(normalizeHeaderName),
  );

  function render(id: CertIdentity): RenderedHeaders {
    const out: Array<[string, string]> = [
      [n.verified, 'SUCCESS'],
      [n.deviceId, encodeHeaderToken(id.deviceId)],
      [n.subject, id.subject],
      [n.issuer, id.issuer],
      [n.serial, id.serialHex],
      [n.fingerprint, id.fingerprintSha256],
      [n.notAfter, id.notAfter.toISOString()],
    ];
    if (id.sanUri.length) out.push([n.sanUri, id.sanUri.map(encodeHeaderToken).join(', ')]);
    if (id.sanDns.length) out.push([n.sanDns, id.sanDns.map(encodeHeaderToken).join(', ')]);
    if (options.includeCertPem) out.push([n.certPem, encodeURIComponent(toPem('CERTIFICATE', id.leafDer))]);
    if (options.xfcc.enabled) out.push([XFCC, renderXfcc(id, options.xfcc)]);
    if (options.rfc9440.enabled) {
      out.push([RFC9440_CERT, sfBinary(id.leafDer)]);
      if (options.rfc9440.includeChain && id.chainDer.length) out.push([RFC9440_CHAIN, id.chainDer.map(sfBinary).join(', ')]);
    }
    return Object.freeze(out.map((pair) => Object.freeze(pair)));
  }
  return Object.freeze({ strip, render });
}

/** Envoy's element format: `By=…;Hash=…;Cert="…";Subject="…";URI=…;DNS=…`. */
function renderXfcc(id: CertIdentity, xfcc: IdentityHeaderOptions['xfcc']): string {
  const parts: string[] = [];
  if (xfcc.by) parts.push(`By=${quoteXfccValue(xfcc.by)}`);
  parts.push(`Hash=${id.fingerprintSha256}`);
  if (xfcc.includeCert) parts.push(`Cert="${encodeURIComponent(toPem('CERTIFICATE', id.leafDer))}"`);
  parts.push(`Subject=${quoteXfccValue(id.subject, { always: true })}`); // Envoy always quotes Subject
  for (const uri of id.sanUri) parts.push(`URI=${quoteXfccValue(uri)}`);
  for (const dns of id.sanDns) parts.push(`DNS=${quoteXfccValue(dns)}`);
  return parts.join(';');
}
