/**
 * REST API TLS as Patroni 3.0: restapi.{certfile, keyfile, keyfile_password, cafile, verify_client},
 * the requests of ctl and of the daemon (PatroniRequest: ctl.* falling back to restapi.*), on real
 * sockets with certificates made by openssl for this test.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fetchMemberStatus } from '../../src/api/client.js';
import { createApiServer, type ApiServer } from '../../src/api/server.js';
import { clientTlsOptions, daemonRequestSettings, requestSettings } from '../../src/api/tls.js';
import type { ApiBackend, ApiView } from '../../src/api/types.js';
import { effectiveDynamicConfig } from '../../src/config/dynamic.js';
import type { DaemonConfig } from '../../src/config/types.js';
import { RequestError, createHttp, type HttpSettings } from '../../src/ctl/http.js';
import { ConfigError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/log.js';
import { makeTestCerts, type TestCerts } from '../helpers/certs.js';
import { cluster, memberConfig, pgPrimary } from '../helpers/ha-fixtures.js';

let certs: TestCerts;
const servers: ApiServer[] = [];

before(() => {
  certs = makeTestCerts();
});

after(async () => {
  for (const s of servers) await s.close();
  certs.remove();
});

const dynamic = effectiveDynamicConfig(null, {}).dynamic;

function backend(config: DaemonConfig): ApiBackend & { reloads: number } {
  const view: ApiView = {
    name: 'm1', scope: 'demo', version: '0.1.0', config, dynamic, cluster: cluster(), dcsLastSeen: 1700000000, pg: pgPrimary,
    isLeader: true, lastLoopAt: 1000, lastAction: null, state: 'running', role: 'master', paused: false,
  };
  const b = {
    reloads: 0,
    view: () => view,
    loadCluster: async () => cluster(),
    now: () => 2000,
    requestReload: () => {
      b.reloads++;
    },
  };
  return b;
}

/** A server on a free loopback port with `restapi` over the member fixture's; its https base URL. */
async function serve(restapi: Partial<DaemonConfig['restapi']>): Promise<{ url: string; server: ApiServer; config: DaemonConfig; backend: ReturnType<typeof backend> }> {
  const config: DaemonConfig = { ...structuredClone(memberConfig), restapi: { ...memberConfig.restapi, listen: '127.0.0.1:0', ...restapi } };
  const b = backend(config);
  const server = createApiServer({ backend: b, config, log: silentLogger() });
  servers.push(server);
  const { port } = await server.listen();
  return { url: `https://127.0.0.1:${port}/patroni`, server, config, backend: b };
}

const trusting = (): HttpSettings => ({ insecure: false, cacert: certs.ca });
const withClientCert = (): HttpSettings => ({ ...trusting(), certfile: certs.clientCert, keyfile: certs.clientKey });

async function status(settings: HttpSettings, url: string, method = 'GET', endpoint = 'patroni'): Promise<number | string> {
  try {
    return (await createHttp(settings, 3000).request(url, method, endpoint)).status;
  } catch (e) {
    assert.ok(e instanceof RequestError, String(e));
    return 'refused';
  }
}

test('certfile + encrypted keyfile + keyfile_password serve HTTPS; a wrong password is an error naming it', async () => {
  const { url } = await serve({ certfile: certs.serverCert, keyfile: certs.serverKeyEncrypted, keyfile_password: certs.keyPassword });
  assert.equal(await status(trusting(), url), 200);
  assert.equal(await status({ insecure: false }, url), 'refused', 'an unknown CA is refused without cacert');
  for (const bad of [{ keyfile_password: 'wrong' }, {}]) {
    assert.throws(
      () => createApiServer({ backend: backend(memberConfig), log: silentLogger(), config: { ...memberConfig, restapi: { ...memberConfig.restapi, certfile: certs.serverCert, keyfile: certs.serverKeyEncrypted, ...bad } } }),
      (e: unknown) => e instanceof ConfigError && e.path === 'restapi.keyfile_password',
    );
  }
  assert.throws(
    () => createApiServer({ backend: backend(memberConfig), log: silentLogger(), config: { ...memberConfig, restapi: { ...memberConfig.restapi, certfile: '/nonexistent.pem' } } }),
    (e: unknown) => e instanceof ConfigError && e.path === 'restapi.certfile' && /nonexistent/.test(e.message),
  );
});

