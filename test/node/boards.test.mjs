// Every application in devs/ builds against every board of boards/
// (`npm run test:full`); `npm test` builds each application against one
// board, the boards taking turns, so that every application and every board
// is built (half the builds with two boards).
//
// A program targets a board by importing its module, `@dsboard/<id>`: the
// compiler then type-checks `pins` and `board` against boards/<id>.board.json
// (pins resolve by label on the device, whose firmware carries the board
// configuration written by `devs flash`). So each build here is a generated
// entry `import { pins, board } from "@dsboard/<id>"` + `import "<app>"`.
import { test } from "node:test"
import assert from "node:assert/strict"
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs"
import { join, relative } from "node:path"
import { full } from "../tools/profile.mjs"
import {
    buildDevs,
    cliPath,
    genDir,
    repoRoot,
    runCollect,
} from "../tools/sim.mjs"

const boardsDir = join(repoRoot, "boards")
const devsDir = join(repoRoot, "devs")

const boards = readdirSync(boardsDir)
    .filter(f => f.endsWith(".board.json"))
    .sort()
    .map(f => ({
        id: f.replace(/\.board\.json$/, ""),
        json: JSON.parse(readFileSync(join(boardsDir, f), "utf8")),
    }))
// every .ts of devs/: the applications and the modules they share (a module
// builds as an entry too, which checks it on its own)
const apps = readdirSync(devsDir)
    .filter(f => f.endsWith(".ts"))
    .sort()

let n = 0
/** Writes test/.gen/<name>-<pid>-<n>-<time>.ts (run.mjs cleans these up). */
function entry(name, src) {
    mkdirSync(genDir, { recursive: true })
    const file = join(
        genDir,
        `${name}-${process.pid}-${++n}-${Date.now().toString(36)}.ts`
    )
    writeFileSync(file, src)
    return file
}

/** Import specifier of a repo file from test/.gen. */
function spec(abs) {
    return relative(genDir, abs).split("\\").join("/").replace(/\.ts$/, "")
}

/** Runs the DeviceScript CLI (no build: only reads boards/) and returns its output. */
function cli(args, timeoutMs = 60000) {
    return runCollect(process.execPath, [cliPath, "--no-colors", ...args], {
        timeoutMs,
        name: `devs ${args.join(" ")}`,
    })
}

test("boards/: an ESP32 Wi-Fi dev kit and the Pico W, in the `devs add board` format", () => {
    const archs = boards.map(b => b.json.archId)
    assert.ok(
        archs.some(a => a === "esp32c3" || a === "esp32s3"),
        `an ESP32-C3/S3 board, got ${archs}`
    )
    assert.ok(
        archs.includes("rp2040w"),
        `a Pico W (rp2040w) board, got ${archs}`
    )
    for (const { id, json } of boards) {
        assert.match(id, /^[a-z0-9_]+$/, `board id ${id}`)
        assert.match(
            json.$schema,
            /deviceconfig\.schema\.json$/,
            `${id}: $schema`
        )
        assert.ok(json.devName, `${id}: devName`)
        assert.match(json.productId, /^0x3[0-9a-f]{7}$/, `${id}: productId`)
        assert.ok(
            json.led && json.led.pin !== undefined,
            `${id}: the status LED`
        )
        assert.ok(Object.keys(json.pins || {}).length > 0, `${id}: pins`)
        // the LED pin is the runtime's, not a free pin
        if (typeof json.led.pin === "number" && json.led.type !== 100)
            assert.ok(
                !Object.values(json.pins).includes(json.led.pin),
                `${id}: LED pin ${json.led.pin} is also listed as a free pin`
            )
    }
})

test("the CLI accepts the boards (devs flash esp32/rp2040 list them, no error)", async () => {
    for (const [arch, family] of [
        ["esp32", /^esp32/],
        ["rp2040", /^rp2040/],
    ]) {
        const r = await cli(["flash", arch, "--help"])
        assert.equal(r.code, 0, r.output)
        assert.doesNotMatch(
            r.output,
            /board\.json\(\d+\)/,
            "a board file has errors"
        )
        for (const b of boards.filter(b => family.test(b.json.archId)))
            assert.match(
                r.output,
                new RegExp(`--board ${b.id}\\s`),
                `devs flash ${arch} lists ${b.id}`
            )
    }
})

boards.forEach(({ id, json }, b) => {
    // the full run: every app; the quick one: every boards.length-th app
    const mine = full ? apps : apps.filter((_, i) => i % boards.length === b)
    const what = full ? "every devs/ app builds" : `${mine.length} of the ${apps.length} devs/ apps build`
    test(`board ${id}: ${what} against it`, async t => {
        for (const app of mine) {
            await t.test(`devs/${app}`, async () => {
                const file = entry(
                    `board-${id}-${app.replace(/\.ts$/, "")}`,
                    `import { pins, board } from "@dsboard/${id}"\n` +
                        `import ${JSON.stringify(spec(join(devsDir, app)))}\n`
                )
                const out = await buildDevs(file)
                assert.ok(out.endsWith(".devs"))
            })
        }
        await t.test(
            "the LED on a board pin (devs/led.ts PinLed) type-checks",
            async () => {
                const pin = Object.keys(json.pins)[0]
                const file = entry(
                    `board-${id}-pinled`,
                    `import { pins } from "@dsboard/${id}"\n` +
                        `import { PinLed } from ${JSON.stringify(spec(join(devsDir, "led.ts")))}\n` +
                        `const led = new PinLed(pins.${pin})\n` +
                        `await led.toggle()\n`
                )
                await buildDevs(file)
            }
        )
    })
})

test("a board that does not exist fails to build (the board import is checked)", async () => {
    const file = entry(
        "board-none",
        `import { pins } from "@dsboard/no_such_board"\n` +
            `import ${JSON.stringify(spec(join(devsDir, "main.ts")))}\n` +
            `console.log(pins)\n`
    )
    await assert.rejects(buildDevs(file), /no_such_board/)
})
