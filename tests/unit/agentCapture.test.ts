/**
 * The one masked capture path (issue 13, finding 3) and masked apps leaking nowhere (finding 7), on the
 * fake platform: the guard that nothing but `src/perception/agentCapture.ts` calls the platform's capture,
 * the masked image, the accessibility filter by app for apps without a visible window, list filters and
 * error-message naming.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createFakePlatform, axNode } from '../../src/platform/fake/fakePlatform.js';
import { AgentCapture, ScreenFrame } from '../../src/perception/agentCapture.js';
import { isWindowMasked, maskApps, maskTree } from '../../src/perception/mask.js';
import { ObservationStore, Observer } from '../../src/perception/observer.js';
import { createElementVerifier } from '../../src/perception/refs.js';
import { describeWindowForAgent, isMaskedWindow, perceptionMask } from '../../src/policy/perception.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { listApps } from '../../src/mcp/server.js';
import type { RawImage, WindowInfo } from '../../src/platform/types.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const ONE_PATH = 'perception/agentCapture.ts';

/** Calls of a platform's `capture.capture(...)` (also `capture?.capture(`, `['capture'].capture(`), by file. */
function captureCalls(root: string): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        const rel = relative(root, p).split('\\').join('/');
        // The platform backends implement capture (and the macOS one calls its helper's); they are excepted.
        if (rel.startsWith('platform/') || rel === ONE_PATH) continue;
        const text = readFileSync(p, 'utf8');
        const re = /\bcapture\s*\??\.\s*capture\s*\(|\[\s*['"`]capture['"`]\s*\]\s*\??\.\s*capture\s*\(|\bcapture\s*:\s*\{\s*capture\b/g;
        for (const m of text.matchAll(re)) hits.push(`${rel}:${text.slice(0, m.index).split('\n').length}: ${m[0]}`);
      }
    }
  };
  walk(root);
  return hits;
}

const POLICY = parsePolicy(`version: 1
perception:
  mask: ["keepassxc", { wmClass: "Secret*" }]
rules:
  - { id: hide-bank, effect: deny, on: perceive, match: { window: "*bank*" } }
`);

const W = (id: string, app: string, title: string, x: number, extra: Partial<WindowInfo> = {}): WindowInfo => ({
  id, app, pid: 100, title, bounds: { x, y: 0, width: 100, height: 100 }, ...extra,
});

