/**
 * Backend conformance suites: the same expectations, run against every platform backend.
 *
 * The macOS TypeScript side runs them over recorded helper transcripts (tests/unit/macosBackend.test.ts);
 * the Linux backend runs them for real under Xvfb (the lead's e2e suite). Each suite takes factories
 * that build a fresh backend in the state an expectation needs, plus what the test should look for, so
 * the expectations themselves are written once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ROLES } from '../../src/platform/roles.js';
import type { AXBudget, RawAccessibility, RawAXNode, RawCapture, Rect } from '../../src/platform/types.js';

/** A backend built for one expectation, with the function that releases it. */
export interface Built<B> {
  backend: B;
  close(): Promise<void>;
}

/** Walk a tree depth-first. */
export function* walk(nodes: RawAXNode[]): Generator<RawAXNode> {
  for (const n of nodes) {
    yield n;
    yield* walk(n.children);
  }
}

/** Find the first node matching a predicate. */
export function findNode(nodes: RawAXNode[], pred: (n: RawAXNode) => boolean): RawAXNode | undefined {
  for (const n of walk(nodes)) if (pred(n)) return n;
  return undefined;
}

const norm = (s: string) => s.replace(/\s+/g, ' ').trim().toLowerCase();

/** What {@link describeRawAccessibilityConformance} needs from a backend. */
export interface AccessibilityConformanceSubject {
  /** A backend whose focused application has more nodes than `budget.maxNodes`. */
  truncation(): Promise<Built<RawAccessibility> & { budget: AXBudget }>;
  /** A backend whose focused application shows a password field named `fieldName` (whose content is not empty). */
  password(): Promise<Built<RawAccessibility> & { budget: AXBudget; fieldName: string; secret?: string }>;
  /** A backend whose focused application shows a pressable button (or link) named `buttonName`. */
  action(): Promise<Built<RawAccessibility> & { budget: AXBudget; buttonName: string }>;
}

/**
 * Register the accessibility expectations for one backend:
 * - every node's role is in deskd's vocabulary, handles are unique, bounds are finite with non-negative size;
 * - a budget smaller than the tree sets `truncated` and `nodeCount` counts exactly the nodes returned, ≤ maxNodes;
 * - a password field is a `textbox` with state `password` and no `value` (the secret appears nowhere);
 * - a button's advertised action runs (`doAction` → true) and an unknown action answers false;
 * - `focused()` names the application.
 */
export function describeRawAccessibilityConformance(name: string, subject: AccessibilityConformanceSubject): void {
  describe(`RawAccessibility conformance: ${name}`, () => {
    const open: Array<Built<unknown>> = [];
    afterEach(async () => {
      await Promise.all(open.splice(0).map((b) => b.close()));
    });
    const track = <T extends Built<unknown>>(b: T): T => {
      open.push(b);
      return b;
    };

    it('maps every node into the role vocabulary, with unique handles and sane bounds', async () => {
      const { backend, budget } = track(await subject.action());
      const snap = await backend.snapshot({ scope: 'focused', budget });
      expect(snap.roots.length).toBeGreaterThan(0);
      const handles = new Set<string>();
      let count = 0;
      for (const n of walk(snap.roots)) {
        count++;
        expect(ROLES as readonly string[], `role of ${n.platformRole}`).toContain(n.role);
        expect(n.platformRole.length).toBeGreaterThan(0);
        expect(handles.has(n.handle), `duplicate handle ${n.handle}`).toBe(false);
        handles.add(n.handle);
        if (n.bounds) {
          for (const v of [n.bounds.x, n.bounds.y, n.bounds.width, n.bounds.height]) expect(Number.isFinite(v)).toBe(true);
          expect(n.bounds.width).toBeGreaterThanOrEqual(0);
          expect(n.bounds.height).toBeGreaterThanOrEqual(0);
        }
      }
      expect(snap.nodeCount).toBe(count);
    });

    it('flags truncation when the node budget is smaller than the tree', async () => {
      const { backend, budget } = track(await subject.truncation());
      const snap = await backend.snapshot({ scope: 'focused', budget });
      expect(snap.truncated).toBe(true);
      expect(snap.nodeCount).toBeLessThanOrEqual(budget.maxNodes);
      expect([...walk(snap.roots)].length).toBe(snap.nodeCount);
    });

    it('marks password fields and never returns their value', async () => {
      const { backend, budget, fieldName, secret } = track(await subject.password());
      const snap = await backend.snapshot({ scope: 'focused', budget });
      const field = findNode(snap.roots, (n) => norm(n.name) === norm(fieldName));
      expect(field, `a node named ${fieldName}`).toBeDefined();
      expect(field!.role).toBe('textbox');
      expect(field!.states).toContain('password');
      expect(field!.value).toBeUndefined();
      for (const n of walk(snap.roots)) if (n.states.includes('password')) expect(n.value).toBeUndefined();
      if (secret) expect(JSON.stringify(snap)).not.toContain(secret);
    });

    it("runs a button's advertised action and refuses an unknown one", async () => {
      const { backend, budget, buttonName } = track(await subject.action());
      const snap = await backend.snapshot({ scope: 'focused', budget });
      const button = findNode(snap.roots, (n) => (n.role === 'button' || n.role === 'link') && norm(n.name) === norm(buttonName));
      expect(button, `a button named ${buttonName}`).toBeDefined();
      expect(button!.actions.length).toBeGreaterThan(0);
      expect(await backend.doAction(button!.handle, button!.actions[0]!)).toBe(true);
      expect(await backend.doAction(button!.handle, 'no-such-action')).toBe(false);
    });

    it('names the focused application', async () => {
      const { backend } = track(await subject.action());
      const f = await backend.focused();
      expect(f).not.toBeNull();
      expect(f!.app.length).toBeGreaterThan(0);
    });
  });
}

