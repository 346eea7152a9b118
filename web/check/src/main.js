// The /check page: is my pass on the committee's exposure list? Answered on the phone.
//
// At load the page fetches two public, signed documents from beside itself: the root's
// manifest (checked with the root key the page was built with) and the committee's exposure
// list (checked with a member key that manifest names). After that it makes no request at
// all: the pass, read by the camera, from a photo or pasted, is decoded and checked here
// (base45, zlib, COSE_Sign1 with Ed25519, the issuer key from the manifest), its keyed hash
// looked up in the list, and the advice shown in Khmer and English. Nothing about the pass
// leaves the phone.
//
// Libraries (npm, bundled by esbuild): zxing-wasm (ZXing-C++, the kiosk's decoder, as
// WebAssembly), cborg, @digitalbazaar/base45 (RFC 9285), @noble/ed25519 and @noble/hashes.

import { decode as b45decode } from "@digitalbazaar/base45";
import * as ed from "@noble/ed25519";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256, sha512 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { decode as cborDecode, encode as cborEncode } from "cborg";
import { prepareZXingModule, readBarcodes } from "zxing-wasm/reader";

ed.hashes.sha512 = sha512;

const MANIFEST_KIND = "venue-kiosk manifest v1";
const LIST_KIND = "venue-kiosk exposure list v1";
const PREFIX = "VC1:";
const CLOCK_SKEW_S = 300;
// COSE_Sign1 is tag 18; maps keep their integer keys (Map), as the CWT claims need.
const COSE_TAGS = [];
COSE_TAGS[18] = (inner) => ({ tag: 18, value: inner });
const cbor = { decode: (bytes) => cborDecode(bytes, { useMaps: true, tags: COSE_TAGS }) };

const $ = (id) => document.getElementById(id);
const config = JSON.parse($("config").textContent);
const state = { issuers: new Map(), list: null, ready: false };

function fromB64(text) {
  const bin = atob(text);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// A signed document (kiosk/core/signed.py): the signature covers kind + NUL + payload bytes.
function openDoc(text, kind, keys) {
  const outer = JSON.parse(text);
  if (outer.format !== kind) throw new Error(`not a ${kind}`);
  const body = fromB64(outer.payload);
  const signature = fromB64(outer.signature);
  const message = concat(utf8ToBytes(kind), new Uint8Array([0]), body);
  for (const [name, key] of keys) {
    if (ed.verify(signature, message, key)) {
      return { payload: JSON.parse(new TextDecoder().decode(body)), signer: name };
    }
  }
  throw new Error(`${kind}: not signed by a key trusted for it`);
}

function fingerprintOf(key) {
  return bytesToHex(sha256(key)).slice(0, 16);
}

// The root of each manifest version: the pinned one for 0.., each successor from the version
// after the manifest that named it.
function rootFor(roots, version) {
  let found = roots[0][0];
  for (const [key, first] of roots) if (first <= version) found = key;
  return found;
}

// A manifest checked against the root of its own version under the history.
function openManifest(text, roots) {
  const outer = JSON.parse(text);
  const claimed = JSON.parse(new TextDecoder().decode(fromB64(outer.payload))).version;
  const payload = openDoc(text, MANIFEST_KIND, [["root", rootFor(roots, claimed)]]).payload;
  return payload;
}

// The hand-overs (succession manifests, in any order), each verified under the history so far;
// one that does not verify is skipped (a hand-over counts only when the root before signed it).
function followSuccession(roots, docs) {
  const sorted = docs
    .map((doc) => {
      try {
        return [JSON.parse(new TextDecoder().decode(fromB64(JSON.parse(doc).payload))).version, doc];
      } catch (e) {
        return [-1, doc];
      }
    })
    .sort((a, b) => a[0] - b[0]);
  for (const [, doc] of sorted) {
    let m;
    try {
      m = openManifest(doc, roots);
    } catch (e) {
      continue;
    }
    if (!m.next_root) continue;
    const named = fromB64(m.next_root);
    if (roots.some(([key]) => bytesToHex(key) === bytesToHex(named))) continue;
    if (m.version + 1 <= roots[roots.length - 1][1]) continue;
    roots = [...roots, [named, m.version + 1]];
  }
  return roots;
}

async function fetchJson(name, otherwise) {
  const response = await fetch(name, { cache: "no-cache" });
  if (response.status === 404) return otherwise;
  if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
  return response.json();
}

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  const out = new Uint8Array(await new Response(stream).arrayBuffer());
  if (out.length > 2048) throw new Error("too large");
  return out;
}

function keyId(raw) {
  return bytesToHex(sha256(raw).slice(0, 8));
}

