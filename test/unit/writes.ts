import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import {
    MQTTClient,
    MQTTClientOptions,
    PacketType,
    PublishPacket,
    encodeAck,
    encodeConnack,
    encodePublish,
} from "../../src/index"
import {
    Broker,
    ScriptedTransport,
    connected,
    throwsAtOnce,
    waitFor,
} from "./lib/scripted"

/**
 * The write path (issue 12): every packet goes through the write buffer by
 * default and the lot is written once the fiber yields; `enqueue` keeps the
 * window full from one fiber; `drain` and the ack callback; what the buffer
 * held when the link failed.
 */

function payloads(t: ScriptedTransport) {
    return t
        .sent(PacketType.Publish)
        .map(p => (p as PublishPacket).payload.toString())
        .join(",")
}

const isPublish = (first: number) => first >> 4 === PacketType.Publish

/** A client connected to the scripted broker (which acknowledges what it gets). */
async function brokered(options: MQTTClientOptions = {}) {
    const t = new ScriptedTransport()
    const b = new Broker(t).start()
    options.transport = t
    options.connectivity = null
    if (options.reconn === undefined) options.reconn = false
    const c = new MQTTClient("unit", "broker.test", 0, options)
    await c.connect(false)
    return { c, t, b }
}

describe("coalescing by default", () => {
    test("QoS 0 publishes resolve once taken and go out in one write when the fiber yields", async () => {
        const { c, t } = await connected()
        const before = t.writes
        for (let i = 0; i < 10; ++i) await c.publish("t", `m${i}`)
        expect(t.writes).toBe(before) // taken, not yet written
        await ds.sleep(1)
        expect(t.writes).toBe(before + 1)
        expect(payloads(t)).toBe("m0,m1,m2,m3,m4,m5,m6,m7,m8,m9")
        await c.disconnect()
    })
    test("writeBuffer: 0 writes each packet at once", async () => {
        const { c, t } = await connected({ writeBuffer: 0 })
        const before = t.writes
        for (let i = 0; i < 5; ++i) await c.publish("t", `m${i}`)
        expect(t.writes).toBe(before + 5)
        await c.disconnect()
    })
    test("the PUBACKs of a burst of QoS 1 messages go out together", async () => {
        const { c, t } = await connected()
        let got = 0
        c.setCallback(() => {
            got++
        })
        const parts: Buffer[] = []
        for (let i = 1; i <= 10; ++i)
            parts.push(
                encodePublish("in", Buffer.from(`p${i}`), 1, false, false, i)
            )
        const before = t.writes
        t.feed(Buffer.concat(...parts))
        while (got < 10) await c.waitMsg()
        await t.waitSent(PacketType.Puback, 10)
        // one write per batch that waitMsg delivered (the reader hands
        // over 8 messages, then yields)
        expect(t.writes - before <= 2).toBe(true)
        await c.disconnect()
    })
    test("QoS 1 and 2 publishes, PUBREL and PINGREQ keep the order of the calls", async () => {
        const { c, t, b } = await brokered()
        try {
            await c.publish("o", "a", false, 0)
            const seq = await c.enqueue("o", "b", false, 2)
            await c.ping()
            await c.publish("o", "c", false, 0)
            await c.drain()
            expect(seq).toBe(1)
            expect(payloads(t)).toBe("a,b,c")
            const types = t.written.map(p => p.type)
            const pub = types.indexOf(PacketType.Publish)
            expect(types[pub + 2]).toBe(PacketType.Pingreq)
            expect(types.indexOf(PacketType.Pubrel) > pub + 2).toBe(true)
            expect(b.violations.length).toBe(0)
        } finally {
            b.stop()
            await c.disconnect()
        }
    })
})

