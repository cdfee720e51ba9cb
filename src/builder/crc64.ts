/**
 * CRC-64 with the ISO polynomial, bit-reflected, as Go's hash/crc64 computes it with
 * crc64.MakeTable(crc64.ISO): tar-split stores it (big-endian, 8 bytes) as the checksum of
 * each file's content. Two 32-bit halves instead of BigInt: this runs over every byte of
 * every layer.
 */
const TABLE_HI = new Uint32Array(256);
const TABLE_LO = new Uint32Array(256);
// Reflected ISO polynomial 0xD800000000000000: only the high half has bits.
const POLY_HI = 0xd8000000;

for (let i = 0; i < 256; i++) {
  let hi = 0;
  let lo = i;
  for (let bit = 0; bit < 8; bit++) {
    const lsb = lo & 1;
    lo = ((lo >>> 1) | ((hi & 1) << 31)) >>> 0;
    hi >>>= 1;
    if (lsb) hi = (hi ^ POLY_HI) >>> 0;
  }
  TABLE_HI[i] = hi;
  TABLE_LO[i] = lo;
}

export class Crc64 {
  // Go keeps the register inverted between writes: ^crc on entry and on exit.
  private hi = 0xffffffff;
  private lo = 0xffffffff;

  update(data: Uint8Array): this {
    let hi = this.hi;
    let lo = this.lo;
    for (let i = 0; i < data.length; i++) {
      const index = (lo ^ data[i]!) & 0xff;
      lo = ((lo >>> 8) | ((hi & 0xff) << 24)) >>> 0;
      hi >>>= 8;
      hi = (hi ^ TABLE_HI[index]!) >>> 0;
      lo = (lo ^ TABLE_LO[index]!) >>> 0;
    }
    this.hi = hi;
    this.lo = lo;
    return this;
  }

  /** The 8 checksum bytes, big-endian, as Go's Sum(nil). */
  digest(): Buffer {
    const out = Buffer.alloc(8);
    out.writeUInt32BE((this.hi ^ 0xffffffff) >>> 0, 0);
    out.writeUInt32BE((this.lo ^ 0xffffffff) >>> 0, 4);
    return out;
  }
}
