/**
 * The accessibility bus: connection (session bus → `org.a11y.Bus.GetAddress` → a second `dbus-next`
 * connection), method calls with a timeout and a bound on calls in flight, reconnection after the bus goes
 * away, the degraded status that follows a lost connection, and the object-change events.
 *
 * Sources: at-spi2-core xml/Bus.xml (`org.a11y.Bus.GetAddress`), xml/Registry.xml (`RegisterEvent`),
 * xml/Event.xml (`org.a11y.atspi.Event.Object` signals, body `(siiva{sv})`: detail, detail1, detail2,
 * any_data, properties); the D-Bus specification (`AddMatch`, `GetConnectionUnixProcessID`).
 */
import dbus from 'dbus-next';
import { DeskdError, isDeskdError } from '../../../errors.js';
import type { AccessibilityStatus } from '../../types.js';
import { corkForThisTick, dropReplyHandler, onSocketClose } from './dbusAdapter.js';
import { PROPERTIES, REGISTRY, type Ref } from './refs.js';
import { APP_ROOT, APPLICATION, FastReads, isRead } from './fastReads.js';
import { Semaphore } from './semaphore.js';
import { WireClosedError, WireConnection } from './wire.js';

type MessageBus = dbus.MessageBus;

/** Signals of object changes (at-spi2-core xml/Event.xml) and the kinds {@link AtspiBus.onChange} reports. */
const EVENT_OBJECT = 'org.a11y.atspi.Event.Object';
/** Signals of documents (a page loaded or reloaded: Chromium fills a document without children-changed). */
const EVENT_DOCUMENT = 'org.a11y.atspi.Event.Document';
export const DOCUMENT_EVENTS: Readonly<Record<string, string>> = {
  LoadComplete: 'document-load-complete',
  Reload: 'document-reload',
};
export const CHANGE_EVENTS: Readonly<Record<string, string>> = {
  ChildrenChanged: 'children-changed',
  PropertyChange: 'property-change',
  BoundsChanged: 'bounds-changed',
  StateChanged: 'state-changed',
  TextChanged: 'text-changed',
};

/** Options of the accessibility bus (the public {@link import('../atspi.js').AtspiOptions} passes them on). */
export interface AtspiBusOptions {
  sessionBusAddress?: string;
  a11yBusAddress?: string;
  callTimeoutMs?: number;
  maxInFlight?: number;
  logger?: { warn(obj: unknown, msg?: string): void; info?(obj: unknown, msg?: string): void };
  transport?: AtspiTransport;
  /**
   * Read calls (`Get*` members, `Properties.Get`/`GetAll`) through deskd's own D-Bus client (`wire.ts`) instead
   * of `dbus-next`: on a peer-to-peer connection to applications that offer one
   * (`org.a11y.atspi.Application.GetApplicationBusAddress`, as libatspi does), else on a second connection to
   * the accessibility bus. Default true; false sends every call through `dbus-next` (the reference path).
   */
  fastReads?: boolean;
  /**
   * Take what an application's `org.a11y.atspi.Cache.GetItems` answer says of its objects in a snapshot
   * instead of asking each object (`atspi/bulkItems.ts`). Default true; false reads every object one by one
   * (the reference path).
   */
  bulkReads?: boolean;
}

/** One D-Bus method call, as given to an injected {@link AtspiBusOptions.transport}. */
export interface AtspiCall {
  destination: string;
  path: string;
  iface: string;
  member: string;
  signature?: string;
  body: unknown[];
}

/** An in-process stand-in for the accessibility bus. */
export type AtspiTransport = (call: AtspiCall) => Promise<unknown[]>;

