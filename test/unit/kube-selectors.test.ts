/** Label and field selectors with apiserver's grammar and semantics (kube-api-subset.md §5 Selectors). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from '../../src/kube/apiserver/selectors.js';
import { ApiError } from '../../src/kube/apiserver/errors.js';

const labels = { app: 'pg', role: 'primary', 'cluster-name': 'demo', 'example.com/tier': 'db' };
const m = (sel: string, l: Record<string, string> = labels): boolean => matchesLabels(parseLabelSelector(sel), l);

test('equality operators: =, ==, != (absent key matches !=)', () => {
  assert.equal(m('app=pg'), true);
  assert.equal(m('app==pg'), true);
  assert.equal(m('app=other'), false);
  assert.equal(m('app!=pg'), false);
  assert.equal(m('app!=x'), true);
  assert.equal(m('missing!=x'), true);
  assert.equal(m('missing=x'), false);
  assert.equal(m('example.com/tier=db'), true);
});

test('set operators: in, notin (absent key matches notin), whitespace as client-node sends it', () => {
  assert.equal(m('role in (primary,replica)'), true);
  assert.equal(m('role in (replica)'), false);
  assert.equal(m('role notin (replica, standby)'), true);
  assert.equal(m('role notin (primary)'), false);
  assert.equal(m('missing notin (a)'), true);
  assert.equal(m('missing in (a)'), false);
  // client-node sent `team+in+%28a%2Cb%29`: URLSearchParams decodes + as space
  assert.equal(new URLSearchParams('labelSelector=team+in+%28a%2Cb%29').get('labelSelector'), 'team in (a,b)');
  assert.equal(m('team in (a,b)', { team: 'b' }), true);
});

test('existence: key and !key; comma is AND; empty selector matches everything', () => {
  assert.equal(m('role'), true);
  assert.equal(m('!role'), false);
  assert.equal(m('!missing'), true);
  assert.equal(m('app=pg,cluster-name=demo,role'), true);
  assert.equal(m('app=pg,cluster-name=other'), false);
  assert.equal(m(''), true);
  assert.deepEqual(parseLabelSelector(undefined), []);
});

test('gt/lt compare integers', () => {
  assert.equal(m('n>3', { n: '4' }), true);
  assert.equal(m('n<3', { n: '4' }), false);
  assert.equal(m('n>3', { n: 'x' }), false);
});

test('malformed label selectors are 400 BadRequest', () => {
  for (const bad of ['app=pg,', 'role in primary', 'a b', '=x', 'role in (a', 'bad key=1']) {
    assert.throws(
      () => parseLabelSelector(bad),
      (e: unknown) => e instanceof ApiError && e.code === 400 && e.reason === 'BadRequest',
      bad,
    );
  }
});

test('field selectors on metadata.name / metadata.namespace; unknown fields are 400', () => {
  const o = { metadata: { name: 'demo-0', namespace: 'default' }, status: { phase: 'Running' } };
  assert.equal(matchesFields(parseFieldSelector('metadata.name=demo-0'), o), true);
  assert.equal(matchesFields(parseFieldSelector('metadata.name==demo-1'), o), false);
  assert.equal(matchesFields(parseFieldSelector('metadata.name!=demo-1,metadata.namespace=default'), o), true);
  assert.equal(matchesFields(parseFieldSelector('status.phase=Running', ['status.phase']), o), true);
  assert.throws(() => parseFieldSelector('status.phase=Running'), (e: unknown) => e instanceof ApiError && e.code === 400 && /field label not supported: status.phase/.test(e.message));
  assert.throws(() => parseFieldSelector('metadata.name'), (e: unknown) => e instanceof ApiError && e.code === 400);
});
