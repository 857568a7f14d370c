/**
 * A throwaway PKI built with the `openssl` CLI (a peer nobody here wrote): a root, an issuing CA
 * with an `openssl ca` database, leaf certificates with chosen CDP/AIA URLs, revocation,
 * `openssl ca -gencrl` CRLs (PEM and DER) and one-shot `openssl ocsp` responses.
 * Everything lives in a temp dir removed by `cleanup()`. No key material is committed.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs openssl in `cwd`; rejects with its stderr on failure. */
export async function openssl(args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run('openssl', args, { cwd, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

export interface Issued {
  readonly name: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly x509: X509Certificate;
}

export interface LeafOptions {
  /** CRL distribution point URLs. */
  readonly cdp?: readonly string[];
  /** AIA OCSP responder URLs. */
  readonly ocsp?: readonly string[];
  /** Extended key usage (openssl names); default clientAuth. */
  readonly eku?: string;
  /** Hex serial to force (only with `outsideDatabase`). */
  readonly serial?: string;
  /** Sign with `openssl x509 -req` so the CA database never hears of it (OCSP says unknown). */
  readonly outsideDatabase?: boolean;
  /** Make it a CA certificate (an intermediate). */
  readonly ca?: boolean;
}

export interface TestPki {
  readonly dir: string;
  readonly root: Issued;
  readonly ca: Issued;
  readonly indexPath: string;
  issue(name: string, opts?: LeafOptions): Promise<Issued>;
  revoke(cert: Issued): Promise<void>;
  /** Writes a CRL of the issuing CA; returns its path. */
  genCrl(file: string, opts?: { format?: 'pem' | 'der'; hours?: number; sigopts?: string[]; crlexts?: string }): Promise<string>;
  /** Sets the serial `openssl ca` gives the next certificate (hex). */
  setNextSerial(hex: string): Promise<void>;
  /** One OCSP response for a DER request, from `openssl ocsp -reqin` (responder = signer). */
  respond(requestDer: Buffer, signer: Issued, opts?: { nmin?: number; extra?: string[] }): Promise<Buffer>;
  cleanup(): Promise<void>;
}

export interface PkiOptions {
  readonly keyType?: 'ec' | 'rsa';
  /** Subject CN of the issuing CA (a second PKI with the same name makes a look-alike CA). */
  readonly caName?: string;
  readonly rootName?: string;
}

function keyArgs(type: 'ec' | 'rsa'): string[] {
  return type === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
}

const CA_CNF = `[ ca ]
default_ca = CA_default
[ CA_default ]
dir = .
database = ./index.txt
new_certs_dir = ./newcerts
serial = ./serial
crlnumber = ./crlnumber
certificate = ./ca.crt
private_key = ./ca.key
default_md = sha256
policy = policy_any
default_days = 2
default_crl_hours = 24
unique_subject = no
copy_extensions = none
[ policy_any ]
commonName = supplied
# CRL extension sections for -crlexts (tests of CRLs we must refuse or scope).
[ crl_delta ]
2.5.29.27 = critical, ASN1:INTEGER:1
[ crl_unknown_critical ]
1.2.3.4.5 = critical, ASN1:NULL
[ crl_idp_a ]
issuingDistributionPoint = critical, @idp_a
[ idp_a ]
fullname = URI:http://127.0.0.1:9/partition-a.crl
[ crl_idp_reasons ]
issuingDistributionPoint = critical, @idp_reasons
[ idp_reasons ]
fullname = URI:http://127.0.0.1:9/partition-a.crl
onlysomereasons = keyCompromise
[ crl_idp_ca_only ]
issuingDistributionPoint = critical, @idp_ca_only
[ idp_ca_only ]
onlyCA = TRUE
`;

/** Distribution point named by the `crl_idp_*` sections. */
export const PARTITION_A_URL = 'http://127.0.0.1:9/partition-a.crl';

/** Builds the PKI in a new temp dir. */
export async function createTestPki(opts: PkiOptions = {}): Promise<TestPki> {
  const keyType = opts.keyType ?? 'ec';
  const dir = await mkdtemp(join(tmpdir(), 'revocation-pki-'));
  const o = (args: string[]): Promise<string> => openssl(args, dir);
  await writeFile(join(dir, 'ca.cnf'), CA_CNF);
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(join(dir, 'serial'), '1000\n');
  await writeFile(join(dir, 'crlnumber'), '01\n');
  await o(['version']);
  await run('mkdir', ['-p', join(dir, 'newcerts')]);

  const load = async (name: string): Promise<Issued> => ({
    name,
    certPath: join(dir, `${name}.crt`),
    keyPath: join(dir, `${name}.key`),
    x509: new X509Certificate(await readFile(join(dir, `${name}.crt`))),
  });

  await o(['req', '-x509', ...keyArgs(keyType), '-nodes', '-keyout', 'root.key', '-out', 'root.crt', '-days', '2',
    '-subj', `/CN=${opts.rootName ?? 'Revocation Test Root'}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await writeFile(join(dir, 'ca-ext.cnf'),
    '[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  await o(['req', '-new', ...keyArgs(keyType), '-nodes', '-keyout', 'ca.key', '-out', 'ca.csr', '-subj', `/CN=${opts.caName ?? 'Revocation Test Issuing CA'}`]);
  await o(['x509', '-req', '-in', 'ca.csr', '-CA', 'root.crt', '-CAkey', 'root.key', '-set_serial', '0x0A', '-days', '2',
    '-extfile', 'ca-ext.cnf', '-extensions', 'v3', '-out', 'ca.crt']);
  const root = await load('root');
  const ca = await load('ca');

  const pki: TestPki = {
    dir,
    root,
    ca,
    indexPath: join(dir, 'index.txt'),
    async issue(name, leafOpts = {}) {
      const lines = [
        '[leaf]',
        `basicConstraints=critical,CA:${leafOpts.ca ? 'TRUE' : 'FALSE'}`,
        `keyUsage=critical,${leafOpts.ca ? 'keyCertSign,cRLSign' : 'digitalSignature'}`,
        'subjectKeyIdentifier=hash',
        'authorityKeyIdentifier=keyid',
      ];
      if (!leafOpts.ca) lines.push(`extendedKeyUsage=${leafOpts.eku ?? 'clientAuth'}`);
      if (leafOpts.cdp?.length) lines.push(`crlDistributionPoints=${leafOpts.cdp.map((u) => `URI:${u}`).join(',')}`);
      if (leafOpts.ocsp?.length) lines.push(`authorityInfoAccess=${leafOpts.ocsp.map((u) => `OCSP;URI:${u}`).join(',')}`);
      await writeFile(join(dir, `${name}-ext.cnf`), `${lines.join('\n')}\n`);
      await o(['req', '-new', ...keyArgs(keyType), '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
      if (leafOpts.outsideDatabase) {
        await o(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-days', '2',
          '-set_serial', `0x${leafOpts.serial ?? '7E57'}`, '-extfile', `${name}-ext.cnf`, '-extensions', 'leaf', '-out', `${name}.crt`]);
      } else {
        await o(['ca', '-batch', '-config', 'ca.cnf', '-notext', '-in', `${name}.csr`, '-out', `${name}.crt`,
          '-extfile', `${name}-ext.cnf`, '-extensions', 'leaf']);
      }
      return load(name);
    },
    async revoke(cert) {
      await o(['ca', '-config', 'ca.cnf', '-revoke', cert.certPath, '-crl_reason', 'keyCompromise']);
    },
    async genCrl(file, crlOpts = {}) {
      const pem = join(dir, `${file}.pem`);
      const sigopts = (crlOpts.sigopts ?? []).flatMap((s) => ['-sigopt', s]);
      const exts = crlOpts.crlexts === undefined ? [] : ['-crlexts', crlOpts.crlexts];
      await o(['ca', '-config', 'ca.cnf', '-gencrl', '-crlhours', String(crlOpts.hours ?? 24), ...sigopts, ...exts, '-out', pem]);
      if (crlOpts.format !== 'der') return pem;
      const der = join(dir, `${file}.der`);
      await o(['crl', '-in', pem, '-outform', 'DER', '-out', der]);
      return der;
    },
    async setNextSerial(hex) {
      await writeFile(join(dir, 'serial'), `${hex}\n`);
    },
    async respond(requestDer, signer, respOpts = {}) {
      const stamp = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
      const reqPath = join(dir, `req-${stamp}.der`);
      const respPath = join(dir, `resp-${stamp}.der`);
      await writeFile(reqPath, requestDer);
      await o(['ocsp', '-index', 'index.txt', '-CA', 'ca.crt', '-rsigner', signer.certPath, '-rkey', signer.keyPath,
        '-reqin', reqPath, '-respout', respPath, '-nmin', String(respOpts.nmin ?? 10), ...(respOpts.extra ?? [])]);
      return readFile(respPath);
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
  return pki;
}
