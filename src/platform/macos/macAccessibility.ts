import { isToolkitClassName } from '../names.js';
import { DeskdError, isDeskdError } from '../../errors.js';
import type { AXBudget, AXSnapshot, ElementOwner, FocusInfo, Point, RawAccessibility, RawAXNode, Rect, WindowInfo } from '../types.js';
import type { HelperClient } from './helperClient.js';
import { AX_ACTIONS, type HelperAXNode } from './protocol.js';

/**
 * AXRole → deskd role (src/platform/roles.ts). Sources: Apple's AXRoleConstants.h (NSAccessibility roles)
 * and the roles WebKit/Chromium expose for web content (AXWebArea, AXHeading, AXLink).
 */
const ROLE_MAP: Record<string, string> = {
  AXApplication: 'application',
  AXWindow: 'window',
  AXSheet: 'dialog',
  AXDrawer: 'group',
  AXButton: 'button',
  AXMenuButton: 'button',
  AXDisclosureTriangle: 'button',
  AXColorWell: 'button',
  AXDockItem: 'button',
  AXPopUpButton: 'combobox',
  AXComboBox: 'combobox',
  AXTextField: 'textbox',
  AXTextArea: 'textbox',
  AXSecureTextField: 'textbox',
  AXDateField: 'textbox',
  AXLink: 'link',
  AXCheckBox: 'checkbox',
  AXRadioButton: 'radio',
  AXRadioGroup: 'group',
  AXMenuBar: 'menubar',
  AXMenuBarItem: 'menuitem',
  AXMenu: 'menu',
  AXMenuItem: 'menuitem',
  AXTabGroup: 'tablist',
  AXStaticText: 'text',
  AXHeading: 'heading',
  AXImage: 'image',
  AXTable: 'table',
  AXGrid: 'table',
  AXOutline: 'tree',
  AXBrowser: 'tree',
  AXRow: 'row',
  AXColumn: 'group',
  AXCell: 'cell',
  AXList: 'list',
  AXProgressIndicator: 'progressbar',
  AXBusyIndicator: 'progressbar',
  AXLevelIndicator: 'progressbar',
  AXRelevanceIndicator: 'progressbar',
  AXSlider: 'slider',
  AXIncrementor: 'spinbutton',
  AXStepper: 'spinbutton',
  AXScrollBar: 'scrollbar',
  AXScrollArea: 'group',
  AXToolbar: 'toolbar',
  AXSplitGroup: 'group',
  AXSplitter: 'separator',
  AXGroup: 'group',
  AXLayoutArea: 'canvas',
  AXLayoutItem: 'generic',
  AXValueIndicator: 'generic',
  AXHandle: 'generic',
  AXMatte: 'generic',
  AXRuler: 'generic',
  AXRulerMarker: 'generic',
  AXGrowArea: 'generic',
  AXPopover: 'dialog',
  AXWebArea: 'document',
  AXUnknown: 'unknown',
};

/** AXSubrole → deskd role, when the subrole is more specific than the role. */
const SUBROLE_MAP: Record<string, string> = {
  AXSecureTextField: 'textbox',
  AXSearchField: 'textbox',
  AXDialog: 'dialog',
  AXSystemDialog: 'dialog',
  AXFloatingWindow: 'window',
  AXStandardWindow: 'window',
  AXApplicationDialog: 'dialog',
  AXApplicationAlertDialog: 'alert',
  AXApplicationAlert: 'alert',
  AXApplicationStatus: 'statusbar',
  AXTabPanel: 'tabpanel',
  AXTabButton: 'tab',
  AXToggle: 'togglebutton',
  AXSwitch: 'checkbox',
  AXOutlineRow: 'treeitem',
  AXTableRow: 'row',
  AXDocument: 'document',
  AXDocumentArticle: 'document',
  AXContentSeparator: 'separator',
  AXListMarker: 'text',
  AXSortButton: 'button',
  AXCloseButton: 'button',
  AXMinimizeButton: 'button',
  AXZoomButton: 'button',
  AXFullScreenButton: 'button',
  AXToolbarButton: 'button',
  AXIncrementArrow: 'button',
  AXDecrementArrow: 'button',
  AXIncrementPage: 'button',
  AXDecrementPage: 'button',
};

/** AX action name → deskd action name. */
const ACTION_MAP: Record<string, string> = {
  AXPress: 'press',
  AXIncrement: 'increment',
  AXDecrement: 'decrement',
  AXConfirm: 'confirm',
  AXCancel: 'cancel',
  AXShowMenu: 'showmenu',
  AXRaise: 'raise',
  AXPick: 'pick',
};

