#!/usr/bin/env node
// The benchmark (issues 6 and 12). `npm run bench` starts one mosquitto on
// a free port and measures, in the DeviceScript simulator:
//   - the ceiling: a pre-encoded 64-byte-payload QoS 0 PUBLISH written
//     straight through DeviceSocketTransport.write (the socket layer of the
//     client), with a sleep(0) every 64 writes;
//   - the built-in @devicescript/net MQTTClient publishing QoS 0;
//   - this client: QoS 0 with the default write buffer and with
//     writeBuffer 0 (reference), QoS 1 and QoS 2 awaited one by one (with
//     each publish's latency), from 8 fibers (reference), and pipelined
//     from one fiber (enqueue + drain); paced inbound bursts of 10,000
//     QoS 0 and 2,000 QoS 1 messages delivered through waitMsg; connect()
//     time; the device's socket writes per phase (DeviceSocketTransport's
//     writeCount);
//   - the bytecode size of the seed's first example with each client;
//   - once: a profile of the hot paths (with the publishers against an
//     in-VM broker stub) and a latency probe (see README).
// Each measurement runs several times (interleaved); medians, ratios and
// targets go to stdout and to bench/results/latest.json (+ a dated copy).
//
// Every rate counts only confirmed messages: those an MQTT.js subscriber
// got (publishes), or the deliveries the device counted in its callback
// and reported over MQTT (inbound bursts). The time is the device's:
// ds.millis() before the first and after the last publish/delivery.
//
//   npm run bench                         the default run (4-7 minutes)
//   npm run bench -- --runs 5             more runs per measurement
//   npm run bench -- --soak               the soak only (10 minutes)
//   npm run bench -- --soak --soak-minutes 2
//   node bench/run.mjs --help             every option
//
// Targets print PASS or MISS and never fail the process; a broken
// measurement (a crash, a message that never arrived) exits 1.

import { spawn } from "node:child_process"
import {
    existsSync,
    mkdirSync,
    readFileSync,
    rmSync,
    statSync,
    writeFileSync,
} from "node:fs"
import { cpus, loadavg } from "node:os"
import { join, relative, resolve } from "node:path"
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
import { connectPeer, endPeer, startMosquitto } from "../test/tools/brokers.mjs"

const delay = ms => new Promise(r => setTimeout(r, ms))

// ------------------------------------------------------------ options

const USAGE = `usage: node bench/run.mjs [options]
  --runs N              runs of each measurement (default 3)
  --window W            publishing fibers of the windowed phases (default 8)
  --pipe-window W       maxInflight of the main client: the window of the
                        pipelined phases q1p/q2p (default 64, 1..64)
  --max-queued Q        maxQueued of the main client (default 32)
  --drain-to L          the pipelined publisher, its queue full, waits with
                        drain(L) (default: the pipe window)
  --write-buffer B      the writeBuffer option of the q0b reference phase
                        (default 0: one socket write per packet)
  --ahead A             inbound burst: messages the peer keeps ahead of the
                        device's last report, and the client's maxIncoming (128)
  --ballast BYTES       the device programs hold this much heap (experiment, 0)
  --only a,b,...        only these sections: ceiling,builtin,umqtt,profile,probe,sizes
                        (results go to bench/results/partial.json)
  --phases a,b,...      only these phases of this client's program (and the
                        probe's): connect,q0b,q0,q1s,q1w,q1p,q2s,q2w,q2p,in,in1
                        (results go to bench/results/partial.json)
  --soak                the soak only: 100 msg/s each way, QoS 1
  --soak-minutes M      soak duration (default 10)
  --soak-rate R         messages per second each way (default 100)
  --soak-write-buffer B the soak client's writeBuffer option (default: the
                        client's default, 1024)`

const argv = process.argv.slice(2)
const flag = name => argv.includes(name)

/** A numeric option: `--name N`. */
function option(name, def, { min = 1 } = {}) {
    const i = argv.indexOf(name)
    if (i < 0) return def
    const v = Number(argv[i + 1])
    if (!Number.isFinite(v) || v < min) {
        console.error(`${name} needs a number >= ${min}\n${USAGE}`)
        process.exit(2)
    }
    return v
}

if (flag("--help") || flag("-h")) {
    console.log(USAGE)
    process.exit(0)
}

const SECTIONS = ["ceiling", "builtin", "umqtt", "profile", "probe", "sizes"]
const onlyArg = flag("--only")
    ? String(argv[argv.indexOf("--only") + 1] || "")
    : ""
const ONLY = new Set(onlyArg ? onlyArg.split(",") : SECTIONS)
for (const s of ONLY)
    if (!SECTIONS.includes(s)) {
        console.error(`--only: unknown section ${s}\n${USAGE}`)
        process.exit(2)
    }
const want = s => ONLY.has(s)
/** --phases: a subset of this client's phases, for experiments. */
const PHASES = flag("--phases")
    ? new Set(String(argv[argv.indexOf("--phases") + 1] || "").split(","))
    : null
const phaseList = list => (PHASES ? list.filter(p => PHASES.has(p)) : list)

const RUNS = Math.round(option("--runs", 3))
const PAYLOAD = 64

/** Messages per measurement (a phase takes 1-10 s at today's rates). */
const N = {
    ceiling: 10000,
    builtin: 2000,
    q0: 10000,
    q0b: 10000,
    q1s: 400,
    q1w: 3000,
    q1p: 6000,
    q2s: 200,
    q2w: 1500,
    q2p: 3000,
    inbound: 10000,
    inbound1: 2000,
    connects: 5,
}
/**
 * The latency probe (run once): the same phases, the simulator kept awake;
 * q1s as many as the default run, so that their p99 compare.
 */
const PROBE = {
    q1s: 400,
    q1w: 1000,
    q1p: 3000,
    q2s: 100,
    q2w: 500,
    q2p: 1500,
    connects: 5,
}
/** Iterations of each profile step (run once). */
const PROFILE_N = 2000
/** Publishing fibers of the windowed phases (q1w, q2w): at most that many in flight. */
const WINDOW = Math.round(option("--window", 8))
/**
 * maxInflight of the main client: the pipelined phases' window (the
 * windowed phases' fibers keep at most WINDOW of it busy). The broker does
 * not limit a 3.1.1 client's incoming QoS 1/2 (max_inflight_messages is
 * per outgoing queue: to the counting peer, set to 1000 below).
 */
const PIPE = Math.round(option("--pipe-window", 64))
/** maxQueued of the main client: the pipelined publisher keeps PIPE + this outstanding. */
const MAXQ = Math.round(option("--max-queued", 32, { min: 0 }))
/** The pipelined publisher, its queue full, waits for drain(DRAIN_TO). */
const DRAIN_TO = Math.round(option("--drain-to", PIPE, { min: 0 }))
/** The q0b reference phase: QoS 0 through a client with this `writeBuffer` option. */
const WRITE_BUFFER = Math.round(option("--write-buffer", 0, { min: 0 }))
/** Yields: the ceiling every 64 writes (as in the notes), the built-in every 32 publishes. */
const CEILING_YIELD = 64
const BUILTIN_YIELD = 32
/**
 * Inbound pacing: the device reports its delivered count every REPORT
 * messages (a QoS 0 publish on .../prog); the peer keeps at most AHEAD
 * messages beyond the last report. The client's maxIncoming is AHEAD, so
 * its queue can hold every message that can be in the simulator at once:
 * none may be dropped, and the heap holds at most AHEAD x ~80 bytes of
 * undelivered messages.
 */
