// Runs the dashboard's threshold chart (pages/common/threshold_chart/chart.js) in Node on a minimal stand-in for
// the DOM: reads {data, values} as JSON on stdin, mounts the chart, moves its slider to each value and prints,
// per position, what the chart shows: the readout and each marker's "name: hit / total" counts.
import { readFileSync } from "node:fs";

class Element {
  constructor() {
    this.attributes = {};
    this.style = {};
    this.innerHTML = "";
    this.textContent = "";
  }
  setAttribute(name, value) {
    this.attributes[name] = String(value);
  }
}

const input = JSON.parse(readFileSync(0, "utf8"));
// a data: URL, as the browser gets the file: an ES module whatever Node would make of a .js file outside a package
const source = readFileSync(process.argv[2], "utf8");
const { default: mount } = await import(`data:text/javascript;base64,${Buffer.from(source).toString("base64")}`);
const children = new Map();
const root = new Element();
root.clientWidth = 900;
root.querySelector = (selector) => {
  if (!children.has(selector)) children.set(selector, new Element());
  return children.get(selector);
};
// the chart draws one threshold line per panel; the stand-in keeps one element per selector, so both are the same
root.querySelectorAll = (selector) => [root.querySelector(selector)];
const sent = [];
mount({ data: [input.data],  // the page sends the payload inside a list (threshold_chart/__init__.py)
        parentElement: { querySelector: () => root }, setStateValue: (k, v) => sent.push([k, v]) });

const slider = root.querySelector("input.ecgviz-tc-range");
const shown = () => ({
  readout: root.querySelector(".ecgviz-tc-readout").innerHTML,
  markers: [...root.querySelector("g.ecgviz-tc-markers").innerHTML.matchAll(/<title>(.*?): ([\d,]+) \/ ([\d,]+)/g)]
    .map(([, name, hit, total]) => ({ name, hit: +hit.replaceAll(",", ""), total: +total.replaceAll(",", "") })),
  line: root.querySelector("line.ecgviz-tc-threshold").attributes.x1,
});
const out = { slider: { min: slider.min, max: slider.max, step: slider.step, value: slider.value }, initial: shown(),
  moves: [] };
for (const value of input.values) {
  slider.value = String(value);
  slider.oninput();
  out.moves.push({ value, ...shown() });
}
// the slider's last value reaches the server once it rests
await new Promise((resolve) => setTimeout(resolve, 300));
out.sent = sent;
process.stdout.write(JSON.stringify(out));
