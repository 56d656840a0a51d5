// `npm run budgets`: measures the resource budgets of the library and writes
// docs/budgets.md.
//
//   1. bytecode size of every application in devs/ and of the same seed
//      example on @devicescript/net's built-in MQTT client
//      (test/devs/budget-builtin.ts), from `devs build --stats`; the seed
//      example app (devs/main.ts) must fit in 32 KB with everything in (the
//      image lives in the firmware's flash storage, not in the heap);
//   2. the heap left to the application: the largest `Buffer.alloc` that
//      succeeds in an empty program, and while connected with 10
//      subscriptions and a full in-flight window (test/devs/budget-heap.ts):
//      at least 32 KB;
//   3. the largest payload published and received, with the default
//      maxPacketSize and with a raised one (test/devs/budget-payload.ts).
//
// Out of memory is a panic in DeviceScript, so every size is tried in a
// fresh simulator and the limits are found by bisection.
//
// Exits 1 when a budget is missed (the file is written anyway).
//
// Options: --sizes  only the bytecode sizes and their budget (fast), printed;
//                   docs/budgets.md is left as it is
//          --check  accepted for older scripts: checking is the default
//
// `devs build` writes the fixed path .devicescript/bin, so the --stats builds
// here take the same cross-process lock as test/tools/sim.mjs (an atomic
// `mkdir test/.gen/build.lock` holding the owner's pid) and read the results
// before releasing it.

import { execFileSync } from "node:child_process"
import {
    existsSync,
    mkdirSync,
    readdirSync,
    readFileSync,
    rmSync,
    statSync,
    writeFileSync,
} from "node:fs"
import { join, relative } from "node:path"
import {
    startAedes,
    connectPeer,
    collect,
    endPeer,
} from "../test/tools/brokers.mjs"
import {
    buildDevs,
    withBuildLock,
    runCollect,
    cliPath,
    genDir,
    repoRoot,
    startDevice,
    writeEntry,
} from "../test/tools/sim.mjs"

const args = process.argv.slice(2)
const SIZES_ONLY = args.includes("--sizes")

const SEED_APP = "devs/main.ts"
/** the seed example's whole bytecode image, everything in */
const SEED_BUDGET = 32 * 1024
const HEAP_TARGET = 32 * 1024
const PAYLOAD_TARGET = 16 * 1024
const RAISED_MAX_PACKET = 256 * 1024
/** PUBLISH bytes besides the payload: fixed header 1 + 3 length bytes, topic, packet id 2 */
const overhead = topic => 1 + 3 + 2 + topic.length + 2
const TOPIC_OF = { publish: "budget/payload/out", receive: "budget/payload/in" }

const delay = ms => new Promise(r => setTimeout(r, ms))
const log = (...a) => console.log(...a)
const kb = n => (n / 1024).toFixed(1) + " KB"

const bytecodeDir = join(repoRoot, ".devicescript/bin")

/**
 * `devs build --stats entry` under the build lock.
 * @returns {{ devsBytes: number, functions: number, data: number, strings: number,
 *   byFile: [string, number][] }}
 */
