/**
 * deskd's one role vocabulary. Backends map their platform roles (AT-SPI role names, AXRole/AXSubrole)
 * into these names; generic layers only ever see these. Names follow ARIA/AT-SPI usage.
 */
export const ROLES = [
  'application', 'window', 'dialog', 'alert', 'button', 'togglebutton', 'textbox', 'link', 'checkbox', 'radio',
  'combobox', 'menu', 'menubar', 'menuitem', 'tab', 'tablist', 'tabpanel', 'heading', 'text', 'paragraph',
  'image', 'table', 'row', 'cell', 'columnheader', 'rowheader', 'list', 'listitem', 'tree', 'treeitem',
  'progressbar', 'slider', 'spinbutton', 'scrollbar', 'toolbar', 'statusbar', 'separator', 'group',
  'document', 'canvas', 'label', 'generic', 'unknown',
] as const;

/** A role in deskd's vocabulary. */
export type Role = (typeof ROLES)[number];

/** Roles an agent can act on (get refs with priority, like Playwright's interactable elements). */
export const INTERACTIVE_ROLES: ReadonlySet<string> = new Set([
  'button', 'togglebutton', 'textbox', 'link', 'checkbox', 'radio', 'combobox', 'menuitem', 'tab', 'slider',
  'spinbutton', 'listitem', 'treeitem', 'cell',
]);
