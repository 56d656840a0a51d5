// `npm test`: runs test/node/*.test.mjs with node:test, each file in its
// own `node --test` process, four at a time (`--jobs=N`), the longest
// first. Optional arguments are substrings; only test files whose name
// contains one of them run (e.g. `node test/run.mjs codec`).
//
// `--full` (`npm run test:full`, what CI runs) sets UMQTT_FULL=1: the long
// counts of test/tools/profile.mjs (mutations, seeds, soaks) instead of the
// quick ones, one file at a time (its fleet and soaks keep the machine busy
// on their own).
//
// Files side by side: with the builds below down to about 20 compiles of a
// few seconds, the quick run spends most of its time waiting on simulators,
// brokers and timers (about half of two cores busy one file at a time); on
// 2 cores, four at a time ended first (three: ~10% longer), with the
// tightest time bounds still at 2/3 or less. Two at once with ~60 builds of
// 6 s behind one lock overran time bounds.
//
// Builds: a build server (test/tools/buildserver.mjs) keeps the compiler
// loaded for the whole run and builds ahead the programs of the files to
// come; test/.gen/cache keeps the bytecode by content across runs
// (test/tools/sim.mjs). The report at the end counts the compiles.

import { spawn } from "node:child_process"
import {
    existsSync,
    mkdirSync,
    readdirSync,
    readFileSync,
    rmSync,
    statSync,
} from "node:fs"
import { setPriority, tmpdir } from "node:os"
import { join, relative } from "node:path"
import { mosquittoPath } from "./tools/brokers.mjs"
import { killPid, pidAlive, track } from "./tools/proc.mjs"
import { configuredSource } from "./tools/devconfig.mjs"
import {
    bundleModules,
    bundleSource,
    buildLogPath,
    cacheDir,
    genDir,
    importSpec,
    prebuild,
    repoRoot,
    scenarioSource,
    writeGenerated,
} from "./tools/sim.mjs"

const args = process.argv.slice(2)
if (args.includes("--full")) process.env.UMQTT_FULL = "1"
const jobsArg = args.find(a => /^--jobs=\d+$/.test(a))
const jobs = jobsArg ? parseInt(jobsArg.slice(7)) : /^(1|true)$/i.test(process.env.UMQTT_FULL || "") ? 1 : 4
const filters = args.filter(a => a !== "--full" && a !== jobsArg)
const fullProfile = /^(1|true)$/i.test(process.env.UMQTT_FULL || "")
const nodeDir = join(repoRoot, "test", "node")
const ci = /^(true|1)$/i.test(process.env.CI || "")

// mosquitto: its tests skip when it is missing, except in CI
const mosq = mosquittoPath()
if (mosq) {
    console.log(`mosquitto: ${mosq} (mosquitto tests will run)`)
} else if (ci) {
    console.error(
        "mosquitto: NOT FOUND, but CI=true requires the mosquitto tests: install it (apt-get install mosquitto)"
    )
    process.exit(1)
} else {
    console.log(
        "mosquitto: NOT FOUND -- all mosquitto tests will be SKIPPED (install it: apt-get install mosquitto)"
    )
}

// test/.gen: remove what earlier runs left. Generated names end in
// -<pid>-<n>-<time>.<ext>; files of a process that is still running (another
// test run in this checkout) and a build lock held by one are kept, and so
// is the build cache (its keys cover every source, so it is never stale).
mkdirSync(genDir, { recursive: true })
for (const f of readdirSync(genDir)) {
    const p = join(genDir, f)
    let owner = 0
    if (f === "cache") continue
    const server = /^buildserver-(\d+)$/.exec(f)
    if (server) owner = parseInt(server[1])
    else if (f === "build.lock") {
        try {
            owner = parseInt(readFileSync(join(p, "owner"), "utf8"))
        } catch {}
    } else {
        const m = /-(\d+)-\d+-[0-9a-z]+\.[a-z]+$/.exec(f)
        if (m) owner = parseInt(m[1])
    }
    if (owner && owner !== process.pid && pidAlive(owner)) continue
    rmSync(p, { recursive: true, force: true })
}
pruneCache(400)

/** Keeps the `keep` most recently used builds of test/.gen/cache. */
function pruneCache(keep) {
    if (!existsSync(cacheDir)) return
    const entries = []
    for (const f of readdirSync(cacheDir)) {
        const p = join(cacheDir, f)
        try {
            // a .tmp older than a build could take is left by a killed run
            const st = statSync(p)
            if (f.endsWith(".tmp")) {
                if (Date.now() - st.mtimeMs > 600_000) rmSync(p, { force: true })
            } else entries.push({ p, t: st.mtimeMs })
        } catch {}
    }
    entries.sort((a, b) => b.t - a.t)
    for (const e of entries.slice(keep)) rmSync(e.p, { force: true })
}

