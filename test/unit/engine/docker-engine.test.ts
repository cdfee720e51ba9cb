import { describe, expect, it } from 'vitest';
import { demuxDockerLogs } from '../../../src/engine/docker-engine.js';

describe('demuxDockerLogs', () => {
  it('splits stdout and stderr frames', () => {
    const frame = (type: number, text: string) => {
      const body = Buffer.from(text);
      const head = Buffer.alloc(8);
      head[0] = type;
      head.writeUInt32BE(body.length, 4);
      return Buffer.concat([head, body]);
    };
    expect(demuxDockerLogs(Buffer.concat([frame(1, 'out1\n'), frame(2, 'err\n'), frame(1, 'out2\n')]))).toEqual({ stdout: 'out1\nout2\n', stderr: 'err\n' });
  });
});
