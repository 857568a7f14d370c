export { loadConfigFile, parseConfig, loadCaConfigFile, parseCaConfig, ConfigError, type ConfigProblem } from './load.js';
export * from './schema.js';
export { revocationSchema } from './revocation-schema.js';
export * from './ca-schema.js';