async function statsBuild(entryRel) {
    return withBuildLock(async () => {
        rmSync(join(bytecodeDir, "bytecode.devs"), { force: true })
        const r = await runCollect(
            process.execPath,
            [cliPath, "--no-colors", "build", "--stats", entryRel],
            { timeoutMs: 120_000, name: `budgets: build --stats ${entryRel}` }
        )
        const devsPath = join(bytecodeDir, "bytecode.devs")
        if (r.code !== 0 || !existsSync(devsPath))
            throw new Error(
                `devs build --stats ${entryRel} failed:\n${r.output}`
            )
        const devsBytes = statSync(devsPath).size
        const sizes = readFileSync(
            join(bytecodeDir, "bytecode-sizes.md"),
            "utf8"
        )
        const dbg = JSON.parse(
            readFileSync(join(bytecodeDir, "bytecode-dbg.json"), "utf8")
        )
        const num = re => {
            const m = re.exec(sizes)
            return m ? parseInt(m[1]) : NaN
        }
        // function sizes by source file (strings and data are not attributed)
        // a location is [offset, length] in the concatenation of the sources
        const starts = []
        let at = 0
        for (const s of [...dbg.sources].sort((a, b) => a.index - b.index)) {
            starts.push({ path: s.path, from: at, to: at + s.length })
            at += s.length
        }
        const byFileMap = new Map()
        for (const f of dbg.functions) {
            const pos = f.location ? f.location[0] : -1
            const src = starts.find(s => pos >= s.from && pos < s.to)
            let name = src ? src.path : "?"
            // the compiler's setup of all class prototypes sits at offset 0
            if (f.name === "prototype" && pos === 0)
                name = "(prototype setup of all classes)"
            else if (name.startsWith("test/.gen/")) name = "(generated entry)"
            name = name.replace(
                /^node_modules\/(@devicescript\/[^/]+)\/.*$/,
                "$1"
            )
            byFileMap.set(name, (byFileMap.get(name) || 0) + f.size)
        }
        const topFunctions = [...sizes.matchAll(/^\s*(\d+) \| `([^`]+)`/gm)]
            .map(m => [m[2], parseInt(m[1])])
            .sort((a, b) => b[1] - a[1])
            .slice(0, 12)
        return {
            devsBytes,
            topFunctions,
            functions: num(/^\s*(\d+) \| Function TOTAL/m),
            data: num(/^\s*(\d+) \| Data TOTAL/m),
            strings: num(/^\s*(\d+) \| strings/m),
            byFile: [...byFileMap].sort((a, b) => b[1] - a[1]),
        }
    })
}

// ------------------------------------------------------------ simulator runs

/** Waits for one of the program lines, or the end of the program. */
async function outcome(dev, patterns, ms) {
    const waits = patterns.map(([p, what]) =>
        dev.waitFor(p, ms).then(line => ({ what, line }))
    )
    const died = dev.done.then(r => ({
        what: "died",
        line:
            r.output.find(l =>
                /PANIC|out of memory|RangeError|Exception/i.test(l)
            ) || `exit ${r.code} ${r.signal || ""}`,
    }))
    try {
        return await Promise.any([...waits, died])
    } catch {
        return { what: "timeout", line: dev.lines.slice(-3).join(" | ") }
    } finally {
        for (const w of waits) w.catch(() => {})
    }
}

/** Reason of the failure: the message in the program's output. */
function failure(dev) {
    const out = dev.output.map(l => l.replace(/^WASM> ?/, "").trim())
    const oom = out.findIndex(l => /Exception: OutOfMemory/.test(l))
    // (no source location: the simulator names stack frames from
    // .devicescript/bin/bytecode-dbg.json, which is the latest build of
    // whoever built last, not necessarily of this program)
    if (oom >= 0) return "out of memory (PANIC 60004)"
    const l = out.find(l =>
        /message: |PANIC|out of memory|PUBFAIL|LOST/.test(l)
    )
    return l || dev.lines.slice(-1)[0] || "?"
}

/**
 * Bisects the largest n in [lo, hi) for which trial(n) is true, to `step`.
 * trial(lo) is checked first. With `guess`, guess and guess + 1 are tried
 * first: ok then failing settles it in two runs. Returns { best, firstFail,
 * why } where why is the failure message at firstFail.
 */
async function bisect(name, lo, hi, step, trial, guess) {
    const t = async n => {
        const r = await trial(n)
        log(`  ${name}: ${n} ${r.ok ? "ok" : "FAIL (" + r.why + ")"}`)
        return r
    }
    const first = await t(lo)
    if (!first.ok) return { best: 0, firstFail: lo, why: first.why }
    let failWhy = ""
    if (guess && guess > lo && guess + 1 < hi) {
        const g = await t(guess)
        if (g.ok) {
            lo = guess
            const g1 = await t(guess + 1)
            if (!g1.ok)
                return { best: guess, firstFail: guess + 1, why: g1.why }
            lo = guess + 1
        } else {
            hi = guess
            failWhy = g.why
        }
    }
    while (hi - lo > step) {
        const mid = Math.floor((lo + hi) / 2)
        const r = await t(mid)
        if (r.ok) lo = mid
        else {
            hi = mid
            failWhy = r.why
        }
    }
    return { best: lo, firstFail: hi, why: failWhy }
}

// heap: an empty program (one build per size: nothing to receive it with)
async function heapBareTrial(size) {
    const devs = await buildDevs(
        await writeEntry(
            "test/devs/budget-heap.ts",
            { port: 0, bare: true, size },
            "budget-heap-bare",
            // compiled in, as an application has them: heap measurements
            { compiled: true }
        )
    )
    const dev = startDevice(devs, { timeoutMs: 15000 })
    try {
        const o = await outcome(dev, [[`OK ${size} `, "ok"]], 10000)
        return { ok: o.what === "ok", why: o.what === "ok" ? "" : failure(dev) }
    } finally {
        await dev.kill()
        rmSync(devs, { force: true })
    }
}

// heap: connected, 10 subscriptions, the in-flight window full; one broker
// and one build for every size (the size arrives over MQTT)
async function heapRig() {
    let held = []
    const heldCounts = []
    const broker = await startAedes({
        authorizePublish(client, packet, cb) {
            // hold the device's publishes: no PUBACK while we measure
            if (
                client &&
                client.id === "budget-heap" &&
                packet.topic === "budget/heap/out"
            )
                held.push(cb)
            else cb(null)
        },
    })
    const devs = await buildDevs(
        await writeEntry(
            "test/devs/budget-heap.ts",
            { port: broker.port },
            "budget-heap",
            // compiled in, as an application has them: heap measurements
            { compiled: true }
        )
    )
    return {
        heldCounts,
        async trial(size) {
            const dev = startDevice(devs, { timeoutMs: 30000 })
            try {
                const w = await outcome(dev, [[/^WINDOW /, "window"]], 15000)
                if (w.what !== "window")
                    return { ok: false, why: `setup: ${failure(dev)}` }
                if (!/acked=0 failed=0/.test(w.line))
                    return { ok: false, why: `window not full: ${w.line}` }
                heldCounts.push(held.length)
                await new Promise(r =>
                    broker.broker.publish(
                        {
                            cmd: "publish",
                            topic: "budget/heap/size",
                            payload: Buffer.from(String(size)),
                            qos: 0,
                            retain: false,
                            dup: false,
                        },
                        r
                    )
                )
                const o = await outcome(dev, [[`OK ${size} `, "ok"]], 10000)
                return {
                    ok: o.what === "ok",
                    why: o.what === "ok" ? "" : failure(dev),
                }
            } finally {
                await dev.kill()
                const cbs = held
                held = []
                for (const cb of cbs) cb(new Error("measurement over"))
            }
        },
        async close() {
            await broker.close()
            rmSync(devs, { force: true })
        },
    }
}

// payloads: one aedes per configuration on a fixed port for all its runs
async function payloadRig(maxPacketSize) {
    const broker = await startAedes()
    const params = { port: broker.port }
    if (maxPacketSize) params.maxPacketSize = maxPacketSize
    const devs = await buildDevs(
        await writeEntry(
            "test/devs/budget-payload.ts",
            params,
            "budget-payload",
            // compiled in, as an application has them: heap measurements
            { compiled: true }
        )
    )
    let n = 0
    const start = async () => {
        const dev = startDevice(devs, { timeoutMs: 30000 })
        const o = await outcome(dev, [["READY", "ready"]], 15000)
        if (o.what !== "ready") {
            await dev.kill()
            throw new Error(`budget-payload did not start: ${failure(dev)}`)
        }
        return dev
    }
    return {
        async publish(size) {
            const dev = await start()
            const peer = await connectPeer(broker.port)
            try {
                const got = await collect(peer, "budget/payload/out", {
                    qos: 1,
                })
                await peer.publishAsync("budget/payload/ctl", `pub ${size}`, {
                    qos: 1,
                })
                const o = await outcome(
                    dev,
                    [
                        [`PUBLISHED ${size}`, "ok"],
                        [/^PUBFAIL/, "fail"],
                    ],
                    15000
                )
                if (o.what !== "ok") return { ok: false, why: failure(dev) }
                const [m] = await got.waitForCount(1, 5000)
                if (m.payload.length !== size)
                    return {
                        ok: false,
                        why: `peer got ${m.payload.length} bytes`,
                    }
                return { ok: true }
            } finally {
                await endPeer(peer)
                await dev.kill()
            }
        },
        async receive(size) {
            const dev = await start()
            const peer = await connectPeer(broker.port)
            try {
                await peer.publishAsync(
                    "budget/payload/in",
                    Buffer.alloc(size, 0x61),
                    { qos: 1 }
                )
                const o = await outcome(
                    dev,
                    [
                        [`RECEIVED ${size}`, "ok"],
                        [/^LOST/, "lost"],
                    ],
                    15000
                )
                return {
                    ok: o.what === "ok",
                    why: o.what === "ok" ? "" : failure(dev),
                }
            } finally {
                await endPeer(peer)
                await dev.kill()
            }
        },
        async close() {
            await broker.close()
            rmSync(devs, { force: true })
        },
    }
}

// ------------------------------------------------------------ main

const t0 = Date.now()
const figures = {}

// 1. sizes
// applications: the devs/ files no other devs/ file imports (the others,
// settings.ts, led.ts, ..., are modules the applications share)
const devsFiles = readdirSync(join(repoRoot, "devs")).filter(f =>
    f.endsWith(".ts")
)
const imported = new Set()
for (const f of devsFiles)
    for (const m of readFileSync(join(repoRoot, "devs", f), "utf8").matchAll(
        /from\s+"\.\/([^"]+)"|import\s+"\.\/([^"]+)"/g
    ))
        imported.add((m[1] || m[2]).replace(/\.ts$/, "") + ".ts")
const apps = devsFiles
    .filter(f => !imported.has(f))
    .sort()
    .map(f => `devs/${f}`)
const sizeRows = []
for (const entry of [...apps, "test/devs/budget-builtin.ts"]) {
    log(`size: ${entry}`)
    sizeRows.push({ entry, ...(await statsBuild(entry)) })
}
figures.sizes = sizeRows
const seed = sizeRows.find(r => r.entry === SEED_APP)
const builtin = sizeRows.find(r => r.entry === "test/devs/budget-builtin.ts")

// 2. heap
if (!SIZES_ONLY) {
    log("heap: empty program")
    figures.heapBare = await bisect(
        "empty program",
        1024,
        65536,
        256,
        heapBareTrial
    )
    log(`  -> ${figures.heapBare.best}`)
    log("heap: connected, 10 subscriptions, 8 x 1 KB QoS 1 in flight")
    const rig = await heapRig()
    try {
        figures.heapConnected = await bisect("connected", 1024, 65536, 256, n =>
            rig.trial(n)
        )
    } finally {
        await rig.close()
    }
    figures.heapHeld = rig.heldCounts.length ? Math.min(...rig.heldCounts) : 0
    log(
        `  -> ${figures.heapConnected.best} (the broker held at least ${figures.heapHeld} publishes unacknowledged)`
    )
}

// 3. payloads
if (!SIZES_ONLY) {
    figures.payload = {}
    for (const [label, mps] of [
        ["default", 0],
        ["raised", RAISED_MAX_PACKET],
    ]) {
        const rig = await payloadRig(mps)
        try {
            for (const dir of ["publish", "receive"]) {
                log(`payload: ${dir}, maxPacketSize ${mps || "default"}`)
                // 16 KB .. 64 KB: a 64 KB message cannot fit the 64 KB heap
                // default: the packet limit, exact to the byte (a guess from the
                // packet layout first); raised: the heap, to 128 bytes
                const r = await bisect(
                    `${dir} ${label}`,
                    1024,
                    65536,
                    label === "default" ? 1 : 128,
                    n => rig[dir](n),
                    label === "default"
                        ? 20480 - overhead(TOPIC_OF[dir])
                        : undefined
                )
                figures.payload[`${dir}-${label}`] = r
                log(`  -> ${r.best} (first failure ${r.firstFail}: ${r.why})`)
            }
        } finally {
            await rig.close()
        }
    }
}

// ------------------------------------------------------------ docs/budgets.md

const sh = (cmd, a) => {
    try {
        return execFileSync(cmd, a, { cwd: repoRoot, encoding: "utf8" }).trim()
    } catch {
        return "?"
    }
}
const commit = sh("git", ["rev-parse", "--short", "HEAD"])
const dirty = sh("git", [
    "status",
    "--porcelain",
    "--",
    "src",
    "devs",
    "test/devs",
])
    ? " + uncommitted changes"
    : ""
const cliVersion = JSON.parse(
    readFileSync(
        join(repoRoot, "node_modules/@devicescript/cli/package.json"),
        "utf8"
    )
).version
const today = new Date().toISOString().slice(0, 10)
const missed = []
const warnings = []
const mark = (ok, text) => {
    if (!ok) missed.push(text)
    return ok ? "✅" : "❌ **missed**"
}
const cell = s => String(s).replace(/\|/g, "/")

let md = `# Budgets

Measured on ${today} by \`npm run budgets\` (scripts/budgets.mjs, which rewrites this
file): DeviceScript CLI ${cliVersion}, Node ${process.version}, commit ${commit}${dirty},
in the DeviceScript simulator (WASM), whose heap is about 64 KB, like an ESP32's.

Two resources bound a program on a device, and they are budgeted differently:

- **The heap** (about 64 KB on an ESP32 and in the simulator, 40 KB on an ESP32-S2): every
  object, buffer, fiber and queued message lives there, and running out of it ends the
  program (a panic, nothing can catch it). This is the budget that matters: with the
  client connected, 10 subscriptions and a full in-flight window, at least
  ${kb(HEAP_TARGET)} must be left to the application.
- **The bytecode image** (the compiled \`.devs\` program: the application and every
  library it imports, this one included). It does not live in the heap: the firmware
  stores it in its flash storage area (256 KB on the ESP32 builds, 128 KB on RP2040),
  which it shares with the settings deployed with the program (\`.env.defaults\`,
  \`.env.local\`), and the VM runs it from flash. Its size costs flash, not heap. What
  bounds it is that area: the image plus the settings must fit in it, so the library's
  share decides how much room is left for the application (a 32 KB seed example leaves
  over 200 KB on an ESP32, over 90 KB on a Pico W). The budget: the seed example
  (devs/main.ts, which links the client, the codec, the transport and the
  settings; the Wi-Fi network watcher is opt-in) at most ${kb(SEED_BUDGET)} with everything in; \`npm run budgets\` fails past it.
  Every class is \`@devsWhenUsed\`, so the methods a program never calls stay out of its
  image.

## Summary

| budget | target | measured | |
|---|---|---|---|
| seed example app (devs/main.ts), whole bytecode image | at most ${kb(SEED_BUDGET)} | ${kb(seed.devsBytes)} (${seed.devsBytes} bytes) | ${mark(seed.devsBytes <= SEED_BUDGET, `devs/main.ts is ${seed.devsBytes} bytes of bytecode, the budget is ${SEED_BUDGET}`)} |
| the same app on @devicescript/net's built-in client | (reference) | ${kb(builtin.devsBytes)} (${builtin.devsBytes} bytes) | |
`
let P
if (!SIZES_ONLY) {
    const hc = figures.heapConnected
    const hb = figures.heapBare
    P = k => figures.payload[k]
    const limitOut = 20480 - overhead(TOPIC_OF.publish)
    const limitIn = 20480 - overhead(TOPIC_OF.receive)
    if (P("receive-default").best < limitIn)
        warnings.push(
            `receiving with the default maxPacketSize: a message of ${P("receive-default").firstFail}..${limitIn} bytes ` +
                `passes the packet limit but runs the device out of memory (${P("receive-default").why}); ` +
                `the default maxPacketSize (20480) is above what this heap can take in`
        )
    if (P("publish-default").best < limitOut)
        warnings.push(
            `publishing with the default maxPacketSize: ${P("publish-default").firstFail} bytes fail below the packet limit (${P("publish-default").why})`
        )
    md += `| largest single \`Buffer.alloc\` while connected, 10 subscriptions, 8 QoS 1 messages of 1 KB in flight | at least ${kb(HEAP_TARGET)} | ${kb(hc.best)} (${hc.best} bytes) | ${mark(hc.best >= HEAP_TARGET, `heap left to the application ${hc.best} bytes, the target is ${HEAP_TARGET}`)} |
| largest single \`Buffer.alloc\` in an empty program | (reference) | ${kb(hb.best)} (${hb.best} bytes) | |
| largest payload published, default maxPacketSize (20480) | at least ${kb(PAYLOAD_TARGET)} | ${P("publish-default").best} bytes | ${mark(P("publish-default").best >= PAYLOAD_TARGET, `largest payload published ${P("publish-default").best} bytes`)} |
| largest payload received, default maxPacketSize (20480) | at least ${kb(PAYLOAD_TARGET)} | ${P("receive-default").best} bytes | ${mark(P("receive-default").best >= PAYLOAD_TARGET, `largest payload received ${P("receive-default").best} bytes`)}${P("receive-default").best < limitIn ? " ⚠️ see below" : ""} |
| largest payload published, maxPacketSize ${RAISED_MAX_PACKET} | (what the heap allows) | ${P("publish-raised").best} bytes (to 128) | |
| largest payload received, maxPacketSize ${RAISED_MAX_PACKET} | (what the heap allows) | ${P("receive-raised").best} bytes (to 128) | |
`
}
if (missed.length || warnings.length) {
    md += `\n**Attention:**\n\n`
    for (const m of missed) md += `- budget missed: ${m};\n`
    for (const w of warnings) md += `- ${w}.\n`
}

md += `
## Bytecode size of each application

From \`devs build --stats\` (the figures of \`.devicescript/bin/bytecode-sizes.md\`).
"Image" is the whole \`.devs\` file deployed to the device (header, functions, strings,
service specs); "functions" and "data" (strings, mostly) are the parts \`--stats\`
itemizes.

| program | image | functions | data (strings) |
|---|---:|---:|---:|
${sizeRows.map(r => `| \`${r.entry}\` | ${r.devsBytes} (${kb(r.devsBytes)}) | ${r.functions} | ${r.data} (${r.strings}) |`).join("\n")}

\`test/devs/budget-builtin.ts\` is devs/main.ts written on \`startMQTTClient\` of
@devicescript/net (QoS 0/1, packet id always 1, no acknowledgement tracking, no
reconnection, no unsubscribe, prefix-only topic matching): the price of this library's
protocol work is the difference, ${kb(seed.devsBytes - builtin.devsBytes)}.

### Where the seed app's bytes go

Function bytes by source file:

| source | function bytes |
|---|---:|
${seed.byFile.map(([f, n]) => `| \`${f}\` | ${n} |`).join("\n")}
| strings (error messages, names) | ${seed.strings} |

