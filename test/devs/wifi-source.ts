import * as ds from "@devicescript/core"
import { Server, startServer } from "@devicescript/server"
import { MQTTClient, WifiConnectivity } from "../../src/index"

/** A Wi-Fi service hosted inside the program, standing in for the firmware's. */
class SimWifiServer extends Server implements ds.WifiServerSpec {
    ip = Buffer.from([10, 0, 0, 7])

    constructor() {
        super(ds.Wifi.spec)
    }
    addNetwork(ssid: string, password: string) {}
    reconnect() {}
    forgetNetwork(ssid: string) {}
    forgetAllNetworks() {}
    setNetworkPriority(priority: number, ssid: string) {}
    scan() {}
    reading() {
        return -50
    }
    enabled() {
        return true
    }
    set_enabled(value: boolean) {}
    ipAddress() {
        return this.ip
    }
    eui48() {
        return Buffer.alloc(6)
    }
    ssid() {
        return "sim"
    }
    async lose() {
        this.ip = Buffer.alloc(0)
        await this.sendEvent(this.spec.lookup("lostIp").encode(undefined))
    }
    async gain() {
        this.ip = Buffer.from([10, 0, 0, 7])
        await this.sendEvent(this.spec.lookup("gotIp").encode(undefined))
    }
}

async function until(cond: () => boolean, ms: number, what: string) {
    const end = ds.millis() + ms
    while (!cond()) {
        if (ds.millis() > end) throw new Error(`timeout waiting for ${what}`)
        await ds.sleep(20)
    }
}

/**
 * The Wi-Fi connectivity source against a Wi-Fi service hosted in the
 * program; then a client using it rides out a Wi-Fi loss: it drops the
 * link at once, does not try while the network is down, and reconnects and
 * delivers what was published meanwhile when it comes back.
 */
export async function main(params: { port: number; topic: string }) {
    const server = new SimWifiServer()
    const role = startServer(server)
    const net = new WifiConnectivity(new ds.Wifi(role))
    const seen: boolean[] = []
    net.onChange(up => {
        seen.push(up)
        console.log(`wifi ${up ? "up" : "down"}`)
    })
    await until(() => net.wifi.isBound, 5000, "the role to bind")
    console.log("bound")
    await server.lose()
    await until(() => !net.isUp(), 5000, "down")
    await server.gain()
    await until(() => net.isUp(), 5000, "up")
    console.log(`changes ${seen.join(",")}`)

    const c = new MQTTClient("wifi-client", "127.0.0.1", params.port, {
        connectivity: net,
        reconnectDelay: 50,
        reconnectMaxDelay: 100,
    })
    const states: number[] = []
    c.setReconnectCallback(state => {
        states.push(state)
    })
    await c.connect()
    await server.lose()
    await until(() => c.getMqttsta() === 1, 5000, "the client to notice")
    // published while the network is down: queued, sent after reconnecting
    let sent = 0
    for (let i = 0; i < 3; ++i)
        (async () => {
            await c.publish(params.topic, "queued", false, 1)
            sent++
        }).start()
    await ds.sleep(500)
    console.log(`while down: state ${c.getMqttsta()} sent ${sent}`)
    await server.gain()
    await until(() => sent === 3, 10000, "the queued publishes")
    console.log(`after: state ${c.getMqttsta()} states ${states.join(",")}`)
    await c.disconnect()
    ds.restart()
}
