// The lineage graph as SVG: inputs to the left, uses to the right. Models, datasets, code, evaluations and
// deployments have distinct shapes; an evaluation is drawn as its own node between the test set and the model it
// evaluated, with dashed edges, so a test set never looks like training data.

const SVG = "http://www.w3.org/2000/svg";
const TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1";
const DEPLOYMENT = "https://atlas-log.dev/ml/deployment/v1";
const COL = 280; // room between the columns for an edge's label
const ROW = 78;
const W = 170;
const H = 44;
const MAX_ROWS = 40;

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c);
  return node;
}

const predicate = (v) => v?.entry?.body?.index?.predicateType;
const subjectsOf = (v) => (Array.isArray(v?.entry?.body?.index?.subjects) ? v.entry.body.index.subjects : []);

function kindOf(digest, entries, named, evalData) {
  const made = [...entries.values()].filter((v) => subjectsOf(v).includes(digest));
  if (made.some((v) => predicate(v) === DEPLOYMENT)) return "deployment";
  // What the statements say it is (mlRole annotations) before what its name suggests.
  const said = named.get(digest)?.mlRoles ?? [];
  if (said.some((r) => /model|checkpoint|weights/i.test(r))) return "model";
  if (evalData.has(digest) || said.some((r) => /data|corpus|sample/i.test(r))) return "dataset";
  if (said.some((r) => /code|source|script/i.test(r))) return "code";
  const name = named.get(digest)?.name ?? "";
  if (/data|set|corpus|\.csv|\.parquet|\.jsonl/i.test(name)) return "dataset";
  if (/\.py$|git|code|src|repo/i.test(name)) return "code";
  if (made.some((v) => predicate(v) !== TEST_RESULT)) return "model";
  return "dataset";
}

function shape(kind, x, y) {
  const [l, r, t, b, cx, cy] = [x, x + W, y, y + H, x + W / 2, y + H / 2];
  switch (kind) {
    case "dataset":
      return svg("path", { d: `M${l} ${t + 7} A${W / 2} 7 0 0 1 ${r} ${t + 7} V${b - 7} A${W / 2} 7 0 0 1 ${l} ${b - 7} Z M${l} ${t + 7} A${W / 2} 7 0 0 0 ${r} ${t + 7}` });
    case "code":
      return svg("polygon", { points: `${l},${t} ${r - 14},${t} ${r},${t + 14} ${r},${b} ${l},${b}` });
    case "evaluation":
      return svg("polygon", { points: `${cx},${t - 6} ${r},${cy} ${cx},${b + 6} ${l},${cy}` });
    case "deployment":
      return svg("polygon", { points: `${l + 14},${t} ${r - 14},${t} ${r},${cy} ${r - 14},${b} ${l + 14},${b} ${l},${cy}` });
    default:
      return svg("rect", { x: l, y: t, width: W, height: H, rx: 14 });
  }
}

/** ``lineages``: verified lineages (verify.js) up and down from ``artifact``; ``named``: digest → {name, version}
 * as the statements give them; ``link``: digest → URL of its page. */
