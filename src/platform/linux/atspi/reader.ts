/**
 * Reading one accessible object: its basics (role, name, description, states, children) and its details
 * (screen extents, action names, value, range, the name of its labels), and turning them into a `RawAXNode`.
 *
 * Sources: at-spi2-core xml/Accessible.xml (`GetRoleName`, `GetState`, `GetChildren`, `GetRelationSet`,
 * `GetAttributes`; properties `Name`, `Description`, `ChildCount` read at once with
 * `org.freedesktop.DBus.Properties.GetAll`), Component.xml (`GetExtents`), Action.xml (`GetActions`,
 * `GetName`, `NActions`), Text.xml, Value.xml, Selection.xml.
 */
import { isToolkitClassName } from '../../names.js';
import { INTERACTIVE_ROLES } from '../../roles.js';
import type { RawAXNode, Rect, ValueRange } from '../../types.js';
import { decodeAtspiStateBits, isPasswordRole, mapAtspiRole, normalizeAtspiStates, type AtspiState } from '../atspiRoles.js';
import type { AtspiBus } from './bus.js';
import { readProperties } from './properties.js';
import { ACCESSIBLE, ACTION, atspiHandle, COMPONENT, COORD_SCREEN, extentsToRect, SELECTION, TEXT, toRefs, VALUE, type Ref } from './refs.js';

/** `ATSPI_RELATION_LABELLED_BY` (at-spi2-core `AtspiRelationType`): the object is labelled by the targets. */
const RELATION_LABELLED_BY = 2;
/** U+FFFC, the object replacement character: an embedded child in `Text` (Chromium's `<select>` text). */
const EMBEDDED_OBJECT = /\uFFFC/g;
/** Longest value text returned (characters); longer text is cut. */
const MAX_VALUE_CHARS = 10_000;
/** Roles whose `Value.CurrentValue` is read. */
const VALUE_ROLES = new Set(['progressbar', 'slider', 'spinbutton', 'scrollbar']);
/** Roles whose labels (`RELATION_LABELLED_BY`) are read when they have no name of their own. */
const LABELLED_ROLES: ReadonlySet<string> = new Set([...INTERACTIVE_ROLES, 'image', 'canvas', 'progressbar']);
/** Roles whose range (`Value.MinimumValue`/`MaximumValue`/`MinimumIncrement`) is reported. */
const RANGE_ROLES = new Set(['progressbar', 'slider', 'spinbutton']);

/** What is known of an object's basics. */
export interface Basic {
  ref: Ref;
  roleName: string;
  name: string;
  description: string;
  childCount: number;
  states: Set<AtspiState>;
  children: Ref[];
}

/** An object's details (filled into its node). */
export type Details = Pick<RawAXNode, 'bounds' | 'actions' | 'value' | 'range'> & { labelName?: string };

/** `GetState` → the state set. @throws the D-Bus error. */
export async function readStates(bus: AtspiBus, ref: Ref): Promise<Set<AtspiState>> {
  const [bits] = await bus.call(ref, ACCESSIBLE, 'GetState');
  return decodeAtspiStateBits(Array.isArray(bits) ? (bits as number[]) : []);
}

/** `AtspiRole` `ATSPI_ROLE_PASSWORD_TEXT` (at-spi2-core atspi-constants.h; `Atspi.role_get_name(40)` = "password text"). */
const ATSPI_ROLE_PASSWORD_TEXT = 40;

/**
 * The role name of an object: `GetRoleName`, except that a text field whose numeric role (`GetRole`) is
 * `ATSPI_ROLE_PASSWORD_TEXT` is named "password text" whatever its role name says. Qt 5 answers `GetRole`
 * with the password role for a `QLineEdit` in password echo mode but `GetRoleName` with plain "text"
 * (checked on Qt 5.15.8's lineedits example; libatspi, and so pyatspi, name roles from `GetRole`), so deskd
 * took a Qt password field for an ordinary text box. The extra call is made only for roles deskd maps to a
 * text box, and not at all when the numeric role is known (`numericRole`, from a `Cache.GetItems` item).
 *
 * Why not name every role from `GetRole` through libatspi's table, as libatspi does: tried on 2026-12-07, and
 * the incremental tree's Chromium e2e test (tests/e2e/atspiIncremental.test.ts) then kept a removed list item
 * in 5 of 40 runs (0 of 26 with `GetRoleName`, cause not found); GTK 4's own role names would also have changed.
 * @throws the D-Bus error of `GetRoleName` (a failed `GetRole` keeps the role name).
 */
