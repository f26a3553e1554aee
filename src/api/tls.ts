/**
 * TLS of the REST API, both ends, with Patroni 3.0's rules.
 *
 * Server (patroni/api.py `RestApiServer.__initialize` and `check_access`): `restapi.certfile` makes it
 * HTTPS (the key may sit in the same PEM file, `keyfile_password` decrypts an encrypted key),
 * `cafile` is what client certificates must chain to, `ciphers` is an OpenSSL cipher list, and
 * `verify_client` is
 *   - none (default): no client certificate is asked for;
 *   - required: the handshake fails without a valid client certificate, so every request has one;
 *   - optional: one is asked for, an invalid one fails the handshake, none is allowed at the TLS
 *     level — but every unsafe request (the routes behind `check_access`) without one gets
 *     403 "client certificate required".
 *
 * Client (patroni/request.py `PatroniRequest`): every setting is `ctl.<key>`, else `restapi.<key>`:
 * basic auth from `authentication`, a client certificate from `certfile` (+ `keyfile`,
 * `keyfile_password`), CA certificates from `ctl.cacert`, else `restapi.cafile`. The server's
 * certificate is verified unless insecure; with a client certificate the chain is verified even when
 * insecure, and only the host name check is skipped. The daemon itself always runs insecure
 * (`PatroniRequest(config, True)` in __main__.py): it verifies peers only when it presents a
 * certificate of its own.
 */
import { createHash, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { ServerOptions } from 'node:https';
import { createSecureContext, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { DaemonConfig } from '../config/types.js';
import { ConfigError, errorMessage } from '../util/errors.js';
import { HttpError } from './http.js';
import type { ApiRequest } from './types.js';

export type RestapiTls = Pick<DaemonConfig['restapi'], 'certfile' | 'keyfile' | 'keyfile_password' | 'cafile' | 'ciphers' | 'verify_client'>;

/** A PEM file's content, or a ConfigError naming the key that names the file. */
export function readPemFile(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ConfigError(key, `cannot read ${path}: ${errorMessage(e)}`);
  }
}

/**
 * node:https server options for `restapi`, or null for plain HTTP (no certfile). Reads the files and
 * builds a secure context once, so that a wrong passphrase, a key that does not match the certificate
 * or a bad cipher list is a ConfigError naming its key, not a failure at the first connection.
 */
export function serverTlsOptions(r: RestapiTls): ServerOptions | null {
  if (!r.certfile) return null;
  const verify = r.verify_client ?? 'none';
  const opts: ServerOptions = {
    cert: readPemFile(r.certfile, 'restapi.certfile'),
    key: readPemFile(r.keyfile ?? r.certfile, r.keyfile ? 'restapi.keyfile' : 'restapi.certfile'),
    requestCert: verify !== 'none',
    // optional: the handshake succeeds without a certificate; an invalid one is refused in refuseInvalidPeer.
    rejectUnauthorized: verify === 'required',
  };
  if (r.keyfile_password !== undefined) opts.passphrase = r.keyfile_password;
  if (r.cafile) opts.ca = readPemFile(r.cafile, 'restapi.cafile');
  if (r.ciphers) opts.ciphers = r.ciphers;
  try {
    createSecureContext(opts);
  } catch (e) {
    // A wrong passphrase does not always say so: a decryption that happens to unpad cleanly fails later as
    // "DECODER routines::unsupported". An encrypted key that does not open with the password is the password's fault.
    const key = wrongPassphrase(opts.key as Buffer, r.keyfile_password) ? 'restapi.keyfile_password' : tlsErrorKey(e, r, 'restapi');
    throw new ConfigError(key, `cannot use the REST API certificate: ${errorMessage(e)}`);
  }
  return opts;
}

/** The PEM holds an encrypted private key that this passphrase (or none) does not open. */
function wrongPassphrase(pem: Buffer, passphrase: string | undefined): boolean {
  const text = pem.toString('utf8');
  if (!/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text)) return false;
  try {
    createPrivateKey({ key: text, format: 'pem', passphrase: passphrase ?? '' });
    return false;
  } catch {
    return true;
  }
}

/** Which key a secure-context error is about, for the message. */
function tlsErrorKey(e: unknown, r: { keyfile?: string | undefined; keyfile_password?: string | undefined; ciphers?: string | undefined }, section: string): string {
  const m = errorMessage(e).toLowerCase();
  if (/decrypt|passphrase|password/.test(m)) return `${section}.keyfile_password`;
  if (/cipher/.test(m) && r.ciphers) return `${section}.ciphers`;
  if (/key/.test(m)) return r.keyfile ? `${section}.keyfile` : `${section}.certfile`;
  return `${section}.certfile`;
}