/** What {@link describeRawCaptureConformance} needs from a backend. */
export interface CaptureConformanceSubject {
  make(): Promise<Built<RawCapture>>;
  /** Displays to capture whole (ids). */
  fullCaptures: number[];
  /** Regions (global points, inside the display) to capture. */
  regions: Array<{ displayId: number; region: Rect }>;
}

/**
 * Register the capture expectations for one backend:
 * - exactly one primary display, at the global origin; every display has a positive size and scale ≥ 1;
 * - a whole-display image is `width × scale` by `height × scale` pixels, RGBA, with the display's scale
 *   and its global origin (negative origins preserved);
 * - a region image starts at the region's global origin and measures `region × scale` pixels;
 * - an unknown display id throws `DISPLAY_NOT_FOUND`.
 */
export function describeRawCaptureConformance(name: string, subject: CaptureConformanceSubject): void {
  describe(`RawCapture conformance: ${name}`, () => {
    const open: Array<Built<unknown>> = [];
    afterEach(async () => {
      await Promise.all(open.splice(0).map((b) => b.close()));
    });

    it('lists displays with one primary at the origin', async () => {
      const b = await subject.make();
      open.push(b);
      const displays = await b.backend.displays();
      expect(displays.length).toBeGreaterThan(0);
      const primaries = displays.filter((d) => d.primary);
      expect(primaries).toHaveLength(1);
      expect([primaries[0]!.x, primaries[0]!.y]).toEqual([0, 0]);
      for (const d of displays) {
        expect(d.width).toBeGreaterThan(0);
        expect(d.height).toBeGreaterThan(0);
        expect(d.scaleFactor).toBeGreaterThanOrEqual(1);
      }
    });

    it('captures whole displays at their scale and global origin', async () => {
      const b = await subject.make();
      open.push(b);
      const displays = await b.backend.displays();
      expect(subject.fullCaptures.length).toBeGreaterThan(0);
      for (const id of subject.fullCaptures) {
        const d = displays.find((x) => x.id === id);
        expect(d, `display ${id}`).toBeDefined();
        const img = await b.backend.capture(id);
        expect(img.channels).toBe(4);
        expect(img.scale).toBe(d!.scaleFactor);
        expect(img.width).toBe(Math.round(d!.width * img.scale));
        expect(img.height).toBe(Math.round(d!.height * img.scale));
        expect(img.origin).toEqual({ x: d!.x, y: d!.y });
        expect(img.data.length).toBe(img.width * img.height * 4);
      }
    });

    it('captures regions at their global origin, region size × scale', async () => {
      const b = await subject.make();
      open.push(b);
      const displays = await b.backend.displays();
      expect(subject.regions.length).toBeGreaterThan(0);
      for (const { displayId, region } of subject.regions) {
        const d = displays.find((x) => x.id === displayId)!;
        const img = await b.backend.capture(displayId, region);
        expect(img.origin).toEqual({ x: region.x, y: region.y });
        expect(img.width).toBe(Math.round(region.width * img.scale));
        expect(img.height).toBe(Math.round(region.height * img.scale));
        expect([1, d.scaleFactor]).toContain(img.scale);
        expect(img.data.length).toBe(img.width * img.height * 4);
      }
    });

    it('refuses an unknown display with DISPLAY_NOT_FOUND', async () => {
      const b = await subject.make();
      open.push(b);
      await expect(b.backend.capture(99)).rejects.toMatchObject({ code: 'DISPLAY_NOT_FOUND' });
    });
  });
}
