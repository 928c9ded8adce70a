/**
 * Pieces of the in-process fakes of the AT-SPI accessibility bus that the backend's unit tests build over its
 * `transport` seam (tests/unit/atspiBackend.test.ts, atspiTargets.test.ts): an error shaped like dbus-next's,
 * the state bit set, and the `bus|path` object keys.
 */
import { ATSPI_STATE_TYPES, type AtspiState } from '../../src/platform/linux/atspiRoles.js';

/** An error as a D-Bus call fails with: `type` is the D-Bus error name (e.g. `org.freedesktop.DBus.Error.UnknownMethod`). */
export class DBusLikeError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/** The two 32-bit words of an AT-SPI state set (`GetState`'s answer) with `states` set, by their index in ATSPI_STATE_TYPES. */
export function stateWords(states: AtspiState[] = []): number[] {
  const w = [0, 0];
  for (const s of states) {
    const i = ATSPI_STATE_TYPES.indexOf(s);
    w[i >> 5] = (w[i >> 5]! | (1 << (i & 31))) >>> 0;
  }
  return w;
}

/** A fake object's key `bus|path` split into its bus name and object path (at the first `|`). */
export const splitKey = (key: string): [string, string] => {
  const i = key.indexOf('|');
  return [key.slice(0, i), key.slice(i + 1)];
};

/**
 * `AtspiRole` values (at-spi2-core atspi-constants.h) → role names, index = the number `GetRole` and
 * `org.a11y.atspi.Cache.GetItems` answer. The names are libatspi's own (`atspi_role_get_name`, read from
 * Debian's libatspi 2.46 through PyGObject). deskd names roles with `GetRoleName` (see `readRoleName`); the
 * fake buses use this table to answer `GetRole` and cache items with the number of a role given by name.
 */
export const ATSPI_ROLE_NAMES: readonly string[] = [
  'invalid', 'accelerator label', 'alert', 'animation', 'arrow', 'calendar', 'canvas', 'check box', 'check menu item',
  'color chooser', 'column header', 'combo box', 'date editor', 'desktop icon', 'desktop frame', 'dial', 'dialog',
  'directory pane', 'drawing area', 'file chooser', 'filler', 'focus traversable', 'font chooser', 'frame',
  'glass pane', 'html container', 'icon', 'image', 'internal frame', 'label', 'layered pane', 'list', 'list item',
  'menu', 'menu bar', 'menu item', 'option pane', 'page tab', 'page tab list', 'panel', 'password text', 'popup menu',
  'progress bar', 'push button', 'radio button', 'radio menu item', 'root pane', 'row header', 'scroll bar',
  'scroll pane', 'separator', 'slider', 'spin button', 'split pane', 'status bar', 'table', 'table cell',
  'table column header', 'table row header', 'tearoff menu item', 'terminal', 'text', 'toggle button', 'tool bar',
  'tool tip', 'tree', 'tree table', 'unknown', 'viewport', 'window', 'extended', 'header', 'footer', 'paragraph',
  'ruler', 'application', 'autocomplete', 'editbar', 'embedded', 'entry', 'chart', 'caption', 'document frame',
  'heading', 'page', 'section', 'redundant object', 'form', 'link', 'input method window', 'table row', 'tree item',
  'document spreadsheet', 'document presentation', 'document text', 'document web', 'document email', 'comment',
  'list box', 'grouping', 'image map', 'notification', 'info bar', 'level bar', 'title bar', 'block quote', 'audio',
  'video', 'definition', 'article', 'landmark', 'log', 'marquee', 'math', 'rating', 'timer', 'static',
  'math fraction', 'math root', 'subscript', 'superscript', 'description list', 'description term',
  'description value', 'footnote', 'content deletion', 'content insertion', 'mark', 'suggestion', 'push button menu',
];
