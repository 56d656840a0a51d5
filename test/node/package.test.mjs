// The package as another project uses it: `npm pack`, a fresh DeviceScript
// project made by `devs init`, `npm install <tarball>` there, a program that
// imports MQTTClient from "devicescript-umqtt" by name, built by the
// project's own `npm run build` and run in the simulator against aedes: a
// QoS 1 round trip (the device subscribes and publishes to itself at QoS 1,
// an MQTT.js peer sees the message at QoS 1, aedes sees the device's PUBACK).
//
// Offline and quick: the project gets @devicescript/cli as a devDependency of
// the exact version this repository uses, satisfied by a link to the copy in
// this repository's node_modules (the package itself has no dependencies),
// and `npm install --offline` never asks a registry.
//
// It fails on a package whose install scripts need what is not shipped (the
// old `postinstall: devicescript build devs/main.ts` did: exit code 101 with
// 'source file "devs/main.ts" not found').
import { test } from "node:test"
import assert from "node:assert/strict"
import {
    mkdirSync,
    mkdtempSync,
    readdirSync,
    readFileSync,
    realpathSync,
    rmSync,
    statSync,
    symlinkSync,
    writeFileSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, relative } from "node:path"
import { collect, connectPeer, endPeer, startAedes } from "../tools/brokers.mjs"
import { onExit } from "../tools/proc.mjs"
import { cliPath, repoRoot, runCollect, startDevice } from "../tools/sim.mjs"

const NAME = "devicescript-umqtt"
const CLIENT = "umqtt-package-test"
const TOPIC = "package/roundtrip"
const npm = process.platform === "win32" ? "npm.cmd" : "npm"

/**
 * The environment for a nested npm: without the npm_* variables of an outer
 * `npm test` (they would point npm at this repository), keeping the cache
 * and registry settings.
 */
function npmEnv() {
    const env = {}
    for (const [k, v] of Object.entries(process.env)) {
        const low = k.toLowerCase()
        const keep = ["npm_config_cache", "npm_config_registry", "npm_config_userconfig"]
        if (low.startsWith("npm_") && !keep.includes(low)) continue
        if (k === "INIT_CWD") continue
        env[k] = v
    }
    env.npm_config_update_notifier = "false"
    env.npm_config_fund = "false"
    env.npm_config_audit = "false"
    return env
}

/** Runs a command (time-bounded, killed with its process group) and asserts exit 0. */
async function must(what, cmd, args, opts) {
    const r = await runCollect(cmd, args, { name: what, ...opts })
    assert.ok(
        r.code === 0 && !r.timedOut,
        `${what} failed (${r.timedOut ? `timed out after ${opts.timeoutMs} ms` : `exit code ${r.code}`}):\n${r.output.slice(-4000)}`
    )
    return r
}

/** Every file under dir, relative, with "/" separators. */
function listFiles(dir, base = dir) {
    const out = []
    for (const f of readdirSync(dir)) {
        const p = join(dir, f)
        if (statSync(p).isDirectory()) out.push(...listFiles(p, base))
        else out.push(relative(base, p).split("\\").join("/"))
    }
    return out.sort()
}

const program = port => `import * as ds from "@devicescript/core"
import { MQTTClient } from "${NAME}"

const c = new MQTTClient("${CLIENT}", "127.0.0.1", ${port}, { keepalive: 30 })
let got = 0
c.setCallback((topic, msg, info) => {
    got++
    console.log(\`GOT \${topic} \${msg.toString()} qos=\${info.qos}\`)
})
console.log("CONNECT " + (await c.connect()))
console.log("GRANTED " + (await c.subscribe("${TOPIC}", 1)))
await c.publish("${TOPIC}", "hello from a consumer", false, 1)
console.log("PUBLISHED")
while (got < 1) await c.waitMsg()
await c.disconnect()
console.log("DONE " + c.getMqttsta())
ds.restart()
`