// The longest files first (about 140, 60, 45, 40 and 35 s), the others by
// name: with files side by side, a long one started last would hold up
// the end of the run.
const LONG_FIRST = ["unit", "codec", "client-broker", "hostile", "faults"]
const rank = f => {
    const i = LONG_FIRST.indexOf(f.replace(/\.test\.mjs$/, ""))
    return i < 0 ? LONG_FIRST.length : i
}
const files = existsSync(nodeDir)
    ? readdirSync(nodeDir)
          .filter(f => f.endsWith(".test.mjs"))
          .filter(f => !filters.length || filters.some(s => f.includes(s)))
          .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))
          .map(f => relative(process.cwd(), join(nodeDir, f)))
    : []
if (!files.length) {
    console.error(
        `no test files in test/node${filters.length ? ` matching ${filters.join(", ")}` : ""}`
    )
    process.exit(1)
}
const profile = fullProfile
    ? "full (UMQTT_FULL=1: long counts)"
    : "quick (`npm run test:full` for the long counts)"
console.log(`profile: ${profile}`)
console.log(`running ${files.length} test file(s): ${files.join(" ")}`)

// a bound on a whole file far above its tests' own time bounds (a test
// that hangs beyond them is a harness bug): SIGTERM, so that the test
// process kills its simulators and brokers, then SIGKILL
const FILE_TIMEOUT_MS = (fullProfile ? 60 : 20) * 60_000

const started = Date.now()
const env = { ...process.env }
const server = await startBuildServer()
if (server) env.UMQTT_BUILD_SERVER = server.sock

if (server) await prebuildAhead(server.sock)

const results = await runFiles(files, jobs)
stopServer()
report(results)
process.exit(results.every(r => r.ok) ? 0 : 1)

/**
 * Runs `node --test <file>` for each file, `jobs` at a time, in the given
 * order (node --test itself would start them by name). With one job the
 * output streams; with more, each file's output is printed whole when it
 * ends.
 * @returns {Promise<{ file: string, ok: boolean, ms: number, counts: Record<string, number> }[]>}
 */
async function runFiles(list, jobs) {
    const results = []
    const queue = [...list]
    const running = new Set()
    const stop = sig => {
        for (const c of running) killPid(c.pid, sig)
        stopServer()
        process.exit(1)
    }
    process.on("SIGINT", () => stop("SIGINT"))
    process.on("SIGTERM", () => stop("SIGTERM"))
    const worker = async () => {
        while (queue.length) results.push(await runFile(queue.shift(), jobs === 1, running))
    }
    await Promise.all(Array.from({ length: Math.min(jobs, list.length) }, worker))
    return results
}

function runFile(file, stream, running) {
    const t0 = Date.now()
    const child = spawn(process.execPath, ["--test", "--test-reporter=spec", file], {
        env,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
    })
    track(child, `node --test ${file}`)
    running.add(child)
    let out = ""
    const take = d => {
        if (stream) process.stdout.write(d)
        out += d
    }
    child.stdout.on("data", take)
    child.stderr.on("data", take)
    let timedOut = false
    const timer = setTimeout(() => {
        timedOut = true
        killPid(child.pid, "SIGTERM")
        setTimeout(() => killPid(child.pid), 5000).unref()
    }, FILE_TIMEOUT_MS)
    return new Promise(resolvePromise => {
        child.on("close", (code, signal) => {
            clearTimeout(timer)
            running.delete(child)
            const ms = Date.now() - t0
            if (!stream) process.stdout.write(out)
            if (timedOut) console.log(`✖ ${file}: stopped after ${FILE_TIMEOUT_MS / 60_000} minutes`)
            const counts = {}
            for (const m of out.matchAll(/^ℹ (tests|pass|fail|cancelled|skipped|todo) (\d+)$/gm))
                counts[m[1]] = +m[2]
            resolvePromise({ file, ok: code === 0 && !signal, ms, counts })
        })
    })
}

/** Totals, the time of each file (slowest first), the builds. */
function report(results) {
    const total = {}
    for (const r of results) for (const [k, v] of Object.entries(r.counts)) total[k] = (total[k] || 0) + v
    console.log("")
    if (Object.keys(total).length)
        console.log(
            `tests ${total.tests ?? 0}: ${total.pass ?? 0} passed, ${total.fail ?? 0} failed, ` +
                `${total.skipped ?? 0} skipped, ${total.cancelled ?? 0} cancelled, ${total.todo ?? 0} todo`
        )
    console.log(`time per test file (${jobs} at a time), slowest first:`)
    for (const r of [...results].sort((a, b) => b.ms - a.ms))
        console.log(`  ${(r.ms / 1000).toFixed(1).padStart(6)} s  ${r.ok ? "ok  " : "FAIL"}  ${r.file}`)
    summary()
    const failed = results.filter(r => !r.ok)
    if (failed.length) console.log(`FAILED: ${failed.map(r => r.file).join(" ")}`)
}

