// A js-libp2p gossipsub peer for the interop tests: TCP + Noise (only) + yamux + identify +
// gossipsub with signed messages (StrictSign). Helper: tests/gossipkit.py.
//
//   node gossip_peer.mjs --topic T [--dial ADDR]... [--publish-file F]... [--listen ADDR]...
//
//   --topic T          topic to subscribe to (and publish on); required
//   --dial ADDR        multiaddr ending in /p2p/<peer id> to dial at start-up; repeatable
//   --publish-file F   publish the bytes of file F once some peer is subscribed to T (retried
//                      every 100 ms, up to 10 s, while it reaches no peer); repeatable,
//                      published in the order given, one message per file
//   --listen ADDR      listen address; repeatable; default /ip4/127.0.0.1/tcp/0
//
// stdout: one JSON object per line, per event:
//   {"event":"ready","peerId":"12D3...","addrs":["/ip4/127.0.0.1/tcp/N/p2p/12D3...", ...]}
//   {"event":"dialed","addr":...}                    a --dial succeeded
//   {"event":"subscribed-peer","peerId":...,"topic":T}  a peer announced a subscription to T
//   {"event":"mesh-peer","peerId":...,"topic":T}     a peer joined our mesh for T (graft)
//   {"event":"published","n":i,"file":F,"recipients":k,"cid":...}  i counts from 1
//   {"event":"message","from":<peer id>,"topic":T,"seqno":"<decimal>","data_b64":...,"cid":...}
//   {"event":"error","where":...,"message":...}      a dial or publish failed (we carry on)
// "published" means at least one peer was sent the message (recipients >= 1).
// cid: CIDv1 dag-cbor (0x71), sha2-256 of the data, base32 — by npm multiformats.
// It exits (code 0) on SIGTERM / SIGINT or when stdin closes, so keep stdin open (a pipe).

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

// js-libp2p 3.x calls Promise.withResolvers, which Node 22 has and Node 20 does not.
Promise.withResolvers ??= function () {
  let resolve, reject
  const promise = new this((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

// imported after the polyfill (static imports would run first)
const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { identify } = await import('@libp2p/identify')
const { gossipsub } = await import('@libp2p/gossipsub')
const { multiaddr } = await import('@multiformats/multiaddr')
const { CID } = await import('multiformats/cid')
const { sha256 } = await import('multiformats/hashes/sha2')

const { values: args } = parseArgs({
  options: {
    topic: { type: 'string' },
    dial: { type: 'string', multiple: true, default: [] },
    'publish-file': { type: 'string', multiple: true, default: [] },
    listen: { type: 'string', multiple: true, default: ['/ip4/127.0.0.1/tcp/0'] }
  }
})
if (args.topic == null) throw new Error('--topic is required')
const topic = args.topic

const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + '\n')
const cidOf = async (data) => CID.create(1, 0x71, await sha256.digest(data)).toString()

const node = await createLibp2p({
  addresses: { listen: args.listen },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    pubsub: gossipsub({ globalSignaturePolicy: 'StrictSign', emitSelf: false })
  }
})
const pubsub = node.services.pubsub

let stopping = false
async function stop () {
  if (stopping) return
  stopping = true
  await node.stop().catch(() => {})
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
process.stdin.on('end', stop)
process.stdin.on('error', stop)
process.stdin.resume()

pubsub.addEventListener('message', async ({ detail: msg }) => {
  if (msg.topic !== topic) return
  emit('message', {
    from: msg.type === 'signed' ? msg.from.toString() : null,
    topic: msg.topic,
    seqno: msg.type === 'signed' ? msg.sequenceNumber.toString() : null,
    data_b64: Buffer.from(msg.data).toString('base64'),
    cid: await cidOf(msg.data)
  })
})
pubsub.addEventListener('gossipsub:graft', ({ detail }) => {
  if (detail.topic !== topic) return
  emit('mesh-peer', { peerId: detail.peerId, topic })
  startPublishing()
})

// Publish the files, in order, once a peer subscribes to the topic. Right after the
// subscription arrives js may have no stream to that peer yet and publish() then reaches
// nobody (recipients 0): such a message went nowhere, so it is retried until it reaches a peer.
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
let publishing = false
async function publishAll () {
  publishing = true
  let n = 0
  for (const file of args['publish-file']) {
    const data = readFileSync(file)
    let recipients = 0
    let why = 'no peer received it in 10 s'
    for (let attempt = 0; recipients === 0 && attempt < 100; attempt++) {
      if (attempt > 0) await sleep(100)
      try {
        recipients = (await pubsub.publish(topic, data)).recipients.length
      } catch (err) {
        why = String(err?.message ?? err)
      }
    }
    if (recipients > 0) emit('published', { n: ++n, file, recipients, cid: await cidOf(data) })
    else emit('error', { where: `publish ${file}`, message: why })
  }
}
function startPublishing () {
  if (!publishing && args['publish-file'].length > 0) publishAll()
}
pubsub.addEventListener('subscription-change', ({ detail }) => {
  for (const sub of detail.subscriptions) {
    if (sub.topic !== topic || !sub.subscribe) continue
    emit('subscribed-peer', { peerId: detail.peerId.toString(), topic })
    startPublishing()
  }
})

pubsub.subscribe(topic)
emit('ready', { peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })

for (const addr of args.dial) {
  try {
    await node.dial(multiaddr(addr))
    emit('dialed', { addr })
  } catch (err) {
    emit('error', { where: `dial ${addr}`, message: String(err?.message ?? err) })
  }
}
