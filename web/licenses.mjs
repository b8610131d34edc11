// Writes the licences of every npm package that ends up in the bundles (one metafile each) next to them.
import fs from "node:fs";
import path from "node:path";
const packages = new Set();
for (const file of process.argv.slice(2)) {
  const meta = JSON.parse(fs.readFileSync(file, "utf8"));
  for (const input of Object.keys(meta.inputs)) {
    const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
    if (m) packages.add(m[1]);
  }
}
// regl-scatterplot ships a pre-bundled dist that already contains its own dependencies.
const inner = JSON.parse(fs.readFileSync("node_modules/regl-scatterplot/package.json", "utf8"));
for (const name of Object.keys(inner.dependencies || {})) packages.add(name);
let out = "Third-party code bundled in scatterplot.bundle.js and katex/ (built by web/, see web/package.json)\n";
for (const name of [...packages].sort()) {
  const dir = path.join("node_modules", name);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  const file = fs.readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  out += `\n=== ${name}@${pkg.version} (${pkg.license}) ===\n`;
  out += file ? fs.readFileSync(path.join(dir, file), "utf8") : "(no licence file shipped)\n";
}
fs.writeFileSync("../service/api/static/vendor/LICENSES.txt", out);
console.log(`licences of ${packages.size} packages written`);
