import * as ds from "@devicescript/core"
import { Connectivity, ManualConnectivity, WifiConnectivity } from "../src/index"
import { ReconnectingClient } from "./reconnecting"
import { brokerSettings } from "./settings"

/*
 * The seed's second example, ported: a hand-made reconnect loop with
 * `reconn: false`, the error callback and the network callback. The
 * network callback of QuecPython's `dataCall` is a `Connectivity` here: the
 * Wi-Fi role on hardware; in the simulator, which has no Wi-Fi, a manual
 * source that stays up.
 */
const TOPIC = "/public/TEST/devicescript758"

const cfg = await brokerSettings("umqtt_client_753")
const net: Connectivity = ds.isSimulator()
    ? new ManualConnectivity(true)
    : new WifiConnectivity()
const c = new ReconnectingClient(cfg.clientId, cfg.host, cfg.port, net, {
    user: cfg.user,
    password: cfg.password,
    ssl: cfg.tls,
})
c.client.setCallback((topic, msg) => {
    console.log(`Subscribe Recv: Topic=${topic},Msg=${msg.toString()}`)
})
await c.connect()
await c.subscribe(TOPIC)
console.log(`Connected to ${cfg.host}, subscribed to ${TOPIC}`)
await c.publish(TOPIC, "my name is DeviceScript!")
console.log(`Publish topic: ${TOPIC}, msg: my name is DeviceScript!`)
c.loopForever()
