import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import {
    AckPacket,
    ConnectPacket,
    ManualConnectivity,
    MQTTClient,
    MQTTException,
    PacketType,
    PublishPacket,
    Session,
    encodeAck,
    encodeConnack,
    encodePublish,
    encodeSuback,
} from "../../src/index"
import {
    ScriptedTransport,
    connected,
    throwsAtOnce,
    waitFor,
} from "./lib/scripted"

describe("connect", () => {
    test("CONNECT carries the options; CONNACK 0 connects", async () => {
        const { c, t } = await connected({
            keepalive: 30,
            user: "u",
            password: "p",
            version: 3,
        })
        const cp = t.sent(PacketType.Connect)[0] as ConnectPacket
        expect(cp.keepalive).toBe(30)
        expect(cp.username).toBe("u")
        expect(cp.password.toString()).toBe("p")
        expect(cp.protocolVersion).toBe(3)
        expect(cp.cleanSession).toBe(true)
        expect(c.getMqttsta()).toBe(0)
        await c.disconnect()
        expect(c.getMqttsta()).toBe(-1)
        expect(t.sent(PacketType.Disconnect).length).toBe(1)
    })
    test("a refusing CONNACK throws MQTTException with its code", async () => {
        const t = new ScriptedTransport()
        const c = new MQTTClient("unit", "broker.test", 0, { transport: t })
        ;(async () => {
            await t.waitSent(PacketType.Connect, 1)
            t.feed(encodeConnack(false, 5))
        }).start()
        let code = -1
        try {
            await c.connect()
        } catch (e) {
            if (e instanceof MQTTException) code = (e as MQTTException).code
        }
        expect(code).toBe(5)
        expect(c.getMqttsta()).toBe(-1)
    })
    test("no CONNACK in time is an Error", async () => {
        const t = new ScriptedTransport()
        const c = new MQTTClient("unit", "broker.test", 0, {
            transport: t,
            connectTimeout: 200,
        })
        await throwsAtOnce(async () => await c.connect(), "no CONNACK")
        expect(c.getMqttsta()).toBe(-1)
    })
    test("constructor arguments are checked", async () => {
        await throwsAtOnce(async () => new MQTTClient("x", "h", 70000), "port")
        await throwsAtOnce(
            async () => new MQTTClient("x", "h", 0, { keepalive: 70000 }),
            "keepalive"
        )
        await throwsAtOnce(
            async () => new MQTTClient("x", "h", 0, { version: 5 }),
            "version"
        )
        await throwsAtOnce(async () => new MQTTClient("x", ""), "server")
    })
})

describe("bad arguments", () => {
    test("throw at once, send nothing, leave the client usable", async () => {
        const { c, t } = await connected({ maxPacketSize: 200 })
        const before = t.written.length
        await throwsAtOnce(async () => await c.publish("a/+", "x"), "wildcard")
        await throwsAtOnce(async () => await c.publish("a/#", "x"), "wildcard")
        await throwsAtOnce(async () => await c.publish("", "x"), "empty")
        await throwsAtOnce(
            async () => await c.publish("a", "x", false, 3),
            "qos"
        )
        await throwsAtOnce(
            async () => await c.publish("a", "x", false, -1),
            "qos"
        )
        await throwsAtOnce(
            async () => await c.publish("a", Buffer.alloc(300)),
            "maxPacketSize"
        )
        await throwsAtOnce(async () => await c.subscribe("a/#/b"), "#")
        await throwsAtOnce(async () => await c.subscribe("a+/b"), "wildcard")
        await throwsAtOnce(async () => await c.subscribe("a", 3), "qos")
        await throwsAtOnce(async () => await c.unsubscribe(""), "empty")
        await throwsAtOnce(async () => c.setLastWill("w", "x", false, 5), "qos")
        expect(t.written.length).toBe(before)
        await c.publish("a", "fine")
        await c.flush()
        expect(t.sent(PacketType.Publish).length).toBe(1)
        await c.disconnect()
        await throwsAtOnce(
            async () => await c.publish("a", "x"),
            "disconnected"
        )
        await throwsAtOnce(async () => await c.connect(), "disconnected")
    })
})