/**
 * verify_client optional: Python's CERT_OPTIONAL fails the handshake when the client sends a
 * certificate that does not verify; node lets it through with `authorized` false, so drop it here.
 */
export function refuseInvalidPeer(socket: TLSSocket): void {
  if (!socket.authorized && Object.keys(socket.getPeerCertificate() ?? {}).length > 0) socket.destroy();
}

/** Whether the request came over TLS with a client certificate that verified (Patroni's `getpeercert()`). */
export function hasVerifiedClientCert(req: IncomingMessage): boolean {
  const s = req.socket as Partial<TLSSocket>;
  return s.encrypted === true && s.authorized === true;
}

/** Patroni's check_access, client certificate part: 403 for an unsafe request without a verified certificate. */
export function checkClientCert(req: ApiRequest, restapi: RestapiTls): void {
  const verify = restapi.verify_client ?? 'none';
  if (!restapi.certfile || verify === 'none') return;
  if (req.clientCertificate !== true) throw new HttpError(403, 'client certificate required');
}

/** Something that changes when the server must be rebuilt: the settings and the files' contents. */
export function tlsFingerprint(r: RestapiTls): string {
  const h = createHash('sha256').update(JSON.stringify([r.certfile, r.keyfile, r.keyfile_password, r.cafile, r.ciphers, r.verify_client]));
  for (const f of [r.certfile, r.keyfile, r.cafile]) {
    if (!f) continue;
    try {
      h.update(readFileSync(f));
    } catch {
      h.update(`unreadable ${f}`);
    }
  }
  return h.digest('hex');
}

// ---------------------------------------------------------------------------------------------
// client side

/** What PatroniRequest takes from the config (request.py), keys already resolved ctl → restapi. */
export interface RequestSettings {
  auth?: { username: string; password: string };
  insecure: boolean;
  cacert?: string;
  certfile?: string;
  keyfile?: string;
  keyfilePassword?: string;
}

/** The Authorization header value of basic auth. */
export function basicAuthHeader(auth: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
}

/** node:https request options for `settings`; the files are read now (a ConfigError names the key). */
export function clientTlsOptions(s: RequestSettings, section = 'ctl'): ConnectionOptions {
  const opts: ConnectionOptions = {};
  if (s.cacert) opts.ca = readPemFile(s.cacert, `${section}.cacert`);
  if (s.certfile) {
    opts.cert = readPemFile(s.certfile, `${section}.certfile`);
    // As urllib3's key_file: without one, the key is in the certificate's PEM file.
    opts.key = readPemFile(s.keyfile ?? s.certfile, s.keyfile ? `${section}.keyfile` : `${section}.certfile`);
    if (s.keyfilePassword !== undefined) opts.passphrase = s.keyfilePassword;
    // request.py: with a client certificate cert_reqs is CERT_REQUIRED even when insecure; insecure
    // then only turns the host name check off (assert_hostname=False).
    opts.rejectUnauthorized = true;
    if (s.insecure) opts.checkServerIdentity = () => undefined;
  } else {
    opts.rejectUnauthorized = !s.insecure;
  }
  return opts;
}

type Section = Record<string, unknown> | undefined;

/**
 * request.py `_get_cfg_value`: `ctl.<key>` or else `restapi.<key>` (cacert falls back to restapi.cafile);
 * `insecure` is the caller's when given (the daemon passes true), else `ctl.insecure`.
 */
export function requestSettings(ctl: Section, restapi: Section, insecure?: boolean): RequestSettings {
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);
  const pick = (k: string): string | undefined => str(ctl?.[k]) ?? str(restapi?.[k]);
  const creds = (v: unknown): { username: string; password: string } | undefined => {
    if (!v || typeof v !== 'object') return undefined;
    const o = v as Record<string, unknown>;
    const username = str(o.username);
    return username === undefined ? undefined : { username, password: str(o.password) ?? '' };
  };
  const s: RequestSettings = { insecure: insecure ?? ctl?.insecure === true };
  const auth = creds(ctl?.authentication) ?? creds(restapi?.authentication);
  if (auth) s.auth = auth;
  const cacert = str(ctl?.cacert) ?? str(restapi?.cafile);
  if (cacert) s.cacert = cacert;
  const certfile = pick('certfile');
  if (certfile) {
    s.certfile = certfile;
    const keyfile = pick('keyfile');
    if (keyfile) s.keyfile = keyfile;
    const pass = pick('keyfile_password');
    if (pass !== undefined) s.keyfilePassword = pass;
  }
  return s;
}

/** The daemon's own requests to other members (Patroni: `PatroniRequest(config, True)`). */
export function daemonRequestSettings(config: Pick<DaemonConfig, 'ctl' | 'restapi'>): RequestSettings {
  return requestSettings(config.ctl, config.restapi as unknown as Record<string, unknown>, true);
}
