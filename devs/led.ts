import * as ds from "@devicescript/core"
import { digitalWrite, pinMode } from "@devicescript/gpio"
import { setStatusLight } from "@devicescript/runtime"

/**
 * The board's status LED, as DeviceScript exposes it: the `led` entry of the
 * board configuration (boards/*.board.json), driven through the control
 * service's `setStatusLight`. It works the same for a WS2812 RGB LED
 * (ESP32-C3-DevKitM-1, GPIO8), for the Pico W's LED on the Wi-Fi chip and
 * for a plain mono LED (brightness = the brightest channel); in the
 * simulator it does nothing but the log line.
 *
 * The runtime may paint its own status (e.g. while joining Wi-Fi) over the
 * colour set here; the next `set` paints it again.
 */
export class StatusLed {
    /** true when the LED was last switched on */
    on = false

    /** @param color RGB colour when on (default a soft green) */
    constructor(readonly color = 0x00a000) {}

    async set(on: boolean) {
        this.on = on
        console.log(on ? "LED on" : "LED off")
        await setStatusLight(on ? this.color : 0)
    }

    async toggle() {
        await this.set(!this.on)
    }
}

/**
 * An LED on a plain GPIO pin (for boards whose LED is not the status light):
 * pass a pin of the board, e.g. `new PinLed(pins.P4)` after
 * `import { pins } from "@dsboard/esp32c3_devkitm_1"`.
 */
export class PinLed {
    /** true when the LED was last switched on */
    on = false

    /**
     * @param pin an output-capable pin of the board
     * @param activeLow true when the LED lights with the pin low
     */
    constructor(
        readonly pin: ds.OutputPin,
        readonly activeLow = false
    ) {
        pinMode(pin, ds.GPIOMode.Output)
        digitalWrite(pin, activeLow)
    }

    async set(on: boolean) {
        this.on = on
        console.log(on ? "LED on" : "LED off")
        digitalWrite(this.pin, on !== this.activeLow)
    }

    async toggle() {
        await this.set(!this.on)
    }
}
