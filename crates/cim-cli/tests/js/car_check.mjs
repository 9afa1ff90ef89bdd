// Independent check of cim's CAR archives with @ipld/car, @ipld/dag-cbor and
// multiformats (copied into .tools/node at test time: ESM imports ignore NODE_PATH).
//
//   node car_check.mjs read FILE          -> JSON: roots, every block (hash ok?
//                                            canonical?), the manifest, a walk from the root
//   node car_check.mjs repack FILE OUT     -> a new CAR written by @ipld/car: the same
//                                            events and objects, blocks in reverse order,
//                                            and a manifest built here from docs/spec/car-export.md
import fs from 'node:fs'
import { CarReader, CarWriter } from '@ipld/car'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'

const [mode, input, output] = process.argv.slice(2)
const reader = await CarReader.fromBytes(fs.readFileSync(input))
const roots = await reader.getRoots()
const blocks = []
for await (const { cid, bytes } of reader.blocks()) {
  const digest = await sha256.digest(bytes)
  const hashOk = cid.multihash.code === sha256.code && equal(digest.digest, cid.multihash.digest)
  const value = cid.code === dagCbor.code ? dagCbor.decode(bytes) : null
  const canonical = value === null || equal(dagCbor.encode(value), bytes)
  blocks.push({ cid, bytes, value, hashOk, canonical })
}

function equal (a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

function links (value, found = []) {
  const cid = CID.asCID(value)
  if (cid) found.push(cid)
  else if (Array.isArray(value)) value.forEach(v => links(v, found))
  else if (value && typeof value === 'object' && !(value instanceof Uint8Array)) Object.values(value).forEach(v => links(v, found))
  return found
}

if (mode === 'read') {
  const byCid = new Map(blocks.map(b => [b.cid.toString(), b]))
  const reached = new Set()
  const dangling = []
  const queue = roots.map(String)
  while (queue.length) {
    const cid = queue.pop()
    if (reached.has(cid)) continue
    const block = byCid.get(cid)
    if (!block) { dangling.push(cid); continue }
    reached.add(cid)
    if (block.value !== null) links(block.value).forEach(l => queue.push(l.toString()))
  }
  const manifest = byCid.get(roots[0].toString())?.value
  console.log(JSON.stringify({
    roots: roots.map(String),
    blocks: blocks.map(b => ({ cid: b.cid.toString(), codec: b.cid.code, hash_ok: b.hashOk, canonical: b.canonical })),
    manifest_format: manifest?.format,
    manifest_heads: (manifest?.heads ?? []).map(h => ({ aggregate: h.aggregate, version: h.version, head: h.head.toString() })),
    events: blocks.filter(b => b.value?.format === 'cim-event-v1').map(b => b.cid.toString()),
    reached: reached.size,
    unreached: blocks.map(b => b.cid.toString()).filter(c => !reached.has(c)),
    dangling
  }))
} else if (mode === 'repack') {
  const old = blocks.find(b => b.cid.equals(roots[0])).value
  const events = blocks.filter(b => b.value?.format === 'cim-event-v1')
  const objects = blocks.filter(b => !b.cid.equals(roots[0]) && b.value?.format !== 'cim-event-v1')
  const heads = new Map()
  for (const { cid, value } of events) {
    const aggregate = `${value.aggregate_type}/${value.aggregate_id}`
    if (!heads.has(aggregate) || heads.get(aggregate).version < value.version) heads.set(aggregate, { aggregate, version: value.version, head: cid })
  }
  const manifest = {
    format: 'cim-export-v1',
    created_us: Date.now() * 1000,
    namespace: old.namespace,
    selection: { aggregates: null, since_us: null, until_us: null },
    events: events.length,
    heads: [...heads.values()].sort((a, b) => (a.aggregate < b.aggregate ? -1 : a.aggregate > b.aggregate ? 1 : 0)),
    objects: objects.map(b => b.cid).sort((a, b) => (a.toString() < b.toString() ? -1 : 1)),
    names: []
  }
  const bytes = dagCbor.encode(manifest)
  const root = CID.create(1, dagCbor.code, await sha256.digest(bytes))
  const { writer, out } = CarWriter.create([root])
  const chunks = []
  const done = (async () => { for await (const chunk of out) chunks.push(chunk) })()
  await writer.put({ cid: root, bytes })
  for (const block of [...events, ...objects].reverse()) await writer.put({ cid: block.cid, bytes: block.bytes })
  await writer.close()
  await done
  fs.writeFileSync(output, Buffer.concat(chunks))
  console.log(JSON.stringify({ root: root.toString(), blocks: events.length + objects.length + 1 }))
} else {
  throw new Error(`unknown mode ${mode}`)
}
