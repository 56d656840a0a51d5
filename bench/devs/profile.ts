import * as ds from "@devicescript/core"
import {
    MQTTClient,
    FrameDecoder,
    OutMessage,
    Session,
    Signal,
    checkTopicName,
    decodePacket,
    decodePacketAt,
    decodeUtf8,
    encodePublish,
    packetName,
} from "../../src/index"
import { finish } from "./common"
import {
    LoopbackBroker,
    loopbackEnqueueOnly,
    loopbackPipelined,
    loopbackQos0,
} from "./loopback"

export interface ProfileParams {
    port: number
    tag: string
    n: number
    payloadSize: number
    /** the bench's pipelined window (maxInflight), maxQueued and drain limit */
    pipeWindow: number
    maxQueued: number
    drainTo: number
}

/** A loopback step: µs per message and socket writes per 1,000 messages. */
function reportLoop(name: string, n: number, r: number[]) {
    console.log(`PROF ${name} n=${n} ms=${r[0]} us=${Math.round((r[0] * 1000) / n)}`)
    console.log(`PROFINFO ${name} writes per 1000: ${Math.round((r[1] * 1000) / n)}`)
}

let sink = 0
let stopWaiters = false
let wakes = 0
let written = 0

/** A fiber that waits on `sig` again and again, as a publisher in `settled()` does. */
async function waiter(sig: Signal) {
    while (!stopWaiters) {
        await sig.wait(1000)
        wakes++
    }
}

/** Times notify() + one scheduler turn with `k` fibers waiting on the signal. */
async function herd(k: number, n: number) {
    const sig = new Signal()
    stopWaiters = false
    wakes = 0
    for (let i = 0; i < k; ++i) waiter.start(sig)
    await ds.sleep(5)
    const t0 = ds.millis()
    for (let i = 0; i < n; ++i) {
        sig.notify()
        await ds.sleep(0)
    }
    report(`signal-notify-${k}-waiters`, n, t0)
    console.log(`PROFINFO signal-notify-${k}-waiters wakes per notify: ${Math.round((wakes * 10) / n) / 10}`)
    stopWaiters = true
    sig.notify()
    await ds.sleep(5)
}

type DsSockets = typeof ds & { _socketWrite(buf: Buffer): number }

let lastTopic = ""
let header: Buffer = null

/**
 * What a lean QoS 0 publish could cost: one call, the topic's header
 * encoded once and cached, one allocation, two blits, the native write,
 * a yield counter. (A prototype for the README's suggestions; it skips
 * the checks the real client must keep, except the cached topic check.)
 */
async function leanPublish(topic: string, msg: Buffer) {
    if (topic !== lastTopic) {
        checkTopicName(topic)
        const n = topic.byteLength
        header = Buffer.alloc(2 + n)
        header[0] = n >> 8
        header[1] = n & 0xff
        header.blitAt(2, topic, 0, n)
        lastTopic = topic
    }
    const remaining = header.length + msg.length
    if (remaining > 127) throw new RangeError("prototype: short packets only")
    const b = Buffer.alloc(2 + remaining)
    b[0] = 0x30
    b[1] = remaining
    b.blitAt(2, header, 0, header.length)
    b.blitAt(2 + header.length, msg, 0, msg.length)
    if ((ds as DsSockets)._socketWrite(b) !== 0) throw new Error("write failed")
    if (++written % 32 === 0) await ds.sleep(0)
}

let staged: Buffer = null
let stagedLen = 0

/** The same, coalescing packets into one 1 KB socket write. */
async function coalescedPublish(topic: string, msg: Buffer) {
    if (!staged) staged = Buffer.alloc(1024)
    if (topic !== lastTopic) await leanPublish(topic, Buffer.alloc(0)) // caches the header
    const remaining = header.length + msg.length
    if (stagedLen + 2 + remaining > staged.length) {
        if ((ds as DsSockets)._socketWrite(staged.slice(0, stagedLen)) !== 0) throw new Error("write failed")
        stagedLen = 0
    }
    staged[stagedLen] = 0x30
    staged[stagedLen + 1] = remaining
    staged.blitAt(stagedLen + 2, header, 0, header.length)
    staged.blitAt(stagedLen + 2 + header.length, msg, 0, msg.length)
    stagedLen += 2 + remaining
    if (++written % 32 === 0) await ds.sleep(0)
}

