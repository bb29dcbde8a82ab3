// The explorer: pages for search, an artifact (history timeline and lineage graph), an entry and the log. Every
// answer is verified here (verify.js) against the verifier key the reader pinned, never one the server offers;
// the page's one status is #verification[data-verification] = ok | incomplete | failed.

import * as V from "./verify.js";
import { drawLineage } from "./lineage.js";

const PINNED = "atlas-log.vkey";
const PINNED_WITNESSES = "atlas-log.witnesses"; // {witnesses: [vkey], quorum} pinned with the key
const UP_DEPTH = 5;
const DOWN_DEPTH = 1;
const SLSA = "https://slsa.dev/provenance/v1";
const TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1";
const DEPLOYMENT = "https://atlas-log.dev/ml/deployment/v1";
const MODEL_SIGNING = "https://model_signing/signature/v1.0";

const main = document.getElementById("main");
const statusBox = document.getElementById("verification");

// ---- small DOM helpers (text only: nothing the server says is ever parsed as HTML) -------------------------------

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
  return node;
}

function setStatus(kind, text) {
  statusBox.dataset.verification = kind;
  statusBox.className = kind;
  statusBox.textContent = text;
}

const short = (digest) => {
  const [alg, h] = String(digest).split(":");
  return h ? `${alg}:${h.slice(0, 12)}…` : String(digest);
};
const when = (t) => new Date(t * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");

// ---- the reader's trust: the pinned key, from the link or local storage, never from the server -------------------

const trust = { vkey: null, witnesses: [], quorum: 0, note: null };

function query() {
  return new URLSearchParams(location.search);
}

/** Keep the trust parameters (vkey, witness, quorum) on every link, so a shared link carries the pinned view. */
function href(path, extra = {}) {
  const q = new URLSearchParams();
  const now = query();
  for (const k of ["vkey", "witness", "quorum"]) for (const v of now.getAll(k)) q.append(k, v);
  for (const [k, v] of Object.entries(extra)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  return `/explorer/${path}${s ? `?${s}` : ""}`;
}

async function loadTrust() {
  const q = query();
  // A key has no spaces: a "+" left unescaped in a shared link arrives as one, and is put back.
  const linked = q.get("vkey")?.replace(/ /g, "+").trim() || null;
  const pinned = localStorage.getItem(PINNED);
  trust.note = null;
  const text = linked || pinned;
  if (!text) return false;
  try {
    trust.vkey = await V.parseVkey(text);
  } catch (e) {
    // A mangled link (or stored key) is the reader's to fix, not the log's failure.
    trust.vkey = null;
    throw new NotFound(`The ${linked ? "key in this link" : "pinned key"} is not a verifier key (${e.message}): check the link, or paste the key above.`, "Check the key");
  }
  if (linked && !pinned) localStorage.setItem(PINNED, linked); // pinned on first use
  if (linked && pinned && pinned !== linked) {
    // Verified, but with a key the reader did not pin: never shown as plainly verified.
    trust.note = `This link's key (fingerprint ${await V.fingerprint(linked)}) is not the one you pinned (${await V.fingerprint(pinned)}); pin it above if you trust it.`;
  }
  const saved = JSON.parse(localStorage.getItem(PINNED_WITNESSES) || "null");
  const listed = q.getAll("witness").map((w) => w.replace(/ /g, "+").trim());
  // Naming witnesses asks for their cosignatures: all of them unless the link says how many.
  const policy = listed.length ? { witnesses: listed, quorum: quorumOf(q.get("quorum"), listed.length) } : saved ?? { witnesses: [], quorum: 0 };
  trust.witnesses = [];
  for (const w of policy.witnesses) trust.witnesses.push(await V.parseVkey(w, [1, 4]));
  trust.quorum = policy.quorum;
  if (!Number.isSafeInteger(trust.quorum) || trust.quorum < 0 || trust.quorum > trust.witnesses.length) {
    throw new V.VerificationFailure("the witness quorum must be a count of the witness keys given");
  }
  return true;
}

/** The quorum a reader gave (a count, checked against the witnesses later), or all ``count`` witnesses when none. */
function quorumOf(given, count) {
  return given === null || given === "" ? count : Number(given);
}

async function showKey() {
  const summary = document.getElementById("key-summary");
  if (!trust.vkey) {
    summary.textContent = "No verifier key pinned";
    document.getElementById("key-panel").open = true;
    return;
  }
  summary.textContent = `Key ${trust.vkey.name}+${trust.vkey.id.toString(16).padStart(8, "0")} · fingerprint ${await V.fingerprint(trust.vkey.text)}`;
  summary.title = trust.vkey.text;
  document.getElementById("key-input").value = trust.vkey.text;
}

document.getElementById("key-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  const vkey = String(form.get("vkey") || "").trim();
  try {
    await V.parseVkey(vkey);
  } catch (e) {
    setStatus("failed", `Not a verifier key: ${e.message}`);
    return;
  }
  localStorage.setItem(PINNED, vkey);
  const witnesses = String(form.get("witnesses") || "").split("\n").map((w) => w.trim()).filter(Boolean);
  const given = String(form.get("quorum") ?? "").trim();
  localStorage.setItem(PINNED_WITNESSES, JSON.stringify({ witnesses, quorum: quorumOf(given, witnesses.length) }));
  const q = query();
  q.set("vkey", vkey);
  q.delete("witness");
  for (const w of witnesses) q.append("witness", w);
  if (witnesses.length && given !== "") q.set("quorum", given);
  else q.delete("quorum");
  history.pushState(null, "", `${location.pathname}?${q}`);
  route();
});

// ---- fetching: the server's words, to be verified --------------------------------------------------------------

async function getJSON(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  const r = await fetch(url, { headers: { accept: "application/json" } });
  const body = await r.json().catch(() => null);
  // Any refusal by the log is its failure, never a notice: the reader's own mistakes are caught before asking.
  if (!r.ok) throw new Error(body?.detail ? `${body.title ?? r.status}: ${body.detail}` : `${url.pathname} answered ${r.status}`);
  return body;
}

/** What the reader asked for does not exist or is not well formed (a mistyped link, say): said plainly, in neutral
 * colours; nothing was verified, and nothing failed to verify. */
class NotFound extends Error {
  constructor(message, title = "Not found") {
    super(message);
    this.title = title;
  }
}

/** The checkpoint verified under the pinned key and, with witnesses pinned, a quorum of their cosignatures. */
async function checkpoint(note) {
  const cp = await V.openCheckpoint(note, trust.vkey);
  const cosigs = await V.cosignatures(cp, trust.witnesses);
  const good = cosigs.filter((c) => c.ok).length;
  if (trust.quorum > 0 && good < trust.quorum) {
    throw new V.VerificationFailure(`the checkpoint carries ${good} valid cosignatures of the ${trust.quorum} your witness policy needs`);
  }
  cp.cosignatures = cosigs;
  await advance(cp);
  return cp;
}

/** Every checkpoint must be consistent with the newest one this browser verified under the same key (kept in
 * local storage): a log showing a fork (two trees that do not extend each other) fails here. */
async function advance(cp) {
  const slot = `atlas-log.trusted.${trust.vkey.text}`;
  const saved = JSON.parse(localStorage.getItem(slot) || "null");
  if (saved && saved.size > 0) {
    const root = V.b64decode(saved.root, "trusted root");
    const [lo, hi] = cp.size >= saved.size ? [saved, cp] : [cp, saved];
    const loRoot = lo === saved ? root : lo.root;
    const hiRoot = hi === saved ? root : hi.root;
    if (lo.size === hi.size) {
      await V.verifyConsistency(lo.size, hi.size, [], loRoot, hiRoot).catch(() => {
        throw new V.VerificationFailure(`the log has forked: it showed this browser two different trees of size ${cp.size}`);
      });
    } else if (lo.size > 0) {
      try {
        const proof = await getJSON("/api/v1/proofs/consistency", { from: lo.size, to: hi.size });
        await V.verifyConsistency(lo.size, hi.size, proof.hashes.map((h) => V.b64decode(h, "consistency proof")), loRoot, hiRoot);
      } catch (e) {
        // Whatever the log answers instead of a proof that holds, the trees it showed may be a fork.
        throw new V.VerificationFailure(`the log did not prove that its tree of size ${hi.size} extends the tree of size ${lo.size} this browser verified (${e.message}): it may have forked`);
      }
    }
  }
  if (!saved || cp.size > saved.size) localStorage.setItem(slot, JSON.stringify({ size: cp.size, root: V.b64encode(cp.root) }));
}

function checkpointLine(cp) {
  const witnessed = cp.cosignatures.filter((c) => c.ok).length;
  return `checkpoint of tree size ${cp.size} signed by ${cp.origin}${trust.witnesses.length ? `, cosigned by ${witnessed} of ${trust.witnesses.length} pinned witnesses` : ""}`;
}

// ---- what a leaf says, for people ------------------------------------------------------------------------------

const MAP_COMMITMENT = "atlas-log/map-commitment/v2";
const LATEST = 10; // entries a first visit lists

function kindOf(entry) {
  if (entry.body?.apiVersion === MAP_COMMITMENT) return "the log's map commitment";
  const pt = entry.body?.index?.predicateType;
  if (pt === TEST_RESULT) return "evaluation";
  if (pt === DEPLOYMENT) return "deployment";
  if (pt === MODEL_SIGNING) return "model signing";
  if (pt === SLSA) return "build";
  return "statement"; // of another type: its page shows the type in full
}

/** The names the entry's statement gives its subjects: read only from the statement its signatures cover (one that
 * is not fails the page, as on the entry's own page); none for a statement that is not JSON or names none. */
function subjectNames(answer, body) {
  const env = answer.submission?.dsseEnvelope ?? answer.submission?.sigstoreBundle?.dsseEnvelope;
  if (!env?.payload) return [];
  const payload = V.verifyStatement(env, body);
  let parsed;
  try {
    parsed = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    return [];
  }
  const subjects = Array.isArray(parsed?.subject) ? parsed.subject : [];
  return subjects.map((x) => x?.name).filter((n) => typeof n === "string" && n).slice(0, 3);
}

function teeLine(entry) {
  const tee = entry.body?.tee;
  if (!tee) return "no TEE";
  const gpus = Array.isArray(tee.gpus) && tee.gpus.length ? ` + ${tee.gpus.length} GPU${tee.gpus.length === 1 ? "" : "s"}` : "";
  return `TDX ${tee.tcbStatus ?? "?"}${gpus}${tee.simulated ? " (simulated platform)" : ""}`;
}

function signersOf(entry) {
  const sigs = Array.isArray(entry.body?.signatures) ? entry.body.signatures : [];
  return sigs.map((s) => {
    const v = s?.verifier ?? {};
    const cert = v.certificate;
    if (cert) {
      const who = Array.isArray(cert.san) && cert.san.length ? cert.san.join(", ") : cert.subject;
      return `${who} (certificate issued by ${cert.issuer})`;
    }
    return v.spkiSha256 ? `key sha256:${String(v.spkiSha256).slice(0, 16)}…` : "unknown signer";
  });
}

function digestView(digest) {
  return el("details", { class: "digest" }, el("summary", {}, short(digest)), el("code", {}, digest));
}

function nameOf(named, digest) {
  const n = named.get(digest);
  return n ? `${n.name}${n.version ? ` ${n.version}` : ""}` : short(digest);
}

/** digest → {name, version, mlRoles} as the log's index has them: names as the statements give them, and every
 * role the statements' mlRole annotations give the artifact (a hint for the graph's shapes; nothing proves it). */
function namesFrom(entries) {
  const named = new Map();
  const roles = new Map();
  for (const e of entries) {
    for (const a of e.artifacts ?? []) {
      if (a.name && !named.has(a.digest)) named.set(a.digest, a);
      if (typeof a.mlRole === "string") roles.set(a.digest, new Set([...(roles.get(a.digest) ?? []), a.mlRole]));
    }
  }
  for (const [digest, r] of roles) named.set(digest, { ...(named.get(digest) ?? { digest }), mlRoles: [...r] });
  return named;
}

// ---- pages --------------------------------------------------------------------------------------------------------

async function searchPage(view) {
  const q = query();
  const form = el(
    "form",
    { class: "search", role: "search" },
    el("label", { for: "q" }, "Model, dataset or artifact: its exact name (e.g. fraud-detector) or a digest (sha256:…)"),
    el("input", { id: "q", name: "q", value: q.get("q") ?? "", autofocus: true }),
    el("details", {}, el("summary", {}, "More filters"),
      el("label", { for: "signer" }, "Signer (sha256:<key digest>)"), el("input", { id: "signer", name: "signer", value: q.get("signer") ?? "" }),
      el("label", { for: "predicateType" }, "Statement type"), el("input", { id: "predicateType", name: "predicateType", value: q.get("predicateType") ?? "" }),
      el("label", { for: "from" }, "Logged from"), el("input", { id: "from", name: "from", type: "date", value: q.get("from") ?? "" }),
      el("label", { for: "to" }, "Logged before"), el("input", { id: "to", name: "to", type: "date", value: q.get("to") ?? "" })),
    el("button", { type: "submit" }, "Search"),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const text = String(f.get("q") || "").trim();
    if (/^[a-z0-9-]+:[0-9a-fA-F]{32,}$/.test(text)) return go(href(`artifact/${text.toLowerCase()}`));
    const extra = {};
    for (const k of ["q", "signer", "predicateType", "from", "to"]) extra[k] = String(f.get(k) || "").trim();
    go(href("", extra));
  });
  view.replaceChildren(el("h1", {}, "Find a model, dataset or step"), form, hiddenLookup());
  const params = {
    name: q.get("q") || null,
    signer: q.get("signer") || null,
    predicateType: q.get("predicateType") || null,
    from: q.get("from") ? Date.parse(q.get("from")) / 1000 : null,
    to: q.get("to") ? Date.parse(q.get("to")) / 1000 : null,
  };
  if (Object.values(params).every((v) => v === null)) {
    // Something to open on a first visit: the newest entries, each proved in the verified tree.
    const cp = await checkpoint(await (await fetch("/checkpoint")).text());
    const indices = Array.from({ length: Math.min(LATEST, cp.size) }, (_, i) => cp.size - 1 - i);
    const answers = await Promise.all(indices.map((i) => Promise.all([
      getJSON(`/api/v1/entries/${i}`),
      getJSON("/api/v1/proofs/inclusion", { index: i, treeSize: cp.size }),
    ])));
    const latest = el("ol", { class: "results", id: "latest" });
    for (const [i, [answer, proof]] of indices.map((x, n) => [x, answers[n]])) {
      const v = await V.verifyEntry(answer, proof, cp, i);
      const body = v.entry.body;
      // What it is about, as its signed statement names it (the log's own entries say what they cover).
      const about = body?.apiVersion === MAP_COMMITMENT ? `covers the first ${body.map?.treeSize} entries` : subjectNames(answer, body).join(", ");
      const tee = body?.apiVersion === MAP_COMMITMENT ? "signed by the log" : teeLine(v.entry);
      latest.append(el("li", {}, el("a", { href: href(`entry/${i}`), "data-nav": true }, `#${i} ${kindOf(v.entry)}${about ? `: ${about}` : ""}`), ` · ${when(v.entry.integratedTime)} · ${tee}`));
    }
    view.append(el("h2", {}, "Latest entries"), indices.length ? latest : el("p", {}, "The log holds no entries yet."));
    return ["ok", `Verifier key pinned. The latest entries are in the log (${checkpointLine(cp)}). Search for a model or dataset.`];
  }
  const answer = await getJSON("/api/v1/search", { ...params, limit: 100 });
  const cp = await checkpoint(answer.checkpoint);
  const verified = await V.verifyEntries(answer.entries, cp);
  const list = el("ol", { class: "results" });
  verified.forEach((v, i) => {
    const artifacts = answer.entries[i].artifacts ?? [];
    list.append(
      el("li", {},
        el("a", { href: href(`entry/${v.index}`), "data-nav": true }, `#${v.index} ${kindOf(v.entry)}`),
        ` · ${when(v.entry.integratedTime)} · ${teeLine(v.entry)}`,
        el("ul", {}, artifacts.map((a) => el("li", {},
          el("a", { href: href(`artifact/${a.digest}`), "data-nav": true }, a.name ? `${a.name}${a.version ? ` ${a.version}` : ""}` : short(a.digest)),
          ` (${a.role})`)))),
    );
  });
  const heading = `${verified.length} ${verified.length === 1 ? "entry" : "entries"}`;
  view.append(el("h2", {}, heading), list);
  if (!verified.length && params.name) {
    view.append(el("p", {}, `Names are matched whole: no entry names an artifact exactly “${params.name}”. Try its full name as the statement gives it, or its digest.`));
  }
  return ["incomplete", `Verified: each result is in the log (${checkpointLine(cp)}). Not proved: that no match is missing — a search is an index lookup; open an artifact for its complete history.`];
}