const REPORT = 32
const AHEAD = Math.round(option("--ahead", 128))
/** Bytes every device program holds while it measures (experiment). */
const BALLAST = Math.round(option("--ballast", 0, { min: 0 }))

/** The phases of this client's program with a rate (see bench/devs/umqtt.ts). */
const PHASE_KEYS = [
    "q0",
    "q0b",
    "q1s",
    "q1w",
    "q1p",
    "q2s",
    "q2w",
    "q2p",
    "in",
    "in1",
]

/** Issue 12's targets: ratios of the medians, and the inbound rate in msg/s. */
const TARGETS = {
    q0VsCeiling: 0.8,
    q0VsBuiltin: 30,
    q1pVsQ0: 0.4,
    q2pVsQ0: 0.2,
    inboundRate: 5500,
}

const resultsDir = join(repoRoot, "bench", "results")
/** Topics and client ids of this invocation: bench/<tag>/... */
const tag = `b${Date.now().toString(36)}`

// ------------------------------------------------------------ helpers

function median(xs) {
    const v = xs
        .filter(x => typeof x === "number" && Number.isFinite(x))
        .sort((a, b) => a - b)
    if (v.length === 0) return null
    const m = v.length >> 1
    return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2
}

/** Parses `RESULT name k=v k=v ...` into { name, k: v }. */
function parseResult(line) {
    const m = /^RESULT (\S+)(.*)$/.exec(line)
    if (!m) return null
    const r = { name: m[1] }
    for (const kv of m[2].trim().split(/\s+/)) {
        const i = kv.indexOf("=")
        if (i <= 0) continue
        const v = kv.slice(i + 1)
        r[kv.slice(0, i)] = /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v
    }
    return r
}

const fmtRate = x =>
    x == null ? "-" : `${Math.round(x).toLocaleString("en-US")}/s`
const fmtRatio = x =>
    x == null ? "-" : x >= 1 ? `${x.toFixed(1)}x` : `${(x * 100).toFixed(1)}%`
const fmtMs = x => (x == null ? "-" : `${x} ms`)

/** A text table; `align` is "l" or "r" per column (first column left). */
function table(rows, align = []) {
    const w = rows[0].map((_, i) =>
        Math.max(...rows.map(r => String(r[i]).length))
    )
    const cell = (c, i) =>
        i === 0 || align[i] === "l"
            ? String(c).padEnd(w[i])
            : String(c).padStart(w[i])
    const lines = rows.map(r => r.map(cell).join("  ").trimEnd())
    lines.splice(1, 0, w.map(n => "-".repeat(n)).join("  "))
    return lines.join("\n")
}

function run(cmd, args) {
    return new Promise(res => {
        const c = spawn(cmd, args, {
            cwd: repoRoot,
            stdio: ["ignore", "pipe", "ignore"],
        })
        let out = ""
        c.stdout.on("data", d => (out += d))
        c.on("close", () => res(out.trim()))
        c.on("error", () => res(""))
    })
}

async function gitInfo() {
    const [commit, dirty] = await Promise.all([
        run("git", ["rev-parse", "--short", "HEAD"]),
        run("git", ["status", "--porcelain", "src"]),
    ])
    return { commit, srcModified: dirty.length > 0 }
}

function writeResults(name, result) {
    mkdirSync(resultsDir, { recursive: true })
    const json = JSON.stringify(result, null, 2) + "\n"
    writeFileSync(join(resultsDir, name), json)
    if (name.includes("latest")) {
        const stamp = result.date.replace(/:/g, "-").replace(/\..*$/, "")
        writeFileSync(join(resultsDir, name.replace("latest", stamp)), json)
    }
}

/**
 * An MQTT.js peer counting the messages of `topics`, subscribed at QoS 1:
 * QoS 1/2 publishes reach it acknowledged, none dropped by the broker.
 */
async function startCounter(port, topics) {
    const peer = await connectPeer(port, { clientId: `bench-counter-${tag}` })
    const counts = new Map()
    const listeners = new Set()
    peer.on("message", (topic, payload) => {
        counts.set(topic, (counts.get(topic) || 0) + 1)
        for (const l of [...listeners]) l(topic, payload)
    })
    await peer.subscribeAsync(
        Object.fromEntries(topics.map(t => [t, { qos: 1 }]))
    )
    return {
        peer,
        count: t => counts.get(t) || 0,
        reset: () => counts.clear(),
        on(fn) {
            listeners.add(fn)
            return () => listeners.delete(fn)
        },
        /** The count once it reaches n, or when nothing arrived for quietMs. */
        async waitCount(t, n, quietMs = 3000, maxMs = 30000) {
            const start = Date.now()
            let last = -1
            let lastChange = start
            for (;;) {
                const c = counts.get(t) || 0
                if (c >= n) return c
                if (c !== last) {
                    last = c
                    lastChange = Date.now()
                }
                if (
                    Date.now() - lastChange > quietMs ||
                    Date.now() - start > maxMs
                )
                    return c
                await delay(10)
            }
        },
    }
}

/** Runs a prebuilt program to its end with a hard time bound; kills it in finally. */
async function runProgram(devs, { timeoutMs, onLine, label }) {
    let dev
    try {
        dev = startDevice(devs, {
            timeoutMs,
            onLine: l => {
                if (onLine) onLine(l, dev)
            },
        })
        const r = await dev.done
        const panic = r.output.find(l =>
            /PANIC|InfiniteLoop|OutOfMemory|Unhandled exception/i.test(l)
        )
        const ok = r.code === 0 && r.lines.includes("BENCH_END") && !panic
        const why = ok
            ? null
            : `${label}: exit code ${r.code}${r.timedOut ? " (timed out)" : ""}` +
              `${panic ? `, ${panic}` : ""}; last lines:\n    ` +
              r.output.slice(-12).join("\n    ")
        return { ok, why, lines: r.lines }
    } finally {
        if (dev) await dev.kill()
    }
}

const builds = async (module, params) =>
    buildDevs(
        await writeEntry(
            module,
            params,
            `bench-${module.split("/").pop().replace(".ts", "")}`
        )
    )

// ------------------------------------------------------------ bytecode size
// `devs build --stats` writes the shared .devicescript/bin, so it runs inside
// the build lock of test/tools/sim.mjs.

/** `devs build --stats entry` in the lock: .devs size and per-function sizes. */
async function statsBuild(entry) {
    const rel = relative(repoRoot, resolve(repoRoot, entry))
    const bin = join(repoRoot, ".devicescript/bin")
    return withBuildLock(async () => {
        rmSync(join(bin, "bytecode.devs"), { force: true })
        rmSync(join(bin, "bytecode-sizes.md"), { force: true })
        const r = await runCollect(
            process.execPath,
            [cliPath, "--no-colors", "build", "--stats", rel],
            { timeoutMs: 120_000, name: `bench: build --stats ${rel}` }
        )
        if (r.code !== 0 || !existsSync(join(bin, "bytecode.devs")))
            throw new Error(`devs build --stats ${rel} failed:\n${r.output}`)
        const md = existsSync(join(bin, "bytecode-sizes.md"))
            ? readFileSync(join(bin, "bytecode-sizes.md"), "utf8")
            : ""
        return {
            entry: rel,
            devsBytes: statSync(join(bin, "bytecode.devs")).size,
            ...parseSizes(md),
        }
    })
}

