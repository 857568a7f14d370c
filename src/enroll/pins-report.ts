/**
 * What `mtls-sidecar ca pins` prints: the same pin set `GET /v1/pins` serves, as an Android
 * `network_security_config.xml`, an iOS `NSPinnedDomains` Info.plist fragment, the signed JWS, or
 * all three. App teams paste the first two into a release as the pins it ships with; the JWS is
 * what the app fetches later to learn new pins without a release.
 */
import type { CaPinsOptions } from '../config/index.js';
import { androidNetworkSecurityConfig, iosPinnedDomainsPlist } from './pin-formats.js';
import { createPinSetPublisher } from './pin-publisher.js';

export type PinsFormat = 'android' | 'ios' | 'jws' | 'all';

/** Renders the pin set. Async (the JWS is signed); throws ERR_PKI if a pin file or the key is unusable. */
export async function renderPins(options: CaPinsOptions, format: PinsFormat, now: () => Date = () => new Date()): Promise<string> {
  const publisher = createPinSetPublisher(options, now);
  const set = publisher.pinSet();
  const parts: string[] = [];
  if (format === 'android' || format === 'all') parts.push(section(format, 'res/xml/network_security_config.xml', androidNetworkSecurityConfig(set)));
  if (format === 'ios' || format === 'all') parts.push(section(format, 'Info.plist fragment', iosPinnedDomainsPlist(set)));
  if (format === 'jws' || format === 'all') parts.push(section(format, 'signed pin set (GET /v1/pins)', `${await publisher.current()}\n`));
  return parts.join('\n');
}

function section(format: PinsFormat, title: string, body: string): string {
  // A banner line outside the content, so each part can be pasted as it is (XML must start with <?xml).
  return format === 'all' ? `==> ${title}\n${body}` : body;
}
