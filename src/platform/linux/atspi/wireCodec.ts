/**
 * The D-Bus wire format for `wire.ts`: signatures (parsed once, cached), a method call marshalled straight
 * into one buffer (little-endian, protocol version 1), and a whole message parsed into the values `dbus-next`
 * gives (`Variant` for `v`, objects for `a{..}`, arrays for structs, `Buffer` for `ay`, `bigint` for `x`/`t`).
 *
 * Sources: the D-Bus specification (message format, type system, alignment, header fields).
 */
import dbus from 'dbus-next';
import { C, parseSig, T_ARRAY, T_DICT, T_STRUCT, T_VARIANT, type SigNode } from './wireSignature.js';

export { parseSig, type SigNode } from './wireSignature.js';

/** Bytes in one array, at most. */
export const MAX_ARRAY = 64 * 1024 * 1024;
/** Bytes in one message, at most. */
export const MAX_MESSAGE = 128 * 1024 * 1024;
/** Variants nested in one value, at most (the specification's total nesting limit). */
const MAX_VARIANTS = 64;

// ------------------------------------------------------------------------------------------ writing

/** A growable little-endian writer. */
class Writer {
  buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n + 64));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  align(n: number): void {
    const p = (this.pos + n - 1) & ~(n - 1);
    this.room(p - this.pos);
    while (this.pos < p) this.buf[this.pos++] = 0;
  }
  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }
  u32(v: number): void {
    this.align(4);
    this.room(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }
  i32(v: number): void {
    this.align(4);
    this.room(4);
    this.buf.writeInt32LE(v | 0, this.pos);
    this.pos += 4;
  }
  /** `s`/`o`: u32 length, UTF-8 bytes, NUL. */
  str(v: string): void {
    this.align(4);
    this.room(4 + v.length * 3 + 1);
    const n = this.buf.write(v, this.pos + 4, 'utf8');
    this.buf.writeUInt32LE(n, this.pos);
    this.pos += 4 + n;
    this.buf[this.pos++] = 0;
  }
  /** `g`: u8 length, bytes, NUL. */
  sig(v: string): void {
    this.room(v.length + 2);
    this.buf[this.pos++] = v.length;
    this.pos += this.buf.write(v, this.pos, 'latin1');
    this.buf[this.pos++] = 0;
  }
}

/** Whether {@link writeValue} can marshal a type (the argument types of AT-SPI's read calls). */
function writable(n: SigNode): boolean {
  if (n.t === T_ARRAY) return n.c[0]!.t !== T_DICT && writable(n.c[0]!);
  if (n.t === T_STRUCT) return n.c.every(writable);
  return 'ybnqiudsog'.includes(String.fromCharCode(n.t));
}

function writeValue(w: Writer, n: SigNode, v: unknown): void {
  switch (n.t) {
    case 0x79: // y
      w.u8(Number(v));
      return;
    case 0x62: // b
      w.u32(v ? 1 : 0);
      return;
    case 0x6e: // n
      w.align(2);
      w.room(2);
      w.buf.writeInt16LE(Number(v), w.pos);
      w.pos += 2;
      return;
    case 0x71: // q
      w.align(2);
      w.room(2);
      w.buf.writeUInt16LE(Number(v), w.pos);
      w.pos += 2;
      return;
    case 0x69: // i
      w.i32(Number(v));
      return;
    case 0x75: // u
      w.u32(Number(v));
      return;
    case 0x64: // d
      w.align(8);
      w.room(8);
      w.buf.writeDoubleLE(Number(v), w.pos);
      w.pos += 8;
      return;
    case 0x73: // s
    case 0x6f: // o
      w.str(String(v));
      return;
    case 0x67: // g
      w.sig(String(v));
      return;
    case T_STRUCT: {
      w.align(8);
      const xs = v as unknown[];
      n.c.forEach((c, i) => writeValue(w, c, xs[i]));
      return;
    }
    case T_ARRAY: {
      const el = n.c[0]!;
      w.u32(0);
      const lenAt = w.pos - 4;
      const a = elementAlign(el);
      w.align(a);
      const start = w.pos;
      for (const x of v as unknown[]) writeValue(w, el, x);
      w.buf.writeUInt32LE(w.pos - start, lenAt);
      return;
    }
    default:
      throw new Error(`cannot marshal type ${n.s}`);
  }
}

