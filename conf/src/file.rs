//! The TOML configuration file (to be written).
