//! A Maildir (`tmp/`, `new/`, `cur/`) that the SMTP sink delivers into, durably.
//!
//! Delivery follows the Maildir convention (Bernstein's maildir(5)): write the message to
//! `tmp/NAME` (mode 0600, `create_new`), fsync it, rename it to `new/NAME`, then fsync
//! `new/` so that the rename itself survives a crash. Only then is the message
//! acknowledged. `NAME` is `<secs>.M<usecs>P<pid>Q<counter>.<host>`: unique across
//! processes and restarts on one host. At start-up [`Maildir::open`] creates the three
//! directories if needed, proves that `tmp/` is writable (a probe file, written, synced and
//! removed) and removes what crashed deliveries left in `tmp/`: entries whose writing
//! process is gone, and anything older than 36 hours (maildir(5)'s rule). Every error names
//! the path it concerns.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// maildir(5): a file in `tmp/` untouched for this long is a leftover.
const STALE_AFTER: Duration = Duration::from_secs(36 * 3600);

/// A message to deliver: the envelope and the data as received.
#[derive(Debug)]
pub struct Message {
    /// The reverse path (empty for the null sender).
    pub from: Vec<u8>,
    /// The forward paths.
    pub rcpts: Vec<Vec<u8>>,
    /// The data, unstuffed, every line ending in CRLF.
    pub body: Vec<u8>,
}

impl Message {
    /// Bytes of memory the message holds.
    pub fn size(&self) -> usize {
        self.from.len() + self.rcpts.iter().map(Vec::len).sum::<usize>() + self.body.len()
    }
}

/// `err` with `what` and `path` in front of its message, its kind kept.
pub fn at(what: &str, path: &Path, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{what} {}: {err}", path.display()))
}

/// An open Maildir.
#[derive(Debug)]
pub struct Maildir {
    tmp: PathBuf,
    new: PathBuf,
    host: String,
}

impl Maildir {
    /// Opens (creating if needed) the Maildir at `root`, checks that it is writable and
    /// removes stale entries from `tmp/`; returns how many it removed.
    ///
    /// # Errors
    ///
    /// Any failure to create, write, sync or list, naming the path.
    pub fn open(root: &Path) -> io::Result<(Maildir, usize)> {
        for sub in ["", "tmp", "new", "cur"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(|e| at("cannot create directory", &dir, e))?;
        }
        let md = Maildir {
            tmp: root.join("tmp"),
            new: root.join("new"),
            host: hostname(),
        };
        let removed = md.clean_tmp()?;
        md.probe()?;
        Ok((md, removed))
    }

    /// Writes, syncs and removes a file in `tmp/`: the directory is usable now, not only
    /// discovered broken at the first message.
    fn probe(&self) -> io::Result<()> {
        let path = self.tmp.join(self.unique_name());
        let write = || -> io::Result<()> {
            let mut f = create(&path)?;
            f.write_all(b"probe\r\n")?;
            f.sync_all()
        };
        let result = write().map_err(|e| at("cannot write to maildir: file", &path, e));
        let _ = fs::remove_file(&path);
        result
    }

    /// Removes what interrupted deliveries left in `tmp/`.
    fn clean_tmp(&self) -> io::Result<usize> {
        let entries =
            fs::read_dir(&self.tmp).map_err(|e| at("cannot list directory", &self.tmp, e))?;
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|e| at("cannot list directory", &self.tmp, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // Ours (this host's naming) and its writer is gone: it will never finish.
            let orphan = name.ends_with(&format!(".{}", self.host))
                && writer_pid(&name).is_some_and(|pid| {
                    // Our own pid: an earlier process's (nothing is written before open).
                    pid == std::process::id() || !Path::new(&format!("/proc/{pid}")).exists()
                });
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_AFTER);
            if orphan || old {
                let path = entry.path();
                fs::remove_file(&path).map_err(|e| at("cannot remove stale file", &path, e))?;
                log::info!("removed stale {}", path.display());
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// A name no other delivery on this host gets.
    fn unique_name(&self) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!(
            "{}.M{}P{}Q{n}.{}",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            self.host
        )
    }

    /// Delivers `messages` into `new/`, one result (the message's name) each; all the
    /// successful ones share one sync of `new/` (a group commit). Nothing of a failed
    /// message is left behind.
    pub fn deliver(&self, messages: &[Message]) -> Vec<io::Result<String>> {
        let mut results: Vec<io::Result<String>> =
            messages.iter().map(|m| self.write_one(m)).collect();
        if results.iter().any(Result::is_ok) {
            if let Err(e) = sync_dir(&self.new) {
                let e = at("cannot sync directory", &self.new, e);
                for r in &mut results {
                    if let Ok(name) = r {
                        // Not known to be durable: take it back (the client retries).
                        let _ = fs::remove_file(self.new.join(&*name));
                        *r = Err(io::Error::new(e.kind(), e.to_string()));
                    }
                }
            }
        }
        results
    }

    fn write_one(&self, m: &Message) -> io::Result<String> {
        let name = self.unique_name();
        let tmp = self.tmp.join(&name);
        let new = self.new.join(&name);
        let mut file = create(&tmp).map_err(|e| at("cannot create", &tmp, e))?;
        let mut write = || -> io::Result<()> {
            let mut head = b"X-Mail-From: ".to_vec();
            head.extend_from_slice(&m.from);
            head.extend_from_slice(b"\r\nX-Rcpt-To: ");
            head.extend_from_slice(&m.rcpts.join(&b", "[..]));
            head.extend_from_slice(b"\r\n");
            file.write_all(&head)?;
            file.write_all(&m.body)?;
            file.sync_all()
        };
        let result = write()
            .map_err(|e| at("cannot write", &tmp, e))
            .and_then(|()| fs::rename(&tmp, &new).map_err(|e| at("cannot rename", &tmp, e)));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map(|()| name)
    }
}

fn create(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// The pid in a name made by [`Maildir::unique_name`] (`...P<pid>Q...`).
fn writer_pid(name: &str) -> Option<u32> {
    let (_, rest) = name.split_once(".M")?;
    let (_, rest) = rest.split_once('P')?;
    let (pid, _) = rest.split_once('Q')?;
    pid.parse().ok()
}

/// This host's name, with maildir(5)'s escapes for `/` and `:`.
fn hostname() -> String {
    let name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name = name.trim();
    let name = if name.is_empty() { "localhost" } else { name };
    name.replace('/', "\\057").replace(':', "\\072")
}
