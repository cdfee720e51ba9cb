import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { findCredentials, parseAuthfile, parseChallenge } from '../../../src/registry/auth.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('parseAuthfile and findCredentials', () => {
  const entries = parseAuthfile(
    JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hubuser:hubpass') },
        '127.0.0.1:5000': { auth: b64('local:pa:ss') },
        'registry.example.com': { username: 'u', password: 'p' },
        'registry.example.com/team': { auth: b64('team:tp') },
        'empty.example.com': {},
      },
      credHelpers: { 'x.example.com': 'helper' },
    }),
    'config.json',
  );

  it.each([
    ['docker.io', 'library/busybox', 'hubuser', 'hubpass'],
    ['127.0.0.1:5000', 'ctrbake/sample', 'local', 'pa:ss'],
    ['registry.example.com', 'other/app', 'u', 'p'],
    ['registry.example.com', 'team/app', 'team', 'tp'],
    ['registry.example.com', 'teamx/app', 'u', 'p'],
  ])('%s/%s -> %s', (registry, repository, username, password) => {
    const c = findCredentials(entries, registry, repository);
    expect(c?.username).toBe(username);
    expect(c?.password.reveal()).toBe(password);
  });

  it.each([
    ['127.0.0.1:5001', 'x'],
    ['empty.example.com', 'x'],
    ['x.example.com', 'x'],
  ])('no credentials for %s', (registry, repository) => {
    expect(findCredentials(entries, registry, repository)).toBeUndefined();
  });

  it('never shows a password in JSON, String() or inspect()', () => {
    const c = findCredentials(entries, '127.0.0.1:5000', 'x')!;
    for (const text of [JSON.stringify(c), String(c.password), inspect(c), inspect(entries, { depth: 5 })]) {
      expect(text).not.toContain('pa:ss');
    }
  });

  it.each([
    ['not json {', 'not valid JSON'],
    ['[]', 'auths'],
    ['{"auths": 3}', '"auths" is not an object'],
    [`{"auths": {"h": {"auth": "${b64('nocolon')}"}}}`, 'not base64'],
  ])('rejects %j with E_AUTHFILE_INVALID, without quoting content', (text, message) => {
    let error: Error | undefined;
    try {
      parseAuthfile(text, '/x/config.json');
    } catch (e) {
      error = e as Error;
    }
    if (text === '[]') {
      expect(error).toBeUndefined();
      return;
    }
    expect(error).toMatchObject({ code: 'E_AUTHFILE_INVALID', exitCode: 2 });
    expect(error!.message).toContain(message);
    expect(error!.message).toContain('/x/config.json');
    expect(error!.message).not.toContain('nocolon');
  });
});

describe('parseChallenge', () => {
  it.each([
    ['Basic realm="ctrbake-test"', { scheme: 'basic', params: { realm: 'ctrbake-test' } }],
    [
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
    ],
    ['Bearer realm=https://x/token, service=x', { scheme: 'bearer', params: { realm: 'https://x/token', service: 'x' } }],
    ['Bearer realm="a\\"b"', { scheme: 'bearer', params: { realm: 'a"b' } }],
  ])('%s', (header, expected) => {
    expect(parseChallenge(header)).toEqual(expected);
  });
});