test('the key may be in the certfile itself (no keyfile)', async () => {
  const { url } = await serve({ certfile: certs.serverCombined });
  assert.equal(await status(trusting(), url), 200);
});

test('verify_client required: no request without a client certificate from cafile', async () => {
  const { url, backend: b } = await serve({ certfile: certs.serverCert, keyfile: certs.serverKey, cafile: certs.ca, verify_client: 'required' });
  assert.equal(await status(trusting(), url), 'refused', 'GET without a certificate');
  assert.equal(await status({ ...trusting(), certfile: certs.strangerCert, keyfile: certs.strangerKey }, url), 'refused', 'a certificate of another CA');
  assert.equal(await status(withClientCert(), url), 200);
  assert.equal(await status(withClientCert(), url, 'POST', 'reload'), 202);
  assert.equal(b.reloads, 1);
});

test('verify_client optional: safe requests need none, unsafe ones get 403 before basic auth is even looked at', async () => {
  const { url, backend: b } = await serve({
    certfile: certs.serverCert, keyfile: certs.serverKey, cafile: certs.ca, verify_client: 'optional',
    authentication: { username: 'admin', password: 'pw' },
  });
  assert.equal(await status(trusting(), url), 200, 'GET without a certificate');
  const r = await createHttp({ ...trusting(), auth: { username: 'admin', password: 'pw' } }, 3000).request(url, 'POST', 'reload');
  assert.deepEqual([r.status, JSON.parse(r.body)], [403, { message: 'client certificate required' }]);
  assert.equal(await status(withClientCert(), url, 'POST', 'reload'), 401, 'a certificate, then basic auth');
  assert.equal(await status({ ...withClientCert(), auth: { username: 'admin', password: 'pw' } }, url, 'POST', 'reload'), 202);
  assert.equal(await status({ ...trusting(), certfile: certs.strangerCert, keyfile: certs.strangerKey }, url), 'refused', 'an invalid certificate fails the handshake');
  assert.equal(b.reloads, 1);
});

test('verify_client none (or unset): unsafe requests need no certificate', async () => {
  for (const verify_client of ['none', undefined] as const) {
    const { url } = await serve({ certfile: certs.serverCert, keyfile: certs.serverKey, cafile: certs.ca, ...(verify_client ? { verify_client } : {}) });
    assert.equal(await status(trusting(), url, 'POST', 'reload'), 202);
  }
});

test('reloadTls: new settings take effect on the same port; unchanged settings rebuild nothing; invalid ones keep the server', async () => {
  const { url, server, config } = await serve({ certfile: certs.serverCert, keyfile: certs.serverKey });
  assert.equal(await server.reloadTls(), false);
  config.restapi.cafile = certs.ca;
  config.restapi.verify_client = 'required';
  assert.equal(await server.reloadTls(), true);
  assert.equal(await status(trusting(), url), 'refused');
  assert.equal(await status(withClientCert(), url), 200);
  config.restapi.keyfile = '/nonexistent.key';
  await assert.rejects(server.reloadTls(), (e: unknown) => e instanceof ConfigError && e.path === 'restapi.keyfile');
  assert.equal(await status(withClientCert(), url), 200, 'still serving with the previous settings');
});

test('PatroniRequest settings: ctl.<key> else restapi.<key>, cacert else restapi.cafile, insecure from ctl unless given', () => {
  assert.deepEqual(
    requestSettings(
      { certfile: '/c.pem', insecure: true },
      { certfile: '/s.pem', keyfile: '/s.key', keyfile_password: 'p', cafile: '/ca.pem', authentication: { username: 'u', password: 'x' } },
    ),
    { insecure: true, auth: { username: 'u', password: 'x' }, cacert: '/ca.pem', certfile: '/c.pem', keyfile: '/s.key', keyfilePassword: 'p' },
  );
  assert.deepEqual(requestSettings({ cacert: '/ctl-ca.pem', authentication: { username: 'c', password: 'y' } }, { cafile: '/ca.pem', authentication: { username: 'u', password: 'x' } }), {
    insecure: false, auth: { username: 'c', password: 'y' }, cacert: '/ctl-ca.pem',
  });
  // The daemon runs PatroniRequest(config, True): insecure whatever ctl.insecure says.
  assert.equal(daemonRequestSettings({ restapi: { listen: 'x', connect_address: 'x' }, ctl: { insecure: false } }).insecure, true);
  // keyfile and keyfile_password only come with a certificate.
  assert.deepEqual(requestSettings(undefined, { keyfile: '/k', keyfile_password: 'p' }), { insecure: false });
});

