/**
 * Argument schemas of the MCP tools that act. Each derives from the action schema of
 * `src/actuation/schema.ts` (the same limits as `POST /v1/actions`: key names and chord length, scroll
 * range, text length, drag path, window ids, locator fields); only the descriptions, written for a
 * model, and MCP's optional-ness are added here.
 */
import { z } from 'zod';
import {
  ChordSchema,
  CoordSchema,
  HeldKeysSchema,
  LocatorFields,
  RefSchema,
  ScrollDeltaSchema,
  TextInputSchema,
  WindowIdSchema,
  pathSchema,
} from '../actuation/schema.js';

/** A point in logical screen points (unknown keys are dropped, as MCP tool arguments are). */
export const Point = z.object({ x: CoordSchema, y: CoordSchema });

/** Where a pointer tool aims: a ref (of the latest or a given observation), or x and y. */
export const RefArgs = {
  ref: RefSchema.optional().describe('Element ref from observe/find, e.g. "e12" (aim at the centre of its bounds)'),
  observationId: z.string().optional().describe('The observation the ref belongs to (default: the latest observation made through MCP)'),
  x: CoordSchema.optional().describe('Logical screen points (use with y, instead of ref)'),
  y: CoordSchema.optional().describe('Logical screen points'),
};

/** Keys held during a pointer action (the action schema's `keys`). */
export const HeldKeys = HeldKeysSchema;

/** Arguments of the element tools (press, set_value, focus): a ref, or a locator resolved in a fresh observation. */
export const ElementArgs = {
  ref: RefArgs.ref,
  observationId: RefArgs.observationId,
  text: LocatorFields.text.optional().describe('Instead of ref: the visible text of the element (name, value or OCR text), best match in a fresh observation'),
  role: LocatorFields.role.optional().describe('Instead of ref: the role (button, textbox, link, checkbox, …), alone or with text/name'),
  name: LocatorFields.name.optional().describe('Instead of ref: the accessible name'),
  exact: z.boolean().optional().describe('With text/name: only exact (normalised, case-insensitive) matches'),
};

/** `type`: the text (not empty). */
export const TypeText = TextInputSchema.min(1).describe('Text to type');
/** `keypress`: the chord. */
export const Chord = ChordSchema.describe('Key names: modifiers ctrl, shift, alt, meta; enter, tab, escape, f1…f12, arrows, single characters');
/** `scroll`: points along one axis (default 0). */
export const scrollDelta = (description: string) => ScrollDeltaSchema.optional().describe(description);
/** `drag`: the path. */
export const DragPath = pathSchema(Point).describe('Points of the drag, at least two');
/** `set_value`: the new text. */
export const Value = TextInputSchema.describe('The new text');
/** `focus_window`: the window id. */
export const WindowId = WindowIdSchema.describe('Window id from list_windows, e.g. 0x1a00003');
