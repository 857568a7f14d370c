/**
 * The JSON bodies the CA's APIs accept, as zod schemas built from the config (the device id
 * pattern, the longest code lifetime). The HTTP layer parses every body with them before the
 * enroll service sees it, and the service's inputs are their outputs: a `DeviceId` is branded, so
 * no string that skipped the pattern (it goes into certificate subjects) can reach issuance.
 *
 * Each message is the one clients get in `{"error": {"code", "message"}}`; `fieldCodes` names the
 * fields whose failure has its own error code (everything else is `bad_request`).
 */
import { z } from 'zod';
import type { RefusalCode } from './refusals.js';
import { CA_REVOCATION_REASONS as REASONS } from '../pki/index.js';

/** A body schema and the error codes of its fields. */
export interface RequestSchema<T> {
  readonly schema: z.ZodType<T>;
  readonly fieldCodes: Readonly<Partial<Record<string, RefusalCode>>>;
}

/** Builds the schemas. Sync; `deviceIdPattern` was checked to compile by the config schema. */
export function createRequestSchemas(o: { deviceIdPattern: string; maxCodeTtlSeconds: number }) {
  const idPattern = new RegExp(o.deviceIdPattern, 'u');
  const idMessage = `deviceId must match ${o.deviceIdPattern}`;
  const deviceId = z
    .string({ error: idMessage })
    .refine((s) => s.length <= 256 && idPattern.test(s), { error: idMessage })
    .brand<'DeviceId'>();
  const csr = z.string({ error: 'csr must be a string (PEM or base64 DER)' });
  const ttlMessage = `ttlSeconds must be a whole number from 30 to ${o.maxCodeTtlSeconds}`;
  const exactlyOne = 'give exactly one of serial (hex) or deviceId';
  const byDeviceId = { deviceId: 'invalid_device_id' } as const;
  return {
    createCode: {
      schema: z.object({
        deviceId,
        userId: z.string({ error: 'userId must be a string of at most 256 characters' }).max(256, { error: 'userId must be a string of at most 256 characters' }).optional(),
        ttlSeconds: z.number({ error: ttlMessage }).int({ error: ttlMessage }).min(30, { error: ttlMessage }).max(o.maxCodeTtlSeconds, { error: ttlMessage }).optional(),
      }),
      fieldCodes: byDeviceId,
    },
    enroll: {
      schema: z.object({
        deviceId,
        code: z.string({ error: 'code must be a non-empty string' }).min(1, { error: 'code must be a non-empty string' }).max(64, { error: 'code must be a non-empty string' }),
        csr,
      }),
      fieldCodes: byDeviceId,
    },
    renew: { schema: z.object({ csr }), fieldCodes: {} },
    revoke: {
      schema: z
        .object({
          reason: z.enum(REASONS, { error: `reason must be one of ${REASONS.join(', ')}` }).default('unspecified'),
          serial: z.string({ error: exactlyOne }).regex(/^[0-9a-fA-F]{1,40}$/, { error: exactlyOne }).optional(),
          deviceId: z.string({ error: exactlyOne }).pipe(deviceId).optional(),
        })
        .refine((b) => (b.serial === undefined) !== (b.deviceId === undefined), { error: exactlyOne }),
      fieldCodes: {},
    },
  } satisfies Record<string, RequestSchema<unknown>>;
}

export type RequestSchemas = ReturnType<typeof createRequestSchemas>;
export type DeviceId = z.output<RequestSchemas['enroll']['schema']>['deviceId'];
export type CreateCodeRequest = z.output<RequestSchemas['createCode']['schema']>;
export type EnrollRequest = z.output<RequestSchemas['enroll']['schema']>;
export type RenewRequest = z.output<RequestSchemas['renew']['schema']>;
export type RevokeRequest = z.output<RequestSchemas['revoke']['schema']>;
