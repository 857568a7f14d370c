/**
 * The JSON Schema of each config file, for editors (the examples name it in their first line):
 * config/sidecar.schema.json and config/ca.schema.json, generated from the zod schemas. Run
 * directly (`npm run schema`) this module rewrites them; a test fails when a committed file
 * differs from what it produces.
 *
 * It describes the file as written, before `${ENV}` substitution, from zod's input side: a field
 * with a default is optional and shows it. Where JSON Schema cannot follow zod it is looser, never
 * stricter, so an editor never flags a file the loader accepts: refinements (URL checks, "tokenFile
 * or clientCa", valid regular expression) are left to the loader, numbers and booleans are also
 * accepted as the text the loader converts, and any text value may carry a `${VAR}` reference.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { caConfigSchema } from './ca-schema.js';
import { acceptedText } from './fields.js';
import { ENV_REF } from './load.js';
import { configSchema } from './schema.js';

type JsonSchema = z.core.JSONSchema.BaseSchema;

/** The command that rewrites the committed files. */
export const REGENERATE_COMMAND = 'npm run schema';

/** Each published schema: its file in config/, the example that names it, and its zod source. */
export const CONFIG_JSON_SCHEMAS = [
  {
    file: 'sidecar.schema.json',
    example: 'sidecar.example.yaml',
    title: 'mtls-sidecar configuration',
    description: 'The YAML read by `mtls-sidecar serve --config` and `check-config`.',
    schema: configSchema,
  },
  {
    file: 'ca.schema.json',
    example: 'ca.example.yaml',
    title: 'mtls-sidecar device CA configuration',
    description: 'The YAML read by `mtls-sidecar ca serve --config`.',
    schema: caConfigSchema,
  },
] as const;

export type ConfigJsonSchemaEntry = (typeof CONFIG_JSON_SCHEMAS)[number];

/** Text holding a `${VAR}` reference: zod sees it only after substitution, so it may stand for any value that is text. */
const ENV_TEXT_DEFINITION: JsonSchema = {
  description: 'Text with a ${VAR} or ${VAR:-fallback} reference, substituted from the environment before the config is checked.',
  type: 'string',
  pattern: ENV_REF.source,
};
const ENV_TEXT: JsonSchema = { $ref: '#/definitions/envText' };

/** Keywords that describe a field rather than constrain it: they stay on the field when it is widened. */
const ANNOTATIONS = new Set(['title', 'description', 'default', 'examples', 'deprecated']);

/** The formats draft-07 defines. */
const JSON_SCHEMA_FORMATS = new Set(
  'date-time date time email idn-email hostname idn-hostname ipv4 ipv6 uri uri-reference iri iri-reference uri-template json-pointer relative-json-pointer regex'.split(' '),
);

/** The JSON Schema document of one config file. */
export function configJsonSchema(entry: ConfigJsonSchemaEntry): JsonSchema {
  const { $schema, definitions, ...body } = z.toJSONSchema(entry.schema, {
    target: 'draft-07', // the draft editors' YAML language servers support fully
    io: 'input',
    // A type JSON Schema cannot express must be dealt with here, not silently become "anything".
    unrepresentable: 'throw',
    override: ({ zodSchema, jsonSchema }) => adjust(zodSchema, jsonSchema),
  });
  return {
    $schema,
    $comment: `Generated from src/config/ by \`${REGENERATE_COMMAND}\`; do not edit.`,
    title: entry.title,
    description: `${entry.description} Every field with its default: config/${entry.example}.`,
    ...body,
    definitions: { ...(definitions as Record<string, JsonSchema> | undefined), envText: ENV_TEXT_DEFINITION },
  };
}

/** The file text of one schema, exactly as committed. */
export function renderConfigJsonSchema(entry: ConfigJsonSchemaEntry): string {
  return `${JSON.stringify(configJsonSchema(entry), null, 2)}\n`;
}

/** Writes every schema into `dir` (the repository's config/); returns the paths written. */
export function writeConfigJsonSchemas(dir: string): string[] {
  return CONFIG_JSON_SCHEMAS.map((entry) => {
    const path = join(dir, entry.file);
    writeFileSync(path, renderConfigJsonSchema(entry));
    return path;
  });
}

function adjust(zodSchema: z.core.$ZodTypes, json: JsonSchema): void {
  const def = zodSchema._zod.def;
  switch (def.type) {
    case 'pipe': {
      // Only int() and bool() preprocess; zod describes the number or boolean after it.
      const text = acceptedText.get(zodSchema);
      if (!text) throw new Error('a preprocess or transform without acceptedText metadata (src/config/fields.ts): say what input it accepts');
      widen(json, [text, ENV_TEXT]);
      return;
    }
    case 'string':
      // zod names its own checks as formats (`includes`); their pattern already says it, and a
      // validator that knows no such format refuses the schema.
      if (json.format !== undefined && !JSON_SCHEMA_FORMATS.has(json.format)) delete json.format;
      if (!acceptsAnyReference(json)) widen(json, [ENV_TEXT]);
      return;
    case 'enum':
      widen(json, [ENV_TEXT]);
      return;
    case 'literal':
      if (def.values.every((v) => typeof v === 'string')) widen(json, [ENV_TEXT]);
      return;
    case 'default':
      // In input mode zod drops a default whose schema contains a preprocess (int(), bool()), not
      // knowing whether the output value is valid input; ours are numbers, booleans and objects
      // of them, which are.
      json.default ??= structuredClone(def.defaultValue);
      return;
    case 'union':
      // identity.deviceId's branches are told apart by `source`; once `source: ${VAR}` is
      // admitted they overlap, and "exactly one" would refuse it.
      if (json.oneOf) {
        json.anyOf = json.oneOf;
        delete json.oneOf;
      }
      return;
  }
}

/** True for plain text that no `${VAR}` reference can fail: nothing to widen. */
function acceptsAnyReference(json: JsonSchema): boolean {
  const shortest = '${A}'.length;
  return Object.keys(json).every((key) => ANNOTATIONS.has(key) || key === 'type' || (key === 'minLength' && Number(json.minLength) <= shortest));
}

/** Moves the field's own constraints into the first branch of an anyOf with `alternatives`. */
function widen(json: JsonSchema, alternatives: readonly JsonSchema[]): void {
  const own: JsonSchema = {};
  for (const key of Object.keys(json)) {
    if (ANNOTATIONS.has(key)) continue;
    own[key] = json[key];
    delete json[key];
  }
  json.anyOf = [own, ...alternatives];
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const path of writeConfigJsonSchemas(fileURLToPath(new URL('../../config/', import.meta.url)))) console.log(`wrote ${path}`);
}
