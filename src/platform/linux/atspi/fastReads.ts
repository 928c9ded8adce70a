/**
 * Where the snapshot's reads go (see `AtspiBusOptions.fastReads`): deskd's own D-Bus client (`wire.ts`) on a
 * peer-to-peer connection to each application that offers one (`org.a11y.atspi.Application.GetApplicationBusAddress`
 * on its root, as libatspi does: at-spi2-core's atk-bridge, loaded by Chromium and GTK 3, answers a socket
 * address; GTK 4 does not), else on a second connection to the accessibility bus. Connections are opened on
 * first use and dropped when they close (the next read looks again) or when the bus connection is replaced.
 *
 * Sources: at-spi2-core xml/Application.xml; libatspi's `atspi-misc.c` (peer-to-peer connections).
 */
import { statSync } from 'node:fs';
import { PROPERTIES } from './refs.js';
import { canMarshal } from './wireCodec.js';
import { socketPathOf, WireConnection } from './wire.js';

/** Interface of `GetApplicationBusAddress` (at-spi2-core xml/Application.xml). */
export const APPLICATION = 'org.a11y.atspi.Application';
/** Path of an application's root object. */
export const APP_ROOT = '/org/a11y/atspi/accessible/root';

/** Whether a call only reads (so it may go through `wire.ts`, and be sent again after a lost connection). */
export function isRead(iface: string, member: string, signature: string | undefined): boolean {
  if (iface === PROPERTIES ? member !== 'Get' && member !== 'GetAll' : !member.startsWith('Get') || member === 'GetApplicationBusAddress') return false;
  return signature === undefined || canMarshal(signature);
}

/**
 * Whether an application's peer-to-peer address may be connected to: a unix socket in the abstract namespace,
 * or a path that is a socket owned by this user (an application names the address itself; deskd does not
 * write its authentication line into any other file or another user's socket).
 *
 * Abstract sockets are trusted without an owner check: they have no file, so no owner or mode to check, and
 * any process in the same network namespace, of any user, may bind a name (atk-bridge's own addresses are
 * abstract: `unix:abstract=/tmp/dbus-…`). What that costs: the address comes from an application on this
 * user's accessibility bus, so only that application (or another process of this user, out of scope in
 * docs/security.md) can point deskd at a socket it does not own; whoever listens there learns deskd's uid
 * (the `AUTH EXTERNAL` line) and the object paths it reads, and its answers are parsed as hostile input
 * (`wireCodec.ts` bounds every read, `wire.ts` caps message and authentication-line lengths).
 */
export function isPeerSocket(address: string): boolean {
  const path = socketPathOf(address);
  if (!path) return false;
  if (path.startsWith('\0')) return true;
  try {
    const st = statSync(path);
    return st.isSocket() && (typeof process.getuid !== 'function' || st.uid === process.getuid());
  } catch {
    return false;
  }
}

/** What {@link FastReads} needs of the bus. */
export interface FastReadsHost {
  readonly timeoutMs: number;
  readonly logger?: { warn(obj: unknown, msg?: string): void } | undefined;
  /** The application's peer-to-peer address (`GetApplicationBusAddress` through `dbus-next`), '' or a rejection without one. */
  peerAddress(busName: string): Promise<string>;
}

/** The `wire.ts` connections of one accessibility bus connection. */
export class FastReads {
  /** `wire.ts` connection to the accessibility bus. */
  private busWire: WireConnection | null = null;
  private busWireOpening: Promise<void> | null = null;
  /** Whether opening the bus wire failed (then `dbus-next` carries the reads of this bus connection). */
  private busWireFailed = false;
  /** Per application bus name: its peer-to-peer connection, null without one, or the pending look-up. */
  private readonly peers = new Map<string, WireConnection | null | Promise<void>>();
  private closed = false;

  constructor(
    private readonly host: FastReadsHost,
    /** The accessibility bus's address. */
    private readonly address: string,
  ) {}

  /** Whether `w` is a peer-to-peer connection (not the one to the bus). */
  isDirect(w: WireConnection): boolean {
    return w !== this.busWire;
  }

  /**
   * Where a read to `destination` goes: a `wire.ts` connection, null for `dbus-next`, or a promise while the
   * connection to the bus is being opened (ask again when it settles; it never rejects). While an
   * application's peer-to-peer address is being looked up its reads go through the bus, so an application
   * that does not answer costs each read one timeout, not two.
   */
  route(destination: string): WireConnection | null | Promise<void> {
    if (this.closed) return null;
    if (destination.startsWith(':')) {
      const peer = this.peers.get(destination);
      if (peer instanceof WireConnection) return peer;
      if (peer === undefined) this.peers.set(destination, this.lookUpPeer(destination));
    }
    return this.toBus();
  }

  /** Close every connection; later routes say `dbus-next`. */
  close(): void {
    this.closed = true;
    const peers = [...this.peers.values()];
    this.peers.clear();
    for (const p of peers) if (p instanceof WireConnection) p.close('superseded');
    this.busWire?.close('superseded');
    this.busWire = null;
  }

  private toBus(): WireConnection | null | Promise<void> {
    if (this.busWire && !this.busWire.closed) return this.busWire;
    if (this.busWireFailed) return null;
    if (this.busWireOpening) return this.busWireOpening;
    let conn: WireConnection | null = null;
    const opening = WireConnection.open(this.address, {
      hello: true,
      timeoutMs: this.host.timeoutMs,
      onClose: () => {
        if (this.busWire === conn) this.busWire = null;
      },
    }).then(
      (c) => {
        conn = c;
        if (this.closed) c.close('superseded');
        else this.busWire = c;
      },
      (e: unknown) => {
        this.busWireFailed = true;
        this.host.logger?.warn({ err: (e as Error).message }, 'AT-SPI: a second connection to the accessibility bus failed; reads go through dbus-next');
      },
    );
    this.busWireOpening = opening.finally(() => {
      this.busWireOpening = null;
    });
    return this.busWireOpening;
  }

  /** Ask an application for a peer-to-peer address and connect to it; records the result in `peers`. Never rejects. */
  private async lookUpPeer(name: string): Promise<void> {
    let conn: WireConnection | null = null;
    try {
      const addr = await this.host.peerAddress(name);
      if (addr && isPeerSocket(addr)) {
        conn = await WireConnection.open(addr, {
          hello: false,
          timeoutMs: this.host.timeoutMs,
          onClose: () => {
            if (this.peers.get(name) === conn) this.peers.delete(name);
          },
        }).catch(() => null);
      }
    } catch {
      conn = null; // no Application interface, or no peer-to-peer server: through the bus
    }
    if (this.closed) {
      conn?.close('superseded');
      return;
    }
    this.peers.set(name, conn);
  }
}
