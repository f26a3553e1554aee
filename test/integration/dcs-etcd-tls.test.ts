/**
 * etcd over TLS with client certificates (Patroni's etcd3 `protocol: https`, `cacert`, `cert`, `key`):
 * a real etcd started with --client-cert-auth; the daemon's store and `pgwarden ctl` reach it with our
 * CA and client certificate, and fail (bounded by retry_timeout) without a certificate or with one from
 * a CA etcd does not trust. Config: the keys are read, and an unreadable file is an error naming its key.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { Etcd3Store, etcdCredentials } from '../../src/dcs/etcd.js';
import { startEtcd, type EtcdProcess } from '../../src/local/etcd.js';
import { loadConfig } from '../../src/config/index.js';
import { systemClock as clock } from '../../src/util/clock.js';
import { ConfigError, DcsError } from '../../src/util/errors.js';
import { silentLogger } from '../../src/util/log.js';
import { makeTestCerts, type TestCerts } from '../helpers/certs.js';

const BIN = join(import.meta.dirname, '../../bin/pgwarden');
let etcd: EtcdProcess | undefined;
let dir: string;
let certs: TestCerts;
const stores: Etcd3Store[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgwarden-etcd-tls-'));
  certs = makeTestCerts();
  etcd = await startEtcd({ dir, tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca, clientCertAuth: true } });
});

after(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await etcd?.stop();
  certs?.remove();
  rmSync(dir, { recursive: true, force: true });
});

function store(tls: { cacert?: string; cert?: string; key?: string }, protocol: 'http' | 'https' = 'https'): Etcd3Store {
  const s = new Etcd3Store({ hosts: [`127.0.0.1:${etcd!.clientPort}`], protocol, ...tls, namespace: '/service/', scope: 'tls', name: 'm1', ttl: 10, retryTimeout: 3, clock, log: silentLogger() });
  stores.push(s);
  return s;
}

test('with our CA and client certificate the store works over TLS', async () => {
  const s = store({ cacert: certs.ca, cert: certs.clientCert, key: certs.clientKey });
  assert.equal(await s.initialize('', true), true);
  assert.equal(await s.setConfig({ ttl: 10 }, null), true);
  assert.equal((await s.load()).initialize, '');
});

test('without a client certificate, or with one etcd does not trust, calls fail within retry_timeout', async () => {
  await assert.rejects(store({ cacert: certs.ca }).load(), DcsError);
  await assert.rejects(store({ cacert: certs.ca, cert: certs.strangerCert, key: certs.strangerKey }).load(), DcsError);
  await assert.rejects(store({}, 'http').load(), DcsError, 'plain http to a TLS port');
});

test('config: the TLS keys are read; a missing key file or an unreadable file names its key', () => {
  const cfg = join(dir, 'member.yml');
  writeFileSync(
    cfg,
    stringify({
      scope: 'tls',
      name: 'm1',
      restapi: { listen: '127.0.0.1:8008' },
      etcd3: { hosts: [`127.0.0.1:${etcd!.clientPort}`], protocol: 'https', cacert: certs.ca, cert: certs.clientCert, key: certs.clientKey },
      postgresql: { listen: '127.0.0.1:5432', data_dir: join(dir, 'data'), authentication: { superuser: { username: 'postgres', password: 'x' }, replication: { username: 'r', password: 'x' } } },
    }),
  );
  const { config, warnings } = loadConfig({ file: cfg, env: {} });
  assert.deepEqual([config.etcd3?.cacert, config.etcd3?.cert, config.etcd3?.key], [certs.ca, certs.clientCert, certs.clientKey]);
  assert.deepEqual(warnings.filter((w) => w.startsWith('etcd3')), [], 'no "not supported" warning');
  assert.throws(() => etcdCredentials({ cacert: join(dir, 'nope.pem') }), (e: unknown) => e instanceof ConfigError && e.path === 'etcd3.cacert');
  assert.throws(() => etcdCredentials({ cacert: certs.ca, cert: certs.clientCert }), (e: unknown) => e instanceof ConfigError && e.path === 'etcd3.key');
  assert.ok(etcdCredentials({ cacert: certs.ca, cert: certs.serverCombined })?.privateKey, 'a key inside the cert file is used');
  // pgwarden ctl reads the same section and reaches the same etcd.
  const r = spawnSync(BIN, ['ctl', '-c', cfg, 'show-config'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /ttl: 10/);
});
