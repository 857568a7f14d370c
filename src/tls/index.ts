export { loadTlsMaterial, type TlsMaterial, type TlsMaterialPaths } from './material.js';
export { createDataServer, secureContextOptions, type DataListenerOptions } from './server.js';
