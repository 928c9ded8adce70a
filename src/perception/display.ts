import type { DisplayInfo, Platform } from '../platform/types.js';
import { DeskdError } from '../errors.js';

/** Resolve a display id (undefined = primary). @throws DeskdError `DISPLAY_NOT_FOUND`. */
export async function resolveDisplay(platform: Platform, id?: number): Promise<DisplayInfo> {
  const displays = await platform.capture.displays();
  const d = id === undefined ? (displays.find((x) => x.primary) ?? displays[0]) : displays.find((x) => x.id === id);
  if (!d) throw new DeskdError('DISPLAY_NOT_FOUND', id === undefined ? 'No display is attached' : `No display with id ${id}`);
  return d;
}
