//! xmit (being written).
