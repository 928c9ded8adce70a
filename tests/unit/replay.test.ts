/**
 * Re-grounding, fingerprints, postconditions and parameters (issue 18): pure functions, ranked against
 * observation shapes recorded from real apps under Xvfb (`tests/fixtures/replay/*.json`, made by
 * `tests/fixtures/replay/capture.mjs`: gnome-calculator before and after a resize, a CI page in Chromium as
 * served, moved and restyled, and renamed) and small made-up ones for the edge rules.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { WindowInfo } from '../../src/platform/types.js';
import type { Element, OcrLine } from '../../src/perception/elements.js';
import { fingerprintOf, nearbyLabels, containmentPath, elementAt } from '../../src/replay/fingerprint.js';
import { outcomeOf } from '../../src/replay/outcome.js';
import { ground, rankCandidates, similarity, roleScore, WEIGHTS, MIN_IDENTITY, MARGIN, MIN_SCORE } from '../../src/replay/ground.js';
import { postconditionHolds, volatileForm, fillParams, storedText, paramsIn } from '../../src/replay/conditions.js';
import { redactMasked, stepMasked } from '../../src/replay/index.js';
import type { Recording } from '../../src/replay/types.js';

interface Shape {
  windows: WindowInfo[];
  elements: Element[];
  lines: OcrLine[];
}
const shape = (name: string): Shape => JSON.parse(readFileSync(fileURLToPath(new URL(`../fixtures/replay/${name}.json`, import.meta.url)), 'utf8')) as Shape;
const find = (s: Shape, role: string, name: string) => {
  const e = s.elements.find((x) => x.role === role && x.name === name);
  if (!e) throw new Error(`no ${role} "${name}" in the shape: ${s.elements.map((x) => `${x.role} "${x.name}"`).join(', ')}`);
  return e;
};

describe('re-grounding on recorded shapes', () => {
  it('gnome-calculator: 7, ×, 6 and = are found again after the window was resized, each clearly', () => {
    const before = shape('calculator');
    const after = shape('calculator-resized');
    for (const key of ['7', '×', '6', '=']) {
      const el = find(before, 'button', key);
      const fp = fingerprintOf(el, before, before.windows);
      expect(fp.app).toBe('gnome-calculator');
      const g = ground(fp, after, after.windows);
      expect(g.ok, `${key}: ${JSON.stringify(g.candidates.slice(0, 3).map((c) => [c.element.name, c.score]))}`).toBe(true);
      if (!g.ok) continue;
      expect(g.best.element).toMatchObject({ role: 'button', name: key });
      expect(g.best.element.bounds).not.toEqual(el.bounds);
      expect(g.margin).toBeGreaterThan(MARGIN);
    }
  });

  it('CI page: "Run build" is found after the button moved and the page was restyled', () => {
    const ci = shape('ci');
    const moved = shape('ci-moved-dark');
    const fp = fingerprintOf(find(ci, 'button', 'Run build'), ci, ci.windows);
    expect(fp.app).toBe('chromium');
    const g = ground(fp, moved, moved.windows);
    expect(g.ok).toBe(true);
    if (!g.ok) return;
    const now = find(moved, 'button', 'Run build');
    expect(g.best.element.bounds).toEqual(now.bounds);
    expect(now.bounds.x).toBeGreaterThan(fp.bounds.x + 100);
  });

  it('CI page: with the button renamed, it is a weak match naming the candidates, never a guess', () => {
    const ci = shape('ci');
    const renamed = shape('ci-renamed');
    const fp = fingerprintOf(find(ci, 'button', 'Run build'), ci, ci.windows);
    const g = ground(fp, renamed, renamed.windows);
    expect(g.ok).toBe(false);
    if (g.ok) return;
    expect(g.reason).toBe('weak_match');
    expect(g.candidates.map((c) => c.element.name)).toEqual(expect.arrayContaining(['Start pipeline', 'Cancel']));
    expect(g.candidates.every((c) => Math.max(c.features.name ?? 0, c.features.text ?? 0) < MIN_IDENTITY)).toBe(true);
  });
});

// ---- made-up shapes for the edge rules ---------------------------------------------------------------

const win = (app: string, x: number, title = 'Main'): WindowInfo => ({ id: `0x${x.toString(16)}1`, app, pid: 1, title, bounds: { x, y: 0, width: 400, height: 300 } });
const btn = (ref: string, name: string, x: number, y = 100, extra: Partial<Element> = {}): Element => ({ ref, role: 'button', name, bounds: { x, y, width: 60, height: 30 }, states: ['enabled'], actions: ['press'], source: 'accessibility', ...extra });

describe('ranking rules', () => {
  const windows = [win('app', 0)];
  const recorded = { elements: [btn('e1', 'Save', 20), btn('e2', 'Cancel', 120)], lines: [] };
  const fp = fingerprintOf(recorded.elements[0]!, recorded, windows);

  it('weights sum to 1 and the thresholds are as documented', () => {
    expect(Object.values(WEIGHTS).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    expect([MIN_SCORE, MIN_IDENTITY, MARGIN]).toEqual([0.6, 0.8, 0.05]);
  });

  it('two candidates with the same name at the same place of two windows are ambiguous', () => {
    const two = { elements: [btn('e1', 'Save', 20), btn('e2', 'Save', 420)], lines: [] };
    const g = ground(fp, two, [win('app', 0), win('app', 400)]);
    expect(g.ok).toBe(false);
    if (!g.ok) expect(g.reason).toBe('ambiguous');
  });

  it('the same name at another place of one window is still a clear match when nothing else competes', () => {
    const g = ground(fp, { elements: [btn('e7', 'Save', 300, 250), btn('e8', 'Cancel', 20)], lines: [] }, windows);
    expect(g.ok).toBe(true);
    if (g.ok) expect(g.best.element.ref).toBe('e7');
  });

  it('another app is never a candidate; an unrelated role is never one', () => {
    expect(ground(fp, { elements: [btn('e1', 'Save', 20)], lines: [] }, [win('other', 0)])).toMatchObject({ ok: false, reason: 'no_candidate' });
    const asText: Element = { ...btn('e1', 'Save', 20), role: 'textbox' };
    expect(rankCandidates(fp, { elements: [asText], lines: [] }, windows)).toEqual([]);
    expect(roleScore('button', 'link')).toBe(0.5);
    expect(roleScore('button', 'textbox')).toBe(0);
  });

  it('covered elements are not candidates', () => {
    const covered = btn('e1', 'Save', 20, 100, { states: ['covered'] });
    expect(ground(fp, { elements: [covered], lines: [] }, windows)).toMatchObject({ ok: false, reason: 'no_candidate' });
  });

  it('similarity: exact 1, OCR confusions folded for OCR text, a rename is far', () => {
    expect(similarity('Run  build', 'run build')).toBe(1);
    expect(similarity('Bui1d 5', 'Build S', true)).toBe(0.95);
    expect(similarity('Run build', 'Start pipeline')).toBeLessThan(0.5);
  });

  it('labels and paths come from the observation around the element', () => {
    const label: Element = { ref: 'e3', role: 'label', name: 'Branch', bounds: { x: 10, y: 200, width: 50, height: 20 }, states: [], actions: [], source: 'accessibility' };
    const field: Element = { ref: 'e4', role: 'textbox', name: '', bounds: { x: 70, y: 198, width: 200, height: 24 }, states: [], actions: [], source: 'accessibility' };
    const panel: Element = { ref: 'e2', role: 'panel', name: 'Form', bounds: { x: 0, y: 150, width: 400, height: 100 }, states: [], actions: [], source: 'accessibility' };
    const obs = { elements: [panel, label, field], lines: [] };
    expect(nearbyLabels(field, obs.elements)).toEqual(['Branch']);
    expect(containmentPath(field, obs.elements)).toEqual(['panel:Form']);
    expect(elementAt(obs, { x: 100, y: 205 })).toBe(field);
  });
});

describe('postconditions', () => {
  const ax = (role: string, name: string, value?: string): Element => ({ ref: 'e1', role, name, ...(value !== undefined ? { value } : {}), bounds: { x: 0, y: 0, width: 10, height: 10 }, states: [], actions: [], source: 'accessibility' });

  it('the texts that appeared in the window, with the role that showed them', () => {
    const before = { elements: [ax('button', '7'), ax('textbox', '', '')], lines: [] };
    const after = { elements: [ax('button', '7'), ax('textbox', '', '7')], lines: [] };
    const o = outcomeOf(before, after, null);
    expect(o.appeared).toEqual(['textbox "7"']);
    expect(o.postconditions).toEqual([{ kind: 'appears', text: '7', role: 'textbox', source: 'accessibility' }]);
    // The button "7" does not satisfy a textbox's "7".
    expect(postconditionHolds(o.postconditions[0]!, before)).toBe(false);
    expect(postconditionHolds(o.postconditions[0]!, after)).toBe(true);
  });

  it('OCR text is proposed only when no accessible text appeared (a text cursor read as "7x|" is a passing state)', () => {
    const line = (text: string) => ({ text, bounds: { x: 0, y: 0, width: 1, height: 1 } });
    const o = outcomeOf({ elements: [ax('textbox', '', '7')], lines: [line('7')] }, { elements: [ax('textbox', '', '7×6')], lines: [line('7x6|')] }, null);
    expect(o.postconditions.filter((p) => p.kind === 'appears')).toEqual([{ kind: 'appears', text: '7×6', role: 'textbox', source: 'accessibility' }]);
    // The display's old text is gone (accessible texts only: OCR's "7" going is no condition).
    expect(o.postconditions.filter((p) => p.kind === 'gone')).toEqual([{ kind: 'gone', text: '7', role: 'textbox', source: 'accessibility' }]);
    const canvas = outcomeOf({ elements: [], lines: [line('Idle')] }, { elements: [], lines: [line('Running')] }, null);
    expect(canvas.postconditions).toEqual([{ kind: 'appears', text: 'Running', role: 'text', source: 'ocr' }]);
  });

  it('digit runs of texts with letters match any digits; numbers must match', () => {
    expect(volatileForm('Build 41 succeeded')).toBe('build # succeeded');
    expect(volatileForm('42')).toBe('42');
    const pc = { kind: 'appears' as const, text: 'Build 41 succeeded', role: 'text', source: 'ocr' as const };
    expect(postconditionHolds(pc, { elements: [], lines: [{ text: 'Build 42 succeeded', bounds: { x: 0, y: 0, width: 1, height: 1 } }] })).toBe(true);
    expect(postconditionHolds({ kind: 'appears', text: '42', role: 'textbox', source: 'accessibility' }, { elements: [ax('textbox', '', '43')], lines: [] })).toBe(false);
  });
});

describe('parameters', () => {
  it('without keepText a typed text becomes a fresh parameter; with it, given values become {{name}}', () => {
    let n = 0;
    expect(storedText('secret', false, {}, () => `text${++n}`)).toBe('{{text1}}');
    expect(storedText('deploy main to main-2', true, { branch: 'main', target: 'main-2' }, () => 'x')).toBe('deploy {{branch}} to {{target}}');
    expect(paramsIn('a {{branch}} b {{x1}}')).toEqual(['branch', 'x1']);
    expect(fillParams('deploy {{branch}}', { branch: 'rel' }, { branch: 'main' }, 's')).toBe('deploy rel');
    expect(fillParams('deploy {{branch}}', {}, { branch: 'main' }, 's')).toBe('deploy main');
    expect(() => fillParams('{{text1}}', {}, { text1: null }, 'Step 2')).toThrow(expect.objectContaining({ code: 'REPLAY_PARAM_MISSING' }));
  });
});

describe('masks over a stored recording', () => {
  it('a step whose app is masked now loses its thumbnails and texts', () => {
    const step = {
      index: 1, kind: 'action' as const, action: { type: 'click' as const }, point: null, outcome: { appeared: ['text "secret"'], gone: [] },
      fingerprint: { app: 'keepassxc', windowTitle: 'vault.kdbx', role: 'button', name: 'Copy password', value: 'x', text: 'Copy', labels: ['Entry'], relative: null, path: ['frame:vault'], source: 'fused' as const, bounds: { x: 0, y: 0, width: 1, height: 1 } },
      postconditions: [{ kind: 'appears' as const, text: 'Copied', role: 'text', source: 'ocr' as const }], thumbnails: { before: 's1-before.png', after: 's1-after.png' }, at: 0, durationMs: 0,
    };
    const rec = { steps: [step] } as unknown as Recording;
    const mask = { regions: [], apps: ['keepassxc'], ruleIds: ['m'], windowIds: [] };
    expect(stepMasked(step, mask)).toBe(true);
    const out = redactMasked(rec, mask);
    expect(JSON.stringify(out)).not.toMatch(/vault|Copy|Entry|Copied|secret|png/);
    expect(rec.steps[0]!.fingerprint!.name).toBe('Copy password');
    expect(stepMasked(step, { regions: [], apps: [], ruleIds: [], windowIds: [] })).toBe(false);
  });
});