describe("QoS", () => {
    test("QoS 1 resolves on PUBACK, QoS 2 on PUBCOMP", async () => {
        const { c, t } = await connected()
        let done1 = false
        ;(async () => {
            await c.publish("q/1", "one", false, 1)
            done1 = true
        }).start()
        const p1 = (await t.waitSent(PacketType.Publish, 1))[0] as PublishPacket
        expect(p1.qos).toBe(1)
        await ds.sleep(20)
        expect(done1).toBe(false)
        t.feed(encodeAck(PacketType.Puback, p1.packetId))
        while (!done1) await ds.sleep(5)

        let done2 = false
        ;(async () => {
            await c.publish("q/2", "two", false, 2)
            done2 = true
        }).start()
        const p2 = (await t.waitSent(PacketType.Publish, 2))[1] as PublishPacket
        expect(p2.packetId === p1.packetId).toBe(false)
        t.feed(encodeAck(PacketType.Pubrec, p2.packetId))
        const rel = (await t.waitSent(PacketType.Pubrel, 1))[0] as AckPacket
        expect(rel.packetId).toBe(p2.packetId)
        expect(done2).toBe(false)
        t.feed(encodeAck(PacketType.Pubcomp, p2.packetId))
        while (!done2) await ds.sleep(5)
        await c.disconnect()
    })
    test("the in-flight window holds back the third QoS 1 publish", async () => {
        const { c, t } = await connected({ maxInflight: 2 })
        let finished = 0
        for (let i = 0; i < 3; ++i)
            (async () => {
                await c.publish("w", "m", false, 1)
                finished++
            }).start()
        await t.waitSent(PacketType.Publish, 2)
        await ds.sleep(30)
        expect(t.sent(PacketType.Publish).length).toBe(2)
        const first = t.sent(PacketType.Publish)[0] as PublishPacket
        t.feed(encodeAck(PacketType.Puback, first.packetId))
        const all = await t.waitSent(PacketType.Publish, 3)
        t.feed(encodeAck(PacketType.Puback, (all[1] as PublishPacket).packetId))
        t.feed(encodeAck(PacketType.Puback, (all[2] as PublishPacket).packetId))
        while (finished < 3) await ds.sleep(5)
        await c.disconnect()
    })
    test("incoming QoS 2 is delivered once, PUBREC once delivered, PUBCOMP after PUBREL", async () => {
        const { c, t } = await connected()
        let got = 0
        c.setCallback((topic, msg, info) => {
            got++
            expect(info.qos).toBe(2)
        })
        t.feed(encodePublish("in/2", Buffer.from("x"), 2, false, false, 7))
        // a resend while the message waits is the same message: not queued again
        t.feed(encodePublish("in/2", Buffer.from("x"), 2, false, true, 7))
        await waitFor(() => c.pending().received === 1, 1000, "the message")
        await ds.sleep(20)
        expect(c.pending().received).toBe(1)
        // PUBREC only once the callback has it (§4.3.3: ownership accepted)
        expect(t.sent(PacketType.Pubrec).length).toBe(0)
        await c.waitMsg()
        await c.checkMsg()
        expect(got).toBe(1)
        const rec = (await t.waitSent(PacketType.Pubrec, 1))[0] as AckPacket
        expect(rec.packetId).toBe(7)
        expect(c.pending().awaitingRelease).toBe(1)
        // sent again before PUBREL (its PUBREC lost): PUBREC again, not delivered
        t.feed(encodePublish("in/2", Buffer.from("x"), 2, false, true, 7))
        await t.waitSent(PacketType.Pubrec, 2)
        await c.checkMsg()
        expect(got).toBe(1)
        t.feed(encodeAck(PacketType.Pubrel, 7))
        const comp = (await t.waitSent(PacketType.Pubcomp, 1))[0] as AckPacket
        expect(comp.packetId).toBe(7)
        expect(c.pending().awaitingRelease).toBe(0)
        // after PUBREL the id is free: the same id is a new message
        t.feed(encodePublish("in/2", Buffer.from("y"), 2, false, false, 7))
        await c.waitMsg()
        expect(got).toBe(2)
        await c.disconnect()
    })
    test("a QoS 2 delivered offline gets its PUBREC when the broker resends it; its id is new again after PUBREL", async () => {
        const { c, t } = await connected()
        let got = 0
        c.setCallback(() => {
            got++
        })
        t.feed(encodePublish("in/2", Buffer.from("x"), 2, false, false, 7))
        await waitFor(() => c.pending().received === 1, 1000, "the message")
        t.cut()
        await c.waitMsg() // delivered offline: no PUBREC possible
        expect(got).toBe(1)
        expect(t.sent(PacketType.Pubrec).length).toBe(0)
        await c.close()
        ;(async () => {
            await t.waitSent(PacketType.Connect, 2)
            t.feed(encodeConnack(true, 0))
            // the broker never got PUBREC: it sends the PUBLISH again (§4.4)
            t.feed(encodePublish("in/2", Buffer.from("x"), 2, false, true, 7))
        }).start()
        await c.connect(false)
        // answered with PUBREC, not delivered again
        await t.waitSent(PacketType.Pubrec, 1)
        await c.checkMsg()
        expect(got).toBe(1)
        t.feed(encodeAck(PacketType.Pubrel, 7))
        await t.waitSent(PacketType.Pubcomp, 1)
        // id 7 again: a new message, PUBCOMP only after its own PUBREL
        t.feed(encodePublish("in/2", Buffer.from("y"), 2, false, false, 7))
        await c.waitMsg()
        expect(got).toBe(2)
        await t.waitSent(PacketType.Pubrec, 2)
        await ds.sleep(20)
        expect(t.sent(PacketType.Pubcomp).length).toBe(1)
        t.feed(encodeAck(PacketType.Pubrel, 7))
        await t.waitSent(PacketType.Pubcomp, 2)
        await c.disconnect()
    })
    test("incoming QoS 1 is acknowledged after delivery", async () => {
        const { c, t } = await connected()
        c.setCallback((topic, msg) => {})
        t.feed(encodePublish("in/1", Buffer.from("x"), 1, false, false, 9))
        await ds.sleep(20)
        expect(t.sent(PacketType.Puback).length).toBe(0)
        await c.waitMsg()
        const ack = (await t.waitSent(PacketType.Puback, 1))[0] as AckPacket
        expect(ack.packetId).toBe(9)
        await c.disconnect()
    })
})