/** Reads bytecode-sizes.md: totals and functions, largest first. */
function parseSizes(md) {
    const functions = []
    const totals = {}
    for (const line of md.split("\n")) {
        const m = /^\s*(\d+)\s*\|\s*(`?)([^`|]+?)`?\s*(\||$)/.exec(line)
        if (!m) continue
        if (m[2]) functions.push({ name: m[3].trim(), size: Number(m[1]) })
        else totals[m[3].trim()] = Number(m[1])
    }
    functions.sort((a, b) => b.size - a.size)
    return {
        total: totals["TOTAL"] ?? null,
        functionTotal: totals["Function TOTAL"] ?? null,
        dataTotal: totals["Data TOTAL"] ?? null,
        functions,
    }
}

// ------------------------------------------------------------ measurements

/** A single-phase program (ceiling, built-in): RESULT line + peer count. */
async function measureSimple(devs, counter, name, topic, label) {
    counter.reset()
    const r = await runProgram(devs, { timeoutMs: 90000, label })
    const res = r.lines.map(parseResult).find(x => x && x.name === name)
    if (!res) return { ok: false, why: r.why || `${label}: no RESULT line` }
    const confirmed = await counter.waitCount(topic, res.n)
    const ms = res.t1 - res.t0
    return {
        ok: r.ok && confirmed === res.n && !res.refused,
        why:
            r.why ||
            (confirmed !== res.n
                ? `${label}: ${confirmed}/${res.n} confirmed`
                : null),
        sent: res.n,
        confirmed,
        ms,
        rate: (confirmed * 1000) / ms,
    }
}

/**
 * One run of this client's program. The device prints READY, then a RESULT
 * line per phase; after each, the runner waits for the peer's count and
 * sends "next" on .../ctl, so phases never overlap at the broker. The
 * inbound bursts (QoS 0 on .../in, QoS 1 on .../in1) are pushed by `pub`,
 * paced by the device's reports on .../prog/<phase>.
 */
async function measureUmqtt(devs, counter, pub, label) {
    const base = `bench/${tag}`
    counter.reset()
    const phases = {}
    const burst = name => ({
        name,
        qos: name === "in1" ? 1 : 0,
        n: name === "in1" ? N.inbound1 : N.inbound,
        sent: 0,
        reported: 0,
        dropped: 0,
        lastReportAt: 0,
        done: false,
    })
    const bursts = { in: burst("in"), in1: burst("in1") }
    let chain = Promise.resolve()
    let stalled = null
    let dev = null

    const pump = b => {
        while (b.sent < b.n && b.sent - b.reported < AHEAD) {
            const m = Buffer.alloc(PAYLOAD)
            m.writeUInt16BE(b.sent & 0xffff, 0) // the device checks the order
            pub.publish(`${base}/${b.name}`, m, { qos: b.qos })
            b.sent++
        }
    }
    const off = counter.on((topic, payload) => {
        const b = bursts[topic.slice(`${base}/prog/`.length)]
        if (!topic.startsWith(`${base}/prog/`) || !b) return
        const [got, dropped] = payload.toString().split(",").map(Number)
        b.reported = Math.max(b.reported, got)
        b.dropped = Math.max(b.dropped, dropped || 0)
        b.lastReportAt = Date.now()
        pump(b)
    })
    // a lost message would leave the device waiting forever: end the run
    const watchdog = setInterval(() => {
        for (const b of Object.values(bursts))
            if (
                dev &&
                b.lastReportAt &&
                !b.done &&
                Date.now() - b.lastReportAt > 10000
            ) {
                stalled = `${label}: inbound burst ${b.name} stalled at ${b.reported}/${b.n} (dropped ${b.dropped})`
                dev.kill()
            }
    }, 500)

    const next = () =>
        pub.publishAsync(`${base}/ctl`, "next", { qos: 1 }).catch(() => {})
    const phaseDone = async res => {
        if (res.name === "connect") {
            // before READY: no "next" expected
            const confirmed = await counter.waitCount(`${base}/conn`, res.n)
            const list = v => String(v).split(",").map(Number)
            // ms: connect() as a whole; connackMs: CONNECT written -> CONNACK arrived
            phases.connect = {
                ok: confirmed === res.n,
                n: res.n,
                confirmed,
                ms: list(res.ms),
                connackMs: list(res.mqtt),
            }
            return
        }
        const ms = res.t1 - res.t0
        const b = bursts[res.name]
        if (b) {
            b.done = true
            // the device's last report (over MQTT) may trail its RESULT line
            for (let i = 0; i < 300 && b.reported < res.n; i++)
                await delay(10)
            const confirmed = b.reported
            phases[res.name] = {
                ok:
                    confirmed === b.n &&
                    res.dropped === 0 &&
                    res.disorder === 0,
                sent: b.sent,
                confirmed,
                dropped: res.dropped,
                disorder: res.disorder,
                writes: res.writes,
                ms,
                rate: (confirmed * 1000) / ms,
            }
        } else {
            const confirmed = await counter.waitCount(
                `${base}/${res.name}`,
                res.n
            )
            phases[res.name] = {
                ok: confirmed === res.n && res.failures === 0,
                sent: res.n,
                confirmed,
                failures: res.failures,
                writes: res.writes,
                ms,
                rate: (confirmed * 1000) / ms,
            }
            // one-fiber QoS 1/2: min,p50,p90,p99,max ms per publish
            if (res.lat != null) {
                const [min, p50, p90, p99, max] = String(res.lat)
                    .split(",")
                    .map(Number)
                phases[res.name].latencyMs = { min, p50, p90, p99, max }
                phases[res.name].histogram = String(res.hist || "")
            }
            if (res.full != null) {
                // pipelined: "queue full" retries, waits in drain()
                phases[res.name].queueFull = res.full
                phases[res.name].drains = res.drains
            }
            // runs before READY, on a client of its own: no "next" expected
            if (res.name === "q0b") return
        }
        await delay(200) // let the broker finish the phase's traffic
        await next()
    }
    const onLine = (line, d) => {
        dev = d
        if (line === "READY") chain = chain.then(next)
        else if (line.startsWith("ERRORCB"))
            console.log(`#   ${label}: ${line}`)
        else {
            const res = parseResult(line)
            if (res) chain = chain.then(() => phaseDone(res))
        }
    }
    try {
        const r = await runProgram(devs, { timeoutMs: 150000, onLine, label })
        await chain
        const bad = Object.entries(phases)
            .filter(([, v]) => !v.ok)
            .map(([k, v]) => `${label} ${k}: ${JSON.stringify(v)}`)
        return {
            ok: r.ok && !stalled && bad.length === 0,
            why: [stalled || r.why, ...bad].filter(Boolean).join("; ") || null,
            phases,
        }
    } finally {
        clearInterval(watchdog)
        off()
    }
}

