//! The signals uvsd answers: SIGHUP reloads the config file, SIGTERM and
//! SIGINT stop the daemon cleanly. They arrive on the control thread's
//! event loop (signal-hook's self-pipe, registered with mio), so a
//! handler never runs daemon code in signal context.

use std::io;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

/// What a signal asks of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalAction {
    /// Re-read the config file (SIGHUP).
    Reload,
    /// Shut down (SIGTERM, SIGINT); the signal's name.
    Stop(&'static str),
}

/// Catch SIGHUP, SIGTERM and SIGINT from now on.
pub fn install() -> io::Result<Signals> {
    Signals::new([SIGHUP, SIGTERM, SIGINT])
}

/// The action for a caught signal number.
pub fn action(signal: i32) -> Option<SignalAction> {
    match signal {
        SIGHUP => Some(SignalAction::Reload),
        SIGTERM => Some(SignalAction::Stop("SIGTERM")),
        SIGINT => Some(SignalAction::Stop("SIGINT")),
        _ => None,
    }
}

/// Every action pending on `signals`, in arrival order.
pub fn pending(signals: &mut Signals) -> Vec<SignalAction> {
    signals.pending().filter_map(action).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_map_to_actions() {
        assert_eq!(action(SIGHUP), Some(SignalAction::Reload));
        assert_eq!(action(SIGTERM), Some(SignalAction::Stop("SIGTERM")));
        assert_eq!(action(SIGINT), Some(SignalAction::Stop("SIGINT")));
        assert_eq!(action(signal_hook::consts::SIGUSR1), None);
    }
}
