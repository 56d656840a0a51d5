// The build server of a test run: `node test/tools/buildserver.mjs <socket>`,
// started by test/run.mjs, which passes the socket path to the tests as
// UMQTT_BUILD_SERVER. It keeps the DeviceScript compiler loaded
// (test/tools/compiler.mjs) and compiles one entry at a time for the tests'
// buildDevs (test/tools/sim.mjs), which cache the results.
//
// Protocol: one JSON line each way. { entry, dest } (absolute paths):
// compile `entry` into the cache file `dest` (written atomically); the answer
// { ok, output } comes once it is there, or with the compiler's output when
// the compile failed. { prebuild: [{ entry, dest }, ...] }: queue these
// behind every requested build (test/run.mjs, for the files ahead), answered
// at once. A request for an entry already queued or compiling waits for
// that compile.
//
// It writes "ready" on stdout once listening, and exits when its stdin
// closes (test/run.mjs ended, however it ended).

import { copyFileSync, existsSync, renameSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"
import { compileInProcess, preload } from "./compiler.mjs"
import { genDir, logBuild, repoRoot, withBuildLock } from "./sim.mjs"
import { relative } from "node:path"

const sock = process.argv[2]
if (!sock) {
    console.error("usage: buildserver.mjs <socket path>")
    process.exit(2)
}
const workDir = join(genDir, `buildserver-${process.pid}`)

/** @type {Map<string, { entry: string, dest: string, urgent: boolean, done: Promise<{ ok: boolean, output: string }>, settle: (r: any) => void }>} */
const jobs = new Map() // dest -> job, until compiled
const failed = new Map() // dest -> the answer of its failed compile
let busy = false
let count = 0

function enqueue(entry, dest, urgent) {
    let job = jobs.get(dest)
    if (!job) {
        let settle
        const done = new Promise(r => (settle = r))
        job = { entry, dest, urgent, done, settle }
        jobs.set(dest, job)
        setImmediate(work)
    }
    if (urgent) job.urgent = true
    return job.done
}

/** Compiles the queued jobs one at a time: the requested ones first, in order. */
async function work() {
    if (busy) return
    const queued = [...jobs.values()].filter(j => !j.started)
    const job = queued.find(j => j.urgent) || queued[0]
    if (!job) return
    busy = true
    job.started = true
    let res
    const t0 = Date.now()
    try {
        res = await compile(job.entry, job.dest)
        logBuild("compiled", Date.now() - t0, relative(repoRoot, job.entry))
    } catch (e) {
        res = { ok: false, output: `build server: ${e?.stack || e}` }
    }
    jobs.delete(job.dest)
    if (!res.ok) failed.set(job.dest, res)
    job.settle(res)
    busy = false
    setImmediate(work)
}

/** Compiles under the build lock (the compiler also writes .devicescript/lib and gen). */
function compile(entry, dest) {
    return withBuildLock(async () => {
        const outDir = join(workDir, String(++count))
        try {
            const r = await compileInProcess(entry, outDir)
            if (r.ok) {
                const tmp = join(outDir, "cache.tmp")
                copyFileSync(r.bytecode, tmp)
                renameSync(tmp, dest)
            }
            return { ok: r.ok, output: r.output }
        } finally {
            rmSync(outDir, { recursive: true, force: true })
        }
    })
}

async function answer(request) {
    if (Array.isArray(request.prebuild)) {
        for (const { entry, dest } of request.prebuild)
            if (!existsSync(dest) && !failed.has(dest)) enqueue(entry, dest, false)
        return { ok: true, output: "" }
    }
    const { entry, dest } = request
    if (existsSync(dest)) return { ok: true, output: "" }
    // the key of `dest` covers every input: a failed compile fails again
    if (failed.has(dest)) return failed.get(dest)
    return enqueue(entry, dest, true)
}

const server = createServer(conn => {
    let buf = ""
    conn.setEncoding("utf8")
    conn.on("error", () => {})
    conn.on("data", async d => {
        buf += d
        const i = buf.indexOf("\n")
        if (i < 0) return
        const line = buf.slice(0, i)
        buf = ""
        let res
        try {
            res = await answer(JSON.parse(line))
        } catch (e) {
            res = { ok: false, output: `build server: ${e?.stack || e}` }
        }
        conn.end(JSON.stringify(res) + "\n")
    })
})

const shutdown = () => {
    server.close()
    rmSync(workDir, { recursive: true, force: true })
    rmSync(sock, { force: true })
    process.exit(0)
}
process.stdin.on("end", shutdown)
process.stdin.on("error", shutdown)
process.stdin.resume()
process.on("SIGTERM", shutdown)
process.on("SIGINT", shutdown)

rmSync(sock, { force: true })
server.listen(sock, () => {
    console.log("ready")
    // load the CLI bundle while the first test starts up
    setImmediate(() => {
        try {
            preload()
        } catch (e) {
            console.error(`build server: ${e?.message || e}`)
        }
    })
})
