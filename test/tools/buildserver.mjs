// The build server of a test run: `node test/tools/buildserver.mjs <socket>`,
// started by test/run.mjs, which passes the socket path to the tests as
// UMQTT_BUILD_SERVER. It keeps the DeviceScript compiler loaded
// (test/tools/compiler.mjs) and compiles one entry at a time for the tests'
// buildDevs (test/tools/sim.mjs), which cache the results.
//
// Protocol: the client sends one JSON line { entry, dest } (absolute
// paths), the server answers one JSON line { ok, output } once the bytecode
// is at `dest` (ok) or the compile failed (output: the compiler's).
//
// It writes "ready" on stdout once listening, and exits when its stdin
// closes (test/run.mjs ended, however it ended).

import { copyFileSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { join } from "node:path"
import { compileInProcess, preload } from "./compiler.mjs"
import { genDir, withBuildLock } from "./sim.mjs"

const sock = process.argv[2]
if (!sock) {
    console.error("usage: buildserver.mjs <socket path>")
    process.exit(2)
}
const workDir = join(genDir, `buildserver-${process.pid}`)

let chain = Promise.resolve()
let count = 0

/** Compiles under the build lock (the compiler also writes .devicescript/lib and gen). */
function build(entry, dest) {
    const run = chain.then(() =>
        withBuildLock(async () => {
            const outDir = join(workDir, String(++count))
            try {
                const r = await compileInProcess(entry, outDir)
                if (r.ok) copyFileSync(r.bytecode, dest)
                return { ok: r.ok, output: r.output }
            } finally {
                rmSync(outDir, { recursive: true, force: true })
            }
        })
    )
    chain = run.catch(() => {})
    return run
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
            const { entry, dest } = JSON.parse(line)
            res = await build(entry, dest)
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
