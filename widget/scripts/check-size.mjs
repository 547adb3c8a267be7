// Fail (exit 1) when dist/funnelrec.min.js is over the byte budget, min+gzip at level 9.
// Also fails when dist/manifest.json does not describe the file (a stale build was committed).
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BUDGET = 8192;
const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const code = readFileSync(join(dist, 'funnelrec.min.js'));
const manifest = JSON.parse(readFileSync(join(dist, 'manifest.json'), 'utf8'));
const gz = gzipSync(code, { level: 9 }).length;
const sri = 'sha384-' + createHash('sha384').update(code).digest('base64');
console.log(`funnelrec.min.js: ${code.length} bytes min, ${gz} bytes min+gzip -9 (budget ${BUDGET}, ${BUDGET - gz} left)`);
let ok = true;
if (gz > BUDGET) { console.error(`FAIL: over the budget by ${gz - BUDGET} bytes`); ok = false; }
if (manifest.sri !== sri || manifest.bytes !== code.length) { console.error('FAIL: dist/manifest.json does not match dist/funnelrec.min.js: run npm run build'); ok = false; }
process.exit(ok ? 0 : 1);
