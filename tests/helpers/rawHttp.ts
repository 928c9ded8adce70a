/**
 * HTTP requests with the path sent byte for byte (no URL normalisation, as a hostile client may send it), for
 * the hardening tests of the daemon's HTTP server (tests/integration/security-http.test.ts,
 * governanceAgents.test.ts), and reading the error code out of an answer.
 */
import { request } from 'node:http';

/** An answer as received: status, headers and the body as text. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * One request to 127.0.0.1:`port` on its own connection (no keep-alive agent), the path sent as given; a body is
 * sent as JSON (content-type and content-length set).
 * @throws the socket's error when the connection fails or is reset before an answer
 */
export function rawRequest(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<RawAnswer> {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, agent: false, headers: { ...headers, ...(data !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(data)) } : {}) } },
      (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** The `error.code` of a JSON error body, or undefined when the body is not JSON or has none. */
export const errorCode = (a: { body: string }): string | undefined => {
  try {
    return (JSON.parse(a.body) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
};
