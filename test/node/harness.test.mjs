// Tests of the test harness itself: simulator runs, time bounds, brokers.

import assert from "node:assert/strict"
import { describe, test } from "node:test"
import {
    collect,
    connectPeer,
    endPeer,
    mosquittoAvailable,
    startAedes,
    startMosquitto,
} from "../tools/brokers.mjs"
import { pidAlive } from "../tools/proc.mjs"
import {
    buildDevs,
    runDevice,
    runDeviceToEnd,
    writeEntry,
} from "../tools/sim.mjs"

const HELLO = "test/tools/fixtures/hello.ts"

describe("simulator", () => {
    test("runs a program with params, exit code 0", async () => {
        const dev = await runDevice(
            HELLO,
            { name: 'Ada "q" 1' },
            { timeoutMs: 10000 }
        )
        const line = await dev.waitFor(/^hello /, 10000)
        assert.equal(line, 'hello Ada "q" 1 mode=ok')
        const res = await dev.done
        assert.equal(res.code, 0, res.output.join("\n"))
        assert.equal(res.timedOut, false)
        assert.ok(res.lines.includes('bye Ada "q" 1'), res.lines.join("\n"))
        // waitFor also resolves for lines that arrived before the call
        assert.equal(await dev.waitFor("bye"), 'bye Ada "q" 1')
        // and rejects once the process is gone
        await assert.rejects(dev.waitFor("never printed", 1000), /exited/)
    })

    test("a program that throws exits non-zero", async () => {
        const res = await runDeviceToEnd(
            HELLO,
            { name: "t", mode: "throw" },
            { timeoutMs: 10000 }
        )
        assert.notEqual(res.code, 0)
        assert.equal(res.timedOut, false)
        assert.ok(
            res.lines.some(l => l.includes("boom t")),
            res.output.join("\n")
        )
    })

    test("a program that never exits is stopped by the time bound", async () => {
        const dev = await runDevice(
            HELLO,
            { mode: "hang" },
            { timeoutMs: 3000 }
        )
        await assert.rejects(dev.waitFor("not there", 10000), /exited/)
        const res = await dev.done
        assert.notEqual(res.code, 0)
        assert.equal(res.timedOut, true)
        assert.ok(res.lines.includes("tick"))
        assert.equal(pidAlive(dev.pid), false)
    })

    test("kill() stops a running program", async () => {
        const dev = await runDevice(
            HELLO,
            { mode: "hang" },
            { timeoutMs: 20000 }
        )
        await dev.waitFor("tick", 10000)
        const res = await dev.kill()
        assert.equal(res.signal, "SIGKILL")
        assert.equal(pidAlive(dev.pid), false)
    })

    test("concurrent builds get their own bytecode", async () => {
        const names = ["c1", "c2", "c3"]
        const devs = await Promise.all(
            names.map(async n =>
                buildDevs(await writeEntry(HELLO, { name: n }, "conc"))
            )
        )
        assert.equal(new Set(devs).size, 3)
        const { startDevice } = await import("../tools/sim.mjs")
        const results = await Promise.all(
            devs.map(d => startDevice(d, { timeoutMs: 10000 }).done)
        )
        results.forEach((r, i) => {
            assert.equal(r.code, 0)
            assert.ok(
                r.lines.includes(`hello ${names[i]} mode=ok`),
                r.lines.join("\n")
            )
        })
    })

    test("a compile error is reported with the compiler output", async () => {
        await assert.rejects(
            runDevice("test/tools/fixtures/does-not-exist.ts", { a: 1 }),
            /devs build .* failed[\s\S]*does-not-exist/
        )
    })
})

async function roundTrip(port) {
    const sub = await connectPeer(port)
    const pub = await connectPeer(port)
    try {
        const c = await collect(sub, "harness/+/x")
        await pub.publishAsync("harness/a/x", "one", { qos: 1 })
        await pub.publishAsync("harness/b/y", "ignored", { qos: 0 })
        await pub.publishAsync("harness/b/x", Buffer.from([0, 255]), { qos: 0 })
        const msgs = await c.waitForCount(2, 5000)
        assert.deepEqual(
            msgs.map(m => [m.topic, m.payload.toString("hex"), m.qos]),
            [
                ["harness/a/x", Buffer.from("one").toString("hex"), 1],
                ["harness/b/x", "00ff", 0],
            ]
        )
    } finally {
        await endPeer(sub)
        await endPeer(pub)
    }
}

describe("brokers", () => {
    test("aedes: publish/subscribe round trip", async () => {
        const broker = await startAedes()
        try {
            assert.ok(broker.port > 0)
            await roundTrip(broker.port)
            // close() must not hang with a client still connected
            await connectPeer(broker.port)
        } finally {
            await broker.close()
        }
    })

    test("aedes: authenticate callback", async () => {
        const broker = await startAedes({
            authenticate: (client, user, pass, cb) =>
                cb(null, user === "u" && pass?.toString() === "p"),
        })
        try {
            await endPeer(
                await connectPeer(broker.port, { username: "u", password: "p" })
            )
            await assert.rejects(
                connectPeer(broker.port, { username: "u", password: "x" })
            )
        } finally {
            await broker.close()
        }
    })

    test("mosquitto: round trip, close leaves no process", async t => {
        if (!mosquittoAvailable()) return t.skip("mosquitto not installed")
        const m = await startMosquitto()
        const pid = m.pid
        try {
            await roundTrip(m.port)
            await m.waitForLog(/New client connected .* as peer-/)
        } finally {
            await m.close()
        }
        assert.equal(pidAlive(pid), false)
    })

    test("mosquitto: persistence survives restart", async t => {
        if (!mosquittoAvailable()) return t.skip("mosquitto not installed")
        const m = await startMosquitto({ persistence: true })
        try {
            const pub = await connectPeer(m.port)
            await pub.publishAsync("harness/retained", "kept", {
                qos: 1,
                retain: true,
            })
            await endPeer(pub)
            const oldPid = m.pid
            await m.restart()
            assert.notEqual(m.pid, oldPid)
            assert.equal(pidAlive(oldPid), false)
            const sub = await connectPeer(m.port)
            const c = await collect(sub, "harness/retained")
            const [msg] = await c.waitForCount(1, 5000)
            assert.equal(msg.payload.toString(), "kept")
            assert.equal(msg.retain, true)
            await endPeer(sub)
        } finally {
            await m.close()
        }
    })
})