function elementAlign(n: SigNode): number {
  switch (n.t) {
    case 0x79: // y
    case 0x67: // g
    case T_VARIANT:
      return 1;
    case 0x6e: // n
    case 0x71: // q
      return 2;
    case 0x78: // x
    case 0x74: // t
    case 0x64: // d
    case T_STRUCT:
    case T_DICT:
      return 8;
    default:
      return 4;
  }
}

const FIELD_PATH = 1, FIELD_INTERFACE = 2, FIELD_MEMBER = 3, FIELD_ERROR_NAME = 4, FIELD_REPLY_SERIAL = 5, FIELD_DESTINATION = 6, FIELD_SIGNATURE = 8;
const TYPE_CALL = 1;
/** Message types of a method return and an error reply. */
export const TYPE_RETURN = 2, TYPE_ERROR = 3;

/**
 * One method call as bytes (little-endian, protocol version 1).
 * @throws Error when the body does not fit the signature.
 */
export function marshalCall(serial: number, destination: string | null, path: string, iface: string, member: string, signature: string, body: readonly unknown[]): Buffer {
  const w = new Writer(128 + path.length * 3 + iface.length + member.length + (destination?.length ?? 0) * 3 + 64 * body.length);
  w.pos = 16;
  const field = (code: number, type: string, write: () => void) => {
    w.align(8);
    w.u8(code);
    w.sig(type);
    write();
  };
  field(FIELD_PATH, 'o', () => w.str(path));
  field(FIELD_INTERFACE, 's', () => w.str(iface));
  field(FIELD_MEMBER, 's', () => w.str(member));
  if (destination) field(FIELD_DESTINATION, 's', () => w.str(destination));
  if (signature) field(FIELD_SIGNATURE, 'g', () => w.sig(signature));
  const fieldsLen = w.pos - 16;
  w.align(8);
  const bodyStart = w.pos;
  if (signature) {
    const types = parseSig(signature);
    if (types.length !== body.length) throw new Error(`expected ${types.length} values for signature ${signature}, got ${body.length}`);
    types.forEach((t, i) => writeValue(w, t, body[i]));
  }
  const b = w.buf;
  b[0] = 0x6c; // 'l'
  b[1] = TYPE_CALL;
  b[2] = 0;
  b[3] = 1;
  b.writeUInt32LE(w.pos - bodyStart, 4);
  b.writeUInt32LE(serial, 8);
  b.writeUInt32LE(fieldsLen, 12);
  return b.subarray(0, w.pos);
}

const marshalable = new Map<string, boolean>();

/** Whether a call's argument signature can be marshalled here (else it goes through `dbus-next`). */
export function canMarshal(signature: string): boolean {
  let ok = marshalable.get(signature);
  if (ok !== undefined) return ok;
  try {
    ok = parseSig(signature).every(writable);
  } catch {
    ok = false;
  }
  if (marshalable.size < 256) marshalable.set(signature, ok);
  return ok;
}

// ------------------------------------------------------------------------------------------ reading

/** The message ends before a value does (or a string lacks its NUL). */
function short(what: string, at: number): Error {
  return new Error(`${what} at byte ${at} runs past the end of the message`);
}

/**
 * A reader over one message (positions are message offsets: alignment is relative to the message start).
 * Every read is bounds-checked against the message's end; a value that does not fit throws.
 */
