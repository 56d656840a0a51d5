import * as ds from "@devicescript/core"
import { Connectivity, MQTTClient } from "../src/index"

/*
 * The seed's second example's MqttClient wrapper: a hand-made reconnect
 * loop with `reconn: false`, the error callback and the network callback
 * (QuecPython's `dataCall`, a `Connectivity` here). The app is reconnect.ts.
 */

/** Wraps MQTTClient with the example's own reconnect logic. */
export class ReconnectingClient {
    readonly client: MQTTClient
    private topic: string = null
    private qos = 0
    private networkUp = true
    private reconnecting = false
    private stopped = false

    constructor(
        clientId: string,
        host: string,
        port: number,
        readonly net: Connectivity,
        options: { user?: string; password?: string; ssl?: boolean } = {}
    ) {
        this.client = new MQTTClient(clientId, host, port, {
            user: options.user,
            password: options.password,
            ssl: options.ssl,
            keepalive: 10,
            reconn: false,
            connectivity: net,
        })
        const self = this
        // the network callback (dataCall.setCallback in the seed)
        net.onChange(up => {
            console.log(up ? "*** network connected! ***" : "*** network not connected! ***")
            self.networkUp = up
        })
        // errors of the client's background work: repair the connection
        this.client.errorRegisterCb(async err => {
            console.log(`thread err: ${err.message}`)
            await self.reconnect()
        })
    }

    async connect() {
        await this.client.connect()
    }

    async subscribe(topic: string, qos = 0) {
        this.topic = topic // remembered to subscribe again after a reconnect
        this.qos = qos
        await this.client.subscribe(topic, qos)
    }

    async publish(topic: string, msg: string, qos = 0) {
        await this.client.publish(topic, msg, false, qos)
    }

    /** Closes the socket and connects again until it works, then resubscribes. */
    async reconnect() {
        if (this.reconnecting || this.stopped) return
        this.reconnecting = true
        try {
            await this.client.close()
            while (!this.stopped) {
                if (!this.networkUp) {
                    await ds.sleep(1000) // wait for the network to come back
                    continue
                }
                try {
                    await this.client.connect()
                    if (this.topic) await this.client.subscribe(this.topic, this.qos)
                    console.log("reconnected")
                    return
                } catch (e) {
                    console.log(`reconnect failed: ${(e as Error).message}`)
                    await this.client.close()
                    await ds.sleep(1000)
                }
            }
        } finally {
            this.reconnecting = false
        }
    }

    /** Listens for messages in a fiber of its own (the seed's loop_forever). */
    loopForever() {
        const self = this
        ;(async () => {
            while (!self.stopped) {
                try {
                    await self.client.waitMsg()
                } catch (e) {
                    // a loss: the error callback repairs it; wait for that
                    await ds.sleep(200)
                }
            }
        }).start()
    }

    async disconnect() {
        this.stopped = true
        await this.client.disconnect()
    }
}