/** The profile program: microseconds per step of the hot paths. */
async function measureProfile(devs) {
    const r = await runProgram(devs, { timeoutMs: 120000, label: "profile" })
    const steps = []
    for (const l of r.lines) {
        const m = /^PROF (\S+) n=(\d+) ms=(\d+) us=(\d+)/.exec(l)
        if (m)
            steps.push({
                name: m[1],
                n: +m[2],
                ms: +m[3],
                us: +m[4],
                what: PROFILE_NOTES[m[1]] || "",
            })
        const w = /^PROFINFO (\S+) (wakes|writes) per (notify|1000): ([\d.]+)/.exec(l)
        const step = w && steps.find(x => x.name === w[1])
        if (step)
            step.what +=
                w[2] === "wakes"
                    ? `; fibers woken per notify: ${w[4]}`
                    : `; socket writes per 1,000: ${w[4]}`
    }
    return { ok: r.ok, why: r.why, steps }
}

/** What each profile step (bench/devs/profile.ts) times. */
const PROFILE_NOTES = {
    "empty-loop": "a loop iteration (sleep(0) every 64)",
    sleep0: "await ds.sleep(0) with nothing else runnable",
    millis: "ds.millis(): a native call",
    "alloc-packet": "Buffer.alloc of a PUBLISH's size",
    "topic-bytelength": "topic.byteLength + indexOf: native",
    "call-noop":
        "a call of an empty function: what any call or allocation costs",
    "indexOf-plus": 'topic.indexOf("+"): native',
    checkTopicName: "checkTopicName(topic)",
    "alloc+blit": "Buffer.alloc + two blitAt: an encode by hand",
    encodePublish: "encodePublish(topic, 64 B, QoS 0)",
    "transport.write":
        "DeviceSocketTransport.write, pre-encoded: the ceiling's step",
    "encode+write": "encodePublish + transport.write",
    "client.output": "the client's output(): into the write buffer (written when the fiber yields) + yield counter",
    "client.publish-q0": "MQTTClient.publish, QoS 0: the measured path",
    "lean-publish-q0":
        "prototype: one call, cached topic header, one alloc, native write",
    "coalesced-publish-q0":
        "prototype: the same, packed into 1 KB socket writes",
    "signal-notify-1-waiters": "Signal.notify + one turn, 1 fiber waiting",
    "signal-notify-8-waiters":
        "Signal.notify + one turn, 8 fibers waiting (a PUBACK, window 8)",
    packetName: "packetName(): builds a 16-string array per call",
    "slice+toString-topic": "slice + toString of the topic bytes",
    "indexOf-fffd": "string indexOf of U+FFFD: native",
    "decodeUtf8-topic": "decodeUtf8 of the topic",
    "slice-payload": "slice of the payload",
    "decodePacket-publish": "decodePacket of a QoS 0 PUBLISH",
    "framer-next-publish":
        "FrameDecoder.next per PUBLISH, 32 per chunk: framing + decode",
    "session-q1-flight+ack":
        "new OutMessage + Session.startFlight + onPuback, 7 others in flight",
    "loopback-parse":
        "the in-VM broker stub's parser alone, per QoS 1 PUBLISH (part of the loopback steps)",
    "loopback-q0":
        "publish QoS 0, default write buffer, flush: the client against the in-VM broker stub",
    "loopback-q1-pipelined-w8":
        "enqueue + drain, QoS 1, maxInflight 8, against the in-VM broker stub (no network)",
    "loopback-q1-pipelined-w32":
        "enqueue + drain, QoS 1, maxInflight 32, against the in-VM broker stub (no network)",
    "loopback-q1-pipelined-w64":
        "enqueue + drain, QoS 1, maxInflight 64, against the in-VM broker stub (no network)",
    "loopback-q1-enqueue-only-w64":
        "enqueue alone, QoS 1, maxInflight 64 + maxQueued, a mute stub (no acks), fresh clients",
    "loopback-q2-pipelined-w64":
        "enqueue + drain, QoS 2, maxInflight 64, against the in-VM broker stub (no network)",
}

// ------------------------------------------------------------ the default run