/** For the tenant and its grant holders: an artifact whose digest the tenant's entries hide is found by its
 * blinded twin, computed here from the tenant's blinding key (a grant scoped to artifacts is told its twins). */
function hiddenLookup() {
  const digest = el("input", { id: "hidden-digest", placeholder: "sha256:…", autocomplete: "off" });
  const token = el("input", { id: "hidden-token", type: "password", autocomplete: "off" });
  const said = el("p", { role: "status" });
  const form = el("form", { class: "hidden-lookup" },
    el("label", { for: "hidden-digest" }, "The artifact's real digest"), digest,
    el("label", { for: "hidden-token" }, "Grant token (atl_…)"), token,
    el("button", { type: "submit" }, "Look up"), said);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await fetch("/api/v1/blinding-key", { headers: { Authorization: `Bearer ${token.value.trim()}` } });
      const answer = await r.json().catch(() => null);
      if (!r.ok) throw new Error(answer?.detail ?? r.statusText);
      const real = V.normaliseDigest(digest.value).join(":");
      const twin = typeof answer?.key === "string" ? V.blindDigest(V.b64decode(answer.key, "blinding key"), real) : answer?.hidden?.[real];
      if (typeof twin !== "string") throw new Error(`${real} is not one of the artifacts this grant covers`);
      go(href(`artifact/${twin}`, { hidden: real }));
    } catch (e) {
      said.replaceChildren(el("span", { class: "revealed-failed", role: "alert" }, `Not looked up: ${e.message}`));
    }
  });
  return el("details", { class: "hidden-artifacts" },
    el("summary", {}, "Hidden artifacts (the tenant and its grant holders)"),
    el("p", { class: "muted" }, "A confidential entry may hide an artifact's digest; the log indexes it by a blinded twin only the tenant's key computes. Your token fetches that key (or your grant's twins) and this page computes the twin; the history it opens is verified like any other."),
    form);
}

