/**
 * End to end (issue 15, text from the tree): a daemon on its own virtual display, a real Chromium with its
 * accessibility tree on, observed over HTTP. Text that the tree gives and the pixels confirm is reported from the
 * tree (`source: "accessibility"`); text that the tree gives but the screen does not show — transparent, cut off
 * by an ellipsis, under an opaque box, under another text, scrolled out of its box — is never reported as a
 * word, whatever read it; the text drawn over it is. After a change made through the daemon (an accessibility
 * press), the new text is reported and the old one is not, and the next observe equals a `fresh` read; a log
 * that scrolls as a line is added shows the new line, not the one scrolled out, no line twice.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { launchChromium, waitFor, type AppHandle } from '../helpers/desktop.js';
import { startE2eDaemon, type E2eDaemon } from '../helpers/e2eDaemon.js';

interface Rect { x: number; y: number; width: number; height: number }
interface Word { text: string; bounds: Rect; confidence: number; source?: string }
interface Obs { observationId: string; elements: Array<{ role: string; name: string }>; words: Word[]; lines: Array<{ text: string }>; timings: Record<string, number> }

const POLICY = `version: 1
defaults:
  unmatched: deny
rules:
  - id: allow-readonly
    effect: allow
    match: { actions: ["@readonly"] }
  - id: allow-chromium
    effect: allow
    match: { app: ["chromium"] }
`;

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>tree text</title><style>
body{margin:0;font:16px "DejaVu Sans",sans-serif;background:#fff;color:#222}
.a{position:absolute;left:20px;margin:0;white-space:nowrap}
</style></head><body>
<p class="a" style="top:20px">Quarterly revenue grew steadily</p>
<p class="a" style="top:60px;color:transparent">Phantomword transparent</p>
<div class="a" style="top:100px;width:130px;overflow:hidden;text-overflow:ellipsis">Visiblepart Hiddentailword Anotherhidden</div>
<p class="a" style="top:140px">Coveredsecret beneath box</p>
<div style="position:absolute;left:10px;top:132px;width:420px;height:36px;background:#fff"></div>
<p class="a" style="top:200px">Undertext beneath notice</p>
<div class="a" style="top:192px;left:10px;width:400px;height:20px;padding:8px;background:#eef">Overlay notice shown</div>
<div class="a" style="top:260px;height:22px;width:300px;overflow:hidden"><div>Scrollvisible first row</div><div>Scrolledaway second row</div><div>Scrolledaway third row</div></div>
<p class="a" style="top:330px" id="counter">Counter value 41</p>
<div id="log" style="position:absolute;left:500px;top:20px;width:420px;height:100px;overflow:hidden;font:14px/20px 'DejaVu Sans Mono',monospace;background:#f4f4f4"></div>
<button style="position:absolute;left:20px;top:380px;font:16px 'DejaVu Sans',sans-serif" onclick="document.getElementById('counter').textContent='Counter value '+(++n)">Next</button>
<button style="position:absolute;left:120px;top:380px;font:16px 'DejaVu Sans',sans-serif" onclick="logLine()">More</button>
<script>let n = 41; let k = 0;
const log = document.getElementById('log');
function logLine() { const d = document.createElement('div'); d.textContent = 'entry ' + String.fromCharCode(97 + k % 26).repeat(3) + k + ' done'; k++; log.appendChild(d); log.scrollTop = log.scrollHeight; }
for (let i = 0; i < 7; i++) logLine();
</script>
</body></html>`;

const HIDDEN = /phantom|hiddentail|anotherhidden|coveredsecret|undertext|scrolledaway|aaa0|bbb1/i;

let e2e: E2eDaemon;
let server: Server;
let chromium: AppHandle | null = null;

const observe = async (body: object = {}): Promise<Obs> => {
  const r = await e2e.api<Obs>('POST', '/v1/observe', body);
  expect(r.status, JSON.stringify(r.json).slice(0, 500)).toBe(200);
  return r.json;
};
const texts = (o: Obs) => o.words.map((w) => w.text);

beforeAll(async () => {
  server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  e2e = await startE2eDaemon('deskd-e2e-treetext-', POLICY);
  chromium = launchChromium(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  const c = chromium;
  await waitFor(
    async () => {
      if (c.exited()) throw new Error(`chromium exited: ${c.output().slice(-2000)}`);
      const o = await observe({ ocr: false });
      return o.elements.some((e) => e.name === 'Counter value 41') && o.elements.some((e) => e.role === 'button' && e.name === 'Next') ? o : null;
    },
    90_000,
    'the page in the accessibility tree',
  );
}, 180_000);

afterAll(async () => {
  await chromium?.kill();
  await e2e?.close();
  await new Promise<void>((r) => server?.close(() => r()));
});

describe('text from the tree, checked against the pixels', () => {
  it('reports what the screen shows from the tree, and never text the screen does not show', async () => {
    const o = await observe({ fresh: true });
    const plain = o.words.filter((w) => ['Quarterly', 'revenue', 'grew', 'steadily'].includes(w.text));
    expect(plain.map((w) => `${w.text}:${w.source}`)).toEqual(['Quarterly:accessibility', 'revenue:accessibility', 'grew:accessibility', 'steadily:accessibility']);
    // Word boxes lie on the words' ink: left to right, on one row, apart.
    for (let i = 1; i < plain.length; i++) expect(plain[i]!.bounds.x).toBeGreaterThan(plain[i - 1]!.bounds.x + plain[i - 1]!.bounds.width);
    expect(new Set(plain.map((w) => Math.round(w.bounds.y / 4))).size).toBeLessThanOrEqual(2);
    // What the tree says but the screen does not show is in no word and no line, from the tree or from OCR.
    expect(texts(o).filter((t) => HIDDEN.test(t))).toEqual([]);
    expect(o.lines.filter((l) => HIDDEN.test(l.text)).map((l) => l.text)).toEqual([]);
    // What is drawn over it, and the visible start of the cut text, are read (by OCR: the tree's boxes clash or stop short).
    for (const t of ['Overlay', 'notice', 'shown', 'Visiblepart', 'Scrollvisible']) expect(texts(o), t).toContain(t);
    expect(o.words.find((w) => w.text === 'Overlay')!.source).toBeUndefined();
    expect(o.words.find((w) => w.text === 'Visiblepart')!.source).toBeUndefined();
  });

  it('a log that scrolls as a line is added: the new line is seen, the line scrolled out is not, none twice, as a fresh read sees it', async () => {
    const entries = (o: Obs) => o.words.filter((w) => /^[a-z]{3}\d+$/.test(w.text)).map((w) => w.text);
    const before = await observe({ fresh: true });
    expect(entries(before)).toEqual(['ccc2', 'ddd3', 'eee4', 'fff5', 'ggg6']);
    for (let i = 7; i < 10; i++) {
      const press = await e2e.api('POST', '/v1/actions', { type: 'press', target: { role: 'button', name: 'More' } });
      expect(press.status, JSON.stringify(press.json)).toBe(200);
      const want = String.fromCharCode(97 + i).repeat(3) + i;
      const o = await waitFor(async () => {
        const x = await observe();
        return entries(x).includes(want) ? x : null;
      }, 20_000, `log entry ${want}`);
      const seen = entries(o);
      expect(new Set(seen).size, seen.join(' ')).toBe(seen.length);
      expect(seen).toEqual(entries(await observe({ fresh: true })));
      expect(seen[seen.length - 1]).toBe(want);
      expect(seen).not.toContain(String.fromCharCode(97 + i - 5).repeat(3) + (i - 5));
    }
  });

  it('after a change, reports the new text and not the old one, as a fresh read does', async () => {
    await observe();
    const press = await e2e.api<{ status: string }>('POST', '/v1/actions', { type: 'press', target: { role: 'button', name: 'Next' } });
    expect(press.status, JSON.stringify(press.json)).toBe(200);
    const after = await waitFor(async () => {
      const o = await observe();
      return texts(o).includes('42') ? o : null;
    }, 20_000, 'the new counter value');
    expect(texts(after)).not.toContain('41');
    expect(texts(after).filter((t) => HIDDEN.test(t))).toEqual([]);
    const fresh = await observe({ fresh: true });
    const counterRow = (o: Obs) => {
      const c = o.words.find((w) => w.text === 'Counter');
      return c ? o.words.filter((w) => Math.abs(w.bounds.y + w.bounds.height / 2 - (c.bounds.y + c.bounds.height / 2)) < 8).map((w) => w.text) : [];
    };
    expect(counterRow(after)).toEqual(counterRow(fresh));
    expect(counterRow(fresh)).toEqual(['Counter', 'value', '42']);
  });
});
