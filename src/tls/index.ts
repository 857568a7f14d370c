export { loadTlsMaterial, type TlsMaterial, type TlsMaterialPaths } from './material.js';
export { createDataServer, secureContextOptions, type DataListenerOptions } from './server.js';
export { createMaterialReloader, type MaterialReloader, type MaterialReloaderOptions, type ReloadOutcome } from './reload.js';
export { createProxyProtocolListener, type ProxyProtocolHooks, type ProxyProtocolListener, type ProxyProtocolOptions, type ProxyRefusal } from './proxy-protocol.js';
export { parseProxyHeader, type ProxiedClient, type ProxyHeaderResult } from './proxy-header.js';