/** The options trusting a development log's simulated roots, as it names them (its word: a hint for the command
 * line, which verifies everything itself); "" for a log on real hardware. */
async function simulatedRoots() {
  const a = (await getJSON("/api/v1/log").catch(() => null))?.attestation;
  // Only fingerprints go into a command people copy: a lying server's shell text is left out.
  const sha = (x) => typeof x === "string" && /^[0-9a-f]{64}$/.test(x);
  if (!a?.simulated || !sha(a.simulatedRoot)) return "";
  const gpu = a.gpu ?? {};
  return [` --tdx-root ${a.simulatedRoot}`, sha(gpu.deviceRoot) ? ` --gpu-device-root ${gpu.deviceRoot}` : "", sha(gpu.rimRoot) ? ` --gpu-rim-root ${gpu.rimRoot}` : ""].join("");
}

/** The file name the log's pack endpoint gives a pack (its Content-Disposition), which browsers keep. */
const packName = (digest) => `atlas-log-pack-${digest.replace(":", "-").slice(0, 24)}.zip`;

async function artifactPage(view, digest) {
  try {
    V.normaliseDigest(digest);
  } catch (e) {
    throw new NotFound(`“${digest}” is not an artifact digest: ${e.message}.`);
  }
  view.replaceChildren(el("h1", {}, "Artifact"), el("p", {}, el("code", {}, digest)), el("p", { class: "muted pending-line" }, "Verifying its history and lineage…"));
  const [hist, up, down] = await Promise.all([
    getJSON(`/api/v1/artifacts/${digest}/history`, { limit: 1000 }),
    getJSON(`/api/v1/artifacts/${digest}/lineage`, { direction: "up", depth: UP_DEPTH, complete: "true" }),
    // What was made from it directly (deployments, models trained from it): each use proved, none missing.
    getJSON(`/api/v1/artifacts/${digest}/lineage`, { direction: "down", depth: DOWN_DEPTH, complete: "true" }),
  ]);
  const verified = new Map();
  for (const note of new Set([hist.checkpoint, up.checkpoint, down.checkpoint])) verified.set(note, await checkpoint(note));
  const h = await V.verifyHistory(hist, trust.vkey, digest);
  const lin = [
    await V.verifyLineage(up, trust.vkey, digest, "up", UP_DEPTH),
    await V.verifyLineage(down, trust.vkey, digest, "down", DOWN_DEPTH),
  ];
  const named = namesFrom([...hist.entries, ...up.entries, ...down.entries]);
  const title = named.get(digest)?.name ?? short(digest);
  if (!h.entries.length && lin.every((l) => !l.edges.length)) {
    // Proved or not, an empty answer most often means a mistyped digest: shown in full, with nothing to open.
    const said = h.complete
      ? `The log's map commitment (entry #${h.commitment}) proves that no entry below tree size ${h.completeAsOf} names it.`
      : `Not proved that none does: ${h.incomplete}.`;
    view.replaceChildren(
      el("h1", {}, "No entry names this artifact"),
      el("p", {}, el("code", { class: "full-digest" }, digest)),
      el("p", {}, said),
      el("p", {}, "If you expected entries, check the digest above, every character of it, or search by name."),
    );
    const bound = h.complete ? `no entry below tree size ${h.completeAsOf} names this digest` : "no entry it showed names this digest (not proved complete)";
    return ["notice", `Verified against the ${checkpointLine(verified.get(hist.checkpoint))}: ${bound}.`];
  }

  const timeline = el("ol", { class: "timeline", "aria-label": "history, newest first" });
  h.entries.forEach((v, i) => {
    const roles = (hist.entries[i].roles ?? []).join(", ");
    timeline.append(
      el("li", { class: `kind-${kindOf(v.entry).replace(/\W+/g, "-")}` },
        el("time", {}, when(v.entry.integratedTime)), " ",
        el("a", { href: href(`entry/${v.index}`), "data-nav": true }, `#${v.index} ${kindOf(v.entry)}`),
        ` — as ${roles || "named"} · signed by ${signersOf(v.entry).join(", ") || "nobody"} · ${teeLine(v.entry)}`),
    );
  });
  const proved = h.complete
    ? `Complete as of tree size ${h.completeAsOf}: the log's map commitment (entry #${h.commitment}) proves ${h.entries.length === 1 ? "this is the one entry" : `these are all ${h.entries.length} entries`} naming it below that size.`
    : `${h.entries.length} ${h.entries.length === 1 ? "entry" : "entries"} verified; not proved complete: ${h.incomplete}.`;
  const real = query().get("hidden");
  const roots = await simulatedRoots();
  view.replaceChildren(
    el("h1", {}, title),
    el("p", {}, digestView(digest)),
    ...(real ? [el("p", { class: "hidden-of", id: "hidden-of" }, "The entries hiding ", el("code", {}, real), ": this is its blinded twin under the tenant's key. Open an entry and reveal it with your token to see the digest it hides.")] : []),
    el("p", { class: "proved" }, proved),
    el("p", { class: "pack" },
      el("a", { id: "download-pack", class: "button", href: `/api/v1/artifacts/${digest}/pack`, download: packName(digest) }, "Download the evidence pack"),
      " One file with every entry, proof, statement, quote and collateral of this case; it verifies offline with ",
      el("code", { id: "verify-pack-command" }, `atlas-log --vkey '${trust.vkey.text}' verify-pack ${packName(digest)}${roots}`),
      roots ? " (the roots named are the log's own word that it runs simulated TDX and GPUs: trust them only for a development log)." : "."),
    el("section", { "aria-labelledby": "lineage-h" },
      el("h2", { id: "lineage-h" }, "Where it came from, and what was made from it"),
      drawLineage(digest, lin, named, (d, entry) => (d ? href(`artifact/${d}`) : href(`entry/${entry}`))),
      el("p", { class: "muted" }, "Names and versions are the log's index of the signed statements; digests, edges, entries, signers and verdicts are verified."),
      el("p", { class: "muted" }, lin.map((l) => `${l.direction === "up" ? "Inputs" : "Uses"}: ${l.edges.length} edge${l.edges.length === 1 ? "" : "s"}, ${l.complete ? `complete as of tree size ${l.completeAsOf}` : `not proved complete (${l.incomplete})`}.`).join(" "))),
    el("section", { "aria-labelledby": "history-h" }, el("h2", { id: "history-h" }, "History"), timeline),
  );
  const gaps = [h, ...lin].filter((x) => !x.complete).map((x) => x.incomplete);
  // A log may answer with an older map commitment than one it showed this browser before: completeness is
  // then claimed as of a size it has moved past, and the page says so.
  const slot = `atlas-log.map.${trust.vkey.text}`;
  const seen = Number(localStorage.getItem(slot) || -1);
  if (h.commitment !== null && h.commitment < seen) {
    gaps.push(`the log answered with an older map commitment (entry ${h.commitment}) than one it showed before (entry ${seen})`);
  } else if (h.commitment !== null) {
    localStorage.setItem(slot, String(h.commitment));
  }
  if (gaps.length) return ["incomplete", `Verified, but incomplete: ${gaps.join("; ")}.`];
  return ["ok", `Verified against the ${checkpointLine(verified.get(hist.checkpoint))}; complete as of tree size ${h.completeAsOf}.`];
}

