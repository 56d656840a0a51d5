/**
 * devicescript-umqtt: the umqtt client API for DeviceScript.
 * The contract of these exports is `shared/spec/api.md`.
 */
export * from "./errors"
export * from "./codec"
export * from "./topic"
export * from "./framer"