describe("enqueue", () => {
    test("one fiber fills the window; the ack callback reports each message, in order; drain waits", async () => {
        const { c, t, b } = await brokered({ maxInflight: 8, maxQueued: 64 })
        b.ackDevice = false
        const acked: number[] = []
        c.setAckCallback((seq, err) => {
            if (!err) acked.push(seq)
        })
        const seqs: number[] = []
        for (let i = 0; i < 20; ++i)
            seqs.push(await c.enqueue("q", `m${i}`, false, 1))
        expect(seqs[0]).toBe(1)
        expect(seqs[19]).toBe(20)
        expect(c.pending().inflight).toBe(8)
        expect(c.pending().queued).toBe(12)
        const writes = t.writes
        b.ackDevice = true
        try {
            await c.drain()
            expect(acked.join(",")).toBe(seqs.join(","))
            expect(c.pending().inflight + c.pending().queued).toBe(0)
            expect(payloads(t).split(",").length).toBe(20)
            // 20 PUBLISHes in far fewer writes than one each
            expect(t.writes - writes < 10).toBe(true)
        } finally {
            b.stop()
            await c.disconnect()
        }
    })
    test("a full queue throws at once; drain(limit) returns once at most limit are left", async () => {
        const { c, t } = await connected({ maxInflight: 2, maxQueued: 3 })
        for (let i = 0; i < 5; ++i) await c.enqueue("q", `m${i}`, false, 1)
        await throwsAtOnce(async () => await c.enqueue("q", "x", false, 1), "queue full")
        const all = await t.waitSent(PacketType.Publish, 2)
        t.feed(encodeAck(PacketType.Puback, (all[0] as PublishPacket).packetId))
        await c.drain(4)
        expect(c.pending().inflight + c.pending().queued).toBe(4)
        await c.disconnect()
    })
    test("disconnect fails what is in flight: the ack callback hears the error, drain returns", async () => {
        const { c } = await connected()
        const errors: string[] = []
        c.setAckCallback((seq, err) => {
            if (err) errors.push(`${seq}:${err.message}`)
        })
        await c.enqueue("q", "a", false, 1)
        await c.enqueue("q", "b", false, 2)
        let drained = false
        ;(async () => {
            try {
                await c.drain()
            } catch (e) {}
            drained = true
        }).start()
        await c.disconnect()
        expect(errors.join(",")).toBe("1:disconnected,2:disconnected")
        await waitFor(() => drained, 2000, "drain to return")
        expect(drained).toBe(true)
    })
    test("bad arguments throw at once", async () => {
        const { c } = await connected()
        await throwsAtOnce(async () => await c.enqueue("a/#", "x"), "wildcard")
        await throwsAtOnce(async () => await c.enqueue("a", "x", false, 3), "qos")
        await throwsAtOnce(async () => await c.enqueue("a", 5 as any), "msg")
        await c.disconnect()
    })
})

/**
 * A QoS 1 message is delivered, and the write that carries its PUBACK
 * fails: after the reconnection (internal, or close() + connect(false)) the
 * broker sends it again with DUP, and gets its PUBACK without a second
 * delivery.
 */
async function owedPuback(reconn: boolean) {
    const { c, t, b } = await brokered({ reconn, reconnectDelay: 5 })
    let got = 0
    c.setCallback((topic, msg) => {
        got++
        b.delivered(msg.toString())
    })
    try {
        t.failNext(first => first >> 4 === PacketType.Puback)
        b.publish("in", "once", 1)
        await c.waitMsg()
        expect(got).toBe(1)
        if (reconn)
            await waitFor(
                () => t.connectTimes().length === 2,
                3000,
                "the reconnection"
            )
        else {
            await waitFor(() => c.getMqttsta() !== 0, 2000, "the loss")
            await c.close()
            await c.connect(false)
        }
        // the resend is answered at once (nothing waits for waitMsg)
        expect(await b.drained()).toBe(true)
        await c.checkMsg()
        expect(got).toBe(1)
        expect(t.connectTimes().length).toBe(2)
        expect(b.violations.length).toBe(0)
    } finally {
        b.stop()
        await c.disconnect()
    }
}

describe("what the buffer held when the link failed", () => {
    test("QoS 0 messages taken but not written go out after the reconnection, in order", async () => {
        const { c, t, b } = await brokered({ reconn: true, reconnectDelay: 5 })
        try {
            await c.publish("o", "m0")
            await ds.sleep(1) // written
            t.failNext(isPublish) // the next write fails: m1..m4 with it
            for (let i = 1; i < 5; ++i) await c.publish("o", `m${i}`)
            await ds.sleep(1)
            // taken back into the queue; a new one goes behind them
            await c.publish("o", "m5")
            await waitFor(
                () => payloads(t) === "m0,m1,m2,m3,m4,m5",
                3000,
                "m0..m5"
            )
            expect(payloads(t)).toBe("m0,m1,m2,m3,m4,m5")
            expect(t.connectTimes().length).toBe(2)
        } finally {
            b.stop()
            await c.disconnect()
        }
    })
    test("a PUBACK in a write that failed is owed: the resend is answered without a second delivery", async () => {
        await owedPuback(true)
    })
    test("a publish whose turn to write the full buffer fails goes to the offline queue too", async () => {
        // 6-byte packets, 32 bytes of buffer: the sixth publish writes the
        // first five itself, and that write fails
        const { c, t, b } = await brokered({
            reconn: true,
            reconnectDelay: 5,
            writeBuffer: 32,
        })
        try {
            t.failNext(isPublish)
            for (let i = 0; i < 6; ++i) await c.publish("o", `${i}`)
            await waitFor(
                () => payloads(t) === "0,1,2,3,4,5",
                3000,
                "0..5 after the reconnection"
            )
            expect(t.connectTimes().length).toBe(2)
        } finally {
            b.stop()
            await c.disconnect()
        }
    })
    test("with reconn: false a PUBACK in a failed write is owed as well: connect(false) answers the resend without a second delivery", async () => {
        await owedPuback(false)
    })
    test("with reconn: false, QoS 0 in the buffer is lost (at most once) and the loss reported", async () => {
        const { c, t } = await connected()
        t.failNext(isPublish)
        await c.publish("o", "gone")
        await ds.sleep(1)
        expect(c.getMqttsta() === 0).toBe(false)
        expect(c.pending().queued).toBe(0)
        await throwsAtOnce(async () => await c.checkMsg(), "")
        await c.close()
    })
})