/** One accessibility change reported by {@link AtspiBus.onChange}. */
export interface AtspiChange {
  /**
   * `children-changed`, `property-change`, `bounds-changed`, `state-changed`, `text-changed`,
   * `document-load-complete`, `document-reload`, or `reconnected` (events may have been missed).
   */
  kind: string;
  /** Sender's bus name (the application). */
  app: string;
  /** Object path of the element. */
  path: string;
  /** The signal's detail string (`add`/`remove`, `accessible-name`, `showing`, …), when it has one. */
  detail?: string;
  /** The object the signal's `any_data` names (children-changed: the child added or removed), when it is one. */
  child?: Ref;
}

/** Counters of an {@link AtspiBus}. */
export interface AtspiBusStats {
  /** Method calls sent (each one round trip). */
  calls: number;
  /** Calls that timed out. */
  timeouts: number;
  /** Calls per `interface.member` (what the round trips are spent on). */
  byMember: Record<string, number>;
  /** Of `calls`, reads sent through deskd's own client (`wire.ts`) instead of `dbus-next`. */
  fastReads: number;
  /** Of `fastReads`, those sent on a peer-to-peer connection to the application (no bus daemon in between). */
  direct: number;
}

/**
 * The connection to the accessibility bus (lazily made on first use, remade after a loss) and every call on it.
 * With an injected transport, calls go to it and there are no events.
 */
export class AtspiBus {
  readonly timeoutMs: number;
  readonly stats: AtspiBusStats = { calls: 0, timeouts: 0, byMember: {}, fastReads: 0, direct: 0 };
  private readonly sem: Semaphore;
  private bus: Promise<MessageBus> | null = null;
  /** The connected accessibility bus, to tell whether a "connection lost" is about the current one. */
  private current: MessageBus | null = null;
  private closed = false;
  private readonly changeListeners = new Set<(e: AtspiChange) => void>();
  /** The bus whose object-change signals are subscribed to. */
  private eventsBus: MessageBus | null = null;
  /** The last connection loss not yet recovered from (see {@link status}). */
  private lost: { at: number; reason: string; appsBefore: number } | null = null;
  /** Why the last connection attempt failed, while no connection could be made since. */
  private connectFailure: string | null = null;
  /** Applications the registry listed on the last read of a healthy connection. */
  private lastAppCount = 0;
  /** Called when a new connection replaces a lost one (caches keyed by unique bus names must go). */
  onNewConnection: (() => void) | null = null;
  /** Where reads go on the current connection (see {@link AtspiBusOptions.fastReads}). */
  private fast: FastReads | null = null;
  /** Names each counted member is reported under in `stats.byMember`. */
  private readonly memberNames = new Map<string, Map<string, string>>();

  constructor(private readonly opts: AtspiBusOptions = {}) {
    this.timeoutMs = opts.callTimeoutMs ?? 1500;
    this.sem = new Semaphore(opts.maxInFlight ?? 256);
  }

  /** Whether snapshots may take objects from `Cache.GetItems` answers (see {@link AtspiBusOptions.bulkReads}). */
  get bulkReads(): boolean {
    return this.opts.bulkReads !== false;
  }

  get logger(): AtspiBusOptions['logger'] {
    return this.opts.logger;
  }

  /** True while object-change listeners are subscribed on a live connection. */
  get eventsLive(): boolean {
    return this.changeListeners.size > 0 && this.eventsBus !== null && this.eventsBus === this.current;
  }

  // ---------------------------------------------------------------- connection

