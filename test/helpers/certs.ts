/**
 * Test certificates made with the openssl binary in a temp dir: a CA, a server certificate for
 * 127.0.0.1 (and localhost) with its key also written encrypted, a client certificate from the same
 * CA, and a client certificate from another CA (which the server must not trust).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCerts {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  /** serverKey encrypted with `keyPassword`. */
  serverKeyEncrypted: string;
  keyPassword: string;
  /** Certificate and key in one PEM file. */
  serverCombined: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate signed by a CA the server does not know. */
  strangerCert: string;
  strangerKey: string;
  remove(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function selfSignedCa(dir: string, name: string): void {
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${name}`,
    '-keyout', `${name}.key`, '-out', `${name}.pem`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
}

function signed(dir: string, ca: string, name: string, ext: string): void {
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`]);
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
}

export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'pgwarden-certs-'));
  // Daemons in tests run as the postgres user: the files must be readable by it.
  chmodSync(dir, 0o755);
  selfSignedCa(dir, 'ca');
  selfSignedCa(dir, 'otherca');
  signed(dir, 'ca', 'server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  signed(dir, 'ca', 'client', 'extendedKeyUsage=clientAuth\n');
  signed(dir, 'otherca', 'stranger', 'extendedKeyUsage=clientAuth\n');
  const keyPassword = 'open sesame';
  openssl(dir, ['pkey', '-in', 'server.key', '-aes256', '-passout', `pass:${keyPassword}`, '-out', 'server-encrypted.key']);
  execFileSync('sh', ['-c', 'cat server.pem server.key > server-combined.pem'], { cwd: dir });
  execFileSync('sh', ['-c', 'chmod 0644 *'], { cwd: dir });
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    serverKeyEncrypted: join(dir, 'server-encrypted.key'),
    keyPassword,
    serverCombined: join(dir, 'server-combined.pem'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client.key'),
    strangerCert: join(dir, 'stranger.pem'),
    strangerKey: join(dir, 'stranger.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
