/**
 * The xattr table. Identical xattr sets are stored once (one xattr id each). Inside the
 * key/value area a value seen before and longer than 8 bytes is stored out of line: a
 * reference to the first copy, as mksquashfs does. Names are kept without their prefix;
 * only the user., trusted. and security. namespaces exist in SquashFS: an entry with
 * another one is refused (E_TAR_UNSUPPORTED, as the other backends do) rather than
 * silently losing it.
 */
import { InputError } from '../../errors.js';
import { E_TAR_UNSUPPORTED } from '../../formats/tar/index.js';
import { ByteBuilder, METADATA_SIZE, MetadataWriter, NO_XATTR, XATTR_PREFIXES, XATTR_VALUE_OOL, type SyncCompress } from './metadata.js';

interface XattrItem {
  type: number;
  /** Name without prefix (binary string). */
  name: string;
  value: Buffer;
}

/** Refuses xattrs SquashFS cannot store. */
export function checkXattrNames(entry: string, xattrs: Map<string, Buffer>): void {
  for (const name of xattrs.keys()) {
    if (!XATTR_PREFIXES.some(([p]) => name.startsWith(p) && name.length > p.length)) {
      const text = Buffer.from(name, 'latin1').toString('utf8');
      throw new InputError(
        E_TAR_UNSUPPORTED,
        `tar entry ${JSON.stringify(entry)} has xattr ${JSON.stringify(text)}; SquashFS stores only user.*, trusted.* and security.* xattrs, so drop it from the tar`,
        { details: { entry, xattr: text } },
      );
    }
  }
}

export class XattrTable {
  private readonly sets: XattrItem[][] = [];
  private readonly ids = new Map<string, number>();
  dropped = 0;

  /** The xattr id of a set, or NO_XATTR for an empty one. */
  add(xattrs: Map<string, Buffer> | null): number {
    if (xattrs === null || xattrs.size === 0) return NO_XATTR;
    const items: XattrItem[] = [];
    for (const [full, value] of xattrs) {
      const prefix = XATTR_PREFIXES.find(([p]) => full.startsWith(p) && full.length > p.length);
      if (!prefix) {
        this.dropped++;
        continue;
      }
      items.push({ type: prefix[1], name: full.slice(prefix[0].length), value });
    }
    if (items.length === 0) return NO_XATTR;
    items.sort((a, b) => a.type - b.type || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const key = items.map((i) => `${i.type}:${i.name}=${i.value.toString('latin1')}`).join('\0');
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.sets.length;
      this.sets.push(items);
      this.ids.set(key, id);
    }
    return id;
  }

  get count(): number {
    return this.sets.length;
  }

  /**
   * Serialises the table for an image where it starts at `start`: key/value blocks, id
   * blocks, then the id table header and its index (what the superblock points at).
   */
  build(start: number, compress: SyncCompress): { parts: Buffer[]; size: number; tableStart: number } {
    const kv = new MetadataWriter(compress);
    const values = new Map<string, number>();
    const idEntries = new ByteBuilder(this.sets.length * 16);
    const b = new ByteBuilder();
    for (const items of this.sets) {
      const ref = kv.ref();
      let size = 0;
      for (const item of items) {
        const nameBytes = Buffer.from(item.name, 'latin1');
        const valueKey = item.value.toString('latin1');
        const earlier = item.value.length > 8 ? values.get(valueKey) : undefined;
        b.reset();
        b.u16(item.type | (earlier !== undefined ? XATTR_VALUE_OOL : 0)).u16(nameBytes.length).bytes(nameBytes);
        kv.write(b.result());
        size += b.length;
        b.reset();
        if (earlier !== undefined) {
          b.u32(8).u64(earlier);
        } else {
          if (item.value.length > 8) values.set(valueKey, kv.ref());
          b.u32(item.value.length).bytes(item.value);
        }
        kv.write(b.result());
        size += b.length;
      }
      idEntries.u64(ref).u32(items.length).u32(size);
    }
    const kvParts = kv.finish();
    const ids = new MetadataWriter(compress);
    const idBytes = idEntries.result();
    const idBlockStarts: number[] = [];
    for (let at = 0; at < idBytes.length; at += METADATA_SIZE) {
      idBlockStarts.push(start + kv.size + ids.blockStart);
      ids.write(idBytes.subarray(at, at + METADATA_SIZE));
    }
    const idParts = ids.finish();
    const tableStart = start + kv.size + ids.size;
    const header = new ByteBuilder(16 + idBlockStarts.length * 8);
    header.u64(start).u32(this.sets.length).u32(0);
    for (const s of idBlockStarts) header.u64(s);
    const headerBytes = header.result();
    return { parts: [...kvParts, ...idParts, headerBytes], size: kv.size + ids.size + headerBytes.length, tableStart };
  }
}