  private connectBus(address: string, what: string): Promise<MessageBus> {
    return new Promise((resolve, reject) => {
      let bus: MessageBus;
      try {
        bus = dbus.sessionBus({ busAddress: address });
      } catch (e) {
        reject(new DeskdError('ACCESSIBILITY_UNAVAILABLE', `cannot connect to the ${what} (${address}): ${(e as Error).message}`));
        return;
      }
      const timer = setTimeout(() => {
        try {
          bus.disconnect();
        } catch {
          /* ignore */
        }
        reject(new DeskdError('ACCESSIBILITY_UNAVAILABLE', `the ${what} (${address}) did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs * 2);
      bus.on('error', (e: Error) => {
        clearTimeout(timer);
        reject(new DeskdError('ACCESSIBILITY_UNAVAILABLE', `cannot connect to the ${what} (${address}): ${e.message}`));
      });
      bus.once('connect', () => {
        clearTimeout(timer);
        resolve(bus);
      });
    });
  }

  private async connect(): Promise<MessageBus> {
    const sessionAddress = this.opts.sessionBusAddress ?? process.env.DBUS_SESSION_BUS_ADDRESS;
    let a11yAddress = this.opts.a11yBusAddress ?? (this.opts.sessionBusAddress ? null : process.env.AT_SPI_BUS_ADDRESS || null);
    if (!a11yAddress) {
      if (!sessionAddress) {
        throw new DeskdError('ACCESSIBILITY_UNAVAILABLE', 'no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set (start deskd inside a desktop session, or with a virtual desktop)');
      }
      const session = await this.connectBus(sessionAddress, 'session bus');
      try {
        const reply = await this.rawCall(session, 'org.a11y.Bus', '/org/a11y/bus', 'org.a11y.Bus', 'GetAddress');
        const addr = reply[0];
        if (typeof addr !== 'string' || !addr) throw new Error('empty address');
        a11yAddress = addr;
      } catch (e) {
        throw new DeskdError('ACCESSIBILITY_UNAVAILABLE', `the session bus does not name an accessibility bus (org.a11y.Bus.GetAddress: ${(e as Error).message}); is at-spi2-core installed and at-spi-bus-launcher running?`);
      } finally {
        session.disconnect();
      }
    }
    const bus = await this.connectBus(a11yAddress, 'accessibility bus');
    this.fast?.close();
    this.fast = this.opts.fastReads === false ? null : new FastReads({ timeoutMs: this.timeoutMs, logger: this.opts.logger, peerAddress: (name) => this.rawCall(bus, name, APP_ROOT, APPLICATION, 'GetApplicationBusAddress').then((r) => String(r[0] ?? '')) }, a11yAddress);
    // Forget the connection when it breaks, so the next call reconnects.
    const forget = (e?: Error) => {
      if (this.current !== bus) return;
      this.opts.logger?.warn({ err: e?.message }, 'AT-SPI bus connection lost');
      this.current = null;
      this.bus = null;
      // Remembered until a new connection lists as many applications again (see status()).
      this.lost ??= { at: Date.now(), reason: e?.message || 'the connection closed', appsBefore: this.lastAppCount };
      this.emitChange({ kind: 'reconnected', app: '', path: '' });
    };
    this.current = bus;
    // Unique bus names are only unique within one bus: a new bus hands out ":1.2" again.
    this.onNewConnection?.();
    bus.removeAllListeners('error');
    bus.on('error', forget);
    onSocketClose(bus, () => forget());
    if (this.changeListeners.size > 0) {
      // A new connection after a lost one: subscribe again; listeners learn events may have been missed.
      void this.subscribeChanges(bus).then(
        () => this.emitChange({ kind: 'reconnected', app: '', path: '' }),
        (e: unknown) => this.opts.logger?.warn({ err: (e as Error).message }, 'AT-SPI events could not be subscribed again'),
      );
    }
    return bus;
  }

  private getBus(): Promise<MessageBus> {
    if (this.closed) return Promise.reject(new DeskdError('ACCESSIBILITY_UNAVAILABLE', 'the AT-SPI backend is closed'));
    if (!this.bus) {
      const p = this.connect();
      this.bus = p;
      p.then(
        () => {
          this.connectFailure = null;
        },
        (e: unknown) => {
          if (this.bus === p) this.bus = null;
          this.connectFailure = (e as Error).message;
        },
      );
    }
    return this.bus;
  }

  // ---------------------------------------------------------------- change events

  /**
   * Be told when accessible objects change: the `org.a11y.atspi.Event.Object` signals ChildrenChanged,
   * PropertyChange, BoundsChanged, StateChanged and TextChanged, and `org.a11y.atspi.Event.Document`
   * LoadComplete and Reload. Interest is registered with the registry
   * (`org.a11y.atspi.Registry.RegisterEvent`, so applications start emitting them) and a match rule on the
   * accessibility bus. After a connection loss and again after a reconnection listeners get a `reconnected`
   * change. Resolves once subscribed, with a function that removes the listener.
   * @throws DeskdError `ACCESSIBILITY_UNAVAILABLE` when the bus cannot be reached or subscribing fails
   *   (always with an injected transport, which carries no signals).
   */
  async onChange(listener: (e: AtspiChange) => void): Promise<() => void> {
    if (this.opts.transport) throw new DeskdError('ACCESSIBILITY_UNAVAILABLE', 'AT-SPI events need a D-Bus connection (an injected transport has none)');
    this.changeListeners.add(listener);
    try {
      await this.subscribeChanges(await this.getBus());
    } catch (e) {
      this.changeListeners.delete(listener);
      if (isDeskdError(e)) throw e;
      throw new DeskdError('ACCESSIBILITY_UNAVAILABLE', `cannot subscribe to AT-SPI events: ${(e as Error).message}`);
    }
    return () => {
      this.changeListeners.delete(listener);
    };
  }

  private emitChange(c: AtspiChange): void {
    for (const l of [...this.changeListeners]) {
      try {
        l(c);
      } catch (e) {
        this.opts.logger?.warn({ err: (e as Error).message }, 'AT-SPI change listener failed');
      }
    }
  }

  private async subscribeChanges(bus: MessageBus): Promise<void> {
    if (this.eventsBus === bus) return;
    await this.rawCall(bus, 'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'AddMatch', 's', [`type='signal',interface='${EVENT_OBJECT}'`]);
    await this.rawCall(bus, 'org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'AddMatch', 's', [`type='signal',interface='${EVENT_DOCUMENT}'`]);
    bus.on('message', (msg: dbus.Message) => {
      if (msg.type !== dbus.MessageType.SIGNAL) return;
      const table = msg.interface === EVENT_OBJECT ? CHANGE_EVENTS : msg.interface === EVENT_DOCUMENT ? DOCUMENT_EVENTS : null;
      const kind = table && Object.hasOwn(table, msg.member ?? '') ? table[msg.member ?? ''] : undefined;
      if (kind) this.emitChange(eventOf(kind, msg.sender ?? '', msg.path ?? '', msg.body));
    });
    // at-spi2-core up to 2.46 takes RegisterEvent(s); later versions RegisterEvent(s event, as properties, s app_bus_name).
    const names = [...Object.values(CHANGE_EVENTS).map((k) => `object:${k}`), 'document:load-complete', 'document:reload'];
    await Promise.all(
      names.map((name) =>
        this.rawCall(bus, REGISTRY, '/org/a11y/atspi/registry', 'org.a11y.atspi.Registry', 'RegisterEvent', 's', [name]).catch(() =>
          this.rawCall(bus, REGISTRY, '/org/a11y/atspi/registry', 'org.a11y.atspi.Registry', 'RegisterEvent', 'sass', [name, [], '']),
        ),
      ),
    );
    this.eventsBus = bus;
  }

  // ---------------------------------------------------------------- calls

  /** One method call with a timeout. Rejects with the D-Bus error, or `Error('timeout …')`. */
  private rawCall(bus: MessageBus | null, destination: string, path: string, iface: string, member: string, signature?: string, body?: unknown[]): Promise<unknown[]> {
    const transport = this.opts.transport;
    const msg = bus ? new dbus.Message({ destination, path, interface: iface, member, ...(signature ? { signature, body: body ?? [] } : {}) }) : null;
    return this.sem.run(
      () =>
        new Promise<unknown[]>((resolve, reject) => {
          this.count(iface, member, body);
          const timer = setTimeout(() => {
            // dbus-next keeps a reply handler per serial; drop ours so a late reply finds nothing.
            if (bus && msg) dropReplyHandler(bus, msg.serial);
            this.stats.timeouts++;
            reject(new Error(`timeout after ${this.timeoutMs} ms: ${iface}.${member} on ${destination}${path}`));
          }, this.timeoutMs);
          const reply: Promise<unknown[]> =
            bus && msg
              ? (corkForThisTick(bus), bus.call(msg)).then((r) => (r?.body ?? []) as unknown[])
              : transport
                ? Promise.resolve().then(() => transport({ destination, path, iface, member, signature, body: body ?? [] }))
                : Promise.reject(new Error('no bus'));
          reply.then(
            (r) => {
              clearTimeout(timer);
              resolve(r);
            },
            (e: unknown) => {
              clearTimeout(timer);
              reject(e instanceof Error ? e : new Error(String(e)));
            },
          );
        }),
    );
  }

  /** Count a call in `stats` (`calls`, `byMember`). */
  private count(iface: string, member: string, body?: unknown[]): void {
    this.stats.calls++;
    // Properties calls are told apart by their interface argument.
    const prop = iface === PROPERTIES;
    const a = prop ? member : iface;
    const b = prop ? String(body?.[0] ?? '') : member;
    let names = this.memberNames.get(a);
    if (!names) this.memberNames.set(a, (names = new Map()));
    let what = names.get(b);
    if (what === undefined) {
      what = prop ? `${member}(${b.replace('org.a11y.atspi.', '')})` : `${iface.replace('org.a11y.atspi.', '')}.${member}`;
      if (names.size < 256) names.set(b, what);
    }
    this.stats.byMember[what] = (this.stats.byMember[what] ?? 0) + 1;
  }

  /**
   * A call on the accessibility bus (or the injected transport). Reads go through `wire.ts` (see
   * {@link AtspiBusOptions.fastReads}); a read whose connection closes before the reply is sent again
   * through `dbus-next`.
   * @throws DeskdError `ACCESSIBILITY_UNAVAILABLE` when closed or the bus cannot be reached; the D-Bus
   *   error (`{type, message}`) or `Error('timeout …')` of the call itself.
   */
  busCall(destination: string, path: string, iface: string, member: string, signature?: string, body?: unknown[]): Promise<unknown[]> {
    if (this.closed) return Promise.reject(new DeskdError('ACCESSIBILITY_UNAVAILABLE', 'the AT-SPI backend is closed'));
    if (this.opts.transport) return this.rawCall(null, destination, path, iface, member, signature, body);
    if (this.fast && this.current && isRead(iface, member, signature)) {
      const w = this.fast.route(destination);
      if (w instanceof WireConnection) return this.wireCall(w, destination, path, iface, member, signature, body);
      if (w) return w.then(() => this.busCall(destination, path, iface, member, signature, body));
    }
    return this.getBus().then((bus) => this.rawCall(bus, destination, path, iface, member, signature, body));
  }

  /** A read through a `wire.ts` connection (in-flight bound and counters as {@link rawCall}); sent again through `dbus-next` when the connection closes first. */
  private wireCall(w: WireConnection, destination: string, path: string, iface: string, member: string, signature: string | undefined, body: unknown[] | undefined): Promise<unknown[]> {
    return this.sem
      .run(() => {
        this.count(iface, member, body);
        this.stats.fastReads++;
        if (this.fast?.isDirect(w)) this.stats.direct++;
        return w.call(destination, path, iface, member, signature ?? '', body ?? []);
      })
      .catch((e: unknown) => {
        if (e instanceof WireClosedError) return this.getBus().then((bus) => this.rawCall(bus, destination, path, iface, member, signature, body));
        if (e instanceof Error && e.message.startsWith('timeout after')) this.stats.timeouts++;
        throw e;
      });
  }

  /** A method call on an object. @throws as {@link busCall}. */
  call(ref: Ref, iface: string, member: string, signature?: string, body?: unknown[]): Promise<unknown[]> {
    return this.busCall(ref[0], ref[1], iface, member, signature, body);
  }

  /** One property (`org.freedesktop.DBus.Properties.Get`), the variant unwrapped. @throws as {@link busCall}. */
  async prop(ref: Ref, iface: string, name: string): Promise<unknown> {
    const [v] = await this.call(ref, PROPERTIES, 'Get', 'ss', [iface, name]);
    return unwrap(v);
  }

  /** Every property of an interface (`Properties.GetAll`), variants unwrapped. @throws as {@link busCall}. */
  async props(ref: Ref, iface: string): Promise<Record<string, unknown>> {
    const [all] = await this.call(ref, PROPERTIES, 'GetAll', 's', [iface]);
    const out: Record<string, unknown> = {};
    if (all && typeof all === 'object') for (const [k, v] of Object.entries(all as Record<string, unknown>)) out[k] = unwrap(v);
    return out;
  }

  /** Process id of a connection on the accessibility bus, or null. Never throws. */
  pidOf(busName: string): Promise<number | null> {
    return this.busCall('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'GetConnectionUnixProcessID', 's', [busName])
      .then((r) => (typeof r[0] === 'number' ? r[0] : null))
      .catch(() => null);
  }

  // ---------------------------------------------------------------- status

  /** Record how many applications the registry listed (the degraded state clears once a new bus lists as many). */
  noteApplications(count: number): void {
    if (!this.lost) this.lastAppCount = count;
    else if (this.current && count > 0 && count >= this.lost.appsBefore) {
      this.opts.logger?.info?.({ apps: count }, 'AT-SPI bus healthy again');
      this.lost = null;
      this.lastAppCount = count;
    }
  }

  /** See `AtspiAccessibility.status`. Never calls the bus. */
  status(): AccessibilityStatus {
    if (this.closed) return { degraded: false };
    if (this.connectFailure && !this.current) return { degraded: true, reason: `the accessibility bus cannot be reached: ${this.connectFailure}` };
    if (this.lost) {
      const when = new Date(this.lost.at).toISOString();
      const now = this.current
        ? `reconnected to a new bus; applications registered with the old one (${this.lost.appsBefore} then) are missing until they restart`
        : 'not reconnected yet';
      return { degraded: true, reason: `the AT-SPI bus connection was lost at ${when} (${this.lost.reason}); ${now}` };
    }
    return { degraded: false };
  }

  /** Disconnect. Later calls throw `ACCESSIBILITY_UNAVAILABLE`. */
  async close(): Promise<void> {
    this.closed = true;
    this.fast?.close();
    this.fast = null;
    const p = this.bus;
    this.bus = null;
    this.current = null;
    this.changeListeners.clear();
    if (!p) return;
    try {
      (await p).disconnect();
    } catch {
      /* never connected */
    }
  }
}

/** A D-Bus variant's value (dbus-next wraps `v` values in `Variant`). */
export function unwrap(v: unknown): unknown {
  return v instanceof dbus.Variant ? v.value : v;
}

/** An `org.a11y.atspi.Event.Object` signal → a change (detail string and, when it names one, the child object). */
export function eventOf(kind: string, app: string, path: string, body: unknown): AtspiChange {
  const c: AtspiChange = { kind, app, path };
  if (Array.isArray(body)) {
    if (typeof body[0] === 'string' && body[0]) c.detail = body[0];
    const data = unwrap(body[3]);
    if (Array.isArray(data) && typeof data[0] === 'string' && typeof data[1] === 'string' && data[1] !== '/org/a11y/atspi/null') c.child = [data[0], data[1]];
  }
  return c;
}

/**
 * Run `fn`, turning a failure that is not already a DeskdError into `ACCESSIBILITY_UNAVAILABLE` (the
 * registry or the bus did not answer).
 */
export async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isDeskdError(e)) throw e;
    throw new DeskdError('ACCESSIBILITY_UNAVAILABLE', `the AT-SPI registry did not answer: ${(e as Error).message}`);
  }
}
