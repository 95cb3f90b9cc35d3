"""`stationgw bench`: the gateway measured beside the bare MQTT client, the broker and a peer.

One module per measurement (ingest, cpu, latency, memory, storage, rules_cost, peer); the
processes they drive (Mosquitto, mosquitto_pub/sub, the gateway) live in `procs`, the
generated stations, rules and streams in `workload`, the table and JSON in `report`, and
`runner` runs them all in one go so that every ratio compares figures of the same run.
"""