export async function readRoleName(bus: AtspiBus, ref: Ref, numericRole?: number): Promise<string> {
  const roleName = String((await bus.call(ref, ACCESSIBLE, 'GetRoleName'))[0] ?? '');
  if (isPasswordRole(roleName) || mapAtspiRole(roleName) !== 'textbox') return roleName;
  const role = numericRole ?? (await bus.call(ref, ACCESSIBLE, 'GetRole').then((b) => b[0], () => null));
  return role === ATSPI_ROLE_PASSWORD_TEXT ? 'password text' : roleName;
}

/** {@link readRoleName} and the `Accessible` properties `Name`, `Description`, `ChildCount` (one `GetAll` where the toolkit takes it: see properties.ts). @throws the D-Bus error. */
export async function readCore(bus: AtspiBus, ref: Ref): Promise<{ roleName: string; name: string; description: string; childCount: number | null }> {
  const [roleName, props] = await Promise.all([readRoleName(bus, ref), readProperties(bus, ref, ACCESSIBLE, ['Name', 'Description', 'ChildCount'])]);
  const n = Number(props.ChildCount);
  return { roleName, name: String(props.Name ?? ''), description: String(props.Description ?? ''), childCount: props.ChildCount === undefined || !Number.isFinite(n) ? null : n };
}

/** `GetChildren`. @throws the D-Bus error. */
export async function readChildren(bus: AtspiBus, ref: Ref): Promise<Ref[]> {
  return toRefs((await bus.call(ref, ACCESSIBLE, 'GetChildren'))[0]);
}

/**
 * Role, name, description, states and children of one object, all calls at once. (`GetInterfaces` is
 * not asked: the optional interfaces are simply called, and a missing one answers an error at once.)
 * @throws the D-Bus error of any of them.
 */
export async function readBasic(bus: AtspiBus, ref: Ref): Promise<Basic> {
  const [core, states, children] = await Promise.all([readCore(bus, ref), readStates(bus, ref), readChildren(bus, ref)]);
  return { ref, roleName: core.roleName, name: core.name, description: core.description, childCount: core.childCount ?? children.length, states, children };
}

/** Screen extents (`Component.GetExtents(0)`), null without the interface or on any failure. Never throws. */
export function readBounds(bus: AtspiBus, ref: Ref): Promise<Rect | null> {
  return bus
    .call(ref, COMPONENT, 'GetExtents', 'u', [COORD_SCREEN])
    .then((r) => extentsToRect(r[0]))
    .catch(() => null);
}

/**
 * The details that depend on the role and name: value (the text of editable text; `Value.CurrentValue`
 * of sliders, spin buttons, progress bars; a combo box's text, else the name of its selected item), range
 * (`Value.MinimumValue`/`MaximumValue`/`MinimumIncrement`) and, for objects without a name of their own
 * (empty or a toolkit class name like GTK 4's `GtkButton`), the names of their `RELATION_LABELLED_BY`
 * targets. A missing interface or any failure leaves the field empty. Never throws.
 */
export async function readRoleDetails(bus: AtspiBus, b: Basic, role: string): Promise<Omit<Details, 'bounds' | 'actions'>> {
  const password = isPasswordRole(b.roleName);
  const editable = b.states.has('editable');
  const [value, v, labelName] = await Promise.all([
    !password && (editable || role === 'textbox')
      ? bus.call(b.ref, TEXT, 'GetText', 'ii', [0, -1]).then((r) => String(r[0] ?? '').slice(0, MAX_VALUE_CHARS)).catch(() => undefined)
      : !password && role === 'combobox'
        ? comboValue(bus, b).catch(() => undefined)
        : !password && VALUE_ROLES.has(role)
          ? bus.prop(b.ref, VALUE, 'CurrentValue').then((x) => (typeof x === 'number' && Number.isFinite(x) ? String(x) : undefined)).catch(() => undefined)
          : Promise.resolve(undefined),
    !password && RANGE_ROLES.has(role) ? valueInterface(bus, b.ref) : Promise.resolve(null),
    // One more round trip, so only for elements an agent acts on or reads without a name of their own.
    LABELLED_ROLES.has(role) && (b.name.trim() === '' || isToolkitClassName(b.name)) ? labelledByName(bus, b.ref).catch(() => undefined) : Promise.resolve(undefined),
  ]);
  const out: Omit<Details, 'bounds' | 'actions'> = { value };
  if (v?.range) out.range = v.range;
  if (labelName) out.labelName = labelName;
  return out;
}

