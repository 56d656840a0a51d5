// One build of a device program for many runs with different parameters:
// the generated entry reads the parameters at run time (test/devs/devconfig.ts)
// from a retained message on the test's broker, instead of having them
// compiled in. A build costs seconds (more while other builds hold the build
// lock), a start of a prebuilt program about one.

import { writeFileSync, mkdirSync } from "node:fs"
import { basename, join, relative, resolve } from "node:path"
import { connectPeer, endPeer } from "./brokers.mjs"
import { buildDevs, genDir, repoRoot, startDevice } from "./sim.mjs"

const builds = new Map() // "module@port" -> Promise<string> (.devs path)
let chain = Promise.resolve()
let counter = 0

function importSpec(file) {
    let spec = relative(genDir, resolve(repoRoot, file)).split("\\").join("/").replace(/\.ts$/, "")
    if (!spec.startsWith(".")) spec = "./" + spec
    return JSON.stringify(spec)
}

function build(scenarioModule, port, topic) {
    const key = `${scenarioModule}@${port}`
    if (!builds.has(key)) {
        mkdirSync(genDir, { recursive: true })
        const name = basename(scenarioModule).replace(/\.ts$/, "").replace(/[^A-Za-z0-9_.-]/g, "_")
        // the name pattern of sim.mjs (name-pid-n-time), so test/run.mjs cleans it up
        const entry = join(genDir, `${name}-cfg-${process.pid}-${++counter}-${Date.now().toString(36)}.ts`)
        writeFileSync(
            entry,
            `import { readConfig } from ${importSpec("test/devs/devconfig.ts")}\n` +
                `import { main } from ${importSpec(scenarioModule)}\n` +
                `const params = await readConfig(${port}, ${JSON.stringify(topic)})\n` +
                `await main(params)\n`
        )
        const p = buildDevs(entry, `${name}-cfg`)
        p.catch(() => builds.delete(key))
        builds.set(key, p)
    }
    return builds.get(key)
}

/**
 * Starts `scenarioModule`'s `main(params)` in the simulator, building the
 * program once per module and broker port in this process. The parameters
 * go through a retained message on the broker at 127.0.0.1:brokerPort;
 * starts are serialized so each program reads its own. Resolves once the
 * program has read them (printed CONFIG).
 * @param {number} brokerPort a broker the program can reach directly
 * @param {string} scenarioModule repo-relative, e.g. "test/devs/inbound-burst.ts"
 * @param {any} params JSON-serialisable
 * @param {{ timeoutMs?: number, onLine?: (line: string) => void, env?: object }} [opts] for startDevice
 * @returns {Promise<import("./sim.mjs").DeviceHandle>}
 */
export function startConfigured(brokerPort, scenarioModule, params, opts = {}) {
    const run = chain.then(async () => {
        const topic = `devcfg/${process.pid}/${basename(scenarioModule)}`
        const devs = await build(scenarioModule, brokerPort, topic)
        const peer = await connectPeer(brokerPort)
        let dev
        try {
            await peer.publishAsync(topic, JSON.stringify(params), { qos: 1, retain: true })
            dev = startDevice(devs, opts)
            await dev.waitFor("CONFIG", 30000)
            await peer.publishAsync(topic, "", { qos: 1, retain: true })
            return dev
        } catch (e) {
            if (dev) await dev.kill()
            throw e
        } finally {
            await endPeer(peer)
        }
    })
    chain = run.catch(() => {})
    return run
}