class Reader {
  readonly buf: Buffer;
  readonly le: boolean;
  /** The message's end (exclusive). */
  readonly end: number;
  pos: number;
  /** Variants being read (nesting). */
  private variants = 0;
  constructor(buf: Buffer, pos: number, le: boolean) {
    this.buf = buf;
    this.pos = pos;
    this.le = le;
    this.end = buf.length;
  }
  /** Arithmetic, not int32 bit masks: positions past 2^31 do not wrap. */
  align(n: number): void {
    const r = this.pos % n;
    if (r !== 0) this.pos += n - r;
  }
  u32(): number {
    this.align(4);
    if (this.pos + 4 > this.end) throw short('a 32-bit value', this.pos);
    const v = this.le ? this.buf.readUInt32LE(this.pos) : this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  /** A signature's `len` bytes at `pos` and its NUL; moves past the NUL. */
  private sig(len: number): string {
    const start = this.pos;
    const stop = start + len;
    if (stop >= this.end || this.buf[stop] !== 0) throw short('a signature', start);
    this.pos = stop + 1;
    return len === 0 ? '' : this.buf.toString('latin1', start, stop);
  }
  value(n: SigNode): unknown {
    const b = this.buf;
    switch (n.t) {
      case 0x79: // y
        if (this.pos >= this.end) throw short('a byte', this.pos);
        return b[this.pos++]!;
      case 0x62: // b
        return this.u32() !== 0;
      case 0x6e: {
        // n (Buffer reads throw a RangeError past the end)
        this.align(2);
        const v = this.le ? b.readInt16LE(this.pos) : b.readInt16BE(this.pos);
        this.pos += 2;
        return v;
      }
      case 0x71: {
        // q
        this.align(2);
        const v = this.le ? b.readUInt16LE(this.pos) : b.readUInt16BE(this.pos);
        this.pos += 2;
        return v;
      }
      case 0x75: // u
      case 0x68: // h (an index; no descriptors are passed here)
        return this.u32();
      case 0x69: {
        // i
        this.align(4);
        const v = this.le ? b.readInt32LE(this.pos) : b.readInt32BE(this.pos);
        this.pos += 4;
        return v;
      }
      case 0x78: {
        // x
        this.align(8);
        const v = this.le ? b.readBigInt64LE(this.pos) : b.readBigInt64BE(this.pos);
        this.pos += 8;
        return v;
      }
      case 0x74: {
        // t
        this.align(8);
        const v = this.le ? b.readBigUInt64LE(this.pos) : b.readBigUInt64BE(this.pos);
        this.pos += 8;
        return v;
      }
      case 0x64: {
        // d
        this.align(8);
        const v = this.le ? b.readDoubleLE(this.pos) : b.readDoubleBE(this.pos);
        this.pos += 8;
        return v;
      }
      case 0x73: // s
      case 0x6f: {
        // o: u32 length, UTF-8 bytes, NUL (inline: the commonest value of a snapshot's replies)
        let p = this.pos;
        const r = p % 4;
        if (r !== 0) p += 4 - r;
        if (p + 4 > this.end) throw short('a string', p);
        const len = this.le ? b.readUInt32LE(p) : b.readUInt32BE(p);
        const start = p + 4;
        const stop = start + len;
        if (stop >= this.end || b[stop] !== 0) throw short('a string', start);
        this.pos = stop + 1;
        return len === 0 ? '' : b.toString('utf8', start, stop);
      }
      case 0x67: {
        // g
        if (this.pos >= this.end) throw short('a signature', this.pos);
        return this.sig(b[this.pos++]!);
      }
      case T_VARIANT: {
        if (++this.variants > MAX_VARIANTS) throw new Error(`variants nested deeper than ${MAX_VARIANTS}`);
        const sig = this.value(SIG_NODE) as string;
        const types = parseSig(sig);
        if (types.length !== 1) throw new Error(`bad variant signature ${JSON.stringify(sig)}`);
        const v = new dbus.Variant(sig, this.value(types[0]!));
        this.variants--;
        return v;
      }
      case T_STRUCT:
      case T_DICT: {
        this.align(8);
        const out: unknown[] = [];
        for (const c of n.c) out.push(this.value(c));
        return out;
      }
      case T_ARRAY: {
        const len = this.u32();
        if (len > MAX_ARRAY) throw new Error(`an array of ${len} bytes (more than the ${MAX_ARRAY} D-Bus allows)`);
        const el = n.c[0]!;
        this.align(elementAlign(el));
        const end = this.pos + len;
        if (end > this.end) throw short(`an array of ${len} bytes`, this.pos);
        if (el.t === 0x79) {
          const v = b.subarray(this.pos, end);
          this.pos = end;
          return v;
        }
        if (el.t === T_DICT) {
          // Same shape as dbus-next (a plain object), but a key `__proto__` is an own property, not the prototype.
          const out: Record<string, unknown> = {};
          const [k, v] = el.c;
          while (this.pos < end) {
            const at = this.pos;
            this.align(8);
            const key = String(this.value(k!));
            const value = this.value(v!);
            if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
            else out[key] = value;
            if (this.pos <= at) throw new Error(`an array element at byte ${at} is empty`);
          }
          if (this.pos !== end) throw new Error(`an array's last element runs past the array's end at byte ${end}`);
          return out;
        }
        const out: unknown[] = [];
        while (this.pos < end) {
          const at = this.pos;
          out.push(this.value(el));
          if (this.pos <= at) throw new Error(`an array element at byte ${at} is empty`);
        }
        if (this.pos !== end) throw new Error(`an array's last element runs past the array's end at byte ${end}`);
        return out;
      }
      default:
        throw new Error(`cannot read type ${n.s}`);
    }
  }
}

/** The type of a signature value (`g`). */
const SIG_NODE: SigNode = { t: 0x67, c: [], s: 'g' };

/** One parsed message's header (what a reply needs). */
export interface WireMessage {
  type: number;
  serial: number;
  replySerial: number | null;
  errorName: string | null;
  signature: string;
  body: unknown[];
}

/**
 * Parse one whole message (`buf` holds exactly it). Bodies of messages that are not replies are not parsed.
 * Every read is bounds-checked (a hostile peer's message costs at most its own length to parse).
 * @throws Error on a malformed message (bad endianness byte, header or body running past the end, bad
 *   signature, array longer than 64 MiB or not ending where its length says).
 */
export function parseMessage(buf: Buffer): WireMessage {
  if (buf.length < 16 || buf.length > MAX_MESSAGE) throw new Error(`a message of ${buf.length} bytes (D-Bus allows 16 to ${MAX_MESSAGE})`);
  if (buf[0] !== 0x6c && buf[0] !== 0x42) throw new Error(`bad endianness byte ${buf[0]}`);
  const le = buf[0] === 0x6c;
  const r = new Reader(buf, 12, le);
  const fieldsLen = r.u32();
  if (fieldsLen > MAX_ARRAY) throw new Error(`header fields of ${fieldsLen} bytes (more than the ${MAX_ARRAY} D-Bus allows)`);
  const fieldsEnd = 16 + fieldsLen;
  if (fieldsEnd > buf.length) throw short('the header fields', 16);
  const msg: WireMessage = { type: buf[1]!, serial: le ? buf.readUInt32LE(8) : buf.readUInt32BE(8), replySerial: null, errorName: null, signature: '', body: [] };
  while (r.pos < fieldsEnd) {
    r.align(8);
    if (r.pos >= fieldsEnd) throw short('a header field', r.pos);
    const code = buf[r.pos++]!;
    const sig = r.value(SIG_NODE) as string;
    const types = parseSig(sig);
    if (types.length !== 1) throw new Error(`bad header field signature ${JSON.stringify(sig)}`);
    const v = r.value(types[0]!);
    if (code === FIELD_REPLY_SERIAL) msg.replySerial = Number(v);
    else if (code === FIELD_ERROR_NAME) msg.errorName = String(v);
    else if (code === FIELD_SIGNATURE) msg.signature = String(v);
  }
  if (r.pos !== fieldsEnd) throw short('a header field', fieldsEnd);
  if ((msg.type === TYPE_RETURN || msg.type === TYPE_ERROR) && msg.signature) {
    r.align(8);
    for (const t of parseSig(msg.signature)) msg.body.push(r.value(t));
  }
  return msg;
}

/**
 * Total length in bytes of the message starting at `buf[off]` (from its fixed 16-byte header: fields length
 * padded to 8, plus body length; up to about 2^33, computed without int32 wrap-around), or -1 when fewer
 * than 16 bytes are there. The caller compares it with {@link MAX_MESSAGE}.
 * @throws Error when the endianness byte is neither `l` nor `B`.
 */
export function messageLength(buf: Buffer, off = 0): number {
  if (buf.length - off < 16) return -1;
  const e = buf[off];
  if (e !== 0x6c && e !== 0x42) throw new Error(`bad endianness byte ${e}`);
  const le = e === 0x6c;
  const body = le ? buf.readUInt32LE(off + 4) : buf.readUInt32BE(off + 4);
  const fields = le ? buf.readUInt32LE(off + 12) : buf.readUInt32BE(off + 12);
  return 16 + fields + ((8 - (fields % 8)) % 8) + body;
}
