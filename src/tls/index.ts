export { loadTlsMaterial, type TlsMaterial, type TlsMaterialPaths } from './material.js';
export { createDataServer, secureContextOptions, type DataListenerOptions } from './server.js';
export { createMaterialReloader, type MaterialReloader, type MaterialReloaderOptions, type ReloadOutcome } from './reload.js';
