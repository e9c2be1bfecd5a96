//! One uvsd per interface: advisory locks that a second daemon meets.
//!
//! Before a backend attaches to an interface (or creates its TUN
//! device), uvsd takes an exclusive `flock` on
//! `/run/uvs/lock/<netns inode>.<name>` and writes its pid there. A
//! second uvsd in the same network namespace that wants the same
//! interface is refused with a message naming the holder; a uvsd in
//! another namespace is not concerned (another inode). The kernel drops
//! the lock when the process ends, `kill -9` included, so a restart never
//! meets a stale lock.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Where the lock files live.
pub const LOCK_DIR: &str = "/run/uvs/lock";

/// The locks this process holds, by name.
#[derive(Debug, Default)]
pub struct Locks {
    held: HashMap<String, File>,
}

fn netns_id() -> u64 {
    fs::metadata("/proc/thread-self/ns/net")
        .or_else(|_| fs::metadata("/proc/self/ns/net"))
        .map(|m| m.ino())
        .unwrap_or(0)
}

impl Locks {
    /// No locks held.
    pub fn new() -> Locks {
        Locks::default()
    }

    /// Take the lock of each of `names` not held yet (`what` says what a
    /// name is, for the message). All or nothing: on a refusal the locks
    /// taken by this call are released.
    pub fn acquire(&mut self, names: &[String], what: &str) -> Result<(), String> {
        fs::create_dir_all(LOCK_DIR).map_err(|e| format!("cannot create {LOCK_DIR}: {e}"))?;
        let ns = netns_id();
        let mut taken = Vec::new();
        for name in names {
            if self.held.contains_key(name) {
                continue;
            }
            match lock_one(ns, name) {
                Ok(file) => {
                    self.held.insert(name.clone(), file);
                    taken.push(name.clone());
                }
                Err(holder) => {
                    for name in taken {
                        self.held.remove(&name);
                    }
                    return Err(match holder {
                        Some(pid) => format!(
                            "{what} {name} is already driven by another uvsd (pid {pid}); \
                             refusing to start a second one on it"
                        ),
                        None => format!("cannot lock {what} {name} under {LOCK_DIR}"),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Lock `name`; on refusal, the holder's pid when readable.
fn lock_one(ns: u64, name: &str) -> Result<File, Option<String>> {
    let safe: String = name
        .chars()
        .map(|c| if c == '/' { '_' } else { c })
        .collect();
    let path = PathBuf::from(LOCK_DIR).join(format!("{ns}.{safe}"));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|_| None)?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        let pid = pid.trim().to_string();
        return Err(Some(if pid.is_empty() {
            "unknown".into()
        } else {
            pid
        }));
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = writeln!(file, "{}", std::process::id());
    Ok(file)
}
