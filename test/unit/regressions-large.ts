import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import {
    AckPacket,
    MQTTClient,
    MQTTClientOptions,
    PacketType,
    encodeAck,
    encodeConnack,
} from "../../src/index"
import {
    Broker,
    Outcome,
    Reader,
    ScriptedTransport,
    WrittenPublish,
    keepReading,
    shutdown,
    track,
    until,
    waitFor,
} from "./lib/scripted"

/*
 * Issue 10, item F and measurement 4: 16 KB messages in a 64 KB heap, as
 * named regression tests (the others are in regressions.ts). A file of
 * their own: they need the heap of a fresh program (after many tests a
 * 32 KB block may no longer be free in one piece), and an OutOfMemory is a
 * PANIC that ends the program. Both ran out of memory at commit 229d9e8
 * (in decodePublish).
 */

function check(cond: boolean, msg: string) {
    if (!cond) throw new Error(msg)
}

/** A client over `t` without internal reconnection. */
function client(t: ScriptedTransport, id: string, o: MQTTClientOptions = {}) {
    o.transport = t
    o.reconn = false
    return new MQTTClient(id, "broker.test", 0, o)
}

/** connect() answered with CONNACK (no session), without a model broker. */
async function connectBare(t: ScriptedTransport, c: MQTTClient) {
    ;(async () => {
        await t.waitSent(PacketType.Connect, 1)
        t.feed(encodeConnack(false, 0))
    }).start()
    await c.connect()
}

/** Ids of the acks of `type` written, comma-separated. */
function ackIds(t: ScriptedTransport, type: PacketType) {
    return t
        .sent(type)
        .map(p => `${(p as AckPacket).packetId}`)
        .join(",")
}

function outcome(o: Outcome) {
    if (o.done) return "completed"
    if (o.error) return `failed: ${o.error.message}`
    return "still waiting"
}

// ------------------------------------------------------------ large messages

const BIG = 16384

/** base[x] = (x * 7) & 0xff for x < 512: each 256-byte block of a pattern is a slice of it */
const BASE = Buffer.alloc(512)
for (let x = 0; x < 512; ++x) BASE[x] = (x * 7) & 0xff

/**
 * Byte i = k * 256 + j of the pattern of `seed` is (7 i + 13 seed + 3 k) & 0xff,
 * that is BASE[j + blockOffset(k, seed)] (183 is the inverse of 7 mod 256).
 */
function blockOffset(k: number, seed: number) {
    return (((seed * 13 + k * 3) & 0xff) * 183) & 0xff
}

/** Writes the BIG-byte pattern of `seed` at `pos` of `buf`. */
function fillPattern(buf: Buffer, pos: number, seed: number) {
    for (let k = 0; k < BIG / 256; ++k)
        buf.blitAt(pos + k * 256, BASE, blockOffset(k, seed), 256)
}

function bigSize(topic: string, qos: number) {
    return 4 + 2 + topic.length + (qos > 0 ? 2 : 0) + BIG
}

/** Writes a PUBLISH of the BIG-byte pattern of `seed` at `pos`; returns its end. */
function putBigPublish(
    buf: Buffer,
    pos: number,
    topic: string,
    seed: number,
    qos: number,
    id: number
) {
    const remaining = bigSize(topic, qos) - 4
    buf[pos++] = 0x30 | (qos << 1)
    // the remaining length in 3 bytes (§2.2.3)
    buf[pos++] = (remaining & 0x7f) | 0x80
    buf[pos++] = ((remaining >> 7) & 0x7f) | 0x80
    buf[pos++] = remaining >> 14
    buf[pos++] = topic.length >> 8
    buf[pos++] = topic.length & 0xff
    buf.blitAt(pos, Buffer.from(topic), 0, topic.length)
    pos += topic.length
    if (qos > 0) {
        buf[pos++] = id >> 8
        buf[pos++] = id & 0xff
    }
    fillPattern(buf, pos, seed)
    return pos + BIG
}

/**
 * A chunk: `prefix` (other packets), then a PUBLISH of the BIG-byte
 * pattern of `seed`, built in place: one allocation.
 */
function bigPublish(
    prefix: Buffer,
    topic: string,
    seed: number,
    qos: number,
    id: number
) {
    const pre = prefix ? prefix.length : 0
    const buf = Buffer.alloc(pre + bigSize(topic, qos))
    if (prefix) buf.blitAt(0, prefix, 0, pre)
    putBigPublish(buf, pre, topic, seed, qos, id)
    return buf
}

/**
 * Two BIG QoS 1 PUBLISHes (ids 1, 2) in one chunk of about 32 KB, one
 * allocation. QoS 1: past `maxIncomingBytes` a QoS 0 message may be dropped.
 */
