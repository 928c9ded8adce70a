// A bounded slow-request flood against a deskd on 127.0.0.1, run as a child process by
// tests/e2e/security-http.test.ts (so its sockets do not count against the daemon's open-file limit).
//
//   node httpFlood.mjs <port> <agentToken> <connections> <durationMs> <maxOpens> [reopenDelayMs=100]
//
// Keeps up to <connections> connections open for <durationMs>: half send their headers one byte at a
// time (never finishing), half send complete `POST /v1/actions` headers with the agent token and
// `Content-Length: 100000`, then drip the body one byte every 500 ms. A connection the daemon closes is
// reopened after [reopenDelayMs], at most <maxOpens> opens in all. Only ever connects to 127.0.0.1. Prints one JSON line with
// the counts on stdout and exits by itself when the time is up (or on SIGTERM).
import { connect } from 'node:net';

const [port, token, connections, durationMs, maxOpens, reopenDelayMs] = process.argv.slice(2);
const REOPEN_DELAY = Number(reopenDelayMs ?? 100);
const PORT = Number(port);
const N = Number(connections);
const DURATION = Number(durationMs);
const MAX_OPENS = Number(maxOpens);
if (!PORT || !token || !N || !DURATION || !MAX_OPENS) {
  console.error('usage: httpFlood.mjs <port> <agentToken> <connections> <durationMs> <maxOpens>');
  process.exit(2);
}

const stats = { opened: 0, closedByServer: 0, errors: 0, refused: 0, open: 0, peakOpen: 0, answers: {} };
const live = new Set();
let stopping = false;

function openOne(i) {
  if (stopping || stats.opened >= MAX_OPENS) return;
  stats.opened++;
  const slowBody = i % 2 === 1;
  const s = connect(PORT, '127.0.0.1');
  let timer = null;
  let got = '';
  s.on('connect', () => {
    stats.open++;
    stats.peakOpen = Math.max(stats.peakOpen, stats.open);
    live.add(s);
    if (slowBody) {
      s.write(`POST /v1/actions HTTP/1.1\r\nHost: 127.0.0.1:${PORT}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`);
      timer = setInterval(() => s.writable && s.write(' '), 500);
    } else {
      const head = `GET /v1/observe HTTP/1.1\r\nHost: 127.0.0.1:${PORT}\r\n`;
      let k = 0;
      timer = setInterval(() => s.writable && k < head.length && s.write(head[k++]), 500);
    }
  });
  s.on('data', (d) => {
    got += d.toString();
    const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
    if (m) stats.answers[m[1]] = (stats.answers[m[1]] ?? 0) + 1, (got = '\u0000');
  });
  s.on('error', (e) => {
    if (e.code === 'ECONNREFUSED') stats.refused++;
    else stats.errors++;
  });
  s.on('close', () => {
    if (timer) clearInterval(timer);
    if (live.delete(s)) stats.open--;
    if (!stopping) {
      stats.closedByServer++;
      setTimeout(() => openOne(i), REOPEN_DELAY);
    }
  });
}

for (let i = 0; i < N; i++) setTimeout(() => openOne(i), Math.floor(i / 50) * 10);

function stop() {
  if (stopping) return;
  stopping = true;
  for (const s of live) s.destroy();
  process.stdout.write(`${JSON.stringify(stats)}\n`, () => process.exit(0));
}
setTimeout(stop, DURATION);
process.on('SIGTERM', stop);
