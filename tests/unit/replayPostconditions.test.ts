/**
 * Postconditions of recorded steps beyond "a text appeared" (issue 18): a text or element gone, an
 * element's checked states or value, a window of the target's app shown or gone — proposed from what
 * changed between the observations before and after a step (`outcome.ts`), checked on replay
 * (`conditions.ts`). Pure functions over small observation shapes.
 */
import { describe, it, expect } from 'vitest';
import type { WindowInfo } from '../../src/platform/types.js';
import type { Element } from '../../src/perception/elements.js';
import { outcomeOf } from '../../src/replay/outcome.js';
import { postconditionHolds, seenFor, describePostcondition } from '../../src/replay/conditions.js';
import { PostconditionSchema, StepSchema, type Postcondition } from '../../src/replay/types.js';

let n = 0;
const el = (role: string, name: string, opts: Partial<Element> = {}): Element => ({ ref: `e${++n}`, role, name, bounds: { x: 10, y: 10, width: 50, height: 20 }, states: ['enabled', 'visible'], actions: [], source: 'accessibility', ...opts });
const win = (app: string, title: string, x = 0, id = `0x${(++n).toString(16)}`): WindowInfo => ({ id, app, pid: 1, title, bounds: { x, y: 0, width: 400, height: 300 } });

describe('proposed postconditions', () => {
  it('a checkbox that became checked and a field whose value changed become state postconditions', () => {
    const before = { elements: [el('checkbox', 'Dark mode'), el('textbox', 'Branch', { value: 'main' }), el('button', 'Save')], lines: [] };
    const after = { elements: [el('checkbox', 'Dark mode', { states: ['enabled', 'visible', 'checked', 'focused'] }), el('textbox', 'Branch', { value: 'release' }), el('button', 'Save')], lines: [] };
    const o = outcomeOf(before, after, null);
    // focused changes with every click: never a condition.
    expect(o.postconditions).toContainEqual({ kind: 'state', role: 'checkbox', name: 'Dark mode', has: ['checked'], lacks: [] });
    expect(o.postconditions).toContainEqual({ kind: 'state', role: 'textbox', name: 'Branch', has: [], lacks: [], value: 'release' });
    expect(o.states).toEqual(['checkbox "Dark mode": +checked', 'textbox "Branch": value "release"']);
    for (const pc of o.postconditions) {
      expect(postconditionHolds(pc, after), describePostcondition(pc)).toBe(true);
      expect(PostconditionSchema.parse(pc)).toEqual(pc);
    }
    const stateOf = (x: { kind: string; role?: string }) => x.kind === 'state' && x.role === 'checkbox';
    expect(postconditionHolds(o.postconditions.find(stateOf)!, before)).toBe(false);
  });

  it('a state postcondition fails when the element lacks the state, has an extra one, or is not there; seen says which', () => {
    const pc: Postcondition = { kind: 'state', role: 'checkbox', name: 'Dark mode', has: ['checked'], lacks: ['indeterminate'] };
    expect(postconditionHolds(pc, { elements: [el('checkbox', 'dark  MODE', { states: ['checked'] })] })).toBe(true);
    expect(postconditionHolds(pc, { elements: [el('checkbox', 'Dark mode', { states: ['checked', 'indeterminate'] })] })).toBe(false);
    expect(postconditionHolds(pc, { elements: [el('checkbox', 'Dark mode')] })).toBe(false);
    expect(postconditionHolds(pc, { elements: [el('checkbox', 'Light mode', { states: ['checked'] })] })).toBe(false);
    expect(seenFor(pc, { elements: [el('checkbox', 'Dark mode', { states: ['enabled'] })] })).toBe('checkbox "Dark mode" states [enabled]');
    expect(seenFor(pc, { elements: [] })).toBe('no checkbox "Dark mode"');
    // Values compare like texts: digits of a text with letters are volatile, numbers are not.
    const v: Postcondition = { kind: 'state', role: 'textbox', name: 'Result', has: [], lacks: [], value: '42' };
    expect(postconditionHolds(v, { elements: [el('textbox', 'Result', { value: '42' })] })).toBe(true);
    expect(postconditionHolds(v, { elements: [el('textbox', 'Result', { value: '43' })] })).toBe(false);
  });

  it('elements named alike twice give no state postcondition (it could not say which one)', () => {
    const before = { elements: [el('checkbox', 'Enabled'), el('checkbox', 'Enabled')], lines: [] };
    const after = { elements: [el('checkbox', 'Enabled', { states: ['checked'] }), el('checkbox', 'Enabled')], lines: [] };
    expect(outcomeOf(before, after, null).postconditions.filter((p) => p.kind === 'state')).toEqual([]);
  });

  it('a text or an element that went away from the target window is a gone postcondition; another window showing it does not count', () => {
    const inWin = { x: 10, y: 10, width: 60, height: 20 };
    const before = { elements: [el('button', 'Approve', { bounds: inWin }), el('text', 'Pending review', { bounds: { ...inWin, y: 50 } })], lines: [] };
    const after = { elements: [el('text', 'Approved', { bounds: { ...inWin, y: 50 } })], lines: [] };
    const within = { x: 0, y: 0, width: 400, height: 300 };
    const o = outcomeOf(before, after, { within });
    const gone = o.postconditions.filter((p) => p.kind === 'gone');
    expect(gone).toEqual([
      { kind: 'gone', text: 'Approve', role: 'button', source: 'accessibility' },
      { kind: 'gone', text: 'Pending review', role: 'text', source: 'accessibility' },
    ]);
    expect(o.postconditions[0]).toEqual({ kind: 'appears', text: 'Approved', role: 'text', source: 'accessibility' });
    // The button back in the window: the condition fails, and says what is still shown.
    const still = { elements: [el('button', 'approve', { bounds: inWin })] };
    expect(postconditionHolds(gone[0]!, still, { within })).toBe(false);
    expect(seenFor(gone[0]!, still, { within })).toBe('button "approve" is still shown');
    // The same name in another window is not the target window's button.
    const elsewhere = { elements: [el('button', 'Approve', { bounds: { ...inWin, x: 600 } })] };
    expect(postconditionHolds(gone[0]!, elsewhere, { within })).toBe(true);
    // Exact: a text that only contains it does not hold it back.
    expect(postconditionHolds(gone[0]!, { elements: [el('button', 'Approve all', { bounds: inWin })] }, { within })).toBe(true);
  });

  it('OCR text that went away is no gone postcondition (a cursor blink or a repaint)', () => {
    const line = (text: string) => ({ text, bounds: { x: 0, y: 0, width: 10, height: 10 } });
    const o = outcomeOf({ elements: [], lines: [line('Idle'), line('ok')] }, { elements: [], lines: [line('ok')] }, null);
    expect(o.postconditions.filter((p) => p.kind === 'gone')).toEqual([]);
    expect(o.gone).toEqual(['text "Idle"']);
  });

  it("a dialog of the target's app that opened, and a title that changed, become window postconditions; other apps' windows do not", () => {
    const before = [win('gedit', 'notes.txt - gedit', 0, '0x1'), win('xterm', 'shell', 500, '0x2')];
    const after = [win('gedit', 'Save As', 100, '0x3'), win('gedit', '*notes.txt - gedit', 0, '0x1'), win('xterm', 'other shell', 500, '0x2')];
    const o = outcomeOf({ elements: [] }, { elements: [] }, { within: before[0]!.bounds, app: 'gedit', windowsBefore: before, windowsAfter: after });
    expect(o.postconditions).toEqual([
      { kind: 'window', app: 'gedit', title: 'Save As', present: true },
      { kind: 'window', app: 'gedit', title: '*notes.txt - gedit', present: true },
    ]);
    expect(o.windows).toEqual(['+gedit "Save As"', '+gedit "*notes.txt - gedit"', '-gedit "notes.txt - gedit"']);
    // "notes.txt - gedit" went away too, but at most 2 window conditions are kept (opened ones first).
    for (const pc of o.postconditions) expect(postconditionHolds(pc, { elements: [] }, { windows: after })).toBe(true);
    expect(postconditionHolds(o.postconditions[0]!, { elements: [] }, { windows: before })).toBe(false);
    expect(seenFor(o.postconditions[0]!, { elements: [] }, { windows: before })).toBe('windows: gedit "notes.txt - gedit"');
    // Without a window list a window postcondition cannot hold.
    expect(postconditionHolds(o.postconditions[0]!, { elements: [] })).toBe(false);
  });

  it('a closed dialog is a window postcondition with present false; digits in titles are volatile', () => {
    const before = [win('chromium', 'Confirm deploy 12'), win('chromium', 'Build 41 - CI')];
    const after = [win('chromium', 'Build 41 - CI')];
    const o = outcomeOf({ elements: [] }, { elements: [] }, { within: null, app: 'chromium', windowsBefore: before, windowsAfter: after });
    expect(o.postconditions).toEqual([{ kind: 'window', app: 'chromium', title: 'Confirm deploy 12', present: false }]);
    expect(postconditionHolds(o.postconditions[0]!, { elements: [] }, { windows: [win('chromium', 'Confirm deploy 13')] })).toBe(false);
    expect(postconditionHolds({ kind: 'window', app: 'chromium', title: 'Build 41 - CI', present: true }, { elements: [] }, { windows: [win('chromium', 'Build 42 - CI - Chromium')] })).toBe(true);
  });

  it('every proposal holds in the observation it came from, and a step holds at most 8', () => {
    const before = { elements: Array.from({ length: 12 }, (_, i) => el('checkbox', `Option ${i}`)), lines: [] };
    const after = { elements: [...Array.from({ length: 12 }, (_, i) => el('checkbox', `Option ${i}`, { states: ['checked'] })), ...Array.from({ length: 6 }, (_, i) => el('text', `Saved ${'x'.repeat(i)}`))], lines: [] };
    const o = outcomeOf(before, after, null);
    expect(o.postconditions.length).toBeLessThanOrEqual(8);
    expect(o.postconditions.filter((p) => p.kind === 'appears')).toHaveLength(3);
    expect(o.postconditions.filter((p) => p.kind === 'state')).toHaveLength(2);
    for (const pc of o.postconditions) expect(postconditionHolds(pc, after)).toBe(true);
  });

  it('the step format takes every kind, refuses unknown kinds and states, and reads older steps without outcome states', () => {
    const step = {
      index: 1, kind: 'action', action: { type: 'click' }, fingerprint: null, point: null,
      outcome: { appeared: [], gone: [] }, thumbnails: { before: null, after: null }, at: 0, durationMs: 0,
      postconditions: [
        { kind: 'appears', text: 'a', role: 'text', source: 'ocr' },
        { kind: 'gone', text: 'b', role: 'button', source: 'accessibility' },
        { kind: 'state', role: 'checkbox', name: 'c', has: ['checked'], lacks: [] },
        { kind: 'window', app: null, title: 'd', present: false },
      ],
    };
    expect(StepSchema.safeParse(step).success).toBe(true);
    expect(StepSchema.safeParse({ ...step, postconditions: [{ kind: 'state', role: 'x', name: 'y', has: ['focused'], lacks: [] }] }).success).toBe(false);
    expect(StepSchema.safeParse({ ...step, postconditions: [{ kind: 'eval', code: 'x' }] }).success).toBe(false);
    expect(StepSchema.safeParse({ ...step, postconditions: Array.from({ length: 9 }, () => step.postconditions[0]) }).success).toBe(false);
  });
});
