/**
 * Unicode typing on X11 (issue 14, item 9), through the HTTP API of a real daemon on its own virtual display
 * (`POST /v1/actions {type: 'type', text}`: planner, policy, chunked executor, X11 backend):
 *
 * - an xterm running `stty raw -echo; cat > FILE`: the file holds, byte for byte, the UTF-8 of the text
 *   (Latin-1, CJK, emoji with modifiers and flags, symbols, and a run of more distinct CJK characters
 *   than the keymap has free keycodes, so bindings are re-used);
 * - gnome-calculator (GTK): the same text in its display, read through AT-SPI; `2×3÷π` then Enter
 *   computes 1.909859…;
 * - Chromium: a local page's textarea, whose value the page posts back to the test's server.
 *
 * Before the fix (`xdotool type --delay 0`, which un-binds its scratch keycode right after each press) the
 * xterm got wrong characters ("caf語"), Chromium lost them ("Zo caf nave"), the calculator showed "23".
 * Typing speed (characters per second through the API) is printed for ASCII and CJK.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import { startDaemon, type Daemon } from '../../src/main.js';
import { daemonRequest, e2eDaemonConfig } from '../helpers/e2eDaemon.js';
import type { WindowInfo } from '../../src/platform/types.js';
import { launchApp, launchCalculator, launchChromium, launchUntilReady, waitFor, type AppHandle } from '../helpers/desktop.js';

const execFileP = promisify(execFile);
const xdo = async (...args: string[]) => (await execFileP('xdotool', args)).stdout;

interface El { ref: string; role: string; name: string; value?: string }
interface Obs { observationId: string; elements: El[] }
interface ErrBody { error: { code: string; message: string; details?: { character?: string; codePoint?: number } } }

/** Latin-1 (both cases), CJK, emoji (skin tone, flag, ZWJ family), symbols, a combining-free NFC text. */
const MIXED = 'Zoë café naïve 日本語 😀 €£ end — ÀÉÎÕÜ àéîõü ß ÿ Ω≈∑√∞ 2×3÷π 中文字符測試 한국어 👍🏽 🇯🇵 👨‍👩‍👧 «ñ» ¿¡';
/** 60 distinct CJK characters: more than the two keysyms × free keycodes of Xvfb's keymap (2 × 19). */
const CJK_DISTINCT = '的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可里后小么心多天而能好都然没';
/** 60 more distinct CJK characters, none in CJK_DISTINCT. */
const CJK_MORE = '春夏秋冬東西南北山川海空雨雪風花鳥魚犬猫馬牛羊豚米茶酒肉野菜果木林森石金銀銅鉄青赤白黒黄緑紫茶色音楽歌舞劇画詩書読聞見話語';
const ASCII_BENCH = 'The quick brown fox jumps over the lazy dog; 0123456789 (x+y)*z=[a]{b}<c>|d~e^f$g#h@i!j%k&l_m-n+o=p/q';
const CJK_BENCH = '東京は日本の首都であり、世界で最も人口の多い都市圏の一つです。経済、文化、政治の中心として多くの人々が暮らしています。';

let daemon: Daemon;
let dir: string;
let server: Server;
let base: string;
/** The page's textarea value, with the sequence number of the input event that posted it. */
let pageValue: { seq: number; value: string } = { seq: -1, value: '' };
const apps: AppHandle[] = [];

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>deskd unicode</title></head>
<body style="margin:0"><textarea id="t" style="position:absolute;left:0;top:0;width:1200px;height:600px;font-size:20px"></textarea>
<script>
const t = document.getElementById('t'); let seq = 0;
t.focus();
t.addEventListener('input', () => { const body = JSON.stringify({ seq: ++seq, value: t.value }); fetch('/value', { method: 'POST', body }); });
fetch('/value', { method: 'POST', body: JSON.stringify({ seq: 0, value: t.value }) });
</script></body></html>`;

const POLICY = `version: 1
defaults:
  unmatched: deny
limits:
  actionsPerSecond: 100
  burst: 200
  maxTypeChars: 2000
rules:
  - id: allow-readonly
    effect: allow
    match: { actions: ["@readonly"] }
  - id: allow-test-apps
    effect: allow
    match: { app: ["xterm", "gnome-calculator", "chromium"] }