/** digest (``alg:hex``) → name, as the signed statement's descriptors give them (the statement is verified
 * against the entry before it is shown). */
function namesInStatement(statement) {
  const names = new Map();
  const walk = (x) => {
    if (Array.isArray(x)) return x.forEach(walk);
    if (!x || typeof x !== "object") return;
    if (typeof x.name === "string" && x.digest && typeof x.digest === "object") {
      for (const [alg, value] of Object.entries(x.digest)) if (typeof value === "string") names.set(`${alg}:${value.toLowerCase()}`, x.name);
    }
    Object.values(x).forEach(walk);
  };
  walk(statement);
  return names;
}

function artifactList(digests, names) {
  if (!digests.length) return "none";
  return el("ul", {}, digests.map((d) => el("li", {},
    el("a", { href: href(`artifact/${d}`), "data-nav": true }, names.has(d) ? `${names.get(d)} (${short(d)})` : short(d)))));
}

async function entryPage(view, index) {
  const note = await (await fetch("/checkpoint")).text();
  const cp = await checkpoint(note);
  if (index >= cp.size) throw new NotFound(`There is no entry #${index}: the log's verified tree holds entries #0 to #${cp.size - 1}.`);
  const [answer, proof, evidence] = await Promise.all([
    getJSON(`/api/v1/entries/${index}`),
    getJSON("/api/v1/proofs/inclusion", { index, treeSize: cp.size }),
    getJSON(`/api/v1/entries/${index}/evidence`).catch(() => null),
  ]);
  const v = await V.verifyEntry(answer, proof, cp, index);
  const body = v.entry.body;
  const tee = body.tee;
  let statement = null;
  let parsed = null;
  const env = answer.submission?.dsseEnvelope ?? answer.submission?.sigstoreBundle?.dsseEnvelope;
  if (env?.payload) {
    // Shown only if it is the statement the entry's signatures cover; a mismatch fails the page.
    const payload = V.verifyStatement(env, body);
    try {
      parsed = JSON.parse(new TextDecoder().decode(payload));
      statement = JSON.stringify(parsed, null, 2);
    } catch {
      statement = new TextDecoder().decode(payload);
    }
  }
  const hidden = parsed ? V.hiddenDigests(parsed).length : 0;
  const rows = (pairs) => el("dl", {}, pairs.filter(([, v2]) => v2 !== undefined && v2 !== null).flatMap(([k, v2]) => [el("dt", {}, k), el("dd", {}, v2)]));
  const proofs = [
    el("h2", {}, "Proofs"),
    rows([
      ["Leaf hash", el("code", {}, V.hex(v.leafHash))],
      ["Included in", checkpointLine(cp)],
      ["Inclusion proof", `${proof.hashes.length} hashes, verified`],
    ]),
  ];
  if (body.apiVersion === MAP_COMMITMENT && body.map) {
    // The log's own entry: no submission, no signer; a monitor's replay checks its root against the leaves.
    view.replaceChildren(
      el("h1", {}, `Entry #${index}: ${kindOf(v.entry)}`),
      el("p", {}, "The log states, as one of its own entries, the root of its verifiable map of every artifact named by its first entries. History and lineage answers prove themselves complete against it; a monitor replaying the log rebuilds the map and checks this root."),
      rows([
        ["Logged", when(v.entry.integratedTime)],
        ["Covers", `the first ${body.map.treeSize} entries: ${body.map.keys} artifacts`],
        ["Map root", el("code", {}, String(body.map.root))],
      ]),
      ...proofs,
    );
    return ["ok", `Verified: entry #${index} is in the log (${checkpointLine(cp)}).`];
  }
  const gpus = Array.isArray(tee?.gpus) ? tee.gpus : [];
  const signedNames = namesInStatement(parsed);
  view.replaceChildren(
    el("h1", {}, `Entry #${index}: ${kindOf(v.entry)}`),
    rows([
      ["Logged", when(v.entry.integratedTime)],
      ["Statement type", body.index?.predicateType ?? "—"],
      ["Subjects", artifactList(said(body, "subjects"), signedNames)],
      ["Inputs", artifactList(said(body, "materials"), signedNames)],
      ["Signers", el("ul", {}, signersOf(v.entry).map((s) => el("li", {}, s)))],
    ]),
    el("h2", {}, "Trusted execution"),
    tee
      ? rows([
          ["Platform", tee.simulated ? "simulated TDX (development: proves nothing about hardware)" : "Intel TDX"],
          ["TCB status", tee.tcbStatus],
          ["Advisories", (tee.advisoryIds ?? []).join(", ") || "none"],
          ["MRTD", tee.mrTd ? el("code", {}, tee.mrTd) : undefined],
          ["RTMRs", Array.isArray(tee.rtmr) ? el("ul", {}, tee.rtmr.map((r) => el("li", {}, el("code", {}, r)))) : undefined],
          ["Evidence", evidence ? `the quote and its collateral are served for offline re-verification: atlas-log evidence ${index} --out ./ev, then the atlas-log tdx verify${gpus.length ? " and gpu verify" : ""} commands it prints` : undefined],
        ])
      : el("p", {}, "This entry carries no TEE attestation."),
    ...gpus.flatMap((g, i) => [
      el("h3", {}, `GPU ${i}${tee.simulated ? " (simulated: proves nothing about hardware)" : ""}`),
      rows([
        ["GPU", `NVIDIA ${g.architecture ?? "?"}`],
        ["Driver", g.driverVersion ?? "—"],
        ["VBIOS", g.vbiosVersion ?? "—"],
        ["Measurements", g.measurements === "matched" ? "every one matches the signed reference values (RIMs)" : "not compared with reference values"],
        ["Reference values", Array.isArray(g.rims) && g.rims.length ? el("ul", {}, g.rims.map((r) => el("li", {}, `${r.kind}: ${r.id}`))) : undefined],
        ["Revocation", Array.isArray(g.revocation) && g.revocation.length
          ? el("ul", {}, g.revocation.map((r) => el("li", {}, `${r.status}: the ${r.chain === "device" ? "device" : `${r.chain} RIM`} chain's certificate with serial ${r.serial} (OCSP)`)))
          : "not checked"],
      ]),
    ]),
    ...proofs,
    el("h2", {}, "Signed statement"),
    hidden ? confidentialView(index, parsed, hidden) : "",
    statement ? el("pre", { class: "statement" }, statement) : el("p", {}, "The statement is not shown (not an in-toto DSSE envelope)."),
  );
  return ["ok", `Verified: entry #${index} is in the log (${checkpointLine(cp)}).`];
}

