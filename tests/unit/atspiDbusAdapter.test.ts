/**
 * The one adapter over dbus-next internals (src/platform/linux/atspi/dbusAdapter.ts): the installed
 * dbus-next still has the private fields it relies on (a MessageBus's reply-handler map and its socket),
 * and the adapter drops a handler, counts them, corks the socket for one tick, and hears the socket close; on an object without the
 * fields it does nothing instead of throwing.
 */
import { EventEmitter } from 'node:events';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dbus from 'dbus-next';
import { describe, expect, it } from 'vitest';
import { corkForThisTick, dropReplyHandler, onSocketClose, pendingReplies } from '../../src/platform/linux/atspi/dbusAdapter.js';

describe('dbusAdapter', () => {
  it('finds the reply handlers and the socket of a real dbus-next MessageBus, and hears the socket close', async () => {
    // A socket that accepts and then closes at once: dbus-next's connection sees its stream close.
    const dir = mkdtempSync(join(tmpdir(), 'deskd-dbus-adapter-'));
    const path = join(dir, 'sock');
    const server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(path, r));
    try {
      const bus = dbus.sessionBus({ busAddress: `unix:path=${path}` });
      bus.on('error', () => {});
      // dbus-next sends Hello on connecting: its reply handler is the first one.
      const before = pendingReplies(bus);
      expect(before).toBeGreaterThanOrEqual(0);
      const closed = new Promise<boolean>((r) => expect(onSocketClose(bus, () => r(true))).toBe(true));
      // A call in flight registers a reply handler under its serial; dropping it empties the map.
      const msg = new dbus.Message({ destination: 'org.example', path: '/x', interface: 'org.example.I', member: 'M' });
      void bus.call(msg).catch(() => {});
      expect(pendingReplies(bus)).toBe(before + 1);
      dropReplyHandler(bus, msg.serial);
      expect(pendingReplies(bus)).toBe(before);
      // Corked until the next tick, once.
      const stream = (bus as unknown as { _connection: { stream: { writableCorked: number } } })._connection.stream;
      expect(corkForThisTick(bus)).toBe(true);
      expect(corkForThisTick(bus)).toBe(true);
      expect(stream.writableCorked).toBe(1);
      await new Promise((r) => process.nextTick(r));
      expect(stream.writableCorked).toBe(0);
      expect(await closed).toBe(true);
      bus.disconnect();
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('does nothing on a bus without those fields', () => {
    const fake = new EventEmitter() as unknown as dbus.MessageBus;
    expect(() => dropReplyHandler(fake, 7)).not.toThrow();
    expect(pendingReplies(fake)).toBe(-1);
    expect(onSocketClose(fake, () => {})).toBe(false);
    expect(corkForThisTick(fake)).toBe(false);
  });
});