`;

const api = <T = unknown>(method: string, path: string, body?: unknown) => daemonRequest<T>(daemon, method, path, body);

/** Type `text` through the API; expects `done`; returns the wall time, ms. */
async function typeText(text: string): Promise<number> {
  const t0 = performance.now();
  const r = await api<{ status: string }>('POST', '/v1/actions', { type: 'type', text });
  const ms = performance.now() - t0;
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  expect(r.json.status, JSON.stringify(r.json)).toBe('done');
  return ms;
}

/** Put the pointer in the middle of a window (no window manager: keys go to the window under the pointer) and wait for the focus. */
async function pointInto(w: WindowInfo): Promise<void> {
  await xdo('mousemove', String(Math.round(w.bounds.x + w.bounds.width / 2)), String(Math.round(w.bounds.y + w.bounds.height / 2)));
  await waitFor(async () => (await daemon.platform.windows.focused())?.id === w.id, 15_000, `keyboard focus on "${w.title}"`);
}

/** An xterm whose keystrokes land, as raw bytes, in `<dir>/<title>.txt`. */
async function launchTerm(title: string): Promise<{ file: string; window: WindowInfo }> {
  const file = join(dir, `${title}.txt`);
  apps.push(launchApp('xterm', ['-T', title, '-geometry', '100x20+0+0', '-fa', 'DejaVu Sans Mono', '-fs', '12', '-u8', '-e', 'sh', '-c', `stty raw -echo; exec cat > '${file}'`], { ENV: '', LC_ALL: 'C.UTF-8' }));
  const window = await waitFor(async () => (existsSync(file) ? (await daemon.platform.windows.list()).find((w) => w.title === title) : undefined), 60_000, `the xterm "${title}"`);
  return { file, window };
}

/** Wait until `file` holds exactly `expected` (UTF-8 bytes); fails with both byte strings shown. */
async function expectFileBytes(file: string, expected: string, timeoutMs = 20_000): Promise<void> {
  const want = Buffer.from(expected, 'utf8');
  let got = Buffer.alloc(0);
  try {
    await waitFor(async () => {
      got = await readFile(file);
      return got.equals(want);
    }, timeoutMs, `the typed bytes in ${file}`);
  } catch {
    // Show what arrived (decoded) against what was typed.
  }
  expect(got.toString('utf8')).toBe(expected);
  expect(got.equals(want)).toBe(true);
}

const cps = (s: string) => [...s].length;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'deskd-e2e-unicode-'));
  const policyPath = join(dir, 'policy.yaml');
  await writeFile(policyPath, POLICY);
  server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/value') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        // Input events post concurrently: keep the latest one, whatever order the posts arrive in.
        const v = JSON.parse(body) as { seq: number; value: string };
        if (v.seq > pageValue.seq) pageValue = v;
        res.writeHead(204).end();
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const config = e2eDaemonConfig(policyPath, join(dir, 'config'), '1280x800', { DESKD_CORNER_HALT: '0' });
  daemon = await startDaemon(config);
});

afterAll(async () => {
  for (const a of apps) await a.kill();
  await daemon?.close();
  await new Promise((r) => server?.close(r));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('typing Unicode text through the API', () => {
  it('xterm (raw cat): the file holds the UTF-8 of Latin-1, CJK, emoji and symbols byte for byte; speed measured', async () => {
    const term = await launchTerm('deskd-unicode');
    await pointInto(term.window);
    let expected = '';
    await typeText(MIXED);
    expected += MIXED.normalize('NFC');
    await expectFileBytes(term.file, expected);

    // More distinct characters than free keycodes: bindings are re-used (after their grace period).
    await typeText(CJK_DISTINCT);
    expected += CJK_DISTINCT;
    await expectFileBytes(term.file, expected);

    // The backend alone, in one call: 60 more distinct characters than fit in the free keycodes at once,
    // so keycodes are re-bound inside the call, each only after the grace period since its last press.
    const kb = daemon.platform.keyboard as { type(t: string): Promise<void>; text?: { stats: { graceWaitMs: number; bindRuns: number } } };
    const before = { ...kb.text!.stats };
    await kb.type(CJK_MORE);
    expected += CJK_MORE;
    await expectFileBytes(term.file, expected);
    expect(kb.text!.stats.bindRuns - before.bindRuns).toBeGreaterThan(1);
    expect(kb.text!.stats.graceWaitMs - before.graceWaitMs).toBeGreaterThan(0);

    // Speed, characters per second through the whole API path (policy, chunks of 8, focus re-checks).
    const asciiMs = await typeText(ASCII_BENCH);
    expected += ASCII_BENCH;
    const cjkMs = await typeText(CJK_BENCH);
    expected += CJK_BENCH;
    await expectFileBytes(term.file, expected);
    console.log(
      `typing speed through POST /v1/actions: ASCII ${(cps(ASCII_BENCH) / (asciiMs / 1000)).toFixed(1)} chars/s (${cps(ASCII_BENCH)} in ${asciiMs.toFixed(0)} ms), ` +
        `CJK ${(cps(CJK_BENCH) / (cjkMs / 1000)).toFixed(1)} chars/s (${cps(CJK_BENCH)} in ${cjkMs.toFixed(0)} ms); typer stats ${JSON.stringify(kb.text?.stats ?? null)}`,
    );
  });

  it('refuses a text with a character X cannot type (a lone surrogate) with TEXT_NOT_TYPEABLE before typing anything', async () => {
    const term = await launchTerm('deskd-unicode-refuse');
    await pointInto(term.window);
    // The bad character is in the executor's first chunk of 8: the backend refuses the chunk before pressing a key.
    const r = await api<ErrBody>('POST', '/v1/actions', { type: 'type', text: 'abcdefghijklmnopqrst\ud800end' });
    expect(r.status, JSON.stringify(r.json)).toBe(400);
    expect(r.json.error.code).toBe('TEXT_NOT_TYPEABLE');
    expect(r.json.error.message).toContain('U+D800');
    // Barrier: X delivers key events in order, so the file holding only the marker proves nothing came before.
    await typeText('MARK');
    await expectFileBytes(term.file, 'MARK');
  });

  it('gnome-calculator (GTK): the display shows the text exactly (AT-SPI); 2×3÷π computes', async () => {
    const { app, value: calc } = await launchUntilReady(
      launchCalculator,
      async () => {
        const ws = await daemon.platform.windows.list();
        const w = ws.find((x) => /calculator/i.test(x.title ?? '') && x.bounds.width > 100);
        if (!w) return null;
        const o = (await api<Obs>('POST', '/v1/observe', { ocr: false, screenshot: 'none' })).json;
        return o.elements.some((e) => e.role === 'button' && e.name === '7') ? w : null;
      },
      { timeoutMs: 150_000, what: 'gnome-calculator on the accessibility bus' },
    );
    apps.push(app);
    await pointInto(calc);
    const display = async (): Promise<string> => {
      const o = (await api<Obs>('POST', '/v1/observe', { ocr: false, screenshot: 'none' })).json;
      const t = o.elements.find((e) => e.role === 'textbox' || e.role === 'editbar');
      return t?.value ?? t?.name ?? '';
    };
    const text = 'Zoë café naïve 日本語 😀 €£ ÀÉÎ ß Ω√ 中文 👍🏽';
    await typeText(text);
    const shown = await waitFor(async () => ((await display()) === text ? text : null), 20_000, 'the text in the calculator display').catch(async () => display());
    expect(shown).toBe(text);

    await api('POST', '/v1/actions', { type: 'keypress', keys: ['ctrl', 'a'] });
    await api('POST', '/v1/actions', { type: 'keypress', keys: ['backspace'] });
    await typeText('2×3÷π');
    const expr = await waitFor(async () => ((await display()) === '2×3÷π' ? '2×3÷π' : null), 20_000, '2×3÷π in the display').catch(async () => display());
    expect(expr).toBe('2×3÷π');
    await api('POST', '/v1/actions', { type: 'keypress', keys: ['enter'] });
    // 6/π = 1.909859317…
    const result = await waitFor(async () => {
      const o = (await api<Obs>('POST', '/v1/observe', { ocr: false, screenshot: 'none' })).json;
      return o.elements.find((e) => /1[.,]90985/.test(`${e.value ?? ''} ${e.name}`)) ?? null;
    }, 20_000, 'the result 1.90985… of 2×3÷π').catch(() => null);
    expect(result, 'the calculator shows 6/π = 1.90985…').not.toBeNull();
    await app.kill();
  });

  it('Chromium: a textarea holds the text exactly', async () => {
    pageValue = { seq: -1, value: '' };
    const chromium = launchChromium(`${base}/`, { width: 1280, height: 800 });
    apps.push(chromium);
    await waitFor(() => {
      if (chromium.exited()) throw new Error(`chromium exited: ${chromium.output().slice(-2000)}`);
      return pageValue.seq >= 0;
    }, 90_000, 'the page loaded in Chromium');
    const win = await waitFor(async () => (await daemon.platform.windows.list()).find((w) => /deskd unicode/.test(w.title ?? '')), 30_000, 'the Chromium window');
    await pointInto(win);
    // The textarea has the focus (autofocus by script); a click makes sure.
    const c = await api('POST', '/v1/actions', { type: 'click', x: 300, y: 300, button: 'left' });
    expect(c.status, JSON.stringify(c.json)).toBe(200);
    await typeText(MIXED);
    const want = MIXED.normalize('NFC');
    await waitFor(() => pageValue.value === want, 20_000, 'the text in the textarea').catch(() => null);
    expect(pageValue.value).toBe(want);
  });
});
