import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { formatReference, parseReference } from '../../../src/registry/reference.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseReference', () => {
  it.each([
    ['busybox', 'docker.io', 'library/busybox', 'latest', null],
    ['busybox:1.36', 'docker.io', 'library/busybox', '1.36', null],
    ['library/busybox:1.36', 'docker.io', 'library/busybox', '1.36', null],
    ['grafana/grafana', 'docker.io', 'grafana/grafana', 'latest', null],
    ['docker.io/busybox', 'docker.io', 'library/busybox', 'latest', null],
    ['index.docker.io/library/busybox:1', 'docker.io', 'library/busybox', '1', null],
    ['registry-1.docker.io/user/app:v2', 'docker.io', 'user/app', 'v2', null],
    ['quay.io/prometheus/node-exporter:v1.8.0', 'quay.io', 'prometheus/node-exporter', 'v1.8.0', null],
    ['127.0.0.1:5000/ctrbake/sample:1.0', '127.0.0.1:5000', 'ctrbake/sample', '1.0', null],
    ['localhost/app', 'localhost', 'app', 'latest', null],
    ['localhost:5000/a/b/c:x_y-z.1', 'localhost:5000', 'a/b/c', 'x_y-z.1', null],
    [`busybox@${D}`, 'docker.io', 'library/busybox', null, D],
    [`127.0.0.1:5000/app:1.0@${D}`, '127.0.0.1:5000', 'app', '1.0', D],
    ['my.registry:443/team/app', 'my.registry:443', 'team/app', 'latest', null],
    ['foo__bar/a.b-c', 'docker.io', 'foo__bar/a.b-c', 'latest', null],
  ])('%s', (input, registry, repository, tag, digest) => {
    expect(parseReference(input)).toEqual({ registry, repository, tag, digest });
  });

  it.each([
    ['', 'empty'],
    ['   ', 'empty'],
    ['Busybox', 'uppercase name'],
    ['busybox:', 'empty tag'],
    ['busybox:-bad', 'tag starting with -'],
    [`busybox:${'t'.repeat(129)}`, 'tag too long'],
    ['busybox@sha256:abc', 'short digest'],
    [`busybox@md5:${'a'.repeat(32)}`, 'other algorithm'],
    [`busybox@sha256:${'A'.repeat(64)}`, 'uppercase digest'],
    ['127.0.0.1:5000/', 'no repository'],
    ['a//b', 'empty component'],
    ['a/-b', 'component starting with -'],
    ['bad_host!:5000/x', 'bad host'],
  ])('rejects %j (%s) with E_BAD_REFERENCE, a usage error', (input) => {
    let error: unknown;
    try {
      parseReference(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe('E_BAD_REFERENCE');
    expect((error as ConfigError).exitCode).toBe(2);
  });

  it.each([
    ['busybox', 'docker.io/library/busybox:latest'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`],
    [`127.0.0.1:5000/app:1.0@${D}`, `127.0.0.1:5000/app:1.0@${D}`],
  ])('formats %s as %s', (input, expected) => {
    expect(formatReference(parseReference(input))).toBe(expected);
  });
});