describe("callbacks and faults", () => {
    test("a throwing callback goes to the error callback", async () => {
        const { c, t } = await connected()
        let errors = 0
        let seen = 0
        c.errorRegisterCb(err => {
            errors++
        })
        c.setCallback((topic, msg) => {
            seen++
            if (msg.toString() === "bad") throw new Error("callback failed")
        })
        t.feed(encodePublish("cb", Buffer.from("bad"), 0, false, false, 0))
        t.feed(encodePublish("cb", Buffer.from("good"), 0, false, false, 0))
        await c.waitMsg()
        if (seen < 2) await c.waitMsg()
        expect(seen).toBe(2)
        expect(errors).toBe(1)
        expect(c.getMqttsta()).toBe(0)
        await c.disconnect()
    })
    test("a second CONNACK is a protocol error: reported, state -1", async () => {
        const { c, t } = await connected()
        let reported: Error = null
        c.errorRegisterCb(err => {
            reported = err
        })
        t.feed(encodeConnack(false, 0))
        const end = ds.millis() + 2000
        while (!reported && ds.millis() < end) await ds.sleep(5)
        expect(reported.message.indexOf("CONNACK") >= 0).toBe(true)
        expect(c.getMqttsta()).toBe(-1)
        expect(t.open_).toBe(false)
        await throwsAtOnce(async () => await c.checkMsg(), "CONNACK")
    })
    test("SUBACK 0x80 throws MQTTException, the client stays usable", async () => {
        const { c, t } = await connected()
        ;(async () => {
            const s = await t.waitSent(PacketType.Subscribe, 1)
            t.feed(encodeSuback((s[0] as AckPacket).packetId, [0x80]))
        }).start()
        let code = 0
        try {
            await c.subscribe("secret/x", 1)
        } catch (e) {
            code = (e as MQTTException).code
        }
        expect(code).toBe(0x80)
        expect(c.getMqttsta()).toBe(0)
        ;(async () => {
            const s = await t.waitSent(PacketType.Subscribe, 2)
            t.feed(encodeSuback((s[1] as AckPacket).packetId, [1]))
        }).start()
        expect(await c.subscribe("open/x", 2)).toBe(1)
        await c.disconnect()
    })
    test("keepalive sends PINGREQ on an idle link", async () => {
        const { c, t } = await connected({ keepalive: 1 })
        await t.waitSent(PacketType.Pingreq, 1, 3000)
        t.feed(Buffer.from([0xd0, 0]))
        expect(c.getMqttsta()).toBe(0)
        await c.disconnect()
    })
    test("no answer to PINGREQ: the loss is reported after 1.5 x keepalive without a packet", async () => {
        const { c, t } = await connected({ keepalive: 1 })
        let reported: Error = null
        c.errorRegisterCb(err => {
            reported = err
        })
        const start = ds.millis()
        while (!reported && ds.millis() - start < 3000) await ds.sleep(10)
        const took = ds.millis() - start
        expect(reported.message.indexOf("keepalive") >= 0).toBe(true)
        // 1.5 x keepalive after the CONNACK, noticed within a tick (125 ms)
        expect(took >= 1300 && took <= 1750).toBe(true)
        expect(c.getMqttsta()).toBe(-1)
    })
})

