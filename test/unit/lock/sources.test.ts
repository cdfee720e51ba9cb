import { describe, expect, it } from 'vitest';
import { parseComposeImages, parseImagesList, parseSources } from '../../../src/lock/sources.js';

describe('parseImagesList', () => {
  it('takes one reference per line, skips comments and blank lines, and remembers the line', () => {
    const text = '# images for the device\n\nbusybox:1.36\n  127.0.0.1:5000/app:1.0   # the app\r\n#quay.io/x\n';
    expect(parseImagesList(text, 'images.txt')).toEqual([
      { text: 'busybox:1.36', origin: 'images.txt:3' },
      { text: '127.0.0.1:5000/app:1.0', origin: 'images.txt:4' },
    ]);
  });
});

describe('parseComposeImages', () => {
  it('takes every services.*.image and skips build-only services', () => {
    const text = 'services:\n  web:\n    image: nginx:1.25\n  db:\n    image: "127.0.0.1:5000/db:2"\n  local:\n    build: .\n';
    expect(parseComposeImages(text, 'compose.yaml').map((s) => s.text)).toEqual(['nginx:1.25', '127.0.0.1:5000/db:2']);
  });

  it.each([
    ['services: [', 'E_COMPOSE_INVALID'],
    ['version: "3"\n', 'E_COMPOSE_INVALID'],
    ['services:\n  a:\n    image: 3\n', 'E_COMPOSE_INVALID'],
    ['services:\n  a:\n    image: app:${TAG}\n', 'E_BAD_REFERENCE'],
  ])('rejects %j with %s', (text, code) => {
    expect(() => parseComposeImages(text, 'compose.yaml')).toThrow(expect.objectContaining({ code, exitCode: 1 }));
  });
});

describe('parseSources', () => {
  it('a bad reference from a file is an input error naming file and line', () => {
    expect(() => parseSources([{ text: 'Bad:ref', origin: 'images.txt:7' }])).toThrow(
      expect.objectContaining({ code: 'E_BAD_REFERENCE', exitCode: 1, message: expect.stringContaining('images.txt:7') }),
    );
  });
  it('a bad reference argument is a usage error', () => {
    expect(() => parseSources([{ text: 'Bad:ref', origin: 'argument' }])).toThrow(expect.objectContaining({ code: 'E_BAD_REFERENCE', exitCode: 2 }));
  });
});
