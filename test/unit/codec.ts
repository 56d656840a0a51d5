import * as ds from "@devicescript/core"
import { describe, expect, test } from "@devicescript/test"
import {
    AckPacket,
    ConnackPacket,
    ConnectPacket,
    FrameDecoder,
    decodePacketAt,
    Packet,
    PacketType,
    ProtocolError,
    PublishPacket,
    SubackPacket,
    checkFieldLength,
    checkFilter,
    checkTopicName,
    decodePacket,
    encodeAck,
    encodeConnack,
    encodeConnect,
    encodeEmpty,
    encodePublish,
    encodeSuback,
    encodeSubscribe,
    encodeUnsubscribe,
    isWellFormedUtf8,
    setDup,
    topicMatches,
} from "../../src/index"

/** Runs `fn` and returns the ProtocolError it throws; fails if it does not. */
function protocolError(fn: () => any): string {
    try {
        fn()
    } catch (e) {
        if (!(e instanceof ProtocolError))
            throw new Error(`expected ProtocolError, got ${e}`)
        return (e as Error).message
    }
    throw new Error("expected a ProtocolError, nothing thrown")
}

function contains(msg: string, part: string) {
    if (msg.indexOf(part) < 0)
        throw new Error(`"${msg}" does not mention "${part}"`)
}

function hexOf(b: Buffer) {
    return b.toString("hex")
}

/** Decodes one whole encoded packet through the frame decoder. */
function decodeOne(bytes: Buffer, max = 1000000): Packet {
    const f = new FrameDecoder(max, decodePacketAt)
    f.push(bytes)
    const p = f.next()
    if (!p) throw new Error("incomplete")
    expect(f.buffered()).toBe(0)
    return p
}

function frame(bytes: number[]) {
    return Buffer.from(bytes)
}

