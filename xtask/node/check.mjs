// Smoke test of .tools/node built by `cargo xtask tools`: the IPLD libraries
// import, and @ipld/dag-cbor round-trips a CID link (CBOR tag 42).
import { CarWriter } from '@ipld/car'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'

const cid = CID.create(1, dagCbor.code, await sha256.digest(dagCbor.encode({})))
const back = dagCbor.decode(dagCbor.encode({ link: cid }))
if (!cid.equals(back.link) || typeof CarWriter.create !== 'function') {
  throw new Error('IPLD libraries do not round-trip a CID link')
}
console.log(`node: dag-cbor links work (${cid})`)
