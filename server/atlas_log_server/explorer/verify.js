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
  // Canonical means the unused bits before the padding are zero (RFC 4648 §3.5): the one way a padded string
  // of the right alphabet and length can differ from the encoding of its bytes.
  const pad = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  if (pad && B64_DIGITS.indexOf(text[text.length - pad - 1]) & (pad === 2 ? 0x0f : 0x03)) {
    fail(`${what} is not canonical base64`);
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const B64_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

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

// SHA-256 (FIPS 180-4) in plain JavaScript: synchronous, so the thousands of small hashes of a history's proofs
// do not each wait on a WebCrypto promise (which made a 1,000-entry page several times slower).
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
]);
const W = new Uint32Array(64);

export function sha256(bytes) {
  const n = bytes.length;
  const total = Math.ceil((n + 9) / 64) * 64;
  const m = new Uint8Array(total);
  m.set(bytes);
  m[n] = 0x80;
  const bits = n * 8;
  const view = new DataView(m.buffer);
  view.setUint32(total - 8, Math.floor(bits / 0x100000000));
  view.setUint32(total - 4, bits >>> 0);
  let h0 = 0x6a09e667;
  let h1 = 0xbb67ae85;
  let h2 = 0x3c6ef372;
  let h3 = 0xa54ff53a;
  let h4 = 0x510e527f;
  let h5 = 0x9b05688c;
  let h6 = 0x1f83d9ab;
  let h7 = 0x5be0cd19;
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) W[i] = view.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const a = W[i - 15];
      const b = W[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
    }
    // Plain variables, no array destructuring: a 1,000-entry history hashes about 100,000 blocks.
    let a = h0;
    let b = h1;
    let c = h2;
    let d = h3;
    let e = h4;
    let f = h5;
    let g = h6;
    let h = h7;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (h + S1 + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
    h5 = (h5 + f) | 0;
    h6 = (h6 + g) | 0;
    h7 = (h7 + h) | 0;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  [h0, h1, h2, h3, h4, h5, h6, h7].forEach((v, i) => ov.setUint32(i * 4, v >>> 0));
  return out;
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
  if (!ok) fail(`the checkpoint is not signed by the key this page verifies with (${vkey.name})`);
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
  const counted = new Set();
  for (const w of witnesses) {
    // Each witness counts once, however many lines carry its name: a quorum is of witnesses, not of lines.
    if (counted.has(`${w.name}+${w.id}`)) continue;
    let best = null;
    for (const s of cp.signatures) {
      if (s.name !== w.name || s.id !== w.id || s.sig.length !== 72) continue;
      const t = s.sig.subarray(0, 8).reduce((n, b) => n * 256 + b, 0);
      const msg = enc.encode(`cosignature/v1\ntime ${t}\n${cp.text}`);
      const ok = await ed25519(w.key, s.sig.subarray(8), msg);
      if (!best || (ok && !best.ok)) best = { name: w.name, time: t, ok };
    }
    if (best) {
      counted.add(`${w.name}+${w.id}`);
      out.push(best);
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
  if (obj.body === null || typeof obj.body !== "object" || Array.isArray(obj.body)) fail("a leaf's body is not an object");
  if (!Number.isSafeInteger(obj.integratedTime) || obj.integratedTime < 0) fail("a leaf's integratedTime is not a time");
  const links = obj.links ?? null;
  if (
    links !== null &&
    (typeof links !== "object" ||
      Array.isArray(links) ||
      Object.values(links).some((v) => v !== null && !(Number.isSafeInteger(v) && v >= 0)))
  ) {
    fail("a leaf's links must map digests to earlier indices or null");
  }
  return { body: obj.body, integratedTime: obj.integratedTime, links };
}

// Entries already verified, by (leaf as served, index, tree): a page's answers share most of their leaves.
const verified = new Map();

/** The ``[digest, role, path]`` triples of an entry's fact list (base64), which must hash to the ``factsSha256`` its
 * leaf commits to (atlas_log.entry.fact_names). */
function factNames(text, entry, index) {
  const bytes = b64decode(text, `entry ${index}'s facts`);
  const want = entry.body?.index?.factsSha256;
  if (typeof want !== "string") fail(`entry ${index} commits to no facts`);
  if (hex(sha256(bytes)) !== want) fail(`entry ${index}: the facts given are not the ones the entry commits to`);
  let facts;
  try {
    facts = JSON.parse(dec.decode(bytes));
  } catch {
    fail(`entry ${index}: its facts are not JSON`);
  }
  if (!Array.isArray(facts)) fail(`entry ${index}: its facts are not a list`);
  return facts.flatMap((f) =>
    typeof f?.role === "string" && Array.isArray(f?.digests) ? f.digests.filter((d) => typeof d === "string").map((d) => [d, f.role, f.path]) : [],
  );
}

/** Each ``{logIndex, leaf, inclusionProof[, facts]}`` included in ``cp``'s tree; returns
 * ``[{index, leafHash, entry, roles, facts}]`` (``facts``: the proved ``[digest, role]`` pairs, or null). */
export async function verifyEntries(items, cp) {
  if (!Array.isArray(items)) fail("the answer's entries are not a list");
  const tree = `${cp.size}|${b64encode(cp.root)}`;
  const out = [];
  for (const item of items) {
    const index = item?.logIndex;
    if (!Number.isSafeInteger(index)) fail("an entry has no log index");
    const key = typeof item.leaf === "string" ? `${index}|${tree}|${item.leaf}` : null;
    let found = key && verified.get(key);
    if (!found) {
      const leaf = b64decode(item.leaf, `entry ${index}'s leaf`);
      const proof = (item.inclusionProof ?? []).map((h) => b64decode(h, "inclusion proof"));
      const lh = await leafHash(leaf);
      await verifyInclusion(lh, index, cp.size, proof, cp.root);
      found = { leafHash: lh, entry: parseLeaf(leaf) };
      if (key) {
        if (verified.size > 20000) verified.clear();
        verified.set(key, found);
      }
    }
    const facts = typeof item.facts === "string" ? factNames(item.facts, found.entry, index) : null;
    out.push({ index, leafHash: found.leafHash, entry: found.entry, roles: item.roles ?? [], facts });
  }
  return out;
}

const said = (entry, key) => {
  const v = entry.body?.index?.[key];
  return Array.isArray(v) ? v.filter((x) => typeof x === "string") : [];
};
const own = (obj, key) => obj !== null && typeof obj === "object" && Object.prototype.hasOwnProperty.call(obj, key);
const links = (entry, digest) => own(entry.links, digest);
const names = (entry, digest) =>
  said(entry, "subjects").includes(digest) || said(entry, "materials").includes(digest) || links(entry, digest);
// Whether a verified entry is proved to name a digest: by its leaf, or by the facts the leaf commits to.
const named = (v, digest) => names(v.entry, digest) || (v.facts ?? []).some(([d]) => d === digest);

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
  const exactly = (obj, keys) => obj && typeof obj === "object" && Object.keys(obj).sort().join() === keys;
  if (
    body?.apiVersion !== "atlas-log/map-commitment/v2" ||
    !exactly(body, "apiVersion,map") ||
    !exactly(m, "keys,root,treeSize") ||
    !/^[0-9a-f]{64}$/.test(m.root ?? "") ||
    !Number.isSafeInteger(m.keys) ||
    m.keys < 0
  ) {
    fail(`entry ${c.index}, given as the map commitment, is not one`);
  }
  if (!Number.isSafeInteger(m.treeSize) || m.treeSize < 0 || m.treeSize > c.index) {
    fail("the map commitment covers leaves after itself");
  }
  const root = fromHex(m.root);
  const values = Object.create(null);
  if (!own(raw.proofs, artifact)) fail(`the completeness proof has no map proof for ${artifact}`);
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
    if (!digests.some((d) => named(v, d))) fail(`entry ${v.index} does not name ${artifact} although the log says it does`);
    if (i && entries[i - 1].index <= v.index) fail("history entries are not strictly newest first");
  }
  // Back-links: each entry naming a digest points at the next older one in the answer.
  const expected = {};
  for (const v of entries) {
    if (!v.entry.links) continue;
    for (const d of digests) {
      if (!own(v.entry.links, d)) continue;
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
      const below = entries.filter((v) => v.index < c.treeSize && named(v, d)).map((v) => v.index);
      if (value === null) {
        if (below.length) fail(`the committed map says no entry below ${c.treeSize} names ${d}, but entry ${below[0]} does`);
        continue;
      }
      if (below.length && below[0] !== value.newest) {
        fail(`history incomplete: the map's newest entry naming ${d} is ${value.newest}, the answer's is ${below[0]}`);
      }
      if (below.length > value.count || (!more && below.length !== value.count)) {
        fail(`history incomplete: the map counts ${value.count} entries naming ${d}; the answer has ${below.length}`);
      }
    }
    const missing = digests.filter((d) => !own(c.values, d));
    if (more) incomplete = "older pages remain";
    else if (missing.length) incomplete = `no map proof for ${missing[0]}`;
    else {
      complete = true;
      incomplete = null;
      completeAsOf = c.treeSize;
    }
  }
  const linked = entries.every((v) => digests.some((d) => links(v.entry, d)));
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
export async function verifyLineage(answer, vkey, artifact, direction, depth) {
  if (answer?.artifact !== artifact) fail(`the lineage is about ${answer?.artifact}, not ${artifact}`);
  if (answer.direction !== direction) fail(`the answer is the lineage ${answer.direction}, not ${direction}`);
  if (!Number.isSafeInteger(depth) || depth < 1 || answer.depth !== depth) {
    fail(`the answer is the lineage to depth ${answer.depth}, not ${depth} as asked`);
  }
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
  for (let d = 0; d < depth; d++) {
    const next = [];
    for (const node of level) {
      if (!own(c.values, node)) {
        result.incomplete = `no map proof for ${node}`;
        return result;
      }
      const naming = [...entries.values()]
        .filter((v) => v.index < c.treeSize && named(v, node))
        .sort((a, b) => b.index - a.index);
      const value = c.values[node];
      if (value === null) {
        if (naming.length) fail(`the committed map says no entry below ${c.treeSize} names ${node}, but entry ${naming[0].index} does`);
        continue;
      }
      if (!naming.length || naming[0].index !== value.newest || naming.length !== value.count) {
        fail(`lineage incomplete: the map has ${value.count} entries naming ${node}; the answer has ${naming.length}`);
      }
      const linking = naming.filter((v) => links(v.entry, node));
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

/** The statement a DSSE envelope carries, shown only when its pre-authentication encoding (DSSE v1) hashes to
 * the leaf's ``paeHash``: what the signatures and the log committed to. Returns the payload bytes. */
export function verifyStatement(envelope, body) {
  const want = body?.paeHash?.sha256;
  if (typeof envelope?.payloadType !== "string" || typeof want !== "string") fail("the entry names no signed statement");
  const type = enc.encode(envelope.payloadType);
  const payload = b64decode(envelope.payload, "payload");
  const pae = concat(enc.encode(`DSSEv1 ${type.length} `), type, enc.encode(` ${payload.length} `), payload);
  if (hex(sha256(pae)) !== want) fail("the statement the log serves is not the one the entry's signatures cover");
  return payload;
}

// ---- confidential statements (atlas_log.disclosure) ------------------------------------------------------------

const b64url = (bytes) => b64encode(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** Every disclosure digest standing in a statement: in ``_sd`` arrays and ``{"...": digest}`` elements. */
export function hiddenDigests(node, out = []) {
  if (Array.isArray(node)) node.forEach((v) => hiddenDigests(v, out));
  else if (node && typeof node === "object") {
    const keys = Object.keys(node);
    if (keys.length === 1 && keys[0] === "..." && typeof node["..."] === "string") out.push(node["..."]);
    else {
      if (Array.isArray(node._sd)) out.push(...node._sd.filter((d) => typeof d === "string"));
      for (const [k, v] of Object.entries(node)) if (k !== "_sd") hiddenDigests(v, out);
    }
  }
  return out;
}

/** Put disclosures (base64url texts) back into a redacted statement, each proved to be a value it commits to
 * (RFC 9901 §7.1): returns ``{shown: [[path, value], ...], undisclosed}``, ``undisclosed`` counting the digests
 * met (in the statement or a revealed value) that no disclosure opened; fails for a disclosure committed nowhere,
 * placed where the other kind stands, given twice, or naming a member already there. Mirrors
 * atlas_log.disclosure.reveal. */
export function revealDisclosures(statement, encoded) {
  const byDigest = new Map();
  for (const text of encoded) {
    if (typeof text !== "string" || !/^[A-Za-z0-9_-]+$/.test(text)) fail("a disclosure is not base64url");
    const digest = b64url(sha256(enc.encode(text)));
    if (byDigest.has(digest)) fail("a disclosure is given twice");
    let parts;
    try {
      parts = JSON.parse(dec.decode(b64decode(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4), "disclosure")));
    } catch (e) {
      fail(`a disclosure does not decode: ${e.message}`);
    }
    if (!Array.isArray(parts) || (parts.length !== 2 && parts.length !== 3) || typeof parts[0] !== "string") fail("a disclosure is not [salt, name, value] or [salt, value]");
    if (parts.length === 3 && (typeof parts[1] !== "string" || ["_sd", "...", "_sd_alg"].includes(parts[1]))) fail("a disclosure's name is not allowed");
    byDigest.set(digest, parts.length === 3 ? { name: parts[1], value: parts[2] } : { name: null, value: parts[1] });
  }
  const used = new Set();
  const shown = [];
  const take = (digest) => {
    if (used.has(digest)) fail(`digest ${digest} stands twice`);
    used.add(digest);
    return byDigest.get(digest);
  };
  const walk = (node, path) => {
    if (Array.isArray(node)) {
      node.forEach((v, i) => {
        if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1 && typeof v["..."] === "string") {
          const d = take(v["..."]);
          if (!d) return;
          if (d.name !== null) fail(`a member's disclosure stands for the element ${path}[${i}]`);
          shown.push([`${path}[${i}]`, d.value]);
          walk(d.value, `${path}[${i}]`);
        } else walk(v, `${path}[${i}]`);
      });
    } else if (node && typeof node === "object") {
      for (const [k, v] of Object.entries(node)) if (k !== "_sd") walk(v, `${path}.${k}`);
      for (const digest of Array.isArray(node._sd) ? node._sd : []) {
        const d = take(digest);
        if (!d) continue;
        if (d.name === null) fail(`an element's disclosure is named in an object's _sd at ${path}`);
        if (own(node, d.name)) fail(`the disclosure of ${path}.${d.name} names a member already there`);
        shown.push([`${path}.${d.name}`, d.value]);
        walk(d.value, `${path}.${d.name}`);
      }
    }
  };
  walk(statement, "$");
  for (const digest of byDigest.keys()) if (!used.has(digest)) fail(`a disclosure (${digest}) is not committed anywhere in the statement`);
  return { shown: shown.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)), undisclosed: used.size - shown.length };
}

const SHA2_NAMES = { sha2256: "sha256", sha2384: "sha384", sha2512: "sha512" };
// Mirrors atlas_log.intoto: the lengths the log itself demands.
const HEX_LENGTHS = { sha256: 64, sha384: 96, sha512: 128, sha1: 40, gitCommit: 40 };

/** HMAC-SHA256 (RFC 2104) of ``message`` under a key of at most 64 bytes. */
export function hmacSha256(key, message) {
  if (key.length > 64) fail("an HMAC key here is at most 64 bytes");
  const pad = (byte) => Uint8Array.from({ length: 64 }, (_, i) => (key[i] ?? 0) ^ byte);
  return sha256(concat(pad(0x5c), sha256(concat(pad(0x36), message))));
}

/** ``[alg, hex]`` of a digest written ``alg:hex``, normalised as the log normalises it (atlas_log.intoto). */
export function normaliseDigest(artifact) {
  const m = /^([A-Za-z0-9][A-Za-z0-9.+_-]{0,63}):([0-9a-fA-F]+)$/.exec(String(artifact).trim());
  if (!m) fail("give a digest as alg:hex, e.g. sha256:…");
  const low = m[1].toLowerCase();
  const named = low === "gitcommit" ? "gitCommit" : low.replace(/[-_]/g, "");
  const alg = SHA2_NAMES[named] ?? named;
  const want = HEX_LENGTHS[alg];
  if (want !== undefined && m[2].length !== want) fail(`a ${alg} digest has ${want} hex digits, and this one has ${m[2].length}: check it`);
  if (m[2].length % 2) fail(`a digest has an even number of hex digits, and this one has ${m[2].length}: check it`);
  return [alg, m[2].toLowerCase()];
}

/** The blinded twin of ``artifact`` (``alg:hex``) under a tenant's 32-byte blinding key: the index key
 * ``blinded+<alg>:<hex HMAC-SHA256(key, "<alg>:<hex>")>`` under which the entries hiding that digest are found.
 * Mirrors atlas_log.disclosure.blind. */
export function blindDigest(key, artifact) {
  const [alg, value] = normaliseDigest(artifact);
  if (key.length !== 32) fail("a blinding key is 32 bytes");
  if (alg.startsWith("blinded+")) fail("give the artifact's real digest, not a blinded one");
  return `blinded+${alg}:${hex(hmacSha256(key, enc.encode(`${alg}:${value}`)))}`;
}