function twoBigPublishes() {
    const buf = Buffer.alloc(bigSize("f/1", 1) + bigSize("f/2", 1))
    const mid = putBigPublish(buf, 0, "f/1", 1, 1, 1)
    putBigPublish(buf, mid, "f/2", 2, 1, 2)
    return buf
}

/** A BIG pattern payload. */
function patternBuffer(seed: number) {
    const buf = Buffer.alloc(BIG)
    fillPattern(buf, 0, seed)
    return buf
}

/** "" when `msg` is the BIG pattern of `seed`, else what differs. */
async function patternError(msg: Buffer, seed: number) {
    if (msg.length !== BIG) return `${msg.length} bytes, expected ${BIG}`
    for (let k = 0; k < BIG / 256; ++k) {
        const off = blockOffset(k, seed)
        const at = k * 256
        for (let j = 0; j < 256; ++j)
            if (msg[at + j] !== BASE[off + j]) return `byte ${at + j} differs`
        await ds.sleep(0) // the VM's watchdog
    }
    return ""
}

describe("issue 10: large messages", () => {
    test("F: two 16,384-byte QoS 1 PUBLISHes in one 32 KB chunk are delivered byte-exact, and 16 KB can be allocated after", async () => {
        // no model broker: every byte of heap counts here
        const t = new ScriptedTransport()
        const c = client(t, "unit-f", { reconn: false })
        const r = new Reader()
        let ok = 0
        let bad = ""
        try {
            c.setCallback(async (topic, msg) => {
                const e = await patternError(msg, topic === "f/1" ? 1 : 2)
                if (e === "") ok++
                else bad += `${topic}: ${e}; `
            })
            await connectBare(t, c)
            keepReading(c, r)
            t.feed(twoBigPublishes())
            await until(() => ok + (bad === "" ? 0 : 1) >= 2, 5000)
            expect(bad).toBe("")
            expect(ok).toBe(2)
            await waitFor(
                () => t.sent(PacketType.Puback).length === 2,
                2000,
                "the PUBACKs of both"
            )
            expect(ackIds(t, PacketType.Puback)).toBe("1,2")
            const after = Buffer.alloc(BIG)
            expect(after.length).toBe(BIG)
        } finally {
            r.stopped = true
            await shutdown(c)
            // the reading fiber lets go of the client: the next test needs
            // the heap in large free blocks
            await until(() => r.ended, 2000)
        }
    })

    test("M4: a 16 KB QoS 1 publish echoed to the device, then 16 KB from a peer: both byte-exact, and 16 KB can be allocated after", async () => {
        const t = new ScriptedTransport()
        const b = new Broker(t).start()
        // the scripted feed holds the echo as one 16 KB chunk beside its
        // decoded copy and the device's own 16 KB payload: 1 KB short of the
        // heap with the default write buffer (a real socket delivers small
        // chunks: test/node/large-messages.test.mjs runs with the defaults)
        const c = client(t, "unit-m4", { reconn: false, writeBuffer: 0 })
        const r = new Reader()
        let ok = 0
        let bad = ""
        try {
            c.setCallback(async (topic, msg) => {
                const e = await patternError(msg, topic === "m4/echo" ? 3 : 4)
                if (e === "") ok++
                else bad += `${topic}: ${e}; `
            })
            await c.connect()
            expect(await c.subscribe("m4/#", 1)).toBe(1)
            keepReading(c, r)
            b.ackDevice = false // the test answers: PUBACK and echo in one chunk
            let payload = patternBuffer(3)
            const o = track(async () => {
                await c.publish("m4/echo", payload, false, 1)
            })
            await waitFor(
                () => t.sent(PacketType.Publish).length === 1,
                3000,
                "the device's PUBLISH"
            )
            const pub = t.sent(PacketType.Publish)[0] as WrittenPublish
            expect(pub.payloadLength).toBe(BIG)
            t.feed(
                bigPublish(
                    encodeAck(PacketType.Puback, pub.packetId),
                    "m4/echo",
                    3,
                    1,
                    1
                )
            )
            await until(
                () => o.settled() && ok + (bad === "" ? 0 : 1) >= 1,
                5000
            )
            check(o.done, `the 16 KB publish: ${outcome(o)}`)
            payload = null
            await waitFor(
                () => t.sent(PacketType.Puback).length === 1,
                2000,
                "the PUBACK of the echo"
            )
            t.feed(bigPublish(null, "m4/peer", 4, 0, 0))
            await until(() => ok + (bad === "" ? 0 : 1) >= 2, 5000)
            expect(bad).toBe("")
            expect(ok).toBe(2)
            const after = Buffer.alloc(BIG)
            expect(after.length).toBe(BIG)
        } finally {
            r.stopped = true
            b.stop()
            await shutdown(c)
            await until(() => r.ended, 2000)
        }
    })
})
