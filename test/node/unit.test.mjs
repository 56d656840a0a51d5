// Runs every DeviceScript unit test file (test/unit/*.ts) in the simulator.
import { test } from "node:test"
import assert from "node:assert/strict"
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { repoRoot, runDeviceToEnd } from "../tools/sim.mjs"
import { full } from "../tools/profile.mjs"

// schedules.ts tries every cut point (hundreds of runs of the client): more
// time, and in the full profile every pair of points (its `main({ full })`)
const LONG = { "schedules.ts": full ? 1_800_000 : 300_000 }
const PARAMS = { "schedules.ts": full ? { full: true } : undefined }

// the long ones first: with test files running side by side
// (test/run.mjs), the run then does not wait for them at the end
const files = readdirSync(join(repoRoot, "test", "unit"))
    .filter(f => f.endsWith(".ts"))
    .sort((a, b) => !!LONG[b] - !!LONG[a] || (a < b ? -1 : a > b ? 1 : 0))

for (const f of files) {
    test(`DeviceScript unit tests: ${f}`, async () => {
        const r = await runDeviceToEnd(`test/unit/${f}`, PARAMS[f], {
            timeoutMs: LONG[f] || 60000,
        })
        const summary = r.lines.find(l => /^tests: \d+, pass: \d+, error: \d+/.test(l))
        const failures = r.lines.filter(l => /Exception|message:|^FAIL /.test(l))
        for (const l of r.lines) if (/^schedules: /.test(l)) console.log(`# ${l}`)
        assert.ok(summary, `no test summary; last lines:\n${r.lines.slice(-30).join("\n")}`)
        const [, total, pass, error] = summary.match(/tests: (\d+), pass: (\d+), error: (\d+)/)
        assert.equal(+error, 0, `${error} failed:\n${failures.join("\n")}`)
        assert.equal(+pass, +total)
        assert.ok(+total > 0)
        assert.equal(r.code, 0, `exit code ${r.code}`)
        console.log(`# ${f}: ${summary}`)
    })
}