/** deskd (and AT-SPI-style) action names → the AX action the helper performs. */
const ACTION_TO_AX: Record<string, (typeof AX_ACTIONS)[number]> = {
  press: 'AXPress',
  click: 'AXPress',
  activate: 'AXPress',
  increment: 'AXIncrement',
  decrement: 'AXDecrement',
  confirm: 'AXConfirm',
  cancel: 'AXCancel',
  showmenu: 'AXShowMenu',
  raise: 'AXRaise',
  pick: 'AXPick',
};

/**
 * Map an AXRole (+ optional AXSubrole) to deskd's role vocabulary. The subrole wins when it is more
 * specific (AXRadioButton/AXTabButton → tab, AXGroup/AXApplicationDialog → dialog, AXCheckBox/AXToggle →
 * togglebutton, AXRow/AXOutlineRow → treeitem, AXWindow/AXDialog → dialog). Unknown roles → `unknown`.
 */
export function mapAXRole(role: string, subrole?: string | null): string {
  if (subrole) {
    const s = Object.hasOwn(SUBROLE_MAP, subrole) ? SUBROLE_MAP[subrole] : undefined;
    // AXStandardWindow/AXFloatingWindow only refine windows; button subroles only refine buttons.
    if (s && !(s === 'window' && role !== 'AXWindow') && !(s === 'button' && role !== 'AXButton')) return s;
  }
  return (Object.hasOwn(ROLE_MAP, role) ? ROLE_MAP[role] : undefined) ?? 'unknown';
}

/** Map an AX action name to deskd's (AXPress → press, AXShowMenu → showmenu); unknown ones lose their AX prefix, lower-cased. */
export function mapAXAction(action: string): string {
  return (Object.hasOwn(ACTION_MAP, action) ? ACTION_MAP[action] : undefined) ?? action.replace(/^AX/, '').toLowerCase();
}

/** True for a password field: AXSecureTextField role or subrole, or the helper's `secure` flag. */
export function isSecureNode(n: Pick<HelperAXNode, 'role' | 'subrole' | 'secure'>): boolean {
  return n.secure === true || n.role === 'AXSecureTextField' || n.subrole === 'AXSecureTextField';
}

const TOGGLES = new Set(['checkbox', 'radio', 'togglebutton', 'tab']);
const VALUE_ROLES = new Set(['textbox', 'combobox', 'slider', 'progressbar', 'spinbutton', 'scrollbar', 'cell']);

/**
 * Convert one helper node (and its subtree) to a {@link RawAXNode}:
 * - `handle` = the helper's element id (valid only within its snapshot);
 * - `name` = AXTitle, else AXDescription (neither when it is a class name such as `NSButton`), else
 *   (text/heading) AXValue, else (textbox) AXPlaceholderValue;
 * - `value` only for value-bearing roles, and **never** for password fields (even if a value was sent);
 * - states: enabled, focused, selected, expanded, checked/mixed (toggle AXValue 1/2), editable (enabled
 *   textbox), password, visible + showing (non-empty frame);
 * - bounds: the AX frame in global points (unchanged), null when absent.
 */
export function toRawNode(n: HelperAXNode): RawAXNode {
  const role = mapAXRole(n.role, n.subrole);
  const secure = isSecureNode(n);
  const text = (s: string | undefined) => (s && s.trim() ? s : undefined);
  // A class name (`NSButton`, `AXGroup`, …) is never an element name (src/platform/names.ts).
  const label = (s: string | undefined) => (text(s) && !isToolkitClassName(s) ? s : undefined);
  let name = label(n.title) ?? label(n.description);
  if (!name && (role === 'text' || role === 'heading' || role === 'label') && !secure) name = text(n.value);
  if (!name && role === 'textbox') name = text(n.placeholder);
  const states: string[] = [];
  if (n.enabled !== false) states.push('enabled');
  if (n.focused) states.push('focused');
  if (n.selected) states.push('selected');
  if (n.expanded) states.push('expanded');
  if (TOGGLES.has(role) && n.value !== undefined) {
    if (n.value === '1') states.push('checked');
    else if (n.value === '2') states.push('mixed');
  }
  if (role === 'textbox' && n.enabled !== false) states.push('editable');
  if (secure) states.push('password');
  const bounds: Rect | null = n.frame ? { x: n.frame.x, y: n.frame.y, width: n.frame.width, height: n.frame.height } : null;
  if (bounds && bounds.width > 0 && bounds.height > 0) states.push('visible', 'showing');
  const out: RawAXNode = {
    handle: n.id,
    role,
    platformRole: n.subrole ? `${n.role}/${n.subrole}` : n.role,
    name: name ?? '',
    bounds,
    states,
    actions: [...new Set(n.actions.map(mapAXAction))],
    children: n.children.map(toRawNode),
  };
  if (!secure && VALUE_ROLES.has(role) && n.value !== undefined) out.value = n.value;
  const desc = name === text(n.description) ? text(n.help) : (text(n.description) ?? text(n.help));
  if (desc) out.description = desc;
  return out;
}