function noop(i: number) {
    return i & 1
}

function report(name: string, n: number, t0: number) {
    const ms = ds.millis() - t0
    console.log(`PROF ${name} n=${n} ms=${ms} us=${Math.round((ms * 1000) / n)}`)
}

/**
 * Where the time of one QoS 0 publish goes: each step of the hot path
 * timed alone over `n` iterations (a sleep(0) every 64, as the ceiling).
 */
export async function main(p: ProfileParams) {
    const topic = `bench/${p.tag}/prof`
    const msg = Buffer.alloc(p.payloadSize)
    const n = p.n
    const c = new MQTTClient(`bench-prof-${p.tag}`, "127.0.0.1", p.port, { reconn: false })
    await c.connect()
    const a = c as any
    const transport = a.transport
    const packet = encodePublish(topic, msg, 0, false, false, 0)
    let t0 = 0

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) if (i % 64 === 0) await ds.sleep(0)
    report("empty-loop", n, t0)

    t0 = ds.millis()
    for (let i = 1; i <= 200; ++i) await ds.sleep(0)
    report("sleep0", 200, t0)

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        sink += ds.millis()
        if (i % 64 === 0) await ds.sleep(0)
    }
    report("millis", n, t0)

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        sink += Buffer.alloc(packet.length).length
        if (i % 64 === 0) await ds.sleep(0)
    }
    report("alloc-packet", n, t0)

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        sink += topic.byteLength + topic.indexOf("\u0000")
        if (i % 64 === 0) await ds.sleep(0)
    }
    report("topic-bytelength", n, t0)

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        sink += noop(i)
        if (i % 64 === 0) await ds.sleep(0)
    }
    report("call-noop", n, t0)

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        sink += topic.indexOf("+")
        if (i % 64 === 0) await ds.sleep(0)
    }
    report("indexOf-plus", n, t0)

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        checkTopicName(topic)
        if (i % 64 === 0) await ds.sleep(0)
    }
    report("checkTopicName", n, t0)

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        const b = Buffer.alloc(packet.length)
        b.blitAt(4, topic, 0, topic.length)
        b.blitAt(4 + topic.length, msg, 0, msg.length)
        sink += b.length
        if (i % 64 === 0) await ds.sleep(0)
    }
    report("alloc+blit", n, t0)

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        sink += encodePublish(topic, msg, 0, false, false, 0).length
        if (i % 64 === 0) await ds.sleep(0)
    }
    report("encodePublish", n, t0)

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        await transport.write(packet)
        if (i % 64 === 0) await ds.sleep(0)
    }
    report("transport.write", n, t0)

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        await transport.write(encodePublish(topic, msg, 0, false, false, 0))
        if (i % 64 === 0) await ds.sleep(0)
    }
    report("encode+write", n, t0)

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) await a.output(packet)
    report("client.output", n, t0)

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) await c.publish(topic, msg, false, 0)
    report("client.publish-q0", n, t0)

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) await leanPublish(topic, msg)
    report("lean-publish-q0", n, t0)

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) await coalescedPublish(topic, msg)
    if (stagedLen > 0) (ds as DsSockets)._socketWrite(staged.slice(0, stagedLen))
    stagedLen = 0
    report("coalesced-publish-q0", n, t0)

    // --- waking publishers: Signal.notify with 1 and with 8 fibers waiting
    await herd(1, Math.idiv(n, 4))
    await herd(8, Math.idiv(n, 4))

    // --- the receiving side
    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        sink += packetName(3).length
        if (i % 64 === 0) await ds.sleep(0)
    }
    report("packetName", n, t0)

    const body = packet.slice(2, packet.length)
    const tlen = topic.length
    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        sink += body.slice(2, 2 + tlen).toString("utf-8").length
        if (i % 64 === 0) await ds.sleep(0)
    }
    report("slice+toString-topic", n, t0)

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        sink += topic.indexOf("\ufffd")
        if (i % 64 === 0) await ds.sleep(0)
    }
    report("indexOf-fffd", n, t0)

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        sink += decodeUtf8(body, 2, 2 + tlen).length
        if (i % 64 === 0) await ds.sleep(0)
    }
    report("decodeUtf8-topic", n, t0)

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        sink += body.slice(2 + tlen, body.length).length
        if (i % 64 === 0) await ds.sleep(0)
    }
    report("slice-payload", n, t0)

    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        sink += decodePacket(packet[0], body).type
        if (i % 64 === 0) await ds.sleep(0)
    }
    report("decodePacket-publish", n, t0)

    // 32 PUBLISH packets in one chunk, as the socket hands them over
    const parts: Buffer[] = []
    for (let i = 0; i < 32; ++i) parts.push(packet)
    const chunk = Buffer.concat(...parts)
    const fd = new FrameDecoder(20480, decodePacketAt)
    const rounds = Math.idiv(n, 32)
    t0 = ds.millis()
    for (let k = 0; k < rounds; ++k) {
        fd.push(chunk)
        for (let j = 0; j < 32; ++j) {
            sink += fd.next().type
            if (j % 16 === 15) await ds.sleep(0)
        }
    }
    report("framer-next-publish", rounds * 32, t0)

    // --- the session of a QoS 1 message: startFlight + onPuback, with 7
    // others in flight (a window of 8)
    const s = new Session()
    const p1 = encodePublish(topic, msg, 1, false, false, 1)
    for (let i = 0; i < 7; ++i) s.startFlight(new OutMessage(1, p1.slice(0, p1.length), msg.length))
    t0 = ds.millis()
    for (let i = 1; i <= n; ++i) {
        const m = new OutMessage(1, p1, msg.length)
        s.startFlight(m)
        sink += s.onPuback(m.packetId).packetId
        if (i % 64 === 0) await ds.sleep(0)
    }
    report("session-q1-flight+ack", n, t0)

    // --- the publishers against a broker inside the VM (bench/devs/
    // loopback.ts): no network, no 10 ms poll, so what is left is the
    // client's own work (and the stub's parser, timed alone below)
    const lb = new LoopbackBroker()
    lb.mute = true
    const twelve = Buffer.alloc(p1.length * 12)
    for (let i = 0; i < 12; ++i) twelve.blitAt(i * p1.length, p1, 0, p1.length)
    t0 = ds.millis()
    for (let i = 1; i <= Math.idiv(n, 12); ++i) {
        sink += lb.parseOnly(twelve)
        if (i % 8 === 0) await ds.sleep(0)
    }
    report("loopback-parse", Math.idiv(n, 12) * 12, t0)
    const ln = Math.max(600, n)
    reportLoop("loopback-q0", ln, await loopbackQos0(topic, msg, ln))
    for (const w of [8, 32, 64]) {
        const drainTo = w === p.pipeWindow ? p.drainTo : w
        reportLoop(
            `loopback-q1-pipelined-w${w}`,
            ln,
            await loopbackPipelined(topic, msg, 1, ln, w, p.maxQueued, drainTo)
        )
    }
    const enqRounds = Math.max(1, Math.idiv(ln, p.pipeWindow + p.maxQueued))
    reportLoop(
        `loopback-q1-enqueue-only-w${p.pipeWindow}`,
        enqRounds * (p.pipeWindow + p.maxQueued),
        await loopbackEnqueueOnly(topic, msg, 1, enqRounds, p.pipeWindow, p.maxQueued)
    )
    reportLoop(
        `loopback-q2-pipelined-w${p.pipeWindow}`,
        ln,
        await loopbackPipelined(topic, msg, 2, ln, p.pipeWindow, p.maxQueued, p.drainTo)
    )

    console.log(`PROF sink ${sink > 0 ? 1 : 0}`)
    await c.disconnect()
    finish()
}
