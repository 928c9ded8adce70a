/**
 * AT-SPI roles and states → deskd's vocabulary (src/platform/roles.ts).
 *
 * Sources: at-spi2-core `atspi-constants.h` (`AtspiRole`, `AtspiStateType`) and the role names that
 * `org.a11y.atspi.Accessible.GetRoleName` returns (ATK's `atk_role_get_name`: lower case, words separated
 * by spaces, e.g. `push button`, `document web`); Chromium's web roles as exposed through ATK.
 */
import type { Role } from '../roles.js';

/**
 * AT-SPI role name (as from `GetRoleName`) → deskd role. Keys are normalised by {@link normalizeRoleName}.
 * Container roles that only lay things out map to `generic`; those that group things meaningfully to `group`.
 */
export const ATSPI_ROLE_MAP: Readonly<Record<string, Role>> = {
  application: 'application',
  frame: 'window',
  window: 'window',
  'internal frame': 'window',
  'input method window': 'window',
  'desktop frame': 'window',
  dialog: 'dialog',
  'file chooser': 'dialog',
  'color chooser': 'dialog',
  'font chooser': 'dialog',
  'option pane': 'dialog',
  alert: 'alert',
  notification: 'alert',
  'push button': 'button',
  'push button menu': 'button',
  button: 'button',
  'toggle button': 'togglebutton',
  text: 'textbox',
  entry: 'textbox',
  'password text': 'textbox',
  editbar: 'textbox',
  terminal: 'textbox',
  link: 'link',
  'check box': 'checkbox',
  'radio button': 'radio',
  'combo box': 'combobox',
  autocomplete: 'combobox',
  menu: 'menu',
  'popup menu': 'menu',
  'menu bar': 'menubar',
  'menu item': 'menuitem',
  'check menu item': 'menuitem',
  'radio menu item': 'menuitem',
  'tear off menu item': 'menuitem',
  'tearoff menu item': 'menuitem',
  'page tab': 'tab',
  'page tab list': 'tablist',
  heading: 'heading',
  static: 'text',
  subscript: 'text',
  superscript: 'text',
  label: 'label',
  'accelerator label': 'label',
  caption: 'label',
  'tool tip': 'label',
  paragraph: 'paragraph',
  image: 'image',
  icon: 'image',
  'desktop icon': 'image',
  'image map': 'image',
  animation: 'image',
  chart: 'image',
  table: 'table',
  'tree table': 'table',
  'table row': 'row',
  'table cell': 'cell',
  'column header': 'columnheader',
  'table column header': 'columnheader',
  'row header': 'rowheader',
  'table row header': 'rowheader',
  list: 'list',
  'list box': 'list',
  'description list': 'list',
  'list item': 'listitem',
  'description term': 'listitem',
  'description value': 'listitem',
  tree: 'tree',
  'tree item': 'treeitem',
  'progress bar': 'progressbar',
  'level bar': 'progressbar',
  slider: 'slider',
  dial: 'slider',
  rating: 'slider',
  'spin button': 'spinbutton',
  'scroll bar': 'scrollbar',
  'tool bar': 'toolbar',
  'status bar': 'statusbar',
  'info bar': 'statusbar',
  separator: 'separator',
  'document web': 'document',
  'document frame': 'document',
  'document text': 'document',
  'document email': 'document',
  'document presentation': 'document',
  'document spreadsheet': 'document',
  canvas: 'canvas',
  'drawing area': 'canvas',
  grouping: 'group',
  form: 'group',
  landmark: 'group',
  panel: 'group',
  header: 'group',
  footer: 'group',
  article: 'group',
  'block quote': 'group',
  comment: 'group',
  footnote: 'group',
  log: 'group',
  marquee: 'group',
  timer: 'group',
  definition: 'group',
  calendar: 'group',
  'date editor': 'group',
  filler: 'generic',
  'directory pane': 'generic',
  'focus traversable': 'generic',
  section: 'generic',
  'scroll pane': 'generic',
  viewport: 'generic',
  'layered pane': 'generic',
  'root pane': 'generic',
  'glass pane': 'generic',
  'split pane': 'generic',
  'html container': 'generic',
  embedded: 'generic',
  'redundant object': 'generic',
  page: 'generic',
  'title bar': 'generic',
  ruler: 'generic',
  arrow: 'generic',
  mark: 'generic',
  suggestion: 'generic',
  'content deletion': 'generic',
  'content insertion': 'generic',
  math: 'generic',
  'math fraction': 'generic',
  'math root': 'generic',
  audio: 'generic',
  video: 'generic',
  // GTK 4 answers GetRoleName with its own GtkAccessibleRole names (gtk/gtkaccessible.c), ARIA-like.
  'text box': 'textbox',
  'search box': 'textbox',
  input: 'textbox',
  checkbox: 'checkbox',
  radio: 'radio',
  'radio group': 'group',
  switch: 'togglebutton',
  'menu item checkbox': 'menuitem',
  'menu item radio': 'menuitem',
  select: 'combobox',
  option: 'listitem',
  tab: 'tab',
  'tab list': 'tablist',
  'tab panel': 'tabpanel',
  grid: 'table',
  'grid cell': 'cell',
  'tree grid': 'table',
  row: 'row',
  cell: 'cell',
  'row group': 'group',
  meter: 'progressbar',
  range: 'slider',
  status: 'statusbar',
  'alert dialog': 'dialog',
  document: 'document',
  group: 'group',
  banner: 'group',
  main: 'group',
  navigation: 'group',
  region: 'group',
  search: 'group',
  note: 'group',
  feed: 'group',
  legend: 'label',
  'section head': 'heading',
  time: 'text',
  generic: 'generic',
  widget: 'generic',
  composite: 'generic',
  structure: 'generic',
  command: 'generic',
  none: 'generic',
  presentation: 'generic',
  extended: 'unknown',
  invalid: 'unknown',
  unknown: 'unknown',
};