/** A confidential statement: how many values it hides, and a form for the tenant's token or a grant that
 * reveals them, each checked in this browser against the digest the signed statement commits to. */
function confidentialView(index, parsed, hidden) {
  const out = el("div", { class: "confidential", id: "confidential" });
  const token = el("input", { id: "grant-token", type: "password", autocomplete: "off", "aria-label": "grant token" });
  const form = el("form", { class: "reveal" }, el("label", { for: "grant-token" }, "Grant token (atl_…)"), token, el("button", { type: "submit" }, "Reveal"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await fetch(`/api/v1/entries/${index}/disclosures`, { headers: { Authorization: `Bearer ${token.value.trim()}` } });
    const answer = await r.json().catch(() => null);
    if (!r.ok) {
      out.append(el("p", { class: "revealed-failed", role: "alert" }, `Not revealed: ${answer?.detail ?? r.statusText}`));
      return;
    }
    try {
      const { shown, undisclosed } = V.revealDisclosures(parsed, answer?.disclosures ?? []);
      out.append(el("dl", { class: "revealed", id: "revealed" }, shown.flatMap(([path, value]) => [el("dt", {}, path), el("dd", {}, JSON.stringify(value))])),
        el("p", { class: "muted" }, `${shown.length} value${shown.length === 1 ? "" : "s"} revealed, each checked against the digest in the signed statement.`));
      // What the log left out is said, so that what it shows is never taken for all the statement hides.
      if (undisclosed) out.append(el("p", { class: "revealed-partial", role: "alert" }, `${undisclosed} more value${undisclosed === 1 ? " stays" : "s stay"} hidden: the log did not disclose ${undisclosed === 1 ? "it" : "them"} to this grant.`));
    } catch (e) {
      out.append(el("p", { class: "revealed-failed", role: "alert" }, `The log served values the statement does not commit to: ${e.message}`));
    }
  });
  out.append(el("p", {}, `Confidential: ${hidden} value${hidden === 1 ? " is" : "s are"} hidden behind salted digests (shown as _sd and "..." below). The signature, the TDX quote and the log's proofs cover the hidden form. The submitting tenant and holders of its grants can reveal them:`), form);
  return out;
}

