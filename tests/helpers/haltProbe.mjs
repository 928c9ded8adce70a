// The operator's kill switch as a separate process (tests/e2e/security-http.test.ts): started before a
// flood, so its own sockets and pipes do not depend on the file descriptors the daemon's process has left.
//
//   node haltProbe.mjs <port> <operatorToken>
//
// For each line "go" on stdin: POST /v1/halt, then POST /v1/resume, each with an 8 s deadline (connect
// included), on
// 127.0.0.1; prints one JSON line {halt, haltMs, resume, error?}. Exits on "exit", on stdin's end, or
// after 120 s.
import { request } from 'node:http';
import { createInterface } from 'node:readline';

const [port, token] = process.argv.slice(2);
if (!Number(port) || !token) {
  console.error('usage: haltProbe.mjs <port> <operatorToken>');
  process.exit(2);
}

function post(path, body) {
  const data = JSON.stringify(body);
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port: Number(port), method: 'POST', path, agent: false, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0 }));
      },
    );
    const deadline = setTimeout(() => req.destroy(new Error('no answer in 8000 ms')), 8000);
    req.on('close', () => clearTimeout(deadline));
    req.on('error', (e) => resolve({ status: 0, ms: performance.now() - t0, error: `${e.code ?? ''} ${e.message}`.trim() }));
    req.end(data);
  });
}

let n = 0;
const rl = createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  if (line.trim() === 'exit') process.exit(0);
  if (line.trim() !== 'go') return;
  const h = await post('/v1/halt', { reason: `probe ${n++}` });
  const r = await post('/v1/resume', {});
  process.stdout.write(`${JSON.stringify({ halt: h.status, haltMs: Math.round(h.ms * 10) / 10, resume: r.status, ...(h.error || r.error ? { error: h.error ?? r.error } : {}) })}\n`);
});
rl.on('close', () => process.exit(0));
setTimeout(() => process.exit(0), 120_000).unref();
