// TeX in titles and abstracts: KaTeX and its auto-render, exposed as one global. The page calls
// renderMathInElement on text it already escaped, so only text nodes are ever read as TeX.
import katex from "katex";
import renderMathInElement from "katex/contrib/auto-render";

window.paperscopeKatex = { katex, renderMathInElement };
