// `npm start` runs devs/main.ts against an embedded broker and exits 0.
import { test } from "node:test"
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import { join } from "node:path"
import { repoRoot } from "../tools/sim.mjs"
import { canConnect } from "../tools/brokers.mjs"
import { track, killPid } from "../tools/proc.mjs"

test("npm start: devs/main.ts round trip against the embedded broker", async t => {
    if (await canConnect(1883)) {
        t.skip("port 1883 is busy on this machine")
        return
    }
    const child = spawn(process.execPath, [join(repoRoot, "test/tools/start.mjs"), "devs/main.ts"], {
        cwd: repoRoot,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
    })
    track(child, "npm start")
    let out = ""
    child.stdout.on("data", d => (out += d))
    child.stderr.on("data", d => (out += d))
    const timer = setTimeout(() => killPid(child.pid), 90000)
    try {
        const code = await new Promise(resolve => child.on("exit", resolve))
        assert.equal(code, 0, out)
        assert.match(out, /Subscribe Recv: Topic=\/public\/TEST\/devicescript,Msg=my name is DeviceScript!/)
        assert.match(out, /\[broker\] umqtt_client disconnected/)
    } finally {
        clearTimeout(timer)
        killPid(child.pid)
    }
})
