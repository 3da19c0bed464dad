"""The core every part of Runward imports: contracts, the topic table, configuration, the stage
harness, the store and the one Kafka producer/consumer. It imports nothing else of the project."""