describe("session", () => {
    test("packet ids skip those in flight and wrap after 65535", () => {
        const s = new Session()
        const a = s.addRequest(PacketType.Subscribe)
        const b = s.addRequest(PacketType.Subscribe)
        expect(a.packetId).toBe(1)
        expect(b.packetId).toBe(2)
        s.completeRequest(PacketType.Suback, 1, [0])
        expect(s.idInUse(1)).toBe(false)
        expect(s.idInUse(2)).toBe(true)
        // jump near the end of the range
        ;(s as any).lastId = 65534
        expect(s.allocId()).toBe(65535)
        expect(s.allocId()).toBe(1)
        expect(s.allocId()).toBe(3) // 2 is still in use
    })
})

/** Plays the broker for every CONNECT the client sends from now on. */
function acceptConnects(t: ScriptedTransport, max: number) {
    const from = t.sent(PacketType.Connect).length + 1
    ;(async () => {
        for (let n = from; n <= max; ++n) {
            await t.waitSent(PacketType.Connect, n, 20000)
            t.feed(encodeConnack(false, 0))
        }
    }).start()
}

describe("connectivity and failover", () => {
    test("connect with the network down throws; up, it connects", async () => {
        const t = new ScriptedTransport()
        const net = new ManualConnectivity(false)
        const c = new MQTTClient("unit", "b", 0, {
            transport: t,
            connectivity: net,
        })
        await throwsAtOnce(async () => await c.connect(), "network down")
        expect(t.opens.length).toBe(0)
        net.set(true)
        acceptConnects(t, 1)
        expect(await c.connect()).toBe(0)
        await c.disconnect()
    })
    test("network down: reported with reconn false", async () => {
        const net = new ManualConnectivity(true)
        const { c, t } = await connected({ connectivity: net })
        let reported: Error = null
        c.errorRegisterCb(err => {
            reported = err
        })
        net.set(false)
        const end = ds.millis() + 2000
        while (!reported && ds.millis() < end) await ds.sleep(5)
        expect(reported.message).toBe("network down")
        expect(c.getMqttsta()).toBe(-1)
        expect(t.open_).toBe(false)
    })
    test("reconn true waits for the network instead of burning attempts", async () => {
        const net = new ManualConnectivity(true)
        const { c, t } = await connected({
            connectivity: net,
            reconn: true,
            reconnectDelay: 20,
            reconnectMaxDelay: 40,
        })
        const states: number[] = []
        c.setReconnectCallback(state => {
            states.push(state)
        })
        net.set(false)
        await ds.sleep(300)
        expect(c.getMqttsta()).toBe(1)
        expect(t.opens.length).toBe(1) // no attempt while down
        acceptConnects(t, 2)
        net.set(true)
        const end = ds.millis() + 3000
        while (c.getMqttsta() !== 0 && ds.millis() < end) await ds.sleep(10)
        expect(c.getMqttsta()).toBe(0)
        expect(t.opens.length).toBe(2)
        // the callback runs in a fiber of its own: it may come a little later
        await waitFor(() => states.length >= 2, 1000, "the reconnect callback")
        expect(states.join(",")).toBe("1,0")
        await c.disconnect()
    })
    test("failover: the next broker when the first refuses", async () => {
        const t = new ScriptedTransport()
        t.refuse.push("a")
        const c = new MQTTClient("unit", "a", 1883, {
            transport: t,
            servers: [{ host: "b", port: 1884 }],
        })
        acceptConnects(t, 1)
        expect(await c.connect()).toBe(0)
        expect(t.opens.join(",")).toBe("a:1883,b:1884")
        expect(c.currentServer().host).toBe("b")
        await c.disconnect()
    })
    test("failover during internal reconnection", async () => {
        const { c, t } = await connected({
            reconn: true,
            reconnectDelay: 10,
            reconnectMaxDelay: 20,
            servers: [{ host: "backup" }],
        })
        let published = false
        ;(async () => {
            await c.publish("f/1", "kept", false, 1)
            published = true
        }).start()
        const first = (
            await t.waitSent(PacketType.Publish, 1)
        )[0] as PublishPacket
        t.refuse.push("broker.test")
        acceptConnects(t, 2)
        t.cut()
        // the QoS 1 message goes again, with DUP, to the backup broker
        const again = (
            await t.waitSent(PacketType.Publish, 2, 5000)
        )[1] as PublishPacket
        expect(again.dup).toBe(true)
        expect(again.packetId).toBe(first.packetId)
        expect(c.currentServer().host).toBe("backup")
        t.feed(encodeAck(PacketType.Puback, again.packetId))
        const end = ds.millis() + 2000
        while (!published && ds.millis() < end) await ds.sleep(5)
        expect(published).toBe(true)
        await c.disconnect()
    })
})

