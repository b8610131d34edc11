// The map page's only third-party code: regl-scatterplot (WebGL points, pan/zoom, lasso) and
// d3-scale (keeps data <-> screen scales in sync with the camera). Exposed as one global.
import createScatterplot from "regl-scatterplot";
import { scaleLinear } from "d3-scale";

window.paperscopeVendor = { createScatterplot, scaleLinear };
