// Regenerates docs/errors.md from the ERROR_CODES table in src/errors.ts (run `npm run docs:errors` after `npm run build`).
import { writeFileSync } from 'node:fs';
const { ERROR_CODES } = await import('../dist/src/errors.js');
const rows = Object.entries(ERROR_CODES)
  .sort((a, b) => a[1].status - b[1].status || a[0].localeCompare(b[0]))
  .map(([code, v]) => `| \`${code}\` | ${v.status} | ${v.meaning.replaceAll('|', '\\|')} |`);
writeFileSync(
  new URL('../docs/errors.md', import.meta.url),
  `# Error codes

Every error response of deskd's HTTP API has this body, with the HTTP status given below:

\`\`\`json
{"error": {"code": "SCREAMING_SNAKE", "message": "a sentence for people"}}
\`\`\`

Clients branch on \`code\`, never on \`message\`. Codes are stable: a code is never reused for another meaning.
This table is generated from \`src/errors.ts\` (\`npm run docs:errors\`); a test checks that each code is listed here exactly once.

| code | HTTP status | meaning |
| --- | --- | --- |
${rows.join('\n')}
`,
);
console.log(`docs/errors.md: ${rows.length} codes`);
