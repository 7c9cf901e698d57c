// The npm side of tests/core/test_ipld_npm_interop.py: encodes values with @ipld/dag-cbor and
// names blocks with multiformats (CIDv1, sha2-256, base32), so the Python test can compare them
// with milagro_node.core.ipld byte for byte.
//
// stdin:  {"values": [V, ...], "raw": ["<base64>", ...], "blocks": ["<base64>", ...]}
//         ("blocks" is optional: encoded DAG-CBOR blocks, e.g. the test vectors) where V is a
//         tagged value:
//           ["null"] ["bool", b] ["int", "<decimal>"] ["str", s] ["bytes", "<base64>"]
//           ["list", [V, ...]] ["map", [["key", V], ...]] ["link", "<CID string>"]
//         (ints as strings keep precision beyond 2**53; maps as pairs keep the caller's order)
// stdout: {"values": [{"hex", "cid", "roundtrip"}, ...], "raw": [{"cid"}, ...],
//          "blocks": [{"cid", "roundtrip", "error"}, ...]}
//         roundtrip: decoding "hex" (or the block) with @ipld/dag-cbor and encoding again gives
//         the same bytes; a block's cid is its dag-cbor CID; error: why @ipld/dag-cbor could
//         not decode the block (null if it could).
import * as dagCbor from '@ipld/dag-cbor'
import { base32 } from 'multiformats/bases/base32'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'

const fromBase64 = (text) => new Uint8Array(Buffer.from(text, 'base64'))
const toHex = (bytes) => Buffer.from(bytes).toString('hex')

function toValue ([kind, payload]) {
  switch (kind) {
    case 'null': return null
    case 'bool': return payload
    case 'int': {
      const n = Number(payload)
      return Number.isSafeInteger(n) ? n : BigInt(payload)
    }
    case 'str': return payload
    case 'bytes': return fromBase64(payload)
    case 'list': return payload.map(toValue)
    case 'map': return Object.fromEntries(payload.map(([key, value]) => [key, toValue(value)]))
    case 'link': return CID.parse(payload)
    default: throw new Error(`unknown value kind ${kind}`)
  }
}

async function cidOf (code, bytes) {
  return CID.create(1, code, await sha256.digest(bytes)).toString(base32)
}

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const cases = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const values = []
for (const tagged of cases.values) {
  const bytes = dagCbor.encode(toValue(tagged))
  const again = dagCbor.encode(dagCbor.decode(bytes))
  values.push({ hex: toHex(bytes), cid: await cidOf(dagCbor.code, bytes), roundtrip: toHex(again) === toHex(bytes) })
}
const blocks = []
for (const text of cases.raw) blocks.push({ cid: await cidOf(raw.code, fromBase64(text)) })

const dagCborBlocks = []
for (const text of cases.blocks ?? []) {
  const bytes = fromBase64(text)
  let roundtrip = false
  let error = null
  try {
    roundtrip = toHex(dagCbor.encode(dagCbor.decode(bytes))) === toHex(bytes)
  } catch (err) {
    error = String(err?.message ?? err)
  }
  dagCborBlocks.push({ cid: await cidOf(dagCbor.code, bytes), roundtrip, error })
}

process.stdout.write(JSON.stringify({ values, raw: blocks, blocks: dagCborBlocks }) + '\n')
