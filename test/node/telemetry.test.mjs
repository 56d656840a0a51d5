// devs/telemetry.ts against aedes on a random port: retained online/offline
// status through the will, QoS 1 telemetry, a command that toggles the LED,
// riding out a broker-side cut, and the will when the simulator dies.
import { test } from "node:test"
import assert from "node:assert/strict"
import { startAedes, connectPeer, collect, endPeer } from "../tools/brokers.mjs"
import { runDevice } from "../tools/sim.mjs"

const CLIENT = "tele-test"
const PREFIX = `devices/${CLIENT}`
const PASSWORD = "s3cret-Passw0rd"

/** Subscribes a fresh peer to topic and returns the first (retained) message. */
async function retainedOf(port, topic) {
    const peer = await connectPeer(port)
    try {
        const got = await collect(peer, topic, { qos: 1 })
        const [m] = await got.waitForCount(1, 3000)
        return m
    } finally {
        await endPeer(peer)
    }
}

test("devs/telemetry.ts: retained status, QoS 1 telemetry, LED command, reconnect, will", async () => {
    const broker = await startAedes()
    const peer = await connectPeer(broker.port)
    let dev
    try {
        const status = await collect(peer, `${PREFIX}/status`, { qos: 1 })
        const telemetry = await collect(peer, `${PREFIX}/telemetry`, { qos: 2 })
        dev = await runDevice(
            "devs/telemetry.ts",
            {
                host: "127.0.0.1",
                port: broker.port,
                clientId: CLIENT,
                user: "tele-user",
                password: PASSWORD,
                intervalMs: 700,
            },
            { timeoutMs: 60000, name: "telemetry" }
        )
        await dev.waitFor("status: online", 20000)

        // "online" is retained: a newcomer gets it at once
        const first = await retainedOf(broker.port, `${PREFIX}/status`)
        assert.equal(first.payload.toString(), "online")
        assert.equal(first.retain, true, "online must be retained")
        await status.waitForCount(1, 3000)
        assert.equal(status.messages[0].payload.toString(), "online")

        // telemetry: at least 2 messages at QoS 1, JSON with uptime and counter
        const msgs = await telemetry.waitForCount(2, 5000)
        for (const m of msgs.slice(0, 2)) {
            assert.equal(m.qos, 1, "telemetry is published at QoS 1")
            const body = JSON.parse(m.payload.toString())
            assert.equal(typeof body.uptime, "number")
            assert.equal(typeof body.count, "number")
        }
        const c0 = JSON.parse(msgs[0].payload.toString()).count
        const c1 = JSON.parse(msgs[1].payload.toString()).count
        assert.equal(c1, c0 + 1, "the counter counts")

        // commands toggle the LED
        let from = dev.lines.length
        await peer.publishAsync(`${PREFIX}/cmd`, "toggle", { qos: 1 })
        await dev.waitFor("LED on", 5000, from)
        from = dev.lines.length
        await peer.publishAsync(`${PREFIX}/cmd`, "toggle", { qos: 1 })
        await dev.waitFor("LED off", 5000, from)
        from = dev.lines.length
        await peer.publishAsync(`${PREFIX}/cmd`, "on", { qos: 1 })
        await dev.waitFor("LED on", 5000, from)
        // the telemetry reports the LED state
        const before = telemetry.messages.length
        const withLed = await telemetry.waitForCount(before + 2, 5000)
        assert.equal(JSON.parse(withLed[withLed.length - 1].payload.toString()).led, true)

        // the broker cuts the device: the will says offline, the device
        // reconnects by itself and says online again, telemetry goes on
        const client = broker.broker.clients[CLIENT]
        assert.ok(client, "the device is connected to aedes")
        const statusBefore = status.messages.length
        const telemetryBefore = telemetry.messages.length
        from = dev.lines.length
        client.conn.destroy()
        await dev.waitFor("connection lost", 5000, from)
        await dev.waitFor("reconnected", 15000, from)
        await dev.waitFor("status: online", 5000, from)
        const afterCut = (await status.waitForCount(statusBefore + 2, 5000))
            .slice(statusBefore)
            .map(m => m.payload.toString())
        assert.deepEqual(afterCut.slice(0, 2), ["offline", "online"])
        await telemetry.waitForCount(telemetryBefore + 2, 8000)

        // main(params) drove the device: the settings-driven start stayed quiet
        assert.ok(
            !dev.lines.some(l => l.includes("umqtt_telemetry")),
            "the settings-driven app started too"
        )

        // nothing the device printed contains the password
        for (const l of dev.output)
            assert.ok(!l.includes(PASSWORD), `the password was logged: ${l}`)

        // the simulator dies: the broker publishes the retained will
        const statusBeforeKill = status.messages.length
        await dev.kill()
        dev = null
        const afterKill = await status.waitForCount(statusBeforeKill + 1, 10000)
        assert.equal(afterKill[statusBeforeKill].payload.toString(), "offline")
        const last = await retainedOf(broker.port, `${PREFIX}/status`)
        assert.equal(last.payload.toString(), "offline")
        assert.equal(last.retain, true, "offline must be retained")
    } finally {
        if (dev) await dev.kill()
        await endPeer(peer)
        await broker.close()
    }
})