// The pass format (kiosk/core/passes.py): VC1: base45(zlib(COSE_Sign1(CWT claims))).
async function verifyPass(text) {
  if (!text.startsWith(PREFIX)) throw new Error("not-a-pass");
  let cose;
  try {
    cose = cbor.decode(await inflate(b45decode(text.slice(PREFIX.length))));
  } catch {
    throw new Error("unreadable");
  }
  const parts = cose && cose.tag === 18 ? cose.value : cose;
  if (!Array.isArray(parts) || parts.length !== 4) throw new Error("unreadable");
  const [protectedBytes, , payload, signature] = parts;
  const header = cbor.decode(protectedBytes);
  const kid = bytesToHex(header.get(4));
  if (header.get(1) !== -8 || !state.issuers.has(kid)) throw new Error("unknown-issuer");
  const sigStructure = cborEncode(["Signature1", protectedBytes, new Uint8Array(0), payload]);
  if (!ed.verify(signature, sigStructure, state.issuers.get(kid))) throw new Error("forged");
  const claims = cbor.decode(payload);
  const passId = claims.get(-65537);
  const exp = claims.get(4);
  const iat = claims.get(6);
  const now = Date.now() / 1000;
  if (!(passId instanceof Uint8Array) || passId.length !== 16) throw new Error("unreadable");
  if (now - CLOCK_SKEW_S > exp) throw new Error("expired");
  if (now + CLOCK_SKEW_S < iat) throw new Error("not-yet-valid");
  return { passId, expires: exp };
}

function passRef(passId) {
  return bytesToHex(sha256(concat(utf8ToBytes("venue-kiosk risk-list v1\0"), passId))).slice(0, 32);
}

function lookUp(passId) {
  const list = state.list;
  const h = bytesToHex(hmac(sha256, fromB64(list.salt), utf8ToBytes(passRef(passId)))).slice(0, 32);
  const now = Date.now() / 1000;
  for (const [entryHash, level, advice, expires] of list.entries) {
    if (entryHash === h && expires > now) return { level, advice };
  }
  return null;
}

function show(kind, km, en, extra = "") {
  const box = $("result");
  box.dataset.outcome = kind;
  box.className = `result ${kind}`;
  $("result-km").textContent = km;
  $("result-en").textContent = en;
  $("result-extra").textContent = extra;
  box.hidden = false;
}

const REFUSED = {
  "not-a-pass": ["នេះមិនមែនជាប័ណ្ណចូលទេ។", "This is not a pass."],
  unreadable: ["មិនអាចអានប័ណ្ណនេះបានទេ។", "This pass cannot be read."],
  "unknown-issuer": ["ប័ណ្ណនេះមិនត្រូវបានចេញដោយអាជ្ញាធរទេ។", "This pass was not issued by the health authority."],
  forged: ["ប័ណ្ណនេះត្រូវបានកែប្រែ ឬក្លែងបន្លំ។", "This pass has been altered or forged."],
  expired: ["ប័ណ្ណនេះផុតកំណត់ហើយ។ សូមស្នើសុំប័ណ្ណថ្មី។", "This pass has expired: ask for a new one."],
  "not-yet-valid": ["ប័ណ្ណនេះមិនទាន់មានសុពលភាពទេ។", "This pass is not valid yet."],
};

// What each level means at the door, as the kiosks apply it: 3, the highest, is refused
// entry everywhere (its own colour and symbol here, as on the kiosk's screen).
const LEVEL_TEXT = {
  1: "Level 1: venues admit you; please get tested.",
  2: "Level 2: venues admit you; please get tested today.",
  3: "Level 3, the highest: every venue's kiosk refuses entry with this pass for now.",
};

async function check(text) {
  if (!state.ready) return;
  let pass;
  try {
    pass = await verifyPass(text.trim());
  } catch (e) {
    const [km, en] = REFUSED[e.message] || REFUSED.unreadable;
    show("refused", km, en, "Not checked: only a valid pass can be checked.");
    return;
  }
  const hit = lookUp(pass.passId);
  if (hit) {
    const [km, en] = config.advice[hit.advice] || config.advice["get-tested"];
    show(`exposed level-${hit.level}`, km, en, LEVEL_TEXT[hit.level] || `Level ${hit.level}.`);
  } else {
    show(
      "clear",
      "មិនមានការប៉ះពាល់ដែលបានដឹងទេ។",
      "No exposure known for this pass.",
      "The list is checked here, on your phone: your pass was not sent anywhere.",
    );
  }
}

