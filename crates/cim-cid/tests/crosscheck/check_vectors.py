#!/usr/bin/env python3
"""Check CIM's golden vectors with an independent IPLD implementation.

Uses only the PyPI packages `dag-cbor` and `multiformats` (no CIM code): for
each vector in the JSON file given as the only argument (default:
../vectors/golden.json), it

1. turns the DAG-JSON `input` into IPLD data (links `{"/": "<cid>"}` and
   bytes `{"/": {"bytes": "<base64>"}}` converted here, by hand);
2. for `event` and `object` vectors, encodes it with `dag_cbor.encode` and
   compares the bytes with `bytes_hex`, and decodes `bytes_hex` with
   `dag_cbor.decode` and compares with the input;
   for `raw` vectors, compares the blob with `bytes_hex`;
3. computes the CIDv1 (sha2-256; dag-cbor, or raw for blobs) with
   `multiformats`, and again by hand (hashlib and base32), and compares both
   with `cid`.

Prints one line per vector and exits 1 if any vector disagrees.
"""

import base64
import hashlib
import json
import math
import sys
from pathlib import Path

try:
    import dag_cbor
    from multiformats import CID, multihash
except ImportError as missing:
    sys.exit(f"{missing}: install the PyPI packages dag-cbor and multiformats (`cargo xtask tools` does)")

CODEC = {"event": "dag-cbor", "object": "dag-cbor", "raw": "raw"}


def from_dag_json(value, where="input"):
    """DAG-JSON (already parsed by `json`) to the data model of `dag_cbor`."""
    if isinstance(value, dict):
        if "/" in value:
            if len(value) != 1:
                raise ValueError(f"{where}: a map with key '/' must have no other key")
            inner = value["/"]
            if isinstance(inner, str):
                return CID.decode(inner)
            if isinstance(inner, dict) and list(inner) == ["bytes"]:
                text = inner["bytes"]
                return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
            raise ValueError(f"{where}: malformed DAG-JSON link or bytes: {inner!r}")
        return {k: from_dag_json(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [from_dag_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: non-finite float")
    # str, int (arbitrary precision), float, bool and None map directly:
    # Python's json keeps `2.0` a float and `2` an int, as DAG-JSON requires.
    return value


def same(a, b):
    """Structural equality that also tells floats from ints (2.0 != 2)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return math.copysign(1.0, a) == math.copysign(1.0, b) and a == b
    return a == b


def check(vector):
    """Returns a list of problems with one vector (empty when it agrees)."""
    problems = []
    kind = vector["kind"]
    expected = bytes.fromhex(vector["bytes_hex"])
    data = from_dag_json(vector["input"])
    if kind == "raw":
        if not isinstance(data, bytes):
            return ["a raw vector's input must be DAG-JSON bytes"]
        block = data
    else:
        block = dag_cbor.encode(data)
        try:
            decoded = dag_cbor.decode(expected)
            if not same(decoded, data):
                problems.append("bytes_hex decodes to data other than the input")
        except Exception as error:  # noqa: BLE001 - report any decoder failure
            problems.append(f"dag_cbor cannot decode bytes_hex: {error}")
    if block != expected:
        problems.append(f"bytes differ:\n    expected {expected.hex()}\n    dag-cbor {block.hex()}")
    cid = CID("base32", 1, CODEC[kind], multihash.digest(block, "sha2-256"))
    if str(cid) != vector["cid"]:
        problems.append(f"CID differs: expected {vector['cid']}, multiformats {cid}")
    # The same CID by hand, as docs/spec/event-envelope.md describes it.
    binary = bytes([0x01, 0x55 if kind == "raw" else 0x71, 0x12, 0x20]) + hashlib.sha256(block).digest()
    by_hand = "b" + base64.b32encode(binary).decode().lower().rstrip("=")
    if by_hand != vector["cid"]:
        problems.append(f"CID differs: expected {vector['cid']}, by hand {by_hand}")
    return problems


def main():
    here = Path(__file__).resolve().parent
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else here.parent / "vectors" / "golden.json"
    vectors = json.loads(path.read_text(encoding="utf-8"))["vectors"]
    if not vectors:
        print(f"{path}: no vectors")
        return 1
    failed = 0
    for vector in vectors:
        try:
            problems = check(vector)
        except Exception as error:  # noqa: BLE001 - a malformed vector is a failure, not a crash
            problems = [f"cannot check: {type(error).__name__}: {error}"]
        status = "ok" if not problems else "MISMATCH"
        print(f"{status:8} {vector['name']} {vector['cid']}")
        for problem in problems:
            print(f"    {problem}")
        failed += bool(problems)
    print(f"{len(vectors) - failed} agree, {failed} disagree (dag-cbor {dag_cbor.__version__}, multiformats)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