function said(body, key) {
  const v = body?.index?.[key];
  return Array.isArray(v) ? v.filter((x) => typeof x === "string") : [];
}

async function logPage(view) {
  const [info, note] = await Promise.all([getJSON("/api/v1/log"), fetch("/checkpoint").then((r) => r.text())]);
  const cp = await checkpoint(note);
  const lines = cp.signatures.map((s) => {
    const mine = s.name === trust.vkey.name && s.id === trust.vkey.id;
    const c = cp.cosignatures.find((x) => x.name === s.name);
    const what = mine ? "the log (verified with your key)" : c ? `witness, cosigned at ${when(c.time)}: ${c.ok ? "verified" : "INVALID"}` : "not verified (no key pinned for it)";
    return el("li", {}, `${s.name}: ${what}`);
  });
  view.replaceChildren(
    el("h1", {}, "The log"),
    el("dl", {},
      el("dt", {}, "Origin"), el("dd", {}, cp.origin),
      el("dt", {}, "Tree size"), el("dd", {}, String(cp.size)),
      el("dt", {}, "Root hash"), el("dd", {}, el("code", {}, V.b64encode(cp.root))),
      el("dt", {}, "TDX platform"), el("dd", {}, info.attestation?.mode ?? "—"),
      el("dt", {}, "Witnesses the log names"), el("dd", {}, (info.witnesses ?? []).join(", ") || "none")),
    el("h2", {}, "Signatures on the checkpoint"),
    el("ul", {}, lines),
    el("h2", {}, "Checkpoint"),
    el("pre", {}, note),
  );
  return ["ok", `Verified: ${checkpointLine(cp)}.`];
}