async function bench() {
    const t0 = Date.now()
    const git = await gitInfo()
    const mosq = await startMosquitto({
        config: [
            // the counting peer gets thousands of messages in a burst:
            // queue them all, and keep many in flight to it at once
            "max_queued_messages 1000000",
            "max_inflight_messages 1000",
        ],
    })
    const base = `bench/${tag}`
    let counter, pub
    const failures = []
    try {
        // the inbound bursts are counted on their progress topics
        const topics = [
            "ceil",
            "builtin",
            "conn",
            ...PHASE_KEYS.map(k => (k === "in" || k === "in1" ? `prog/${k}` : k)),
        ]
        counter = await startCounter(
            mosq.port,
            topics.map(t => `${base}/${t}`)
        )
        pub = await connectPeer(mosq.port, { clientId: `bench-pub-${tag}` })
        console.log(
            `# bench: mosquitto :${mosq.port}, tag ${tag}, ${RUNS} runs, window ${WINDOW} fibers, ` +
                `pipelined maxInflight ${PIPE} maxQueued ${MAXQ} drain(${DRAIN_TO})` +
                `${BALLAST ? `, ballast ${BALLAST} B` : ""}; building...`
        )

        const port = mosq.port
        const common = { port, tag, payloadSize: PAYLOAD }
        const umqttParams = {
            ...common,
            phases: phaseList([
                "connect",
                "q0b",
                "q0",
                "q1s",
                "q1w",
                "q1p",
                "q2s",
                "q2w",
                "q2p",
                "in",
                "in1",
            ]),
            connects: N.connects,
            q0: N.q0,
            q0b: N.q0b,
            writeBuffer: WRITE_BUFFER,
            q1s: N.q1s,
            q1w: N.q1w,
            q1p: N.q1p,
            q2s: N.q2s,
            q2w: N.q2w,
            q2p: N.q2p,
            fibers: WINDOW,
            maxInflight: PIPE,
            maxQueued: Math.max(MAXQ, WINDOW),
            drainTo: DRAIN_TO,
            maxIncoming: AHEAD,
            inbound: N.inbound,
            inbound1: N.inbound1,
            report: REPORT,
            ballast: BALLAST,
        }
        const devs = {}
        if (want("ceiling"))
            devs.ceiling = await builds("bench/devs/ceiling.ts", {
                ...common,
                count: N.ceiling,
                yieldEvery: CEILING_YIELD,
                ballast: BALLAST,
            })
        if (want("builtin"))
            devs.builtin = await builds("bench/devs/builtin.ts", {
                ...common,
                count: N.builtin,
                yieldEvery: BUILTIN_YIELD,
                ballast: BALLAST,
            })
        if (want("umqtt"))
            devs.umqtt = await builds("bench/devs/umqtt.ts", umqttParams)
        if (want("profile"))
            devs.profile = await builds("bench/devs/profile.ts", {
                ...common,
                n: PROFILE_N,
                pipeWindow: PIPE,
                maxQueued: Math.max(MAXQ, WINDOW),
                drainTo: DRAIN_TO,
            })
        if (want("probe"))
            devs.probe = await builds("bench/devs/umqtt.ts", {
                ...umqttParams,
                ...PROBE,
                phases: phaseList([
                    "connect",
                    "q1s",
                    "q1w",
                    "q1p",
                    "q2s",
                    "q2w",
                    "q2p",
                ]),
                maxIncoming: 16,
                ticker: true,
            })
        const sizes = {}
        if (want("sizes"))
            for (const k of ["empty", "umqtt", "builtin"])
                sizes[k] = await statsBuild(`bench/devs/size/${k}.ts`)
        console.log(`# built in ${((Date.now() - t0) / 1000).toFixed(0)} s`)

        // interleaved, so that the machine's load changes hit all alike
        const skipped = { ok: true, skipped: true, phases: {} }
        const runs = []
        for (let i = 1; i <= RUNS; i++) {
            const r = {
                ceiling: devs.ceiling
                    ? await measureSimple(
                          devs.ceiling,
                          counter,
                          "ceiling",
                          `${base}/ceil`,
                          `ceiling run ${i}`
                      )
                    : skipped,
                builtin: devs.builtin
                    ? await measureSimple(
                          devs.builtin,
                          counter,
                          "builtin",
                          `${base}/builtin`,
                          `built-in run ${i}`
                      )
                    : skipped,
                umqtt: devs.umqtt
                    ? await measureUmqtt(
                          devs.umqtt,
                          counter,
                          pub,
                          `umqtt run ${i}`
                      )
                    : skipped,
            }
            runs.push(r)
            for (const k of ["ceiling", "builtin", "umqtt"])
                if (!r[k].ok) failures.push(r[k].why)
            const p = r.umqtt.phases
            console.log(
                `# run ${i}: ceiling ${fmtRate(r.ceiling.rate)}, built-in ${fmtRate(r.builtin.rate)}, ` +
                    ["q0", "q0b", "q1s", "q1w", "q1p", "q2s", "q2w", "q2p", "in", "in1"]
                        .map(k => `${k} ${fmtRate(p[k]?.rate)}`)
                        .join(", ") +
                    ["q1p", "q2p"]
                        .filter(k => p[k]?.drains != null)
                        .map(
                            k =>
                                `, ${k} ${p[k].drains} drain() waits, ${p[k].queueFull} queue full`
                        )
                        .join("") +
                    `, connect ${p.connect ? p.connect.ms.join("/") + " ms" : "-"}` +
                    ` (CONNECT->CONNACK ${p.connect ? p.connect.connackMs.join("/") + " ms" : "-"})`
            )
        }

        // once: where the time goes, and the client with the simulator kept awake
        const profile = devs.profile
            ? await measureProfile(devs.profile)
            : { ok: true, steps: [] }
        if (!profile.ok) failures.push(profile.why)
        const probe = devs.probe
            ? await measureUmqtt(devs.probe, counter, pub, "latency probe")
            : { ok: true, phases: {} }
        if (!probe.ok) failures.push(probe.why)

        const rateOf = (r, k) =>
            (k === "ceiling" || k === "builtin" ? r[k] : r.umqtt.phases[k])
                ?.rate
        const med = {}
        for (const k of ["ceiling", "builtin", ...PHASE_KEYS])
            med[k] = median(runs.map(r => rateOf(r, k)))
        const connectMs = runs.flatMap(r => r.umqtt.phases.connect?.ms || [])
        med.connectMs = median(connectMs)
        const connackMs = runs.flatMap(
            r => r.umqtt.phases.connect?.connackMs || []
        )
        med.connackMs = median(connackMs)
        // socket writes of the device per 1,000 messages of the phase
        // (DeviceSocketTransport.writeCount before/after), median of the runs
        const writesPer1000 = {}
        for (const k of PHASE_KEYS)
            writesPer1000[k] = median(
                runs.map(r => {
                    const ph = r.umqtt.phases[k]
                    return ph?.writes == null || !ph.sent
                        ? null
                        : (ph.writes * 1000) / ph.sent
                })
            )
        // one-fiber latency: the median of the runs' percentiles; the probe's
        // run keeps the simulator awake (no 10 ms idle poll)
        const latency = {}
        for (const k of ["q1s", "q2s"]) {
            const pick = q =>
                median(runs.map(r => r.umqtt.phases[k]?.latencyMs?.[q]))
            const awake = probe.phases?.[k]?.latencyMs || null
            const def = {
                p50: pick("p50"),
                p90: pick("p90"),
                p99: pick("p99"),
                max: pick("max"),
            }
            latency[k] = {
                default: def,
                perRun: runs.map(r => r.umqtt.phases[k]?.latencyMs || null),
                awake,
                // what the 10 ms idle poll adds: default - kept awake
                idlePollP50:
                    awake && def.p50 != null ? def.p50 - awake.p50 : null,
                idlePollP99:
                    awake && def.p99 != null ? def.p99 - awake.p99 : null,
            }
        }
        const div = (a, b) => (a == null || b == null || b === 0 ? null : a / b)
        const ratios = {
            q0VsCeiling: div(med.q0, med.ceiling),
            q0VsBuiltin: div(med.q0, med.builtin),
            q0VsQ0b: div(med.q0, med.q0b),
            q0bVsCeiling: div(med.q0b, med.ceiling),
            q0bVsBuiltin: div(med.q0b, med.builtin),
            q1pVsQ0: div(med.q1p, med.q0),
            q2pVsQ0: div(med.q2p, med.q0),
            q1pVsQ1w: div(med.q1p, med.q1w),
            q2pVsQ2w: div(med.q2p, med.q2w),
            q1wVsQ1s: div(med.q1w, med.q1s),
            q2wVsQ2s: div(med.q2w, med.q2s),
            inboundVsCeiling: div(med.in, med.ceiling),
            inboundVsQ0: div(med.in, med.q0),
            inbound1VsInbound: div(med.in1, med.in),
        }
        const allDelivered = k =>
            runs.length > 0 &&
            runs.every(
                r =>
                    r.umqtt.phases[k]?.confirmed ===
                        (k === "in" ? N.inbound : N.inbound1) &&
                    r.umqtt.phases[k].dropped === 0
            )
        const targets = [
            [
                `QoS 0 publish (default writeBuffer 1024) >= 80% of the ceiling`,
                ratios.q0VsCeiling,
                TARGETS.q0VsCeiling,
            ],
            [
                "QoS 0 publish (default) >= 30x the built-in client",
                ratios.q0VsBuiltin,
                TARGETS.q0VsBuiltin,
            ],
            [
                `pipelined QoS 1 (one fiber, enqueue + drain, maxInflight ${PIPE}) >= 40% of the default QoS 0 rate`,
                ratios.q1pVsQ0,
                TARGETS.q1pVsQ0,
            ],
            [
                `pipelined QoS 2 (one fiber, enqueue + drain, maxInflight ${PIPE}) >= 20% of the default QoS 0 rate`,
                ratios.q2pVsQ0,
                TARGETS.q2pVsQ0,
            ],
            [
                `inbound burst: all ${N.inbound} delivered in every run, none dropped, at >= ${TARGETS.inboundRate.toLocaleString("en-US")} msg/s`,
                med.in,
                TARGETS.inboundRate,
                allDelivered("in"),
                "rate",
            ],
        ].map(([name, value, threshold, extra = true, unit = "ratio"]) => ({
            name,
            value,
            threshold,
            unit,
            ...(name.startsWith("inbound") ? { allDelivered: extra } : {}),
            pass: value != null && value >= threshold && extra,
        }))

        const sizeSummary = !want("sizes")
            ? null
            : {
                  emptyDevs: sizes.empty.devsBytes,
                  umqttAppDevs: sizes.umqtt.devsBytes,
                  builtinAppDevs: sizes.builtin.devsBytes,
                  umqttClientBytes:
                      sizes.umqtt.devsBytes - sizes.empty.devsBytes,
                  builtinClientBytes:
                      sizes.builtin.devsBytes - sizes.empty.devsBytes,
                  umqttApp: {
                      total: sizes.umqtt.total,
                      functions: sizes.umqtt.functionTotal,
                      data: sizes.umqtt.dataTotal,
                  },
                  builtinApp: {
                      total: sizes.builtin.total,
                      functions: sizes.builtin.functionTotal,
                      data: sizes.builtin.dataTotal,
                  },
                  umqttFunctions: sizes.umqtt.functions,
              }

        printReport({
            med,
            ratios,
            targets,
            sizeSummary,
            runs,
            connectMs,
            connackMs,
            profile,
            probe,
            writesPer1000,
            latency,
        })
        if (failures.length) {
            console.log("\nBROKEN MEASUREMENTS (not counted as figures):")
            for (const f of failures) console.log(`  - ${f}`)
        }

        const result = {
            date: new Date().toISOString(),
            tag,
            git,
            node: process.version,
            machine: {
                cpus: cpus().length,
                loadavg: loadavg().map(x => +x.toFixed(2)),
            },
            config: {
                runs: RUNS,
                payloadBytes: PAYLOAD,
                messages: N,
                window: WINDOW,
                windowedFibers: WINDOW,
                pipelinedMaxInflight: PIPE,
                maxQueued: Math.max(MAXQ, WINDOW),
                pipelinedDrainTo: DRAIN_TO,
                q0bWriteBuffer: WRITE_BUFFER,
                mainWriteBuffer: "default (1024)",
                ceilingYieldEvery: CEILING_YIELD,
                builtinYieldEvery: BUILTIN_YIELD,
                inboundReportEvery: REPORT,
                inboundAhead: AHEAD,
                maxIncoming: AHEAD,
                ballastBytes: BALLAST,
                sections: [...ONLY],
                phases: PHASES ? [...PHASES] : "all",
            },
            timed: {
                publish:
                    "device ds.millis() from before the first publish/write to after the last one " +
                    "resolved (QoS 0: written to the socket, after flush(); QoS 1/2: PUBACK/PUBCOMP, " +
                    "all fibers done; pipelined: drain() resolved); rate = messages counted by the " +
                    "peer subscriber / that time",
                inbound:
                    "device ds.millis() from the 'go' report (the peer starts sending on it) until " +
                    "the callback got the last message through waitMsg (in: 10000 QoS 0, in1: 2000 " +
                    "QoS 1); rate = deliveries counted by the device and reported over MQTT / that time",
                writes:
                    "DeviceSocketTransport.writeCount of the client (passed as its transport) before " +
                    "and after the timed part of a phase, per 1,000 messages of the phase; in/in1 " +
                    "include the device's progress reports (one QoS 0 publish per 32 messages)",
                latency:
                    "one-fiber phases: ds.millis() around each publish, a histogram by ms on the " +
                    "device, nearest-rank percentiles; median of the runs' percentiles",
                connect:
                    "device ds.millis() around connect() of a fresh client (TCP open + CONNECT -> " +
                    "CONNACK); connackMs: from open() resolving (the client writes CONNECT next) to " +
                    "the first bytes received (CONNACK), through a timing wrapper passed as the " +
                    "client's transport option",
            },
            medians: med,
            writesPer1000,
            latency,
            ratios,
            targets,
            sizes: sizeSummary,
            profile: profile.steps,
            latencyProbe: {
                what:
                    "this client with a fiber sleeping 1 ms in a loop, so the simulator never " +
                    "idles for its 10 ms quantum (informational, one run)",
                phases: probe.phases,
            },
            runs,
            failures,
            durationSec: Math.round((Date.now() - t0) / 1000),
        }
        const file =
            ONLY.size === SECTIONS.length && !PHASES
                ? "latest.json"
                : "partial.json"
        writeResults(file, result)
        console.log(
            `\n# ${result.durationSec} s; results in bench/results/${file}`
        )
        return failures.length ? 1 : 0
    } finally {
        if (pub) await endPeer(pub)
        if (counter) await endPeer(counter.peer)
        await mosq.close()
    }
}

