/**
 * AT-SPI object references, handles and the small value conversions every part of the backend shares.
 *
 * Sources: at-spi2-core's D-Bus interfaces (xml/Accessible.xml, Component.xml, Event.xml): objects are
 * passed as `(so)` = (bus name, object path); `/org/a11y/atspi/null` is the null reference; extents are
 * `(iiii)` with `INT_MIN` for "unknown".
 */
import { DeskdError } from '../../../errors.js';
import type { Rect } from '../../types.js';

export const ACCESSIBLE = 'org.a11y.atspi.Accessible';
export const COMPONENT = 'org.a11y.atspi.Component';
export const ACTION = 'org.a11y.atspi.Action';
export const TEXT = 'org.a11y.atspi.Text';
export const VALUE = 'org.a11y.atspi.Value';
export const EDITABLE_TEXT = 'org.a11y.atspi.EditableText';
export const DOCUMENT = 'org.a11y.atspi.Document';
export const SELECTION = 'org.a11y.atspi.Selection';
export const PROPERTIES = 'org.freedesktop.DBus.Properties';
export const REGISTRY = 'org.a11y.atspi.Registry';
export const ROOT_PATH = '/org/a11y/atspi/accessible/root';
/** `ATSPI_COORD_TYPE_SCREEN`. */
export const COORD_SCREEN = 0;

/** An object reference as AT-SPI passes it: `(so)` = bus name, object path. */
export type Ref = [string, string];

/** Parse a handle `${busName}|${objectPath}`. @throws DeskdError `STALE_REF` when malformed. */
export function parseAtspiHandle(handle: string): Ref {
  const i = handle.indexOf('|');
  if (i <= 0 || i === handle.length - 1) throw new DeskdError('STALE_REF', `not an AT-SPI handle: ${handle}`);
  return [handle.slice(0, i), handle.slice(i + 1)];
}

/** Build a handle from a bus name and object path. */
export function atspiHandle(bus: string, path: string): string {
  return `${bus}|${path}`;
}

/** The handle (map key) of a reference. */
export const refKey = (r: Ref): string => atspiHandle(r[0], r[1]);

/** AT-SPI extents `(iiii)` → a rectangle, or null when absent, zero-size, negative or the INT_MIN "unknown" marker. */
export function extentsToRect(ext: unknown): Rect | null {
  if (!Array.isArray(ext) || ext.length !== 4) return null;
  const [x, y, width, height] = ext.map(Number) as [number, number, number, number];
  if (![x, y, width, height].every(Number.isFinite)) return null;
  if (width <= 0 || height <= 0) return null;
  if (x <= -(2 ** 31) + 1 || y <= -(2 ** 31) + 1) return null;
  return { x, y, width, height };
}

/** `a(so)` (or a single `(so)` wrapped in an array) → references, the null reference left out. */
export function toRefs(v: unknown): Ref[] {
  if (!Array.isArray(v)) return [];
  const out: Ref[] = [];
  for (const r of v) {
    if (Array.isArray(r) && typeof r[0] === 'string' && typeof r[1] === 'string' && r[1] !== '/org/a11y/atspi/null') out.push([r[0], r[1]]);
  }
  return out;
}

/** Whether a point lies in a rectangle (left/top edges inside, right/bottom outside). */
export function inside(r: Rect, x: number, y: number): boolean {
  return x >= r.x && y >= r.y && x < r.x + r.width && y < r.y + r.height;
}

/** Two rectangles equal within 2 points (AT-SPI frame extents vs the window system's frame). */
export function sameRect(a: Rect, b: Rect): boolean {
  return Math.abs(a.x - b.x) <= 2 && Math.abs(a.y - b.y) <= 2 && Math.abs(a.width - b.width) <= 2 && Math.abs(a.height - b.height) <= 2;
}

/** Whether a D-Bus error says the object or its application is gone. */
export function isGone(e: unknown): boolean {
  const type = (e as { type?: string }).type ?? '';
  const text = (e as Error).message ?? '';
  return /UnknownObject|ServiceUnknown|NameHasNoOwner|Disconnected/.test(type) || /does not exist|unknown object/i.test(text);
}

/** Whether a D-Bus error says the object lacks the interface or method (as opposed to being gone or hung). */
export function isUnsupported(e: unknown): boolean {
  return /UnknownMethod|UnknownInterface|UnknownProperty|InvalidArgs|NotSupported/.test((e as { type?: string }).type ?? '');
}