/** Options of {@link MacAccessibility}. */
/** A table read by {@link MacAccessibility.readTable}: deskd roles, 0-based indexes, header titles by column. */
export interface MacTable {
  role: string;
  rowCount: number;
  columnCount: number;
  headers: (string | null)[];
  rows: { index: number; selected: boolean; cells: { row: number; column: number; rowSpan: number; columnSpan: number; role: string; text: string | null }[] }[];
  /** More rows or columns exist than were read. */
  truncated: boolean;
}

export interface MacAccessibilityOptions {
  /** AXUIElementSetMessagingTimeout per element, seconds. Default 1. */
  messagingTimeoutSec?: number;
  /** Children read per element (Peekaboo: 50). Default 50. */
  maxChildren?: number;
  /** Extra time allowed on top of `budget.timeMs` for the helper to answer, ms. Default 3000. */
  slackMs?: number;
}

/**
 * Accessibility on macOS through the helper (AXUIElement). Snapshots read the frontmost application
 * (or, for `scope: 'all'`, also only the frontmost application: walking every running app over AX IPC
 * is slow and deskd acts on the frontmost app; the snapshot's single root says which app it is).
 * Handles are helper element ids, valid only within the snapshot that produced them: using an expired
 * one throws `STALE_REF`.
 * Errors: `PERMISSION_DENIED_ACCESSIBILITY`, `ACCESSIBILITY_UNAVAILABLE`, `HELPER_UNAVAILABLE`, `TIMEOUT`, `STALE_REF`.
 */
export class MacAccessibility implements RawAccessibility {
  constructor(
    private readonly client: HelperClient,
    private readonly opts: MacAccessibilityOptions = {},
  ) {}

  async snapshot(opts: { scope: 'focused' | 'all'; budget: AXBudget; pid?: number }): Promise<AXSnapshot> {
    const { budget } = opts;
    try {
      const r = await this.client.request(
        'axTree',
        {
          ...(opts.pid ? { pid: opts.pid } : {}),
          maxDepth: budget.maxDepth,
          maxNodes: budget.maxNodes,
          timeMs: budget.timeMs,
          maxChildren: this.opts.maxChildren ?? 50,
          messagingTimeoutSec: this.opts.messagingTimeoutSec ?? 1,
        },
        { timeoutMs: budget.timeMs + (this.opts.slackMs ?? 3000) },
      );
      // The application root carries its pid, so perception can match its windows (occlusion).
      return { roots: [{ ...toRawNode(r.root), pid: r.app.pid }], truncated: r.truncated, nodeCount: r.nodeCount };
    } catch (e) {
      // No frontmost application (e.g. login window, all apps hidden): an empty snapshot, not an error.
      if (isDeskdError(e) && (e.details as { helperCode?: string } | undefined)?.helperCode === 'APP_NOT_FOUND') {
        return { roots: [], truncated: false, nodeCount: 0 };
      }
      throw e;
    }
  }

  async focused(): Promise<FocusInfo | null> {
    const r = await this.client.request('focused', {});
    if (!r.app) return null;
    return {
      app: r.app.name,
      pid: r.app.pid,
      window: r.window?.title ?? null,
      windowBounds: r.window?.frame ? { ...r.window.frame } : null,
    };
  }

  /**
   * Perform an action on an element of a snapshot. `action` is a deskd name (`press`, `increment`, …,
   * with `click`/`activate` as aliases of AXPress, `focus` to set AXFocused) or an AX name (`AXPress`).
   * @returns false when the element does not support the action.
   * @throws DeskdError `STALE_REF` (element gone or snapshot expired), `PERMISSION_DENIED_ACCESSIBILITY`, `HELPER_UNAVAILABLE`.
   */
  async doAction(handle: string, action: string): Promise<boolean> {
    try {
      if (action === 'focus') {
        await this.client.request('focus', { element: handle });
        return true;
      }
      const ax = (Object.hasOwn(ACTION_TO_AX, action) ? ACTION_TO_AX[action] : undefined) ?? AX_ACTIONS.find((a) => a === action);
      if (!ax) return false;
      await this.client.request('press', { element: handle, action: ax });
      return true;
    } catch (e) {
      if (isDeskdError(e) && e.code === 'ELEMENT_NOT_ACTIONABLE') return false;
      throw e;
    }
  }