/** Bounds, actions and the role details, all at once. Never throws. */
export async function readDetails(bus: AtspiBus, b: Basic, role: string): Promise<Details> {
  const [bounds, actions, rest] = await Promise.all([readBounds(bus, b.ref), listedActionNames(bus, b.ref).catch(() => [] as string[]), readRoleDetails(bus, b, role)]);
  return { bounds, actions, ...rest };
}

/**
 * `org.a11y.atspi.Value` in one call (`Properties.GetAll`): the range when `MinimumValue < MaximumValue`
 * (`step` = `MinimumIncrement` when > 0), or null without the interface.
 */
async function valueInterface(bus: AtspiBus, ref: Ref): Promise<{ current?: number; range?: ValueRange } | null> {
  const all = await readProperties(bus, ref, VALUE, ['MinimumValue', 'MaximumValue', 'MinimumIncrement', 'CurrentValue']).catch(() => null);
  if (!all) return null;
  const num = (k: string): number | undefined => {
    const x = all[k];
    return typeof x === 'number' && Number.isFinite(x) ? x : undefined;
  };
  const min = num('MinimumValue');
  const max = num('MaximumValue');
  const step = num('MinimumIncrement');
  const out: { current?: number; range?: ValueRange } = {};
  const current = num('CurrentValue');
  if (current !== undefined) out.current = current;
  if (min !== undefined && max !== undefined && max > min) out.range = { min, max, ...(step !== undefined && step > 0 ? { step } : {}) };
  return out;
}

/**
 * What a combo box shows: its `Text` (embedded-object characters removed), else the name of the selected
 * item: `Selection.GetSelectedChild(0)` on the combo box or on its popup child (GTK), else the popup's item
 * at the combo box's `posinset` object attribute (Chromium's `<select>`), else the first item of the
 * popup with the `selected` state. Undefined when none says.
 */
async function comboValue(bus: AtspiBus, b: Basic): Promise<string | undefined> {
  const text = await bus
    .call(b.ref, TEXT, 'GetText', 'ii', [0, -1])
    .then((r) => String(r[0] ?? '').replace(EMBEDDED_OBJECT, '').trim())
    .catch(() => '');
  if (text) return text.slice(0, MAX_VALUE_CHARS);
  const nameOf = (ref: Ref) => bus.prop(ref, ACCESSIBLE, 'Name').then((v) => String(v ?? '').trim());
  const selectedIn = async (ref: Ref): Promise<string | undefined> => {
    const viaSelection = await bus
      .call(ref, SELECTION, 'GetSelectedChild', 'i', [0])
      .then((r) => toRefs([r[0]])[0])
      .catch(() => undefined);
    if (viaSelection) {
      const n = await nameOf(viaSelection).catch(() => '');
      if (n) return n;
    }
    const kids = (await readChildren(bus, ref)).slice(0, 200);
    const states = await Promise.all(kids.map((k) => readStates(bus, k).catch(() => new Set<AtspiState>())));
    const i = states.findIndex((st) => st.has('selected'));
    return i >= 0 ? (await nameOf(kids[i]!).catch(() => '')) || undefined : undefined;
  };
  const own = await selectedIn(b.ref).catch(() => undefined);
  if (own) return own;
  // Chromium's `<select>`: the options' `selected` states go stale once the page changes the value, but the
  // combo box's object attribute `posinset` (1-based) follows the shown option of its popup.
  const attrs = await bus.call(b.ref, ACCESSIBLE, 'GetAttributes').then((r) => (r[0] ?? {}) as Record<string, unknown>).catch(() => ({}) as Record<string, unknown>);
  const pos = Number(attrs.posinset);
  const children = b.children.length > 0 ? b.children : await readChildren(bus, b.ref).catch(() => [] as Ref[]);
  for (const popup of children.slice(0, 2)) {
    if (Number.isInteger(pos) && pos >= 1) {
      const items = await readChildren(bus, popup).catch(() => [] as Ref[]);
      const item = items[pos - 1];
      const n = item ? await nameOf(item).catch(() => '') : '';
      if (n) return n;
    }
    const v = await selectedIn(popup).catch(() => undefined);
    if (v) return v;
  }
  return undefined;
}

