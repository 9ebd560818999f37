//! Realtime transports: thin adapters from each wire protocol onto the hub.
