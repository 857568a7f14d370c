/**
 * @peculiar/x509, loaded on first use. Issuing (the device CA, the dev PKI, the device simulator)
 * needs it; the sidecar's serve path never issues anything, and the library with its DI
 * container is ~10 MB of RSS in every sidecar process.
 */
type PeculiarX509 = typeof import('@peculiar/x509');

let loading: Promise<PeculiarX509> | undefined;

export function loadPeculiarX509(): Promise<PeculiarX509> {
  // @peculiar/x509 resolves its ASN.1 services through tsyringe, which needs the Reflect metadata API first.
  return (loading ??= import('reflect-metadata').then(() => import('@peculiar/x509')));
}
