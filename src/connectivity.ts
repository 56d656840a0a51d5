import * as ds from "@devicescript/core"

/**
 * Whether the device has a network path, and when that changes: the
 * DeviceScript counterpart of QuecPython's `dataCall` callback. The client
 * consults it before connecting, waits for it instead of burning reconnect
 * attempts, and drops a connection the moment the network goes down. The
 * application can listen to the same object.
 */
export interface Connectivity {
    /** False only when the network is known to be down. */
    isUp(): boolean
    /** Calls `listener` on every up/down change; returns an unsubscribe function. */
    onChange(listener: (up: boolean) => void): () => void
}

/**
 * The shared bookkeeping of a connectivity source: the current state and
 * the listeners, told only about real changes.
 *
 * @devsWhenUsed
 */
export class ConnectivitySource implements Connectivity {
    private up: boolean
    private listeners: ((up: boolean) => void)[] = []

    constructor(up: boolean) {
        this.up = up
    }

    isUp() {
        return this.up
    }

    onChange(listener: (up: boolean) => void) {
        const list = this.listeners
        list.push(listener)
        return () => {
            const i = list.indexOf(listener)
            if (i >= 0) list.insert(i, -1)
        }
    }

    /** Sets the state; listeners hear about it when it changed. */
    protected update(up: boolean) {
        if (up === this.up) return
        this.up = up
        const list = this.listeners.slice(0)
        for (let i = 0; i < list.length; ++i) {
            try {
                list[i](up)
            } catch (e) {
                console.warn(`connectivity listener: ${e}`)
            }
        }
    }
}

/**
 * A source the application or a test drives, for instance in the simulator,
 * which has no Wi-Fi, or with a modem whose state the application knows.
 *
 * @devsWhenUsed
 */
export class ManualConnectivity extends ConnectivitySource {
    constructor(up = true) {
        super(up)
    }

    /** Declares the network up or down. */
    set(up: boolean) {
        this.update(!!up)
    }
}

/**
 * The Wi-Fi role (`gotIp`, `lostIp`, `ipAddress`) as a connectivity source:
 * the default on hardware. Until the role reports, the network counts as
 * up, so a device whose firmware never binds the role still connects.
 *
 * @devsWhenUsed
 */
export class WifiConnectivity extends ConnectivitySource {
    constructor(readonly wifi: ds.Wifi = new ds.Wifi()) {
        super(true)
        const self = this
        wifi.gotIp.subscribe(() => {
            self.update(true)
        })
        wifi.lostIp.subscribe(() => {
            self.update(false)
        })
        wifi.ipAddress.subscribe(ip => {
            self.update(!!ip && ip.length > 0)
        })
    }
}
