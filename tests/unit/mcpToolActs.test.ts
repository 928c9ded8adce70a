import { describe, expect, it } from 'vitest';
import { isActingRequest, mcpToolActs } from '../../src/http/lease.js';
import { MCP_PERCEIVING_TOOLS } from '../../src/http/limits.js';

const call = (name: unknown, args?: unknown) => ({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args } });

describe('which MCP tool calls act (need the lease, refused to observers)', () => {
  it('read only looks unless it scrolls; anything but an absent or false scroll counts as scrolling', () => {
    expect(mcpToolActs('read', {})).toBe(false);
    expect(mcpToolActs('read', undefined)).toBe(false);
    expect(mcpToolActs('read', { scroll: false, kind: 'table' })).toBe(false);
    expect(mcpToolActs('read', { scroll: true })).toBe(true);
    expect(mcpToolActs('read', { scroll: 'true' })).toBe(true);
    expect(mcpToolActs('read', { scroll: 1 })).toBe(true);
    expect(mcpToolActs('read', { scroll: null })).toBe(true);
  });

  it('listing recordings looks; replaying and every other tool act', () => {
    expect(mcpToolActs('list_recordings', {})).toBe(false);
    expect(mcpToolActs('observe', {})).toBe(false);
    for (const name of ['replay', 'click', 'type', 'scroll', 'drag', 'press', 'set_value', 'focus_window', 'some_new_tool']) {
      expect(mcpToolActs(name, {}), name).toBe(true);
    }
  });

  it('POST /mcp acts when any call of a batch acts; a scroll hidden in a batch of reads is found', () => {
    expect(isActingRequest('POST', '/mcp', call('read', { kind: 'table' }))).toBe(false);
    expect(isActingRequest('POST', '/mcp', call('read', { scroll: true }))).toBe(true);
    expect(isActingRequest('post', '/mcp', [call('read', {}), call('observe', {}), call('read', { scroll: true })])).toBe(true);
    expect(isActingRequest('POST', '/mcp', [call('read', {}), call('list_recordings', {})])).toBe(false);
    expect(isActingRequest('POST', '/mcp', call(42, {}))).toBe(true);
  });

  it('a read counts as an observe for the perception limiter', () => {
    expect(MCP_PERCEIVING_TOOLS.has('read')).toBe(true);
  });
});
