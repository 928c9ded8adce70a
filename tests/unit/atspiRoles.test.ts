import { describe, expect, it } from 'vitest';
import { ROLES } from '../../src/platform/roles.js';
import {
  ATSPI_ROLE_MAP,
  ATSPI_STATE_TYPES,
  decodeAtspiStateBits,
  isPasswordRole,
  mapAtspiRole,
  normalizeAtspiStates,
  normalizeRoleName,
  type AtspiState,
} from '../../src/platform/linux/atspiRoles.js';
import { atspiHandle, extentsToRect, onScreen, parseAtspiHandle } from '../../src/platform/linux/atspi.js';

/** Build the `GetState` words for a set of state names. */
function bits(...names: AtspiState[]): number[] {
  const words = [0, 0];
  for (const n of names) {
    const i = ATSPI_STATE_TYPES.indexOf(n);
    words[i >> 5] = (words[i >> 5]! | (1 << (i & 31))) >>> 0;
  }
  return words;
}

describe('AT-SPI role mapping', () => {
  it.each([
    // ATK / at-spi2-atk names (GTK 3, Chromium)
    ['push button', 'button'],
    ['toggle button', 'togglebutton'],
    ['text', 'textbox'],
    ['entry', 'textbox'],
    ['password text', 'textbox'],
    ['link', 'link'],
    ['check box', 'checkbox'],
    ['radio button', 'radio'],
    ['menu item', 'menuitem'],
    ['check menu item', 'menuitem'],
    ['page tab', 'tab'],
    ['page tab list', 'tablist'],
    ['heading', 'heading'],
    ['static', 'text'],
    ['label', 'label'],
    ['image', 'image'],
    ['table', 'table'],
    ['table row', 'row'],
    ['table cell', 'cell'],
    ['column header', 'columnheader'],
    ['list', 'list'],
    ['list item', 'listitem'],
    ['frame', 'window'],
    ['window', 'window'],
    ['dialog', 'dialog'],
    ['progress bar', 'progressbar'],
    ['slider', 'slider'],
    ['spin button', 'spinbutton'],
    ['document web', 'document'],
    ['canvas', 'canvas'],
    ['combo box', 'combobox'],
    ['panel', 'group'],
    ['filler', 'generic'],
    ['section', 'generic'],
    ['paragraph', 'paragraph'],
    ['application', 'application'],
    // GTK 4 (GtkAccessibleRole names)
    ['button', 'button'],
    ['text box', 'textbox'],
    ['group', 'group'],
    ['widget', 'generic'],
    ['scroll bar', 'scrollbar'],
    ['switch', 'togglebutton'],
    ['tab panel', 'tabpanel'],
    // spelling variants and unknowns
    ['Push Button', 'button'],
    ['push-button', 'button'],
    ['PUSH_BUTTON', 'button'],
    ['no such role', 'unknown'],
    ['', 'unknown'],
  ])('%s → %s', (atspi, deskd) => {
    expect(mapAtspiRole(atspi)).toBe(deskd);
  });

  it('maps every table entry into the deskd vocabulary', () => {
    for (const [name, role] of Object.entries(ATSPI_ROLE_MAP)) {
      expect(ROLES as readonly string[], name).toContain(role);
      expect(normalizeRoleName(name), 'keys are already normalised').toBe(name);
    }
  });

  it('recognises only the password role as password', () => {
    expect(isPasswordRole('password text')).toBe(true);
    expect(isPasswordRole('Password-Text')).toBe(true);
    expect(isPasswordRole('entry')).toBe(false);
    expect(isPasswordRole('text')).toBe(false);
  });
});

