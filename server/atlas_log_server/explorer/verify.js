// Verification in the browser: the same checks as the Python client (atlas_log.checkpoint, merkle, history,
// vmap), written again for a reader who trusts only the key they pinned. Pure: data in, verdict or a thrown
// VerificationFailure out; the only dependency is WebCrypto (SHA-256 and Ed25519).

export class VerificationFailure extends Error {}

const fail = (msg) => {
  throw new VerificationFailure(msg);
};
const enc = new TextEncoder();
const subtle = () => {
  if (!globalThis.crypto || !globalThis.crypto.subtle) {
    fail("this page is not in a secure context (https or localhost): the browser offers no WebCrypto to verify with");
  }
  return globalThis.crypto.subtle;
};

// ---- bytes -----------------------------------------------------------------------------------------------------

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Canonical padded standard base64 (RFC 4648 §4) to bytes; anything else fails, as in the Python client. */
export function b64decode(text, what = "value") {
  if (typeof text !== "string" || text.length % 4 !== 0 || !B64.test(text)) fail(`${what} is not padded base64`);
  let bin;
  try {
    bin = atob(text);
  } catch {
    fail(`${what} is not valid base64`);
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  if (b64encode(out) !== text) fail(`${what} is not canonical base64`);
  return out;
}

export function b64encode(bytes) {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

const fromHex = (text) => Uint8Array.from(text.match(/../g) ?? [], (x) => parseInt(x, 16));
export const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

export async function sha256(bytes) {
  return new Uint8Array(await subtle().digest("SHA-256", bytes));
}

// ---- RFC 9162 Merkle tree --------------------------------------------------------------------------------------

export const leafHash = (leaf) => sha256(concat(Uint8Array.of(0), leaf));
const nodeHash = (l, r) => sha256(concat(Uint8Array.of(1), l, r));

/** RFC 9162 §2.1.3.2: ``leaf`` (its hash) is at ``index`` in the tree of ``size`` leaves with ``root``. */
export async function verifyInclusion(lh, index, size, proof, root) {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
    fail(`index ${index} is not inside a tree of ${size} leaves`);
  }
  if (proof.some((h) => h.length !== 32)) fail("an inclusion proof hash is not 32 bytes");
  let fn = index;
  let sn = size - 1;
  let r = lh;
  for (const p of proof) {
    if (sn === 0) fail("the inclusion proof is longer than the path");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) fail("the inclusion proof is shorter than the path");
  if (!equal(r, root)) fail(`entry ${index}'s inclusion proof leads to another root than the checkpoint's`);
}

/** RFC 9162 §2.1.4.2: the tree of ``size2`` leaves with ``root2`` extends the one of ``size1`` with ``root1``. */
export async function verifyConsistency(size1, size2, proof, root1, root2) {
  if (!(Number.isSafeInteger(size1) && Number.isSafeInteger(size2)) || size1 < 1 || size2 < size1) {
    fail(`no consistency proof joins trees of ${size1} and ${size2} leaves`);
  }
  if (proof.some((h) => h.length !== 32)) fail("a consistency proof hash is not 32 bytes");
  if (size1 === size2) {
    if (proof.length || !equal(root1, root2)) fail(`two different trees of size ${size1}`);
    return;
  }
  const path = (size1 & (size1 - 1)) === 0 ? [root1, ...proof] : proof;
  if (!path.length) fail("the consistency proof is empty");
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) fail("the consistency proof is longer than the path");
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0 || !equal(fr, root1) || !equal(sr, root2)) {
    fail(`the tree of ${size2} leaves does not extend the tree of ${size1} you saw before: the log has forked`);
  }
}

// ---- C2SP signed notes, checkpoints and cosignatures --------------------------------------------------------------

async function keyId(name, type, key) {
  const h = await sha256(concat(enc.encode(name + "\n"), Uint8Array.of(type), key));
  return ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0;
}

/** A C2SP verifier key ``<name>+<hex key ID>+<base64(type ‖ key)>`` with its key ID checked. ``types`` are the
 * accepted key types (0x01: Ed25519 note signer; 0x04: a witness cosigner). */
