/**
 * Real X.509 certificates for TLS tests, made with the openssl CLI (npm test provisions it, see
 * bin/test-tools.js): a CA, a server certificate for 127.0.0.1/localhost, client certificates signed by the
 * CA, and one signed by a stranger CA.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertificateSet {
  directory: string;
  caFile: string;
  serverCert: string;
  serverKey: string;
  /** PEM pair of a client certificate by CN. */
  client(cn: string, signedBy?: 'ca' | 'stranger'): { cert: Buffer; key: Buffer };
  ca: Buffer;
  remove(): void;
}

function openssl(directory: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: directory, stdio: ['ignore', 'ignore', 'pipe'] });
}

function selfSignedCa(directory: string, name: string): void {
  openssl(directory, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
  ]);
}

function signed(directory: string, name: string, subject: string, caName: string, extensions: string): void {
  openssl(directory, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', subject, '-keyout', `${name}.key`, '-out', `${name}.csr`]);
  openssl(directory, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${caName}.pem`,
    '-CAkey',
    `${caName}.key`,
    '-CAcreateserial',
    '-days',
    '2',
    '-out',
    `${name}.pem`,
    '-extfile',
    extensions,
  ]);
}

export function makeCertificates(): CertificateSet {
  const directory = mkdtempSync(join(tmpdir(), 'swy-tls-'));
  selfSignedCa(directory, 'ca');
  selfSignedCa(directory, 'stranger');
  const serverExt = join(directory, 'server.ext');
  const clientExt = join(directory, 'client.ext');
  execFileSync('sh', [
    '-c',
    `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > ${serverExt}; printf 'extendedKeyUsage=clientAuth\\n' > ${clientExt}`,
  ]);
  signed(directory, 'server', '/CN=localhost', 'ca', serverExt);
  const made = new Set<string>();
  return {
    directory,
    caFile: join(directory, 'ca.pem'),
    serverCert: join(directory, 'server.pem'),
    serverKey: join(directory, 'server.key'),
    ca: readFileSync(join(directory, 'ca.pem')),
    client(cn, signedBy = 'ca') {
      const name = `client-${signedBy}-${cn}`;
      if (!made.has(name)) {
        signed(directory, name, `/CN=${cn}`, signedBy, clientExt);
        made.add(name);
      }
      return { cert: readFileSync(join(directory, `${name}.pem`)), key: readFileSync(join(directory, `${name}.key`)) };
    },
    remove() {
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