function printReport({
    med,
    ratios,
    targets,
    sizeSummary,
    runs,
    connectMs,
    connackMs,
    profile,
    probe,
    writesPer1000,
    latency,
}) {
    const of = (r, k) =>
        k === "ceiling" || k === "builtin" ? r[k] : r.umqtt.phases[k]
    const perRun = k =>
        runs
            .map(r =>
                of(r, k)?.rate == null ? "-" : Math.round(of(r, k).rate)
            )
            .join(" / ")
    const confirmed = k =>
        runs
            .map(r =>
                of(r, k)?.confirmed == null
                    ? "-"
                    : `${of(r, k).confirmed}/${of(r, k).sent}`
            )
            .join(" ")
    const fmtW = x =>
        x == null ? "-" : x >= 100 ? String(Math.round(x)) : x.toFixed(1)
    const row = (label, k) => [
        label,
        fmtRate(med[k]),
        perRun(k),
        confirmed(k),
        k in writesPer1000 ? fmtW(writesPer1000[k]) : "",
    ]
    const w = `${WINDOW} fibers`
    const pw = `one fiber, maxInflight ${PIPE}, maxQueued ${Math.max(MAXQ, WINDOW)}`
    console.log(
        `\nRates, median of ${runs.length} runs, ${PAYLOAD}-byte payloads; confirmed = counted by the` +
            ` peer subscriber / sent\n(inbound: delivered to the callback, counted by the device and reported over MQTT);` +
            `\nwrites/1000 = the device's socket writes per 1,000 messages (DeviceSocketTransport.writeCount)\n`
    )
    console.log(
        table([
            ["measurement", "median", "per run", "confirmed per run", "writes/1000"],
            row(
                "ceiling: pre-encoded QoS 0 PUBLISH, DeviceSocketTransport.write",
                "ceiling"
            ),
            row("built-in @devicescript/net MQTTClient, QoS 0", "builtin"),
            row("umqtt QoS 0 publish (default writeBuffer 1024)", "q0"),
            row(`umqtt QoS 0 publish, writeBuffer ${WRITE_BUFFER} (reference)`, "q0b"),
            row("umqtt QoS 1 publish, one fiber (await each)", "q1s"),
            row(`umqtt QoS 1 publish, window (${w}, reference)`, "q1w"),
            row(`umqtt QoS 1 pipelined (${pw})`, "q1p"),
            row("umqtt QoS 2 publish, one fiber (await each)", "q2s"),
            row(`umqtt QoS 2 publish, window (${w}, reference)`, "q2w"),
            row(`umqtt QoS 2 pipelined (${pw})`, "q2p"),
            row(`umqtt inbound burst, ${N.inbound} QoS 0 via waitMsg`, "in"),
            row(`umqtt inbound burst, ${N.inbound1} QoS 1 via waitMsg (PUBACKs)`, "in1"),
            [
                "umqtt connect(), whole: TCP open + CONNECT->CONNACK",
                fmtMs(med.connectMs),
                connectMs.join(","),
                "",
                "",
            ],
            [
                "umqtt connect(), CONNECT written -> CONNACK arrived",
                fmtMs(med.connackMs),
                connackMs.join(","),
                "",
                "",
            ],
        ])
    )
    console.log("\nRatios (of the medians)\n")
    console.log(
        table([
            ["ratio", "value"],
            ["umqtt QoS 0 / ceiling", fmtRatio(ratios.q0VsCeiling)],
            ["umqtt QoS 0 / built-in QoS 0", fmtRatio(ratios.q0VsBuiltin)],
            [
                `umqtt QoS 0 / QoS 0 with writeBuffer ${WRITE_BUFFER} (what coalescing buys)`,
                fmtRatio(ratios.q0VsQ0b),
            ],
            [
                `umqtt QoS 0, writeBuffer ${WRITE_BUFFER} / ceiling`,
                fmtRatio(ratios.q0bVsCeiling),
            ],
            [
                `umqtt QoS 0, writeBuffer ${WRITE_BUFFER} / built-in`,
                fmtRatio(ratios.q0bVsBuiltin),
            ],
            ["QoS 1 pipelined / QoS 0", fmtRatio(ratios.q1pVsQ0)],
            ["QoS 2 pipelined / QoS 0", fmtRatio(ratios.q2pVsQ0)],
            [`QoS 1 pipelined / window of ${WINDOW} fibers`, fmtRatio(ratios.q1pVsQ1w)],
            [`QoS 2 pipelined / window of ${WINDOW} fibers`, fmtRatio(ratios.q2pVsQ2w)],
            ["QoS 1 window / one fiber", fmtRatio(ratios.q1wVsQ1s)],
            ["QoS 2 window / one fiber", fmtRatio(ratios.q2wVsQ2s)],
            ["inbound burst (QoS 0) / ceiling", fmtRatio(ratios.inboundVsCeiling)],
            ["inbound burst (QoS 0) / umqtt QoS 0 publish", fmtRatio(ratios.inboundVsQ0)],
            ["inbound burst QoS 1 / QoS 0", fmtRatio(ratios.inbound1VsInbound)],
        ])
    )
    const lat = x => (x == null ? "-" : `${x} ms`)
    const diff = x => (x == null ? "-" : `${x > 0 ? "+" : ""}${x} ms`)
    const latRows = []
    for (const [k, label] of [
        ["q1s", "QoS 1, one fiber"],
        ["q2s", "QoS 2, one fiber"],
    ]) {
        const L = latency[k]
        if (!L) continue
        latRows.push([
            label,
            lat(L.default.p50),
            lat(L.default.p99),
            lat(L.awake?.p50),
            lat(L.awake?.p99),
            diff(L.idlePollP50),
            diff(L.idlePollP99),
            L.perRun.map(x => (x ? `${x.p50}/${x.p99}` : "-")).join(" "),
        ])
    }
    if (latRows.length) {
        console.log(
            "\nLatency of one awaited publish (ms per publish, ds.millis() on the device; median of the runs'" +
                "\npercentiles; kept awake = the latency probe's run, a fiber sleeping 1 ms so the simulator never" +
                "\nidles for its 10 ms poll; idle poll = default - kept awake)\n"
        )
        console.log(
            table([
                [
                    "",
                    "p50",
                    "p99",
                    "p50 awake",
                    "p99 awake",
                    "idle poll p50",
                    "idle poll p99",
                    "p50/p99 per run",
                ],
                ...latRows,
            ])
        )
    }
    if (sizeSummary) {
        console.log(
            "\nBytecode: the seed's first example (bench/devs/size/); client = app - empty program\n"
        )
        console.log(
            table([
                ["program", ".devs bytes", "client bytes"],
                ["empty program", sizeSummary.emptyDevs, ""],
                [
                    "seed example with umqtt",
                    sizeSummary.umqttAppDevs,
                    sizeSummary.umqttClientBytes,
                ],
                [
                    "seed example with @devicescript/net",
                    sizeSummary.builtinAppDevs,
                    sizeSummary.builtinClientBytes,
                ],
            ])
        )
        const top = sizeSummary.umqttFunctions
            .slice(0, 8)
            .map(f => `${f.name} ${f.size}`)
        console.log(
            `  umqtt app: ${sizeSummary.umqttApp.functions} B of functions, ${sizeSummary.umqttApp.data} B ` +
                `of data (strings); largest: ${top.join(", ")}`
        )
    }
    const pp = probe.phases || {}
    const probeRow = (label, k) => [
        label,
        fmtRate(med[k]),
        fmtRate(pp[k]?.rate),
    ]
    if (Object.keys(pp).length) {
        console.log(
            "\nLatency probe (one run): when every fiber waits, the simulator sleeps up to 10 ms before it" +
                "\nlooks at the socket again; a fiber sleeping 1 ms in a loop keeps it awake. Round-trip-bound" +
                "\nrates move, CPU-bound ones do not.\n"
        )
        console.log(
            table([
                ["measurement", "default", "kept awake"],
                probeRow("umqtt QoS 1 publish, one fiber", "q1s"),
                probeRow(`umqtt QoS 1 publish, window of ${WINDOW} fibers`, "q1w"),
                probeRow(`umqtt QoS 1 pipelined, maxInflight ${PIPE}`, "q1p"),
                probeRow("umqtt QoS 2 publish, one fiber", "q2s"),
                probeRow(`umqtt QoS 2 publish, window of ${WINDOW} fibers`, "q2w"),
                probeRow(`umqtt QoS 2 pipelined, maxInflight ${PIPE}`, "q2p"),
                [
                    "umqtt connect(), whole",
                    fmtMs(med.connectMs),
                    fmtMs(pp.connect ? median(pp.connect.ms) : null),
                ],
                [
                    "umqtt connect(), CONNECT -> CONNACK",
                    fmtMs(med.connackMs),
                    fmtMs(pp.connect ? median(pp.connect.connackMs) : null),
                ],
            ])
        )
    }
    if (profile.steps.length) {
        console.log(
            "\nProfile (one run): microseconds per step, each step timed alone\n"
        )
        console.log(
            table(
                [
                    ["step", "us", "what"],
                    ...profile.steps.map(x => [x.name, x.us, x.what]),
                ],
                ["l", "r", "l"]
            )
        )
    }
    console.log("\nTargets\n")
    for (const t of targets)
        console.log(
            `  ${t.pass ? "PASS" : "MISS"}  ${t.name}: ${t.unit === "rate" ? fmtRate(t.value) : fmtRatio(t.value)}` +
                `${t.allDelivered === false ? " (not all delivered)" : ""}`
        )
}