export async function parseVkey(vkey, types = [1]) {
  // Split at the first two "+" only: the base64 key may hold more.
  const m = typeof vkey === "string" ? /^([^+]*)\+([^+]*)\+(.*)$/s.exec(vkey.trim()) : null;
  const parts = m ? [m[1], m[2], m[3]] : [];
  if (parts.length !== 3 || !/^[0-9a-f]{8}$/.test(parts[1])) {
    fail("a verifier key is <name>+<8 hex digit key ID>+<base64 key>");
  }
  const raw = b64decode(parts[2], "verifier key");
  if (raw.length !== 33 || !types.includes(raw[0])) fail("the verifier key is not an Ed25519 key of the right type");
  const key = raw.subarray(1);
  if ((await keyId(parts[0], raw[0], key)) !== parseInt(parts[1], 16)) fail("the verifier key's ID does not match it");
  return { name: parts[0], id: parseInt(parts[1], 16), type: raw[0], key, text: vkey.trim() };
}

/** SHA-256 of the key text, shown to the regulator so a pinned key can be compared by eye. */
export async function fingerprint(vkey) {
  return hex(await sha256(enc.encode(vkey.trim()))).slice(0, 32).replace(/(.{8})(?!$)/g, "$1 ");
}

export function parseNote(note) {
  if (/[\x00-\x09\x0b-\x1f]/.test(note)) fail("the note contains a control character");
  const split = note.lastIndexOf("\n\n");
  if (split < 0) fail("the note has no signature block");
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (!block.endsWith("\n")) fail("the note's signature lines do not end with a newline");
  const signatures = block
    .slice(0, -1)
    .split("\n")
    .map((line) => {
      const parts = line.split(" ");
      if (parts.length !== 3 || parts[0] !== "\u2014") fail(`malformed signature line ${JSON.stringify(line)}`);
      const raw = b64decode(parts[2], "note signature");
      if (raw.length < 5) fail("a note signature is too short");
      return {
        name: parts[1],
        id: ((raw[0] << 24) | (raw[1] << 16) | (raw[2] << 8) | raw[3]) >>> 0,
        sig: raw.subarray(4),
      };
    });
  return { text, signatures };
}

async function ed25519(key, sig, msg) {
  const k = await subtle().importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
  return subtle().verify({ name: "Ed25519" }, k, sig, msg);
}

/** The checkpoint in ``note``, signed by the pinned log key (its origin is the key's name). */
export async function openCheckpoint(note, vkey) {
  const { text, signatures } = parseNote(note);
  const mine = signatures.filter((s) => s.name === vkey.name && s.id === vkey.id);
  let ok = false;
  for (const s of mine) ok = ok || (s.sig.length === 64 && (await ed25519(vkey.key, s.sig, enc.encode(text))));
  if (!ok) fail(`the checkpoint is not signed by the pinned key ${vkey.name}`);
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3 || !/^(0|[1-9][0-9]*)$/.test(lines[1])) fail("malformed checkpoint text");
  if (lines[0] !== vkey.name) fail(`the checkpoint is for origin ${lines[0]}, not ${vkey.name}`);
  const root = b64decode(lines[2], "checkpoint root");
  if (root.length !== 32) fail("the checkpoint root is not 32 bytes");
  return { origin: lines[0], size: Number(lines[1]), root, text, note, extensions: lines.slice(3), signatures };
}

/** Witness cosignatures (C2SP tlog-cosignature v1, type 0x04) on the checkpoint by the given witness keys:
 * ``[{name, time, ok}]``, one per pinned witness that signed. */
export async function cosignatures(cp, witnesses) {
  const out = [];
  for (const w of witnesses) {
    for (const s of cp.signatures) {
      if (s.name !== w.name || s.id !== w.id || s.sig.length !== 72) continue;
      const t = s.sig.subarray(0, 8).reduce((n, b) => n * 256 + b, 0);
      const msg = enc.encode(`cosignature/v1\ntime ${t}\n${cp.text}`);
      out.push({ name: w.name, time: t, ok: await ed25519(w.key, s.sig.subarray(8), msg) });
    }
  }
  return out;
}

// ---- leaves ------------------------------------------------------------------------------------------------------

/** RFC 8785 for what leaves hold (strings, safe integers, objects, arrays, booleans, null): JavaScript's own
 * serialisation with keys sorted by UTF-16 code units, which is how RFC 8785 defines it. */
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

const dec = new TextDecoder("utf-8", { fatal: true });

/** A leaf's entry: ``{body, integratedTime, links}``, demanding canonical bytes as the client does. */
export function parseLeaf(bytes) {
  let text;
  let obj;
  try {
    text = dec.decode(bytes);
    obj = JSON.parse(text);
  } catch {
    fail("a leaf is not UTF-8 JSON");
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) fail("a leaf is not an object");
  const keys = Object.keys(obj);
  if (!keys.includes("body") || !keys.includes("integratedTime") || keys.some((k) => !["body", "integratedTime", "links"].includes(k))) {
    fail("a leaf must hold body, integratedTime and optional links");
  }
  if (canonical(obj) !== text) fail("a leaf is not in canonical (RFC 8785) form");
  const links = obj.links ?? null;
  if (links !== null && Object.values(links).some((v) => v !== null && !(Number.isSafeInteger(v) && v >= 0))) {
    fail("a leaf's links must be earlier indices or null");
  }
  return { body: obj.body, integratedTime: obj.integratedTime, links };
}