The largest functions:

| function | bytes |
|---|---:|
${seed.topFunctions.map(([f, n]) => `| \`${f}\` | ${n} |`).join("\n")}
`

if (!SIZES_ONLY) {
    const hc = figures.heapConnected
    const hb = figures.heapBare
    const row = (k, what) =>
        `| ${what} | ${P(k).best} | ${P(k).firstFail} | ${cell(P(k).why)} |`
    md += `
## Heap left to the application

The largest single \`Buffer.alloc(size)\` that still succeeds, bisected to 256 bytes over
fresh simulator runs (an allocation that does not fit ends the program with a panic, so
each size gets its own run):

- **empty program** (test/devs/budget-heap.ts with \`bare: true\`): **${hb.best} bytes**;
  ${hb.firstFail} fails with \`${cell(hb.why)}\`;
- **connected** (test/devs/budget-heap.ts against aedes): one MQTTClient (default options,
  keepalive 60), 10 subscriptions, 8 QoS 1 publishes of 1 KB each (the default
  \`maxInflight\`) sent and held unacknowledged by the broker (aedes \`authorizePublish\`
  does not answer during the measurement; it held at least ${figures.heapHeld} of them),
  then the size arrives on one of the 10 subscribed topics and the program tries the
  allocation: **${hc.best} bytes**; ${hc.firstFail} fails with \`${cell(hc.why)}\`.

One allocation needs one contiguous block, so this is a lower bound of the free heap;
several smaller buffers fit more. The difference between the two (${hb.best - hc.best}
bytes) is what the client, its fibers, queues and the messages in flight take, plus
fragmentation.

## Largest payload

A QoS 1 message of N bytes in fresh simulator runs (test/devs/budget-payload.ts against
aedes, an MQTT.js peer on the other side). "Publish": the device allocates N bytes and
publishes them on \`${TOPIC_OF.publish}\`, the peer receives all N. "Receive": the peer
publishes N bytes on \`${TOPIC_OF.receive}\`, the device's callback gets all N. Default
limits are exact to the byte; with the raised maxPacketSize, to 128 bytes.

| direction, maxPacketSize | largest that works | first that fails | why it fails |
|---|---:|---:|---|
${row("publish-default", "publish, default (20480)")}
${row("receive-default", "receive, default (20480)")}
${row("publish-raised", `publish, ${RAISED_MAX_PACKET}`)}
${row("receive-raised", `receive, ${RAISED_MAX_PACKET}`)}

With the default maxPacketSize a publish larger than the packet limit (payload + topic
+ header = 20480 bytes) is refused at once with an Error, and an incoming packet that
declares more is refused from its header. Below those limits the heap decides, and
running out of memory ends the program: a QoS 1/2 publish keeps the application's payload
and writes a small head before it (about 1 x N: the raised limit reaches most of the
free heap), a received message costs the socket's chunks plus one payload-sized
allocation (about 2 x N). On a device the TCP window paces the input; the simulator hands
it over in chunks of up to 32-64 KB.
`
}

md += `
## How to reproduce

\`\`\`sh
npm run budgets            # everything, about ${Math.max(1, Math.round((Date.now() - t0) / 60000))} min; rewrites docs/budgets.md
npm run budgets -- --sizes # bytecode sizes and their budget only (seconds); prints, writes nothing
\`\`\`

Both exit 1 when a budget is missed.
\`\`\`
`

if (SIZES_ONLY) {
    for (const r of sizeRows)
        log(`${r.entry}: ${r.devsBytes} bytes (${kb(r.devsBytes)})`)
    log(
        `seed example (${SEED_APP}): ${seed.devsBytes} bytes, budget ${SEED_BUDGET}: ${seed.devsBytes <= SEED_BUDGET ? "ok" : "MISSED"} (docs/budgets.md left as it is: --sizes)`
    )
} else {
    mkdirSync(join(repoRoot, "docs"), { recursive: true })
    writeFileSync(join(repoRoot, "docs/budgets.md"), md)
    log(`wrote docs/budgets.md in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
}
for (const m of missed) log(`BUDGET MISSED: ${m}`)
for (const w of warnings) log(`WARNING: ${w}`)
process.exit(missed.length ? 1 : 0)