describe('AT-SPI state decoding', () => {
  it.each<[string, number[], AtspiState[]]>([
    ['no bits', [0, 0], []],
    ['GTK 3 button', bits('enabled', 'sensitive', 'showing', 'visible', 'focusable'), ['enabled', 'sensitive', 'showing', 'visible', 'focusable']],
    ['bits in the second word', bits('read-only', 'checkable', 'indeterminate'), ['indeterminate', 'checkable', 'read-only']],
    ['active window', [(1 << 1) | (1 << 25) | (1 << 30), 0], ['active', 'showing', 'visible']],
    ['bit 31 (manages-descendants) survives unsigned maths', [0x80000000, 0], ['manages-descendants']],
    ['unknown high bits are ignored', [0, 0xfffff000], []],
  ])('%s', (_name, words, expected) => {
    expect([...decodeAtspiStateBits(words)].sort()).toEqual([...expected].sort());
  });

  it('knows the enum positions used for filtering and focus', () => {
    expect(ATSPI_STATE_TYPES.indexOf('active')).toBe(1);
    expect(ATSPI_STATE_TYPES.indexOf('checked')).toBe(4);
    expect(ATSPI_STATE_TYPES.indexOf('editable')).toBe(7);
    expect(ATSPI_STATE_TYPES.indexOf('focused')).toBe(12);
    expect(ATSPI_STATE_TYPES.indexOf('sensitive')).toBe(24);
    expect(ATSPI_STATE_TYPES.indexOf('showing')).toBe(25);
    expect(ATSPI_STATE_TYPES.indexOf('visible')).toBe(30);
    expect(ATSPI_STATE_TYPES.indexOf('read-only')).toBe(43);
  });

  it.each<[string, AtspiState[], string, string[]]>([
    ['enabled from sensitive alone', ['sensitive'], 'push button', ['enabled']],
    ['focused focusable entry', ['focused', 'focusable', 'editable', 'enabled', 'showing', 'visible'], 'entry', ['focused', 'enabled', 'editable', 'visible', 'showing', 'focusable']],
    ['password role adds password', ['editable', 'enabled'], 'password text', ['enabled', 'editable', 'password']],
    ['read-only text is not editable', ['editable', 'read-only', 'multi-line'], 'text box', ['multiline', 'readonly']],
    ['pressed toggle button is checked', ['pressed'], 'toggle button', ['checked']],
    ['pressed push button is not checked', ['pressed'], 'push button', []],
    ['checked check box', ['checked', 'checkable'], 'check box', ['checked']],
    ['indeterminate check box is mixed', ['indeterminate', 'checkable'], 'check box', ['mixed']],
    ['indeterminate progress bar is not mixed', ['indeterminate', 'busy'], 'progress bar', ['busy']],
    ['expandable but not expanded is collapsed', ['expandable'], 'combo box', ['collapsed']],
    ['expanded', ['expandable', 'expanded'], 'combo box', ['expanded']],
    ['active modal dialog', ['active', 'modal', 'showing'], 'dialog', ['showing', 'active', 'modal']],
    ['selected list item', ['selected', 'selectable'], 'list item', ['selected']],
  ])('%s', (_name, states, role, expected) => {
    expect(normalizeAtspiStates(new Set(states), role)).toEqual(expected);
  });
});

describe('AT-SPI helpers', () => {
  it.each<[string, unknown, ReturnType<typeof extentsToRect>]>([
    ['a normal rectangle', [10, 20, 30, 40], { x: 10, y: 20, width: 30, height: 40 }],
    ['negative origin (multi-monitor) is kept', [-100, 5, 30, 40], { x: -100, y: 5, width: 30, height: 40 }],
    ['zero width', [0, 47, 0, 0], null],
    ['negative height', [0, 0, 10, -1], null],
    ['INT_MIN marker', [-2147483648, -2147483648, 10, 10], null],
    ['not four numbers', [1, 2, 3], null],
    ['not an array', 'x', null],
  ])('extents: %s', (_name, ext, rect) => {
    expect(extentsToRect(ext)).toEqual(rect);
  });

  it('round-trips handles, including paths with separators', () => {
    const h = atspiHandle(':1.8', '/org/a11y/atspi/accessible/91');
    expect(h).toBe(':1.8|/org/a11y/atspi/accessible/91');
    expect(parseAtspiHandle(h)).toEqual([':1.8', '/org/a11y/atspi/accessible/91']);
    expect(() => parseAtspiHandle('nothing')).toThrow(expect.objectContaining({ code: 'STALE_REF' }));
    expect(() => parseAtspiHandle('|/path')).toThrow(expect.objectContaining({ code: 'STALE_REF' }));
    expect(() => parseAtspiHandle(':1.2|')).toThrow(expect.objectContaining({ code: 'STALE_REF' }));
  });

  it.each<[string, AtspiState[], boolean, number, boolean]>([
    ['showing is always on screen', ['showing'], true, 5, true],
    ['neither showing nor visible is hidden', ['enabled'], false, 2, false],
    ['GTK 3 hidden stack page: visible, not showing, under a showing parent', ['visible'], true, 4, false],
    ['GTK 4: visible under a parent without showing', ['visible'], false, 6, true],
    ['direct child of a window: visible suffices', ['visible'], true, 2, true],
  ])('onScreen: %s', (_name, states, parentShowing, depth, expected) => {
    expect(onScreen(new Set(states), parentShowing, depth)).toBe(expected);
  });
});

describe('a role name that is an Object.prototype member (an application answers GetRoleName itself)', () => {
  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'])('%s maps to unknown', (name) => {
    expect(mapAtspiRole(name)).toBe('unknown');
  });
});