/** Each ``{logIndex, leaf, inclusionProof}`` included in ``cp``'s tree; returns ``[{index, leafHash, entry, roles}]``. */
export async function verifyEntries(items, cp) {
  if (!Array.isArray(items)) fail("the answer's entries are not a list");
  const out = [];
  for (const item of items) {
    const index = item?.logIndex;
    if (!Number.isSafeInteger(index)) fail("an entry has no log index");
    const leaf = b64decode(item.leaf, `entry ${index}'s leaf`);
    const proof = (item.inclusionProof ?? []).map((h) => b64decode(h, "inclusion proof"));
    const lh = await leafHash(leaf);
    await verifyInclusion(lh, index, cp.size, proof, cp.root);
    out.push({ index, leafHash: lh, entry: parseLeaf(leaf), roles: item.roles ?? [] });
  }
  return out;
}

const said = (entry, key) => {
  const v = entry.body?.index?.[key];
  return Array.isArray(v) ? v.filter((x) => typeof x === "string") : [];
};
const names = (entry, digest) =>
  said(entry, "subjects").includes(digest) || said(entry, "materials").includes(digest) || (entry.links && digest in entry.links);

// ---- the verifiable map (atlas_log.vmap) ------------------------------------------------------------------------

const EMPTY = new Uint8Array(32);
const bit = (key, d) => (key[d >> 3] >> (7 - (d & 7))) & 1;
const u64 = (n) => {
  const out = new Uint8Array(8);
  let v = BigInt(n);
  for (let i = 7; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
};
export const mapKey = (digest) => sha256(enc.encode(digest));

/** The value the map with ``root`` holds for ``key`` (``{newest, count}``), or null; fails when the proof does not
 * lead to the root, ends beside an empty subtree, or ends at a leaf off the key's path. */
export async function verifyMapProof(root, key, proof) {
  const siblings = (proof?.siblings ?? fail("a map proof has no siblings")).map((s) =>
    s === null ? null : b64decode(s, "map proof sibling"),
  );
  if (siblings.length > 256) fail("a map proof is deeper than 256");
  if (siblings.length && siblings[siblings.length - 1] === null) fail("the map proof ends beside an empty subtree");
  let h = EMPTY;
  let value = null;
  if (proof.leaf) {
    if (!/^[0-9a-f]{64}$/.test(proof.leaf.key ?? "")) fail("malformed map leaf key");
    const lk = fromHex(proof.leaf.key);
    const { newest, count } = proof.leaf;
    if (lk.length !== 32 || !Number.isSafeInteger(newest) || !Number.isSafeInteger(count) || count < 1 || newest < 0) {
      fail("malformed map leaf");
    }
    for (let d = 0; d < siblings.length; d++) if (bit(lk, d) !== bit(key, d)) fail("the map proof's leaf is off the key's path");
    h = await sha256(concat(Uint8Array.of(0), lk, u64(newest), u64(count)));
    if (equal(lk, key)) value = { newest, count };
  }
  for (let d = siblings.length - 1; d >= 0; d--) {
    const s = siblings[d] ?? EMPTY;
    h = await (bit(key, d) === 0 ? nodeHash(h, s) : nodeHash(s, h));
  }
  if (!equal(h, root)) fail("a map proof leads to another root than the commitment's");
  return value;
}

async function closure(raw, cp, artifact) {
  const [c] = await verifyEntries([raw.commitment], cp);
  const body = c.entry.body;
  const m = body?.map;
  if (body?.apiVersion !== "atlas-log/map-commitment/v1" || !m || !/^[0-9a-f]{64}$/.test(m.root ?? "")) {
    fail(`entry ${c.index}, given as the map commitment, is not one`);
  }
  if (!Number.isSafeInteger(m.treeSize) || m.treeSize > c.index) fail("the map commitment covers leaves after itself");
  const root = fromHex(m.root);
  const values = {};
  if (!raw.proofs || !(artifact in raw.proofs)) fail(`the completeness proof has no map proof for ${artifact}`);
  for (const [digest, proof] of Object.entries(raw.proofs)) {
    values[digest] = await verifyMapProof(root, await mapKey(digest), proof);
  }
  return { index: c.index, treeSize: m.treeSize, values };
}

// ---- histories -----------------------------------------------------------------------------------------------------

/** A history answer (one page: the explorer asks for up to 1,000 entries) verified against the pinned key:
 * ``{checkpoint, entries, complete, completeAsOf, incomplete, gapFree}``. Mirrors atlas_log.history. */
export async function verifyHistory(answer, vkey, artifact) {
  if (answer?.artifact !== artifact) fail(`the answer is about ${answer?.artifact}, not ${artifact}`);
  const cp = await openCheckpoint(answer.checkpoint, vkey);
  if (answer.treeSize !== cp.size) fail("the answer's treeSize is not its checkpoint's size");
  const entries = await verifyEntries(answer.entries, cp);
  const aliases = (answer.aliases ?? []).filter((a) =>
    entries.some((v) => ["subjects", "materials"].some((k) => said(v.entry, k).includes(artifact) && said(v.entry, k).includes(a))),
  );
  const digests = [artifact, ...aliases.sort()];
  for (let i = 0; i < entries.length; i++) {
    const v = entries[i];
    if (!digests.some((d) => names(v.entry, d))) fail(`entry ${v.index} does not name ${artifact} although the log says it does`);
    if (i && entries[i - 1].index <= v.index) fail("history entries are not strictly newest first");
  }
  // Back-links: each entry naming a digest points at the next older one in the answer.
  const expected = {};
  for (const v of entries) {
    if (!v.entry.links) continue;
    for (const d of digests) {
      if (!(d in v.entry.links)) continue;
      if (d in expected && expected[d] !== v.index) {
        fail(`history gap: the entry before entry ${v.index} links back to ${expected[d] === null ? "nothing" : `entry ${expected[d]}`}`);
      }
      expected[d] = v.entry.links[d];
    }
  }
  const more = answer.next !== null && answer.next !== undefined;
  if (!more) {
    for (const [d, older] of Object.entries(expected)) {
      if (older !== null) fail(`history gap: the oldest entry naming ${d} links back to entry ${older}, which the answer omits`);
    }
  }
  let complete = false;
  let incomplete = "the log gave no completeness proof (it keeps no verifiable map, or has not committed one yet)";
  let completeAsOf = null;
  if (answer.completeness) {
    const c = await closure(answer.completeness, cp, artifact);
    for (const [d, value] of Object.entries(c.values)) {
      if (!digests.includes(d)) continue;
      const below = entries.filter((v) => v.index < c.treeSize && v.entry.links && d in v.entry.links).map((v) => v.index);
      if (value === null) {
        if (below.length) fail(`the committed map says no entry below ${c.treeSize} links ${d}, but entry ${below[0]} does`);
        continue;
      }
      if (below.length && below[0] !== value.newest) {
        fail(`history incomplete: the map's newest entry naming ${d} is ${value.newest}, the answer's is ${below[0]}`);
      }
      if (below.length > value.count || (!more && below.length !== value.count)) {
        fail(`history incomplete: the map counts ${value.count} entries naming ${d}; the answer has ${below.length}`);
      }
    }
    const missing = digests.filter((d) => !(d in c.values));
    if (more) incomplete = "older pages remain";
    else if (missing.length) incomplete = `no map proof for ${missing[0]}`;
    else {
      complete = true;
      incomplete = null;
      completeAsOf = c.treeSize;
    }
  }
  const linked = entries.every((v) => v.entry.links && digests.some((d) => d in v.entry.links));
  return { checkpoint: cp, entries, aliases, complete, completeAsOf, incomplete, gapFree: !more && linked, commitment: answer.completeness?.commitment?.logIndex ?? null };
}

/** One entry (``GET /api/v1/entries/{index}``) with its inclusion proof (``GET /api/v1/proofs/inclusion``) in ``cp``. */
export async function verifyEntry(answer, proof, cp, index) {
  if (answer?.logIndex !== index || proof?.logIndex !== index || proof?.treeSize !== cp.size) {
    fail(`the answer is not entry ${index} proved in a tree of ${cp.size}`);
  }
  const [v] = await verifyEntries([{ logIndex: index, leaf: answer.leaf, inclusionProof: proof.hashes }], cp);
  return v;
}

// ---- lineage ---------------------------------------------------------------------------------------------------------

function reachable(artifact, direction, edges) {
  const byNode = new Map();
  for (const e of edges) {
    const k = direction === "up" ? e.to : e.from;
    if (!byNode.has(k)) byNode.set(k, []);
    byNode.get(k).push(e);
  }
  const seen = new Set([artifact]);
  const frontier = [artifact];
  const reached = new Set();
  while (frontier.length) {
    for (const e of byNode.get(frontier.pop()) ?? []) {
      reached.add(e);
      const next = direction === "up" ? e.from : e.to;
      if (!seen.has(next)) {
        seen.add(next);
        frontier.push(next);
      }
    }
  }
  return reached;
}

/** A lineage answer verified as atlas_log.history.verify_lineage does: every edge stated by an included entry and
 * reachable from the artifact; with a completeness proof, every edge up to the depth derived from the entries
 * and required in the answer. Returns ``{direction, edges, entries, complete, completeAsOf, incomplete}``. */
export async function verifyLineage(answer, vkey, artifact, direction) {
  if (answer?.artifact !== artifact) fail(`the lineage is about ${answer?.artifact}, not ${artifact}`);
  if (answer.direction !== direction) fail(`the answer is the lineage ${answer.direction}, not ${direction}`);
  const cp = await openCheckpoint(answer.checkpoint, vkey);
  if (answer.treeSize !== cp.size) fail("the answer's treeSize is not its checkpoint's size");
  const entries = new Map((await verifyEntries(answer.entries, cp)).map((v) => [v.index, v]));
  const edges = (answer.edges ?? []).map((e) => ({ from: e.from, to: e.to, index: e.logIndex }));
  const reached = reachable(artifact, direction, edges);
  for (const e of edges) {
    if (!reached.has(e)) fail(`edge ${e.from} -> ${e.to} (entry ${e.index}) is not connected to ${artifact}`);
    const v = entries.get(e.index) ?? fail(`edge ${e.from} -> ${e.to} cites entry ${e.index}, which the answer does not prove`);
    if (!said(v.entry, "materials").includes(e.from) || !said(v.entry, "subjects").includes(e.to)) {
      fail(`entry ${e.index} does not state ${e.from} -> ${e.to}`);
    }
  }
  const nodes = new Set(answer.nodes ?? []);
  for (const n of nodes) if (n !== artifact && !edges.some((e) => e.from === n || e.to === n)) fail(`node ${n} is in no edge of the answer`);
  const result = { direction, edges, entries, checkpoint: cp, complete: false, completeAsOf: null };
  if (!answer.completeness) {
    result.incomplete = "the log gave no completeness proof";
    return result;
  }
  const c = await closure(answer.completeness, cp, artifact);
  if (answer.truncated) {
    result.incomplete = "the log capped its answer";
    return result;
  }
  const answered = new Set(edges.map((e) => `${e.from} ${e.to} ${e.index}`));
  let level = [artifact];
  const seen = new Set(level);
  for (let d = 0; d < answer.depth; d++) {
    const next = [];
    for (const node of level) {
      if (!(node in c.values)) {
        result.incomplete = `no map proof for ${node}`;
        return result;
      }
      const linking = [...entries.values()]
        .filter((v) => v.index < c.treeSize && v.entry.links && node in v.entry.links)
        .sort((a, b) => b.index - a.index);
      const value = c.values[node];
      if (value === null) {
        if (linking.length) fail(`the committed map says no entry below ${c.treeSize} names ${node}, but entry ${linking[0].index} does`);
        continue;
      }
      if (!linking.length || linking[0].index !== value.newest || linking.length !== value.count) {
        fail(`lineage incomplete: the map has ${value.count} entries naming ${node}; the answer has ${linking.length}`);
      }
      linking.forEach((v, i) => {
        const older = i + 1 < linking.length ? linking[i + 1].index : null;
        if (v.entry.links[node] !== older) fail(`lineage incomplete: entry ${v.index} links ${node} to an entry not here`);
      });
      for (const v of linking) {
        const subjects = said(v.entry, "subjects");
        const materials = said(v.entry, "materials");
        let found = [];
        if (direction === "up" && subjects.includes(node)) found = materials.filter((m) => m !== node).map((m) => [m, node]);
        if (direction === "down" && materials.includes(node)) found = subjects.filter((s) => s !== node).map((s) => [node, s]);
        for (const [from, to] of found) {
          if (!answered.has(`${from} ${to} ${v.index}`)) fail(`lineage incomplete: entry ${v.index} states ${from} -> ${to}, which the answer omits`);
          const other = direction === "up" ? from : to;
          if (!seen.has(other)) {
            seen.add(other);
            next.push(other);
          }
        }
      }
    }
    level = next;
  }
  result.complete = true;
  result.completeAsOf = c.treeSize;
  result.incomplete = null;
  return result;
}
