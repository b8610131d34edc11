// KaTeX's style sheet and its woff2 fonts (every browser that runs the page reads woff2; the
// style sheet lists woff and ttf after it, which are then never fetched) next to katex.bundle.js.
import fs from "node:fs";
const out = "../service/api/static/vendor/katex";
fs.rmSync(`${out}/fonts`, { recursive: true, force: true });
fs.mkdirSync(`${out}/fonts`, { recursive: true });
fs.copyFileSync("node_modules/katex/dist/katex.min.css", `${out}/katex.min.css`);
for (const font of fs.readdirSync("node_modules/katex/dist/fonts").filter((f) => f.endsWith(".woff2"))) {
  fs.copyFileSync(`node_modules/katex/dist/fonts/${font}`, `${out}/fonts/${font}`);
}
console.log(`katex style sheet and fonts copied to ${out}`);