/**
 * The names of an object's labels: the targets of its `RELATION_LABELLED_BY` relation
 * (`Accessible.GetRelationSet` → `a(ua(so))`), each target's `Name` (else its `Text`), joined by a space;
 * toolkit class names are skipped. Undefined when it has no such relation or they carry no text.
 */
async function labelledByName(bus: AtspiBus, ref: Ref): Promise<string | undefined> {
  const [set] = await bus.call(ref, ACCESSIBLE, 'GetRelationSet');
  if (!Array.isArray(set)) return undefined;
  const targets: Ref[] = [];
  for (const rel of set) {
    if (Array.isArray(rel) && Number(rel[0]) === RELATION_LABELLED_BY) targets.push(...toRefs(rel[1]));
  }
  if (targets.length === 0) return undefined;
  const names = await Promise.all(
    targets.slice(0, 4).map(async (t) => {
      const n = String((await bus.prop(t, ACCESSIBLE, 'Name').catch(() => '')) ?? '').trim();
      if (n && !isToolkitClassName(n)) return n;
      return bus
        .call(t, TEXT, 'GetText', 'ii', [0, -1])
        .then((r) => String(r[0] ?? '').replace(EMBEDDED_OBJECT, '').trim())
        .catch(() => '');
    }),
  );
  const joined = names.filter((n) => n && n !== '').join(' ').replace(/\s+/g, ' ').trim();
  return joined || undefined;
}

/**
 * Action names in index order for a snapshot: one `GetActions` call (`a(sss)`: name, description,
 * key binding). Where a name comes back empty (Chromium leaves them empty), `GetName(i)` fills it in.
 * @returns [] without an Action interface. @throws the D-Bus error of a `GetName`.
 */
export async function listedActionNames(bus: AtspiBus, ref: Ref): Promise<string[]> {
  let names: string[];
  try {
    const [list] = await bus.call(ref, ACTION, 'GetActions');
    names = Array.isArray(list) ? list.slice(0, 32).map((a) => String(Array.isArray(a) ? (a[0] ?? '') : a)) : [];
  } catch {
    return []; // no Action interface
  }
  return Promise.all(names.map((n, i) => (n ? n : bus.call(ref, ACTION, 'GetName', 'i', [i]).then((r) => String(r[0] ?? '')))));
}

/** Non-localised action names in index order: `NActions`, then every `GetName(i)` at once. @throws the D-Bus error. */
export async function actionNames(bus: AtspiBus, ref: Ref): Promise<string[]> {
  const n = Number(await bus.prop(ref, ACTION, 'NActions'));
  if (!Number.isFinite(n) || n <= 0) return [];
  return Promise.all(Array.from({ length: Math.min(n, 32) }, (_, i) => bus.call(ref, ACTION, 'GetName', 'i', [i]).then((r) => String(r[0] ?? ''))));
}

/** A node from an object's basics and details (`children: []`); the labels' name replaces an empty own name. */
export function toNode(b: Basic, role: string, d: Details): RawAXNode {
  const node: RawAXNode = {
    handle: atspiHandle(b.ref[0], b.ref[1]),
    role,
    platformRole: b.roleName || 'unknown',
    name: b.name,
    bounds: d.bounds,
    states: normalizeAtspiStates(b.states, b.roleName),
    actions: d.actions,
    children: [],
  };
  if (b.description) node.description = b.description;
  if (d.value !== undefined) node.value = d.value;
  if (d.range) node.range = d.range;
  if (d.labelName) node.name = d.labelName;
  return node;
}
