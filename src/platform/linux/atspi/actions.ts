/**
 * Acting on accessible objects: named actions (`org.a11y.atspi.Action.DoAction`), focus
 * (`Component.GrabFocus`) and text replacement (`EditableText.SetTextContents`), with their errors mapped
 * to deskd's codes.
 *
 * Sources: at-spi2-core xml/Action.xml, Component.xml, EditableText.xml.
 */
import { DeskdError, isDeskdError } from '../../../errors.js';
import type { AtspiBus } from './bus.js';
import { actionNames, listedActionNames } from './reader.js';
import { ACTION, COMPONENT, EDITABLE_TEXT, parseAtspiHandle } from './refs.js';

/** Synonyms of a "press" in the order they are tried (GTK: `click`; Chromium: `click`/`press`/`activate`). */
const PRESS_SYNONYMS = ['press', 'click', 'activate'];

/**
 * Map a failed AT-SPI action call: the object or application gone → `STALE_REF`; no such interface or
 * method → false; no answer → `TIMEOUT`; anything else → `ACTION_FAILED`.
 */
export function actionError(e: unknown, handle: string, action: string): false {
  if (isDeskdError(e)) throw e;
  const type = (e as { type?: string }).type ?? '';
  const text = (e as Error).message ?? '';
  // The object or its application is gone. GTK 4 answers UnknownMethod "Object does not exist at path".
  if (/UnknownObject|ServiceUnknown|NameHasNoOwner|NoReply|Disconnected/.test(type) || /does not exist|unknown object|disconnected/i.test(text)) {
    throw new DeskdError('STALE_REF', `the element ${handle} no longer exists (${type}: ${text})`);
  }
  // The object exists but has no such interface.
  if (/UnknownMethod|UnknownInterface|UnknownProperty|InvalidArgs|NotSupported/.test(type)) return false;
  if (/^timeout/.test(text)) throw new DeskdError('TIMEOUT', `AT-SPI action ${action} on ${handle} got no answer (it may still run): ${text}`);
  throw new DeskdError('ACTION_FAILED', `AT-SPI action ${action} on ${handle} failed: ${text}`);
}

/**
 * Perform a named action (see `AtspiAccessibility.doAction`): case-insensitive, `press`/`click`/`activate`
 * as synonyms, `focus` = `GrabFocus`. @returns false when there is no such action.
 * @throws DeskdError `STALE_REF`, `TIMEOUT`, `ACTION_FAILED`, `ACCESSIBILITY_UNAVAILABLE`.
 */
export async function doAction(bus: AtspiBus, handle: string, action: string): Promise<boolean> {
  const ref = parseAtspiHandle(handle);
  const wanted = action.trim().toLowerCase();
  try {
    if (wanted === 'focus') {
      const [ok] = await bus.call(ref, COMPONENT, 'GrabFocus');
      return ok === true;
    }
    // Match the non-localised names (GetName) first, then the names a snapshot listed (GetActions).
    const find = (names: string[]): number => {
      const lower = names.map((n) => n.toLowerCase());
      let i = lower.indexOf(wanted);
      if (i < 0 && PRESS_SYNONYMS.includes(wanted)) {
        for (const syn of PRESS_SYNONYMS) {
          i = lower.indexOf(syn);
          if (i >= 0) break;
        }
      }
      return i;
    };
    let index = find(await actionNames(bus, ref));
    if (index < 0) index = find(await listedActionNames(bus, ref));
    if (index < 0) return false;
    const [ok] = await bus.call(ref, ACTION, 'DoAction', 'i', [index]);
    return ok === true;
  } catch (e) {
    return actionError(e, handle, action);
  }
}

/**
 * Replace an element's text (`EditableText.SetTextContents(s) → b`). The value is never logged nor put in
 * error messages. @returns false without the interface or when refused.
 * @throws DeskdError `STALE_REF`, `TIMEOUT`, `ACTION_FAILED`, `ACCESSIBILITY_UNAVAILABLE`.
 */
export async function setValue(bus: AtspiBus, handle: string, value: string): Promise<boolean> {
  const ref = parseAtspiHandle(handle);
  try {
    const [ok] = await bus.call(ref, EDITABLE_TEXT, 'SetTextContents', 's', [value]);
    return ok === true;
  } catch (e) {
    return actionError(e, handle, 'set_value');
  }
}