describe('one capture path for the agent (finding 3)', () => {
  it('nothing in src/ but agentCapture.ts calls the platform capture (platform backends excepted)', () => {
    expect(captureCalls(SRC)).toEqual([]);
  });

  it('the guard sees the patterns it is meant to catch', () => {
    // The scan's regexp applied to sample lines.
    const re = /\bcapture\s*\??\.\s*capture\s*\(|\[\s*['"`]capture['"`]\s*\]\s*\??\.\s*capture\s*\(|\bcapture\s*:\s*\{\s*capture\b/;
    for (const line of ['await platform.capture.capture(0)', 'const { capture } = p; capture.capture(d.id)', 'p.capture?.capture(1)', "p['capture'].capture(0)", 'const { capture: { capture } } = p']) {
      expect(re.test(line), line).toBe(true);
    }
    for (const line of ['observer.agentCapture.capture(0)', 'capture.displays()', 'agentCapture.capture(id)']) expect(re.test(line), line).toBe(false);
  });

  it('blacks out the masked windows; frames keep their unmasked pixels private', async () => {
    const p = createFakePlatform({
      displays: [{ id: 0, x: 0, y: 0, width: 300, height: 100, scaleFactor: 1, primary: true }],
      windows: [W('0x1', 'keepassxc', 'Vault', 0), W('0x2', 'gnome-calculator', 'Calculator', 100), W('0x3', 'firefox', 'My bank', 200)],
      fill: [200, 200, 200, 255],
    });
    const cap = new AgentCapture(p, (w) => perceptionMask(w, POLICY));
    const f = await cap.capture();
    const px = (img: RawImage, x: number, y: number) => [...img.data.subarray((y * img.width + x) * 4, (y * img.width + x) * 4 + 4)];
    expect(px(f.image, 50, 50)).toEqual([0, 0, 0, 255]); // keepassxc: masked by app
    expect(px(f.image, 150, 50)).toEqual([200, 200, 200, 255]); // calculator: shown
    expect(px(f.image, 250, 50)).toEqual([0, 0, 0, 255]); // "My bank": masked by a perceive rule on the title
    expect(f.mask.windowIds).toEqual(['0x1', '0x3']);
    // A region capture is masked too (the ref verifier's OCR re-read).
    const r = await cap.capture(0, { region: { x: 40, y: 10, width: 120, height: 20 } });
    expect(px(r.image, 0, 0)).toEqual([0, 0, 0, 255]);
    expect(px(r.image, 100, 0)).toEqual([200, 200, 200, 255]);
    // A sealed frame shows its pixels only through a mask.
    const frame = await cap.frame((await p.capture.displays())[0]!);
    expect(frame).toBeInstanceOf(ScreenFrame);
    expect(Object.values(frame).some((v) => typeof v === 'object' && v !== null && 'data' in v)).toBe(false);
    expect(JSON.stringify(frame)).not.toContain('data');
    expect(px(frame.masked(f.mask), 50, 50)).toEqual([0, 0, 0, 255]);
  });

  it("the observer's screenshot and observation pixels are masked; the ref verifier reads OCR from the masked capture", async () => {
    const p = createFakePlatform({
      displays: [{ id: 0, x: 0, y: 0, width: 200, height: 100, scaleFactor: 1, primary: true }],
      windows: [W('0x1', 'keepassxc', 'Vault', 0)],
      fill: [200, 200, 200, 255],
    });
    const observer = new Observer(p, null, new ObservationStore(), undefined, (w) => perceptionMask(w, POLICY), { settle: false, axCache: false, incremental: false });
    const shot = await observer.capture();
    expect([...shot.image.data.subarray(0, 4)]).toEqual([0, 0, 0, 255]);
    const seen: RawImage[] = [];
    const verify = createElementVerifier(p, { recognize: async (img) => (seen.push(img), { words: [], lines: [] }) }, async (id, region) => (await observer.agentCapture.capture(id, { region })).image);
    await verify({ ref: 'e1', role: 'text', name: 'secret', bounds: { x: 10, y: 10, width: 50, height: 10 }, states: [], source: 'ocr' } as never).catch(() => undefined);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.data.every((b, i) => (i % 4 === 3 ? b === 255 : b === 0))).toBe(true);
  });
});

describe('masked apps leak nowhere (finding 7)', () => {
  const roots = () => [
    axNode('application', 'KeePassXC', null, { children: [axNode('window', 'Passwords.kdbx', { x: 0, y: 0, width: 10, height: 10 })] }),
    axNode('application', 'gnome-calculator', null, { children: [axNode('window', 'Calculator', { x: 500, y: 0, width: 10, height: 10 })] }),
    axNode('application', 'firefox', null, { children: [axNode('window', 'My bank — Firefox', null), axNode('window', 'News — Firefox', null)] }),
  ];

  it('accessibility roots of masked apps are dropped by app name even with no visible window (mask made from no windows)', () => {
    const mask = perceptionMask([], POLICY);
    const kept = maskTree(roots(), mask);
    expect(kept.map((r) => r.name)).toEqual(['gnome-calculator', 'firefox']);
    // A window hidden by title goes, the app's other windows stay.
    expect(kept[1]!.children.map((c) => c.name)).toEqual(['News — Firefox']);
    expect(maskApps(roots(), mask).map((r) => r.name)).toEqual(['gnome-calculator', 'firefox']);
  });

  it('the same tree without the policy keeps everything (the test can fail)', () => {
    expect(maskTree(roots(), { regions: [], apps: [], ruleIds: [] }).map((r) => r.name)).toEqual(['KeePassXC', 'gnome-calculator', 'firefox']);
  });

  it('a deny-by-default perception policy allowing an app by WM_CLASS keeps its tree while its window is visible', () => {
    const policy = parsePolicy(`version: 1
defaults: { perceive: deny }
rules:
  - { id: see-calc, effect: allow, on: perceive, match: { app: { wmClass: "Gnome-calculator" } } }
`);
    const calc = W('0x2', 'gnome-calculator', 'Calculator', 500, { wmClass: 'Gnome-calculator', instance: 'gnome-calculator' });
    expect(maskTree(roots(), perceptionMask([calc], policy)).map((r) => r.name)).toEqual(['gnome-calculator']);
    // Without the visible window, the accessible name alone does not match the WM_CLASS rule: hidden (deny by default).
    expect(maskTree(roots(), perceptionMask([], policy)).map((r) => r.name)).toEqual([]);
  });

  it('isMaskedWindow / describeWindowForAgent never name a masked window', () => {
    const vault = W('0x1', 'keepassxc', 'Passwords.kdbx', 0);
    const secret = W('0x4', 'sapp', 'Top secret', 0, { wmClass: 'SecretApp' });
    const bank = W('0x3', 'firefox', 'My bank — Firefox', 0);
    const calc = W('0x2', 'gnome-calculator', 'Calculator', 0);
    for (const w of [vault, secret, bank]) {
      expect(isMaskedWindow(w, POLICY)).toBe(true);
      const d = describeWindowForAgent(w, POLICY);
      expect(d).not.toContain(w.title!);
      expect(d).not.toContain(w.app!);
      expect(d).toBe('a window masked by the policy');
    }
    expect(isMaskedWindow(calc, POLICY)).toBe(false);
    expect(describeWindowForAgent(calc, POLICY)).toBe('gnome-calculator "Calculator" (0x2)');
    expect(describeWindowForAgent(null, POLICY)).toBe('no window');
    const mask = perceptionMask([vault, calc], POLICY);
    expect(isWindowMasked(vault, mask)).toBe(true);
    expect(isWindowMasked(calc, mask)).toBe(false);
    expect(isWindowMasked(bank, mask)).toBe(true); // not in the list the mask was made from: judged by app and title
  });

  it('list_apps (listApps with the observer) leaves masked windows and apps out, visible or not', async () => {
    const p = createFakePlatform({
      displays: [{ id: 0, x: 0, y: 0, width: 1000, height: 500, scaleFactor: 1, primary: true }],
      windows: [W('0x1', 'keepassxc', 'Passwords.kdbx', 0), W('0x2', 'gnome-calculator', 'Calculator', 500)],
      tree: roots(),
    });
    const observer = new Observer(p, null, new ObservationStore(), undefined, (w) => perceptionMask(w, POLICY), { settle: false, axCache: false });
    const apps = await listApps(p, observer);
    expect(apps.windows.map((w) => w.id)).toEqual(['0x2']);
    expect(apps.accessible).toEqual([{ name: 'gnome-calculator', windows: ['Calculator'] }, { name: 'firefox', windows: ['News — Firefox'] }]);
    const text = JSON.stringify(apps).toLowerCase();
    for (const leak of ['keepass', 'passwords.kdbx', 'bank']) expect(text).not.toContain(leak);
    // Without the observer (the old list) they were there.
    expect(JSON.stringify(await listApps(p)).toLowerCase()).toContain('keepass');
  });
});