  /**
   * Set an element's AXValue (text fields, sliders). The value is sent to the helper, never logged or echoed.
   * @returns true when set; false when the element's value is not settable (helper `ACTION_UNSUPPORTED`).
   * @throws DeskdError `STALE_REF`, `PERMISSION_DENIED_ACCESSIBILITY`, `HELPER_UNAVAILABLE`.
   */
  async setValue(handle: string, value: string): Promise<boolean> {
    try {
      await this.client.request('setValue', { element: handle, value });
      return true;
    } catch (e) {
      if (isDeskdError(e) && e.code === 'ELEMENT_NOT_ACTIONABLE') return false;
      throw e;
    }
  }

  /**
   * Hit-test through the helper's `axElementAt` (`AXUIElementCopyElementAtPosition`; with `window.pid` the
   * application element of that pid is asked). The answer's handle is valid like a snapshot's.
   * @returns null when nothing is at the point.
   * @throws DeskdError `ACCESSIBILITY_UNAVAILABLE` when the element found belongs to another process than
   *   `window.pid` (the hit-test does not see the window the window list has on top), or the helper
   *   errors (`PERMISSION_DENIED_ACCESSIBILITY`, `HELPER_UNAVAILABLE` for a helper without the operation, …).
   */
  async elementAt(p: Point, window?: WindowInfo): Promise<RawAXNode | null> {
    const r = await this.client.request('axElementAt', { x: p.x, y: p.y, ...(window?.pid ? { pid: window.pid } : {}) });
    if (!r.node) return null;
    if (window?.pid && r.pid !== null && r.pid !== window.pid) {
      throw new DeskdError('ACCESSIBILITY_UNAVAILABLE', `the element at (${p.x}, ${p.y}) belongs to pid ${r.pid}, not to the window's pid ${window.pid}`);
    }
    return { ...toRawNode(r.node), children: [] };
  }

  /**
   * The application and window owning an element (helper `axOwner`: `AXUIElementGetPid`, `AXWindow`).
   * `app` is the localized application name, as `WindowInfo.app` is on macOS.
   * @returns null when the element is gone or its snapshot expired.
   */
  async ownerOf(handle: string): Promise<ElementOwner | null> {
    try {
      const r = await this.client.request('axOwner', { element: handle });
      return { app: r.app.name, pid: r.app.pid, windowTitle: r.window?.title ?? null, windowBounds: r.window?.frame ? { ...r.window.frame } : null };
    } catch (e) {
      if (isDeskdError(e) && e.code === 'STALE_REF') return null;
      throw e;
    }
  }

  /**
   * The document URL a browser window shows (helper `axUrl`: the first `AXWebArea`'s `AXURL`, else the
   * window's `AXDocument`). Null when the window has no pid or neither attribute is there.
   */
  async urlOf(window: WindowInfo): Promise<string | null> {
    if (!window.pid) return null;
    const r = await this.client.request('axUrl', { pid: window.pid, ...(window.title ? { windowTitle: window.title } : {}) });
    return r.url;
  }

  /**
   * Read a table element (`handle` of an AXTable/AXOutline/AXGrid node) as rows of cells through the helper's
   * `axTable` (`AXRows`, `AXColumns` → `AXHeader`, cells' `AXRowIndexRange`/`AXColumnIndexRange`), for
   * structured reads. Cells are sorted by column; a secure cell's text is always null. Row/column indexes are
   * 0-based as AX reports them.
   * @returns null when the element is gone or its snapshot expired, or it is not a table.
   * @throws DeskdError `PERMISSION_DENIED_ACCESSIBILITY`, `HELPER_UNAVAILABLE`, `TIMEOUT`.
   */
  async readTable(handle: string, limits: { maxRows?: number; maxColumns?: number } = {}): Promise<MacTable | null> {
    try {
      const r = await this.client.request('axTable', { element: handle, ...limits });
      return {
        role: mapAXRole(r.role),
        rowCount: r.rowCount,
        columnCount: r.columnCount,
        headers: r.headers,
        rows: r.rows.map((row) => ({
          index: row.index,
          selected: row.selected ?? false,
          cells: [...row.cells]
            .sort((a, b) => a.column - b.column)
            .map((c) => ({ row: c.row, column: c.column, rowSpan: c.rowSpan, columnSpan: c.columnSpan, role: mapAXRole(c.role), text: c.secure ? null : c.text })),
        })),
        truncated: r.truncated,
      };
    } catch (e) {
      if (isDeskdError(e) && (e.code === 'STALE_REF' || e.code === 'ELEMENT_NOT_ACTIONABLE')) return null;
      throw e;
    }
  }

  /** Nothing to release: the helper process belongs to the client, closed by `createMacPlatformParts().close()`. */
  async close(): Promise<void> {}
}
