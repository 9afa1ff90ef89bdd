"""Smoke test of the venv built by `cargo xtask tools`: the IPLD libraries
import, and dag-cbor round-trips a CID link (CBOR tag 42)."""

import dag_cbor
from multiformats import CID, multihash

cid = CID("base32", 1, "dag-cbor", multihash.digest(dag_cbor.encode({}), "sha2-256"))
assert dag_cbor.decode(dag_cbor.encode({"link": cid}))["link"] == cid
print(f"python: dag-cbor links work ({cid})")