describe("remaining length", () => {
    test("boundaries use 1 to 4 bytes (§2.2.3)", () => {
        const sizes = [0, 127, 128, 16383, 16384]
        const headers = [2, 2, 3, 3, 4]
        for (let i = 0; i < sizes.length; ++i) {
            // topic "t" takes 3 bytes of the remaining length
            const payload = Buffer.alloc(Math.max(0, sizes[i] - 3))
            const b = encodePublish("t", payload, 0, false, false, 0)
            const remaining = 3 + payload.length
            expect(b.length - remaining).toBe(
                remaining < 128 ? 2 : remaining < 16384 ? 3 : 4
            )
        }
        expect(headers.length).toBe(5)
    })
    test("largest values decode from their headers", () => {
        // 2,097,151 = ff ff 7f, and 268,435,455 = ff ff ff 7f: both refused
        // by size before any body byte, the message shows the decoded length
        const f = new FrameDecoder(100, decodePacketAt)
        f.push(frame([0x30, 0xff, 0xff, 0x7f]))
        contains(protocolError(() => f.next()), "2097155 bytes")
        const g = new FrameDecoder(100, decodePacketAt)
        g.push(frame([0x30, 0xff, 0xff, 0xff, 0x7f]))
        contains(protocolError(() => g.next()), "268435460 bytes")
    })
    test("a fifth length byte is an error", () => {
        const f = new FrameDecoder(300000000, decodePacketAt)
        f.push(frame([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))
        contains(protocolError(() => f.next()), "of more than four bytes")
    })
    test("after an error the decoder stays failed until reset", () => {
        const f = new FrameDecoder(10, decodePacketAt)
        f.push(frame([0x30, 0x7f]))
        protocolError(() => f.next())
        f.push(encodeEmpty(PacketType.Pingresp))
        protocolError(() => f.next())
        f.reset()
        f.push(encodeEmpty(PacketType.Pingresp))
        expect(f.next().type).toBe(PacketType.Pingresp)
    })
})

describe("strings", () => {
    test("lengths are UTF-8 bytes, not characters", () => {
        const b = encodePublish("é€", Buffer.alloc(0), 0, false, false, 0)
        // 2 + 5 bytes of topic
        expect(b[1]).toBe(7)
        expect(b[3]).toBe(5)
        const p = decodeOne(b) as PublishPacket
        expect(p.topic).toBe("é€")
    })
    test("a string over 65535 bytes is refused", () => {
        // a real 64 KB string does not fit the 64 KB heap: check the rule
        contains(protocolError(() => checkFieldLength(65536, "topic")), "65535")
        checkFieldLength(65535, "topic")
        let s = "€€€€€€€€" // 24 bytes, 8 characters
        for (let i = 0; i < 7; ++i) s = s + s // 3072 bytes
        const b = encodePublish(s, Buffer.alloc(0), 0, false, false, 0)
        expect(b.length).toBe(3072 + 2 + 3)
        expect((decodeOne(b) as PublishPacket).topic.length).toBe(1024)
    })
    test("malformed UTF-8 and U+0000 are refused (§1.5.3)", () => {
        expect(isWellFormedUtf8(frame([0x61, 0xc3, 0xa9]), 0, 3)).toBe(true)
        expect(isWellFormedUtf8(frame([0x61, 0x00]), 0, 2)).toBe(false)
        expect(isWellFormedUtf8(frame([0xc3]), 0, 1)).toBe(false)
        expect(isWellFormedUtf8(frame([0xc0, 0x80]), 0, 2)).toBe(false)
        expect(isWellFormedUtf8(frame([0xed, 0xa0, 0x80]), 0, 3)).toBe(false)
        expect(isWellFormedUtf8(frame([0xf4, 0x90, 0x80, 0x80]), 0, 4)).toBe(
            false
        )
        expect(isWellFormedUtf8(frame([0xf0, 0x9f, 0x98, 0x80]), 0, 4)).toBe(
            true
        )
        const bad = frame([0x30, 0x05, 0x00, 0x02, 0x61, 0xff, 0x78])
        contains(protocolError(() => decodeOne(bad)), "UTF-8")
        contains(
            protocolError(() =>
                encodePublish("a\u0000b", Buffer.alloc(0), 0, false, false, 0)
            ),
            "U+0000"
        )
    })
})

describe("fixed header flags", () => {
    test("PUBREL, SUBSCRIBE, UNSUBSCRIBE carry 0b0010", () => {
        expect(encodeAck(PacketType.Pubrel, 1)[0]).toBe(0x62)
        expect(encodeSubscribe(1, [{ topic: "a", qos: 0 }])[0]).toBe(0x82)
        expect(encodeUnsubscribe(1, ["a"])[0]).toBe(0xa2)
        contains(protocolError(() => decodeOne(frame([0x60, 2, 0, 1]))), "PUBREL")
        contains(
            protocolError(() => decodeOne(frame([0x80, 4, 0, 1, 0, 0]))),
            "SUBSCRIBE"
        )
        expect(decodeOne(frame([0x62, 2, 0, 1])).type).toBe(PacketType.Pubrel)
    })
    test("other packets have flags 0", () => {
        contains(protocolError(() => decodeOne(frame([0x41, 2, 0, 1]))), "PUBACK")
        contains(protocolError(() => decodeOne(frame([0xd1, 0]))), "PINGRESP")
        contains(protocolError(() => decodeOne(frame([0x21, 2, 0, 0]))), "CONNACK")
    })
    test("reserved types 0 and 15 are refused", () => {
        contains(protocolError(() => decodeOne(frame([0x00, 0]))), "reserved")
        contains(protocolError(() => decodeOne(frame([0xf0, 0]))), "reserved")
    })
    test("QoS 3 is invalid, DUP only with QoS > 0", () => {
        contains(
            protocolError(() => decodeOne(frame([0x36, 5, 0, 1, 0x61, 0, 1]))),
            "QoS 3"
        )
        contains(
            protocolError(() => decodeOne(frame([0x38, 3, 0, 1, 0x61]))),
            "DUP"
        )
        contains(
            protocolError(() =>
                encodePublish("a", Buffer.alloc(0), 0, false, true, 0)
            ),
            "DUP"
        )
        contains(
            protocolError(() =>
                encodePublish("a", Buffer.alloc(0), 3, false, false, 1)
            ),
            "QoS"
        )
    })
    test("setDup marks a stored PUBLISH in place", () => {
        const b = encodePublish("a", Buffer.from("x"), 1, true, false, 9)
        setDup(b)
        const p = decodeOne(b) as PublishPacket
        expect(p.dup).toBe(true)
        expect(p.retain).toBe(true)
        expect(p.packetId).toBe(9)
    })
})

function connect(fields: any): ConnectPacket {
    const p: any = {
        type: PacketType.Connect,
        protocolVersion: 4,
        clientId: "dev1",
        cleanSession: true,
        keepalive: 60,
    }
    const keys = Object.keys(fields)
    for (let i = 0; i < keys.length; ++i) p[keys[i]] = fields[keys[i]]
    return p as ConnectPacket
}

describe("CONNECT", () => {
    test("3.1.1 round trip with will, user and password", () => {
        const c = connect({
            username: "user",
            password: Buffer.from("pw"),
            will: { topic: "w", payload: Buffer.from("bye"), qos: 2, retain: true },
            keepalive: 65535,
            cleanSession: false,
        })
        const b = encodeConnect(c)
        expect(hexOf(b.slice(2, 9))).toBe("00044d51545404")
        expect(b[9]).toBe(0x80 | 0x40 | 0x20 | 0x10 | 0x04)
        const d = decodeOne(b) as ConnectPacket
        expect(d.keepalive).toBe(65535)
        expect(d.username).toBe("user")
        expect(d.password.toString()).toBe("pw")
        expect(d.will.qos).toBe(2)
        expect(d.will.retain).toBe(true)
        expect(d.cleanSession).toBe(false)
    })
    test("MQTT 3.1 uses MQIsdp level 3", () => {
        const b = encodeConnect(connect({ protocolVersion: 3 }))
        expect(b.slice(4, 10).toString()).toBe("MQIsdp")
        expect(b[10]).toBe(3)
        expect((decodeOne(b) as ConnectPacket).protocolVersion).toBe(3)
    })
    test("password only with user name in 3.1.1", () => {
        contains(
            protocolError(() =>
                encodeConnect(connect({ password: Buffer.from("x") }))
            ),
            "user name"
        )
        // flags 0x42: password + clean session, no user
        const bad = frame([
            0x10, 16, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x42, 0, 60, 0, 1, 0x61,
            0, 1, 0x70,
        ])
        contains(protocolError(() => decodeOne(bad)), "password")
    })
    test("will QoS and retain only with the will flag", () => {
        // flags 0x22: will retain without will
        const bad = frame([
            0x10, 13, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x22, 0, 60, 0, 1, 0x61,
        ])
        contains(protocolError(() => decodeOne(bad)), "will")
        const bad2 = frame([
            0x10, 13, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x0a, 0, 60, 0, 1, 0x61,
        ])
        contains(protocolError(() => decodeOne(bad2)), "will")
    })
    test("reserved connect flag must be 0", () => {
        const bad = frame([
            0x10, 13, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x03, 0, 60, 0, 1, 0x61,
        ])
        contains(protocolError(() => decodeOne(bad)), "reserved")
    })
    test("empty client id only with clean session", () => {
        expect(
            encodeConnect(connect({ clientId: "", cleanSession: true })).length
        ).toBe(14)
        contains(
            protocolError(() =>
                encodeConnect(connect({ clientId: "", cleanSession: false }))
            ),
            "client id"
        )
    })
    test("keepalive is 16 bits", () => {
        contains(
            protocolError(() => encodeConnect(connect({ keepalive: 65536 }))),
            "keepalive"
        )
        contains(
            protocolError(() => encodeConnect(connect({ keepalive: -1 }))),
            "keepalive"
        )
        const b = encodeConnect(connect({ keepalive: 300 }))
        expect(b[10]).toBe(1)
        expect(b[11]).toBe(44)
    })
    test("unknown protocol name or level is refused", () => {
        const bad = frame([
            0x10, 13, 0, 4, 0x4d, 0x51, 0x54, 0x54, 5, 0x02, 0, 60, 0, 1, 0x61,
        ])
        contains(protocolError(() => decodeOne(bad)), "protocol")
    })
})

describe("CONNACK and SUBACK", () => {
    test("CONNACK session present and codes 0..5", () => {
        for (let rc = 0; rc <= 5; ++rc) {
            const d = decodeOne(encodeConnack(false, rc)) as ConnackPacket
            expect(d.returnCode).toBe(rc)
        }
        const sp = decodeOne(encodeConnack(true, 0)) as ConnackPacket
        expect(sp.sessionPresent).toBe(true)
        contains(protocolError(() => decodeOne(frame([0x20, 2, 0, 6]))), "6")
        contains(protocolError(() => decodeOne(frame([0x20, 2, 2, 0]))), "reserved")
        contains(protocolError(() => decodeOne(frame([0x20, 2, 1, 5]))), "session")
        contains(protocolError(() => decodeOne(frame([0x20, 3, 0, 0, 0]))), "unexpected")
    })
    test("SUBACK return codes 0, 1, 2 and 0x80", () => {
        const d = decodeOne(encodeSuback(7, [0, 1, 2, 0x80])) as SubackPacket
        expect(d.packetId).toBe(7)
        expect(d.granted.length).toBe(4)
        expect(d.granted[3]).toBe(0x80)
        contains(protocolError(() => decodeOne(frame([0x90, 3, 0, 1, 3]))), "return code")
        contains(protocolError(() => decodeOne(frame([0x90, 2, 0, 1]))), "no return code")
    })
    test("packet id 0 is refused", () => {
        contains(protocolError(() => decodeOne(frame([0x40, 2, 0, 0]))), "packet id")
        contains(protocolError(() => encodeAck(PacketType.Puback, 0)), "packet id")
        contains(protocolError(() => encodeAck(PacketType.Puback, 65536)), "packet id")
        const a = decodeOne(encodeAck(PacketType.Pubcomp, 65535)) as AckPacket
        expect(a.packetId).toBe(65535)
    })
    test("truncated and overlong bodies are refused", () => {
        contains(protocolError(() => decodeOne(frame([0x40, 1, 0]))), "past the end")
        contains(protocolError(() => decodeOne(frame([0x40, 3, 0, 1, 0]))), "unexpected")
        contains(protocolError(() => decodeOne(frame([0xc0, 1, 0]))), "unexpected")
    })
})

describe("topics", () => {
    test("publish topics refuse wildcards and empty", () => {
        contains(protocolError(() => checkTopicName("a/+")), "wildcard")
        contains(protocolError(() => checkTopicName("#")), "wildcard")
        contains(protocolError(() => checkTopicName("")), "empty")
        checkTopicName("a/b c/$x")
    })
    test("filters: wildcards fill whole levels, # last", () => {
        const ok = ["#", "+", "a/#", "+/+/c", "a/+/#", "/", "$SYS/#", "a//+"]
        ok.forEach(f => checkFilter(f))
        const bad = ["a/#/b", "a+/b", "a/b#", "#/", "a/+b", "++", ""]
        bad.forEach(f => {
            protocolError(() => checkFilter(f))
        })
    })
    test("matching follows §4.7", () => {
        expect(topicMatches("a/#", "a")).toBe(true)
        expect(topicMatches("a/#", "a/b/c")).toBe(true)
        expect(topicMatches("a/+", "a/b")).toBe(true)
        expect(topicMatches("a/+", "a/b/c")).toBe(false)
        expect(topicMatches("+/+", "/x")).toBe(true)
        expect(topicMatches("#", "$SYS/x")).toBe(false)
        expect(topicMatches("$SYS/#", "$SYS/x")).toBe(true)
        expect(topicMatches("a/b", "a/bc")).toBe(false)
        expect(topicMatches("a/+/c", "a//c")).toBe(true)
    })
})

describe("frame decoder", () => {
    test("many packets in one chunk", () => {
        const parts: Buffer[] = []
        for (let i = 1; i <= 20; ++i) parts.push(encodeAck(PacketType.Puback, i))
        parts.push(encodePublish("t/x", Buffer.alloc(300), 1, false, false, 21))
        const f = new FrameDecoder(1000, decodePacketAt)
        f.push(Buffer.concat(...parts))
        let n = 0
        let last: Packet = null
        for (;;) {
            const p = f.next()
            if (!p) break
            last = p
            n++
        }
        expect(n).toBe(21)
        expect((last as PublishPacket).payload.length).toBe(300)
        expect(f.buffered()).toBe(0)
    })
    test("one byte at a time", async () => {
        const b = encodePublish("t/y", Buffer.alloc(5000), 2, false, false, 3)
        const f = new FrameDecoder(6000, decodePacketAt)
        let got: Packet = null
        for (let i = 0; i < b.length; ++i) {
            f.push(b.slice(i, i + 1))
            const p = f.next()
            if (p) got = p
            else expect(f.buffered()).toBe(i + 1)
            if (i % 50 === 0) await ds.sleep(0)
        }
        expect((got as PublishPacket).payload.length).toBe(5000)
    })
    test("oversize is refused from the header alone", () => {
        const f = new FrameDecoder(1024, decodePacketAt)
        // header of a 1 MB PUBLISH, no body
        f.push(frame([0x30, 0x80, 0x80, 0x40]))
        contains(protocolError(() => f.next()), "over maxPacketSize")
    })
    test("a packet of exactly the maximum size passes", () => {
        const b = encodePublish("t", Buffer.alloc(95), 0, false, false, 0)
        expect(b.length).toBe(100)
        expect(decodeOne(b, 100).type).toBe(PacketType.Publish)
        protocolError(() => decodeOne(b, 99))
    })
})

describe("encode every type", () => {
    test("all fourteen round trip", () => {
        const packets: Buffer[] = [
            encodeConnect(connect({})),
            encodeConnack(true, 0),
            encodePublish("a/b", Buffer.from("m"), 2, true, true, 65535),
            encodeAck(PacketType.Puback, 1),
            encodeAck(PacketType.Pubrec, 2),
            encodeAck(PacketType.Pubrel, 3),
            encodeAck(PacketType.Pubcomp, 4),
            encodeSubscribe(5, [
                { topic: "a/#", qos: 2 },
                { topic: "+/b", qos: 0 },
            ]),
            encodeSuback(5, [2, 0x80]),
            encodeUnsubscribe(6, ["a/#", "x"]),
            encodeAck(PacketType.Unsuback, 6),
            encodeEmpty(PacketType.Pingreq),
            encodeEmpty(PacketType.Pingresp),
            encodeEmpty(PacketType.Disconnect),
        ]
        for (let i = 0; i < packets.length; ++i) {
            const d = decodeOne(packets[i])
            expect(d.type).toBe(i + 1)
        }
        const pr = decodePacket(0x62, frame([0, 3])) as AckPacket
        expect(pr.packetId).toBe(3)
    })
})