describe("sessions across reconnects", () => {
    test("a QoS 2 message resent after a reconnect is delivered once", async () => {
        const t = new ScriptedTransport()
        const c = new MQTTClient("unit", "broker.test", 0, {
            transport: t,
            reconnectDelay: 10,
            reconnectMaxDelay: 20,
        })
        ;(async () => {
            await t.waitSent(PacketType.Connect, 1)
            t.feed(encodeConnack(false, 0))
        }).start()
        await c.connect(false)
        let got = 0
        c.setCallback(() => {
            got++
        })
        t.feed(encodePublish("s/2", Buffer.from("once"), 2, false, false, 11))
        await c.waitMsg()
        await t.waitSent(PacketType.Pubrec, 1)
        // the link drops before PUBREL; the broker keeps the session
        const from = t.sent(PacketType.Connect).length + 1
        ;(async () => {
            await t.waitSent(PacketType.Connect, from, 5000)
            t.feed(encodeConnack(true, 0))
            // §4.4: the broker did not get the PUBREC: PUBLISH again, with DUP
            t.feed(
                encodePublish("s/2", Buffer.from("once"), 2, false, true, 11)
            )
        }).start()
        t.cut()
        // answered with PUBREC again, not delivered again
        await t.waitSent(PacketType.Pubrec, 2, 5000)
        t.feed(encodeAck(PacketType.Pubrel, 11))
        const comp = (await t.waitSent(PacketType.Pubcomp, 1))[0] as AckPacket
        expect(comp.packetId).toBe(11)
        await c.checkMsg()
        expect(got).toBe(1)
        expect(c.sessionPresent).toBe(true)
        await c.disconnect()
    })
    test("publishing while reconnecting queues; a full queue throws at once", async () => {
        const { c, t } = await connected({
            reconn: true,
            maxQueued: 2,
            reconnectDelay: 5000,
            reconnectMaxDelay: 5000,
        })
        t.cut()
        expect(c.getMqttsta()).toBe(1)
        let done = 0
        let rejected = 0
        for (let i = 0; i < 2; ++i)
            (async () => {
                try {
                    await c.publish("q", "m", false, 1)
                    done++
                } catch (e) {
                    rejected++
                }
            }).start()
        await ds.sleep(20)
        await throwsAtOnce(
            async () => await c.publish("q", "x", false, 0),
            "queue full"
        )
        expect(done).toBe(0)
        await c.disconnect()
        // disconnect() ends the queued publishes with an error
        const end = ds.millis() + 2000
        while (rejected < 2 && ds.millis() < end) await ds.sleep(5)
        expect(rejected).toBe(2)
    })
})