test('with a client certificate the server chain is verified even when insecure; only the host name check is skipped', () => {
  const o = clientTlsOptions({ insecure: true, certfile: certs.clientCert, keyfile: certs.clientKey });
  assert.equal(o.rejectUnauthorized, true);
  assert.equal(o.checkServerIdentity?.('wrong.example', {} as never), undefined);
  assert.equal(clientTlsOptions({ insecure: true }).rejectUnauthorized, false);
  assert.equal(clientTlsOptions({ insecure: false }).rejectUnauthorized, true);
  assert.throws(() => clientTlsOptions({ insecure: false, cacert: '/nonexistent-ca.pem' }), (e: unknown) => e instanceof ConfigError && e.path === 'ctl.cacert');
});

test('ctl over the wire: insecure skips verification without a certificate, never with one', async () => {
  const { url } = await serve({ certfile: certs.serverCert, keyfile: certs.serverKey, cafile: certs.ca, verify_client: 'optional' });
  assert.equal(await status({ insecure: true }, url), 200);
  assert.equal(await status({ insecure: true, certfile: certs.clientCert, keyfile: certs.clientKey }, url), 'refused', 'no cacert: the chain cannot verify');
  assert.equal(await status({ insecure: true, cacert: certs.ca, certfile: certs.clientCert, keyfile: certs.clientKey }, url, 'POST', 'reload'), 202);
});

test('daemon peer requests: restapi.certfile doubles as the client certificate, restapi.cafile verifies the peer, auth is sent', async () => {
  const restapi = {
    certfile: certs.serverCert, keyfile: certs.serverKeyEncrypted, keyfile_password: certs.keyPassword, cafile: certs.ca,
    verify_client: 'required' as const, authentication: { username: 'admin', password: 'pw' },
  };
  const { url, config } = await serve(restapi);
  const peer = daemonRequestSettings(config);
  assert.equal((await fetchMemberStatus(url, 3000, peer))?.role, 'master');
  assert.equal(await fetchMemberStatus(url, 3000), null, 'no certificate: refused by verify_client required');
  assert.equal(await fetchMemberStatus(url, 3000, { ...peer, cacert: certs.strangerCert }), null, 'the peer is verified against cafile');
  // The same settings reach an unsafe endpoint through ctl's client.
  assert.equal(await status(peer, url, 'POST', 'reload'), 202);
});

test('no certfile: plain HTTP, verify_client has nothing to check', async () => {
  const config: DaemonConfig = { ...structuredClone(memberConfig), restapi: { ...memberConfig.restapi, listen: '127.0.0.1:0', verify_client: 'required', cafile: certs.ca } };
  const server = createApiServer({ backend: backend(config), config, log: silentLogger() });
  servers.push(server);
  const { port } = await server.listen();
  const r = await createHttp({ insecure: false }, 3000).request(`http://127.0.0.1:${port}/`, 'POST', 'reload');
  assert.equal(r.status, 202);
});

test('failsafe POSTs between members carry the daemon certificate too (verify_client required)', async () => {
  const { postFailsafe } = await import('../../src/api/failsafe-client.js');
  const { url, config } = await serve({ certfile: certs.serverCert, keyfile: certs.serverKey, cafile: certs.ca, verify_client: 'required' });
  const leader = { name: 'm2', conn_url: 'postgres://127.0.0.1:5433/postgres', api_url: 'https://127.0.0.1:1/patroni' };
  const without = await postFailsafe(url, leader, 3000);
  assert.equal(without.ok, false);
  assert.doesNotMatch(without.detail, /^\d{3} /, 'refused at the handshake: no HTTP status');
  const withCert = await postFailsafe(url, leader, 3000, undefined, daemonRequestSettings(config));
  assert.match(withCert.detail, /^\d{3} /, `reached the route: ${withCert.detail}`);
});
