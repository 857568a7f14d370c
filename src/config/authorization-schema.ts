/**
 * `authorization` (who may call which route) and `quarantine` (devices refused everywhere while an
 * operator investigates). Everything a matcher needs is checked here, so the policy module
 * compiles a config it can trust and a mistake is reported with the field that holds it.
 */
import { z } from 'zod';
import { bool } from './fields.js';

/**
 * A text matcher: a plain string (exact), or `{exact}`, `{prefix}` or `{glob}`. A glob's only
 * special character is `*` (any run of characters, none included): no regex, no classes, so
 * nothing in a pattern can be injected and matching is linear (see policy/string-match.ts).
 */
const textMatch = z.union([
  z.string().min(1, 'must not be empty'),
  z
    .strictObject({
      exact: z.string().min(1, 'must not be empty').optional(),
      prefix: z.string().min(1, 'must not be empty').optional(),
      glob: z
        .string()
        .refine((g) => g.replace(/\*/g, '') !== '', 'must hold more than "*" (a rule that allows any identity says allow: any)')
        .optional(),
    })
    .refine((m) => Object.keys(m).length === 1, 'needs exactly one of exact, prefix or glob'),
]);

/** A SPIFFE trust domain name (SPIFFE-ID spec §2.1: lower-case letters, digits, ".", "-", "_"). */
const trustDomain = z.string().regex(/^[a-z0-9._-]+$/, 'must be a SPIFFE trust domain name (lower-case letters, digits, ".", "-", "_"), without "spiffe://"');

/** A SHA-256 fingerprint: 64 hex digits, colons allowed (as `openssl x509 -fingerprint -sha256` prints it). */
const fingerprint = z.string().regex(/^(?:[0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/, 'must be a SHA-256 fingerprint: 64 hex digits (colons allowed)');

const oid = z.string().regex(/^[0-2](?:\.(?:0|[1-9][0-9]*))+$/, 'must be a dotted object identifier such as 1.3.6.1.4.1.99999.1');

const issuerMatch = z
  .strictObject({
    fingerprintSha256: fingerprint.optional().describe('a CA certificate of the verified path (intermediate or root), by the SHA-256 of its DER'),
    subject: z.string().min(1).optional().describe('a CA of the verified path by subject, RFC 4514 as `openssl x509 -noout -subject -nameopt RFC2253` prints it'),
  })
  .refine((m) => (m.fingerprintSha256 === undefined) !== (m.subject === undefined), 'needs exactly one of fingerprintSha256 or subject');

/**
 * One identity matcher: every key given must hold (AND); a list of matchers allows an identity
 * that matches any of them (OR). Multi-valued facts (OU, SAN URIs, …) match when any value does.
 */
const identityMatch = z
  .strictObject({
    deviceId: textMatch.optional().describe('the device id (identity.deviceId picks it)'),
    subject: z
      .strictObject({ cn: textMatch.optional(), ou: textMatch.optional(), o: textMatch.optional() })
      .refine((s) => Object.keys(s).length > 0, 'needs cn, ou or o')
      .optional()
      .describe('subject attributes of the client certificate'),
    sanUri: textMatch.optional().describe('a SAN URI of the client certificate'),
    sanDns: textMatch.optional().describe('a SAN DNS name of the client certificate'),
    spiffeTrustDomain: trustDomain.optional().describe('a SAN URI spiffe://<this domain>/<path>: exactly this trust domain'),
    issuer: issuerMatch.optional().describe('a CA of the verified path'),
    policyOid: oid.optional().describe('a certificate policy OID the client certificate carries'),
  })
  .refine((m) => Object.keys(m).length > 0, 'an empty matcher would match every identity; say allow: any instead');

/** Who may pass: `any` (every identity the CA bundle accepts) or a list of matchers (none: nobody). */
const allowList = z.union([z.literal('any'), z.array(identityMatch)]);

/** A path in a rule: normalised form only, so it can equal a normalised request path. */
const rulePath = z
  .string()
  .regex(/^\//, 'must start with "/"')
  .refine((p) => !/[%\\;?#]/.test(p), 'must be written decoded, without "%", "\\", ";", "?" or "#" (requests are matched after decoding)')
  .refine((p) => !/\/\/|\/\.\.?(?:\/|$)/.test(p), 'must not hold "//", "/./" or "/../" (requests holding them are normalised or refused first)');

/** A bounded metric label: route names come from config only. */
const routeName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, ".", "_" or "-" (it is a metric label)').refine((n) => n !== 'default', '"default" is the label of requests that match no route');

/**
 * An HTTP method. Methods are case-sensitive (RFC 9110 §9.1) and Node's parser accepts only its
 * upper-case list, so a lower-case `get` would be a rule that never matches: refused here.
 */
const method = z.string().regex(/^[A-Z][A-Z-]*$/, 'must be an upper-case HTTP method such as GET');

const routeSchema = z.strictObject({
  name: routeName.describe('the metric label and log field of requests this rule matches'),
  path: z
    .strictObject({ exact: rulePath.optional(), prefix: rulePath.optional() })
    .refine((p) => (p.exact === undefined) !== (p.prefix === undefined), 'needs exactly one of exact or prefix')
    .describe('exact: this path (a trailing "/" also matches); prefix: this path and everything below it, segment by segment (/admin matches /admin/x, not /administrator)'),
  ignoreCase: bool().default(false).describe('compare the path case-insensitively: set it when the upstream treats /ADMIN as /admin'),
  methods: z.array(method).min(1).optional().describe('the rule matches only these methods (default: every method)'),
  allow: allowList.describe('who may pass: any, or identity matchers (any of them)'),
  failureMode: z
    .enum(['http', 'reject'])
    .default('http')
    .describe('a refused request on this route: http answers 403 JSON and keeps the connection; reject closes the connection without an answer'),
});

export const authorizationSchema = z
  .strictObject({
    default: z.enum(['allow', 'deny']).describe('what a request that matches no route gets (deny recommended)'),
    allow: allowList.default('any').describe('global allow-list: an identity it does not match is refused on every route'),
    routes: z.array(routeSchema).default([]).describe('ordered rules; the first that matches a request decides'),
  })
  .superRefine((a, ctx) => {
    const seen = new Set<string>();
    a.routes.forEach((r, i) => {
      if (seen.has(r.name)) ctx.addIssue({ code: 'custom', path: ['routes', i, 'name'], message: `route name "${r.name}" is used twice (names are metric labels)` });
      seen.add(r.name);
    });
  });

export const quarantineSchema = z.strictObject({
  file: z.string().min(1, 'must be a file path').optional().describe('deny-list file, one entry per line (device:<id>, fingerprint:<sha256>, serial:<hex>); polled like the TLS files'),
});

export type AuthorizationOptions = z.infer<typeof authorizationSchema>;
export type QuarantineOptions = z.infer<typeof quarantineSchema>;
