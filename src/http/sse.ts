/**
 * Server-sent events for the task and replay event streams (`GET /v1/tasks/:id/events`,
 * `GET /v1/replays/:id/events`). Format: the WHATWG HTML "Server-sent events" section (`id`, `event`, `data`
 * fields, a blank line ends a message; a line starting with `:` is a comment, used as a keep-alive).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

/** An event of a stream: `seq` numbers it (1, 2, …), `type: 'final'` is the last. */
export interface StreamEvent {
  seq: number;
  type: string;
}

/** Format one SSE message (`id`, `event`, `data`; data is one JSON line). */
export function sseMessage(e: StreamEvent): string {
  return `id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
}

/** What {@link streamEvents} streams. */
export interface EventSource<E extends StreamEvent> {
  /** Subscribe from after `afterSeq` (past events are replayed first); returns the unsubscribe. */
  subscribe(listener: (e: E) => void, afterSeq: number): () => void;
  /** True when the run already ended (its final may lie before `Last-Event-ID`: end at once). */
  finished(): boolean;
  /** Keep-alive comment interval in milliseconds (default 15000). */
  heartbeatMs?: number;
}

/**
 * Take over the reply and stream `source`'s events as `text/event-stream`, resuming after the request's
 * `Last-Event-ID` (a positive integer; anything else starts from the first event). The stream ends after
 * the `final` event, at once when the run already finished, or when the client goes away.
 */
export function streamEvents<E extends StreamEvent>(req: FastifyRequest, reply: FastifyReply, source: EventSource<E>): void {
  const last = Number(req.headers['last-event-id'] ?? 0);
  const after = Number.isInteger(last) && last > 0 ? last : 0;
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  let ended = false;
  let unsubscribe: () => void = () => undefined;
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), source.heartbeatMs ?? 15000);
  heartbeat.unref();
  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    unsubscribe();
    res.end();
  };
  unsubscribe = source.subscribe((e) => {
    if (ended) return;
    res.write(sseMessage(e));
    if (e.type === 'final') end();
  }, after);
  if (!ended && source.finished()) end();
  res.on('close', end);
}
