export { loadConfigFile, parseConfig, ConfigError, type ConfigProblem } from './load.js';
export * from './schema.js';
export { revocationSchema } from './revocation-schema.js';
