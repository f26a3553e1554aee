/** The `pgwarden` binary from the checkout: exit codes and one-line errors a person sees. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/pgwarden', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../../docs/examples/patroni-etcd3.yml', import.meta.url));

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env }, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('--validate-config accepts a Patroni config unchanged', () => {
  const r = run(['daemon', '--validate-config', EXAMPLE]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /configuration is valid/);
});

test('a bad config exits 2 with one line naming the key and the reason', (t) => {
  const dir = mkdtempSync('/tmp/pgwarden-cli-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'bad.yml');
  writeFileSync(file, 'scope: x\nname: m\nrestapi: {listen: "127.0.0.1:8008"}\netcd3: {hosts: "127.0.0.1:2379"}\npostgresql:\n  listen: 127.0.0.1:5432\n  authentication: {superuser: {username: postgres}, replication: {username: rep}}\n');
  const r = run(['daemon', file]);
  assert.equal(r.code, 2);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /postgresql\.data_dir: required/);
});

test('a missing config file is a clear error, not a stack trace', () => {
  const r = run(['daemon', '/nonexistent.yml']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /cannot read config file \/nonexistent\.yml/);
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
});

test('unsupported keys are warned about, by name', (t) => {
  const dir = mkdtempSync('/tmp/pgwarden-cli-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'w.yml');
  writeFileSync(file, `consul:\n  host: 127.0.0.1:8500\n${(spawnSync('cat', [EXAMPLE], { encoding: 'utf8' }).stdout)}`);
  const r = run(['daemon', '--validate-config', file]);
  assert.equal(r.code, 0);
  assert.match(r.stderr, /consul: not supported yet/);
});

test('local status without a cluster exits non-zero with a hint', () => {
  const r = run(['local', 'status', '--dir', '/tmp/pgwarden-no-such-cluster']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /pgwarden local up/);
});

test('unknown commands and options are refused', () => {
  assert.notEqual(run(['frobnicate']).code, 0);
  const r = run(['local', 'up', '--members', 'lots']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--members/);
});

test('the daemon (bundled, as bin/pgwarden runs it) does not load Node 20\'s undici: pg probes for Cloudflare with a fetch Response unless navigator exists', () => {
  // Prints, at exit, which of Node's built-in modules holding undici were loaded.
  const hook = `data:text/javascript,process.on('exit', () => process.stderr.write('undici:' + JSON.stringify(process.moduleLoadList.filter((m) => m.includes('undici')))))`;
  const r = spawnSync(process.execPath, ['--import', hook, BIN, 'daemon', '--validate-config', EXAMPLE], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /undici:\[\]/);
});

test('--version is the package version (found from the bundle as from the sources)', () => {
  const pkg = JSON.parse(spawnSync('cat', [fileURLToPath(new URL('../../package.json', import.meta.url))], { encoding: 'utf8' }).stdout) as { version: string };
  assert.equal(run(['--version']).stdout.trim(), pkg.version);
});

test('a REST API port already in use is a one-line error and exit 1, not an internal error', async (t) => {
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.after(() => holder.close());
  const port = (holder.address() as net.AddressInfo).port;
  const dir = mkdtempSync('/tmp/pgwarden-cli-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // spawnSync blocks this process's loop, but the port stays bound in the kernel.
  const r = run(['daemon', EXAMPLE], { PATRONI_RESTAPI_LISTEN: `127.0.0.1:${port}`, PATRONI_POSTGRESQL_DATA_DIR: join(dir, 'data'), PATRONI_ETCD3_HOSTS: '127.0.0.1:1' });
  assert.equal(r.code, 1, r.stderr);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('pgwarden:'));
  assert.deepEqual(errors, [`pgwarden: REST API cannot listen on 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}`]);
  assert.doesNotMatch(r.stderr, /internal error|at .*\.js:\d+/);
});

test('the Kubernetes store under --jitless (no WebAssembly for its HTTP client) is refused with a clear error', (t) => {
  const dir = mkdtempSync('/tmp/pgwarden-cli-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, 'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n');
  const file = join(dir, 'k.yml');
  const example = readFileSync(EXAMPLE, 'utf8').replace(/^etcd3:\n(?: .*\n)+/m, 'kubernetes:\n  namespace: default\n  labels: {application: pgwarden}\n');
  assert.match(example, /^kubernetes:/m);
  writeFileSync(file, example);
  const r = spawnSync(process.execPath, ['--jitless', BIN, 'daemon', file], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, KUBECONFIG: kubeconfig, PATRONI_POSTGRESQL_DATA_DIR: join(dir, 'data') },
    timeout: 30_000,
  });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^pgwarden: kubernetes: this needs WebAssembly, which node was started without \(--jitless\)/m);
  assert.doesNotMatch(r.stderr, /ReferenceError|internal error/);
});

test("local's daemons run with bin/pgwarden's own node flags (read from its shebang), plus --jitless on etcd, and node takes them all", async () => {
  const { daemonNodeFlags } = await import('../../src/local/cluster.js');
  const kube = daemonNodeFlags('kubernetes');
  const etcd = daemonNodeFlags('etcd');
  assert.ok(kube.includes('--max-semi-space-size=1') && kube.includes('--optimize-for-size'), kube.join(' '));
  assert.deepEqual(etcd, [...kube, '--jitless', '--no-expose-wasm']);
  for (const flags of [kube, etcd]) {
    const r = spawnSync(process.execPath, [...flags, '-e', 'process.stdout.write(JSON.stringify(process.execArgv))'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as string[]).slice(0, flags.length), flags);
    assert.equal(r.stderr, '', 'node warns about none of them');
  }
});
