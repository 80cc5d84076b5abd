// The payment IDs the run will spend, in fixed memory: one Buffer of fixed-width ASCII records
//
//   offset  0                  19   22
//           9870pppprrrrrrrrrrc ccc      19-digit ID, then its 3-digit security code
//
// Two million IDs take 44 MB here, against hundreds of MB as objects with two strings each. The hot
// path copies a record's bytes straight into the msgpack frame it is building (see wire.ts), so no
// ID ever becomes a JS string unless a mismatch is printed.

export const idChars = 19;
export const codeChars = 3;
export const recordBytes = idChars + codeChars;

export class IdStore {
  readonly bytes: Buffer;
  count = 0;

  constructor(readonly capacity: number) {
    this.bytes = Buffer.alloc(capacity * recordBytes);
  }

  get full(): boolean {
    return this.count >= this.capacity;
  }

  /** Append one issued ID; returns its index. */
  add(id: string, code: string): number {
    if (this.count >= this.capacity) throw new Error(`IdStore full (${this.capacity})`);
    if (id.length !== idChars || !/^\d+$/.test(id)) throw new Error(`unexpected payment ID shape: ${JSON.stringify(id)}`);
    if (code.length !== codeChars || !/^\d+$/.test(code)) throw new Error(`unexpected security code shape: ${JSON.stringify(code)}`);
    const at = this.count * recordBytes;
    this.bytes.write(id, at, idChars, 'latin1');
    this.bytes.write(code, at + idChars, codeChars, 'latin1');
    return this.count++;
  }

  /** Byte offset of record i (ID at +0, code at +19). */
  offset(i: number): number {
    return i * recordBytes;
  }

  id(i: number): string {
    return this.bytes.toString('latin1', i * recordBytes, i * recordBytes + idChars);
  }

  code(i: number): string {
    const at = i * recordBytes + idChars;
    return this.bytes.toString('latin1', at, at + codeChars);
  }
}
