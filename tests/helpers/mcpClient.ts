/**
 * An MCP client for tests of deskd's MCP server (src/mcp/server.ts): connected over the SDK's in-memory transport
 * (no process, no HTTP), and the text of a tool's answer.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { createMcpServer } from '../../src/mcp/server.js';

/** Connect `server` and a new client (`test`, version 1) over a linked in-memory transport pair; the caller closes the client. */
export async function connectInMemory(server: ReturnType<typeof createMcpServer>): Promise<Client> {
  const [ct, st] = InMemoryTransport.createLinkedPair();
  await server.connect(st);
  const client = new Client({ name: 'test', version: '1' });
  await client.connect(ct);
  return client;
}

/** The text parts of a tool's answer, joined by newlines (images and other parts left out). */
export const textOf = (r: CallToolResult): string => r.content.filter((c) => c.type === 'text').map((c) => (c as { text: string }).text).join('\n');
