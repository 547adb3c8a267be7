// Build widget/dist/funnelrec.min.js (one minified IIFE, ES2019), its copy dist/v/<version>.js, and dist/manifest.json
// ({version, file, bytes, gzip_bytes, sri}). The version is the package version plus a content
// hash, so a versioned URL never serves two different files (it is cached as immutable).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'));

async function bundle(version) {
  const r = await build({
    entryPoints: [join(here, 'src/index.js')],
    bundle: true,
    minify: true,
    format: 'iife',
    target: 'es2019',
    charset: 'utf8',
    legalComments: 'none',
    define: { __VERSION__: JSON.stringify(version) },
    // Internal property names only (never DOM, wire or storage names): shortened in the bundle.
    mangleProps: /^(vis|foc|last|view|st|take|pct|ms|ended|fresh|rec|item|pos|seen|down|online|beacon|bo|onItem|onClick)$/,
    write: false,
  });
  return r.outputFiles[0].contents;
}

// The hash is taken over a build with a fixed placeholder version, then the real version is
// baked in (so the hash does not depend on itself).
const probe = await bundle(pkg.version);
const hash = createHash('sha256').update(probe).digest('hex').slice(0, 8);
const version = `${pkg.version}-${hash}`;
const code = Buffer.from(await bundle(version));
const dist = join(here, 'dist');
mkdirSync(dist, { recursive: true });
writeFileSync(join(dist, 'funnelrec.min.js'), code);
// Every released version stays servable at its own URL: snippets pasted before an upgrade keep
// their SRI hash and keep working (dist/v/ is committed; old files are never removed here).
mkdirSync(join(dist, 'v'), { recursive: true });
writeFileSync(join(dist, 'v', `${version}.js`), code);
const manifest = {
  version,
  file: 'funnelrec.min.js',
  bytes: code.length,
  gzip_bytes: gzipSync(code, { level: 9 }).length,
  sri: 'sha384-' + createHash('sha384').update(code).digest('base64'),
};
writeFileSync(join(dist, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
console.log(JSON.stringify(manifest));