// ---- routing -----------------------------------------------------------------------------------------------------

function go(url) {
  history.pushState(null, "", url);
  route();
}

document.addEventListener("click", (ev) => {
  const a = ev.target.closest?.("a[data-nav]");
  if (!a || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  go(a.getAttribute("href"));
});
window.addEventListener("popstate", route);

let running = 0; // the newest route: an older, slower one may not overwrite what it shows

async function route() {
  const mine = ++running;
  setStatus("pending", "Verifying…");
  // Each route renders into a view of its own; a newer route's view replaces it, so a stale page writes nowhere.
  const view = el("div");
  main.replaceChildren(view);
  let status;
  try {
    if (!(await loadTrust())) {
      await showKey();
      view.replaceChildren(el("h1", {}, "Pin the log's verifier key"), el("p", {}, "Paste the key you got from the log's operator or your regulator's records above. This page verifies every answer with it; it never takes a key from the server it verifies."));
      status = ["notice", "Nothing verified yet: pin the log's verifier key to begin."];
    } else {
      await showKey();
      const path = location.pathname.replace(/^\/explorer\/?/, "");
      const [page, arg] = [path.split("/")[0], decodeURIComponent(path.split("/").slice(1).join("/"))];
      if (page === "artifact" && arg) status = await artifactPage(view, arg);
      else if (page === "entry" && /^\d+$/.test(arg)) status = await entryPage(view, Number(arg));
      else if (page === "log") status = await logPage(view);
      else if (page === "" || page === "search") status = await searchPage(view);
      else throw new NotFound(`There is no page “${path}” here: the explorer has search, artifact/<digest>, entry/<number> and log.`);
      // Verified, but with a key the reader did not pin: never shown as plainly verified.
      if (trust.note && status[0] === "ok") status = ["incomplete", `${status[1]} ${trust.note}`];
    }
  } catch (e) {
    for (const line of view.querySelectorAll(".pending-line")) line.remove();
    if (e instanceof NotFound) {
      status = ["notice", e.message];
      await showKey();
      view.replaceChildren(el("h1", {}, e.title), el("p", {}, e.message), el("p", {}, el("a", { href: href(""), "data-nav": true }, "Search the log")));
    } else {
      console.error(e);
      const reason = e instanceof V.VerificationFailure ? e.message : `the log's answer could not be read: ${e.message}`;
      // A link whose key is not the pinned one is checked with the link's key: a failure says whose.
      const said = `${reason}${/[.!?]$/.test(reason) ? "" : "."}${trust.note ? ` ${trust.note}` : ""}`;
      status = ["failed", `Failed: ${said}`];
      view.prepend(el("p", { class: "failure" }, `Do not rely on this page: ${said}`));
    }
  }
  if (mine !== running) return;
  setStatus(...status);
  main.focus({ preventScroll: true });
}

route();