/** Kills the build server and removes its socket (a SIGKILL leaves it). */
function stopServer() {
    if (!server) return
    killPid(server.pid)
    rmSync(server.sock, { force: true })
}

/**
 * Starts test/tools/buildserver.mjs; resolves once it listens, or with
 * undefined (the tests then run `devs build` themselves) when it does not
 * start within 20 s.
 * @returns {Promise<{ pid: number, sock: string }|undefined>}
 */
function startBuildServer() {
    const sock = join(tmpdir(), `umqtt-build-${process.pid}.sock`)
    const proc = spawn(
        process.execPath,
        [join(repoRoot, "test/tools/buildserver.mjs"), sock],
        // stdin: a pipe that closes when this process ends, however it ends,
        // and the server exits with it
        { cwd: repoRoot, detached: true, stdio: ["pipe", "pipe", "inherit"] }
    )
    track(proc, "build server")
    // compiles have generous time bounds, simulators tighter ones: the
    // server takes the CPU the tests leave (most of it, most of the time)
    try {
        setPriority(proc.pid, 10)
    } catch {}
    return new Promise(resolvePromise => {
        const give = v => {
            clearTimeout(timer)
            resolvePromise(v)
        }
        const timer = setTimeout(() => {
            console.error("build server: not ready in 20 s; the tests build by themselves")
            killPid(proc.pid)
            give(undefined)
        }, 20_000)
        let out = ""
        proc.stdout.setEncoding("utf8")
        proc.stdout.on("data", d => {
            out += d
            if (/^ready$/m.test(out)) give({ pid: proc.pid, sock })
        })
        proc.on("exit", () => give(undefined))
    })
}

/**
 * Queues on the build server, behind the tests' own builds, the programs
 * the test files will build, in the order the files run, so that builds
 * overlap with the simulator runs of the files before. The list comes from
 * the test sources: the bundle of all scenarios when a file names one
 * (or, for a module outside it, the entry writeEntry or startConfigured
 * writes), and the unit test files. A miss costs only a build: a test
 * builds what it needs either way.
 */
async function prebuildAhead(sock) {
    const sources = []
    const seen = new Set()
    const bundled = bundleModules()
    const add = (name, src) => {
        if (seen.has(src)) return
        seen.add(src)
        sources.push({ name, src })
    }
    for (const f of files) {
        const text = readFileSync(f, "utf8")
        const configured = text.includes("startConfigured(")
        for (const [, mod] of text.matchAll(/["'`](test\/(?:devs|tools\/fixtures)\/[\w.-]+\.ts)["'`]/g)) {
            let modText
            try {
                modText = readFileSync(join(repoRoot, mod), "utf8")
            } catch {
                continue
            }
            if (!/^export (async )?function main\(/m.test(modText)) continue
            if (bundled.includes(mod)) add("bundle", bundleSource())
            else add(mod, configured ? configuredSource(mod) : scenarioSource(mod))
        }
        // test/node/unit.test.mjs: each unit test file, imported (no parameters)
        if (text.includes("test/unit/"))
            for (const u of readdirSync(join(repoRoot, "test/unit")).filter(u => u.endsWith(".ts")).sort())
                add(`test/unit/${u}`, `import ${JSON.stringify(importSpec(`test/unit/${u}`))}\n`)
    }
    const entries = sources.map(({ name, src }) =>
        writeGenerated(`prebuild-${name.replace(/^.*\//, "").replace(/\.ts$/, "")}`, src)
    )
    try {
        await prebuild(entries, sock)
    } catch (e) {
        console.error(`build server: prebuild not queued: ${e.message}`)
    }
}

/** Prints how many builds compiled and how many came from the cache. */
function summary() {
    let compiled = 0
    let ms = 0
    let waited = 0
    let cached = 0
    try {
        for (const l of readFileSync(buildLogPath, "utf8").split("\n")) {
            const [what, t] = l.split(" ")
            if (what === "compiled") {
                compiled++
                ms += +t
            } else if (what === "waited") waited++
            else if (what === "cached") cached++
        }
    } catch {}
    console.log(
        `builds: ${compiled} compiles (${(ms / 1000).toFixed(0)} s); the tests took ${cached} from the cache ` +
            `and waited for ${waited}; ${((Date.now() - started) / 1000).toFixed(0)} s in all`
    )
}