/** Lower-case a role name and turn `-`/`_` separators into spaces (`push-button`, `PUSH_BUTTON` → `push button`). */
export function normalizeRoleName(roleName: string): string {
  return roleName.trim().toLowerCase().replace(/[-_\s]+/g, ' ');
}

/** Map an AT-SPI role name to deskd's vocabulary; unknown names map to `unknown`. */
export function mapAtspiRole(roleName: string): Role {
  const name = normalizeRoleName(roleName);
  // Own names only: an application answers its role name itself, and `constructor` is no role.
  return (Object.hasOwn(ATSPI_ROLE_MAP, name) ? ATSPI_ROLE_MAP[name] : undefined) ?? 'unknown';
}

/** True for the AT-SPI role of password entries (`ATSPI_ROLE_PASSWORD_TEXT`). */
export function isPasswordRole(roleName: string): boolean {
  return normalizeRoleName(roleName) === 'password text';
}

/** `AtspiStateType` values (atspi-constants.h), index = bit number in the `GetState` bit set. */
export const ATSPI_STATE_TYPES = [
  'invalid', 'active', 'armed', 'busy', 'checked', 'collapsed', 'defunct', 'editable', 'enabled', 'expandable',
  'expanded', 'focusable', 'focused', 'has-tooltip', 'horizontal', 'iconified', 'modal', 'multi-line',
  'multiselectable', 'opaque', 'pressed', 'resizable', 'selectable', 'selected', 'sensitive', 'showing',
  'single-line', 'stale', 'transient', 'vertical', 'visible', 'manages-descendants', 'indeterminate', 'required',
  'truncated', 'animated', 'invalid-entry', 'supports-autocompletion', 'selectable-text', 'is-default', 'visited',
  'checkable', 'has-popup', 'read-only',
] as const;

/** An AT-SPI state name. */
export type AtspiState = (typeof ATSPI_STATE_TYPES)[number];

/**
 * Decode `GetState`'s `au` (two 32-bit words, low bits first) into AT-SPI state names.
 * Bits beyond the known enum, and words past the second, are ignored.
 */
export function decodeAtspiStateBits(words: readonly number[]): Set<AtspiState> {
  const out = new Set<AtspiState>();
  // Two words hold every state; an application sending more is not read further (its answer is untrusted).
  words.slice(0, 2).forEach((word, w) => {
    for (let b = 0; b < 32; b++) {
      if (((word >>> b) & 1) === 0) continue;
      const name = ATSPI_STATE_TYPES[w * 32 + b];
      if (name) out.add(name);
    }
  });
  return out;
}

/**
 * AT-SPI states → deskd's normalised states (see `RawAXNode.states`): `focused`, `enabled`
 * (AT-SPI `enabled` or `sensitive`), `checked` (also a pressed toggle button), `mixed` (indeterminate),
 * `selected`, `editable` (not when `read-only`), `expanded`, `collapsed`, `visible`, `showing`, `active`,
 * `focusable`, `modal`, `multiline`, `readonly`, `required`, `busy`, `haspopup`, and `password` for the
 * `password text` role. Order is stable (this list's order).
 */
export function normalizeAtspiStates(states: ReadonlySet<AtspiState>, roleName: string): string[] {
  const out: string[] = [];
  const role = normalizeRoleName(roleName);
  if (states.has('focused')) out.push('focused');
  if (states.has('enabled') || states.has('sensitive')) out.push('enabled');
  if (states.has('checked') || (role === 'toggle button' && states.has('pressed'))) out.push('checked');
  if (states.has('indeterminate') && (states.has('checkable') || role === 'check box' || role === 'check menu item')) out.push('mixed');
  if (states.has('selected')) out.push('selected');
  if (states.has('editable') && !states.has('read-only')) out.push('editable');
  if (states.has('expanded')) out.push('expanded');
  if (states.has('expandable') && !states.has('expanded')) out.push('collapsed');
  if (states.has('visible')) out.push('visible');
  if (states.has('showing')) out.push('showing');
  if (states.has('active')) out.push('active');
  if (states.has('focusable')) out.push('focusable');
  if (states.has('modal')) out.push('modal');
  if (states.has('multi-line')) out.push('multiline');
  if (states.has('read-only')) out.push('readonly');
  if (states.has('required')) out.push('required');
  if (states.has('busy')) out.push('busy');
  if (states.has('has-popup')) out.push('haspopup');
  if (role === 'password text') out.push('password');
  return out;
}