export function drawLineage(artifact, lineages, named, link) {
  const nodes = new Map([[artifact, { id: artifact, col: 0, kind: null }]]);
  const edges = [];
  const entries = new Map();
  const evalData = new Set();
  for (const lin of lineages) for (const [i, v] of lin.entries) entries.set(i, v);
  for (const lin of lineages) {
    const step = lin.direction === "up" ? -1 : 1;
    // Breadth first from the artifact: each node's column is its distance in this direction.
    const frontier = [artifact];
    const seen = new Set(frontier);
    while (frontier.length) {
      const node = frontier.shift();
      const col = nodes.get(node).col;
      for (const e of lin.edges) {
        const near = lin.direction === "up" ? e.to : e.from;
        const far = lin.direction === "up" ? e.from : e.to;
        if (near !== node) continue;
        // An evaluation takes a column of its own between the test set and the model.
        const hops = predicate(entries.get(e.index)) === TEST_RESULT ? 2 : 1;
        if (!nodes.has(far)) nodes.set(far, { id: far, col: col + hops * step, kind: null });
        edges.push(e);
        if (!seen.has(far)) {
          seen.add(far);
          frontier.push(far);
        }
      }
    }
  }
  // Evaluations become nodes of their own: test set -> evaluation -> evaluated model.
  const drawn = [];
  const unique = new Map(edges.map((e) => [`${e.from} ${e.to} ${e.index}`, e]));
  for (const e of unique.values()) {
    const v = entries.get(e.index);
    if (predicate(v) === TEST_RESULT) {
      evalData.add(e.from);
      const id = `evaluation #${e.index}`;
      const between = Math.round((nodes.get(e.from).col + nodes.get(e.to).col) / 2);
      if (!nodes.has(id)) nodes.set(id, { id, col: between, kind: "evaluation", entry: e.index });
      drawn.push({ from: e.from, to: id, label: "test set", dashed: true, entry: e.index }, { from: id, to: e.to, label: "evaluated", dashed: true, entry: e.index });
    } else {
      const label = predicate(v) === DEPLOYMENT ? "deployed as" : "input";
      drawn.push({ from: e.from, to: e.to, label, dashed: false, entry: e.index });
    }
  }
  for (const n of nodes.values()) n.kind = n.kind ?? kindOf(n.id, entries, named, evalData);
  // Rows within each column, in a stable order.
  const columns = new Map();
  for (const n of [...nodes.values()].sort((a, b) => a.id.localeCompare(b.id))) {
    if (!columns.has(n.col)) columns.set(n.col, []);
    columns.get(n.col).push(n);
  }
  // A column of hundreds of nodes is unreadable and slow to lay out: draw the first MAX_ROWS of each (in the
  // stable order) and one node saying how many more there are; every edge was verified all the same.
  const more = [];
  for (const [col, list] of columns) {
    if (list.length <= MAX_ROWS) continue;
    const hidden = list.splice(MAX_ROWS - 1);
    for (const n of hidden) nodes.delete(n.id);
    const id = `+${hidden.length} more`;
    const extra = { id, col, kind: "more", count: hidden.length };
    list.push(extra);
    more.push(extra);
  }
  const cols = [...columns.keys()].sort((a, b) => a - b);
  const minCol = cols[0];
  const height = Math.max(...[...columns.values()].map((c) => c.length)) * ROW + 40;
  for (const [col, list] of columns) {
    const top = (height - list.length * ROW) / 2;
    list.forEach((n, i) => {
      n.x = 20 + (col - minCol) * COL;
      n.y = top + i * ROW + (ROW - H) / 2;
    });
  }
  const width = 40 + (cols[cols.length - 1] - minCol) * COL + W;
  const root = svg("svg", { class: "lineage", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": `lineage of ${named.get(artifact)?.name ?? artifact}` });
  root.append(
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, svg("path", { d: "M0 0 L10 5 L0 10 z" }))),
  );
  // One line per edge however many entries state it (each entry named in its title), so labels do not pile up.
  const merged = new Map();
  for (const d of drawn) {
    const key = `${d.from} ${d.to} ${d.label}`;
    if (!merged.has(key)) merged.set(key, { ...d, entries: new Set() });
    merged.get(key).entries.add(d.entry);
  }
  const placed = [];
  for (const d of merged.values()) {
    const a = nodes.get(d.from);
    const b = nodes.get(d.to);
    if (!a || !b) continue; // an end beyond a column's cap
    const [x1, y1, x2, y2] = [a.x + W, a.y + H / 2, b.x, b.y + H / 2];
    const g = svg("g", { class: `edge${d.dashed ? " evaluation" : ""}` });
    const stated = svg("title");
    stated.textContent = `${d.label}: stated by ${[...d.entries].sort((p, q) => p - q).map((i) => `entry #${i}`).join(", ")}`;
    g.append(stated, svg("path", { d: `M${x1} ${y1} C${x1 + 40} ${y1} ${x2 - 40} ${y2} ${x2} ${y2}`, "marker-end": "url(#arrow)" }));
    // The label sits at the edge's middle, in the gap between the columns; where edges cross or converge, it moves
    // up or down until it overlaps no label already placed.
    const wide = 6.5 * d.label.length;
    const lx = (x1 + x2) / 2;
    let ly = (y1 + y2) / 2 - 6;
    const clash = (y) => placed.some((p) => Math.abs(p.x - lx) < (p.w + wide) / 2 && Math.abs(p.y - y) < 13);
    for (let k = 1; clash(ly) && k <= 12; k++) ly = (y1 + y2) / 2 - 6 + (k % 2 ? -1 : 1) * 13 * Math.ceil(k / 2);
    placed.push({ x: lx, y: ly, w: wide });
    const label = svg("text", { x: lx, y: ly, "text-anchor": "middle" });
    label.textContent = d.label;
    g.append(label);
    root.append(g);
  }
  for (const n of more) {
    const g = svg("g", { class: "node more" });
    g.append(svg("rect", { x: n.x, y: n.y, width: W, height: H, rx: 4 }));
    const t = svg("text", { x: n.x + W / 2, y: n.y + H / 2 + 5, "text-anchor": "middle" });
    t.textContent = `${n.count} more (see the history)`;
    g.append(t);
    root.append(g);
  }
  for (const n of nodes.values()) {
    const said = named.get(n.id);
    const text = n.kind === "evaluation" ? n.id : said?.name ?? `${n.id.slice(0, 19)}…`;
    const target = n.kind === "evaluation" ? link(null, n.entry) : link(n.id);
    const g = svg("a", { href: target, "data-nav": "", class: `node ${n.kind}${n.id === artifact ? " focus" : ""}`, tabindex: 0 });
    const title = svg("title");
    title.textContent = `${n.kind}: ${n.kind === "evaluation" ? n.id : n.id}`;
    g.append(title, shape(n.kind, n.x, n.y));
    const t = svg("text", { x: n.x + W / 2, y: n.y + H / 2 + 5, "text-anchor": "middle" });
    t.textContent = text.length > 24 ? `${text.slice(0, 23)}…` : text;
    g.append(t);
    const k = svg("text", { x: n.x + W / 2, y: n.y + H + 14, "text-anchor": "middle", class: "kind" });
    k.textContent = said?.version ? `${n.kind} · ${said.version}` : n.kind; // two versions of one model differ
    g.append(k);
    root.append(g);
  }
  const legend = document.createElement("p");
  legend.className = "legend";
  legend.textContent = "Shapes: rounded box model · cylinder dataset · folded box code · diamond evaluation · hexagon deployment. Dashed: evaluation (a test set, not training data). A node's kind is read from the statements' mlRole annotations, else guessed from its name and place: a hint, not a proof.";
  const wrap = document.createElement("div");
  wrap.className = "lineage-wrap";
  wrap.append(root, legend);
  return wrap;
}