// ------------------------------------------------------------ the soak

async function soak() {
    const minutes = option("--soak-minutes", 10, { min: 0.1 })
    const rate = Math.round(option("--soak-rate", 100))
    // -1: the client's default write buffer
    const soakWriteBuffer = Math.round(
        option("--soak-write-buffer", -1, { min: 0 })
    )
    const seconds = Math.max(10, Math.round(minutes * 60))
    const fibers = 4 // QoS 1 publishes in flight at once: a slow PUBACK delays one slot
    const sampleMs = Math.max(
        2000,
        Math.min(30000, Math.round((seconds * 1000) / 40))
    )
    const t0 = Date.now()
    const git = await gitInfo()
    const mosq = await startMosquitto({
        config: ["max_queued_messages 1000000", "max_inflight_messages 100"],
    })
    const base = `bench/${tag}/soak`
    let counter, pub, feeder
    try {
        counter = await startCounter(mosq.port, [`${base}/out`])
        pub = await connectPeer(mosq.port, { clientId: `bench-soakpub-${tag}` })
        const devs = await builds("bench/devs/soak.ts", {
            port: mosq.port,
            tag,
            seconds,
            rate,
            payloadSize: PAYLOAD,
            sampleMs,
            allocSize: 16384,
            fibers,
            writeBuffer: soakWriteBuffer,
        })
        console.log(
            `# soak: ${seconds} s, ${rate} msg/s each way (QoS 1), a sample every ${sampleMs / 1000} s, ` +
                `writeBuffer ${soakWriteBuffer < 0 ? "default" : soakWriteBuffer}`
        )
        const samples = []
        let peerSent = 0
        let peerAcked = 0
        let feedStart = 0
        const feed = () => {
            // QoS 1 to the device at `rate`/s by the clock, for `seconds`
            const due = Math.min(
                seconds * rate,
                Math.floor(((Date.now() - feedStart) * rate) / 1000)
            )
            while (peerSent < due) {
                const b = Buffer.alloc(PAYLOAD)
                b.writeUInt32LE(peerSent, 0) // the device checks the order
                pub.publishAsync(`${base}/in`, b, { qos: 1 }).then(
                    () => peerAcked++,
                    () => {}
                )
                peerSent++
            }
        }
        const r = await runProgram(devs, {
            timeoutMs: seconds * 1000 + 60000,
            label: "soak",
            onLine(line) {
                if (line === "SOAK_READY") {
                    feedStart = Date.now()
                    feeder = setInterval(feed, 20)
                } else if (line.startsWith("SAMPLE ")) {
                    const s = {}
                    for (const kv of line.slice(7).split(" ")) {
                        const [k, v] = kv.split("=")
                        s[k] = Number(v)
                    }
                    s.peerSent = peerSent
                    s.peerReceived = counter.count(`${base}/out`)
                    samples.push(s)
                    console.log(
                        `#  t=${(s.t / 1000).toFixed(0)}s sent=${s.sent} behind=${s.behind} recv=${s.recv} ` +
                            `outbox=${s.outbox} incoming=${s.incoming} inflight=${s.inflight} q2=${s.q2} ` +
                            `alloc16k=${s.alloc ? "ok" : "FAIL"}`
                    )
                } else if (/^(ERRORCB|WAITMSG)/.test(line))
                    console.log(`#  ${line}`)
            },
        })
        clearInterval(feeder)
        feeder = null
        const end = r.lines
            .map(l => /^SOAK_END sent=(\d+) recv=(\d+) pubErrors=(\d+)/.exec(l))
            .find(Boolean)
        const devSent = end ? +end[1] : null
        const devRecv = end ? +end[2] : null
        const peerReceived = await counter.waitCount(
            `${base}/out`,
            devSent || 0
        )
        const expected = seconds * rate

        // "no growth": a queue at a sampling instant holds what is in flight
        // then (a few messages at 100/s); growth = the last third's maximum
        // clearly above the first third's, or a last sample above a window
        const keys = ["outbox", "incoming", "inflight", "q2"]
        const third = Math.max(1, Math.floor(samples.length / 3))
        const growth = {}
        for (const k of keys) {
            growth[k] = {
                first: samples[0]?.[k],
                last: samples[samples.length - 1]?.[k],
                earlyMax: Math.max(...samples.slice(0, third).map(s => s[k])),
                lateMax: Math.max(...samples.slice(-third).map(s => s[k])),
            }
        }
        const grew = keys.filter(
            k =>
                growth[k].lateMax > Math.max(growth[k].earlyMax * 2, 8) ||
                growth[k].last > 8
        )
        const checks = [
            { name: "no panic, the program ended normally", pass: r.ok },
            {
                name: `the device published ${expected} QoS 1, all acknowledged and counted by the peer`,
                pass: devSent === expected && peerReceived === expected,
                value: `${devSent} acknowledged, ${peerReceived} at the peer`,
            },
            {
                name: `the device received all ${expected} the peer published`,
                pass: devRecv === peerSent && peerSent === expected,
                value: `${devRecv}/${peerSent}`,
            },
            {
                name: `the device kept the schedule: at most ${rate} messages (1 s) behind at every sample`,
                pass:
                    samples.length > 0 && samples.every(s => s.behind <= rate),
                value: `most behind: ${Math.max(...samples.map(s => s.behind))}`,
            },
            {
                name: "no growth in the client's queues (outbox, incoming, inflight, inboundQos2)",
                pass: grew.length === 0 && samples.length >= 3,
                value: grew.length ? `grew: ${grew.join(", ")}` : "flat",
            },
            {
                name: "a 16 KB Buffer.alloc succeeded at every sample",
                pass: samples.length > 0 && samples.every(s => s.alloc === 1),
            },
            {
                name: "nothing dropped or out of order",
                pass: samples.every(s => !s.dropped && !s.disorder),
            },
        ]
        console.log("\nSoak\n")
        for (const c of checks)
            console.log(
                `  ${c.pass ? "PASS" : "FAIL"}  ${c.name}${c.value ? `: ${c.value}` : ""}`
            )
        console.log(
            "  queues, first -> last sample (max in the first / last third): " +
                keys
                    .map(
                        k =>
                            `${k} ${growth[k].first}->${growth[k].last} (${growth[k].earlyMax}/${growth[k].lateMax})`
                    )
                    .join(", ")
        )
        if (!r.ok) console.log(`  ${r.why}`)
        const result = {
            date: new Date().toISOString(),
            tag,
            git,
            node: process.version,
            config: {
                seconds,
                rate,
                qos: 1,
                publishFibers: fibers,
                writeBuffer: soakWriteBuffer < 0 ? "default" : soakWriteBuffer,
                sampleMs,
                payloadBytes: PAYLOAD,
                allocBytes: 16384,
            },
            checks,
            growth,
            devSent,
            devRecv,
            peerSent,
            peerAcked,
            peerReceived,
            samples,
            why: r.why,
            durationSec: Math.round((Date.now() - t0) / 1000),
        }
        writeResults("soak-latest.json", result)
        console.log("\n# results in bench/results/soak-latest.json")
        return checks.every(c => c.pass) ? 0 : 1
    } finally {
        if (feeder) clearInterval(feeder)
        if (pub) await endPeer(pub)
        if (counter) await endPeer(counter.peer)
        await mosq.close()
    }
}

// ------------------------------------------------------------ main

let code = 1
try {
    code = flag("--soak") ? await soak() : await bench()
} catch (e) {
    console.error(e && e.stack ? e.stack : e)
}
process.exit(code)