describe("write buffer", () => {
    function topics(t: ScriptedTransport) {
        return t
            .sent(PacketType.Publish)
            .map(p => (p as PublishPacket).payload.toString())
            .join(",")
    }
    test("small QoS 0 publishes go out together, in order, once the fiber yields", async () => {
        const { c, t } = await connected({ writeBuffer: 256 })
        const before = t.writes
        for (let i = 0; i < 10; ++i) await c.publish("t/x", `m${i}`, i === 3, 0)
        // nothing yielded yet: all ten wait in the buffer
        expect(t.writes).toBe(before)
        await ds.sleep(1)
        expect(topics(t)).toBe("m0,m1,m2,m3,m4,m5,m6,m7,m8,m9")
        expect(t.writes).toBe(before + 1)
        const p3 = t.sent(PacketType.Publish)[3] as PublishPacket
        expect(p3.retain).toBe(true)
        expect(p3.topic).toBe("t/x")
        await c.disconnect()
    })
    test("a full buffer is written; other packets never overtake it", async () => {
        const { c, t } = await connected({ writeBuffer: 32 })
        await c.publish("a", "1", false, 0)
        await c.publish("a", "2", false, 0)
        await c.ping() // PINGREQ: behind them in the buffer
        expect(t.sent(PacketType.Pingreq).length).toBe(0)
        await c.flush()
        expect(topics(t)).toBe("1,2")
        expect(t.sent(PacketType.Pingreq).length).toBe(1)
        // 6-byte packets: five fill 30 of the 32 bytes; the sixth writes them
        for (let i = 3; i < 9; ++i) await c.publish("a", `${i}`, false, 0)
        expect(topics(t)).toBe("1,2,3,4,5,6,7")
        await c.publish("d", Buffer.alloc(200), false, 0) // too large: direct
        const names = () =>
            t
                .sent(PacketType.Publish)
                .map(p => (p as PublishPacket).topic)
                .join("")
        expect(names()).toBe("aaaaaaaad")
        await c.publish("a", "9", false, 0)
        let acked = false
        ;(async () => {
            await c.publish("b", "10", false, 1)
            acked = true
        }).start()
        const all = await t.waitSent(PacketType.Publish, 11)
        expect(names()).toBe("aaaaaaaadab")
        t.feed(
            encodeAck(PacketType.Puback, (all[10] as PublishPacket).packetId)
        )
        const end = ds.millis() + 2000
        while (!acked && ds.millis() < end) await ds.sleep(5)
        expect(acked).toBe(true)
        await c.disconnect()
    })
    test("a write that suspends (busy socket) is never overtaken", async () => {
        const { c, t } = await connected({ writeBuffer: 32 })
        await c.publish("a", "1", false, 0)
        await c.publish("a", "2", false, 0)
        t.delayNext = 50
        await ds.sleep(1) // the buffer's fiber starts its write, which suspends
        for (let i = 3; i < 9; ++i) await c.publish("a", `${i}`, false, 0)
        await c.publish("d", Buffer.alloc(200), false, 0) // a direct write
        await c.flush()
        const order = t
            .sent(PacketType.Publish)
            .map(
                p =>
                    (p as PublishPacket).topic +
                    (p as PublishPacket).payload.length
            )
            .join(",")
        expect(order).toBe("a1,a1,a1,a1,a1,a1,a1,a1,d200")
        expect(topics(t).indexOf("1,2,3,4,5,6,7,8,")).toBe(0)
        await c.disconnect()
    })
    test("several publishing fibers, a write that suspends: every message arrives whole", async () => {
        // 6-byte packets, 16 bytes of buffer: two fit
        const { c, t } = await connected({ writeBuffer: 16 })
        await c.publish("a", "1", false, 0)
        await c.publish("a", "2", false, 0)
        t.delayNext = 50
        await ds.sleep(1) // the buffer's fiber writes 1,2; the write suspends
        await c.publish("a", "3", false, 0)
        await c.publish("a", "4", false, 0)
        let other = false
        ;(async () => {
            // runs while "5" waits for its turn to write 3,4
            await c.publish("a", "6", false, 0)
            await c.publish("a", "7", false, 0)
            other = true
        }).start()
        await c.publish("a", "5", false, 0) // full: write 3,4 first
        expect(other).toBe(true)
        await c.flush()
        const got = topics(t).split(",")
        got.sort()
        expect(got.join(",")).toBe("1,2,3,4,5,6,7")
        await c.disconnect()
    })
    test("disconnect writes the buffer before DISCONNECT; bad sizes throw", async () => {
        const { c, t } = await connected({ writeBuffer: 512 })
        await c.publish("t", "last", false, 0)
        await c.disconnect()
        expect(topics(t)).toBe("last")
        const last = t.written[t.written.length - 1]
        expect(last.type).toBe(PacketType.Disconnect)
        let msg = ""
        try {
            new MQTTClient("x", "h", 0, { writeBuffer: -1 })
        } catch (e) {
            msg = (e as Error).message
        }
        expect(msg.indexOf("writeBuffer") >= 0).toBe(true)
    })
})