test("the packed package installs into a fresh `devs init` project and does a QoS 1 round trip", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "umqtt-package-"))
    const removeTmp = () => rmSync(tmp, { recursive: true, force: true })
    const unhook = onExit(removeTmp)
    const app = join(tmp, "app")
    const env = npmEnv()
    let broker, peer, dev
    try {
        // 1. the tarball, as `npm publish` would make it (`prepare` only
        //    builds devs/main.ts, which is not packed: skipped here)
        await must("npm pack", npm, ["pack", "--ignore-scripts", "--pack-destination", tmp], {
            cwd: repoRoot,
            env,
            timeoutMs: 60_000,
        })
        const tgz = readdirSync(tmp).filter(f => f.endsWith(".tgz"))
        assert.equal(tgz.length, 1, `npm pack wrote ${tgz.join(", ") || "nothing"}`)
        const tarball = join(tmp, tgz[0])

        // 2. a new DeviceScript project
        await must("devs init", process.execPath, [cliPath, "--no-colors", "init", "--no-install", app], {
            cwd: tmp,
            env,
            timeoutMs: 60_000,
        })
        const pkgPath = join(app, "package.json")
        const pkg = JSON.parse(readFileSync(pkgPath, "utf8"))
        assert.ok(pkg.devDependencies && "@devicescript/cli" in pkg.devDependencies, "devs init declares @devicescript/cli")
        // the CLI: this repository's copy, at its exact version (offline)
        const cliDir = realpathSync(dirname(dirname(cliPath)))
        const cliVersion = JSON.parse(readFileSync(join(cliDir, "package.json"), "utf8")).version
        pkg.devDependencies["@devicescript/cli"] = cliVersion
        writeFileSync(pkgPath, JSON.stringify(pkg, null, 4) + "\n")
        mkdirSync(join(app, "node_modules/@devicescript"), { recursive: true })
        rmSync(join(app, "node_modules/@devicescript/cli"), { recursive: true, force: true })
        symlinkSync(cliDir, join(app, "node_modules/@devicescript/cli"), "dir")
        // what `devs init` without --no-install does: the project's own install
        // (links the CLI's bins, its postinstall builds src/main.ts)
        await must("npm install (the new project)", npm, ["install", "--offline", "--no-audit", "--no-fund"], {
            cwd: app,
            env,
            timeoutMs: 120_000,
        })

        // 3. install the package: this is what failed with the old postinstall
        await must("npm install <tarball>", npm, ["install", tarball, "--offline", "--no-audit", "--no-fund"], {
            cwd: app,
            env,
            timeoutMs: 120_000,
        })
        const installed = join(app, "node_modules", NAME)
        const after = JSON.parse(readFileSync(pkgPath, "utf8"))
        assert.ok(after.dependencies && after.dependencies[NAME], `${NAME} is a dependency of the project now`)

        // exactly what a consumer needs
        const srcFiles = readdirSync(join(repoRoot, "src"))
            .filter(f => f.endsWith(".ts"))
            .map(f => `src/${f}`)
        const expected = [
            "CHANGELOG.md",
            "LICENSE",
            "README.md",
            "devsconfig.json",
            "docs/api.md",
            "package.json",
            ...srcFiles,
        ].sort()
        assert.deepEqual(listFiles(installed), expected, "the files of the installed package")
        const shipped = JSON.parse(readFileSync(join(installed, "package.json"), "utf8"))
        for (const s of ["preinstall", "install", "postinstall"])
            assert.equal(shipped.scripts?.[s], undefined, `the package has no ${s} script`)

        // 4. a program that imports the package by name, built the project's way
        broker = await startAedes()
        writeFileSync(join(app, "src/main.ts"), program(broker.port))
        await must("npm run build", npm, ["run", "build"], { cwd: app, env, timeoutMs: 120_000 })
        const bin = join(app, ".devicescript/bin")
        const dbg = JSON.parse(readFileSync(join(bin, "bytecode-dbg.json"), "utf8"))
        const sources = dbg.sources.map(s => s.path)
        assert.ok(
            sources.includes(`node_modules/${NAME}/src/client.ts`),
            `the client was compiled from the installed package; sources: ${sources.join(", ")}`
        )

        // 5. the QoS 1 round trip
        peer = await connectPeer(broker.port)
        const seen = await collect(peer, TOPIC, { qos: 1 })
        const acks = []
        broker.broker.on("ack", (packet, client) => {
            if (client && client.id === CLIENT) acks.push(packet)
        })
        dev = startDevice(join(bin, "bytecode.devs"), { timeoutMs: 30_000 })
        await dev.waitFor("CONNECT 0", 15_000)
        await dev.waitFor("GRANTED 1", 10_000)
        await dev.waitFor("PUBLISHED", 10_000) // resolved on PUBACK
        const line = await dev.waitFor(/^GOT /, 10_000)
        assert.equal(line, `GOT ${TOPIC} hello from a consumer qos=1`)
        await dev.waitFor("DONE -1", 10_000)
        const [m] = await seen.waitForCount(1, 5000)
        assert.equal(m.payload.toString(), "hello from a consumer")
        assert.equal(m.qos, 1, "the peer got it at QoS 1")
        const r = await dev.done
        assert.equal(r.code, 0, r.output.slice(-20).join("\n"))
        assert.ok(acks.length >= 1, "aedes saw the device acknowledge the QoS 1 delivery (PUBACK)")
        console.log(
            `# ${tgz[0]} installed into a devs init project (CLI ${cliVersion}), built, QoS 1 round trip done`
        )
    } finally {
        if (dev) await dev.kill()
        if (peer) await endPeer(peer)
        if (broker) await broker.close()
        removeTmp()
        unhook()
    }
})
