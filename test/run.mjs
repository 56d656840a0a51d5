// `npm test`: runs test/node/*.test.mjs with node:test, one file at a time.
// Optional arguments are substrings; only test files whose name contains
// one of them run (e.g. `node test/run.mjs codec`).
//
// `--full` (`npm run test:full`, what CI runs) sets UMQTT_FULL=1: the long
// counts of test/tools/profile.mjs (mutations, seeds, soaks) instead of the
// quick ones.
//
// One file at a time. (Two at once was tried on 2 cores: two tests overran
// their time bounds. Every `devs build` takes a cross-process lock, since it
// writes .devicescript/bin, so a file also waits for the other's builds
// inside its own time bounds.)

import { spawn } from "node:child_process"
import {
    existsSync,
    mkdirSync,
    readdirSync,
    readFileSync,
    rmSync,
} from "node:fs"
import { join, relative } from "node:path"
import { mosquittoPath } from "./tools/brokers.mjs"
import { pidAlive } from "./tools/proc.mjs"
import { genDir, repoRoot } from "./tools/sim.mjs"

const args = process.argv.slice(2)
if (args.includes("--full")) process.env.UMQTT_FULL = "1"
const filters = args.filter(a => a !== "--full")
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
// test run in this checkout) and a build lock held by one are kept.
mkdirSync(genDir, { recursive: true })
for (const f of readdirSync(genDir)) {
    const p = join(genDir, f)
    let owner = 0
    if (f === "build.lock") {
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

const files = existsSync(nodeDir)
    ? readdirSync(nodeDir)
          .filter(f => f.endsWith(".test.mjs"))
          .filter(f => !filters.length || filters.some(s => f.includes(s)))
          .sort()
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

const child = spawn(
    process.execPath,
    ["--test", "--test-reporter=spec", "--test-concurrency=1", ...files],
    { stdio: "inherit" }
)
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig))
child.on("exit", (code, signal) => {
    if (signal) {
        console.error(`node --test ended by ${signal}`)
        process.exit(1)
    }
    process.exit(code ?? 1)
})
