import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RequestError, createHttp } from '../../src/ctl/http.js';

// A self-signed certificate for 127.0.0.1, valid 2000–2100, made for this test only (its key is public).
const CERT = `-----BEGIN CERTIFICATE-----
MIIBTjCB9qADAgECAhR4sg7V6qz82TxvUE0jfwBZWv7OBTAKBggqhkjOPQQDAjAU
MRIwEAYDVQQDDAkxMjcuMC4wLjEwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEw
MDAwMDBaMBQxEjAQBgNVBAMMCTEyNy4wLjAuMTBZMBMGByqGSM49AgEGCCqGSM49
AwEHA0IABPgAbSPW7avukyTood8WM+6Zx9XuyjrYGscee0Sw86NPZE4OHVSWsHeE
+U/x2s2yT03xlW8yev5sLBabSiKjt/qjJDAiMA8GA1UdEQQIMAaHBH8AAAEwDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiABbxw6KZZCIpd0XA3dxJp3
AS1uuRgDuGGl4GnpC59vdAIgRJXlhgDkzFDvp7IsgugM9lYfuIlTGvmkKfQnNoet
CHE=
-----END CERTIFICATE-----
`;
const KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgeLWKvv7FMB0v+h/9
zITlAXId07GDa9la43GAKXADzGWhRANCAAT4AG0j1u2r7pMk6KHfFjPumcfV7so6
2BrHHntEsPOjT2RODh1UlrB3hPlP8drNsk9N8ZVvMnr+bCwWm0oio7f6
-----END PRIVATE KEY-----
`;

let server: https.Server;
let apiUrl = '';
let dir = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ctl-https-'));
  writeFileSync(join(dir, 'ca.pem'), CERT);
  server = https.createServer({ cert: CERT, key: KEY }, (_req, res) => res.end('{"state": "running"}'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  apiUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}/patroni`;
});

after(() => {
  server.closeAllConnections();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

test('https: an unknown certificate is refused unless --insecure', async () => {
  await assert.rejects(createHttp({ insecure: false }, 2000).request(apiUrl, 'GET', 'patroni'), (e: unknown) => e instanceof RequestError && !e.timedOut);
  const r = await createHttp({ insecure: true }, 2000).request(apiUrl, 'GET', 'patroni');
  assert.deepEqual(r, { status: 200, body: '{"state": "running"}' });
});

test('https: verified against ctl.cacert', async () => {
  const r = await createHttp({ insecure: false, cacert: join(dir, 'ca.pem') }, 2000).request(apiUrl, 'GET', 'patroni');
  assert.equal(r.status, 200);
});