async function fromImage(source) {
  const results = await readBarcodes(source, { formats: ["QRCode"], tryHarder: true, maxNumberOfSymbols: 1 });
  return results.length ? results[0].text : null;
}

let scanning = false;
async function startCamera() {
  const video = $("video");
  try {
    const media = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    video.srcObject = media;
    await video.play();
  } catch {
    show("refused", "មិនអាចបើកកាមេរ៉ាបានទេ។", "The camera cannot be opened: paste the pass or choose a photo.");
    return;
  }
  video.hidden = false;
  scanning = true;
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const tick = async () => {
    if (!scanning) return;
    if (video.videoWidth) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      ctx.drawImage(video, 0, 0);
      const text = await fromImage(ctx.getImageData(0, 0, canvas.width, canvas.height));
      if (text) {
        scanning = false;
        video.srcObject.getTracks().forEach((t) => t.stop());
        video.hidden = true;
        await check(text);
        return;
      }
    }
    setTimeout(tick, 150);
  };
  tick();
}

async function load() {
  prepareZXingModule({
    overrides: {
      locateFile: (path, prefix) =>
        path.endsWith(".wasm") ? new URL("zxing_reader.wasm", document.baseURI).href : prefix + path,
    },
    fireImmediately: true,
  });
  // Whose page is this? The root's fingerprint (SHA-256 of its key, 16 hex digits) is printed
  // on every pass card and in the card's link (#root=...): a page built with another root
  // (a server that swapped its root.pub) says so, and checks nothing. The page follows the
  // root's succession as a kiosk does (kiosk/core/roots.py): each hand-over is a manifest the
  // root before signed, naming its successor for every later version; a card printed under
  // any root of that history is this authority's.
  const anchor = fromB64(config.root);
  const expected = (new URLSearchParams(location.hash.slice(1)).get("root") || "").toLowerCase();
  let roots = [[anchor, 0]]; // [key, first manifest version it signs], oldest first
  let manifest;
  try {
    roots = followSuccession(roots, await fetchJson("succession.json", []));
  } catch (e) {
    roots = [[anchor, 0]]; // an unreadable history: the pinned root alone
  }
  const prints = roots.map(([key]) => fingerprintOf(key));
  const latest = prints[prints.length - 1];
  $("root-fingerprint").textContent = prints.includes(expected) ? expected : latest;
  if (expected && !prints.includes(expected)) {
    $("status").textContent =
      `This page is not your health authority's: your card names the authority ${expected}, this page ` +
      `${latest}. Nothing is checked here. ទំព័រនេះមិនមែនជារបស់អាជ្ញាធររបស់អ្នកទេ។`;
    $("status").dataset.state = "failed";
    return;
  }
  try {
    const manifestText = await (await fetch("manifest.json", { cache: "no-cache" })).text();
    manifest = openManifest(manifestText, roots);
    for (const k of manifest.issuer_keys) {
      const raw = fromB64(k);
      state.issuers.set(keyId(raw), raw);
    }
    const members = manifest.members.map((m) => [m.id, fromB64(m.public)]);
    const listText = await (await fetch("exposures.json", { cache: "no-cache" })).text();
    const signed = openDoc(listText, LIST_KIND, members);
    if (signed.payload.member !== signed.signer) throw new Error("list signed by another member than it names");
    state.list = signed.payload;
  } catch (e) {
    $("status").textContent =
      "The exposure list could not be loaded or is not signed by the committee: nothing can be checked now. " +
      "ចុះបញ្ជីមិនអាចផ្ទុកបានទេ។";
    $("status").dataset.state = "failed";
    return;
  }
  const issued = new Date(state.list.issued_at * 1000).toISOString().slice(0, 16).replace("T", " ");
  const stale = Date.now() / 1000 > state.list.valid_until;
  $("status").textContent =
    `Exposure list of ${issued} UTC (${state.list.entries.length} entries), signed by the committee` +
    (stale ? ": it may be out of date." : ".");
  $("status").dataset.state = stale ? "stale" : "ready";
  state.ready = true;
  for (const el of document.querySelectorAll("[data-needs-list]")) el.disabled = false;
}

$("check-text").addEventListener("click", () => check($("pass-text").value));
$("camera").addEventListener("click", startCamera);
$("photo").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  const text = await fromImage(file);
  if (text) await check(text);
  else show("refused", "រកមិនឃើញកូដ QR ក្នុងរូបភាពនេះទេ។", "No QR code found in this picture: try a sharper photo.");
});
load();
// Kept on the phone for next time, the network or not (sw.js); a browser without service
// workers (or a page opened from a file) simply fetches again.
if ("serviceWorker" in navigator) navigator.serviceWorker.register("sw.js").catch(() => {});
